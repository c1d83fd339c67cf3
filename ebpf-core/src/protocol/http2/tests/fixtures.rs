//! Byte-exact traffic recorded from nginx, Go net/http (h2c), curl, Go gRPC
//! and Python grpcio (see tests/fixtures/http2/README.md), replayed from both
//! sides, split at every few bytes and with short captures.

use compact_str::CompactString;

use super::{direction, play, play_from, segments, Play, Segment, SEG_NS};
use crate::protocol::http2::{GrpcCall, H2cUpgrade, Http2Parser, Http2Stream, StreamEnd};
use crate::protocol::{Chunk, Role};

macro_rules! fixture {
    ($name:literal) => {
        segments(
            $name,
            include_bytes!(concat!("../../../../tests/fixtures/http2/", $name, ".req.bin")),
            include_bytes!(concat!("../../../../tests/fixtures/http2/", $name, ".resp.bin")),
            include_str!(concat!("../../../../tests/fixtures/http2/", $name, ".segments")),
        )
    };
}

/// What one stream must look like.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    pub id: u32,
    pub method: &'static str,
    pub path: String,
    pub status: Option<u16>,
    pub req_body: u64,
    pub resp_body: u64,
    pub end: StreamEnd,
    /// (rpc method, grpc-status, request messages, response messages)
    pub grpc: Option<(&'static str, u32, u64, u64)>,
}

fn get(id: u32, path: &str, status: u16, resp_body: u64) -> Expect {
    Expect {
        id,
        method: "GET",
        path: path.to_string(),
        status: Some(status),
        req_body: 0,
        resp_body,
        end: StreamEnd::Complete,
        grpc: None,
    }
}

fn rpc(id: u32, method: &'static str, status: u32, bodies: (u64, u64), messages: (u64, u64)) -> Expect {
    Expect {
        id,
        method: "POST",
        path: format!("/{method}"),
        status: Some(200),
        req_body: bodies.0,
        resp_body: bodies.1,
        end: StreamEnd::Complete,
        grpc: Some((method, status, messages.0, messages.1)),
    }
}

const HELLO: &str = "demo.Greeter/SayHello";
const STREAM: &str = "demo.Greeter/StreamGreetings";
const COLLECT: &str = "demo.Greeter/Collect";

/// Every recording with its streams, and its `:authority`.
pub(super) fn all() -> Vec<(&'static str, Vec<Segment>, &'static str, Vec<Expect>)> {
    const MITM: &str = "127.0.0.1:18999";
    let grpc = |py: bool| {
        let mut calls = vec![
            rpc(1, HELLO, 0, (12, 18), (1, 1)),
            // Trailers-Only: the status comes in the response HEADERS.
            rpc(3, HELLO, 5, (14, 0), (1, 0)),
            rpc(5, STREAM, 0, (8, 85), (1, 5)),
            rpc(7, COLLECT, 0, (39, 18), (3, 1)),
        ];
        if !py {
            calls.push(rpc(9, HELLO, 7, (11, 0), (1, 0)));
        }
        calls
    };
    vec![
        ("nginx_curl_get", fixture!("nginx_curl_get"), MITM, vec![get(1, "/a.txt", 200, 6)]),
        (
            "nginx_curl_post",
            fixture!("nginx_curl_post"),
            MITM,
            vec![Expect { method: "POST", req_body: 600, ..get(1, "/submit", 201, 8) }],
        ),
        ("nginx_curl_big", fixture!("nginx_curl_big"), MITM, vec![get(1, "/big.txt", 200, 34000)]),
        (
            "nginx_go_sequential",
            fixture!("nginx_go_sequential"),
            MITM,
            vec![
                get(1, "/a.txt", 200, 6),
                get(3, "/b.txt", 200, 12),
                get(5, "/missing.txt", 404, 153),
                get(7, "/a.txt", 200, 6),
            ],
        ),
        (
            "go_h2c",
            fixture!("go_h2c"),
            MITM,
            vec![
                get(1, "/hello", 200, 13),
                get(3, "/status/503", 503, 4),
                Expect {
                    status: None,
                    resp_body: 0,
                    end: StreamEnd::Reset { code: Some(2), by_client: false },
                    ..get(5, "/reset", 0, 0)
                },
                get(7, "/status/204", 204, 0),
            ],
        ),
        (
            "go_h2c_post",
            fixture!("go_h2c_post"),
            MITM,
            vec![Expect { method: "POST", req_body: 18, ..get(1, "/echo", 200, 14) }],
        ),
        ("go_grpc", fixture!("go_grpc"), MITM, grpc(false)),
        ("py_grpc", fixture!("py_grpc"), MITM, grpc(true)),
        (
            "strace_nginx_sendfile",
            fixture!("strace_nginx_sendfile"),
            "127.0.0.1:18090",
            vec![get(1, "/big.txt", 200, 34000), get(3, "/a.txt", 200, 6)],
        ),
    ]
}

