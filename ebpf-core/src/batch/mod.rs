//! Batching: telemetry leaves in batches bounded by size and by delay.

mod batcher;
mod ready;

pub use batcher::SpanBatcher;
pub use ready::ReadySignal;

/// Which OTLP request a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

/// Encoded OTLP request bytes of one signal, ready for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub signal: Signal,
    pub data: Vec<u8>,
    /// Items (spans, points) inside, for accounting.
    pub items: usize,
}
