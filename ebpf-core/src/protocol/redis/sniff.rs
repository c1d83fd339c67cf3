//! Recognising Redis from a handful of bytes: a connection's first chunk,
//! and the chunk a direction resynchronises at after lost bytes. Each check
//! looks at the first few bytes only; a chunk that ends before a check is
//! decided passes if what it has fits.

/// Inline commands a person types first (telnet, nc): recognised only
/// from this list, since "word space" starts many text protocols.
const INLINE_FIRST: &[&[u8]] = &[
    b"AUTH",
    b"HELLO",
    b"PING",
    b"SELECT",
    b"GET",
    b"SET",
    b"INFO",
    b"KEYS",
    b"SCAN",
    b"DEL",
    b"EXISTS",
    b"MGET",
    b"MSET",
    b"INCR",
    b"CLIENT",
    b"CONFIG",
    b"DBSIZE",
    b"MONITOR",
    b"SUBSCRIBE",
    b"PSUBSCRIBE",
    b"PUBLISH",
    b"FLUSHALL",
    b"FLUSHDB",
    b"HGETALL",
    b"LRANGE",
    b"TTL",
    b"TYPE",
    b"QUIT",
    b"COMMAND",
    b"MULTI",
];

/// A connection's first bytes from the client: a RESP array of bulk
/// strings whose first is a command-name-shaped word (`*1\r\n$4\r\nPING`),
/// or an inline command from `INLINE_FIRST` (any case).
pub fn looks_like_command(data: &[u8]) -> bool {
    resp_command_start(data, false) || inline_start(data, false)
}

/// A RESP command: what every client library sends, and nothing else does.
pub(crate) fn looks_like_resp_command(data: &[u8]) -> bool {
    resp_command_start(data, false)
}

/// An inline command from `INLINE_FIRST`, as people type them.
pub(crate) fn looks_like_inline_command(data: &[u8]) -> bool {
    inline_start(data, false)
}

/// The first bytes of a chunk where a command must start, after lost
/// bytes: as `looks_like_command` (inline commands only on a connection
/// that has used them), but a chunk that ends early passes.
pub(super) fn starts_command(data: &[u8], inline: bool) -> bool {
    let data = skip_line_breaks(data);
    !data.is_empty() && (resp_command_start(data, true) || (inline && inline_start(data, true)))
}

/// The first bytes of a chunk where a reply must start.
pub(crate) fn starts_reply(data: &[u8]) -> bool {
    let Some((&t, rest)) = data.split_first() else { return false };
    let Some(&next) = rest.first() else {
        return b"+-:$*_#,(!=%~>|".contains(&t);
    };
    match t {
        b'+' | b'-' => next.is_ascii_graphic() || next == b'\r' || next == b' ',
        b':' | b'(' => next.is_ascii_digit() || next == b'-' || next == b'+',
        b',' => next.is_ascii_digit() || b"-+.in".contains(&next),
        b'$' | b'*' | b'%' | b'~' | b'>' | b'|' | b'!' | b'=' => next.is_ascii_digit() || next == b'-' || next == b'?',
        b'_' => next == b'\r',
        b'#' => next == b't' || next == b'f',
        _ => false,
    }
}

fn skip_line_breaks(data: &[u8]) -> &[u8] {
    let n = data.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    &data[n..]
}

/// `*N\r\n$M\r\nNAME` with N and M small, NAME letters (then digits, `.`, `_`, `|`, `-`).
fn resp_command_start(data: &[u8], partial_ok: bool) -> bool {
    let mut i = 0;
    let expect = |pred: &dyn Fn(u8) -> bool, i: &mut usize| -> Option<bool> {
        match data.get(*i) {
            None => Some(partial_ok),
            Some(&b) if pred(b) => {
                *i += 1;
                None
            }
            Some(_) => Some(false),
        }
    };
    if let Some(r) = expect(&|b| b == b'*', &mut i) {
        return r;
    }
    for (first, max) in [(true, 7), (false, 11)] {
        if !first {
            if let Some(r) = expect(&|b| b == b'$', &mut i) {
                return r;
            }
        }
        let start = i;
        while data.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == data.len() {
            return partial_ok && i - start <= max;
        }
        if i == start || i - start > max || data[start] == b'0' {
            return false;
        }
        for end in [b'\r', b'\n'] {
            if let Some(r) = expect(&|b| b == end, &mut i) {
                return r;
            }
        }
    }
    match data.get(i) {
        None => partial_ok,
        Some(b) => b.is_ascii_alphabetic() || *b == b'_',
    }
}

fn inline_start(data: &[u8], partial_ok: bool) -> bool {
    // "GET /path HTTP/1.1" is HTTP's, not an inline GET.
    let line = &data[..memchr::memchr(b'\n', data).unwrap_or(data.len()).min(512)];
    if memchr::memmem::find(line, b" HTTP/").is_some() {
        return false;
    }
    let word_len = data.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let word = &data[..word_len];
    match data.get(word_len) {
        None => {
            partial_ok && INLINE_FIRST.iter().any(|w| w.len() >= word_len && w[..word_len].eq_ignore_ascii_case(word))
        }
        Some(b' ' | b'\r' | b'\n') => INLINE_FIRST.iter().any(|w| w.eq_ignore_ascii_case(word)),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert!(looks_like_command(b"*1\r\n$4\r\nPING\r\n"));
        assert!(looks_like_command(b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"));
        assert!(looks_like_command(b"PING\r\n"));
        assert!(looks_like_command(b"auth secret\r\n"));
        assert!(!looks_like_command(b"*1\r\n$4\r\n"), "the name must be there");
        assert!(!looks_like_command(b"GET / HTTP/1.1\r\nHost: x\r\n"), "an HTTP request line");
        assert!(!looks_like_command(b"\x16\x03\x01"), "TLS");
        assert!(!looks_like_command(b"*0\r\n"));
        assert!(!looks_like_command(b"+OK\r\n"));
        assert!(!looks_like_command(b"PRI * HTTP/2.0"));
        assert!(!looks_like_command(b"SSH-2.0-OpenSSH"));
    }

    #[test]
    fn resync_points() {
        assert!(starts_command(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", false));
        assert!(starts_command(b"*2\r", false), "cut early: fits");
        assert!(!starts_command(b"$3\r\nGET\r\n", false), "mid-command");
        assert!(!starts_command(b"lue-42\r\n*2\r\n", false));
        assert!(starts_command(b"GET k\r\n", true));
        assert!(!starts_command(b"GET k\r\n", false));
        assert!(starts_reply(b"+OK\r\n"));
        assert!(starts_reply(b"$-1\r\n"));
        assert!(starts_reply(b"%2\r\n"));
        assert!(starts_reply(b":"));
        assert!(!starts_reply(b"hello"));
        assert!(!starts_reply(b"$x"));
    }
}
