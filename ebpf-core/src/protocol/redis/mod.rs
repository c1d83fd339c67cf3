//! Redis (RESP2 and RESP3) over one connection, as the syscall probes see it.
//!
//! `RedisParser` frames both directions (`command`: RESP arrays and inline
//! commands; `reply`: every RESP2/RESP3 type) and pairs each command with
//! its reply in order (`parser`: pipelining, pub/sub, MULTI/EXEC, CLIENT
//! REPLY, lost and truncated bytes). It produces `RedisOperation`s: the
//! command name, subcommand, argument count, database index, reply type or
//! error code, and timestamps. It keeps no key, argument value or reply
//! data: only the first bytes of the first three arguments while a command
//! is framed, to tell its name, subcommand or database index.
//!
//! `RedisStream` puts the parser behind the registry's `Parser`;
//! `telemetry` describes each operation as a database span (see there).

mod command;
mod operation;
mod parser;
mod reply;
pub(crate) mod sniff;
mod stream;
pub mod telemetry;

#[cfg(test)]
mod tests;

pub use operation::{Outcome, RedisCounters, RedisOperation, ReplyKind, Transaction, MAX_QUERY_PLACEHOLDERS};
pub use parser::RedisParser;
pub use sniff::looks_like_command;
pub(crate) use stream::RedisStream;

use super::kv::{self, Reading};
use super::{Hint, Parser, ParserContext, Recognition};

/// The registry's recogniser: a RESP command is certain; an inline command
/// plausible (certain on Redis's port), unless memcached's text protocol
/// reads it too and the rule in `super::kv` gives it to memcached; a reply
/// first, plausible on Redis's port only.
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    let data = hint.data;
    if sniff::looks_like_resp_command(data) {
        Recognition::Certain
    } else if sniff::looks_like_inline_command(data) {
        let shared = super::memcached::looks_like_command(data);
        if shared && kv::resolve(hint) != Reading::Redis {
            Recognition::No
        } else if hint.on_port(kv::REDIS_PORT) {
            // The port breaks the tie with HTTP's `GET /` request lines.
            Recognition::Certain
        } else {
            Recognition::Plausible
        }
    } else if sniff::starts_reply(data)
        && memchr::memmem::find(data, b"\r\n").is_some()
        && kv::reply_first(hint, kv::REDIS_PORT)
    {
        Recognition::Plausible
    } else {
        Recognition::No
    }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(RedisStream::new(ctx))
}

/// Most commands awaiting replies that are kept; more are counted (in
/// `RedisCounters::dropped_operations`) and still matched to their
/// replies, so framing stays exact. A 1000-command pipeline fits.
pub const MAX_PENDING: usize = 1024;

/// Most arguments a command may declare (Redis's own limit is 1024*1024*1024
/// for authenticated clients; past this a stream is not a sane client's).
const MAX_ARGS: i64 = 1 << 24;

/// Longest argument or string a stream may declare (Redis's
/// `proto-max-bulk-len` defaults to 512 MB and is capped at 2^63; 1 TiB
/// is past anything a real server sends).
const MAX_BULK_LEN: i64 = 1 << 40;

/// Most elements an aggregate reply may declare.
const MAX_ELEMENTS: i64 = 1 << 32;

/// Longest inline command line (Redis's PROTO_INLINE_MAX_SIZE).
const MAX_INLINE_LEN: u64 = 64 * 1024;

/// Deepest nesting of aggregates followed (Redis's own replies nest a few
/// levels: XREADGROUP, COMMAND DOCS).
const MAX_DEPTH: usize = 32;

/// Why a connection's stream could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    #[error("malformed Redis command stream: {0}")]
    Request(&'static str),
    #[error("malformed Redis reply stream: {0}")]
    Reply(&'static str),
    #[error("lost the Redis reply boundaries: {0}")]
    Desynchronized(&'static str),
}
