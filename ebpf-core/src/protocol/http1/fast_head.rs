//! The common shape of a head, split into lines without httparse: nearly
//! every head seen is a complete, strictly formed one, and httparse's
//! general machinery (per-header SIMD set-up, the header array) was a fifth
//! of the pipeline's time on small responses.
//!
//! What this accepts is a strict subset of what httparse accepts, with the
//! same result; anything else (a head cut short, bare LF line ends, folded
//! lines, spaces before a colon, non-ASCII in the start line, too many
//! headers, every error) returns `None` and takes httparse's path, which
//! gives the verdict. The differential tests below and the `http1_parser`
//! fuzz target check that subset property.

/// A strictly formed head: where it ends, its start line (no CRLF), and each
/// header's name and value (value trimmed of spaces and tabs, as httparse
/// trims it) handed to `header` in order. `None` for anything else.
///
/// Inlined into each of its two callers, whose `header` it calls per line.
#[inline(always)]
pub(super) fn split<'a>(
    buf: &'a [u8],
    max_headers: usize,
    mut header: impl FnMut(&'a [u8], &'a [u8]),
) -> Option<(usize, &'a [u8])> {
    let first = line_end(buf, 0)?;
    let mut pos = first + 2;
    let mut count = 0;
    loop {
        if buf.get(pos..pos + 2)? == b"\r\n" {
            return Some((pos + 2, &buf[..first]));
        }
        // One pass over the line: name bytes up to the colon, value bytes
        // up to CR (neither class holds CR, LF or other controls).
        let mut i = name_end(buf, pos);
        while i < buf.len() && is_token(buf[i]) {
            i += 1;
        }
        if i == pos || *buf.get(i)? != b':' {
            return None;
        }
        let colon = i;
        let i = value_end(buf, colon + 1);
        if buf.get(i..i + 2)? != b"\r\n" {
            return None;
        }
        count += 1;
        if count > max_headers {
            return None;
        }
        header(&buf[pos..colon], trim(&buf[colon + 1..i]));
        pos = i + 2;
    }
}

/// "METHOD SP target SP HTTP/1.x" with a token method and an ASCII target:
/// (method, target, minor version). Out of line, as `status_line`.
#[inline(never)]
pub(super) fn request_line(line: &[u8]) -> Option<(&str, &str, u8)> {
    let sp = line.iter().position(|&b| !is_token(b))?;
    if sp == 0 || line[sp] != b' ' {
        return None;
    }
    let rest = &line[sp + 1..];
    let minor = version(rest.get(rest.len().checked_sub(8)?..)?)?;
    let target = rest.get(..rest.len().checked_sub(9)?)?;
    if rest[target.len()] != b' ' || target.is_empty() || !target.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        return None;
    }
    // All of the line checked to be ASCII above: validated once as a whole
    // (short pieces are validated byte by byte, at ~7 instructions a byte).
    let line = std::str::from_utf8(line).ok()?;
    Some((&line[..sp], &line[sp + 1..sp + 1 + target.len()], minor))
}

/// "HTTP/1.x SP ddd SP reason" with a printable ASCII reason: the status.
/// Out of line: inlined after the header loop it cost more than the call
/// (which build inlined it changed with unrelated edits).
#[inline(never)]
pub(super) fn status_line(line: &[u8]) -> Option<u16> {
    if line.len() < 13 || line[8] != b' ' || line[12] != b' ' {
        return None;
    }
    version(&line[..8])?;
    let mut status = 0u16;
    for &d in &line[9..12] {
        if !d.is_ascii_digit() {
            return None;
        }
        status = status * 10 + u16::from(d - b'0');
    }
    line[13..].iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)).then_some(status)
}

fn version(v: &[u8]) -> Option<u8> {
    match v {
        b"HTTP/1.0" => Some(0),
        b"HTTP/1.1" => Some(1),
        _ => None,
    }
}

/// Index of the CR of the CRLF that ends the line starting at `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let lf = from + memchr::memchr(b'\n', buf.get(from..)?)?;
    (lf > from && buf[lf - 1] == b'\r').then(|| lf - 1)
}

/// RFC 9110 tchar, as httparse's header-name table.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    t
};

/// Header value bytes httparse accepts: HTAB, SP, VCHAR, obs-text.
static VALUE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    t
};

/// Where the value bytes starting at `i` end: at the first byte that is not
/// HTAB, SP, VCHAR or obs-text. Eight bytes at a time (values are most of a
/// head's bytes): the lowest byte flagged below 0x20 or equal to 0x7f is
/// exact, as a borrow only moves upwards.
fn value_end(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let d = w ^ (ONES * 0x7f);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        let flagged = control | del;
        if flagged == 0 {
            i += 8;
            continue;
        }
        let j = i + (flagged.trailing_zeros() / 8) as usize;
        if buf[j] != b'\t' {
            return j;
        }
        i = j + 1;
    }
    while i < buf.len() && VALUE[usize::from(buf[i])] {
        i += 1;
    }
    i
}

