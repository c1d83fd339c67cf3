//! Framing of the response direction, one line at a time: a line of
//! tokens, and after `VALUE <key> <flags> <bytes>` (text) or `VA <size>`
//! (meta) a data block of that length, skipped by count even past the
//! capture. Which lines make up one reply (a `get`'s VALUEs up to END, a
//! `stats`' STATs) is the parser's business: it knows what was asked.

use super::super::prefix::Prefix;
use super::command::KeyHash;
use super::{MAX_LINE, MAX_VALUE_LEN};

/// A reply line's first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Code {
    /// `VALUE`: a hit of a text retrieval, with its data.
    Value,
    /// `END`: the end of a retrieval or of `stats`.
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    /// incr/decr's new value.
    Number,
    Version,
    Ok,
    Reset,
    /// `STAT`, `ITEM` and other lines of a multi-line reply.
    Stat,
    /// `ERROR`: an unknown command.
    Error,
    /// `CLIENT_ERROR <message>`: a bad request.
    ClientError,
    /// `SERVER_ERROR <message>`: the server failed (out of memory, too large).
    ServerError,
    /// Meta `VA <size>`: a value follows.
    Va,
    /// Meta `HD`: success, no value.
    Hd,
    /// Meta `EN`: miss.
    En,
    /// Meta `NS`: not stored.
    Ns,
    /// Meta `EX`: exists (CAS mismatch).
    Ex,
    /// Meta `NF`: not found.
    Nf,
    /// Meta `MN`: the no-op that ends a quiet batch.
    Mn,
    /// Meta `ME`: debug information.
    Me,
    /// Anything else.
    #[default]
    Other,
}

impl Code {
    fn of(word: &[u8]) -> Code {
        match word {
            b"VALUE" => Code::Value,
            b"END" => Code::End,
            b"STORED" => Code::Stored,
            b"NOT_STORED" => Code::NotStored,
            b"EXISTS" => Code::Exists,
            b"NOT_FOUND" => Code::NotFound,
            b"DELETED" => Code::Deleted,
            b"TOUCHED" => Code::Touched,
            b"VERSION" => Code::Version,
            b"OK" => Code::Ok,
            b"RESET" => Code::Reset,
            b"STAT" | b"ITEM" | b"PREFIX" => Code::Stat,
            b"ERROR" => Code::Error,
            b"CLIENT_ERROR" => Code::ClientError,
            b"SERVER_ERROR" => Code::ServerError,
            b"VA" => Code::Va,
            b"HD" => Code::Hd,
            b"EN" => Code::En,
            b"NS" => Code::Ns,
            b"EX" => Code::Ex,
            b"NF" => Code::Nf,
            b"MN" => Code::Mn,
            b"ME" => Code::Me,
            w if !w.is_empty() && w.iter().all(u8::is_ascii_digit) => Code::Number,
            _ => Code::Other,
        }
    }

    /// The word as the server sends it (`Number` as `NUMBER`, `Other` as
    /// `OTHER`): for `db.response.status_code`-like use.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Value => "VALUE",
            Code::End => "END",
            Code::Stored => "STORED",
            Code::NotStored => "NOT_STORED",
            Code::Exists => "EXISTS",
            Code::NotFound => "NOT_FOUND",
            Code::Deleted => "DELETED",
            Code::Touched => "TOUCHED",
            Code::Number => "NUMBER",
            Code::Version => "VERSION",
            Code::Ok => "OK",
            Code::Reset => "RESET",
            Code::Stat => "STAT",
            Code::Error => "ERROR",
            Code::ClientError => "CLIENT_ERROR",
            Code::ServerError => "SERVER_ERROR",
            Code::Va => "VA",
            Code::Hd => "HD",
            Code::En => "EN",
            Code::Ns => "NS",
            Code::Ex => "EX",
            Code::Nf => "NF",
            Code::Mn => "MN",
            Code::Me => "ME",
            Code::Other => "OTHER",
        }
    }

    pub fn is_error(self) -> bool {
        matches!(self, Code::Error | Code::ClientError | Code::ServerError)
    }

    /// Meta reply codes, which carry flags (an opaque token, the key).
    fn is_meta(self) -> bool {
        matches!(self, Code::Va | Code::Hd | Code::En | Code::Ns | Code::Ex | Code::Nf | Code::Mn | Code::Me)
    }
}

/// One reply line, and its data block when it has one.
#[derive(Debug, Clone, Default)]
pub(super) struct Line {
    pub code: Code,
    /// Of a meta reply: the `O` flag's token, first bytes.
    pub opaque: Prefix<32>,
    /// Of a meta reply that returned the key (`k`): its fingerprint.
    pub key: Option<KeyHash>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Garbage {
    LineTooLong,
    BadDataLength,
}

impl Garbage {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Garbage::LineTooLong => "a reply line longer than any server sends",
            Garbage::BadDataLength => "a VALUE or VA line's data length is not a number",
        }
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per reply line, by value: boxing would allocate per line")]
pub(super) enum Step {
    NeedMore,
    Done { consumed: usize, line: Line },
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "at most one per chunk, by value")]
pub(super) enum Loss {
    /// Counted inside a data block (or it ended exactly): still framed.
    None,
    /// The lost bytes ended this line's data block, then `rest` more bytes
    /// were lost.
    AfterLine { line: Line, rest: u64 },
    /// The block ended exactly with the lost bytes.
    Completed(Line),
    /// Lost between lines.
    Unframed,
    /// Lost inside a line (or its block's header): what was seen of it.
    Cut(Line),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    Line,
    Data {
        left: u64,
    },
}

