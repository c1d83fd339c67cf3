//! The seam, end to end on the model protocol: recognition among several
//! protocols, muting, pipelined calls matched in order, lost events,
//! close, and the operation's span and metrics, all without protocol code
//! outside its folder.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::*;
use crate::clock::WallClock;
use crate::conntrack::{ConnTracker, Exchange, Mute};
use crate::events::{ConnOpen, DataEvent, Header, Transport};
use crate::metrics::{Metrics, MetricsConfig};
use crate::otlp::HostInfo;
use crate::protocol::{Describer, Protocols, PROTOCOLS};
use crate::spans::{to_span, IdGenerator};
use crate::stats::Stats;
use crate::Config;

const TGID: u32 = 77;

/// Connection `n` of the process: the kernel's id for it is 1000 + n.
fn hdr(n: u64, ts_ns: u64) -> Header {
    Header { ts_ns, tgid: TGID, tid: TGID, conn_id: 1000 + n }
}

/// A tracker that knows HTTP/1 and the echo protocol, and a server
/// connection `n` (accepted on `port`).
fn tracker(n: u64, port: u16, echo_enabled: bool) -> (ConnTracker, Vec<Exchange>) {
    let mut protocols = vec![&PROTOCOLS[0]];
    if echo_enabled {
        protocols.push(&PROTOCOL);
    }
    let mut t = ConnTracker::offline().with_protocols(Protocols::of(protocols));
    let out = Vec::new();
    let open = ConnOpen {
        local: ("10.0.0.1".parse().unwrap(), port),
        peer: ("10.0.0.2".parse().unwrap(), 50000),
        role: ebpf_probes::abi::OE_ROLE_SERVER as u16,
        comm: "echod".into(),
        exe: "echod".into(),
        parent_tgid: 1,
        transport: Transport::Tcp,
    };
    t.open(&hdr(n, 1), &open);
    (t, out)
}

fn feed(t: &mut ConnTracker, n: u64, ts: u64, seq: u32, direction: Direction, payload: &[u8], out: &mut Vec<Exchange>) {
    let data =
        DataEvent { direction, total_len: payload.len() as u32, payload, seq: Some(seq), tls: false, overlap: false };
    t.data(&hdr(n, ts), &data, out);
}

fn call(ex: &Exchange) -> &EchoCall {
    match &ex.record {
        Record::Example(call) => call,
        other => panic!("not an echo call: {other:?}"),
    }
}

#[test]
fn recognised_among_protocols_and_pipelined_calls_match_in_order() {
    let (mut t, mut out) = tracker(3, 9000, true);
    feed(&mut t, 3, 10, 0, Direction::Ingress, b"ECHO a\r\nECHO b\r\nEC", &mut out);
    feed(&mut t, 3, 11, 1, Direction::Ingress, b"HO c\r\n", &mut out);
    feed(&mut t, 3, 20, 2, Direction::Egress, b"OK a\r\nERR 7", &mut out);
    assert_eq!(out.len(), 1, "an answer completes when its line does");
    feed(&mut t, 3, 21, 3, Direction::Egress, b"\r\nOK c\r\n", &mut out);
    let calls: Vec<&EchoCall> = out.iter().map(call).collect();
    assert_eq!(
        calls.iter().map(|c| (c.role, c.start_ns, c.end_ns, c.outcome.clone())).collect::<Vec<_>>(),
        [
            (Role::Server, 10, 20, Some(Outcome::Ok)),
            (Role::Server, 10, 21, Some(Outcome::Err(7))),
            (Role::Server, 11, 21, Some(Outcome::Ok)),
        ]
    );
    assert!(t.muted.is_empty());
    assert_eq!(t.parse_errors, 0);
}

