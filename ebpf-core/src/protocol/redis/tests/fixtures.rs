//! Byte-exact traffic recorded from redis-server 7.0 with redis-cli,
//! redis-py (RESP2 and RESP3), nc and raw sockets (see
//! tests/fixtures/redis/README.md), replayed through the parser as
//! recorded, split at every byte and at random points, from both sides, and
//! truncated at capture sizes.

use super::run;
use crate::protocol::recorded::{whole, Fixture, SEG_NS};
use crate::protocol::redis::{Outcome, RedisCounters, RedisOperation, RedisParser, Transaction};
use crate::protocol::Role;

/// A compact view of an operation for assertions: name (with subcommand),
/// args, outcome, transaction, and the segments its request and reply
/// started in.
pub(super) fn load(name: &str) -> Fixture {
    Fixture::load("redis", name)
}

pub(super) fn summary(op: &RedisOperation) -> String {
    let mut s = op.command.as_deref().unwrap_or("?").to_string();
    if let Some(sub) = &op.subcommand {
        s.push(' ');
        s.push_str(sub);
    }
    s.push_str(&format!("/{}", op.args));
    match &op.outcome {
        Outcome::Reply(k) => s.push_str(&format!(" {}", k.as_str())),
        Outcome::Error(code) => s.push_str(&format!(" !{}", code.as_deref().unwrap_or("?"))),
        Outcome::NoReply => s.push_str(" noreply"),
        Outcome::NoResponse => s.push_str(" noresponse"),
        Outcome::Unknown => s.push_str(" unknown"),
    }
    if let Some(t) = op.transaction {
        s.push_str(&format!(" tx:{}", t.as_str()));
    }
    if let Some(db) = op.database {
        s.push_str(&format!(" db{db}"));
    }
    if op.cut {
        s.push_str(" cut");
    }
    s
}

/// `summary`, then `@` the segment the request started in, `>` the
/// segment the reply started in (`-` for none).
pub(super) fn line(op: &RedisOperation) -> String {
    let seg = |ts: u64| ts / SEG_NS - 1;
    let reply = op.response_start_ns.map_or("-".to_string(), |t| seg(t).to_string());
    format!("{} @{}>{}", summary(op), seg(op.request_start_ns), reply)
}

fn lines(ops: &[RedisOperation]) -> Vec<String> {
    ops.iter().map(line).collect()
}

