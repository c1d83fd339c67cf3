//! The per-connection state machine: commands one way, replies the other,
//! matched first-in-first-out, one reply per command, with the exceptions
//! Redis has:
//!
//! - Out-of-band values take no command's place: RESP3 pushes (pub/sub
//!   messages, client-side caching invalidations) and, on a RESP2
//!   connection that subscribed, `message`/`pmessage`/`smessage` arrays.
//! - `SUBSCRIBE a b` (and its `P`/`S` forms) is answered once per channel;
//!   `UNSUBSCRIBE` without channels once per subscription, an unknown
//!   number: the operation ends at the first, the rest are absorbed.
//! - Between `MULTI` and `EXEC` each command is answered `QUEUED` (or an
//!   error); its real outcome is its element of `EXEC`'s array, and it is
//!   held until `EXEC` (or `DISCARD`) is answered.
//! - `CLIENT REPLY OFF`/`SKIP` suppress replies; `MONITOR` and replication
//!   (`SYNC`/`PSYNC`) turn the connection into something else.
//!
//! # Bytes past the capture
//!
//! Argument and string bodies are skipped by their declared length, so a
//! large value loses nothing. What cannot be skipped is a header past the
//! capture: a pipeline written in one syscall longer than the capture, or a
//! large aggregate reply. Then:
//!
//! - *Requests*: the command the capture cut is kept (its name and argument
//!   count are in its first bytes), and an unknown number of commands may
//!   follow in the lost bytes. Replies to the commands seen are matched as
//!   usual; replies after them answer commands never seen and are only
//!   counted. The request direction resynchronises at the first later
//!   request chunk that starts with a command, once every command seen
//!   before the loss has its reply: a client that waits for a batch's
//!   replies before writing more (which blocking clients and pipelines do)
//!   has then had all its lost commands answered.
//! - *Replies*: the reply the capture cut ends with its last chunk before
//!   the next request chunk (its type, and error code, were in its first
//!   bytes); commands still awaiting replies then got them in the lost
//!   bytes: they end there too, with an unknown outcome. The next reply
//!   chunk must start a reply.
//!
//! What lost commands did to the connection is forgotten: the database
//! index becomes unknown until the next `SELECT`, and a transaction or
//! `CLIENT REPLY OFF` they may have begun is taken as not begun. A command
//! whose name (or `CLIENT`'s subcommand) the capture cut is taken to want a
//! reply: were it `CLIENT REPLY OFF`, the next reply would be taken for it.
//!
//! A reply with no command left to answer, or a resynchronisation chunk
//! that does not start a reply, shows that a client did not wait: the
//! parser then drops what is in flight (counted) and waits, as after lost
//! events (`gap`), for a chunk that starts a command.

use compact_str::CompactString;

use super::command::{Command, CommandFramer, Step as CommandStep};
use super::operation::{Outcome, RedisCounters, RedisOperation, Transaction};
use super::reply::{Element, Loss as ReplyLoss, Reply, ReplyFramer, ReplyKind, Step as ReplyStep};
use super::{sniff, RedisError, MAX_PENDING};
use crate::protocol::follow::{self, State, Sync};
use crate::protocol::inflight::{self, Entry, InFlight};
use crate::protocol::prefix::Prefix;
use crate::protocol::{Chunk, Direction, Role};

/// The pub/sub command families whose replies are confirmations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Subscribe,
    PSubscribe,
    SSubscribe,
    Unsubscribe,
    PUnsubscribe,
    SUnsubscribe,
}

impl Family {
    fn of(name: &Prefix<{ super::command::ARG_PREFIX }>) -> Option<Family> {
        Some(match () {
            _ if name.eq_ignore_case(b"SUBSCRIBE") => Family::Subscribe,
            _ if name.eq_ignore_case(b"PSUBSCRIBE") => Family::PSubscribe,
            _ if name.eq_ignore_case(b"SSUBSCRIBE") => Family::SSubscribe,
            _ if name.eq_ignore_case(b"UNSUBSCRIBE") => Family::Unsubscribe,
            _ if name.eq_ignore_case(b"PUNSUBSCRIBE") => Family::PUnsubscribe,
            _ if name.eq_ignore_case(b"SUNSUBSCRIBE") => Family::SUnsubscribe,
            _ => return None,
        })
    }

