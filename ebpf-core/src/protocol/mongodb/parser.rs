//! The per-connection state machine: each request is remembered by its
//! `requestID` until the reply whose `responseTo` names it. A request with
//! `moreToCome` (an unacknowledged write) gets no reply and completes when
//! sent; a reply with `moreToCome` (exhaust cursors, streaming `hello`) is
//! followed by another answering it, which completes a further operation.
//!
//! # Lost framing and lost events
//! When uncaptured bytes hide where the next message starts, a header is
//! impossible, or after `gap`, the direction waits for a chunk (or a
//! header read on its own, then a chunk, as drivers and servers read) that
//! starts with a plausible header: for requests `responseTo` 0, a known
//! opcode and, for OP_MSG, valid flags and a first section that starts a
//! document with a command-like first key; for replies, a `responseTo`
//! naming a request in flight. Nothing is paired by position.

use std::collections::VecDeque;

use compact_str::CompactString;

use super::bson::{cstring, i32_at, Doc};
use super::{MongoOperation, MongoStatus, MAX_IN_FLIGHT, OP_COMPRESSED, OP_MSG, OP_QUERY, OP_REPLY};
use crate::protocol::lenframe::{Body, Frame, Framer, Head, Outcome};
use crate::protocol::{Chunk, Direction, Role};

/// Largest message: the server's `maxMessageSizeBytes` (48 MB), with margin.
pub(super) const MAX_MESSAGE: i32 = 64 << 20;

/// Body bytes kept per message: a command's first keys and `$db`, a reply's
/// status fields and cursor batch headers.
const KEEP_BYTES: usize = 4096;

/// Longest collection, database or command name kept.
const MAX_NAME: usize = 255;

/// Bytes gathered at most to tell whether a message starts: a header,
/// OP_MSG flags, a section kind and the first key of the command.
const DECIDE_BYTES: usize = 96;

/// OP_MSG flag bits: checksumPresent, moreToCome, exhaustAllowed.
const CHECKSUM: u32 = 1;
const MORE_TO_COME: u32 = 2;
const KNOWN_FLAGS: u32 = 1 | 2 | 1 << 16;

pub(super) fn head(h: &[u8]) -> Head {
    if h.len() < 16 {
        return Head::Need(16);
    }
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let op = i32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if !(16..=MAX_MESSAGE).contains(&len) || !matches!(op, OP_REPLY | OP_QUERY | OP_COMPRESSED | OP_MSG | 2001..=2007) {
        return Head::Bad;
    }
    Head::Frame { head_len: 16, body_len: (len - 16) as u64 }
}

pub(super) fn header_fields(h: &[u8]) -> (i32, i32, i32) {
    let at = |i: usize| i32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (at(4), at(8), at(12))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Open,
    Done,
}

/// What a request says.
#[derive(Debug, Clone, Default)]
struct Command {
    name: Option<CompactString>,
    collection: Option<CompactString>,
    database: Option<CompactString>,
    batch_size: Option<u64>,
    more_to_come: bool,
}

#[derive(Debug)]
struct InFlight {
    request_id: i32,
    op_code: i32,
    compressed: bool,
    cmd: Command,
    start_ns: u64,
    /// The reply direction has been followed since the request was sent:
    /// if the connection closes before the reply, none came.
    certain: bool,
    /// A further reply of a `moreToCome` stream (exhaust cursor, streaming
    /// `hello`): the server sends it when it has something, so a close
    /// before it is the client ending the stream, not a missing reply.
    follow_up: bool,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    in_flight: VecDeque<InFlight>,
    unanswered: u64,
    bad: bool,
    /// The reply direction is followed (framed from a known start).
    replies_synced: bool,
}

