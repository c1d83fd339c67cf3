//! Kafka on the seam, end to end: recorded client runs through the
//! connection tracker, the registry's parser and the description, as
//! spans and metrics.

use crate::protocol::fixture::{recording, Segment};
use crate::protocol::replay::{attr, kind, replay, replay_with, whole, Side};
use crate::protocol::{Protocols, Role};

const PORT: u16 = 9092;

fn produce() -> Vec<Vec<Segment>> {
    vec![
        recording!("kafka", "franz_produce.c1"),
        recording!("kafka", "franz_produce.c2"),
        recording!("kafka", "franz_produce.c3"),
    ]
}

fn consume() -> Vec<Vec<Segment>> {
    vec![
        recording!("kafka", "franz_consume.c1"),
        recording!("kafka", "franz_consume.c2"),
        recording!("kafka", "franz_consume.c3"),
        recording!("kafka", "franz_consume.c4"),
        recording!("kafka", "franz_consume.c5"),
    ]
}

/// A broker reads a request's size, then the rest.
fn size_then_body(seg: &Segment) -> Vec<usize> {
    match seg.bytes.len() {
        n if seg.from_client && n > 4 => vec![4, n - 4],
        n => vec![n],
    }
}

#[test]
fn produce_is_a_producer_span_named_by_a_topic_learned_on_another_connection() {
    let r = replay(&produce(), Side::client(PORT), &whole, None);
    assert_eq!(
        r.names(),
        [
            "ApiVersions CLIENT",
            "Metadata orders CLIENT",
            "GetTelemetrySubscriptions CLIENT",
            "ApiVersions CLIENT",
            "InitProducerId CLIENT",
            "PushTelemetry CLIENT",
            "ApiVersions CLIENT",
            "send orders PRODUCER",
            "send orders PRODUCER",
        ]
    );
    for s in r.named("send orders") {
        for (key, value) in [
            ("messaging.system", "kafka"),
            ("messaging.operation.name", "send"),
            ("messaging.operation.type", "send"),
            ("messaging.destination.name", "orders"),
            ("messaging.destination.partition.id", "0"),
            ("messaging.batch.message_count", "10"),
            ("messaging.client.id", "otel-ebpf-test-client"),
            ("server.address", "10.0.0.2"),
            ("server.port", "9092"),
            ("network.peer.port", "9092"),
        ] {
            assert_eq!(attr(s, key).as_deref(), Some(value), "{key}");
        }
        assert_eq!(attr(s, "error.type"), None);
        assert_eq!(s.status.as_ref().map_or(0, |st| st.code), 0);
    }
    let sent = [("messaging.system", "kafka"), ("messaging.destination.name", "orders")];
    assert_eq!(r.metric_total("messaging.client.sent.messages", &sent), 20);
    assert_eq!(r.metric_total("messaging.client.operation.duration", &[("messaging.operation.type", "send")]), 2);
    assert_eq!(r.metric_total("messaging.client.operation.duration", &[("messaging.system", "kafka")]), 9);
    assert_eq!((r.parse_errors, r.requests_lost, r.muted, r.undescribed), (0, 0, 0, 0));
}

#[test]
fn topic_names_are_shared_per_receiver_not_across_receivers() {
    // The Produce connection alone: its topic ID was never named.
    let r = replay(&produce()[2..], Side::client(PORT), &whole, None);
    let sends: Vec<_> = r.spans.iter().filter(|s| s.name == "send").collect();
    assert_eq!(sends.len(), 2, "{:?}", r.names());
    assert!(sends.iter().all(|s| attr(s, "messaging.destination.name").is_none()));
    assert_eq!(r.metric_total("messaging.client.sent.messages", &[]), 20, "counted all the same");
    // Each receiver has its own names: one that saw the Metadata does not
    // teach another.
    let protocols = Protocols::defaults();
    let _ = replay_with(&produce()[..1], Side::client(PORT), &whole, None, protocols.clone());
    let r = replay_with(&produce()[2..], Side::client(PORT), &whole, None, Protocols::defaults());
    assert_eq!(r.named("send orders").len(), 0);
    // The same receiver (one `Protocols`, cloned into its tracker) does.
    let r = replay_with(&produce()[2..], Side::client(PORT), &whole, None, protocols);
    assert_eq!(r.named("send orders").len(), 2);
}