    /// The first element of its confirmations.
    fn word(self) -> &'static [u8] {
        match self {
            Family::Subscribe => b"subscribe",
            Family::PSubscribe => b"psubscribe",
            Family::SSubscribe => b"ssubscribe",
            Family::Unsubscribe => b"unsubscribe",
            Family::PUnsubscribe => b"punsubscribe",
            Family::SUnsubscribe => b"sunsubscribe",
        }
    }

    fn confirmed_by(reply: &Reply) -> Option<Family> {
        if !matches!(reply.kind, ReplyKind::Array | ReplyKind::Push)
            || reply.len != Some(3)
            || reply.third_int.is_none()
        {
            return None;
        }
        [
            Family::Subscribe,
            Family::PSubscribe,
            Family::SSubscribe,
            Family::Unsubscribe,
            Family::PUnsubscribe,
            Family::SUnsubscribe,
        ]
        .into_iter()
        .find(|f| reply.first_is(f.word()))
    }
}

/// What a command does to the connection, decided from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    /// Answered by `left` confirmations; `open` (no channels given to an
    /// unsubscribe): by one per subscription, however many.
    PubSub {
        family: Family,
        left: u64,
        open: bool,
    },
    Multi,
    Exec,
    Discard,
    Select(u32),
    Hello(i64),
    Reset,
    Monitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Waiting for its reply.
    Awaiting,
    /// Answered `QUEUED`: waiting for `EXEC`/`DISCARD`.
    Queued,
    Done,
}

#[derive(Debug)]
struct Pending {
    op: RedisOperation,
    special: Special,
    /// Sent between MULTI and EXEC/DISCARD.
    in_multi: bool,
    /// The transaction it was queued in, or that an EXEC/DISCARD ends.
    tx: u32,
    progress: Progress,
}

impl inflight::Command for Pending {
    type Op = RedisOperation;

    fn awaits_reply(&self) -> bool {
        self.progress == Progress::Awaiting
    }

    fn is_done(&self) -> bool {
        self.progress == Progress::Done
    }

    fn into_op(self) -> RedisOperation {
        self.op
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Answer,
    OutOfBand,
    Absorbed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    SkipNext,
}

/// Turns one connection's chunks into completed Redis operations.
/// Memory per connection is bounded: the framers' fixed state and at most
/// `MAX_PENDING` commands awaiting replies (more are only counted).
#[derive(Debug)]
pub struct RedisParser {
    state: State,
    role: Option<Role>,
    commands: CommandFramer,
    replies: ReplyFramer,
    request_sync: Sync,
    reply_sync: Sync,
    /// Commands in order until their operations are complete and handed out.
    queue: InFlight<Pending>,
    /// Index in `queue` from which `EXEC`'s elements go to queued commands.
    tx_cursor: usize,
    /// The database index when EXEC's reply started (its elements may SELECT).
    exec_db: Option<Option<u32>>,
    /// The reply the capture cut, while its stretch is unframed.
    cut_reply: Option<Reply>,
    /// Database index in effect, when known.
    db: Option<u32>,
    resp3: bool,
    /// The connection used pub/sub: RESP2 message arrays are out-of-band.
    pubsub: bool,
    /// Absorb further confirmations of this family (an open unsubscribe).
    linger: Option<Family>,
    /// Request-side: inside MULTI (the how-manyth), and the CLIENT REPLY mode.
    in_multi: bool,
    tx: u32,
    reply_mode: ReplyMode,
    /// The connection has used inline commands (resynchronise on them too).
    inline: bool,
    /// A command has been framed: garbage now means lost framing, not a
    /// stream that is not Redis.
    framed_any: bool,
    last_request_ts: u64,
    last_reply_ts: u64,
    counters: RedisCounters,
}

impl Default for RedisParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisParser {
    /// A parser for a connection joined at an unknown point: the database
    /// index is unknown until a `SELECT`, and the role is inferred.
    pub fn new() -> Self {
        RedisParser {
            state: State::Open,
            role: None,
            commands: CommandFramer::default(),
            replies: ReplyFramer::default(),
            request_sync: Sync::Framed,
            reply_sync: Sync::Framed,
            queue: InFlight::new(MAX_PENDING),
            tx_cursor: 0,
            exec_db: None,
            cut_reply: None,
            db: None,
            resp3: false,
            pubsub: false,
            linger: None,
            in_multi: false,
            tx: 0,
            reply_mode: ReplyMode::On,
            inline: false,
            framed_any: false,
            last_request_ts: 0,
            last_reply_ts: 0,
            counters: RedisCounters::default(),
        }
    }

