use compact_str::CompactString;

use crate::protocol::Role;

/// One completed HTTP/2 stream: a request and its response (or the lack of
/// one), reduced to what a span needs.
///
/// Header fields are `None` when absent or not known. A connection joined
/// mid-way (or after lost bytes) cannot decode fields that refer to HPACK
/// table entries from before: those fields are `None` and
/// `headers_complete` is false; the fields present are exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Stream {
    /// Server if the request travelled Ingress, Client if Egress.
    pub role: Role,
    pub stream_id: u32,
    /// `:method`, as sent.
    pub method: Option<CompactString>,
    /// `:path` without its query (which is never kept), cut to
    /// `MAX_PATH_BYTES`.
    pub path: Option<CompactString>,
    /// `:scheme`.
    pub scheme: Option<CompactString>,
    /// `:authority`, else a `host` field; cut to 256 bytes.
    pub authority: Option<CompactString>,
    /// The final `:status`; `None` when no final response head came or it
    /// could not be decoded.
    pub status: Option<u16>,
    /// Every header block of the stream was decoded in full.
    pub headers_complete: bool,
    /// Timestamp of the chunk carrying the first byte of the request HEADERS.
    pub request_start_ns: u64,
    /// Timestamp of the chunk that ended the request (its END_STREAM flag),
    /// or of the stream's end when the request never ended.
    pub request_end_ns: u64,
    /// Timestamp of the chunk carrying the first byte of the final response
    /// HEADERS.
    pub response_start_ns: Option<u64>,
    /// Timestamp of the chunk that ended the response (END_STREAM), or of the
    /// RST_STREAM, GOAWAY or close that ended the stream.
    pub response_end_ns: u64,
    /// DATA payload bytes, padding excluded; counted from frame lengths where
    /// the capture did not hold them.
    pub request_body_size: u64,
    pub response_body_size: u64,
    pub end: StreamEnd,
    /// Set when the request or response `content-type` is gRPC.
    pub grpc: Option<GrpcCall>,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Both sides sent END_STREAM (or the response did, and the server then
    /// reset the request with NO_ERROR, RFC 9113 §8.1).
    Complete,
    /// RST_STREAM with this error code, sent by the client (`by_client`) or
    /// the server. `code` is None when the capture cut the frame.
    Reset { code: Option<u32>, by_client: bool },
    /// The server's GOAWAY said it would not process the stream.
    GoAway { code: u32 },
    /// The connection closed (or the parser was dropped) before the response ended.
    ConnectionClosed,
}

impl StreamEnd {
    /// A value for `error.type` when the stream failed: the HTTP/2 error code
    /// name (`CANCEL`, `REFUSED_STREAM`, ...), or None for a complete stream.
    pub fn error_type(&self) -> Option<&'static str> {
        match *self {
            StreamEnd::Complete => None,
            StreamEnd::Reset { code: Some(code), .. } | StreamEnd::GoAway { code } => {
                Some(super::frame::error_code_name(code))
            }
            StreamEnd::Reset { code: None, .. } => Some("RST_STREAM"),
            StreamEnd::ConnectionClosed => Some("http.response.incomplete"),
        }
    }
}

/// What a gRPC call adds to its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// `package.Service/Method` from `:path`; None when the path is unknown or
    /// not of that shape.
    pub method: Option<CompactString>,
    /// `grpc-status` from the trailers, or from a Trailers-Only response.
    pub status: Option<u32>,
    /// Length-prefixed messages sent by the client; None when the capture
    /// lost a message boundary.
    pub request_messages: Option<u64>,
    /// Messages sent by the server, counted the same way.
    pub response_messages: Option<u64>,
}