#[test]
fn a_stream_nobody_recognises_is_muted_and_a_disabled_protocol_recognises_nothing() {
    let muted = [Mute { conn_id: 1004, tls: false }];
    let (mut t, mut out) = tracker(4, 9000, true);
    feed(&mut t, 4, 10, 0, Direction::Ingress, b"\x00\x01binary", &mut out);
    assert_eq!(t.muted, muted, "muted after its first payload");
    feed(&mut t, 4, 11, 1, Direction::Egress, b"OK a\r\n", &mut out);
    assert!(out.is_empty());
    // Switched off, echo is not recognised: "ECHO a" could start an HTTP
    // request line, which HTTP/1 tries, and fails on at its end.
    let (mut t, mut out) = tracker(4, 9000, false);
    feed(&mut t, 4, 10, 0, Direction::Ingress, b"ECHO a\r\n", &mut out);
    assert_eq!((t.muted.as_slice(), t.parse_errors), (&muted[..], 1));
    feed(&mut t, 4, 11, 1, Direction::Egress, b"OK a\r\n", &mut out);
    assert!(out.is_empty());
    // Answers first, on the echo port: plausible, so followed (and the
    // answer to nothing seen is dropped).
    let (mut t, mut out) = tracker(5, PORT, true);
    feed(&mut t, 5, 10, 0, Direction::Egress, b"OK late\r\n", &mut out);
    feed(&mut t, 5, 11, 1, Direction::Ingress, b"ECHO x\r\n", &mut out);
    feed(&mut t, 5, 12, 2, Direction::Egress, b"OK x\r\n", &mut out);
    assert!(t.muted.is_empty());
    assert_eq!(out.iter().map(|e| call(e).outcome.clone()).collect::<Vec<_>>(), [Some(Outcome::Ok)]);
}

#[test]
fn a_first_read_too_short_to_tell_is_joined_to_the_next() {
    // A server reading the request a few bytes at a time.
    let (mut t, mut out) = tracker(11, 9000, true);
    feed(&mut t, 11, 10, 0, Direction::Ingress, b"E", &mut out);
    feed(&mut t, 11, 11, 1, Direction::Ingress, b"CH", &mut out);
    feed(&mut t, 11, 12, 2, Direction::Ingress, b"O a\r\n", &mut out);
    feed(&mut t, 11, 20, 3, Direction::Egress, b"OK a\r\n", &mut out);
    assert!(t.muted.is_empty());
    assert_eq!(out.iter().map(|e| (call(e).start_ns, call(e).end_ns)).collect::<Vec<_>>(), [(12, 20)]);
    // The other direction answers before the bytes could tell: what was
    // gathered is judged alone, and nobody follows "EC".
    let (mut t, mut out) = tracker(12, 9000, true);
    feed(&mut t, 12, 10, 0, Direction::Ingress, b"EC", &mut out);
    feed(&mut t, 12, 11, 1, Direction::Egress, b"OK\r\n", &mut out);
    assert_eq!(t.muted.len(), 1);
    // Nor do more bytes than a recogniser may wait for.
    let (mut t, mut out) = tracker(13, 9000, true);
    for seq in 0..8 {
        feed(&mut t, 13, 10 + u64::from(seq), seq, Direction::Ingress, b"", &mut out);
    }
    assert!(t.muted.is_empty(), "empty reads do not count");
    feed(&mut t, 13, 30, 8, Direction::Ingress, b"EC", &mut out);
    // Lost events while gathering: the gathered bytes are dropped.
    feed(&mut t, 13, 31, 10, Direction::Ingress, b"HO a\r\n", &mut out);
    assert_eq!(t.muted.len(), 1, "HO a is not a start");
    assert!(out.is_empty());
}

