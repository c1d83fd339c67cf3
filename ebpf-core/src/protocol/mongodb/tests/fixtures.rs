//! Byte-exact MongoDB traffic (tests/fixtures/mongodb/README.md) replayed
//! whole, split at every byte and at random, truncated at capture sizes,
//! from both sides, and with segments lost.

use super::*;
use crate::protocol::fixture::{direction, random_split, recording};
use crate::protocol::Chunk;

fn descriptions(ops: &[MongoOperation]) -> Vec<String> {
    ops.iter().map(describe).collect()
}

fn all() -> Vec<(&'static str, Vec<Vec<Segment>>)> {
    vec![(
        "pymongo_session",
        vec![
            recording!("mongodb", "pymongo_session.c1"),
            recording!("mongodb", "pymongo_session.c2"),
            recording!("mongodb", "pymongo_session.c3"),
        ],
    )]
}

#[test]
fn pymongo_session() {
    let (ops, unanswered) = play(&all()[0].1, Role::Client, usize::MAX, &mut whole);
    assert_eq!(
        descriptions(&ops),
        [
            "isMaster admin.- ok",
            "ismaster admin.- ok",
            "ismaster admin.- ok",
            "drop shop.orders ok",
            "createIndexes shop.orders ok",
            "insert shop.orders batch=1 ok",
            "insert shop.orders batch=4 ok",
            "find shop.orders docs=1 ok",
            "find shop.orders docs=2 ok",
            "getMore shop.orders docs=2 ok",
            "getMore shop.orders docs=1 ok",
            "update shop.orders batch=1 ok",
            "update shop.orders batch=1 ok",
            "aggregate shop.orders docs=1 ok",
            "aggregate shop.orders docs=1 ok",
            "insert shop.orders batch=1 error=11000/-",
            "noSuchCommand shop.- error=59/CommandNotFound",
            "delete shop.orders batch=1 ok",
            "insert inventory.items batch=1 ok",
            "listCollections shop.- docs=1 ok",
            "endSessions admin.- error=59/CommandNotFound",
        ]
    );
    assert_eq!(unanswered, 0);
    assert!(ops.iter().all(|o| o.start_ns < o.end_ns && o.role == Role::Client));
    // The legacy handshake is OP_QUERY; the rest OP_MSG.
    assert_eq!(ops[0].op_code, super::super::OP_QUERY);
    assert!(ops[1..].iter().all(|o| o.op_code == super::super::OP_MSG));
    // No value of the session (an email, a card number, a note) is in any field.
    for op in &ops {
        let text = format!("{op:?}");
        for secret in ["alice", "4111", "secret-note", "example.com", "x-1"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// The same operations from the server's side, and however the bytes are
/// split into syscalls (drivers and servers read the header, then the body).
#[test]
fn any_split_and_either_side_give_the_same_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        let (server, _) = play(&conns, Role::Server, usize::MAX, &mut whole);
        assert_eq!(descriptions(&server), descriptions(&want), "{name} from the server");
        assert!(server.iter().all(|o| o.role == Role::Server));
        for first in [4, 16] {
            let (sized, _) = play(&conns, Role::Client, usize::MAX, &mut |_, len| {
                if len > first {
                    vec![first, len - first]
                } else {
                    vec![len]
                }
            });
            assert_eq!(descriptions(&sized), descriptions(&want), "{name} header then body");
        }
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
/// run's (same connection, request segment and requestID) with each field
/// it has equal, its status the same or Unknown: never invented.
fn assert_subsequence(name: &str, got: &[MongoOperation], want: &[MongoOperation]) {
    for g in got {
        let found = want.iter().find(|w| w.start_ns / SEG_NS == g.start_ns / SEG_NS && w.request_id == g.request_id);
        let Some(w) = found else { panic!("{name}: {} is not among the clean run's operations", describe(g)) };
        let same = |a: bool| assert!(a, "{name}: {} differs from {}", describe(g), describe(w));
        same(g.command.is_none() || g.command == w.command);
        same(g.collection.is_none() || g.collection == w.collection);
        same(g.database.is_none() || g.database == w.database);
        same(g.batch_size.is_none() || g.batch_size == w.batch_size);
        same(g.returned_documents.is_none() || g.returned_documents == w.returned_documents);
        // An error whose code or code name lay past the capture.
        let code_cut = match (&g.status, &w.status) {
            (MongoStatus::Error { code: gc, code_name: gn }, MongoStatus::Error { code: wc, code_name: wn }) => {
                (gc.is_none() || gc == wc) && (gn.is_none() || gn == wn)
            }
            _ => false,
        };
        same(g.status == w.status || g.status == MongoStatus::Unknown || code_cut);
        same(g.end_ns / SEG_NS == w.end_ns / SEG_NS);
    }
}

#[test]
fn truncated_captures_never_invent_operations() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for capture in [0, 1, 5, 16, 17, 30, 64, 100, 256, 1024] {
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

#[test]
fn lost_segments_never_invent_operations_and_recover() {
    for (name, conns) in all() {
        let (want, _) = play(&conns, Role::Client, usize::MAX, &mut whole);
        for c in 0..conns.len() {
            for lost in 0..conns[c].len() {
                let mut got = Vec::new();
                for (k, segs) in conns.iter().enumerate() {
                    let mut p = MongoParser::new();
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
                let late = |o: &&MongoOperation| {
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
