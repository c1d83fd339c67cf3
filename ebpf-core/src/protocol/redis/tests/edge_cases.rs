//! Hand-made streams for what the recordings do not show: RESP3 types
//! Redis itself does not send (streamed strings and aggregates), garbage,
//! limits, pub/sub corner cases, transactions, joining mid-connection and
//! what never leaves the parser.

use super::fixtures::summary;
use super::run;
use crate::protocol::redis::{
    looks_like_command, Outcome, RedisCounters, RedisError, RedisOperation, RedisParser, ReplyKind, Transaction,
    MAX_PENDING,
};
use crate::protocol::{Chunk, Direction, Role};

const C: Direction = Direction::Egress;
const S: Direction = Direction::Ingress;

/// A command as RESP.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// A client's conversation: alternate (direction, bytes), timestamps 1, 2, ...
fn talk(parser: RedisParser, steps: &[(Direction, &[u8])]) -> super::Run {
    run(parser, steps.iter().enumerate().map(|(i, (d, b))| (*d, i as u64 + 1, *b, b.len() as u64)), None)
}

fn names(ops: &[RedisOperation]) -> Vec<String> {
    ops.iter().map(summary).collect()
}

#[test]
fn resp3_streamed_strings_and_aggregates() {
    let reply = b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n\
                  *?\r\n:1\r\n$?\r\n;1\r\nx\r\n;0\r\n%?\r\n+a\r\n:1\r\n.\r\n.\r\n\
                  ~?\r\n.\r\n";
    let req = [cmd(&["GET", "a"]), cmd(&["LRANGE", "l", "0", "-1"]), cmd(&["SMEMBERS", "s"])].concat();
    let r = talk(RedisParser::new(), &[(C, &req), (S, reply)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["GET/1 bulk_string", "LRANGE/3 array", "SMEMBERS/1 set"]);
}

#[test]
fn attributes_are_not_values() {
    // An attribute before a reply, and one inside an array before an element.
    let reply = b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n";
    let r = talk(RedisParser::new(), &[(C, &cmd(&["MGET", "a", "b"])), (S, reply)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["MGET/2 array"]);
}

#[test]
fn every_resp_type_and_empty_and_null_aggregates() {
    let replies: &[(&[u8], &str)] = &[
        (b"+OK\r\n", "simple_string"),
        (b"-ERR boom\r\n", "!ERR"),
        (b":-42\r\n", "integer"),
        (b"$0\r\n\r\n", "bulk_string"),
        (b"$-1\r\n", "null"),
        (b"*-1\r\n", "null"),
        (b"*0\r\n", "array"),
        (b"%0\r\n", "map"),
        (b"~0\r\n", "set"),
        (b"_\r\n", "null"),
        (b"#t\r\n", "boolean"),
        (b",-inf\r\n", "double"),
        (b"(-3492890328409238509324850943850943825024385\r\n", "big_number"),
        (b"!21\r\nSYNTAX invalid syntax\r\n", "!SYNTAX"),
        (b"=15\r\ntxt:Some string\r\n", "verbatim_string"),
        (b"-Error without a code\r\n", "!?"),
    ];
    for (reply, want) in replies {
        let r = talk(RedisParser::new(), &[(C, &cmd(&["X"])), (S, reply)]);
        assert!(r.errors.is_empty(), "{:?}: {:?}", String::from_utf8_lossy(reply), r.errors);
        assert_eq!(names(&r.out), [format!("X/0 {want}")], "{:?}", String::from_utf8_lossy(reply));
    }
}

#[test]
fn inline_commands_quotes_and_blank_lines() {
    let req = b"\r\n\r\nSET k \"a \\\"quoted\\\" value\" EX 10\r\n   \r\nset 'single quoted' v\n*0\r\nPING\r\n";
    let r = talk(RedisParser::new(), &[(C, req), (S, b"+OK\r\n+OK\r\n+PONG\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // Blank lines and *0 are no commands and get no replies.
    assert_eq!(names(&r.out), ["SET/4 simple_string", "set/2 simple_string", "PING/0 simple_string"]);
}

#[test]
fn garbage_before_any_command_fails_for_good() {
    let mut p = RedisParser::new();
    let mut out = Vec::new();
    let junk = Chunk { ts_ns: 1, direction: C, data: b"*3\r\n:x\r\n", total_len: 8 };
    assert_eq!(p.feed(&junk, &mut out), Err(RedisError::Request("a command argument is not a bulk string")));
    assert!(p.is_failed());
    let ok = cmd(&["PING"]);
    assert_eq!(p.feed(&Chunk { ts_ns: 2, direction: C, data: &ok, total_len: ok.len() as u64 }, &mut out), Ok(()));
    assert!(out.is_empty());
}

#[test]
fn garbage_after_commands_resynchronises() {
    let r = talk(
        RedisParser::new(),
        &[
            (C, &cmd(&["GET", "a"])),
            (S, b"$1\r\nx\r\n"),
            (C, &cmd(&["GET", "b"])),
            (S, b"?garbage\r\n"),
            // Ignored: not a command start.
            (C, b"lue\r\n"),
            (C, &cmd(&["INCR", "c"])),
            (S, b":7\r\n"),
        ],
    );
    assert_eq!(r.errors, [RedisError::Reply("a reply starts with a byte that is no RESP type")]);
    assert_eq!(names(&r.out), ["GET/1 bulk_string", "INCR/1 integer"]);
    assert_eq!(
        r.parser.counters(),
        RedisCounters { dropped_operations: 1, resyncs: 1, skipped_chunks: 1, ..Default::default() }
    );
}

#[test]
fn a_reply_that_answers_nothing_resynchronises() {
    let r = talk(
        RedisParser::new(),
        &[(C, &cmd(&["PING"])), (S, b"+PONG\r\n+PONG\r\n"), (C, &cmd(&["PING"])), (S, b"+PONG\r\n")],
    );
    assert_eq!(r.errors, [RedisError::Desynchronized("a reply answers no command seen")]);
    assert_eq!(names(&r.out), ["PING/0 simple_string", "PING/0 simple_string"]);
    assert_eq!(r.parser.counters().unmatched_replies, 1);
}

#[test]
fn more_commands_than_kept_are_counted_and_still_matched() {
    let n = MAX_PENDING + 10;
    let req: Vec<u8> = (0..n).flat_map(|_| cmd(&["INCR", "k"])).collect();
    let replies: Vec<u8> = (1..=n).flat_map(|i| format!(":{i}\r\n").into_bytes()).collect();
    let r = talk(RedisParser::new(), &[(C, &req), (S, &replies), (C, &cmd(&["GET", "k"])), (S, b"$4\r\n1034\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.out.len(), MAX_PENDING + 1);
    assert_eq!(summary(&r.out[MAX_PENDING]), "GET/1 bulk_string", "framing stayed exact");
    assert_eq!(r.parser.counters().dropped_operations, 10);
}

#[test]
fn open_unsubscribe_absorbs_every_confirmation_resp2() {
    let subscribe = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n\
                      *3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:3\r\n";
    let message = b"*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$5\r\nhello\r\n";
    let unsubscribe = b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n\
                        *3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n";
    let r = talk(
        RedisParser::new(),
        &[
            (C, &cmd(&["SUBSCRIBE", "a", "b", "c"])),
            (S, subscribe),
            (S, message),
            (C, &[cmd(&["UNSUBSCRIBE"]), cmd(&["GET", "k"])].concat()),
            (S, unsubscribe),
            (S, b"$1\r\nv\r\n"),
        ],
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["SUBSCRIBE/3 array", "UNSUBSCRIBE/0 array", "GET/1 bulk_string"]);
    let x = &r.out[0];
    assert_eq!((x.response_start_ns, x.response_end_ns), (Some(2), 2));
    assert_eq!(r.parser.counters().pushes, 1);
}

#[test]
fn subscribe_errors_end_the_operation() {
    let r = talk(
        RedisParser::new(),
        &[
            (C, &cmd(&["SUBSCRIBE"])),
            (S, b"-ERR wrong number of arguments for 'subscribe' command\r\n"),
            (C, &cmd(&["PING"])),
            (S, b"+PONG\r\n"),
        ],
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["SUBSCRIBE/0 !ERR", "PING/0 simple_string"]);
}

#[test]
fn resp3_pushes_between_replies() {
    // Client-side caching invalidations arrive as pushes at any time.
    let r = talk(
        RedisParser::new(),
        &[
            (C, &cmd(&["HELLO", "3"])),
            (S, b"%1\r\n$5\r\nproto\r\n:3\r\n"),
            (C, &[cmd(&["CLIENT", "TRACKING", "ON"]), cmd(&["GET", "k"])].concat()),
            (S, b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n"),
        ],
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["HELLO/1 map", "CLIENT TRACKING/2 simple_string", "GET/1 bulk_string"]);
    assert_eq!(r.parser.counters().pushes, 1);
}

#[test]
fn select_inside_a_transaction_applies_at_exec() {
    let req =
        [cmd(&["MULTI"]), cmd(&["SELECT", "2"]), cmd(&["LRANGE", "l", "0", "-1"]), cmd(&["EXEC"]), cmd(&["GET", "k"])]
            .concat();
    let replies = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nv\r\n";
    let r = talk(RedisParser::from_start(None), &[(C, &req), (S, replies)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        names(&r.out),
        [
            "MULTI/0 simple_string db0",
            "SELECT/1 simple_string tx:executed db0",
            "LRANGE/3 array tx:executed db2",
            "EXEC/0 array db0",
            "GET/1 bulk_string db2",
        ]
    );
    // A queued command's reply times are its QUEUED's.
    assert!(r.out[1..3].iter().all(|op| op.response_start_ns == Some(2)));
}

#[test]
fn client_reply_inside_a_transaction_is_only_queued() {
    let req = [cmd(&["MULTI"]), cmd(&["CLIENT", "REPLY", "OFF"]), cmd(&["EXEC"])].concat();
    let r = talk(RedisParser::new(), &[(C, &req), (S, b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["MULTI/0 simple_string", "CLIENT REPLY/2 simple_string tx:executed", "EXEC/0 array"]);
}

#[test]
fn close_ends_what_is_in_flight() {
    let req = [cmd(&["BLPOP", "q", "0"]), cmd(&["MULTI"]), cmd(&["SET", "a", "1"]), cmd(&["EXEC"])].concat();
    let steps: [(Direction, u64, &[u8], u64); 1] = [(C, 5, &req, req.len() as u64)];
    let r = run(RedisParser::new(), steps, Some(9));
    assert_eq!(r.before_close, 0);
    assert_eq!(
        names(&r.out),
        ["BLPOP/2 noresponse", "MULTI/0 noresponse", "SET/2 noresponse tx:unknown", "EXEC/0 noresponse"]
    );
    assert!(r.out.iter().all(|op| op.response_end_ns == 9 && op.response_start_ns.is_none()));
}

#[test]
fn monitor_and_replication_switch_the_connection() {
    let r = talk(
        RedisParser::new(),
        &[
            (C, &cmd(&["MONITOR"])),
            (S, b"+OK\r\n+1700000000.000001 [0 127.0.0.1:5000] \"GET\" \"k\"\r\n"),
            (S, b"+1700000000.000002 [0 127.0.0.1:5000] \"SET\" \"k\" \"v\"\r\n"),
        ],
    );
    assert!(r.errors.is_empty() && r.parser.is_switched());
    assert_eq!(names(&r.out), ["MONITOR/0 simple_string"]);

    let mut rdb = b"+FULLRESYNC 8371b4fb1155b71f4a04d3e1bc3e18c4a990aeeb 0\r\n$40\r\nREDIS0011".to_vec();
    rdb.extend_from_slice(&[0xfa; 31]);
    let mut r = talk(RedisParser::new(), &[(C, &cmd(&["PSYNC", "?", "-1"])), (S, &rdb)]);
    assert!(r.errors.is_empty() && r.parser.is_switched());
    r.parser.close(3, &mut r.out);
    assert_eq!(names(&r.out), ["PSYNC/2 noresponse"]);
}

#[test]
fn joining_mid_connection() {
    // The first chunk seen is a reply (to a command sent before we joined).
    let r = talk(RedisParser::new(), &[(S, b"+OK\r\n"), (C, &cmd(&["GET", "k"])), (S, b"$-1\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(names(&r.out), ["GET/1 null"]);
    assert_eq!(r.parser.role(), Some(Role::Client));
    assert_eq!(r.parser.counters().unmatched_replies, 1);
    assert_eq!(r.out[0].database, None, "the database index is unknown");
}

#[test]
fn gap_drops_in_flight_and_waits_for_a_command() {
    let mut p = RedisParser::from_start(None);
    let mut out = Vec::new();
    let feed = |p: &mut RedisParser, out: &mut Vec<RedisOperation>, ts, d, b: &[u8]| {
        p.feed(&Chunk { ts_ns: ts, direction: d, data: b, total_len: b.len() as u64 }, out).unwrap();
    };
    let reply_off = [cmd(&["GET", "a"]), cmd(&["GET", "b"]), cmd(&["CLIENT", "REPLY", "OFF"])].concat();
    feed(&mut p, &mut out, 1, C, &reply_off);
    assert_eq!(p.gap(&mut out), 2);
    assert_eq!(names(&out), ["CLIENT REPLY/2 noreply db0"], "complete, so reported");
    out.clear();
    assert!(p.is_lost());
    feed(&mut p, &mut out, 2, S, b"$1\r\nx\r\n$1\r\ny\r\n");
    feed(&mut p, &mut out, 3, C, b"\r\n$3\r\nfoo\r\n");
    assert!(p.is_lost(), "not a command start");
    feed(&mut p, &mut out, 4, C, &cmd(&["DEL", "a"]));
    // The rest of a reply sent before: skipped, not a reply start.
    feed(&mut p, &mut out, 5, S, b"oo\r\n");
    feed(&mut p, &mut out, 6, S, b":1\r\n");
    assert_eq!(names(&out), ["DEL/1 integer"], "the database index is unknown after lost events");
    assert_eq!(p.counters().dropped_operations, 2);
}

#[test]
fn nothing_private_is_kept() {
    let password = "hunter2-very-secret";
    let card = "4111111111111111";
    let email = "alice@example.com";
    let req = [
        cmd(&["AUTH", "alice", password]),
        cmd(&["HELLO", "3", "AUTH", "alice", password]),
        cmd(&["SET", email, card]),
        cmd(&["HSET", "user:alice@example.com", "card", card]),
        cmd(&["CONFIG", "SET", "requirepass", password]),
        cmd(&["EVAL", &format!("return '{card}'"), "0"]),
        cmd(&["GET", email]),
        format!("SET {email} {card}\r\n").into_bytes(),
    ]
    .concat();
    let replies = format!(
        "+OK\r\n%1\r\n$5\r\nproto\r\n:3\r\n+OK\r\n:1\r\n+OK\r\n${}\r\n{card}\r\n${}\r\n{card}\r\n-ERR unknown command '{email}'\r\n",
        card.len(),
        card.len()
    );
    let r = talk(RedisParser::new(), &[(C, &req), (S, replies.as_bytes())]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.out.len(), 8);
    let everything = format!("{:?}", r.out);
    for secret in [password, card, email, "alice"] {
        assert!(!everything.contains(secret), "{secret} kept: {everything}");
    }
    assert_eq!(r.out[7].error_code(), Some("ERR"));
}

#[test]
fn recognises_commands_not_other_protocols() {
    assert!(looks_like_command(&cmd(&["HELLO", "3"])));
    assert!(looks_like_command(b"PING\r\n"));
    for other in [
        &b"GET /index.html HTTP/1.1\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"PRI * HTTP/2.0\r\n",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        b"+OK\r\n",
        b"get k\r\n" as &[u8],
    ] {
        let _ = looks_like_command(other);
    }
    assert!(!looks_like_command(b"GET /index.html HTTP/1.1\r\n"));
    assert!(!looks_like_command(b"\x16\x03\x01\x02\x00"));
    assert!(!looks_like_command(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), "PostgreSQL SSLRequest");
    // memcached's `get k` is also a valid inline GET: the port tells them apart.
    assert!(looks_like_command(b"get k\r\n"));
}

#[test]
fn outcome_helpers() {
    let r =
        talk(RedisParser::new(), &[(C, &cmd(&["LPUSH", "s", "x"])), (S, b"-WRONGTYPE Operation against a key\r\n")]);
    let op = &r.out[0];
    assert!(op.is_error());
    assert_eq!(op.error_code(), Some("WRONGTYPE"));
    assert_eq!(op.outcome, Outcome::Error(Some("WRONGTYPE".into())));
    assert_eq!((op.request_bytes, op.response_bytes), (29, 36));
    let _ = (ReplyKind::Null, Transaction::Executed);
}

#[test]
fn query_text_redacts_every_argument() {
    let mset: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut mset_args = vec!["MSET"];
    mset_args.extend(mset.iter().map(String::as_str));
    let req = [
        cmd(&["SET", "user:alice@example.com", "4111111111111111"]),
        cmd(&["CLIENT", "SETNAME", "checkout"]),
        cmd(&["PING"]),
        cmd(&mset_args),
    ]
    .concat();
    let r = talk(RedisParser::new(), &[(C, &req), (S, b"+OK\r\n+OK\r\n+PONG\r\n+OK\r\n")]);
    let texts: Vec<String> = r
        .out
        .iter()
        .map(|op| {
            let mut s = String::new();
            op.write_query_text(&mut s);
            s
        })
        .collect();
    let forty = format!("MSET{} ...", " ?".repeat(32));
    assert_eq!(texts, ["SET ? ?", "CLIENT SETNAME ?", "PING", forty.as_str()]);
}
