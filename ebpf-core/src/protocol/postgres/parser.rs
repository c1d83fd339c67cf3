//! The per-connection state machine: frontend messages queue the backend
//! responses they will get (`Expect`, in order: the protocol answers every
//! request first-in-first-out), and operations complete when their last
//! expected response arrives.
//!
//! # Operations
//!
//! - Simple query (`Q`): one operation, ending at its ReadyForQuery; rows and
//!   affected counts add up over the statements of a multi-statement query.
//! - Extended query: Parse/Bind/Describe/Execute messages up to an Execute
//!   form one operation (`Execute`), carrying the text of the statement
//!   bound (named statements are remembered per connection: a statement
//!   prepared once and executed 100 times gives 100 operations with its
//!   text). A Parse not followed by an Execute before Sync is a `Prepare`.
//!   An ErrorResponse fails the operation it answers; the backend then
//!   ignores messages until Sync, and so do we.
//! - Function calls (`F`) are `FUNCTION_CALL` operations. COPY data, Flush,
//!   notices, notifications and parameter status changes pass through.
//!
//! # Lost framing
//!
//! - A frontend chunk whose uncaptured tail hides message boundaries (a
//!   Parse longer than `capture_size` followed by Bind/Execute/Sync):
//!   the operation being built keeps its (cut) text and completes at the
//!   first command completion or error the backend sends; every backend
//!   message up to the next frontend chunk belongs to that tail. If the
//!   backend was not at a ReadyForQuery when the client wrote again, the
//!   client pipelines and nothing can be matched: the parser is lost.
//! - A backend chunk whose uncaptured tail hides boundaries (a big result
//!   set): the backend is followed again from a chunk that ends with a
//!   ReadyForQuery, or from the next frontend chunk when only one sync point
//!   was outstanding (a client that does not pipeline has read everything
//!   by then). The operation ends with status Unknown and its row counts
//!   are lower bounds (counted while framed).
//! - `gap` (lost events), or joining a connection already open: nothing
//!   is matched until the backend has ended a chunk with ReadyForQuery and
//!   the frontend then starts a chunk with well-formed messages, with no
//!   frontend chunk in between. A client pipelining across a gap may have
//!   requests in flight that we never saw; that case is not detected.

use std::collections::VecDeque;
use std::sync::Arc;

use compact_str::CompactString;

use super::framer::{ends_with_ready, frames_cleanly, Framer, Msg, Next, Outcome};
use super::{MAX_IN_FLIGHT, MAX_PORTALS, MAX_STATEMENTS};
use crate::protocol::sql::first::{FirstBytes, Gathered};
use crate::protocol::sql::{DbCommand, DbError, DbOperation, DbStatus, Dialect, QueryInfo, SqlOptions};
use crate::protocol::{Chunk, Direction, Role};

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
const PROTOCOL_3: u32 = 3 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first ReadyForQuery: startup, authentication.
    Startup,
    Open,
    /// The connection switched to TLS: the rest is ciphertext (the
    /// plaintext comes through the TLS capture as its own stream).
    Tls,
    /// Waiting for a point to resynchronise on (see the module docs).
    Lost,
    /// A cancel request connection, or `close` was called.
    Done,
}

/// A backend response the frontend is waiting for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Authentication and session setup, until ReadyForQuery.
    Startup,
    /// A simple query (or function call): everything until ReadyForQuery.
    UntilReady(Option<u64>),
    ParseComplete(Option<u64>),
    BindComplete(Option<u64>),
    /// Statement describe: ParameterDescription, then RowDescription/NoData;
    /// portal describe: RowDescription/NoData.
    Describe {
        op: Option<u64>,
        statement: bool,
    },
    /// DataRow* then CommandComplete / EmptyQueryResponse / PortalSuspended.
    Execute(Option<u64>),
    CloseComplete,
    /// ReadyForQuery.
    Sync,
    /// The uncaptured tail of a frontend chunk: everything until the next
    /// frontend chunk (see the module docs).
    Unknown(Option<u64>),
}