fn repeat(n: usize, l: &str) -> Vec<String> {
    vec![l.to_string(); n]
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The 50 commands redis-py's pipeline sends (record/clients.py): SET, GET,
/// INCRBY, GET of a missing key, LPUSH on a string, ten times.
fn pipeline50(req: usize, resp: usize) -> Vec<String> {
    let five = [
        format!("SET/2 simple_string @{req}>{resp}"),
        format!("GET/1 bulk_string @{req}>{resp}"),
        format!("INCRBY/2 integer @{req}>{resp}"),
        format!("GET/1 null @{req}>{resp}"),
        format!("LPUSH/2 !WRONGTYPE @{req}>{resp}"),
    ];
    five.iter().cycle().take(50).cloned().collect()
}

/// Every fixture and the operations it must give with the whole capture.
fn expected() -> Vec<(&'static str, Vec<String>)> {
    let setinfo = |seg: usize| vec![format!("CLIENT SETINFO/3 !ERR @{seg}>{}", seg + 1); 2];
    vec![
        (
            "cli_session",
            strs(&[
                "COMMAND DOCS/1 array @0>1",
                "PING/0 simple_string @4>5",
                "SET/2 simple_string @6>7",
                "GET/1 bulk_string @8>9",
                "GET/1 null @10>11",
                "INCR/1 integer @12>13",
                "INCR/1 !ERR @14>15",
                "LPUSH/2 !WRONGTYPE @16>17",
                "RPUSH/4 integer @18>19",
                "LRANGE/3 array @20>21",
                "HSET/5 integer @22>23",
                "HGETALL/1 array @24>25",
                "NOSUCHCOMMAND/1 !ERR @26>27",
                "SELECT/1 simple_string @28>29",
                "SET/2 simple_string db3 @30>31",
                "DBSIZE/0 integer db3 @32>33",
                "CLIENT SETNAME/2 simple_string db3 @34>35",
                "CLIENT GETNAME/1 bulk_string db3 @36>37",
                "CONFIG GET/2 array db3 @38>39",
                "DEL/3 integer db3 @40>41",
            ]),
        ),
        ("cli_pipe", [repeat(50, "SET/2 simple_string @0>1"), strs(&["ECHO/1 bulk_string @0>1"])].concat()),
        (
            "nc_inline",
            strs(&[
                "PING/0 simple_string @0>1",
                "SET/2 simple_string @0>1",
                "GET/1 bulk_string @0>1",
                "EXISTS/2 integer @0>1",
                "QUIT/0 simple_string @0>1",
            ]),
        ),
        ("py2_pipeline50", [setinfo(0), pipeline50(2, 3)].concat()),
        (
            "strace_server_pipeline50",
            [strs(&["CLIENT SETINFO/3 !ERR @0>1", "CLIENT SETINFO/3 !ERR @2>3"]), pipeline50(4, 5)].concat(),
        ),
        (
            "py2_multi",
            [
                setinfo(0),
                strs(&[
                    "SET/2 simple_string @2>3",
                    // One write: MULTI, SET, INCRBY, INCRBY on a string, GET, EXEC;
                    // the INCRBY's error is its element of EXEC's reply.
                    "MULTI/0 simple_string @4>5",
                    "SET/2 simple_string tx:executed @4>5",
                    "INCRBY/2 integer tx:executed @4>5",
                    "INCRBY/2 !ERR tx:executed @4>5",
                    "GET/1 bulk_string tx:executed @4>5",
                    "EXEC/0 array @4>5",
                    // WATCH, then another client changes the key: EXEC answers nil.
                    "WATCH/1 simple_string @6>7",
                    "GET/1 bulk_string @8>9",
                    "MULTI/0 simple_string @10>11",
                    "SET/2 simple_string tx:aborted @10>11",
                    "EXEC/0 null @10>11",
                    // A command refused when queued: EXEC aborts.
                    "MULTI/0 simple_string @12>13",
                    "SET/2 simple_string tx:aborted @12>13",
                    "INCRBY/1 !ERR tx:rejected @12>13",
                    "EXEC/0 !EXECABORT @12>13",
                    "MULTI/0 simple_string @14>15",
                    "SET/2 simple_string tx:discarded @16>17",
                    "DISCARD/0 simple_string @18>19",
                ]),
            ]
            .concat(),
        ),
        (
            "py3_types",
            strs(&[
                "HELLO/1 map @0>1",
                "CLIENT MAINT_NOTIFICATIONS/4 !ERR @2>3",
                "CLIENT SETINFO/3 !ERR @4>6",
                "CLIENT SETINFO/3 !ERR @5>7",
                "HSET/5 integer @8>9",
                "HGETALL/1 map @10>11",
                "SADD/4 integer @12>13",
                "SMEMBERS/1 set @14>15",
                "ZADD/3 integer @16>17",
                "ZSCORE/2 double @18>19",
                "GET/1 null @20>21",
                "INFO/1 verbatim_string @22>23",
                "HGET/1 !ERR @24>25",
            ]),
        ),
        (
            "py3_pubsub",
            strs(&[
                "HELLO/1 map @0>1",
                "CLIENT SETINFO/3 !ERR @2>3",
                "CLIENT SETINFO/3 !ERR @2>3",
                // Two channels: two confirmations, the op ends at the second.
                "SUBSCRIBE/2 push @4>5",
                "PSUBSCRIBE/1 push @6>7",
                // Commands while subscribed, messages (pushes) around them.
                "SET/2 simple_string @10>11",
                "GET/1 bulk_string @13>14",
                "UNSUBSCRIBE/0 push @15>16",
                "PUNSUBSCRIBE/1 push @17>18",
                "PING/0 simple_string @19>20",
            ]),
        ),
        (
            "py2_pubsub",
            [
                setinfo(0),
                strs(&[
                    "SUBSCRIBE/1 array @2>3",
                    "PSUBSCRIBE/1 array @4>5",
                    // Subscribed: PING is answered with an array, messages around it.
                    "PING/0 array @8>9",
                    "UNSUBSCRIBE/0 array @10>11",
                    "PUNSUBSCRIBE/0 array @12>13",
                ]),
            ]
            .concat(),
        ),
        (
            "py2_large",
            [
                setinfo(0),
                strs(&[
                    "SET/2 simple_string @2>3",
                    "GET/1 bulk_string @4>5",
                    "MSET/6 simple_string @6>7",
                    "MGET/4 array @8>9",
                    "DEL/1 integer @10>11",
                    "RPUSH/201 integer @12>13",
                    "LRANGE/3 array @14>15",
                    "GET/1 bulk_string @16>17",
                ]),
            ]
            .concat(),
        ),
        (
            "raw_session",
            strs(&[
                "AUTH/2 !WRONGPASS @0>1",
                "AUTH/2 simple_string @2>3",
                "HELLO/6 map @4>5",
                "DEBUG PROTOCOL/2 bulk_string @6>7",
                "DEBUG PROTOCOL/2 integer @8>9",
                "DEBUG PROTOCOL/2 double @10>11",
                "DEBUG PROTOCOL/2 big_number @12>13",
                "DEBUG PROTOCOL/2 null @14>15",
                "DEBUG PROTOCOL/2 array @16>17",
                "DEBUG PROTOCOL/2 set @18>19",
                "DEBUG PROTOCOL/2 map @20>21",
                // attrib: an attribute map, then the reply (a bulk string).
                "DEBUG PROTOCOL/2 bulk_string @22>23",
                // push: a push, then the reply.
                "DEBUG PROTOCOL/2 bulk_string @24>25",
                "DEBUG PROTOCOL/2 verbatim_string @26>27",
                "DEBUG PROTOCOL/2 boolean @28>29",
                "DEBUG PROTOCOL/2 boolean @30>31",
                // CLIENT REPLY SKIP: neither it nor the next command is answered.
                "CLIENT REPLY/2 noreply @32>-",
                "SET/2 noreply @33>-",
                // OFF: nothing is answered until ON.
                "CLIENT REPLY/2 noreply @34>-",
                "SET/2 noreply @35>-",
                "CLIENT REPLY/2 simple_string @36>37",
                "GET/1 bulk_string @38>39",
                "SELECT/1 simple_string @40>41",
                "SET/2 simple_string db5 @42>43",
                // Inline commands, quoted arguments.
                "PING/0 simple_string db5 @44>45",
                "SET/2 simple_string db5 @46>47",
                "EXISTS/2 integer db5 @48>49",
                "CLIENT SETNAME/2 simple_string db5 @50>51",
                "EVALSHA/2 !NOSCRIPT db5 @52>53",
                "RESET/0 simple_string db5 @54>55",
                // RESET went back to database 0.
                "GET/1 null db0 @56>57",
                "QUIT/0 simple_string db0 @58>59",
            ]),
        ),
        // MONITOR's OK, then a feed of other clients' commands: ignored.
        ("raw_monitor", strs(&["PING/0 simple_string @0>1", "MONITOR/0 simple_string @2>3"])),
    ]
}

const ROLES: [Role; 2] = [Role::Server, Role::Client];

fn check(name: &str, role: Role, how: &str, r: &super::Run, want: &[String]) {
    assert!(r.errors.is_empty(), "{name} {role:?} {how}: {:?}", r.errors);
    assert_eq!(lines(&r.out), want, "{name} {role:?} {how}");
    assert!(r.out.iter().all(|op| op.role == role), "{name} {role:?} {how}: role");
}

#[test]
fn fixtures_give_exact_operations() {
    for (name, want) in expected() {
        let f = load(name);
        for role in ROLES {
            let r = run(RedisParser::new(), f.steps(role, usize::MAX, &whole), None);
            check(name, role, "as recorded", &r, &want);
            assert_eq!(r.parser.counters().dropped_operations, 0, "{name}");
            assert_eq!(r.parser.counters().unmatched_replies, 0, "{name}");
        }
    }
}

#[test]
fn fixtures_split_anywhere() {
    for (name, want) in expected() {
        let f = load(name);
        let total: usize = f.segments.iter().map(|s| s.1).sum();
        for role in ROLES {
            if total < 20_000 {
                let r = run(RedisParser::new(), f.steps(role, usize::MAX, &|_, n| (1..n).collect()), None);
                check(name, role, "split at every byte", &r, &want);
            }
            let rng = std::cell::RefCell::new(fastrand::Rng::with_seed(total as u64));
            for _ in 0..20 {
                let cuts = |_: usize, n: usize| {
                    let mut rng = rng.borrow_mut();
                    let k = rng.usize(0..8);
                    (0..k).map(|_| rng.usize(0..n.max(1))).collect()
                };
                let r = run(RedisParser::new(), f.steps(role, usize::MAX, &cuts), None);
                check(name, role, "split at random", &r, &want);
            }
        }
    }
}

#[test]
fn pub_sub_messages_are_counted_not_matched() {
    let counted =
        |name| run(RedisParser::new(), load(name).steps(Role::Client, usize::MAX, &whole), None).parser.counters();
    // RESP3: two messages and a pmessage arrive as pushes.
    assert_eq!(counted("py3_pubsub").pushes, 3);
    // RESP2: a message and a pmessage arrive as arrays while subscribed.
    assert_eq!(counted("py2_pubsub").pushes, 2);
    // DEBUG PROTOCOL push sends a push before its reply.
    assert_eq!(counted("raw_session").pushes, 1);
}

/// The probes' default capture: the exact operations for the fixtures
/// whose syscalls are larger.
#[test]
fn default_capture() {
    let at_1k = |name| {
        let f = load(name);
        let r = run(RedisParser::new(), f.steps(Role::Client, 1024, &whole), None);
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        (lines(&r.out), r.parser.counters())
    };
    // 50 SETs and an ECHO in one 2043-byte write: 25 SETs are whole in the
    // first KiB and the 26th starts there; the other 25 commands' replies
    // are counted, not guessed.
    let (ops, counters) = at_1k("cli_pipe");
    let mut want = repeat(25, "SET/2 simple_string @0>1");
    want.push("SET/2 simple_string cut @0>1".into());
    assert_eq!(ops, want);
    assert_eq!(counters, RedisCounters { unmatched_replies: 25, resyncs: 1, ..Default::default() });

    // redis-py's 50-command pipeline, 1762 bytes in one write.
    let (ops, counters) = at_1k("py2_pipeline50");
    let mut want = [strs(&["CLIENT SETINFO/3 !ERR @0>1"; 2]), pipeline50(2, 3)[..29].to_vec()].concat();
    want.push("?/2 !WRONGTYPE cut @2>3".into());
    assert_eq!(ops, want, "the 30th command was cut inside its name");
    assert_eq!(counters.unmatched_replies, 20);

    // Values and replies past the capture: bodies are skipped by length;
    // where headers were lost, the command or reply is marked cut and the
    // next chunk resynchronises.
    let (ops, counters) = at_1k("py2_large");
    assert_eq!(
        ops,
        [
            strs(&["CLIENT SETINFO/3 !ERR @0>1"; 2]),
            strs(&[
                "SET/2 simple_string @2>3",
                "GET/1 bulk_string @4>5",
                "MSET/6 simple_string cut @6>7",
                "MGET/4 array cut @8>9",
                "DEL/1 integer @10>11",
                "RPUSH/201 integer cut @12>13",
                "LRANGE/3 array cut @14>15",
                "GET/1 bulk_string @16>17",
            ])
        ]
        .concat()
    );
    assert_eq!(counters, RedisCounters { resyncs: 4, ..Default::default() });

    // COMMAND DOCS's 170 KB reply: cut, and the session goes on.
    let (ops, _) = at_1k("cli_session");
    let mut want = expected().into_iter().find(|(n, _)| *n == "cli_session").unwrap().1;
    want[0] = "COMMAND DOCS/1 array cut @0>1".into();
    assert_eq!(ops, want);
}

/// At any capture size, what comes out is what the whole capture gives,
/// less what was lost: in order, never a wrong name or outcome.
#[test]
fn any_capture_size_loses_but_never_lies() {
    for (name, want) in expected() {
        let f = load(name);
        let full = run(RedisParser::new(), f.steps(Role::Server, usize::MAX, &whole), None).out;
        assert_eq!(full.len(), want.len());
        for capture in [0, 1, 2, 5, 16, 64, 100, 256, 512, 1024, 4096] {
            for role in ROLES {
                let r = run(RedisParser::new(), f.steps(role, capture, &whole), Some(SEG_NS * 10_000));
                assert!(r.errors.is_empty(), "{name} capture {capture} {role:?}: {:?}", r.errors);
                let mut j = 0;
                for op in &r.out {
                    let same_request = |w: &RedisOperation| {
                        w.request_start_ns == op.request_start_ns && (w.args == op.args || op.cut && op.args < w.args)
                    };
                    while j < full.len()
                        && !(same_request(&full[j]) && (op.command.is_none() || op.command == full[j].command))
                    {
                        j += 1;
                    }
                    assert!(
                        j < full.len(),
                        "{name} capture {capture} {role:?}: {} is not in the full capture",
                        line(op)
                    );
                    let w = &full[j];
                    match &op.outcome {
                        // A queued command whose EXEC was lost: what it got is its QUEUED.
                        _ if op.transaction == Some(Transaction::Unknown) => {}
                        // A command whose name was not captured may have been
                        // one that asks for no reply (CLIENT REPLY): the next
                        // reply is taken for its own.
                        _ if op.command.is_none()
                            || op.command.as_deref() == Some("CLIENT") && op.subcommand.is_none() => {}
                        Outcome::Unknown | Outcome::NoResponse => {}
                        Outcome::Error(None) if op.cut => assert!(w.is_error(), "{name}: {}", line(op)),
                        outcome => assert_eq!(outcome, &w.outcome, "{name} capture {capture}: {}", line(op)),
                    }
                    j += 1;
                }
            }
        }
    }
}
