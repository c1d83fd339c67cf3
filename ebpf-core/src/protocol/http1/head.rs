//! Request and response heads: `fast_head` splits the common strict shape,
//! httparse parses everything else (and decides every error); here we buffer a
//! head that arrives split and boil the parsed head down to what framing and
//! spans need, dropping every other header value.

use std::mem::MaybeUninit;

use compact_str::CompactString;

use httparse::{Header, ParserConfig, Status};

use super::body::Body;
use super::error::{MessageKind, ParseError};
use super::exchange::HttpVersion;
use super::fast_head;
use super::kept::ShortValue;
use super::{MAX_HEAD_BYTES, MAX_HOST_BYTES, MAX_TARGET_BYTES};
use crate::protocol::http2::H2cAsk;

/// More headers than this is far outside real traffic.
const MAX_HEADERS: usize = 96;
/// Methods are short tokens; keep the string bounded all the same.
const MAX_METHOD_BYTES: usize = 32;
/// A buffer grown past this by one large split head is given back afterwards
/// so that idle connections stay small.
const KEEP_BUFFER_CAPACITY: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MethodKind {
    Head,
    Connect,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferCoding {
    Absent,
    Chunked,
    /// Present but not ending in chunked.
    Other,
}

/// Header facts that decide where a body ends.
#[derive(Debug, Clone, Copy)]
struct Framing {
    content_length: Option<u64>,
    transfer: TransferCoding,
}

#[derive(Debug)]
pub(super) struct RequestHead {
    pub method: CompactString,
    pub method_kind: MethodKind,
    pub target: CompactString,
    pub version: HttpVersion,
    pub host: Option<CompactString>,
    /// Content-Encoding (only read when the body is kept).
    pub content_encoding: ShortValue,
    /// `Upgrade: h2c` with `HTTP2-Settings`: a 101 answer makes the
    /// connection HTTP/2, this request its stream 1.
    pub h2c_upgrade: bool,
    framing: Framing,
}

#[derive(Debug)]
pub(super) struct ResponseHead {
    pub status: u16,
    /// Content-Type and Content-Encoding (only read when the body is kept).
    pub content_type: ShortValue,
    pub content_encoding: ShortValue,
    /// Its `Upgrade` names h2c (with 101: the switch to HTTP/2).
    pub upgrade_h2c: bool,
    framing: Framing,
}

/// What follows a final response head.
#[derive(Debug)]
pub(super) enum ResponseBody {
    None,
    Some(Body),
    /// The connection stops carrying HTTP (101 Switching Protocols, or a
    /// tunnel opened by CONNECT).
    Switched,
}

impl RequestHead {
    /// Requests never run until close: without a length they have no body.
    pub(super) fn body(&self) -> Result<Option<Body>, ParseError> {
        match (self.framing.transfer, self.framing.content_length) {
            (TransferCoding::Chunked, _) => Ok(Some(Body::chunked(MessageKind::Request))),
            (TransferCoding::Other, _) => Err(ParseError::UnsupportedTransferEncoding),
            (TransferCoding::Absent, Some(n)) if n > 0 => Ok(Some(Body::Length { remaining: n })),
            (TransferCoding::Absent, _) => Ok(None),
        }
    }
}

impl ResponseHead {
    pub(super) fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// 101 Switching Protocols, or a tunnel opened by CONNECT: the
    /// connection stops carrying HTTP after this head.
    pub(super) fn switches(&self, request: MethodKind) -> bool {
        self.status == 101 || (request == MethodKind::Connect && (200..300).contains(&self.status))
    }

    /// RFC 9112 section 6.3, in its order of precedence.
    pub(super) fn body(&self, request: MethodKind) -> ResponseBody {
        let status = self.status;
        if self.switches(request) {
            return ResponseBody::Switched;
        }
        if request == MethodKind::Head || status < 200 || status == 204 || status == 304 {
            return ResponseBody::None;
        }
        match (self.framing.transfer, self.framing.content_length) {
            (TransferCoding::Chunked, _) => ResponseBody::Some(Body::chunked(MessageKind::Response)),
            (TransferCoding::Other, _) | (TransferCoding::Absent, None) => ResponseBody::Some(Body::UntilClose),
            (TransferCoding::Absent, Some(0)) => ResponseBody::None,
            (TransferCoding::Absent, Some(n)) => ResponseBody::Some(Body::Length { remaining: n }),
        }
    }
}

/// Result of a complete head parse: bytes used from the front and the head.
type Parsed<T> = Option<(usize, T)>;

pub(super) fn parse_request(buf: &[u8]) -> Result<Parsed<RequestHead>, ParseError> {
    let mut facts = RequestFacts::default();
    if let Some((len, start)) = fast_head::split(buf, MAX_HEADERS, |name, value| facts.header(name, value)) {
        if let Some((method, target, minor)) = fast_head::request_line(start) {
            return facts.finish(method, target, minor).map(|head| Some((len, head)));
        }
    }
    parse_request_httparse(buf)
}

fn parse_request_httparse(buf: &[u8]) -> Result<Parsed<RequestHead>, ParseError> {
    let message = MessageKind::Request;
    let mut headers = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut headers) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(reason) => return Err(ParseError::MalformedHead { message, reason }),
    };
    let mut facts = RequestFacts::default();
    for h in req.headers.iter() {
        facts.header(h.name.as_bytes(), h.value);
    }
    // httparse fills these in before it can return Complete.
    let head = facts.finish(req.method.unwrap_or_default(), req.path.unwrap_or_default(), req.version.unwrap_or(1))?;
    Ok(Some((len, head)))
}

