//! Recognising HTTP/2 from a connection's bytes, and splitting chunks at
//! every byte.

use super::fixtures::all;
use super::{play, Play};
use crate::protocol::http2::{looks_like_frames, looks_like_preface, requests_h2c_upgrade, Http2Parser, PREFACE};
use crate::protocol::{Chunk, Role};

#[test]
fn preface_recognition() {
    assert!(looks_like_preface(PREFACE));
    assert!(looks_like_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"));
    assert!(looks_like_preface(b"PRI "));
    for not in [&b""[..], b"PRI", b"PRI * HTTP/1.1", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00"] {
        assert!(!looks_like_preface(not), "{not:?}");
    }
}

#[test]
fn h2c_upgrade_requests() {
    // curl --http2 http://...: the recorded request's fields.
    let (_, segs, _, _) = super::fixtures::upgrade_fixture();
    let head = std::str::from_utf8(segs[0].data).unwrap();
    let fields: Vec<(&[u8], &[u8])> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    assert!(requests_h2c_upgrade(fields.iter().copied()));
    let ws: [(&[u8], &[u8]); 2] = [(b"Upgrade", b"websocket"), (b"HTTP2-Settings", b"AAMAAABkAAQCAAAAAAIAAAAA")];
    assert!(!requests_h2c_upgrade(ws));
    assert!(!requests_h2c_upgrade([(&b"upgrade"[..], &b"foo, H2C"[..])]), "no HTTP2-Settings");
    assert!(requests_h2c_upgrade([(&b"upgrade"[..], &b"foo, H2C"[..]), (b"http2-settings", b"")]));
}

#[test]
fn frames_recognition() {
    // A server's first write: SETTINGS, WINDOW_UPDATE, SETTINGS ACK.
    let (_, segs, _, _) = all().into_iter().find(|f| f.0 == "go_grpc").unwrap();
    let server_first = segs.iter().find(|s| !s.to_server).unwrap();
    assert!(looks_like_frames(server_first.data, server_first.total_len));
    for not in
        [&b"GET / HTTP/1.1\r\n"[..], b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"*1\r\n$4\r\nPING\r\n", b""]
    {
        assert!(!looks_like_frames(not, not.len() as u64), "{not:?}");
    }
}

/// Every recording cut into one-byte chunks gives the same streams as whole.
#[test]
fn byte_at_a_time_equals_whole() {
    for (name, segs, _, _) in all() {
        for role in [Role::Server, Role::Client] {
            let (whole, _) = play(&segs, Play { role, ..Play::SERVER });
            let (bytes, _) = play(&segs, Play { role, piece: Some(1), ..Play::SERVER });
            let strip = |v: Vec<crate::protocol::http2::Http2Stream>| {
                v.into_iter()
                    .map(|mut s| {
                        // Pieces of a segment get timestamps segment + piece index.
                        for t in [&mut s.request_start_ns, &mut s.request_end_ns, &mut s.response_end_ns] {
                            *t -= *t % super::SEG_NS;
                        }
                        s.response_start_ns = s.response_start_ns.map(|t| t - t % super::SEG_NS);
                        s
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(whole), strip(bytes), "{name} {role:?}");
        }
    }
}

/// Recordings with bytes flipped, dropped or cut short: no panic, and
/// nothing unbounded (the fuzz target `http2_parser` goes further).
#[test]
fn corrupted_recordings_never_panic() {
    let mut rng = fastrand::Rng::with_seed(0x4832);
    let fixtures = all();
    for round in 0..3000 {
        let (_, segs, _, _) = &fixtures[round % fixtures.len()];
        let mut p = if round % 4 == 0 { Http2Parser::midway() } else { Http2Parser::new() };
        let mut out = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let mut data = seg.data.to_vec();
            if !data.is_empty() && rng.u8(..4) == 0 {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(..data.len());
                    data[at] = rng.u8(..);
                }
            }
            let keep = if rng.u8(..8) == 0 { rng.usize(..=data.len()) } else { data.len() };
            let total = if rng.bool() { seg.total_len } else { keep as u64 };
            let dir = super::direction(Role::Server, seg.to_server);
            let chunk =
                Chunk { ts_ns: i as u64 + 1, direction: dir, data: &data[..keep], total_len: total.max(keep as u64) };
            let _ = p.feed(&chunk, &mut out);
            if rng.u8(..32) == 0 {
                p.gap();
            }
        }
        p.close(segs.len() as u64 + 1, &mut out);
        assert!(out.len() <= 200, "{}", out.len());
    }
}
