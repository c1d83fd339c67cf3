use std::fmt;

use compact_str::CompactString;

use super::kept::KeptBodies;
use crate::protocol::Role;

/// One request and its final response (or the lack of one), reduced to what
/// a span needs.
///
/// A message followed in degraded framing (its end was not captured, see
/// `Http1Parser`) gives a normal exchange: start line facts, status and
/// timestamps are exact (it ends with its last chunk before the other
/// direction's next message), but its body size is only what was framed
/// before the loss (0 when its head was cut), and a Host line the capture
/// cut is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    /// Server if the request travelled Ingress, Client if Egress.
    pub role: Role,
    /// As sent, e.g. "GET". Up to 24 bytes inline, as for `target` and
    /// `host`: no allocation per exchange for most requests.
    pub method: CompactString,
    /// Request-target as sent, cut to `MAX_TARGET_BYTES`.
    pub target: CompactString,
    /// Of the request line.
    pub version: HttpVersion,
    /// Host header value, cut to `MAX_HOST_BYTES`; `None` if absent or if the
    /// capture ended before its line did.
    pub host: Option<CompactString>,
    /// Final status; `None` when the connection ended before a final response head.
    pub status: Option<u16>,
    /// Timestamp of the chunk carrying the request's first byte.
    pub request_start_ns: u64,
    /// Timestamp of the chunk carrying the request's last byte (the last one
    /// seen if the connection closed mid-request).
    pub request_end_ns: u64,
    /// Timestamp of the chunk carrying the final response's first byte
    /// (interim 1xx responses do not count).
    pub response_start_ns: Option<u64>,
    /// Timestamp of the chunk carrying the response's last byte, or the close
    /// timestamp when the response was cut short or never came.
    pub response_end_ns: u64,
    /// Payload bytes: Content-Length, or the sum of chunk sizes when chunked.
    /// A lower bound for a message in degraded framing.
    pub request_body_size: u64,
    /// Payload bytes, counted the same way as `request_body_size`.
    pub response_body_size: u64,
    /// The bodies, when the parser's `BodyPolicy` kept them.
    pub bodies: Option<Box<KeptBodies>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    Http10,
    Http11,
}

impl HttpVersion {
    /// The value OpenTelemetry wants in `network.protocol.version`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
        }
    }

    /// httparse only accepts HTTP/1.0 and HTTP/1.1, reporting the minor digit.
    pub(super) fn from_minor(minor: u8) -> Self {
        if minor == 0 {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
