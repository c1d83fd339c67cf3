//! Hand-made inputs for what recorded traffic rarely shows: failures,
//! truncation, odd status codes, limits, and inputs meant to break things.

use super::{run, Run};
use crate::protocol::http1::{
    Http1Parser, HttpVersion, MessageKind, ParseError, MAX_HEAD_BYTES, MAX_PIPELINED, MAX_TARGET_BYTES,
};
use crate::protocol::{Chunk, Direction, Role};

type Step<'a> = (Direction, u64, &'a [u8], u64);

/// A syscall by a traced server: it reads requests and writes responses.
fn read(ts: u64, data: &[u8]) -> Step<'_> {
    (Direction::Ingress, ts, data, data.len() as u64)
}

fn write(ts: u64, data: &[u8]) -> Step<'_> {
    (Direction::Egress, ts, data, data.len() as u64)
}

/// A write of `total` bytes of which only `data` was captured.
fn write_partial(ts: u64, data: &[u8], total: u64) -> Step<'_> {
    (Direction::Egress, ts, data, total)
}

fn only_error(run: &Run) -> &ParseError {
    assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
    &run.errors[0]
}

#[test]
fn garbage_fails_and_later_feeds_are_ignored() {
    let tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xaa\xbb";
    let mut parser = Http1Parser::new();
    let mut out = Vec::new();
    let chunk = |data: &'static [u8], ts| Chunk {
        ts_ns: ts,
        direction: Direction::Ingress,
        data,
        total_len: data.len() as u64,
    };
    let err = parser.feed(&chunk(tls_hello, 1), &mut out).unwrap_err();
    assert!(matches!(err, ParseError::MalformedHead { message: MessageKind::Request, .. }));
    assert!(parser.is_failed());
    assert!(!err.to_string().is_empty());

    parser.feed(&chunk(b"GET / HTTP/1.1\r\n\r\n", 2), &mut out).unwrap();
    parser.feed(&chunk(b"HTTP/1.1 200 OK\r\n\r\n", 3), &mut out).unwrap();
    parser.close(4, &mut out);
    assert!(out.is_empty());
    assert!(parser.is_failed());
}

#[test]
fn garbage_after_good_exchanges_keeps_what_completed() {
    let run = run(
        [
            read(1, b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
            write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 2x0 Nope\r\n\r\n"),
        ],
        Some(3),
    );
    assert!(matches!(
        only_error(&run),
        ParseError::MalformedHead { message: MessageKind::Response, reason: httparse::Error::Status }
    ));
    assert_eq!(run.out.len(), 1);
    assert_eq!(run.out[0].target, "/ok");
    assert_eq!(run.out[0].status, Some(200));
}

#[test]
fn http2_prior_knowledge_is_not_http1() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert!(!Http1Parser::looks_like_http(preface));
    let run = run([read(1, preface)], Some(2));
    assert!(matches!(only_error(&run), ParseError::MalformedHead { .. }));
}