fn check_exact(name: &str, how: Play, authority: &str, got: &[Http2Stream], want: &[Expect]) {
    let mut got: Vec<&Http2Stream> = got.iter().collect();
    got.sort_by_key(|s| s.stream_id);
    assert_eq!(got.len(), want.len(), "{name} {how:?}: {got:#?}");
    for (g, w) in got.iter().zip(want) {
        let ctx = format!("{name} {how:?} stream {}", w.id);
        assert_eq!(g.stream_id, w.id, "{ctx}");
        assert_eq!(g.role, how.role, "{ctx}");
        assert_eq!(g.method.as_deref(), Some(w.method), "{ctx}");
        assert_eq!(g.path.as_deref(), Some(w.path.as_str()), "{ctx}");
        assert_eq!(g.scheme.as_deref(), Some("http"), "{ctx}");
        assert_eq!(g.authority.as_deref(), Some(authority), "{ctx}");
        assert_eq!(g.status, w.status, "{ctx}");
        assert_eq!((g.request_body_size, g.response_body_size), (w.req_body, w.resp_body), "{ctx}");
        assert_eq!(g.end, w.end, "{ctx}");
        assert!(g.headers_complete, "{ctx}");
        assert_eq!(g.grpc, w.grpc.map(grpc_call), "{ctx}");
        check_times(&ctx, g);
    }
}

/// Equal, except that a RST_STREAM whose payload was not captured has no code.
pub(super) fn end_matches(got: StreamEnd, want: StreamEnd) -> bool {
    match (got, want) {
        (StreamEnd::Reset { code: None, by_client: a }, StreamEnd::Reset { by_client: b, .. }) => a == b,
        _ => got == want,
    }
}

