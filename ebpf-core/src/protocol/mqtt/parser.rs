//! The per-connection state machine.
//!
//! # Operations
//! - CONNECT completes at the CONNACK; PINGREQ at the next PINGRESP;
//!   SUBSCRIBE and UNSUBSCRIBE at the SUBACK/UNSUBACK with their packet
//!   identifier; DISCONNECT when sent.
//! - PUBLISH, in either direction: QoS 0 completes with the packet; QoS 1
//!   at the PUBACK coming the other way with its packet identifier; QoS 2
//!   at the PUBCOMP after PUBREC and PUBREL (or at a PUBREC that refuses
//!   it). Each side numbers its own PUBLISHes, so flows are keyed by the
//!   publishing side and the identifier.
//!
//! # Lost framing and lost events
//! When uncaptured bytes hide a packet boundary, a remaining length or a
//! first byte is impossible, or after `gap`, the direction (or both) waits
//! for a chunk that frames exactly into well-formed packets (whole, or one
//! PUBLISH whose remaining length is the rest of the chunk). Flows in
//! progress are dropped then (counted in `unfinished`): a packet
//! identifier may have been reused while events were lost, so an
//! acknowledgement after the gap cannot be trusted to end an earlier flow.

use std::collections::{HashMap, VecDeque};

use compact_str::CompactString;

use super::packet::{self, *};
use super::{MqttCommand, MqttOperation, MqttStatus, MAX_ALIASES, MAX_PENDING};
use crate::protocol::lenframe::{Frame, Framer, Head, Outcome};
use crate::protocol::{Chunk, Direction, Role};

/// Body bytes kept per packet: CONNECT up to its client id, a PUBLISH up
/// to its properties, SUBSCRIBE filters.
const KEEP_BYTES: usize = 1024;

/// Bytes gathered at most before deciding whether a connection starts with
/// a CONNECT (its variable header, MQTT 5 properties and client id).
const FIRST_BYTES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Open,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREC seen, waiting for PUBREL.
    Received,
    /// PUBREL seen, waiting for PUBCOMP.
    Released,
}

#[derive(Debug)]
struct Flow {
    op: MqttOperation,
    stage: Stage,
}

/// Everything but the framers, so that their callbacks can borrow it.
#[derive(Debug)]
struct Conn {
    role: Role,
    /// The CONNECT's protocol level.
    level: Option<u8>,
    client_id: Option<CompactString>,
    connect: Option<MqttOperation>,
    /// PUBLISH flows by (published by the client, packet identifier).
    flows: HashMap<(bool, u16), Flow>,
    subscribes: HashMap<u16, MqttOperation>,
    unsubscribes: HashMap<u16, MqttOperation>,
    pings: VecDeque<MqttOperation>,
    /// Topic aliases, per publishing side (client, broker).
    aliases: [HashMap<u16, CompactString>; 2],
    unfinished: u64,
    /// A packet that cannot be what it claims: the direction is lost.
    bad: bool,
    /// Both directions are followed (framed from a known start).
    synced: bool,
    /// An operation in progress began while a direction was not followed:
    /// its acknowledgement may have gone unseen.
    uncertain: bool,
}

/// Turns one MQTT connection's chunks into `MqttOperation`s.
#[derive(Debug)]
pub struct MqttParser {
    state: State,
    /// The direction of the client's packets.
    client_dir: Option<Direction>,
    /// Framers and sync flags: [from the client, from the broker].
    framers: [Framer; 2],
    synced: [bool; 2],
    /// The connection's first reads, until they show a CONNECT.
    first: Vec<u8>,
    first_ts: u64,
    conn: Conn,
}

impl MqttParser {
    /// A parser for a connection followed from its first byte: it must
    /// start with the client's CONNECT.
    pub fn new() -> Self {
        MqttParser {
            state: State::Start,
            client_dir: None,
            framers: [Framer::new(packet::head, KEEP_BYTES), Framer::new(packet::head, KEEP_BYTES)],
            synced: [true, true],
            first: Vec::new(),
            first_ts: 0,
            conn: Conn {
                role: Role::Client,
                level: None,
                client_id: None,
                connect: None,
                flows: HashMap::new(),
                subscribes: HashMap::new(),
                unsubscribes: HashMap::new(),
                pings: VecDeque::new(),
                aliases: [HashMap::new(), HashMap::new()],
                unfinished: 0,
                bad: false,
                synced: true,
                uncertain: false,
            },
        }
    }

