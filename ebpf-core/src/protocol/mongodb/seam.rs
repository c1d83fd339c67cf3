//! MongoDB on the protocol seam: the recogniser, and the decoder behind
//! the `Parser` interface.
//!
//! # Recognition
//! A connection's first bytes are MongoDB when they are a request header
//! (a plausible little-endian length, `responseTo` 0, a command opcode)
//! and, for OP_MSG, known flags and a command-like first key: certain. A
//! server may read the 16-byte header alone first, and fewer bytes than
//! tell (the header, then the first key of the command) ask for the next
//! chunk (`NeedMore`). A connection older than the receiver may first show
//! a reply: taken only on MongoDB's port, 27017.

use super::parser::{head, header_fields, request_start, MAX_MESSAGE};
use super::{MongoOperation, MongoParser, OP_COMPRESSED, OP_MSG, OP_REPLY};
use crate::protocol::decoded::{Decoded, Decoder};
use crate::protocol::lenframe::Head;
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Recognition, Record, Role};

/// MongoDB's well-known port: a hint for connections joined mid-way.
pub const PORT: u16 = 27017;

/// The registry's recogniser (see the module docs).
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    match start(hint.data) {
        Some(true) => Recognition::Certain,
        None => Recognition::NeedMore,
        Some(false) if hint.role.is_none() && hint.on_port(PORT) && looks_like_reply(hint.data) => {
            Recognition::Plausible
        }
        Some(false) => Recognition::No,
    }
}

/// `request_start`, and for fewer bytes than a header, whether what is
/// there fits one (`None`: too short to tell).
fn start(b: &[u8]) -> Option<bool> {
    if b.len() >= 16 {
        return request_start(b);
    }
    let word = |i: usize| b.get(i..i + 4).map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let fits = word(0).is_none_or(|len| (16..=MAX_MESSAGE).contains(&len))
        && b.get(3).is_none_or(|&c| c == 0)
        && word(8).is_none_or(|to| to == 0);
    if fits {
        None
    } else {
        Some(false)
    }
}

/// A header answering a request (`responseTo` set) with a reply opcode.
fn looks_like_reply(b: &[u8]) -> bool {
    if b.len() < 16 || !matches!(head(&b[..16]), Head::Frame { .. }) {
        return false;
    }
    let (_, response_to, op) = header_fields(b);
    response_to != 0 && matches!(op, OP_MSG | OP_REPLY | OP_COMPRESSED)
}

/// The registry's constructor: the decoder follows the connection from its
/// start when the kernel saw it open; joined mid-way, a request tells the
/// role by its direction, else the port does.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    let (role, port_role) = (ctx.role, ctx.role_on_port(PORT));
    Decoded::boxed(move |chunk| match role {
        Some(_) => Some(MongoParser::new()),
        None => {
            let request = start(chunk.data) != Some(false);
            let role = match (request, chunk.direction) {
                (true, Direction::Egress) => Role::Client,
                (true, Direction::Ingress) => Role::Server,
                (false, _) => port_role?,
            };
            Some(MongoParser::joined(role))
        }
    })
}

impl Decoder for MongoParser {
    type Op = MongoOperation;

    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MongoOperation>) {
        MongoParser::feed(self, chunk, out)
    }

    fn gap(&mut self) {
        // Requests in flight stay: a reply names its request, so one after
        // the gap still finds it; those whose replies were lost are found
        // out later (or at close).
        MongoParser::gap(self)
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<MongoOperation>) {
        MongoParser::close(self, ts_ns, out)
    }

    fn is_done(&self) -> bool {
        MongoParser::is_done(self)
    }

    fn given_up(&self) -> u64 {
        self.unanswered()
    }

    fn record(op: MongoOperation) -> Record {
        Record::Mongo(op)
    }
}
