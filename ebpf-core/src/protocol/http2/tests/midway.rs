//! A parser started in the middle of a recorded connection (it predates the
//! receiver): it must wait for frame boundaries, and never give a method,
//! path or status that the unknown HPACK table could have changed.

use super::fixtures::all;
use super::{play_from, Play};
use crate::protocol::http2::{Http2Parser, StreamEnd};
use crate::protocol::Role;

#[test]
fn joining_anywhere_never_gives_a_wrong_stream() {
    for (name, segs, authority, want) in all() {
        for from in 0..segs.len() {
            for role in [Role::Server, Role::Client] {
                let how = Play { role, ..Play::SERVER };
                let (got, _) = play_from(&mut Http2Parser::midway(), &segs, from, how);
                for g in &got {
                    let ctx = format!("{name} from segment {from} as {role:?}: {g:?}");
                    let w = want.iter().find(|w| w.id == g.stream_id).unwrap_or_else(|| panic!("{ctx}"));
                    assert_eq!(g.role, role, "{ctx}");
                    // Streams begun before the join are never reported.
                    assert!(super::seg_of(g.request_start_ns) >= from, "{ctx}");
                    assert!(g.method.as_deref().is_none_or(|m| m == w.method), "{ctx}");
                    assert!(g.path.as_deref().is_none_or(|p| p == w.path), "{ctx}");
                    assert!(g.authority.as_deref().is_none_or(|a| a == authority), "{ctx}");
                    assert!(g.status.is_none() || g.status == w.status, "{ctx}");
                    assert_eq!((g.request_body_size, g.response_body_size), (w.req_body, w.resp_body), "{ctx}");
                    assert!(super::fixtures::end_matches(g.end, w.end), "{ctx}");
                    if let (Some(c), Some(wc)) = (&g.grpc, w.grpc) {
                        assert!(c.method.as_deref().is_none_or(|m| m == wc.0), "{ctx}");
                        assert!(c.status.is_none_or(|s| s == wc.1), "{ctx}");
                        assert!(c.request_messages.is_none_or(|n| n == wc.2), "{ctx}");
                    }
                    if g.headers_complete {
                        assert_eq!(
                            (g.method.as_deref(), g.path.as_deref(), g.status),
                            (Some(w.method), Some(w.path.as_str()), w.status),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }
}

/// Joined after the first gRPC call, the Go client's later calls refer to
/// the `:path` and `:authority` it indexed then: those stay unknown, while
/// `:method` (static table), the status and the message counts are exact.
#[test]
fn joined_grpc_connection_reports_what_is_certain() {
    let (_, segs, _, want) = all().into_iter().find(|f| f.0 == "go_grpc").unwrap();
    let mut best = None;
    for start in 1..segs.len() {
        let (got, _) = play_from(&mut Http2Parser::midway(), &segs, start, Play::SERVER);
        if got.iter().any(|s| !s.headers_complete) {
            best = Some((start, got));
            break;
        }
    }
    let (start, got) = best.expect("some join point leaves header fields unknown");
    let incomplete: Vec<_> = got.iter().filter(|s| !s.headers_complete).collect();
    for s in &incomplete {
        let w = want.iter().find(|w| w.id == s.stream_id).unwrap();
        assert_eq!(s.method.as_deref(), Some("POST"), "joined at {start}: {s:?}");
        assert_eq!(s.end, StreamEnd::Complete);
        assert!(s.path.is_none() || s.path.as_deref() == Some(w.path.as_str()), "{s:?}");
    }
    // Repeated paths are indexed (unknown), new ones literal (exact).
    assert!(incomplete.iter().any(|s| s.path.is_none()), "{incomplete:?}");
    assert!(incomplete.iter().any(|s| s.path.is_some()), "{incomplete:?}");
    assert!(incomplete.iter().all(|s| s.status == Some(200) && s.grpc.as_ref().is_some_and(|g| g.status.is_some())));
}

/// A connection seen from its first chunk on, but a parser told it joined
/// mid-way, still finds the frames at the first aligned chunk.
#[test]
fn midway_parser_resynchronises_on_aligned_chunks() {
    let (_, segs, _, want) = all().into_iter().find(|f| f.0 == "go_h2c").unwrap();
    // Skip the preface: the first client chunk is not aligned (it starts
    // with it); the next ones are.
    let (got, stats) = play_from(&mut Http2Parser::midway(), &segs, 0, Play::SERVER);
    assert!(stats.resyncs >= 2, "{stats:?}");
    assert!(!got.is_empty() && got.len() <= want.len());
}
