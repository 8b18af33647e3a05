package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The walk-throughs in README.md and examples/README.md are run as
// written. A fenced block whose info string is "console run=NAME" is
// runnable: its "$ " lines are commands (a trailing "\" continues one;
// "<<'EOF'" here-documents are part of it), the lines after each command
// until the next are the output it shows. The blocks of one NAME, in
// document order, are one session, run in one bash against fresh servers:
//
//   - "cmbs serve … &" is started by the test (on a fresh store, with
//     --strict), which waits until it serves;
//   - every port written 127.0.0.1:PORT, localhost:PORT or --http :PORT,
//     in the commands and in the example files they send, is replaced by a
//     free one, and put back in the output;
//   - shown output is compared line by line once trailing spaces and
//     column padding are evened out; "…" in a line stands for any text
//     and a line "..." for any lines. A command shown without output is
//     not compared.
//
// Commands run in a copy of examples/ with XDG_DATA_HOME in a temporary
// directory, so nothing is left behind.

// wtBlockRE opens a runnable block.
var wtBlockRE = regexp.MustCompile("^```console run=([A-Za-z0-9_-]+)\\s*$")

// wtPortRE finds the ports a walk-through names.
var wtPortRE = regexp.MustCompile(`(127\.0\.0\.1:|localhost:|--http :)(\d{4,5})\b`)

// wtStep is one command and the output shown for it.
type wtStep struct {
	file string
	line int
	cmd  string
	out  []string
}

// wtSessions reads the runnable blocks of a Markdown file by session.
func wtSessions(t *testing.T, path string) map[string][]wtStep {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[string][]wtStep{}
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		m := wtBlockRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		name := m[1]
		var cur *wtStep
		heredoc := ""
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			line := lines[i]
			switch {
			case heredoc != "":
				cur.cmd += "\n" + line
				if line == heredoc {
					heredoc = ""
				}
			case cur != nil && strings.HasSuffix(cur.cmd, "\\") && len(cur.out) == 0:
				cur.cmd += "\n" + line
			case strings.HasPrefix(line, "$ "):
				sessions[name] = append(sessions[name], wtStep{file: strings.TrimPrefix(path, "../../"), line: i + 1, cmd: line[2:]})
				cur = &sessions[name][len(sessions[name])-1]
			case cur == nil:
				t.Fatalf("%s:%d: a runnable block must start with a command", path, i+1)
			default:
				cur.out = append(cur.out, line)
			}
			if cur != nil && heredoc == "" && strings.HasPrefix(line, "$ ") {
				if _, rest, ok := strings.Cut(line, "<<'"); ok {
					heredoc, _, _ = strings.Cut(rest, "'")
				}
			}
		}
	}
	return sessions
}

// TestWalkthroughs runs every session of README.md and examples/README.md.
func TestWalkthroughs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cmbs processes")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("no bash to run the walk-throughs with")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("no curl to run the walk-throughs with")
	}
	bin := e2eBinary.get(t)
	found := 0
	for _, doc := range []string{"../../README.md", "../../examples/README.md"} {
		sessions := wtSessions(t, doc)
		names := make([]string, 0, len(sessions))
		for n := range sessions {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			found++
			steps := sessions[name]
			t.Run(strings.TrimPrefix(doc, "../../")+"/"+name, func(t *testing.T) {
				t.Parallel()
				wtRun(t, bash, bin, steps)
			})
		}
	}
	if found == 0 {
		t.Fatal("no runnable walk-through found")
	}
}

// wtEnv is one session: its ports, its directory and its servers.
type wtEnv struct {
	t     *testing.T
	bin   string
	dir   string
	ports map[string]string // port written → port used
	back  *strings.Replacer
	nodes []*e2eNode
}

// port maps a port written in the walk-through to a free one.
func (w *wtEnv) port(written string) string {
	if p, ok := w.ports[written]; ok {
		return p
	}
	p := strconv.Itoa(e2eFreePort(w.t))
	w.ports[written] = p
	return p
}

// substitute replaces the ports in s.
func (w *wtEnv) substitute(s string) string {
	return wtPortRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := wtPortRE.FindStringSubmatch(m)
		return sub[1] + w.port(sub[2])
	})
}

