//! The per-connection state machine: requests are framed and remembered by
//! correlation id; each response completes the request with its id.
//!
//! # Lost framing and lost events
//! Each direction is framed on its own. When uncaptured bytes hide where
//! the next message starts (several messages in one syscall, the first one
//! longer than `capture_size`), when a size field is impossible, or after
//! `gap` (lost events), that direction is resynchronised only on a chunk
//! that certainly starts a message:
//! - requests: a chunk (or a 4-byte read of the size followed by a chunk,
//!   as brokers read) whose messages are well-formed request headers
//!   (known API key and version range, non-negative correlation id, a
//!   printable client id) back to back up to its end;
//! - responses: a chunk (or a 4-byte size read then a chunk, as clients
//!   read) that starts with a plausible size and the correlation id of a
//!   request in flight.
//!
//! A response whose id is not in flight (its request was lost) is dropped;
//! one whose id is later in the queue than others means those others' responses
//! were lost: they are dropped and counted in `unanswered`. Nothing is
//! ever paired by position alone, so a lost event costs operations, never
//! produces a wrong one.

use std::collections::VecDeque;
use std::sync::Arc;

use compact_str::CompactString;

use super::apis::{self, Api, RequestInfo, TopicRef, MAX_API_KEY, MAX_API_VERSION};
use super::wire::Reader;
use super::{KafkaOperation, KafkaStatus, TopicNames, MAX_IN_FLIGHT};
use crate::protocol::lenframe::{Body, Frame, Framer, Head, Outcome};
use crate::protocol::{Chunk, Direction, Role};

/// Largest request accepted (the broker's `socket.request.max.bytes`
/// default is 100 MiB); responses (fetches) up to 1 GiB.
const MAX_REQUEST: u64 = 100 << 20;
const MAX_RESPONSE: u64 = 1 << 30;

/// Body bytes kept per message: request headers and the topics of the
/// first partitions, a response's error codes and record batch headers.
const KEEP_BYTES: usize = 4096;

/// Longest client id kept.
const MAX_CLIENT_ID: usize = 128;

fn request_head(h: &[u8]) -> Head {
    size_head(h, MAX_REQUEST)
}

fn response_head(h: &[u8]) -> Head {
    size_head(h, MAX_RESPONSE)
}

