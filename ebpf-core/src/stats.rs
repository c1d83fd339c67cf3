//! The receiver's own counters, declared once in [`counters!`] below: name,
//! kind, unit, exported metric and description. Everything else is derived
//! from that list or checked against it by a test: the atomics the pipeline
//! counts into ([`Stats`]), [`StatsSnapshot`], the `ebpf_receiver.*`
//! self-telemetry metrics (`metrics::self_telemetry`), the C ABI's
//! `otel_ebpf_counters` and `otel_ebpf_counters_get` (and the first fields of
//! its `otel_ebpf_stats` struct, `ffi/tests/abi.rs`), the Go receiver's
//! shutdown log, and the README's table (`ebpf-core/tests/readme.rs`).
//!
//! # Adding a counter
//!
//! 1. Append an entry to the end of `counters!`: a `///` description (it is
//!    the metric's description and the README's), then `name: Kind, "unit",
//!    "ebpf_receiver.metric.name";` (`Counter` for a monotonic total,
//!    `Gauge` for a current value; units in UCUM braces, `{event}`).
//! 2. Count it where it happens: `stats.name.fetch_add(n, Relaxed)`, or
//!    `store` for a total kept elsewhere or a gauge.
//! 3. `make docs` regenerates the README's table (`ebpf-core/tests/readme.rs`
//!    fails until then). Nothing else: the C ABI, the Go receiver and the
//!    semantic-conventions test's allowlist follow the list.
//!
//! The C struct `otel_ebpf_stats` is not extended: hosts read new counters by
//! name (`otel_ebpf_counters_get`).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// How a counter's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A total since the instance started (a monotonic sum).
    Counter,
    /// A current value.
    Gauge,
}

/// One counter of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CounterInfo {
    /// The C ABI's, the Go receiver's and the logs' name: `events_read`.
    pub name: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    /// The self-telemetry metric: `ebpf_receiver.events.read`.
    pub metric: &'static str,
    /// The one attribute of the metric's point, if any.
    #[serde(skip)]
    pub attribute: Option<(&'static str, &'static str)>,
    #[serde(serialize_with = "trimmed")]
    pub description: &'static str,
}

fn trimmed<S: serde::Serializer>(s: &&'static str, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.trim())
}

impl CounterInfo {
    /// The `///` lines, joined.
    pub fn description(&self) -> &'static str {
        self.description.trim()
    }
}

macro_rules! counters {
    (@attribute) => { None };
    (@attribute $key:literal $value:literal) => { Some(($key, $value)) };
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $kind:ident, $unit:literal, $metric:literal $(, ($key:literal, $value:literal))?;
    )+) => {
        /// Every counter, in declaration order.
        pub const COUNTERS: &[CounterInfo] = &[$(CounterInfo {
            name: stringify!($name),
            kind: Kind::$kind,
            unit: $unit,
            metric: $metric,
            attribute: counters!(@attribute $($key $value)?),
            description: concat!($($doc),+),
        }),+];

        /// The atomics the pipeline counts into, one per counter.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[doc = $doc])+ pub $name: AtomicU64,)+
        }

        /// Every counter's value at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl Counters {
            fn load(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Relaxed),)+ }
            }
        }

        impl StatsSnapshot {
            /// The values in the order of [`COUNTERS`].
            pub fn values(&self) -> [u64; COUNTERS.len()] {
                [$(self.$name,)+]
            }
        }
    };
}