#[test]
fn lost_events_drop_what_was_in_flight_and_resynchronise() {
    let (mut t, mut out) = tracker(6, 9000, true);
    feed(&mut t, 6, 10, 0, Direction::Ingress, b"ECHO a\r\nECHO b\r\n", &mut out);
    // Events 1 and 2 lost: whatever they held, the two calls cannot be answered right.
    feed(&mut t, 6, 20, 3, Direction::Egress, b"OK b\r\n", &mut out);
    assert_eq!((t.gaps, t.requests_lost), (1, 2));
    feed(&mut t, 6, 21, 4, Direction::Ingress, b"HO junk\r\n", &mut out);
    feed(&mut t, 6, 22, 5, Direction::Ingress, b"ECHO c\r\n", &mut out);
    feed(&mut t, 6, 23, 6, Direction::Egress, b"OK c\r\n", &mut out);
    assert_eq!(out.iter().map(|e| (call(e).start_ns, call(e).end_ns)).collect::<Vec<_>>(), [(22, 23)]);
    assert_eq!(t.parse_errors, 0);
}

#[test]
fn garbage_fails_the_parser_and_close_reports_unanswered_calls() {
    let (mut t, mut out) = tracker(8, 9000, true);
    feed(&mut t, 8, 10, 0, Direction::Ingress, b"ECHO a\r\n", &mut out);
    t.close(&hdr(8, 30), &mut out);
    assert_eq!(out.iter().map(|e| (call(e).end_ns, call(e).outcome.clone())).collect::<Vec<_>>(), [(30, None)]);
    let (mut t, mut out) = tracker(9, 9000, true);
    feed(&mut t, 9, 10, 0, Direction::Ingress, b"ECHO a\r\n", &mut out);
    feed(&mut t, 9, 11, 1, Direction::Egress, b"WHAT\r\n", &mut out);
    assert_eq!(t.parse_errors, 1);
    assert_eq!(t.muted.len(), 1, "a failed parser stops the capture");
    t.close(&hdr(9, 30), &mut out);
    assert!(out.is_empty(), "a failed parser reports nothing");
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

#[test]
fn records_become_spans_and_metrics_without_protocol_code() {
    let (mut t, mut out) = tracker(10, 9000, true);
    feed(&mut t, 10, 1_000_000, 0, Direction::Ingress, b"ECHO a\r\nECHO b\r\n", &mut out);
    feed(&mut t, 10, 3_000_000, 1, Direction::Egress, b"OK a\r\nERR 503\r\n", &mut out);
    let mut describer = Describer::new(&Config::default(), Arc::new(Stats::default()));
    let mut metrics = Metrics::new_at(&MetricsConfig::default(), 0);
    let (clock, ids) = (WallClock::from_offset_ns(0), &mut IdGenerator::with_seed(1));
    let mut spans = Vec::new();
    for ex in &out {
        describer.describe(&ex.record, &ex.facts(), &mut |op| {
            metrics.observe(&ex.process, op);
            spans.push(to_span(op, &clock, ids));
        });
    }
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.name == "ECHO" && s.kind == SpanKind::Server as i32));
    assert_eq!(spans[0].end_time_unix_nano - spans[0].start_time_unix_nano, 2_000_000);
    assert_eq!(attr(&spans[0], "rpc.system.name"), Some(&Any::StringValue("echo".into())));
    assert_eq!(attr(&spans[0], "network.peer.address"), Some(&Any::StringValue("10.0.0.2".into())));
    assert_eq!(attr(&spans[0], "error.type"), None);
    assert_eq!(attr(&spans[1], "error.type"), Some(&Any::StringValue("503".into())));
    let batch = metrics.collect(10, &HostInfo::default(), None).unwrap();
    let req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
    let metric = req.resource_metrics[0].scope_metrics[0].metrics.iter().find(|m| m.name == "rpc.server.call.duration");
    let Some(Data::Histogram(h)) = metric.and_then(|m| m.data.as_ref()) else { panic!("no rpc.server.call.duration") };
    let mut counts: Vec<(usize, u64)> = h.data_points.iter().map(|p| (p.attributes.len(), p.count)).collect();
    counts.sort_unstable();
    assert_eq!(counts, [(2, 1), (3, 1)], "one series per error.type");
}
