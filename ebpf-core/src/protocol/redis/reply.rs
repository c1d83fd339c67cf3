//! Framing of the response direction: RESP2 and RESP3 values, one after
//! another. Every type is followed, so that where one value ends is known:
//! simple strings, errors, integers, doubles, booleans, nulls and big numbers
//! (a line each), bulk strings, blob errors and verbatim strings (a length
//! and that many bytes, skipped by count even past the capture), arrays,
//! maps, sets and pushes (a count of nested values), attributes (a map that
//! precedes a value without being one), and RESP3's streamed strings
//! (`$?` then `;len` chunks) and streamed aggregates (`*?` ... `.`).
//!
//! Of a top-level value only its shape is kept: its type, an error's code,
//! the first bytes of a simple string ("OK", "QUEUED"), an aggregate's
//! length, and for an aggregate the first bytes of its first element and
//! its third element if that is an integer (what tells a pub/sub message or
//! subscription count from a reply). Never the data.

use super::super::prefix::{parse_i64, Prefix};
use super::{MAX_BULK_LEN, MAX_DEPTH, MAX_ELEMENTS};

/// Bytes kept of a line or string that is looked at.
pub(super) const PEEK: usize = 32;
/// Longest line whose start is looked at is unbounded (an error message may
/// be long); a count or length line is at most this long.
const MAX_NUMBER_LINE: u64 = 24;
/// A streamed aggregate's element count is not known in advance.
const STREAMED: u64 = u64::MAX;

/// The RESP type of a value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyKind {
    /// `+`
    #[default]
    SimpleString,
    /// `-`
    Error,
    /// `:`
    Integer,
    /// `$`
    BulkString,
    /// `*`
    Array,
    /// `_`, and RESP2's `$-1` / `*-1`.
    Null,
    /// `#`
    Boolean,
    /// `,`
    Double,
    /// `(`
    BigNumber,
    /// `!`
    BlobError,
    /// `=`
    VerbatimString,
    /// `%`
    Map,
    /// `~`
    Set,
    /// `>`
    Push,
}

impl ReplyKind {
    fn of(b: u8) -> Option<ReplyKind> {
        Some(match b {
            b'+' => ReplyKind::SimpleString,
            b'-' => ReplyKind::Error,
            b':' => ReplyKind::Integer,
            b'$' => ReplyKind::BulkString,
            b'*' => ReplyKind::Array,
            b'_' => ReplyKind::Null,
            b'#' => ReplyKind::Boolean,
            b',' => ReplyKind::Double,
            b'(' => ReplyKind::BigNumber,
            b'!' => ReplyKind::BlobError,
            b'=' => ReplyKind::VerbatimString,
            b'%' => ReplyKind::Map,
            b'~' => ReplyKind::Set,
            b'>' => ReplyKind::Push,
            _ => return None,
        })
    }

    /// Types only RESP3 has: seeing one means the connection speaks RESP3.
    pub fn is_resp3(self) -> bool {
        !matches!(
            self,
            ReplyKind::SimpleString
                | ReplyKind::Error
                | ReplyKind::Integer
                | ReplyKind::BulkString
                | ReplyKind::Array
                | ReplyKind::Null
        )
    }

    pub fn is_error(self) -> bool {
        matches!(self, ReplyKind::Error | ReplyKind::BlobError)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::SimpleString => "simple_string",
            ReplyKind::Error => "error",
            ReplyKind::Integer => "integer",
            ReplyKind::BulkString => "bulk_string",
            ReplyKind::Array => "array",
            ReplyKind::Null => "null",
            ReplyKind::Boolean => "boolean",
            ReplyKind::Double => "double",
            ReplyKind::BigNumber => "big_number",
            ReplyKind::BlobError => "blob_error",
            ReplyKind::VerbatimString => "verbatim_string",
            ReplyKind::Map => "map",
            ReplyKind::Set => "set",
            ReplyKind::Push => "push",
        }
    }
}

