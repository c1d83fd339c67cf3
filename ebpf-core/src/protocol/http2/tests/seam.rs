//! HTTP/2 through the connection tracker, as the receiver runs it: the
//! recorded connections recognised among the registered protocols, TLS
//! plaintext, the HTTP/1.1 `Upgrade: h2c` hand-over, the wide capture asked
//! of the kernel, connections joined mid-way, and the drop counters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::fixtures::{all, upgrade_fixture};
use super::{direction, play, segments, Play, Segment, SEG_NS};
use crate::conntrack::{ConnTracker, Exchange, Mute, Widen};
use crate::events::{ConnOpen, DataEvent, Header, Transport};
use crate::protocol::http2::{Http2Stream, StreamEnd};
use crate::protocol::{Protocols, ProtocolsConfig, Role};
use crate::stats::Stats;

const TGID: u32 = 4321;
const CONN: u64 = 555;

fn hdr(ts_ns: u64) -> Header {
    Header { ts_ns, tgid: TGID, tid: TGID, conn_id: CONN }
}

/// How the tracker meets the connection.
#[derive(Debug, Clone, Copy)]
struct Run {
    role: Role,
    /// The kernel saw it open (else: older than the receiver).
    opened: bool,
    tls: bool,
    /// Bytes captured of each segment (the rest only counted).
    capture: Option<usize>,
    /// Segments before this one are never seen (joined mid-way).
    from: usize,
}

const SEEN_OPEN: Run = Run { role: Role::Server, opened: true, tls: false, capture: None, from: 0 };

fn track(segs: &[Segment], run: Run, protocols: Protocols) -> (ConnTracker, Vec<Exchange>) {
    let mut t = ConnTracker::offline().with_protocols(protocols);
    let mut out = Vec::new();
    if run.opened {
        let role = match run.role {
            Role::Server => ebpf_probes::abi::OE_ROLE_SERVER,
            Role::Client => ebpf_probes::abi::OE_ROLE_CLIENT,
        };
        let open = ConnOpen {
            local: ("127.0.0.1".parse().unwrap(), 8443),
            peer: ("127.0.0.1".parse().unwrap(), 50000),
            role: role as u16,
            comm: "h2".into(),
            exe: "h2".into(),
            parent_tgid: 1,
            transport: Transport::Tcp,
        };
        t.open(&hdr(1), &open);
    }
    for (i, seg) in segs.iter().enumerate().skip(run.from) {
        let payload = &seg.data[..seg.data.len().min(run.capture.unwrap_or(usize::MAX))];
        let data = DataEvent {
            direction: direction(run.role, seg.to_server),
            total_len: seg.total_len as u32,
            payload,
            seq: Some(i as u32),
            tls: run.tls,
            overlap: false,
        };
        t.data(&hdr(SEG_NS * (i as u64 + 1)), &data, &mut out);
    }
    t.close(&hdr(SEG_NS * (segs.len() as u64 + 1)), &mut out);
    (t, out)
}

fn streams(out: &[Exchange]) -> Vec<Http2Stream> {
    let mut v: Vec<Http2Stream> = out
        .iter()
        .map(|ex| ex.record.http2().cloned().unwrap_or_else(|| panic!("not an HTTP/2 record: {ex:?}")))
        .collect();
    v.sort_by_key(|s| s.stream_id);
    v
}

/// Every recording, through the tracker with every protocol on, from both
/// sides, in cleartext and as TLS plaintext: the streams the decoder alone
/// gives, the kernel asked once for a wide capture, nothing muted.
#[test]
fn recorded_connections_are_recognised_and_followed() {
    for (name, segs, _, want) in all() {
        for role in [Role::Server, Role::Client] {
            for tls in [false, true] {
                let run = Run { role, tls, ..SEEN_OPEN };
                let (t, out) = track(&segs, run, Protocols::defaults());
                let (mut alone, _) = play(&segs, Play { role, ..Play::SERVER });
                alone.sort_by_key(|s| s.stream_id);
                assert_eq!(streams(&out), alone, "{name} {run:?}");
                assert_eq!(alone.len(), want.len(), "{name}");
                assert!(out.iter().all(|ex| ex.tls == tls), "{name}");
                assert_eq!(t.widened, [Widen { conn_id: CONN }], "{name} {run:?}");
                assert!(t.muted.is_empty(), "{name} {run:?}: {:?}", t.muted);
                assert_eq!((t.parse_errors, t.requests_lost), (0, 0), "{name}");
            }
        }
    }
}

