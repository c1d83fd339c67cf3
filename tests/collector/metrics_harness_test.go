package collector

// Helpers of the metrics and selection tests: a collector with a given
// configuration, binaries built for the test (the demo server under several
// names, the load generator), Prometheus scrapes and the file exporter's
// metrics.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// metricsInterval is metrics.interval in the tests' configurations.
const metricsInterval = time.Second

// metricsTimeout bounds the wait for metrics: a few export intervals after
// the spans, which come at most a batch timeout after the requests.
const metricsTimeout = 30 * time.Second

// The end of a config whose ebpf receiver feeds both signals to files:
// spans to {{dir}}/traces.json, metrics to {{dir}}/metrics.json.
const filePipelines = `
exporters:
  file:
    path: {{dir}}/traces.json
    flush_interval: 100ms
  file/metrics:
    path: {{dir}}/metrics.json
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [file]
    metrics:
      receivers: [ebpf]
      exporters: [file/metrics]
`

// startCollectorWithConfig runs otelcol-ebpf with the configuration config,
// in which every {{dir}} is replaced by a fresh directory (for the file
// exporters' output), and waits until it is ready. The traces file
// exporter, if any, must write {{dir}}/traces.json.
func startCollectorWithConfig(t *testing.T, config string) (col *collector, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "{{dir}}", dir)), 0o600))
	return startCollectorArgs(t, nil, filepath.Join(dir, "traces.json"), "--config", cfg), dir
}

// startCollectorArgs runs otelcol-ebpf with the arguments args and the extra
// environment env, and waits until it is ready; traces is where its traces
// file exporter writes, if it has one.
func startCollectorArgs(t *testing.T, env []string, traces string, args ...string) *collector {
	t.Helper()
	cmd := exec.Command(collectorBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := startProc(t, "otelcol-ebpf", cmd)
	ready := eventually(readyTimeout, func() bool {
		return p.exited() || strings.Contains(p.out.String(), "Everything is ready")
	})
	require.True(t, ready && !p.exited(), "collector did not become ready:\n%s", p.out.String())
	return &collector{proc: p, output: traces}
}

// buildGo builds the Go main package in pkgDir (relative to the repository
// root) into dir/name.
func buildGo(t *testing.T, pkgDir, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(repoRoot, pkgDir)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building %s: %s", pkgDir, out)
	return bin
}

// demoServerBins builds the demo server once and returns one copy of it per
// name (copies, not links: /proc/<pid>/exe names the file itself).
func demoServerBins(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	built := buildGo(t, filepath.Join("examples", "demo-server"), dir, "demo-server.built")
	content, err := os.ReadFile(built)
	require.NoError(t, err)
	bins := map[string]string{}
	for _, name := range names {
		bins[name] = filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(bins[name], content, 0o755))
	}
	return bins
}

// httpServer is a server process under test.
type httpServer struct {
	*proc
	port int
}

func (s *httpServer) pid() int { return s.cmd.Process.Pid }

func (s *httpServer) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path)
}

// get requests every path over one kept-alive curl connection and checks
// the status codes.
func (s *httpServer) get(t *testing.T, wantStatus string, paths ...string) {
	t.Helper()
	urls := make([]string, len(paths))
	for i, p := range paths {
		urls[i] = s.url(p)
	}
	codes := curl(t, urls...)
	require.Len(t, codes, len(paths))
	for i, c := range codes {
		require.Equal(t, wantStatus, c, "GET %s", paths[i])
	}
}

// startDemo starts a demo server binary (-sleep 0) on a free port with the
// extra environment env; args, when given, replace the command (argv) and
// must contain "%d" where the port goes.
func startDemo(t *testing.T, name, bin string, env []string, args ...string) *httpServer {
	t.Helper()
	s := &httpServer{port: freePort(t)}
	if len(args) == 0 {
		args = []string{bin, "-addr", "127.0.0.1:%d", "-sleep", "0"}
	}
	argv := make([]string, len(args))
	for i, a := range args {
		argv[i] = strings.ReplaceAll(a, "%d", strconv.Itoa(s.port))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), env...)
	s.proc = startProc(t, name, cmd)
	waitListening(t, s.port, name)
	return s
}

// cleanEnv is the test's environment without any OTEL_* variable, so that
// service names come only from what each test sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// stays reports whether cond holds throughout d (polled).
func stays(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			return false
		}
		time.Sleep(pollEvery)
	}
	return cond()
}

// --- Prometheus text exposition format ---

// promSample is one line of a /metrics page.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

