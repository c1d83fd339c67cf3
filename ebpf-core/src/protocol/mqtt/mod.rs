//! MQTT 3.1, 3.1.1 and 5, as the syscall probes see one connection: the
//! client's CONNECT (client id, protocol level) and the broker's CONNACK;
//! PUBLISH in both directions with its QoS flow matched by packet
//! identifier (QoS 0: the packet itself; QoS 1: PUBACK; QoS 2: PUBREC,
//! PUBREL, PUBCOMP); SUBSCRIBE/SUBACK with the filters' reason codes;
//! UNSUBSCRIBE/UNSUBACK; PINGREQ/PINGRESP; DISCONNECT. MQTT 5 properties
//! are skipped by their length (a topic alias is resolved per direction).
//!
//! Payloads are never read: a PUBLISH's payload size is counted from its
//! length. Nor are the CONNECT's will message, user name and password.
//!
//! See `parser` for how operations are formed and how lost events are
//! handled.

mod packet;
mod parser;
mod seam;
pub mod telemetry;

#[cfg(test)]
mod tests;

use compact_str::CompactString;

use crate::protocol::Role;

pub use packet::looks_like_connect;
pub use parser::MqttParser;
pub use seam::{new_parser, recognise, PORT};

/// Flows waiting for their acknowledgement at once (per connection; the
/// broker's default `max_inflight_messages` is 20, a client's receive
/// maximum at most 65535).
pub const MAX_PENDING: usize = 1024;

/// Longest topic or topic filter kept.
pub const MAX_TOPIC_BYTES: usize = 256;

/// Topic aliases remembered per direction (MQTT 5).
pub const MAX_ALIASES: usize = 256;

/// What the operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MqttCommand {
    /// CONNECT → CONNACK.
    Connect,
    /// PUBLISH and its QoS flow.
    Publish,
    /// SUBSCRIBE → SUBACK.
    Subscribe,
    /// UNSUBSCRIBE → UNSUBACK.
    Unsubscribe,
    /// PINGREQ → PINGRESP.
    Ping,
    /// DISCONNECT (no answer).
    Disconnect,
}

impl MqttCommand {
    /// The control packet's name in the specification.
    pub fn name(self) -> &'static str {
        match self {
            MqttCommand::Connect => "CONNECT",
            MqttCommand::Publish => "PUBLISH",
            MqttCommand::Subscribe => "SUBSCRIBE",
            MqttCommand::Unsubscribe => "UNSUBSCRIBE",
            MqttCommand::Ping => "PINGREQ",
            MqttCommand::Disconnect => "DISCONNECT",
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttStatus {
    Ok,
    /// A CONNACK return code (3.1.1: 1-5) or a reason code ≥ 0x80 (5): the
    /// first failing one of a SUBACK/UNSUBACK.
    Error(u8),
    /// No acknowledgement can come (QoS 0, DISCONNECT), or it was not seen.
    Unknown,
    /// The connection closed before the acknowledgement came (and none can
    /// have been lost: both directions were followed throughout).
    NoResponse,
}

/// One completed MQTT operation.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttOperation {
    pub command: MqttCommand,
    /// The traced process sent the operation's first packet (a PUBLISH it
    /// made, a SUBSCRIBE) rather than received it (a message delivered to
    /// it, or, on the broker's side, a client's request).
    pub sent: bool,
    /// 3 (3.1), 4 (3.1.1) or 5, from the CONNECT.
    pub protocol_level: Option<u8>,
    /// The CONNECT's client id (`messaging.client.id`), on every operation
    /// of the connection.
    pub client_id: Option<CompactString>,
    /// PUBLISH: the topic; (UN)SUBSCRIBE: the first topic filter.
    pub topic: Option<CompactString>,
    /// (UN)SUBSCRIBE: how many filters.
    pub topic_count: u32,
    /// PUBLISH: its QoS; SUBSCRIBE: the first filter's requested QoS.
    pub qos: Option<u8>,
    pub retain: bool,
    pub packet_id: Option<u16>,
    /// PUBLISH: the payload's size in bytes (`messaging.message.body.size`),
    /// when the properties' length was known.
    pub payload_size: Option<u64>,
    pub status: MqttStatus,
    /// When the first packet's first byte was.
    pub start_ns: u64,
    /// When the last packet of the flow was (the first's, for QoS 0).
    pub end_ns: u64,
    pub role: Role,
}
