mod fixtures;
mod seam;

use std::sync::Arc;

use crate::protocol::fixture::{feed_chunks, Segment};
pub(super) use crate::protocol::fixture::{whole, CONN_NS, SEG_NS};
use crate::protocol::Role;

use super::{error_name, KafkaOperation, KafkaParser, KafkaStatus, TopicNames};

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
        let end = feed_chunks(segs, c, role, capture, split, &mut |chunk| p.feed(chunk, &mut out));
        p.close(end, &mut out);
        unanswered += p.unanswered();
    }
    (out, unanswered)
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