#[derive(Debug, Default)]
pub(super) struct ReplyFramer {
    state: State,
    line: Line,
    tokens: u32,
    in_token: bool,
    token: Prefix<24>,
    /// The token in progress is the `k` flag's key.
    in_key: bool,
    key: KeyHash,
    /// The token in progress is the `O` flag's opaque.
    in_opaque: bool,
    data_len: Option<u64>,
    line_len: u64,
}

impl ReplyFramer {
    pub(super) fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// A line (or its data block) is in progress.
    pub(super) fn in_progress_start(&self) -> Option<u64> {
        (self.state != State::Idle).then_some(self.line.start_ns)
    }

    pub(super) fn step(&mut self, data: &[u8], ts: u64) -> Result<Step, Garbage> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Idle => {
                    self.line = Line { start_ns: ts, ..Line::default() };
                    self.tokens = 0;
                    self.in_token = false;
                    self.data_len = None;
                    self.line_len = 0;
                    self.state = State::Line;
                }
                State::Line => {
                    let rest = &data[i..];
                    let end = memchr::memchr(b'\n', rest);
                    let body = &rest[..end.unwrap_or(rest.len())];
                    for &b in body {
                        self.line_byte(b);
                    }
                    self.line_len += body.len() as u64;
                    self.line.bytes += body.len() as u64;
                    i += body.len();
                    if self.line_len > MAX_LINE {
                        return Err(Garbage::LineTooLong);
                    }
                    if end.is_none() {
                        continue;
                    }
                    self.line.bytes += 1;
                    i += 1;
                    self.end_token();
                    let data_token = match self.line.code {
                        Code::Value => Some(3),
                        Code::Va => Some(1),
                        _ => None,
                    };
                    if let Some(t) = data_token {
                        let n = self.data_len.filter(|_| self.tokens > t).ok_or(Garbage::BadDataLength)?;
                        self.state = State::Data { left: n + 2 };
                        continue;
                    }
                    return Ok(Step::Done { consumed: i, line: self.finish(ts) });
                }
                State::Data { left } => {
                    let take = (data.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.line.bytes += take as u64;
                    i += take;
                    let left = left - take as u64;
                    if left > 0 {
                        self.state = State::Data { left };
                        continue;
                    }
                    return Ok(Step::Done { consumed: i, line: self.finish(ts) });
                }
            }
        }
        Ok(Step::NeedMore)
    }

    pub(super) fn lose(&mut self, n: u64, ts: u64) -> Loss {
        if n == 0 {
            return Loss::None;
        }
        match self.state {
            State::Idle => Loss::Unframed,
            State::Data { left } if n < left => {
                self.line.bytes += n;
                self.state = State::Data { left: left - n };
                Loss::None
            }
            State::Data { left } => {
                self.line.bytes += left;
                let line = self.finish(ts);
                if n > left {
                    Loss::AfterLine { line, rest: n - left }
                } else {
                    Loss::Completed(line)
                }
            }
            State::Line => {
                self.line.bytes += n;
                if self.tokens == 0 {
                    // The first word itself was cut: the code is unknown.
                    self.line.code = Code::Other;
                }
                Loss::Cut(self.finish(ts))
            }
        }
    }

    fn finish(&mut self, ts: u64) -> Line {
        self.state = State::Idle;
        self.line.end_ns = ts;
        std::mem::take(&mut self.line)
    }

    fn line_byte(&mut self, b: u8) {
        if b == b' ' || b == b'\r' || b == b'\t' {
            self.end_token();
            return;
        }
        if !self.in_token {
            self.in_token = true;
            self.token.clear();
            let meta_flags_from = if self.line.code == Code::Va { 2 } else { 1 };
            if self.tokens >= meta_flags_from && self.line.code.is_meta() {
                self.in_key = b == b'k';
                self.in_opaque = b == b'O';
                self.key = KeyHash::default();
                self.token.push_byte(b);
                return;
            }
            self.in_key = false;
            self.in_opaque = false;
        }
        self.token.push_byte(b);
        if self.in_key {
            self.key.push(std::slice::from_ref(&b));
        } else if self.in_opaque {
            self.line.opaque.push_byte(b);
        }
    }

    fn end_token(&mut self) {
        if !self.in_token {
            return;
        }
        self.in_token = false;
        let index = self.tokens;
        self.tokens += 1;
        if index == 0 {
            self.line.code = self.token.token().map_or(Code::Other, |w| Code::of(w.as_bytes()));
            return;
        }
        let data_token = match self.line.code {
            Code::Value => 3,
            Code::Va => 1,
            _ => u32::MAX,
        };
        if index == data_token {
            self.data_len = self.token.parse_i64().and_then(|n| u64::try_from(n).ok()).filter(|&n| n <= MAX_VALUE_LEN);
        }
        if self.in_key {
            self.line.key = Some(self.key);
            self.in_key = false;
        }
        self.in_opaque = false;
    }
}