impl Expect {
    fn op(self) -> Option<u64> {
        match self {
            Expect::UntilReady(op)
            | Expect::ParseComplete(op)
            | Expect::BindComplete(op)
            | Expect::Describe { op, .. }
            | Expect::Execute(op)
            | Expect::Unknown(op) => op,
            Expect::Startup | Expect::CloseComplete | Expect::Sync => None,
        }
    }

    /// Answered by a ReadyForQuery.
    fn is_sync_point(self) -> bool {
        matches!(self, Expect::UntilReady(_) | Expect::Sync | Expect::Startup)
    }
}

#[derive(Debug)]
struct Op {
    id: u64,
    command: DbCommand,
    query: Option<Arc<QueryInfo>>,
    start_ns: u64,
    status: Option<DbStatus>,
    /// Rows counted from DataRow messages.
    data_rows: u64,
    /// Rows as CommandComplete tags reported them (`SELECT n`), summed.
    tag_rows: Option<u64>,
    affected: Option<u64>,
    /// Expected responses still owed to this operation.
    owed: u32,
    /// Counts may have missed rows (framing lost in the result).
    counts_partial: bool,
    /// Its Parse succeeded or a Bind was sent: an error now is the
    /// execution's (for unknown frontend tails).
    past_parse: bool,
    done_ns: Option<u64>,
}

/// Turns one PostgreSQL connection's chunks into `DbOperation`s.
#[derive(Debug)]
pub struct PgParser {
    opts: SqlOptions,
    state: State,
    /// The direction frontend messages travel, once known.
    frontend_dir: Option<Direction>,
    front: Framer,
    back: Framer,
    namespace: Option<Arc<str>>,
    /// Prepared statements by name ("" is the unnamed one), bounded, oldest first.
    statements: VecDeque<(CompactString, Option<Arc<QueryInfo>>)>,
    portals: VecDeque<(CompactString, Option<Arc<QueryInfo>>)>,
    expect: VecDeque<Expect>,
    ops: VecDeque<Op>,
    next_id: u64,
    /// The operation extended-protocol messages are adding to.
    building: Option<u64>,
    /// The backend's framing is lost until a resynchronisation point.
    back_unframed: bool,
    /// The last backend message was a ReadyForQuery (for `Expect::Unknown`).
    back_ready: bool,
    /// Lost state: the last backend chunk ended with ReadyForQuery, and no
    /// frontend chunk came since.
    lost_back_ready: bool,
    lost_front_seen: bool,
    msgs: Vec<Msg>,
    scratch: Vec<u8>,
    /// The first bytes of the connection, while too few to tell a startup
    /// packet (8 bytes) apart.
    first: FirstBytes,
    tls: bool,
    /// Timestamp of the last backend chunk.
    last_back_ts: u64,
    /// Operations dropped because they could not be completed with certainty.
    dropped: u64,
}

impl PgParser {
    /// A parser for a connection followed from its first byte.
    pub fn new(opts: SqlOptions) -> Self {
        PgParser {
            opts,
            state: State::Startup,
            frontend_dir: None,
            front: Framer::new(true),
            back: Framer::new(false),
            namespace: None,
            statements: VecDeque::new(),
            portals: VecDeque::new(),
            expect: VecDeque::new(),
            ops: VecDeque::new(),
            next_id: 0,
            building: None,
            back_unframed: false,
            back_ready: false,
            lost_back_ready: false,
            lost_front_seen: false,
            msgs: Vec::new(),
            scratch: Vec::new(),
            first: FirstBytes::default(),
            tls: false,
            last_back_ts: 0,
            dropped: 0,
        }
    }

    /// A parser for a connection whose start was missed (or the plaintext
    /// side of a TLS connection, which starts with the StartupMessage: use
    /// `new` for that). `role` says which way the frontend's bytes go.
    pub fn joined(opts: SqlOptions, role: Role) -> Self {
        let mut p = Self::new(opts);
        p.frontend_dir = Some(role.request_direction());
        p.enter_lost();
        // A connection found open is taken to be idle.
        p.lost_back_ready = true;
        p
    }

    /// The database the connection uses, once the startup was seen.
    pub fn namespace(&self) -> Option<&Arc<str>> {
        self.namespace.as_ref()
    }

