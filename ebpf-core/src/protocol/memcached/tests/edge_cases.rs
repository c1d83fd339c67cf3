//! Hand-made streams: quiet batches, multi-line replies, truncation as the
//! kernel shows it, garbage, lost events, limits and privacy.

use super::fixtures::line;
use super::run;
use crate::protocol::memcached::{
    looks_like_command, Code, MemcachedCounters, MemcachedError, MemcachedOperation, MemcachedParser, Outcome,
    MAX_PENDING,
};
use crate::protocol::{Chunk, Direction};

const C: Direction = Direction::Egress;
const S: Direction = Direction::Ingress;
const CAPTURE: usize = 1024;

/// One syscall per step, captured up to `CAPTURE`; timestamps = segment
/// numbers (so `line` shows them), starting at 0.
fn talk(steps: &[(Direction, &[u8])]) -> super::Run {
    talk_then(steps, true)
}

fn talk_then(steps: &[(Direction, &[u8])], close: bool) -> super::Run {
    let seg = crate::protocol::recorded::SEG_NS;
    run(
        MemcachedParser::new(),
        steps
            .iter()
            .enumerate()
            .map(|(i, (d, b))| (*d, seg * (i as u64 + 1), &b[..b.len().min(CAPTURE)], b.len() as u64)),
        close.then_some(seg * 1000),
    )
}

fn lines(ops: &[MemcachedOperation]) -> Vec<String> {
    ops.iter().map(line).collect()
}

