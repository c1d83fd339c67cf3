//! A response body as a sequence of JSON objects: SSE `data:` events, NDJSON
//! lines, the elements of a top-level JSON array (Gemini's
//! `streamGenerateContent` without `alt=sse`), or one JSON document.
//!
//! Cut bodies: a stream's kept head is read from its start and its kept
//! tail from its first event boundary (it starts mid-event); an event cut
//! at either end fails to parse and is skipped. A single document that does
//! not parse is read with `scan`: its top-level keys wanted by the field
//! lists, from the head forward and the tail backward, make one object.

use super::encoding::Body;
use super::scan::{self, Member};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    Ndjson,
    Json,
}

/// What framing found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framed {
    /// Objects handed over.
    pub objects: usize,
    /// The body was a stream of objects (the request asked for one, or the
    /// endpoint always streams).
    pub streamed: bool,
    /// The objects were pieced together from a body that did not parse.
    pub scanned: bool,
}

const NDJSON_TYPES: [&str; 4] =
    ["application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"];

/// The framing of a body, from its Content-Type and its first bytes; the
/// bytes win when they contradict the type (a JSON error body sent as
/// `text/event-stream`), and tell NDJSON from JSON when there is no type.
pub fn framing_of(content_type: Option<&str>, head: &[u8]) -> Framing {
    let mime = content_type.and_then(|c| c.split(';').next()).map(str::trim).unwrap_or("");
    let is_ndjson_type = NDJSON_TYPES.iter().any(|t| mime.eq_ignore_ascii_case(t));
    let start = &head[head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len())..];
    match start.first() {
        Some(b'{' | b'[') if is_ndjson_type => Framing::Ndjson,
        Some(b'{') if mime.is_empty() && looks_like_ndjson(start) => Framing::Ndjson,
        Some(b'{' | b'[') => Framing::Json,
        _ if mime.eq_ignore_ascii_case("text/event-stream") || starts_like_sse(start) => Framing::Sse,
        _ if is_ndjson_type => Framing::Ndjson,
        _ => Framing::Json,
    }
}

fn starts_like_sse(start: &[u8]) -> bool {
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"].iter().any(|field| start.starts_with(field))
}

/// A first line that is a whole object with more after it.
fn looks_like_ndjson(start: &[u8]) -> bool {
    let Some(newline) = start.iter().position(|&b| b == b'\n') else { return false };
    let rest_has_more = start[newline + 1..].iter().any(|b| !b.is_ascii_whitespace());
    rest_has_more && matches!(serde_json::from_slice::<Value>(&start[..newline]), Ok(Value::Object(_)))
}

/// Hands every object of `body` to `each`. `wanted` says which top-level
/// keys a scan of an unparsable document should parse.
pub fn objects(
    body: &Body<'_>,
    framing: Framing,
    wanted: &dyn Fn(&str) -> bool,
    each: &mut dyn FnMut(Value),
) -> Framed {
    let split = body.skipped > 0;
    match framing {
        Framing::Sse | Framing::Ndjson => {
            let mut count = lines(&body.head, framing, false, each);
            if split {
                count += lines(&body.tail, framing, true, each);
            }
            Framed { objects: count, streamed: true, scanned: false }
        }
        Framing::Json if !split && body.complete => match serde_json::from_slice::<Value>(&body.head) {
            Ok(object @ Value::Object(_)) => {
                each(object);
                Framed { objects: 1, streamed: false, scanned: false }
            }
            Ok(Value::Array(items)) => {
                let mut objects = 0;
                for item in items.into_iter().filter(Value::is_object) {
                    each(item);
                    objects += 1;
                }
                Framed { objects, streamed: true, scanned: false }
            }
            Ok(_) => Framed::default(),
            Err(_) => scanned(&[(&body.head, false)], wanted, each),
        },
        Framing::Json if split && body.complete => scanned(&[(&body.head, false), (&body.tail, true)], wanted, each),
        // Cut at its end: the tail does not end where the document does, so
        // only the head can be read.
        Framing::Json => scanned(&[(&body.head, false)], wanted, each),
    }
}

/// SSE events or NDJSON lines of `buf`; `mid_event`: `buf` may start inside
/// one, so reading starts after the first boundary.
fn lines(buf: &[u8], framing: Framing, mid_event: bool, each: &mut dyn FnMut(Value)) -> usize {
    let start = match (mid_event, framing) {
        (false, _) => 0,
        (true, Framing::Sse) => match event_boundary(buf) {
            Some(at) => at,
            None => return 0,
        },
        (true, _) => match buf.iter().position(|&b| b == b'\n') {
            Some(at) => at + 1,
            None => return 0,
        },
    };
    let mut count = 0;
    let mut dispatch = |data: &[u8]| {
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return;
        }
        if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(data) {
            each(value);
            count += 1;
        }
    };
    if framing == Framing::Ndjson {
        buf[start..].split(|&b| b == b'\n').for_each(&mut dispatch);
        return count;
    }
    // An event's data lines joined by '\n', dispatched at the blank line ending it.
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    for line in buf[start..].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if has_data {
                dispatch(&data);
            }
            data.clear();
            has_data = false;
        } else if let Some(value) = line.strip_prefix(b"data:") {
            if has_data {
                data.push(b'\n');
            }
            data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
            has_data = true;
        }
    }
    if has_data {
        dispatch(&data);
    }
    count
}