func (s promSample) String() string {
	keys := make([]string, 0, len(s.labels))
	for k := range s.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, s.labels[k])
	}
	fmt.Fprintf(&b, "} %v", s.value)
	return b.String()
}

// matches reports whether every label in want has that value ("" : absent).
func (s promSample) matches(want map[string]string) bool {
	for k, v := range want {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

type promPage []promSample

// find returns the samples named name whose labels match want.
func (p promPage) find(name string, want map[string]string) promPage {
	var out promPage
	for _, s := range p {
		if s.name == name && s.matches(want) {
			out = append(out, s)
		}
	}
	return out
}

// value is the value of the only sample named name matching want; -1 when
// there is none, -2 when there are several.
func (p promPage) value(name string, want map[string]string) float64 {
	found := p.find(name, want)
	switch len(found) {
	case 0:
		return -1
	case 1:
		return found[0].value
	default:
		return -2
	}
}

func (p promPage) String() string {
	var b strings.Builder
	for _, s := range p {
		b.WriteString("\n  ")
		b.WriteString(s.String())
	}
	return b.String()
}

// parsePromText parses the Prometheus text format (comments skipped).
func parsePromText(text string) (promPage, error) {
	var page promPage
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		page = append(page, s)
	}
	return page, nil
}

func parsePromLine(line string) (promSample, error) {
	s := promSample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return s, errors.New("no metric name")
	}
	s.name, line = line[:end], line[end:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, "=\"")
			if eq <= 0 {
				return s, errors.New("bad label")
			}
			key := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			closed := false
			for i := 0; i < len(line); i++ {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					i++
					switch line[i] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(line[i])
					}
					continue
				}
				if c == '"' {
					line = line[i+1:]
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, errors.New("unterminated label value")
			}
			s.labels[key] = v.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// scrape fetches and parses http://127.0.0.1:port/metrics; nil when the
// exporter does not answer (yet).
func scrape(t *testing.T, port int) promPage {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	page, err := parsePromText(string(body))
	require.NoError(t, err)
	return page
}

// --- OTLP JSON metrics from the file exporter ---

// metricPoint is one histogram or sum data point with its resource.
type metricPoint struct {
	resource pcommon.Map
	name     string
	attrs    pcommon.Map
	count    uint64 // histogram count, or the sum's value
}

func (p metricPoint) pid() int64 {
	v, _ := p.resource.Get("process.pid")
	return v.Int()
}

func (p metricPoint) String() string {
	return fmt.Sprintf("%s pid=%d %v count=%d", p.name, p.pid(), p.attrs.AsRaw(), p.count)
}

// eachExportedMetric calls fn for every metric of the file exporter's
// metrics output, in export order, with the resource it came under.
func eachExportedMetric(t *testing.T, path string, fn func(resource pcommon.Map, m pmetric.Metric)) {
	t.Helper()
	var u pmetric.JSONUnmarshaler
	eachExportLine(t, path, func(line []byte) {
		md, err := u.UnmarshalMetrics(line)
		require.NoError(t, err, "file exporter line: %s", line)
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					fn(rm.Resource().Attributes(), ms.At(k))
				}
			}
		}
	})
}

// readMetricPoints parses the file exporter's metrics output.
func readMetricPoints(t *testing.T, path string) []metricPoint {
	t.Helper()
	var points []metricPoint
	eachExportedMetric(t, path, func(resource pcommon.Map, m pmetric.Metric) {
		switch m.Type() {
		case pmetric.MetricTypeHistogram:
			dps := m.Histogram().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				points = append(points, metricPoint{resource, m.Name(), dps.At(d).Attributes(), dps.At(d).Count()})
			}
		case pmetric.MetricTypeSum:
			dps := m.Sum().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				points = append(points, metricPoint{resource, m.Name(), dps.At(d).Attributes(), uint64(dps.At(d).IntValue())})
			}
		}
	})
	return points
}

// httpPointsOf returns the http.* data points of process pid.
func httpPointsOf(points []metricPoint, pid int) []metricPoint {
	var out []metricPoint
	for _, p := range points {
		if strings.HasPrefix(p.name, "http.") && p.pid() == int64(pid) {
			out = append(out, p)
		}
	}
	return out
}

// maxCount is the highest count among the points named name (cumulative:
// the latest).
func maxCount(points []metricPoint, name string) uint64 {
	var n uint64
	for _, p := range points {
		if p.name == name && p.count > n {
			n = p.count
		}
	}
	return n
}
