//! Replays of recorded traffic (`fixtures`), hand-made edge cases
//! (`edge_cases`) and truncation / lost events as the kernel shows them
//! (`degraded`). All drive the parser only through its public API.

mod degraded;
mod edge_cases;
mod fixtures;
mod kept_bodies;

use super::{Http1Parser, HttpExchange, ParseError};
use crate::protocol::{Chunk, Direction, Role};

/// Feeds `(direction, ts, data, total_len)` steps, then closes at `close_ts`.
/// Returns what came out, how much of it came before the close, and every
/// error `feed` returned.
pub(super) struct Run {
    pub out: Vec<HttpExchange>,
    pub before_close: usize,
    pub errors: Vec<ParseError>,
    pub parser: Http1Parser,
}

pub(super) fn run<'a>(steps: impl IntoIterator<Item = (Direction, u64, &'a [u8], u64)>, close_ts: Option<u64>) -> Run {
    let mut parser = Http1Parser::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (direction, ts_ns, data, total_len) in steps {
        let chunk = Chunk { ts_ns, direction, data, total_len };
        if let Err(e) = parser.feed(&chunk, &mut out) {
            errors.push(e);
        }
    }
    let before_close = out.len();
    if let Some(ts) = close_ts {
        parser.close(ts, &mut out);
    }
    Run { out, before_close, errors, parser }
}

/// The direction a request travels for the traced process in `role`.
pub(super) fn request_dir(role: Role) -> Direction {
    role.request_direction()
}

pub(super) fn response_dir(role: Role) -> Direction {
    role.request_direction().opposite()
}

/// What the registry's recogniser says of first payloads.
#[test]
fn recognition_is_certain_only_with_a_version() {
    use crate::protocol::{Hint, Recognition};
    let says = |data: &[u8]| super::recognise(&Hint { local_port: Some(8080), ..Hint::of(data, Direction::Ingress) });
    assert_eq!(says(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Recognition::Certain);
    assert_eq!(says(b"HTTP/1.1 200 OK\r\n"), Recognition::Certain);
    assert_eq!(says(b"GET /x HTTP/1.0"), Recognition::Certain);
    // The line's end not captured, or a command of another text protocol.
    assert_eq!(says(b"GET /very/long/target"), Recognition::Plausible);
    assert_eq!(says(b"EHLO mail.example\r\n"), Recognition::Plausible);
    // A version on a later line does not count.
    assert_eq!(says(b"EHLO x\r\nHTTP/1.1"), Recognition::Plausible);
    for no in [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], b"*1\r\n$4\r\nPING\r\n", b"\x16\x03\x01\x02\x00", b"get k\r\n"]
    {
        assert_eq!(says(no), Recognition::No, "{:?}", String::from_utf8_lossy(no));
    }
}
