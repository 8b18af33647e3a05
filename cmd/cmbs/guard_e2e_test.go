package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/houssem/cmbs/config/cmbstest"
	"github.com/houssem/cmbs/store/couch/couchtest"
)

// The tests here run the real cmbs binary (see e2eBinary) for what only a
// separate process shows: its peak memory while large collections are
// read, and what a store holds after the process is killed mid-request.

// guardProc is one cmbs serve process on a given store.
type guardProc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	url  string
}

// guardServe runs `cmbs serve` on store with extra flags and waits until it
// serves. Cleanup kills it.
func guardServe(t *testing.T, store string, flags ...string) *guardProc {
	t.Helper()
	args := append([]string{"serve", "--http", "127.0.0.1:0", "--store", store, "--log-format", "json"}, flags...)
	p := &guardProc{cmd: exec.Command(e2eBinary.get(t), args...), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = e2eServeEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("server log, last lines:\n%s", e2eTail(p.log.String(), 40))
		}
	})
	cmbstest.EventuallyWithin(t, 60*time.Second, "cmbs serves", func() bool {
		select {
		case <-p.done:
			t.Fatalf("cmbs exited before serving:\n%s", p.log)
		default:
		}
		addr := e2eServingAddr(p.log.String())
		p.url = "http://" + addr
		return addr != ""
	})
	return p
}

// kill ends the process at once, as a power cut or the OOM killer would.
func (p *guardProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// peakRSS is the process's peak resident memory (VmHWM), in bytes: the
// most it ever held, whenever that was.
func (p *guardProc) peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read the server's memory: %v", err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/PID/status:\n%s", data)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// request sends a request and returns the status, headers and body.
func (p *guardProc) request(method, path, accept, body string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/occi+json")
	}
	req.Header.Set("Accept", accept)
	res, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	raw, err := io.ReadAll(res.Body)
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	return res.StatusCode, res.Header, raw, err
}

func (p *guardProc) must(t *testing.T, want int, method, path, body string) []byte {
	t.Helper()
	code, _, raw, err := p.request(method, path, "application/occi+json", body)
	if err != nil || code != want {
		t.Fatalf("%s %s: %d, %v, want %d: %.300s", method, path, code, err, want, raw)
	}
	return raw
}

var guardNext = regexp.MustCompile(`<([^>]+)>; rel="next"`)

// readAll reads the collection at path page by page in the rendering
// accept and returns the entity ids each page listed, in order.
func (p *guardProc) readAll(path, accept string) ([]string, int, error) {
	var ids []string
	pages := 0
	for next := path; next != ""; pages++ {
		code, h, raw, err := p.request("GET", next, accept, "")
		if err != nil || code != http.StatusOK {
			return nil, pages, fmt.Errorf("GET %s (%s): %d: %.300s: %w", next, accept, code, raw, err)
		}
		got, err := guardEntries(accept, h, raw)
		if err != nil {
			return nil, pages, fmt.Errorf("GET %s (%s): %w", next, accept, err)
		}
		ids = append(ids, got...)
		next = ""
		if m := guardNext.FindStringSubmatch(h.Get("Link")); m != nil {
			u, err := url.Parse(m[1])
			if err != nil {
				return nil, pages, err
			}
			next = u.RequestURI()
		}
	}
	return ids, pages, nil
}

// guardEntries reads the ids of one page in rendering accept.
func guardEntries(accept string, h http.Header, raw []byte) ([]string, error) {
	var locs []string
	switch accept {
	case "application/occi+json":
		var doc struct {
			L []string `json:"X-OCCI-Location"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		locs = doc.L
	case "application/occi+json; version=1.2":
		var doc struct {
			Resources []struct {
				ID string `json:"id"`
			} `json:"resources"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		for _, r := range doc.Resources {
			locs = append(locs, r.ID)
		}
	case "text/occi":
		locs = h.Values("X-OCCI-Location")
	default:
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if l := strings.TrimPrefix(sc.Text(), "X-OCCI-Location: "); l != "" {
				locs = append(locs, l)
			}
		}
	}
	for i, l := range locs {
		locs[i] = l[strings.LastIndexByte(l, '/')+1:]
	}
	return locs, nil
}

const guardKinds = `{"kinds":[{"term":"item","scheme":"http://example.com/guard#","location":"/item/",
	"related":["http://schemas.ogf.org/occi/core#resource"],
	"attributes":{"guard":{"batch":{"type":"string","mutable":true,"required":false}}}}]}`

