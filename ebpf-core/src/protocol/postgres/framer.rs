//! Message boundaries of one direction of a PostgreSQL v3 connection.
//!
//! Messages are `type (1) | length (4, includes itself) | body`, except the
//! frontend's first ones (`length | code | ...`: StartupMessage,
//! SSLRequest, CancelRequest) and the backend's one-byte answer to an
//! SSLRequest or GSSENCRequest. Only a bounded prefix of each body is kept,
//! and only for the message types the parser reads; uncaptured bytes (past
//! `capture_size`) are skipped by count while they stay inside a body.

use crate::protocol::sql::MAX_QUERY_BYTES;

/// Longest message accepted: PostgreSQL's own limit for most messages is
/// 1 GiB; a length past it means we are not looking at a message boundary.
pub(super) const MAX_MESSAGE_LEN: u32 = 1 << 30;

/// Longest startup-phase packet (StartupMessage carries a few parameters).
const MAX_STARTUP_LEN: u32 = 10_000;

/// What the next message of a direction looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Next {
    /// type byte + length.
    #[default]
    Typed,
    /// length + code, no type byte (the frontend's first message).
    Untyped,
    /// One byte, no length (the answer to SSLRequest/GSSENCRequest).
    OneByte,
}

/// One message, as far as it was kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Msg {
    /// The type byte; 0 for an untyped startup-phase message.
    pub typ: u8,
    /// `scratch[start..end]` holds the kept prefix of the body.
    pub start: usize,
    pub end: usize,
    /// The body's full length.
    pub body_len: usize,
    /// The kept prefix is all of the body or all the parser asked for.
    pub complete: bool,
    /// The one-byte answer to an SSLRequest/GSSENCRequest (`typ` is the byte).
    pub one_byte: bool,
    pub ts: u64,
}

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Every byte was framed; the chunk may end inside a message.
    Framed,
    /// Bytes that were not captured hid where the next message starts.
    TailLost,
    /// A length field that no message can have: not a message boundary.
    Garbage,
}

#[derive(Debug, Default)]
pub(super) struct Framer {
    frontend: bool,
    pub next: Next,
    hdr: [u8; 5],
    hdr_len: usize,
    in_body: bool,
    typ: u8,
    body_len: usize,
    remaining: usize,
    keep: usize,
    kept: Vec<u8>,
    missing: bool,
    /// Timestamp of the chunk where the current message started.
    start_ts: u64,
}

impl Framer {
    pub(super) fn new(frontend: bool) -> Self {
        Framer { frontend, ..Framer::default() }
    }

    /// Forget any message in progress: the next byte starts a message.
    pub(super) fn reset(&mut self) {
        self.hdr_len = 0;
        self.in_body = false;
        self.kept.clear();
        self.missing = false;
    }

    /// Frames `data` (the captured prefix of a chunk) and then `uncaptured`
    /// more bytes, pushing each completed message onto `msgs` with its kept
    /// body in `scratch`.
    pub(super) fn feed(
        &mut self,
        data: &[u8],
        uncaptured: u64,
        ts: u64,
        msgs: &mut Vec<Msg>,
        scratch: &mut Vec<u8>,
    ) -> Outcome {
        let mut i = 0;
        while i < data.len() {
            if !self.in_body {
                if self.hdr_len == 0 {
                    self.start_ts = ts;
                }
                if self.next == Next::OneByte {
                    msgs.push(Msg {
                        typ: data[i],
                        start: scratch.len(),
                        end: scratch.len(),
                        body_len: 0,
                        complete: true,
                        one_byte: true,
                        ts,
                    });
                    self.next = Next::Typed;
                    i += 1;
                    continue;
                }
                let need = if self.next == Next::Untyped { 4 } else { 5 };
                let take = (need - self.hdr_len).min(data.len() - i);
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[i..i + take]);
                self.hdr_len += take;
                i += take;
                if self.hdr_len < need {
                    break;
                }
                if !self.start_body() {
                    return Outcome::Garbage;
                }
                if self.remaining == 0 {
                    self.emit(msgs, scratch);
                }
                continue;
            }
            let take = self.remaining.min(data.len() - i);
            let room = self.keep.saturating_sub(self.kept.len()).min(take);
            self.kept.extend_from_slice(&data[i..i + room]);
            self.remaining -= take;
            i += take;
            if self.remaining == 0 {
                self.emit(msgs, scratch);
            }
        }
        if uncaptured == 0 {
            return Outcome::Framed;
        }
        if self.in_body && self.remaining as u64 >= uncaptured {
            self.remaining -= uncaptured as usize;
            if self.kept.len() < self.keep.min(self.body_len) {
                self.missing = true;
            }
            if self.remaining == 0 {
                self.emit(msgs, scratch);
            }
            return Outcome::Framed;
        }
        if self.in_body {
            self.missing = true;
            self.remaining = 0;
            self.emit(msgs, scratch);
        }
        self.reset();
        Outcome::TailLost
    }

    fn start_body(&mut self) -> bool {
        let (typ, len, max) = if self.next == Next::Untyped {
            (0, u32::from_be_bytes([self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]]), MAX_STARTUP_LEN)
        } else {
            (self.hdr[0], u32::from_be_bytes([self.hdr[1], self.hdr[2], self.hdr[3], self.hdr[4]]), MAX_MESSAGE_LEN)
        };
        let min = if typ == 0 { 8 } else { 4 };
        if len < min || len > max || (typ != 0 && !known_type(self.frontend, typ)) {
            self.reset();
            return false;
        }
        self.next = Next::Typed;
        self.typ = typ;
        self.body_len = len as usize - 4;
        self.remaining = self.body_len;
        self.keep = keep_for(self.frontend, typ).min(self.body_len);
        self.kept.clear();
        self.missing = false;
        self.in_body = true;
        true
    }

    fn emit(&mut self, msgs: &mut Vec<Msg>, scratch: &mut Vec<u8>) {
        let start = scratch.len();
        scratch.extend_from_slice(&self.kept);
        msgs.push(Msg {
            typ: self.typ,
            start,
            end: scratch.len(),
            body_len: self.body_len,
            complete: !self.missing,
            one_byte: false,
            ts: self.start_ts,
        });
        self.in_body = false;
        self.hdr_len = 0;
        self.kept.clear();
        self.missing = false;
    }
}

