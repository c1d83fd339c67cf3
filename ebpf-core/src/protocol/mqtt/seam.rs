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
use crate::protocol::decoded::{Decoded, Decoder};
use crate::protocol::lenframe::Head;
use crate::protocol::{Chunk, Hint, Parser, ParserContext, Recognition, Record};

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

/// The registry's constructor: the decoder follows the connection from its
/// CONNECT when there is one; joined mid-way, the port tells the role.
pub fn new_parser(ctx: &ParserContext) -> Box<dyn Parser> {
    let (role, port_role) = (ctx.role, ctx.role_on_port(PORT));
    Decoded::boxed(move |chunk| {
        if role.is_some() || connect_start(chunk.data) != Some(false) {
            Some(MqttParser::new())
        } else {
            port_role.map(MqttParser::joined)
        }
    })
}

impl Decoder for MqttParser {
    type Op = MqttOperation;

    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MqttOperation>) {
        MqttParser::feed(self, chunk, out)
    }

    fn gap(&mut self) {
        // The flows in progress are forgotten (a packet identifier may have
        // been reused meanwhile), and given up.
        MqttParser::gap(self)
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<MqttOperation>) {
        MqttParser::close(self, ts_ns, out)
    }

    fn is_done(&self) -> bool {
        MqttParser::is_done(self)
    }

    fn given_up(&self) -> u64 {
        self.unfinished()
    }

    fn record(op: MqttOperation) -> Record {
        Record::Mqtt(op)
    }
}