/// The shape of one complete top-level value.
#[derive(Debug, Clone, Default)]
pub(super) struct Reply {
    pub kind: ReplyKind,
    /// Of an error (`-` or `!`): its first bytes, where the code is.
    pub error: Prefix<PEEK>,
    /// Of a simple string: its first bytes.
    pub simple: Prefix<PEEK>,
    /// Elements of an aggregate (pairs for a map), bytes of a string;
    /// None for a streamed one.
    pub len: Option<u64>,
    /// Of an aggregate: the first bytes of its first element, if a string.
    pub first: Prefix<PEEK>,
    /// Of an aggregate: its third element, if an integer.
    pub third_int: Option<i64>,
    /// Elements of an aggregate that were seen whole.
    pub elements: u64,
    /// `kind` is certain: false while only the `$` or `*` of a value that
    /// may turn out a RESP2 null (`$-1`, `*-1`) has been seen.
    pub kind_known: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Bytes on the wire (with attributes before it), including those past the capture.
    pub bytes: u64,
}

impl Reply {
    pub(super) fn is_error(&self) -> bool {
        self.kind.is_error()
    }

    /// The first element is the string `word` (case-insensitive).
    pub(super) fn first_is(&self, word: &[u8]) -> bool {
        self.first.eq_ignore_case(word)
    }
}

/// One element of the top-level aggregate, complete.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Element {
    pub kind: ReplyKind,
    /// The first bytes of an error element.
    pub error: Prefix<PEEK>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Garbage {
    /// A byte where a value must start is no RESP type.
    UnknownType(u8),
    /// A count or length line is not a number.
    BadNumber,
    /// A count or length beyond what a server sends.
    TooLarge,
    /// Aggregates nested deeper than `MAX_DEPTH`.
    TooDeep,
    /// A streamed-string chunk header is not `;len`.
    BadStreamChunk,
    /// `.` outside a streamed aggregate.
    StrayEnd,
}

impl Garbage {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Garbage::UnknownType(_) => "a reply starts with a byte that is no RESP type",
            Garbage::BadNumber => "a reply's count or length line is not a number",
            Garbage::TooLarge => "a reply's count or length is beyond any server's limit",
            Garbage::TooDeep => "reply aggregates nested too deep",
            Garbage::BadStreamChunk => "a streamed string chunk does not start with ';'",
            Garbage::StrayEnd => "a streamed-aggregate end marker outside one",
        }
    }
}

/// Progress on one chunk.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per reply, by value: boxing would allocate per reply")]
pub(super) enum Step {
    NeedMore,
    /// A top-level value ended after `consumed` bytes.
    Done {
        consumed: usize,
        reply: Reply,
    },
    /// An element of the top-level aggregate ended after `consumed` bytes
    /// (only when asked for with `want_elements`).
    Element {
        consumed: usize,
        element: Element,
    },
}

/// What bytes past the capture did to the framing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "at most one per chunk, by value")]
pub(super) enum Loss {
    /// Counted inside a string body: still framed.
    None,
    /// The lost bytes held the end of the value in progress and more after
    /// it: `reply` is complete, then the stream is unframed.
    AfterReply(Reply),
    /// The lost bytes ended a value exactly: still framed.
    Completed(Reply),
    /// Lost between values: unframed.
    Unframed,
    /// Lost inside a value: what was seen of it, then unframed.
    Cut(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Where a value (or a streamed aggregate's `.`) starts.
    #[default]
    Type,
    /// A line after its type byte: a simple value, or a count/length.
    Line(u8),
    /// A string's bytes and CRLF: `left` to go.
    Body { left: u64 },
    /// In a streamed string, where a `;len` chunk header starts.
    ChunkStart,
    /// A `;len` line.
    ChunkLen,
    /// In a streamed string, a chunk's bytes and CRLF.
    ChunkBody { left: u64 },
}

#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    kind: u8,
    /// Values still to come; `STREAMED` until `.`.
    left: u64,
    /// Values seen so far.
    index: u64,
}

/// The response direction's framing state: fixed memory (a stack of
/// `MAX_DEPTH` open aggregates and a few short prefixes).
#[derive(Debug)]
pub(super) struct ReplyFramer {
    state: State,
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    /// The line or string in progress, first bytes.
    peek: Prefix<PEEK>,
    /// The top-level value in progress, once started.
    reply: Option<Reply>,
    /// Which string body is being peeked at (an error, a first element).
    peeking: bool,
    /// The top-level value's type has been seen (attributes come before it).
    typed: bool,
    /// Report each element of the top-level aggregate (for EXEC).
    pub want_elements: bool,
    /// The top-level value that the last reported element completed: the
    /// next step returns it.
    deferred: Option<Reply>,
}

impl Default for ReplyFramer {
    fn default() -> Self {
        ReplyFramer {
            state: State::Type,
            stack: [Frame::default(); MAX_DEPTH],
            depth: 0,
            peek: Prefix::new(),
            reply: None,
            peeking: false,
            typed: false,
            want_elements: false,
            deferred: None,
        }
    }
}

impl ReplyFramer {
    /// A completed value is waiting to be returned by `step`.
    pub(super) fn has_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// When the top-level value in progress started, if one is.
    pub(super) fn in_progress_start(&self) -> Option<u64> {
        self.reply.as_ref().map(|r| r.start_ns)
    }

