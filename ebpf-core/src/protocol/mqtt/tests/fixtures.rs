//! Byte-exact MQTT traffic (tests/fixtures/mqtt/README.md) replayed whole,
//! split at every byte and at random, truncated at capture sizes, from both
//! sides, and with segments lost.

use super::*;
use crate::protocol::fixture::{direction, random_split, recording};
use crate::protocol::Chunk;

fn descriptions(ops: &[MqttOperation]) -> Vec<String> {
    ops.iter().map(describe).collect()
}

/// Every recording, by name, as its connections.
fn all() -> Vec<(&'static str, Vec<Vec<Segment>>)> {
    vec![
        ("paho_v311", vec![recording!("mqtt", "paho_v311.c1")]),
        ("paho_v5", vec![recording!("mqtt", "paho_v5.c1")]),
        (
            "mosquitto_v5",
            vec![
                recording!("mqtt", "mosquitto_v5.c1"),
                recording!("mqtt", "mosquitto_v5.c2"),
                recording!("mqtt", "mosquitto_v5.c3"),
            ],
        ),
        (
            "mosquitto_v311",
            vec![
                recording!("mqtt", "mosquitto_v311.c1"),
                recording!("mqtt", "mosquitto_v311.c2"),
                recording!("mqtt", "mosquitto_v311.c3"),
            ],
        ),
        ("refused", vec![recording!("mqtt", "refused.c1"), recording!("mqtt", "refused.c2")]),
    ]
}

fn conns(name: &str) -> Vec<Vec<Segment>> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, c)| c).expect("recording")
}

#[test]
fn paho_v311() {
    let (ops, unfinished) = play(&conns("paho_v311"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "CONNECT sent paho-311 ok",
            "SUBSCRIBE sent sensors/#/2 q2 #1 paho-311 ok",
            "PUBLISH sent sensors/0 q0 size=9 paho-311 unknown",
            "PUBLISH recv sensors/0 q0 size=9 paho-311 unknown",
            "PUBLISH sent sensors/1 q0 size=9 paho-311 unknown",
            "PUBLISH sent sensors/2 q0 size=9 paho-311 unknown",
            "PUBLISH recv sensors/1 q0 size=9 paho-311 unknown",
            "PUBLISH recv sensors/2 q0 size=9 paho-311 unknown",
            "PUBLISH sent sensors/3 q1 #5 size=9 paho-311 ok",
            "PUBLISH sent sensors/4 q1 #6 size=9 paho-311 ok",
            "PUBLISH recv sensors/3 q1 #1 size=9 paho-311 ok",
            "PUBLISH recv sensors/4 q1 #2 size=9 paho-311 ok",
            "PUBLISH sent sensors/5 q2 #7 size=9 paho-311 ok",
            "PUBLISH sent sensors/6 q2 #8 size=9 paho-311 ok",
            "PUBLISH recv sensors/5 q2 #3 size=9 paho-311 ok",
            "PUBLISH recv sensors/6 q2 #4 size=9 paho-311 ok",
            "UNSUBSCRIBE sent sensors/# #9 paho-311 ok",
            "PINGREQ sent paho-311 ok",
            "DISCONNECT sent paho-311 ok",
        ]
    );
    assert_eq!(unfinished, 0);
}

#[test]
fn paho_v5() {
    let (ops, unfinished) = play(&conns("paho_v5"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "CONNECT sent paho-5 ok",
            "SUBSCRIBE sent sensors/#/2 q2 #1 paho-5 ok",
            "PUBLISH sent sensors/0 q0 size=9 paho-5 unknown",
            "PUBLISH recv sensors/0 q0 size=9 paho-5 unknown",
            "PUBLISH sent sensors/1 q0 size=9 paho-5 unknown",
            "PUBLISH recv sensors/1 q0 size=9 paho-5 unknown",
            "PUBLISH sent sensors/2 q0 size=9 paho-5 unknown",
            "PUBLISH recv sensors/2 q0 size=9 paho-5 unknown",
            "PUBLISH recv sensors/3 q1 #1 size=9 paho-5 ok",
            "PUBLISH sent sensors/3 q1 #5 size=9 paho-5 ok",
            "PUBLISH sent sensors/4 q1 #6 size=9 paho-5 ok",
            "PUBLISH recv sensors/4 q1 #2 size=9 paho-5 ok",
            "PUBLISH sent sensors/5 q2 #7 size=9 paho-5 ok",
            "PUBLISH sent sensors/6 q2 #8 size=9 paho-5 ok",
            "PUBLISH recv sensors/5 q2 #3 size=9 paho-5 ok",
            "PUBLISH recv sensors/6 q2 #4 size=9 paho-5 ok",
            "UNSUBSCRIBE sent sensors/# #9 paho-5 ok",
            "PINGREQ sent paho-5 ok",
            "DISCONNECT sent paho-5 ok",
        ]
    );
    assert_eq!(unfinished, 0);
}

