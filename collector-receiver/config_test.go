package ebpfreceiver

import (
	"encoding/json"
	"fmt"
	"math"
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
	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id          component.ID
		expected    component.Config
		errValidate error
		errLoad     string
	}{
		{
			id:       component.NewID(metadata.Type),
			expected: createDefaultConfig(),
		},
		{
			id: component.NewIDWithName(metadata.Type, "custom"),
			expected: &Config{
				RingBufferSize: 16 << 20,
				CaptureSize:    512,
				MaxConnections: 1024,
				IdleTimeout:    90 * time.Second,
				Batch:          BatchConfig{MaxSpans: 256, Timeout: 250 * time.Millisecond},
				QueueSize:      8,
				Selection: SelectionConfig{
					Include:                 Criteria{ExePaths: []string{"*/nginx", "/usr/bin/python3*"}, Ports: []int{80, 8080}},
					Exclude:                 Criteria{PIDs: []int{1}, CommandLines: []string{"*healthcheck*"}},
					ContainersOnly:          true,
					ExcludeOTelInstrumented: true,
				},
				ExcludePIDs: []int{42},
				Metrics:     MetricsConfig{Interval: 10 * time.Second, Temporality: "delta", MaxSeriesPerMetric: 500},
				Routes:      RoutesConfig{Patterns: []string{"/users/{id}", "/static/*"}, Heuristic: false},
				Identity:    IdentityConfig{CommandLine: true},
				TLS:         TLSConfig{Enabled: false},
				GenAI: GenAIConfig{
					Enabled:        true,
					CaptureContent: true,
					MaxBodyBytes:   65536,
					Providers: []map[string]any{{
						"name":      "my-gateway",
						"inherit":   "openai",
						"endpoints": []any{map[string]any{"path": "/gateway/chat", "operation": "chat"}},
					}},
				},
			},
		},
		{
			id:          component.NewIDWithName(metadata.Type, "bad_provider"),
			errValidate: ErrRejectedByLibrary,
		},
		{
			id:          component.NewIDWithName(metadata.Type, "bad_temporality"),
			errValidate: ErrTemporality,
		},
		{
			id:          component.NewIDWithName(metadata.Type, "bad_route"),
			errValidate: ErrRejectedByLibrary,
		},
		{
			id:          component.NewIDWithName(metadata.Type, "bad_ring_buffer"),
			errValidate: ErrRingBufferSize,
		},
		{
			id:          component.NewIDWithName(metadata.Type, "bad_glob"),
			errValidate: ErrRejectedByLibrary,
		},
		{
			id:      component.NewIDWithName(metadata.Type, "unknown_key"),
			errLoad: "bogus_key",
		},
		{
			id:      component.NewIDWithName(metadata.Type, "unknown_selection_key"),
			errLoad: "executables",
		},
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
			if tt.errValidate != nil {
				assert.ErrorIs(t, xconfmap.Validate(cfg), tt.errValidate)
				return
			}
			require.NoError(t, xconfmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func validConfig() *Config { return createDefaultConfig().(*Config) }

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []error
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "smallest ring buffer", mutate: func(c *Config) { c.RingBufferSize = 4096 }},
		{name: "largest ring buffer", mutate: func(c *Config) { c.RingBufferSize = 1 << 31 }},
		{name: "ring buffer too small", mutate: func(c *Config) { c.RingBufferSize = 2048 }, want: []error{ErrRingBufferSize}},
		{name: "ring buffer not a power of two", mutate: func(c *Config) { c.RingBufferSize = 12288 }, want: []error{ErrRingBufferSize}},
		{name: "ring buffer zero", mutate: func(c *Config) { c.RingBufferSize = 0 }, want: []error{ErrRingBufferSize}},
		{name: "ring buffer too large", mutate: func(c *Config) { c.RingBufferSize = 1 << 32 }, want: []error{ErrRingBufferSize}},
		{name: "capture size bounds", mutate: func(c *Config) { c.CaptureSize = 4096 }},
		{name: "capture size zero", mutate: func(c *Config) { c.CaptureSize = 0 }, want: []error{ErrCaptureSize}},
		{name: "capture size too large", mutate: func(c *Config) { c.CaptureSize = 4097 }, want: []error{ErrCaptureSize}},
		{name: "max connections zero", mutate: func(c *Config) { c.MaxConnections = 0 }, want: []error{ErrMaxConnections}},
		{name: "max connections below 64", mutate: func(c *Config) { c.MaxConnections = 63 }, want: []error{ErrMaxConnections}},
		{name: "max connections 64", mutate: func(c *Config) { c.MaxConnections = 64 }},
		{name: "idle timeout 1s", mutate: func(c *Config) { c.IdleTimeout = time.Second }},
		{name: "idle timeout below 1s", mutate: func(c *Config) { c.IdleTimeout = 999 * time.Millisecond }, want: []error{ErrIdleTimeout}},
		{name: "idle timeout over 24h", mutate: func(c *Config) { c.IdleTimeout = 25 * time.Hour }, want: []error{ErrIdleTimeout}},
		{name: "idle timeout fraction of a millisecond", mutate: func(c *Config) { c.IdleTimeout = time.Second + 500*time.Microsecond }, want: []error{ErrIdleTimeout}},
		{name: "max spans negative", mutate: func(c *Config) { c.Batch.MaxSpans = -1 }, want: []error{ErrBatchMaxSpans}},
		{name: "timeout zero", mutate: func(c *Config) { c.Batch.Timeout = 0 }, want: []error{ErrBatchTimeout}},
		{name: "timeout below a millisecond", mutate: func(c *Config) { c.Batch.Timeout = 500 * time.Microsecond }, want: []error{ErrBatchTimeout}},
		{name: "timeout fraction of a millisecond", mutate: func(c *Config) { c.Batch.Timeout = 1500 * time.Microsecond }, want: []error{ErrBatchTimeout}},
		{name: "timeout one millisecond", mutate: func(c *Config) { c.Batch.Timeout = time.Millisecond }},
		{name: "queue size zero", mutate: func(c *Config) { c.QueueSize = 0 }, want: []error{ErrQueueSize}},
		{name: "exclude pid zero", mutate: func(c *Config) { c.ExcludePIDs = []int{10, 0} }, want: []error{ErrPIDs}},
		{name: "include pid negative", mutate: func(c *Config) { c.Selection.Include.PIDs = []int{-3} }, want: []error{ErrPIDs}},
		{name: "exclude port too large", mutate: func(c *Config) { c.Selection.Exclude.Ports = []int{65536} }, want: []error{ErrPorts}},
		{name: "include port zero", mutate: func(c *Config) { c.Selection.Include.Ports = []int{0} }, want: []error{ErrPorts}},
		{name: "selection", mutate: func(c *Config) {
			c.Selection.Include = Criteria{PIDs: []int{1}, ExePaths: []string{"*/nginx"}, CommandLines: []string{"*gunicorn*"}, Ports: []int{1, 65535}}
			c.Selection.ContainersOnly = true
		}},
		{name: "metrics interval too short", mutate: func(c *Config) { c.Metrics.Interval = 50 * time.Millisecond }, want: []error{ErrMetricsInterval}},
		{name: "metrics delta", mutate: func(c *Config) { c.Metrics.Temporality = "delta" }},
		{name: "max series zero", mutate: func(c *Config) { c.Metrics.MaxSeriesPerMetric = 0 }, want: []error{ErrMaxSeries}},
		{name: "bad glob", mutate: func(c *Config) { c.Selection.Exclude.CommandLines = []string{"{unclosed"} }, want: []error{ErrRejectedByLibrary}},
		{name: "genai body limit too small", mutate: func(c *Config) { c.GenAI.MaxBodyBytes = 100 }, want: []error{ErrRejectedByLibrary}},
		{
			name: "every problem at once",
			mutate: func(c *Config) {
				*c = Config{ExcludePIDs: []int{-1}, Selection: SelectionConfig{Include: Criteria{Ports: []int{-1}}}}
			},
			want: []error{ErrRingBufferSize, ErrCaptureSize, ErrMaxConnections, ErrIdleTimeout, ErrBatchMaxSpans, ErrBatchTimeout, ErrQueueSize, ErrPIDs, ErrPorts, ErrMetricsInterval, ErrTemporality, ErrMaxSeries},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mutate(cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
		})
	}
}

