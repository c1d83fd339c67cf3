//! The Kafka wire protocol, as the syscall probes see one connection:
//! size-prefixed requests (API key, version, correlation id, client id) and
//! responses that carry only the correlation id, so each request is
//! remembered until the response with its id comes (the broker answers in
//! order; a Produce with `acks=0` gets no response and completes when
//! sent).
//!
//! Read from the bodies, in the versions clients use today (classic and
//! flexible encodings, tagged fields, topic IDs):
//! - Produce, Fetch: the topic, the partition, the records count of the
//!   record batches (`messaging.batch.message_count`), error codes;
//! - Metadata (which also teaches topic IDs their names, see
//!   [`TopicNames`]), ListOffsets, the group calls (FindCoordinator,
//!   JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//!   OffsetFetch), ApiVersions, InitProducerId: the group, topics, error
//!   codes. Other APIs complete with their key and no status.
//!
//! Record payloads (keys, values, headers) are never read: only the 61-byte
//! batch headers, for their record counts.
//!
//! # Several topics
//! A request may name several topics (and partitions). An operation carries
//! the first topic and how many there are (`topic_count`); the partition
//! only when exactly one partition of one topic is involved. Spans set
//! `messaging.destination.name` only for a single topic.
//!
//! # Counts
//! `message_count` is the sum of the records counts of every record batch
//! of the request (Produce) or response (Fetch), known only when every
//! batch header was captured: with `capture_size` 1024 that is the case
//! for a request or response whose batches' headers all lie in the
//! captured prefixes (one batch per partition, as clients send, is found
//! from the records field's length). A Fetch response's last batch cut by
//! the broker's size limit is not counted (the client fetches it again);
//! neither are control batches (transaction markers).

mod apis;
mod errors;
mod parser;
mod seam;
pub mod telemetry;
mod topics;
mod wire;

#[cfg(test)]
mod tests;

use compact_str::CompactString;

use crate::protocol::Role;

pub use apis::Api;
pub use errors::error_name;
pub use parser::{looks_like_request, KafkaParser};
pub use seam::{new_parser, recognise, shared, PORT};
pub use topics::{TopicNames, MAX_TOPIC_IDS};

/// Requests waiting for their responses at once on one connection
/// (clients cap this: 5 by default for producers, a few for consumers).
pub const MAX_IN_FLIGHT: usize = 256;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaStatus {
    /// Every error code of the response was seen and all were 0.
    Ok,
    /// The first non-zero error code of the response (a top-level code, or
    /// a topic's or partition's); see [`error_name`].
    Error(i16),
    /// The response was not (all) seen, or its API is not read.
    Unknown,
    /// The connection closed before the response came (and none can have
    /// been lost: the response direction was followed throughout).
    NoResponse,
}

/// One completed Kafka request and its response.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOperation {
    pub api: Api,
    pub api_version: i16,
    pub correlation_id: i32,
    /// `messaging.client.id`: the request header's client id.
    pub client_id: Option<CompactString>,
    /// The first topic, by name (IDs are resolved through [`TopicNames`]).
    pub topic: Option<CompactString>,
    /// The first topic's ID, when it was named by one that is not (yet) known.
    pub topic_id: Option<[u8; 16]>,
    /// How many topics the request (or its response) lists.
    pub topic_count: u32,
    /// The partition, when exactly one partition of one topic is involved.
    pub partition: Option<i32>,
    /// The consumer group, for the group calls.
    pub group: Option<CompactString>,
    /// Records produced (Produce) or fetched (Fetch), when certain.
    pub message_count: Option<u64>,
    pub status: KafkaStatus,
    /// A Produce with `acks=0`: the broker sends no response, the operation
    /// ends when the request was sent and its status cannot be known.
    pub fire_and_forget: bool,
    /// When the request's first byte was sent/received.
    pub start_ns: u64,
    /// When the response's last byte was (the request's, fire-and-forget).
    pub end_ns: u64,
    pub role: Role,
}
