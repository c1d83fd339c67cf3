//! The one interface every protocol parser implements, and what the
//! connection tracker tells a recogniser about a new stream.

use std::fmt;

use super::{Chunk, Direction, ParserContext, Record, Role};

/// What is known of a stream when its first payload arrives: the bytes
/// (a prefix of what the syscall moved), which way they went, and what the
/// kernel saw of the connection. Ports are hints only (services run on any
/// port); the bytes decide.
#[derive(Debug, Clone, Copy)]
pub struct Hint<'a> {
    /// The captured prefix of the first payload; never empty. When a
    /// recogniser asked for more (`Recognition::NeedMore`), the first
    /// chunks of one direction, joined.
    pub data: &'a [u8],
    /// What the chunks in `data` moved in all: bytes past `data.len()`
    /// were not captured (a recogniser that checks framing needs to know).
    /// Only the last of joined chunks can have been cut short.
    pub total_len: u64,
    pub direction: Direction,
    /// The traced process's side when the kernel saw the socket appear
    /// (`accept` → server, `connect` → client); None for connections
    /// older than the receiver.
    pub role: Option<Role>,
    pub local_port: Option<u16>,
    pub peer_port: Option<u16>,
    /// Plaintext of a TLS connection (from the TLS library probes).
    pub tls: bool,
}

impl<'a> Hint<'a> {
    /// `data`, all of what its chunk moved, going `direction`, on a
    /// connection the kernel knows nothing more of (tests set the rest with
    /// `..Hint::of(data, direction)`).
    pub fn of(data: &'a [u8], direction: Direction) -> Self {
        Hint {
            data,
            total_len: data.len() as u64,
            direction,
            role: None,
            local_port: None,
            peer_port: None,
            tls: false,
        }
    }

    /// The server's port, when the role is known: the local one of a
    /// server, the peer's of a client.
    pub fn server_port(&self) -> Option<u16> {
        match self.role? {
            Role::Server => self.local_port,
            Role::Client => self.peer_port,
        }
    }

    /// Either end is on `port`: a weak hint, for protocols whose first
    /// bytes alone are ambiguous.
    pub fn on_port(&self, port: u16) -> bool {
        self.local_port == Some(port) || self.peer_port == Some(port)
    }
}

/// How sure a recogniser is that a stream is its protocol. The tracker
/// picks the highest; a tie goes to the protocol listed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recognition {
    No,
    /// The bytes start like this protocol's but are too few to tell (a
    /// server that reads a message's length before its body): show me
    /// the stream's next chunk too. The tracker gathers a few fully
    /// captured chunks of one direction (`conntrack::SNIFF_MAX_BYTES`)
    /// before it counts this as `No`; a `Certain` elsewhere wins at once.
    NeedMore,
    /// The bytes fit, but other protocols' could look the same (a port
    /// hint may have decided).
    Plausible,
    /// The bytes can only be this protocol (a magic number, a version string).
    Certain,
}

/// What a chunk did to a parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep feeding.
    Continue,
    /// The stream cannot be followed any more (garbage, lost framing): the
    /// parser is dropped, the failure counted (`parse_errors`) and the
    /// kernel stops copying the connection's payload.
    Failed,
    /// The stream turned into something this parser does not follow (an
    /// HTTP upgrade, a tunnel): the parser is dropped, without counting an
    /// error. The tracker then asks it for a successor (`Parser::handover`):
    /// with one, the connection goes on as the new protocol; without, the
    /// kernel stops copying it.
    Done,
}

/// A stream that switched to another protocol the receiver parses (HTTP/1.1
/// `Upgrade: h2c` answered 101 → HTTP/2): the parser that follows it from
/// the switch on, built by the parser that saw the switch.
#[derive(Debug)]
pub struct Handover {
    /// The new protocol's registry name (`Protocol::name`).
    pub protocol: &'static str,
    pub parser: Box<dyn Parser>,
    /// Where the new protocol starts in the chunk whose feed returned
    /// `Done`: its bytes from this offset on go to `parser`.
    pub offset: usize,
}

/// How much of each read/write a parser needs the kernel to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Capture {
    /// `capture_size` bytes (the configuration's; 1 KiB by default).
    #[default]
    Configured,
    /// The most one event carries (`OE_MAX_CAPTURE`, 4 KiB), whatever
    /// `capture_size` says: for protocols that put many small messages in
    /// one syscall and lose their framing past the capture (HTTP/2 frames).
    Wide,
}

/// One connection's parser for one protocol. It turns the byte stream of
/// both directions into records (`Record`), one per completed operation,
/// pushed onto `out` in the order they complete. It never panics on any
/// input and holds bounded memory per connection.
///
/// Matching requests to responses: first-in-first-out (`super::matching::Fifo`)
/// or by an id the protocol carries (`super::matching::ById`).
pub trait Parser: fmt::Debug + Send {
    /// One syscall's worth of bytes, either direction. Bytes past
    /// `chunk.data.len()` up to `chunk.total_len` moved but were not
    /// captured: they can be counted (body sizes, framing skipped), never
    /// parsed.
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress;

    /// The kernel lost events of this connection (ring buffer full): drop
    /// whatever was half-known, and resynchronise at the next message
    /// boundary the protocol can recognise. Returns how many requests were
    /// dropped unanswered (counted as `requests_lost`; never reported as
    /// records, since what was lost could be any part of them).
    fn gap(&mut self, out: &mut Vec<Record>) -> usize;

    /// The connection ended at `ts_ns` (close, process exit, or expiry at
    /// its last event): emit what it completes (a response delimited by
    /// the close) and report requests left unanswered as records without a
    /// response.
    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>);

    /// Asked after `feed` returned `Done`: the stream switched to TLS
    /// (after a STARTTLS-like request), and this is the parser to follow
    /// its plaintext with, carrying what the handshake said (MySQL: the
    /// server's product, from its greeting). `None` (the default): the
    /// plaintext is recognised afresh, like any new stream.
    fn over_tls(&mut self) -> Option<Box<dyn Parser>> {
        None
    }

    /// Requests this parser gave up on without a record since the last
    /// call: answers found missing only later (matched by id, a response
    /// after lost events shows the ones before it will never come), or
    /// more in flight than it keeps. Counted as `requests_lost`. Parsers
    /// that drop requests only in `gap` keep the default.
    fn dropped(&mut self) -> u64 {
        0
    }

    /// After `feed` returned `Done`: the parser of the protocol the stream
    /// switched to, if it is one the receiver parses and `next(name)` gives
    /// a context for it (it is enabled). Otherwise `None`, after pushing onto
    /// `out` what the switch completed (the upgrade request and its 101
    /// answer).
    fn handover(&mut self, _next: &dyn Fn(&str) -> Option<ParserContext>, _out: &mut Vec<Record>) -> Option<Handover> {
        None
    }

    /// How much of each read/write this parser needs captured; asked once,
    /// when it starts following a connection. `Wide` makes the kernel copy
    /// up to 4 KiB of the connection's syscalls, whatever `capture_size`.
    fn capture(&self) -> Capture {
        Capture::Configured
    }
}
