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

use super::framer::{ends_with_ready, frames_cleanly, known_type, MAX_MESSAGE_LEN};
use super::{looks_like_startup, PgParser};
use crate::protocol::sql::seam::{SqlParser, SqlStream};
use crate::protocol::sql::{DbOperation, SqlOptions};
use crate::protocol::{Chunk, Hint, Parser, ParserContext, Recognition, Role};

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
    let role = Role::of(hint.direction, frontend);
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
    Box::new(SqlStream::<PgParser>::new(ctx.config.postgresql.parser_options(), ctx.role, ctx.stats.clone()))
}

/// Made at the first chunk: from the start of the connection, or joined on
/// a connection already open.
impl SqlParser for PgParser {
    fn start(opts: SqlOptions, role: Option<Role>, chunk: &Chunk<'_>) -> Self {
        if looks_like_startup(chunk.data) {
            return PgParser::new(opts);
        }
        // Joined mid-way: a frontend chunk comes from the client's side.
        let frontend = looks_like_frontend(chunk.data);
        let role = role.unwrap_or(Role::of(chunk.direction, frontend));
        PgParser::joined(opts, role)
    }

    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        PgParser::feed(self, chunk, out);
    }

    fn gap(&mut self) {
        PgParser::gap(self);
    }

    fn close(&mut self, out: &mut Vec<DbOperation>) {
        PgParser::close(self, out);
    }

    fn dropped(&self) -> u64 {
        PgParser::dropped(self)
    }

    /// TLS (the plaintext comes from the TLS probes, from its startup),
    /// terminated, or not PostgreSQL after all.
    fn finished(&self) -> bool {
        self.is_tls() || self.is_done()
    }
}