pub(super) fn parse_response(buf: &[u8]) -> Result<Parsed<ResponseHead>, ParseError> {
    let mut facts = ResponseFacts::default();
    if let Some((len, start)) = fast_head::split(buf, MAX_HEADERS, |name, value| facts.header(name, value)) {
        if let Some(status) = fast_head::status_line(start) {
            return facts.finish(status).map(|head| Some((len, head)));
        }
    }
    parse_response_httparse(buf)
}

fn parse_response_httparse(buf: &[u8]) -> Result<Parsed<ResponseHead>, ParseError> {
    let message = MessageKind::Response;
    let mut headers = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    // Clients accept these sloppy forms from real servers, so we must too.
    let mut config = ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(reason) => return Err(ParseError::MalformedHead { message, reason }),
    };
    let mut facts = ResponseFacts::default();
    for h in resp.headers.iter() {
        facts.header(h.name.as_bytes(), h.value);
    }
    Ok(Some((len, facts.finish(resp.code.unwrap_or_default())?)))
}

/// Do both parse paths give the same verdict on `buf` (the fast path's
/// subset property)? For the fuzz target `http1_head`.
pub(super) fn paths_agree(buf: &[u8]) -> bool {
    format!("{:?}", parse_request(buf)) == format!("{:?}", parse_request_httparse(buf))
        && format!("{:?}", parse_response(buf)) == format!("{:?}", parse_response_httparse(buf))
}

/// What a request head's headers say, gathered header by header (from
/// either parse path); the first framing error is kept for `finish`.
#[derive(Default)]
struct RequestFacts {
    framing: Framing,
    host: Option<CompactString>,
    content_encoding: ShortValue,
    h2c: H2cAsk,
    error: Option<ParseError>,
}

impl RequestFacts {
    /// By the name's length first: most headers are none of those wanted,
    /// and their length alone says so, in the line loop, without a call
    /// (the lengths of the names `wanted_header` reads).
    #[inline(always)]
    fn header(&mut self, name: &[u8], value: &[u8]) {
        if matches!(name.len(), 4 | 16 | FRAMING_LENGTH | FRAMING_CODING | H2cAsk::UPGRADE) {
            self.wanted_header(name, value);
        }
    }

    fn wanted_header(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            // The first Host header counts.
            4 if self.host.is_none() && name_is(name, b"host") => {
                let value = cap_bytes(value, MAX_HOST_BYTES);
                // compact_str's own lossy conversion goes char by char (a tenth of the pipeline's time).
                self.host = Some(match std::str::from_utf8(value) {
                    Ok(s) => CompactString::from(s),
                    Err(_) => CompactString::from(String::from_utf8_lossy(value)),
                });
            }
            16 if name_is(name, b"content-encoding") => self.content_encoding = ShortValue::new(value),
            FRAMING_LENGTH | FRAMING_CODING => {
                if let Err(e) = self.framing.observe(name, value, MessageKind::Request) {
                    self.error.get_or_insert(e);
                }
                self.h2c.field(name, value);
            }
            H2cAsk::UPGRADE => self.h2c.field(name, value),
            _ => {}
        }
    }

    fn finish(self, method: &str, target: &str, minor: u8) -> Result<RequestHead, ParseError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let method_kind = match method {
            "HEAD" => MethodKind::Head,
            "CONNECT" => MethodKind::Connect,
            _ => MethodKind::Other,
        };
        Ok(RequestHead {
            method: cap_str(method, MAX_METHOD_BYTES).into(),
            method_kind,
            target: cap_str(target, MAX_TARGET_BYTES).into(),
            version: HttpVersion::from_minor(minor),
            host: self.host,
            content_encoding: self.content_encoding,
            h2c_upgrade: self.h2c.asked(),
            framing: self.framing,
        })
    }
}

