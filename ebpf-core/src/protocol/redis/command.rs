//! Framing of the request direction. A client sends each command as a RESP
//! array of bulk strings (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`), which
//! every client library does, or as an inline line (`SET k v\r\n`), which
//! people type into telnet or nc. Commands follow one another with nothing
//! in between (pipelining), split across chunks anywhere.
//!
//! Only the first bytes of the first three arguments are kept (the command
//! name, a subcommand, a database index): enough for telemetry, never a key
//! or a value. Argument bodies are skipped by their declared length, so a
//! value longer than the capture keeps the stream framed.

use super::super::prefix::{parse_i64, Prefix};
use super::{MAX_ARGS, MAX_BULK_LEN, MAX_INLINE_LEN};

/// Bytes kept of each of the first arguments: a SHA-1 digest (EVALSHA) is 40.
pub(super) const ARG_PREFIX: usize = 40;
/// Arguments whose first bytes are kept: name, subcommand, its argument.
pub(super) const KEPT_ARGS: usize = 3;
/// Longest count or length line (`*`/`$`, sign and digits).
const MAX_NUMBER_LINE: usize = 24;

/// One command, framed: what telemetry may use of it.
#[derive(Debug, Clone, Default)]
pub(super) struct Command {
    /// The first bytes of the first `KEPT_ARGS` arguments (name first).
    pub args: [Prefix<ARG_PREFIX>; KEPT_ARGS],
    /// Arguments including the name. Exact for a RESP array (its header
    /// says); for an inline command cut by the capture, those seen.
    pub argc: u64,
    /// Sent as an inline line rather than a RESP array.
    pub inline: bool,
    /// The capture ended inside the command: its last bytes were not seen.
    pub cut: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Bytes on the wire, including those past the capture.
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Garbage {
    /// `*` not followed by a count, or `$` by a length.
    BadNumber,
    /// An array element that is not a bulk string (`$`).
    NotBulk,
    /// A count or length beyond what a server accepts.
    TooLarge,
    /// An inline line longer than a server accepts.
    InlineTooLong,
}

impl Garbage {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Garbage::BadNumber => "a command's count or length line is not a number",
            Garbage::NotBulk => "a command argument is not a bulk string",
            Garbage::TooLarge => "a command's count or length is beyond any server's limit",
            Garbage::InlineTooLong => "an inline command line is longer than a server accepts",
        }
    }
}

/// Progress on one chunk.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per command, by value: boxing would allocate per command")]
pub(super) enum Step {
    /// All of the data was consumed without finishing a command.
    NeedMore,
    /// A command ended after `consumed` bytes.
    Done { consumed: usize, command: Command },
}

/// What bytes past the capture did to the framing.
#[derive(Debug)]
pub(super) struct Loss {
    /// The command the lost bytes ended (`cut` false), or cut short
    /// (`cut` true: its end was among them).
    pub command: Option<Command>,
    /// After that, an unknown number of further commands may have been in
    /// the lost bytes: the stream is no longer framed.
    pub unframed: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Between commands.
    #[default]
    Idle,
    /// After `*`: the argument count.
    Count,
    /// Before an argument's `$`.
    ArgStart,
    /// After `$`: the argument's length.
    ArgLen,
    /// Inside an argument: `left` bytes of it and its CRLF to go.
    ArgBody { left: u64 },
    /// Inside an inline line.
    Inline(Inline),
}

/// sdssplitargs-style tokenizing of an inline line, one byte at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Inline {
    in_token: bool,
    /// The quote character a quoted token is open with.
    quote: Option<u8>,
    escaped: bool,
    /// Bytes of the line so far.
    len: u64,
}

/// The request direction's framing state. Memory is fixed: the kept
/// argument prefixes and one number line.
#[derive(Debug, Default)]
pub(super) struct CommandFramer {
    state: State,
    cmd: Command,
    /// Index of the argument being read, and how many remain after it.
    arg: u64,
    args_left: u64,
    number: Prefix<MAX_NUMBER_LINE>,
}

