//! Byte-exact traffic recorded from nginx, python's http.server and curl
//! (see tests/fixtures/http1/README.md), replayed through the parser split
//! at every byte, truncated at every capture size, and from both sides.

use super::{request_dir, response_dir, run, Run};
use crate::protocol::http1::{HttpExchange, HttpVersion, ParseError};
use crate::protocol::{Direction, Role};

/// Timestamps are `SEG_NS * (segment + 1) + piece`, so that any split of a
/// recorded segment keeps it recognisable as `ts / SEG_NS - 1`.
const SEG_NS: u64 = 1_000_000;

struct Fixture {
    name: &'static str,
    req: &'static [u8],
    resp: &'static [u8],
    segments: &'static str,
    expect: Vec<Expect>,
    /// The last response ends at close, so exchanges only come out then.
    needs_close: bool,
}

macro_rules! fixture {
    ($name:literal, needs_close: $close:expr, $expect:expr) => {
        Fixture {
            name: $name,
            req: include_bytes!(concat!("../../../../tests/fixtures/http1/", $name, ".req.bin")),
            resp: include_bytes!(concat!("../../../../tests/fixtures/http1/", $name, ".resp.bin")),
            segments: include_str!(concat!("../../../../tests/fixtures/http1/", $name, ".segments")),
            expect: $expect,
            needs_close: $close,
        }
    };
}

/// What one exchange must look like; `*_seg` are recorded segment indexes.
#[derive(Debug)]
struct Expect {
    method: &'static str,
    target: &'static str,
    version: HttpVersion,
    status: u16,
    req_body: u64,
    resp_body: u64,
    req_seg: (usize, usize),
    resp_seg: (usize, usize),
}

const fn get(target: &'static str, status: u16, resp_body: u64, req: usize, resp: (usize, usize)) -> Expect {
    Expect {
        method: "GET",
        target,
        version: HttpVersion::Http11,
        status,
        req_body: 0,
        resp_body,
        req_seg: (req, req),
        resp_seg: resp,
    }
}

const HOST: &str = "127.0.0.1:18999";

fn fixtures() -> Vec<Fixture> {
    vec![
        fixture!("nginx_keepalive", needs_close: false, vec![
            get("/a.txt", 200, 6, 0, (1, 1)),
            get("/b.txt", 200, 12, 2, (3, 3)),
            get("/c.txt", 200, 24, 4, (5, 6)),
        ]),
        fixture!("nginx_chunked_gzip", needs_close: false, vec![get("/big.txt", 200, 0x33c, 0, (1, 1))]),
        fixture!("nginx_404", needs_close: false, vec![get("/missing.txt", 404, 153, 0, (1, 1))]),
        fixture!("nginx_post", needs_close: false, vec![Expect {
            method: "POST",
            req_body: 18,
            ..get("/submit", 201, 8, 0, (1, 1))
        }]),
        fixture!("nginx_chunked_upload", needs_close: false, vec![Expect {
            method: "POST",
            req_body: 600,
            ..get("/echo", 200, 9, 0, (1, 1))
        }]),
        fixture!("nginx_head", needs_close: false, vec![Expect {
            method: "HEAD",
            ..get("/a.txt", 200, 0, 0, (1, 1))
        }]),
        fixture!("nginx_304", needs_close: false, vec![get("/a.txt", 304, 0, 0, (1, 1))]),
        fixture!("nginx_pipelined", needs_close: false, vec![
            get("/a.txt", 200, 6, 0, (1, 1)),
            get("/missing", 404, 153, 0, (1, 1)),
            Expect {
                method: "HEAD",
                ..get("/b.txt", 200, 0, 0, (1, 1))
            },
            get("/c.txt", 200, 24, 0, (1, 1)),
        ]),
        fixture!("py_http10_close", needs_close: true, vec![Expect {
            version: HttpVersion::Http10,
            ..get("/stream", 200, 80, 0, (1, 6))
        }]),
        fixture!("py_100_continue", needs_close: false, vec![Expect {
            method: "POST",
            req_body: 600,
            req_seg: (0, 2),
            ..get("/upload", 200, 14, 0, (3, 4))
        }]),
        fixture!("py_chunked_trailer", needs_close: false, vec![get("/chunked", 200, 47, 0, (1, 5))]),
        fixture!("pyhttp_get", needs_close: false, vec![get("/b.txt", 200, 12, 0, (1, 2))]),
        fixture!("pyhttp_404", needs_close: false, vec![get("/nope", 404, 335, 0, (1, 2))]),
        fixture!("strace_nginx_sendfile", needs_close: false, vec![
            get("/a.txt", 200, 6, 0, (1, 2)),
            get("/c.txt", 200, 24, 3, (4, 5)),
            get("/missing.txt", 404, 153, 6, (7, 7)),
        ]),
        fixture!("strace_curl_keepalive", needs_close: false, vec![
            get("/a.txt", 200, 6, 0, (1, 1)),
            get("/missing.txt", 404, 153, 2, (3, 3)),
        ]),
    ]
}

