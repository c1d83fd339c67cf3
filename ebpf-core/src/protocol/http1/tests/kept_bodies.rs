//! Bodies kept for the exchanges a `BodyPolicy` selects: de-chunked, bounded,
//! with their content headers, and none for the rest.

use std::sync::Arc;

use super::super::{BodyPolicy, Http1Parser, HttpExchange};
use crate::protocol::{Chunk, Direction};

#[derive(Debug)]
struct KeepPosts(usize);

impl BodyPolicy for KeepPosts {
    fn keep_limit(&self, method: &str, target: &str, _host: Option<&str>) -> usize {
        if method == "POST" && target.starts_with("/v1/") {
            self.0
        } else {
            0
        }
    }
}

fn client_run(limit: usize, steps: &[(Direction, u64, &[u8], u64)]) -> Vec<HttpExchange> {
    let mut parser = Http1Parser::with_policy(Some(Arc::new(KeepPosts(limit))));
    let mut out = Vec::new();
    for &(direction, ts_ns, data, total_len) in steps {
        parser.feed(&Chunk { ts_ns, direction, data, total_len }, &mut out).unwrap();
    }
    out
}

const REQ: &[u8] =
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: api\r\nContent-Length: 16\r\n\r\n{\"model\":\"m-1\"}\n";

#[test]
fn chunked_sse_response_is_kept_without_framing_with_first_body_time() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let e1 = b"e\r\ndata: {\"a\":1}\n\r\n";
    let e2 = b"e\r\ndata: {\"b\":2}\n\r\n0\r\n\r\n";
    let out = client_run(
        1 << 20,
        &[
            (Direction::Egress, 10, REQ, REQ.len() as u64),
            (Direction::Ingress, 20, head, head.len() as u64),
            (Direction::Ingress, 30, e1, e1.len() as u64),
            (Direction::Ingress, 40, e2, e2.len() as u64),
        ],
    );
    assert_eq!(out.len(), 1);
    let b = out[0].bodies.as_deref().expect("kept");
    assert_eq!(b.request.head, &REQ[REQ.len() - 16..]);
    assert!(b.request.complete && b.response.complete);
    assert_eq!(b.response.head, b"data: {\"a\":1}\ndata: {\"b\":2}\n");
    assert_eq!(b.response_content_type.as_deref(), Some("text/event-stream"));
    assert_eq!(b.response_body_start_ns, Some(30));
}

#[test]
fn other_requests_keep_nothing() {
    let req = b"GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    let out = client_run(
        1 << 20,
        &[(Direction::Egress, 1, req, req.len() as u64), (Direction::Ingress, 2, resp, resp.len() as u64)],
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].bodies.is_none());
}

#[test]
fn uncaptured_bytes_become_a_hole_and_the_limit_keeps_head_and_tail() {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 100\r\n\r\n";
    let mut first = head.to_vec();
    first.extend_from_slice(b"0123456789");
    // 10 body bytes captured, 60 moved but not captured, then the last 30.
    let last = [b'z'; 30];
    let out = client_run(
        16,
        &[
            (Direction::Egress, 1, REQ, REQ.len() as u64),
            (Direction::Ingress, 2, &first, first.len() as u64 + 60),
            (Direction::Ingress, 3, &last, 30),
        ],
    );
    let b = out[0].bodies.as_deref().expect("kept");
    assert_eq!(b.response.head, b"01234567");
    assert!(b.response.tail.iter().all(|&c| c == b'z') && !b.response.tail.is_empty());
    assert_eq!(b.response.skipped as usize + b.response.kept_len(), 100);
    assert_eq!(b.response_content_encoding.as_deref(), Some("gzip"));
    assert!(b.response.complete);
}

#[test]
fn a_response_cut_by_close_is_incomplete() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"partial\":";
    let mut parser = Http1Parser::with_policy(Some(Arc::new(KeepPosts(1024))));
    let mut out = Vec::new();
    for (direction, ts_ns, data) in [(Direction::Egress, 1, REQ), (Direction::Ingress, 2, &head[..])] {
        parser.feed(&Chunk { ts_ns, direction, data, total_len: data.len() as u64 }, &mut out).unwrap();
    }
    parser.close(5, &mut out);
    let b = out[0].bodies.as_deref().expect("kept");
    assert_eq!(b.response.head, b"{\"partial\":");
    assert!(!b.response.complete);
}
