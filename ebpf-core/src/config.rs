//! The receiver's configuration, as JSON handed over the C ABI. Unknown keys
//! are rejected so a typo never silently falls back to a default.

use serde::Deserialize;

pub use crate::metrics::MetricsConfig;
pub use crate::process::IdentityConfig;
pub use crate::protocol::genai::GenAiConfig;
pub use crate::routes::RoutesConfig;
pub use crate::selection::SelectionConfig;
use crate::selection::{Selector, SelectorError};

/// Largest payload prefix one event can carry (`OE_MAX_CAPTURE` in events.h).
pub const MAX_CAPTURE_SIZE: u32 = ebpf_probes::abi::OE_MAX_CAPTURE;

/// Largest JSON configuration accepted, in bytes (4 MiB). Every list at its
/// limit fits (65,536 pids in ~0.5 MB, 10,000 globs of 100 bytes in ~1 MB);
/// larger inputs cost memory and seconds to parse before any other check
/// (64 MiB of pids took 2.5 s and 1.1 GiB).
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// Most `routes.patterns`: each is tried in order on every server request.
pub const MAX_ROUTE_PATTERNS: usize = 10_000;

/// Most `genai.providers`: 1,000 build in 0.1 s; 40,000 took 6 s and 1.4 GiB.
pub const MAX_GENAI_PROVIDERS: usize = 1000;

/// Most host globs, and most endpoints, of all `genai.providers` together
/// (each provider's hosts compile into a matcher of their own: 1,000
/// providers of 350 hosts took 3 s and 400 MiB).
pub const MAX_GENAI_HOSTS: usize = 10_000;
/// Bounds of `idle_timeout_ms`: the expiry scan runs once a second.
pub const MIN_IDLE_TIMEOUT_MS: u64 = 1_000;
pub const MAX_IDLE_TIMEOUT_MS: u64 = 86_400_000;
pub const MAX_GENAI_ENDPOINTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kernel → user ring buffers, bytes in all: a power of two, at least
    /// one page. Each online CPU gets a ring of the largest power of two
    /// that fits its share (at least a page).
    pub ring_buffer_size: u32,
    /// Payload bytes captured per read/write syscall (1..=4096). Larger sees
    /// bigger request heads; smaller costs less per event.
    pub capture_size: u32,
    /// Connections tracked at once in the kernel table (LRU beyond that).
    pub max_connections: u32,
    /// A connection silent this long is forgotten (its close may have been
    /// lost), in userspace and in the kernel; if it is used again it is found
    /// again, with its addresses, as one opened before the receiver started.
    pub idle_timeout_ms: u64,
    pub batch: BatchConfig,
    /// Batches waiting for the host to poll; beyond that a batch is dropped and counted.
    pub queue_size: usize,
    /// Which processes and connections are traced (default: all but this process).
    pub selection: SelectionConfig,
    /// What identifies a traced process in its resource.
    pub identity: IdentityConfig,
    pub traces: TracesConfig,
    /// RED metrics computed from every request (not from sampled spans).
    pub metrics: MetricsConfig,
    /// `http.route` templates for span names and metric attributes.
    pub routes: RoutesConfig,
    /// HTTPS: plaintext captured at OpenSSL's SSL_read/SSL_write with uprobes.
    pub tls: TlsConfig,
    /// LLM API calls (OpenAI-compatible, Anthropic, Gemini, Ollama and
    /// user-defined providers): `gen_ai.*` spans and metrics.
    pub genai: GenAiConfig,
    /// Debugging aid, off by default: append every raw kernel event to this
    /// file (length-prefixed, see `events::recording`). It holds payload
    /// prefixes, so it is as sensitive as a packet capture.
    pub record_events: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Emit a span per request.
    pub enabled: bool,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Attach uprobes to the OpenSSL libraries processes use (`url.scheme` https).
    pub enabled: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// A batch is sent when it holds this many spans...
    pub max_spans: usize,
    /// ...or when its oldest span has waited this long.
    pub timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ring_buffer_size: 8 << 20,
            capture_size: 1024,
            max_connections: 65536,
            idle_timeout_ms: 300_000,
            batch: BatchConfig::default(),
            queue_size: 64,
            selection: SelectionConfig::default(),
            identity: IdentityConfig::default(),
            traces: TracesConfig::default(),
            metrics: MetricsConfig::default(),
            routes: RoutesConfig::default(),
            tls: TlsConfig::default(),
            genai: GenAiConfig::default(),
            record_events: None,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_spans: 1024, timeout_ms: 1000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Selection(#[from] SelectorError),
    #[error(transparent)]
    Route(#[from] crate::routes::RouteError),
    #[error("invalid config: {path}: {message}")]
    Field { path: String, message: String },
    #[error("invalid config: the top level must be a JSON object")]
    NotAnObject,
    #[error("invalid config: {field} = {value}: {reason}")]
    Value { field: &'static str, value: String, reason: &'static str },
    #[error("invalid config: genai: {0}")]
    GenAi(String),
    #[error("invalid config: {bytes} bytes of JSON: at most {limit} (4 MiB) are accepted")]
    TooLarge { bytes: usize, limit: usize },
    #[error("invalid config: {field} has {count} entries: at most {limit} are allowed")]
    TooMany { field: &'static str, count: usize, limit: usize },
}

/// Rejects a JSON configuration of more than [`MAX_CONFIG_BYTES`] before
/// reading it; hosts may call it on raw bytes (the C ABI does, before UTF-8).
pub fn check_json_size(bytes: usize) -> Result<(), ConfigError> {
    if bytes > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { bytes, limit: MAX_CONFIG_BYTES });
    }
    Ok(())
}

