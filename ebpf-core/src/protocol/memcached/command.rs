//! Framing of the request direction: each command is a line of
//! space-separated tokens, and storage commands (`set`, `add`, `replace`,
//! `append`, `prepend`, `cas`, meta `ms`) are followed by a data block whose
//! length the line gives. Lines and blocks follow one another with nothing
//! in between, split across chunks anywhere; blocks are skipped by length,
//! even past the capture.
//!
//! Of a line only what telemetry and matching need is kept: the command
//! name, how many keys it names, whether it asked for no reply (`noreply`,
//! meta `q`), and for meta commands their flags, opaque token (`O`) and a
//! hash of the key (to match a reply that returns it, `k`). Never a key or
//! a value.

use super::super::prefix::Prefix;
use super::{MAX_LINE, MAX_VALUE_LEN};

/// Which command a line is, as far as framing and matching go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Kind {
    /// get/gets: keys from token 1; gat/gats: from token 2.
    Get {
        first_key: u8,
    },
    /// set/add/replace/append/prepend (data length token 4), cas (token 4
    /// too, then the cas unique).
    Store,
    Delete,
    /// incr/decr
    Arith,
    Touch,
    /// stats and others answered by lines until END.
    Lines,
    Version,
    /// verbosity, flush_all, cache_memlimit, ...: OK.
    Simple,
    /// quit: the server closes.
    Quit,
    /// watch: the connection becomes a log stream.
    Watch,
    /// Meta commands.
    MetaGet,
    MetaSet,
    MetaDelete,
    MetaArith,
    MetaNoop,
    MetaDebug,
    /// Anything else (answered ERROR by a server).
    #[default]
    Unknown,
}

impl Kind {
    fn of(name: &[u8]) -> Kind {
        match name {
            b"get" | b"gets" => Kind::Get { first_key: 1 },
            b"gat" | b"gats" => Kind::Get { first_key: 2 },
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => Kind::Store,
            b"delete" => Kind::Delete,
            b"incr" | b"decr" => Kind::Arith,
            b"touch" => Kind::Touch,
            b"stats" | b"lru_crawler" => Kind::Lines,
            b"version" => Kind::Version,
            b"verbosity" | b"flush_all" | b"cache_memlimit" | b"slabs" | b"lru" | b"shutdown" | b"misbehave"
            | b"debugtime" | b"extstore" => Kind::Simple,
            b"quit" => Kind::Quit,
            b"watch" => Kind::Watch,
            b"mg" => Kind::MetaGet,
            b"ms" => Kind::MetaSet,
            b"md" => Kind::MetaDelete,
            b"ma" => Kind::MetaArith,
            b"mn" => Kind::MetaNoop,
            b"me" => Kind::MetaDebug,
            _ => Kind::Unknown,
        }
    }

    pub(super) fn is_meta(self) -> bool {
        matches!(
            self,
            Kind::MetaGet | Kind::MetaSet | Kind::MetaDelete | Kind::MetaArith | Kind::MetaNoop | Kind::MetaDebug
        )
    }

    /// The token that holds the data block's length.
    fn data_len_token(self) -> Option<u32> {
        match self {
            Kind::Store => Some(4),
            Kind::MetaSet => Some(2),
            _ => None,
        }
    }

    /// The first token that is a meta flag.
    fn first_flag(self) -> u32 {
        match self {
            Kind::MetaNoop => 1,
            Kind::MetaSet => 3,
            _ => 2,
        }
    }
}

/// Meta flags, one bit per ASCII letter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Flags(u64);

impl Flags {
    fn bit(letter: u8) -> Option<u64> {
        match letter {
            b'a'..=b'z' => Some(1 << (letter - b'a')),
            b'A'..=b'Z' => Some(1 << (26 + letter - b'A')),
            _ => None,
        }
    }

    fn set(&mut self, letter: u8) {
        if let Some(b) = Flags::bit(letter) {
            self.0 |= b;
        }
    }

    pub(super) fn has(self, letter: u8) -> bool {
        Flags::bit(letter).is_some_and(|b| self.0 & b != 0)
    }
}

/// A 64-bit FNV-1a, fed a byte at a time: a key's fingerprint, to tell
/// which quiet meta command a reply that returns its key (`k`) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyHash(pub u64);

impl Default for KeyHash {
    fn default() -> Self {
        KeyHash(0xcbf2_9ce4_8422_2325)
    }
}

impl KeyHash {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One command, framed.
#[derive(Debug, Clone, Default)]
pub(super) struct Command {
    /// The first token's first bytes: the command name.
    pub name: Prefix<16>,
    pub kind: Kind,
    /// Tokens on the line (name included).
    pub tokens: u32,
    /// The last token was `noreply`.
    pub noreply: bool,
    /// Meta flags given.
    pub flags: Flags,
    /// The value of the `O` flag (opaque token), first bytes.
    pub opaque: Prefix<32>,
    /// Fingerprint of the key (token 1), for meta commands.
    pub key: KeyHash,
    /// The capture ended inside the command.
    pub cut: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Bytes on the wire, including the data block and bytes past the capture.
    pub bytes: u64,
}

impl Command {
    /// Keys the command names.
    pub(super) fn keys(&self) -> u32 {
        match self.kind {
            Kind::Get { first_key } => self.tokens.saturating_sub(u32::from(first_key)),
            Kind::Lines | Kind::Version | Kind::Simple | Kind::Quit | Kind::Watch | Kind::MetaNoop | Kind::Unknown => 0,
            _ => u32::from(self.tokens >= 2),
        }
    }

