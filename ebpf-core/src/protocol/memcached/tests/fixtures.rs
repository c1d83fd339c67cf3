//! Byte-exact traffic recorded from memcached 1.6 with pymemcache, nc and
//! raw sockets (see tests/fixtures/memcached/README.md), replayed as
//! recorded, split anywhere, from both sides, and cut to capture sizes.

use super::run;
use crate::protocol::memcached::{Code, MemcachedCounters, MemcachedOperation, MemcachedParser, Outcome};
use crate::protocol::recorded::{whole, Fixture, SEG_NS};
use crate::protocol::Role;

fn load(name: &str) -> Fixture {
    Fixture::load("memcached", name)
}

/// `command/keys outcome [hits] [quiet] [cut] @request_segment>reply_segment`.
pub(super) fn line(op: &MemcachedOperation) -> String {
    let seg = |ts: u64| ts / SEG_NS - 1;
    let mut s = format!("{}/{}", op.command.as_deref().unwrap_or("?"), op.keys);
    match op.outcome {
        Outcome::Reply(code) => s.push_str(&format!(" {}", code.as_str())),
        Outcome::NoReply => s.push_str(" noreply"),
        Outcome::NoResponse => s.push_str(" noresponse"),
        Outcome::Unknown => s.push_str(" unknown"),
    }
    if let Some(h) = op.hits {
        s.push_str(&format!(" hits={h}"));
    }
    if op.quiet {
        s.push_str(" quiet");
    }
    if op.cut {
        s.push_str(" cut");
    }
    let reply = op.response_start_ns.map_or("-".to_string(), |t| seg(t).to_string());
    format!("{s} @{}>{reply}", seg(op.request_start_ns))
}

