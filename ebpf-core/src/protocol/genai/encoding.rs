//! Content-Encoding (gzip, deflate, br) undone, within bounds.
//!
//! A compressed body decodes only from its first byte through every byte
//! after, so a body with a hole (`skipped > 0`) is left alone. A body cut at
//! its end decodes as far as it goes. The output is kept like a kept body
//! (first half, last half of `max_body_bytes`), so a stream that inflates to
//! many MiB still yields its last events (where usage is); inflating stops
//! after `BOMB_FACTOR` times the budget, so a zip bomb costs bounded time.

use super::BodyBytes;
use std::borrow::Cow;
use std::io::Read;

/// Most decoded bytes looked at per kept byte budget (JSON and SSE streams
/// compress about 5-20x).
const BOMB_FACTOR: usize = 64;

/// A body ready for framing: like `BodyBytes`, but possibly decoded, and
/// with no hole made into one contiguous `head` (`tail` empty).
#[derive(Debug)]
pub struct Body<'a> {
    pub head: Cow<'a, [u8]>,
    pub tail: Cow<'a, [u8]>,
    pub skipped: u64,
    pub complete: bool,
}

impl Body<'_> {
    pub fn is_cut(&self) -> bool {
        self.skipped > 0 || !self.complete
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_empty() && self.skipped == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

fn coding(header: Option<&str>) -> Result<Coding, &'static str> {
    let mut found = Coding::Identity;
    for token in header.unwrap_or("").split(',').map(str::trim) {
        let next = if token.is_empty() || token.eq_ignore_ascii_case("identity") {
            continue;
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Coding::Gzip
        } else if token.eq_ignore_ascii_case("deflate") {
            Coding::Deflate
        } else if token.eq_ignore_ascii_case("br") {
            Coding::Brotli
        } else {
            return Err("unsupported content-encoding");
        };
        if found != Coding::Identity {
            return Err("unsupported content-encoding");
        }
        found = next;
    }
    Ok(found)
}

/// `body` decoded per its Content-Encoding, keeping at most `budget` bytes.
pub fn decode<'a>(body: &BodyBytes<'a>, encoding: Option<&str>, budget: usize) -> Result<Body<'a>, &'static str> {
    let coding = coding(encoding)?;
    if coding == Coding::Identity {
        return Ok(join(body));
    }
    if body.skipped > 0 {
        return Err("encoded body cut: not decoded");
    }
    let input = body.head.chain(body.tail);
    let decoder: Box<dyn Read + '_> = match coding {
        Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        // "deflate" is zlib-wrapped per RFC 9110, but some servers send raw
        // deflate: a zlib header is told by its checksum.
        Coding::Deflate if is_zlib(body.head) => Box::new(flate2::read::ZlibDecoder::new(input)),
        Coding::Deflate => Box::new(flate2::read::DeflateDecoder::new(input)),
        Coding::Brotli => Box::new(brotli_decompressor::Decompressor::new(input, 16 * 1024)),
        Coding::Identity => return Ok(join(body)),
    };
    inflate(decoder, body.complete, budget)
}

fn is_zlib(head: &[u8]) -> bool {
    match head {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// A body with no hole as one slice (copying only when a tail was kept apart).
fn join<'a>(body: &BodyBytes<'a>) -> Body<'a> {
    if body.skipped > 0 || body.tail.is_empty() {
        return Body {
            head: Cow::Borrowed(body.head),
            tail: Cow::Borrowed(body.tail),
            skipped: body.skipped,
            complete: body.complete,
        };
    }
    Body {
        head: Cow::Owned([body.head, body.tail].concat()),
        tail: Cow::Borrowed(&[]),
        skipped: 0,
        complete: body.complete,
    }
}

