package occi

// Content negotiation. The request body is read in the rendering its
// Content-Type names; the answer comes in the best rendering the Accept
// header allows, JSON when it names none or */*.
//
// The JSON shape rule: application/occi+json (and application/json) answers
// in the OCCI 1.2 JSON shape when the Accept member that matched carries
// version=1.2; any other version keeps pyOCNI's shape. With no version in
// Accept (no Accept at all, */*, or a bare application/occi+json), the
// answer is OCCI 1.2 when the request's Content-Type carried version=1.2 or
// its body was a document only OCCI 1.2 has: a single entity object (kind
// at the top level), an action invocation ({"action":…}), a location list
// ({"locations":[…]}), or categories with parent, depends, applies or
// dotted attribute names. Everything else, every request file of examples/
// among it, is answered in pyOCNI's shape, exactly as before. Requests in
// either shape are read everywhere.

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// rendering is one of the OCCI renderings a request is read in or answered
// in. The two JSON shapes share a media type; which one an answer uses is
// decided by jsonShape.
type rendering int

const (
	// renderPyOCNI is application/occi+json in pyOCNI's shape: attribute
	// objects nested by the dots of their names, entities in lists,
	// locations under "X-OCCI-Location".
	renderPyOCNI rendering = iota
	// renderJSON12 is the OCCI 1.2 JSON rendering: flat dotted attribute
	// names, a single entity as one object, {"locations":[…]}.
	renderJSON12
	// renderText is text/plain: OCCI lines in the body.
	renderText
	// renderHeaders is text/occi: the same lines as HTTP headers.
	renderHeaders
	// renderURIList is text/uri-list: one absolute URL a line.
	renderURIList
)

// Media types besides MediaType.
const (
	mediaJSON      = "application/json"
	mediaText      = "text/plain"
	mediaTextOCCI  = "text/occi"
	mediaURIList   = "text/uri-list"
	mediaProblem   = "application/problem+json"
	mediaJSON12    = MediaType + "; version=1.2"
	version12      = "1.2"
	mediaTextPlain = "text/plain; charset=utf-8"
)

// offers are the media types answers come in, in the server's order of
// preference when a client weighs several alike.
var offers = []struct {
	media string
	r     rendering
}{
	{MediaType, renderPyOCNI},
	{mediaJSON, renderPyOCNI},
	{mediaText, renderText},
	{mediaTextOCCI, renderHeaders},
	{mediaURIList, renderURIList},
	{mediaProblem, renderPyOCNI},
}

// mediaRange is one member of an Accept header.
type mediaRange struct {
	typ, sub string
	version  string
	q        float64
}

// exchange is what content negotiation knows about one request: the
// rendering of its body and what it accepts in return. It lives in the
// request's context from endpoint on.
type exchange struct {
	accept    []mediaRange
	hasAccept bool
	acceptRaw []string
	// in is the rendering of the request's body (and, for text/occi, of
	// its headers). Both JSON shapes read as renderPyOCNI: one decoder
	// takes either.
	in rendering
	// want12 records that the request asked for OCCI 1.2 JSON through its
	// Content-Type, or sent a document only that rendering has.
	want12 bool
}

type exchangeKey struct{}

// exchangeOf returns the request's exchange; requests that did not come
// through endpoint (tests of single handlers) get the defaults.
func exchangeOf(r *http.Request) *exchange {
	if x, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		return x
	}
	return &exchange{}
}

func withExchange(r *http.Request, x *exchange) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
}

// newExchange reads the Accept header. The body's rendering is set by
// readContentType once the method is known to be allowed.
func newExchange(r *http.Request) *exchange {
	values := r.Header.Values("Accept")
	return &exchange{accept: parseAccept(values), hasAccept: len(values) > 0, acceptRaw: values}
}

// AcceptRange is one member of an Accept header: a media type, or a range
// with * for the subtype or both, and its quality.
type AcceptRange struct {
	Type, Subtype string
	Quality       float64
}

// ParseAccept reads Accept header values as the server's own negotiation
// does, for handlers in front of it that choose between the OCCI
// renderings and something else: members that do not parse are skipped.
func ParseAccept(values []string) []AcceptRange {
	ranges := parseAccept(values)
	out := make([]AcceptRange, len(ranges))
	for i, m := range ranges {
		out[i] = AcceptRange{Type: m.typ, Subtype: m.sub, Quality: m.q}
	}
	return out
}

// parseAccept reads Accept headers; members that do not parse are skipped.
func parseAccept(values []string) []mediaRange {
	var out []mediaRange
	for _, v := range values {
		for _, part := range splitList(v) {
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			typ, sub, ok := strings.Cut(mt, "/")
			if !ok {
				continue
			}
			out = append(out, mediaRange{typ: typ, sub: sub, version: params["version"], q: q})
		}
	}
	return out
}

