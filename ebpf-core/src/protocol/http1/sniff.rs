//! Protocol detection from a connection's first bytes. It runs on every new
//! connection, so it looks at a handful of bytes and nothing more.

/// Longest method we expect to see (e.g. "VERSION-CONTROL", "BASELINE-CONTROL").
const MAX_METHOD_LEN: usize = 20;

pub(super) fn looks_like_http(data: &[u8]) -> bool {
    looks_like_response(data) || looks_like_request(data)
}

/// A status line start.
pub(super) fn looks_like_response(data: &[u8]) -> bool {
    data.starts_with(STATUS_LINE_START)
}

/// A request line start: method, space, and the target's first byte.
pub(super) fn looks_like_request(data: &[u8]) -> bool {
    // HTTP/2 prior knowledge starts with a valid-looking request line.
    if data.starts_with(b"PRI * HTTP/2") {
        return false;
    }
    // Real methods are upper case. Insisting on that (where RFC 9110 allows
    // any token) keeps out text protocols whose first line also starts with
    // "word space": SMTP/FTP "220 ", POP3 "+OK ", IMAP "* OK".
    if !data.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let method_len = method_len(data);
    method_len <= MAX_METHOD_LEN
        && data.get(method_len) == Some(&b' ')
        && data.get(method_len + 1).is_some_and(u8::is_ascii_graphic)
}

/// Like `looks_like_request` / `looks_like_response`, but a chunk that ends
/// before the check is decided counts as long as what it has fits ("GE",
/// "GET ", "HTTP/"): the head parser validates the rest when it comes.
/// Leading CR/LF (allowed between messages) are skipped. Empty input does
/// not start anything.
pub(super) fn may_start_message(request: bool, data: &[u8]) -> bool {
    let data = skip_line_breaks(data);
    if data.is_empty() {
        return false;
    }
    if !request {
        let n = data.len().min(STATUS_LINE_START.len());
        return data[..n] == STATUS_LINE_START[..n];
    }
    if looks_like_request(data) {
        return true;
    }
    // Long enough for `looks_like_request` to have decided.
    if data.len() > MAX_METHOD_LEN + 1 || data.starts_with(b"PRI * HTTP/2") {
        return false;
    }
    let method_len = method_len(data);
    data[0].is_ascii_uppercase()
        && method_len <= MAX_METHOD_LEN
        && match data.get(method_len) {
            None => true,
            Some(b' ') => data.get(method_len + 1).is_none_or(u8::is_ascii_graphic),
            Some(_) => false,
        }
}

/// The whole-chunk form of the checks, for skipping chunks after lost events:
/// leading CR/LF skipped, then a request line or status line start.
pub(super) fn starts_message(request: bool, data: &[u8]) -> bool {
    let data = skip_line_breaks(data);
    if request {
        looks_like_request(data)
    } else {
        looks_like_response(data)
    }
}

pub(super) fn skip_line_breaks(data: &[u8]) -> &[u8] {
    let skip = data.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(data.len());
    &data[skip..]
}

const STATUS_LINE_START: &[u8] = b"HTTP/1.";

fn method_len(data: &[u8]) -> usize {
    data.iter().take(MAX_METHOD_LEN + 1).take_while(|&&b| b.is_ascii_uppercase() || b == b'-' || b == b'_').count()
}

#[cfg(test)]
mod tests {
    use super::{looks_like_http, may_start_message, starts_message};

    #[test]
    fn accepts_request_lines_and_status_lines() {
        for data in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /submit HTTP/1.1",
            b"OPTIONS * HTTP/1.1",
            b"CONNECT example.com:443 HTTP/1.1",
            b"M-SEARCH * HTTP/1.1",
            b"GET http://example.com/ HTTP/1.1",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.0 404",
            b"GET /",
        ] {
            assert!(looks_like_http(data), "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn rejects_other_protocols() {
        for data in [
            &b""[..],
            b"GET",
            b"GET ",
            b"GET  /",
            b"get / HTTP/1.1",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"HTTP/2",
            b"220 smtp.example.com ESMTP\r\n",
            b"+OK POP3 ready\r\n",
            b"* OK IMAP4rev1\r\n",
            b"*1\r\n$4\r\nPING\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ /",
        ] {
            assert!(!looks_like_http(data), "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn message_starts_may_be_cut_short() {
        for data in [&b"G"[..], b"GET", b"GET ", b"GET /", b"\r\nGET /x", b"M-SEARCH", b"H", b"HTTP/", b"HTTP/1.1 200"]
        {
            let request = !data.starts_with(b"H");
            assert!(may_start_message(request, data), "{:?}", String::from_utf8_lossy(data));
        }
        for (request, data) in [
            (true, &b""[..]),
            (true, b"\r\n"),
            (true, b"get /"),
            (true, b"GET  /"),
            (true, b"GET/"),
            (true, b"{\"a\": 1}"),
            (true, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            (true, b"HTTP/1.1 200 OK"),
            (false, b"GET / HTTP/1.1"),
            (false, b"HTTP/2"),
            (false, b"hello"),
        ] {
            assert!(!may_start_message(request, data), "{:?}", String::from_utf8_lossy(data));
        }
        assert!(starts_message(true, b"\r\nPOST /x HTTP/1.1"));
        assert!(!starts_message(true, b"POST"));
        assert!(starts_message(false, b"HTTP/1.0 200"));
        assert!(!starts_message(false, b"HTTP/"));
    }
}
