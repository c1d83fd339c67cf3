//! Hand-built frame sequences for what the recordings do not show: resets
//! by the client, GOAWAY, padding, CONTINUATION, interim responses, push,
//! lost framing and lost events.

use crate::protocol::http2::{Http2Error, Http2Parser, Http2Stream, StreamEnd, MAX_OPEN_STREAMS, PREFACE};
use crate::protocol::{Chunk, Direction, Role};

pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH: u8 = 5;
const GOAWAY: u8 = 7;
const CONT: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const PADDED: u8 = 8;
const PRIORITY: u8 = 0x20;

/// HPACK literal without indexing, static name index (4-bit prefix).
fn lit(name_index: u8, value: &str) -> Vec<u8> {
    let mut b = vec![name_index, value.len() as u8];
    b.extend_from_slice(value.as_bytes());
    b
}

/// HPACK literal with incremental indexing, static name index (6-bit prefix).
fn lit_indexed(name_index: u8, value: &str) -> Vec<u8> {
    let mut b = vec![0x40 | name_index, value.len() as u8];
    b.extend_from_slice(value.as_bytes());
    b
}

/// A GET of `path` (:method GET, :scheme http, :path, :authority).
fn get(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86];
    b.extend(lit(4, path));
    b.extend(lit(1, "example.test"));
    b
}

fn status(code: u16) -> Vec<u8> {
    match code {
        200 => vec![0x88],
        _ => lit(8, &code.to_string()),
    }
}

/// A connection as the server sees it: feeds chunks, collects streams.
struct Conn {
    p: Http2Parser,
    out: Vec<Http2Stream>,
    ts: u64,
}

impl Conn {
    fn new() -> Self {
        let mut c = Conn { p: Http2Parser::new(), out: Vec::new(), ts: 0 };
        let mut first = PREFACE.to_vec();
        first.extend(frame(SETTINGS, 0, 0, &[]));
        c.client(&first);
        c.server(&frame(SETTINGS, 0, 0, &[0, 5, 0, 0, 0x40, 0]));
        c
    }

    fn feed(&mut self, direction: Direction, data: &[u8], total_len: u64) -> Result<(), Http2Error> {
        self.ts += 1;
        self.p.feed(&Chunk { ts_ns: self.ts, direction, data, total_len }, &mut self.out)
    }

    fn client(&mut self, data: &[u8]) {
        self.feed(Direction::Ingress, data, data.len() as u64).unwrap();
    }

    fn server(&mut self, data: &[u8]) {
        self.feed(Direction::Egress, data, data.len() as u64).unwrap();
    }

    fn take(&mut self) -> Vec<Http2Stream> {
        std::mem::take(&mut self.out)
    }
}

#[test]
fn client_cancel_ends_the_stream_with_its_code() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/slow")));
    c.server(&frame(HEADERS, END_HEADERS, 1, &status(200)));
    c.server(&frame(DATA, 0, 1, b"partial"));
    c.client(&frame(RST, 0, 1, &8u32.to_be_bytes()));
    let s = c.take();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].end, StreamEnd::Reset { code: Some(8), by_client: true });
    assert_eq!(s[0].end.error_type(), Some("CANCEL"));
    assert_eq!((s[0].status, s[0].response_body_size, s[0].role), (Some(200), 7, Role::Server));
    assert_eq!(s[0].response_end_ns, c.ts);
}

#[test]
fn server_reset_with_no_error_after_a_full_response_is_complete() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS, 1, &get("/upload")));
    c.client(&frame(DATA, 0, 1, b"some of the body"));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(413)));
    assert!(c.take().is_empty(), "the request has not ended");
    c.server(&frame(RST, 0, 1, &0u32.to_be_bytes()));
    let s = c.take();
    assert_eq!((s[0].status, s[0].end, s[0].request_body_size), (Some(413), StreamEnd::Complete, 16));
}

#[test]
fn goaway_ends_the_streams_the_server_will_not_process() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/one")));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &get("/three")));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &get("/five")));
    let mut goaway = 1u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    goaway.extend_from_slice(b"debug data is ignored");
    c.server(&frame(GOAWAY, 0, 0, &goaway));
    let s = c.take();
    assert_eq!(
        s.iter().map(|s| (s.stream_id, s.end)).collect::<Vec<_>>(),
        [(3, StreamEnd::GoAway { code: 0 }), (5, StreamEnd::GoAway { code: 0 })]
    );
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200)));
    assert_eq!(c.take()[0].end, StreamEnd::Complete);
}