counters! {
    /// Events read from the kernel ring buffers.
    events_read: Counter, "{event}", "ebpf_receiver.events.read";
    /// Events the kernel could not hand over (ring buffer or tables full).
    events_lost: Counter, "{event}", "ebpf_receiver.events.lost";
    /// Spans handed to the host.
    spans_exported: Counter, "{span}", "ebpf_receiver.spans.exported";
    /// Batches dropped because the host did not poll in time (its queue was full).
    batches_dropped: Counter, "{batch}", "ebpf_receiver.batches.dropped";
    /// Connections whose protocol parser failed (garbage or lost bytes).
    parse_errors: Counter, "{connection}", "ebpf_receiver.parse.errors", ("network.protocol.name", "http");
    /// Connections tracked in userspace.
    connections: Gauge, "{connection}", "ebpf_receiver.connections.tracked";
    /// Kernel events userspace could not decode (a bug or a version mismatch).
    decode_errors: Counter, "{event}", "ebpf_receiver.decode.errors";
    /// Spans inside the dropped batches.
    spans_dropped: Counter, "{span}", "ebpf_receiver.spans.dropped";
    /// Holes in connections' event numbering: events the kernel lost in the
    /// middle of a connection's stream.
    stream_gaps: Counter, "{gap}", "ebpf_receiver.stream.gaps";
    /// Requests that produced no span because the kernel lost their events
    /// (from their start, or cut by a hole).
    requests_lost: Counter, "{request}", "ebpf_receiver.requests.lost";
    /// Processes traced (with a cached identity).
    processes: Gauge, "{process}", "ebpf_receiver.processes.traced";
    /// Files (libraries, executables) whose TLS functions carry uprobes.
    tls_libraries: Counter, "{file}", "ebpf_receiver.tls.libraries";
    /// TLS functions whose uprobes the kernel refused (they stay uninstrumented).
    tls_attach_errors: Counter, "{function}", "ebpf_receiver.tls.attach_errors";
    /// TLS plaintext the kernel dropped because its socket was unknown (an SSL
    /// object doing its own I/O, such as a memory BIO).
    tls_no_socket: Counter, "{event}", "ebpf_receiver.tls.lost";
    /// LLM API calls recognised.
    genai_calls: Counter, "{call}", "ebpf_receiver.genai.calls";
    /// LLM API calls whose bodies could not be read in full: token counts or
    /// models may be missing from their telemetry.
    genai_incomplete: Counter, "{call}", "ebpf_receiver.genai.incomplete";
    /// Exchanges recorded in an overflow series because a metric reached its
    /// series limit (`metrics.max_series_per_metric`).
    metric_overflows: Counter, "{request}", "ebpf_receiver.metric.overflows";
    /// Requests no span reports: given up because their responses could not
    /// be matched with certainty (the streams fell out of step: bytes past
    /// the capture, a client pipelining across lost events, a response to
    /// nothing seen), in flight when a parser lost the stream's framing,
    /// past the most a connection may have awaiting responses, or (SQL)
    /// still unanswered when their connection closed.
    requests_unmatched: Counter, "{request}", "ebpf_receiver.requests.unmatched";
    /// MySQL/MariaDB connections using the compressed protocol: recognised,
    /// not parsed (they give no spans).
    mysql_compressed: Counter, "{connection}", "ebpf_receiver.mysql.compressed";
    /// Responses that answered no request seen: the request was in bytes
    /// past `capture_size` (a pipeline written in one larger write) or sent
    /// before the receiver joined the connection.
    responses_unmatched: Counter, "{response}", "ebpf_receiver.responses.unmatched";
    /// Times a parser lost where a direction's messages start (bytes past
    /// `capture_size`, garbage) and found it again.
    stream_resyncs: Counter, "{resync}", "ebpf_receiver.stream.resyncs";
    /// Payload chunks a parser ignored while it waited for a message to
    /// start after a loss.
    chunks_skipped: Counter, "{chunk}", "ebpf_receiver.stream.skipped";
    /// Spans not exported because sampling (`traces.sampling`) left them out;
    /// metrics still count their requests.
    spans_sampled_out: Counter, "{span}", "ebpf_receiver.spans.sampled_out";
    /// Operations recognised but not described, so without span or metric:
    /// MongoDB commands sent compressed (OP_COMPRESSED), Kafka API keys newer
    /// than the receiver.
    operations_undescribed: Counter, "{operation}", "ebpf_receiver.operations.undescribed";
    /// Socket reads and writes made through io_uring: counted, their payload
    /// not captured (the kernel sees no user buffer it could read).
    io_uring_uncaptured: Counter, "{operation}", "ebpf_receiver.io_uring.uncaptured";
    /// Times one direction of an HTTP/2 connection lost its frame boundaries
    /// (a frame header past the capture, or lost events): its streams in
    /// flight are dropped until it finds them again.
    http2_framing_lost: Counter, "{loss}", "ebpf_receiver.http2.framing.lost";
    /// Times one direction of an HTTP/2 connection found its frame boundaries
    /// again (a chunk that is a whole number of frames).
    http2_resyncs: Counter, "{resync}", "ebpf_receiver.http2.framing.resyncs";
    /// Reads and writes of HTTP/2 connections skipped while their frame
    /// boundaries were lost.
    http2_chunks_skipped: Counter, "{chunk}", "ebpf_receiver.http2.chunks.skipped";
    /// HTTP/2 streams that produced no span because their frames could not be
    /// followed (frame boundaries lost, too many at once, a request seen
    /// only in part, or never seen: the client stream ids skipped while the
    /// framing was lost); those cut by lost events count in
    /// `ebpf_receiver.requests.lost`.
    http2_streams_lost: Counter, "{stream}", "ebpf_receiver.http2.streams.lost";
    /// HTTP/2 header blocks that could not be decoded (malformed, or a
    /// CONTINUATION out of place): later fields referring to that
    /// direction's HPACK table are unknown until it is known again.
    http2_hpack_errors: Counter, "{block}", "ebpf_receiver.http2.hpack.errors";
    /// UDP datagrams left out of `udp.*` because the kernel's table of UDP
    /// sockets and peers was full (16,384 entries between two flows passes).
    udp_flows_uncounted: Counter, "{datagram}", "ebpf_receiver.flows.udp.uncounted";
    /// DNS messages on port 53 that did not parse (malformed, or cut by the capture).
    dns_malformed: Counter, "{message}", "ebpf_receiver.dns.malformed";
    /// DNS responses to no query seen (sent before the receiver started,
    /// after their query timed out, or whose query was not captured).
    dns_unmatched: Counter, "{response}", "ebpf_receiver.dns.responses.unmatched";
    /// DNS queries not tracked because 65,536 were waiting for an answer.
    dns_dropped: Counter, "{query}", "ebpf_receiver.dns.queries.dropped";
    /// Sends put back before the receives that overtook them: a reply read
    /// while its request's send was still in the kernel (socket path, TCP).
    sends_reordered: Counter, "{send}", "ebpf_receiver.sends.reordered";
}