fn grpc_call((method, status, req, resp): (&'static str, u32, u64, u64)) -> GrpcCall {
    GrpcCall {
        method: Some(CompactString::from(method)),
        status: Some(status),
        request_messages: Some(req),
        response_messages: Some(resp),
    }
}

fn check_times(ctx: &str, s: &Http2Stream) {
    assert!(s.request_start_ns <= s.request_end_ns, "{ctx}: {s:?}");
    assert!(s.request_end_ns <= s.response_end_ns || s.end != StreamEnd::Complete, "{ctx}: {s:?}");
    if let Some(start) = s.response_start_ns {
        assert!(s.request_start_ns <= start && start <= s.response_end_ns, "{ctx}: {s:?}");
    }
}

/// Each fixture, from both sides, whole and cut into small pieces: exactly
/// the recorded streams.
#[test]
fn fixtures_give_exact_streams() {
    for (name, segs, authority, want) in all() {
        for role in [Role::Server, Role::Client] {
            for piece in [None, Some(1), Some(7), Some(100)] {
                let how = Play { role, piece, ..Play::SERVER };
                let (got, stats) = play(&segs, how);
                check_exact(name, how, authority, &got, &want);
                assert_eq!(stats, Default::default(), "{name} {how:?}");
            }
        }
    }
}

/// Timestamps: the request starts with the segment carrying its HEADERS and
/// the response ends with the one carrying its END_STREAM.
#[test]
fn stream_times_follow_segments() {
    let segs = fixture!("go_h2c");
    let (got, _) = play(&segs, Play::SERVER);
    let at = |s: &Http2Stream| {
        (super::seg_of(s.request_start_ns), s.response_start_ns.map(super::seg_of), super::seg_of(s.response_end_ns))
    };
    for s in &got {
        let (req, resp_start, resp_end) = at(s);
        assert!(segs[req].to_server, "{s:?}");
        assert!(!segs[resp_end].to_server, "{s:?}");
        if let Some(r) = resp_start {
            assert!(!segs[r].to_server && r > req, "{s:?}");
        }
        assert_eq!(s.request_start_ns % SEG_NS, 0);
    }
}

/// 100 requests in flight at once on one connection (Go client, nginx): 100
/// streams, each response paired with its request (nginx answers with the
/// path, so the body length tells which request it answered).
#[test]
fn one_hundred_concurrent_streams_are_paired() {
    let segs = fixture!("nginx_go_parallel100");
    for role in [Role::Server, Role::Client] {
        for piece in [None, Some(5)] {
            let (got, stats) = play(&segs, Play { role, piece, ..Play::SERVER });
            assert_eq!(stats, Default::default());
            assert_eq!(got.len(), 100);
            let mut paths: Vec<u32> = got
                .iter()
                .map(|s| {
                    let path = s.path.as_deref().unwrap();
                    assert_eq!(s.response_body_size, path.len() as u64 + 1, "{s:?}");
                    assert_eq!((s.status, s.end, s.headers_complete), (Some(200), StreamEnd::Complete, true));
                    path.strip_prefix("/p/").unwrap().parse().unwrap()
                })
                .collect();
            paths.sort_unstable();
            assert_eq!(paths, (1..=100).collect::<Vec<_>>());
            let mut ids: Vec<u32> = got.iter().map(|s| s.stream_id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 100);
            // Most were in flight together: many requests share a segment.
            assert!(
                got.iter()
                    .filter(|s| super::seg_of(s.request_start_ns) == super::seg_of(got[50].request_start_ns))
                    .count()
                    > 1
            );
        }
    }
}

/// Go's server with ten requests in flight: its handler answers
/// "GET <path> 0\n", so the body length pairs each response with its request.
#[test]
fn concurrent_streams_on_go_are_paired() {
    let segs = fixture!("go_h2c_parallel");
    for role in [Role::Server, Role::Client] {
        let (got, stats) = play(&segs, Play { role, ..Play::SERVER });
        assert_eq!(stats, Default::default());
        let mut items: Vec<u32> = got
            .iter()
            .map(|s| {
                let path = s.path.as_deref().unwrap();
                assert_eq!(s.response_body_size, path.len() as u64 + 7, "{s:?}");
                path.strip_prefix("/item/").unwrap().parse().unwrap()
            })
            .collect();
        items.sort_unstable();
        assert_eq!(items, (1..=10).collect::<Vec<_>>());
    }
}

/// With short captures, what comes out is never wrong: every stream is one
/// of the recorded ones, fields present are exact, and what is missing is
/// accounted for.
#[test]
fn short_captures_never_give_wrong_streams() {
    let mut fixtures = all();
    let par = fixture!("nginx_go_parallel100");
    fixtures.push(("nginx_go_parallel100", par, "127.0.0.1:18999", Vec::new()));
    for (name, segs, authority, want) in fixtures {
        for capture in [0, 9, 16, 40, 64, 100, 1024] {
            for role in [Role::Server, Role::Client] {
                let how = Play { role, capture: Some(capture), ..Play::SERVER };
                let (got, stats) = play(&segs, how);
                for g in &got {
                    let ctx = format!("{name} {how:?} stream {}", g.stream_id);
                    check_times(&ctx, g);
                    assert!(g.authority.is_none() || g.authority.as_deref() == Some(authority), "{ctx}");
                    if want.is_empty() {
                        // nginx_go_parallel100: the body repeats the path.
                        if let Some(path) = &g.path {
                            assert_eq!(g.response_body_size, path.len() as u64 + 1, "{ctx}: {g:?}");
                        }
                        continue;
                    }
                    let w = want.iter().find(|w| w.id == g.stream_id).unwrap_or_else(|| panic!("{ctx}: {g:?}"));
                    if let Some(m) = &g.method {
                        assert_eq!(m, w.method, "{ctx}");
                    }
                    if let Some(p) = &g.path {
                        assert_eq!(p, &w.path, "{ctx}");
                    }
                    assert!(g.status.is_none() || g.status == w.status, "{ctx}: {g:?}");
                    assert!(end_matches(g.end, w.end), "{ctx}: {g:?}");
                    // DATA sizes come from frame lengths: exact.
                    assert_eq!((g.request_body_size, g.response_body_size), (w.req_body, w.resp_body), "{ctx}");
                    if let (Some(c), Some(wc)) = (&g.grpc, w.grpc) {
                        assert!(c.status.is_none() || c.status == Some(wc.1), "{ctx}: {c:?}");
                        assert!(c.request_messages.is_none_or(|n| n == wc.2), "{ctx}: {c:?}");
                        assert!(c.response_messages.is_none_or(|n| n == wc.3), "{ctx}: {c:?}");
                    }
                    if !g.headers_complete {
                        continue;
                    }
                    assert_eq!(g.method.as_deref(), Some(w.method), "{ctx}");
                }
                let expected = if want.is_empty() { 100 } else { want.len() };
                assert!(
                    got.len() as u64 + stats.streams_lost >= expected as u64 || stats.framing_lost > 0,
                    "{name} {how:?}: {} streams, {stats:?}",
                    got.len()
                );
                if segs.iter().all(|s| s.total_len <= capture as u64) {
                    assert_eq!(got.len(), expected, "{name} {how:?}: {stats:?}");
                }
            }
        }
    }
}

/// The strace recording of an nginx worker: DATA frame headers by writev,
/// payloads by sendfile (never captured): sizes come from frame lengths.
#[test]
fn sendfile_payloads_are_counted_from_frame_lengths() {
    let segs = fixture!("strace_nginx_sendfile");
    assert!(segs.iter().any(|s| s.data.is_empty() && s.total_len == 8192));
    let (got, stats) = play(&segs, Play::SERVER);
    assert_eq!(stats, Default::default());
    assert_eq!(got.iter().map(|s| s.response_body_size).collect::<Vec<_>>(), [34000, 6]);
}

pub(super) fn upgrade_fixture() -> (&'static str, Vec<Segment>, &'static str, Vec<Expect>) {
    ("curl_h2c_upgrade", fixture!("curl_h2c_upgrade"), "127.0.0.1:18999", Vec::new())
}

/// curl's `Upgrade: h2c` to the Go server: the HTTP/1.1 request is stream 1,
/// answered in HTTP/2 after the 101.
#[test]
fn upgrade_from_http1() {
    let segs = fixture!("curl_h2c_upgrade");
    let req_head = segs[0].data;
    assert!(req_head.starts_with(b"GET /upgraded HTTP/1.1\r\n") && req_head.ends_with(b"\r\n\r\n"));
    assert!(segs[1].data.starts_with(b"HTTP/1.1 101 ") && segs[1].data.ends_with(b"\r\n\r\n"));
    for role in [Role::Server, Role::Client] {
        let mut p = Http2Parser::after_upgrade(H2cUpgrade {
            request_direction: direction(role, true),
            method: "GET".into(),
            path: "/upgraded".into(),
            authority: Some("127.0.0.1:18999".into()),
            request_start_ns: SEG_NS,
            request_end_ns: SEG_NS,
            request_body_size: 0,
        });
        let (got, stats) = play_from(&mut p, &segs, 2, Play { role, ..Play::SERVER });
        assert_eq!(stats, Default::default());
        let got: Vec<_> =
            got.iter().map(|s| (s.stream_id, s.path.as_deref(), s.status, s.response_body_size, s.end)).collect();
        assert_eq!(
            got,
            [
                // "GET /upgraded 0\n", "GET /second 0\n"
                (1, Some("/upgraded"), Some(200), 16, StreamEnd::Complete),
                (3, Some("/second"), Some(200), 14, StreamEnd::Complete),
            ]
        );
    }
    // The preface is checked.
    let mut p = Http2Parser::after_upgrade(H2cUpgrade {
        request_direction: direction(Role::Server, true),
        method: "GET".into(),
        path: "/".into(),
        authority: None,
        request_start_ns: 1,
        request_end_ns: 1,
        request_body_size: 0,
    });
    let chunk =
        Chunk { ts_ns: 2, direction: direction(Role::Server, true), data: b"GET / HTTP/1.1\r\n", total_len: 16 };
    assert!(p.feed(&chunk, &mut Vec::new()).is_err());
    assert!(p.is_failed());
}