impl CommandFramer {
    pub(super) fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Consumes `data` (captured bytes at `ts`) up to the end of the next
    /// complete command.
    pub(super) fn step(&mut self, data: &[u8], ts: u64) -> Result<Step, Garbage> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Idle => {
                    let b = data[i];
                    if b == b'\r' || b == b'\n' {
                        // Blank lines between commands: servers skip them.
                        i += 1;
                        continue;
                    }
                    self.cmd = Command { start_ns: ts, ..Command::default() };
                    if b == b'*' {
                        self.cmd.bytes = 1;
                        self.number.clear();
                        self.state = State::Count;
                        i += 1;
                    } else {
                        self.cmd.inline = true;
                        self.state = State::Inline(Inline::default());
                    }
                }
                State::Count | State::ArgLen => {
                    let (used, value) = self.number_line(&data[i..])?;
                    i += used;
                    let Some(n) = value else { continue };
                    if self.state == State::Count {
                        if n > MAX_ARGS {
                            return Err(Garbage::TooLarge);
                        }
                        if n <= 0 {
                            // `*0` and `*-1` are skipped by servers: no command, no reply.
                            self.state = State::Idle;
                            continue;
                        }
                        self.cmd.argc = n as u64;
                        self.arg = 0;
                        self.args_left = n as u64;
                        self.state = State::ArgStart;
                    } else {
                        if !(0..=MAX_BULK_LEN).contains(&n) {
                            return Err(Garbage::TooLarge);
                        }
                        self.state = State::ArgBody { left: n as u64 + 2 };
                    }
                }
                State::ArgStart => {
                    if data[i] != b'$' {
                        return Err(Garbage::NotBulk);
                    }
                    self.cmd.bytes += 1;
                    self.number.clear();
                    self.state = State::ArgLen;
                    i += 1;
                }
                State::ArgBody { left } => {
                    let take = (data.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let piece = &data[i..i + take];
                    // The argument's own bytes (not its CRLF) may be kept.
                    let payload = usize::try_from(left.saturating_sub(2)).unwrap_or(usize::MAX).min(take);
                    if let Some(kept) = self.cmd.args.get_mut(self.arg as usize) {
                        kept.push(&piece[..payload]);
                    }
                    self.cmd.bytes += take as u64;
                    i += take;
                    let left = left - take as u64;
                    if left > 0 {
                        self.state = State::ArgBody { left };
                        continue;
                    }
                    if let Some(command) = self.end_arg(ts) {
                        return Ok(Step::Done { consumed: i, command });
                    }
                }
                State::Inline(mut line) => {
                    let rest = &data[i..];
                    let end = memchr::memchr(b'\n', rest);
                    let body = &rest[..end.unwrap_or(rest.len())];
                    for &b in body {
                        self.inline_byte(&mut line, b);
                    }
                    line.len += body.len() as u64;
                    if line.len > MAX_INLINE_LEN {
                        return Err(Garbage::InlineTooLong);
                    }
                    self.cmd.bytes += body.len() as u64;
                    i += body.len();
                    let Some(_) = end else {
                        self.state = State::Inline(line);
                        continue;
                    };
                    self.cmd.bytes += 1;
                    i += 1;
                    self.state = State::Idle;
                    if line.in_token {
                        self.cmd.argc += 1;
                    }
                    if self.cmd.argc == 0 {
                        // A blank line (maybe only spaces or CR): no command.
                        continue;
                    }
                    self.cmd.end_ns = ts;
                    return Ok(Step::Done { consumed: i, command: std::mem::take(&mut self.cmd) });
                }
            }
        }
        Ok(Step::NeedMore)
    }

    /// `n` bytes at `ts` past the captured ones: count them where the
    /// framing says what they are, otherwise give up the framing.
    pub(super) fn lose(&mut self, n: u64, ts: u64) -> Loss {
        if n == 0 {
            return Loss { command: None, unframed: false };
        }
        if let State::ArgBody { left } = self.state {
            if let Some(kept) = self.cmd.args.get_mut(self.arg as usize) {
                kept.count_unseen(n.min(left.saturating_sub(2)));
            }
            if n < left {
                self.cmd.bytes += n;
                self.state = State::ArgBody { left: left - n };
                return Loss { command: None, unframed: false };
            }
            self.cmd.bytes += left;
            if let Some(command) = self.end_arg(ts) {
                return Loss { command: Some(command), unframed: n > left };
            }
            // The next argument's header was not captured.
            self.cmd.bytes += n - left;
        } else if self.state == State::Idle {
            return Loss { command: None, unframed: true };
        } else {
            if let State::Inline(line) = self.state {
                if line.in_token {
                    // The word in progress goes on past the capture.
                    if let Some(kept) = self.cmd.args.get_mut(self.cmd.argc as usize) {
                        kept.count_unseen(n);
                    }
                    self.cmd.argc += 1;
                }
            }
            self.cmd.bytes += n;
        }
        // Cut inside a command: it ended somewhere in the lost bytes.
        self.state = State::Idle;
        self.cmd.cut = true;
        self.cmd.end_ns = ts;
        Loss { command: Some(std::mem::take(&mut self.cmd)), unframed: true }
    }

    /// Reads a count/length line; returns bytes used and, once the line
    /// has ended, its value.
    fn number_line(&mut self, data: &[u8]) -> Result<(usize, Option<i64>), Garbage> {
        let end = memchr::memchr(b'\n', data);
        let body = &data[..end.unwrap_or(data.len())];
        self.number.push(body);
        self.cmd.bytes += body.len() as u64;
        if !self.number.is_whole() {
            return Err(Garbage::BadNumber);
        }
        let Some(at) = end else { return Ok((data.len(), None)) };
        self.cmd.bytes += 1;
        let digits = self.number.bytes().strip_suffix(b"\r").ok_or(Garbage::BadNumber)?;
        let value = parse_i64(digits).ok_or(Garbage::BadNumber)?;
        Ok((at + 1, Some(value)))
    }

    /// An argument's bytes and CRLF are all in: the command is complete
    /// after its last one.
    fn end_arg(&mut self, ts: u64) -> Option<Command> {
        self.arg += 1;
        self.args_left -= 1;
        if self.args_left > 0 {
            self.state = State::ArgStart;
            return None;
        }
        self.state = State::Idle;
        self.cmd.end_ns = ts;
        Some(std::mem::take(&mut self.cmd))
    }

    fn inline_byte(&mut self, line: &mut Inline, b: u8) {
        let index = self.cmd.argc as usize;
        if let Some(q) = line.quote {
            if line.escaped {
                line.escaped = false;
            } else if b == b'\\' && q == b'"' {
                line.escaped = true;
                return;
            } else if b == q {
                line.quote = None;
                return;
            }
            if let Some(kept) = self.cmd.args.get_mut(index) {
                kept.push_byte(b);
            }
            return;
        }
        match b {
            b' ' | b'\t' | b'\r' => {
                if line.in_token {
                    line.in_token = false;
                    self.cmd.argc += 1;
                }
            }
            b'"' | b'\'' if !line.in_token => {
                line.in_token = true;
                line.quote = Some(b);
            }
            _ => {
                line.in_token = true;
                if let Some(kept) = self.cmd.args.get_mut(index) {
                    kept.push_byte(b);
                }
            }
        }
    }
}