#[test]
fn the_broker_reading_sizes_first_gives_server_spans_and_no_client_metrics() {
    let r = replay(&produce(), Side::server(PORT), &size_then_body, None);
    let client = replay(&produce(), Side::client(PORT), &whole, None);
    let names = |r: &crate::protocol::replay::Replayed| r.spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&r), names(&client));
    assert!(r.spans.iter().all(|s| kind(s) == "SERVER"));
    let send = r.named("send orders");
    assert_eq!(attr(send[0], "server.address").as_deref(), Some("10.0.0.2"));
    assert_eq!(attr(send[0], "network.peer.address").as_deref(), Some("10.0.0.1"));
    assert_eq!(r.metric_total("messaging.client.operation.duration", &[]), 0);
    assert_eq!((r.parse_errors, r.muted), (0, 0));
}

#[test]
fn consumers_poll_and_commit_and_a_poll_abandoned_at_close_is_not_reported() {
    let r = replay(&consume(), Side::client(PORT), &whole, None);
    let polls = r.named("poll orders");
    assert_eq!(polls.len(), 1, "{:?}", r.names());
    for (key, value) in [
        ("messaging.operation.name", "poll"),
        ("messaging.operation.type", "receive"),
        ("messaging.batch.message_count", "20"),
        ("messaging.destination.partition.id", "0"),
    ] {
        assert_eq!(attr(polls[0], key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(kind(polls[0]), "CLIENT");
    assert_eq!(r.metric_total("messaging.client.consumed.messages", &[("messaging.destination.name", "orders")]), 20);
    let commit = r.named("commit orders");
    assert_eq!(commit.len(), 1);
    assert_eq!(attr(commit[0], "messaging.operation.type").as_deref(), Some("settle"));
    assert_eq!(attr(commit[0], "messaging.consumer.group.name").as_deref(), Some("billing"));
    let joins = r.named("JoinGroup");
    assert_eq!(joins.len(), 2);
    assert_eq!(attr(joins[0], "error.type").as_deref(), Some("MEMBER_ID_REQUIRED"));
    assert_eq!(joins[0].status.as_ref().map(|s| s.code), Some(2), "ERROR");
    assert_eq!(attr(joins[1], "error.type"), None);
    // The Fetch waiting when the consumer closed: neither a span nor a loss.
    assert!(r.spans.iter().all(|s| attr(s, "error.type").as_deref() != Some("kafka.response.missing")));
    assert_eq!(r.requests_lost, 0);
}

#[test]
fn a_produce_left_unanswered_at_close_is_a_failed_span() {
    // kcat's Produce, its response never sent.
    let mut conn = recording!("kafka", "kcat_produce.c1");
    conn.pop();
    let r = replay(&[conn], Side::client(PORT), &whole, None);
    let send = r.named("send payments");
    assert_eq!(send.len(), 1, "{:?}", r.names());
    assert_eq!(attr(send[0], "error.type").as_deref(), Some("kafka.response.missing"));
    assert_eq!(attr(send[0], "messaging.batch.message_count").as_deref(), Some("7"));
    assert_eq!(r.metric_total("messaging.client.sent.messages", &[("error.type", "kafka.response.missing")]), 7);
}

#[test]
fn lost_events_cost_operations_never_give_a_wrong_one() {
    let clean = replay(&consume(), Side::client(PORT), &whole, None);
    // Connection 4's Fetch response (20 records) lost.
    let r = replay(&consume(), Side::client(PORT), &whole, Some((3, 3)));
    assert_eq!(r.named("poll orders").len(), 0);
    assert_eq!(r.metric_total("messaging.client.consumed.messages", &[]), 0);
    // The Fetch whose response was lost, and the next one, sent while the
    // responses were not followed yet and waiting at close: either may
    // have been answered unseen.
    assert_eq!(r.requests_lost, 2);
    assert!(r.spans.iter().all(|s| attr(s, "error.type").as_deref() != Some("kafka.response.missing")));
    assert_eq!(r.spans.len(), clean.spans.len() - 1);
}

#[test]
fn a_connection_older_than_the_receiver_is_joined_on_the_kafka_port_only() {
    // kcat's group connection from its first response on: no request seen yet.
    let conn: Vec<Segment> = recording!("kafka", "kcat_group.c1").into_iter().skip(1).collect();
    let joined = Side { traced: Role::Client, opened: false, port: PORT };
    let r = replay(std::slice::from_ref(&conn), joined, &whole, None);
    assert_eq!(r.muted, 0);
    // Every request after the first response, paired with its own response.
    let clean = replay(&[recording!("kafka", "kcat_group.c1")], Side::client(PORT), &whole, None);
    assert_eq!(r.names(), clean.names()[1..]);
    let elsewhere = Side { port: 19092, ..joined };
    let r = replay(&[conn], elsewhere, &whole, None);
    assert!(r.spans.is_empty());
    assert_eq!(r.muted, 1);
}
