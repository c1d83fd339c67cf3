//! HTTP/2 (RFC 9113) and the gRPC calls it carries, over one connection, as
//! the syscall (or TLS plaintext) probes see it.
//!
//! `Http2Parser` follows the frames of both directions, decodes header
//! blocks with one HPACK context per direction (`hpack`), and matches each
//! request to its response by stream id, any number of streams at once. A
//! stream completes when both sides sent END_STREAM, or with an error on
//! RST_STREAM, on the server's GOAWAY for streams it will not process, or at
//! close. Completed streams come out as `Http2Stream`s, with `GrpcCall`
//! facts when the content-type is gRPC.
//!
//! How a connection starts:
//! - From its start (`Http2Parser::new`): the client sends the 24-byte
//!   preface (prior-knowledge h2c, and TLS with ALPN `h2`: the plaintext is
//!   the same), the server its SETTINGS.
//! - After `Upgrade: h2c` (`Http2Parser::after_upgrade`): the HTTP/1.1
//!   request, answered 101 by the server, is stream 1.
//! - Joined mid-way (`Http2Parser::midway`): framing and both HPACK tables
//!   are unknown, see below.
//!
//! What the capture loses (only a prefix of each syscall is copied, and the
//! ring buffer may drop events):
//! - Payload bytes past the capture are counted from frame lengths: DATA
//!   sizes stay exact, and gRPC messages are counted while their 5-byte
//!   prefixes are captured.
//! - A header block cut by the capture is decoded up to the cut; the fields
//!   after it are unknown and so is that direction's table from then on.
//! - A frame header not captured loses that direction's framing. Streams in
//!   flight are dropped (counted in `Http2Stats::streams_lost`), and the
//!   direction resynchronises only on a chunk that is a whole number of
//!   plausible frames ending exactly at the chunk's end
//!   (`frame::is_frame_aligned`), never on a guess. The same happens after
//!   lost events (`Http2Parser::gap`).
//!
//! A table that is not known in full (joined mid-way, after a loss) still
//! decodes static-table and literal fields exactly. Fields that refer to
//! entries from before are unknown: a stream then carries only the fields
//! that are certain and `headers_complete = false`. No method, path or status
//! is ever guessed. The table becomes known again when the peer's entries we
//! saw fill it (see `hpack`).
//!
//! Behind the protocol seam (`seam`): recognised by the preface (or by
//! whole frames, joined mid-way), created by HTTP/1's hand-over after an
//! `Upgrade: h2c`, it asks the kernel for a wide capture and counts its drops
//! (`Http2Stats`) into the receiver's `ebpf_receiver.http2.*` counters. Its
//! streams are described in `telemetry`: HTTP spans and metrics, or RPCs for
//! gRPC calls.
//!
//! Privacy: only `:method`, `:path` (without its query), `:scheme`,
//! `:authority`/`host`, `:status`, whether the content-type is gRPC, and
//! `grpc-status` are decoded and kept; other header values and all bodies are
//! never kept, not even in the HPACK tables.

mod frame;
mod grpc;
mod hpack;
mod parser;
mod seam;
mod stream;
pub mod telemetry;

#[cfg(test)]
mod tests;

use compact_str::CompactString;

pub use frame::error_code_name;
pub use grpc::status_name as grpc_status_name;
pub use hpack::HpackError;
pub use parser::Http2Parser;
pub use seam::{new_parser, recognise, Http2Config, Http2Connection};
pub use stream::{GrpcCall, Http2Stream, StreamEnd};
pub use telemetry::describe;

use crate::protocol::Direction;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Longest `:path` kept; longer ones are cut (as HTTP/1 targets are).
pub const MAX_PATH_BYTES: usize = crate::protocol::http1::MAX_TARGET_BYTES;

/// Largest header block decoded (HEADERS and its CONTINUATIONs). Real ones
/// are a few hundred bytes; past this the rest of the block is treated as
/// lost.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// Most streams in flight on one connection. Servers allow 100 to 250
/// (SETTINGS_MAX_CONCURRENT_STREAMS); past this, new streams are counted as
/// lost instead of growing memory.
pub const MAX_OPEN_STREAMS: usize = 1024;

/// Whether `data` (a connection's first bytes one way) starts the client
/// preface, or is a prefix of it of at least 4 bytes.
pub fn looks_like_preface(data: &[u8]) -> bool {
    let n = data.len().min(PREFACE.len());
    n >= 4 && data[..n] == PREFACE[..n]
}

/// Whether a chunk of a connection already under way looks like HTTP/2
/// frames: a whole number of plausible frames (see `Http2Parser::midway`).
pub fn looks_like_frames(data: &[u8], total_len: u64) -> bool {
    frame::is_frame_aligned(data, total_len, frame::DEFAULT_MAX_FRAME_SIZE)
}

/// Whether an HTTP/1.1 request's header fields ask to switch to h2c
/// (RFC 7540 §3.2): an `Upgrade` list naming `h2c` and an `HTTP2-Settings`
/// field. If the response is 101, the connection continues as HTTP/2
/// (`Http2Parser::after_upgrade`).
pub fn requests_h2c_upgrade<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> bool {
    let mut ask = H2cAsk::default();
    for (name, value) in fields {
        ask.field(name, value);
    }
    ask.asked()
}

/// `requests_h2c_upgrade` one header field at a time, as a head parser
/// meets them (the response's `Upgrade: h2c` uses `field` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct H2cAsk {
    upgrade: bool,
    settings: bool,
}

impl H2cAsk {
    /// The length of `Upgrade`; the other name it reads, `HTTP2-Settings`,
    /// is as long as `Content-Length`.
    pub const UPGRADE: usize = b"upgrade".len();

    /// Cheap for the fields that are neither: two length-first comparisons.
    #[inline]
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade |= names_h2c(value);
        } else if name.eq_ignore_ascii_case(b"http2-settings") {
            self.settings = true;
        }
    }

    /// A request: `Upgrade` names h2c and `HTTP2-Settings` is there.
    pub fn asked(&self) -> bool {
        self.upgrade && self.settings
    }

    /// A 101 response: its `Upgrade` names h2c.
    pub fn accepted(&self) -> bool {
        self.upgrade
    }
}

/// An `Upgrade` list naming `h2c`.
fn names_h2c(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"h2c"))
}

/// Why a connection is not followed as HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Http2Error {
    #[error("connection does not start with the HTTP/2 preface or frames")]
    BadPreface,
}

/// What a parser could not follow, since its last `take_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Http2Stats {
    /// Times a direction lost its framing (a frame header not captured).
    pub framing_lost: u64,
    /// Times a direction found its framing again.
    pub resyncs: u64,
    /// Chunks skipped while a direction's framing was lost.
    pub chunks_skipped: u64,
    /// Streams in flight dropped because framing was lost, or never followed
    /// (too many at once, or a request whose direction was not known).
    pub streams_lost: u64,
    /// Header blocks that could not be decoded (malformed, or a CONTINUATION
    /// out of place): that direction's table became unknown.
    pub hpack_errors: u64,
}

/// The HTTP/1.1 request of an `Upgrade: h2c` exchange answered 101, which
/// HTTP/2 continues as stream 1 (RFC 7540 §3.2).
#[derive(Debug, Clone)]
pub struct H2cUpgrade {
    /// The direction the request travelled.
    pub request_direction: Direction,
    pub method: CompactString,
    /// The request-target's path, without its query.
    pub path: CompactString,
    /// The Host header.
    pub authority: Option<CompactString>,
    pub request_start_ns: u64,
    pub request_end_ns: u64,
    pub request_body_size: u64,
}
