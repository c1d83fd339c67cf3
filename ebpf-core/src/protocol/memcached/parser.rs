//! The per-connection state machine: commands one way, reply lines the
//! other, matched in order, with memcached's exceptions:
//!
//! - Text `noreply` commands get no reply: they end when sent.
//! - Retrievals (`get`, `gets`, `gat`, `gats`) are answered by a `VALUE`
//!   line and block per key found, then `END`; `stats` by lines up to `END`.
//! - Meta commands in quiet mode (`q`) are not answered when the outcome is
//!   the usual one (`EN` for `mg`, `HD` for the others); a client ends a
//!   quiet batch with `mn`, answered `MN`. A reply therefore answers the
//!   first command, from the oldest awaiting one, that could have sent it:
//!   the same opaque token (`O`) and returned key (`k`) when they were
//!   asked for, and a code the command sends in its mode. The quiet
//!   commands it passes over were answered by silence: they end with the
//!   outcome silence stands for.
//!
//! Bytes past the capture are handled as for Redis (see `redis::parser`):
//! data blocks are skipped by length; a line the capture cut keeps what was
//! seen (a multi-key `get` counts the keys and hits seen), and the direction
//! resynchronises at the next request chunk that starts with a command.

use compact_str::CompactString;

use super::command::{Command, CommandFramer, Flags, KeyHash, Kind, Step as CommandStep};
use super::operation::{Code, MemcachedCounters, MemcachedOperation, Outcome};
use super::reply::{Line, Loss as ReplyLoss, ReplyFramer, Step as ReplyStep};
use super::{sniff, MemcachedError, MAX_PENDING};
use crate::protocol::follow::{self, State, Sync};
use crate::protocol::inflight::{self, Entry, InFlight};
use crate::protocol::prefix::Prefix;
use crate::protocol::{Chunk, Direction, Role};

const END_LINE: &[u8] = b"END\r\n";

#[derive(Debug)]
struct Pending {
    op: MemcachedOperation,
    kind: Kind,
    flags: Flags,
    opaque: Prefix<32>,
    key: KeyHash,
    /// The capture cut its line: a text command may have ended in
    /// `noreply`, a meta command may have had any flags (`q`, `O`, `k`).
    /// Commands the capture lost follow it, so a reply after it may be its
    /// or theirs: it takes none, and ends with an unknown outcome.
    uncertain: bool,
    done: bool,
}

impl inflight::Command for Pending {
    type Op = MemcachedOperation;

    fn awaits_reply(&self) -> bool {
        !self.done
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn into_op(self) -> MemcachedOperation {
        self.op
    }
}

impl Pending {
    /// It may go unanswered: a later reply may pass it over.
    fn quiet(&self) -> bool {
        self.kind.is_meta() && self.flags.has(b'q') || self.uncertain
    }

    /// What its silence stands for.
    fn silent_outcome(&self) -> Outcome {
        match self.kind {
            _ if self.uncertain => Outcome::Unknown,
            Kind::MetaGet => Outcome::Reply(Code::En),
            _ => Outcome::Reply(Code::Hd),
        }
    }

