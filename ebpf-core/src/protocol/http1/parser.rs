//! The per-connection state machine: two message streams (requests one way,
//! responses the other) and the queue that pairs them.

use std::collections::VecDeque;

use super::body::Body;
use super::error::{MessageKind, ParseError};
use super::exchange::{HttpExchange, HttpVersion};
use super::head::{self, HeadBuffer, HeadStep, MethodKind, RequestHead, ResponseBody, ResponseHead};
use super::{sniff, MAX_PIPELINED};
use crate::protocol::{Chunk, Direction, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Framing was lost; nothing more can be trusted.
    Failed,
    /// The connection now carries another protocol (WebSocket, a tunnel).
    Switched,
    /// `close` was called.
    Closed,
}

/// Turns one connection's chunks into completed exchanges. Memory per
/// connection is bounded: at most one partial head per direction
/// (`MAX_HEAD_BYTES`) and `MAX_PIPELINED` requests awaiting responses.
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
}

/// One direction's progress through its messages.
#[derive(Debug, Default)]
struct Stream {
    head: HeadBuffer,
    body: Option<Body>,
    /// Timestamp of the last chunk seen this way.
    last_ts: u64,
}

#[derive(Debug)]
struct Pending {
    method: String,
    method_kind: MethodKind,
    target: String,
    version: HttpVersion,
    host: Option<String>,
    request_start_ns: u64,
    request_end_ns: Option<u64>,
    request_body_size: u64,
    status: Option<u16>,
    response_start_ns: Option<u64>,
    response_end_ns: Option<u64>,
    response_body_size: u64,
}

impl Default for Http1Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Parser {
    pub fn new() -> Self {
        Http1Parser {
            state: State::Open,
            role: None,
            pending: VecDeque::new(),
            requests: Stream::default(),
            responses: Stream::default(),
            orphan_response: false,
        }
    }

    /// Feed one chunk; push every exchange it completes onto `out`.
    /// On garbage, return Err and enter a failed state: later feeds return
    /// Ok(()) and do nothing.
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<HttpExchange>) -> Result<(), ParseError> {
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
    /// (no length, HTTP/1.0 style), and report requests that never got a
    /// response with status None.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<HttpExchange>) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        if let Some(body) = self.responses.body.take() {
            if !self.orphan_response {
                // A close-delimited body really ended with its last chunk; any
                // other body still in progress was cut short by the close.
                let end = if body.is_until_close() { self.responses.last_ts } else { ts_ns };
                if let Some(i) = self.responding() {
                    self.pending[i].response_end_ns = Some(end);
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

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
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

    fn feed_open(&mut self, chunk: &Chunk<'_>) -> Result<(), ParseError> {
        let data = chunk.data;
        let uncaptured = chunk.total_len.saturating_sub(data.len() as u64);
        if data.is_empty() && uncaptured == 0 {
            return Ok(());
        }
        let role = match self.role {
            Some(role) => role,
            // Bytes we cannot see cannot tell us which way requests go.
            None if data.is_empty() => return Ok(()),
            None => *self.role.insert(infer_role(chunk.direction, data)),
        };
        let request_direction = match role {
            Role::Server => Direction::Ingress,
            Role::Client => Direction::Egress,
        };
        let kind = if chunk.direction == request_direction { MessageKind::Request } else { MessageKind::Response };
        self.feed_stream(kind, chunk.ts_ns, data, uncaptured)
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
        self.stream(kind).last_ts = ts;
        while !data.is_empty() && self.state == State::Open {
            let stream = self.stream(kind);
            let consumed = if let Some(body) = stream.body.as_mut() {
                let progress = body.feed(data)?;
                self.body_progress(kind, progress.payload, progress.done, ts);
                usize::try_from(progress.consumed).unwrap_or(data.len())
            } else {
                match kind {
                    MessageKind::Request => match stream.head.step(data, ts, kind, head::parse_request)? {
                        HeadStep::NeedMore => data.len(),
                        HeadStep::Done { head, consumed, start_ns } => {
                            self.start_request(head, start_ns, ts)?;
                            consumed
                        }
                    },
                    MessageKind::Response => match stream.head.step(data, ts, kind, head::parse_response)? {
                        HeadStep::NeedMore => data.len(),
                        HeadStep::Done { head, consumed, start_ns } => {
                            self.start_response(head, start_ns, ts);
                            consumed
                        }
                    },
                }
            };
            data = data.get(consumed..).unwrap_or_default();
        }
        while uncaptured > 0 && self.state == State::Open {
            let stream = self.stream(kind);
            let within = if stream.head.is_empty() { "head" } else { "partial head" };
            let Some(body) = stream.body.as_mut() else {
                return Err(ParseError::Truncated { message: kind, within });
            };
            let progress = body.skip(uncaptured)?;
            if progress.consumed == 0 && !progress.done {
                return Err(ParseError::Truncated { message: kind, within: "body" });
            }
            uncaptured -= progress.consumed.min(uncaptured);
            self.body_progress(kind, progress.payload, progress.done, ts);
        }
        Ok(())
    }

    fn start_request(&mut self, head: RequestHead, start_ns: u64, ts: u64) -> Result<(), ParseError> {
        if self.pending.len() >= MAX_PIPELINED {
            return Err(ParseError::TooManyPipelined { limit: MAX_PIPELINED });
        }
        let body = head.body()?;
        self.pending.push_back(Pending {
            request_end_ns: body.is_none().then_some(ts),
            method: head.method,
            method_kind: head.method_kind,
            target: head.target,
            version: head.version,
            host: head.host,
            request_start_ns: start_ns,
            request_body_size: 0,
            status: None,
            response_start_ns: None,
            response_end_ns: None,
            response_body_size: 0,
        });
        self.requests.body = body;
        Ok(())
    }

    fn start_response(&mut self, head: ResponseHead, start_ns: u64, ts: u64) {
        // 100 Continue, 102, 103: the final response is still to come.
        if head.is_interim() {
            return;
        }
        let answering = self.awaiting_response();
        let method_kind = answering.map_or(MethodKind::Other, |i| self.pending[i].method_kind);
        self.orphan_response = answering.is_none();
        if let Some(i) = answering {
            let p = &mut self.pending[i];
            p.status = Some(head.status);
            p.response_start_ns = Some(start_ns);
        }
        match head.body(method_kind) {
            ResponseBody::Some(body) => self.responses.body = Some(body),
            ResponseBody::None => self.body_progress(MessageKind::Response, 0, true, ts),
            ResponseBody::Switched => {
                self.body_progress(MessageKind::Response, 0, true, ts);
                self.state = State::Switched;
            }
        }
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
                    }
                }
                if done {
                    self.responses.body = None;
                    self.orphan_response = false;
                }
            }
        }
    }

    /// The oldest request without a final response head.
    fn awaiting_response(&self) -> Option<usize> {
        self.pending.iter().position(|p| p.status.is_none())
    }

    /// The request whose final response is being read.
    fn responding(&self) -> Option<usize> {
        self.pending.iter().position(|p| p.status.is_some() && p.response_end_ns.is_none())
    }

    fn drain(&mut self, out: &mut Vec<HttpExchange>) {
        let Some(role) = self.role else { return };
        while self.pending.front().is_some_and(|p| p.request_end_ns.is_some() && p.response_end_ns.is_some()) {
            if let Some(p) = self.pending.pop_front() {
                out.push(p.into_exchange(role));
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
    match (direction, response) {
        (Direction::Ingress, false) | (Direction::Egress, true) => Role::Server,
        (Direction::Egress, false) | (Direction::Ingress, true) => Role::Client,
    }
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
        }
    }
}