fn lines(ops: &[MemcachedOperation]) -> Vec<String> {
    ops.iter().map(line).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn expected() -> Vec<(&'static str, Vec<String>)> {
    vec![
        // pymemcache with its defaults: storage commands are noreply.
        (
            "pymc_text",
            strs(&[
                "set/1 noreply quiet @0>-",
                "set/1 STORED @1>2",
                "get/1 END hits=1 @3>4",
                "get/1 END hits=0 @5>6",
                // get_many of four keys, two of them set.
                "get/4 END hits=2 @7>8",
                "gets/1 END hits=1 @9>10",
                "cas/1 STORED @11>12",
                "cas/1 EXISTS @13>14",
                "add/1 NOT_STORED @15>16",
                "replace/1 NOT_STORED @17>18",
                "append/1 STORED @19>20",
                "prepend/1 STORED @21>22",
                "set/1 STORED @23>24",
                "incr/1 NUMBER @25>26",
                "decr/1 NUMBER @27>28",
                "incr/1 NOT_FOUND @29>30",
                "touch/1 TOUCHED @31>32",
                "touch/1 NOT_FOUND @33>34",
                "gat/1 END hits=1 @35>36",
                "gats/2 END hits=1 @37>38",
                "delete/1 DELETED @39>40",
                "delete/1 NOT_FOUND @41>42",
                // set_many and delete_many: noreply commands in one write each.
                "set/1 noreply quiet @43>-",
                "set/1 noreply quiet @43>-",
                "set/1 noreply quiet @43>-",
                "delete/1 noreply quiet @44>-",
                "delete/1 noreply quiet @44>-",
                "stats/0 END @44>45",
                "stats/0 END @46>47",
                "version/0 VERSION @48>49",
                "flush_all/0 OK @50>51",
                "quit/0 noreply @52>-",
            ]),
        ),
        (
            "pymc_large",
            strs(&[
                "set/1 STORED @0>1",
                "get/1 END hits=1 @2>3",
                "set/1 STORED @4>5",
                "set/1 STORED @4>5",
                "set/1 STORED @4>5",
                "get/4 END hits=3 @6>7",
                "get/1 END hits=1 @8>9",
                // Over the server's item size: refused, and the server closes.
                "set/1 SERVER_ERROR @10>11",
            ]),
        ),
        (
            "strace_server_large",
            strs(&[
                "set/1 STORED @0>1",
                "get/1 END hits=1 @2>3",
                "set/1 STORED @4>5",
                "set/1 STORED @4>5",
                "set/1 STORED @4>5",
                "get/4 END hits=3 @6>7",
                "get/1 END hits=1 @8>9",
                // The server read the 20 KB value in two reads.
                "set/1 SERVER_ERROR @10>12",
            ]),
        ),
        (
            "raw_meta",
            strs(&[
                "ms/1 HD @0>1",
                "mg/1 VA hits=1 @2>3",
                "mg/1 EN hits=0 @4>5",
                "mg/1 VA hits=1 @6>7",
                // A quiet batch in one write: its hit (by opaque O1), two quiet
                // misses and a quiet store answered by silence, a delete's NF
                // (not quiet-able), a hit without opaque or key, and mn.
                "mg/1 VA hits=1 quiet @8>9",
                "mg/1 EN hits=0 quiet @8>-",
                "mg/1 EN hits=0 quiet @8>-",
                "ms/1 HD quiet @8>-",
                "md/1 NF quiet @8>9",
                "mg/1 VA hits=1 quiet @8>9",
                "mn/0 MN @8>9",
                "ma/1 NF @10>11",
                "ma/1 VA @12>13",
                "ma/1 VA @14>15",
                "ma/1 CLIENT_ERROR @16>17",
                "md/1 HD @18>19",
                "md/1 NF @20>21",
                // A base64 key (b).
                "mg/1 EN hits=0 @22>23",
                "ms/1 HD @24>25",
                "mg/1 VA hits=1 @26>27",
                "me/1 ME @28>29",
                "ms/1 HD @30>31",
                "mg/1 CLIENT_ERROR @32>33",
                "mn/0 MN @34>35",
            ]),
        ),
        (
            "raw_errors",
            strs(&[
                "bogus/0 ERROR @0>1",
                "set/1 STORED @2>3",
                "incr/1 CLIENT_ERROR @4>5",
                // A 300-byte key.
                "get/1 CLIENT_ERROR @6>7",
                // 4 bytes for a declared 3: the server then takes the rest for
                // a command and answers it ERROR too (counted, unmatched).
                "set/1 CLIENT_ERROR @8>9",
                "set/1 noreply quiet @10>-",
                // Its error is not sent: noreply.
                "incr/1 noreply quiet @11>-",
                "delete/1 noreply quiet @12>-",
                "get/3 END hits=2 @13>14",
                "verbosity/0 OK @15>16",
                "flush_all/0 noreply quiet @17>-",
                "version/0 VERSION @18>19",
            ]),
        ),
        (
            "nc_text",
            strs(&[
                "version/0 VERSION @0>1",
                "set/1 STORED @0>1",
                "get/2 END hits=1 @0>1",
                "stats/0 END @0>1",
                "quit/0 noreply @0>-",
            ]),
        ),
    ]
}

const ROLES: [Role; 2] = [Role::Server, Role::Client];

#[test]
fn fixtures_give_exact_operations() {
    for (name, want) in expected() {
        let f = load(name);
        for role in ROLES {
            let r = run(MemcachedParser::new(), f.steps(role, usize::MAX, &whole), Some(SEG_NS * 1000));
            assert!(r.errors.is_empty(), "{name} {role:?}: {:?}", r.errors);
            assert_eq!(lines(&r.out), want, "{name} {role:?}");
            assert!(r.out.iter().all(|op| op.role == role));
            let unmatched = if name == "raw_errors" { 1 } else { 0 };
            assert_eq!(
                r.parser.counters(),
                MemcachedCounters { unmatched_replies: unmatched, ..Default::default() },
                "{name}"
            );
        }
    }
}

#[test]
fn fixtures_split_anywhere() {
    for (name, want) in expected() {
        let f = load(name);
        let total: usize = f.segments.iter().map(|s| s.1).sum();
        for role in ROLES {
            let r =
                run(MemcachedParser::new(), f.steps(role, usize::MAX, &|_, n| (1..n).collect()), Some(SEG_NS * 1000));
            assert!(r.errors.is_empty(), "{name} {role:?}: {:?}", r.errors);
            assert_eq!(lines(&r.out), want, "{name} {role:?} split at every byte");
            let rng = std::cell::RefCell::new(fastrand::Rng::with_seed(total as u64));
            for _ in 0..20 {
                let cuts = |_: usize, n: usize| {
                    let mut rng = rng.borrow_mut();
                    let k = rng.usize(0..8);
                    (0..k).map(|_| rng.usize(0..n.max(1))).collect()
                };
                let r = run(MemcachedParser::new(), f.steps(role, usize::MAX, &cuts), Some(SEG_NS * 1000));
                assert_eq!(lines(&r.out), want, "{name} {role:?} split at random");
            }
        }
    }
}

#[test]
fn hits_and_misses_of_multi_key_gets() {
    let r = run(MemcachedParser::new(), load("pymc_text").steps(Role::Client, usize::MAX, &whole), None);
    let multi = r.out.iter().find(|op| op.keys == 4).expect("get_many");
    assert_eq!((multi.hits, multi.misses()), (Some(2), Some(2)));
    let sets = r.out.iter().filter(|op| op.command.as_deref() == Some("set")).count();
    assert_eq!(sets, 6);
    assert!(r.out.iter().filter(|op| op.hits.is_none()).all(|op| op.misses().is_none()));
}

/// The default capture: single large values stay exact (a block is
/// skipped by length, and the five bytes after the last one can only be
/// END); a multi-key reply past it keeps the hits it saw.
#[test]
fn default_capture() {
    let f = load("pymc_large");
    let r = run(MemcachedParser::new(), f.steps(Role::Client, 1024, &whole), Some(SEG_NS * 1000));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        lines(&r.out),
        strs(&[
            "set/1 STORED @0>1",
            "get/1 END hits=1 @2>3",
            // set_many's three sets in one 9066-byte write: the first is whole
            // (its block is skipped by length), the other two are past the capture.
            "set/1 STORED @4>5",
            "get/4 unknown hits=1 cut @6>7",
            "get/1 END hits=1 @8>9",
            "set/1 SERVER_ERROR @10>11",
        ])
    );
    assert_eq!(r.parser.counters(), MemcachedCounters { unmatched_replies: 2, resyncs: 2, ..Default::default() });
}

