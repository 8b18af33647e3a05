package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// The dashboard's tests drive Debian's Chromium, headless, from Go.

var screenshotDir = flag.String("screenshots", "",
	"write the dashboard tests' screenshots to this folder as well (../../examples/screenshots refreshes the committed set)")

// browserWait bounds one wait for the page; every wait is for something
// the page shows within a second or two on an idle machine.
const browserWait = 30 * time.Second

// chromiumPath finds Chromium. Without it the browser tests skip, unless
// CI is set: there `make deps` installs it, so its absence is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not on PATH and CI is set: `make deps` installs Debian's chromium package, which the dashboard tests need")
	}
	t.Skip("Chromium is not on PATH: the dashboard's browser tests need Debian's chromium package (`make deps` installs it); with CI set this is a failure")
	return ""
}

// browser is one headless Chromium with one tab, for one test.
type browser struct {
	t   *testing.T
	tab context.Context

	mu      sync.Mutex
	console []string
	// prompts counts the authentication challenges the browser answered.
	prompts atomic.Int32
	shots   string
}

// credentials are what the browser answers an authentication prompt with.
type credentials struct{ user, password string }

// startBrowser starts Chromium with a fresh profile, on a closed network
// (no background traffic, no QUIC, no component updates), and records what
// the page writes to its console. With creds, it answers HTTP
// authentication prompts with them, as a person typing them would.
// Start it after the servers it visits, so it closes before they do.
func startBrowser(t *testing.T, creds *credentials) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-GB"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 760),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	b := &browser{t: t, tab: tab, shots: t.ArtifactDir()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
	})
	// The first action starts the browser; it gets no timeout, or the
	// timeout would end the browser with it.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	messages := chromedp.Console(tab)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	})
	if creds != nil {
		b.answerPrompts(&wg, *creds)
	}
	return b
}

// answerPrompts lets every request through and answers authentication
// challenges with creds.
func (b *browser) answerPrompts(wg *sync.WaitGroup, creds credentials) {
	paused := chromedp.Events(b.tab, fetch.RequestPaused)
	challenges := chromedp.Events(b.tab, fetch.AuthRequired)
	if _, err := chromedp.Call(b.tab, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true)}); err != nil {
		b.t.Fatalf("intercept authentication prompts: %v", err)
	}
	wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			// An error here is the tab closing at the end of the test.
			_, _ = chromedp.Call(b.tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	})
	wg.Go(func() {
		for ev, err := range challenges {
			if err != nil {
				return
			}
			b.prompts.Add(1)
			_, _ = chromedp.Call(b.tab, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: creds.user, Password: creds.password}})
		}
	})
}

// do runs actions, failing the test with what when one fails.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.page())
	}
}

// wait polls a JavaScript expression until it is true.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, browserWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(browserWait))); err != nil {
		b.t.Fatalf("%s: %s is not true: %v%s", what, expr, err, b.page())
	}
}

// evalJS evaluates a JavaScript expression, awaiting it when it is a promise.
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v%s", expr, err, b.page())
	}
	return v
}

// show opens a view by its address, as the navigation links do.
func (b *browser) show(hash, ready string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("window.location.hash = %q", hash)))
	b.wait("view "+hash, ready)
}

// set puts value in the form field with id, as choosing it would: the
// field's input and change events fire.
func (b *browser) set(id, value string) chromedp.Action[chromedp.Void] {
	js, err := json.Marshal([]string{id, value})
	if err != nil {
		b.t.Fatal(err)
	}
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`((id, v) => {
		const el = document.getElementById(id);
		el.value = v;
		el.dispatchEvent(new Event("input", { bubbles: true }));
		el.dispatchEvent(new Event("change", { bubbles: true }));
	})(...%s)`, js))
}

// page is what the page shows and logged, for failure messages.
func (b *browser) page() string {
	ctx, cancel := context.WithTimeout(b.tab, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		text = "(unreadable: " + err.Error() + ")"
	}
	if len(text) > 3000 {
		text = text[:3000] + "…"
	}
	return fmt.Sprintf("\npage text:\n%s\nconsole errors: %q", text, b.consoleErrors())
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// noConsoleErrors fails the test if the page logged an error or threw.
func (b *browser) noConsoleErrors() {
	b.t.Helper()
	if errs := b.consoleErrors(); len(errs) > 0 {
		b.t.Errorf("the page logged %d errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// shot saves a screenshot of the window as name.png in the test's output
// folder (kept with go test -artifacts) and in -screenshots when set.
func (b *browser) shot(name string) { b.screenshot(name, chromedp.CaptureScreenshot()) }

// shotPage is shot of the whole page, below the window's edge too.
func (b *browser) shotPage(name string) { b.screenshot(name, chromedp.FullScreenshot(100)) }

func (b *browser) screenshot(name string, capture chromedp.Action[[]byte]) {
	b.t.Helper()
	// Two frames, so what the last change scheduled is drawn.
	b.do("settle before "+name, chromedp.Evaluate[chromedp.Void](
		`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	ctx, cancel := context.WithTimeout(b.tab, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, capture)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range []string{b.shots, *screenshotDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}