fn size_head(h: &[u8], max: u64) -> Head {
    match h {
        [a, b, c, d] => match i32::from_be_bytes([*a, *b, *c, *d]) {
            n if n >= 4 && n as u64 <= max => Head::Frame { head_len: 4, body_len: n as u64 },
            _ => Head::Bad,
        },
        _ => Head::Need(4),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing seen yet: the first bytes must be a request.
    Start,
    Open,
    /// Not Kafka, or `close` was called.
    Done,
}

/// A request waiting for its response.
#[derive(Debug)]
struct InFlight {
    corr: i32,
    api: Api,
    version: i16,
    client_id: Option<CompactString>,
    info: RequestInfo,
    start_ns: u64,
    /// The response direction has been followed since the request was
    /// sent: if the connection closes before its response, none came.
    certain: bool,
}

/// Request header fields.
struct Header {
    api: Api,
    version: i16,
    corr: i32,
    client_id: Option<CompactString>,
    /// Where the body starts (after the header's tagged fields, when known).
    body_at: Option<u64>,
}

/// Everything but the framers, so that their callbacks can borrow it.
#[derive(Debug)]
struct Conn {
    names: Arc<TopicNames>,
    role: Role,
    in_flight: VecDeque<InFlight>,
    unanswered: u64,
    /// A request frame was not a request: the request direction is lost.
    bad_request: bool,
    /// The response direction is followed (framed from a known start).
    resp_synced: bool,
}

/// Turns one Kafka connection's chunks into `KafkaOperation`s.
#[derive(Debug)]
pub struct KafkaParser {
    state: State,
    requests: Option<Direction>,
    req: Framer,
    resp: Framer,
    req_sync: bool,
    resp_sync: bool,
    /// A 4-byte read that may be a size, per direction (request, response).
    pending: [Option<([u8; 4], u64)>; 2],
    /// The connection's first reads, until they show a request header.
    first: Vec<u8>,
    first_ts: u64,
    conn: Conn,
}

impl KafkaParser {
    /// A parser for a connection followed from its first byte: the client
    /// speaks first, so the first bytes must be a request.
    pub fn new(names: Arc<TopicNames>) -> Self {
        KafkaParser {
            state: State::Start,
            requests: None,
            req: Framer::new(request_head, KEEP_BYTES),
            resp: Framer::new(response_head, KEEP_BYTES),
            req_sync: true,
            resp_sync: true,
            pending: [None, None],
            first: Vec::new(),
            first_ts: 0,
            conn: Conn {
                names,
                role: Role::Client,
                in_flight: VecDeque::new(),
                unanswered: 0,
                bad_request: false,
                resp_synced: true,
            },
        }
    }

    /// A parser for a connection joined mid-stream, the traced process being
    /// `role`: both directions wait for a point to resynchronise on.
    pub fn joined(names: Arc<TopicNames>, role: Role) -> Self {
        let mut p = KafkaParser::new(names);
        p.state = State::Open;
        p.set_role(role);
        p.req_sync = false;
        p.resp_sync = false;
        p
    }

    fn set_role(&mut self, role: Role) {
        self.conn.role = role;
        self.requests = Some(role.request_direction());
    }

    /// Requests whose responses never came (lost events, closed early).
    pub fn unanswered(&self) -> u64 {
        self.conn.unanswered
    }

    /// Whether the parser gave up on the connection (not Kafka).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<KafkaOperation>) {
        match self.state {
            State::Done => return,
            State::Start => {
                if chunk.data.is_empty() {
                    return;
                }
                if !self.first_bytes(chunk, out) {
                    return;
                }
            }
            State::Open => {}
        }
        let Some(requests) = self.requests else { return };
        let is_req = chunk.direction == requests;
        let synced = if is_req { self.req_sync } else { self.resp_sync };
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        if !synced {
            self.resync(is_req, chunk, out);
            return;
        }
        self.frame(is_req, chunk.data, uncaptured, chunk.ts_ns, out);
    }

    /// Decides the request direction from the first bytes: a request,
    /// gathered from as many (fully captured) reads as it takes to see its
    /// header and client id. Returns whether to go on with `chunk`.
    fn first_bytes(&mut self, chunk: &Chunk<'_>, out: &mut Vec<KafkaOperation>) -> bool {
        let complete = chunk.data.len() as u64 == chunk.total_len;
        if self.first.is_empty() {
            self.first_ts = chunk.ts_ns;
            self.requests = Some(chunk.direction);
        }
        if Some(chunk.direction) != self.requests {
            self.state = State::Done;
            return false;
        }
        let have = self.first.len() + chunk.data.len();
        if complete && have < FIRST_BYTES && !header_complete(&self.first, chunk.data) {
            self.first.extend_from_slice(chunk.data);
            return false;
        }
        let mut head = std::mem::take(&mut self.first);
        let n = chunk.data.len().min(FIRST_BYTES);
        head.extend_from_slice(&chunk.data[..n]);
        let total = (head.len() - n) as u64 + chunk.total_len;
        let first_len = head.len() - n;
        if !starts_requests(&head, total) {
            self.state = State::Done;
            return false;
        }
        let role = if chunk.direction == Direction::Egress { Role::Client } else { Role::Server };
        self.set_role(role);
        self.state = State::Open;
        let conn = &mut self.conn;
        let _ = self.req.feed(&head[..first_len], 0, self.first_ts, &mut |f| conn.on_request(f, out));
        true
    }

    fn frame(&mut self, is_req: bool, data: &[u8], uncaptured: u64, ts: u64, out: &mut Vec<KafkaOperation>) {
        let conn = &mut self.conn;
        conn.resp_synced = self.resp_sync;
        let outcome = if is_req {
            let o = self.req.feed(data, uncaptured, ts, &mut |f| conn.on_request(f, out));
            if std::mem::take(&mut conn.bad_request) {
                self.req.reset();
                Outcome::Garbage
            } else {
                o
            }
        } else {
            self.resp.feed(data, uncaptured, ts, &mut |f| conn.on_response(f, out))
        };
        if outcome != Outcome::Framed {
            if is_req {
                self.req_sync = false;
            } else {
                self.lose_responses();
            }
        }
    }

    /// Responses may go unseen from here until the direction is resynchronised.
    fn lose_responses(&mut self) {
        self.resp_sync = false;
        for r in &mut self.conn.in_flight {
            r.certain = false;
        }
    }

    fn resync(&mut self, is_req: bool, chunk: &Chunk<'_>, out: &mut Vec<KafkaOperation>) {
        let slot = usize::from(!is_req);
        let complete = chunk.data.len() as u64 == chunk.total_len;
        if complete && chunk.data.len() == 4 {
            let mut size = [0; 4];
            size.copy_from_slice(chunk.data);
            self.pending[slot] = Some((size, chunk.ts_ns));
            return;
        }
        let pending = self.pending[slot].take();
        let ok = match (&pending, is_req) {
            (Some((size, _)), true) => starts_request_after(size, chunk.data, chunk.total_len),
            (None, true) => looks_like_request(chunk.data, chunk.total_len),
            (Some((size, _)), false) => self.starts_response(Some(size), chunk.data),
            (None, false) => self.starts_response(None, chunk.data),
        };
        if !ok {
            return;
        }
        let framer = if is_req { &mut self.req } else { &mut self.resp };
        framer.reset();
        if let Some((size, ts)) = pending {
            let _ = framer.feed(&size, 0, ts, &mut |_| {});
        }
        if is_req {
            self.req_sync = true;
        } else {
            self.resp_sync = true;
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.frame(is_req, chunk.data, uncaptured, chunk.ts_ns, out);
    }

    /// A response starts here: a plausible size and the id of a request in flight.
    fn starts_response(&self, size: Option<&[u8; 4]>, data: &[u8]) -> bool {
        let (size, rest) = match size {
            Some(s) => (*s, data),
            None if data.len() >= 8 => ([data[0], data[1], data[2], data[3]], &data[4..]),
            None => return false,
        };
        if rest.len() < 4 || !matches!(response_head(&size), Head::Frame { .. }) {
            return false;
        }
        let corr = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        self.conn.in_flight.iter().any(|r| r.corr == corr)
    }

    /// Lost events: both directions wait for a point to resynchronise on.
    pub fn gap(&mut self) {
        if self.state == State::Start {
            // Whatever comes next is mid-stream: the direction is unknown.
            self.state = State::Done;
            return;
        }
        self.req_sync = false;
        self.lose_responses();
        self.pending = [None, None];
        self.req.reset();
        self.resp.reset();
    }

    /// The connection closed at `ts_ns`: a request still waiting is reported
    /// without a response when none can have been missed (the response
    /// direction was followed since it was sent), else counted unanswered.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<KafkaOperation>) {
        let synced = self.resp_sync && self.pending[1].is_none();
        for req in std::mem::take(&mut self.conn.in_flight) {
            if req.certain && synced {
                let mut op = self.conn.operation(req, None, ts_ns, false);
                op.status = KafkaStatus::NoResponse;
                out.push(op);
            } else {
                self.conn.unanswered += 1;
            }
        }
        self.state = State::Done;
    }
}

