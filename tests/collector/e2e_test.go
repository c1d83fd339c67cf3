package collector

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// server is one HTTP server under test and what it was asked.
type server struct {
	name        string // what service.name must be (a prefix for python)
	namePrefix  bool
	port        int
	paths       []string // url.path of every request, in order
	statuses    []string // the status code curl saw for each
	minDuration time.Duration
	maxDuration time.Duration
}

func (s *server) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path) }

// get makes the requests with one curl process (one kept-alive connection).
func (s *server) get(t *testing.T, paths ...string) {
	t.Helper()
	urls := make([]string, len(paths))
	for i, p := range paths {
		urls[i] = s.url(p)
	}
	codes := curl(t, urls...)
	require.Len(t, codes, len(paths))
	s.paths = append(s.paths, paths...)
	s.statuses = append(s.statuses, codes...)
}

func startDemoServer(t *testing.T) *server {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo-server")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(repoRoot, "examples", "demo-server")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the demo server: %s", out)
	s := &server{name: "demo-server", port: freePort(t), minDuration: 100 * time.Millisecond, maxDuration: 150 * time.Millisecond}
	startProc(t, "demo-server", exec.Command(bin, "-addr", fmt.Sprintf("127.0.0.1:%d", s.port)))
	waitListening(t, s.port, "demo-server")
	return s
}

func startPythonServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hello</h1>\n"), 0o644))
	s := &server{name: "python", namePrefix: true, port: freePort(t)}
	cmd := exec.Command("python3", "-m", "http.server", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--directory", dir)
	startProc(t, "python3 -m http.server", cmd)
	waitListening(t, s.port, "python3 -m http.server")
	return s
}

const nginxConfig = `
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d;
        location / { return 200 "Hello from nginx!\n"; }
        location = /fail { return 500; }
    }
}
`

func startNginx(t *testing.T) *server {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatalf("nginx is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	s := &server{name: "nginx", port: freePort(t)}
	conf := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, nginxConfig, dir, s.port), 0o644))
	startProc(t, "nginx", exec.Command("nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"))
	waitListening(t, s.port, "nginx")
	return s
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

func statusesOf(spans []span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.attr("http.response.status_code")
	}
	return out
}

func pathsOf(spans []span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.attr("url.path")
	}
	return out
}

// describe lists spans or metric points, one indented line each, for failure messages.
func describe[T fmt.Stringer](items []T) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("\n  ")
		b.WriteString(it.String())
	}
	return b.String()
}