    /// Whether the connection went to TLS on this stream.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Nothing more to follow: the connection terminated, failed to
    /// authenticate, was a cancel request, or was not PostgreSQL.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Operations given up because their responses could not be matched.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn role(&self) -> Role {
        self.frontend_dir.map_or(Role::Client, |d| Role::of(d, true))
    }

    /// Feed one chunk; push every operation it completes onto `out`.
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        if matches!(self.state, State::Tls | State::Done) {
            return;
        }
        let frontend = match self.frontend_dir {
            Some(d) => d == chunk.direction,
            None => return self.first_bytes(chunk, out),
        };
        if self.state == State::Lost && !self.rejoin(frontend, chunk) {
            return;
        }
        if frontend {
            self.frontend_chunk(chunk);
        } else {
            self.backend_chunk(chunk);
        }
        self.drain(out);
    }

    /// Before the direction is known: only a startup-phase packet (8 bytes
    /// at least, which a syscall may deliver piecemeal) tells it.
    fn first_bytes(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        if self.state != State::Startup {
            return;
        }
        if self.first.is_empty() && looks_like_startup(chunk.data) {
            self.frontend_dir = Some(chunk.direction);
            self.front.next = Next::Untyped;
            return self.feed(chunk, out);
        }
        let (first, ts_ns) = match self.first.gather(chunk, 8 * 1024) {
            Gathered::More => return,
            Gathered::Refused => {
                self.state = State::Done;
                return;
            }
            Gathered::Whole { bytes, ts_ns } => (bytes, ts_ns),
        };
        if !looks_like_startup(&first) {
            self.state = State::Done;
            return;
        }
        self.frontend_dir = Some(chunk.direction);
        self.front.next = Next::Untyped;
        let whole = Chunk { ts_ns, direction: chunk.direction, data: &first, total_len: first.len() as u64 };
        self.feed(&whole, out);
    }

    /// Events of this connection were lost: drop what was in flight and
    /// wait for a point to resynchronise on.
    pub fn gap(&mut self) {
        if matches!(self.state, State::Tls | State::Done) {
            return;
        }
        if self.state == State::Startup && self.frontend_dir.is_none() {
            self.state = State::Done;
            return;
        }
        self.enter_lost();
    }

    /// The connection closed: operations still waiting for responses are
    /// dropped (their outcome is unknown), completed ones are pushed.
    pub fn close(&mut self, out: &mut Vec<DbOperation>) {
        self.drain(out);
        self.dropped += self.ops.len() as u64;
        self.ops.clear();
        self.expect.clear();
        self.state = State::Done;
    }

    fn enter_lost(&mut self) {
        self.dropped += self.ops.len() as u64;
        self.ops.clear();
        self.expect.clear();
        self.building = None;
        self.front.reset();
        self.back.reset();
        self.back_unframed = false;
        self.state = State::Lost;
        self.lost_back_ready = false;
        self.lost_front_seen = false;
    }

    /// In the Lost state: whether this chunk resynchronises the connection
    /// (then it is parsed), else it is only noted.
    fn rejoin(&mut self, frontend: bool, chunk: &Chunk<'_>) -> bool {
        if !frontend {
            self.lost_back_ready = ends_with_ready(chunk.data, chunk.total_len);
            if self.lost_back_ready {
                self.lost_front_seen = false;
            }
            return false;
        }
        if self.lost_back_ready && !self.lost_front_seen && frames_cleanly(true, chunk.data, chunk.total_len) {
            self.state = State::Open;
            self.front.reset();
            self.back.reset();
            self.front.next = Next::Typed;
            self.back.next = Next::Typed;
            return true;
        }
        self.lost_front_seen = true;
        false
    }

    fn frontend_chunk(&mut self, chunk: &Chunk<'_>) {
        // The backend answered everything of an unknown tail once the
        // frontend writes again, if it ended at a ReadyForQuery.
        if self.expect.front().is_some_and(|e| matches!(e, Expect::Unknown(_))) {
            if !self.back_ready || self.expect.len() > 1 {
                self.enter_lost();
                self.lost_front_seen = true;
                return;
            }
            if let Some(Expect::Unknown(op)) = self.expect.pop_front() {
                self.settle_unknown(op);
            }
        }
        if self.back_unframed {
            // A client that does not pipeline has read the whole response.
            if self.expect.iter().filter(|e| e.is_sync_point()).count() <= 1 {
                self.finish_unframed(self.last_back_ts);
            } else {
                self.enter_lost();
                self.lost_front_seen = true;
                return;
            }
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.msgs.clear();
        self.scratch.clear();
        let outcome = self.front.feed(chunk.data, uncaptured, chunk.ts_ns, &mut self.msgs, &mut self.scratch);
        let msgs = std::mem::take(&mut self.msgs);
        let scratch = std::mem::take(&mut self.scratch);
        for m in &msgs {
            self.frontend_message(*m, &scratch[m.start..m.end]);
            if self.state != State::Open && self.state != State::Startup {
                break;
            }
        }
        self.msgs = msgs;
        self.scratch = scratch;
        match outcome {
            Outcome::Framed => {}
            Outcome::TailLost => {
                // Messages we cannot see: the operation being built (if
                // any) is answered somewhere in what follows.
                let op = self.building.take();
                if let Some(op) = op {
                    self.owe(op);
                }
                self.push_expect(Expect::Unknown(op));
                self.front.next = Next::Typed;
            }
            Outcome::Garbage => self.enter_lost(),
        }
    }

    fn backend_chunk(&mut self, chunk: &Chunk<'_>) {
        self.last_back_ts = chunk.ts_ns;
        if self.back_unframed {
            if ends_with_ready(chunk.data, chunk.total_len) {
                self.finish_unframed(chunk.ts_ns);
            }
            return;
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.msgs.clear();
        self.scratch.clear();
        let outcome = self.back.feed(chunk.data, uncaptured, chunk.ts_ns, &mut self.msgs, &mut self.scratch);
        let msgs = std::mem::take(&mut self.msgs);
        let scratch = std::mem::take(&mut self.scratch);
        for m in &msgs {
            self.backend_message(*m, &scratch[m.start..m.end], chunk.ts_ns);
            if matches!(self.state, State::Lost | State::Tls | State::Done) {
                break;
            }
        }
        self.msgs = msgs;
        self.scratch = scratch;
        match outcome {
            Outcome::Framed => {}
            Outcome::TailLost => {
                if self.expect.front().is_some_and(|e| matches!(e, Expect::Unknown(_))) {
                    // Everything belongs to the unknown tail anyway.
                    self.back_ready = false;
                } else {
                    self.back_unframed = true;
                    self.mark_partial();
                }
            }
            Outcome::Garbage => self.enter_lost(),
        }
    }

    /// Backend framing came back at a ReadyForQuery (or the client wrote
    /// again): the responses up to the first sync point are complete,
    /// with an unknown outcome for operations not already failed.
    fn finish_unframed(&mut self, ts: u64) {
        self.back_unframed = false;
        self.back.reset();
        while let Some(e) = self.expect.pop_front() {
            if let Some(op) = e.op() {
                self.resolve(op, ts, DbStatus::Unknown);
            }
            if e.is_sync_point() {
                break;
            }
        }
        // With more sync points in flight, the ReadyForQuery we resumed at
        // may have been any of theirs.
        if self.expect.iter().any(|e| e.is_sync_point() || matches!(e, Expect::Unknown(_))) {
            self.enter_lost();
        }
    }

    fn settle_unknown(&mut self, op: Option<u64>) {
        if let Some(id) = op {
            if let Some(o) = self.ops.iter_mut().find(|o| o.id == id) {
                if o.done_ns.is_none() {
                    // No completion was seen: drop it (`drain` counts it).
                    o.owed = 0;
                    o.done_ns = Some(u64::MAX);
                }
            }
        }
        self.back_ready = false;
    }

    fn mark_partial(&mut self) {
        if let Some(op) = self.expect.front().and_then(|e| e.op()) {
            if let Some(o) = self.ops.iter_mut().find(|o| o.id == op) {
                o.counts_partial = true;
            }
        }
    }

    // ---- frontend -------------------------------------------------------

    fn frontend_message(&mut self, m: Msg, body: &[u8]) {
        if m.typ == 0 {
            self.startup_packet(body);
            return;
        }
        if self.state == State::Startup {
            // Password / SASL messages: nothing to keep.
            if m.typ == b'p' {
                return;
            }
            // The first request after an unseen ReadyForQuery: fine.
        }
        match m.typ {
            b'Q' => {
                let text = cstr(body);
                let complete = m.complete && text.len() + 1 == m.body_len;
                let query = Some(QueryInfo::analyze(text, complete, Dialect::Postgres, self.opts));
                self.building = None;
                let id = self.new_op(DbCommand::Query, query, m.ts);
                self.push_expect(Expect::UntilReady(Some(id)));
            }
            b'P' => {
                let name = cstr(body);
                let text = cstr(body.get(name.len() + 1..).unwrap_or_default());
                let complete = m.complete && name.len() + text.len() + 2 < m.body_len;
                let name = CompactString::from_utf8_lossy(name);
                let query = Some(QueryInfo::analyze(text, complete, Dialect::Postgres, self.opts));
                remember(&mut self.statements, name, query.clone(), MAX_STATEMENTS);
                let id = self.new_op(DbCommand::Prepare, query, m.ts);
                self.building = Some(id);
                self.push_expect(Expect::ParseComplete(Some(id)));
            }
            b'B' => {
                let portal = cstr(body);
                let stmt = cstr(body.get(portal.len() + 1..).unwrap_or_default());
                let query = lookup(&self.statements, stmt);
                let portal = CompactString::from_utf8_lossy(portal);
                remember(&mut self.portals, portal, query.clone(), MAX_PORTALS);
                let id = match self.building_op() {
                    Some(id) => id,
                    None => {
                        let id = self.new_op(DbCommand::Other("BIND"), query.clone(), m.ts);
                        self.building = Some(id);
                        id
                    }
                };
                if let Some(o) = self.op_mut(id) {
                    o.past_parse = true;
                    if query.is_some() {
                        o.query = query;
                    }
                }
                self.push_expect(Expect::BindComplete(Some(id)));
            }
            b'D' => {
                let statement = body.first() == Some(&b'S');
                let op = self.building_op();
                self.push_expect(Expect::Describe { op, statement });
            }
            b'E' => {
                let portal = cstr(body);
                let query = lookup(&self.portals, portal);
                let id = match self.building.take() {
                    Some(id) if self.op_mut(id).is_some() => id,
                    _ => self.new_op(DbCommand::Execute, query.clone(), m.ts),
                };
                if let Some(o) = self.op_mut(id) {
                    o.command = DbCommand::Execute;
                    if o.query.is_none() {
                        o.query = query;
                    }
                }
                self.push_expect(Expect::Execute(Some(id)));
            }
            b'C' => {
                let name = cstr(body.get(1..).unwrap_or_default());
                match body.first() {
                    Some(b'S') => forget(&mut self.statements, name),
                    Some(b'P') => forget(&mut self.portals, name),
                    _ => {}
                }
                self.push_expect(Expect::CloseComplete);
            }
            b'S' => {
                self.building = None;
                self.push_expect(Expect::Sync);
            }
            b'F' => {
                self.building = None;
                let id = self.new_op(DbCommand::Other("FUNCTION_CALL"), None, m.ts);
                self.push_expect(Expect::UntilReady(Some(id)));
            }
            b'X' => self.state = State::Done,
            // Flush, COPY data/done/fail: no response of their own.
            _ => {}
        }
    }

    fn startup_packet(&mut self, body: &[u8]) {
        if body.len() < 4 {
            self.state = State::Done;
            return;
        }
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match code {
            SSL_REQUEST | GSSENC_REQUEST => self.back.next = Next::OneByte,
            CANCEL_REQUEST => self.state = State::Done,
            c if c >> 16 == PROTOCOL_3 >> 16 => {
                let mut params = body[4..].split(|&b| b == 0);
                while let (Some(k), Some(v)) = (params.next(), params.next()) {
                    if k.is_empty() {
                        break;
                    }
                    if k == b"database" && !v.is_empty() {
                        self.namespace = Some(Arc::from(String::from_utf8_lossy(v).as_ref()));
                    }
                }
                self.push_expect(Expect::Startup);
            }
            _ => self.state = State::Done,
        }
    }

    fn building_op(&self) -> Option<u64> {
        self.building.filter(|id| self.ops.iter().any(|o| o.id == *id))
    }

    fn new_op(&mut self, command: DbCommand, query: Option<Arc<QueryInfo>>, ts: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.ops.len() >= MAX_IN_FLIGHT {
            // A peer that never answers: forget the oldest.
            self.ops.pop_front();
            self.dropped += 1;
        }
        self.ops.push_back(Op {
            id,
            command,
            query,
            start_ns: ts,
            status: None,
            data_rows: 0,
            tag_rows: None,
            affected: None,
            owed: 0,
            counts_partial: false,
            past_parse: false,
            done_ns: None,
        });
        id
    }

    fn op_mut(&mut self, id: u64) -> Option<&mut Op> {
        self.ops.iter_mut().find(|o| o.id == id)
    }

    fn owe(&mut self, id: u64) {
        if let Some(o) = self.op_mut(id) {
            o.owed += 1;
        }
    }

    fn push_expect(&mut self, e: Expect) {
        if self.expect.len() >= MAX_IN_FLIGHT * 4 {
            self.enter_lost();
            return;
        }
        if let Some(op) = e.op() {
            if !matches!(e, Expect::Unknown(_)) {
                self.owe(op);
            }
        }
        self.expect.push_back(e);
    }

    // ---- backend --------------------------------------------------------

    fn backend_message(&mut self, m: Msg, body: &[u8], chunk_ts: u64) {
        let ts = chunk_ts;
        if m.one_byte {
            match m.typ {
                b'S' | b'G' => {
                    self.state = State::Tls;
                    self.tls = true;
                }
                b'N' => self.front.next = Next::Untyped,
                _ => self.state = State::Done,
            }
            return;
        }
        self.back_ready = m.typ == b'Z';
        if matches!(m.typ, b'N' | b'A' | b'S') {
            // Notices, notifications, parameter status: at any time.
            return;
        }
        let Some(&head) = self.expect.front() else {
            // A response to nothing we saw: we joined late or lost events.
            if self.state == State::Open && m.typ != b'Z' {
                self.enter_lost();
            }
            return;
        };
        match head {
            Expect::Startup => match m.typ {
                b'Z' => {
                    self.expect.pop_front();
                    self.state = State::Open;
                }
                b'E' => self.state = State::Done,
                _ => {}
            },
            // The unseen messages' responses: a completion means the
            // operation was executed, an error after ParseComplete too.
            Expect::Unknown(op) => match m.typ {
                b'C' | b'I' | b's' => {
                    self.executed_in_tail(op, true);
                    self.complete(op, ts, DbStatus::Ok, Some(body));
                }
                b'E' => {
                    self.executed_in_tail(op, false);
                    let err = error(body);
                    self.complete(op, ts, err, None);
                }
                b'D' => {
                    self.executed_in_tail(op, true);
                    self.count_row(op);
                }
                b'1' => {
                    if let Some(o) = op.and_then(|id| self.op_mut(id)) {
                        o.past_parse = true;
                    }
                }
                _ => {}
            },
            Expect::UntilReady(op) => match m.typ {
                b'D' => self.count_row(op),
                b'C' => self.command_complete(op, body),
                b'E' => {
                    let err = error(body);
                    if let Some(o) = op.and_then(|id| self.op_mut(id)) {
                        o.status = Some(err);
                    }
                }
                b'Z' => {
                    self.expect.pop_front();
                    self.resolve_opt(op, ts, DbStatus::Ok);
                }
                _ => {}
            },
            Expect::ParseComplete(op)
            | Expect::BindComplete(op)
            | Expect::Describe { op, .. }
            | Expect::Execute(op)
                if m.typ == b'E' =>
            {
                let err = error(body);
                self.expect.pop_front();
                self.resolve_opt(op, ts, err);
                // The backend skips everything up to the next Sync.
                while let Some(&e) = self.expect.front() {
                    if e == Expect::Sync || matches!(e, Expect::Unknown(_)) {
                        break;
                    }
                    self.expect.pop_front();
                    if let Some(other) = e.op().filter(|o| Some(*o) != op) {
                        self.forget_op(other);
                    }
                }
            }
            Expect::ParseComplete(op) if m.typ == b'1' => {
                if let Some(o) = op.and_then(|id| self.op_mut(id)) {
                    o.past_parse = true;
                }
                self.answered(op, ts);
            }
            Expect::BindComplete(op) if m.typ == b'2' => self.answered(op, ts),
            Expect::Describe { op, statement } => match m.typ {
                b't' if statement => {}
                b'T' | b'n' => self.answered(op, ts),
                _ => self.unexpected(m),
            },
            Expect::Execute(op) => match m.typ {
                b'D' => self.count_row(op),
                b'C' => {
                    self.command_complete(op, body);
                    self.answered(op, ts);
                }
                b'I' | b's' => self.answered(op, ts),
                // COPY inside an Execute.
                b'G' | b'H' | b'W' | b'd' | b'c' => {}
                _ => self.unexpected(m),
            },
            Expect::CloseComplete if m.typ == b'3' => {
                self.expect.pop_front();
            }
            Expect::Sync if m.typ == b'Z' => {
                self.expect.pop_front();
            }
            _ => self.unexpected(m),
        }
    }

    fn unexpected(&mut self, _m: Msg) {
        // A response that does not fit what was asked: the streams are out
        // of step (pipelining across lost events, or a protocol we do not
        // know). Nothing after this can be matched with certainty.
        self.enter_lost();
    }

    fn count_row(&mut self, op: Option<u64>) {
        if let Some(o) = op.and_then(|id| self.op_mut(id)) {
            o.data_rows += 1;
        }
    }

    /// CommandComplete: `SELECT n`, `INSERT 0 n`, `UPDATE n`, `COPY n` ...
    fn command_complete(&mut self, op: Option<u64>, body: &[u8]) {
        let tag = cstr(body);
        let mut words = tag.split(|&b| b == b' ');
        let verb = words.next().unwrap_or_default();
        let n = tag.rsplit(|&b| b == b' ').next().and_then(|w| std::str::from_utf8(w).ok()?.parse::<u64>().ok());
        let Some(o) = op.and_then(|id| self.op_mut(id)) else {
            return;
        };
        match (verb, n) {
            (b"SELECT" | b"FETCH" | b"MOVE", Some(n)) => {
                // The tag counts every row, even DataRows we did not frame.
                o.tag_rows = Some(o.tag_rows.unwrap_or(0) + n);
            }
            (b"INSERT" | b"UPDATE" | b"DELETE" | b"MERGE" | b"COPY", Some(n)) => {
                o.affected = Some(o.affected.unwrap_or(0) + n);
            }
            _ => {}
        }
    }

    /// One expected response of `op` arrived (and was popped here).
    fn answered(&mut self, op: Option<u64>, ts: u64) {
        self.expect.pop_front();
        if let Some(id) = op {
            if let Some(o) = self.op_mut(id) {
                o.owed = o.owed.saturating_sub(1);
                if o.owed == 0 && o.done_ns.is_none() {
                    o.done_ns = Some(ts);
                    if o.status.is_none() {
                        o.status = Some(DbStatus::Ok);
                    }
                }
            }
        }
    }

    fn executed_in_tail(&mut self, op: Option<u64>, surely: bool) {
        if let Some(o) = op.and_then(|id| self.op_mut(id)) {
            if o.done_ns.is_none() && o.command == DbCommand::Prepare && (surely || o.past_parse) {
                o.command = DbCommand::Execute;
            }
        }
    }

    /// For `Expect::Unknown`: the first completion seen ends the operation.
    fn complete(&mut self, op: Option<u64>, ts: u64, status: DbStatus, tag: Option<&[u8]>) {
        if let Some(tag) = tag {
            if op.and_then(|id| self.ops.iter().find(|o| o.id == id)).is_some_and(|o| o.done_ns.is_none()) {
                self.command_complete(op, tag);
            }
        }
        if let Some(o) = op.and_then(|id| self.op_mut(id)) {
            if o.done_ns.is_none() {
                o.done_ns = Some(ts);
                o.status = Some(status);
                o.owed = 0;
            }
        }
    }

    fn resolve_opt(&mut self, op: Option<u64>, ts: u64, status: DbStatus) {
        if let Some(id) = op {
            self.resolve(id, ts, status);
        }
    }

    /// Ends `id` now with `status` unless it already failed.
    fn resolve(&mut self, id: u64, ts: u64, status: DbStatus) {
        if let Some(o) = self.op_mut(id) {
            if o.done_ns.is_none() {
                o.done_ns = Some(ts);
                o.owed = 0;
                if !matches!(o.status, Some(DbStatus::Error(_))) {
                    o.status = Some(status);
                }
            }
        }
    }

    fn forget_op(&mut self, id: u64) {
        if let Some(pos) = self.ops.iter().position(|o| o.id == id && o.done_ns.is_none()) {
            self.ops.remove(pos);
        }
    }

    /// Pushes completed operations, oldest first, while the oldest is done.
    fn drain(&mut self, out: &mut Vec<DbOperation>) {
        while let Some(o) = self.ops.front() {
            let Some(end) = o.done_ns else {
                break;
            };
            let Some(o) = self.ops.pop_front() else {
                break;
            };
            let emit = end != u64::MAX
                && matches!(
                    o.command,
                    DbCommand::Query | DbCommand::Execute | DbCommand::Prepare | DbCommand::Other("FUNCTION_CALL")
                );
            if !emit {
                if end == u64::MAX {
                    self.dropped += 1;
                }
                continue;
            }
            let status = o.status.unwrap_or(DbStatus::Ok);
            let status = if o.counts_partial && status == DbStatus::Ok { DbStatus::Unknown } else { status };
            out.push(DbOperation {
                system: "postgresql",
                command: o.command,
                query: o.query,
                start_ns: o.start_ns,
                end_ns: end,
                status,
                returned_rows: o
                    .tag_rows
                    .or((o.data_rows > 0).then_some(o.data_rows))
                    .filter(|_| matches!(o.command, DbCommand::Query | DbCommand::Execute)),
                affected_rows: o.affected,
                namespace: self.namespace.clone(),
                role: self.role(),
            });
        }
    }
}

/// A StartupMessage (protocol 3.x), SSLRequest, GSSENCRequest or
/// CancelRequest: `length (8..10000) | code`.
pub fn looks_like_startup(data: &[u8]) -> bool {
    if data.len() < 8 {
        return false;
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let code = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    match code {
        SSL_REQUEST | GSSENC_REQUEST => len == 8,
        CANCEL_REQUEST => len == 16,
        c => c >> 16 == 3 && (9..=10_000).contains(&len),
    }
}

/// The bytes up to the first NUL (all of them if there is none: cut).
fn cstr(b: &[u8]) -> &[u8] {
    memchr::memchr(0, b).map_or(b, |n| &b[..n])
}

fn remember(
    map: &mut VecDeque<(CompactString, Option<Arc<QueryInfo>>)>,
    name: CompactString,
    q: Option<Arc<QueryInfo>>,
    max: usize,
) {
    if let Some(slot) = map.iter_mut().find(|(n, _)| *n == name) {
        slot.1 = q;
        return;
    }
    if map.len() >= max {
        map.pop_front();
    }
    map.push_back((name, q));
}

fn lookup(map: &VecDeque<(CompactString, Option<Arc<QueryInfo>>)>, name: &[u8]) -> Option<Arc<QueryInfo>> {
    map.iter().rev().find(|(n, _)| n.as_bytes() == name).and_then(|(_, q)| q.clone())
}

fn forget(map: &mut VecDeque<(CompactString, Option<Arc<QueryInfo>>)>, name: &[u8]) {
    map.retain(|(n, _)| n.as_bytes() != name);
}

/// An ErrorResponse's SQLSTATE (its other fields can quote data: not kept).
fn error(body: &[u8]) -> DbStatus {
    let mut code = None;
    for field in body.split(|&b| b == 0) {
        if let Some((b'C', v)) = field.split_first() {
            if v.len() == 5 && v.iter().all(u8::is_ascii_alphanumeric) {
                code = Some(CompactString::from_utf8_lossy(v));
            }
        }
    }
    match code {
        Some(code) => DbStatus::Error(DbError { sqlstate: Some(code.clone()), code }),
        None => DbStatus::Error(DbError {
            code: CompactString::const_new(crate::protocol::db::ERROR_OTHER),
            sqlstate: None,
        }),
    }
}