func TestNativeJSON(t *testing.T) {
	cfg := validConfig()
	b, err := cfg.nativeJSON(true, true)
	require.NoError(t, err)
	assert.JSONEq(t, `{"ring_buffer_size":8388608,"capture_size":1024,"max_connections":65536,
		"idle_timeout_ms":300000,
		"batch":{"max_spans":1024,"timeout_ms":1000},"queue_size":64,
		"selection":{"include":{"pids":[],"exe_paths":[],"command_lines":[],"ports":[]},
			"exclude":{"pids":[],"exe_paths":[],"command_lines":[],"ports":[]},
			"containers_only":false,"exclude_otel_instrumented":false},
		"traces":{"enabled":true},
		"metrics":{"enabled":true,"interval_ms":60000,"temporality":"cumulative","max_series_per_metric":2000},
		"routes":{"patterns":[],"heuristic":true},
		"identity":{"command_line":false},
		"tls":{"enabled":true},
		"genai":{"enabled":true,"capture_content":false,"max_body_bytes":1048576,"providers":[]}}`, string(b))

	cfg.Batch.Timeout = 250 * time.Millisecond
	cfg.Selection.Exclude.PIDs = []int{7}
	cfg.ExcludePIDs = []int{8, 9}
	cfg.Selection.Include.ExePaths = []string{"*/nginx"}
	b, err = cfg.nativeJSON(true, true)
	require.NoError(t, err)
	var got struct {
		Batch     map[string]any `json:"batch"`
		Selection struct {
			Include map[string]any `json:"include"`
			Exclude map[string]any `json:"exclude"`
		} `json:"selection"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, map[string]any{"max_spans": 1024.0, "timeout_ms": 250.0}, got.Batch)
	assert.Equal(t, []any{7.0, 8.0, 9.0}, got.Selection.Exclude["pids"], "exclude_pids joins selection.exclude.pids")
	assert.Equal(t, []any{"*/nginx"}, got.Selection.Include["exe_paths"])
}

// Whatever Go accepts, the library accepts too: Go's defaults and limits are
// the library's.
func TestLibraryAcceptsValidConfigs(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for _, name := range []string{"", "custom"} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		b, err := cfg.nativeJSON(true, true)
		require.NoError(t, err)
		require.NoError(t, native.CheckConfig(b), "%s", b)
	}
	// The edges of every range.
	cfg := validConfig()
	cfg.RingBufferSize, cfg.CaptureSize, cfg.MaxConnections = minRingBufferSize, maxCaptureSize, minMaxConnections
	cfg.Batch = BatchConfig{MaxSpans: 1, Timeout: time.Millisecond}
	cfg.QueueSize = 1
	cfg.Selection.Include.Ports = []int{1, 65535}
	cfg.ExcludePIDs = []int{math.MaxUint32}
	require.NoError(t, cfg.Validate())
}

// The library's message reaches the user when only it can tell.
func TestBadGlobMessage(t *testing.T) {
	cfg := validConfig()
	cfg.Selection.Include.ExePaths = []string{"/usr/bin/[oops"}
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrRejectedByLibrary)
	assert.Contains(t, err.Error(), "selection.include.exe_paths")
	assert.Contains(t, err.Error(), "/usr/bin/[oops")
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

// Every list limit: exactly at it accepted (by Go and by the library), one
// over refused with a message naming the key and the limit.
func TestListLimits(t *testing.T) {
	bigGlobs := func(extra int) []string { // 64 globs of 4 KiB: 256 KiB, plus `extra` bytes
		out := globs(64, "/%04d")
		for i := range out {
			out[i] += strings.Repeat("a", 4096-5)
		}
		out[63] += strings.Repeat("a", extra)
		return out
	}
	tests := []struct {
		name    string
		atLimit func(*Config)
		over    func(*Config)
		message string
	}{
		{
			name:    "include pids",
			atLimit: func(c *Config) { c.Selection.Include.PIDs = pids(65536) },
			over:    func(c *Config) { c.Selection.Include.PIDs = pids(65537) },
			message: "selection.include.pids has 65537 entries: at most 65536 are allowed",
		},
		{
			name:    "exclude pids with exclude_pids",
			atLimit: func(c *Config) { c.Selection.Exclude.PIDs, c.ExcludePIDs = pids(65535), []int{70000} },
			over:    func(c *Config) { c.Selection.Exclude.PIDs, c.ExcludePIDs = pids(65536), []int{70000} },
			message: "selection.exclude.pids and exclude_pids together has 65537 entries: at most 65536",
		},
		{
			name:    "exe_paths",
			atLimit: func(c *Config) { c.Selection.Include.ExePaths = globs(10000, "/usr/bin/app%d*") },
			over:    func(c *Config) { c.Selection.Include.ExePaths = globs(10001, "/usr/bin/app%d*") },
			message: "selection.include.exe_paths has 10001 entries: at most 10000 are allowed",
		},
		{
			name:    "command_lines",
			atLimit: func(c *Config) { c.Selection.Exclude.CommandLines = globs(10000, "*worker-%d*") },
			over:    func(c *Config) { c.Selection.Exclude.CommandLines = globs(10001, "*worker-%d*") },
			message: "selection.exclude.command_lines has 10001 entries: at most 10000 are allowed",
		},
		{
			name:    "bytes of globs",
			atLimit: func(c *Config) { c.Selection.Exclude.ExePaths = bigGlobs(0) },
			over:    func(c *Config) { c.Selection.Exclude.ExePaths = bigGlobs(1) },
			message: "selection.exclude.exe_paths has 262145 bytes of globs: at most 262144 are allowed",
		},
		{
			name: "distinct ports",
			atLimit: func(c *Config) {
				c.Selection.Include.Ports, c.Selection.Exclude.Ports = pids(512), append(pids(1024)[512:], 1)
			},
			over: func(c *Config) {
				c.Selection.Include.Ports, c.Selection.Exclude.Ports = pids(512), pids(1025)[512:]
			},
			message: "selection.include.ports and selection.exclude.ports has 1025 distinct ports: at most 1024",
		},
		{
			name:    "route patterns",
			atLimit: func(c *Config) { c.Routes.Patterns = globs(10000, "/r%d/{id}") },
			over:    func(c *Config) { c.Routes.Patterns = globs(10001, "/r%d/{id}") },
			message: "routes.patterns has 10001 entries: at most 10000 are allowed",
		},
		{
			name: "genai providers",
			atLimit: func(c *Config) {
				for i := range 1000 {
					c.GenAI.Providers = append(c.GenAI.Providers, map[string]any{"name": fmt.Sprintf("p%d", i), "inherit": "openai"})
				}
			},
			over: func(c *Config) {
				for i := range 1001 {
					c.GenAI.Providers = append(c.GenAI.Providers, map[string]any{"name": fmt.Sprintf("p%d", i), "inherit": "openai"})
				}
			},
			message: "genai.providers has 1001 entries: at most 1000 are allowed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.atLimit(cfg)
			require.NoError(t, cfg.Validate(), "exactly at the limit: Go and the library accept it")
			cfg = validConfig()
			tt.over(cfg)
			err := cfg.Validate()
			require.ErrorIs(t, err, ErrTooMany)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
}

// The library's own limits agree with Go's: one over is refused there too.
func TestLibraryEnforcesTheSameLimits(t *testing.T) {
	cfg := validConfig()
	cfg.Selection.Include.PIDs = pids(65537)
	b, err := cfg.nativeJSON(true, true)
	require.NoError(t, err)
	err = native.CheckConfig(b)
	require.ErrorIs(t, err, native.ErrConfig)
	assert.Contains(t, err.Error(), "selection.include.pids has 65537 entries: at most 65536")
}

// Lists each within their limits can still add up to more JSON than the
// library reads.
func TestConfigSizeLimit(t *testing.T) {
	cfg := validConfig()
	// 10,000 route patterns (the most allowed) of ~420 bytes: 4.2 MB of JSON.
	cfg.Routes.Patterns = globs(10000, "/"+strings.Repeat("segment/", 52)+"%d")
	b, err := cfg.nativeJSON(true, true)
	require.NoError(t, err)
	require.Greater(t, len(b), maxConfigJSONBytes)
	err = cfg.Validate()
	require.ErrorIs(t, err, ErrTooLarge)
	assert.NotErrorIs(t, err, ErrTooMany)
}
