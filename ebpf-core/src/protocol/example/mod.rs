//! A complete protocol in miniature, the model for real ones (see
//! `../README.md`); compiled for tests only, and never registered.
//!
//! The echo protocol: the client sends `ECHO <word>\r\n`, the server answers
//! `OK <word>\r\n` or `ERR <code>\r\n`, in order (clients may pipeline).
//! Each call is an RPC: a span named `ECHO` with `rpc.system.name = echo`,
//! and `rpc.{server,client}.call.duration`.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::instruments::{DURATION, RPC_CLIENT, RPC_SERVER};
use crate::protocol::matching::Fifo;
use crate::protocol::{
    Chunk, ConnFacts, Direction, Hint, MetricFeed, Operation, Parser, ParserContext, Progress, Protocol, Recognition,
    Record, Role, SpanName, Value,
};

#[cfg(test)]
mod tests;

/// Most calls waiting for their answers on one connection.
const MAX_PENDING: usize = 32;
/// Longest line kept while waiting for its end.
const MAX_LINE: usize = 256;
/// The well-known port: a hint only.
const PORT: u16 = 7;

/// Its registry entry (a real protocol's line goes into `registry::PROTOCOLS`).
pub static PROTOCOL: Protocol = Protocol { name: "echo", enabled: |_| true, recognise, new_parser, shared: None };

/// The record: one call and its answer (or the lack of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoCall {
    pub role: Role,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `None`: no answer came (connection closed).
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The error code the server gave.
    Err(u16),
}

/// The recogniser: a request line start is certain. An answer (a
/// connection joined after its first request) is plausible, and certain on
/// the echo port: the port breaks the tie with other text protocols. A
/// first read too short to tell (`EC`: a server reading a byte at a time)
/// asks for the next chunk.
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    if hint.data.starts_with(b"ECHO ") {
        Recognition::Certain
    } else if b"ECHO ".starts_with(hint.data) {
        Recognition::NeedMore
    } else if hint.data.starts_with(b"OK ") || hint.data.starts_with(b"ERR ") {
        if hint.on_port(PORT) {
            Recognition::Certain
        } else {
            Recognition::Plausible
        }
    } else {
        Recognition::No
    }
}

pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(EchoParser { role: ctx.role, ..EchoParser::default() })
}

#[derive(Debug)]
struct EchoParser {
    /// From the kernel, else from the direction of the first request.
    role: Option<Role>,
    /// Calls sent, oldest first: answers match them in order.
    pending: Fifo<EchoCall>,
    /// The unfinished line of each direction: requests, answers.
    lines: [Vec<u8>; 2],
    /// After lost events: chunks are skipped until one starts a request.
    lost: bool,
}

impl Default for EchoParser {
    fn default() -> Self {
        Self { role: None, pending: Fifo::new(MAX_PENDING), lines: Default::default(), lost: false }
    }
}

impl EchoParser {
    /// One complete line: a request queues a call, an answer completes the oldest.
    fn line(&mut self, line: &[u8], request: bool, ts_ns: u64, out: &mut Vec<Record>) -> Progress {
        let role = self.role.unwrap_or(Role::Server);
        if request {
            if !line.starts_with(b"ECHO ") {
                return Progress::Failed;
            }
            let call = EchoCall { role, start_ns: ts_ns, end_ns: ts_ns, outcome: None };
            return match self.pending.push(call) {
                Ok(()) => Progress::Continue,
                // A peer that never reads its answers is not one we follow.
                Err(_) => Progress::Failed,
            };
        }
        let outcome = if line.starts_with(b"OK ") {
            Outcome::Ok
        } else if let Some(code) = line.strip_prefix(b"ERR ") {
            match std::str::from_utf8(code).ok().and_then(|c| c.trim().parse().ok()) {
                Some(code) => Outcome::Err(code),
                None => return Progress::Failed,
            }
        } else {
            return Progress::Failed;
        };
        // An answer to nothing we saw (we joined late): dropped.
        if let Some(mut call) = self.pending.pop() {
            call.end_ns = ts_ns;
            call.outcome = Some(outcome);
            out.push(Record::Example(call));
        }
        Progress::Continue
    }
}

impl Parser for EchoParser {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        // The first bytes are a request: whoever sent them is the client.
        let role = *self.role.get_or_insert(Role::of(chunk.direction, true));
        let request = chunk.direction == role.request_direction();
        if self.lost {
            // Resynchronise at the next message boundary: a chunk that starts a request.
            if !(request && chunk.data.starts_with(b"ECHO ")) {
                return Progress::Continue;
            }
            self.lost = false;
        }
        // Bytes past the capture cannot be parsed: where lines end is lost.
        if chunk.total_len > chunk.data.len() as u64 {
            return Progress::Failed;
        }
        // The direction's unfinished line, then this chunk: every complete
        // line is handled where it lies, the rest kept for the next chunk.
        let mut buf = std::mem::take(&mut self.lines[usize::from(!request)]);
        buf.extend_from_slice(chunk.data);
        let mut taken = 0;
        let mut progress = Progress::Continue;
        while let Some(end) = buf[taken..].windows(2).position(|w| w == b"\r\n") {
            progress = self.line(&buf[taken..taken + end], request, chunk.ts_ns, out);
            taken += end + 2;
            if progress != Progress::Continue {
                return progress;
            }
        }
        buf.drain(..taken);
        if buf.len() > MAX_LINE {
            return Progress::Failed;
        }
        self.lines[usize::from(!request)] = buf;
        progress
    }

    fn gap(&mut self, _out: &mut Vec<Record>) -> usize {
        self.lines = Default::default();
        self.lost = true;
        self.pending.clear()
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        for mut call in self.pending.drain() {
            call.end_ns = ts_ns;
            out.push(Record::Example(call));
        }
    }
}

/// The record as an operation: span and metrics, no protocol knowledge
/// needed past this point.
pub fn describe(call: &EchoCall, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
    let (kind, family) = match call.role {
        Role::Server => (SpanKind::Server, &RPC_SERVER),
        Role::Client => (SpanKind::Client, &RPC_CLIENT),
    };
    let mut op = Operation::new(SpanName::new("ECHO", None), kind, call.start_ns, call.end_ns);
    op.attr("rpc.system.name", "echo");
    op.attr("rpc.method", "ECHO");
    let error = match call.outcome {
        Some(Outcome::Ok) => None,
        Some(Outcome::Err(code)) => Some(Value::IntStr(i64::from(code))),
        None => Some(Value::Str("echo.response.missing")),
    };
    if let Some(ep) = &facts.endpoints {
        op.attr("network.peer.address", ep.peer.0);
        op.attr("network.peer.port", i64::from(ep.peer.1));
    }
    if let Some(e) = error {
        op.attr("error.type", e);
        op.failed = true;
    }
    let mut feed = MetricFeed::new(family);
    feed.attr("rpc.system.name", "echo");
    feed.attr("rpc.method", "ECHO");
    if let Some(e) = error {
        feed.attr("error.type", e);
    }
    feed.value(DURATION, op.duration_ns());
    op.metrics.push(feed);
    emit(&op);
}
