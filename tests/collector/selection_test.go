package collector

// Process selection, end to end: which processes the real collector traces
// under selection.include / selection.exclude, across fork and exec.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Spans to {{dir}}/traces.json and metrics (every second) to
// {{dir}}/metrics.json; %s is the selection block, indented by 6 spaces.
const selectionConfig = `
receivers:
  ebpf:
    batch:
      timeout: 200ms
    metrics:
      interval: 1s
    selection:
%s
` + filePipelines

const serverDurationMetric = "http.server.request.duration"

// TestSelectionExclude: a server excluded by pid (running before the
// collector) and one excluded by executable path (started after it) produce
// neither spans nor metrics, while a third server in the same run does; curl,
// not excluded, is traced talking to all three.
func TestSelectionExclude(t *testing.T) {
	requireRoot(t)
	bins := demoServerBins(t, "demo-server", "excluded-server")
	byPID := startDemo(t, "demo-server excluded by pid", bins["demo-server"], []string{"OTEL_SERVICE_NAME=by-pid"})

	col, dir := startCollectorWithConfig(t, fmt.Sprintf(selectionConfig, fmt.Sprintf(`
      exclude:
        pids: [%d]
        exe_paths: ["*/excluded-server"]`, byPID.pid())))

	byExe := startDemo(t, "excluded-server", bins["excluded-server"], []string{"OTEL_SERVICE_NAME=by-exe"})
	kept := startDemo(t, "demo-server kept", bins["demo-server"], []string{"OTEL_SERVICE_NAME=kept"})
	servers := []*httpServer{byPID, byExe, kept}
	for _, s := range servers {
		s.get(t, "200", "/orders/1", "/orders/2")
	}

	metricsPath := filepath.Join(dir, "metrics.json")
	done := func() bool {
		spans := readSpans(t, col.output)
		for _, s := range servers {
			if len(spansOf(spans, ptrace.SpanKindClient, s.port)) < 2 {
				return false
			}
		}
		return len(spansOf(spans, ptrace.SpanKindServer, kept.port)) >= 2 &&
			maxCount(httpPointsOf(readMetricPoints(t, metricsPath), kept.pid()), serverDurationMetric) >= 2
	}
	if !eventually(metricsTimeout, done) {
		t.Errorf("the kept server's spans and metrics, and curl's spans, did not all arrive within %v; spans:%s",
			metricsTimeout, describe(readSpans(t, col.output)))
	}
	// Shutdown flushes everything pending: what the files hold now is final.
	require.NoError(t, col.stop(t, syscall.SIGTERM), "collector exit:\n%s", col.out.String())

	spans := readSpans(t, col.output)
	points := readMetricPoints(t, metricsPath)
	for _, s := range []*httpServer{byPID, byExe} {
		t.Run(s.name, func(t *testing.T) {
			noneOf(t, "server spans of an excluded process", describe(spansOf(spans, ptrace.SpanKindServer, s.port)))
			noneOf(t, "spans of an excluded process", describe(spansOfPID(spans, s.pid())))
			noneOf(t, "metrics of an excluded process", describe(httpPointsOf(points, s.pid())))
			assert.Len(t, spansOf(spans, ptrace.SpanKindClient, s.port), 2, "curl is not excluded")
		})
	}
	t.Run("kept", func(t *testing.T) {
		srv := spansOf(spans, ptrace.SpanKindServer, kept.port)
		require.Len(t, srv, 2, "%s", describe(srv))
		for _, s := range srv {
			assert.Equal(t, "kept", s.serviceName())
			assert.Equal(t, "GET /orders/{id}", s.span.Name())
		}
		assert.Equal(t, uint64(2), maxCount(httpPointsOf(points, kept.pid()), serverDurationMetric),
			"server requests counted:%s", describe(httpPointsOf(points, kept.pid())))
	})
}