// TestEndToEnd runs the collector against three real servers driven by curl,
// then stops it with SIGTERM and checks every exported span and that no probe
// is left behind.
func TestEndToEnd(t *testing.T) {
	requireRoot(t)
	// The servers start first, as on a real host: the collector must also
	// see processes that were running before it.
	demo := startDemoServer(t)
	py := startPythonServer(t)
	ngx := startNginx(t)
	servers := []*server{demo, py, ngx}

	col := startCollector(t)

	// Our probes, by the collector's own file descriptors.
	progs, links := bpfObjectIDs(t, col.cmd.Process.Pid)
	var loaded []bpfProg
	bpftoolList(t, "prog", &loaded)
	var ours []string
	for _, p := range loaded {
		if progs[p.ID] {
			ours = append(ours, p.Name)
		}
	}
	require.NotEmpty(t, ours, "the collector holds no BPF program")
	seen := map[string]bool{}
	for _, name := range ours {
		assert.True(t, strings.HasPrefix(name, "oe_"), "unexpected program %q", name)
		assert.False(t, seen[name], "program %q loaded twice: the pipelines do not share one instance", name)
		seen[name] = true
	}
	t.Logf("collector holds %d BPF programs (%s) and %d links", len(ours), strings.Join(ours, " "), len(links))
	// The default configuration, on a kernel with the socket-layer
	// tracepoints: no syscall tracepoint is attached (every syscall of the
	// host keeps its fast path); process lifecycle stays on sched:*.
	tracepoints := linkTracepoints(t, links)
	assert.Contains(t, tracepoints, "sched_process_exit", "links: %v", tracepoints)
	if kernelHasSocketLayerTracepoints() {
		assert.Contains(t, tracepoints, "sock_send_length", "links: %v", tracepoints)
		for _, tp := range tracepoints {
			assert.False(t, isSyscallTracepoint(tp), "syscall tracepoint %s attached; links: %v", tp, tracepoints)
		}
	} else {
		assert.Contains(t, tracepoints, "sys_exit_read", "an older kernel falls back to the syscall path: %v", tracepoints)
	}

	demo.get(t, "/hello/1", "/hello/2", "/hello/3") // one connection, kept alive
	demo.get(t, "/status/404")
	demo.get(t, "/status/500")
	py.get(t, "/index.html")
	py.get(t, "/index.html")
	py.get(t, "/missing")
	ngx.get(t, "/", "/") // one connection, kept alive
	ngx.get(t, "/fail")

	require.Equal(t, []string{"200", "200", "200", "404", "500"}, demo.statuses)
	require.Equal(t, []string{"200", "200", "404"}, py.statuses)
	require.Equal(t, []string{"200", "200", "500"}, ngx.statuses)

	// Wait until every span arrived, then stop the collector: its shutdown
	// flushes whatever else is pending, so the counts below are final.
	complete := func() bool {
		spans := readSpans(t, col.output)
		for _, s := range servers {
			if len(spansOf(spans, ptrace.SpanKindServer, s.port)) < len(s.paths) ||
				len(spansOf(spans, ptrace.SpanKindClient, s.port)) < len(s.paths) {
				return false
			}
		}
		return true
	}
	if !eventually(spanTimeout, complete) {
		t.Errorf("not every span arrived within %v; so far:%s", spanTimeout, describe(readSpans(t, col.output)))
	}

	start := time.Now()
	require.NoError(t, col.stop(t, syscall.SIGTERM), "the collector must exit 0 on SIGTERM:\n%s", col.out.String())
	t.Logf("collector stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	assert.Contains(t, col.out.String(), "eBPF probes detached")

	t.Run("no probe left behind", func(t *testing.T) {
		var progsLeft []bpfProg
		var linksLeft []bpfLink
		gone := eventually(10*time.Second, func() bool {
			bpftoolList(t, "prog", &progsLeft)
			bpftoolList(t, "link", &linksLeft)
			for _, p := range progsLeft {
				if progs[p.ID] {
					return false
				}
			}
			for _, l := range linksLeft {
				if links[l.ID] || progs[l.ProgID] {
					return false
				}
			}
			return true
		})
		assert.True(t, gone, "BPF programs or links of the collector remain: progs %v links %v", progsLeft, linksLeft)
	})

	spans := readSpans(t, col.output)
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			srv := spansOf(spans, ptrace.SpanKindServer, s.port)
			cli := spansOf(spans, ptrace.SpanKindClient, s.port)
			t.Logf("server spans:%s\nclient spans:%s", describe(srv), describe(cli))

			t.Run("server spans", func(t *testing.T) {
				require.Len(t, srv, len(s.paths), "one SERVER span per request")
				assert.Equal(t, sorted(s.paths), sorted(pathsOf(srv)), "url.path")
				assert.Equal(t, sorted(s.statuses), sorted(statusesOf(srv)), "http.response.status_code")
				for _, sp := range srv {
					// Server spans are named by their route (here the ID heuristic's).
					assert.Equal(t, "GET "+sp.attr("http.route"), sp.span.Name())
					assert.NotContains(t, sp.attr("http.route"), "?", "no query in routes")
					assert.Equal(t, "GET", sp.attr("http.request.method"))
					if s.namePrefix {
						assert.True(t, strings.HasPrefix(sp.serviceName(), s.name), "service.name %q", sp.serviceName())
					} else {
						assert.Equal(t, s.name, sp.serviceName(), "service.name")
					}
					assert.False(t, sp.span.TraceID().IsEmpty(), "trace id")
					assert.False(t, sp.span.SpanID().IsEmpty(), "span id")
					if sp.attr("http.response.status_code") == "500" {
						assert.Equal(t, ptrace.StatusCodeError, sp.span.Status().Code(), "a 500 is a server error")
					} else {
						assert.NotEqual(t, ptrace.StatusCodeError, sp.span.Status().Code(), "only 5xx are server errors")
					}
					if s.minDuration > 0 {
						d := sp.duration()
						assert.True(t, d >= s.minDuration && d <= s.maxDuration,
							"%s took %v, want within [%v, %v]", sp.attr("url.path"), d, s.minDuration, s.maxDuration)
					}
				}
			})

			t.Run("client spans", func(t *testing.T) {
				require.Len(t, cli, len(s.paths), "one CLIENT span per request")
				assert.Equal(t, sorted(s.paths), sorted(pathsOf(cli)), "url.path")
				assert.Equal(t, sorted(s.statuses), sorted(statusesOf(cli)), "http.response.status_code")
				for _, sp := range cli {
					assert.Equal(t, "GET", sp.span.Name())
					assert.Equal(t, "curl", sp.serviceName(), "service.name")
					if s.minDuration > 0 {
						assert.GreaterOrEqual(t, sp.duration(), s.minDuration, "the client waits for the server")
					}
				}
			})
		})
	}
}

// An unknown key under ebpf: stops the collector before anything loads, with
// a message naming the key.
func TestUnknownConfigKey(t *testing.T) {
	out := runCollectorExpectFailure(t, `
receivers:
  ebpf:
    capture_size: 512
    bogus_key: 1
exporters:
  debug: {}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [ebpf], exporters: [debug]}
`)
	assert.Contains(t, out, "bogus_key")
}

// The library's validation, run by the receiver's Validate, names every
// key with its problem, under the collector's names.
func TestInvalidConfigValue(t *testing.T) {
	out := runCollectorExpectFailure(t, `
receivers:
  ebpf:
    capture_size: 0
    ring_buffer_size: 5000
    idle_timeout: 500ms
exporters:
  debug: {}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [ebpf], exporters: [debug]}
`)
	assert.Contains(t, out, "capture_size: must be between 1 bytes and 4096 bytes, not 0 bytes")
	assert.Contains(t, out, "ring_buffer_size: must be a power of two, not 5000")
	assert.Contains(t, out, "idle_timeout: must be between 1000 ms and 86400000 ms, not 500 ms")
}

// Without privileges the probes cannot load: the collector exits non-zero
// with the library's explanation.
func TestStartFailsWithoutPrivileges(t *testing.T) {
	requireRoot(t) // to drop to nobody
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	out := runCollectorExpectFailure(t, `
receivers:
  ebpf: {}
exporters:
  debug: {}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [ebpf], exporters: [debug]}
`, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all")
	assert.Contains(t, out, "starting the eBPF probes")
	t.Logf("collector output:\n%s", out)
}
