//! The receiver's configuration, as JSON handed over the C ABI, and the one
//! place its keys, defaults and limits are declared (see [`schema`]).
//! Unknown keys are rejected so a typo never silently falls back to a
//! default; every problem is reported at once, each naming its key.
//!
//! # Adding a key
//!
//! 1. Add the field to its section's struct (here or in the section's module),
//!    with a `///` comment written for users (it becomes the README's and the
//!    C ABI's description), its default in the struct's `Default`, and its
//!    bounds as attributes: `#[schemars(range(min = .., max = ..))]`,
//!    `#[schemars(length(max = ..))]` for lists, `#[schemars(extend("x-unit"
//!    = "ms"))]` (or `"bytes"`). A new section struct derives `Serialize`,
//!    `Deserialize`, `JsonSchema` with `#[serde(deny_unknown_fields,
//!    default)]`, like the others.
//! 2. Checks a schema cannot express go in the section's `check` (called
//!    from [`Config::check`]), pushing into the same [`Problems`].
//! 3. The Go receiver: add the field to `collector-receiver/config.go` with
//!    its mapstructure tag (a duration without the `_ms` suffix, as
//!    `time.Duration`); no default or limit there. `TestConfigParity` names
//!    what is missing.
//! 4. `make config-docs` regenerates the README's key table
//!    (`TestREADMEConfigTable` fails until it matches).

mod problem;
pub mod schema;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::flows::{DnsConfig, FlowsConfig};
pub use crate::metrics::MetricsConfig;
pub use crate::process::IdentityConfig;
pub use crate::protocol::genai::GenAiConfig;
pub use crate::protocol::ProtocolsConfig;
pub use crate::routes::RoutesConfig;
pub use crate::selection::SelectionConfig;
pub use crate::spans::SamplingConfig;
pub use problem::{Problem, Problems};

/// Largest payload prefix one event can carry (`OE_MAX_CAPTURE` in events.h).
pub const MAX_CAPTURE_SIZE: u32 = ebpf_probes::abi::OE_MAX_CAPTURE;

/// Largest JSON configuration accepted, in bytes (4 MiB). Every list at its
/// limit fits (65,536 pids in ~0.5 MB, 10,000 globs of 100 bytes in ~1 MB);
/// larger inputs cost memory and seconds to parse before any other check
/// (64 MiB of pids took 2.5 s and 1.1 GiB).
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// Bounds of `idle_timeout_ms`: the expiry scan runs once a second.
const MIN_IDLE_TIMEOUT_MS: u64 = 1_000;
const MAX_IDLE_TIMEOUT_MS: u64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kernel → user ring buffers, bytes in all, a power of two. Each online
    /// CPU gets a ring of the largest power of two that fits its share (at
    /// least a page).
    #[schemars(range(min = 4096), extend("x-unit" = "bytes"))]
    pub ring_buffer_size: u32,
    /// Payload bytes captured per read/write syscall. Larger sees bigger
    /// request heads; smaller costs less per event.
    #[schemars(range(min = 1, max = MAX_CAPTURE_SIZE), extend("x-unit" = "bytes"))]
    pub capture_size: u32,
    /// Connections tracked at once in the kernel table (least recently used
    /// ones are forgotten beyond that).
    #[schemars(range(min = 64))]
    pub max_connections: u32,
    /// A connection silent this long is forgotten (its close may have been
    /// lost), in userspace and in the kernel; if it is used again it is found
    /// again, with its addresses, as one opened before the receiver started.
    #[schemars(range(min = MIN_IDLE_TIMEOUT_MS, max = MAX_IDLE_TIMEOUT_MS), extend("x-unit" = "ms"))]
    pub idle_timeout_ms: u64,
    /// Where payloads are captured: `auto` (the default) takes the socket
    /// layer where the kernel has its tracepoints (Linux 6.3+) and the
    /// syscalls' exits elsewhere; `socket` or `syscall` force one (`socket`
    /// fails to start on an older kernel).
    pub data_path: DataPathChoice,
    pub batch: BatchConfig,
    /// Batches waiting for the host to poll; beyond that a batch is dropped and counted.
    #[schemars(range(min = 1))]
    pub queue_size: usize,
    /// Which processes and connections are traced (default: all but this process).
    pub selection: SelectionConfig,
    /// What identifies a traced process in its resource.
    pub identity: IdentityConfig,
    pub traces: TracesConfig,
    /// RED metrics computed from every request (not from sampled spans).
    pub metrics: MetricsConfig,
    /// Network flows: bytes, packets, retransmissions, RTT and connections per
    /// process and peer (`tcp.*`, `udp.*`), exported with the metrics.
    pub flows: FlowsConfig,
    /// DNS lookups seen on port 53 (`dns.*`), and the names they give peers.
    pub dns: DnsConfig,
    /// `http.route` templates for span names and metric attributes.
    pub routes: RoutesConfig,
    /// HTTPS: plaintext captured at OpenSSL's SSL_read/SSL_write with uprobes.
    pub tls: TlsConfig,
    /// LLM API calls (OpenAI-compatible, Anthropic, Gemini, Ollama and
    /// user-defined providers): `gen_ai.*` spans and metrics.
    pub genai: GenAiConfig,
    /// Which application protocols are parsed. A connection no enabled
    /// protocol recognises is muted in the kernel after its first payload.
    pub protocols: ProtocolsConfig,
    /// Debugging aid, off by default: append every raw kernel event to this
    /// file, to replay later. It holds payload prefixes, so it is as
    /// sensitive as a packet capture.
    pub record_events: Option<String>,
}