fn inflate(mut decoder: Box<dyn Read + '_>, complete: bool, budget: usize) -> Result<Body<'static>, &'static str> {
    let head_cap = budget / 2;
    let tail_cap = budget - head_cap;
    let limit = budget.saturating_mul(BOMB_FACTOR);
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut total = 0usize;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut ended = false;
    while total < limit {
        match decoder.read(&mut chunk) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => {
                total += n;
                let mut piece = &chunk[..n];
                let room = head_cap - head.len();
                if room > 0 {
                    let take = room.min(piece.len());
                    head.extend_from_slice(&piece[..take]);
                    piece = &piece[take..];
                }
                tail.extend_from_slice(piece);
                // Trim the tail only now and then, so keeping the last bytes stays linear.
                if tail.len() > 2 * tail_cap.max(chunk.len()) {
                    tail.drain(..tail.len() - tail_cap);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) if total == 0 => return Err("body could not be decoded"),
            Err(_) => break,
        }
    }
    if tail.len() > tail_cap {
        tail.drain(..tail.len() - tail_cap);
    }
    let skipped = (total - head.len() - tail.len()) as u64;
    if skipped == 0 {
        head.append(&mut tail);
    }
    Ok(Body { head: Cow::Owned(head), tail: Cow::Owned(tail), skipped, complete: complete && ended })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn body(bytes: &[u8]) -> BodyBytes<'_> {
        BodyBytes { head: bytes, tail: &[], skipped: 0, complete: true }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn codings() {
        assert_eq!(coding(None), Ok(Coding::Identity));
        assert_eq!(coding(Some(" GZIP ")), Ok(Coding::Gzip));
        assert_eq!(coding(Some("identity, br")), Ok(Coding::Brotli));
        assert!(coding(Some("zstd")).is_err());
        assert!(coding(Some("gzip, br")).is_err());
    }

    #[test]
    fn gzip_and_both_deflates_decode() {
        let data = b"{\"usage\": {\"prompt_tokens\": 3}}".repeat(10);
        let zipped = gzip(&data);
        let decoded = decode(&body(&zipped), Some("gzip"), 1 << 20).unwrap();
        assert_eq!((&*decoded.head, decoded.complete), (&data[..], true));
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&data).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(&*decode(&body(&zlib), Some("deflate"), 1 << 20).unwrap().head, &data[..]);
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(&*decode(&body(&raw), Some("deflate"), 1 << 20).unwrap().head, &data[..]);
    }

    #[test]
    fn big_output_keeps_head_and_tail_and_bombs_stop() {
        let mut data = b"START".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.extend_from_slice(b"END");
        let zipped = gzip(&data);
        let decoded = decode(&body(&zipped), Some("gzip"), 8192).unwrap();
        assert!(decoded.head.starts_with(b"START") && decoded.tail.ends_with(b"END"));
        assert_eq!((decoded.head.len(), decoded.tail.len()), (4096, 4096));
        assert_eq!(decoded.skipped, data.len() as u64 - 8192);
        assert!(decoded.complete);

        let bomb = gzip(&vec![0u8; 8192 * BOMB_FACTOR * 2]);
        let decoded = decode(&body(&bomb), Some("gzip"), 8192).unwrap();
        assert!(!decoded.complete, "stopped before the end");
    }

    #[test]
    fn cut_and_garbage_bodies() {
        let mut rng = fastrand::Rng::with_seed(7);
        let data: Vec<u8> = (0..10_000).map(|_| rng.alphanumeric() as u8).collect();
        let zipped = gzip(&data);
        let cut = BodyBytes { head: &zipped[..zipped.len() / 2], tail: &[], skipped: 0, complete: false };
        let decoded = decode(&cut, Some("gzip"), 1 << 20).unwrap();
        assert!(!decoded.complete && data.starts_with(&decoded.head));
        let holed = BodyBytes { head: &zipped[..10], tail: &zipped[20..], skipped: 10, complete: true };
        assert_eq!(decode(&holed, Some("gzip"), 1 << 20).unwrap_err(), "encoded body cut: not decoded");
        assert_eq!(decode(&body(b"not gzip at all"), Some("gzip"), 1 << 20).unwrap_err(), "body could not be decoded");
    }
}