// match finds the most specific range of the Accept header that covers
// media: its quality, specificity (0 for */*, 1 for type/*, 2 exact), the
// version it asks for and its position.
func (x *exchange) match(media string) (q float64, spec int, version string, pos int, ok bool) {
	typ, sub, _ := strings.Cut(media, "/")
	spec = -1
	for i, m := range x.accept {
		s := -1
		switch {
		case m.typ == typ && m.sub == sub:
			s = 2
		case m.typ == typ && m.sub == "*":
			s = 1
		case m.typ == "*" && m.sub == "*":
			s = 0
		}
		if s < 0 || s < spec || (s == spec && m.q <= q) {
			continue
		}
		q, spec, version, pos, ok = m.q, s, m.version, i, true
	}
	return q, spec, version, pos, ok
}

// answer picks the rendering of the response. full is true when the
// answer is more than a list of locations, which text/uri-list cannot
// carry. No Accept header, like */*, means the JSON rendering.
func (x *exchange) answer(full bool) (rendering, error) {
	if !x.hasAccept {
		return x.jsonShape(""), nil
	}
	best := -1
	var bestQ float64
	var bestSpec, bestPos int
	var bestVersion string
	for i, o := range offers {
		if full && o.r == renderURIList {
			continue
		}
		q, spec, version, pos, ok := x.match(o.media)
		if !ok || q == 0 {
			continue
		}
		if best >= 0 && (q < bestQ || (q == bestQ && (spec < bestSpec || (spec == bestSpec && pos >= bestPos)))) {
			continue
		}
		best, bestQ, bestSpec, bestPos, bestVersion = i, q, spec, pos, version
	}
	if best < 0 {
		detail := "cannot answer in " + strings.Join(x.acceptRaw, ", ") + "; this server renders " + MediaType +
			" (pyOCNI shape, or OCCI 1.2 with version=1.2), application/json, text/plain, text/occi and text/uri-list"
		if full {
			detail += "; text/uri-list only for lists of locations"
		}
		return 0, &Error{Status: http.StatusNotAcceptable, Field: "Accept", Detail: detail}
	}
	r := offers[best].r
	if r == renderPyOCNI {
		r = x.jsonShape(bestVersion)
	}
	return r, nil
}

// jsonShape applies the JSON shape rule: an Accept version decides; with
// none, OCCI 1.2 when the request asked or spoke it, pyOCNI otherwise.
func (x *exchange) jsonShape(version string) rendering {
	switch {
	case version == version12:
		return renderJSON12
	case version != "":
		return renderPyOCNI
	case x.want12:
		return renderJSON12
	}
	return renderPyOCNI
}

// readContentType sets the rendering of the request body. A request with
// no Content-Type is JSON, unless it has no body and carries OCCI headers,
// which makes it text/occi. Unknown types are refused only when there is a
// body to read.
func (x *exchange) readContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if !hasBody(r) && hasOCCIHeaders(r.Header) {
			x.in = renderHeaders
		}
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case MediaType, mediaJSON:
			x.in = renderPyOCNI
			if params["version"] == version12 {
				x.want12 = true
			}
			return nil
		case mediaText, "text/occi+plain":
			x.in = renderText
			return nil
		case mediaTextOCCI:
			x.in = renderHeaders
			return nil
		case mediaURIList:
			x.in = renderURIList
			return nil
		}
	}
	if !hasBody(r) {
		return nil
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Field: "Content-Type",
		Detail: "cannot read a body of type " + ct + "; send " + MediaType + ", application/json, text/plain, text/occi or text/uri-list"}
}

func hasOCCIHeaders(h http.Header) bool {
	for _, name := range []string{hdrCategory, hdrAttribute, hdrLocation} {
		if len(h.Values(name)) > 0 {
			return true
		}
	}
	return false
}

// splitList splits an HTTP list at the commas that are outside quoted
// strings, brackets and <URIs>, trimming members and dropping empty ones.
func splitList(s string) []string {
	var out []string
	depth, start := 0, 0
	inQuote, escaped, inAngle := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inQuote = false
			}
			continue
		case inAngle:
			if c == '>' {
				inAngle = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
		case '<':
			inAngle = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				if m := strings.TrimSpace(s[start:i]); m != "" {
					out = append(out, m)
				}
				start = i + 1
			}
		}
	}
	if m := strings.TrimSpace(s[start:]); m != "" {
		out = append(out, m)
	}
	return out
}
