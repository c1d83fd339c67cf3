//! The per-connection state machine: two message streams (requests one way,
//! responses the other) and the queue that pairs them.
//!
//! # Degraded framing
//!
//! The probes capture a prefix of each syscall (`capture_size`, 1 KiB by
//! default). When what is lost past it is only *where a message ends* (the
//! rest of a long head, e.g. a 3 KiB Cookie, or the chunk-size lines of a
//! chunked body read in one large syscall), the message is kept in degraded
//! framing instead of failing the connection:
//!
//! - Its start line must have been captured whole (request line: method,
//!   target, version; status line: status). Host is kept only when its line
//!   was captured complete. Body sizes count only the payload seen while
//!   framing was known (0 for a cut head): they are lower bounds.
//! - The message is *unframed*: every later chunk in its direction belongs
//!   to it, until the other direction starts a message. A request ends (at
//!   its last chunk) when the first byte of a final (non-1xx) response head
//!   arrives; a response ends (at its last chunk) when the next request head
//!   starts, or at close.
//! - The direction then *re-synchronises*: its next chunk must start a new
//!   message at its first byte (request line or status line; leading CR/LF
//!   allowed). If it does not, the parser fails (`Desynchronized`).
//! - It only works without pipelining. A request cannot go unframed while
//!   another request awaits its response, a response cannot while a later
//!   request awaits one, and both directions cannot be unframed at once: each
//!   fails with `Truncated` as before. Requests pipelined inside the lost bytes
//!   cannot be seen; a response that answers no request on a connection that
//!   had an unframed request shows them and fails (`Desynchronized`).
//! - Still fatal: a start line itself cut, a cut interim (1xx) response head,
//!   a request whose body framing is lost after its final response came,
//!   and uncaptured bytes where the next message would start.
//!
//! # Lost events
//!
//! `gap` is called when the kernel lost chunks of the connection: everything
//! in flight is dropped, and chunks are ignored until one starts a request
//! (see `gap`).

use std::collections::VecDeque;
use std::sync::Arc;

use super::body::Body;
use super::error::{MessageKind, ParseError};
use super::exchange::{HttpExchange, HttpVersion};
use super::head::{self, HeadBuffer, HeadStep, MethodKind, RequestHead, ResponseBody, ResponseHead};
use super::kept::{BodyPolicy, KeptBodies, KeptBody};
use super::sniff::skip_line_breaks;
use super::telemetry::path_of;
use super::{sniff, MAX_PIPELINED};
use crate::protocol::follow::{self, State, Sync};
use crate::protocol::http2::H2cUpgrade;
use crate::protocol::{Chunk, Direction, Role};

/// Turns one connection's chunks into completed exchanges. Memory per
/// connection is bounded: at most one partial head per direction
/// (`MAX_HEAD_BYTES`) and `MAX_PIPELINED` requests awaiting responses.
/// See the module documentation for degraded framing and `gap`.
#[derive(Debug)]
pub struct Http1Parser {
    state: State,
    role: Option<Role>,
    /// Requests in arrival order, until both halves are complete.
    pending: VecDeque<Pending>,
    requests: Stream,
    responses: Stream,
    /// The response being read answers no request we saw (we joined the
    /// connection late); it is followed for framing and then dropped.
    orphan_response: bool,
    /// A request was unframed on this connection at some point, so requests
    /// pipelined inside its lost bytes may have gone unseen.
    requests_were_unframed: bool,
    /// Which exchanges' bodies to keep; None keeps none.
    policy: Option<Arc<dyn BodyPolicy>>,
    /// The switch was to HTTP/2 (`Upgrade: h2c` answered 101): the request
    /// waits in `pending` for `take_h2c_upgrade`.
    h2c_switch: Option<H2cSwitch>,
}

/// Where an h2c upgrade switched the connection.
#[derive(Debug, Clone, Copy)]
struct H2cSwitch {
    /// The upgrade request in `pending`.
    index: usize,
    /// Where HTTP/2 starts in the chunk that carried the 101 head.
    offset: usize,
    /// That chunk's timestamp: the 101 exchange's end, if it stays HTTP/1.
    ts: u64,
}