/// Turns one MongoDB connection's chunks into `MongoOperation`s.
#[derive(Debug)]
pub struct MongoParser {
    state: State,
    requests: Option<Direction>,
    /// Framers, sync flags and header-only reads: [requests, replies].
    framers: [Framer; 2],
    synced: [bool; 2],
    pending: [Vec<u8>; 2],
    pending_ts: [u64; 2],
    /// A request was recognised: the connection is MongoDB.
    started: bool,
    conn: Conn,
}

impl MongoParser {
    /// A parser for a connection followed from its first byte: the client
    /// speaks first.
    pub fn new() -> Self {
        MongoParser {
            state: State::Start,
            requests: None,
            framers: [Framer::new(head, KEEP_BYTES), Framer::new(head, KEEP_BYTES)],
            synced: [true, true],
            pending: [Vec::new(), Vec::new()],
            pending_ts: [0, 0],
            started: false,
            conn: Conn {
                role: Role::Client,
                in_flight: VecDeque::new(),
                unanswered: 0,
                bad: false,
                replies_synced: true,
            },
        }
    }

    /// A parser for a connection joined mid-stream, the traced process being `role`.
    pub fn joined(role: Role) -> Self {
        let mut p = MongoParser::new();
        p.state = State::Open;
        p.started = true;
        p.set_role(role);
        p.synced = [false, false];
        p
    }

    fn set_role(&mut self, role: Role) {
        self.conn.role = role;
        self.requests = Some(role.request_direction());
    }

    /// Requests whose replies never came (lost events, closed early).
    pub fn unanswered(&self) -> u64 {
        self.conn.unanswered
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MongoOperation>) {
        if self.state == State::Done || chunk.data.is_empty() && chunk.total_len == 0 {
            return;
        }
        if self.state == State::Start {
            self.requests = Some(chunk.direction);
            self.synced = [false, true];
            self.state = State::Open;
            let role = if chunk.direction == Direction::Egress { Role::Client } else { Role::Server };
            self.conn.role = role;
        }
        let side = usize::from(Some(chunk.direction) != self.requests);
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        if !self.synced[side] {
            return self.resync(side, chunk, out);
        }
        self.frame(side, chunk.data, uncaptured, chunk.ts_ns, out);
    }

    fn frame(&mut self, side: usize, data: &[u8], uncaptured: u64, ts: u64, out: &mut Vec<MongoOperation>) {
        let conn = &mut self.conn;
        conn.replies_synced = self.synced[1];
        let mut outcome = self.framers[side].feed(data, uncaptured, ts, &mut |f| {
            if side == 0 {
                conn.on_request(f, out)
            } else {
                conn.on_reply(f, out)
            }
        });
        if std::mem::take(&mut conn.bad) {
            self.framers[side].reset();
            outcome = Outcome::Garbage;
        }
        if outcome != Outcome::Framed {
            self.synced[side] = false;
            if side == 1 {
                self.conn.lose_replies();
            }
        }
    }

