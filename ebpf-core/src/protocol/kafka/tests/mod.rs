mod fixtures;
mod seam;

use std::sync::Arc;

use crate::protocol::sql::fixture::{direction, Segment};
use crate::protocol::{Chunk, Role};

use super::{error_name, KafkaOperation, KafkaParser, KafkaStatus, TopicNames};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, plus `CONN_NS * connection`.
pub(super) const SEG_NS: u64 = 1_000_000;
const CONN_NS: u64 = 1_000_000_000_000;

/// Plays each connection of a recording in order through its own parser
/// (sharing one topic-name map, as a receiver does), from `role`'s side,
/// each segment split by `split` and truncated to `capture` bytes.
pub(super) fn play(
    conns: &[Vec<Segment>],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<KafkaOperation>, u64) {
    let names = Arc::new(TopicNames::new());
    let mut out = Vec::new();
    let mut unanswered = 0;
    for (c, segs) in conns.iter().enumerate() {
        let mut p = KafkaParser::new(names.clone());
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
        let end = CONN_NS * c as u64 + SEG_NS * (segs.len() as u64 + 1);
        p.close(end, &mut out);
        unanswered += p.unanswered();
    }
    (out, unanswered)
}

pub(super) fn whole(_: usize, len: usize) -> Vec<usize> {
    vec![len]
}

/// A short description of an operation for assertions:
/// `API vN topic[/count] pP n=COUNT group=G STATUS`.
pub(super) fn describe(op: &KafkaOperation) -> String {
    let mut s = format!("{} v{}", op.api.name().unwrap_or("?"), op.api_version);
    match (&op.topic, op.topic_id) {
        (Some(t), _) => s += &format!(" {t}"),
        (None, Some(_)) => s += " <id>",
        _ => {}
    }
    if op.topic_count > 1 {
        s += &format!("/{}", op.topic_count);
    }
    if let Some(p) = op.partition {
        s += &format!(" p{p}");
    }
    if let Some(n) = op.message_count {
        s += &format!(" n={n}");
    }
    if let Some(g) = &op.group {
        s += &format!(" group={g}");
    }
    s += match op.status {
        KafkaStatus::Ok => " ok",
        KafkaStatus::Unknown => " unknown",
        KafkaStatus::NoResponse => " no response",
        KafkaStatus::Error(_) => " ",
    };
    if let KafkaStatus::Error(code) = op.status {
        s += error_name(code).unwrap_or("?");
    }
    s
}