    /// A parser for a connection seen from its start (so it begins in
    /// database 0), with the role when the caller knows it.
    pub fn from_start(role: Option<Role>) -> Self {
        RedisParser { db: Some(0), role, ..Self::new() }
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn counters(&self) -> RedisCounters {
        self.counters
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// True after `gap` (or a desynchronisation) until a chunk starting a
    /// command is seen.
    pub fn is_lost(&self) -> bool {
        self.state == State::Lost
    }

    /// True once `MONITOR` or replication made the connection something
    /// other than request/response; later feeds are ignored.
    pub fn is_switched(&self) -> bool {
        self.state == State::Switched
    }

    /// Feed one chunk; push every operation it completes onto `out`.
    /// Garbage before any command was framed fails the parser for good (the
    /// stream is not Redis); garbage later, or a reply that answers nothing,
    /// drops what is in flight and resynchronises as after `gap`. Either way
    /// the error is returned once.
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<RedisOperation>) -> Result<(), RedisError> {
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
        self.drain(out);
        if result.is_err() {
            if self.framed_any {
                self.desync(out);
            } else {
                self.shut(State::Failed);
            }
        }
        result
    }

    /// The kernel lost chunks of this connection. Every command in flight
    /// is dropped (what was lost could be any part of it); the return value
    /// is how many, also counted in `dropped_operations`. Then chunks are
    /// ignored until a request chunk starts with a command, and replies
    /// until one starts with a reply after it. The database index, MULTI
    /// and CLIENT REPLY state become unknown or default.
    pub fn gap(&mut self, out: &mut Vec<RedisOperation>) -> u64 {
        if !matches!(self.state, State::Open | State::Lost) {
            return 0;
        }
        self.drain(out);
        let dropped = self.drop_in_flight(out);
        self.forget_request_state();
        self.lost_commands_ran();
        self.state = State::Lost;
        dropped
    }

    /// The connection closed at `ts_ns`: commands without a reply end with
    /// `Outcome::NoResponse`, queued ones with `Transaction::Unknown`.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<RedisOperation>) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        if self.reply_sync == Sync::Unframed {
            self.end_unframed();
        }
        if let Some(i) = self.awaiting_op() {
            if let Some(start) = self.replies.in_progress_start() {
                // A reply the close cut short.
                if let Entry::Op(p) = &mut self.queue.entries[i] {
                    p.op.response_start_ns.get_or_insert(start);
                    p.op.cut = true;
                }
            }
        }
        for entry in &mut self.queue.entries {
            let Entry::Op(p) = entry else { continue };
            match p.progress {
                Progress::Done => {}
                Progress::Queued => {
                    p.op.transaction = Some(Transaction::Unknown);
                    p.progress = Progress::Done;
                }
                Progress::Awaiting => {
                    p.op.outcome = Outcome::NoResponse;
                    p.op.response_end_ns = ts_ns;
                    if p.in_multi {
                        p.op.transaction = Some(Transaction::Unknown);
                    }
                    p.progress = Progress::Done;
                }
            }
        }
        self.queue.close_all();
        self.drain(out);
        self.shut(State::Closed);
    }

    fn shut(&mut self, state: State) {
        self.state = state;
        self.queue.clear();
        self.tx_cursor = 0;
        self.cut_reply = None;
        self.commands.reset();
        self.replies.reset();
    }

    /// Drops everything in flight, counting the commands; returns the count.
    /// Operations already complete behind them (commands that asked for no
    /// reply) still go to `out`.
    fn drop_in_flight(&mut self, out: &mut Vec<RedisOperation>) -> u64 {
        let dropped = self.queue.drop_all(out);
        self.counters.dropped_operations += dropped;
        self.tx_cursor = 0;
        self.cut_reply = None;
        self.commands.reset();
        self.replies.reset();
        self.request_sync = Sync::Skip;
        self.reply_sync = Sync::Skip;
        dropped
    }