/// Just after the first blank line ("\n\n" or "\n\r\n") of `buf`.
fn event_boundary(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(offset) = buf.get(at..)?.iter().position(|&b| b == b'\n') {
        let next = at + offset + 1;
        match buf.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => at = next,
        }
    }
    None
}

/// Objects pieced together from pieces of one document: `(piece, ends_it)`
/// where `ends_it` means the piece ends where the document does (a tail,
/// scanned backward) rather than starts where it does (a head).
fn scanned(pieces: &[(&[u8], bool)], wanted: &dyn Fn(&str) -> bool, each: &mut dyn FnMut(Value)) -> Framed {
    let mut sparse = Map::new();
    let mut elements = 0;
    for &(piece, ends_it) in pieces {
        let members = if ends_it { scan::backward(piece) } else { scan::forward(piece) };
        for member in members {
            match member {
                Member::Key { name, value_at } => {
                    if !wanted(&name) || sparse.contains_key(&*name) {
                        continue;
                    }
                    if let Some(value) = scan::value_at(piece, value_at) {
                        sparse.insert(name.into_owned(), value);
                    }
                }
                Member::Element { at } => {
                    if let Some(value @ Value::Object(_)) = scan::value_at(piece, at) {
                        each(value);
                        elements += 1;
                    }
                }
            }
        }
    }
    let mut objects = elements;
    if !sparse.is_empty() {
        each(Value::Object(sparse));
        objects += 1;
    }
    Framed { objects, streamed: elements > 0, scanned: objects > 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn collect(body: &Body<'_>, framing: Framing) -> (Vec<Value>, Framed) {
        let mut out = Vec::new();
        let framed = objects(body, framing, &|k| k == "usage" || k == "model", &mut |v| out.push(v));
        (out, framed)
    }

    fn whole(bytes: &[u8]) -> Body<'_> {
        Body { head: Cow::Borrowed(bytes), tail: Cow::Borrowed(&[]), skipped: 0, complete: true }
    }

    #[test]
    fn sniffing() {
        assert_eq!(framing_of(Some("text/event-stream; charset=utf-8"), b"data: {}"), Framing::Sse);
        assert_eq!(framing_of(Some("text/event-stream"), b"{\"error\": {}}"), Framing::Json);
        assert_eq!(framing_of(None, b"event: x\ndata: {}\n\n"), Framing::Sse);
        assert_eq!(framing_of(Some("application/x-ndjson"), b"{}\n{}\n"), Framing::Ndjson);
        assert_eq!(framing_of(None, b"{\"a\":1}\n{\"a\":2}\n"), Framing::Ndjson);
        assert_eq!(framing_of(None, b"{\n  \"a\": 1\n}\n"), Framing::Json);
        assert_eq!(framing_of(Some("application/json"), b"[{}]"), Framing::Json);
        assert_eq!(framing_of(None, b"<html>"), Framing::Json);
    }

    #[test]
    fn sse_events_multi_line_data_crlf_and_done() {
        let body = b"event: a\r\ndata: {\"n\":\r\ndata: 1}\r\n\r\n: comment\n\ndata:{\"n\":2}\n\ndata: [DONE]\n\n";
        let (values, framed) = collect(&whole(body), Framing::Sse);
        assert_eq!(values, vec![serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]);
        assert!(framed.streamed);
    }

    #[test]
    fn cut_stream_reads_head_events_and_tail_events_after_a_boundary() {
        let head = b"data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":";
        let tail = b"9}\n\ndata: {\"n\":10}\n\ndata: {\"n\":11}\n\n";
        let body = Body { head: Cow::Borrowed(head), tail: Cow::Borrowed(tail), skipped: 500, complete: true };
        let (values, _) = collect(&body, Framing::Sse);
        let ns: Vec<i64> = values.iter().map(|v| v["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, [1, 2, 10, 11]);

        let head = b"{\"n\":1}\n{\"n\":2}\n{\"n\"";
        let tail = b"3}\n{\"n\":4}\n{\"n\":5}";
        let body = Body { head: Cow::Borrowed(head), tail: Cow::Borrowed(tail), skipped: 9, complete: false };
        let (values, _) = collect(&body, Framing::Ndjson);
        assert_eq!(values.len(), 4);
    }

    #[test]
    fn json_documents_arrays_and_scans() {
        let (values, framed) = collect(&whole(b"[{\"a\":1},{\"a\":2},3]"), Framing::Json);
        assert_eq!((values.len(), framed.streamed), (2, true));

        let head = b"{\"id\":\"x\",\"model\":\"m1\",\"choices\":[{\"text\":\"aaaa";
        let tail = b"aaa\"}],\"usage\":{\"prompt_tokens\":5}}";
        let body = Body { head: Cow::Borrowed(head), tail: Cow::Borrowed(tail), skipped: 1000, complete: true };
        let (values, framed) = collect(&body, Framing::Json);
        assert_eq!(values, vec![serde_json::json!({"model": "m1", "usage": {"prompt_tokens": 5}})]);
        assert!(framed.scanned);

        let body = Body { head: Cow::Borrowed(head), tail: Cow::Borrowed(tail), skipped: 1000, complete: false };
        assert_eq!(collect(&body, Framing::Json).0, vec![serde_json::json!({"model": "m1"})]);
        assert_eq!(collect(&whole(b"<html>oops</html>"), Framing::Json).1.objects, 0);
    }
}