/// How much of a body the parser reads, by direction and type.
fn keep_for(frontend: bool, typ: u8) -> usize {
    match (frontend, typ) {
        (true, 0) => 1024,                            // startup parameters
        (true, b'Q' | b'P') => MAX_QUERY_BYTES + 128, // statement name + text
        (true, b'B') => 160,                          // portal and statement names (≤ 63 bytes each)
        (true, b'E' | b'D' | b'C') => 80,             // a portal or statement name
        (false, b'E') => 96,                          // severity and SQLSTATE come first
        (false, b'C') => 64,                          // command tag
        (false, b'Z' | b'R') => 4,
        (false, b'S') => 80, // ParameterStatus: name and value
        _ => 0,
    }
}

/// Message types each direction sends in protocol 3.0.
pub(super) fn known_type(frontend: bool, typ: u8) -> bool {
    if frontend {
        matches!(typ, b'Q' | b'P' | b'B' | b'E' | b'D' | b'C' | b'S' | b'H' | b'F' | b'X' | b'd' | b'c' | b'f' | b'p')
    } else {
        matches!(
            typ,
            b'R' | b'S'
                | b'K'
                | b'Z'
                | b'T'
                | b'D'
                | b'C'
                | b'I'
                | b'E'
                | b'N'
                | b'A'
                | b'1'
                | b'2'
                | b'3'
                | b't'
                | b'n'
                | b's'
                | b'G'
                | b'H'
                | b'W'
                | b'd'
                | b'c'
                | b'V'
                | b'v'
        )
    }
}

/// Whether `data` (a whole chunk, `total_len` bytes of which `data` is the
/// captured prefix) is a run of well-formed typed messages from its first
/// byte: the check for a chunk to resynchronise on.
pub(super) fn frames_cleanly(frontend: bool, data: &[u8], total_len: u64) -> bool {
    let mut i = 0usize;
    let mut any = false;
    while i + 5 <= data.len() {
        let typ = data[i];
        let len = u32::from_be_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]);
        if !known_type(frontend, typ) || !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return false;
        }
        any = true;
        i += 1 + len as usize;
    }
    // The last message may run past the captured bytes (within the chunk),
    // or a fully captured chunk may end inside the next message's header.
    any && i as u64 <= total_len && (i >= data.len() || data.len() as u64 == total_len)
}

/// Whether the chunk ends with a complete ReadyForQuery: the backend flushes
/// after it, so the next backend chunk starts a message.
pub(super) fn ends_with_ready(data: &[u8], total_len: u64) -> bool {
    data.len() as u64 == total_len
        && data.len() >= 6
        && data[data.len() - 6..data.len() - 1] == [b'Z', 0, 0, 0, 5]
        && matches!(data[data.len() - 1], b'I' | b'T' | b'E')
}