    /// Framing was lost beyond what bytes past the capture explain: start
    /// over as after lost events.
    fn desync(&mut self, out: &mut Vec<RedisOperation>) {
        self.counters.resyncs += 1;
        self.gap(out);
    }

    fn rejoin(&mut self, chunk: &Chunk<'_>) {
        let starts = match self.role {
            Some(role) => chunk.direction == role.request_direction() && sniff::starts_command(chunk.data, self.inline),
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

    fn feed_requests(&mut self, ts: u64, mut data: &[u8], uncaptured: u64) -> Result<(), RedisError> {
        // A new request chunk ends a stretch of replies whose ends were lost.
        if self.reply_sync == Sync::Unframed {
            self.end_unframed();
        }
        match self.request_sync {
            Sync::Framed | Sync::Unframed => {}
            Sync::Resync | Sync::Skip => {
                let may = self.request_sync == Sync::Skip || self.awaiting_op().is_none();
                if !(may && sniff::starts_command(data, self.inline)) {
                    self.counters.skipped_chunks += 1;
                    if self.request_sync == Sync::Resync {
                        // Commands we do not see: their replies are not for later ones.
                        self.queue.push_unknown();
                    }
                    return Ok(());
                }
                self.request_sync = Sync::Framed;
                self.remove_unknown();
            }
        }
        self.last_request_ts = ts;
        while !data.is_empty() && self.state == State::Open {
            match self.commands.step(data, ts).map_err(|g| RedisError::Request(g.reason()))? {
                CommandStep::NeedMore => break,
                CommandStep::Done { consumed, command } => {
                    data = &data[consumed..];
                    self.on_command(command);
                }
            }
        }
        if self.state != State::Open {
            return Ok(());
        }
        let loss = self.commands.lose(uncaptured, ts);
        if let Some(command) = loss.command {
            self.on_command(command);
        }
        if loss.unframed {
            self.counters.resyncs += 1;
            self.queue.push_unknown();
            self.request_sync = Sync::Resync;
            self.forget_request_state();
        }
        Ok(())
    }

    fn feed_replies(&mut self, ts: u64, mut data: &[u8], uncaptured: u64) -> Result<(), RedisError> {
        match self.reply_sync {
            Sync::Framed => {}
            Sync::Unframed => {
                self.last_reply_ts = ts;
                if let Some(cut) = self.cut_reply.as_mut() {
                    cut.bytes += data.len() as u64 + uncaptured;
                }
                return Ok(());
            }
            Sync::Resync => {
                if !sniff::starts_reply(data) {
                    return Err(RedisError::Desynchronized(
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
        while (!data.is_empty() || self.replies.has_deferred()) && self.state == State::Open {
            self.replies.want_elements = self.awaiting_special() == Some(Special::Exec);
            match self.replies.step(data, ts).map_err(|g| RedisError::Reply(g.reason()))? {
                ReplyStep::NeedMore => break,
                ReplyStep::Done { consumed, reply } => {
                    data = &data[consumed..];
                    self.on_reply(reply)?;
                }
                ReplyStep::Element { consumed, element } => {
                    data = &data[consumed..];
                    self.on_element(element);
                }
            }
        }
        if self.state != State::Open {
            return Ok(());
        }
        match self.replies.lose(uncaptured, ts) {
            ReplyLoss::None => {}
            ReplyLoss::Completed(reply) => self.on_reply(reply)?,
            ReplyLoss::AfterReply(reply) => {
                self.on_reply(reply)?;
                self.go_unframed(None);
            }
            ReplyLoss::Unframed => self.go_unframed(None),
            ReplyLoss::Cut(reply) => self.go_unframed(Some(reply)),
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: Command) {
        self.framed_any = true;
        self.inline |= cmd.inline;
        let name = &cmd.args[0];
        let is = |word: &[u8]| name.eq_ignore_case(word);
        let mut special = Special::None;
        if let Some(family) = Family::of(name) {
            self.pubsub = true;
            let channels = cmd.argc.saturating_sub(1);
            let open =
                channels == 0 && matches!(family, Family::Unsubscribe | Family::PUnsubscribe | Family::SUnsubscribe);
            special = Special::PubSub { family, left: channels.max(1), open };
        } else if is(b"MULTI") {
            special = Special::Multi;
        } else if is(b"EXEC") {
            special = Special::Exec;
        } else if is(b"DISCARD") {
            special = Special::Discard;
        } else if is(b"SELECT") {
            if let Some(db) = cmd.args[1].parse_i64().and_then(|n| u32::try_from(n).ok()) {
                special = Special::Select(db);
            }
        } else if is(b"HELLO") {
            special = Special::Hello(cmd.args[1].parse_i64().unwrap_or(0));
        } else if is(b"RESET") {
            special = Special::Reset;
        } else if is(b"MONITOR") {
            special = Special::Monitor;
        }
        let in_multi = self.in_multi && !matches!(special, Special::Multi | Special::Exec | Special::Discard);
        // Which commands are answered: CLIENT REPLY is itself a command.
        let client_reply = is(b"CLIENT") && cmd.args[1].eq_ignore_case(b"REPLY") && !self.in_multi;
        let answered = if client_reply {
            let arg = &cmd.args[2];
            if arg.eq_ignore_case(b"ON") {
                self.reply_mode = ReplyMode::On;
                true
            } else if arg.eq_ignore_case(b"OFF") {
                self.reply_mode = ReplyMode::Off;
                false
            } else if arg.eq_ignore_case(b"SKIP") {
                if self.reply_mode == ReplyMode::On {
                    self.reply_mode = ReplyMode::SkipNext;
                }
                false
            } else {
                // A bad mode is answered with an error.
                true
            }
        } else {
            match self.reply_mode {
                ReplyMode::On => true,
                ReplyMode::Off => false,
                ReplyMode::SkipNext => {
                    self.reply_mode = ReplyMode::On;
                    false
                }
            }
        };
        match special {
            Special::Multi if !self.in_multi => {
                self.in_multi = true;
                self.tx = self.tx.wrapping_add(1);
            }
            Special::Exec | Special::Discard => self.in_multi = false,
            Special::Reset => {
                self.in_multi = false;
                self.reply_mode = ReplyMode::On;
            }
            _ => {}
        }
        let replication = is(b"SYNC") || is(b"PSYNC");
        let op = operation(&cmd, self.role.unwrap_or(Role::Client), self.db);
        let mut pending = Pending { op, special, in_multi, tx: self.tx, progress: Progress::Awaiting };
        if !answered {
            pending.op.outcome = Outcome::NoReply;
            pending.op.response_end_ns = pending.op.request_end_ns;
            pending.progress = Progress::Done;
        }
        if in_multi {
            pending.op.transaction = Some(Transaction::Unknown);
        }
        self.counters.dropped_operations += self.queue.push(pending);
        if replication {
            // A replica's stream: an RDB payload, then commands the other way.
            self.shut_switched();
        }
    }

    /// Commands were lost: whatever they did to the connection is unknown
    /// (an EXEC, a CLIENT REPLY; a SELECT, see `lost_commands_ran`). Later
    /// commands start a new transaction count, so that no EXEC settles
    /// commands queued before.
    fn forget_request_state(&mut self) {
        self.in_multi = false;
        self.tx = self.tx.wrapping_add(1);
        self.reply_mode = ReplyMode::On;
    }

    /// Lost commands have run (a reply to one came, or the stretch ended):
    /// one may have been a SELECT.
    fn lost_commands_ran(&mut self) {
        self.db = None;
    }

    fn shut_switched(&mut self) {
        self.state = State::Switched;
    }

    /// The awaiting entry, if it is a kept command.
    fn awaiting_op(&self) -> Option<usize> {
        let mut i = self.queue.awaiting;
        // Entries past an Unknown may await too, but cannot be answered first.
        while let Some(entry) = self.queue.entries.get(i) {
            match entry {
                Entry::Op(p) if p.progress == Progress::Awaiting => return Some(i),
                Entry::Op(_) => i += 1,
                Entry::Skipped(_) => return Some(i),
                Entry::Unknown => return None,
            }
        }
        None
    }

    fn awaiting_special(&self) -> Option<Special> {
        match self.queue.entries.get(self.queue.awaiting) {
            Some(Entry::Op(p)) => Some(p.special),
            _ => None,
        }
    }

    fn remove_unknown(&mut self) {
        if self.queue.remove_unknown() {
            self.lost_commands_ran();
        }
    }

    /// Whether a reply answers the awaiting command, is out-of-band, or is
    /// one more confirmation of an unsubscribe that already ended.
    fn classify(&self, reply: &Reply) -> Class {
        let expecting = match self.awaiting_special() {
            Some(Special::PubSub { family, .. }) => Some(family),
            _ => None,
        };
        let confirms = Family::confirmed_by(reply);
        if confirms.is_some() && confirms == expecting {
            return Class::Answer;
        }
        if confirms.is_some() && confirms == self.linger {
            return Class::Absorbed;
        }
        match reply.kind {
            ReplyKind::Push => Class::OutOfBand,
            ReplyKind::Array if self.pubsub && !self.resp3 => {
                let message = (reply.first_is(b"message") || reply.first_is(b"smessage")) && reply.len == Some(3)
                    || reply.first_is(b"pmessage") && reply.len == Some(4);
                if message || confirms.is_some() {
                    Class::OutOfBand
                } else {
                    Class::Answer
                }
            }
            _ => Class::Answer,
        }
    }

    fn on_reply(&mut self, reply: Reply) -> Result<(), RedisError> {
        if reply.kind.is_resp3() {
            self.resp3 = true;
        }
        match self.classify(&reply) {
            Class::Answer => {}
            Class::OutOfBand => {
                self.counters.pushes += 1;
                return Ok(());
            }
            Class::Absorbed => return Ok(()),
        }
        self.linger = None;
        let Some(entry) = self.queue.entries.get_mut(self.queue.awaiting) else {
            self.counters.unmatched_replies += 1;
            if !self.framed_any {
                // Replies to commands sent before we joined.
                return Ok(());
            }
            return Err(RedisError::Desynchronized("a reply answers no command seen"));
        };
        let p = match entry {
            Entry::Unknown => {
                self.counters.unmatched_replies += 1;
                self.lost_commands_ran();
                return Ok(());
            }
            Entry::Skipped(n) => {
                *n -= 1;
                if *n == 0 {
                    self.queue.answered();
                }
                return Ok(());
            }
            Entry::Op(p) => p,
        };
        p.op.response_start_ns.get_or_insert(reply.start_ns);
        p.op.response_end_ns = reply.end_ns;
        p.op.response_bytes += reply.bytes;
        let error = reply.is_error();
        if p.in_multi {
            if !error && reply.kind == ReplyKind::SimpleString && reply.simple.eq_ignore_case(b"QUEUED") {
                // Until EXEC says how it ran, what it got is the QUEUED.
                p.op.outcome = Outcome::Reply(ReplyKind::SimpleString);
                p.progress = Progress::Queued;
            } else {
                p.op.outcome = outcome_of(&reply);
                p.op.transaction = Some(Transaction::Rejected);
                p.progress = Progress::Done;
            }
            self.queue.answered();
            return Ok(());
        }
        p.op.database = match p.special {
            Special::Exec => self.exec_db.take().unwrap_or(self.db),
            _ => self.db,
        };
        let mut done = true;
        let mut tx_end = None;
        match &mut p.special {
            Special::PubSub { family, left, open } if !error && Family::confirmed_by(&reply) == Some(*family) => {
                *left -= 1;
                done = *left == 0;
                if done && *open && reply.third_int != Some(0) {
                    self.linger = Some(*family);
                }
            }
            Special::Exec => {
                tx_end = Some(match reply.kind {
                    ReplyKind::Array => Transaction::Executed,
                    _ => Transaction::Aborted,
                });
            }
            Special::Discard if !error => tx_end = Some(Transaction::Discarded),
            Special::Select(db) if !error => self.db = Some(*db),
            Special::Hello(3) if !error => self.resp3 = true,
            Special::Hello(2) if !error => self.resp3 = false,
            Special::Reset if !error => {
                self.db = Some(0);
                self.resp3 = false;
                self.pubsub = false;
            }
            Special::Monitor if !error => self.state = State::Switched,
            _ => {}
        }
        if !done {
            return Ok(());
        }
        p.op.outcome = outcome_of(&reply);
        p.progress = Progress::Done;
        let exec_at = self.queue.awaiting;
        self.queue.answered();
        if let Some(tx) = tx_end {
            self.end_transaction(exec_at, tx);
        }
        Ok(())
    }

    /// An element of EXEC's reply: the outcome of the next queued command.
    fn on_element(&mut self, element: Element) {
        let Some(Entry::Op(exec)) = self.queue.entries.get(self.queue.awaiting) else { return };
        let tx = exec.tx;
        self.exec_db.get_or_insert(self.db);
        while self.tx_cursor < self.queue.awaiting {
            if let Some(Entry::Op(p)) = self.queue.entries.get_mut(self.tx_cursor) {
                self.tx_cursor += 1;
                if p.progress != Progress::Queued || p.tx != tx {
                    continue;
                }
                let error = element.kind.is_error();
                p.op.outcome =
                    if error { Outcome::Error(error_code(&element.error)) } else { Outcome::Reply(element.kind) };
                p.op.transaction = Some(Transaction::Executed);
                p.op.database = self.db;
                if let Special::Select(db) = p.special {
                    if !error {
                        self.db = Some(db);
                    }
                }
                p.progress = Progress::Done;
                return;
            }
            self.tx_cursor += 1;
        }
    }

    /// EXEC (at `exec_at`) or DISCARD was answered: commands queued in its
    /// transaction that no element reached end with `outcome`, and commands
    /// of earlier transactions whose EXEC was lost with `Unknown`.
    fn end_transaction(&mut self, exec_at: usize, outcome: Transaction) {
        let Some(Entry::Op(exec)) = self.queue.entries.get(exec_at) else { return };
        let tx = exec.tx;
        for entry in self.queue.entries.iter_mut().take(exec_at) {
            if let Entry::Op(p) = entry {
                if p.progress == Progress::Queued {
                    let ours = p.tx == tx && outcome != Transaction::Executed;
                    p.op.transaction = Some(if ours { outcome } else { Transaction::Unknown });
                    p.progress = Progress::Done;
                }
            }
        }
        self.tx_cursor = 0;
    }

    /// Bytes past the capture hid where replies end; `cut` is what was seen
    /// of the reply they cut.
    fn go_unframed(&mut self, cut: Option<Reply>) {
        self.counters.resyncs += 1;
        self.reply_sync = Sync::Unframed;
        self.cut_reply = cut;
    }

    /// The unframed stretch of replies ends (a request chunk came, or the
    /// connection closed): the reply it cut ends with its last chunk, and
    /// commands still awaiting got their replies in the lost bytes.
    fn end_unframed(&mut self) {
        let end = self.last_reply_ts;
        // A cut push (or a RESP2 message) answers nothing: the reply was
        // somewhere after it.
        let maybe_message =
            |r: &Reply| r.kind == ReplyKind::Push || (r.kind == ReplyKind::Array && self.pubsub && !self.resp3);
        let cut = self.cut_reply.take().filter(|r| !maybe_message(r));
        let mut first = true;
        let mut i = self.queue.awaiting;
        while i < self.queue.entries.len() {
            match &mut self.queue.entries[i] {
                Entry::Op(p) if p.progress == Progress::Awaiting => {
                    match (&cut, first) {
                        (Some(reply), true) => {
                            p.op.response_start_ns = Some(reply.start_ns);
                            p.op.response_bytes += reply.bytes;
                            p.op.outcome = outcome_of(reply);
                        }
                        _ => p.op.outcome = Outcome::Unknown,
                    }
                    p.op.cut = true;
                    p.op.response_end_ns = end;
                    p.op.database = self.db;
                    p.progress =
                        if p.in_multi && first && cut.as_ref().is_some_and(|r| r.simple.eq_ignore_case(b"QUEUED")) {
                            Progress::Queued
                        } else {
                            Progress::Done
                        };
                    if p.progress == Progress::Done && p.in_multi {
                        p.op.transaction = Some(Transaction::Unknown);
                    }
                    if p.special == Special::Exec || p.special == Special::Discard {
                        self.end_transaction(i, Transaction::Unknown);
                    }
                }
                // Already counted as dropped when they were skipped.
                Entry::Skipped(n) => *n = 0,
                _ => {}
            }
            if !matches!(&self.queue.entries[i], Entry::Op(p) if p.progress == Progress::Done && p.op.outcome == Outcome::NoReply)
            {
                first = false;
            }
            i += 1;
        }
        if self.queue.entries.iter().any(|e| matches!(e, Entry::Unknown)) {
            self.lost_commands_ran();
        }
        self.queue.end_unframed();
        self.tx_cursor = 0;
        self.replies.reset();
        self.reply_sync = Sync::Resync;
    }

    fn drain(&mut self, out: &mut Vec<RedisOperation>) {
        let left = self.queue.drain(out);
        self.tx_cursor = self.tx_cursor.saturating_sub(left);
    }
}

/// The operation for a command, before its reply.
fn operation(cmd: &Command, role: Role, db: Option<u32>) -> RedisOperation {
    let name = &cmd.args[0];
    let command = name.token().map(CompactString::from);
    let subcommand = CONTAINERS
        .iter()
        .any(|c| name.eq_ignore_case(c))
        .then(|| cmd.args[1].token())
        .flatten()
        .filter(|s| s.len() <= 32)
        .map(CompactString::from);
    let procedure = if name.eq_ignore_case(b"EVALSHA") || name.eq_ignore_case(b"EVALSHA_RO") {
        let sha = cmd.args[1].token().filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        sha.map(CompactString::from)
    } else if name.eq_ignore_case(b"FCALL") || name.eq_ignore_case(b"FCALL_RO") {
        cmd.args[1].token().map(CompactString::from)
    } else {
        None
    };
    RedisOperation {
        role,
        command,
        subcommand,
        args: cmd.argc.saturating_sub(1),
        database: db,
        procedure,
        outcome: Outcome::NoResponse,
        transaction: None,
        cut: cmd.cut,
        request_start_ns: cmd.start_ns,
        request_end_ns: cmd.end_ns,
        response_start_ns: None,
        response_end_ns: cmd.end_ns,
        request_bytes: cmd.bytes,
        response_bytes: 0,
    }
}

/// Commands whose first argument names a subcommand (Redis documents
/// `CLIENT SETNAME`, `CONFIG GET`, ... as commands of their own).
const CONTAINERS: &[&[u8]] = &[
    b"ACL",
    b"CLIENT",
    b"CLUSTER",
    b"COMMAND",
    b"CONFIG",
    b"DEBUG",
    b"FUNCTION",
    b"LATENCY",
    b"MEMORY",
    b"MODULE",
    b"OBJECT",
    b"PUBSUB",
    b"SCRIPT",
    b"SLOWLOG",
    b"XGROUP",
    b"XINFO",
];

fn outcome_of(reply: &Reply) -> Outcome {
    if !reply.kind_known {
        Outcome::Unknown
    } else if reply.is_error() {
        Outcome::Error(error_code(&reply.error))
    } else {
        Outcome::Reply(reply.kind)
    }
}

/// An error's code: its first word, when that is upper case letters,
/// digits and `_` (Redis's convention: `ERR`, `WRONGTYPE`, `NOAUTH`).
/// The rest of the message is never kept: it can quote arguments.
fn error_code(error: &Prefix<{ super::reply::PEEK }>) -> Option<CompactString> {
    let b = error.bytes();
    let word_len = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
    // The word must have ended within what was seen.
    if word_len == b.len() && !error.is_whole() {
        return None;
    }
    let word = &b[..word_len];
    let valid = !word.is_empty()
        && word.len() <= 24
        && word.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && word[0].is_ascii_uppercase();
    valid.then(|| CompactString::from_utf8_lossy(word))
}

/// Clients speak first, so the first chunk is a command, unless it is
/// plainly a reply (we joined mid-connection): then the other way round.
fn infer_role(direction: Direction, data: &[u8]) -> Role {
    let reply = data.first().is_some_and(|b| b"+-:$_#,(!=%~>|".contains(b));
    Role::of(direction, !reply)
}
