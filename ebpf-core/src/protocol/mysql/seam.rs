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
use std::sync::Arc;

use super::{looks_like_greeting, looks_like_login, MysqlParser};
use crate::protocol::sql::{DbOperation, SqlOptions};
use crate::protocol::{Chunk, Direction, Hint, Parser, ParserContext, Progress, Recognition, Record, Role};
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
    let role = match (hint.direction, from_client) {
        (Direction::Egress, true) | (Direction::Ingress, false) => Role::Client,
        _ => Role::Server,
    };
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
    Box::new(MyStream::new(ctx.config.mysql.parser_options(), ctx.role, ctx.stats.clone()))
}

/// `MysqlParser` behind the seam, created at the first chunk: from the
/// start of the connection (greeting, or login over TLS), or joined on a
/// connection already open.
#[derive(Debug)]
struct MyStream {
    opts: SqlOptions,
    /// The kernel's, when it saw the connection open.
    role: Option<Role>,
    parser: Option<MysqlParser>,
    ops: Vec<DbOperation>,
    /// How many of the parser's dropped operations were counted.
    dropped: u64,
    stats: Arc<Stats>,
}

impl MyStream {
    fn new(opts: SqlOptions, role: Option<Role>, stats: Arc<Stats>) -> Self {
        Self { opts, role, parser: None, ops: Vec::new(), dropped: 0, stats }
    }

    fn start(&self, chunk: &Chunk<'_>) -> MysqlParser {
        let from_client = looks_like_command(chunk.data);
        let joined = !looks_like_greeting(chunk.data)
            && !looks_like_login(chunk.data)
            && (from_client || looks_like_response(chunk.data));
        if !joined {
            return MysqlParser::new(self.opts);
        }
        let role = self.role.unwrap_or(match (chunk.direction, from_client) {
            (Direction::Egress, true) | (Direction::Ingress, false) => Role::Client,
            _ => Role::Server,
        });
        MysqlParser::joined(self.opts, role)
    }

    /// Records for the completed operations; the newly dropped ones counted
    /// (`requests_unmatched`) unless `gap` reports them; their number.
    fn flush(&mut self, out: &mut Vec<Record>, counted: bool) -> u64 {
        out.extend(self.ops.drain(..).map(Record::Sql));
        let total = self.parser.as_ref().map_or(0, MysqlParser::dropped);
        let new = total - self.dropped;
        self.dropped = total;
        if counted && new > 0 {
            self.stats.requests_unmatched.fetch_add(new, Relaxed);
        }
        new
    }
}

impl Parser for MyStream {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if self.parser.is_none() {
            self.parser = Some(self.start(chunk));
        }
        let Some(p) = self.parser.as_mut() else { return Progress::Failed };
        p.feed(chunk, &mut self.ops);
        let compressed = p.is_compressed();
        // TLS (handed over: `over_tls`), compressed, quit or not MySQL:
        // nothing more to copy.
        let done = p.is_tls() || p.is_done() || compressed;
        self.flush(out, true);
        if compressed {
            self.stats.mysql_compressed.fetch_add(1, Relaxed);
        }
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

    fn over_tls(&mut self) -> Option<Box<dyn Parser>> {
        let next = self.parser.as_ref()?.after_tls()?;
        let mut stream = MyStream::new(self.opts, self.role, self.stats.clone());
        stream.parser = Some(next);
        Some(Box::new(stream))
    }
}
