//! An MQTT operation as an `Operation`, per the messaging semantic
//! conventions. Their `messaging.system` enumeration has no MQTT member; it
//! allows other values, and this receiver uses `mqtt`.
//!
//! | operation (traced client) | span name, `messaging.operation.name` | `.type` | kind |
//! |---|---|---|---|
//! | PUBLISH sent, with its QoS flow | `publish` | `send` | PRODUCER |
//! | PUBLISH delivered by the broker, with its flow | `receive` | `receive` | CLIENT |
//! | CONNECT → CONNACK | `connect` | | CLIENT |
//! | SUBSCRIBE → SUBACK, UNSUBSCRIBE → UNSUBACK | `subscribe`, `unsubscribe` | | CLIENT |
//! | PINGREQ → PINGRESP | `ping` | | CLIENT |
//!
//! Seen from the broker, the same operations are SERVER spans, and the
//! messages it delivers PRODUCER spans named `publish`; no metric is fed
//! (the conventions define client metrics only). DISCONNECT completes
//! nothing and is not reported.
//!
//! Span names carry no topic: MQTT topics often name a device or a user
//! (`sensors/4711/temp`), too many for span names and metric series. The
//! topic is the span's `messaging.destination.name`; a (un)subscription's
//! single filter its `messaging.destination.subscription.name`.
//!
//! Span attributes: `messaging.system`, `messaging.operation.name`,
//! `messaging.operation.type`, `messaging.destination.name`,
//! `messaging.destination.subscription.name`, `messaging.client.id` (the
//! CONNECT's), `ebpf_receiver.mqtt.qos` (the PUBLISH's QoS, or the
//! subscription's requested one: the conventions have no QoS attribute),
//! `server.address`/`server.port`, `network.peer.address`/`port`,
//! `error.type` (the CONNACK return code's or reason code's name,
//! `not_authorized`; `mqtt.response.missing` when the connection closed
//! before the acknowledgement).
//!
//! Metrics (clients): `messaging.client.operation.duration` (a PUBLISH's
//! until its flow completes: 0 for QoS 0), `messaging.client.sent.messages`
//! (PUBLISH sent), `messaging.client.consumed.messages` (PUBLISH delivered);
//! attributes `messaging.system`, `messaging.operation.name`/`.type`,
//! `error.type`, `server.address`, `server.port`. Payloads, will messages,
//! user names and passwords are never read.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::{MqttCommand, MqttOperation, MqttStatus};
use crate::metrics::instruments::{messaging as slot, MESSAGING_CLIENT};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};

/// `messaging.system`: not a member of the conventions' enumeration, which
/// allows custom values.
pub const SYSTEM: &str = "mqtt";

/// `error.type` for an operation whose connection closed before its
/// acknowledgement.
pub const ERROR_NO_RESPONSE: &str = "mqtt.response.missing";

/// The project attribute for a PUBLISH's QoS (0, 1, 2).
pub const QOS: &str = "ebpf_receiver.mqtt.qos";