/// The counters shared between the worker thread and callers.
#[derive(Debug, Default)]
pub struct Stats {
    counters: Counters,
    /// Requests whose every event the kernel lost (no hole marks them in any
    /// stream userspace saw): `requests_lost` adds them to those cut by a hole.
    pub requests_unseen: AtomicU64,
}

/// `stats.events_read.fetch_add(..)`: the counters are fields of `Stats`.
impl Deref for Stats {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.counters
    }
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = self.counters.load();
        s.requests_lost += self.requests_unseen.load(Relaxed);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_metrics_namespaced() {
        let mut names: Vec<_> = COUNTERS.iter().map(|c| c.name).collect();
        let mut metrics: Vec<_> = COUNTERS.iter().map(|c| c.metric).collect();
        names.sort();
        names.dedup();
        metrics.sort();
        metrics.dedup();
        assert_eq!((names.len(), metrics.len()), (COUNTERS.len(), COUNTERS.len()));
        for c in COUNTERS {
            assert!(c.metric.starts_with("ebpf_receiver."), "{}", c.metric);
            assert!(c.unit.starts_with('{') && c.unit.ends_with('}'), "{}: {}", c.name, c.unit);
            assert!(c.description().ends_with('.') && !c.description().contains('\n'), "{}", c.name);
        }
    }

    #[test]
    fn snapshot_values_follow_the_list() {
        let stats = Stats::default();
        for (i, c) in COUNTERS.iter().enumerate() {
            // A distinct value per counter, through its field.
            let field = match c.name {
                "events_read" => &stats.events_read,
                "metric_overflows" => &stats.metric_overflows,
                "requests_lost" => &stats.requests_lost,
                _ => continue,
            };
            field.store(100 + i as u64, Relaxed);
        }
        stats.requests_unseen.store(5, Relaxed);
        let values = stats.snapshot().values();
        let at = |name| values[COUNTERS.iter().position(|c| c.name == name).unwrap()];
        assert_eq!(at("events_read"), 100);
        assert_eq!(at("requests_lost"), 100 + 9 + 5, "lost from their start on, added");
        assert_eq!(at("metric_overflows"), 100 + 16);
        assert_eq!(at("spans_exported"), 0);
    }
}