    /// A parser for a connection joined mid-stream, the traced process being
    /// `role` (the MQTT client or the broker). The protocol level is
    /// unknown: MQTT 5 properties cannot be told apart, so payload sizes
    /// stay unknown.
    pub fn joined(role: Role) -> Self {
        let mut p = MqttParser::new();
        p.state = State::Open;
        p.set_role(role);
        p.synced = [false, false];
        p
    }

    fn set_role(&mut self, role: Role) {
        self.conn.role = role;
        self.client_dir = Some(role.request_direction());
    }

    /// Flows that never completed (lost events, closed early).
    pub fn unfinished(&self) -> u64 {
        self.conn.unfinished
    }

    /// The protocol level the CONNECT asked for.
    pub fn protocol_level(&self) -> Option<u8> {
        self.conn.level
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MqttOperation>) {
        match self.state {
            State::Done => return,
            State::Start if chunk.data.is_empty() => return,
            State::Start => {
                if !self.first_bytes(chunk, out) {
                    return;
                }
            }
            State::Open => {}
        }
        let from_client = Some(chunk.direction) == self.client_dir;
        let side = usize::from(!from_client);
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        if !self.synced[side] {
            if !frames_exactly(chunk.data, chunk.total_len, from_client) {
                return;
            }
            self.framers[side].reset();
            self.synced[side] = true;
        }
        let conn = &mut self.conn;
        conn.synced = self.synced == [true, true];
        let mut outcome =
            self.framers[side].feed(chunk.data, uncaptured, chunk.ts_ns, &mut |f| conn.on_packet(f, from_client, out));
        if std::mem::take(&mut conn.bad) {
            outcome = Outcome::Garbage;
            self.framers[side].reset();
        }
        if outcome != Outcome::Framed {
            self.synced[side] = false;
            self.conn.forget_flows();
        }
    }

    /// Decides whether the connection starts with a CONNECT, gathering its
    /// first (fully captured) reads until it can tell. Returns whether to
    /// go on with `chunk`.
    fn first_bytes(&mut self, chunk: &Chunk<'_>, out: &mut Vec<MqttOperation>) -> bool {
        if self.first.is_empty() {
            self.first_ts = chunk.ts_ns;
            self.client_dir = Some(chunk.direction);
        }
        let complete = chunk.data.len() as u64 == chunk.total_len;
        let mut head = std::mem::take(&mut self.first);
        let before = head.len();
        head.extend_from_slice(&chunk.data[..chunk.data.len().min(FIRST_BYTES)]);
        let decided = looks_like_connect(&head);
        if Some(chunk.direction) != self.client_dir || head[0] != CONNECT << 4 {
            self.state = State::Done;
            return false;
        }
        if !decided {
            if complete && head.len() < FIRST_BYTES && !whole_packet(&head) {
                self.first = head;
            } else {
                self.state = State::Done;
            }
            return false;
        }
        let role = if chunk.direction == Direction::Egress { Role::Client } else { Role::Server };
        self.set_role(role);
        self.state = State::Open;
        if before > 0 {
            let conn = &mut self.conn;
            let _ = self.framers[0].feed(&head[..before], 0, self.first_ts, &mut |f| conn.on_packet(f, true, out));
        }
        true
    }

    /// Lost events: both directions wait for a point to resynchronise on.
    pub fn gap(&mut self) {
        if self.state == State::Start {
            self.state = State::Done;
            return;
        }
        self.synced = [false, false];
        for f in &mut self.framers {
            f.reset();
        }
        self.conn.forget_flows();
    }

    /// The connection closed at `ts_ns`: operations still waiting for their
    /// acknowledgement are reported without it when none can have been
    /// missed (both directions were followed since they began), else
    /// counted unfinished.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<MqttOperation>) {
        let c = &mut self.conn;
        if self.state == State::Open && self.synced == [true, true] && !c.uncertain {
            let mut waiting: Vec<MqttOperation> = c.connect.take().into_iter().collect();
            waiting.extend(c.flows.drain().map(|(_, f)| f.op));
            waiting.extend(c.subscribes.drain().map(|(_, op)| op));
            waiting.extend(c.unsubscribes.drain().map(|(_, op)| op));
            waiting.extend(c.pings.drain(..));
            waiting.sort_by_key(|op| (op.start_ns, op.packet_id));
            out.extend(waiting.into_iter().map(|mut op| {
                op.status = MqttStatus::NoResponse;
                op.end_ns = ts_ns;
                op
            }));
        }
        self.conn.forget_flows();
        self.state = State::Done;
    }
}

