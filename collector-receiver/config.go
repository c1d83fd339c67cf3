package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

// Config of the ebpf receiver: the library's configuration
// (ebpf-core/src/config.rs), as the collector writes it. Every field is
// optional. Defaults, limits and validation are the library's: this struct
// only gives the shape, and is converted generically (librarykeys.go): the
// same keys, except that a time.Duration field `foo` is the library's
// `foo_ms`. TestConfigParity fails when a key exists on one side only.
//
// Adding a key: declare it in the library (see the recipe in
// ebpf-core/src/config.rs), add the field here with its mapstructure tag,
// then `make docs`.
type Config struct {
	// RingBufferSize is the size in bytes of the kernel ring buffers, all
	// CPUs together: a power of two.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// CaptureSize is how many payload bytes are captured per read or write.
	CaptureSize int `mapstructure:"capture_size"`
	// MaxConnections bounds the kernel's connection table.
	MaxConnections int `mapstructure:"max_connections"`
	// IdleTimeout: a connection silent this long is forgotten.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// DataPath says where payloads are captured: auto, socket or syscall.
	DataPath string `mapstructure:"data_path"`
	// Batch says when spans are handed to the collector.
	Batch BatchConfig `mapstructure:"batch"`
	// QueueSize is how many batches wait for the collector.
	QueueSize int `mapstructure:"queue_size"`
	// Selection says which processes and connections are traced.
	Selection SelectionConfig `mapstructure:"selection"`
	// ExcludePIDs is a shorthand for selection.exclude.pids (added to it).
	ExcludePIDs []int `mapstructure:"exclude_pids" library:"-"`
	// Traces configures the spans (whether there are any follows the
	// pipelines).
	Traces TracesConfig `mapstructure:"traces"`
	// Metrics configures the RED metrics computed from every request.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// Flows configures network flow metrics (tcp.*, udp.*).
	Flows FlowsConfig `mapstructure:"flows"`
	// DNS configures DNS lookup metrics (dns.*) and the names they give peers.
	DNS DNSConfig `mapstructure:"dns"`
	// Routes configures http.route templates.
	Routes RoutesConfig `mapstructure:"routes"`
	// Identity configures what the resource of a traced process carries.
	Identity IdentityConfig `mapstructure:"identity"`
	// TLS configures HTTPS tracing.
	TLS TLSConfig `mapstructure:"tls"`
	// GenAI configures LLM API call recognition.
	GenAI GenAIConfig `mapstructure:"genai"`
	// Protocols switches application protocols on or off.
	Protocols ProtocolsConfig `mapstructure:"protocols"`
	// RecordEvents, a debugging aid, appends every raw kernel event to this
	// file (as sensitive as a packet capture).
	RecordEvents *string `mapstructure:"record_events"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// goOnlyKeys are the collector's own keys, with what they mean: the library
// has no such key (`library:"-"`).
var goOnlyKeys = map[string]string{
	"exclude_pids": "Shorthand for `selection.exclude.pids`: its pids are added to them.",
}

// receiverSetKeys are library keys the receiver sets itself: a signal is
// computed only when a pipeline of the collector consumes it.
var receiverSetKeys = map[string]bool{"traces.enabled": true, "metrics.enabled": true}

// GenAIConfig says how LLM API calls are recognised and what is kept of them.
type GenAIConfig struct {
	Enabled        bool `mapstructure:"enabled"`
	CaptureContent bool `mapstructure:"capture_content"`
	MaxBodyBytes   int  `mapstructure:"max_body_bytes"`
	// Providers are passed to the library as they are, and checked there.
	Providers []map[string]any `mapstructure:"providers"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// BatchConfig says when a batch is complete.
type BatchConfig struct {
	MaxSpans int           `mapstructure:"max_spans"`
	Timeout  time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TracesConfig says which spans are exported.
type TracesConfig struct {
	Sampling SamplingConfig `mapstructure:"sampling"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SamplingConfig keeps a ratio of ordinary requests' spans, and every
// failed or slow one.
type SamplingConfig struct {
	Ratio          float64       `mapstructure:"ratio"`
	KeepSlowerThan time.Duration `mapstructure:"keep_slower_than"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// MetricsConfig says how RED metrics are aggregated and exported.
type MetricsConfig struct {
	Interval           time.Duration `mapstructure:"interval"`
	Temporality        string        `mapstructure:"temporality"`
	MaxSeriesPerMetric int           `mapstructure:"max_series_per_metric"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// FlowsConfig says whether and how often network flows are measured.
type FlowsConfig struct {
	Enabled  bool          `mapstructure:"enabled"`
	Interval time.Duration `mapstructure:"interval"`
	UDP      bool          `mapstructure:"udp"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DNSConfig says whether DNS lookups on port 53 are measured.
type DNSConfig struct {
	Enabled bool          `mapstructure:"enabled"`
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RoutesConfig says how request paths become http.route templates.
type RoutesConfig struct {
	Patterns  []string `mapstructure:"patterns"`
	Heuristic bool     `mapstructure:"heuristic"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ProtocolsConfig has a switch per application protocol the library parses.
type ProtocolsConfig struct {
	HTTP1      ProtocolSwitch    `mapstructure:"http1"`
	HTTP2      HTTP2Config       `mapstructure:"http2"`
	PostgreSQL SQLProtocolConfig `mapstructure:"postgresql"`
	MySQL      SQLProtocolConfig `mapstructure:"mysql"`
	Redis      ProtocolSwitch    `mapstructure:"redis"`
	Memcached  ProtocolSwitch    `mapstructure:"memcached"`
	Kafka      ProtocolSwitch    `mapstructure:"kafka"`
	MongoDB    ProtocolSwitch    `mapstructure:"mongodb"`
	MQTT       ProtocolSwitch    `mapstructure:"mqtt"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// HTTP2Config turns HTTP/2 on or off, and says whether gRPC calls are
// described as RPCs.
type HTTP2Config struct {
	Enabled bool `mapstructure:"enabled"`
	GRPC    bool `mapstructure:"grpc"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ProtocolSwitch turns one protocol on or off.
type ProtocolSwitch struct {
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SQLProtocolConfig switches a SQL database protocol on or off and says what
// its spans carry of the query text (`sanitized`, `raw` or `off`).
type SQLProtocolConfig struct {
	Enabled   bool   `mapstructure:"enabled"`
	QueryText string `mapstructure:"query_text"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TLSConfig says whether HTTPS is traced.
type TLSConfig struct {
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// IdentityConfig says what identifies a traced process.
type IdentityConfig struct {
	CommandLine bool `mapstructure:"command_line"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SelectionConfig says which processes and connections are traced.
type SelectionConfig struct {
	Include                 Criteria `mapstructure:"include"`
	Exclude                 Criteria `mapstructure:"exclude"`
	ContainersOnly          bool     `mapstructure:"containers_only"`
	ExcludeOTelInstrumented bool     `mapstructure:"exclude_otel_instrumented"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Criteria match processes (any rule) and connections (ports).
type Criteria struct {
	PIDs         []int    `mapstructure:"pids"`
	ExePaths     []string `mapstructure:"exe_paths"`
	CommandLines []string `mapstructure:"command_lines"`
	Ports        []int    `mapstructure:"ports"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// createDefaultConfig is the library's default configuration. The library is
// linked in: failing to read its defaults is a build defect, not a
// configuration error, hence the panic.
func createDefaultConfig() component.Config {
	cfg, err := defaultConfig()
	if err != nil {
		panic(fmt.Sprintf("ebpf receiver: the eBPF library's defaults: %v", err))
	}
	return cfg
}

// ConfigError is one problem of a configuration, reported by the library.
type ConfigError struct {
	// Key is the collector's key (`batch.timeout`), LibraryKey the
	// library's (`batch.timeout_ms`); empty for the configuration as a whole.
	Key, LibraryKey string
	Message         string
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return e.Message
	}
	return e.Key + ": " + e.Message
}

// Validate reports every problem at once (errors.Join of *ConfigError): the
// library checks the configuration as it would receive it, without loading
// anything; Go itself only checks that durations are whole milliseconds,
// which the library cannot see.
func (cfg *Config) Validate() error {
	var errs []error
	for _, d := range durations(cfg) {
		if d.value.Truncate(time.Millisecond) != d.value {
			errs = append(errs, &ConfigError{Key: d.key, LibraryKey: d.key + "_ms",
				Message: fmt.Sprintf("must be a whole number of milliseconds, not %v", d.value)})
		}
	}
	libJSON, err := cfg.libraryJSON(true, true)
	if err != nil {
		return err
	}
	problems, err := native.ConfigProblems(libJSON)
	if err != nil {
		return fmt.Errorf("the eBPF library could not check the configuration: %w", err)
	}
	for _, p := range problems {
		errs = append(errs, &ConfigError{Key: collectorKey(p.Key), LibraryKey: p.Key, Message: p.Message})
	}
	return errors.Join(errs...)
}
