package occi

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzCheckUTF8JSON: the UTF-8 check of JSON bodies never panics, passes
// every valid UTF-8 document, and refuses every other one naming a field
// that is in the document when the document parses.
func FuzzCheckUTF8JSON(f *testing.F) {
	f.Add([]byte(`{"resources":[{"title":"ok"}]}`))
	f.Add([]byte("{\"resources\":[{\"attributes\":{\"a\":[1,\"\xff\"]}}]}"))
	f.Add([]byte("{\"k\xfe\":{\"x\":[{}, {\"y\":\"\xc3\"}]}}"))
	f.Add([]byte("[\"\xff\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkUTF8JSON(data)
		if utf8.Valid(data) {
			if err != nil {
				t.Fatalf("valid UTF-8 refused: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatal("invalid UTF-8 accepted")
		}
		if statusOf(err) != 400 {
			t.Fatalf("status %d", statusOf(err))
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		// The path names members of the document: walking it finds a value.
		var oe *Error
		if _, inKey := jsonPathAt(data, invalidAt(data)); !inKey && errors.As(err, &oe) && oe.Field == "" {
			if _, isObj := v.(map[string]any); isObj {
				t.Fatalf("no field named for invalid UTF-8 in %q", data)
			}
		}
	})
}
