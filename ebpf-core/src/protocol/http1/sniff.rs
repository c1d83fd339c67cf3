//! Protocol detection from a connection's first bytes. It runs on every new
//! connection, so it looks at a handful of bytes and nothing more.

/// Longest method we expect to see (e.g. "VERSION-CONTROL", "BASELINE-CONTROL").
const MAX_METHOD_LEN: usize = 20;

pub(super) fn looks_like_http(data: &[u8]) -> bool {
    if data.starts_with(b"HTTP/1.") {
        return true;
    }
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
    let method_len =
        data.iter().take(MAX_METHOD_LEN + 1).take_while(|&&b| b.is_ascii_uppercase() || b == b'-' || b == b'_').count();
    method_len <= MAX_METHOD_LEN
        && data.get(method_len) == Some(&b' ')
        && data.get(method_len + 1).is_some_and(u8::is_ascii_graphic)
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;

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
}
