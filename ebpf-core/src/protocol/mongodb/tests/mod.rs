mod fixtures;
mod seam;

use crate::protocol::fixture::{feed_chunks, Segment};
pub(super) use crate::protocol::fixture::{whole, CONN_NS, SEG_NS};
use crate::protocol::{Chunk, Role};

use super::{MongoOperation, MongoParser, MongoStatus};

/// Plays each connection of a recording through its own parser, from
/// `role`'s side, each segment split by `split` and truncated to `capture`.
pub(super) fn play(
    conns: &[Vec<Segment>],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<MongoOperation>, u64) {
    let mut out = Vec::new();
    let mut unanswered = 0;
    for (c, segs) in conns.iter().enumerate() {
        let mut p = MongoParser::new();
        let end = feed_chunks(segs, c, role, capture, split, &mut |chunk| p.feed(chunk, &mut out));
        p.close(end, &mut out);
        unanswered += p.unanswered();
    }
    (out, unanswered)
}

/// `command db.collection [batch=N] [docs=N] STATUS`.
pub(super) fn describe(op: &MongoOperation) -> String {
    let mut s = op.command.as_deref().unwrap_or("?").to_string();
    s += &format!(" {}.{}", op.database.as_deref().unwrap_or("-"), op.collection.as_deref().unwrap_or("-"));
    if let Some(n) = op.batch_size {
        s += &format!(" batch={n}");
    }
    if let Some(n) = op.returned_documents {
        s += &format!(" docs={n}");
    }
    if op.compressed {
        s += " compressed";
    }
    s += &match &op.status {
        MongoStatus::Ok => " ok".to_string(),
        MongoStatus::Unknown => " unknown".to_string(),
        MongoStatus::NoResponse => " no response".to_string(),
        MongoStatus::Error { code, code_name } => {
            format!(" error={}/{}", code.map_or("-".into(), |c| c.to_string()), code_name.as_deref().unwrap_or("-"))
        }
    };
    s
}

/// A message: header (length, requestID, responseTo, opCode) and body.
fn message(request_id: i32, response_to: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(16 + body.len() as i32).to_le_bytes());
    m.extend_from_slice(&request_id.to_le_bytes());
    m.extend_from_slice(&response_to.to_le_bytes());
    m.extend_from_slice(&op.to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn feed_all(p: &mut MongoParser, msgs: &[(bool, Vec<u8>)]) -> Vec<MongoOperation> {
    let mut out = Vec::new();
    for (i, (client, m)) in msgs.iter().enumerate() {
        let direction = if *client { crate::protocol::Direction::Egress } else { crate::protocol::Direction::Ingress };
        p.feed(&Chunk { ts_ns: i as u64 + 1, direction, data: m, total_len: m.len() as u64 }, &mut out);
    }
    out
}

/// OP_COMPRESSED (as a driver negotiating zlib sends it; the compressed
/// bytes are not read): counted, matched, without a command.
#[test]
fn compressed_messages_are_counted_not_read() {
    let mut body = Vec::new();
    body.extend_from_slice(&super::OP_MSG.to_le_bytes());
    body.extend_from_slice(&100i32.to_le_bytes()); // uncompressed size
    body.push(2); // zlib
    body.extend_from_slice(&[0x78, 0x9c, 1, 2, 3, 4]);
    let req = message(9, 0, super::OP_COMPRESSED, &body);
    let resp = message(77, 9, super::OP_COMPRESSED, &body);
    let ops = feed_all(&mut MongoParser::new(), &[(true, req), (false, resp)]);
    assert_eq!(ops.iter().map(describe).collect::<Vec<_>>(), ["? -.- compressed unknown"]);
    assert_eq!(ops[0].op_code, super::OP_COMPRESSED);
}

/// An OP_MSG with moreToCome (an unacknowledged write) gets no reply.
#[test]
fn more_to_come_requests_complete_when_sent() {
    let mut doc = Vec::new();
    doc.extend_from_slice(b"\x02insert\0\x07\0\0\0orders\0\x02$db\0\x05\0\0\0shop\0\0");
    let mut body = 2u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&(4 + doc.len() as i32).to_le_bytes());
    body.extend_from_slice(&doc);
    let mut p = MongoParser::new();
    let ops = feed_all(&mut p, &[(true, message(5, 0, super::OP_MSG, &body))]);
    assert_eq!(ops.iter().map(describe).collect::<Vec<_>>(), ["insert shop.orders unknown"]);
    assert_eq!((ops[0].start_ns, ops[0].end_ns), (1, 1));
    p.close(2, &mut Vec::new());
    assert_eq!(p.unanswered(), 0);
}

#[test]
fn other_protocols_are_not_mongodb() {
    for first in
        [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &[0u8; 40][..], b"\x10\0\0\0\x01\0\0\0\x07\0\0\0\xdd\x07\0\0"]
    {
        let mut p = MongoParser::new();
        let ops = feed_all(&mut p, &[(true, first.to_vec())]);
        assert!(ops.is_empty());
        assert!(p.is_done() || first.len() < 96, "{first:?}");
    }
}

/// An OP_MSG of one kind 0 section: `flags`, then the document `doc`
/// (elements, without its length and final NUL).
fn op_msg(flags: u32, doc: &[u8]) -> Vec<u8> {
    let mut body = flags.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&(5 + doc.len() as i32).to_le_bytes());
    body.extend_from_slice(doc);
    body.push(0);
    body
}

/// At close, a command still waiting is reported without a reply; the
/// further replies of a `moreToCome` stream (an exhaust cursor, streaming
/// `hello`) are not waited for, so nothing is reported of them.
#[test]
fn close_reports_commands_left_waiting_but_not_a_stream_ended_by_the_client() {
    let hello = op_msg(1 << 16, b"\x10hello\0\x01\0\0\0\x02$db\0\x06\0\0\0admin\0");
    let streamed = op_msg(2, b"\x01ok\0\0\0\0\0\0\0\xf0\x3f");
    let find = op_msg(0, b"\x02find\0\x07\0\0\0orders\0\x02$db\0\x05\0\0\0shop\0");
    let mut p = MongoParser::new();
    let ops = feed_all(
        &mut p,
        &[
            (true, message(1, 0, super::OP_MSG, &hello)),
            (false, message(50, 1, super::OP_MSG, &streamed)),
            (true, message(2, 0, super::OP_MSG, &find)),
        ],
    );
    assert_eq!(ops.iter().map(describe).collect::<Vec<_>>(), ["hello admin.- ok"]);
    let mut closed = Vec::new();
    p.close(10, &mut closed);
    assert_eq!(closed.iter().map(describe).collect::<Vec<_>>(), ["find shop.orders no response"]);
    assert_eq!((closed[0].start_ns, closed[0].end_ns, p.unanswered()), (3, 10, 0));
    // After lost events, a reply may have been among them: counted, not reported.
    let mut p = MongoParser::new();
    feed_all(&mut p, &[(true, message(2, 0, super::OP_MSG, &find))]);
    p.gap();
    let mut closed = Vec::new();
    p.close(10, &mut closed);
    assert!(closed.is_empty());
    assert_eq!(p.unanswered(), 1);
}