#[test]
fn padding_priority_and_continuation() {
    let mut c = Conn::new();
    let block = get("/padded/path?secret=1");
    let (first, rest) = block.split_at(5);
    // HEADERS: pad length 3, priority (5 bytes), fragment, padding.
    let mut p = vec![3];
    p.extend_from_slice(&[0, 0, 0, 0, 16]);
    p.extend_from_slice(first);
    p.extend_from_slice(&[0, 0, 0]);
    c.client(&frame(HEADERS, PADDED | PRIORITY, 1, &p));
    let (mid, last) = rest.split_at(4);
    c.client(&frame(CONT, 0, 1, mid));
    c.client(&frame(CONT, END_HEADERS, 1, last));
    // DATA: pad length 4, 5 data bytes, padding.
    c.client(&frame(DATA, PADDED | END_STREAM, 1, &[4, b'h', b'e', b'l', b'l', b'o', 0, 0, 0, 0]));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(204)));
    let s = c.take();
    assert_eq!(s[0].path.as_deref(), Some("/padded/path"), "the query is never kept");
    assert_eq!((s[0].authority.as_deref(), s[0].request_body_size), (Some("example.test"), 5));
    assert!(s[0].headers_complete);
}

#[test]
fn interim_responses_are_skipped() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS, 1, &get("/expect")));
    c.server(&frame(HEADERS, END_HEADERS, 1, &status(100)));
    c.client(&frame(DATA, END_STREAM, 1, b"body"));
    c.server(&frame(HEADERS, END_HEADERS, 1, &status(200)));
    let final_start = c.ts;
    c.server(&frame(DATA, END_STREAM, 1, b"ok"));
    let s = c.take();
    assert_eq!((s[0].status, s[0].response_start_ns, s[0].response_body_size), (Some(200), Some(final_start), 2));
}

#[test]
fn close_ends_what_is_in_flight() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/a")));
    c.client(&frame(HEADERS, END_HEADERS, 3, &get("/b")));
    c.server(&frame(HEADERS, END_HEADERS, 1, &status(200)));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &status(200)));
    c.p.close(100, &mut c.out);
    let s = c.take();
    assert_eq!(
        s.iter().map(|s| (s.stream_id, s.end, s.response_end_ns)).collect::<Vec<_>>(),
        [(1, StreamEnd::ConnectionClosed, 100), (3, StreamEnd::Complete, c.ts)]
    );
    assert_eq!(s[0].end.error_type(), Some("http.response.incomplete"));
    assert_eq!(s[1].request_end_ns, 100, "the request never ended");
}

#[test]
fn push_promise_blocks_keep_the_table_in_step() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/page")));
    // The server's promise indexes a :path; its later response refers to
    // the entry after it (index 63: the one before, content-type).
    let mut first = lit_indexed(31, "text/html");
    first.extend(status(200));
    c.server(&frame(HEADERS, END_HEADERS, 1, &first));
    let mut promise = 2u32.to_be_bytes().to_vec();
    promise.extend([0x82, 0x86]);
    promise.extend(lit_indexed(4, "/style.css"));
    c.server(&frame(PUSH, END_HEADERS, 1, &promise));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 2, &[0x88, 0xbf]));
    c.server(&frame(DATA, END_STREAM, 1, b"<html>"));
    let s = c.take();
    assert_eq!(s.len(), 1, "pushed streams are not reported: {s:?}");
    assert_eq!((s[0].stream_id, s[0].status, s[0].headers_complete), (1, Some(200), true));
    assert_eq!(c.p.take_stats(), Default::default());
}

#[test]
fn continuation_out_of_place_loses_the_table() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, 0, 1, &get("/a")[..3]));
    c.client(&frame(DATA, 0, 1, b"x"));
    assert_eq!(c.p.take_stats().hpack_errors, 1);
    c.client(&frame(CONT, END_HEADERS, 7, &[0x82]));
    assert_eq!(c.p.take_stats().hpack_errors, 1);
}

#[test]
fn a_lost_frame_header_drops_streams_until_an_aligned_chunk() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/before")));
    // The server's response: HEADERS captured, then a DATA frame whose end
    // and the next frame header are past the capture.
    let mut write = frame(HEADERS, END_HEADERS, 1, &status(200));
    write.extend(frame(DATA, 0, 1, &[b'x'; 2000]));
    write.extend(frame(DATA, END_STREAM, 1, b"tail"));
    c.feed(Direction::Egress, &write[..1024], write.len() as u64).unwrap();
    let stats = c.p.take_stats();
    assert_eq!((stats.framing_lost, stats.streams_lost), (1, 1));
    assert!(c.take().is_empty());
    // A request while the server's framing is lost, then a server chunk
    // that starts inside a frame (skipped: it may have held the answer to
    // stream 3), then whole frames again.
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &get("/during")));
    c.server(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &status(200)));
    assert!(c.take().is_empty());
    let stats = c.p.take_stats();
    assert_eq!((stats.chunks_skipped, stats.resyncs, stats.streams_lost), (1, 1, 1));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &get("/after")));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &status(200)));
    let s = c.take();
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].stream_id, s[0].path.as_deref(), s[0].status), (5, Some("/after"), Some(200)));
}

