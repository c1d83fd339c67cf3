//! Degraded framing (truncation that hides where a message ends) and `gap`
//! (lost events), as the kernel shows them: one chunk per syscall, of which
//! only the first `CAPTURE` bytes are captured.

use super::{request_dir, response_dir, run, Run};
use crate::protocol::http1::{Http1Parser, HttpExchange, HttpVersion, MessageKind, ParseError};
use crate::protocol::{Chunk, Direction, Role};

/// The probes' default `capture_size`.
const CAPTURE: usize = 1024;

const ROLES: [Role; 2] = [Role::Server, Role::Client];

type Step<'a> = (Direction, u64, &'a [u8], u64);

/// One syscall of `bytes` as the probes report it: the first `CAPTURE`
/// bytes, and the length of all of them.
fn syscall(direction: Direction, ts: u64, bytes: &[u8]) -> Step<'_> {
    (direction, ts, &bytes[..bytes.len().min(CAPTURE)], bytes.len() as u64)
}

/// A request whose head carries a 3000-byte Cookie (a session, a JWT): about
/// 3100 bytes read or written in one syscall. Host comes first, so it is
/// captured.
fn cookie_request(target: &str) -> Vec<u8> {
    let mut r =
        format!("GET {target} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: test/1.0\r\nCookie: session=").into_bytes();
    r.extend(std::iter::repeat_n(b'c', 3000));
    r.extend_from_slice(b"\r\nAccept: */*\r\n\r\n");
    r
}

fn ok_response(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn no_errors(run: &Run) {
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert!(!run.parser.is_failed());
}

/// Method, target, status, (request start, end), (response start, end).
type Summary<'a> = (&'a str, &'a str, Option<u16>, (u64, u64), (Option<u64>, u64));

fn summary(x: &HttpExchange) -> Summary<'_> {
    (
        x.method.as_str(),
        x.target.as_str(),
        x.status,
        (x.request_start_ns, x.request_end_ns),
        (x.response_start_ns, x.response_end_ns),
    )
}

#[test]
fn request_head_longer_than_the_capture() {
    let request = cookie_request("/api/items?id=7");
    assert!(request.len() > 3000 && request.len() < 3200);
    let response = ok_response("ok");
    for role in ROLES {
        let run = run([syscall(request_dir(role), 10, &request), syscall(response_dir(role), 20, &response)], Some(30));
        no_errors(&run);
        assert_eq!(run.before_close, 1, "{role:?}: the response ends it, not the close");
        let x = &run.out[0];
        assert_eq!(x.role, role);
        assert_eq!(summary(x), ("GET", "/api/items?id=7", Some(200), (10, 10), (Some(20), 20)));
        assert_eq!(x.version, HttpVersion::Http11);
        assert_eq!(x.host.as_deref(), Some("shop.example"));
        assert_eq!((x.request_body_size, x.response_body_size), (0, 2));
    }
}

#[test]
fn host_cut_by_the_capture_is_unknown() {
    let mut request = b"POST /login HTTP/1.0\r\nCookie: ".to_vec();
    request.extend(std::iter::repeat_n(b'j', CAPTURE));
    request.extend_from_slice(b"\r\nHost: auth.example\r\nContent-Length: 0\r\n\r\n");
    let run = run(
        [syscall(Direction::Ingress, 1, &request), syscall(Direction::Egress, 2, b"HTTP/1.0 204 No Content\r\n\r\n")],
        None,
    );
    no_errors(&run);
    let x = &run.out[0];
    assert_eq!(
        (x.method.as_str(), x.version, x.host.as_deref(), x.status),
        ("POST", HttpVersion::Http10, None, Some(204))
    );
}

#[test]
fn keep_alive_requests_all_longer_than_the_capture() {
    let targets = ["/one", "/two", "/three"];
    let requests: Vec<Vec<u8>> = targets.iter().map(|t| cookie_request(t)).collect();
    let responses: Vec<Vec<u8>> = targets.iter().map(|t| ok_response(t)).collect();
    for role in ROLES {
        let mut steps = Vec::new();
        for (i, (req, resp)) in requests.iter().zip(&responses).enumerate() {
            let ts = 100 * (i as u64 + 1);
            steps.push(syscall(request_dir(role), ts, req));
            steps.push(syscall(response_dir(role), ts + 50, resp));
        }
        let run = run(steps, Some(1000));
        no_errors(&run);
        assert_eq!(run.before_close, 3, "{role:?}");
        let got: Vec<_> = run.out.iter().map(summary).collect();
        assert_eq!(
            got,
            [
                ("GET", "/one", Some(200), (100, 100), (Some(150), 150)),
                ("GET", "/two", Some(200), (200, 200), (Some(250), 250)),
                ("GET", "/three", Some(200), (300, 300), (Some(350), 350)),
            ],
            "{role:?}"
        );
        assert!(run.out.iter().all(|x| x.role == role && x.host.as_deref() == Some("shop.example")));
    }
}