#[derive(Default)]
struct ResponseFacts {
    framing: Framing,
    content_type: ShortValue,
    content_encoding: ShortValue,
    h2c: H2cAsk,
    error: Option<ParseError>,
}

impl ResponseFacts {
    /// By the name's length first, as `RequestFacts::header`.
    #[inline(always)]
    fn header(&mut self, name: &[u8], value: &[u8]) {
        if matches!(name.len(), 12 | 16 | FRAMING_LENGTH | FRAMING_CODING | H2cAsk::UPGRADE) {
            self.wanted_header(name, value);
        }
    }

    fn wanted_header(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            12 if name_is(name, b"content-type") => self.content_type = ShortValue::new(value),
            16 if name_is(name, b"content-encoding") => self.content_encoding = ShortValue::new(value),
            FRAMING_LENGTH | FRAMING_CODING => {
                if let Err(e) = self.framing.observe(name, value, MessageKind::Response) {
                    self.error.get_or_insert(e);
                }
                self.h2c.field(name, value);
            }
            H2cAsk::UPGRADE => self.h2c.field(name, value),
            _ => {}
        }
    }

    fn finish(self, status: u16) -> Result<ResponseHead, ParseError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(ResponseHead {
                status,
                content_type: self.content_type,
                content_encoding: self.content_encoding,
                upgrade_h2c: self.h2c.accepted(),
                framing: self.framing,
            }),
        }
    }
}

/// The facts of a request head whose end was not captured, from its complete
/// lines: `None` when not even the request line is complete. A header cut
/// short (Host included) is left out, as are the framing headers' meaning:
/// without the head's end they cannot say where the body ends.
pub(super) fn parse_request_start(partial: &[u8]) -> Result<Option<RequestHead>, ParseError> {
    parse_complete_lines(partial, parse_request)
}

/// `parse_request_start` for a status line: only the status is used.
pub(super) fn parse_response_start(partial: &[u8]) -> Result<Option<ResponseHead>, ParseError> {
    parse_complete_lines(partial, parse_response)
}

/// Parses the lines of `partial` up to its last line break as a whole head,
/// so that they are validated exactly as a complete head would be.
fn parse_complete_lines<T>(
    partial: &[u8],
    parse: fn(&[u8]) -> Result<Parsed<T>, ParseError>,
) -> Result<Option<T>, ParseError> {
    let Some(last_lf) = partial.iter().rposition(|&b| b == b'\n') else {
        return Ok(None);
    };
    let mut head = Vec::with_capacity(last_lf + 3);
    head.extend_from_slice(&partial[..=last_lf]);
    head.extend_from_slice(b"\r\n");
    Ok(parse(&head)?.map(|(_, head)| head))
}

/// The lengths of the names `Framing::observe` reads: `Content-Length`
/// (as long as `HTTP2-Settings`, which `H2cAsk` reads) and `Transfer-Encoding`.
const FRAMING_LENGTH: usize = b"content-length".len();
const FRAMING_CODING: usize = b"transfer-encoding".len();

impl Default for Framing {
    fn default() -> Self {
        Framing { content_length: None, transfer: TransferCoding::Absent }
    }
}

impl Framing {
    fn observe(&mut self, name: &[u8], value: &[u8], message: MessageKind) -> Result<(), ParseError> {
        if name_is(name, b"content-length") {
            let n = parse_content_length(value).ok_or(ParseError::InvalidContentLength { message })?;
            match self.content_length {
                Some(prev) if prev != n => return Err(ParseError::InvalidContentLength { message }),
                _ => self.content_length = Some(n),
            }
        } else if name_is(name, b"transfer-encoding") {
            // The last coding of the last Transfer-Encoding line is the one
            // that frames the message.
            let last = value.split(|&b| b == b',').map(trim).rfind(|coding| !coding.is_empty());
            match last {
                Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => {
                    self.transfer = TransferCoding::Chunked;
                }
                Some(_) => self.transfer = TransferCoding::Other,
                None => {}
            }
        }
        Ok(())
    }
}

/// `name.eq_ignore_ascii_case(lower)` for a `lower` of lowercase letters,
/// digits and `-`, eight bytes at a time: the bytewise comparison was most
/// of the header dispatch. Only letters compare without case (bit 5 set in
/// both), every other byte exactly, as `eq_ignore_ascii_case`.
#[inline(always)]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    fn word(bytes: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    }
    debug_assert!(lower.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-'));
    name.len() == lower.len()
        && name.chunks(8).zip(lower.chunks(8)).all(|(n, l)| {
            let l = word(l);
            // 0x20 where `lower` holds a letter (bytes from 0x61 up).
            let letters = (l.wrapping_add(ONES * 0x1f) & HIGH) >> 2;
            word(n) | letters == l
        })
}

