package occi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/occi/occitest"
)

// BenchmarkResource measures resource create and get through the HTTP
// interface next to the bare store doing the same writes and reads, on both
// backends, so the ratio shows what the OCCI layer costs.
func BenchmarkResource(b *testing.B) {
	for _, be := range occitest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			st := be.Open(b)
			e := newEnv(b, st, occi.Options{})
			e.MustRequest(http.StatusCreated, "POST", "/-/", example(b, "post_categories.json"))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			ctx := context.Background()
			// Benchmarks rerun with growing b.N; ids keep counting across runs.
			var nStore, nHTTP int
			// The gets read one resource created through each path.
			if err := occi.PutEntity(ctx, st, &occi.Entity{Type: occi.TypeResource, ID: "target", Location: "/bench-store/target", Kind: computeK}); err != nil {
				b.Fatal(err)
			}
			e.MustRequest(http.StatusCreated, "POST", "/compute/", `{"resources":[{"id":"target"}]}`)

			b.Run("create/store", func(b *testing.B) {
				for range b.N {
					nStore++
					i := nStore
					ent := &occi.Entity{Type: occi.TypeResource, ID: fmt.Sprintf("s%d", i), Location: fmt.Sprintf("/bench-store/s%d", i),
						Kind: computeK, Attributes: map[string]any{"occi": map[string]any{"compute": map[string]any{"cores": 2.0}}}}
					if err := occi.PutEntity(ctx, st, ent); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run("create/http", func(b *testing.B) {
				for range b.N {
					nHTTP++
					i := nHTTP
					body := fmt.Sprintf(`{"resources":[{"id":"h%d","attributes":{"occi":{"compute":{"cores":2}}}}]}`, i)
					send(b, client, "POST", e.URL+"/compute/", body, http.StatusCreated)
				}
				report(b)
			})
			b.Run("get/store", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := st.Get(ctx, "/bench-store/target"); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run("get/http", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					send(b, client, "GET", e.URL+"/compute/target", "", http.StatusOK)
				}
				report(b)
			})
		})
	}
}

func report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func send(b *testing.B, c *http.Client, method, url, body string, want int) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", occi.MediaType)
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	cmbstest.NoError(b, res.Body.Close)
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d", method, url, res.StatusCode)
	}
}
