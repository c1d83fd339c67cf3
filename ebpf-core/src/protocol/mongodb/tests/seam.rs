//! MongoDB on the seam, end to end: a recorded pymongo session through the
//! connection tracker, the registry's parser and the description, as
//! spans and metrics.

use prost::Message;

use super::message;
use crate::protocol::fixture::{recording, Segment};
use crate::protocol::replay::{attr, kind, replay, whole, Side};

const PORT: u16 = 27017;

fn session() -> Vec<Vec<Segment>> {
    vec![
        recording!("mongodb", "pymongo_session.c1"),
        recording!("mongodb", "pymongo_session.c2"),
        recording!("mongodb", "pymongo_session.c3"),
    ]
}

/// A server reads a message's 16-byte header, then the rest.
fn header_then_body(seg: &Segment) -> Vec<usize> {
    match seg.bytes.len() {
        n if seg.from_client && n > 16 => vec![16, n - 16],
        n => vec![n],
    }
}

#[test]
fn commands_are_client_spans_named_by_command_and_collection() {
    let r = replay(&session(), Side::client(PORT), &whole, None);
    let names: Vec<String> = r.spans.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        [
            "isMaster admin",
            "ismaster admin",
            "ismaster admin",
            "drop orders",
            "createIndexes orders",
            "insert orders",
            "insert orders",
            "find orders",
            "find orders",
            "getMore orders",
            "getMore orders",
            "update orders",
            "update orders",
            "aggregate orders",
            "aggregate orders",
            "insert orders",
            "noSuchCommand shop",
            "delete orders",
            "insert items",
            "listCollections shop",
            "endSessions admin",
        ]
    );
    assert!(r.spans.iter().all(|s| kind(s) == "CLIENT"));
    let find = &r.named("find orders")[1];
    for (key, value) in [
        ("db.system.name", "mongodb"),
        ("db.operation.name", "find"),
        ("db.collection.name", "orders"),
        ("db.namespace", "shop"),
        ("db.response.returned_rows", "2"),
        ("server.address", "10.0.0.2"),
        ("server.port", "27017"),
    ] {
        assert_eq!(attr(find, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(attr(find, "error.type"), None);
    // A duplicate key: a write error in an `ok: 1` reply.
    let dup = &r.named("insert orders")[2];
    assert_eq!(attr(dup, "error.type").as_deref(), Some("11000"));
    assert_eq!(attr(dup, "db.response.status_code").as_deref(), Some("11000"));
    let unknown = &r.named("noSuchCommand shop")[0];
    assert_eq!(attr(unknown, "error.type").as_deref(), Some("CommandNotFound"));
    assert_eq!(attr(unknown, "db.response.status_code").as_deref(), Some("59"));
    assert_eq!(unknown.status.as_ref().map(|s| s.code), Some(2));
    let inserts = [("db.operation.name", "insert"), ("db.collection.name", "orders"), ("db.namespace", "shop")];
    assert_eq!(r.metric_total("db.client.operation.duration", &inserts), 3);
    assert_eq!(r.metric_total("db.client.operation.duration", &[("error.type", "11000")]), 1);
    assert_eq!(r.metric_total("db.client.operation.duration", &[("db.system.name", "mongodb")]), 21);
    assert_eq!((r.parse_errors, r.requests_lost, r.muted, r.undescribed), (0, 0, 0, 0));
}

#[test]
fn documents_never_reach_telemetry() {
    let r = replay(&session(), Side::client(PORT), &whole, None);
    let mut bytes = r.metrics.encode_to_vec();
    for s in &r.spans {
        bytes.extend(s.encode_to_vec());
    }
    for secret in ["alice", "4111", "secret-note", "example.com"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} exported");
    }
}

#[test]
fn the_server_reading_headers_first_gives_server_spans_and_no_client_metric() {
    let r = replay(&session(), Side::server(PORT), &header_then_body, None);
    let client = replay(&session(), Side::client(PORT), &whole, None);
    let names = |r: &crate::protocol::replay::Replayed| r.spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&r), names(&client));
    assert!(r.spans.iter().all(|s| kind(s) == "SERVER"));
    assert_eq!(r.metric_total("db.client.operation.duration", &[]), 0);
    assert_eq!((r.parse_errors, r.muted), (0, 0));
}

#[test]
fn compressed_commands_are_counted_not_described() {
    let mut body = Vec::new();
    body.extend_from_slice(&super::super::OP_MSG.to_le_bytes());
    body.extend_from_slice(&100i32.to_le_bytes());
    body.push(2);
    body.extend_from_slice(&[0x78, 0x9c, 1, 2, 3, 4]);
    let conn = vec![
        Segment { from_client: true, bytes: message(9, 0, super::super::OP_COMPRESSED, &body) },
        Segment { from_client: false, bytes: message(77, 9, super::super::OP_COMPRESSED, &body) },
    ];
    let r = replay(&[conn], Side::client(PORT), &whole, None);
    assert!(r.spans.is_empty());
    assert_eq!((r.undescribed, r.muted), (1, 0));
}

#[test]
fn lost_events_cost_commands_never_give_a_wrong_one() {
    let clean = replay(&session(), Side::client(PORT), &whole, None);
    // The reply to the first find (segment 15 of the application connection) lost.
    let r = replay(&session(), Side::client(PORT), &whole, Some((2, 15)));
    assert_eq!(r.spans.len(), clean.spans.len() - 1);
    assert_eq!(r.requests_lost, 1);
    assert!(r.spans.iter().all(|s| attr(s, "error.type").as_deref() != Some("db.response.missing")));
}
