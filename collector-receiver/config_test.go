package ebpfreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/metadata"
)

// problemKeys are the collector keys of every *ConfigError in err.
func problemKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*ConfigError); ok {
			keys = append(keys, ce.Key)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	if err != nil {
		walk(err)
	}
	return keys
}

func strPtr(s string) *string { return &s }

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	defaults := createDefaultConfig().(*Config)
	custom := *defaults
	custom.RingBufferSize = 16 << 20
	custom.CaptureSize = 512
	custom.MaxConnections = 1024
	custom.IdleTimeout = 90 * time.Second
	custom.DataPath = "syscall"
	custom.Batch = BatchConfig{MaxSpans: 256, Timeout: 250 * time.Millisecond}
	custom.QueueSize = 8
	custom.Selection = SelectionConfig{
		Include:                 Criteria{ExePaths: []string{"*/nginx", "/usr/bin/python3*"}, Ports: []int{80, 8080}},
		Exclude:                 Criteria{PIDs: []int{1}, CommandLines: []string{"*healthcheck*"}},
		ContainersOnly:          true,
		ExcludeOTelInstrumented: true,
	}
	custom.ExcludePIDs = []int{42}
	custom.Traces = TracesConfig{Sampling: SamplingConfig{Ratio: 0.01, KeepSlowerThan: 500 * time.Millisecond}}
	custom.Metrics = MetricsConfig{Interval: 10 * time.Second, Temporality: "delta", MaxSeriesPerMetric: 500}
	custom.Flows = FlowsConfig{Enabled: true, Interval: 30 * time.Second, UDP: false}
	custom.DNS = DNSConfig{Enabled: false, Timeout: 2 * time.Second}
	custom.Routes = RoutesConfig{Patterns: []string{"/users/{id}", "/static/*"}, Heuristic: false}
	custom.Identity = IdentityConfig{CommandLine: true}
	custom.TLS = TLSConfig{Enabled: false}
	custom.GenAI = GenAIConfig{
		Enabled:        true,
		CaptureContent: true,
		MaxBodyBytes:   65536,
		Providers: []map[string]any{{
			"name":      "my-gateway",
			"inherit":   "openai",
			"endpoints": []any{map[string]any{"path": "/gateway/chat", "operation": "chat"}},
		}},
	}
	custom.RecordEvents = strPtr("/var/tmp/events.rec")
	noHTTP1 := *defaults
	noHTTP1.Protocols.HTTP1 = ProtocolSwitch{Enabled: false}
	noHTTP1.Protocols.MQTT = ProtocolSwitch{Enabled: false}
	rawSQL := *defaults
	rawSQL.Protocols.PostgreSQL.QueryText = "raw"
	rawSQL.Protocols.MySQL = SQLProtocolConfig{Enabled: false, QueryText: "off"}
	noKV := *defaults
	noKV.Protocols.Redis = ProtocolSwitch{Enabled: false}
	noKV.Protocols.Memcached = ProtocolSwitch{Enabled: false}
	noGRPC := *defaults
	noGRPC.Protocols.HTTP2 = HTTP2Config{Enabled: true, GRPC: false}

	tests := []struct {
		id       component.ID
		expected component.Config
		problems []string // collector keys
		errLoad  string
	}{
		{id: component.NewID(metadata.Type), expected: defaults},
		{id: component.NewIDWithName(metadata.Type, "custom"), expected: &custom},
		{id: component.NewIDWithName(metadata.Type, "no_http1"), expected: &noHTTP1},
		{id: component.NewIDWithName(metadata.Type, "raw_sql"), expected: &rawSQL},
		{id: component.NewIDWithName(metadata.Type, "bad_query_text"), problems: []string{"protocols.postgresql.query_text"}},
		{id: component.NewIDWithName(metadata.Type, "no_kv"), expected: &noKV},
		{id: component.NewIDWithName(metadata.Type, "no_grpc"), expected: &noGRPC},
		{id: component.NewIDWithName(metadata.Type, "bad_provider"), problems: []string{"genai.providers"}},
		{id: component.NewIDWithName(metadata.Type, "bad_temporality"), problems: []string{"metrics.temporality"}},
		{id: component.NewIDWithName(metadata.Type, "bad_route"), problems: []string{"routes.patterns"}},
		{id: component.NewIDWithName(metadata.Type, "bad_ring_buffer"), problems: []string{"ring_buffer_size"}},
		{id: component.NewIDWithName(metadata.Type, "bad_glob"), problems: []string{"selection.include.exe_paths"}},
		{id: component.NewIDWithName(metadata.Type, "bad_sampling"), problems: []string{"traces.sampling.ratio", "traces.sampling.keep_slower_than"}},
		{id: component.NewIDWithName(metadata.Type, "bad_durations"), problems: []string{"idle_timeout", "batch.timeout", "metrics.interval"}},
		{id: component.NewIDWithName(metadata.Type, "unknown_key"), errLoad: "bogus_key"},
		{id: component.NewIDWithName(metadata.Type, "unknown_selection_key"), errLoad: "executables"},
		{id: component.NewIDWithName(metadata.Type, "unknown_protocol"), errLoad: "http9"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if tt.errLoad != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errLoad)
				return
			}
			require.NoError(t, err)
			if tt.problems != nil {
				assert.ElementsMatch(t, tt.problems, problemKeys(xconfmap.Validate(cfg)))
				return
			}
			require.NoError(t, xconfmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func validConfig() *Config { return createDefaultConfig().(*Config) }

// Each problem names the collector's key; all of them come at once.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "ring buffer not a power of two", mutate: func(c *Config) { c.RingBufferSize = 12288 }, want: []string{"ring_buffer_size"}},
		{name: "ring buffer too large for the library", mutate: func(c *Config) { c.RingBufferSize = 1 << 32 }, want: []string{"ring_buffer_size"}},
		{name: "capture size zero", mutate: func(c *Config) { c.CaptureSize = 0 }, want: []string{"capture_size"}},
		{name: "idle timeout below the library's bound", mutate: func(c *Config) { c.IdleTimeout = 999 * time.Millisecond }, want: []string{"idle_timeout"}},
		{name: "idle timeout fraction of a millisecond", mutate: func(c *Config) { c.IdleTimeout = time.Second + 500*time.Microsecond }, want: []string{"idle_timeout"}},
		{name: "negative timeout", mutate: func(c *Config) { c.Batch.Timeout = -time.Second }, want: []string{"batch.timeout"}},
		{name: "exclude_pids go to selection.exclude.pids", mutate: func(c *Config) { c.ExcludePIDs = []int{10, 0} }, want: []string{"selection.exclude.pids[1]"}},
		{name: "include port zero", mutate: func(c *Config) { c.Selection.Include.Ports = []int{0} }, want: []string{"selection.include.ports[0]"}},
		{name: "genai body limit too small", mutate: func(c *Config) { c.GenAI.MaxBodyBytes = 100 }, want: []string{"genai.max_body_bytes"}},
		{name: "flows interval too short", mutate: func(c *Config) { c.Flows.Interval = 500 * time.Millisecond }, want: []string{"flows.interval"}},
		{name: "flows and dns off", mutate: func(c *Config) { c.Flows.Enabled = false; c.DNS.Enabled = false }},
		{name: "record events", mutate: func(c *Config) { c.RecordEvents = strPtr("/tmp/x.rec") }},
		{name: "data path socket", mutate: func(c *Config) { c.DataPath = "socket" }},
		{name: "data path syscall", mutate: func(c *Config) { c.DataPath = "syscall" }},
		{name: "data path unknown", mutate: func(c *Config) { c.DataPath = "kprobe" }, want: []string{"data_path"}},
		{
			name: "every problem at once",
			mutate: func(c *Config) {
				*c = Config{Metrics: MetricsConfig{Temporality: "sometimes"}}
			},
			want: []string{
				"batch.max_spans", "batch.timeout", "capture_size", "data_path", "idle_timeout", "max_connections",
				"metrics.interval", "metrics.max_series_per_metric", "metrics.temporality", "queue_size",
				"ring_buffer_size", "genai.max_body_bytes", "protocols.postgresql.query_text", "protocols.mysql.query_text",
				"flows.interval", "dns.timeout",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mutate(cfg)
			err := cfg.Validate()
			assert.ElementsMatch(t, tt.want, problemKeys(err), "%v", err)
		})
	}
}

