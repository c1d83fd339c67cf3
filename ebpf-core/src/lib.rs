//! otel-ebpf core: eBPF probes in, OTLP batches out.
//!
//! The data path reads top-down through the modules: `probes` (load, attach,
//! read the per-CPU ring buffers and merge them in time order) → `events`
//! (decode ring-buffer records) → `conntrack` (connection
//! state) → `protocol` (parsers) → `spans` (assembly) → `otlp` (encoding) →
//! `batch` → `instance` (the API the C ABI wraps). `pipeline` wires them.

pub mod batch;
pub mod clock;
pub mod config;
pub mod conntrack;
pub mod events;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod instance;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod probes;
pub mod process;
pub mod protocol;
pub mod routes;
pub mod selection;
pub mod spans;
pub mod stats;
pub mod tls;

pub use batch::{Batch, Signal};
pub use config::Config;
pub use instance::{Error, Instance, Poll};
pub use stats::StatsSnapshot;

/// `telemetry.sdk.name` and the instrumentation scope of everything we emit.
pub const SDK_NAME: &str = "otel-ebpf-receiver";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
