package occi_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
	"github.com/houssem/cmbs/store"
)

var update = flag.Bool("update", false, "rewrite the golden responses under testdata/golden from the embedded store")

// goldenURL is the public URL of the golden servers, so absolute URLs in
// answers do not depend on the test's port.
const goldenURL = "http://cmbs.test"

// TestGoldenRenderings replays, per rendering, the requests of
// testdata/golden/<rendering>/NN-name.http in order against a fresh server
// with the infrastructure model, and compares each answer with
// NN-name.golden. Every rendering's scenario runs on both stores, which must
// answer alike. go test -run TestGoldenRenderings -update rewrites the
// answers.
func TestGoldenRenderings(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden scenarios: %v", err)
	}
	for _, dir := range dirs {
		steps, err := filepath.Glob(filepath.Join(dir, "*.http"))
		if err != nil || len(steps) == 0 {
			t.Fatalf("%s: no requests", dir)
		}
		sort.Strings(steps)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if *update {
				e := newEnv(t, occitest.OpenBolt(t), occi.Options{WithInfrastructure: true, PublicURL: goldenURL})
				for _, step := range steps {
					got := e.replay(step)
					if err := os.WriteFile(strings.TrimSuffix(step, ".http")+".golden", []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			forEachStore(t, func(t *testing.T, st store.Store) {
				e := newEnv(t, st, occi.Options{WithInfrastructure: true, PublicURL: goldenURL})
				for _, step := range steps {
					got := e.replay(step)
					want, err := os.ReadFile(strings.TrimSuffix(step, ".http") + ".golden")
					if err != nil {
						t.Fatalf("%s: %v (run with -update to create it)", step, err)
					}
					if got != string(want) {
						t.Errorf("%s: answer differs from the golden file\n--- got\n%s\n--- want\n%s", step, got, want)
					}
				}
			})
		})
	}
}

// replay sends the request in file: "METHOD PATH", header lines, a blank
// line and the body, after any leading "#" comment lines.
func (e *env) replay(file string) string {
	e.T.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		e.T.Fatal(err)
	}
	head, body, _ := strings.Cut(string(data), "\n\n")
	sc := bufio.NewScanner(strings.NewReader(head))
	var reqLine string
	hdr := http.Header{}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case reqLine == "":
			reqLine = line
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				e.T.Fatalf("%s: header line %q", file, line)
			}
			// Keep the file's spelling of the name, as a client would send it.
			hdr[strings.TrimSpace(name)] = append(hdr[strings.TrimSpace(name)], strings.TrimSpace(value))
		}
	}
	method, path, ok := strings.Cut(reqLine, " ")
	if !ok {
		e.T.Fatalf("%s: request line %q", file, reqLine)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	req.Header = hdr
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("%s: %v", file, err)
	}
	defer cmbstest.NoError(e.T, res.Body.Close)
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	return formatResponse(res, raw)
}

// formatResponse writes the status line, the headers but Date and
// Content-Length sorted by name, a blank line and the body.
func formatResponse(res *http.Response, body []byte) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", res.Proto, res.Status)
	names := make([]string, 0, len(res.Header))
	for name := range res.Header {
		if name != "Date" && name != "Content-Length" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range res.Header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return b.String()
}
