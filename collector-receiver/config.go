package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

// Defaults, the same as the native library's.
const (
	defaultRingBufferSize  = 8 << 20 // bytes
	defaultCaptureSize     = 1024    // bytes per syscall
	defaultMaxConnections  = 65536
	defaultIdleTimeout     = 5 * time.Minute
	defaultBatchMaxSpans   = 1024
	defaultBatchTimeout    = time.Second
	defaultQueueSize       = 64
	defaultMetricsInterval = time.Minute
	defaultMaxSeries       = 2000
	// defaultGenAIMaxBodyBytes matches the library's default (1 MiB).
	defaultGenAIMaxBodyBytes = 1 << 20

	minRingBufferSize = 4096
	maxRingBufferSize = 1 << 31 // the largest power of two in a u32
	maxCaptureSize    = 4096
	minMaxConnections = 64
	minIdleTimeout    = time.Second
	maxIdleTimeout    = 24 * time.Hour

	// Size limits, the library's (ebpf-core/src/config.rs, selection/config.rs):
	// beyond them a configuration costs seconds and GiBs to compile.
	maxPIDsPerList     = 65536     // more is a mistake, not a selection (the Rust side's limit)
	maxGlobsPerList    = 10000     // exe_paths, command_lines
	maxGlobBytes       = 256 << 10 // bytes of globs in one list
	maxPorts           = 1024      // distinct ports, include and exclude together: the kernel's port table
	maxRoutePatterns   = 10000
	maxGenAIProviders  = 1000
	maxConfigJSONBytes = native.MaxConfigBytes
)

// Sentinel errors of Config.Validate; the returned error wraps every one that
// applies (errors.Is works on each).
var (
	ErrRingBufferSize  = errors.New("ring_buffer_size must be a power of two between 4096 and 2147483648 bytes")
	ErrCaptureSize     = errors.New("capture_size must be between 1 and 4096 bytes")
	ErrMaxConnections  = errors.New("max_connections must be between 64 and 4294967295")
	ErrIdleTimeout     = errors.New("idle_timeout must be a whole number of milliseconds between 1s and 24h")
	ErrBatchMaxSpans   = errors.New("batch.max_spans must be at least 1")
	ErrBatchTimeout    = errors.New("batch.timeout must be a whole number of milliseconds, at least 1ms")
	ErrQueueSize       = errors.New("queue_size must be at least 1")
	ErrPIDs            = errors.New("process ids (selection pids, exclude_pids) must be between 1 and 4294967295")
	ErrPorts           = errors.New("selection ports must be between 1 and 65535")
	ErrMetricsInterval = errors.New("metrics.interval must be a whole number of milliseconds between 100ms and 24h")
	ErrTemporality     = errors.New(`metrics.temporality must be "cumulative" or "delta"`)
	ErrMaxSeries       = errors.New("metrics.max_series_per_metric must be between 1 and 1000000")
	// ErrTooMany: a list longer than its limit (the error names the key).
	ErrTooMany = errors.New("too many entries")
	// ErrTooLarge: the configuration, as the library receives it, is over 4 MiB.
	ErrTooLarge = errors.New("the configuration is larger than the 4 MiB the eBPF library accepts")
	// ErrRejectedByLibrary wraps what only the native library checks (the
	// glob syntax of exe_paths and command_lines), with its message.
	ErrRejectedByLibrary = errors.New("the eBPF library rejects the configuration")
)

