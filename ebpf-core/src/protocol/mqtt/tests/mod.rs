mod fixtures;
mod seam;

use crate::protocol::fixture::{feed_chunks, Segment};
pub(super) use crate::protocol::fixture::{whole, CONN_NS, SEG_NS};
use crate::protocol::{Chunk, Role};

use super::{MqttOperation, MqttParser, MqttStatus};

/// Plays each connection of a recording in order through its own parser,
/// from `role`'s side, each segment split by `split` and truncated to
/// `capture` bytes. Returns the operations and the unfinished flows.
pub(super) fn play(
    conns: &[Vec<Segment>],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<MqttOperation>, u64) {
    let mut out = Vec::new();
    let mut unfinished = 0;
    for (c, segs) in conns.iter().enumerate() {
        let mut p = MqttParser::new();
        let end = feed_chunks(segs, c, role, capture, split, &mut |chunk| p.feed(chunk, &mut out));
        p.close(end, &mut out);
        unfinished += p.unfinished();
    }
    (out, unfinished)
}

/// `COMMAND sent|recv [topic[/n]] [qN] [#id] [size=N] client STATUS`.
pub(super) fn describe(op: &MqttOperation) -> String {
    let mut s = format!("{} {}", op.command.name(), if op.sent { "sent" } else { "recv" });
    if let Some(t) = &op.topic {
        s += &format!(" {t}");
    }
    if op.topic_count > 1 {
        s += &format!("/{}", op.topic_count);
    }
    if let Some(q) = op.qos {
        s += &format!(" q{q}");
    }
    if let Some(id) = op.packet_id {
        s += &format!(" #{id}");
    }
    if let Some(n) = op.payload_size {
        s += &format!(" size={n}");
    }
    s += &format!(" {}", op.client_id.as_deref().unwrap_or("-"));
    s += &match op.status {
        MqttStatus::Ok => " ok".to_string(),
        MqttStatus::Unknown => " unknown".to_string(),
        MqttStatus::NoResponse => " no response".to_string(),
        MqttStatus::Error(c) => format!(" error={c:#04x}"),
    };
    s
}

fn feed_all(p: &mut MqttParser, packets: &[(bool, &[u8])]) -> Vec<MqttOperation> {
    let mut out = Vec::new();
    for (i, (client, b)) in packets.iter().enumerate() {
        let direction = if *client { crate::protocol::Direction::Egress } else { crate::protocol::Direction::Ingress };
        p.feed(&Chunk { ts_ns: i as u64 + 1, direction, data: b, total_len: b.len() as u64 }, &mut out);
    }
    out
}

/// MQTT 5 packets built from the specification: a topic alias set on one
/// PUBLISH and used alone on the next; a SUBACK refusing a filter.
#[test]
fn topic_aliases_and_refused_subscriptions() {
    let connect = b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03dev";
    let connack = b"\x20\x03\x00\x00\x00";
    // PUBLISH QoS 0 "a/b" with alias 7 (property 0x23), payload "x".
    let first = b"\x30\x0a\x00\x03a/b\x03\x23\x00\x07x";
    // PUBLISH QoS 0, empty topic, alias 7, payload "yz".
    let second = b"\x30\x08\x00\x00\x03\x23\x00\x07yz";
    // SUBSCRIBE #1 "s/#" QoS 1; SUBACK #1 reason 0x87 (not authorized).
    let subscribe = b"\x82\x09\x00\x01\x00\x00\x03s/#\x01";
    let suback = b"\x90\x04\x00\x01\x00\x87";
    let mut p = MqttParser::new();
    let ops = feed_all(
        &mut p,
        &[(true, connect), (false, connack), (true, first), (true, second), (true, subscribe), (false, suback)],
    );
    assert_eq!(
        ops.iter().map(describe).collect::<Vec<_>>(),
        [
            "CONNECT sent dev ok",
            "PUBLISH sent a/b q0 size=1 dev unknown",
            "PUBLISH sent a/b q0 size=2 dev unknown",
            "SUBSCRIBE sent s/# q1 #1 dev error=0x87",
        ]
    );
}

#[test]
fn other_protocols_are_not_mqtt() {
    for first in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"\x10\x02\x00\x00", b"\x30\x05\x00\x01a\x00\x00"] {
        let mut p = MqttParser::new();
        assert!(feed_all(&mut p, &[(true, first)]).is_empty());
        assert!(p.is_done(), "{first:?}");
    }
}

/// At close, operations still waiting for their acknowledgement are
/// reported without it, unless events were lost since they began.
#[test]
fn close_reports_what_waits_for_an_acknowledgement() {
    let connect = b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03dev";
    let connack = b"\x20\x03\x00\x00\x00";
    let subscribe = b"\x82\x09\x00\x01\x00\x00\x03s/#\x01";
    // PUBLISH QoS 1 #2 "a/b", no properties, payload "x".
    let publish = b"\x32\x09\x00\x03a/b\x00\x02\x00x";
    let mut p = MqttParser::new();
    let ops = feed_all(&mut p, &[(true, connect), (false, connack), (true, subscribe), (true, publish)]);
    assert_eq!(ops.len(), 1);
    let mut closed = Vec::new();
    p.close(9, &mut closed);
    assert_eq!(
        closed.iter().map(describe).collect::<Vec<_>>(),
        ["SUBSCRIBE sent s/# q1 #1 dev no response", "PUBLISH sent a/b q1 #2 size=1 dev no response"]
    );
    assert!(closed.iter().all(|op| op.end_ns == 9));
    assert_eq!(p.unfinished(), 0);
    let mut p = MqttParser::new();
    feed_all(&mut p, &[(true, connect), (false, connack), (true, publish)]);
    p.gap();
    let mut closed = Vec::new();
    p.close(9, &mut closed);
    assert!(closed.is_empty());
    assert_eq!(p.unfinished(), 1);
}
