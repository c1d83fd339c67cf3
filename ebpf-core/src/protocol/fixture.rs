//! Recorded connections (`tests/fixtures/<protocol>/`) for the parsers'
//! tests: `NAME.req.bin` (client bytes), `NAME.resp.bin` (server bytes) and
//! `NAME.segments` (`> N` / `< N` per recv, in order), turned into the
//! chunks the probes would produce, from either side, split into syscalls
//! at will and cut to a capture size.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::clock::WallClock;
use crate::conntrack::{ConnTracker, Exchange};
use crate::events::{ConnOpen, DataEvent, Header, Transport};
use crate::metrics::{Metrics, MetricsConfig};
use crate::otlp::HostInfo;
use crate::protocol::{Chunk, Describer, Direction, Protocols, Role};
use crate::spans::{to_span, IdGenerator};
use crate::stats::Stats;
use crate::Config;

/// One recorded segment: which side sent it and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub from_client: bool,
    pub bytes: Vec<u8>,
}

/// The segments of a recording, in order.
pub(crate) fn segments(req: &[u8], resp: &[u8], text: &str) -> Vec<Segment> {
    let (mut r, mut s) = (0usize, 0usize);
    let mut out = Vec::new();
    for line in text.lines() {
        let (dir, n) = line.split_once(' ').expect("segment line");
        let n: usize = n.trim().parse().expect("segment length");
        if dir == ">" {
            out.push(Segment { from_client: true, bytes: req[r..r + n].to_vec() });
            r += n;
        } else {
            out.push(Segment { from_client: false, bytes: resp[s..s + n].to_vec() });
            s += n;
        }
    }
    assert_eq!((r, s), (req.len(), resp.len()), "segments cover the recording");
    out
}

/// The direction a segment has when the traced process is `role`.
pub(crate) fn direction(seg: &Segment, role: Role) -> Direction {
    match (seg.from_client, role) {
        (true, Role::Client) | (false, Role::Server) => Direction::Egress,
        _ => Direction::Ingress,
    }
}

/// Timestamps of replayed chunks are `CONN_NS * connection + SEG_NS *
/// (segment + 1) + piece`, so any split keeps a chunk's connection and
/// segment recognisable.
pub(crate) const SEG_NS: u64 = 1_000_000;
pub(crate) const CONN_NS: u64 = 1_000_000_000_000;

/// Feeds connection number `conn` of a recording to `feed` as the probes
/// would report it from `role`'s side: each segment split into syscalls of
/// the lengths `split(segment, len)` gives, each cut to `capture` bytes.
/// Returns the time just after the last segment (for the parser's close).
pub(crate) fn feed_chunks(
    segs: &[Segment],
    conn: usize,
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
    feed: &mut dyn FnMut(&Chunk),
) -> u64 {
    let base = CONN_NS * conn as u64;
    for (i, seg) in segs.iter().enumerate() {
        let direction = direction(seg, role);
        let mut at = 0;
        for (k, len) in split(i, seg.bytes.len()).into_iter().enumerate() {
            let piece = &seg.bytes[at..at + len];
            at += len;
            let data = &piece[..piece.len().min(capture)];
            let ts_ns = base + SEG_NS * (i as u64 + 1) + k as u64;
            feed(&Chunk { ts_ns, direction, data, total_len: len as u64 });
        }
    }
    base + SEG_NS * (segs.len() as u64 + 1)
}

/// One syscall per segment.
pub(crate) fn whole(_: usize, len: usize) -> Vec<usize> {
    vec![len]
}

/// `len` bytes in syscalls of random lengths.
pub(crate) fn random_split(rng: &mut fastrand::Rng, len: usize) -> Vec<usize> {
    let mut parts = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = rng.usize(1..=left);
        parts.push(n);
        left -= n;
    }
    parts
}

/// Loads `tests/fixtures/<dir>/<name>.*` at compile time.
macro_rules! recording {
    ($dir:literal, $name:literal) => {
        $crate::protocol::fixture::segments(
            include_bytes!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".req.bin")),
            include_bytes!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".resp.bin")),
            include_str!(concat!("../../../../tests/fixtures/", $dir, "/", $name, ".segments")),
        )
    };
}
pub(crate) use recording;

/// A recorded connection played through the connection tracker (every
/// protocol on, as configured), as the data events of one traced process:
/// the seam end to end, recognition included. Records come out in `out`.
pub(crate) struct Traced {
    pub tracker: ConnTracker,
    pub out: Vec<Exchange>,
    pub stats: Arc<Stats>,
    config: Config,
    side: Role,
    seq: u32,
    ts: u64,
}