// Config of the ebpf receiver. Every field is optional.
type Config struct {
	// RingBufferSize is the size in bytes of the kernel ring buffers that
	// carry events to user space, all CPUs together (each CPU gets its own
	// ring, the largest power of two that fits its share, at least 4096):
	// a power of two, at least 4096.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// CaptureSize is how many payload bytes are captured per read or write
	// syscall (1 to 4096); request and response heads must fit in it.
	CaptureSize int `mapstructure:"capture_size"`
	// MaxConnections bounds the kernel's connection table (LRU beyond).
	MaxConnections int `mapstructure:"max_connections"`
	// IdleTimeout: a connection silent this long is forgotten (its close
	// may have been lost); if it is used again it is found again, with its
	// addresses. 1s to 24h, default 5m.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// Batch says when spans are handed to the collector.
	Batch BatchConfig `mapstructure:"batch"`
	// QueueSize is how many batches wait for the collector; beyond that
	// batches are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
	// Selection says which processes and connections are traced (default:
	// every process but the collector itself).
	Selection SelectionConfig `mapstructure:"selection"`
	// ExcludePIDs is a shorthand for selection.exclude.pids.
	ExcludePIDs []int `mapstructure:"exclude_pids"`
	// Metrics configures the RED metrics computed from every request.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// Routes configures http.route templates (span names, metric attributes).
	Routes RoutesConfig `mapstructure:"routes"`
	// Identity configures what the resource of a traced process carries.
	Identity IdentityConfig `mapstructure:"identity"`
	// TLS configures HTTPS plaintext capture at OpenSSL (uprobes).
	TLS TLSConfig `mapstructure:"tls"`
	// GenAI configures LLM API call recognition (gen_ai.* spans and metrics).
	GenAI GenAIConfig `mapstructure:"genai"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// GenAIConfig says how LLM API calls are recognised and what is kept of them.
type GenAIConfig struct {
	// Enabled recognises OpenAI-compatible, Anthropic, Gemini and Ollama
	// calls (and Providers) and emits gen_ai.* spans and metrics.
	Enabled bool `mapstructure:"enabled"`
	// CaptureContent adds prompts and completions to spans
	// (gen_ai.input.messages, gen_ai.output.messages). Off: they never leave the host.
	CaptureContent bool `mapstructure:"capture_content"`
	// MaxBodyBytes is the most bytes kept per request or response body.
	MaxBodyBytes int `mapstructure:"max_body_bytes"`
	// Providers adds LLM APIs without a rebuild: each entry is passed to the
	// library as is (see the README for its keys) and checked there.
	Providers []map[string]any `mapstructure:"providers"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// BatchConfig says when a batch is complete.
type BatchConfig struct {
	// MaxSpans is the most spans in one batch.
	MaxSpans int `mapstructure:"max_spans"`
	// Timeout is the longest a span waits before its batch is handed over.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// MetricsConfig says how RED metrics are aggregated and exported.
type MetricsConfig struct {
	// Interval between exports (and at shutdown).
	Interval time.Duration `mapstructure:"interval"`
	// Temporality is "cumulative" (works with Prometheus) or "delta".
	Temporality string `mapstructure:"temporality"`
	// MaxSeriesPerMetric bounds attribute sets per metric and process; beyond
	// it data lands in one series marked otel.metric.overflow=true.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RoutesConfig says how request paths become http.route templates.
type RoutesConfig struct {
	// Patterns like "/users/{id}" or "/static/*"; the first match wins.
	Patterns []string `mapstructure:"patterns"`
	// Heuristic turns ID-like path segments into {id} when no pattern matches.
	Heuristic bool `mapstructure:"heuristic"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TLSConfig says whether HTTPS is traced.
type TLSConfig struct {
	// Enabled attaches uprobes to the OpenSSL libraries processes use, so
	// HTTPS requests become spans and metrics with url.scheme=https.
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// IdentityConfig says what identifies a traced process.
type IdentityConfig struct {
	// CommandLine adds process.command_line (off: it can hold secrets).
	CommandLine bool `mapstructure:"command_line"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SelectionConfig says which processes and connections are traced. It is
// applied in the kernel.
type SelectionConfig struct {
	// Include: when any process rule (pids, exe_paths, command_lines) is
	// set, only matching processes are traced; ports restricts connections
	// the same way.
	Include Criteria `mapstructure:"include"`
	// Exclude is never traced, even when included.
	Exclude Criteria `mapstructure:"exclude"`
	// ContainersOnly traces only processes in another pid or mount namespace
	// than the host's.
	ContainersOnly bool `mapstructure:"containers_only"`
	// ExcludeOTelInstrumented skips processes that already run an
	// OpenTelemetry SDK or agent.
	ExcludeOTelInstrumented bool `mapstructure:"exclude_otel_instrumented"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Criteria match processes (any rule) and connections (ports).
type Criteria struct {
	// PIDs are process ids.
	PIDs []int `mapstructure:"pids"`
	// ExePaths are globs on the executable's absolute path ("*/nginx").
	ExePaths []string `mapstructure:"exe_paths"`
	// CommandLines are globs on the command line, arguments joined by spaces.
	CommandLines []string `mapstructure:"command_lines"`
	// Ports are server-side TCP ports (the listening port).
	Ports []int `mapstructure:"ports"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		RingBufferSize: defaultRingBufferSize,
		CaptureSize:    defaultCaptureSize,
		MaxConnections: defaultMaxConnections,
		IdleTimeout:    defaultIdleTimeout,
		Batch: BatchConfig{
			MaxSpans: defaultBatchMaxSpans,
			Timeout:  defaultBatchTimeout,
		},
		QueueSize: defaultQueueSize,
		Metrics: MetricsConfig{
			Interval:           defaultMetricsInterval,
			Temporality:        "cumulative",
			MaxSeriesPerMetric: defaultMaxSeries,
		},
		Routes: RoutesConfig{Heuristic: true},
		TLS:    TLSConfig{Enabled: true},
		GenAI:  GenAIConfig{Enabled: true, MaxBodyBytes: defaultGenAIMaxBodyBytes},
	}
}

func inRange(v, lowest int, highest uint64) bool { return v >= lowest && uint64(v) <= highest }

// Validate checks every field and reports all problems at once; when Go finds
// none, the library checks the rest (globs) without loading anything.
func (cfg *Config) Validate() error {
	var errs []error
	if r := cfg.RingBufferSize; !inRange(r, minRingBufferSize, maxRingBufferSize) || r&(r-1) != 0 {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrRingBufferSize, r))
	}
	if c := cfg.CaptureSize; !inRange(c, 1, maxCaptureSize) {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrCaptureSize, c))
	}
	if !inRange(cfg.MaxConnections, minMaxConnections, math.MaxUint32) {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrMaxConnections, cfg.MaxConnections))
	}
	if t := cfg.IdleTimeout; t < minIdleTimeout || t > maxIdleTimeout || t%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("%w (got %v)", ErrIdleTimeout, t))
	}
	if cfg.Batch.MaxSpans < 1 {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrBatchMaxSpans, cfg.Batch.MaxSpans))
	}
	if t := cfg.Batch.Timeout; t < time.Millisecond || t%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("%w (got %v)", ErrBatchTimeout, t))
	}
	if cfg.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrQueueSize, cfg.QueueSize))
	}
	for _, pids := range [][]int{cfg.ExcludePIDs, cfg.Selection.Include.PIDs, cfg.Selection.Exclude.PIDs} {
		if bad := firstOutside(pids, 1, math.MaxUint32); bad != nil {
			errs = append(errs, fmt.Errorf("%w (got %d)", ErrPIDs, *bad))
			break
		}
	}
	for _, ports := range [][]int{cfg.Selection.Include.Ports, cfg.Selection.Exclude.Ports} {
		if bad := firstOutside(ports, 1, math.MaxUint16); bad != nil {
			errs = append(errs, fmt.Errorf("%w (got %d)", ErrPorts, *bad))
			break
		}
	}
	errs = append(errs, cfg.checkListSizes()...)
	if t := cfg.Metrics.Interval; t < 100*time.Millisecond || t > 24*time.Hour || t%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("%w (got %v)", ErrMetricsInterval, t))
	}
	if t := cfg.Metrics.Temporality; t != "cumulative" && t != "delta" {
		errs = append(errs, fmt.Errorf("%w (got %q)", ErrTemporality, t))
	}
	if !inRange(cfg.Metrics.MaxSeriesPerMetric, 1, 1_000_000) {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrMaxSeries, cfg.Metrics.MaxSeriesPerMetric))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	cfgJSON, err := cfg.nativeJSON(true, true)
	if err != nil {
		return err
	}
	if len(cfgJSON) > maxConfigJSONBytes {
		return fmt.Errorf("%w (%d bytes of JSON, at most %d)", ErrTooLarge, len(cfgJSON), maxConfigJSONBytes)
	}
	if err := native.CheckConfig(cfgJSON); err != nil {
		return fmt.Errorf("%w: %w", ErrRejectedByLibrary, err)
	}
	return nil
}

