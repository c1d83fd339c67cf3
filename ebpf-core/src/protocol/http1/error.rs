use std::fmt;

/// Which of the two message streams of a connection an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Response,
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
        })
    }
}

/// Why a connection's stream could not be followed. After any of these the
/// parser stays failed: once framing is lost there is no safe point to resume.
/// (Truncation that only hides where a message ends is not an error: the
/// parser follows it in degraded framing, see `Http1Parser`. These are the
/// cases it cannot follow.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed HTTP/1 {message} head: {reason}")]
    MalformedHead { message: MessageKind, reason: httparse::Error },

    #[error("{message} head not finished within {limit} bytes")]
    HeadTooLarge { message: MessageKind, limit: usize },

    #[error("invalid or conflicting Content-Length in {message} head")]
    InvalidContentLength { message: MessageKind },

    #[error("request Transfer-Encoding does not end in chunked, so its length is unknown")]
    UnsupportedTransferEncoding,

    #[error("malformed chunked {message} body: {reason}")]
    InvalidChunk { message: MessageKind, reason: &'static str },

    #[error("capture truncated inside {message} {within}; the bytes needed to go on were not captured")]
    Truncated { message: MessageKind, within: &'static str },

    /// Degraded framing could not be kept up: after a message whose end was
    /// not captured, the next chunk that way did not start a new message, or
    /// a response answered no request seen (requests were pipelined inside
    /// the uncaptured bytes).
    #[error("lost the {message} message boundaries after a truncated capture: {reason}")]
    Desynchronized { message: MessageKind, reason: &'static str },

    #[error("more than {limit} requests waiting for responses")]
    TooManyPipelined { limit: usize },
}
