package collector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Generous: the library batches with up to batch.timeout of delay, and CI
// machines are small.
const (
	readyTimeout = 60 * time.Second
	spanTimeout  = 30 * time.Second
	exitTimeout  = 30 * time.Second
	pollEvery    = 100 * time.Millisecond
)

var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}()

func collectorBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_EBPF_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot, "dist", "otelcol-ebpf")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("collector binary %s: %v (run `make dist` first)", bin, err)
	}
	return bin
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the end-to-end tests load eBPF probes: run them as root")
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening polls until something accepts on 127.0.0.1:port.
func waitListening(t *testing.T, port int, what string) {
	t.Helper()
	ok := eventually(readyTimeout, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	require.True(t, ok, "%s never listened on port %d", what, port)
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a child process in its own process group, killed at cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // valid once done is closed
}

func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "starting %s", name)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for the process to exit.
func (p *proc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(exitTimeout):
		t.Fatalf("%s did not exit within %v of %v", p.name, exitTimeout, sig)
		return nil
	}
}

// collector is a running otelcol-ebpf.
type collector struct {
	*proc
	output string // the file exporter's JSON lines
}

const collectorConfig = `
receivers:
  ebpf:
    batch:
      timeout: 200ms
exporters:
  file:
    path: %s
    flush_interval: 100ms
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
  # Two pipelines name the same receiver: they must share one instance.
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [file]
    metrics:
      receivers: [ebpf]
      exporters: [debug]
`

// startCollector runs otelcol-ebpf with a file exporter and waits until it is
// ready (probes attached).
func startCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "traces.json")
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, collectorConfig, out), 0o600))
	p := startProc(t, "otelcol-ebpf", exec.Command(collectorBin(t), "--config", cfg))
	ready := eventually(readyTimeout, func() bool {
		return p.exited() || strings.Contains(p.out.String(), "Everything is ready")
	})
	require.True(t, ready && !p.exited(), "collector did not become ready:\n%s", p.out.String())
	return &collector{proc: p, output: out}
}

// runCollectorExpectFailure runs otelcol-ebpf with the given configuration,
// expects it to exit non-zero by itself, and returns its output.
func runCollectorExpectFailure(t *testing.T, config string, wrap ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // readable by an unprivileged user too
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o644))
	args := append(append([]string{}, wrap...), collectorBin(t), "--config", cfg)
	p := startProc(t, "otelcol-ebpf", exec.Command(args[0], args[1:]...))
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		t.Fatalf("collector kept running with a bad setup:\n%s", p.out.String())
	}
	var exitErr *exec.ExitError
	require.True(t, errors.As(p.err, &exitErr), "collector should exit non-zero, got %v:\n%s", p.err, p.out.String())
	require.NotEqual(t, 0, exitErr.ExitCode())
	return p.out.String()
}

// span is one exported span with its resource.
type span struct {
	resource pcommon.Map
	span     ptrace.Span
}

func (s span) serviceName() string {
	v, _ := s.resource.Get("service.name")
	return v.AsString()
}

func (s span) attr(key string) string {
	v, ok := s.span.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (s span) duration() time.Duration {
	return s.span.EndTimestamp().AsTime().Sub(s.span.StartTimestamp().AsTime())
}

func (s span) String() string {
	return fmt.Sprintf("%s %s service.name=%s %v (%v)", s.span.Kind(), s.span.Name(), s.serviceName(), s.span.Attributes().AsRaw(), s.duration())
}

// eachExportLine calls fn with every complete line of a file exporter's
// output (one OTLP JSON export request per line); a last line still being
// written is skipped, a missing file has none.
func eachExportLine(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 || !json.Valid(line) {
			continue // empty, or partially written
		}
		fn(line)
	}
	require.NoError(t, sc.Err())
}

// readSpans parses the file exporter's trace output.
func readSpans(t *testing.T, path string) []span {
	t.Helper()
	var spans []span
	var u ptrace.JSONUnmarshaler
	eachExportLine(t, path, func(line []byte) {
		td, err := u.UnmarshalTraces(line)
		require.NoError(t, err, "file exporter line: %s", line)
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					spans = append(spans, span{resource: rs.Resource().Attributes(), span: ss.At(k)})
				}
			}
		}
	})
	return spans
}

// port is the server port a span is about: server.port, which both the
// server side and the client side carry, else the peer port of a client.
func port(s span) int {
	if p := s.attr("server.port"); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if s.span.Kind() == ptrace.SpanKindClient {
		n, _ := strconv.Atoi(s.attr("network.peer.port"))
		return n
	}
	return 0
}

// spansOf returns the spans of the given kind about the server on port.
func spansOf(spans []span, kind ptrace.SpanKind, p int) []span {
	var out []span
	for _, s := range spans {
		if s.span.Kind() == kind && port(s) == p {
			out = append(out, s)
		}
	}
	return out
}

// curl runs curl once against the given URLs (one connection, kept alive
// across them) and returns the status codes it saw.
func curl(t *testing.T, urls ...string) []string {
	t.Helper()
	args := []string{"-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}\\n"}
	for i, u := range urls {
		if i > 0 {
			args = append(args, "-o", "/dev/null")
		}
		args = append(args, u)
	}
	out, err := exec.Command("curl", args...).CombinedOutput()
	require.NoError(t, err, "curl %v: %s", urls, out)
	return strings.Fields(string(out))
}

// bpfObjectIDs lists the BPF programs and links that process pid holds, from
// /proc/pid/fdinfo (bpftool here cannot say which process owns what).
func bpfObjectIDs(t *testing.T, pid int) (progs, links map[int]bool) {
	t.Helper()
	progs, links = map[int]bool{}, map[int]bool{}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		var isLink bool
		var progID, linkID int
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			switch strings.TrimSpace(k) {
			case "link_type":
				isLink = true
			case "link_id":
				linkID = n
			case "prog_id":
				progID = n
			}
		}
		switch {
		case isLink && linkID != 0:
			links[linkID] = true
		case progID != 0:
			progs[progID] = true
		}
	}
	return progs, links
}

type bpfProg struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type bpfLink struct {
	ID     int `json:"id"`
	ProgID int `json:"prog_id"`
}

// bpftoolList runs `bpftool -j <what> show` and decodes its JSON.
func bpftoolList(t *testing.T, what string, v any) {
	t.Helper()
	out, err := exec.Command("bpftool", "-j", what, "show").Output()
	require.NoError(t, err, "bpftool %s show", what)
	if len(bytes.TrimSpace(out)) == 0 {
		out = []byte("[]")
	}
	require.NoError(t, json.Unmarshal(out, v), "bpftool %s show: %s", what, out)
}