/// One recorded syscall.
#[derive(Debug, Clone, Copy)]
struct Segment {
    request: bool,
    data: &'static [u8],
    total_len: u64,
}

impl Fixture {
    fn segments(&self) -> Vec<Segment> {
        let (mut req_at, mut resp_at) = (0usize, 0usize);
        let mut out = Vec::new();
        for line in self.segments.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let request = match words.next() {
                Some(">") => true,
                Some("<") => false,
                other => panic!("{}: bad segment line {other:?}", self.name),
            };
            let rest: Vec<&str> = words.collect();
            let (sendfile, len) = match rest.as_slice() {
                [n] => (false, n.parse::<usize>().unwrap()),
                ["sendfile", n] => (true, n.parse::<usize>().unwrap()),
                _ => panic!("{}: bad segment line {line:?}", self.name),
            };
            let data = if sendfile {
                &[][..]
            } else if request {
                req_at += len;
                &self.req[req_at - len..req_at]
            } else {
                resp_at += len;
                &self.resp[resp_at - len..resp_at]
            };
            out.push(Segment { request, data, total_len: len as u64 });
        }
        assert_eq!(req_at, self.req.len(), "{}: request bytes unaccounted", self.name);
        assert_eq!(resp_at, self.resp.len(), "{}: response bytes unaccounted", self.name);
        out
    }

    fn close_ts(&self) -> u64 {
        SEG_NS * (self.segments().len() as u64 + 1)
    }

    /// Replays with each segment cut at the offsets `cuts` gives for it.
    fn replay(&self, role: Role, cuts: &mut dyn FnMut(usize, usize) -> Vec<usize>) -> Run {
        let mut steps = Vec::new();
        for (i, seg) in self.segments().into_iter().enumerate() {
            let dir = if seg.request { request_dir(role) } else { response_dir(role) };
            let base = SEG_NS * (i as u64 + 1);
            if seg.data.is_empty() {
                steps.push((dir, base, seg.data, seg.total_len));
                continue;
            }
            let mut points = cuts(i, seg.data.len());
            points.retain(|&p| p > 0 && p < seg.data.len());
            points.sort_unstable();
            points.dedup();
            points.push(seg.data.len());
            let mut from = 0;
            for (piece, to) in points.into_iter().enumerate() {
                let data = &seg.data[from..to];
                steps.push((dir, base + piece as u64, data, data.len() as u64));
                from = to;
            }
        }
        run(steps, Some(self.close_ts()))
    }

    /// Replays with at most `cap` bytes of each syscall captured.
    fn replay_captured(&self, role: Role, cap: usize) -> Run {
        self.replay_capped(role, &mut |_| cap)
    }

    /// Replays with at most `cap(segment)` bytes of each syscall captured.
    fn replay_capped(&self, role: Role, cap: &mut dyn FnMut(usize) -> usize) -> Run {
        let steps: Vec<(Direction, u64, &[u8], u64)> = self
            .segments()
            .into_iter()
            .enumerate()
            .map(|(i, seg)| {
                let dir = if seg.request { request_dir(role) } else { response_dir(role) };
                let data = &seg.data[..seg.data.len().min(cap(i))];
                (dir, SEG_NS * (i as u64 + 1), data, seg.total_len)
            })
            .collect();
        run(steps, Some(self.close_ts()))
    }

    fn check(&self, role: Role, run: &Run, how: &str) {
        let ctx = format!("{} as {role:?}, {how}", self.name);
        assert!(run.errors.is_empty(), "{ctx}: {:?}", run.errors);
        assert!(!run.parser.is_failed(), "{ctx}");
        assert_eq!(run.out.len(), self.expect.len(), "{ctx}: {:#?}", run.out);
        let expected_before_close = if self.needs_close { self.expect.len() - 1 } else { self.expect.len() };
        assert_eq!(run.before_close, expected_before_close, "{ctx}: emitted before close");
        for (x, e) in run.out.iter().zip(&self.expect) {
            let seg = |ts: u64| (ts / SEG_NS) as usize - 1;
            assert_eq!(x.role, role, "{ctx}");
            assert_eq!(x.method, e.method, "{ctx}");
            assert_eq!(x.target, e.target, "{ctx}");
            assert_eq!(x.version, e.version, "{ctx}: {}", e.target);
            if self.name.starts_with("strace_") {
                assert_eq!(x.host.as_deref(), Some("127.0.0.1:18080"), "{ctx}");
            } else {
                assert_eq!(x.host.as_deref(), Some(HOST), "{ctx}");
            }
            assert_eq!(x.status, Some(e.status), "{ctx}: {}", e.target);
            assert_eq!(x.request_body_size, e.req_body, "{ctx}: {}", e.target);
            assert_eq!(x.response_body_size, e.resp_body, "{ctx}: {}", e.target);
            let got = (
                (seg(x.request_start_ns), seg(x.request_end_ns)),
                (x.response_start_ns.map(seg), seg(x.response_end_ns)),
            );
            let want = (e.req_seg, (Some(e.resp_seg.0), e.resp_seg.1));
            assert_eq!(got, want, "{ctx}: {} timestamps", e.target);
            assert!(x.request_start_ns <= x.request_end_ns, "{ctx}");
            assert!(x.response_start_ns.unwrap() <= x.response_end_ns, "{ctx}");
        }
    }
}

