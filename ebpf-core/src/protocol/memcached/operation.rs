use compact_str::CompactString;

pub use super::reply::Code;
use crate::protocol::Role;

/// One memcached command and its reply, reduced to what telemetry needs:
/// the command name, how many keys it named and how many were found, the
/// reply's code, and times. Never a key or a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcachedOperation {
    /// Server if commands travelled Ingress, Client if Egress.
    pub role: Role,
    /// The command as sent (`get`, `set`, `mg`, ...); None when its bytes
    /// were not captured.
    pub command: Option<CompactString>,
    /// Keys the command named: all of a multi-key `get`, 1 for `set` or
    /// `mg`, 0 for `stats`. For a command line the capture cut, those seen.
    pub keys: u32,
    /// Of a retrieval (`get`, `gets`, `gat`, `gats`, `mg`): keys found.
    /// `keys - hits` were misses. A lower bound when `cut`.
    pub hits: Option<u32>,
    pub outcome: Outcome,
    /// Asked for no reply: text `noreply`, or meta quiet mode (`q`), where
    /// the usual outcome (a miss for `mg`, success otherwise) is not sent.
    pub quiet: bool,
    /// The capture lost where this command's line or reply ended: its end
    /// timestamp is that of the last chunk seen of it.
    pub cut: bool,
    pub request_start_ns: u64,
    pub request_end_ns: u64,
    /// Timestamp of the chunk carrying the reply's first byte; None without one.
    pub response_start_ns: Option<u64>,
    /// Timestamp of the chunk carrying the reply's last byte; for a quiet
    /// command whose reply was suppressed, of the reply that showed it was
    /// (the next one); without a reply, the close or the request's end.
    pub response_end_ns: u64,
    /// Bytes of the command, data block included, captured or not.
    pub request_bytes: u64,
    /// Bytes of the reply, data blocks included, captured or not.
    pub response_bytes: u64,
}

impl MemcachedOperation {
    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Reply(code) if code.is_error())
    }

    /// Keys not found, for a retrieval.
    pub fn misses(&self) -> Option<u32> {
        self.hits.map(|h| self.keys.saturating_sub(h))
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The reply's code: for a retrieval, `END` (text) or `VA`/`HD`/`EN`
    /// (meta); `ERROR`, `CLIENT_ERROR`, `SERVER_ERROR` for errors. For a
    /// quiet meta command whose reply was suppressed, the code it stood for
    /// (`EN` for `mg`, `HD` otherwise).
    Reply(Code),
    /// `noreply`: no reply was asked for.
    NoReply,
    /// The connection closed before a reply.
    NoResponse,
    /// A reply came, but in bytes past the capture.
    Unknown,
}

/// What the parser could not turn into operations, for the caller to count
/// and export. Cumulative over the parser's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemcachedCounters {
    /// Commands seen that gave no operation: in flight when events were
    /// lost (`gap`), or past `MAX_PENDING` awaiting replies.
    pub dropped_operations: u64,
    /// Replies that answered no command seen.
    pub unmatched_replies: u64,
    /// Times a direction's framing was lost and had to be found again.
    pub resyncs: u64,
    /// Chunks ignored while waiting for a point to resynchronise at.
    pub skipped_chunks: u64,
}