/// `data_path`: see [`Config::data_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataPathChoice {
    /// The socket layer where the kernel has its tracepoints, else the syscalls.
    #[default]
    Auto,
    /// Socket-layer tracepoints (Linux 6.3+).
    Socket,
    /// Syscall tracepoints (the fallback for Linux 5.15-6.2).
    Syscall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Emit a span per request. The collector receiver sets it from its
    /// pipelines (on when a traces pipeline uses the receiver).
    pub enabled: bool,
    /// Which requests become spans (errors and slow requests always do).
    pub sampling: SamplingConfig,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self { enabled: true, sampling: SamplingConfig::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Trace HTTPS: attach uprobes to the OpenSSL libraries and Go
    /// executables processes use (`url.scheme` https).
    pub enabled: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// A batch is handed over when it holds this many spans...
    #[schemars(range(min = 1))]
    pub max_spans: usize,
    /// ...or when its oldest span has waited this long.
    #[schemars(range(min = 1), extend("x-unit" = "ms"))]
    pub timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ring_buffer_size: 8 << 20,
            capture_size: 1024,
            max_connections: 65536,
            idle_timeout_ms: 300_000,
            data_path: DataPathChoice::Auto,
            batch: BatchConfig::default(),
            queue_size: 64,
            selection: SelectionConfig::default(),
            identity: IdentityConfig::default(),
            traces: TracesConfig::default(),
            metrics: MetricsConfig::default(),
            flows: FlowsConfig::default(),
            dns: DnsConfig::default(),
            routes: RoutesConfig::default(),
            tls: TlsConfig::default(),
            genai: GenAiConfig::default(),
            protocols: ProtocolsConfig::default(),
            record_events: None,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_spans: 1024, timeout_ms: 1000 }
    }
}

/// A configuration that cannot be used: every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub Problems);

impl ConfigError {
    /// An error of one problem.
    pub fn one(key: impl Into<String>, message: impl Into<String>) -> Self {
        let mut problems = Problems::default();
        problems.push(key, message);
        Self(problems)
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.0.list()
    }
}

impl Problems {
    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self))
        }
    }
}

/// Rejects a JSON configuration of more than [`MAX_CONFIG_BYTES`] before
/// reading it; hosts may call it on raw bytes (the C ABI does, before UTF-8).
pub fn check_json_size(bytes: usize) -> Result<(), ConfigError> {
    if bytes > MAX_CONFIG_BYTES {
        return Err(ConfigError::one(
            "",
            format!("{bytes} bytes of JSON: at most {MAX_CONFIG_BYTES} (4 MiB) are accepted"),
        ));
    }
    Ok(())
}

