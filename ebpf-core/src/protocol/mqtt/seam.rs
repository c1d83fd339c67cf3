//! MQTT on the protocol seam: the recogniser, and the decoder behind the
//! `Parser` interface.
//!
//! # Recognition
//! A connection's first bytes are MQTT when they are a CONNECT packet
//! (`MQTT` level 4 or 5, `MQIsdp` level 3, and a client id): certain. A
//! broker reads a packet's first byte and its remaining length before the
//! rest (mosquitto a byte at a time), so a start of a CONNECT asks for the
//! next chunk (`NeedMore`). A connection older than the receiver shows
//! other packets first: a chunk that frames exactly into well-formed
//! packets is taken on MQTT's port, 1883, only.

use super::packet::{head, CONNECT};
use super::parser::frames_exactly;
use super::{looks_like_connect, MqttOperation, MqttParser};
use crate::protocol::lenframe::Head;
use crate::protocol::{Chunk, Hint, Parser, ParserContext, Progress, Recognition, Record, Role};

/// MQTT's well-known port (plaintext): a hint for connections joined mid-way.
pub const PORT: u16 = 1883;

/// The registry's recogniser (see the module docs).
pub fn recognise(hint: &Hint<'_>) -> Recognition {
    match connect_start(hint.data) {
        Some(true) => Recognition::Certain,
        None => Recognition::NeedMore,
        Some(false)
            if hint.role.is_none()
                && hint.on_port(PORT)
                && (frames_exactly(hint.data, hint.total_len, true)
                    || frames_exactly(hint.data, hint.total_len, false)) =>
        {
            Recognition::Plausible
        }
        Some(false) => Recognition::No,
    }
}

/// Whether `b` is a CONNECT (`Some(true)`), cannot be one, or is the start
/// of one too short to tell (`None`).
fn connect_start(b: &[u8]) -> Option<bool> {
    if looks_like_connect(b) {
        return Some(true);
    }
    if b.first() != Some(&(CONNECT << 4)) {
        return Some(false);
    }
    let mut h = Head::Need(2);
    let mut n = 1;
    while let Head::Need(_) = h {
        n += 1;
        if n > b.len() {
            return None;
        }
        h = head(&b[..n]);
    }
    let Head::Frame { head_len, body_len } = h else { return Some(false) };
    let body = &b[head_len..];
    if body.len() as u64 >= body_len {
        return Some(false);
    }
    let names: [&[u8]; 2] = [b"\0\x04MQTT", b"\0\x06MQIsdp"];
    if names.iter().any(|name| name.starts_with(&body[..body.len().min(name.len())])) {
        None
    } else {
        Some(false)
    }
}

/// The registry's constructor.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    Box::new(MqttConn { role: ctx.role, port_role: ctx.role_on_port(PORT), parser: None, ops: Vec::new(), reported: 0 })
}

/// One connection: the decoder, made on the first chunk (from the CONNECT
/// when there is one, else joined mid-way).
#[derive(Debug)]
struct MqttConn {
    role: Option<Role>,
    port_role: Option<Role>,
    parser: Option<MqttParser>,
    ops: Vec<MqttOperation>,
    /// Unfinished flows already handed over by `dropped`.
    reported: u64,
}

impl MqttConn {
    fn emit(&mut self, out: &mut Vec<Record>) {
        out.extend(self.ops.drain(..).map(Record::Mqtt));
    }
}

impl Parser for MqttConn {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        let parser = match &mut self.parser {
            Some(p) => p,
            None => {
                let p = if self.role.is_some() || connect_start(chunk.data) != Some(false) {
                    MqttParser::new()
                } else {
                    match self.port_role {
                        Some(role) => MqttParser::joined(role),
                        None => return Progress::Failed,
                    }
                };
                self.parser.insert(p)
            }
        };
        parser.feed(chunk, &mut self.ops);
        let done = parser.is_done();
        self.emit(out);
        if done {
            Progress::Failed
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, _out: &mut Vec<Record>) -> usize {
        // The decoder forgets the flows in progress (a packet identifier may
        // have been reused meanwhile): handed over by `dropped`.
        if let Some(p) = &mut self.parser {
            p.gap();
        }
        0
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        if let Some(p) = &mut self.parser {
            p.close(ts_ns, &mut self.ops);
        }
        self.emit(out);
    }

    fn dropped(&mut self) -> u64 {
        let total = self.parser.as_ref().map_or(0, MqttParser::unfinished);
        let new = total - self.reported;
        self.reported = total;
        new
    }
}