pub(crate) const SERVER_PORT: u16 = 40_000;
const CLIENT_PORT: u16 = 51_000;
const TGID: u32 = 321;

impl Traced {
    /// The traced process on `side`; `opened`: the kernel saw the
    /// connection open (else it is older than the receiver: role unknown).
    pub(crate) fn new(side: Role, opened: bool, config: Config) -> Self {
        let stats = Arc::new(Stats::default());
        let protocols = Protocols::new(&config.protocols, None).counting_into(stats.clone());
        let mut t = Traced {
            tracker: ConnTracker::offline().with_protocols(protocols),
            out: Vec::new(),
            stats,
            config,
            side,
            seq: 0,
            ts: 0,
        };
        if opened {
            let (server, client) =
                (("127.0.0.1".parse().unwrap(), SERVER_PORT), ("127.0.0.1".parse().unwrap(), CLIENT_PORT));
            let (local, peer, role) = match side {
                Role::Server => (server, client, ebpf_probes::abi::OE_ROLE_SERVER),
                Role::Client => (client, server, ebpf_probes::abi::OE_ROLE_CLIENT),
            };
            let open = ConnOpen {
                local,
                peer,
                role: role as u16,
                comm: "db".into(),
                exe: "db".into(),
                parent_tgid: 1,
                transport: Transport::Tcp,
            };
            t.tracker.open(&t.header(), &open);
        }
        t
    }

    fn header(&self) -> Header {
        Header { ts_ns: self.ts, tgid: TGID, tid: TGID, conn_id: 7 }
    }

    /// Each segment as one data event (TLS plaintext when `tls`).
    pub(crate) fn play(&mut self, segs: &[Segment], tls: bool) {
        for seg in segs {
            self.ts += 1_000_000;
            let data = DataEvent {
                direction: direction(seg, self.side),
                total_len: seg.bytes.len() as u32,
                payload: &seg.bytes,
                seq: Some(self.seq),
                tls,
                overlap: false,
            };
            self.seq += 1;
            let hdr = self.header();
            self.tracker.data(&hdr, &data, &mut self.out);
        }
    }

    /// The kernel loses the next event.
    pub(crate) fn lose(&mut self) {
        self.seq += 1;
    }

    pub(crate) fn close(&mut self) {
        self.ts += 1_000_000;
        let hdr = self.header();
        self.tracker.close(&hdr, &mut self.out);
    }

    /// The spans of the records so far, and the metrics they fed.
    pub(crate) fn spans(&self) -> (Vec<Span>, ExportMetricsServiceRequest) {
        let mut describer = Describer::new(&self.config, self.stats.clone());
        let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
        let (clock, ids) = (WallClock::from_offset_ns(0), &mut IdGenerator::with_seed(1));
        let mut spans = Vec::new();
        for ex in &self.out {
            describer.describe(&ex.record, &ex.facts(), &mut |op| {
                metrics.observe(&ex.process, op);
                spans.push(to_span(op, &clock, ids));
            });
        }
        let req = match metrics.collect(10, &HostInfo::default(), None) {
            Some(batch) => ExportMetricsServiceRequest::decode(batch.data.as_slice()).expect("metrics decode"),
            None => ExportMetricsServiceRequest::default(),
        };
        (spans, req)
    }
}

/// A span's string attribute.
pub(crate) fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s),
        _ => None,
    }
}

/// A span's int attribute.
pub(crate) fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// `(name, kind, status code)` of each span.
pub(crate) fn shapes(spans: &[Span]) -> Vec<(String, i32, i32)> {
    spans.iter().map(|s| (s.name.clone(), s.kind, s.status.as_ref().map_or(0, |st| st.code))).collect()
}

/// The data points of `db.client.operation.duration`: (attributes as
/// `key=value`, count).
pub(crate) fn duration_points(req: &ExportMetricsServiceRequest) -> Vec<(Vec<String>, u64)> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in sm.metrics.iter().filter(|m| m.name == "db.client.operation.duration") {
                let Some(Data::Histogram(h)) = &m.data else { panic!("not a histogram") };
                for p in &h.data_points {
                    let attrs = p
                        .attributes
                        .iter()
                        .map(|kv| {
                            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(AnyValue::StringValue(s)) => s.clone(),
                                Some(AnyValue::IntValue(i)) => i.to_string(),
                                other => format!("{other:?}"),
                            };
                            format!("{}={v}", kv.key)
                        })
                        .collect::<Vec<_>>();
                    let mut attrs = attrs;
                    attrs.sort();
                    out.push((attrs, p.count));
                }
            }
        }
    }
    out.sort();
    out
}