#[test]
fn lost_events_drop_streams_in_flight() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/a")));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &get("/b")));
    assert_eq!(c.p.gap(), 2);
    // The response to stream 1 comes, but stream 1 is gone.
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200)));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &get("/c")));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &status(200)));
    let s = c.take();
    assert_eq!(s.iter().map(|s| s.stream_id).collect::<Vec<_>>(), [5]);
}

#[test]
fn streams_never_seen_while_framing_was_lost_are_counted_by_their_ids() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/a")));
    assert_eq!(c.p.gap(), 1);
    // Streams 3 and 5 went by unseen; 7 is followed again.
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 7, &get("/d")));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 7, &status(200)));
    // The response to 1 (dropped, counted) and to 9, whose request was not
    // seen (lost now).
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200)));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 9, &status(200)));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 11, &get("/f")));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 11, &status(200)));
    let s = c.take();
    assert_eq!(s.iter().map(|s| s.stream_id).collect::<Vec<_>>(), [7, 11]);
    // 1 dropped by the gap, 3 and 5 skipped, 9 answered unseen: with the
    // two spans, all six streams.
    assert_eq!(c.p.take_stats().streams_lost, 4);
}

#[test]
fn a_stream_open_while_responses_were_lost_is_lost_at_close_not_missing() {
    let mut c = Conn::new();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/a")));
    // The server's next write is cut before its frame header: its framing
    // is lost, and with it whatever answered stream 3.
    let answer = frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200));
    c.feed(Direction::Egress, &[], answer.len() as u64).unwrap();
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &get("/b")));
    c.feed(Direction::Egress, &answer[..3], answer.len() as u64 + 20).unwrap();
    let mut out = Vec::new();
    c.p.close(99, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(c.p.take_stats().streams_lost, 2);
}

#[test]
fn dynamic_table_references_after_a_loss_are_unknown() {
    let mut c = Conn::new();
    let mut first = get("/x");
    first.extend(lit_indexed(4, "/indexed"));
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &first));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200)));
    assert_eq!(c.take().len(), 1);
    c.p.gap();
    // :method GET, then :path from the dynamic table (index 62).
    c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &[0x82, 0xbe]));
    c.server(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &status(200)));
    let s = c.take();
    assert_eq!((s[0].method.as_deref(), s[0].path.as_deref(), s[0].headers_complete), (Some("GET"), None, false));
}

#[test]
fn not_http2_fails_for_good() {
    let mut p = Http2Parser::new();
    let chunk = Chunk { ts_ns: 1, direction: Direction::Ingress, data: b"GET / HTTP/1.1\r\n", total_len: 16 };
    assert_eq!(p.feed(&chunk, &mut Vec::new()), Err(Http2Error::BadPreface));
    assert!(p.is_failed());
    let again = Chunk { data: PREFACE, total_len: 24, ..chunk };
    assert_eq!(p.feed(&again, &mut Vec::new()), Ok(()));
}

#[test]
fn server_settings_may_come_first_and_role_follows_the_preface() {
    let mut p = Http2Parser::new();
    let mut out = Vec::new();
    let settings = frame(SETTINGS, 0, 0, &[]);
    p.feed(&Chunk { ts_ns: 1, direction: Direction::Ingress, data: &settings, total_len: 9 }, &mut out).unwrap();
    assert_eq!(p.role(), Some(Role::Client));
    p.feed(&Chunk { ts_ns: 2, direction: Direction::Egress, data: PREFACE, total_len: 24 }, &mut out).unwrap();
    let req = frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/"));
    p.feed(&Chunk { ts_ns: 3, direction: Direction::Egress, data: &req, total_len: req.len() as u64 }, &mut out)
        .unwrap();
    let resp = frame(HEADERS, END_HEADERS | END_STREAM, 1, &status(200));
    p.feed(&Chunk { ts_ns: 4, direction: Direction::Ingress, data: &resp, total_len: resp.len() as u64 }, &mut out)
        .unwrap();
    assert_eq!((out.len(), out[0].role), (1, Role::Client));
}

#[test]
fn streams_in_flight_are_bounded() {
    let mut c = Conn::new();
    for i in 0..MAX_OPEN_STREAMS as u32 + 10 {
        c.client(&frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, &[0x82, 0x86, 0x84]));
    }
    assert_eq!(c.p.open_streams(), MAX_OPEN_STREAMS);
    assert_eq!(c.p.take_stats().streams_lost, 10);
}