#[test]
fn quiet_batch_without_tokens_ends_at_mn() {
    // No opaque, no returned key: a hit answers the first quiet mg that
    // could have sent it; misses are silent; mn ends the batch.
    let r = talk(&[(C, b"mg a v q\r\nmg b v q\r\nmg c v q\r\nmn\r\n"), (S, b"VA 1\r\nx\r\nMN\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        lines(&r.out),
        ["mg/1 VA hits=1 quiet @0>1", "mg/1 EN hits=0 quiet @0>-", "mg/1 EN hits=0 quiet @0>-", "mn/0 MN @0>1"]
    );
}

#[test]
fn quiet_commands_match_by_opaque_and_key() {
    // Only the second and third were hits: their opaque tokens and keys say so.
    let r = talk(&[
        (C, b"mg k1 v q O1 k\r\nmg k2 v q O2 k\r\nmg k3 v q O3 k\r\nms k4 1 q O4\r\nz\r\nmn\r\n"),
        (S, b"VA 1 O2 kk2\r\nb\r\nVA 1 O3 kk3\r\nc\r\nMN\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        lines(&r.out),
        [
            "mg/1 EN hits=0 quiet @0>-",
            "mg/1 VA hits=1 quiet @0>1",
            "mg/1 VA hits=1 quiet @0>1",
            "ms/1 HD quiet @0>-",
            "mn/0 MN @0>1"
        ]
    );
    // A reply whose key does not match skips nothing it should not.
    let r = talk(&[(C, b"mg k1 v q k\r\nmn\r\n"), (S, b"VA 1 kother\r\nb\r\nMN\r\n")]);
    assert_eq!(r.errors, [MemcachedError::Desynchronized("a reply answers none of the commands awaiting one")]);
}

#[test]
fn multi_line_replies() {
    let stats = b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n";
    let r = talk(&[
        (C, b"stats\r\n"),
        (S, &stats[..10]),
        (S, &stats[10..]),
        (C, b"stats reset\r\nstats detail on\r\nstats items\r\nlru_crawler metadump all\r\n"),
        (S, b"RESET\r\nOK\r\nEND\r\nkey=a exp=-1 la=1 cas=2 fetch=no cls=1 size=60\r\nEND\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        lines(&r.out),
        ["stats/0 END @0>1", "stats/0 RESET @3>4", "stats/0 OK @3>4", "stats/0 END @3>4", "lru_crawler/0 END @3>4"]
    );
    assert_eq!(r.out[0].response_end_ns / crate::protocol::recorded::SEG_NS - 1, 2);
}

#[test]
fn a_long_multi_get_line_counts_the_keys_it_saw() {
    let keys: Vec<String> = (0..100).map(|i| format!("session:{i:040}")).collect();
    let req = format!("get {}\r\n", keys.join(" "));
    assert!(req.len() > 4 * CAPTURE);
    let seen = (CAPTURE - 4) / (keys[0].len() + 1);
    let r = talk(&[
        (C, req.as_bytes()),
        (S, b"VALUE session:0 0 1\r\nx\r\nEND\r\n"),
        (C, b"version\r\n"),
        (S, b"VERSION 1.6.18\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(lines(&r.out), [format!("get/{} END hits=1 cut @0>1", seen + 1), "version/0 VERSION @2>3".into()]);
}

#[test]
fn large_values_stay_exact() {
    let value = "v".repeat(100_000);
    let set = format!("set big 0 0 {}\r\n{value}\r\n", value.len());
    let get = format!("VALUE big 0 {}\r\n{value}\r\nEND\r\n", value.len());
    let gets = format!("VALUE big 0 {} 77\r\n{value}\r\nVALUE b2 0 1 78\r\nx\r\nEND\r\n", value.len());
    let r = talk(&[
        (C, set.as_bytes()),
        (S, b"STORED\r\n"),
        (C, b"get big\r\n"),
        (S, get.as_bytes()),
        (C, b"gets big b2 b3\r\n"),
        (S, gets.as_bytes()),
        (C, b"delete big\r\n"),
        (S, b"DELETED\r\n"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        lines(&r.out),
        [
            "set/1 STORED @0>1",
            "get/1 END hits=1 @2>3",
            // Past the first block, headers were lost: hits seen, a lower bound.
            "gets/3 unknown hits=1 cut @4>5",
            "delete/1 DELETED @6>7"
        ]
    );
    assert_eq!(r.out[1].response_bytes, get.len() as u64);
    assert_eq!(r.out[0].request_bytes, set.len() as u64);
    assert_eq!(r.parser.counters().resyncs, 1);
}

#[test]
fn noreply_errors_from_older_servers_are_counted() {
    let r =
        talk(&[(C, b"incr n 1 noreply\r\n"), (S, b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(lines(&r.out), ["incr/1 noreply quiet @0>-"]);
    assert_eq!(r.parser.counters().unmatched_replies, 1);
}

#[test]
fn watch_switches_the_connection() {
    let r =
        talk_then(&[(C, b"watch fetchers\r\n"), (S, b"OK\r\nts=1 gid=2 type=item_get key=a status=found\r\n")], false);
    assert!(r.errors.is_empty() && r.parser.is_switched());
    assert_eq!(lines(&r.out), ["watch/0 OK @0>1"]);
}

#[test]
fn garbage_and_the_binary_protocol() {
    let mut p = MemcachedParser::new();
    let mut out = Vec::new();
    let binary =
        [0x80u8, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'f', b'o', b'o'];
    assert!(!looks_like_command(&binary));
    let r = p.feed(&Chunk { ts_ns: 1, direction: C, data: b"set k 0 0 x\r\n", total_len: 13 }, &mut out);
    assert_eq!(r, Err(MemcachedError::Request("a storage command's data length is not a number")));
    assert!(p.is_failed());

    let r = talk(&[
        (C, b"get a\r\n"),
        (S, b"END\r\n"),
        (C, b"set k 0 0 nope\r\n"),
        (S, b"CLIENT_ERROR bad command line format\r\n"),
        (C, b"get b\r\n"),
        (S, b"END\r\n"),
    ]);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(lines(&r.out), ["get/1 END hits=0 @0>1", "get/1 END hits=0 @4>5"]);
    assert_eq!(r.parser.counters().resyncs, 1);
}

#[test]
fn gap_drops_in_flight_and_waits_for_a_command() {
    let mut p = MemcachedParser::new();
    let mut out = Vec::new();
    let feed = |p: &mut MemcachedParser, out: &mut Vec<MemcachedOperation>, ts, d, b: &[u8]| {
        p.feed(&Chunk { ts_ns: ts, direction: d, data: b, total_len: b.len() as u64 }, out).unwrap();
    };
    feed(&mut p, &mut out, 1, C, b"get a b\r\nincr n 1\r\ndelete c noreply\r\n");
    assert_eq!(p.gap(&mut out), 2);
    assert_eq!(out.len(), 1, "the noreply delete is complete: reported");
    out.clear();
    feed(&mut p, &mut out, 2, S, b"VALUE a 0 1\r\nx\r\nEND\r\n2\r\n");
    feed(&mut p, &mut out, 3, C, b"\r\nbc 0 0 1\r\n");
    assert!(p.is_lost());
    feed(&mut p, &mut out, 4, C, b"touch a 10\r\n");
    feed(&mut p, &mut out, 5, S, b"ND\r\n");
    feed(&mut p, &mut out, 6, S, b"TOUCHED\r\n");
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].command.as_deref(), out[0].outcome), (Some("touch"), Outcome::Reply(Code::Touched)));
    assert_eq!((out[0].request_start_ns, out[0].response_start_ns), (4, Some(6)));
    assert_eq!(p.counters().dropped_operations, 2);
}

#[test]
fn close_ends_what_is_in_flight() {
    let r = talk(&[(C, b"mg a v q\r\nget b\r\nset c 0 0 1\r\nx\r\n"), (S, b"VALUE b 0 1\r\ny\r\n")]);
    // The VALUE showed the quiet mg was silent: it ends then; the rest at the close.
    assert_eq!(r.before_close, 1);
    assert_eq!(lines(&r.out), ["mg/1 EN hits=0 quiet @0>-", "get/1 unknown hits=1 cut @0>1", "set/1 noresponse @0>-"]);
}

#[test]
fn more_commands_than_kept_are_counted_and_still_matched() {
    let n = MAX_PENDING + 5;
    let req: Vec<u8> = (0..n).flat_map(|_| b"incr c 1\r\n".to_vec()).collect();
    let replies: Vec<u8> = (1..=n).flat_map(|i| format!("{i}\r\n").into_bytes()).collect();
    let mut out = Vec::new();
    let mut p = MemcachedParser::new();
    for (ts, d, b) in [(1, C, &req[..]), (2, S, &replies[..]), (3, C, b"version\r\n"), (4, S, b"VERSION 1\r\n")] {
        p.feed(&Chunk { ts_ns: ts, direction: d, data: b, total_len: b.len() as u64 }, &mut out).unwrap();
    }
    assert_eq!(out.len(), MAX_PENDING + 1);
    assert_eq!(out.last().and_then(|op| op.command.as_deref()), Some("version"));
    assert_eq!(p.counters(), MemcachedCounters { dropped_operations: 5, ..Default::default() });
}

#[test]
fn nothing_private_is_kept() {
    let email = "alice@example.com";
    let card = "4111111111111111";
    let req = format!(
        "set user:{email} 0 0 {}\r\n{card}\r\nget user:{email}\r\nms {email} {} O{card} k\r\n{card}\r\nmg {email} v k\r\n",
        card.len(),
        card.len()
    );
    let replies = format!(
        "STORED\r\nVALUE user:{email} 0 {}\r\n{card}\r\nEND\r\nHD O{card} k{email}\r\nVA {} k{email}\r\n{card}\r\n",
        card.len(),
        card.len()
    );
    let r = talk(&[(C, req.as_bytes()), (S, replies.as_bytes())]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.out.len(), 4);
    let everything = format!("{:?}", r.out);
    for secret in [email, card, "alice"] {
        assert!(!everything.contains(secret), "{secret} kept: {everything}");
    }
}