// checkListSizes mirrors the library's limits on list sizes, so that they
// are reported with every other problem and before anything is compiled.
func (cfg *Config) checkListSizes() []error {
	var errs []error
	tooMany := func(key string, n, limit int, unit string) {
		if n > limit {
			errs = append(errs, fmt.Errorf("%w: %s has %d %s: at most %d are allowed", ErrTooMany, key, n, unit, limit))
		}
	}
	tooMany("selection.include.pids", len(cfg.Selection.Include.PIDs), maxPIDsPerList, "entries")
	tooMany("selection.exclude.pids and exclude_pids together", len(cfg.Selection.Exclude.PIDs)+len(cfg.ExcludePIDs),
		maxPIDsPerList, "entries")
	for _, side := range []struct {
		name string
		c    Criteria
	}{{"include", cfg.Selection.Include}, {"exclude", cfg.Selection.Exclude}} {
		for _, list := range []struct {
			key   string
			globs []string
		}{{"exe_paths", side.c.ExePaths}, {"command_lines", side.c.CommandLines}} {
			name := "selection." + side.name + "." + list.key
			tooMany(name, len(list.globs), maxGlobsPerList, "entries")
			bytes := 0
			for _, g := range list.globs {
				bytes += len(g)
			}
			tooMany(name, bytes, maxGlobBytes, "bytes of globs")
		}
	}
	ports := map[int]struct{}{}
	for _, p := range append(append([]int{}, cfg.Selection.Include.Ports...), cfg.Selection.Exclude.Ports...) {
		ports[p] = struct{}{}
	}
	tooMany("selection.include.ports and selection.exclude.ports", len(ports), maxPorts, "distinct ports")
	tooMany("routes.patterns", len(cfg.Routes.Patterns), maxRoutePatterns, "entries")
	tooMany("genai.providers", len(cfg.GenAI.Providers), maxGenAIProviders, "entries")
	return errs
}

