//! Byte-exact Kafka traffic (tests/fixtures/kafka/README.md) replayed whole,
//! split at every byte and at random, truncated at capture sizes, from both
//! sides, and with segments lost.

use super::*;
use crate::protocol::fixture::{direction, random_split, recording};
use crate::protocol::kafka::Api;
use crate::protocol::Chunk;

fn descriptions(ops: &[KafkaOperation]) -> Vec<String> {
    ops.iter().map(describe).collect()
}

/// Every recording, by name, as its connections.
fn all() -> Vec<(&'static str, Vec<Vec<Segment>>)> {
    vec![
        (
            "franz_produce",
            vec![
                recording!("kafka", "franz_produce.c1"),
                recording!("kafka", "franz_produce.c2"),
                recording!("kafka", "franz_produce.c3"),
            ],
        ),
        (
            "franz_consume",
            vec![
                recording!("kafka", "franz_consume.c1"),
                recording!("kafka", "franz_consume.c2"),
                recording!("kafka", "franz_consume.c3"),
                recording!("kafka", "franz_consume.c4"),
                recording!("kafka", "franz_consume.c5"),
            ],
        ),
        (
            "franz_errors",
            vec![
                recording!("kafka", "franz_errors.c1"),
                recording!("kafka", "franz_errors.c2"),
                recording!("kafka", "franz_errors.c3"),
            ],
        ),
        ("kcat_produce", vec![recording!("kafka", "kcat_produce.c1")]),
        ("kcat_consume", vec![recording!("kafka", "kcat_consume.c1")]),
        ("kcat_group", vec![recording!("kafka", "kcat_group.c1"), recording!("kafka", "kcat_group.c2")]),
        (
            "kpy_session",
            vec![
                recording!("kafka", "kpy_session.c1"),
                recording!("kafka", "kpy_session.c2"),
                recording!("kafka", "kpy_session.c3"),
                recording!("kafka", "kpy_session.c4"),
                recording!("kafka", "kpy_session.c5"),
            ],
        ),
    ]
}

fn conns(name: &str) -> Vec<Vec<Segment>> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, c)| c).expect("recording")
}

#[test]
fn franz_produce() {
    let (ops, unanswered) = play(&conns("franz_produce"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v5 ok",
            "Metadata v13 orders ok",
            "GetTelemetrySubscriptions v0 unknown",
            "ApiVersions v5 ok",
            "InitProducerId v5 ok",
            "PushTelemetry v0 unknown",
            "ApiVersions v5 ok",
            "Produce v13 orders p0 n=10 ok",
            "Produce v13 orders p0 n=10 ok",
        ]
    );
    assert_eq!(unanswered, 0);
}

#[test]
fn franz_consume() {
    let (ops, unanswered) = play(&conns("franz_consume"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v5 ok",
            "Metadata v13 orders ok",
            "GetTelemetrySubscriptions v0 unknown",
            "ApiVersions v5 ok",
            "FindCoordinator v6 group=billing ok",
            "OffsetFetch v10 orders group=billing ok",
            "ListOffsets v10 orders p0 ok",
            "OffsetCommit v10 orders p0 group=billing ok",
            "LeaveGroup v5 group=billing ok",
            "PushTelemetry v0 unknown",
            "ApiVersions v5 ok",
            "JoinGroup v9 group=billing MEMBER_ID_REQUIRED",
            "JoinGroup v9 group=billing ok",
            "SyncGroup v5 group=billing ok",
            "ApiVersions v5 ok",
            "Fetch v18 orders p0 n=20 ok",
            "Fetch v18 orders p0 no response",
            "ApiVersions v5 ok",
            "Fetch v18 n=0 ok",
        ]
    );
    assert_eq!(unanswered, 0, "the Fetch waiting at close is reported without its response");
}

#[test]
fn franz_errors() {
    let (ops, unanswered) = play(&conns("franz_errors"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v5 ok",
            "Produce v13 <id> p7 n=1 UNKNOWN_TOPIC_ID",
            "ApiVersions v5 ok",
            "GetTelemetrySubscriptions v0 unknown",
            "FindCoordinator v6 group=no-such-group ok",
            "Metadata v13 ok",
            "ApiVersions v5 ok",
            "Heartbeat v4 group=no-such-group GROUP_ID_NOT_FOUND",
            "PushTelemetry v0 unknown",
        ]
    );
    assert_eq!(unanswered, 0);
}