impl Config {
    /// Parses and validates a JSON config; `{}` (or empty input) gives the
    /// defaults. Inputs over [`MAX_CONFIG_BYTES`] are refused unread.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        check_json_size(json.len())?;
        if json.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ConfigError::one("", format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ConfigError::one("", "the top level must be a JSON object"));
        }
        let mut problems = Problems::default();
        // Leaves what deserializes: the typed config's own checks run on
        // the rest, so that every problem is found at once.
        schema::check(&mut value, &mut problems);
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(config) => {
                config.check(&mut problems);
                problems.into_result()?;
                Ok(config)
            }
            Err(e) => {
                if problems.is_empty() {
                    problems.push(e.path().to_string(), e.into_inner().to_string());
                }
                Err(ConfigError(problems))
            }
        }
    }

    /// Every problem of a config built in code (`from_json` validates what it parses).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        let mut value = serde_json::to_value(self).map_err(|e| ConfigError::one("", e.to_string()))?;
        schema::check(&mut value, &mut problems);
        self.check(&mut problems);
        problems.into_result()
    }

    /// What the schema cannot say; keys that already have a problem are
    /// skipped (a list over its limit is never compiled).
    fn check(&self, problems: &mut Problems) {
        if !problems.touch("ring_buffer_size") && !self.ring_buffer_size.is_power_of_two() {
            problems.push("ring_buffer_size", format!("must be a power of two, not {}", self.ring_buffer_size));
        }
        self.selection.check(problems);
        self.traces.sampling.check(problems);
        self.routes.check(problems);
        self.genai.check(problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, message) of every problem of `json`; empty when it is valid.
    fn problems(json: &str) -> Vec<(String, String)> {
        match Config::from_json(json) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().into_iter().map(|p| (p.key, p.message)).collect(),
        }
    }

    fn one_problem(json: &str) -> (String, String) {
        let mut all = problems(json);
        assert_eq!(all.len(), 1, "{json}: {all:?}");
        all.remove(0)
    }

    fn list<T: ToString>(items: impl Iterator<Item = T>, quote: bool) -> String {
        let q = if quote { "\"" } else { "" };
        items.map(|i| format!("{q}{}{q}", i.to_string())).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn empty_and_braces_give_defaults() {
        assert_eq!(Config::from_json("").unwrap(), Config::default());
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn partial_config_keeps_other_defaults() {
        let c = Config::from_json(r#"{"capture_size": 256, "batch": {"timeout_ms": 200}}"#).unwrap();
        assert_eq!(c.capture_size, 256);
        assert_eq!(c.batch.timeout_ms, 200);
        assert_eq!(c.batch.max_spans, 1024);
        assert_eq!(c.ring_buffer_size, 8 << 20);
    }

    #[test]
    fn tls_is_on_by_default_and_can_be_switched_off() {
        assert!(Config::default().tls.enabled);
        assert!(!Config::from_json(r#"{"tls": {"enabled": false}}"#).unwrap().tls.enabled);
        assert_eq!(one_problem(r#"{"tls": {"enable": false}}"#).0, "tls.enable");
    }

    #[test]
    fn protocols_can_be_switched_off_by_name() {
        assert!(Config::default().protocols.http1.enabled);
        let c = Config::from_json(r#"{"protocols": {"http1": {"enabled": false}}}"#).unwrap();
        assert!(!c.protocols.http1.enabled);
        let (key, message) = one_problem(r#"{"protocols": {"http9": {"enabled": false}}}"#);
        assert_eq!(key, "protocols.http9");
        assert!(message.starts_with("unknown key (known here: http1"), "{message}");
        assert_eq!(one_problem(r#"{"protocols": {"http1": {"on": true}}}"#).0, "protocols.http1.on");
        assert_eq!(one_problem(r#"{"protocols": {"http1": false}}"#).0, "protocols.http1");
    }

    #[test]
    fn flows_and_dns_are_on_by_default_and_can_be_switched_off() {
        let c = Config::default();
        assert!(c.flows.enabled && c.flows.udp && c.dns.enabled);
        assert_eq!((c.flows.interval_ms, c.dns.timeout_ms), (10_000, 5_000));
        let c = Config::from_json(r#"{"flows": {"enabled": false, "udp": false}, "dns": {"enabled": false}}"#).unwrap();
        assert!(!c.flows.enabled && !c.flows.udp && !c.dns.enabled);
        assert_eq!(one_problem(r#"{"flows": {"interval": 5}}"#).0, "flows.interval");
        assert_eq!(
            one_problem(r#"{"flows": {"interval_ms": 999}}"#),
            ("flows.interval_ms".into(), "must be between 1000 ms and 3600000 ms, not 999 ms".into())
        );
        assert_eq!(
            one_problem(r#"{"dns": {"timeout_ms": 600001}}"#),
            ("dns.timeout_ms".into(), "must be between 100 ms and 600000 ms, not 600001 ms".into())
        );
    }

    #[test]
    fn data_path_is_auto_by_default_and_can_be_forced() {
        assert_eq!(Config::default().data_path, DataPathChoice::Auto);
        for (json, want) in
            [("auto", DataPathChoice::Auto), ("socket", DataPathChoice::Socket), ("syscall", DataPathChoice::Syscall)]
        {
            let c = Config::from_json(&format!(r#"{{"data_path": "{json}"}}"#)).unwrap();
            assert_eq!(c.data_path, want);
        }
        let (key, message) = one_problem(r#"{"data_path": "kprobe"}"#);
        assert_eq!(key, "data_path");
        assert!(message.contains("kprobe"), "{message}");
    }

    #[test]
    fn unknown_key_is_named_with_the_known_ones() {
        let (key, message) = one_problem(r#"{"batch": {"max_span": 1}}"#);
        assert_eq!(key, "batch.max_span");
        assert_eq!(message, "unknown key (known here: max_spans, timeout_ms)");
    }

    #[test]
    fn every_bound_is_named_with_its_range_and_unit() {
        for (json, key, message) in [
            (r#"{"ring_buffer_size": 5000}"#, "ring_buffer_size", "must be a power of two, not 5000"),
            (
                r#"{"ring_buffer_size": 2048}"#,
                "ring_buffer_size",
                "must be between 4096 bytes and 4294967295 bytes, not 2048 bytes",
            ),
            (r#"{"capture_size": 0}"#, "capture_size", "must be between 1 bytes and 4096 bytes, not 0 bytes"),
            (r#"{"capture_size": 4097}"#, "capture_size", "must be between 1 bytes and 4096 bytes, not 4097 bytes"),
            (r#"{"max_connections": 63}"#, "max_connections", "must be between 64 and 4294967295, not 63"),
            (
                r#"{"max_connections": 4294967296}"#,
                "max_connections",
                "must be between 64 and 4294967295, not 4294967296",
            ),
            (r#"{"batch": {"max_spans": 0}}"#, "batch.max_spans", "must be at least 1, not 0"),
            (r#"{"batch": {"timeout_ms": 0}}"#, "batch.timeout_ms", "must be at least 1 ms, not 0 ms"),
            (r#"{"batch": {"timeout_ms": -1}}"#, "batch.timeout_ms", "must be at least 1 ms, not -1 ms"),
            (r#"{"idle_timeout_ms": 999}"#, "idle_timeout_ms", "must be between 1000 ms and 86400000 ms, not 999 ms"),
            (
                r#"{"idle_timeout_ms": 86400001}"#,
                "idle_timeout_ms",
                "must be between 1000 ms and 86400000 ms, not 86400001 ms",
            ),
            (r#"{"queue_size": 0}"#, "queue_size", "must be at least 1, not 0"),
            (
                r#"{"metrics": {"interval_ms": 99}}"#,
                "metrics.interval_ms",
                "must be between 100 ms and 86400000 ms, not 99 ms",
            ),
            (
                r#"{"metrics": {"max_series_per_metric": 1000001}}"#,
                "metrics.max_series_per_metric",
                "must be between 1 and 1000000, not 1000001",
            ),
            (
                r#"{"genai": {"max_body_bytes": 4095}}"#,
                "genai.max_body_bytes",
                "must be between 4096 bytes and 67108864 bytes, not 4095 bytes",
            ),
            (
                r#"{"selection": {"include": {"pids": [1, 0]}}}"#,
                "selection.include.pids[1]",
                "must be between 1 and 4294967295, not 0",
            ),
            (
                r#"{"selection": {"exclude": {"ports": [70000]}}}"#,
                "selection.exclude.ports[0]",
                "must be between 1 and 65535, not 70000",
            ),
        ] {
            assert_eq!(one_problem(json), (key.to_string(), message.to_string()), "{json}");
        }
        // Exactly at the bounds: accepted.
        for json in [
            r#"{"ring_buffer_size": 4096, "capture_size": 4096, "max_connections": 64, "idle_timeout_ms": 1000}"#,
            r#"{"ring_buffer_size": 2147483648, "capture_size": 1, "max_connections": 4294967295}"#,
            r#"{"idle_timeout_ms": 86400000, "batch": {"max_spans": 1, "timeout_ms": 1}, "queue_size": 1}"#,
            r#"{"metrics": {"interval_ms": 100, "max_series_per_metric": 1000000}, "genai": {"max_body_bytes": 67108864}}"#,
            r#"{"selection": {"include": {"pids": [1, 4294967295], "ports": [1, 65535]}}}"#,
        ] {
            assert_eq!(problems(json), [], "{json}");
        }
    }

    #[test]
    fn wrong_types_name_their_key() {
        assert_eq!(
            one_problem(r#"{"capture_size": "big"}"#),
            ("capture_size".into(), r#"must be an integer, not "big""#.into())
        );
        assert_eq!(
            one_problem(r#"{"capture_size": 1.5}"#),
            ("capture_size".into(), "must be an integer, not 1.5".into())
        );
        assert_eq!(
            one_problem(r#"{"tls": {"enabled": "yes"}}"#),
            ("tls.enabled".into(), r#"must be true or false, not "yes""#.into())
        );
        assert_eq!(
            one_problem(r#"{"routes": {"patterns": null}}"#),
            ("routes.patterns".into(), "must be a list, not null".into())
        );
        assert_eq!(one_problem(r#"{"batch": 5}"#), ("batch".into(), "must be a map of keys, not 5".into()));
        assert_eq!(
            one_problem(r#"{"metrics": {"temporality": "sometimes"}}"#),
            ("metrics.temporality".into(), r#"must be one of "cumulative", "delta", not "sometimes""#.into())
        );
        assert_eq!(
            one_problem(r#"{"record_events": 1}"#),
            ("record_events".into(), "must be a string or null, not 1".into())
        );
        assert_eq!(
            one_problem(r#"{"genai": {"providers": [{"name": "p", "endpoints": [{"path": "/x"}]}]}}"#),
            ("genai.providers[0].endpoints[0].operation".into(), "is required".into()),
        );
    }

    /// The point of the schema: a user fixes everything in one go.
    #[test]
    fn every_problem_at_once() {
        let json = r#"{
            "capture_size": 0, "ring_buffer_size": 5000, "bogus": 1,
            "metrics": {"temporality": "sometimes", "interval_ms": 5},
            "selection": {"include": {"exe_paths": ["/usr/bin/[oops"]}},
            "routes": {"patterns": ["users/{id}"]},
            "genai": {"max_body_bytes": 100}
        }"#;
        let keys: Vec<String> = problems(json).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "bogus",
                "capture_size",
                "genai.max_body_bytes",
                "metrics.interval_ms",
                "metrics.temporality",
                "ring_buffer_size",
                "selection.include.exe_paths",
                "routes.patterns",
            ]
        );
        // Out of bounds but typed: its other checks still run.
        let all = problems(r#"{"capture_size": 0, "routes": {"patterns": ["nope"]}}"#);
        assert_eq!(all.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["capture_size", "routes.patterns"]);
        assert!(all[1].1.contains(r#""nope""#), "{all:?}");
    }

    #[test]
    fn a_config_built_in_code_is_checked_the_same() {
        let c = Config { capture_size: 0, ring_buffer_size: 5000, ..Config::default() };
        let err = c.validate().unwrap_err();
        let keys: Vec<String> = err.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["capture_size", "ring_buffer_size"]);
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(one_problem("{").1.starts_with("not valid JSON: EOF"));
        assert_eq!(one_problem("[]").1, "the top level must be a JSON object");
    }

    #[test]
    fn config_size_is_capped() {
        // Exactly at the limit (whitespace inside braces): accepted.
        let at = format!("{{{}}}", " ".repeat(MAX_CONFIG_BYTES - 2));
        assert_eq!(at.len(), MAX_CONFIG_BYTES);
        assert_eq!(Config::from_json(&at).unwrap(), Config::default());
        // One byte over: refused, with the size and the limit.
        let over = format!("{{{}}}", " ".repeat(MAX_CONFIG_BYTES - 1));
        let err = Config::from_json(&over).unwrap_err().to_string();
        assert!(err.contains("4194305 bytes of JSON: at most 4194304 (4 MiB)"), "{err}");
        assert!(check_json_size(MAX_CONFIG_BYTES).is_ok());
        assert!(check_json_size(MAX_CONFIG_BYTES + 1).is_err());
    }

    #[test]
    fn route_patterns_are_capped() {
        let patterns = |n: usize| list((0..n).map(|i| format!("/r{i}/{{id}}")), true);
        let at = format!(r#"{{"routes": {{"patterns": [{}]}}}}"#, patterns(10_000));
        assert_eq!(Config::from_json(&at).unwrap().routes.patterns.len(), 10_000);
        let over = format!(r#"{{"routes": {{"patterns": [{}]}}}}"#, patterns(10_001));
        assert_eq!(
            one_problem(&over),
            ("routes.patterns".into(), "has 10001 entries: at most 10000 are allowed".into())
        );
    }

    #[test]
    fn genai_provider_lists_are_capped() {
        let provider = |i: usize, hosts: usize, endpoints: usize| {
            let hosts = list((0..hosts).map(|h| format!("h{i}-{h}.example")), true);
            let endpoints = (0..endpoints)
                .map(|e| format!(r#"{{"path": "/p{i}/{e}/{{model}}", "operation": "chat"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            format!(r#"{{"name": "p{i}", "inherit": "openai", "hosts": [{hosts}], "endpoints": [{endpoints}]}}"#)
        };
        let config = |providers: Vec<String>| format!(r#"{{"genai": {{"providers": [{}]}}}}"#, providers.join(","));
        let check = |json: String, want: Option<&str>| match (problems(&json).as_slice(), want) {
            ([], None) => {}
            ([(key, message)], Some(want)) => assert_eq!((key.as_str(), message.as_str()), ("genai.providers", want)),
            (got, want) => panic!("{want:?}: {got:?}"),
        };
        check(config((0..1000).map(|i| provider(i, 0, 0)).collect()), None);
        check(
            config((0..=1000).map(|i| provider(i, 0, 0)).collect()),
            Some("has 1001 entries: at most 1000 are allowed"),
        );
        // Hosts and endpoints count across providers: 4 × 2,500 is the limit.
        check(config((0..4).map(|i| provider(i, 2500, 2500)).collect()), None);
        check(
            config((0..4).map(|i| provider(i, 2500 + usize::from(i == 3), 0)).collect()),
            Some("10001 hosts in all providers together: at most 10000 are allowed"),
        );
        check(
            config((0..4).map(|i| provider(i, 0, 2500 + usize::from(i == 0))).collect()),
            Some("10001 endpoints in all providers together: at most 10000 are allowed"),
        );
    }

    fn selection(json: &str) -> String {
        format!(r#"{{"selection": {json}}}"#)
    }

    #[test]
    fn pid_lists_are_capped() {
        for side in ["include", "exclude"] {
            let at = selection(&format!(r#"{{"{side}": {{"pids": [{}]}}}}"#, list(1..=65_536u32, false)));
            assert_eq!(problems(&at), [], "{side}: exactly at the limit");
            let over = selection(&format!(r#"{{"{side}": {{"pids": [{}]}}}}"#, list(1..=65_537u32, false)));
            assert_eq!(
                one_problem(&over),
                (format!("selection.{side}.pids"), "has 65537 entries: at most 65536 are allowed".into())
            );
        }
    }

    #[test]
    fn glob_lists_are_capped() {
        for side in ["include", "exclude"] {
            for key in ["exe_paths", "command_lines"] {
                let globs = |n| list((0..n).map(|i| format!("/usr/bin/app{i}*")), true);
                let at = selection(&format!(r#"{{"{side}": {{"{key}": [{}]}}}}"#, globs(10_000)));
                assert_eq!(problems(&at), [], "{side}.{key}: exactly at the limit");
                let over = selection(&format!(r#"{{"{side}": {{"{key}": [{}]}}}}"#, globs(10_001)));
                assert_eq!(
                    one_problem(&over),
                    (format!("selection.{side}.{key}"), "has 10001 entries: at most 10000 are allowed".into())
                );
            }
        }
    }

    #[test]
    fn glob_bytes_are_capped_per_list() {
        // 64 globs of 4 KiB: exactly 256 KiB, then one byte more.
        let glob = |i: usize, extra: usize| format!("/{}{i:04}", "a".repeat(4096 - 5 + extra));
        let at = list((0..64).map(|i| glob(i, 0)), true);
        assert_eq!(problems(&selection(&format!(r#"{{"exclude": {{"exe_paths": [{at}]}}}}"#))), []);
        let over = list((0..64).map(|i| glob(i, usize::from(i == 63))), true);
        let (key, message) = one_problem(&selection(&format!(r#"{{"exclude": {{"command_lines": [{over}]}}}}"#)));
        assert_eq!(key, "selection.exclude.command_lines");
        assert!(message.starts_with("holds 262145 bytes of globs: at most 262144 are allowed"), "{message}");
    }

    #[test]
    fn distinct_ports_are_capped_across_include_and_exclude() {
        let ports = |r: std::ops::Range<u32>| list(r, false);
        // 1,024 distinct: half included, half excluded, with repeats.
        let at = format!(
            r#"{{"include": {{"ports": [{},1]}}, "exclude": {{"ports": [{},1]}}}}"#,
            ports(1..513),
            ports(513..1025)
        );
        assert_eq!(problems(&selection(&at)), [], "exactly at the limit");
        let over = format!(
            r#"{{"include": {{"ports": [{}]}}, "exclude": {{"ports": [{}]}}}}"#,
            ports(1..513),
            ports(513..1026)
        );
        let (key, message) = one_problem(&selection(&over));
        assert_eq!(key, "selection.include.ports");
        assert!(
            message.starts_with(
                "1025 distinct ports in selection.include.ports and selection.exclude.ports: at most 1024"
            ),
            "{message}"
        );
    }

    #[test]
    fn bad_globs_are_named() {
        let (key, message) = one_problem(&selection(r#"{"include": {"exe_paths": ["/usr/bin/[oops"]}}"#));
        assert_eq!(key, "selection.include.exe_paths");
        assert!(message.contains("/usr/bin/[oops"), "{message}");
    }

    #[test]
    fn a_million_bad_entries_make_a_short_error() {
        let pids = list(std::iter::repeat_n(0, 60_000), false);
        let err = Config::from_json(&selection(&format!(r#"{{"exclude": {{"pids": [{pids}]}}}}"#))).unwrap_err();
        assert_eq!(err.problems().len(), 51);
        assert!(err.to_string().len() < 5000, "{err}");
    }

    /// The schema lists every key of the config types, each described, with
    /// the defaults of `Config::default()`.
    #[test]
    fn keys_cover_the_whole_config() {
        let keys = schema::keys();
        let mut leaves = Vec::new();
        fn walk(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
            for (k, v) in v.as_object().unwrap() {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                if v.is_object() {
                    walk(v, &key, out);
                } else {
                    out.push((key, v.clone()));
                }
            }
        }
        walk(&serde_json::to_value(Config::default()).unwrap(), "", &mut leaves);
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        let from_schema: Vec<(String, serde_json::Value)> =
            keys.iter().map(|k| (k.key.clone(), k.default.clone())).collect();
        assert_eq!(from_schema, leaves);
        for k in &keys {
            assert!(k.description.len() > 10, "{} needs a /// description for users", k.key);
            assert_eq!(
                k.key.ends_with("_ms"),
                k.unit.as_deref() == Some("ms"),
                "{}: `_ms` keys, and only they, are in ms",
                k.key
            );
        }
    }
}