/// How far the header name starting at `i` runs in letters, digits and
/// `-` (nearly every name's bytes), eight bytes at a time: the byte-table
/// loop was the pipeline's largest single line. Stops at the first other
/// byte (the colon, or a rarer token byte the caller's loop goes on with).
/// Per byte, with the high bit cleared first so no sum carries into its
/// neighbour: `x + (0x80 - lo)` has the high bit set iff `x >= lo`, and
/// `x + (0x7f - hi)` iff `x > hi`.
fn name_end(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        x.wrapping_add(ONES * u64::from(0x80 - lo)) & !x.wrapping_add(ONES * u64::from(0x7f - hi))
    }
    while let Some(chunk) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let x = w & !HIGH;
        let ok = (in_range(x | (ONES * 0x20), b'a', b'z') | in_range(x, b'0', b'9') | in_range(x, b'-', b'-')) & !w;
        let bad = !ok & HIGH;
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Without the spaces and tabs around it (nearly always one space before).
fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_strict_response() {
        let head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length:  17 \r\nX-Empty:\r\n\r\nbody";
        let mut seen = Vec::new();
        let (len, start) = split(head, 96, |n, v| seen.push((n, v))).unwrap();
        assert_eq!(len, head.len() - 4);
        assert_eq!(status_line(start), Some(200));
        assert_eq!(seen, [(&b"Server"[..], &b"nginx"[..]), (b"Content-Length", b"17"), (b"X-Empty", b"")]);
    }

    #[test]
    fn leaves_everything_unusual_to_httparse() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nA: b\r\n"[..],      // cut short
            b"HTTP/1.1 200 OK\nA: b\n\n",             // bare LF
            b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",      // space before colon
            b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", // folded line
            b"HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",   // control byte
            b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",    // bare CR
            b"HTTP/1.1 200 OK\r\n: b\r\n\r\n",        // empty name
        ] {
            assert!(split(head, 96, |_, _| {}).is_none(), "{:?}", String::from_utf8_lossy(head));
        }
        assert!(split(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 1, |_, _| {}).is_none());
        for line in [
            &b"GET  / HTTP/1.1"[..],
            b"GET / HTTP/2.0",
            b"GET /\xc3\xa9 HTTP/1.1",
            b"GET  HTTP/1.1",
            b"G\x01T / HTTP/1.1",
        ] {
            assert!(request_line(line).is_none(), "{:?}", String::from_utf8_lossy(line));
        }
        for line in [&b"HTTP/1.1 200"[..], b"HTTP/1.1 2x0 OK", b"HTTP/1.1 200 \xff", b"HTTP/1.1  200 OK"] {
            assert!(status_line(line).is_none(), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn value_end_matches_the_byte_table() {
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = rng.usize(..40);
            let buf: Vec<u8> = (0..len)
                // Mostly printable, with controls, tabs, DEL and obs-text mixed in.
                .map(|_| match rng.u8(..16) {
                    0 => rng.u8(..0x20),
                    1 => 0x7f,
                    2 => rng.u8(0x80..),
                    _ => rng.u8(b' '..=b'~'),
                })
                .collect();
            for start in 0..=len {
                let expected = (start..len).find(|&k| !VALUE[usize::from(buf[k])]).unwrap_or(len);
                assert_eq!(value_end(&buf, start), expected, "{:?} from {start}", buf.escape_ascii().to_string());
            }
        }
    }

    #[test]
    fn name_end_stops_only_past_letters_digits_and_dashes() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = rng.usize(..40);
            let buf: Vec<u8> = (0..len)
                // Mostly name bytes, with every other byte mixed in.
                .map(|_| match rng.u8(..8) {
                    0 => rng.u8(..),
                    1 => b"-:_!~ @[`{/"[rng.usize(..11)],
                    _ => b"AZaz09mQ-"[rng.usize(..9)],
                })
                .collect();
            for start in 0..=len {
                let expected =
                    (start..len).find(|&k| !(buf[k].is_ascii_alphanumeric() || buf[k] == b'-')).unwrap_or(len);
                // Whole words only: a tail under eight bytes is the byte loop's.
                let words_end = start + (len - start) / 8 * 8;
                let got = name_end(&buf, start);
                assert_eq!(got, expected.min(words_end), "{:?} from {start}", buf.escape_ascii().to_string());
            }
        }
    }

    #[test]
    fn trims_spaces_and_tabs_around() {
        for (v, t) in [
            (&b""[..], &b""[..]),
            (b" ", b""),
            (b" \t \t", b""),
            (b" a", b"a"),
            (b"a b", b"a b"),
            (b"\t a b \t", b"a b"),
            (b"ab  ", b"ab"),
        ] {
            assert_eq!(trim(v), t, "{:?}", v.escape_ascii().to_string());
        }
    }

    #[test]
    fn start_lines() {
        assert_eq!(request_line(b"GET /a?b=c HTTP/1.0"), Some(("GET", "/a?b=c", 0)));
        assert_eq!(request_line(b"OPTIONS * HTTP/1.1"), Some(("OPTIONS", "*", 1)));
        assert_eq!(status_line(b"HTTP/1.0 404 Not Found"), Some(404));
        assert_eq!(status_line(b"HTTP/1.1 204 "), Some(204));
    }
}