    pub(super) fn reset(&mut self) {
        *self = ReplyFramer { want_elements: self.want_elements, ..ReplyFramer::default() };
    }

    /// Consumes `data` (captured bytes at `ts`) up to the end of the next
    /// top-level value, or of an element of it when `want_elements`.
    pub(super) fn step(&mut self, data: &[u8], ts: u64) -> Result<Step, Garbage> {
        if let Some(reply) = self.deferred.take() {
            return Ok(Step::Done { consumed: 0, reply });
        }
        let mut i = 0;
        while i < data.len() {
            let reply = self.reply.get_or_insert_with(|| Reply { start_ns: ts, ..Reply::default() });
            match self.state {
                State::Type => {
                    let b = data[i];
                    i += 1;
                    reply.bytes += 1;
                    if b == b'.' {
                        if self.depth == 0 || self.stack[self.depth - 1].left != STREAMED {
                            return Err(Garbage::StrayEnd);
                        }
                        self.peek.clear();
                        self.state = State::Line(b);
                        continue;
                    }
                    if b != b'|' {
                        let kind = ReplyKind::of(b).ok_or(Garbage::UnknownType(b))?;
                        if self.depth == 0 && !self.typed {
                            self.typed = true;
                            reply.kind = kind;
                            reply.kind_known = !matches!(b, b'$' | b'*');
                        }
                    }
                    self.peek.clear();
                    self.state = State::Line(b);
                }
                State::Line(t) => {
                    let rest = &data[i..];
                    let end = memchr::memchr(b'\n', rest);
                    let body = &rest[..end.unwrap_or(rest.len())];
                    self.peek.push(body);
                    reply.bytes += body.len() as u64;
                    i += body.len();
                    let numeric = matches!(t, b'$' | b'!' | b'=' | b'*' | b'%' | b'~' | b'>' | b'|');
                    if numeric && self.peek.total() > MAX_NUMBER_LINE {
                        return Err(Garbage::BadNumber);
                    }
                    if end.is_none() {
                        continue;
                    }
                    reply.bytes += 1;
                    i += 1;
                    if let Some(step) = self.line_done(t, ts, i)? {
                        return Ok(step);
                    }
                }
                State::Body { left } | State::ChunkBody { left } => {
                    let take = (data.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    if self.peeking {
                        let payload = usize::try_from(left.saturating_sub(2)).unwrap_or(usize::MAX).min(take);
                        self.peek.push(&data[i..i + payload]);
                    }
                    reply.bytes += take as u64;
                    i += take;
                    let left = left - take as u64;
                    let chunked = matches!(self.state, State::ChunkBody { .. });
                    if left > 0 {
                        self.state = if chunked { State::ChunkBody { left } } else { State::Body { left } };
                        continue;
                    }
                    if chunked {
                        self.state = State::ChunkStart;
                        continue;
                    }
                    let t = if self.peeking_error() { b'!' } else { b'$' };
                    if let Some(step) = self.value_done(t, ts, i) {
                        return Ok(step);
                    }
                }
                State::ChunkStart => {
                    if data[i] != b';' {
                        return Err(Garbage::BadStreamChunk);
                    }
                    reply.bytes += 1;
                    i += 1;
                    self.peek.clear();
                    self.state = State::ChunkLen;
                }
                State::ChunkLen => {
                    let rest = &data[i..];
                    let end = memchr::memchr(b'\n', rest);
                    let body = &rest[..end.unwrap_or(rest.len())];
                    self.peek.push(body);
                    reply.bytes += body.len() as u64;
                    i += body.len();
                    if self.peek.total() > MAX_NUMBER_LINE {
                        return Err(Garbage::BadStreamChunk);
                    }
                    if end.is_none() {
                        continue;
                    }
                    reply.bytes += 1;
                    i += 1;
                    self.peek.trim_cr();
                    let n = parse_i64(self.peek.bytes())
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|&n| n <= MAX_BULK_LEN as u64)
                        .ok_or(Garbage::BadStreamChunk)?;
                    if n == 0 {
                        if let Some(step) = self.value_done(b'$', ts, i) {
                            return Ok(step);
                        }
                    } else {
                        self.state = State::ChunkBody { left: n + 2 };
                    }
                }
            }
        }
        Ok(Step::NeedMore)
    }

