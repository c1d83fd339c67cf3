//! Truncation as the kernel shows it: one chunk per syscall, of which only
//! the first `CAPTURE` bytes are captured, and streams that break the
//! assumptions resynchronisation makes.

use super::fixtures::summary;
use super::run;
use crate::protocol::redis::{Outcome, RedisCounters, RedisError, RedisOperation, RedisParser};
use crate::protocol::Direction;

const CAPTURE: usize = 1024;
const C: Direction = Direction::Egress;
const S: Direction = Direction::Ingress;

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// One syscall each, captured up to `CAPTURE`, timestamps 1, 2, ...
fn syscalls(steps: &[(Direction, &[u8])]) -> super::Run {
    run(
        RedisParser::new(),
        steps.iter().enumerate().map(|(i, (d, b))| (*d, i as u64 + 1, &b[..b.len().min(CAPTURE)], b.len() as u64)),
        Some(100),
    )
}

fn names(ops: &[RedisOperation]) -> Vec<String> {
    ops.iter().map(summary).collect()
}

#[test]
fn large_values_are_skipped_by_length() {
    let value = "v".repeat(100_000);
    let get_reply = format!("${}\r\n{value}\r\n", value.len());
    let r = syscalls(&[
        (C, &cmd(&["SET", "k", &value])),
        (S, b"+OK\r\n"),
        (C, &cmd(&["GET", "k"])),
        (S, get_reply.as_bytes()),
        (C, &cmd(&["DEL", "k"])),
        (S, b":1\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["SET/2 simple_string", "GET/1 bulk_string", "DEL/1 integer"]);
    assert_eq!(r.out[0].request_bytes, cmd(&["SET", "k", &value]).len() as u64);
    assert_eq!(r.out[1].response_bytes, get_reply.len() as u64);
    assert_eq!(r.before_close, 3, "each ended with its own reply");
    assert_eq!(r.parser.counters(), RedisCounters::default());
}

#[test]
fn a_value_written_in_pieces_keeps_its_framing() {
    // redis-py writes a large value apart from the command's head.
    let value = "x".repeat(50_000);
    let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$50000\r\n";
    let tail = format!("{value}\r\n");
    let r = syscalls(&[(C, head), (C, tail.as_bytes()), (S, b"+OK\r\n"), (C, &cmd(&["PING"])), (S, b"+PONG\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["SET/2 simple_string", "PING/0 simple_string"]);
    assert_eq!((r.out[0].request_start_ns, r.out[0].request_end_ns), (1, 2));
}

#[test]
fn a_pipeline_past_the_capture_counts_what_it_cannot_see() {
    // 37 bytes a command: the capture ends 25 bytes into the 28th, past its name.
    let batch: Vec<u8> = (0..200).flat_map(|i| cmd(&["INCR", &format!("counter:{i:08}")])).collect();
    assert!(batch.len() > 4 * CAPTURE);
    let replies: Vec<u8> = (0..200).flat_map(|_| b":1\r\n".to_vec()).collect();
    let r = syscalls(&[(C, &batch), (S, &replies), (C, &cmd(&["GET", "k"])), (S, b"$-1\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // The 28th ends in the lost bytes, but where is known from its lengths.
    let seen = 1024 / cmd(&["INCR", "counter:00000000"]).len() + 1;
    let mut want = vec!["INCR/1 integer".to_string(); seen];
    want.push("GET/1 null".into());
    assert_eq!(names(&r.out), want);
    assert_eq!(r.parser.counters().unmatched_replies, 200 - seen as u64);

    // From the connection's start the database is 0, until commands are lost
    // (one may have been a SELECT).
    let steps = [(C, 1, &batch[..CAPTURE], batch.len() as u64), (S, 2, &replies[..], replies.len() as u64)];
    let get = cmd(&["GET", "k"]);
    let steps = steps.into_iter().chain([(C, 3, &get[..], get.len() as u64), (S, 4, &b"$-1\r\n"[..], 5)]);
    let r = run(RedisParser::from_start(None), steps, None);
    assert_eq!(r.out.first().map(|op| op.database), Some(Some(0)));
    assert_eq!(r.out.last().map(|op| (op.command.as_deref(), op.database)), Some((Some("GET"), None)));
}

#[test]
fn a_client_that_does_not_wait_is_not_resynchronised_on() {
    // Batch after batch without reading replies in between: the next batch
    // comes while commands seen before the loss still await their replies,
    // so it cannot be matched: it is skipped until the client catches up.
    let batch: Vec<u8> = (0..100).flat_map(|_| cmd(&["PING"])).collect();
    let replies: Vec<u8> = (0..100).flat_map(|_| b"+PONG\r\n".to_vec()).collect();
    let r = syscalls(&[
        (C, &batch),
        (C, &batch),
        (S, &replies),
        (S, &replies),
        (C, &cmd(&["ECHO", "done"])),
        (S, b"$4\r\ndone\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let out = names(&r.out);
    assert_eq!(out.last().map(String::as_str), Some("ECHO/1 bulk_string"));
    // The first batch's whole commands, then the one the capture cut inside its name.
    assert!(out[..out.len() - 2].iter().all(|n| n == "PING/0 simple_string"), "{out:?}");
    assert_eq!(out[out.len() - 2], "?/0 simple_string cut");
    assert_eq!(r.parser.counters().skipped_chunks, 1);
    assert_eq!(r.out.len() as u64 - 1 + r.parser.counters().unmatched_replies, 200);
}

#[test]
fn a_large_reply_ends_at_the_next_command() {
    let items: Vec<String> = (0..500).map(|i| format!("item-{i:04}")).collect();
    let mut reply = format!("*{}\r\n", items.len()).into_bytes();
    for it in &items {
        reply.extend_from_slice(format!("${}\r\n{it}\r\n", it.len()).as_bytes());
    }
    let r = syscalls(&[
        (C, &cmd(&["LRANGE", "l", "0", "-1"])),
        (S, &reply[..3000]),
        (S, &reply[3000..]),
        (C, &cmd(&["LLEN", "l"])),
        (S, b":500\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["LRANGE/3 array cut", "LLEN/1 integer"]);
    let x = &r.out[0];
    assert_eq!((x.response_start_ns, x.response_end_ns), (Some(2), 3), "its last chunk");
    assert_eq!(x.response_bytes, reply.len() as u64);
}

#[test]
fn replies_behind_a_cut_one_end_with_an_unknown_outcome() {
    let items: Vec<u8> = (0..300).flat_map(|i| format!("$8\r\nitem-{i:03}\r\n").into_bytes()).collect();
    let reply = [b"*300\r\n".to_vec(), items, b"+OK\r\n:5\r\n".to_vec()].concat();
    let req = [cmd(&["LRANGE", "l", "0", "-1"]), cmd(&["SET", "a", "b"]), cmd(&["INCR", "n"])].concat();
    let r = syscalls(&[(C, &req), (S, &reply), (C, &cmd(&["PING"])), (S, b"+PONG\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        names(&r.out),
        ["LRANGE/3 array cut", "SET/2 unknown cut", "INCR/1 unknown cut", "PING/0 simple_string"]
    );
    assert!(r.out[1..3].iter().all(|op| op.response_end_ns == 2 && op.outcome == Outcome::Unknown));
}

#[test]
fn a_reply_stream_that_does_not_resume_at_a_reply_resynchronises() {
    let items: Vec<u8> = (0..300).flat_map(|i| format!("$8\r\nitem-{i:03}\r\n").into_bytes()).collect();
    let reply = [b"*600\r\n".to_vec(), items.clone()].concat();
    let r = syscalls(&[
        (C, &cmd(&["LRANGE", "l", "0", "-1"])),
        (S, &reply),
        // The client writes before the reply is done: the rest of it comes
        // after, and cannot be a reply start.
        (C, &cmd(&["GET", "k"])),
        (S, &items[3..]),
        (C, &cmd(&["GET", "k"])),
        (S, b"$1\r\nv\r\n"),
    ]);
    assert_eq!(r.errors.len(), 1);
    assert!(matches!(r.errors[0], RedisError::Desynchronized(_)));
    assert_eq!(names(&r.out), ["LRANGE/3 array cut", "GET/1 bulk_string"]);
    assert_eq!(r.parser.counters().dropped_operations, 1);
}
