//! Replays of recorded traffic (`fixtures`) and hand-made streams
//! (`edge_cases`), incl. truncation and lost events.

mod edge_cases;
mod fixtures;
mod seam;

use super::{MemcachedError, MemcachedOperation, MemcachedParser};
use crate::protocol::{Chunk, Direction};

pub(super) struct Run {
    pub out: Vec<MemcachedOperation>,
    pub before_close: usize,
    pub errors: Vec<MemcachedError>,
    pub parser: MemcachedParser,
}

pub(super) fn run<'a>(
    mut parser: MemcachedParser,
    steps: impl IntoIterator<Item = (Direction, u64, &'a [u8], u64)>,
    close_ts: Option<u64>,
) -> Run {
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