    /// Waits for a chunk that starts a message (see the module docs). The
    /// connection's first request is checked the same way: a connection
    /// that does not start with one is not MongoDB.
    fn resync(&mut self, side: usize, chunk: &Chunk<'_>, out: &mut Vec<MongoOperation>) {
        let complete = chunk.data.len() as u64 == chunk.total_len;
        let mut pending = std::mem::take(&mut self.pending[side]);
        if pending.is_empty() {
            self.pending_ts[side] = chunk.ts_ns;
        }
        let mut before = pending.len();
        let decide = |p: &Self, b: &[u8]| if side == 0 { request_start(b) } else { p.reply_start(b) };
        pending.extend_from_slice(&chunk.data[..chunk.data.len().min(DECIDE_BYTES - before.min(DECIDE_BYTES))]);
        let mut verdict = decide(self, &pending);
        if verdict == Some(false) && before > 0 {
            // What was gathered was not the start of a message: try the chunk alone.
            pending.drain(..before);
            before = 0;
            self.pending_ts[side] = chunk.ts_ns;
            verdict = decide(self, &pending);
        }
        match verdict {
            Some(true) => {}
            None if complete && pending.len() < DECIDE_BYTES => {
                // A header read on its own, or a start too short to tell.
                self.pending[side] = pending;
                return;
            }
            _ => {
                if side == 0 && !self.started {
                    self.state = State::Done;
                }
                return;
            }
        }
        pending.truncate(before);
        self.synced[side] = true;
        self.started |= side == 0;
        self.framers[side].reset();
        if !pending.is_empty() {
            let ts = self.pending_ts[side];
            self.frame(side, &pending, 0, ts, out);
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.frame(side, chunk.data, uncaptured, chunk.ts_ns, out);
    }

    /// Whether `b` starts a reply to a request in flight; `None`: too short to tell.
    fn reply_start(&self, b: &[u8]) -> Option<bool> {
        if b.len() < 16 {
            return None;
        }
        if !matches!(head(&b[..16]), Head::Frame { .. }) {
            return Some(false);
        }
        let (_, response_to, op) = header_fields(b);
        Some(
            matches!(op, OP_MSG | OP_REPLY | OP_COMPRESSED)
                && self.conn.in_flight.iter().any(|r| r.request_id == response_to),
        )
    }

    /// Lost events: both directions wait for a point to resynchronise on.
    pub fn gap(&mut self) {
        if self.state == State::Start {
            self.state = State::Done;
            return;
        }
        self.synced = [false, false];
        self.conn.lose_replies();
        self.pending = [Vec::new(), Vec::new()];
        for f in &mut self.framers {
            f.reset();
        }
    }

    /// The connection closed at `ts_ns`: a request still waiting is reported
    /// without a reply when none can have been missed (the reply direction
    /// was followed since it was sent), else counted unanswered. The
    /// further replies a `moreToCome` stream would have sent are neither.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<MongoOperation>) {
        let synced = self.synced[1] && self.pending[1].is_empty();
        for req in std::mem::take(&mut self.conn.in_flight) {
            if req.follow_up {
                continue;
            }
            if req.certain && synced {
                let mut op = self.conn.operation(req, None, ts_ns);
                op.status = MongoStatus::NoResponse;
                out.push(op);
            } else {
                self.conn.unanswered += 1;
            }
        }
        self.state = State::Done;
    }
}

impl Default for MongoParser {
    fn default() -> Self {
        MongoParser::new()
    }
}

impl Conn {
    /// Replies may go unseen from here until the direction is resynchronised.
    fn lose_replies(&mut self) {
        for r in &mut self.in_flight {
            r.certain = false;
        }
    }

    fn on_request(&mut self, f: Frame<'_>, out: &mut Vec<MongoOperation>) {
        let (request_id, response_to, op_code) = header_fields(f.head);
        if response_to != 0 {
            self.bad = true;
            return;
        }
        let (cmd, compressed) = match op_code {
            OP_MSG => match msg_command(f.body) {
                Some(c) => (c, false),
                None => return self.bad_if_whole(f.body),
            },
            OP_QUERY => match query_command(f.body) {
                Some(c) => (c, false),
                None => return self.bad_if_whole(f.body),
            },
            OP_COMPRESSED => (Command::default(), true),
            // Legacy opcodes removed from MongoDB 5.1 on: not followed.
            _ => return,
        };
        let req = InFlight {
            request_id,
            op_code,
            compressed,
            cmd,
            start_ns: f.start_ns,
            certain: self.replies_synced,
            follow_up: false,
        };
        if req.cmd.more_to_come {
            out.push(self.operation(req, None, f.end_ns));
            return;
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
            self.unanswered += 1;
        }
        self.in_flight.push_back(req);
    }

    /// A request that could not be read is bad only if it was all captured.
    fn bad_if_whole(&mut self, body: &Body) {
        if body.is_whole() {
            self.bad = true;
        }
    }

