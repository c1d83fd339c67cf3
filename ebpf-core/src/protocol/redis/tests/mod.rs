//! Replays of recorded traffic (`fixtures`), hand-made edge cases
//! (`edge_cases`), truncation / lost events (`degraded`), and the spans
//! they give through the whole seam (`seam`).

mod degraded;
mod edge_cases;
mod fixtures;
mod seam;

use super::{RedisError, RedisOperation, RedisParser};
use crate::protocol::{Chunk, Direction};

pub(super) struct Run {
    pub out: Vec<RedisOperation>,
    pub before_close: usize,
    pub errors: Vec<RedisError>,
    pub parser: RedisParser,
}

/// Feeds `(direction, ts, data, total_len)` steps, then closes at `close_ts`.
pub(super) fn run<'a>(
    mut parser: RedisParser,
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