func firstOutside(xs []int, lowest int, highest uint64) *int {
	for i := range xs {
		if !inRange(xs[i], lowest, highest) {
			return &xs[i]
		}
	}
	return nil
}

// nativeConfig is the JSON configuration of the native library
// (otel_ebpf_new, ebpf-core/src/config.rs); it rejects unknown keys, and its
// lists must be arrays, never null.
type nativeConfig struct {
	RingBufferSize int             `json:"ring_buffer_size"`
	CaptureSize    int             `json:"capture_size"`
	MaxConnections int             `json:"max_connections"`
	IdleTimeoutMS  int64           `json:"idle_timeout_ms"`
	Batch          nativeBatch     `json:"batch"`
	QueueSize      int             `json:"queue_size"`
	Selection      nativeSelection `json:"selection"`
	Traces         nativeTraces    `json:"traces"`
	Metrics        nativeMetrics   `json:"metrics"`
	Routes         nativeRoutes    `json:"routes"`
	Identity       nativeIdentity  `json:"identity"`
	TLS            nativeTLS       `json:"tls"`
	GenAI          nativeGenAI     `json:"genai"`
}

type nativeGenAI struct {
	Enabled        bool             `json:"enabled"`
	CaptureContent bool             `json:"capture_content"`
	MaxBodyBytes   int              `json:"max_body_bytes"`
	Providers      []map[string]any `json:"providers"`
}