/// One direction's progress through its messages.
#[derive(Debug, Default)]
struct Stream {
    head: HeadBuffer,
    body: Option<Body>,
    sync: Sync,
    /// Timestamp of the last chunk seen this way.
    last_ts: u64,
}

#[derive(Debug)]
struct Pending {
    method: compact_str::CompactString,
    method_kind: MethodKind,
    target: compact_str::CompactString,
    version: HttpVersion,
    host: Option<compact_str::CompactString>,
    request_start_ns: u64,
    request_end_ns: Option<u64>,
    request_body_size: u64,
    /// It asked to switch to h2c.
    h2c_upgrade: bool,
    status: Option<u16>,
    response_start_ns: Option<u64>,
    response_end_ns: Option<u64>,
    response_body_size: u64,
    /// Bodies, for the exchanges the policy keeps.
    kept: Option<Box<KeptBodies>>,
}

impl Default for Http1Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Parser {
    pub fn new() -> Self {
        Self::with_policy(None)
    }

    /// A parser that keeps the bodies of the exchanges `policy` selects
    /// (`HttpExchange::bodies`).
    pub fn with_policy(policy: Option<Arc<dyn BodyPolicy>>) -> Self {
        Http1Parser {
            policy,
            state: State::Open,
            role: None,
            pending: VecDeque::new(),
            requests: Stream::default(),
            responses: Stream::default(),
            orphan_response: false,
            requests_were_unframed: false,
            h2c_switch: None,
        }
    }