const ROLES: [Role; 2] = [Role::Server, Role::Client];

#[test]
fn whole_syscalls_as_recorded() {
    for f in fixtures() {
        for role in ROLES {
            let run = f.replay(role, &mut |_, _| Vec::new());
            f.check(role, &run, "as recorded");
        }
    }
}

#[test]
fn every_single_split_point() {
    for f in fixtures() {
        let segments = f.segments();
        for role in ROLES {
            for (s, seg) in segments.iter().enumerate() {
                for at in 1..seg.data.len() {
                    let run = f.replay(role, &mut |i, _| if i == s { vec![at] } else { Vec::new() });
                    f.check(role, &run, &format!("segment {s} split at {at}"));
                }
            }
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for f in fixtures() {
        for role in ROLES {
            let run = f.replay(role, &mut |_, len| (1..len).collect());
            f.check(role, &run, "1-byte chunks");
        }
    }
}

#[test]
fn many_random_splits() {
    // Deterministic xorshift so failures reproduce.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for f in fixtures() {
        for round in 0..100 {
            let role = ROLES[round % 2];
            let mut cuts = Vec::new();
            let run = f.replay(role, &mut |_, len| {
                let n = (next() % 6) as usize;
                let points: Vec<usize> = (0..n).map(|_| (next() as usize) % len).collect();
                cuts.push(points.clone());
                points
            });
            f.check(role, &run, &format!("round {round} cuts {cuts:?}"));
        }
    }
}

/// What a degraded exchange (framing lost to truncation) must share with the
/// one a full capture gives: everything, except that a Host line cut short
/// is missing and body sizes only count what was framed (lower bounds).
pub(super) fn agrees(degraded: &HttpExchange, full: &HttpExchange) -> bool {
    let as_full = HttpExchange {
        host: full.host.clone(),
        request_body_size: full.request_body_size,
        response_body_size: full.response_body_size,
        ..degraded.clone()
    };
    (degraded.host.is_none() || degraded.host == full.host)
        && degraded.request_body_size <= full.request_body_size
        && degraded.response_body_size <= full.response_body_size
        && as_full == *full
}

/// Losing the uncaptured tail of a syscall must never produce a wrong
/// exchange: either the bytes were body bytes and the result is unchanged,
/// or they only hid where a message ends and the exchange, followed in
/// degraded framing, agrees with the full one, or the parser reports that
/// it lost track (a truncation it cannot follow).
/// A run with lost bytes next to the run without: see `every_capture_size_is_exact_degraded_or_an_error`.
/// True if the lossy run differs from the full one (degraded framing).
fn check_lossy(f: &Fixture, run: &Run, full: &Run, ctx: &str) -> bool {
    if run.errors.is_empty() {
        if f.name == "nginx_pipelined" {
            // Requests pipelined behind a cut head are invisible, and so
            // are their responses when those are cut too.
            assert!(!run.out.is_empty() && run.out.len() <= full.out.len(), "{ctx}");
        } else {
            assert_eq!(run.out.len(), full.out.len(), "{ctx}: {:#?}", run.out);
        }
    } else {
        assert_eq!(run.errors.len(), 1, "{ctx}");
        assert!(
            matches!(run.errors[0], ParseError::Truncated { .. } | ParseError::Desynchronized { .. }),
            "{ctx}: {:?}",
            run.errors
        );
        assert!(run.parser.is_failed(), "{ctx}");
        assert!(run.out.len() <= full.out.len(), "{ctx}");
    }
    for (x, want) in run.out.iter().zip(&full.out) {
        assert!(agrees(x, want), "{ctx}:\n{x:#?}\nwant\n{want:#?}");
    }
    run.out != full.out[..run.out.len()]
}

/// Losing the uncaptured tail of a syscall must never produce a wrong
/// exchange: either the bytes were body bytes and the result is unchanged,
/// or they only hid where a message ends and the exchange, followed in
/// degraded framing, agrees with the full one, or the parser reports that
/// it lost track (a truncation it cannot follow).
#[test]
fn every_capture_size_is_exact_degraded_or_an_error() {
    let mut degraded_runs = 0;
    for f in fixtures() {
        let longest = f.segments().iter().map(|s| s.data.len()).max().unwrap();
        for role in ROLES {
            let full = f.replay(role, &mut |_, _| Vec::new());
            for cap in 0..=longest {
                let run = f.replay_captured(role, cap);
                let ctx = format!("{} as {role:?} capturing {cap}", f.name);
                if cap == 0 {
                    // Nothing shows which way requests go, so nothing is parsed.
                    assert!(run.errors.is_empty() && run.out.is_empty(), "{ctx}");
                    continue;
                }
                degraded_runs += usize::from(check_lossy(&f, &run, &full, &ctx));
            }
        }
    }
    assert!(degraded_runs > 0, "no capture size exercised degraded framing");
}

/// The same with a different capture size for each syscall, so that one
/// direction is cut where the other is not.
#[test]
fn random_capture_size_per_syscall() {
    let mut state = 0x51_7CC1_B727_220Au64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut outcomes = [0usize; 3];
    for f in fixtures() {
        let lens: Vec<usize> = f.segments().iter().map(|s| s.data.len()).collect();
        for round in 0..300 {
            let role = ROLES[round % 2];
            let full = f.replay(role, &mut |_, _| Vec::new());
            let mut caps = Vec::new();
            let run = f.replay_capped(role, &mut |i| {
                // Keep the first chunk's first byte: it decides the role.
                let cap = if next() % 2 == 0 { lens[i] } else { 1 + (next() as usize) % lens[i].max(1) };
                caps.push(cap);
                cap
            });
            let ctx = format!("{} as {role:?} capturing {caps:?}", f.name);
            let degraded = check_lossy(&f, &run, &full, &ctx);
            outcomes[if !run.errors.is_empty() { 2 } else { usize::from(degraded) }] += 1;
        }
    }
    let [exact, degraded, failed] = outcomes;
    assert!(exact > 0 && degraded > 0 && failed > 0, "{outcomes:?}");
    assert!(degraded > failed, "{outcomes:?}");
}

fn fixture(name: &str) -> Fixture {
    fixtures().into_iter().find(|f| f.name == name).unwrap()
}

#[test]
fn truncated_bodies_are_consumed_by_content_length() {
    // The 600-byte upload body arrives in its own write; capture only 200 of it.
    let f = fixture("py_100_continue");
    let run = f.replay_captured(Role::Server, 200);
    f.check(Role::Server, &run, "capture 200");

    // Head and 18-byte body in one write, 13 body bytes not captured.
    let f = fixture("nginx_post");
    let head_len = f.req.len() - 18;
    let run = f.replay_captured(Role::Client, head_len + 5);
    f.check(Role::Client, &run, "capture 5 body bytes");
}

#[test]
fn default_capture_size_follows_the_fixtures_it_can() {
    for f in fixtures() {
        let run = f.replay_captured(Role::Server, 1024);
        if f.name == "nginx_chunked_gzip" {
            // The last-chunk framing sits past byte 1024 of a single write:
            // the response is unframed, so it ends at close, at its last
            // chunk. All of its one chunk's payload was framed and counted.
            assert!(run.errors.is_empty(), "{:?}", run.errors);
            assert_eq!(run.before_close, 0);
            let full = f.replay(Role::Server, &mut |_, _| Vec::new());
            assert_eq!(run.out, full.out);
        } else {
            f.check(Role::Server, &run, "capture 1024");
        }
    }
}

#[test]
fn sendfile_bodies_are_counted_without_bytes() {
    let f = fixture("strace_nginx_sendfile");
    let sendfiles: Vec<u64> = f.segments().iter().filter(|s| s.data.is_empty()).map(|s| s.total_len).collect();
    assert_eq!(sendfiles, [6, 24]);
    let run = f.replay(Role::Server, &mut |_, _| Vec::new());
    f.check(Role::Server, &run, "sendfile");
}

/// Everything one side sent in one syscall: the client pipelines the
/// whole keep-alive sequence and the server answers in one write.
#[test]
fn keepalive_sequence_coalesced_into_two_syscalls() {
    for f in [fixture("nginx_keepalive"), fixture("strace_curl_keepalive")] {
        for role in ROLES {
            let run = super::run(
                [
                    (request_dir(role), 10, f.req, f.req.len() as u64),
                    (response_dir(role), 20, f.resp, f.resp.len() as u64),
                ],
                None,
            );
            assert!(run.errors.is_empty(), "{}: {:?}", f.name, run.errors);
            let got: Vec<_> = run
                .out
                .iter()
                .map(|x: &HttpExchange| {
                    (
                        x.target.as_str(),
                        x.status,
                        x.response_body_size,
                        x.request_start_ns,
                        x.response_start_ns,
                        x.response_end_ns,
                    )
                })
                .collect();
            let want: Vec<_> =
                f.expect.iter().map(|e| (e.target, Some(e.status), e.resp_body, 10, Some(20), 20)).collect();
            assert_eq!(got, want, "{}", f.name);
        }
    }
}

#[test]
fn first_chunk_of_every_fixture_looks_like_http() {
    for f in fixtures() {
        assert!(crate::protocol::http1::Http1Parser::looks_like_http(f.req), "{}", f.name);
        assert!(crate::protocol::http1::Http1Parser::looks_like_http(f.resp), "{}", f.name);
    }
}
