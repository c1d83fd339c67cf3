//! Application protocol parsers. Each parser turns the byte stream of one
//! connection (as seen by the syscall probes, possibly truncated) into
//! completed request/response exchanges. Parsers never panic on bad input:
//! garbage puts the connection's parser into a failed state.

pub mod genai;
pub mod http1;
pub mod http2;
pub mod kafka;
pub(crate) mod lenframe;
pub mod memcached;
pub mod mongodb;
pub mod mqtt;
pub mod mysql;
pub mod postgres;
pub(crate) mod prefix;
#[cfg(test)]
pub(crate) mod recorded;
pub mod redis;
pub mod sql;

/// Which way bytes moved, seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// read/recv: bytes the process received.
    Ingress,
    /// write/send: bytes the process sent.
    Egress,
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