    fn on_reply(&mut self, f: Frame<'_>, out: &mut Vec<MongoOperation>) {
        let (request_id, response_to, op_code) = header_fields(f.head);
        let Some(at) = self.in_flight.iter().position(|r| r.request_id == response_to) else { return };
        let Some(req) = self.in_flight.remove(at) else { return };
        let reply = match op_code {
            OP_MSG => msg_reply(f.body),
            OP_REPLY => op_reply(f.body),
            _ => Reply { compressed: true, ..Reply::default() },
        };
        let more = reply.more_to_come;
        let (command, cmd_op) = (req.cmd.clone(), req.op_code);
        out.push(self.operation(req, Some(reply), f.end_ns));
        if more && self.in_flight.len() < MAX_IN_FLIGHT {
            // The next reply answers this one: a further operation of the same command.
            self.in_flight.push_back(InFlight {
                request_id,
                op_code: cmd_op,
                compressed: false,
                cmd: command,
                start_ns: f.end_ns,
                certain: true,
                follow_up: true,
            });
        }
    }

    fn operation(&self, req: InFlight, reply: Option<Reply>, end_ns: u64) -> MongoOperation {
        let compressed = req.compressed || reply.as_ref().is_some_and(|r| r.compressed);
        let (status, returned) = match reply {
            Some(r) => (r.status, r.returned),
            None => (MongoStatus::Unknown, None),
        };
        MongoOperation {
            command: req.cmd.name,
            collection: req.cmd.collection,
            database: req.cmd.database,
            op_code: req.op_code,
            request_id: req.request_id,
            batch_size: req.cmd.batch_size,
            returned_documents: returned,
            status,
            compressed,
            start_ns: req.start_ns,
            end_ns,
            role: self.role,
        }
    }
}

/// Commands whose first value names a collection (of the `$db` database).
fn names_collection(cmd: &str) -> bool {
    matches!(
        cmd,
        "find"
            | "insert"
            | "update"
            | "delete"
            | "aggregate"
            | "count"
            | "distinct"
            | "findAndModify"
            | "findandmodify"
            | "create"
            | "drop"
            | "createIndexes"
            | "dropIndexes"
            | "listIndexes"
            | "collMod"
            | "killCursors"
            | "mapReduce"
            | "validate"
            | "collStats"
            | "compact"
            | "reIndex"
            | "geoNear"
            | "createSearchIndexes"
            | "listSearchIndexes"
    )
}

/// A command name: an identifier (the first key of a command document;
/// never a value).
fn identifier(b: &[u8]) -> Option<CompactString> {
    let ok = !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b'$')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$');
    ok.then(|| CompactString::from_utf8_lossy(b))
}

/// A database or collection name: printable, no NUL.
fn name(b: &[u8]) -> Option<CompactString> {
    let s = std::str::from_utf8(b).ok()?;
    (!s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control)).then(|| CompactString::from(s))
}

/// The command of an OP_MSG: its kind 0 body's first key, collection and
/// `$db`; the documents of its kind 1 sequences.
fn msg_command(body: &Body) -> Option<Command> {
    let flags = i32_at(body, 0)? as u32;
    if flags & !KNOWN_FLAGS != 0 {
        return None;
    }
    let end = body.len().checked_sub(if flags & CHECKSUM != 0 { 4 } else { 0 })?;
    let mut cmd = Command { more_to_come: flags & MORE_TO_COME != 0, ..Command::default() };
    let mut pos = 4;
    let mut batch = Some(0u64);
    let mut seen_body = false;
    while pos < end {
        let kind = body.get(pos, 1).map(|b| b[0]);
        match kind {
            Some(0) if !seen_body => {
                let doc = Doc::at(body, pos + 1, end)?;
                seen_body = true;
                read_command(body, doc, &mut cmd)?;
                pos = doc.end();
            }
            Some(1) => {
                let size = i32_at(body, pos + 1).filter(|s| *s >= 4)? as u64;
                let seq_end = pos + 1 + size;
                if seq_end > end {
                    return None;
                }
                batch = match (batch, cstring(body, pos + 5, 64)) {
                    (Some(n), Some((_, mut at))) => {
                        let mut k = Some(n);
                        while at < seq_end {
                            match Doc::at(body, at, seq_end) {
                                Some(d) => {
                                    k = k.map(|k| k + 1);
                                    at = d.end();
                                }
                                None => {
                                    k = None;
                                    break;
                                }
                            }
                        }
                        k
                    }
                    _ => None,
                };
                pos = seq_end;
            }
            // A section whose kind byte was not captured: the rest is unknown.
            None if seen_body => {
                batch = None;
                break;
            }
            _ => return None,
        }
    }
    if !seen_body {
        return None;
    }
    cmd.batch_size = batch.filter(|n| *n > 0);
    Some(cmd)
}