#[test]
fn mosquitto_v5() {
    let (ops, unfinished) = play(&conns("mosquitto_v5"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "CONNECT sent sub-v5 ok",
            "SUBSCRIBE sent plant/+/temp q2 #1 sub-v5 ok",
            "PUBLISH recv plant/a/temp q1 #1 size=4 sub-v5 ok",
            "PUBLISH recv plant/b/temp q2 #2 size=4 sub-v5 ok",
            "DISCONNECT sent sub-v5 ok",
            "CONNECT sent pub-v5 ok",
            "PUBLISH sent plant/a/temp q1 #1 size=4 pub-v5 ok",
            "DISCONNECT sent pub-v5 ok",
            "CONNECT sent pub-v5 ok",
            "PUBLISH sent plant/b/temp q2 #1 size=4 pub-v5 ok",
            "DISCONNECT sent pub-v5 ok",
        ]
    );
    assert_eq!(unfinished, 0);
}

#[test]
fn mosquitto_v311() {
    let (ops, unfinished) = play(&conns("mosquitto_v311"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "CONNECT sent sub-v311 ok",
            "SUBSCRIBE sent plant/# q1 #1 sub-v311 ok",
            "PUBLISH recv plant/c/hum q0 size=2 sub-v311 unknown",
            "PUBLISH recv plant/d/hum q1 #1 size=2 sub-v311 ok",
            "DISCONNECT sent sub-v311 ok",
            "CONNECT sent pub-v311 ok",
            "PUBLISH sent plant/c/hum q0 size=2 pub-v311 unknown",
            "DISCONNECT sent pub-v311 ok",
            "CONNECT sent pub-v311 ok",
            "PUBLISH sent plant/d/hum q2 #1 size=2 pub-v311 ok",
            "DISCONNECT sent pub-v311 ok",
        ]
    );
    assert_eq!(unfinished, 0);
}