/// The rest of a long head arriving in later syscalls (TCP delivered it in
/// pieces) belongs to the same request.
#[test]
fn head_rest_in_later_syscalls_is_absorbed() {
    let request = cookie_request("/split");
    let (first, rest) = request.split_at(2048);
    let run = run(
        [
            syscall(Direction::Ingress, 1, first),
            syscall(Direction::Ingress, 2, rest),
            syscall(Direction::Egress, 3, &ok_response("x")),
        ],
        None,
    );
    no_errors(&run);
    assert_eq!(summary(&run.out[0]), ("GET", "/split", Some(200), (1, 2), (Some(3), 3)));
}

/// A chunked upload whose head and chunks come in one 3125-byte read: the
/// chunk-size lines past the first 1024 bytes are not captured.
fn chunked_upload() -> (Vec<u8>, u64) {
    let mut r = b"POST /upload HTTP/1.1\r\nHost: files.example\r\nTransfer-Encoding: chunked\r\nX-Pad: ".to_vec();
    let chunks = 5;
    let size = 0x200;
    let body_len = chunks * (5 + size + 2) + 5;
    let pad = 3125 - body_len - r.len() - 4;
    r.extend(std::iter::repeat_n(b'p', pad));
    r.extend_from_slice(b"\r\n\r\n");
    let head_len = r.len();
    for _ in 0..chunks {
        r.extend_from_slice(b"200\r\n");
        r.extend(std::iter::repeat_n(b'u', size));
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(r.len(), 3125);
    // The first chunk's size line is captured, the second's is not.
    assert!(head_len + 5 + size + 2 + 5 > CAPTURE && head_len + 5 < CAPTURE);
    (r, size as u64)
}

#[test]
fn chunked_upload_with_uncaptured_chunk_sizes() {
    let (upload, counted) = chunked_upload();
    let created = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    for role in ROLES {
        let (req, resp) = (request_dir(role), response_dir(role));
        let run = run(
            [
                syscall(req, 1, &upload),
                syscall(resp, 2, created),
                syscall(req, 3, b"GET /after HTTP/1.1\r\nHost: files.example\r\n\r\n"),
                syscall(resp, 4, &ok_response("fine")),
                syscall(req, 5, b"DELETE /upload HTTP/1.1\r\n\r\n"),
                syscall(resp, 6, b"HTTP/1.1 204 No Content\r\n\r\n"),
            ],
            Some(7),
        );
        no_errors(&run);
        assert_eq!(run.before_close, 3, "{role:?}");
        let got: Vec<_> = run.out.iter().map(summary).collect();
        assert_eq!(
            got,
            [
                ("POST", "/upload", Some(201), (1, 1), (Some(2), 2)),
                ("GET", "/after", Some(200), (3, 3), (Some(4), 4)),
                ("DELETE", "/upload", Some(204), (5, 5), (Some(6), 6)),
            ],
            "{role:?}"
        );
        // Only the payload seen while framing was known: a lower bound.
        assert_eq!(run.out[0].request_body_size, counted);
        assert_eq!(run.out[0].host.as_deref(), Some("files.example"));
        assert_eq!(run.out[1].response_body_size, 4);
    }
}

#[test]
fn response_head_cut_ends_at_its_last_chunk() {
    let mut head = b"HTTP/1.1 200 OK\r\nSet-Cookie: ".to_vec();
    head.extend(std::iter::repeat_n(b's', 2000));
    head.extend_from_slice(b"\r\nContent-Length: 10\r\n\r\nhello");
    for role in ROLES {
        let (req, resp) = (request_dir(role), response_dir(role));
        let run = run(
            [
                syscall(req, 1, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
                syscall(resp, 2, &head),
                // More of the same response: absorbed.
                syscall(resp, 3, b"world"),
                syscall(req, 4, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
                syscall(resp, 5, b"HTTP/1.1 304 Not Modified\r\n\r\n"),
            ],
            Some(6),
        );
        no_errors(&run);
        assert_eq!(run.before_close, 2, "{role:?}: the next request ends it");
        let got: Vec<_> = run.out.iter().map(summary).collect();
        assert_eq!(
            got,
            [("GET", "/a", Some(200), (1, 1), (Some(2), 3)), ("GET", "/b", Some(304), (4, 4), (Some(5), 5))],
            "{role:?}"
        );
        assert_eq!(run.out[0].response_body_size, 0, "nothing was framed");
    }
}

#[test]
fn unframed_response_ends_at_close_with_its_last_chunk() {
    let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'b', 2000));
    head.extend_from_slice(b"\r\nContent-Length: 1000000\r\n\r\n");
    let run = run(
        [
            syscall(Direction::Ingress, 1, b"GET /big HTTP/1.1\r\n\r\n"),
            syscall(Direction::Egress, 2, &head),
            // sendfile: nothing captured.
            (Direction::Egress, 3, &b""[..], 1_000_000),
        ],
        Some(9),
    );
    no_errors(&run);
    assert_eq!(run.before_close, 0);
    assert_eq!(summary(&run.out[0]), ("GET", "/big", Some(200), (1, 1), (Some(2), 3)));
}

/// `Expect: 100-continue`: an interim response does not end the request,
/// whose body comes after it.
#[test]
fn interim_response_does_not_end_an_unframed_request() {
    let mut head = b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 600\r\nAuthorization: Bearer ".to_vec();
    head.extend(std::iter::repeat_n(b't', 2000));
    head.extend_from_slice(b"\r\n\r\n");
    for role in ROLES {
        let (req, resp) = (request_dir(role), response_dir(role));
        let run = run(
            [
                syscall(req, 1, &head),
                syscall(resp, 2, b"HTTP/1.1 100 Continue\r\n\r\n"),
                syscall(req, 3, &[b'd'; 600]),
                syscall(resp, 4, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
            ],
            None,
        );
        no_errors(&run);
        assert_eq!(summary(&run.out[0]), ("PUT", "/f", Some(201), (1, 3), (Some(4), 4)), "{role:?}");
    }
}

#[test]
fn unframed_upgrade_still_switches() {
    let mut head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'w', 2000));
    head.extend_from_slice(b"\r\n\r\n\x81\x02hi");
    let run = run(
        [
            syscall(Direction::Ingress, 1, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            syscall(Direction::Egress, 2, &head),
        ],
        None,
    );
    no_errors(&run);
    assert!(run.parser.is_switched());
    assert_eq!(summary(&run.out[0]), ("GET", "/ws", Some(101), (1, 1), (Some(2), 2)));
}

#[test]
fn next_chunk_must_start_a_message() {
    // The server answers before reading the body; the client goes on sending
    // it: after the unframed request, that chunk starts no request.
    let mut head = b"POST /upload HTTP/1.1\r\nContent-Length: 5000\r\nCookie: ".to_vec();
    head.extend(std::iter::repeat_n(b'c', 2000));
    head.extend_from_slice(b"\r\n\r\n");
    let run = run(
        [
            syscall(Direction::Ingress, 1, &head),
            syscall(Direction::Egress, 2, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            syscall(Direction::Ingress, 3, &[b'{'; 5000]),
            syscall(Direction::Egress, 4, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        Some(5),
    );
    assert!(matches!(run.errors.as_slice(), [ParseError::Desynchronized { message: MessageKind::Request, .. }]));
    assert!(run.parser.is_failed());
    // What completed before is kept.
    assert_eq!(run.out.iter().map(summary).collect::<Vec<_>>(), [("POST", "/upload", Some(401), (1, 1), (Some(2), 2))]);

    // Line breaks between messages are allowed at the re-synchronisation point.
    let (a, empty) = (cookie_request("/a"), ok_response(""));
    let breaks = super::run(
        [
            syscall(Direction::Ingress, 1, &a),
            syscall(Direction::Egress, 2, &empty),
            syscall(Direction::Ingress, 3, b"\r\n"),
            syscall(Direction::Ingress, 4, b"\r\nGET /b HTTP/1.1\r\n\r\n"),
            syscall(Direction::Egress, 5, &empty),
        ],
        None,
    );
    no_errors(&breaks);
    assert_eq!(breaks.out.len(), 2);
}

#[test]
fn pipelining_with_lost_framing_fails() {
    let cut_second = {
        let mut r = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        r.extend(cookie_request("/2"));
        r
    };
    let pipelined = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    let mut cut_response = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    cut_response.extend(std::iter::repeat_n(b'x', 2000));
    cut_response.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    let mut chunked_second = b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked_second.extend_from_slice(b"100\r\n");
        chunked_second.extend(std::iter::repeat_n(b'z', 0x100));
        chunked_second.extend_from_slice(b"\r\n");
    }
    chunked_second.extend_from_slice(b"0\r\n\r\n");
    for role in ROLES {
        let (req, resp) = (request_dir(role), response_dir(role));
        // A second request's head is cut while the first awaits its response.
        let run1 = run([syscall(req, 1, &cut_second)], None);
        // A response head is cut while a second request awaits its own.
        let run2 = run([syscall(req, 1, pipelined), syscall(resp, 2, &cut_response)], None);
        // A second request's chunk framing is lost while the first awaits.
        let run3 = run([syscall(req, 1, &chunked_second)], None);
        for (run, message) in
            [(&run1, MessageKind::Request), (&run2, MessageKind::Response), (&run3, MessageKind::Request)]
        {
            assert!(
                matches!(run.errors.as_slice(), [ParseError::Truncated { message: m, .. }] if *m == message),
                "{role:?}: {:?}",
                run.errors
            );
            assert!(run.parser.is_failed());
            assert!(run.out.is_empty());
        }

        // Requests pipelined inside the uncaptured bytes show up as a
        // response that answers nothing seen.
        let mut hiding = cookie_request("/seen");
        hiding.extend_from_slice(b"GET /hidden HTTP/1.1\r\n\r\n");
        let run4 = run(
            [
                syscall(req, 1, &hiding),
                syscall(resp, 2, &ok_response("first")),
                syscall(resp, 3, &ok_response("second")),
                syscall(req, 4, b"GET /later HTTP/1.1\r\n\r\n"),
                syscall(resp, 5, &ok_response("third")),
            ],
            Some(6),
        );
        assert!(
            matches!(run4.errors.as_slice(), [ParseError::Desynchronized { message: MessageKind::Response, .. }]),
            "{role:?}: {:?}",
            run4.errors
        );
        assert_eq!(
            run4.out.iter().map(summary).collect::<Vec<_>>(),
            [("GET", "/seen", Some(200), (1, 1), (Some(2), 2))]
        );
    }
}

#[test]
fn both_directions_unframed_at_once_fails() {
    // An early response with a cut head, then the upload's chunk framing is
    // lost too: neither direction could end the other.
    let mut early = b"HTTP/1.1 413 Content Too Large\r\nX-Pad: ".to_vec();
    early.extend(std::iter::repeat_n(b'e', 2000));
    early.extend_from_slice(b"\r\n\r\n");
    let mut chunks = Vec::new();
    for _ in 0..4 {
        chunks.extend_from_slice(b"200\r\n");
        chunks.extend(std::iter::repeat_n(b'z', 0x200));
        chunks.extend_from_slice(b"\r\n");
    }
    let run = run(
        [
            syscall(Direction::Ingress, 1, b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            syscall(Direction::Egress, 2, &early),
            syscall(Direction::Ingress, 3, &chunks),
        ],
        None,
    );
    assert!(matches!(
        run.errors.as_slice(),
        [ParseError::Truncated { message: MessageKind::Request, within: "chunk framing" }]
    ));
}

fn feed(step: Step<'_>) -> Event<'_> {
    Event::Feed(step)
}

/// Drives a parser through feeds and gaps.
enum Event<'a> {
    Feed(Step<'a>),
    Gap,
}

struct GapRun {
    out: Vec<HttpExchange>,
    dropped: Vec<usize>,
    errors: Vec<ParseError>,
    parser: Http1Parser,
}

fn run_events(events: Vec<Event<'_>>, close_ts: Option<u64>) -> GapRun {
    let mut parser = Http1Parser::new();
    let (mut out, mut dropped, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for event in events {
        match event {
            Event::Feed((direction, ts_ns, data, total_len)) => {
                if let Err(e) = parser.feed(&Chunk { ts_ns, direction, data, total_len }, &mut out) {
                    errors.push(e);
                }
            }
            Event::Gap => dropped.push(parser.gap(&mut out)),
        }
    }
    if let Some(ts) = close_ts {
        parser.close(ts, &mut out);
    }
    GapRun { out, dropped, errors, parser }
}

#[test]
fn gap_mid_response_then_a_fresh_exchange() {
    for role in ROLES {
        let (req, resp) = (request_dir(role), response_dir(role));
        let run = run_events(
            vec![
                feed(syscall(req, 1, b"GET /old HTTP/1.1\r\n\r\n")),
                feed(syscall(resp, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")),
                Event::Gap,
                // The rest of the old response, and a response to a request
                // lost in the gap: ignored until a request starts.
                feed(syscall(resp, 3, &[b'x'; 90])),
                feed(syscall(resp, 4, &ok_response("lost"))),
                feed(syscall(req, 5, b"name=value")),
                feed(syscall(req, 6, b"GET /new HTTP/1.1\r\n\r\n")),
                feed(syscall(resp, 7, &ok_response("ok"))),
            ],
            Some(8),
        );
        assert!(run.errors.is_empty(), "{role:?}: {:?}", run.errors);
        assert_eq!(run.dropped, [1]);
        assert_eq!(run.out.iter().map(summary).collect::<Vec<_>>(), [("GET", "/new", Some(200), (6, 6), (Some(7), 7))]);
        assert_eq!(run.out[0].response_body_size, 2);
        assert!(!run.parser.is_failed() && !run.parser.is_lost());
    }
}

#[test]
fn gap_drops_everything_in_flight_and_waits_for_a_request() {
    let run = run_events(
        vec![
            feed(syscall(Direction::Ingress, 1, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\n")),
            Event::Gap,
            Event::Gap,
            // Body bytes after the gap: not a failure, just ignored.
            feed(syscall(Direction::Ingress, 2, b"\x00\x01garbage")),
            feed(syscall(Direction::Ingress, 3, b"\r\nPUT /4 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")),
            // Leftover response bytes before the first status line are ignored too.
            feed(syscall(Direction::Egress, 4, b"tail of an old body")),
            feed(syscall(Direction::Egress, 5, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")),
        ],
        None,
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.dropped, [2, 0], "the partial head of /3 was no request yet");
    assert_eq!(run.out.iter().map(summary).collect::<Vec<_>>(), [("PUT", "/4", Some(201), (3, 3), (Some(5), 5))]);
    assert_eq!(run.out[0].request_body_size, 2);
}

#[test]
fn gap_before_the_role_is_known_resumes_at_either_start() {
    let run = run_events(
        vec![
            Event::Gap,
            feed(syscall(Direction::Egress, 1, b"not http")),
            // A status line written: the process is a server that joined late.
            feed(syscall(Direction::Egress, 2, &ok_response("orphan"))),
            feed(syscall(Direction::Ingress, 3, b"GET /x HTTP/1.1\r\n\r\n")),
            feed(syscall(Direction::Egress, 4, &ok_response("x"))),
        ],
        Some(5),
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.parser.role(), Some(Role::Server));
    assert_eq!(run.out.iter().map(summary).collect::<Vec<_>>(), [("GET", "/x", Some(200), (3, 3), (Some(4), 4))]);
}

#[test]
fn gap_ends_degraded_framing_too_and_does_not_revive_a_failed_parser() {
    let (cut, next) = (cookie_request("/cut"), cookie_request("/next"));
    let (for_cut, for_next) = (ok_response("for /cut"), ok_response("for /next"));
    let run = run_events(
        vec![
            feed(syscall(Direction::Ingress, 1, &cut)),
            Event::Gap,
            feed(syscall(Direction::Egress, 2, &for_cut)),
            feed(syscall(Direction::Ingress, 3, &next)),
            feed(syscall(Direction::Egress, 4, &for_next)),
        ],
        Some(5),
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.dropped, [1]);
    assert_eq!(run.out.iter().map(summary).collect::<Vec<_>>(), [("GET", "/next", Some(200), (3, 3), (Some(4), 4))]);

    let failed = run_events(
        vec![
            feed(syscall(Direction::Ingress, 1, b"\x16\x03\x01garbage")),
            Event::Gap,
            feed(syscall(Direction::Ingress, 2, b"GET / HTTP/1.1\r\n\r\n")),
        ],
        Some(3),
    );
    assert_eq!(failed.dropped, [0]);
    assert_eq!(failed.errors.len(), 1);
    assert!(failed.parser.is_failed() && !failed.parser.is_lost());
    assert!(failed.out.is_empty());
}