#[test]
fn any_capture_size_loses_but_never_lies() {
    for (name, want) in expected() {
        let f = load(name);
        let full = run(MemcachedParser::new(), f.steps(Role::Server, usize::MAX, &whole), Some(SEG_NS * 1000)).out;
        assert_eq!(full.len(), want.len());
        for capture in [0, 1, 2, 3, 5, 8, 16, 32, 64, 100, 256, 512, 1024, 4096] {
            for role in ROLES {
                let r = run(MemcachedParser::new(), f.steps(role, capture, &whole), Some(SEG_NS * 10_000));
                assert!(r.errors.is_empty(), "{name} capture {capture} {role:?}: {:?}", r.errors);
                let mut j = 0;
                for op in &r.out {
                    let same = |w: &MemcachedOperation| {
                        w.request_start_ns == op.request_start_ns
                            && (op.command.is_none() || op.command == w.command)
                            && (op.keys == w.keys || op.cut && op.keys < w.keys)
                    };
                    while j < full.len() && !same(&full[j]) {
                        j += 1;
                    }
                    assert!(
                        j < full.len(),
                        "{name} capture {capture} {role:?}: {} is not in the full capture",
                        line(op)
                    );
                    let w = &full[j];
                    if op.command.is_some() && !matches!(op.outcome, Outcome::Unknown | Outcome::NoResponse) {
                        assert_eq!(op.outcome, w.outcome, "{name} capture {capture} {role:?}: {}", line(op));
                    }
                    match (op.hits, w.hits) {
                        (Some(h), Some(wh)) => assert!(h == wh || op.cut && h < wh, "{name}: {}", line(op)),
                        (Some(_), None) => panic!("{name} capture {capture}: hits where there were none: {}", line(op)),
                        _ => {}
                    }
                    j += 1;
                }
            }
        }
    }
    let _ = Code::End;
}