func wtRun(t *testing.T, bash, bin string, steps []wtStep) {
	w := &wtEnv{t: t, bin: bin, dir: t.TempDir(), ports: map[string]string{}}
	// Ports are picked for the whole session first, so the example files
	// and every command agree.
	for _, s := range steps {
		w.substitute(s.cmd)
	}
	files, err := filepath.Glob("../../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if info, err := os.Stat(f); err != nil || info.IsDir() {
			continue // the walk-throughs use the files, not the folders (screenshots)
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, filepath.Base(f)), []byte(w.substitute(string(raw))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var pairs []string
	for written, used := range w.ports {
		pairs = append(pairs, ":"+used, ":"+written)
	}
	w.back = strings.NewReplacer(pairs...)

	sh := w.shell(bash)
	for _, s := range steps {
		cmd := w.substitute(s.cmd)
		if args, ok := wtServe(cmd); ok {
			w.serve(args)
			continue
		}
		got := w.back.Replace(sh.run(cmd))
		if len(s.out) == 0 {
			continue
		}
		if diff := wtCompare(s.out, strings.Split(strings.TrimSuffix(got, "\n"), "\n")); diff != "" {
			t.Errorf("%s:%d: $ %s\n%s\n--- got\n%s", s.file, s.line, s.cmd, diff, got)
		}
	}
}

// wtServe recognises "cmbs serve ARGS &".
func wtServe(cmd string) ([]string, bool) {
	f := strings.Fields(cmd)
	if len(f) < 3 || f[0] != "cmbs" || f[1] != "serve" || f[len(f)-1] != "&" {
		return nil, false
	}
	return f[2 : len(f)-1], true
}

// serve starts "cmbs serve args" on a fresh store in strict mode.
func (w *wtEnv) serve(args []string) {
	w.t.Helper()
	httpAddr := "127.0.0.1:" + w.port("8090")
	var extra []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--http" && i+1 < len(args):
			httpAddr = args[i+1]
			i++
		case a == "--store" && i+1 < len(args):
			i++ // every server of the test gets a fresh store
		default:
			extra = append(extra, a)
		}
	}
	if strings.HasPrefix(httpAddr, ":") {
		httpAddr = "127.0.0.1" + httpAddr
	}
	n := e2eStartNode(w.t, w.bin, e2eNodeSpec{name: "cmbs serve " + strings.Join(args, " "), httpAddr: httpAddr, extra: extra})
	w.nodes = append(w.nodes, n)
}

// wtShell is one bash running the session's commands in turn.
type wtShell struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
	n   int
}

func (w *wtEnv) shell(bash string) *wtShell {
	w.t.Helper()
	binDir := filepath.Dir(w.bin)
	cmd := exec.Command(bash, "--norc", "--noprofile")
	cmd.Dir = w.dir
	cmd.Env = append(e2eServeEnv(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"XDG_DATA_HOME="+filepath.Join(w.dir, "xdg"), "HOME="+w.dir, "LC_ALL=C",
		// The client's default server is the walk-through's :8090 too.
		"CMBS_SERVER=http://127.0.0.1:"+w.port("8090"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = in.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = pw.Close()
	})
	return &wtShell{t: w.t, in: in, out: bufio.NewReader(pr)}
}

// run sends one command and returns what it printed, both streams.
func (s *wtShell) run(cmd string) string {
	s.t.Helper()
	s.n++
	marker := fmt.Sprintf("__wt_done_%d__", s.n)
	if _, err := fmt.Fprintf(s.in, "%s\necho; echo %s\n", cmd, marker); err != nil {
		s.t.Fatalf("$ %s: %v", cmd, err)
	}
	done := make(chan string, 1)
	go func() {
		var b strings.Builder
		for {
			line, err := s.out.ReadString('\n')
			if err != nil {
				done <- b.String() + "\n(bash ended: " + err.Error() + ")"
				return
			}
			if strings.TrimSpace(line) == marker {
				done <- b.String()
				return
			}
			b.WriteString(line)
		}
	}()
	select {
	case out := <-done:
		// The echo before the marker ends a last line without newline.
		return strings.TrimSuffix(strings.TrimSuffix(out, "\n"), "\n") + "\n"
	case <-time.After(60 * time.Second):
		s.t.Fatalf("$ %s: no end within 60s", cmd)
		return ""
	}
}

var wtSpacesRE = regexp.MustCompile(`\s{2,}`)

// wtCompare matches the output shown (want) with the output got, and
// describes the first difference.
func wtCompare(want, got []string) string {
	norm := func(s string) string { return wtSpacesRE.ReplaceAllString(strings.TrimRight(s, " \t\r"), "  ") }
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(want) {
			return j == len(got) || (j == len(got)-1 && strings.TrimSpace(got[j]) == "")
		}
		if strings.TrimSpace(want[i]) == "..." {
			for k := j; k <= len(got); k++ {
				if match(i+1, k) {
					return true
				}
			}
			return false
		}
		return j < len(got) && wtLineMatch(norm(want[i]), norm(got[j])) && match(i+1, j+1)
	}
	if match(0, 0) {
		return ""
	}
	return "--- want\n" + strings.Join(want, "\n")
}

// wtLineMatch matches one line, "…" standing for any text.
func wtLineMatch(want, got string) bool {
	parts := strings.Split(want, "…")
	if len(parts) == 1 {
		return want == got
	}
	var re bytes.Buffer
	re.WriteString("^")
	for i, p := range parts {
		if i > 0 {
			re.WriteString(".*")
		}
		re.WriteString(regexp.QuoteMeta(p))
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(got)
}