impl Conn {
    fn on_request(&mut self, f: Frame<'_>, out: &mut Vec<KafkaOperation>) {
        let Some(h) = request_header(f.body) else {
            self.bad_request = true;
            return;
        };
        let info = match (h.api.flexible(h.version), h.body_at) {
            (Some(flex), Some(at)) => apis::request(h.api, h.version, f.body, at, flex),
            _ => RequestInfo::default(),
        };
        let req = InFlight {
            corr: h.corr,
            api: h.api,
            version: h.version,
            client_id: h.client_id,
            info,
            start_ns: f.start_ns,
            certain: self.resp_synced,
        };
        if h.api == Api::Produce && req.info.acks == Some(0) {
            out.push(self.operation(req, None, f.end_ns, true));
            return;
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
            self.unanswered += 1;
        }
        self.in_flight.push_back(req);
    }

    fn on_response(&mut self, f: Frame<'_>, out: &mut Vec<KafkaOperation>) {
        let Some(corr) = f.body.get(0, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return };
        let Some(at) = self.in_flight.iter().position(|r| r.corr == corr) else { return };
        // The broker answers in order: the requests before this one lost their responses.
        self.unanswered += at as u64;
        self.in_flight.drain(..at);
        let Some(req) = self.in_flight.pop_front() else { return };
        let flex = req.api.flexible(req.version);
        // ApiVersions responses keep header v0 so that any client can read them.
        let header_tags = flex == Some(true) && req.api != Api::ApiVersions;
        let mut r = Reader::new(f.body, 4, header_tags);
        let resp = match (flex, r.tags()) {
            (Some(flex), Some(())) => Some(apis::response(req.api, req.version, f.body, r.pos, flex)),
            _ => None,
        };
        if let Some(resp) = &resp {
            for (id, name) in &resp.learned {
                self.names.learn(*id, name);
            }
        }
        out.push(self.operation(req, resp, f.end_ns, false));
    }