type nativeTLS struct {
	Enabled bool `json:"enabled"`
}

type nativeTraces struct {
	Enabled bool `json:"enabled"`
}

type nativeMetrics struct {
	Enabled            bool   `json:"enabled"`
	IntervalMS         int64  `json:"interval_ms"`
	Temporality        string `json:"temporality"`
	MaxSeriesPerMetric int    `json:"max_series_per_metric"`
}

type nativeRoutes struct {
	Patterns  []string `json:"patterns"`
	Heuristic bool     `json:"heuristic"`
}

type nativeIdentity struct {
	CommandLine bool `json:"command_line"`
}

type nativeBatch struct {
	MaxSpans  int   `json:"max_spans"`
	TimeoutMS int64 `json:"timeout_ms"`
}

type nativeSelection struct {
	Include                 nativeCriteria `json:"include"`
	Exclude                 nativeCriteria `json:"exclude"`
	ContainersOnly          bool           `json:"containers_only"`
	ExcludeOTelInstrumented bool           `json:"exclude_otel_instrumented"`
}

type nativeCriteria struct {
	PIDs         []int    `json:"pids"`
	ExePaths     []string `json:"exe_paths"`
	CommandLines []string `json:"command_lines"`
	Ports        []int    `json:"ports"`
}

func nonNil[T any](xs ...[]T) []T {
	out := []T{}
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

func (c Criteria) native(extraPIDs []int) nativeCriteria {
	return nativeCriteria{
		PIDs:         nonNil(c.PIDs, extraPIDs),
		ExePaths:     nonNil(c.ExePaths),
		CommandLines: nonNil(c.CommandLines),
		Ports:        nonNil(c.Ports),
	}
}

// nativeJSON renders the configuration for the native library; traces and
// metrics say which signals some pipeline consumes (the others are not computed).
func (cfg *Config) nativeJSON(traces, metrics bool) ([]byte, error) {
	return json.Marshal(nativeConfig{
		RingBufferSize: cfg.RingBufferSize,
		CaptureSize:    cfg.CaptureSize,
		MaxConnections: cfg.MaxConnections,
		IdleTimeoutMS:  cfg.IdleTimeout.Milliseconds(),
		Batch: nativeBatch{
			MaxSpans:  cfg.Batch.MaxSpans,
			TimeoutMS: cfg.Batch.Timeout.Milliseconds(),
		},
		QueueSize: cfg.QueueSize,
		Selection: nativeSelection{
			Include:                 cfg.Selection.Include.native(nil),
			Exclude:                 cfg.Selection.Exclude.native(cfg.ExcludePIDs),
			ContainersOnly:          cfg.Selection.ContainersOnly,
			ExcludeOTelInstrumented: cfg.Selection.ExcludeOTelInstrumented,
		},
		Traces: nativeTraces{Enabled: traces},
		Metrics: nativeMetrics{
			Enabled:            metrics,
			IntervalMS:         cfg.Metrics.Interval.Milliseconds(),
			Temporality:        cfg.Metrics.Temporality,
			MaxSeriesPerMetric: cfg.Metrics.MaxSeriesPerMetric,
		},
		Routes:   nativeRoutes{Patterns: nonNil(cfg.Routes.Patterns), Heuristic: cfg.Routes.Heuristic},
		Identity: nativeIdentity{CommandLine: cfg.Identity.CommandLine},
		TLS:      nativeTLS{Enabled: cfg.TLS.Enabled},
		GenAI: nativeGenAI{
			Enabled:        cfg.GenAI.Enabled,
			CaptureContent: cfg.GenAI.CaptureContent,
			MaxBodyBytes:   cfg.GenAI.MaxBodyBytes,
			Providers:      nonNil(cfg.GenAI.Providers),
		},
	})
}
