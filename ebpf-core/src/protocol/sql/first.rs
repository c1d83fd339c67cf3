//! A SQL connection's first bytes, gathered while too few to tell its first
//! message (PostgreSQL's startup packet, MySQL's greeting or login): a
//! driver may write even those piecemeal. Both parsers gather them the same
//! way; what the bytes then are is each parser's to say.

use crate::protocol::Chunk;

/// Bytes enough to recognise a first message.
const ENOUGH: usize = 8;

/// What gathering a chunk gave.
#[derive(Debug)]
pub(crate) enum Gathered {
    /// Still too few bytes.
    More,
    /// A chunk cut by the capture, or more than the limit in all: not a
    /// connection's first message.
    Refused,
    /// Enough bytes, with the time of the chunk that brought the first.
    Whole { bytes: Vec<u8>, ts_ns: u64 },
}

#[derive(Debug, Default)]
pub(crate) struct FirstBytes {
    bytes: Vec<u8>,
    ts_ns: u64,
}

impl FirstBytes {
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Adds `chunk`, refusing it past `max` bytes in all.
    pub(crate) fn gather(&mut self, chunk: &Chunk<'_>, max: usize) -> Gathered {
        if chunk.data.len() as u64 != chunk.total_len || self.bytes.len() + chunk.data.len() > max {
            return Gathered::Refused;
        }
        if self.bytes.is_empty() {
            self.ts_ns = chunk.ts_ns;
        }
        self.bytes.extend_from_slice(chunk.data);
        if self.bytes.len() < ENOUGH {
            return Gathered::More;
        }
        Gathered::Whole { bytes: std::mem::take(&mut self.bytes), ts_ns: self.ts_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Direction;

    fn chunk(ts_ns: u64, data: &[u8], total_len: u64) -> Chunk<'_> {
        Chunk { ts_ns, direction: Direction::Egress, data, total_len }
    }

    #[test]
    fn gathers_until_enough_keeping_the_first_time_and_refuses_cut_or_long_runs() {
        let mut f = FirstBytes::default();
        assert!(matches!(f.gather(&chunk(1, b"abc", 3), 16), Gathered::More));
        assert!(!f.is_empty());
        match f.gather(&chunk(2, b"defgh", 5), 16) {
            Gathered::Whole { bytes, ts_ns } => assert_eq!((bytes.as_slice(), ts_ns), (&b"abcdefgh"[..], 1)),
            other => panic!("{other:?}"),
        }
        assert!(f.is_empty());
        assert!(matches!(f.gather(&chunk(3, b"ab", 9), 16), Gathered::Refused), "cut by the capture");
        assert!(matches!(f.gather(&chunk(4, b"abcd", 4), 3), Gathered::Refused), "past the limit");
    }
}
