package collector

// Sampling at the source through the collector: traces.sampling keeps every
// failed and every slow request, drops the ordinary ones at ratio 0, says
// so in each span's tracestate, counts the rest in
// ebpf_receiver.spans.sampled_out, and the metrics still count every request.

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// %d, %d: the pids of the two servers, the only processes traced.
const samplingConfig = `
receivers:
  ebpf:
    batch:
      timeout: 200ms
    metrics:
      interval: 1s
    selection:
      include:
        pids: [%d, %d]
    traces:
      sampling:
        ratio: 0
        keep_slower_than: 100ms
` + filePipelines

// countsByStatus is the latest count of each status's series of a metric of pid.
func countsByStatus(points []metricPoint, pid int, name string) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range httpPointsOf(points, pid) {
		if p.name != name {
			continue
		}
		v, _ := p.attrs.Get("http.response.status_code")
		if s := v.AsString(); p.count > out[s] {
			out[s] = p.count
		}
	}
	return out
}

func TestSamplingKeepsFailuresAndSlowRequests(t *testing.T) {
	requireRoot(t)
	bins := demoServerBins(t, "demo-server")
	fast := startDemo(t, "fast demo-server", bins["demo-server"], nil)
	slow := startDemo(t, "slow demo-server", bins["demo-server"], nil,
		bins["demo-server"], "-addr", "127.0.0.1:%d", "-sleep", "150ms")
	col, dir := startCollectorWithConfig(t, fmt.Sprintf(samplingConfig, fast.pid(), slow.pid()))

	okPaths := make([]string, 10)
	for i := range okPaths {
		okPaths[i] = fmt.Sprintf("/ok/%d", i)
	}
	fast.get(t, "200", okPaths...)
	fast.get(t, "500", "/status/500", "/status/500", "/status/500", "/status/500")
	slow.get(t, "200", "/slow/1", "/slow/2", "/slow/3")

	metricsPath := filepath.Join(dir, "metrics.json")
	sampledOut := func() uint64 { return maxCount(readMetricPoints(t, metricsPath), "ebpf_receiver.spans.sampled_out") }
	done := func() bool {
		spans := readSpans(t, col.output)
		return len(spansOfPID(spans, fast.pid())) >= 4 && len(spansOfPID(spans, slow.pid())) >= 3 && sampledOut() >= 10
	}
	if !eventually(metricsTimeout, done) {
		t.Errorf("the kept spans and the sampled-out count did not arrive within %v (sampled out: %d); spans:%s",
			metricsTimeout, sampledOut(), describe(readSpans(t, col.output)))
	}
	require.NoError(t, col.stop(t, syscall.SIGTERM), "collector exit:\n%s", col.out.String())

	spans := readSpans(t, col.output)
	kept := spansOfPID(spans, fast.pid())
	require.Len(t, kept, 4, "only the fast server's 500s:%s", describe(kept))
	for _, s := range kept {
		assert.Equal(t, ptrace.SpanKindServer, s.span.Kind())
		assert.Equal(t, "500", s.attr("error.type"))
		assert.Equal(t, "ot=th:0", s.span.TraceState().AsRaw(), "kept with probability 1")
	}
	kept = spansOfPID(spans, slow.pid())
	require.Len(t, kept, 3, "every slow request:%s", describe(kept))
	for _, s := range kept {
		assert.GreaterOrEqual(t, s.duration().Milliseconds(), int64(100))
		assert.Equal(t, "ot=th:0", s.span.TraceState().AsRaw())
	}

	points := readMetricPoints(t, metricsPath)
	assert.Equal(t, uint64(10), maxCount(points, "ebpf_receiver.spans.sampled_out"), "the fast server's ten 200s")
	assert.Equal(t, map[string]uint64{"200": 10, "500": 4}, countsByStatus(points, fast.pid(), serverDurationMetric),
		"metrics count every request")
	assert.Equal(t, map[string]uint64{"200": 3}, countsByStatus(points, slow.pid(), serverDurationMetric))
}

// %d: the pid of the one server traced.
const ratioConfig = `
receivers:
  ebpf:
    batch:
      timeout: 200ms
    metrics:
      interval: 1s
    selection:
      include:
        pids: [%d]
    traces:
      sampling:
        ratio: 0.25
` + filePipelines

// A ratio keeps exactly the requests whose trace id reaches its threshold:
// every request is either a kept span (its id past the threshold, its
// probability in tracestate) or counted as sampled out, none twice.
func TestSamplingRatioByTraceID(t *testing.T) {
	requireRoot(t)
	bins := demoServerBins(t, "demo-server")
	srv := startDemo(t, "demo-server", bins["demo-server"], nil)
	col, dir := startCollectorWithConfig(t, fmt.Sprintf(ratioConfig, srv.pid()))

	const n = 200
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/r/%d", i)
	}
	srv.get(t, "200", paths...)

	metricsPath := filepath.Join(dir, "metrics.json")
	sampledOut := func() uint64 { return maxCount(readMetricPoints(t, metricsPath), "ebpf_receiver.spans.sampled_out") }
	accounted := func() uint64 { return uint64(len(spansOfPID(readSpans(t, col.output), srv.pid()))) + sampledOut() }
	if !eventually(metricsTimeout, func() bool { return accounted() >= n }) {
		t.Errorf("%d of %d requests kept or counted out within %v", accounted(), n, metricsTimeout)
	}
	require.NoError(t, col.stop(t, syscall.SIGTERM), "collector exit:\n%s", col.out.String())

	kept := spansOfPID(readSpans(t, col.output), srv.pid())
	out := maxCount(readMetricPoints(t, metricsPath), "ebpf_receiver.spans.sampled_out")
	assert.Equal(t, uint64(n), uint64(len(kept))+out, "%d kept, %d sampled out", len(kept), out)
	for _, s := range kept {
		// 25%: the rejection threshold 0xc0000000000000 over the id's last 7 bytes.
		id := s.span.TraceID()
		assert.GreaterOrEqual(t, id[9], byte(0xc0), "kept below the threshold: %x", id)
		assert.Equal(t, "ot=th:c", s.span.TraceState().AsRaw())
	}
	// Binomial(200, 0.25): mean 50, standard deviation 6.1.
	assert.True(t, len(kept) >= 20 && len(kept) <= 80, "%d of %d kept at 25%%", len(kept), n)
	assert.Equal(t, map[string]uint64{"200": n}, countsByStatus(readMetricPoints(t, metricsPath), srv.pid(),
		serverDurationMetric), "metrics count every request")
}
