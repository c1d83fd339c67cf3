//! Message bodies: counted and skipped. Their payload bytes are handed to a
//! sink, which keeps them only for the exchanges a layer above asked for.

use super::error::{MessageKind, ParseError};

/// A chunk-size line longer than this is not a chunk-size line.
const MAX_CHUNK_EXT_BYTES: u16 = 4096;
/// Trailers are headers in all but name; hold them to the same bound.
const MAX_TRAILER_BYTES: u32 = super::MAX_HEAD_BYTES as u32;
/// 15 hex digits is 2^60 bytes: no real chunk is larger, and it cannot overflow.
const MAX_CHUNK_SIZE_DIGITS: u8 = 15;

/// How far one call got through a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Progress {
    /// Input bytes used; the rest belongs to the next message.
    pub consumed: u64,
    /// Payload bytes among them (chunk framing excluded).
    pub payload: u64,
    /// The body ended within them.
    pub done: bool,
}

#[derive(Debug)]
pub(super) enum Body {
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// No length given: a response that ends when the connection does.
    UntilClose,
}

impl Body {
    pub(super) fn chunked(message: MessageKind) -> Self {
        Body::Chunked(ChunkedDecoder::new(message))
    }

    pub(super) fn is_until_close(&self) -> bool {
        matches!(self, Body::UntilClose)
    }

    /// Consume captured body bytes from the front of `data`; `sink` gets the
    /// payload among them (chunk framing removed), in order.
    pub(super) fn feed(&mut self, data: &[u8], sink: impl FnMut(&[u8])) -> Result<Progress, ParseError> {
        match self {
            Body::Chunked(decoder) => decoder.feed(data, sink),
            _ => {
                let mut sink = sink;
                let progress = self.skip_counted(data.len() as u64);
                sink(&data[..progress.consumed as usize]);
                Ok(progress)
            }
        }
    }

    /// Consume up to `n` bytes that moved but were not captured. Only bytes
    /// whose value does not matter (payload) or is fixed by the grammar can be
    /// passed over: a chunked body stops before chunk framing, and the caller
    /// learns from `consumed < n` without `done` that the framing was lost.
    pub(super) fn skip(&mut self, n: u64) -> Progress {
        match self {
            Body::Chunked(decoder) => decoder.skip(n),
            _ => self.skip_counted(n),
        }
    }

    fn skip_counted(&mut self, n: u64) -> Progress {
        match self {
            Body::Length { remaining } => {
                let take = n.min(*remaining);
                *remaining -= take;
                Progress { consumed: take, payload: take, done: *remaining == 0 }
            }
            Body::UntilClose => Progress { consumed: n, payload: n, done: false },
            Body::Chunked(_) => Progress { consumed: 0, payload: 0, done: false },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size {
        value: u64,
        digits: u8,
    },
    Extension {
        value: u64,
        len: u16,
    },
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines until an empty one.
    Trailer {
        line_len: u32,
        total: u32,
    },
    Done,
}

/// Byte-at-a-time chunked decoder so that framing may be split anywhere
/// across syscalls without buffering; payload is skipped in bulk.
#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    state: ChunkState,
    message: MessageKind,
}

impl ChunkedDecoder {
    fn new(message: MessageKind) -> Self {
        ChunkedDecoder { state: ChunkState::Size { value: 0, digits: 0 }, message }
    }

    fn invalid(&self, reason: &'static str) -> ParseError {
        ParseError::InvalidChunk { message: self.message, reason }
    }

