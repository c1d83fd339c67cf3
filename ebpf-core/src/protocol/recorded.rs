//! Recorded connections for the key/value parsers' tests
//! (`tests/fixtures/{redis,memcached}/`): `NAME.req.bin` (client bytes),
//! `NAME.resp.bin` or `.resp.bin.gz` (server bytes) and `NAME.segments`
//! (`> N` / `< N` per recorded read/write), turned into the chunks the
//! syscall probes would produce: from either side, split, and cut to a
//! capture size.

use std::io::Read;

use crate::protocol::{Direction, Role};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, so any split of a
/// recorded segment keeps it recognisable as `ts / SEG_NS - 1`.
pub(crate) use crate::protocol::fixture::SEG_NS;

/// One chunk as the probes would report it.
pub(crate) type Step<'a> = (Direction, u64, &'a [u8], u64);

pub(crate) struct Fixture {
    pub req: Vec<u8>,
    pub resp: Vec<u8>,
    pub segments: Vec<(bool, usize)>,
}

impl Fixture {
    /// `tests/fixtures/<dir>/<name>.*`; the replies may be gzipped
    /// (`.resp.bin.gz`).
    pub(crate) fn load(dir: &str, name: &str) -> Fixture {
        let read =
            |suffix: &str| std::fs::read(format!("{}/tests/fixtures/{dir}/{name}{suffix}", env!("CARGO_MANIFEST_DIR")));
        let req = read(".req.bin").unwrap_or_else(|e| panic!("{name}.req.bin: {e}"));
        let resp = match read(".resp.bin") {
            Ok(b) => b,
            Err(_) => {
                let gz = read(".resp.bin.gz").unwrap_or_else(|e| panic!("{name}.resp.bin(.gz): {e}"));
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("gunzip");
                out
            }
        };
        let text = String::from_utf8(read(".segments").expect("segments")).expect("utf-8 segments");
        let segments = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (dir, n) = l.split_once(' ').unwrap_or_else(|| panic!("{name}: bad segment line {l:?}"));
                (dir == ">", n.parse().unwrap_or_else(|_| panic!("{name}: bad segment line {l:?}")))
            })
            .collect::<Vec<_>>();
        let (rq, rs): (usize, usize) =
            segments.iter().fold((0, 0), |(a, b), &(r, n)| if r { (a + n, b) } else { (a, b + n) });
        assert_eq!((rq, rs), (req.len(), resp.len()), "{name}: segments do not add up to the recorded bytes");
        Fixture { req, resp, segments }
    }

    /// One chunk per recorded segment, each cut to `capture` bytes, and
    /// within each segment split at the offsets `split(segment, len)` gives.
    pub(crate) fn steps(
        &self,
        role: Role,
        capture: usize,
        split: &dyn Fn(usize, usize) -> Vec<usize>,
    ) -> Vec<Step<'_>> {
        let (mut rq, mut rs) = (0, 0);
        let mut out = Vec::new();
        for (seg, &(request, n)) in self.segments.iter().enumerate() {
            let bytes = if request { &self.req[rq..rq + n] } else { &self.resp[rs..rs + n] };
            if request {
                rq += n;
            } else {
                rs += n;
            }
            let dir = match (role, request) {
                (Role::Server, true) | (Role::Client, false) => Direction::Ingress,
                _ => Direction::Egress,
            };
            let mut cuts = split(seg, n);
            cuts.retain(|&c| c > 0 && c < n);
            cuts.sort_unstable();
            cuts.dedup();
            let mut start = 0;
            for (piece, end) in cuts.into_iter().chain([n]).enumerate() {
                let syscall = &bytes[start..end];
                let seen = &syscall[..syscall.len().min(capture)];
                out.push((dir, SEG_NS * (seg as u64 + 1) + piece as u64, seen, syscall.len() as u64));
                start = end;
            }
        }
        out
    }
}

pub(crate) fn whole(_: usize, _: usize) -> Vec<usize> {
    Vec::new()
}