impl Default for MqttParser {
    fn default() -> Self {
        MqttParser::new()
    }
}

impl Conn {
    fn forget_flows(&mut self) {
        self.unfinished += (self.flows.len()
            + self.subscribes.len()
            + self.unsubscribes.len()
            + self.pings.len()
            + usize::from(self.connect.is_some())) as u64;
        self.flows.clear();
        self.subscribes.clear();
        self.unsubscribes.clear();
        self.pings.clear();
        self.connect = None;
        self.uncertain = false;
    }

    /// An operation that waits for its acknowledgement begins now.
    fn waits(&mut self) {
        self.uncertain |= !self.synced;
    }

    /// An operation started by a packet (its status and end set later).
    fn op(&self, command: MqttCommand, from_client: bool, f: &Frame<'_>) -> MqttOperation {
        MqttOperation {
            command,
            sent: from_client == (self.role == Role::Client),
            protocol_level: self.level,
            client_id: self.client_id.clone(),
            topic: None,
            topic_count: 0,
            qos: None,
            retain: false,
            packet_id: None,
            payload_size: None,
            status: MqttStatus::Unknown,
            start_ns: f.start_ns,
            end_ns: f.end_ns,
            role: self.role,
        }
    }

    fn v5(&self) -> Option<bool> {
        self.level.map(|l| l == 5)
    }

    fn on_packet(&mut self, f: Frame<'_>, from_client: bool, out: &mut Vec<MqttOperation>) {
        let typ = f.head[0] >> 4;
        let flags = f.head[0] & 0x0f;
        if !sent_by(typ, from_client) {
            self.bad = true;
            return;
        }
        let b = f.body.prefix();
        let whole = f.body.is_whole();
        match typ {
            CONNECT => {
                let Some((level, id)) = packet::connect(b) else {
                    self.bad = true;
                    return;
                };
                self.level = Some(level);
                self.client_id = std::str::from_utf8(id).ok().filter(|s| !s.is_empty()).map(CompactString::from);
                let op = self.op(MqttCommand::Connect, from_client, &f);
                self.connect = Some(op);
                self.waits();
            }
            CONNACK => {
                let Some(mut op) = self.connect.take() else { return };
                // Acknowledge flags, then the return (3.1.1) or reason (5) code.
                let status = match b.get(1) {
                    Some(0) => MqttStatus::Ok,
                    Some(&code) => MqttStatus::Error(code),
                    None => MqttStatus::Unknown,
                };
                op.status = status;
                op.end_ns = f.end_ns;
                out.push(op);
            }
            PUBLISH => self.on_publish(&f, flags, from_client, out),
            PUBACK | PUBREC | PUBREL | PUBCOMP => self.on_ack(typ, &f, from_client, out),
            SUBSCRIBE | UNSUBSCRIBE => {
                let command = if typ == SUBSCRIBE { MqttCommand::Subscribe } else { MqttCommand::Unsubscribe };
                let Some(op) = self.subscription(command, &f, from_client, whole) else {
                    self.bad = true;
                    return;
                };
                let Some(id) = op.packet_id else { return };
                let map = if typ == SUBSCRIBE { &mut self.subscribes } else { &mut self.unsubscribes };
                if map.len() < MAX_PENDING {
                    map.insert(id, op);
                    self.waits();
                }
            }
            SUBACK | UNSUBACK => {
                let Some(id) = u16_at(b, 0) else { return };
                let map = if typ == SUBACK { &mut self.subscribes } else { &mut self.unsubscribes };
                let Some(mut op) = map.remove(&id) else { return };
                op.status = self.ack_codes(typ, b, whole);
                op.end_ns = f.end_ns;
                out.push(op);
            }
            PINGREQ if self.pings.len() < 16 => {
                let op = self.op(MqttCommand::Ping, from_client, &f);
                self.pings.push_back(op);
                self.waits();
            }
            PINGRESP => {
                if let Some(mut op) = self.pings.pop_front() {
                    op.status = MqttStatus::Ok;
                    op.end_ns = f.end_ns;
                    out.push(op);
                }
            }
            DISCONNECT => {
                let mut op = self.op(MqttCommand::Disconnect, from_client, &f);
                // 3.1.1 has no reason code; 5 may omit it (normal disconnection).
                op.status = match (self.v5(), b.first()) {
                    (Some(true), Some(&code)) if code >= 0x80 => MqttStatus::Error(code),
                    (Some(true), _) | (Some(false), _) => MqttStatus::Ok,
                    (None, _) => MqttStatus::Unknown,
                };
                out.push(op);
            }
            _ => {} // AUTH (MQTT 5 enhanced authentication) passes through.
        }
    }

