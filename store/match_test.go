package store

import (
	"encoding/json"
	"errors"
	"testing"
)

const sampleBody = `{
	"kind": "compute",
	"n": 2,
	"f": 2.5,
	"big": 9007199254740993,
	"null": null,
	"flag": false,
	"attributes": {
		"cmbs": {"member": {"local": true, "port": 5555}},
		"occi.core.id": "abc",
		"tags": ["a", 1, {"k": "v", "w": [1, 2]}, [1, 2], null]
	},
	"empty": []
}`

func TestMatch(t *testing.T) {
	f := func(path ...string) []string { return path }
	tests := []struct {
		name  string
		where []Cond
		want  bool
	}{
		{"no conditions", nil, true},
		{"eq string", []Cond{{Field: f("kind"), Op: Eq, Value: "compute"}}, true},
		{"eq string mismatch", []Cond{{Field: f("kind"), Op: Eq, Value: "network"}}, false},
		{"eq int against int", []Cond{{Field: f("n"), Op: Eq, Value: 2}}, true},
		{"eq float equal to int", []Cond{{Field: f("n"), Op: Eq, Value: 2.0}}, true},
		{"eq json number spelled differently", []Cond{{Field: f("n"), Op: Eq, Value: json.Number("2e0")}}, true},
		{"eq float", []Cond{{Field: f("f"), Op: Eq, Value: 2.5}}, true},
		{"eq number against string", []Cond{{Field: f("n"), Op: Eq, Value: "2"}}, false},
		{"eq big integer exact", []Cond{{Field: f("big"), Op: Eq, Value: int64(9007199254740993)}}, true},
		{"eq big integer off by one", []Cond{{Field: f("big"), Op: Eq, Value: int64(9007199254740992)}}, false},
		{"eq null", []Cond{{Field: f("null"), Op: Eq, Value: nil}}, true},
		{"eq null on missing field", []Cond{{Field: f("missing"), Op: Eq, Value: nil}}, false},
		{"eq false", []Cond{{Field: f("flag"), Op: Eq, Value: false}}, true},
		{"eq false against null", []Cond{{Field: f("null"), Op: Eq, Value: false}}, false},
		{"eq nested bool", []Cond{{Field: f("attributes", "cmbs", "member", "local"), Op: Eq, Value: true}}, true},
		{"eq nested number", []Cond{{Field: f("attributes", "cmbs", "member", "port"), Op: Eq, Value: 5555}}, true},
		{"eq object any key order", []Cond{{Field: f("attributes", "cmbs", "member"), Op: Eq, Value: json.RawMessage(`{"port":5555.0,"local":true}`)}}, true},
		{"eq object with extra key", []Cond{{Field: f("attributes", "cmbs", "member"), Op: Eq, Value: map[string]any{"port": 5555, "local": true, "x": 1}}}, false},
		{"eq object missing key", []Cond{{Field: f("attributes", "cmbs", "member"), Op: Eq, Value: map[string]any{"port": 5555}}}, false},
		{"eq array in order", []Cond{{Field: f("attributes", "tags"), Op: Eq, Value: json.RawMessage(`["a",1,{"w":[1,2],"k":"v"},[1,2],null]`)}}, true},
		{"eq array out of order", []Cond{{Field: f("attributes", "tags"), Op: Eq, Value: json.RawMessage(`[1,"a",{"w":[1,2],"k":"v"},[1,2],null]`)}}, false},
		{"eq empty array", []Cond{{Field: f("empty"), Op: Eq, Value: []int{}}}, true},
		{"key with dots", []Cond{{Field: f("attributes", "occi.core.id"), Op: Eq, Value: "abc"}}, true},
		{"dots are not a path", []Cond{{Field: f("attributes.occi.core.id"), Op: Exists}}, false},
		{"path through scalar", []Cond{{Field: f("kind", "x"), Op: Exists}}, false},
		{"path through array", []Cond{{Field: f("attributes", "tags", "0"), Op: Exists}}, false},
		{"exists", []Cond{{Field: f("attributes", "cmbs"), Op: Exists}}, true},
		{"exists null", []Cond{{Field: f("null"), Op: Exists}}, true},
		{"exists missing", []Cond{{Field: f("attributes", "nope"), Op: Exists}}, false},
		{"contains string", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: "a"}}, true},
		{"contains number as float", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: 1.0}}, true},
		{"contains object any key order", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: map[string]any{"w": []float64{1, 2}, "k": "v"}}}, true},
		{"contains array", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: []int{1, 2}}}, true},
		{"contains null", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: nil}}, true},
		{"contains absent element", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: "b"}}, false},
		{"contains does not flatten", []Cond{{Field: f("attributes", "tags"), Op: Contains, Value: 2}}, false},
		{"contains on non-array", []Cond{{Field: f("kind"), Op: Contains, Value: "compute"}}, false},
		{"contains on empty array", []Cond{{Field: f("empty"), Op: Contains, Value: nil}}, false},
		{"contains on missing", []Cond{{Field: f("none"), Op: Contains, Value: 1}}, false},
		{"all conditions hold", []Cond{
			{Field: f("kind"), Op: Eq, Value: "compute"},
			{Field: f("attributes", "tags"), Op: Contains, Value: "a"},
			{Field: f("attributes", "cmbs", "member", "local"), Op: Exists},
		}, true},
		{"one condition fails", []Cond{
			{Field: f("kind"), Op: Eq, Value: "compute"},
			{Field: f("attributes", "tags"), Op: Contains, Value: "zzz"},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Match(json.RawMessage(sampleBody), tt.where)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		where []Cond
	}{
		{"invalid body", `{"a":`, []Cond{{Field: []string{"a"}, Op: Exists}}},
		{"trailing data", `{"a":1} {}`, []Cond{{Field: []string{"a"}, Op: Exists}}},
		{"empty field path", `{"a":1}`, []Cond{{Op: Exists}}},
		{"unknown operator", `{"a":1}`, []Cond{{Field: []string{"a"}, Op: Op(42)}}},
		{"unencodable value", `{"a":1}`, []Cond{{Field: []string{"a"}, Op: Eq, Value: make(chan int)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Match(json.RawMessage(tt.body), tt.where); err == nil {
				t.Error("Match succeeded, want an error")
			}
		})
	}
}

func TestCheckDoc(t *testing.T) {
	tests := []struct {
		name    string
		doc     Doc
		want    string
		invalid bool
	}{
		{"compacts", Doc{ID: "a", Body: json.RawMessage(" { \"x\" : [1, 2] } ")}, `{"x":[1,2]}`, false},
		{"nil body", Doc{ID: "a"}, `{}`, false},
		{"empty id", Doc{Body: json.RawMessage(`{}`)}, "", true},
		{"underscore id", Doc{ID: "_design/x", Body: json.RawMessage(`{}`)}, "", true},
		{"invalid utf-8 id", Doc{ID: "a\xff", Body: json.RawMessage(`{}`)}, "", true},
		{"array body", Doc{ID: "a", Body: json.RawMessage(`[1]`)}, "", true},
		{"broken body", Doc{ID: "a", Body: json.RawMessage(`{"x":`)}, "", true},
		{"reserved key", Doc{ID: "a", Body: json.RawMessage(`{"_rev":"1-x"}`)}, "", true},
		{"nested underscore key is fine", Doc{ID: "a", Body: json.RawMessage(`{"x":{"_y":1}}`)}, `{"x":{"_y":1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckDoc(tt.doc)
			if tt.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("CheckDoc error = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckDoc: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("CheckDoc body = %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzMatch checks that Match never panics and that every top-level field of
// a body is found by Exists and equals its own value under Eq and Contains.
func FuzzMatch(f *testing.F) {
	f.Add([]byte(sampleBody), "attributes")
	f.Add([]byte(`{"a":[1,2.0,{"b":null}]}`), "a")
	f.Add([]byte(`{"a.b":1e3}`), "a.b")
	f.Add([]byte(`{"":"x"}`), "")
	f.Add([]byte(`[]`), "x")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		where := []Cond{{Field: []string{key}, Op: Exists}}
		ok, err := Match(body, where)
		if err != nil {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil {
			return
		}
		raw, present := obj[key]
		if ok != present {
			t.Fatalf("Exists(%q) = %v, field present = %v", key, ok, present)
		}
		if !present {
			return
		}
		eq, err := Match(body, []Cond{{Field: []string{key}, Op: Eq, Value: raw}})
		if err != nil {
			// Values json.Marshal rejects, such as numbers outside float64
			// range, cannot be compared.
			return
		}
		if !eq {
			t.Fatalf("Eq(%q, %s) = false on its own value", key, raw)
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			return
		}
		for _, el := range arr {
			in, err := Match(body, []Cond{{Field: []string{key}, Op: Contains, Value: el}})
			if err != nil {
				return
			}
			if !in {
				t.Fatalf("Contains(%q, %s) = false for an element of %s", key, el, raw)
			}
		}
	})
}