#[test]
fn kcat_produce() {
    let (ops, unanswered) = play(&conns("kcat_produce"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(descriptions(&ops), ["ApiVersions v3 ok", "Metadata v4 payments ok", "Produce v7 payments p0 n=7 ok",]);
    assert_eq!(unanswered, 0);
}

#[test]
fn kcat_consume() {
    let (ops, unanswered) = play(&conns("kcat_consume"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v3 ok",
            "Metadata v4 payments ok",
            "Metadata v4 payments ok",
            "ListOffsets v2 payments p0 ok",
            "Fetch v11 payments p0 n=7 ok",
            "Fetch v11 payments p0 no response",
        ]
    );
    assert_eq!(unanswered, 0);
}

#[test]
fn kcat_group() {
    let (ops, unanswered) = play(&conns("kcat_group"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v3 ok",
            "Metadata v4 ok",
            "FindCoordinator v2 group=audit ok",
            "FindCoordinator v2 group=audit ok",
            "Metadata v4 payments ok",
            "ListOffsets v2 payments p0 ok",
            "Fetch v11 payments p0 n=7 ok",
            "Fetch v11 payments p0 no response",
            "ApiVersions v3 ok",
            "JoinGroup v5 group=audit MEMBER_ID_REQUIRED",
            "JoinGroup v5 group=audit ok",
            "Metadata v4 payments ok",
            "SyncGroup v3 group=audit ok",
            "Heartbeat v3 group=audit ok",
            "OffsetFetch v7 payments group=audit ok",
            "OffsetCommit v7 payments p0 group=audit ok",
            "LeaveGroup v1 group=audit ok",
        ]
    );
    assert_eq!(unanswered, 0);
}

#[test]
fn kpy_session() {
    let (ops, unanswered) = play(&conns("kpy_session"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "ApiVersions v4 ok",
            "Metadata v13 ok",
            "ApiVersions v4 ok",
            "InitProducerId v4 ok",
            "Metadata v13 events ok",
            "Produce v9 events p0 n=5 ok",
            "ApiVersions v4 ok",
            "Metadata v13 ok",
            "ApiVersions v4 ok",
            "FindCoordinator v6 group=reports ok",
            "Metadata v13 events ok",
            "ListOffsets v10 events p0 ok",
            "Fetch v12 events p0 n=5 ok",
            "Metadata v13 events ok",
            "ApiVersions v4 ok",
            "JoinGroup v7 group=reports MEMBER_ID_REQUIRED",
            "JoinGroup v7 group=reports ok",
            "SyncGroup v5 group=reports ok",
            "JoinGroup v7 group=reports ok",
            "SyncGroup v5 group=reports ok",
            "OffsetFetch v8 events group=reports ok",
            "OffsetCommit v8 events p0 group=reports ok",
            "LeaveGroup v5 group=reports ok",
        ]
    );
    assert_eq!(unanswered, 0);
}

#[test]
fn operations_carry_client_ids_roles_and_times() {
    let (ops, _) = play(&conns("franz_produce"), Role::Client, usize::MAX, &mut whole);
    let produce: Vec<_> = ops.iter().filter(|o| o.api == Api::Produce).collect();
    assert_eq!(produce.len(), 2);
    for op in &produce {
        assert_eq!(op.client_id.as_deref(), Some("otel-ebpf-test-client"));
        assert_eq!((op.role, op.fire_and_forget, op.topic_count), (Role::Client, false, 1));
        assert!(op.start_ns < op.end_ns, "{op:?}");
    }
    assert!(produce[0].correlation_id < produce[1].correlation_id);
    let (ops, _) = play(&conns("kcat_produce"), Role::Client, usize::MAX, &mut whole);
    assert_eq!(ops[2].client_id.as_deref(), Some("rdkafka"));
}

/// Produce v13 names its topic by ID: without a Metadata response seen on
/// any connection, the name is unknown and the ID is kept.
#[test]
fn topic_ids_need_a_metadata_response() {
    let conns = conns("franz_produce");
    let (ops, _) = play(&conns[2..], Role::Client, usize::MAX, &mut whole);
    let op = ops.iter().find(|o| o.api == Api::Produce).expect("produce");
    assert_eq!((op.topic.as_deref(), op.topic_id.is_some(), op.message_count), (None, true, Some(10)));
}

/// The same operations from the broker's side, and however the bytes are
/// split into syscalls (a broker reads the size, then the body).
#[test]
fn any_split_and_either_side_give_the_same_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        let (server, _) = play(&conns, Role::Server, usize::MAX, &mut whole);
        assert_eq!(descriptions(&server), descriptions(&want), "{name} from the broker");
        assert!(server.iter().all(|o| o.role == Role::Server));
        let (sized, _) =
            play(&conns, Role::Server, usize::MAX, &mut |_, len| if len > 4 { vec![4, len - 4] } else { vec![len] });
        assert_eq!(descriptions(&sized), descriptions(&want), "{name} size then body");
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
/// run's (same connection and request segment, API and correlation id),
/// with each field it has equal to the clean run's, its status the same or
/// Unknown: never invented.
fn assert_subsequence(name: &str, got: &[KafkaOperation], want: &[KafkaOperation]) {
    for g in got {
        let found = want.iter().find(|w| {
            w.start_ns / SEG_NS == g.start_ns / SEG_NS && w.api == g.api && w.correlation_id == g.correlation_id
        });
        let Some(w) = found else { panic!("{name}: {} is not among the clean run's operations", describe(g)) };
        let same = |a: bool| assert!(a, "{name}: {} differs from {}", describe(g), describe(w));
        same(g.topic.is_none() || g.topic == w.topic);
        same(g.partition.is_none() || g.partition == w.partition);
        same(g.message_count.is_none() || g.message_count == w.message_count);
        same(g.group.is_none() || g.group == w.group);
        same(g.client_id.is_none() || g.client_id == w.client_id);
        same(g.status == w.status || g.status == KafkaStatus::Unknown);
        same(g.end_ns / SEG_NS == w.end_ns / SEG_NS);
    }
}

#[test]
fn truncated_captures_never_invent_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for capture in [0, 1, 5, 13, 16, 64, 100, 256, 1024] {
            for role in [Role::Client, Role::Server] {
                let (got, _) = play(&conns, role, capture, &mut whole);
                assert_subsequence(&format!("{name} capture {capture}"), &got, &want);
                if capture >= 1024 {
                    assert_eq!(descriptions(&got), descriptions(&want), "{name}: all operations at capture {capture}");
                }
            }
        }
    }
}