    /// `n` bytes at `ts` past the captured ones.
    pub(super) fn lose(&mut self, n: u64, ts: u64) -> Loss {
        if n == 0 {
            return Loss::None;
        }
        let Some(reply) = self.reply.as_mut() else {
            return Loss::Unframed;
        };
        if let State::Body { left } = self.state {
            reply.bytes += n.min(left);
            if self.peeking {
                self.peek.count_unseen(n.min(left.saturating_sub(2)));
            }
            if n < left {
                self.state = State::Body { left: left - n };
                return Loss::None;
            }
            let t = if self.peeking_error() { b'!' } else { b'$' };
            // Elements are not reported from lost bytes.
            let want = std::mem::replace(&mut self.want_elements, false);
            let done = self.value_done(t, ts, 0);
            self.want_elements = want;
            if let Some(Step::Done { reply, .. }) = done {
                return if n > left { Loss::AfterReply(reply) } else { Loss::Completed(reply) };
            }
            if n == left {
                // The string ended with the lost bytes; the next value starts after them.
                return Loss::None;
            }
            if let Some(reply) = self.reply.as_mut() {
                reply.bytes += n - left;
            }
        } else if let State::ChunkBody { left } = self.state {
            if n <= left {
                reply.bytes += n;
                self.state = if n < left { State::ChunkBody { left: left - n } } else { State::ChunkStart };
                return Loss::None;
            }
            reply.bytes += n;
        } else {
            reply.bytes += n;
        }
        let mut cut = self.reply.take().unwrap_or_default();
        cut.end_ns = ts;
        if !self.typed {
            // Only attributes were seen: the value's type is unknown.
            cut.kind = ReplyKind::Null;
        }
        let want = self.want_elements;
        self.reset();
        self.want_elements = want;
        Loss::Cut(cut)
    }

    fn peeking_error(&self) -> bool {
        matches!(self.body_kind(), Some(b'!'))
    }

    /// The type of the string whose body is being read: kept in the frame
    /// slot above the stack top while it is.
    fn body_kind(&self) -> Option<u8> {
        self.stack.get(self.depth).map(|f| f.kind)
    }

    /// A line after type byte `t` ended (the LF consumed, at `i`).
    fn line_done(&mut self, t: u8, ts: u64, i: usize) -> Result<Option<Step>, Garbage> {
        self.peek.trim_cr();
        let line = self.peek.bytes();
        match t {
            b'$' | b'!' | b'=' => {
                if line == b"?" && t == b'$' {
                    self.set_top_len(None, false);
                    self.state = State::ChunkStart;
                    return Ok(None);
                }
                let n = parse_i64(line).ok_or(Garbage::BadNumber)?;
                if n < 0 {
                    // RESP2's null bulk string.
                    self.set_top_len(None, true);
                    return Ok(self.value_done(b'_', ts, i));
                }
                if n > MAX_BULK_LEN {
                    return Err(Garbage::TooLarge);
                }
                self.set_top_len(Some(n as u64), false);
                // Peek into errors, and into the first element of the top aggregate.
                self.peeking = t == b'!' || (self.depth == 1 && self.stack[0].index == 0);
                if let Some(slot) = self.stack.get_mut(self.depth) {
                    slot.kind = t;
                }
                self.peek.clear();
                self.state = State::Body { left: n as u64 + 2 };
                Ok(None)
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let left = if line == b"?" {
                    STREAMED
                } else {
                    let n = parse_i64(line).ok_or(Garbage::BadNumber)?;
                    if n < 0 {
                        // RESP2's null array.
                        self.set_top_len(None, true);
                        return Ok(self.value_done(b'_', ts, i));
                    }
                    if n > MAX_ELEMENTS {
                        return Err(Garbage::TooLarge);
                    }
                    // Maps and attributes hold key/value pairs.
                    if matches!(t, b'%' | b'|') {
                        n as u64 * 2
                    } else {
                        n as u64
                    }
                };
                if t != b'|' {
                    let len = (left != STREAMED).then_some(if t == b'%' { left / 2 } else { left });
                    self.set_top_len(len, false);
                }
                if left == 0 {
                    if t == b'|' {
                        self.state = State::Type;
                        return Ok(None);
                    }
                    return Ok(self.value_done(t, ts, i));
                }
                if self.depth == MAX_DEPTH {
                    return Err(Garbage::TooDeep);
                }
                self.stack[self.depth] = Frame { kind: t, left, index: 0 };
                self.depth += 1;
                self.state = State::Type;
                Ok(None)
            }
            b'.' => {
                // End of the streamed aggregate on top of the stack.
                self.depth -= 1;
                let t = self.stack[self.depth].kind;
                if let Some(reply) = self.reply.as_mut() {
                    if self.depth == 0 && t != b'|' {
                        reply.len = Some(reply.elements);
                    }
                }
                if t == b'|' {
                    self.state = State::Type;
                    return Ok(self.count_in_parent(ts, i, false));
                }
                Ok(self.value_done(t, ts, i))
            }
            _ => Ok(self.value_done(t, ts, i)),
        }
    }