/// Reads a command document's name, collection and database.
fn read_command(body: &Body, doc: Doc, cmd: &mut Command) -> Option<()> {
    let mut elements = doc.elements(body);
    let first = elements.next();
    let Some(first) = first else {
        // The first key was not captured: a command all the same.
        return (body.get(doc.start + 4, 1).is_none()).then_some(());
    };
    let command = identifier(first.name)?;
    if names_collection(&command) {
        cmd.collection = first.string(body, MAX_NAME).and_then(name);
    }
    for e in elements {
        match e.name {
            b"$db" => cmd.database = e.string(body, MAX_NAME).and_then(name),
            b"collection" if command == "getMore" => cmd.collection = e.string(body, MAX_NAME).and_then(name),
            _ => {}
        }
    }
    cmd.name = Some(command);
    Some(())
}

/// The command of an OP_QUERY on `<db>.$cmd` (legacy handshakes); a query
/// on a collection is a `find`.
fn query_command(body: &Body) -> Option<Command> {
    let (full, at) = cstring(body, 4, 2 * MAX_NAME)?;
    let (db, coll) = full.split_at(full.iter().position(|c| *c == b'.')?);
    let coll = &coll[1..];
    let doc = Doc::at(body, at + 8, body.len())?;
    let mut cmd = Command { database: name(db), ..Command::default() };
    if coll == b"$cmd" {
        let first = doc.elements(body).next()?;
        // Old drivers wrap the command: {$query: {isMaster: 1}, $readPreference: …}.
        let inner = match first.name {
            b"$query" | b"query" => first.doc().and_then(|d| d.elements(body).next()),
            _ => Some(first),
        }?;
        cmd.name = Some(identifier(inner.name)?);
    } else {
        cmd.name = Some(CompactString::const_new("find"));
        cmd.collection = name(coll);
    }
    Some(cmd)
}

#[derive(Debug, Default)]
struct Reply {
    status: MongoStatus,
    returned: Option<u64>,
    more_to_come: bool,
    compressed: bool,
}

fn msg_reply(body: &Body) -> Reply {
    let mut reply = Reply::default();
    let Some(flags) = i32_at(body, 0) else { return reply };
    reply.more_to_come = flags as u32 & MORE_TO_COME != 0;
    if body.get(4, 1) != Some(&[0]) {
        return reply;
    }
    if let Some(doc) = Doc::at(body, 5, body.len()) {
        read_reply(body, doc, &mut reply);
    }
    reply
}

fn op_reply(body: &Body) -> Reply {
    let mut reply = Reply::default();
    let Some(flags) = i32_at(body, 0) else { return reply };
    // responseFlags, cursorID, startingFrom, numberReturned, then documents.
    if let Some(doc) = Doc::at(body, 20, body.len()) {
        read_reply(body, doc, &mut reply);
    }
    if flags & 2 != 0 && reply.status == MongoStatus::Ok {
        // QueryFailure: the document is {$err, code}.
        reply.status = MongoStatus::Error { code: None, code_name: None };
    }
    reply
}