    /// Feed one chunk; push every exchange it completes onto `out`.
    /// On garbage, return Err and enter a failed state: later feeds return
    /// Ok(()) and do nothing. Truncation that only hides where a message ends
    /// is not garbage: it is followed in degraded framing (module docs).
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut impl Extend<HttpExchange>) -> Result<(), ParseError> {
        if self.state == State::Lost {
            self.rejoin(chunk);
        }
        if self.state != State::Open {
            return Ok(());
        }
        let result = self.feed_open(chunk);
        // Exchanges finished before an error in the same chunk are still good.
        self.drain(out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// The connection closed at ts_ns: complete a response delimited by close
    /// (no length, HTTP/1.0 style) or an unframed one (both end at their last
    /// chunk), and report requests that never got a response with status None.
    pub fn close(&mut self, ts_ns: u64, out: &mut impl Extend<HttpExchange>) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        self.end_unframed(MessageKind::Response);
        if let Some(body) = self.responses.body.take() {
            if !self.orphan_response {
                // A close-delimited body really ended with its last chunk; any
                // other body still in progress was cut short by the close.
                let end = if body.is_until_close() { self.responses.last_ts } else { ts_ns };
                if let Some(i) = self.responding() {
                    let p = &mut self.pending[i];
                    p.response_end_ns = Some(end);
                    if let Some(kept) = p.kept.as_deref_mut() {
                        kept.response.complete = body.is_until_close();
                    }
                }
            }
        }
        let Some(role) = self.role else {
            self.shut(State::Closed);
            return;
        };
        let request_last_ts = self.requests.last_ts;
        out.extend(self.pending.drain(..).map(|mut p| {
            p.request_end_ns.get_or_insert(request_last_ts);
            p.response_end_ns.get_or_insert(ts_ns);
            p.into_exchange(role)
        }));
        self.shut(State::Closed);
    }

    /// The kernel lost one or more chunks of this connection (e.g. its ring
    /// buffer was full). Every request in flight is dropped without being
    /// reported, since what was lost could be any part of it; the return value
    /// is how many were dropped, for the caller to count. `out` only receives
    /// exchanges that were already complete (`feed` hands those out at once,
    /// so in practice none).
    ///
    /// Then chunks are ignored (not failures) until one whose first bytes
    /// (after CR/LF) start a request line in the request direction, or, if no
    /// chunk has shown the role yet, a request line or status line either way.
    /// Parsing resumes from that chunk; responses are then ignored until one
    /// starts with a status line. `gap` does nothing on a parser that failed,
    /// switched protocols or was closed.
    pub fn gap(&mut self, out: &mut impl Extend<HttpExchange>) -> usize {
        if !matches!(self.state, State::Open | State::Lost) {
            return 0;
        }
        self.drain(out);
        let dropped = self.pending.len();
        self.pending = VecDeque::new();
        self.requests = Stream::default();
        self.responses = Stream::default();
        self.orphan_response = false;
        self.state = State::Lost;
        dropped
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// True after `gap` until a chunk starting a request is seen.
    pub fn is_lost(&self) -> bool {
        self.state == State::Lost
    }

    /// True once a 101 response or an accepted CONNECT turned the connection
    /// into something other than HTTP/1; later feeds are ignored.
    pub fn is_switched(&self) -> bool {
        self.state == State::Switched
    }

    /// The traced process's side, once the first message has shown it.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// After a switch to h2c (`Upgrade: h2c` answered 101): the upgrade
    /// request, which HTTP/2 continues as stream 1, and where HTTP/2 starts
    /// in the chunk that carried the 101 head. None for any other switch
    /// (or when called twice).
    pub fn take_h2c_upgrade(&mut self) -> Option<(H2cUpgrade, usize)> {
        let switch = self.h2c_switch.take()?;
        let role = self.role?;
        let p = self.pending.remove(switch.index)?;
        let upgrade = H2cUpgrade {
            request_direction: role.request_direction(),
            method: p.method,
            path: path_of(&p.target).into(),
            authority: p.host,
            request_start_ns: p.request_start_ns,
            request_end_ns: p.request_end_ns.unwrap_or(p.request_start_ns),
            request_body_size: p.request_body_size,
        };
        Some((upgrade, switch.offset))
    }

    /// After a switch to h2c that is not followed (HTTP/2 switched off): the
    /// upgrade exchange ends with its 101 head, as other switches do.
    pub fn end_h2c_upgrade(&mut self, out: &mut impl Extend<HttpExchange>) {
        let Some(switch) = self.h2c_switch.take() else { return };
        if let Some(p) = self.pending.get_mut(switch.index) {
            p.response_end_ns = Some(switch.ts);
        }
        self.drain(out);
    }

    /// Cheap check on the first bytes of a connection's first chunk: could
    /// this be HTTP/1.x (a request line start like "GET /", or "HTTP/1.")?
    pub fn looks_like_http(data: &[u8]) -> bool {
        sniff::looks_like_http(data)
    }

    #[cfg(test)]
    pub(super) fn buffered_capacity(&self) -> usize {
        self.requests.head.capacity() + self.responses.head.capacity()
    }

    fn fail(&mut self) {
        self.shut(State::Failed);
    }

    fn shut(&mut self, state: State) {
        self.state = state;
        self.pending = VecDeque::new();
        self.requests = Stream::default();
        self.responses = Stream::default();
    }

    /// After a gap: leave `Lost` if this chunk starts a message we can resume at.
    fn rejoin(&mut self, chunk: &Chunk<'_>) {
        let data = skip_line_breaks(chunk.data);
        let resumes = match self.role {
            Some(role) => chunk.direction == role.request_direction() && sniff::starts_message(true, data),
            None => sniff::looks_like_http(data),
        };
        if resumes {
            self.state = State::Open;
            if self.role.is_some() {
                self.responses.sync = Sync::Skip;
            }
        }
    }

    fn feed_open(&mut self, chunk: &Chunk<'_>) -> Result<(), ParseError> {
        let Some(side) = follow::side(&mut self.role, chunk, infer_role) else { return Ok(()) };
        let kind = if side.request { MessageKind::Request } else { MessageKind::Response };
        self.feed_stream(kind, chunk.ts_ns, chunk.data, side.uncaptured)
    }

    fn stream(&mut self, kind: MessageKind) -> &mut Stream {
        match kind {
            MessageKind::Request => &mut self.requests,
            MessageKind::Response => &mut self.responses,
        }
    }

    fn feed_stream(
        &mut self,
        kind: MessageKind,
        ts: u64,
        mut data: &[u8],
        mut uncaptured: u64,
    ) -> Result<(), ParseError> {
        let request = kind == MessageKind::Request;
        let chunk_len = data.len();
        let stream = self.stream(kind);
        match stream.sync {
            Sync::Framed => {}
            Sync::Unframed => {
                stream.last_ts = ts;
                let lost = data.len() as u64 + uncaptured;
                if let Some(kept) = self.kept_body(kind) {
                    kept.lose(lost);
                }
                return Ok(());
            }
            Sync::Resync => {
                let only_line_breaks = skip_line_breaks(data).is_empty() && uncaptured == 0;
                if !only_line_breaks {
                    if !sniff::may_start_message(request, data) {
                        return Err(ParseError::Desynchronized {
                            message: kind,
                            reason: "the chunk after a message whose end was not captured does not start a new one",
                        });
                    }
                    stream.sync = Sync::Framed;
                }
            }
            Sync::Skip => {
                if !sniff::starts_message(request, data) {
                    return Ok(());
                }
                stream.sync = Sync::Framed;
            }
        }
        stream.last_ts = ts;
        while !data.is_empty() && self.state == State::Open {
            // Only a body is kept: no looking for its exchange while a head is read.
            let keep_at = if self.stream(kind).body.is_some() { self.keeping(kind) } else { None };
            let (stream, pending) = match kind {
                MessageKind::Request => (&mut self.requests, &mut self.pending),
                MessageKind::Response => (&mut self.responses, &mut self.pending),
            };
            let consumed = if let Some(body) = stream.body.as_mut() {
                let mut kept = keep_at.and_then(|i| pending.get_mut(i)).and_then(|p| p.kept.as_deref_mut());
                let progress = body.feed(data, |payload| {
                    if let Some(k) = kept.as_deref_mut() {
                        k.body_mut(kind).push(payload);
                    }
                })?;
                self.body_progress(kind, progress.payload, progress.done, ts);
                usize::try_from(progress.consumed).unwrap_or(data.len())
            } else {
                match kind {
                    MessageKind::Request => match stream.head.step(data, ts, kind, head::parse_request)? {
                        HeadStep::NeedMore => data.len(),
                        HeadStep::Done { head, consumed, start_ns } => {
                            self.start_request(head, start_ns, ts, true)?;
                            consumed
                        }
                    },
                    MessageKind::Response => match stream.head.step(data, ts, kind, head::parse_response)? {
                        HeadStep::NeedMore => data.len(),
                        HeadStep::Done { head, consumed, start_ns } => {
                            self.start_response(head, start_ns, ts, true)?;
                            if let Some(switch) = self.h2c_switch.as_mut() {
                                switch.offset = chunk_len - data.len() + consumed;
                            }
                            consumed
                        }
                    },
                }
            };
            data = data.get(consumed..).unwrap_or_default();
        }
        while uncaptured > 0 && self.state == State::Open {
            let stream = self.stream(kind);
            if stream.sync == Sync::Unframed {
                break;
            }
            let Some(body) = stream.body.as_mut() else {
                if stream.head.is_empty() {
                    // Where the next message starts, with nothing of it seen.
                    return Err(ParseError::Truncated { message: kind, within: "head" });
                }
                self.lose_head_end(kind, ts)?;
                continue;
            };
            let progress = body.skip(uncaptured);
            uncaptured -= progress.consumed.min(uncaptured);
            if let Some(kept) = self.kept_body(kind) {
                kept.lose(progress.payload);
            }
            self.body_progress(kind, progress.payload, progress.done, ts);
            if progress.consumed == 0 && !progress.done {
                self.lose_body_framing(kind)?;
            }
        }
        Ok(())
    }

    /// `framed` is false for a head whose end was not captured: the request
    /// goes unframed (see the module documentation).
    fn start_request(&mut self, head: RequestHead, start_ns: u64, ts: u64, framed: bool) -> Result<(), ParseError> {
        if self.pending.len() >= MAX_PIPELINED {
            return Err(ParseError::TooManyPipelined { limit: MAX_PIPELINED });
        }
        // A new request is where an unframed response ends.
        self.end_unframed(MessageKind::Response);
        let body = if framed {
            head.body()?
        } else {
            if self.awaiting_response().is_some() {
                // Pipelined: the response that would end it may answer another.
                return Err(ParseError::Truncated { message: MessageKind::Request, within: "partial head" });
            }
            self.requests.sync = Sync::Unframed;
            self.requests_were_unframed = true;
            None
        };
        let limit = self.policy.as_ref().map_or(0, |p| p.keep_limit(&head.method, &head.target, head.host.as_deref()));
        let kept = (limit > 0).then(|| Box::new(KeptBodies::new(limit, &head.content_encoding)));
        self.pending.push_back(Pending {
            kept,
            request_end_ns: (framed && body.is_none()).then_some(ts),
            method: head.method,
            method_kind: head.method_kind,
            target: head.target,
            version: head.version,
            host: head.host,
            request_start_ns: start_ns,
            request_body_size: 0,
            h2c_upgrade: head.h2c_upgrade,
            status: None,
            response_start_ns: None,
            response_end_ns: None,
            response_body_size: 0,
        });
        self.requests.body = body;
        Ok(())
    }

    /// `framed` is false for a head whose end was not captured: the response
    /// goes unframed (see the module documentation).
    fn start_response(&mut self, head: ResponseHead, start_ns: u64, ts: u64, framed: bool) -> Result<(), ParseError> {
        // 100 Continue, 102, 103: the final response is still to come.
        if head.is_interim() {
            return if framed {
                Ok(())
            } else {
                // Its end is where the final response starts, in the same direction.
                Err(ParseError::Truncated { message: MessageKind::Response, within: "partial head" })
            };
        }
        let answering = self.awaiting_response();
        if answering.is_none() && self.requests_were_unframed {
            return Err(ParseError::Desynchronized {
                message: MessageKind::Response,
                reason: "a response answers no request seen: requests were pipelined in bytes not captured",
            });
        }
        // A final response is where an unframed request ends.
        self.end_unframed(MessageKind::Request);
        let method_kind = answering.map_or(MethodKind::Other, |i| self.pending[i].method_kind);
        self.orphan_response = answering.is_none();
        if let Some(i) = answering {
            let p = &mut self.pending[i];
            p.status = Some(head.status);
            p.response_start_ns = Some(start_ns);
            if let Some(kept) = p.kept.as_deref_mut() {
                kept.response_content_type = head.content_type.to_string_opt();
                kept.response_content_encoding = head.content_encoding.to_string_opt();
            }
        }
        if !framed && !head.switches(method_kind) {
            if self.awaiting_response().is_some() {
                // Pipelined: the next request, which would end it, already came.
                return Err(ParseError::Truncated { message: MessageKind::Response, within: "partial head" });
            }
            self.responses.sync = Sync::Unframed;
            return Ok(());
        }
        match head.body(method_kind) {
            ResponseBody::Some(body) => self.responses.body = Some(body),
            ResponseBody::None => self.body_progress(MessageKind::Response, 0, true, ts),
            ResponseBody::Switched => {
                match answering.filter(|&i| head.status == 101 && head.upgrade_h2c && self.pending[i].h2c_upgrade) {
                    // Its answer comes in HTTP/2, on stream 1.
                    Some(index) => self.h2c_switch = Some(H2cSwitch { index, offset: 0, ts }),
                    None => self.body_progress(MessageKind::Response, 0, true, ts),
                }
                self.state = State::Switched;
            }
        }
        Ok(())
    }

    /// Uncaptured bytes follow a head that has not ended: degrade it if its
    /// start line was captured.
    fn lose_head_end(&mut self, kind: MessageKind, ts: u64) -> Result<(), ParseError> {
        let (partial, start_ns) = self.stream(kind).head.take();
        let cut = ParseError::Truncated { message: kind, within: "partial head" };
        match kind {
            MessageKind::Request => match head::parse_request_start(&partial)? {
                Some(head) => self.start_request(head, start_ns, ts, false),
                None => Err(cut),
            },
            MessageKind::Response => match head::parse_response_start(&partial)? {
                Some(head) => self.start_response(head, start_ns, ts, false),
                None => Err(cut),
            },
        }
    }

    /// The chunk framing of the body in progress was not captured: degrade
    /// the message if its end can still be told by the other direction.
    fn lose_body_framing(&mut self, kind: MessageKind) -> Result<(), ParseError> {
        let followable = match kind {
            // Only its own (final) response can end it, so that response must
            // not have come yet, and no other request may be waiting for one.
            MessageKind::Request => {
                self.responses.sync != Sync::Unframed
                    && self.pending.back().is_some_and(|p| p.status.is_none())
                    && self.pending.iter().filter(|p| p.status.is_none()).count() == 1
            }
            // The next request ends it, so none may have come yet.
            MessageKind::Response => self.requests.sync != Sync::Unframed && self.awaiting_response().is_none(),
        };
        if !followable {
            return Err(ParseError::Truncated { message: kind, within: "chunk framing" });
        }
        if kind == MessageKind::Request {
            self.requests_were_unframed = true;
        }
        let stream = self.stream(kind);
        stream.body = None;
        stream.sync = Sync::Unframed;
        Ok(())
    }

    /// The other direction started a message: an unframed message this way
    /// ends with its last chunk, and the next chunk must start a new one.
    fn end_unframed(&mut self, kind: MessageKind) {
        let stream = self.stream(kind);
        if stream.sync != Sync::Unframed {
            return;
        }
        stream.sync = Sync::Resync;
        let last_ts = stream.last_ts;
        self.body_progress(kind, 0, true, last_ts);
    }

    fn body_progress(&mut self, kind: MessageKind, payload: u64, done: bool, ts: u64) {
        match kind {
            MessageKind::Request => {
                // Requests arrive in order, so the one with a body in
                // progress is the newest.
                if let Some(p) = self.pending.back_mut() {
                    p.request_body_size += payload;
                    if done {
                        p.request_end_ns = Some(ts);
                        if let Some(kept) = p.kept.as_deref_mut() {
                            kept.request.complete = true;
                        }
                    }
                }
                if done {
                    self.requests.body = None;
                }
            }
            MessageKind::Response => {
                if !self.orphan_response {
                    if let Some(i) = self.responding() {
                        let p = &mut self.pending[i];
                        p.response_body_size += payload;
                        if done {
                            p.response_end_ns = Some(ts);
                        }
                        if let Some(kept) = p.kept.as_deref_mut() {
                            if payload > 0 {
                                kept.response_body_start_ns.get_or_insert(ts);
                            }
                            kept.response.complete |= done;
                        }
                    }
                }
                if done {
                    self.responses.body = None;
                    self.orphan_response = false;
                }
            }
        }
    }

    /// The pending exchange whose body in `kind` is being read, if its bodies
    /// are kept.
    fn keeping(&self, kind: MessageKind) -> Option<usize> {
        let i = match kind {
            // Requests arrive in order: the one with a body in progress is the newest.
            MessageKind::Request => self.pending.len().checked_sub(1)?,
            MessageKind::Response if self.orphan_response => return None,
            MessageKind::Response => self.responding()?,
        };
        self.pending[i].kept.is_some().then_some(i)
    }

    fn kept_body(&mut self, kind: MessageKind) -> Option<&mut KeptBody> {
        let i = self.keeping(kind)?;
        self.pending[i].kept.as_deref_mut().map(|k| k.body_mut(kind))
    }

    /// The oldest request without a final response head.
    fn awaiting_response(&self) -> Option<usize> {
        self.pending.iter().position(|p| p.status.is_none())
    }

    /// The request whose final response is being read.
    fn responding(&self) -> Option<usize> {
        self.pending.iter().position(|p| p.status.is_some() && p.response_end_ns.is_none())
    }

    fn drain(&mut self, out: &mut impl Extend<HttpExchange>) {
        let Some(role) = self.role else { return };
        while self.pending.front().is_some_and(|p| p.request_end_ns.is_some() && p.response_end_ns.is_some()) {
            if let Some(p) = self.pending.pop_front() {
                out.extend(Some(p.into_exchange(role)));
            }
        }
    }
}

/// Before any request is seen, the first bytes decide: a status line means we
/// joined mid-connection and this is a response; anything else must be a
/// request. A first chunk too short to tell ("H") is taken as a request,
/// since connections start with one.
fn infer_role(direction: Direction, data: &[u8]) -> Role {
    let response = data.starts_with(b"HTTP/");
    Role::of(direction, !response)
}

impl Pending {
    fn into_exchange(self, role: Role) -> HttpExchange {
        HttpExchange {
            role,
            method: self.method,
            target: self.target,
            version: self.version,
            host: self.host,
            status: self.status,
            request_start_ns: self.request_start_ns,
            request_end_ns: self.request_end_ns.unwrap_or(self.request_start_ns),
            response_start_ns: self.response_start_ns,
            response_end_ns: self.response_end_ns.unwrap_or(self.request_start_ns),
            request_body_size: self.request_body_size,
            response_body_size: self.response_body_size,
            bodies: self.kept,
        }
    }
}