#[test]
fn close_delimited_body_ends_with_its_last_chunk() {
    let run = run(
        [
            read(10, b"GET /old HTTP/1.0\r\nHost: legacy\r\n\r\n"),
            write(20, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
            write(30, &[b'x'; 100]),
            // Only 50 of 500 bytes captured: fine, nothing after it is framed.
            write_partial(40, &[b'y'; 50], 500),
        ],
        Some(90),
    );
    assert!(run.errors.is_empty());
    assert_eq!(run.before_close, 0);
    let x = &run.out[0];
    assert_eq!(x.version, HttpVersion::Http10);
    assert_eq!(x.version.as_str(), "1.0");
    assert_eq!(x.host.as_deref(), Some("legacy"));
    assert_eq!(x.status, Some(200));
    assert_eq!(x.response_body_size, 600);
    assert_eq!((x.request_start_ns, x.request_end_ns), (10, 10));
    assert_eq!((x.response_start_ns, x.response_end_ns), (Some(20), 40));
}

#[test]
fn interim_responses_are_skipped() {
    // A client role this time: requests go out, responses come in.
    let run = run(
        [
            write(1, b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
            read(2, b"HTTP/1.1 100 Continue\r\n\r\n"),
            write(3, b"data"),
            read(4, b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
            read(5, b"HTTP/1.1 204 No Content\r\n\r\n"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.out.len(), 1);
    let x = &run.out[0];
    assert_eq!(x.role, Role::Client);
    assert_eq!(x.method, "PUT");
    assert_eq!(x.status, Some(204));
    assert_eq!(x.request_body_size, 4);
    assert_eq!((x.request_start_ns, x.request_end_ns), (1, 3));
    assert_eq!((x.response_start_ns, x.response_end_ns), (Some(5), 5));
}

#[test]
fn responses_without_bodies_despite_their_headers() {
    let run = run(
        [
            read(1, b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\n"),
            write(
                2,
                b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n\
                  HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n\
                  HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let got: Vec<_> = run.out.iter().map(|x| (x.target.as_str(), x.status, x.response_body_size)).collect();
    assert_eq!(got, [("/a", Some(200), 0), ("/b", Some(204), 0), ("/c", Some(304), 0), ("/d", Some(200), 0)]);
}

#[test]
fn connection_close_response_completes_without_waiting_for_close() {
    let run = run(
        [
            read(1, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
            write(2, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"),
        ],
        Some(3),
    );
    assert_eq!(run.before_close, 1);
    assert_eq!(run.out.len(), 1);
    assert_eq!(run.out[0].response_end_ns, 2);
}

#[test]
fn sendfile_body_is_counted_from_total_len() {
    let run = run(
        [
            read(1, b"GET /big.iso HTTP/1.1\r\n\r\n"),
            write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n"),
            write_partial(3, b"", 1_000_000),
            write_partial(4, b"", 2_000_000),
            read(5, b"GET /next HTTP/1.1\r\n\r\n"),
            write(6, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let got: Vec<_> = run.out.iter().map(|x| (x.status, x.response_body_size, x.response_end_ns)).collect();
    assert_eq!(got, [(Some(200), 3_000_000, 4), (Some(404), 0, 6)]);
}

#[test]
fn uncaptured_bytes_past_the_body_fail() {
    let run = run(
        [
            read(1, b"GET / HTTP/1.1\r\n\r\n"),
            write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            // 10 body bytes then 10 more: those would be the next head.
            write_partial(3, b"", 20),
        ],
        None,
    );
    assert_eq!(only_error(&run), &ParseError::Truncated { message: MessageKind::Response, within: "head" });
    // The first response completed before the parser gave up.
    assert_eq!(run.out.len(), 1);
}

#[test]
fn uncaptured_bytes_inside_a_start_line_fail() {
    // A head cut after its start line is followed in degraded framing
    // (tests/degraded.rs); one cut inside it has nothing to go on.
    let request = run([(Direction::Ingress, 1, &b"GET /a HT"[..], 2000)], None);
    assert_eq!(only_error(&request), &ParseError::Truncated { message: MessageKind::Request, within: "partial head" });
    let response = run([read(1, b"GET /a HTTP/1.1\r\n\r\n"), write_partial(2, b"HTTP/1.1 20", 2000)], None);
    assert_eq!(
        only_error(&response),
        &ParseError::Truncated { message: MessageKind::Response, within: "partial head" }
    );
}

#[test]
fn uncaptured_chunked_payload_is_skipped_and_lost_framing_degrades() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let ok = run(
        [
            read(1, b"GET / HTTP/1.1\r\n\r\n"),
            write(2, head),
            // "1000\r\n" + 4096 bytes + "\r\n", capture cut after 10 payload bytes.
            write_partial(3, b"1000\r\n0123456789", 6 + 4096 + 2),
            write(4, b"0\r\n\r\n"),
        ],
        None,
    );
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    assert_eq!(ok.out[0].response_body_size, 4096);

    let cut = run(
        [
            read(1, b"GET / HTTP/1.1\r\n\r\n"),
            write(2, head),
            // Same, but the last-chunk line is also in the lost tail: the
            // response no longer knows its end, so it ends at close, at its
            // last chunk, with the payload counted while it was framed.
            write_partial(3, b"1000\r\n0123456789", 6 + 4096 + 2 + 5),
        ],
        Some(9),
    );
    assert!(cut.errors.is_empty(), "{:?}", cut.errors);
    assert_eq!(cut.before_close, 0);
    let x = &cut.out[0];
    assert_eq!((x.status, x.response_body_size, x.response_end_ns), (Some(200), 4096, 3));
}

#[test]
fn close_reports_requests_that_got_no_response() {
    let run = run(
        [
            read(1, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            read(3, b"GET /3 HTTP/1.1\r\n\r\n"),
        ],
        Some(50),
    );
    let got: Vec<_> =
        run.out.iter().map(|x| (x.target.as_str(), x.status, x.response_start_ns, x.response_end_ns)).collect();
    assert_eq!(got, [("/1", Some(200), Some(2), 2), ("/2", None, None, 50), ("/3", None, None, 50)]);
    assert_eq!(run.before_close, 1);
}

#[test]
fn close_cuts_a_length_delimited_response_short() {
    let run = run(
        [read(1, b"GET /f HTTP/1.1\r\n\r\n"), write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")],
        Some(9),
    );
    assert_eq!(run.before_close, 0);
    let x = &run.out[0];
    assert_eq!((x.status, x.response_body_size, x.response_end_ns), (Some(200), 10, 9));
}

#[test]
fn early_response_to_an_unfinished_upload() {
    let run = run(
        [
            read(1, b"POST /up HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"),
            read(2, &[0u8; 500]),
            write(3, b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        ],
        Some(4),
    );
    assert_eq!(run.before_close, 0);
    let x = &run.out[0];
    assert_eq!(x.status, Some(413));
    assert_eq!(x.request_body_size, 500);
    assert_eq!((x.request_end_ns, x.response_end_ns), (2, 3));
}

#[test]
fn upgrade_stops_parsing() {
    let run = run(
        [
            read(1, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            write(
                2,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
            ),
            read(3, b"\x81\x85\x00\x00\x00\x00hello"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert!(run.parser.is_switched());
    assert_eq!(run.out.len(), 1);
    assert_eq!(run.out[0].status, Some(101));
    assert_eq!(run.out[0].response_end_ns, 2);
}

#[test]
fn connect_tunnel_stops_parsing() {
    let run = run(
        [
            write(1, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
            read(2, b"HTTP/1.1 200 Connection Established\r\n\r\n"),
            write(3, b"\x16\x03\x01\x02\x00\x01"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.out[0].role, Role::Client);
    assert_eq!(run.out[0].target, "example.com:443");
    assert!(run.parser.is_switched());
}

#[test]
fn bad_content_lengths_fail() {
    for head in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ] {
        let run = run([read(1, b"GET / HTTP/1.1\r\n\r\n"), write(2, head)], None);
        assert_eq!(only_error(&run), &ParseError::InvalidContentLength { message: MessageKind::Response });
    }
    let run = run(
        [read(1, b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n12345GET / HTTP/1.1\r\n\r\n")],
        None,
    );
    assert!(run.errors.is_empty(), "repeated equal lengths are one length");
}

#[test]
fn too_many_unanswered_requests_fail() {
    let one = b"GET / HTTP/1.1\r\n\r\n";
    let many = one.repeat(MAX_PIPELINED + 1);
    let run = run([read(1, &many)], None);
    assert_eq!(only_error(&run), &ParseError::TooManyPipelined { limit: MAX_PIPELINED });
}

#[test]
fn oversized_head_in_one_chunk_fails_without_copying() {
    let mut big = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    big.resize(1 << 20, b'a');
    let run = run([read(1, &big)], None);
    assert_eq!(only_error(&run), &ParseError::HeadTooLarge { message: MessageKind::Request, limit: MAX_HEAD_BYTES });
}

#[test]
fn oversized_head_across_chunks_fails_at_the_limit() {
    let mut parser = Http1Parser::new();
    let mut out = Vec::new();
    let mut fed = 0usize;
    let filler = [b'a'; 1000];
    let mut pieces = vec![&b"HTTP/1.1 200 OK\r\nX-Filler: "[..]];
    pieces.extend(std::iter::repeat_n(&filler[..], 1000));
    let mut failed_at = None;
    for piece in pieces {
        fed += piece.len();
        let chunk = Chunk { ts_ns: 1, direction: Direction::Ingress, data: piece, total_len: piece.len() as u64 };
        if parser.feed(&chunk, &mut out).is_err() {
            failed_at = Some(fed);
            break;
        }
        assert!(parser.buffered_capacity() <= 2 * MAX_HEAD_BYTES);
    }
    let failed_at = failed_at.expect("never failed");
    assert!((MAX_HEAD_BYTES..MAX_HEAD_BYTES + 1000).contains(&failed_at));
    assert!(parser.is_failed());
    assert_eq!(parser.buffered_capacity(), 0, "failure frees the buffer");
}

#[test]
fn long_target_and_host_are_capped() {
    let mut head = b"GET /".to_vec();
    head.extend(std::iter::repeat_n(b'p', 5000));
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend(std::iter::repeat_n(b'h', 1000));
    head.extend_from_slice(b"\r\nCookie: secret=1\r\n\r\n");
    let run = run([read(1, &head), write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], None);
    let x = &run.out[0];
    assert_eq!(x.target.len(), MAX_TARGET_BYTES);
    assert!(x.target.starts_with("/ppp"));
    assert_eq!(x.host.as_ref().map(|h| h.len()), Some(crate::protocol::http1::MAX_HOST_BYTES));
}

#[test]
fn joining_mid_connection_at_a_response() {
    // The first thing seen is a response written by the process: it is a
    // server, and that response answers a request we never saw.
    let run = run(
        [
            write(1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            read(2, b"GET /seen HTTP/1.1\r\n\r\n"),
            write(3, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.parser.role(), Some(Role::Server));
    let got: Vec<_> = run.out.iter().map(|x| (x.target.as_str(), x.response_body_size)).collect();
    assert_eq!(got, [("/seen", 2)]);
}

#[test]
fn stray_line_breaks_between_messages_are_ignored() {
    let run = run(
        [
            read(1, b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
            write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            // Some old clients send CRLF after a body.
            read(3, b"\r\n"),
            read(4, b"GET /b HTTP/1.1\r\n"),
            read(5, b"\r\n"),
            write(6, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let x = &run.out[1];
    assert_eq!((x.target.as_str(), x.request_start_ns, x.request_end_ns), ("/b", 4, 5));
}

#[test]
fn empty_chunks_and_unknown_role_sendfile_are_ignored() {
    let run = run(
        [
            write(1, b""),
            write_partial(2, b"", 4096),
            read(3, b"GET / HTTP/1.1\r\n\r\n"),
            read(4, b""),
            write(5, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.out.len(), 1);
}

#[test]
fn total_len_smaller_than_data_is_treated_as_data_len() {
    let run = run(
        [
            (Direction::Ingress, 1, &b"GET / HTTP/1.1\r\n\r\n"[..], 3),
            write_partial(2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.out.len(), 1);
}

#[test]
fn feeds_after_close_are_ignored() {
    let mut parser = Http1Parser::new();
    let mut out = Vec::new();
    parser.close(1, &mut out);
    let chunk = Chunk { ts_ns: 2, direction: Direction::Ingress, data: b"GET / HTTP/1.1\r\n\r\n", total_len: 18 };
    parser.feed(&chunk, &mut out).unwrap();
    parser.close(3, &mut out);
    assert!(out.is_empty());
    assert!(!parser.is_failed());
}

/// Random bytes, mutated valid traffic, random truncation (small, and large
/// enough to lose whole heads and chunk framing) and lost events at random
/// splits: the parser may fail, but it must not panic, once failed it must
/// stay quiet, and what it reports must be in time order.
#[test]
fn never_panics_on_hostile_input() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: [&[u8]; 6] = [
        b"GET /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 100 Continue\r\n\r\n",
        b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcHEAD / HTTP/1.1\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        b"GET /a HTTP/1.1\r\nCookie: x\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nHTTP/1.1 101 S\r\n\r\n",
    ];
    for round in 0..6000 {
        let mut bytes = seeds[round % seeds.len()].to_vec();
        if round % 7 == 0 {
            bytes = (0..(next() % 200)).map(|_| next() as u8).collect();
        } else {
            for _ in 0..(next() % 4) {
                let len = bytes.len() as u64;
                let i = (next() % len) as usize;
                bytes[i] = next() as u8;
            }
        }
        let mut parser = Http1Parser::new();
        let mut out = Vec::new();
        let mut at = 0usize;
        let mut failed = false;
        while at < bytes.len() {
            let len = 1 + (next() % 16) as usize;
            let end = (at + len).min(bytes.len());
            let captured = end - (next() % 3 == 0) as usize * (next() as usize % (end - at + 1));
            let lost = if next() % 5 == 0 { next() % 5000 } else { 0 };
            let direction = if next() % 3 == 0 { Direction::Egress } else { Direction::Ingress };
            let chunk = Chunk {
                ts_ns: at as u64,
                direction,
                data: &bytes[at..captured.max(at)],
                total_len: (end - at) as u64 + lost,
            };
            let result = parser.feed(&chunk, &mut out);
            if failed {
                assert!(result.is_ok());
            }
            failed |= result.is_err();
            assert_eq!(failed, parser.is_failed());
            if next() % 23 == 0 {
                let before = out.len();
                let dropped = parser.gap(&mut out);
                assert!(dropped <= MAX_PIPELINED);
                assert_eq!(out.len(), before, "a gap reports nothing");
                assert_eq!(failed, parser.is_failed());
                assert!(failed || parser.is_switched() || parser.is_lost());
            }
            at = end;
        }
        parser.close(u64::MAX, &mut out);
        for x in &out {
            assert!(x.target.len() <= MAX_TARGET_BYTES);
            assert!(x.request_start_ns <= x.request_end_ns, "{x:?}");
            if let Some(start) = x.response_start_ns {
                assert!(start <= x.response_end_ns, "{x:?}");
            }
        }
    }
}