/// `ok`, `code`, `codeName`, the first write error, the cursor batch.
fn read_reply(body: &Body, doc: Doc, reply: &mut Reply) {
    let mut ok = None;
    let mut code = None;
    let mut code_name = None;
    let mut write_error: Option<(Option<i32>, Option<CompactString>)> = None;
    let mut elements = doc.elements(body);
    for e in elements.by_ref() {
        match e.name {
            b"ok" => ok = e.number(body),
            b"code" => code = e.number(body).map(|c| c as i32),
            b"codeName" => code_name = e.string(body, 64).and_then(identifier),
            b"$err" if ok.is_none() => ok = Some(0.0),
            b"writeErrors" if write_error.is_none() => {
                write_error = e
                    .doc()
                    .and_then(|a| a.elements(body).next())
                    .and_then(|first| first.doc())
                    .map(|d| error_fields(body, d));
            }
            b"writeConcernError" if write_error.is_none() => write_error = e.doc().map(|d| error_fields(body, d)),
            b"cursor" => {
                let batch =
                    e.doc().and_then(|c| c.elements(body).find(|b| b.name == b"firstBatch" || b.name == b"nextBatch"));
                reply.returned = batch.and_then(|b| b.doc()).and_then(|a| a.count(body));
            }
            _ => {}
        }
    }
    reply.status = match ok {
        // `ok` is 1 or 0 (as a double, an int or a bool).
        Some(0.0) => MongoStatus::Error { code, code_name },
        Some(_) => match write_error {
            Some((code, code_name)) => MongoStatus::Error { code, code_name },
            // A write error after the point the walk reached may exist.
            None if elements.complete() => MongoStatus::Ok,
            None => MongoStatus::Unknown,
        },
        None => MongoStatus::Unknown,
    };
}

fn error_fields(body: &Body, d: Doc) -> (Option<i32>, Option<CompactString>) {
    let mut code = None;
    let mut code_name = None;
    for e in d.elements(body) {
        match e.name {
            b"code" => code = e.number(body).map(|c| c as i32),
            b"codeName" => code_name = e.string(body, 64).and_then(identifier),
            _ => {}
        }
    }
    (code, code_name)
}

/// Whether `b` (a chunk's first captured bytes) starts a request: a header
/// with `responseTo` 0 and a command opcode; for OP_MSG, known flags and a
/// first section that starts a document whose first key is a command name.
pub fn looks_like_request(b: &[u8]) -> bool {
    request_start(b) == Some(true)
}

/// `looks_like_request`, or `None` when `b` is too short to tell.
pub(super) fn request_start(b: &[u8]) -> Option<bool> {
    if b.len() < 16 {
        return None;
    }
    let (_, response_to, op) = header_fields(b);
    if response_to != 0 || !matches!(head(&b[..16]), Head::Frame { .. }) {
        return Some(false);
    }
    match op {
        OP_MSG => {
            let rest = b.get(16..26)?;
            let flags = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if flags & !KNOWN_FLAGS != 0 || rest[4] > 1 {
                return Some(false);
            }
            if rest[4] == 1 {
                return Some(true);
            }
            // Document length, then the first element's type and name.
            let doc_len = i32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
            if doc_len < 5 || !matches!(rest[9], 0x01..=0x13) {
                return Some(false);
            }
            let name_end = b[26..].iter().position(|c| *c == 0)?;
            Some(identifier(&b[26..26 + name_end]).is_some())
        }
        OP_QUERY => {
            let name = b.get(20..)?;
            let end = name.iter().position(|c| *c == 0)?;
            Some(name[..end].contains(&b'.') && name[..end].iter().all(|c| c.is_ascii_graphic()))
        }
        OP_COMPRESSED => {
            let op = b.get(16..20)?;
            Some(matches!(i32::from_le_bytes([op[0], op[1], op[2], op[3]]), OP_MSG | OP_QUERY))
        }
        _ => Some(false),
    }
}