// TestSelectionIncludeFork: with include rules, only matching processes are
// traced. A Python server included by its command line answers from forked
// children, which inherit the decision; a server whose executable path
// matches is traced though its parent shell was not; nothing else is: not
// another python3 (same executable, other command line), not the same Go
// server under another name, not a process that exec'd out of an included
// command line, not curl.
func TestSelectionIncludeFork(t *testing.T) {
	requireRoot(t)
	bins := demoServerBins(t, "demo-server", "included-server")
	script := filepath.Join(repoRoot, "tests", "collector", "testdata", "forking_server.py")

	col, dir := startCollectorWithConfig(t, fmt.Sprintf(selectionConfig, `
      include:
        exe_paths: ["*/included-server"]
        command_lines: ["*/forking_server.py *", "* include-me"]`))

	forker := startDemo(t, "forking_server.py", "", []string{"OTEL_SERVICE_NAME=forker"}, "python3", script, "%d")
	// sh is not included, what it execs is (its executable path).
	execIn := startDemo(t, "included-server via sh", "", nil,
		"/bin/sh", "-c", "exec "+bins["included-server"]+" -addr 127.0.0.1:%d -sleep 0")
	// sh is included (its command line ends in include-me), what it execs is not.
	execOut := startDemo(t, "demo-server via an included sh", "", nil,
		"/bin/sh", "-c", "exec "+bins["demo-server"]+" -addr 127.0.0.1:%d -sleep 0", "include-me")
	wwwDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(wwwDir, "index.html"), []byte("hello\n"), 0o644))
	otherPython := startDemo(t, "python3 -m http.server", "", nil,
		"python3", "-m", "http.server", "%d", "--bind", "127.0.0.1", "--directory", wwwDir)
	plain := startDemo(t, "demo-server", bins["demo-server"], nil)

	// One connection per curl: each is served by a new forked child. Those
	// serving /jobs/ linger after the connection closes, like prefork
	// workers; those serving /quick/ exit at once.
	longLived, shortLived := map[int64]bool{}, map[int64]bool{}
	for _, path := range []string{"/jobs/1", "/jobs/2", "/jobs/3", "/quick/1", "/quick/2"} {
		body := curlBody(t, forker.url(path))
		pid, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(body), "pid "), 10, 64)
		require.NoError(t, err, "forking server answered %q", body)
		require.NotEqual(t, int64(forker.pid()), pid, "the parent answered itself")
		if strings.HasPrefix(path, "/quick/") {
			shortLived[pid] = true
		} else {
			longLived[pid] = true
		}
	}
	childPIDs := map[int64]bool{}
	for pid := range longLived {
		childPIDs[pid] = true
	}
	for pid := range shortLived {
		childPIDs[pid] = true
	}
	require.Len(t, childPIDs, 5, "five connections, five children")
	execIn.get(t, "200", "/a/1", "/a/2")
	execOut.get(t, "200", "/b/1", "/b/2")
	otherPython.get(t, "200", "/index.html")
	plain.get(t, "200", "/c/1")

	metricsPath := filepath.Join(dir, "metrics.json")
	done := func() bool {
		spans := readSpans(t, col.output)
		if len(spansOf(spans, ptrace.SpanKindServer, forker.port)) < len(childPIDs) || len(spansOf(spans, ptrace.SpanKindServer, execIn.port)) < 2 {
			return false
		}
		points := readMetricPoints(t, metricsPath)
		for pid := range childPIDs {
			if maxCount(httpPointsOf(points, int(pid)), serverDurationMetric) < 1 {
				return false
			}
		}
		return maxCount(httpPointsOf(points, execIn.pid()), serverDurationMetric) >= 2
	}
	if !eventually(metricsTimeout, done) {
		t.Errorf("the included servers' spans and metrics did not all arrive within %v; spans:%s",
			metricsTimeout, describe(readSpans(t, col.output)))
	}
	require.NoError(t, col.stop(t, syscall.SIGTERM), "collector exit:\n%s", col.out.String())
	spans := readSpans(t, col.output)
	points := readMetricPoints(t, metricsPath)

	forked := spansOf(spans, ptrace.SpanKindServer, forker.port)
	t.Run("forked children inherit the decision", func(t *testing.T) {
		require.Len(t, forked, len(childPIDs), "%s", describe(forked))
		served := map[int64]bool{}
		for _, s := range forked {
			served[resourceInt(s, "process.pid")] = true
		}
		assert.Equal(t, childPIDs, served, "process.pid of the spans: the children that answered")
		for pid := range childPIDs {
			assert.Equal(t, uint64(1), maxCount(httpPointsOf(points, int(pid)), serverDurationMetric),
				"requests counted for child %d", pid)
		}
	})

	// A forked child has its parent's executable and environment: the same
	// service, whether or not it is still running when its requests are read.
	for _, c := range []struct {
		name string
		pids map[int64]bool
	}{{"identity of long-lived children", longLived}, {"identity of short-lived children", shortLived}} {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			for _, s := range forked {
				if !c.pids[resourceInt(s, "process.pid")] {
					continue
				}
				n++
				assert.Equal(t, "forker", s.serviceName(), "OTEL_SERVICE_NAME, inherited: %s", s)
				assert.Equal(t, int64(forker.pid()), resourceInt(s, "process.parent_pid"), "forked by the server: %s", s)
				name, _ := s.resource.Get("process.executable.name")
				assert.True(t, strings.HasPrefix(name.AsString(), "python3"), "process.executable.name %q", name.AsString())
				route := "GET /jobs/{id}"
				if strings.HasPrefix(s.attr("url.path"), "/quick/") {
					route = "GET /quick/{id}"
				}
				assert.Equal(t, route, s.span.Name())
			}
			assert.Equal(t, len(c.pids), n, "spans")
		})
	}

	t.Run("exec into an included executable", func(t *testing.T) {
		srv := spansOf(spans, ptrace.SpanKindServer, execIn.port)
		require.Len(t, srv, 2, "%s", describe(srv))
		for _, s := range srv {
			name, _ := s.resource.Get("process.executable.name")
			assert.Equal(t, "included-server", name.AsString())
		}
		assert.Equal(t, uint64(2), maxCount(httpPointsOf(points, execIn.pid()), serverDurationMetric))
	})

	for _, s := range []*httpServer{execOut, otherPython, plain} {
		t.Run("not included: "+s.name, func(t *testing.T) {
			noneOf(t, "server spans", describe(spansOf(spans, ptrace.SpanKindServer, s.port)))
			noneOf(t, "spans", describe(spansOfPID(spans, s.pid())))
			noneOf(t, "metrics", describe(httpPointsOf(points, s.pid())))
		})
	}

	t.Run("not included: curl", func(t *testing.T) {
		for _, s := range []*httpServer{forker, execIn, execOut, otherPython, plain} {
			noneOf(t, fmt.Sprintf("client spans to port %d", s.port), describe(spansOf(spans, ptrace.SpanKindClient, s.port)))
		}
	})
}

// noneOf fails unless listing (from describe or describePoints) is empty.
func noneOf(t *testing.T, what, listing string) {
	t.Helper()
	if listing != "" {
		t.Errorf("want no %s, got:%s", what, listing)
	}
}

// spansOfPID returns the spans whose resource is process pid.
func spansOfPID(spans []span, pid int) []span {
	var out []span
	for _, s := range spans {
		if resourceInt(s, "process.pid") == int64(pid) {
			out = append(out, s)
		}
	}
	return out
}

// curlBody GETs url with curl (a new connection) and returns the body.
func curlBody(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--noproxy", "*", "--max-time", "10", "--fail", url).CombinedOutput()
	require.NoError(t, err, "curl %s: %s", url, out)
	return string(out)
}