    fn feed(&mut self, data: &[u8], mut sink: impl FnMut(&[u8])) -> Result<Progress, ParseError> {
        let mut i = 0usize;
        let mut payload = 0u64;
        while i < data.len() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data { remaining } => {
                    let take = remaining.min((data.len() - i) as u64);
                    sink(&data[i..i + take as usize]);
                    i += take as usize;
                    payload += take;
                    self.state = if remaining == take {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data { remaining: remaining - take }
                    };
                }
                _ => {
                    self.framing_byte(data[i])?;
                    i += 1;
                }
            }
        }
        Ok(Progress { consumed: i as u64, payload, done: self.state == ChunkState::Done })
    }

    fn skip(&mut self, n: u64) -> Progress {
        let mut left = n;
        let mut payload = 0u64;
        while left > 0 {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data { remaining } => {
                    let take = remaining.min(left);
                    left -= take;
                    payload += take;
                    self.state = if remaining == take {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data { remaining: remaining - take }
                    };
                }
                // Senders put a chunk's data and its closing CRLF in one write,
                // so a capture cut inside the data usually also loses these two
                // bytes. Their value is fixed by the grammar, so passing over
                // them is not a guess.
                ChunkState::DataCr => {
                    left -= 1;
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    left -= 1;
                    self.state = ChunkState::Size { value: 0, digits: 0 };
                }
                // Chunk sizes and trailers: not ours to guess.
                _ => break,
            }
        }
        Progress { consumed: n - left, payload, done: self.state == ChunkState::Done }
    }

    fn framing_byte(&mut self, b: u8) -> Result<(), ParseError> {
        self.state = match self.state {
            ChunkState::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= MAX_CHUNK_SIZE_DIGITS {
                        return Err(self.invalid("chunk size too large"));
                    }
                    let digit = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        _ => b - b'A' + 10,
                    };
                    ChunkState::Size { value: (value << 4) | u64::from(digit), digits: digits + 1 }
                }
                _ if digits == 0 => return Err(self.invalid("missing chunk size")),
                b';' | b' ' | b'\t' => ChunkState::Extension { value, len: 0 },
                b'\r' => ChunkState::SizeLf { value },
                b'\n' => Self::after_size_line(value),
                _ => return Err(self.invalid("invalid character in chunk size")),
            },
            ChunkState::Extension { value, len } => match b {
                b'\n' => Self::after_size_line(value),
                _ if len >= MAX_CHUNK_EXT_BYTES => return Err(self.invalid("chunk extension too long")),
                _ => ChunkState::Extension { value, len: len + 1 },
            },
            ChunkState::SizeLf { value } => match b {
                b'\n' => Self::after_size_line(value),
                _ => return Err(self.invalid("expected LF after chunk size")),
            },
            ChunkState::DataCr => match b {
                b'\r' => ChunkState::DataLf,
                b'\n' => ChunkState::Size { value: 0, digits: 0 },
                _ => return Err(self.invalid("chunk data not followed by CRLF")),
            },
            ChunkState::DataLf => match b {
                b'\n' => ChunkState::Size { value: 0, digits: 0 },
                _ => return Err(self.invalid("chunk data not followed by CRLF")),
            },
            ChunkState::Trailer { line_len, total } => match b {
                b'\n' if line_len == 0 => ChunkState::Done,
                b'\n' => ChunkState::Trailer { line_len: 0, total },
                b'\r' => ChunkState::Trailer { line_len, total },
                _ if total >= MAX_TRAILER_BYTES => return Err(self.invalid("trailer section too large")),
                _ => ChunkState::Trailer { line_len: line_len + 1, total: total + 1 },
            },
            // `feed` handles these without coming here.
            state @ (ChunkState::Data { .. } | ChunkState::Done) => state,
        };
        Ok(())
    }

    fn after_size_line(value: u64) -> ChunkState {
        if value == 0 {
            ChunkState::Trailer { line_len: 0, total: 0 }
        } else {
            ChunkState::Data { remaining: value }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(wire: &[u8], step: usize) -> Result<(u64, u64, bool), ParseError> {
        let mut body = Body::chunked(MessageKind::Response);
        let (mut consumed, mut payload) = (0u64, 0u64);
        for piece in wire.chunks(step) {
            let p = body.feed(piece, |_| {})?;
            consumed += p.consumed;
            payload += p.payload;
            if p.done {
                return Ok((consumed, payload, true));
            }
        }
        Ok((consumed, payload, false))
    }

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let wire = b"5;a=b\r\nhello\r\n1A ; q=\"x;y\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT";
        for step in 1..wire.len() {
            assert_eq!(decode_split(wire, step).unwrap(), ((wire.len() - 4) as u64, 31, true), "step {step}");
        }
    }

    #[test]
    fn bare_lf_line_endings_are_tolerated() {
        assert_eq!(decode_split(b"3\nabc\n0\n\n", 1).unwrap(), (9, 3, true));
    }

    #[test]
    fn bad_size_lines_fail() {
        for wire in [&b"\r\n"[..], b"zz\r\n", b"-1\r\n", b"1234567890abcdef0\r\n", b"3\rX", b"3\r\nabcX"] {
            assert!(matches!(decode_split(wire, 1), Err(ParseError::InvalidChunk { .. })), "{wire:?}");
        }
    }

    #[test]
    fn skip_passes_payload_and_closing_crlf_only() {
        let mut body = Body::chunked(MessageKind::Response);
        body.feed(b"10\r\nabc", |_| {}).unwrap();
        // 13 payload bytes and the CRLF after them were not captured.
        let p = body.skip(15);
        assert_eq!((p.consumed, p.payload, p.done), (15, 13, false));
        let p = body.feed(b"0\r\n\r\n", |_| {}).unwrap();
        assert!(p.done);

        // Stops before the next chunk-size line, having passed the CRLF.
        let mut body = Body::chunked(MessageKind::Response);
        body.feed(b"4\r\nab", |_| {}).unwrap();
        let p = body.skip(9);
        assert_eq!((p.consumed, p.payload, p.done), (4, 2, false));
        let p = body.skip(5);
        assert_eq!((p.consumed, p.payload, p.done), (0, 0, false));
    }

    #[test]
    fn huge_extension_and_trailer_fail() {
        let mut wire = b"1;".to_vec();
        wire.resize(10_000, b'x');
        assert!(decode_split(&wire, 4096).is_err());
        let mut wire = b"0\r\nX: ".to_vec();
        wire.resize(100_000, b'y');
        assert!(decode_split(&wire, 4096).is_err());
    }

    #[test]
    fn the_sink_gets_payload_without_framing_at_every_split() {
        let wire = b"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            let mut body = Body::chunked(MessageKind::Response);
            let mut kept = Vec::new();
            for piece in wire.chunks(step) {
                body.feed(piece, |p| kept.extend_from_slice(p)).unwrap();
            }
            assert_eq!(kept, b"hello world", "step {step}");
        }
        let mut body = Body::Length { remaining: 3 };
        let mut kept = Vec::new();
        body.feed(b"abcdef", |p| kept.extend_from_slice(p)).unwrap();
        assert_eq!(kept, b"abc");
    }

    #[test]
    fn length_body_stops_at_its_end() {
        let mut body = Body::Length { remaining: 4 };
        let p = body.feed(b"abcdefg", |_| {}).unwrap();
        assert_eq!((p.consumed, p.payload, p.done), (4, 4, true));
    }
}