    /// Whether `line` can be this command's reply (see the module docs).
    fn may_answer(&self, line: &Line) -> bool {
        if self.uncertain {
            return false;
        }
        if line.code.is_error() {
            return true;
        }
        if self.kind.is_meta() {
            let same_opaque =
                line.opaque.bytes() == self.opaque.bytes() && line.opaque.is_whole() == self.opaque.is_whole();
            let same_key = match line.key {
                Some(k) => self.flags.has(b'k') && k == self.key,
                None => !self.flags.has(b'k') || matches!(line.code, Code::Mn | Code::Me),
            };
            if line.code != Code::Mn && (!same_opaque || !same_key) {
                return false;
            }
        }
        let q = self.quiet();
        let cas = self.flags.has(b'C') || self.flags.has(b'M') || self.flags.has(b'I');
        match self.kind {
            Kind::Get { .. } => matches!(line.code, Code::Value | Code::End),
            Kind::Store => matches!(line.code, Code::Stored | Code::NotStored | Code::Exists | Code::NotFound),
            Kind::Delete => matches!(line.code, Code::Deleted | Code::NotFound),
            Kind::Arith => matches!(line.code, Code::Number | Code::NotFound),
            Kind::Touch => matches!(line.code, Code::Touched | Code::NotFound),
            Kind::Version => line.code == Code::Version,
            Kind::Watch => line.code == Code::Ok,
            Kind::Lines | Kind::Simple | Kind::Quit | Kind::Unknown => true,
            Kind::MetaGet => matches!(line.code, Code::Va | Code::Hd) || !q && line.code == Code::En,
            Kind::MetaSet => {
                line.code == Code::Ns || cas && matches!(line.code, Code::Ex | Code::Nf) || !q && line.code == Code::Hd
            }
            Kind::MetaDelete => line.code == Code::Nf || cas && line.code == Code::Ex || !q && line.code == Code::Hd,
            Kind::MetaArith => {
                matches!(line.code, Code::Va | Code::Nf | Code::Ns | Code::Ex) || !q && line.code == Code::Hd
            }
            Kind::MetaNoop => line.code == Code::Mn,
            Kind::MetaDebug => matches!(line.code, Code::Me | Code::En),
        }
    }
}

/// Turns one connection's chunks into completed memcached operations.
/// Memory per connection is bounded like `RedisParser`'s.
#[derive(Debug)]
pub struct MemcachedParser {
    state: State,
    role: Option<Role>,
    commands: CommandFramer,
    replies: ReplyFramer,
    request_sync: Sync,
    reply_sync: Sync,
    queue: InFlight<Pending>,
    /// The awaiting command's multi-line reply (VALUEs, STATs) has begun.
    in_reply: bool,
    cut_line: Option<Line>,
    framed_any: bool,
    last_reply_ts: u64,
    counters: MemcachedCounters,
}

impl Default for MemcachedParser {
    fn default() -> Self {
        Self::new()
    }
}

impl MemcachedParser {
    pub fn new() -> Self {
        MemcachedParser {
            state: State::Open,
            role: None,
            commands: CommandFramer::default(),
            replies: ReplyFramer::default(),
            request_sync: Sync::Framed,
            reply_sync: Sync::Framed,
            queue: InFlight::new(MAX_PENDING),
            in_reply: false,
            cut_line: None,
            framed_any: false,
            last_reply_ts: 0,
            counters: MemcachedCounters::default(),
        }
    }

    /// With the role, when the caller knows it.
    pub fn with_role(role: Option<Role>) -> Self {
        MemcachedParser { role, ..Self::new() }
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn counters(&self) -> MemcachedCounters {
        self.counters
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    pub fn is_lost(&self) -> bool {
        self.state == State::Lost
    }

    pub fn is_switched(&self) -> bool {
        self.state == State::Switched
    }

    /// Feed one chunk; push every operation it completes onto `out`. As
    /// `RedisParser::feed`: garbage before any command fails the parser,
    /// later it resynchronises; the error is returned once.
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MemcachedOperation>) -> Result<(), MemcachedError> {
        if self.state == State::Lost {
            self.rejoin(chunk);
        }
        if self.state != State::Open {
            return Ok(());
        }
        let Some(side) = follow::side(&mut self.role, chunk, infer_role) else { return Ok(()) };
        let result = if side.request {
            self.feed_requests(chunk.ts_ns, chunk.data, side.uncaptured)
        } else {
            self.feed_replies(chunk.ts_ns, chunk.data, side.uncaptured)
        };
        self.queue.drain(out);
        if result.is_err() {
            if self.framed_any {
                self.counters.resyncs += 1;
                self.gap(out);
            } else {
                self.shut(State::Failed);
            }
        }
        result
    }

    /// The kernel lost chunks of this connection: what is in flight is
    /// dropped (returned and counted); then chunks are ignored until a
    /// request chunk starts with a command, and replies until one starts
    /// with a reply after it.
    pub fn gap(&mut self, out: &mut Vec<MemcachedOperation>) -> u64 {
        if !matches!(self.state, State::Open | State::Lost) {
            return 0;
        }
        // Complete ones, at the front or behind one in flight (noreply),
        // still reported, in order.
        let dropped = self.queue.drop_all(out);
        self.counters.dropped_operations += dropped;
        self.clear_in_flight();
        self.request_sync = Sync::Skip;
        self.reply_sync = Sync::Skip;
        self.state = State::Lost;
        dropped
    }

    /// The connection closed at `ts_ns`: commands without a reply end with
    /// `NoResponse` (quiet ones with the outcome their silence stands for).
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<MemcachedOperation>) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        if self.reply_sync == Sync::Unframed {
            self.end_unframed();
        }
        let partial = self.replies.in_progress_start();
        let in_reply = self.in_reply;
        let mut first = true;
        for entry in self.queue.entries.iter_mut().skip(self.queue.awaiting) {
            let Entry::Op(p) = entry else { continue };
            if p.done {
                continue;
            }
            if first && (in_reply || partial.is_some()) {
                // A reply the close cut short.
                p.op.response_start_ns.get_or_insert(partial.unwrap_or(ts_ns));
                p.op.cut = true;
                p.op.outcome = Outcome::Unknown;
            } else if p.quiet() {
                p.op.outcome = p.silent_outcome();
                if p.kind == Kind::MetaGet {
                    p.op.hits = Some(0);
                }
            } else {
                p.op.outcome = Outcome::NoResponse;
            }
            first = false;
            p.op.response_end_ns = ts_ns;
            p.done = true;
        }
        self.queue.close_all();
        self.queue.drain(out);
        self.shut(State::Closed);
    }

