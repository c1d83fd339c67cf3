//! memcached's text and meta protocols over one connection, as the syscall
//! probes see them.
//!
//! `MemcachedParser` frames both directions (`command`: command lines and
//! data blocks; `reply`: reply lines and data blocks) and pairs commands
//! with replies in order (`parser`: noreply, multi-key retrievals, meta
//! quiet mode, lost and truncated bytes). It produces `MemcachedOperation`s:
//! the command name, keys named and found (hits and misses), the reply code,
//! and timestamps. It keeps no key or value: only a command's name, flags,
//! opaque token and a hash of a meta command's key, to match replies.

//!
//! `MemcachedStream` puts the parser behind the registry's `Parser` (and
//! hands a stream answered in RESP to Redis's, see `super::kv`);
//! `telemetry` describes each operation as a database span.

mod command;
mod operation;
mod parser;
mod reply;
pub(crate) mod sniff;
mod stream;
pub mod telemetry;

#[cfg(test)]
mod tests;

pub use operation::{Code, MemcachedCounters, MemcachedOperation, Outcome};
pub use parser::MemcachedParser;
pub use sniff::looks_like_command;
pub(crate) use stream::MemcachedStream;

use super::kv::{self, Reading};
use super::{Hint, Parser, ParserContext, Recognition};

/// The registry's recogniser: a text or meta command is plausible, unless
/// Redis's inline form reads it too and the rule in `super::kv` gives it to
/// Redis; a reply first, plausible on memcached's port only. (The binary
/// protocol is not followed.)
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    let data = hint.data;
    if sniff::looks_like_command(data) {
        let shared = super::redis::sniff::looks_like_inline_command(data);
        if !shared || kv::resolve(hint) == Reading::Memcached {
            Recognition::Plausible
        } else {
            Recognition::No
        }
    } else if sniff::looks_like_reply(data) && kv::reply_first(hint, kv::MEMCACHED_PORT) {
        Recognition::Plausible
    } else {
        Recognition::No
    }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(MemcachedStream::new(ctx))
}

/// Most commands awaiting replies that are kept; more are counted and still
/// matched, as for Redis.
pub const MAX_PENDING: usize = 1024;

/// Longest command or reply line followed. memcached's own limit is 2048
/// bytes except for retrievals, whose key lists it reads in pieces; 250-byte
/// keys make a 1000-key `get` 250 KB.
const MAX_LINE: u64 = 512 * 1024;

/// Largest data block a line may declare (memcached's item size maximum is
/// 1 GB at most).
const MAX_VALUE_LEN: u64 = 1 << 30;

/// Why a connection's stream could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemcachedError {
    #[error("malformed memcached command stream: {0}")]
    Request(&'static str),
    #[error("malformed memcached reply stream: {0}")]
    Reply(&'static str),
    #[error("lost the memcached reply boundaries: {0}")]
    Desynchronized(&'static str),
}