    fn operation(
        &self,
        req: InFlight,
        resp: Option<apis::ResponseInfo>,
        end_ns: u64,
        fire_and_forget: bool,
    ) -> KafkaOperation {
        let status = match &resp {
            _ if fire_and_forget => KafkaStatus::Unknown,
            Some(r) if r.error.is_some() => KafkaStatus::Error(r.error.unwrap_or_default()),
            Some(r) if r.complete => KafkaStatus::Ok,
            _ => KafkaStatus::Unknown,
        };
        let rt = resp.map(|r| r.topics).unwrap_or_default();
        let qt = req.info.topics;
        // What was fetched is what the response holds (a fetch session's
        // request may list no topic); anything else is what was asked.
        let (topics, count) = match req.api {
            Api::Fetch => {
                let count = rt.records;
                if rt.first.is_some() {
                    (rt, count)
                } else {
                    (qt, count)
                }
            }
            Api::Produce => {
                let count = qt.records;
                (qt, count)
            }
            _ if qt.first.is_some() => (qt, None),
            _ => (rt, None),
        };
        let (topic, topic_id) = match topics.first {
            Some(TopicRef::Name(n)) => (Some(n), None),
            Some(TopicRef::Id(id)) => match self.names.name(&id) {
                Some(n) => (Some(n), None),
                None => (None, Some(id)),
            },
            None => (None, None),
        };
        KafkaOperation {
            api: req.api,
            api_version: req.version,
            correlation_id: req.corr,
            client_id: req.client_id,
            topic,
            topic_id,
            topic_count: topics.count,
            partition: topics.partition,
            group: req.info.group,
            message_count: count,
            status,
            fire_and_forget,
            start_ns: req.start_ns,
            end_ns,
            role: self.role,
        }
    }
}

/// Reads a request header (v1, or v2 for flexible versions) from a body.
fn request_header(body: &Body) -> Option<Header> {
    let mut r = Reader::new(body, 0, false);
    let key = r.i16()?;
    let version = r.i16()?;
    let corr = r.i32()?;
    if !(0..=MAX_API_KEY).contains(&key) || !(0..=MAX_API_VERSION).contains(&version) || corr < 0 {
        return None;
    }
    let api = Api::from_key(key);
    let len = r.i16()?;
    let client_id = match len {
        -1 => None,
        n if n >= 0 => {
            let n = n as usize;
            match body.get(r.pos, n) {
                Some(b) if b.iter().all(|c| (0x20..0x7f).contains(c)) => {
                    r.pos += n as u64;
                    (n <= MAX_CLIENT_ID).then(|| apis::label(Some(b))).flatten()
                }
                Some(_) => return None,
                None => {
                    r.skip(n as u64)?;
                    None
                }
            }
        }
        _ => return None,
    };
    let body_at = match api.flexible(version) {
        Some(true) => {
            r.flex = true;
            r.tags().map(|()| r.pos)
        }
        Some(false) => Some(r.pos),
        None => None,
    };
    Some(Header { api, version, corr, client_id, body_at })
}

/// Whether a request header starts at `b` (size first), with `total` bytes
/// from there on in the chunk: plausible size, API key, version,
/// correlation id and a printable client id, all captured.
pub(super) fn request_at(b: &[u8]) -> Option<u64> {
    if b.len() < 14 {
        return None;
    }
    let size = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let key = i16::from_be_bytes([b[4], b[5]]);
    let version = i16::from_be_bytes([b[6], b[7]]);
    let corr = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    let id_len = i16::from_be_bytes([b[12], b[13]]);
    let ok = size >= 10
        && size as u64 <= MAX_REQUEST
        && (0..=MAX_API_KEY).contains(&key)
        && (0..=MAX_API_VERSION).contains(&version)
        && corr >= 0
        && (id_len == -1 || (id_len >= 0 && i32::from(id_len) <= size - 10));
    if !ok {
        return None;
    }
    if id_len > 0 {
        let id = b.get(14..14 + id_len as usize)?;
        if !id.iter().all(|c| (0x20..0x7f).contains(c)) {
            return None;
        }
    }
    Some(4 + size as u64)
}

