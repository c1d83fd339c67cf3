//! HTTP/1.0 and HTTP/1.1 over one connection, as the syscall probes see it.
//!
//! The probes hand us each read()/write() as it happened, so messages arrive
//! split at arbitrary bytes, several to a syscall (pipelining), or with their
//! tails never captured. `Http1Parser` follows the framing of both directions
//! (heads via `fast_head`, or `httparse` when unusual; bodies by Content-Length, chunked coding or close)
//! and pairs requests with responses FIFO. Whenever the stream cannot be
//! followed with certainty it fails for good instead of guessing, because a
//! misframed stream would otherwise produce wrong spans for the rest of the
//! connection's life.
//!
//! Two exceptions keep long-lived connections traced without guessing:
//! - *Degraded framing*: when the capture loses only where a message ends
//!   (a head longer than `capture_size`, chunk sizes past it), the message
//!   ends where the other direction starts its next message, and the next
//!   chunk its way must start a new message (details in `parser`).
//! - *Lost events*: `Http1Parser::gap` drops what was in flight and waits
//!   for a chunk that starts a request.
//!
//! Only what spans need is kept: method, target, Host and sizes. Other header
//! values and bodies are never stored, except for the exchanges a
//! `BodyPolicy` selects (LLM API calls): their bodies, bounded, and their
//! Content-Type/Content-Encoding.

mod body;
mod error;
mod exchange;
mod fast_head;
mod head;
mod kept;
mod parser;
mod sniff;
pub mod telemetry;

#[cfg(test)]
mod tests;

pub use error::{MessageKind, ParseError};
pub use exchange::{HttpExchange, HttpVersion};
pub use kept::{BodyPolicy, KeptBodies, KeptBody};
pub use parser::Http1Parser;
pub use telemetry::HttpLayers;

use super::http2::Http2Connection;
use super::{Chunk, Handover, Hint, Parser, ParserContext, Progress, Recognition, Record};

/// Whether the strict-shape fast path and httparse parse `buf` as the same
/// request and the same response head (or fail alike): for the fuzz target.
#[doc(hidden)]
pub fn head_paths_agree(buf: &[u8]) -> bool {
    head::paths_agree(buf)
}

/// Most bytes held while waiting for a head to end. Real heads are a few
/// hundred bytes; a peer past this is not one we can afford to follow.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Longest request-target kept; longer ones are cut (at a char boundary).
pub const MAX_TARGET_BYTES: usize = 2048;

/// Longest Host value kept (a DNS name is at most 253 bytes, plus a port).
pub const MAX_HOST_BYTES: usize = 256;

/// Most requests waiting for their responses at once; beyond this the peer
/// is not behaving like an HTTP/1 client and memory would grow without end.
pub const MAX_PIPELINED: usize = 64;

/// The registry's recogniser: a status line start ("HTTP/1.") or a request
/// line with its version ("GET / HTTP/1.1") is certain; a request line
/// start alone ("GET /", the rest not captured) is plausible, as other text
/// protocols' commands look the same ("EHLO x").
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    if sniff::looks_like_response(hint.data) {
        Recognition::Certain
    } else if sniff::looks_like_request(hint.data) {
        // The request line's end: "... HTTP/1.x\r\n" (runs once per connection).
        let line = &hint.data[..memchr::memchr(b'\n', hint.data).unwrap_or(hint.data.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.split_last() {
            Some((_, rest)) if rest.ends_with(b" HTTP/1.") => Recognition::Certain,
            _ => Recognition::Plausible,
        }
    } else {
        Recognition::No
    }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(Http1Parser::with_policy(ctx.body_policy.clone()))
}

/// Pushes the exchanges a parser completes as records.
struct AsRecords<'a>(&'a mut Vec<Record>);

impl Extend<HttpExchange> for AsRecords<'_> {
    fn extend<I: IntoIterator<Item = HttpExchange>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(Record::Http1));
    }
}

impl Parser for Http1Parser {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if Http1Parser::feed(self, chunk, &mut AsRecords(out)).is_err() {
            Progress::Failed
        } else if self.is_switched() {
            // An upgrade (WebSocket) or an accepted CONNECT: no longer HTTP/1.
            Progress::Done
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, out: &mut Vec<Record>) -> usize {
        Http1Parser::gap(self, &mut AsRecords(out))
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        Http1Parser::close(self, ts_ns, &mut AsRecords(out));
    }

    /// `Upgrade: h2c` answered 101: HTTP/2 goes on from the 101 head's end,
    /// the upgrade request its stream 1 (its span comes from there).
    fn handover(&mut self, next: &dyn Fn(&str) -> Option<ParserContext>, out: &mut Vec<Record>) -> Option<Handover> {
        match next("http2") {
            Some(ctx) => {
                let (upgrade, offset) = self.take_h2c_upgrade()?;
                let parser = Box::new(Http2Connection::after_upgrade(upgrade, ctx.stats));
                Some(Handover { protocol: "http2", parser, offset })
            }
            None => {
                self.end_h2c_upgrade(&mut AsRecords(out));
                None
            }
        }
    }
}