/// What a recording gave through the whole seam.
pub(crate) struct Seam {
    pub spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
    pub stats: crate::stats::StatsSnapshot,
    /// Connections the tracker muted (recognised by no protocol, or failed).
    pub muted: usize,
    pub metrics: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
}

/// One connection of `steps` through the whole seam, as the receiver
/// runs it: the connection tracker (which recognises the protocol among
/// the registry's, `protocols` switching them), each record described
/// and its span encoded, client metrics recorded. The traced process is
/// `role`'s end; the server listens on `server_port`. `opened`: the kernel
/// saw the connection open (role and addresses known), else it was older
/// than the receiver.
pub(crate) fn through_seam(
    steps: &[Step<'_>],
    role: Role,
    server_port: u16,
    opened: bool,
    protocols: &crate::protocol::ProtocolsConfig,
) -> Seam {
    use std::sync::Arc;

    use crate::clock::WallClock;
    use crate::conntrack::ConnTracker;
    use crate::events::{ConnOpen, DataEvent, Header, Transport};
    use crate::metrics::{Metrics, MetricsConfig};
    use crate::otlp::HostInfo;
    use crate::process::ProcessIdentity;
    use crate::protocol::{Describer, Protocols};
    use crate::spans::{to_span, IdGenerator};
    use crate::stats::Stats;

    let stats = Arc::new(Stats::default());
    let mut tracker =
        ConnTracker::offline().with_protocols(Protocols::new(protocols, None).counting_into(stats.clone()));
    let hdr = |ts_ns| Header { ts_ns, tgid: 4242, tid: 4242, conn_id: 9 };
    let mut exchanges = Vec::new();
    if opened {
        let (server, client) = (("127.0.0.1".parse().unwrap(), server_port), ("127.0.0.1".parse().unwrap(), 40000));
        let (local, peer, kernel_role) = match role {
            Role::Server => (server, client, ebpf_probes::abi::OE_ROLE_SERVER),
            Role::Client => (client, server, ebpf_probes::abi::OE_ROLE_CLIENT),
        };
        let open = ConnOpen {
            local,
            peer,
            role: kernel_role as u16,
            comm: "kv".into(),
            exe: "kv".into(),
            parent_tgid: 1,
            transport: Transport::Tcp,
        };
        tracker.open(&hdr(1), &open);
    }
    let mut last = 1;
    for (seq, &(direction, ts, payload, total_len)) in steps.iter().enumerate() {
        let data = DataEvent {
            direction,
            total_len: total_len as u32,
            payload,
            seq: Some(seq as u32),
            tls: false,
            overlap: false,
        };
        tracker.data(&hdr(ts), &data, &mut exchanges);
        last = ts;
    }
    tracker.close(&hdr(last + 1), &mut exchanges);
    let config = crate::Config { protocols: protocols.clone(), ..crate::Config::default() };
    let mut describer = Describer::new(&config, stats.clone());
    let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
    let process = Arc::new(ProcessIdentity::from_comm(4242, "kv"));
    let (clock, mut ids) = (WallClock::from_offset_ns(0), IdGenerator::with_seed(1));
    let mut spans = Vec::new();
    for ex in &exchanges {
        describer.describe(&ex.record, &ex.facts(), &mut |op| {
            spans.push(to_span(op, &clock, &mut ids));
            metrics.observe(&process, op);
        });
    }
    let host = HostInfo { host_name: "h".into(), host_id: None, boot_id: None };
    let metrics = metrics
        .collect(1, &host, None)
        .map_or_else(Default::default, |b| prost::Message::decode(b.data.as_slice()).expect("a metrics batch decodes"));
    let mut snapshot = stats.snapshot();
    snapshot.parse_errors = tracker.parse_errors;
    snapshot.requests_lost = tracker.requests_lost;
    Seam { spans, stats: snapshot, muted: tracker.muted.len(), metrics }
}

/// A span's attributes as `key=value` (strings unquoted), in order.
pub(crate) fn span_attributes(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Vec<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            format!("{}={v}", kv.key)
        })
        .collect()
}
