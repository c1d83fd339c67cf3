//! MySQL and MariaDB behind the protocol seam: the recogniser, and
//! `MysqlParser` as a `Parser` whose operations are `Record::Sql`.
//!
//! Recognition: the server's greeting (protocol 10 and a version string) is
//! certain; a client's first read of just the greeting's header (a driver
//! reading headers and bodies apart) is plausible. A login packet first (the plaintext of a TLS connection whose
//! greeting went by unseen) is plausible. A connection older than the
//! receiver shows its next command first (one whole packet, sequence 0, a
//! command a client sends on an open connection) or its next response (OK,
//! ERR, or a result set ending with EOF/OK): plausible. The port (3306)
//! makes the plausible cases certain.
//!
//! TLS: the greeting and the client's SSL request go in the clear, then the
//! TLS probes deliver the plaintext from the login on; the parser of the
//! clear part hands over one that knows the server's product (`mysql` or
//! `mariadb`, from the greeting), so spans over TLS are told apart too.

use std::sync::atomic::Ordering::Relaxed;

use super::{looks_like_greeting, looks_like_login, MysqlParser};
use crate::protocol::sql::seam::{SqlParser, SqlStream};
use crate::protocol::sql::{DbOperation, SqlOptions};
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Recognition, Role};
use crate::stats::Stats;

/// The well-known port: a hint only.
const PORT: u16 = 3306;

/// The registry's recogniser.
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    let data = hint.data;
    let plausible = || if hint.on_port(PORT) { Recognition::Certain } else { Recognition::Plausible };
    if looks_like_greeting(data) {
        return if role_of(hint, false).is_some() { Recognition::Certain } else { Recognition::No };
    }
    if looks_like_greeting_header(data) && hint.role == Some(Role::Client) && hint.direction == Direction::Ingress {
        return plausible();
    }
    if (looks_like_login(data) || looks_like_command(data)) && role_of(hint, true).is_some() {
        return plausible();
    }
    if looks_like_response(data) && role_of(hint, false).is_some() {
        return plausible();
    }
    Recognition::No
}

/// The traced process's role if the first chunk came from the client
/// (`from_client`) or the server, when the kernel's role agrees.
fn role_of(hint: &Hint<'_>, from_client: bool) -> Option<Role> {
    let role = Role::of(hint.direction, from_client);
    hint.role.is_none_or(|r| r == role).then_some(role)
}

/// A client's first read of exactly a packet header, of a length greetings
/// have, sequence 0: drivers that read the header first, then the body
/// (mysql-connector-python).
fn looks_like_greeting_header(data: &[u8]) -> bool {
    data.len() == 4 && data[3] == 0 && (40..1024).contains(&packet_len(data))
}

fn packet_len(data: &[u8]) -> usize {
    usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16
}

/// One command packet of an open connection: sequence 0, a command byte
/// and a body of that command's shape; the packet covers the chunk (or
/// runs past its captured prefix).
fn looks_like_command(data: &[u8]) -> bool {
    if data.len() < 5 || data[3] != 0 {
        return false;
    }
    let len = packet_len(data);
    if len == 0 || len + 4 < data.len() {
        return false;
    }
    let body = &data[4..];
    let text = |t: &[u8]| t.first().is_none_or(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace());
    match body[0] {
        // COM_QUERY: the text, or (query attributes) no parameters in one set first.
        0x03 => len > 1 && (text(&body[1..]) || body.get(1..3) == Some(&[0, 1])),
        0x02 | 0x16 => len > 1 && text(&body[1..]),
        // COM_STMT_EXECUTE: statement id, flags, iteration count 1.
        0x17 => len >= 10 && body.get(6..10).is_none_or(|n| n == [1, 0, 0, 0]),
        0x19 | 0x1a => len == 5,
        0x01 | 0x0e | 0x1f => len == 1,
        _ => false,
    }
}

/// A whole response: packets with consecutive sequence ids from 1 covering
/// the chunk, the last an OK, EOF or ERR packet.
fn looks_like_response(data: &[u8]) -> bool {
    let (mut i, mut seq, mut last) = (0usize, 1u8, None);
    while i + 4 < data.len() {
        let len = packet_len(&data[i..]);
        if data[i + 3] != seq || len == 0 || i + 4 + len > data.len() {
            return false;
        }
        last = Some((data[i + 4], len));
        i += 4 + len;
        seq = seq.wrapping_add(1);
    }
    i == data.len()
        && match last {
            Some((0x00, len)) => len >= 7,
            Some((0xFE, len)) => len < 0xFF_FFFF,
            Some((0xFF, len)) => len >= 3,
            _ => false,
        }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(SqlStream::<MysqlParser>::new(ctx.config.mysql.parser_options(), ctx.role, ctx.stats.clone()))
}

/// Made at the first chunk: from the start of the connection (greeting, or
/// login over TLS), or joined on a connection already open.
impl SqlParser for MysqlParser {
    fn start(opts: SqlOptions, role: Option<Role>, chunk: &Chunk<'_>) -> Self {
        let from_client = looks_like_command(chunk.data);
        let joined = !looks_like_greeting(chunk.data)
            && !looks_like_login(chunk.data)
            && (from_client || looks_like_response(chunk.data));
        if !joined {
            return MysqlParser::new(opts);
        }
        let role = role.unwrap_or(Role::of(chunk.direction, from_client));
        MysqlParser::joined(opts, role)
    }

    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        MysqlParser::feed(self, chunk, out);
    }

    fn gap(&mut self) {
        MysqlParser::gap(self);
    }

    fn close(&mut self, out: &mut Vec<DbOperation>) {
        MysqlParser::close(self, out);
    }

    fn dropped(&self) -> u64 {
        MysqlParser::dropped(self)
    }

    /// TLS (handed over: `after_tls`), compressed, quit or not MySQL.
    fn finished(&self) -> bool {
        self.is_tls() || self.is_done() || self.is_compressed()
    }

    fn count_finish(&self, stats: &Stats) {
        if self.is_compressed() {
            stats.mysql_compressed.fetch_add(1, Relaxed);
        }
    }

    fn after_tls(&self) -> Option<Self> {
        MysqlParser::after_tls(self)
    }
}
