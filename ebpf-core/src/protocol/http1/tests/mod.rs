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
    match role {
        Role::Server => Direction::Ingress,
        Role::Client => Direction::Egress,
    }
}

pub(super) fn response_dir(role: Role) -> Direction {
    match role {
        Role::Server => Direction::Egress,
        Role::Client => Direction::Ingress,
    }
}
