//! Recorded connections (`fixture::Segment`s) replayed through the
//! whole userspace path of the registered protocols: the connection
//! tracker (recognition, first chunks gathered), the registry's parser,
//! the description, span encoding and metrics. For the integration tests
//! of a protocol on the seam.

use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::clock::WallClock;
use crate::conntrack::ConnTracker;
use crate::events::{ConnOpen, DataEvent, Header, Transport};
use crate::metrics::{Metrics, MetricsConfig};
use crate::otlp::HostInfo;
use crate::protocol::fixture::{direction, Segment, CONN_NS, SEG_NS};
use crate::protocol::{Describer, Protocols, Role};
use crate::spans::{to_span, IdGenerator};
use crate::stats::Stats;
use crate::Config;

const TGID: u32 = 4100;

/// How the connections are seen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    /// Whose syscalls: the client's or the server's.
    pub traced: Role,
    /// The kernel saw the connections open (else: found already open, role unknown).
    pub opened: bool,
    /// The server's port.
    pub port: u16,
}

impl Side {
    pub(crate) fn client(port: u16) -> Side {
        Side { traced: Role::Client, opened: true, port }
    }

    pub(crate) fn server(port: u16) -> Side {
        Side { traced: Role::Server, opened: true, port }
    }
}

/// What a replay produced.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub spans: Vec<Span>,
    pub metrics: ExportMetricsServiceRequest,
    pub requests_lost: u64,
    pub parse_errors: u64,
    pub muted: usize,
    pub undescribed: u64,
}

impl Replayed {
    /// `name kind` of each span, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.spans.iter().map(|s| format!("{} {}", s.name, kind(s))).collect()
    }

    /// The spans named `name`.
    pub(crate) fn named(&self, name: &str) -> Vec<&Span> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    /// The sum of a counter's points, or the count of a histogram's, whose
    /// attributes include every `(key, value)` of `with`.
    pub(crate) fn metric_total(&self, name: &str, with: &[(&str, &str)]) -> u64 {
        let mut total = 0;
        for m in self.metrics.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics) {
            if m.name != name {
                continue;
            }
            let matches = |attrs: &[_]| with.iter().all(|(k, v)| attr_in(attrs, k).is_some_and(|a| a == *v));
            match &m.data {
                Some(Data::Sum(s)) => {
                    total += s
                        .data_points
                        .iter()
                        .filter(|p| matches(&p.attributes))
                        .map(|p| match p.value {
                            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => {
                                i as u64
                            }
                            _ => 0,
                        })
                        .sum::<u64>()
                }
                Some(Data::Histogram(h)) => {
                    total += h.data_points.iter().filter(|p| matches(&p.attributes)).map(|p| p.count).sum::<u64>()
                }
                _ => {}
            }
        }
        total
    }
}

/// A span's kind, as the conventions write it.
pub(crate) fn kind(span: &Span) -> &'static str {
    match span.kind {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

fn attr_in(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    let value = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// A span attribute as text (ints formatted), if set.
pub(crate) fn attr(span: &Span, key: &str) -> Option<String> {
    attr_in(&span.attributes, key)
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Replays `conns` (each a connection's segments, in order) from `side`,
/// each segment cut into syscalls by `split` (lengths; `[len]` for one),
/// except the segments `lost` names (connection, segment): their events
/// are lost (a hole in the numbering).
pub(crate) fn replay(
    conns: &[Vec<Segment>],
    side: Side,
    split: &dyn Fn(&Segment) -> Vec<usize>,
    lost: Option<(usize, usize)>,
) -> Replayed {
    replay_with(conns, side, split, lost, Protocols::defaults())
}

pub(crate) fn replay_with(
    conns: &[Vec<Segment>],
    side: Side,
    split: &dyn Fn(&Segment) -> Vec<usize>,
    lost: Option<(usize, usize)>,
    protocols: Protocols,
) -> Replayed {
    let mut tracker = ConnTracker::offline().with_protocols(protocols);
    let mut out = Vec::new();
    for (c, segs) in conns.iter().enumerate() {
        let hdr = |ts_ns| Header { ts_ns, tgid: TGID, tid: TGID, conn_id: 5000 + c as u64 };
        let (client, server) = ((addr("10.0.0.1"), 40000 + c as u16), (addr("10.0.0.2"), side.port));
        let (local, peer) = match side.traced {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        let role = match (side.opened, side.traced) {
            // No role given: the tracker then knows neither side.
            (false, _) => 0,
            (true, Role::Server) => ebpf_probes::abi::OE_ROLE_SERVER,
            (true, Role::Client) => ebpf_probes::abi::OE_ROLE_CLIENT,
        };
        let open = ConnOpen {
            local,
            peer,
            role: role as u16,
            comm: "app".into(),
            exe: "app".into(),
            parent_tgid: 1,
            transport: Transport::Tcp,
        };
        tracker.open(&hdr(CONN_NS * c as u64), &open);
        let mut seq = 0u32;
        for (i, seg) in segs.iter().enumerate() {
            let mut at = 0;
            for (k, len) in split(seg).into_iter().enumerate() {
                let payload = &seg.bytes[at..at + len];
                at += len;
                seq += 1;
                if lost == Some((c, i)) {
                    continue;
                }
                let data = DataEvent {
                    direction: direction(seg, side.traced),
                    total_len: len as u32,
                    payload,
                    seq: Some(seq),
                    tls: false,
                    overlap: false,
                };
                tracker.data(&hdr(CONN_NS * c as u64 + SEG_NS * (i as u64 + 1) + k as u64), &data, &mut out);
            }
        }
        tracker.close(&hdr(CONN_NS * c as u64 + SEG_NS * (segs.len() as u64 + 1)), &mut out);
    }
    let stats = Arc::new(Stats::default());
    let mut describer = Describer::new(&Config::default(), stats.clone());
    let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
    let (clock, ids) = (WallClock::from_offset_ns(0), &mut IdGenerator::with_seed(1));
    let mut spans = Vec::new();
    for ex in &out {
        describer.describe(&ex.record, &ex.facts(), &mut |op| {
            metrics.observe(&ex.process, op);
            spans.push(to_span(op, &clock, ids));
        });
    }
    let metrics = metrics
        .collect(1, &HostInfo::default(), None)
        .map(|b| ExportMetricsServiceRequest::decode(b.data.as_slice()).expect("metrics decode"))
        .unwrap_or_default();
    Replayed {
        spans,
        metrics,
        requests_lost: tracker.requests_lost,
        parse_errors: tracker.parse_errors,
        muted: tracker.muted.len(),
        undescribed: stats.snapshot().operations_undescribed,
    }
}

/// One syscall per segment.
pub(crate) fn whole(seg: &Segment) -> Vec<usize> {
    vec![seg.bytes.len()]
}
