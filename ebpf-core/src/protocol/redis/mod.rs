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

mod command;
mod operation;
mod parser;
mod reply;
mod sniff;

#[cfg(test)]
mod tests;

pub use operation::{Outcome, RedisCounters, RedisOperation, ReplyKind, Transaction, MAX_QUERY_PLACEHOLDERS};
pub use parser::RedisParser;
pub use sniff::looks_like_command;

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
