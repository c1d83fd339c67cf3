//! Application protocols. A protocol is one folder behind one interface
//! (`Parser`): recognised from a connection's first bytes, it turns the
//! byte stream of both directions (as the syscall probes see it, possibly
//! truncated) into records (`Record`), which its description turns into
//! protocol-neutral `Operation`s that span assembly and metrics encode
//! without knowing the protocol. `registry` lists the protocols; `README.md`
//! says how to add one. Parsers never panic on bad input: garbage puts the
//! connection's parser into a failed state.

pub mod db;
pub(crate) mod decoded;
#[cfg(test)]
mod example;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod follow;
pub mod genai;
pub mod http1;
pub mod http2;
pub(crate) mod inflight;
pub mod kafka;
pub(crate) mod kv;
pub(crate) mod lenframe;
pub mod matching;
pub mod memcached;
pub mod mongodb;
pub mod mqtt;
pub mod mysql;
mod operation;
mod parser;
pub mod postgres;
pub(crate) mod prefix;
#[cfg(test)]
pub(crate) mod recorded;
pub mod redis;
pub mod registry;
#[cfg(test)]
pub(crate) mod replay;
pub mod sql;

pub use operation::{Attr, MetricFeed, Operation, SpanName, TextValue, Value, FEED_ATTRIBUTES, SPAN_ATTRIBUTES};
pub use parser::{Capture, Handover, Hint, Parser, Progress, Recognition};
pub use registry::{
    Describer, ParserContext, Protocol, Protocols, ProtocolsConfig, Record, SharedState, Verdict, PROTOCOLS,
};

use crate::conntrack::Endpoints;

/// The model protocol of `example` (tests only: it is never registered).
#[cfg(test)]
pub(crate) fn example_protocol() -> &'static Protocol {
    &example::PROTOCOL
}

/// What the connection tracker knows of the connection a record came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnFacts {
    /// None when the kernel's open event was lost.
    pub endpoints: Option<Endpoints>,
    /// Carried over TLS (its plaintext came from the TLS library probes).
    pub tls: bool,
}

/// Which way bytes moved, seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// read/recv: bytes the process received.
    Ingress,
    /// write/send: bytes the process sent.
    Egress,
}

impl Direction {
    /// The other way: where answers go when requests come this way.
    pub(crate) fn opposite(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        }
    }
}

/// One syscall's worth of bytes on a connection.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Kernel monotonic timestamp (ns) of the syscall's return.
    pub ts_ns: u64,
    pub direction: Direction,
    /// The captured prefix of what the syscall moved (may be empty, e.g. sendfile).
    pub data: &'a [u8],
    /// Everything the syscall moved; `total_len >= data.len()`. Bytes past
    /// `data.len()` were not captured and can only be counted, not parsed.
    pub total_len: u64,
}

/// Which side of the exchange the traced process was on, decided from the
/// direction the request travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The request was read by the process: it served it.
    Server,
    /// The request was written by the process: it made it.
    Client,
}

// Every parser maps roles to directions the same way: defined once here so
// that no protocol can get a side of it backwards.
impl Role {
    /// The direction requests travel for the traced process in this role:
    /// a server reads them, a client writes them.
    pub(crate) fn request_direction(self) -> Direction {
        match self {
            Role::Server => Direction::Ingress,
            Role::Client => Direction::Egress,
        }
    }

    /// The role of a process that moved a request (`request`), or an
    /// answer, in `direction`.
    pub(crate) fn of(direction: Direction, request: bool) -> Role {
        match (direction, request) {
            (Direction::Ingress, true) | (Direction::Egress, false) => Role::Server,
            (Direction::Egress, true) | (Direction::Ingress, false) => Role::Client,
        }
    }
}