/// Each segment of each connection lost in turn: no operation is invented,
/// and requests made after the gap are paired again.
#[test]
fn lost_segments_never_invent_operations_and_recover() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for c in 0..conns.len() {
            for lost in 0..conns[c].len() {
                let mut got = Vec::new();
                let names = Arc::new(TopicNames::new());
                for (k, segs) in conns.iter().enumerate() {
                    let mut p = KafkaParser::new(names.clone());
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
                // Every request sent two segments after the gap or later is
                // answered again (one left waiting at close may be uncertain:
                // its response could have been in the lost events).
                let late = |o: &&KafkaOperation| {
                    o.start_ns / CONN_NS == c as u64
                        && (o.start_ns % CONN_NS) / SEG_NS > lost as u64 + 2
                        && o.status != KafkaStatus::NoResponse
                };
                let (w, g) = (want.iter().filter(late).count(), got.iter().filter(late).count());
                if lost > 0 {
                    assert_eq!(g, w, "{label}: operations after the gap");
                }
            }
        }
    }
}

/// Produce with acks=0 gets no response: it completes when sent.
#[test]
fn fire_and_forget_produce_completes_when_sent() {
    // kcat's Produce v7 request with acks rewritten to 0 (the broker's
    // answer is left out, as a broker sends none).
    let segs = recording!("kafka", "kcat_produce.c1");
    let mut req = segs.iter().rev().find(|s| s.from_client).expect("produce").clone();
    // size(4) key(2) ver(2) corr(4) client id(2 + 7) transactional id(2, null): acks next.
    assert_eq!(&req.bytes[4..8], &[0, 0, 0, 7]);
    assert_eq!(&req.bytes[21..25], &[0xff, 0xff, 0xff, 0xff], "no transactional id, acks -1 recorded");
    req.bytes[23..25].copy_from_slice(&[0, 0]);
    let mut conn: Vec<Segment> = segs
        .iter()
        .take_while(|s| s.bytes != segs.iter().rev().find(|s| s.from_client).unwrap().bytes)
        .cloned()
        .collect();
    conn.push(req);
    let (ops, unanswered) = play(&[conn], Role::Client, usize::MAX, &mut whole);
    let last = ops.last().expect("produce");
    assert_eq!(describe(last), "Produce v7 payments p0 n=7 unknown");
    assert!(last.fire_and_forget && last.start_ns == last.end_ns);
    assert_eq!(unanswered, 0);
}