    fn shut(&mut self, state: State) {
        self.state = state;
        self.clear_in_flight();
    }

    fn clear_in_flight(&mut self) {
        self.queue.clear();
        self.in_reply = false;
        self.cut_line = None;
        self.commands.reset();
        self.replies.reset();
    }

    fn rejoin(&mut self, chunk: &Chunk<'_>) {
        let starts = match self.role {
            Some(role) => chunk.direction == role.request_direction() && sniff::starts_command(chunk.data),
            None => sniff::looks_like_command(chunk.data),
        };
        if starts {
            self.state = State::Open;
            self.request_sync = Sync::Framed;
            self.reply_sync = Sync::Skip;
        } else {
            self.counters.skipped_chunks += 1;
        }
    }

    fn feed_requests(&mut self, ts: u64, mut data: &[u8], uncaptured: u64) -> Result<(), MemcachedError> {
        if self.reply_sync == Sync::Unframed {
            self.end_unframed();
        }
        match self.request_sync {
            Sync::Framed | Sync::Unframed => {}
            Sync::Resync | Sync::Skip => {
                let may = self.request_sync == Sync::Skip || !self.awaits_known_reply();
                if !(may && sniff::starts_command(data)) {
                    self.counters.skipped_chunks += 1;
                    if self.request_sync == Sync::Resync {
                        self.queue.push_unknown();
                    }
                    return Ok(());
                }
                self.request_sync = Sync::Framed;
                self.queue.remove_unknown();
            }
        }
        while !data.is_empty() {
            match self.commands.step(data, ts).map_err(|g| MemcachedError::Request(g.reason()))? {
                CommandStep::NeedMore => break,
                CommandStep::Done { consumed, command } => {
                    data = &data[consumed..];
                    self.on_command(command);
                }
            }
        }
        let loss = self.commands.lose(uncaptured, ts);
        if let Some(command) = loss.command {
            self.on_command(command);
        }
        if loss.unframed {
            self.counters.resyncs += 1;
            self.queue.push_unknown();
            self.request_sync = Sync::Resync;
        }
        Ok(())
    }