/// Accepts "N" and the list form "N, N" some proxies produce; anything else
/// (signs, spaces inside, differing values) is unusable for framing.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    // Nearly always one number alone: the list's path gives the same.
    if (1..=19).contains(&value.len()) && value.iter().all(u8::is_ascii_digit) {
        return Some(value.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')));
    }
    let mut result = None;
    for part in value.split(|&b| b == b',').map(trim) {
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        match result {
            Some(prev) if prev != n => return None,
            _ => result = Some(n),
        }
    }
    result
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

fn cap_bytes(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

fn cap_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Outcome of offering bytes to a `HeadBuffer`.
#[derive(Debug)]
pub(super) enum HeadStep<T> {
    /// All the offered bytes were taken; the head is not finished yet.
    NeedMore,
    Done {
        head: T,
        /// Bytes of the offered data that belonged to the head.
        consumed: usize,
        /// Timestamp of the chunk that carried the head's first byte.
        start_ns: u64,
    },
}

/// Holds the beginning of a head that did not end in its chunk. Heads that
/// fit in one chunk (nearly all) are parsed in place and never copied.
#[derive(Debug, Default)]
pub(super) struct HeadBuffer {
    buf: Vec<u8>,
    start_ns: u64,
}

impl HeadBuffer {
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(super) fn release(&mut self) {
        self.buf = Vec::new();
    }

    /// The unfinished head's bytes and the timestamp of its first chunk,
    /// leaving the buffer empty.
    pub(super) fn take(&mut self) -> (Vec<u8>, u64) {
        (std::mem::take(&mut self.buf), self.start_ns)
    }

    /// Inlined into its two callers, with `parse` known there: a head
    /// passed back by value through calls was copied at each.
    #[inline(always)]
    pub(super) fn step<T>(
        &mut self,
        data: &[u8],
        ts_ns: u64,
        message: MessageKind,
        parse: fn(&[u8]) -> Result<Parsed<T>, ParseError>,
    ) -> Result<HeadStep<T>, ParseError> {
        let too_large = ParseError::HeadTooLarge { message, limit: MAX_HEAD_BYTES };
        if self.buf.is_empty() {
            // Stray CRLFs between messages (RFC 9112 section 2.2) would
            // otherwise start a buffered head and claim its timestamp.
            let skip = data.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(data.len());
            let rest = &data[skip..];
            if rest.is_empty() {
                return Ok(HeadStep::NeedMore);
            }
            return match parse(rest)? {
                Some((len, head)) => Ok(HeadStep::Done { head, consumed: skip + len, start_ns: ts_ns }),
                None if rest.len() >= MAX_HEAD_BYTES => Err(too_large),
                None => {
                    self.buf.extend_from_slice(rest);
                    self.start_ns = ts_ns;
                    Ok(HeadStep::NeedMore)
                }
            };
        }
        let old_len = self.buf.len();
        let take = data.len().min(MAX_HEAD_BYTES.saturating_sub(old_len));
        self.buf.extend_from_slice(&data[..take]);
        match parse(&self.buf)? {
            Some((len, head)) => {
                let start_ns = self.start_ns;
                self.buf.clear();
                if self.buf.capacity() > KEEP_BUFFER_CAPACITY {
                    self.release();
                }
                Ok(HeadStep::Done {
                    head,
                    // The old bytes alone did not make a head, so it ends in the new ones.
                    consumed: len.saturating_sub(old_len).min(data.len()),
                    start_ns,
                })
            }
            None if self.buf.len() >= MAX_HEAD_BYTES => Err(too_large),
            None => Ok(HeadStep::NeedMore),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both parse paths agree on every head the fast one takes, including
    /// its cut-short prefixes and single-byte corruptions of it.
    #[test]
    fn fast_path_agrees_with_httparse() {
        let heads: [&[u8]; 6] = [
            b"GET /index.html?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
            b"POST /v1/chat HTTP/1.0\r\nHost:  api \r\nContent-Length: 5, 5\r\nContent-Encoding: gzip\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 08:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 17\r\nConnection: keep-alive\r\nETag: \"1-2\"\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\nX-Bin: \xff\xfe\r\n\r\n",
            b"HTTP/1.0 500 Err\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        ];
        let mut checked = 0;
        for head in heads {
            assert!(fast_head::split(head, MAX_HEADERS, |_, _| {}).is_some(), "{}", head.escape_ascii());
            let mut variants = vec![head.to_vec()];
            variants.extend((1..head.len()).map(|n| head[..n].to_vec()));
            for i in 0..head.len() {
                for b in [b' ', b'\t', b'\r', b'\n', b':', 0x01, 0x7f, 0xc3, b'A'] {
                    let mut v = head.to_vec();
                    v[i] = b;
                    variants.push(v);
                }
            }
            for v in variants {
                let (req, resp) = (parse_request(&v), parse_response(&v));
                assert_eq!(
                    format!("{req:?}"),
                    format!("{:?}", parse_request_httparse(&v)),
                    "{:?}",
                    v.escape_ascii().to_string()
                );
                assert_eq!(
                    format!("{resp:?}"),
                    format!("{:?}", parse_response_httparse(&v)),
                    "{:?}",
                    v.escape_ascii().to_string()
                );
                checked += 1;
            }
        }
        assert!(checked > 3000, "{checked}");
    }

    #[test]
    fn name_is_eq_ignore_ascii_case() {
        let names: [&[u8]; 6] =
            [b"host", b"content-type", b"content-length", b"content-encoding", b"transfer-encoding", b"http2-settings"];
        for lower in names {
            for len in 0..=lower.len() + 1 {
                for b in 0..=255u8 {
                    for at in 0..len {
                        let mut name: Vec<u8> = lower.iter().copied().chain(*b"xy").take(len).collect();
                        let upper = name.to_ascii_uppercase();
                        name[at] = b;
                        assert_eq!(
                            name_is(&name, lower),
                            name.eq_ignore_ascii_case(lower),
                            "{:?}",
                            name.escape_ascii().to_string()
                        );
                        assert!(!name_is(&name, lower) || name.len() == lower.len());
                        assert_eq!(name_is(&upper, lower), upper.eq_ignore_ascii_case(lower));
                    }
                }
            }
        }
    }

    #[test]
    fn content_length_forms() {
        assert_eq!(parse_content_length(b"42"), Some(42));
        assert_eq!(parse_content_length(b" 7 "), Some(7));
        assert_eq!(parse_content_length(b"5, 5"), Some(5));
        assert_eq!(parse_content_length(b"5, 6"), None);
        assert_eq!(parse_content_length(b"+5"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"1 2"), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert_eq!(parse_content_length(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
    }

    #[test]
    fn cap_str_respects_char_boundaries() {
        assert_eq!(cap_str("abc", 2), "ab");
        assert_eq!(cap_str("aé", 2), "a");
        assert_eq!(cap_str("aé", 3), "aé");
    }

    #[test]
    fn transfer_encoding_last_coding_decides() {
        let (_, head) =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(matches!(head.body(MethodKind::Other), ResponseBody::Some(Body::Chunked(_))));
        let (_, head) =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap().unwrap();
        assert!(matches!(head.body(MethodKind::Other), ResponseBody::Some(Body::UntilClose)));
        let (_, head) = parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body().unwrap_err(), ParseError::UnsupportedTransferEncoding);
    }

    #[test]
    fn start_facts_of_a_cut_head() {
        let head = parse_request_start(b"POST /up?x=1 HTTP/1.0\r\nHost: h:80\r\nContent-Length: 9\r\nCookie: a=")
            .unwrap()
            .unwrap();
        assert_eq!((head.method.as_str(), head.target.as_str()), ("POST", "/up?x=1"));
        assert_eq!((head.version, head.host.as_deref()), (HttpVersion::Http10, Some("h:80")));
        // Host itself cut short, or its line break not captured.
        for cut in [&b"GET / HTTP/1.1\r\nHost: exam"[..], b"GET / HTTP/1.1\r\nHost: example\r"] {
            let head = parse_request_start(cut).unwrap().unwrap();
            assert_eq!((head.method.as_str(), head.host), ("GET", None));
        }
        assert!(parse_request_start(b"GET /long/tar").unwrap().is_none());
        assert!(parse_request_start(b"GET / HTTP/1.1\r").unwrap().is_none());
        assert!(parse_request_start(b"GET / HTTP/1.1\r\nBad Header\r\nX").is_err());
        assert!(parse_request_start(b"\x16\x03\x01\n").is_err());
        let head = parse_response_start(b"HTTP/1.1 404 Not Found\r\nServer: x\r\nSet-Cookie: a").unwrap().unwrap();
        assert_eq!(head.status, 404);
        assert!(parse_response_start(b"HTTP/1.1 40").unwrap().is_none());
    }
}