#[test]
fn refused() {
    let (ops, unfinished) = play(&conns("refused"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(descriptions(&ops), ["CONNECT sent bad-v311 error=0x05", "CONNECT sent bad-v5 error=0x87",]);
    assert_eq!(unfinished, 0);
}

#[test]
fn protocol_levels_roles_and_times() {
    for (name, level) in [("paho_v311", 4), ("paho_v5", 5)] {
        let (ops, _) = play(&conns(name), Role::Client, usize::MAX, &mut whole);
        assert!(ops.iter().all(|o| o.protocol_level == Some(level) && o.role == Role::Client), "{name}");
        assert!(ops.iter().all(|o| o.start_ns <= o.end_ns), "{name}");
        // A QoS 2 flow spans four packets: it ends after it starts.
        let q2 = ops.iter().find(|o| o.qos == Some(2) && o.sent).expect("QoS 2 publish");
        assert!(q2.end_ns / SEG_NS > q2.start_ns / SEG_NS, "{q2:?}");
        let q0 = ops.iter().find(|o| o.qos == Some(0) && o.sent).expect("QoS 0 publish");
        assert_eq!(q0.start_ns, q0.end_ns);
    }
}

/// What the broker sees: the same operations, each seen from the other side.
#[test]
fn any_split_and_either_side_give_the_same_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        let (server, _) = play(&conns, Role::Server, usize::MAX, &mut whole);
        let flip = |ops: &[MqttOperation]| {
            ops.iter()
                .map(|o| {
                    let mut o = o.clone();
                    o.sent = !o.sent;
                    o.role = Role::Client;
                    describe(&o)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(flip(&server), descriptions(&want), "{name} from the broker");
        assert!(server.iter().all(|o| o.role == Role::Server));
        let (bytewise, _) = play(&conns, Role::Client, usize::MAX, &mut |_, len| vec![1; len]);
        assert_eq!(descriptions(&bytewise), descriptions(&want), "{name} byte by byte");
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20 {
            let (random, _) = play(&conns, Role::Client, usize::MAX, &mut |_, len| random_split(&mut rng, len));
            assert_eq!(descriptions(&random), descriptions(&want), "{name} split at random");
        }
    }
}

/// An operation emitted under adverse conditions must be one of the clean
/// run's (same connection and first segment, command, side, packet
/// identifier) with each field it has equal, its status the same or
/// Unknown: never invented.
fn assert_subsequence(name: &str, got: &[MqttOperation], want: &[MqttOperation]) {
    for g in got {
        let found = want.iter().find(|w| {
            w.start_ns / SEG_NS == g.start_ns / SEG_NS
                && w.command == g.command
                && w.sent == g.sent
                && w.packet_id == g.packet_id
                && (g.topic.is_none() || g.topic == w.topic)
        });
        let Some(w) = found else { panic!("{name}: {} is not among the clean run's operations", describe(g)) };
        let same = |a: bool| assert!(a, "{name}: {} differs from {}", describe(g), describe(w));
        same(g.topic.is_none() || g.topic == w.topic);
        same(g.qos == w.qos || g.qos.is_none());
        same(g.payload_size.is_none() || g.payload_size == w.payload_size);
        same(g.client_id.is_none() || g.client_id == w.client_id);
        same(g.status == w.status || g.status == MqttStatus::Unknown);
        same(g.end_ns / SEG_NS == w.end_ns / SEG_NS);
    }
}

#[test]
fn truncated_captures_never_invent_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for capture in [0, 1, 2, 5, 16, 64, 100, 256, 1024] {
            let (got, _) = play(&conns, Role::Client, capture, &mut whole);
            assert_subsequence(&format!("{name} capture {capture}"), &got, &want);
            if capture >= 256 {
                assert_eq!(descriptions(&got), descriptions(&want), "{name}: all operations at capture {capture}");
            }
        }
    }
}

/// Each segment of each connection lost in turn: no operation is invented,
/// and the packets sent two segments after the gap or later are followed
/// again.
#[test]
fn lost_segments_never_invent_operations_and_recover() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for c in 0..conns.len() {
            for lost in 0..conns[c].len() {
                let mut got = Vec::new();
                for (k, segs) in conns.iter().enumerate() {
                    let mut p = MqttParser::new();
                    for (i, seg) in segs.iter().enumerate() {
                        if k == c && i == lost {
                            p.gap();
                            continue;
                        }
                        let ts = CONN_NS * k as u64 + SEG_NS * (i as u64 + 1);
                        let chunk = Chunk {
                            ts_ns: ts,
                            direction: direction(seg, Role::Client),
                            data: &seg.bytes,
                            total_len: seg.bytes.len() as u64,
                        };
                        p.feed(&chunk, &mut got);
                    }
                    p.close(CONN_NS * k as u64 + SEG_NS * (segs.len() as u64 + 1), &mut got);
                }
                let label = format!("{name} c{} without segment {lost}", c + 1);
                assert_subsequence(&label, &got, &want);
                let late = |o: &&MqttOperation| {
                    o.start_ns / CONN_NS == c as u64 && (o.start_ns % CONN_NS) / SEG_NS > lost as u64 + 2
                };
                if lost > 0 {
                    let (g, w): (Vec<_>, Vec<_>) = (
                        got.iter().filter(late).map(describe).collect(),
                        want.iter().filter(late).map(describe).collect(),
                    );
                    assert_eq!(g, w, "{label}: after the gap");
                }
            }
        }
    }
}