/// Describes `op` and hands its operation to `emit`.
pub fn describe(op: &MqttOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
    let client = op.role == Role::Client;
    let (name, op_type, kind) = match (op.command, client, op.sent) {
        (MqttCommand::Disconnect, _, _) => return,
        (MqttCommand::Publish, true, true) => ("publish", Some("send"), SpanKind::Producer),
        (MqttCommand::Publish, true, false) => ("receive", Some("receive"), SpanKind::Client),
        // The broker delivering to a subscriber.
        (MqttCommand::Publish, false, true) => ("publish", Some("send"), SpanKind::Producer),
        (MqttCommand::Publish, false, false) => ("publish", Some("send"), SpanKind::Server),
        (MqttCommand::Connect, ..) => ("connect", None, SpanKind::Client),
        (MqttCommand::Subscribe, ..) => ("subscribe", None, SpanKind::Client),
        (MqttCommand::Unsubscribe, ..) => ("unsubscribe", None, SpanKind::Client),
        (MqttCommand::Ping, ..) => ("ping", None, SpanKind::Client),
    };
    let mut o = Operation::empty();
    o.name = SpanName::new(name, None);
    o.kind = if client || kind == SpanKind::Producer { kind } else { SpanKind::Server };
    (o.start_ns, o.end_ns) = (op.start_ns, op.end_ns);
    let error = match op.status {
        MqttStatus::Error(code) => Some(error_name(code, op.protocol_level)),
        MqttStatus::NoResponse => Some(Value::Str(ERROR_NO_RESPONSE)),
        MqttStatus::Ok | MqttStatus::Unknown => None,
    };
    o.attr("messaging.system", SYSTEM);
    o.attr("messaging.operation.name", name);
    if let Some(t) = op_type {
        o.attr("messaging.operation.type", t);
    }
    match (op.command, op.topic.as_deref()) {
        (MqttCommand::Publish, Some(topic)) => o.attr("messaging.destination.name", topic),
        (MqttCommand::Subscribe | MqttCommand::Unsubscribe, Some(filter)) if op.topic_count == 1 => {
            o.attr("messaging.destination.subscription.name", filter)
        }
        _ => {}
    }
    if let Some(id) = op.client_id.as_deref() {
        o.attr("messaging.client.id", id);
    }
    if let Some(q) = op.qos {
        o.attr(QOS, i64::from(q));
    }
    let server = facts.endpoints.map(|ep| if client { ep.peer } else { ep.local });
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
    if client {
        o.metrics.push(MetricFeed::new(&MESSAGING_CLIENT));
        let feed = o.metrics.last_mut().expect("just pushed");
        feed.attr("messaging.system", SYSTEM);
        feed.attr("messaging.operation.name", name);
        if let Some(t) = op_type {
            feed.attr("messaging.operation.type", t);
        }
        if let Some(e) = error {
            feed.attr("error.type", e);
        }
        if let Some((ip, port)) = server {
            feed.attr("server.address", ip);
            feed.attr("server.port", i64::from(port));
        }
        feed.value(slot::DURATION, op.end_ns.saturating_sub(op.start_ns));
        match (op.command, op.sent) {
            (MqttCommand::Publish, true) => feed.value(slot::SENT, 1),
            (MqttCommand::Publish, false) => feed.value(slot::CONSUMED, 1),
            _ => {}
        }
    }
    emit(&o);
}

/// `error.type` for a return or reason code: CONNACK return codes of MQTT
/// 3.1 and 3.1.1 (1-5), else MQTT 5 reason codes (0x80 and up; a 3.1.1
/// SUBACK's failure is 0x80 too), by their names in the specifications.
fn error_name(code: u8, level: Option<u8>) -> Value<'static> {
    let v3 = level.is_some_and(|l| l < 5);
    let name = match code {
        1 if v3 => "unacceptable_protocol_version",
        2 if v3 => "identifier_rejected",
        3 if v3 => "server_unavailable",
        4 if v3 => "bad_user_name_or_password",
        5 if v3 => "not_authorized",
        0x80 => "unspecified_error",
        0x81 => "malformed_packet",
        0x82 => "protocol_error",
        0x83 => "implementation_specific_error",
        0x84 => "unsupported_protocol_version",
        0x85 => "client_identifier_not_valid",
        0x86 => "bad_user_name_or_password",
        0x87 => "not_authorized",
        0x88 => "server_unavailable",
        0x89 => "server_busy",
        0x8a => "banned",
        0x8b => "server_shutting_down",
        0x8c => "bad_authentication_method",
        0x8d => "keep_alive_timeout",
        0x8e => "session_taken_over",
        0x8f => "topic_filter_invalid",
        0x90 => "topic_name_invalid",
        0x91 => "packet_identifier_in_use",
        0x92 => "packet_identifier_not_found",
        0x93 => "receive_maximum_exceeded",
        0x94 => "topic_alias_invalid",
        0x95 => "packet_too_large",
        0x96 => "message_rate_too_high",
        0x97 => "quota_exceeded",
        0x98 => "administrative_action",
        0x99 => "payload_format_invalid",
        0x9a => "retain_not_supported",
        0x9b => "qos_not_supported",
        0x9c => "use_another_server",
        0x9d => "server_moved",
        0x9e => "shared_subscriptions_not_supported",
        0x9f => "connection_rate_exceeded",
        0xa0 => "maximum_connect_time",
        0xa1 => "subscription_identifiers_not_supported",
        0xa2 => "wildcard_subscriptions_not_supported",
        other => return Value::IntStr(i64::from(other)),
    };
    Value::Str(name)
}
