//! PostgreSQL behind the protocol seam: the recogniser, and `PgParser` as
//! a `Parser` whose operations are `Record::Sql`.
//!
//! Recognition: a startup packet (StartupMessage, SSLRequest,
//! GSSENCRequest, CancelRequest: their codes are magic numbers) is
//! certain. A connection older than the receiver shows its next message
//! first: a frontend chunk of well-formed messages starting with a query,
//! Parse, Bind, Describe, Execute, Sync or Close, or a backend chunk of
//! well-formed messages ending with ReadyForQuery, is plausible (certain on
//! port 5432). Text protocols never pass: a letter followed by ASCII text
//! reads as a message longer than 1 GiB.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::framer::{ends_with_ready, frames_cleanly, known_type, MAX_MESSAGE_LEN};
use super::{looks_like_startup, PgParser};
use crate::protocol::sql::{DbOperation, SqlOptions};
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Progress, Recognition, Record, Role};
use crate::stats::Stats;

/// The well-known port: a hint only.
const PORT: u16 = 5432;

/// The registry's recogniser.
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    let data = hint.data;
    let certain_on_port = || if hint.on_port(PORT) { Recognition::Certain } else { Recognition::Plausible };
    if looks_like_startup(data) {
        // The frontend sends it: the client writes it, the server reads it.
        return if frontend_role(hint, true).is_some() { Recognition::Certain } else { Recognition::No };
    }
    if looks_like_frontend(data) && frontend_role(hint, true).is_some() {
        return certain_on_port();
    }
    if frames_cleanly(false, data, data.len() as u64)
        && ends_with_ready(data, data.len() as u64)
        && frontend_role(hint, false).is_some()
    {
        return certain_on_port();
    }
    Recognition::No
}

/// The traced process's role if the first chunk came from the frontend
/// (`frontend`) or the backend, and the kernel's role (when it saw the
/// connection open) agrees with the direction.
fn frontend_role(hint: &Hint<'_>, frontend: bool) -> Option<Role> {
    let role = match (hint.direction, frontend) {
        (Direction::Egress, true) | (Direction::Ingress, false) => Role::Client,
        _ => Role::Server,
    };
    hint.role.is_none_or(|r| r == role).then_some(role)
}

/// A chunk starting with a frontend message a client sends on an open
/// connection, each message well-formed as far as the bytes go.
fn looks_like_frontend(data: &[u8]) -> bool {
    let Some(&first) = data.first() else { return false };
    if !matches!(first, b'Q' | b'P' | b'B' | b'D' | b'E' | b'S' | b'C' | b'F' | b'H') {
        return false;
    }
    let mut i = 0usize;
    while i + 5 <= data.len() {
        let typ = data[i];
        let len = u32::from_be_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]);
        if !known_type(true, typ) || !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return false;
        }
        // A query's text (after the statement name, for Parse) starts like SQL.
        if i == 0 && matches!(typ, b'Q' | b'P') {
            let body = &data[5..];
            let text = if typ == b'P' { body.split(|&b| b == 0).nth(1).unwrap_or_default() } else { body };
            if len < 5 || !text.first().is_none_or(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace()) {
                return false;
            }
        }
        i += 1 + len as usize;
    }
    i > 0
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(PgStream {
        opts: ctx.config.postgresql.parser_options(),
        role: ctx.role,
        parser: None,
        ops: Vec::new(),
        dropped: 0,
        stats: ctx.stats.clone(),
    })
}

/// `PgParser` behind the seam, created at the first chunk: from the start
/// of the connection, or joined on a connection already open.
#[derive(Debug)]
struct PgStream {
    opts: SqlOptions,
    /// The kernel's, when it saw the connection open.
    role: Option<Role>,
    parser: Option<PgParser>,
    /// Operations completed by one call, before they become records.
    ops: Vec<DbOperation>,
    /// How many of the parser's dropped operations were counted.
    dropped: u64,
    stats: Arc<Stats>,
}

impl PgStream {
    fn start(&self, chunk: &Chunk<'_>) -> PgParser {
        if looks_like_startup(chunk.data) {
            return PgParser::new(self.opts);
        }
        // Joined mid-way: a frontend chunk comes from the client's side.
        let frontend = looks_like_frontend(chunk.data);
        let role = self.role.unwrap_or(match (chunk.direction, frontend) {
            (Direction::Egress, true) | (Direction::Ingress, false) => Role::Client,
            _ => Role::Server,
        });
        PgParser::joined(self.opts, role)
    }

    /// Records for the completed operations; the newly dropped ones counted
    /// (`requests_unmatched`) unless `gap` reports them; their number.
    fn flush(&mut self, out: &mut Vec<Record>, counted: bool) -> u64 {
        out.extend(self.ops.drain(..).map(Record::Sql));
        let total = self.parser.as_ref().map_or(0, PgParser::dropped);
        let new = total - self.dropped;
        self.dropped = total;
        if counted && new > 0 {
            self.stats.requests_unmatched.fetch_add(new, Relaxed);
        }
        new
    }
}

impl Parser for PgStream {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if self.parser.is_none() {
            self.parser = Some(self.start(chunk));
        }
        let Some(p) = self.parser.as_mut() else { return Progress::Failed };
        p.feed(chunk, &mut self.ops);
        // TLS (the plaintext comes from the TLS probes, from its startup),
        // terminated, or not PostgreSQL after all: nothing more to copy.
        let done = p.is_tls() || p.is_done();
        self.flush(out, true);
        if done {
            Progress::Done
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, out: &mut Vec<Record>) -> usize {
        let Some(p) = self.parser.as_mut() else { return 0 };
        p.gap();
        self.flush(out, false) as usize
    }

    fn close(&mut self, _ts_ns: u64, out: &mut Vec<Record>) {
        if let Some(p) = self.parser.as_mut() {
            p.close(&mut self.ops);
        }
        self.flush(out, true);
    }
}