/// Whether `b`, the whole of a connection's first bytes so far, starts a
/// request: `Some(true)` as `starts_requests` finds, `Some(false)` when it
/// cannot be one, `None` when it is too short to tell and what is there
/// fits (a broker's first read is often the size alone).
pub(super) fn request_start(b: &[u8], total: u64) -> Option<bool> {
    if starts_requests(b, total) {
        return Some(true);
    }
    let at = |i: usize| b.get(i..i + 2).map(|x| i16::from_be_bytes([x[0], x[1]]));
    let size = match b.get(..4) {
        Some(x) => i32::from_be_bytes([x[0], x[1], x[2], x[3]]),
        // Sizes up to MAX_REQUEST start with a byte of at most 6.
        None if b.first().is_none_or(|&c| c <= 6) => return None,
        None => return Some(false),
    };
    let fits = (10..=MAX_REQUEST as i32).contains(&size)
        && at(4).is_none_or(|k| (0..=MAX_API_KEY).contains(&k))
        && at(6).is_none_or(|v| (0..=MAX_API_VERSION).contains(&v))
        && b.get(8).is_none_or(|&c| c < 0x80)
        && at(12).is_none_or(|n| n >= -1 && i32::from(n) <= size - 10);
    let id = at(12).map_or(0, |n| n.max(0) as usize);
    let printable = b.get(14..).unwrap_or(&[]).iter().take(id).all(|c| (0x20..0x7f).contains(c));
    if fits && printable && b.len() < 14 + id {
        None
    } else {
        Some(false)
    }
}

/// Whether a chunk (`data` captured of `total` bytes) is requests back to
/// back from its first byte: the check for a connection's first bytes and
/// for resynchronising. Also usable to recognise Kafka on a connection.
pub fn looks_like_request(data: &[u8], total: u64) -> bool {
    let mut at = 0u64;
    let mut any = false;
    while (at as usize) < data.len() {
        let Some(len) = request_at(&data[at as usize..]) else { return false };
        any = true;
        at += len;
    }
    any && at <= total && (at as usize >= data.len())
}

/// Bytes gathered at most before deciding what the connection's first
/// bytes are: a header with the longest client id kept.
const FIRST_BYTES: usize = 14 + 256;

/// Whether `a` then `b` hold a whole request header up to its client id.
fn header_complete(a: &[u8], b: &[u8]) -> bool {
    let at = |i: usize| if i < a.len() { a.get(i) } else { b.get(i - a.len()) }.copied();
    match (at(12), at(13)) {
        (Some(x), Some(y)) => {
            let id = i16::from_be_bytes([x, y]);
            id <= 0 || a.len() + b.len() >= 14 + id as usize
        }
        _ => false,
    }
}

/// Whether `head` (the captured start of `total` bytes) starts with a
/// request: requests back to back through the captured bytes, or one
/// request whose body runs past them.
pub(super) fn starts_requests(head: &[u8], total: u64) -> bool {
    match request_at(head) {
        Some(len) if len >= head.len() as u64 || len > total => true,
        Some(_) => looks_like_request(head, total),
        None => false,
    }
}

/// A request whose 4-byte size was read alone, continued by `data` (the
/// captured part of a read of `total` bytes).
fn starts_request_after(size: &[u8; 4], data: &[u8], total: u64) -> bool {
    let mut b = [0u8; 4 + 320];
    let n = data.len().min(320);
    b[..4].copy_from_slice(size);
    b[4..4 + n].copy_from_slice(&data[..n]);
    let Some(len) = request_at(&b[..4 + n]) else { return false };
    let body_len = len - 4;
    if total <= body_len {
        return true;
    }
    match data.get(body_len as usize..) {
        Some(rest) if !rest.is_empty() => looks_like_request(rest, total - body_len),
        _ => false,
    }
}