    fn on_publish(&mut self, f: &Frame<'_>, flags: u8, from_client: bool, out: &mut Vec<MqttOperation>) {
        let Some(p) = packet::publish(f.body.prefix(), flags, f.body.len(), self.v5()) else {
            // A topic or packet identifier beyond the capture: uncertain, not wrong.
            if f.body.prefix().len() as u64 == f.body.len() {
                self.bad = true;
            }
            return;
        };
        let aliases = &mut self.aliases[usize::from(!from_client)];
        let topic = match (topic_text(p.topic), p.alias) {
            (Some(""), Some(alias)) => aliases.get(&alias).cloned(),
            (Some(t), alias) if !t.is_empty() => {
                let t = CompactString::from(t);
                if let Some(alias) = alias {
                    if aliases.len() < MAX_ALIASES || aliases.contains_key(&alias) {
                        aliases.insert(alias, t.clone());
                    }
                }
                Some(t)
            }
            (Some(_), _) => None,
            (None, _) => {
                self.bad = true;
                return;
            }
        };
        let qos = (flags >> 1) & 3;
        let mut op = self.op(MqttCommand::Publish, from_client, f);
        op.topic = topic;
        op.qos = Some(qos);
        op.retain = flags & 1 != 0;
        op.packet_id = p.packet_id;
        op.payload_size = p.payload;
        match p.packet_id {
            None => out.push(op),
            Some(id) => {
                let key = (from_client, id);
                if flags & 0x08 != 0 && self.flows.contains_key(&key) {
                    return; // A retransmission (DUP) of a flow in progress.
                }
                if self.flows.len() >= MAX_PENDING {
                    self.unfinished += 1;
                    return;
                }
                self.waits();
                if self.flows.insert(key, Flow { op, stage: Stage::Published }).is_some() {
                    self.unfinished += 1;
                }
            }
        }
    }

    fn on_ack(&mut self, typ: u8, f: &Frame<'_>, from_client: bool, out: &mut Vec<MqttOperation>) {
        let b = f.body.prefix();
        let Some(id) = u16_at(b, 0) else { return };
        // PUBREL travels the PUBLISH's way; the others come back.
        let publisher = if typ == PUBREL { from_client } else { !from_client };
        let Some(flow) = self.flows.get_mut(&(publisher, id)) else { return };
        // A reason code follows the identifier only in MQTT 5 (absent: success).
        let reason = if f.body.len() > 2 { b.get(2).copied() } else { Some(0) };
        let qos = flow.op.qos.unwrap_or(0);
        let (done, status) = match (typ, flow.stage, qos) {
            (PUBACK, Stage::Published, 1) => (true, reason),
            (PUBREC, Stage::Published, 2) => match reason {
                Some(code) if code >= 0x80 => (true, Some(code)),
                _ => {
                    flow.stage = Stage::Received;
                    (false, None)
                }
            },
            (PUBREL, Stage::Received, 2) => {
                flow.stage = Stage::Released;
                (false, None)
            }
            (PUBCOMP, Stage::Released, 2) => (true, reason),
            _ => (false, None),
        };
        if !done {
            return;
        }
        let Some(mut flow) = self.flows.remove(&(publisher, id)) else { return };
        flow.op.status = match status {
            Some(code) if code >= 0x80 => MqttStatus::Error(code),
            Some(_) => MqttStatus::Ok,
            None => MqttStatus::Unknown,
        };
        flow.op.end_ns = f.end_ns;
        out.push(flow.op);
    }

    /// A SUBSCRIBE or UNSUBSCRIBE: its identifier, first filter (and its
    /// requested QoS) and filter count (when the whole packet was seen).
    fn subscription(
        &self,
        command: MqttCommand,
        f: &Frame<'_>,
        from_client: bool,
        whole: bool,
    ) -> Option<MqttOperation> {
        let b = f.body.prefix();
        let mut op = self.op(command, from_client, f);
        let id = u16_at(b, 0)?;
        let mut i = 2;
        if self.v5() == Some(true) {
            i = properties_at(b, i)?.0;
        } else if self.v5().is_none() {
            // Unknown level: properties cannot be told from a filter.
            op.packet_id = Some(id);
            return Some(op);
        }
        op.packet_id = Some(id);
        let options = usize::from(command == MqttCommand::Subscribe);
        let mut count = 0u32;
        while i < b.len() {
            let Some((filter, next)) = string_at(b, i) else { break };
            let qos = if options == 1 { b.get(next).map(|o| o & 3) } else { None };
            if qos == Some(3) {
                return None; // A malformed packet (QoS 3 does not exist).
            }
            if count == 0 {
                op.topic = Some(CompactString::from(topic_text(filter)?));
                op.qos = qos;
            }
            count += 1;
            i = next + options;
        }
        if count == 0 {
            return None;
        }
        // Counted only when every filter was seen.
        op.topic_count = if whole && i == b.len() { count } else { 0 };
        Some(op)
    }

