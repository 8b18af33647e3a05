package occi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// MediaType is cmbs's JSON rendering; application/json is its alias. See
// negotiate.go for the others.
const MediaType = "application/occi+json"

// handlerFunc serves one request; a returned error is written as a problem
// document, or as a line of text to clients of the text renderings.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// endpoint wraps the handlers of one route with what every request needs:
// method check, content negotiation, a body limit, error mapping and a log
// line.
func (s *Server) endpoint(methods map[string]handlerFunc) http.Handler {
	allowed := make([]string, 0, len(methods))
	for m := range methods {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		x := newExchange(r)
		err := s.serve(rec, withExchange(r, x), x, methods[r.Method], allow)
		fields := logrus.Fields{"method": r.Method, "path": r.URL.RequestURI(), "status": rec.status, "duration": time.Since(start).String()}
		if err != nil && rec.status != 0 {
			// A streamed answer failed part way: its status is sent, so
			// the client learns of the failure by the answer ending
			// abruptly rather than by a well-formed, incomplete one.
			s.log.WithFields(fields).WithError(err).Error("answer cut short")
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			writeError(rec, x, err)
			fields["status"] = rec.status
		}
		switch {
		case rec.status >= 500:
			s.log.WithFields(fields).WithError(err).Error("request failed")
		case err != nil:
			s.log.WithFields(fields).WithError(err).Info("request refused")
		default:
			s.log.WithFields(fields).Info("request")
		}
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, x *exchange, h handlerFunc, allow string) error {
	if h == nil {
		return &Error{Status: http.StatusMethodNotAllowed, Allow: allow,
			Detail: "method " + r.Method + " is not allowed here; allowed: " + allow}
	}
	if _, err := x.answer(false); err != nil {
		return err
	}
	if err := x.readContentType(r); err != nil {
		return err
	}
	if r.ContentLength > s.maxBody {
		// Refused on its declared length, before a byte of it is read
		// (a client that sent Expect: 100-continue never sends it).
		w.Header().Set("Connection", "close")
		return tooLarge(s.maxBody)
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	}
	return h(w, withPreferences(r))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// readJSON decodes the request body into v. An empty body leaves v as it is
// and reports false.
func readJSON(r *http.Request, v any) (bool, error) {
	data, err := readBody(r)
	if err != nil {
		return false, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return false, nil
	}
	if err := checkUTF8JSON(data); err != nil {
		return false, err
	}
	if err := decodeJSON(data, v); err != nil {
		return false, err
	}
	return true, nil
}

// decodeJSON parses a request document, describing syntax errors by offset.
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var oe *Error
		switch {
		case errors.As(err, &oe):
			return oe
		case errors.As(err, &syn):
			return BadRequest("", "malformed JSON at byte %d: %v", syn.Offset, syn)
		case errors.As(err, &typ):
			return BadRequest(typ.Field, "%s must be %s, not a JSON %s", fieldName(typ.Field), typ.Type, typ.Value)
		default:
			return BadRequest("", "malformed JSON: %v", err)
		}
	}
	return nil
}

// decodeMembers decodes an object whose members were read one by one (to
// check their names) into v, as decodeJSON.
func decodeMembers(raw map[string]json.RawMessage, v any) error {
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("re-encode the members of the body: %w", err)
	}
	return decodeJSON(data, v)
}

func fieldName(f string) string {
	if f == "" {
		return "the document"
	}
	return f
}

// writeJSON answers status with v in the occi+json rendering.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

// absURL makes path absolute, on the public URL when one is configured and
// otherwise on the scheme and host the request came to.
func (s *Server) absURL(r *http.Request, path string) string {
	if s.publicURL != nil {
		return s.publicURL.String() + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}

// pathOf turns a client's reference to an entity (absolute URL or path) into
// a path on this server.
func pathOf(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		rest := ref[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return ref
}