impl Config {
    /// Parses and validates a JSON config; `{}` (or empty input) gives the
    /// defaults. Inputs over [`MAX_CONFIG_BYTES`] are refused unread.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        check_json_size(json.len())?;
        let config: Config = if json.trim().is_empty() {
            Config::default()
        } else {
            let value: serde_json::Value = serde_json::from_str(json)?;
            if !value.is_object() {
                return Err(ConfigError::NotAnObject);
            }
            // The path names the key of a bad value ("capture_size: invalid type ...").
            serde_path_to_error::deserialize(value)
                .map_err(|e| ConfigError::Field { path: e.path().to_string(), message: e.into_inner().to_string() })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Lists outside `selection` within their limits, before anything is compiled.
    fn check_list_sizes(&self) -> Result<(), ConfigError> {
        let providers = &self.genai.providers;
        for (field, count, limit) in [
            ("routes.patterns", self.routes.patterns.len(), MAX_ROUTE_PATTERNS),
            ("genai.providers", providers.len(), MAX_GENAI_PROVIDERS),
            (
                "genai.providers[].hosts (every provider's together)",
                providers.iter().map(|p| p.hosts.len()).sum(),
                MAX_GENAI_HOSTS,
            ),
            (
                "genai.providers[].endpoints (every provider's together)",
                providers.iter().map(|p| p.endpoints.len()).sum(),
                MAX_GENAI_ENDPOINTS,
            ),
        ] {
            if count > limit {
                return Err(ConfigError::TooMany { field, count, limit });
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |field, value: &dyn ToString, reason| Err(ConfigError::Value { field, value: value.to_string(), reason });
        if !self.ring_buffer_size.is_power_of_two() || self.ring_buffer_size < 4096 {
            return bad("ring_buffer_size", &self.ring_buffer_size, "must be a power of two >= 4096");
        }
        if self.capture_size == 0 || self.capture_size > MAX_CAPTURE_SIZE {
            return bad("capture_size", &self.capture_size, "must be between 1 and 4096");
        }
        if self.max_connections < 64 {
            return bad("max_connections", &self.max_connections, "must be at least 64");
        }
        if !(MIN_IDLE_TIMEOUT_MS..=MAX_IDLE_TIMEOUT_MS).contains(&self.idle_timeout_ms) {
            return bad("idle_timeout_ms", &self.idle_timeout_ms, "must be between 1000 (1 s) and 86400000 (24 h)");
        }
        if self.batch.max_spans == 0 {
            return bad("batch.max_spans", &self.batch.max_spans, "must be at least 1");
        }
        if self.batch.timeout_ms == 0 {
            return bad("batch.timeout_ms", &self.batch.timeout_ms, "must be at least 1");
        }
        if self.queue_size == 0 {
            return bad("queue_size", &self.queue_size, "must be at least 1");
        }
        self.check_list_sizes()?;
        // The selector checks its own lists' sizes before compiling anything.
        Selector::new(&self.selection)?;
        self.metrics.validate()?;
        self.routes.validate()?;
        crate::protocol::genai::Catalog::new(&self.genai).map_err(ConfigError::GenAi)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_braces_give_defaults() {
        assert_eq!(Config::from_json("").unwrap(), Config::default());
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
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
        assert!(Config::from_json(r#"{"tls": {"enable": false}}"#).is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_json(r#"{"captur_size": 1}"#).unwrap_err().to_string();
        assert!(err.contains("captur_size"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        for (json, field) in [
            (r#"{"ring_buffer_size": 5000}"#, "ring_buffer_size"),
            (r#"{"capture_size": 0}"#, "capture_size"),
            (r#"{"capture_size": 4097}"#, "capture_size"),
            (r#"{"batch": {"max_spans": 0}}"#, "batch.max_spans"),
            (r#"{"batch": {"timeout_ms": 0}}"#, "batch.timeout_ms"),
            (r#"{"idle_timeout_ms": 999}"#, "idle_timeout_ms"),
            (r#"{"idle_timeout_ms": 86400001}"#, "idle_timeout_ms"),
            (r#"{"queue_size": 0}"#, "queue_size"),
        ] {
            let err = Config::from_json(json).unwrap_err().to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn wrong_type_names_its_key() {
        let err = Config::from_json(r#"{"capture_size": "big"}"#).unwrap_err().to_string();
        assert!(err.contains("capture_size") && err.contains("invalid type"), "{err}");
        let err = Config::from_json(r#"{"batch": {"timeout_ms": -1}}"#).unwrap_err().to_string();
        assert!(err.contains("batch.timeout_ms"), "{err}");
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(Config::from_json("{").is_err());
        assert!(Config::from_json("[]").is_err());
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
        let patterns = |n: usize| (0..n).map(|i| format!("\"/r{i}/{{id}}\"")).collect::<Vec<_>>().join(",");
        let at = format!(r#"{{"routes": {{"patterns": [{}]}}}}"#, patterns(MAX_ROUTE_PATTERNS));
        assert_eq!(Config::from_json(&at).unwrap().routes.patterns.len(), MAX_ROUTE_PATTERNS);
        let over = format!(r#"{{"routes": {{"patterns": [{}]}}}}"#, patterns(MAX_ROUTE_PATTERNS + 1));
        let err = Config::from_json(&over).unwrap_err().to_string();
        assert!(err.contains("routes.patterns has 10001 entries: at most 10000 are allowed"), "{err}");
    }

    #[test]
    fn genai_provider_lists_are_capped() {
        let provider = |i: usize, hosts: usize, endpoints: usize| {
            let hosts = (0..hosts).map(|h| format!("\"h{i}-{h}.example\"")).collect::<Vec<_>>().join(",");
            let endpoints = (0..endpoints)
                .map(|e| format!(r#"{{"path": "/p{i}/{e}/{{model}}", "operation": "chat"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            format!(r#"{{"name": "p{i}", "inherit": "openai", "hosts": [{hosts}], "endpoints": [{endpoints}]}}"#)
        };
        let config = |providers: Vec<String>| format!(r#"{{"genai": {{"providers": [{}]}}}}"#, providers.join(","));
        let check = |json: String, want: Option<&str>| match (Config::from_json(&json), want) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{e}"),
            (got, want) => panic!("{want:?}: {got:?}"),
        };
        check(config((0..MAX_GENAI_PROVIDERS).map(|i| provider(i, 0, 0)).collect()), None);
        check(
            config((0..=MAX_GENAI_PROVIDERS).map(|i| provider(i, 0, 0)).collect()),
            Some("genai.providers has 1001 entries: at most 1000 are allowed"),
        );
        // Hosts and endpoints count across providers: 4 × 2,500 is the limit.
        check(config((0..4).map(|i| provider(i, 2500, 2500)).collect()), None);
        check(
            config((0..4).map(|i| provider(i, 2500 + usize::from(i == 3), 0)).collect()),
            Some("genai.providers[].hosts (every provider's together) has 10001 entries: at most 10000"),
        );
        check(
            config((0..4).map(|i| provider(i, 0, 2500 + usize::from(i == 0))).collect()),
            Some("genai.providers[].endpoints (every provider's together) has 10001 entries: at most 10000"),
        );
    }

    #[test]
    fn selection_limits_are_config_errors() {
        let pids = (1..=65_537).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        let err = Config::from_json(&format!(r#"{{"selection": {{"exclude": {{"pids": [{pids}]}}}}}}"#)).unwrap_err();
        assert!(matches!(err, ConfigError::Selection(_)), "{err:?}");
        assert!(err.to_string().contains("selection.exclude.pids has 65537 entries: at most 65536"), "{err}");
    }
}