// The library's message reaches the user, under the collector's key.
func TestProblemMessages(t *testing.T) {
	cfg := validConfig()
	cfg.Selection.Include.ExePaths = []string{"/usr/bin/[oops"}
	cfg.IdleTimeout = 500 * time.Millisecond
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "idle_timeout: must be between 1000 ms and 86400000 ms, not 500 ms")
	assert.Contains(t, err.Error(), "selection.include.exe_paths: ")
	assert.Contains(t, err.Error(), "/usr/bin/[oops")
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "idle_timeout_ms", ce.LibraryKey)
}

func TestLibraryJSON(t *testing.T) {
	cfg := validConfig()
	cfg.Batch.Timeout = 250 * time.Millisecond
	cfg.Selection.Exclude.PIDs = []int{7}
	cfg.ExcludePIDs = []int{8, 9}
	cfg.Selection.Include.ExePaths = []string{"*/nginx"}
	cfg.Traces.Sampling.Ratio = 0.25
	b, err := cfg.libraryJSON(true, false)
	require.NoError(t, err)
	var got struct {
		Batch     map[string]any `json:"batch"`
		Selection struct {
			Include map[string]any `json:"include"`
			Exclude map[string]any `json:"exclude"`
		} `json:"selection"`
		Traces       map[string]any `json:"traces"`
		Metrics      map[string]any `json:"metrics"`
		RecordEvents any            `json:"record_events"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, map[string]any{"max_spans": 1024.0, "timeout_ms": 250.0}, got.Batch)
	assert.Equal(t, []any{7.0, 8.0, 9.0}, got.Selection.Exclude["pids"], "exclude_pids joins selection.exclude.pids")
	assert.Equal(t, []any{"*/nginx"}, got.Selection.Include["exe_paths"])
	assert.Equal(t, []any{}, got.Selection.Include["pids"], "lists are arrays, never null")
	assert.Equal(t, map[string]any{"enabled": true, "sampling": map[string]any{"ratio": 0.25, "keep_slower_than_ms": 0.0}},
		got.Traces, "the pipelines set traces.enabled, next to the user's keys")
	assert.Equal(t, false, got.Metrics["enabled"])
	assert.Nil(t, got.RecordEvents)
}

func pids(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func globs(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// The library's list limits, under the collector's keys.
func TestListLimits(t *testing.T) {
	cfg := validConfig()
	cfg.Selection.Include.PIDs = pids(65536)
	cfg.Routes.Patterns = globs(10000, "/r%d/{id}")
	require.NoError(t, cfg.Validate(), "exactly at the limits")
	cfg.Selection.Include.PIDs = pids(65537)
	cfg.Routes.Patterns = globs(10001, "/r%d/{id}")
	err := cfg.Validate()
	assert.ElementsMatch(t, []string{"selection.include.pids", "routes.patterns"}, problemKeys(err))
	assert.Contains(t, err.Error(), "selection.include.pids: has 65537 entries: at most 65536 are allowed")
}

// Lists each within their limits can still add up to more JSON than the
// library reads.
func TestConfigSizeLimit(t *testing.T) {
	cfg := validConfig()
	// 10,000 route patterns (the most allowed) of ~420 bytes: 4.2 MB of JSON.
	cfg.Routes.Patterns = globs(10000, "/"+strings.Repeat("segment/", 52)+"%d")
	err := cfg.Validate()
	require.Error(t, err)
	assert.Equal(t, []string{""}, problemKeys(err), "the configuration as a whole")
	assert.Contains(t, err.Error(), "bytes of JSON: at most 4194304 (4 MiB) are accepted")
}