    fn feed_replies(&mut self, ts: u64, mut data: &[u8], uncaptured: u64) -> Result<(), MemcachedError> {
        match self.reply_sync {
            Sync::Framed => {}
            Sync::Unframed => {
                if let Some(cut) = self.cut_line.as_mut() {
                    cut.bytes += data.len() as u64 + uncaptured;
                }
                self.last_reply_ts = ts;
                return Ok(());
            }
            Sync::Resync => {
                if !sniff::starts_reply(data) {
                    return Err(MemcachedError::Desynchronized(
                        "the reply chunk after replies whose ends were not captured does not start a reply",
                    ));
                }
                self.reply_sync = Sync::Framed;
            }
            Sync::Skip => {
                if !sniff::starts_reply(data) {
                    self.counters.skipped_chunks += 1;
                    return Ok(());
                }
                self.reply_sync = Sync::Framed;
            }
        }
        self.last_reply_ts = ts;
        while !data.is_empty() && self.state == State::Open {
            match self.replies.step(data, ts).map_err(|g| MemcachedError::Reply(g.reason()))? {
                ReplyStep::NeedMore => break,
                ReplyStep::Done { consumed, line } => {
                    data = &data[consumed..];
                    self.on_line(line)?;
                }
            }
        }
        if self.state != State::Open {
            return Ok(());
        }
        match self.replies.lose(uncaptured, ts) {
            ReplyLoss::None => {}
            ReplyLoss::Completed(line) => self.on_line(line)?,
            ReplyLoss::AfterLine { line, rest } => {
                self.on_line(line)?;
                // After a VALUE's block a retrieval goes on with another
                // VALUE line and block (15 bytes at least) or ends with
                // END: five lost bytes can only be its END.
                if rest == END_LINE.len() as u64 && self.in_retrieval() {
                    let end = Line { code: Code::End, start_ns: ts, end_ns: ts, bytes: rest, ..Line::default() };
                    self.on_line(end)?;
                } else {
                    self.go_unframed(None);
                }
            }
            ReplyLoss::Unframed => self.go_unframed(None),
            ReplyLoss::Cut(line) => self.go_unframed(Some(line)),
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: Command) {
        self.framed_any = true;
        let role = self.role.unwrap_or(Role::Client);
        let quiet = cmd.wants_no_reply() || (cmd.kind.is_meta() && cmd.flags.has(b'q'));
        let mut op = MemcachedOperation {
            role,
            command: cmd.name.token().map(CompactString::from),
            keys: cmd.keys(),
            hits: None,
            outcome: Outcome::NoResponse,
            quiet,
            cut: cmd.cut,
            request_start_ns: cmd.start_ns,
            request_end_ns: cmd.end_ns,
            response_start_ns: None,
            response_end_ns: cmd.end_ns,
            request_bytes: cmd.bytes,
            response_bytes: 0,
        };
        let done = cmd.wants_no_reply() || cmd.kind == Kind::Quit;
        if done {
            op.outcome = Outcome::NoReply;
        }
        let uncertain = cmd.cut
            && !done
            && (cmd.kind.is_meta() && cmd.kind != Kind::MetaNoop
                || matches!(cmd.kind, Kind::Store | Kind::Delete | Kind::Arith | Kind::Touch | Kind::Simple));
        let pending =
            Pending { op, kind: cmd.kind, flags: cmd.flags, opaque: cmd.opaque, key: cmd.key, uncertain, done };
        self.counters.dropped_operations += self.queue.push(pending);
    }

    /// A command seen before a loss still awaits a reply it must get (quiet
    /// commands may never get one).
    fn awaits_known_reply(&self) -> bool {
        for entry in self.queue.entries.iter().skip(self.queue.awaiting) {
            match entry {
                Entry::Op(p) if !p.done && !p.quiet() => return true,
                Entry::Skipped(_) => return true,
                Entry::Unknown => return false,
                _ => {}
            }
        }
        false
    }

    fn on_line(&mut self, line: Line) -> Result<(), MemcachedError> {
        if self.in_reply {
            self.continue_reply(&line)?;
            return Ok(());
        }
        // Which entry this line answers: see the module documentation.
        let mut target = None;
        for (i, entry) in self.queue.entries.iter().enumerate().skip(self.queue.awaiting) {
            match entry {
                Entry::Op(p) if p.done => continue,
                Entry::Op(p) => {
                    if p.may_answer(&line) {
                        target = Some(i);
                        break;
                    }
                    if !p.quiet() {
                        break;
                    }
                }
                Entry::Skipped(_) | Entry::Unknown => {
                    target = Some(i);
                    break;
                }
            }
        }
        let Some(target) = target else {
            self.counters.unmatched_replies += 1;
            if !self.framed_any || self.queue.entries.len() == self.queue.awaiting {
                // Nothing awaits: a reply to a command sent before we
                // joined, or an error a noreply command got after all.
                return Ok(());
            }
            return Err(MemcachedError::Desynchronized("a reply answers none of the commands awaiting one"));
        };
        // The quiet commands passed over were answered by silence.
        for i in self.queue.awaiting..target {
            if let Some(Entry::Op(p)) = self.queue.entries.get_mut(i) {
                if !p.done {
                    p.op.outcome = p.silent_outcome();
                    if p.kind == Kind::MetaGet {
                        p.op.hits = Some(0);
                    }
                    p.op.response_end_ns = line.start_ns;
                    p.done = true;
                }
            }
        }
        self.queue.awaiting = target;
        match &mut self.queue.entries[target] {
            Entry::Unknown => {
                self.counters.unmatched_replies += 1;
                return Ok(());
            }
            Entry::Skipped(n) => {
                *n -= 1;
                if *n == 0 {
                    self.queue.answered();
                }
                return Ok(());
            }
            Entry::Op(_) => {}
        }
        let Some(Entry::Op(p)) = self.queue.entries.get_mut(target) else { return Ok(()) };
        p.op.response_start_ns = Some(line.start_ns);
        p.op.response_end_ns = line.end_ns;
        p.op.response_bytes += line.bytes;
        let code = line.code;
        let multi = match p.kind {
            Kind::Get { .. } => {
                p.op.hits = (!code.is_error()).then_some(u32::from(code == Code::Value));
                code == Code::Value
            }
            Kind::Lines => !matches!(code, Code::End | Code::Reset | Code::Ok) && !code.is_error(),
            Kind::MetaGet => {
                p.op.hits = (!code.is_error()).then_some(u32::from(matches!(code, Code::Va | Code::Hd)));
                false
            }
            _ => false,
        };
        if multi {
            self.in_reply = true;
            return Ok(());
        }
        let watch = p.kind == Kind::Watch && code == Code::Ok;
        p.op.outcome = Outcome::Reply(code);
        p.done = true;
        self.queue.answered();
        if watch {
            self.state = State::Switched;
        }
        Ok(())
    }

    /// A line of the awaiting command's multi-line reply.
    fn continue_reply(&mut self, line: &Line) -> Result<(), MemcachedError> {
        let Some(Entry::Op(p)) = self.queue.entries.get_mut(self.queue.awaiting) else {
            self.in_reply = false;
            return Ok(());
        };
        p.op.response_end_ns = line.end_ns;
        p.op.response_bytes += line.bytes;
        let code = line.code;
        let end = match p.kind {
            Kind::Get { .. } => match code {
                Code::Value => {
                    p.op.hits = p.op.hits.map(|h| h + 1);
                    false
                }
                Code::End => true,
                c if c.is_error() => {
                    p.op.hits = None;
                    true
                }
                _ => {
                    return Err(MemcachedError::Desynchronized(
                        "a retrieval's reply has a line that is not VALUE or END",
                    ))
                }
            },
            _ => matches!(code, Code::End | Code::Reset | Code::Ok | Code::En) || code.is_error(),
        };
        if end {
            p.op.outcome = Outcome::Reply(code);
            p.done = true;
            self.in_reply = false;
            self.queue.answered();
        }
        Ok(())
    }

    /// A retrieval's reply is in progress (VALUEs seen, END not yet).
    fn in_retrieval(&self) -> bool {
        self.in_reply
            && matches!(self.queue.entries.get(self.queue.awaiting), Some(Entry::Op(p)) if matches!(p.kind, Kind::Get { .. }))
    }

    fn go_unframed(&mut self, cut: Option<Line>) {
        self.counters.resyncs += 1;
        self.reply_sync = Sync::Unframed;
        self.cut_line = cut;
    }

    /// The unframed stretch of replies ends: the reply it cut ends with its
    /// last chunk; commands still awaiting got replies in the lost bytes.
    fn end_unframed(&mut self) {
        let end = self.last_reply_ts;
        let cut = self.cut_line.take();
        let in_reply = std::mem::replace(&mut self.in_reply, false);
        let mut first = true;
        for entry in self.queue.entries.iter_mut().skip(self.queue.awaiting) {
            match entry {
                Entry::Op(p) if !p.done => {
                    if first && in_reply {
                        // A retrieval or stats whose END was lost: hits so far.
                        if let Some(line) = &cut {
                            p.op.response_bytes += line.bytes;
                        }
                        p.op.outcome = Outcome::Unknown;
                    } else if first && cut.as_ref().is_some_and(|l| l.code != Code::Other && p.may_answer(l)) {
                        if let Some(line) = &cut {
                            let code = line.code;
                            p.op.response_start_ns = Some(line.start_ns);
                            p.op.response_bytes += line.bytes;
                            // The first line of a multi-line reply says how it
                            // began, not how it ended.
                            let multi = match p.kind {
                                Kind::Get { .. } => code == Code::Value,
                                Kind::Lines => !matches!(code, Code::End | Code::Reset | Code::Ok) && !code.is_error(),
                                _ => false,
                            };
                            p.op.outcome = if multi { Outcome::Unknown } else { Outcome::Reply(code) };
                            if !code.is_error() {
                                match p.kind {
                                    Kind::Get { .. } => p.op.hits = Some(u32::from(code == Code::Value)),
                                    Kind::MetaGet => p.op.hits = Some(u32::from(matches!(code, Code::Va | Code::Hd))),
                                    _ => {}
                                }
                            }
                        }
                    } else {
                        p.op.outcome = Outcome::Unknown;
                    }
                    first = false;
                    p.op.cut = true;
                    p.op.response_end_ns = end;
                    p.done = true;
                }
                Entry::Skipped(n) => *n = 0,
                _ => {}
            }
        }
        self.queue.end_unframed();
        self.replies.reset();
        self.reply_sync = Sync::Resync;
    }
}

/// Clients speak first; replies are upper case (or digits), commands lower
/// case: a first chunk that is plainly a reply means we joined late.
fn infer_role(direction: Direction, data: &[u8]) -> Role {
    let reply = data.first().is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    Role::of(direction, !reply)
}
