//! Self-telemetry counters shared between the worker thread and callers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub events_read: AtomicU64,
    /// Events the kernel could not hand over (ring buffer or tables full).
    pub events_lost: AtomicU64,
    /// Records userspace could not decode (a bug or a version mismatch).
    pub decode_errors: AtomicU64,
    pub spans_exported: AtomicU64,
    pub batches_dropped: AtomicU64,
    /// Spans inside dropped batches.
    pub spans_dropped: AtomicU64,
    pub parse_errors: AtomicU64,
    /// Holes in connections' event numbering: events the kernel lost mid-stream.
    pub stream_gaps: AtomicU64,
    /// Requests dropped unanswered because of those holes.
    pub requests_lost: AtomicU64,
    /// Requests whose every event the kernel lost (no hole marks them in
    /// any stream userspace saw); `StatsSnapshot::requests_lost` adds them.
    pub requests_unseen: AtomicU64,
    pub connections: AtomicU64,
    /// Processes with a cached identity (traced and seen), a gauge.
    pub processes: AtomicU64,
    /// Library (or executable) files whose OpenSSL functions carry uprobes,
    /// and Go executables whose `crypto/tls` does.
    pub tls_libraries: AtomicU64,
    /// TLS functions whose uprobes the kernel refused (they stay uninstrumented).
    pub tls_attach_errors: AtomicU64,
    /// TLS plaintext the kernel dropped because its socket was unknown.
    pub tls_no_socket: AtomicU64,
    /// LLM API calls recognised.
    pub genai_calls: AtomicU64,
    /// Of those, calls whose bodies could not be read in full (token counts
    /// or models may be missing from their telemetry).
    pub genai_incomplete: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub events_read: u64,
    pub events_lost: u64,
    pub decode_errors: u64,
    pub spans_exported: u64,
    pub batches_dropped: u64,
    pub spans_dropped: u64,
    pub parse_errors: u64,
    pub stream_gaps: u64,
    /// Requests that produced no span because events were lost: cut by a
    /// hole after their start, or lost from their start on.
    pub requests_lost: u64,
    pub connections: u64,
    pub processes: u64,
    pub tls_libraries: u64,
    pub tls_attach_errors: u64,
    pub tls_no_socket: u64,
    pub genai_calls: u64,
    pub genai_incomplete: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            events_read: self.events_read.load(Relaxed),
            events_lost: self.events_lost.load(Relaxed),
            decode_errors: self.decode_errors.load(Relaxed),
            spans_exported: self.spans_exported.load(Relaxed),
            batches_dropped: self.batches_dropped.load(Relaxed),
            spans_dropped: self.spans_dropped.load(Relaxed),
            parse_errors: self.parse_errors.load(Relaxed),
            stream_gaps: self.stream_gaps.load(Relaxed),
            requests_lost: self.requests_lost.load(Relaxed) + self.requests_unseen.load(Relaxed),
            connections: self.connections.load(Relaxed),
            processes: self.processes.load(Relaxed),
            tls_libraries: self.tls_libraries.load(Relaxed),
            tls_attach_errors: self.tls_attach_errors.load(Relaxed),
            tls_no_socket: self.tls_no_socket.load(Relaxed),
            genai_calls: self.genai_calls.load(Relaxed),
            genai_incomplete: self.genai_incomplete.load(Relaxed),
        }
    }
}
