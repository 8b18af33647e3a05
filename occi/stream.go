package occi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/houssem/cmbs/store"
)

// Collection answers are written as they are produced, entry by entry,
// rather than built whole first. The JSON ones keep, byte for byte, the
// layout json.Encoder gives a built document (four-space indent), so
// streaming changes nothing a client sees.

// sticky buffers writes and keeps the first error, which flush returns,
// so a stream of small writes is checked once.
type sticky struct {
	w   *bufio.Writer
	err error
}

func newSticky(w io.Writer) sticky { return sticky{w: bufio.NewWriterSize(w, 32<<10)} }

func (s *sticky) str(v string) {
	if s.err == nil {
		_, s.err = s.w.WriteString(v)
	}
}

func (s *sticky) raw(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

func (s *sticky) flush() error {
	if s.err != nil {
		return s.err
	}
	return s.w.Flush()
}

// jsonStream writes a JSON object whose members are arrays, one element at
// a time.
type jsonStream struct {
	sticky
	members int
	items   int
}

func newJSONStream(w io.Writer) *jsonStream {
	return &jsonStream{sticky: newSticky(w)}
}

// open starts the member key, an array.
func (j *jsonStream) open(key string) error {
	if j.members == 0 {
		j.str("{\n")
	} else {
		j.str(",\n")
	}
	j.members++
	j.items = 0
	k, err := compactJSON(key)
	if err != nil {
		return err
	}
	j.str("    ")
	j.raw(k)
	j.str(": [")
	return j.err
}

// item adds v to the array open.
func (j *jsonStream) item(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("        ", "    ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	if j.items > 0 {
		j.str(",")
	}
	j.items++
	j.str("\n        ")
	j.raw(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return j.err
}

// close ends the array open.
func (j *jsonStream) close() error {
	if j.items > 0 {
		j.str("\n    ")
	}
	j.str("]")
	return j.err
}

// end closes the object and sends what is buffered.
func (j *jsonStream) end() error {
	if j.members == 0 {
		j.str("{")
	}
	j.str("\n}\n")
	return j.flush()
}

func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// streamLocations answers a list of entity and path locations, in the
// order given, in rendering rend.
func (s *Server) streamLocations(w http.ResponseWriter, r *http.Request, rend rendering, status int, paths []string) error {
	switch rend {
	case renderPyOCNI, renderJSON12:
		key, media := "X-OCCI-Location", MediaType
		if rend == renderJSON12 {
			key, media = "locations", mediaJSON12
		}
		w.Header().Set("Content-Type", media)
		w.WriteHeader(status)
		j := newJSONStream(w)
		if err := j.open(key); err != nil {
			return err
		}
		for _, p := range paths {
			if err := j.item(s.absURL(r, p)); err != nil {
				return err
			}
		}
		if err := j.close(); err != nil {
			return err
		}
		return j.end()
	case renderHeaders:
		t := &textOut{}
		for _, p := range paths {
			t.add(hdrLocation, s.absURL(r, p))
		}
		return t.write(w, rend, status)
	}
	prefix, media := hdrLocation+": ", mediaTextPlain
	if rend == renderURIList {
		prefix, media = "", mediaURIList
	}
	w.Header().Set("Content-Type", media)
	w.WriteHeader(status)
	out := newSticky(w)
	for _, p := range paths {
		out.str(prefix)
		out.str(s.absURL(r, p))
		out.str("\n")
	}
	return out.flush()
}

// streamEntities12 answers a page of entities in full, in the OCCI 1.2
// JSON rendering: {"links":[…],"resources":[…]}, as collectionOf12 lays
// them out. Each entity is read through its providers and rendered just
// before it is written.
func (s *Server) streamEntities12(w http.ResponseWriter, r *http.Request, docs []store.Doc) error {
	ctx := r.Context()
	var links, resources []*Entity
	for _, d := range docs {
		e, err := DecodeEntity(d)
		if err != nil {
			return err
		}
		if e.Type == TypeLink {
			links = append(links, e)
		} else {
			resources = append(resources, e)
		}
	}
	lists := []struct {
		key  string
		ents []*Entity
	}{{"links", links}, {"resources", resources}}
	if len(links) == 0 {
		lists = lists[1:]
	} else if len(resources) == 0 {
		lists = lists[:1]
	}
	started := false
	var j *jsonStream
	for _, l := range lists {
		for i, e := range l.ents {
			v, err := s.readView(ctx, e)
			if err != nil {
				return err
			}
			if !started {
				// Headers go once the first entity is ready, so a failure
				// there is still answered as an error.
				w.Header().Set("Content-Type", mediaJSON12)
				w.WriteHeader(http.StatusOK)
				j, started = newJSONStream(w), true
			}
			if i == 0 {
				if err := j.open(l.key); err != nil {
					return err
				}
			}
			if err := j.item(v.json12()); err != nil {
				return err
			}
			l.ents[i] = nil // rendered: let it go
		}
		if !started {
			continue
		}
		if len(l.ents) == 0 {
			if err := j.open(l.key); err != nil {
				return err
			}
		}
		if err := j.close(); err != nil {
			return err
		}
	}
	if !started {
		return writeJSON12(w, http.StatusOK, map[string][]resource12{"resources": {}})
	}
	return j.end()
}

// readView runs the providers' Read on a stored entity and gathers what
// its rendering shows.
func (s *Server) readView(ctx context.Context, e *Entity) (*entityView, error) {
	es, err := s.resolveSchema(ctx, e.Kind, e.Mixins, "entity")
	if err != nil {
		return nil, fmt.Errorf("entity %s refers to categories that are gone: %w", e.Location, err)
	}
	if err := s.eachProvider(es, func(_ string, p Provider) error { return p.Read(ctx, e) }); err != nil {
		return nil, err
	}
	return s.view(ctx, e, es, true)
}
