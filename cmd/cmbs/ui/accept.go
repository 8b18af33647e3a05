package ui

import (
	"mime"
	"strconv"
	"strings"
)

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
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
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
			switch {
			case mt == "text/html" || mt == "application/xhtml+xml":
				html = max(html, q)
			case apiMedia[mt]:
				api = max(api, q)
			}
		}
	}
	return html > 0 && html >= api
}
