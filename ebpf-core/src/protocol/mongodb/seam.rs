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
use crate::protocol::lenframe::Head;
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Progress, Recognition, Record, Role};

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

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(MongoConn {
        role: ctx.role,
        port_role: ctx.role_on_port(PORT),
        parser: None,
        ops: Vec::new(),
        reported: 0,
    })
}

/// One connection: the decoder, made on the first chunk (followed from its
/// start when the kernel saw it open, else joined mid-way).
#[derive(Debug)]
struct MongoConn {
    role: Option<Role>,
    port_role: Option<Role>,
    parser: Option<MongoParser>,
    ops: Vec<MongoOperation>,
    /// Unanswered requests already handed over by `dropped`.
    reported: u64,
}

impl MongoConn {
    fn emit(&mut self, out: &mut Vec<Record>) {
        out.extend(self.ops.drain(..).map(Record::Mongo));
    }
}

impl Parser for MongoConn {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        let parser = match &mut self.parser {
            Some(p) => p,
            None => {
                let p = match self.role {
                    Some(_) => MongoParser::new(),
                    None => {
                        let request = start(chunk.data) != Some(false);
                        let role = match (request, chunk.direction) {
                            (true, Direction::Egress) => Role::Client,
                            (true, Direction::Ingress) => Role::Server,
                            (false, _) => match self.port_role {
                                Some(role) => role,
                                None => return Progress::Failed,
                            },
                        };
                        MongoParser::joined(role)
                    }
                };
                self.parser.insert(p)
            }
        };
        parser.feed(chunk, &mut self.ops);
        let done = parser.is_done();
        self.emit(out);
        if done {
            Progress::Failed
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, _out: &mut Vec<Record>) -> usize {
        // Requests in flight stay: a reply names its request, so one after
        // the gap still finds it; those whose replies were lost are found
        // out later (or at close) and handed over by `dropped`.
        if let Some(p) = &mut self.parser {
            p.gap();
        }
        0
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        if let Some(p) = &mut self.parser {
            p.close(ts_ns, &mut self.ops);
        }
        self.emit(out);
    }

    fn dropped(&mut self) -> u64 {
        let total = self.parser.as_ref().map_or(0, MongoParser::unanswered);
        let new = total - self.reported;
        self.reported = total;
        new
    }
}
