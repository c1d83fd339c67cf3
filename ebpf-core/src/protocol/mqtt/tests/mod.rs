mod fixtures;

use crate::protocol::sql::fixture::{direction, Segment};
use crate::protocol::{Chunk, Role};

use super::{MqttOperation, MqttParser, MqttStatus};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, plus `CONN_NS * connection`.
pub(super) const SEG_NS: u64 = 1_000_000;
pub(super) const CONN_NS: u64 = 1_000_000_000_000;

/// Plays each connection of a recording in order through its own parser,
/// from `role`'s side, each segment split by `split` and truncated to
/// `capture` bytes. Returns the operations and the unfinished flows.
pub(super) fn play(
    conns: &[Vec<Segment>],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<MqttOperation>, u64) {
    let mut out = Vec::new();
    let mut unfinished = 0;
    for (c, segs) in conns.iter().enumerate() {
        let mut p = MqttParser::new();
        for (i, seg) in segs.iter().enumerate() {
            let dir = direction(seg, role);
            let mut at = 0;
            for (k, len) in split(i, seg.bytes.len()).into_iter().enumerate() {
                let piece = &seg.bytes[at..at + len];
                at += len;
                let data = &piece[..piece.len().min(capture)];
                let ts = CONN_NS * c as u64 + SEG_NS * (i as u64 + 1) + k as u64;
                p.feed(&Chunk { ts_ns: ts, direction: dir, data, total_len: len as u64 }, &mut out);
            }
        }
        p.close(&mut out);
        unfinished += p.unfinished();
    }
    (out, unfinished)
}

pub(super) fn whole(_: usize, len: usize) -> Vec<usize> {
    vec![len]
}

/// `COMMAND sent|recv [topic[/n]] [qN] [#id] [size=N] client STATUS`.
pub(super) fn describe(op: &MqttOperation) -> String {
    let mut s = format!("{} {}", op.command.name(), if op.sent { "sent" } else { "recv" });
    if let Some(t) = &op.topic {
        s += &format!(" {t}");
    }
    if op.topic_count > 1 {
        s += &format!("/{}", op.topic_count);
    }
    if let Some(q) = op.qos {
        s += &format!(" q{q}");
    }
    if let Some(id) = op.packet_id {
        s += &format!(" #{id}");
    }
    if let Some(n) = op.payload_size {
        s += &format!(" size={n}");
    }
    s += &format!(" {}", op.client_id.as_deref().unwrap_or("-"));
    s += &match op.status {
        MqttStatus::Ok => " ok".to_string(),
        MqttStatus::Unknown => " unknown".to_string(),
        MqttStatus::Error(c) => format!(" error={c:#04x}"),
    };
    s
}
