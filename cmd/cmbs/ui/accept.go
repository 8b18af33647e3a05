package ui

import "github.com/houssem/cmbs/occi"

// apiMedia are the media types the OCCI interface answers in; a request
// preferring one of them to HTML wants the API, not the page.
var apiMedia = map[string]bool{
	"application/occi+json": true,
	"application/json":      true,
	"text/plain":            true,
	"text/occi":             true,
	"text/uri-list":         true,
}

// WantsHTML reports whether Accept headers name text/html (or XHTML)
// explicitly, with a quality above zero and at least that of any media
// type the OCCI interface answers in. Wildcards do not count: curl's */*
// and a missing Accept keep getting the API's JSON.
func WantsHTML(accept []string) bool {
	html, api := 0.0, 0.0
	for _, r := range occi.ParseAccept(accept) {
		switch mt := r.Type + "/" + r.Subtype; {
		case mt == "text/html" || mt == "application/xhtml+xml":
			html = max(html, r.Quality)
		case apiMedia[mt]:
			api = max(api, r.Quality)
		}
	}
	return html > 0 && html >= api
}