    /// A SUBACK's or UNSUBACK's reason codes: the first failure, else Ok.
    fn ack_codes(&self, typ: u8, b: &[u8], whole: bool) -> MqttStatus {
        let mut i = 2;
        match self.v5() {
            Some(true) => match properties_at(b, i) {
                Some((end, _)) => i = end,
                None => return MqttStatus::Unknown,
            },
            // 3.1.1's UNSUBACK has no codes: success.
            Some(false) if typ == UNSUBACK => return MqttStatus::Ok,
            Some(false) => {}
            None => return MqttStatus::Unknown,
        }
        if let Some(&code) = b.get(i..).unwrap_or(&[]).iter().find(|c| **c >= 0x80) {
            return MqttStatus::Error(code);
        }
        if whole {
            MqttStatus::Ok
        } else {
            MqttStatus::Unknown
        }
    }
}

/// Whether `b` holds a whole packet (so that a CONNECT check on it is final).
fn whole_packet(b: &[u8]) -> bool {
    (2..=b.len().min(5)).any(|n| match packet::head(&b[..n]) {
        Head::Frame { head_len, body_len } => (b.len() - head_len) as u64 >= body_len,
        Head::Bad => true,
        Head::Need(_) => false,
    })
}

/// Whether a chunk (`data` captured of `total` bytes) is well-formed packets
/// from its first byte to its end, in a direction (`from_client`): all of
/// it captured, or one PUBLISH whose remaining length is the rest of it.
pub(super) fn frames_exactly(data: &[u8], total: u64, from_client: bool) -> bool {
    let mut i = 0usize;
    let mut any = false;
    while i < data.len() {
        let rest = &data[i..];
        let mut h = Head::Need(2);
        let mut n = 1;
        while let Head::Need(_) = h {
            n += 1;
            if n > rest.len().min(5) {
                return false;
            }
            h = packet::head(&rest[..n]);
        }
        let Head::Frame { head_len, body_len } = h else { return false };
        let typ = rest[0] >> 4;
        if !sent_by(typ, from_client) || typ == CONNECT && i > 0 {
            return false;
        }
        let end = (i + head_len) as u64 + body_len;
        let body = &rest[head_len..rest.len().min(head_len + body_len as usize)];
        let captured = end <= data.len() as u64;
        if !(captured || typ == PUBLISH && end == total) {
            return false;
        }
        if !plausible(typ, rest[0] & 0x0f, body, body_len) {
            return false;
        }
        any = true;
        i = end as usize;
    }
    any && i as u64 == total
}

/// A packet's body is consistent with its type.
fn plausible(typ: u8, flags: u8, body: &[u8], body_len: u64) -> bool {
    match typ {
        PINGREQ | PINGRESP => body_len == 0,
        // 2 bytes in 3.1.1; 5 adds a reason code and properties.
        PUBACK | PUBREC | PUBREL | PUBCOMP => body_len >= 2 && u16_at(body, 0).is_some_and(|id| id != 0),
        CONNACK => body_len >= 2 && body.first().is_some_and(|f| f & 0xfe == 0),
        PUBLISH => packet::publish(body, flags, body_len, None)
            .is_some_and(|p| topic_text(p.topic).is_some_and(|t| !t.contains(['+', '#']))),
        // Identifier, then filters (SUBSCRIBE, UNSUBSCRIBE) or reason codes
        // (SUBACK; UNSUBACK in MQTT 5 only).
        SUBSCRIBE | UNSUBSCRIBE => body_len >= 5 && u16_at(body, 0).is_some_and(|id| id != 0),
        SUBACK => body_len >= 3 && u16_at(body, 0).is_some_and(|id| id != 0),
        UNSUBACK => body_len >= 2 && u16_at(body, 0).is_some_and(|id| id != 0),
        CONNECT => packet::connect(body).is_some(),
        DISCONNECT | AUTH => body_len <= 2 || body.len() as u64 == body_len,
        _ => false,
    }
}
