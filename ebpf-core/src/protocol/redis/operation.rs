use compact_str::CompactString;

pub use super::reply::ReplyKind;
use crate::protocol::Role;

/// One command and its reply, reduced to what telemetry needs: the
/// command's name (and subcommand), how many arguments it had, the reply's
/// type or error code, and times. Never a key, an argument's value or a
/// reply's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOperation {
    /// Server if commands travelled Ingress, Client if Egress.
    pub role: Role,
    /// The command name as sent, case kept (`GET`, `get`, `JSON.SET`);
    /// None when its bytes were not captured.
    pub command: Option<CompactString>,
    /// For commands made of subcommands (`CLIENT SETNAME`, `CONFIG GET`,
    /// `XINFO STREAM`, ...): the subcommand as sent.
    pub subcommand: Option<CompactString>,
    /// Arguments after the command name. Exact for commands sent as RESP
    /// arrays (their header counts them), unless the capture cut the
    /// header itself; for an inline command the capture cut, those seen.
    /// A lower bound when `cut`.
    pub args: u64,
    /// The database index the command ran against (`SELECT`, `RESET`),
    /// when known: from the connection's start or a `SELECT` seen.
    pub database: Option<u32>,
    /// The script digest of `EVALSHA` or the function name of `FCALL`.
    pub procedure: Option<CompactString>,
    pub outcome: Outcome,
    /// Set for commands sent between `MULTI` and `EXEC`/`DISCARD`.
    pub transaction: Option<Transaction>,
    /// The capture lost where this command's request or reply ended: its
    /// end timestamp is that of the last chunk seen of it.
    pub cut: bool,
    /// Timestamp of the chunk carrying the command's first byte.
    pub request_start_ns: u64,
    /// Timestamp of the chunk carrying the command's last byte.
    pub request_end_ns: u64,
    /// Timestamp of the chunk carrying the reply's first byte (for a
    /// queued command, of its `QUEUED`); None without a reply.
    pub response_start_ns: Option<u64>,
    /// Timestamp of the chunk carrying the reply's last byte; without a
    /// reply, when the connection closed (or the request's end, for a
    /// command that asks for none).
    pub response_end_ns: u64,
    /// Bytes of the command on the wire, captured or not.
    pub request_bytes: u64,
    /// Bytes of the reply on the wire, captured or not.
    pub response_bytes: u64,
}

/// Most `?` placeholders `write_query_text` writes; more arguments end in `...`.
pub const MAX_QUERY_PLACEHOLDERS: u64 = 32;

impl RedisOperation {
    /// `db.query.text` as the conventions want it for Redis (the CLI's
    /// syntax, literals redacted), with every argument redacted: `SET ? ?`,
    /// `CLIENT SETNAME ?`, `MSET ? ? ? ? ...` past `MAX_QUERY_PLACEHOLDERS`.
    /// Keys are arguments too: they carry user data (`session:<token>`,
    /// `user:<email>`), so none is written. Nothing when the command's name
    /// was not captured.
    pub fn write_query_text(&self, out: &mut String) {
        let Some(command) = &self.command else { return };
        out.push_str(command);
        let mut args = self.args;
        if let Some(sub) = &self.subcommand {
            out.push(' ');
            out.push_str(sub);
            args = args.saturating_sub(1);
        }
        for _ in 0..args.min(MAX_QUERY_PLACEHOLDERS) {
            out.push_str(" ?");
        }
        if args > MAX_QUERY_PLACEHOLDERS {
            out.push_str(" ...");
        }
    }

    /// The error code of an error reply (its first word, e.g. `WRONGTYPE`).
    pub fn error_code(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Error(code) => code.as_deref(),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Error(_))
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply that is not an error, of this type. For a command queued in
    /// a transaction, its element of `EXEC`'s reply.
    Reply(ReplyKind),
    /// An error reply, with its code: the first word when it is one (upper
    /// case letters, digits, `_`), as Redis's own errors have (`ERR`,
    /// `WRONGTYPE`, `NOAUTH`, `MOVED`); None for an error without one, or
    /// whose first word was past the capture.
    Error(Option<CompactString>),
    /// The command asked for no reply (`CLIENT REPLY OFF`/`SKIP`).
    NoReply,
    /// The connection closed before a reply.
    NoResponse,
    /// A reply came, but in bytes past the capture: its type is unknown.
    Unknown,
}

/// What became of a command queued between `MULTI` and `EXEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// `EXEC` ran it; `Outcome` is its result.
    Executed,
    /// Refused when queued (an error instead of `QUEUED`); `EXEC` then
    /// aborts the transaction.
    Rejected,
    /// Queued, then `EXEC` ran nothing (a watched key changed, or a
    /// command was refused when queued).
    Aborted,
    /// Queued, then `DISCARD`ed.
    Discarded,
    /// Queued; `EXEC`'s reply was not seen (lost, or the connection closed).
    Unknown,
}

impl Transaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Transaction::Executed => "executed",
            Transaction::Rejected => "rejected",
            Transaction::Aborted => "aborted",
            Transaction::Discarded => "discarded",
            Transaction::Unknown => "unknown",
        }
    }
}

/// What the parser could not turn into operations, for the caller to count
/// and export. Cumulative over the parser's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisCounters {
    /// Commands seen that gave no operation: in flight when events were
    /// lost (`gap`), or past `MAX_PENDING` awaiting replies.
    pub dropped_operations: u64,
    /// Replies that answered no command seen: commands in bytes past the
    /// capture, or sent before the parser joined the connection.
    pub unmatched_replies: u64,
    /// Out-of-band values: pub/sub messages, client-side caching
    /// invalidations, other RESP3 pushes, `MONITOR` lines.
    pub pushes: u64,
    /// Times a direction's framing was lost past the capture (or to
    /// garbage) and had to be found again.
    pub resyncs: u64,
    /// Chunks ignored while waiting for a point to resynchronise at.
    pub skipped_chunks: u64,
}
