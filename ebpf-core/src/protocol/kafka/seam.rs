//! Kafka on the protocol seam: the recogniser, and the decoder behind the
//! `Parser` interface with the topic names every Kafka connection of a
//! receiver shares.
//!
//! # Recognition
//! A connection's first bytes are Kafka when they are request headers
//! (size, a known API key and version, a non-negative correlation id, a
//! printable client id): certain with a client id, plausible without one
//! when the kernel saw the connection open (its first bytes are then a
//! request, not a response that happens to fit).
//! A broker reads the size alone first: four bytes that could start a
//! request ask for the next chunk (`NeedMore`). A connection older than the
//! receiver may first show a response, which has nothing distinctive: it is
//! taken only on Kafka's port, 9092.

use std::sync::Arc;

use super::parser::request_start;
use super::{KafkaOperation, KafkaParser, TopicNames};
use crate::protocol::decoded::{Decoded, Decoder};
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Recognition, Record, Role};

/// Kafka's well-known port: a hint for connections joined mid-way.
pub const PORT: u16 = 9092;

/// The registry's recogniser (see the module docs).
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    match request_start(hint.data, hint.total_len) {
        Some(true) => match hint.data.get(12..14) {
            Some(&[a, b]) if i16::from_be_bytes([a, b]) > 0 => Recognition::Certain,
            // Without a client id a response could pass for a request: only
            // when the role is known, or on the port.
            _ if hint.role.is_some() || hint.on_port(PORT) => Recognition::Plausible,
            _ => Recognition::No,
        },
        None => Recognition::NeedMore,
        Some(false) if hint.role.is_none() && hint.on_port(PORT) && looks_like_response(hint.data) => {
            Recognition::Plausible
        }
        Some(false) => Recognition::No,
    }
}

/// A size and a correlation id: all a response starts with.
fn looks_like_response(b: &[u8]) -> bool {
    match b.get(..8) {
        Some(h) => {
            let size = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            (4..=1 << 30).contains(&size) && h[4] < 0x80
        }
        None => false,
    }
}

/// The registry's constructor: the topic names come from the registry's
/// shared state (one map per receiver). The decoder follows the connection
/// from its start when the kernel saw it open; joined mid-way, the port
/// tells the role, else the direction of the request the recogniser found
/// (a response can look like a request, so the port comes first).
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    let names = ctx.shared::<TopicNames>().unwrap_or_default();
    let (role, port_role) = (ctx.role, ctx.role_on_port(PORT));
    Decoded::boxed(move |chunk| match role {
        Some(_) => Some(KafkaParser::new(names)),
        None => {
            let request = request_start(chunk.data, chunk.total_len) != Some(false);
            let role = match (port_role, request, chunk.direction) {
                (Some(role), ..) => role,
                (None, true, Direction::Egress) => Role::Client,
                (None, true, Direction::Ingress) => Role::Server,
                (None, false, _) => return None,
            };
            Some(KafkaParser::joined(names, role))
        }
    })
}

/// The registry's shared state: the topic names learned from Metadata.
pub fn shared() -> crate::protocol::SharedState {
    Arc::new(TopicNames::new())
}

impl Decoder for KafkaParser {
    type Op = KafkaOperation;

    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<KafkaOperation>) {
        KafkaParser::feed(self, chunk, out)
    }

    fn gap(&mut self) {
        // Requests in flight stay: a response names its request by id, so
        // one after the gap still finds it; those whose responses were lost
        // are found out later.
        KafkaParser::gap(self)
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<KafkaOperation>) {
        KafkaParser::close(self, ts_ns, out)
    }

    fn is_done(&self) -> bool {
        KafkaParser::is_done(self)
    }

    fn given_up(&self) -> u64 {
        self.unanswered()
    }

    fn record(op: KafkaOperation) -> Record {
        Record::Kafka(op)
    }
}