/// Switched off, HTTP/2 is a stream nobody parses: muted after its first
/// payload, as before it had a parser.
#[test]
fn switched_off_it_is_muted() {
    let (_, segs, _, _) = all().swap_remove(0);
    let mut config = ProtocolsConfig::default();
    config.http2.enabled = false;
    for tls in [false, true] {
        let (t, out) = track(&segs, Run { tls, ..SEEN_OPEN }, Protocols::new(&config, None));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.muted, [Mute { conn_id: CONN, tls }]);
        assert!(t.widened.is_empty());
    }
}

/// curl's `Upgrade: h2c`: the HTTP/1.1 request becomes HTTP/2 stream 1,
/// answered after the 101; no HTTP/1 exchange is reported for it.
#[test]
fn h2c_upgrade_hands_the_connection_over() {
    let (name, segs, _, _) = upgrade_fixture();
    for role in [Role::Server, Role::Client] {
        let (t, out) = track(&segs, Run { role, ..SEEN_OPEN }, Protocols::defaults());
        let got: Vec<_> = streams(&out)
            .iter()
            .map(|s| (s.stream_id, s.method.clone(), s.path.clone(), s.status, s.end, s.headers_complete))
            .collect();
        let stream = |id, path: &str| (id, Some("GET".into()), Some(path.into()), Some(200), StreamEnd::Complete, true);
        assert_eq!(got, [stream(1, "/upgraded"), stream(3, "/second")], "{name} {role:?}");
        let first = &streams(&out)[0];
        // Stream 1 starts with the HTTP/1.1 request and ends with its HTTP/2 answer.
        assert_eq!(first.request_start_ns, SEG_NS);
        assert!(first.response_end_ns > 3 * SEG_NS);
        assert!(t.muted.is_empty() && t.parse_errors == 0, "{name} {role:?}");
        assert_eq!(t.widened.len(), 1, "the HTTP/2 parser asked for a wide capture");
    }
}

/// The 101 head and the server's first frames in one write: HTTP/2 starts
/// where the head ends.
#[test]
fn h2c_upgrade_in_the_same_chunk_as_the_first_frames() {
    let (_, segs, _, _) = upgrade_fixture();
    assert!(!segs[1].to_server && !segs[2].to_server);
    let joined: &'static [u8] = [segs[1].data, segs[2].data].concat().leak();
    let mut merged = vec![segs[0], Segment { to_server: false, data: joined, total_len: joined.len() as u64 }];
    merged.extend_from_slice(&segs[3..]);
    let (t, out) = track(&merged, SEEN_OPEN, Protocols::defaults());
    let ids: Vec<(u32, Option<u16>)> = streams(&out).iter().map(|s| (s.stream_id, s.status)).collect();
    assert_eq!(ids, [(1, Some(200)), (3, Some(200))]);
    assert_eq!(t.parse_errors, 0);
}

/// HTTP/2 off: the upgrade exchange is an HTTP/1 one answered 101, and the
/// connection is muted from there, as any other switch.
#[test]
fn h2c_upgrade_with_http2_off_is_a_101_exchange() {
    let (_, segs, _, _) = upgrade_fixture();
    let mut config = ProtocolsConfig::default();
    config.http2.enabled = false;
    let (t, out) = track(&segs, SEEN_OPEN, Protocols::new(&config, None));
    assert_eq!(out.len(), 1, "{out:?}");
    let ex = out[0].record.http1().expect("an HTTP/1 exchange");
    assert_eq!((ex.method.as_str(), ex.target.as_str(), ex.status), ("GET", "/upgraded", Some(101)));
    assert_eq!((ex.request_start_ns, ex.response_end_ns), (SEG_NS, 2 * SEG_NS));
    assert_eq!(t.muted, [Mute { conn_id: CONN, tls: false }]);
}