    /// No reply will come (text `noreply`). Meta `q` is different: some
    /// replies still come, see the parser.
    pub(super) fn wants_no_reply(&self) -> bool {
        self.noreply && !self.kind.is_meta() && !matches!(self.kind, Kind::Get { .. } | Kind::Lines | Kind::Version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Garbage {
    LineTooLong,
    BadDataLength,
}

impl Garbage {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Garbage::LineTooLong => "a command line longer than any server accepts",
            Garbage::BadDataLength => "a storage command's data length is not a number",
        }
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per command, by value: boxing would allocate per command")]
pub(super) enum Step {
    NeedMore,
    Done { consumed: usize, command: Command },
}

#[derive(Debug)]
pub(super) struct Loss {
    pub command: Option<Command>,
    pub unframed: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    Line,
    /// The data block and its CRLF: `left` bytes to go.
    Data {
        left: u64,
    },
}

/// The request direction's framing state: fixed memory.
#[derive(Debug, Default)]
pub(super) struct CommandFramer {
    state: State,
    cmd: Command,
    line_len: u64,
    in_token: bool,
    /// The token in progress: its first bytes (the data length, `noreply`).
    token: Prefix<24>,
    data_len: Option<u64>,
}

impl CommandFramer {
    pub(super) fn reset(&mut self) {
        self.state = State::Idle;
    }

    pub(super) fn step(&mut self, data: &[u8], ts: u64) -> Result<Step, Garbage> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Idle => {
                    if data[i] == b'\r' || data[i] == b'\n' {
                        i += 1;
                        continue;
                    }
                    self.cmd = Command { start_ns: ts, ..Command::default() };
                    self.line_len = 0;
                    self.in_token = false;
                    self.data_len = None;
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
                    self.cmd.bytes += body.len() as u64;
                    i += body.len();
                    if self.line_len > MAX_LINE {
                        return Err(Garbage::LineTooLong);
                    }
                    if end.is_none() {
                        continue;
                    }
                    self.cmd.bytes += 1;
                    i += 1;
                    self.end_token();
                    if self.cmd.tokens == 0 {
                        self.state = State::Idle;
                        continue;
                    }
                    match self.data_len {
                        Some(n) => self.state = State::Data { left: n + 2 },
                        None if self.cmd.kind.data_len_token().is_some_and(|t| t < self.cmd.tokens) => {
                            return Err(Garbage::BadDataLength);
                        }
                        None => return Ok(Step::Done { consumed: i, command: self.finish(ts) }),
                    }
                }
                State::Data { left } => {
                    let take = (data.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.cmd.bytes += take as u64;
                    i += take;
                    let left = left - take as u64;
                    if left > 0 {
                        self.state = State::Data { left };
                        continue;
                    }
                    return Ok(Step::Done { consumed: i, command: self.finish(ts) });
                }
            }
        }
        Ok(Step::NeedMore)
    }

    pub(super) fn lose(&mut self, n: u64, ts: u64) -> Loss {
        if n == 0 {
            return Loss { command: None, unframed: false };
        }
        match self.state {
            State::Idle => Loss { command: None, unframed: true },
            State::Data { left } if n < left => {
                self.cmd.bytes += n;
                self.state = State::Data { left: left - n };
                Loss { command: None, unframed: false }
            }
            State::Data { left } => {
                self.cmd.bytes += left;
                Loss { command: Some(self.finish(ts)), unframed: n > left }
            }
            State::Line => {
                // The line goes on past the capture: its end, and what
                // follows, are unknown.
                self.cmd.bytes += n;
                if self.in_token && self.cmd.tokens == 0 {
                    self.cmd.name.count_unseen(n);
                }
                self.end_token();
                self.cmd.cut = true;
                Loss { command: Some(self.finish(ts)), unframed: true }
            }
        }
    }

    fn finish(&mut self, ts: u64) -> Command {
        self.state = State::Idle;
        self.cmd.end_ns = ts;
        std::mem::take(&mut self.cmd)
    }

    fn line_byte(&mut self, b: u8) {
        if b == b' ' || b == b'\r' || b == b'\t' {
            self.end_token();
            return;
        }
        let index = self.cmd.tokens;
        if !self.in_token {
            self.in_token = true;
            self.token.clear();
            if index >= self.cmd.kind.first_flag() && self.cmd.kind.is_meta() {
                self.cmd.flags.set(b);
            }
        }
        self.token.push_byte(b);
        if index == 0 {
            self.cmd.name.push_byte(b);
        } else if index == 1 && self.cmd.kind.is_meta() {
            self.cmd.key.push(std::slice::from_ref(&b));
        } else if self.cmd.kind.is_meta()
            && index >= self.cmd.kind.first_flag()
            && self.token.bytes().first() == Some(&b'O')
            && self.token.total() > 1
        {
            self.cmd.opaque.push_byte(b);
        }
    }

    fn end_token(&mut self) {
        if !self.in_token {
            return;
        }
        self.in_token = false;
        let index = self.cmd.tokens;
        self.cmd.tokens += 1;
        if index == 0 {
            self.cmd.kind = self.cmd.name.token().map_or(Kind::Unknown, |n| Kind::of(n.as_bytes()));
        }
        if Some(index) == self.cmd.kind.data_len_token() {
            self.data_len = self.token.parse_i64().and_then(|n| u64::try_from(n).ok()).filter(|&n| n <= MAX_VALUE_LEN);
        }
        self.cmd.noreply = self.token.eq_ignore_case(b"noreply") && index > 0;
    }
}