    /// Records the top-level value's length (or null), when this value is it.
    fn set_top_len(&mut self, len: Option<u64>, null: bool) {
        if self.depth != 0 {
            return;
        }
        if let Some(reply) = self.reply.as_mut() {
            reply.len = len;
            reply.kind_known = true;
            if null {
                reply.kind = ReplyKind::Null;
            }
        }
    }

    /// A value of type `t` ended (its last byte consumed, at `i`).
    fn value_done(&mut self, t: u8, ts: u64, i: usize) -> Option<Step> {
        self.state = State::Type;
        let peeked = std::mem::take(&mut self.peek);
        let peeking = std::mem::replace(&mut self.peeking, false);
        if self.depth == 0 {
            let mut reply = self.reply.take()?;
            match t {
                b'-' | b'!' => reply.error = peeked,
                b'+' => reply.simple = peeked,
                _ => {}
            }
            reply.end_ns = ts;
            self.typed = false;
            return Some(Step::Done { consumed: i, reply });
        }
        // Inside an aggregate: note what the top-level value needs.
        if self.depth == 1 && self.stack[0].kind != b'|' {
            let index = self.stack[0].index;
            if let Some(reply) = self.reply.as_mut() {
                if index == 0 && (peeking || t == b'+') && t != b'!' {
                    reply.first = peeked;
                }
                if index == 2 && t == b':' {
                    reply.third_int = peeked.parse_i64();
                }
            }
        }
        let element = (self.depth == 1 && self.want_elements && self.stack[0].kind != b'|').then(|| Element {
            kind: ReplyKind::of(t).unwrap_or_default(),
            error: if matches!(t, b'-' | b'!') { peeked } else { Prefix::new() },
        });
        let step = self.count_in_parent(ts, i, true);
        match (step, element) {
            (Some(Step::Done { reply, .. }), Some(element)) => {
                self.deferred = Some(reply);
                Some(Step::Element { consumed: i, element })
            }
            (Some(step), _) => Some(step),
            (None, Some(element)) => Some(Step::Element { consumed: i, element }),
            (None, None) => None,
        }
    }

    /// A value inside the top open aggregate ended: count it, and close the
    /// aggregates it completes. `counts` is false for an attribute, which
    /// is not one of its parent's values.
    fn count_in_parent(&mut self, ts: u64, i: usize, counts: bool) -> Option<Step> {
        if self.depth == 0 {
            // An attribute before the top-level value: the value is still to come.
            return None;
        }
        let frame = &mut self.stack[self.depth - 1];
        if !counts {
            return None;
        }
        frame.index += 1;
        if self.depth == 1 && frame.kind != b'|' {
            if let Some(reply) = self.reply.as_mut() {
                reply.elements += 1;
            }
        }
        if frame.left == STREAMED {
            return None;
        }
        frame.left -= 1;
        if frame.left > 0 {
            return None;
        }
        // The aggregate is complete: it is a value of its own parent.
        self.depth -= 1;
        let t = self.stack[self.depth].kind;
        if t == b'|' {
            return self.count_in_parent(ts, i, false);
        }
        self.value_done(t, ts, i)
    }
}