/// A connection older than the receiver, met at each segment in turn: what
/// comes out is one of the recorded streams, its fields exact or absent.
#[test]
fn joined_mid_way_never_reports_a_wrong_stream() {
    for (name, segs, _, want) in all() {
        for from in 1..segs.len() {
            let run = Run { opened: false, from, ..SEEN_OPEN };
            let (t, out) = track(&segs, run, Protocols::defaults());
            assert_eq!(t.parse_errors, 0, "{name} {run:?}");
            for s in streams(&out) {
                let w = want.iter().find(|w| w.id == s.stream_id).unwrap_or_else(|| panic!("{name} {run:?}: {s:?}"));
                assert!(s.method.as_deref().is_none_or(|m| m == w.method), "{name} {run:?}: {s:?}");
                assert!(s.path.as_deref().is_none_or(|p| p == w.path), "{name} {run:?}: {s:?}");
                assert!(s.status.is_none() || s.status == w.status, "{name} {run:?}: {s:?}");
            }
        }
    }
}

/// The decoder's drops reach the receiver's counters: 100 streams whose
/// response frames are cut by a 1 KiB capture.
#[test]
fn drops_are_counted_into_the_receivers_counters() {
    let segs = segments(
        "nginx_go_parallel100",
        include_bytes!("../../../../tests/fixtures/http2/nginx_go_parallel100.req.bin"),
        include_bytes!("../../../../tests/fixtures/http2/nginx_go_parallel100.resp.bin"),
        include_str!("../../../../tests/fixtures/http2/nginx_go_parallel100.segments"),
    );
    let stats = Arc::new(Stats::default());
    let protocols = Protocols::defaults().counting_into(stats.clone());
    let (t, out) = track(&segs, Run { capture: Some(1024), ..SEEN_OPEN }, protocols);
    let (alone, dropped) = play(&segs, Play { capture: Some(1024), ..Play::SERVER });
    assert_eq!(out.len(), alone.len());
    assert!(dropped.framing_lost > 0 && dropped.streams_lost > 0, "{dropped:?}");
    let s = stats.snapshot();
    assert_eq!(
        (s.http2_framing_lost, s.http2_resyncs, s.http2_chunks_skipped, s.http2_streams_lost, s.http2_hpack_errors),
        (dropped.framing_lost, dropped.resyncs, dropped.chunks_skipped, dropped.streams_lost, dropped.hpack_errors)
    );
    assert_eq!(out.len() as u64 + s.http2_streams_lost, 100, "every stream is a span or counted");
    assert_eq!(t.parse_errors, 0);
    // Lost events drop what is in flight: counted as lost requests, not twice.
    let stats = Arc::new(Stats::default());
    let mut t = ConnTracker::offline().with_protocols(Protocols::defaults().counting_into(stats.clone()));
    let mut out = Vec::new();
    for (i, seg) in segs.iter().enumerate().take(40) {
        let seq = if i < 30 { i as u32 } else { i as u32 + 5 };
        let data = DataEvent {
            direction: direction(Role::Server, seg.to_server),
            total_len: seg.total_len as u32,
            payload: seg.data,
            seq: Some(seq),
            tls: false,
            overlap: false,
        };
        t.data(&hdr(SEG_NS * (i as u64 + 1)), &data, &mut out);
    }
    assert_eq!(t.gaps, 1);
    assert!(t.requests_lost > 0);
    assert_eq!(stats.http2_streams_lost.load(Relaxed), 0, "{:?}", stats.snapshot());
}
