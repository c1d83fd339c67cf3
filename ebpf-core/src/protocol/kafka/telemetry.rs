//! A Kafka operation as an `Operation`, per the messaging semantic
//! conventions (`messaging.system=kafka`).
//!
//! | API | `messaging.operation.name` | `.type` | client span kind |
//! |---|---|---|---|
//! | Produce | `send` | `send` | PRODUCER |
//! | Fetch | `poll` | `receive` | CLIENT |
//! | OffsetCommit | `commit` | `settle` | CLIENT |
//! | any other (`Metadata`, `JoinGroup`, `Heartbeat`, …) | its name in the protocol | none | CLIENT |
//!
//! Span name `{operation} {topic}` when the request names one topic, else
//! the operation alone. The broker's side of the same calls is a SERVER
//! span with the same name and attributes (the conventions define no broker
//! spans or metrics: no metric is fed).
//!
//! Span attributes: `messaging.system`, `messaging.operation.name`,
//! `messaging.operation.type`, `messaging.destination.name` (one topic),
//! `messaging.destination.partition.id` (one partition of one topic),
//! `messaging.consumer.group.name` (the group calls), `messaging.batch.message_count`
//! (records in the batches produced or fetched, when every batch header was
//! seen), `messaging.client.id`, `server.address`/`server.port` (the
//! broker), `network.peer.address`/`port`, `error.type` (the protocol's
//! error name, `UNKNOWN_TOPIC_OR_PARTITION`; `kafka.response.missing` when
//! the connection closed first).
//!
//! Metrics (clients only): `messaging.client.operation.duration` for every
//! call, `messaging.client.sent.messages` (Produce) and
//! `messaging.client.consumed.messages` (Fetch) by their record counts;
//! attributes `messaging.system`, `messaging.operation.name`/`.type`,
//! `messaging.destination.name`, `messaging.destination.partition.id`,
//! `messaging.consumer.group.name`, `error.type`, `server.address`,
//! `server.port`.
//!
//! A Fetch still waiting when its connection closes is not reported: a
//! consumer stops by closing its connection with its long poll pending,
//! which is no failure. Record keys, values and headers are never read.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::{error_name, Api, KafkaOperation, KafkaStatus};
use crate::metrics::instruments::{messaging as slot, MESSAGING_CLIENT};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};

/// `error.type` for a request whose connection closed before its response.
pub const ERROR_NO_RESPONSE: &str = "kafka.response.missing";

/// Describes `op` and hands its operation to `emit`; false when it cannot
/// be named (an API key newer than this receiver knows), so nothing is
/// emitted.
pub fn describe(op: &KafkaOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) -> bool {
    if op.api == Api::Fetch && op.status == KafkaStatus::NoResponse {
        return true;
    }
    let Some(api) = op.api.name() else { return false };
    let (name, op_type, client_kind) = match op.api {
        Api::Produce => ("send", Some("send"), SpanKind::Producer),
        Api::Fetch => ("poll", Some("receive"), SpanKind::Client),
        Api::OffsetCommit => ("commit", Some("settle"), SpanKind::Client),
        _ => (api, None, SpanKind::Client),
    };
    let topic = op.topic.as_deref().filter(|_| op.topic_count == 1);
    let mut o = Operation::empty();
    o.name = SpanName::new(name, topic);
    o.kind = match op.role {
        Role::Client => client_kind,
        Role::Server => SpanKind::Server,
    };
    (o.start_ns, o.end_ns) = (op.start_ns, op.end_ns);
    let error = match op.status {
        KafkaStatus::Error(code) => Some(error_name(code).map_or(Value::IntStr(i64::from(code)), Value::Str)),
        KafkaStatus::NoResponse => Some(Value::Str(ERROR_NO_RESPONSE)),
        KafkaStatus::Ok | KafkaStatus::Unknown => None,
    };
    let partition = op.partition.map(|p| Value::IntStr(i64::from(p)));
    o.attr("messaging.system", "kafka");
    o.attr("messaging.operation.name", name);
    if let Some(t) = op_type {
        o.attr("messaging.operation.type", t);
    }
    if let Some(t) = topic {
        o.attr("messaging.destination.name", t);
    }
    if let Some(p) = partition {
        o.attr("messaging.destination.partition.id", p);
    }
    if let Some(g) = op.group.as_deref() {
        o.attr("messaging.consumer.group.name", g);
    }
    if let Some(n) = op.message_count {
        o.attr("messaging.batch.message_count", n as i64);
    }
    if let Some(id) = op.client_id.as_deref() {
        o.attr("messaging.client.id", id);
    }
    let server = facts.endpoints.map(|ep| match op.role {
        Role::Client => ep.peer,
        Role::Server => ep.local,
    });
    if let Some((ip, port)) = server {
        o.attr("server.address", ip);
        o.attr("server.port", i64::from(port));
    }
    if let Some(ep) = &facts.endpoints {
        o.attr("network.peer.address", ep.peer.0);
        o.attr("network.peer.port", i64::from(ep.peer.1));
    }
    if let Some(e) = error {
        o.attr("error.type", e);
        o.failed = true;
    }
    if op.role == Role::Client {
        o.metrics.push(MetricFeed::new(&MESSAGING_CLIENT));
        let feed = o.metrics.last_mut().expect("just pushed");
        feed.attr("messaging.system", "kafka");
        feed.attr("messaging.operation.name", name);
        if let Some(t) = op_type {
            feed.attr("messaging.operation.type", t);
        }
        if let Some(t) = topic {
            feed.attr("messaging.destination.name", t);
        }
        if let Some(p) = partition {
            feed.attr("messaging.destination.partition.id", p);
        }
        if let Some(g) = op.group.as_deref() {
            feed.attr("messaging.consumer.group.name", g);
        }
        if let Some(e) = error {
            feed.attr("error.type", e);
        }
        if let Some((ip, port)) = server {
            feed.attr("server.address", ip);
            feed.attr("server.port", i64::from(port));
        }
        feed.value(slot::DURATION, op.end_ns.saturating_sub(op.start_ns));
        match (op.api, op.message_count) {
            (Api::Produce, Some(n)) => feed.value(slot::SENT, n),
            (Api::Fetch, Some(n)) => feed.value(slot::CONSUMED, n),
            _ => {}
        }
    }
    emit(&o);
    true
}