// TestPagingLargeCollection reads 20,000 resources page by page in every
// rendering, each once, then four times at once in OCCI 1.2 JSON (the
// largest rendering, every entity in full). The server's memory is the
// peak resident memory of its process (VmHWM), so whatever moment was the
// worst, creating or reading, counts; the target is 200 MB.
func TestPagingLargeCollection(t *testing.T) {
	if testing.Short() {
		t.Skip("an end-to-end test: runs without -short")
	}
	const n, batch = 20000, 500
	p := guardServe(t, "file:"+filepath.Join(t.TempDir(), "store"))
	p.must(t, http.StatusCreated, "POST", "/-/", guardKinds)
	start := time.Now()
	for b := 0; b < n/batch; b++ {
		var res []string
		for i := range batch {
			res = append(res, fmt.Sprintf(`{"id":"r%05d","title":"resource %d","attributes":{"guard":{"batch":"b%d"}}}`, b*batch+i, b*batch+i, b))
		}
		p.must(t, http.StatusCreated, "POST", "/item/", `{"resources":[`+strings.Join(res, ",")+`]}`)
	}
	t.Logf("created %d resources in %v", n, time.Since(start).Round(time.Millisecond))
	check := func(accept string, ids []string) error {
		if len(ids) != n {
			return fmt.Errorf("%s: read %d entries, want %d", accept, len(ids), n)
		}
		for i, id := range ids {
			if want := fmt.Sprintf("r%05d", i); id != want {
				return fmt.Errorf("%s: entry %d is %s, want %s", accept, i, id, want)
			}
		}
		return nil
	}
	for _, accept := range []string{"application/occi+json", "application/occi+json; version=1.2", "text/plain", "text/occi", "text/uri-list"} {
		start := time.Now()
		ids, pages, err := p.readAll("/item/", accept)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(accept, ids); err != nil {
			t.Error(err)
		}
		t.Logf("%s: %d pages in %v", accept, pages, time.Since(start).Round(time.Millisecond))
	}
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, _, err := p.readAll("/item/", "application/occi+json; version=1.2")
			if err == nil {
				err = check("parallel", ids)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	peak := p.peakRSS(t)
	t.Logf("four parallel full reads in %v; peak server memory %d MB", time.Since(start).Round(time.Millisecond), peak>>20)
	if peak > 200<<20 {
		t.Errorf("peak server memory %d MB, want under 200 MB", peak>>20)
	}
}

// TestKillDuringBatches kills the server (SIGKILL) while clients create
// resources 40 at a time, three times on each store, and checks after
// each restart that every batch is whole or absent, and that every batch
// the server acknowledged is whole.
func TestKillDuringBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("an end-to-end test: runs without -short")
	}
	stores := map[string]func(t *testing.T) string{
		"bolt":  func(t *testing.T) string { return "file:" + filepath.Join(t.TempDir(), "store") },
		"couch": func(t *testing.T) string { return couchtest.Start(t) + "/cmbs" },
	}
	for _, name := range []string{"bolt", "couch"} {
		t.Run(name, func(t *testing.T) {
			store := stores[name](t)
			acked := map[string]bool{}
			for round := range 3 {
				p := guardServe(t, store)
				if round == 0 {
					p.must(t, http.StatusCreated, "POST", "/-/", guardKinds)
				} else {
					guardCheckBatches(t, p, acked)
				}
				guardKillMidBatch(t, p, round, acked)
			}
			guardCheckBatches(t, guardServe(t, store), acked)
		})
	}
}

const guardBatchSize = 40

// guardKillMidBatch has three clients post batches until the server is
// killed, at a random moment once a few batches are in, and records the
// batches acknowledged with 201.
func guardKillMidBatch(t *testing.T, p *guardProc, round int, acked map[string]bool) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sent := 0
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-c%d-b%03d", round, c, i)
				var res []string
				for j := range guardBatchSize {
					res = append(res, fmt.Sprintf(`{"id":"%s-%02d","attributes":{"guard":{"batch":"%s"}}}`, id, j, id))
				}
				code, _, _, err := p.request("POST", "/item/", "application/occi+json", `{"resources":[`+strings.Join(res, ",")+`]}`)
				mu.Lock()
				if err == nil && code == http.StatusCreated {
					acked[id] = true
				}
				sent++
				mu.Unlock()
				if err != nil {
					return // killed
				}
			}
		}()
	}
	cmbstest.EventuallyWithin(t, 60*time.Second, "a few batches", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return sent >= 6
	})
	time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
	p.kill()
	close(stop)
	wg.Wait()
}

// guardCheckBatches reads every resource and fails the test for a batch
// stored in part, or acknowledged and not stored whole.
func guardCheckBatches(t *testing.T, p *guardProc, acked map[string]bool) {
	t.Helper()
	ids, _, err := p.readAll("/item/?limit=1000", "application/occi+json")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, id := range ids {
		count[id[:strings.LastIndexByte(id, '-')]]++
	}
	partial := 0
	for b, c := range count {
		if c != guardBatchSize {
			t.Errorf("batch %s has %d of its %d resources", b, c, guardBatchSize)
			partial++
		}
	}
	for b := range acked {
		if count[b] != guardBatchSize {
			t.Errorf("batch %s was acknowledged but holds %d resources", b, count[b])
		}
	}
	t.Logf("%d batches stored whole, %d acknowledged, %d partial", len(count)-partial, len(acked), partial)
}
