//! HPACK (RFC 7541) for an observer: one decoder per direction of a
//! connection, keeping only what spans need.
//!
//! Why not a crate's decoder: every candidate on crates.io fails one of the
//! things an observer on a busy host needs (measured in the commit that added
//! this file). `hpack` 0.3 and its forks `hpack-patched`/`fluke-hpack` are
//! unmaintained and panic on a one-byte block (`0x3f`, RUSTSEC-2023-0085);
//! `httlib-hpack` panics on `0x3f`, `0x41` and `0x1f`; `hpack_codec` 0.1
//! overflows a shift on long integers and limits tables to u16; `loona-hpack`
//! does not panic but rebuilds its Huffman tables for every string (about
//! 340 µs for a 154-byte nginx response block, 100 times the others); `h2`
//! keeps its decoder private even with its `unstable` feature. And none can
//! do what a connection joined mid-way needs: decode the fields that refer to
//! the static table or are literal while the dynamic table entries from
//! before the join stay unknown. So the representation layer and table are
//! here (small, checked arithmetic, fuzzed); the Huffman code comes from the
//! `httlib-huffman` crate.
//!
//! Two further choices follow from observing rather than serving:
//! - Only the values of the few fields spans use are decoded and kept, in the
//!   table too (`Name`); every other entry keeps its name class and size, so
//!   cookies and authorization values are never held in memory.
//! - The table is a newest-first list of the entries we saw inserted, plus
//!   an "unknown tail" flag for older entries we never saw (a connection
//!   joined mid-way, or after lost bytes). Entries are only ever added at the
//!   front, so our list is always a prefix of the peer's table, and an index
//!   into it is exact whatever the peer's size limit: a wrong guess about that
//!   limit can only make us forget or keep too much, never give a wrong
//!   value. An index past our list is `Unknown` while the tail is unknown, and
//!   a decoding error (the table is reset to unknown) otherwise.

use std::collections::VecDeque;

use super::MAX_PATH_BYTES;

/// The table size every encoder starts with (RFC 7541 §4.2, RFC 9113 §6.5.2).
pub(super) const DEFAULT_TABLE_SIZE: usize = 4096;

/// Largest dynamic table we follow in full. A peer may allow up to 4 GiB; past
/// this the oldest entries are forgotten (and become unknown) instead of
/// growing memory: 64 KiB holds at most 2,048 entries.
pub(super) const MAX_FOLLOWED_TABLE_SIZE: usize = 64 * 1024;

/// Per-entry overhead counted by HPACK (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Longest kept value of the fields other than `:path` (authority, host,
/// content-type, ...): a DNS name is at most 253 bytes, plus a port.
const MAX_VALUE_BYTES: usize = 256;

/// The header fields whose values we keep. Everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Authority,
    Method,
    Path,
    Scheme,
    Status,
    ContentType,
    GrpcStatus,
    Host,
    Other,
    /// A dynamic table entry inserted before we joined: its name is unknown.
    Unknown,
}

impl Name {
    fn classify(name: &[u8]) -> Name {
        // HTTP/2 field names are lower case (RFC 9113 §8.2.1); anything else
        // is not one of ours.
        match name {
            b":authority" => Name::Authority,
            b":method" => Name::Method,
            b":path" => Name::Path,
            b":scheme" => Name::Scheme,
            b":status" => Name::Status,
            b"content-type" => Name::ContentType,
            b"grpc-status" => Name::GrpcStatus,
            b"host" => Name::Host,
            _ => Name::Other,
        }
    }

    fn keeps_value(self) -> bool {
        !matches!(self, Name::Other | Name::Unknown)
    }
}

/// A field's value as far as the decoder knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value<'a> {
    /// Exact (for `:path`, without its query; long values cut, see `keep`).
    Known(&'a [u8]),
    /// The field refers to a table entry we never saw.
    Unknown,
    /// Not decoded: a field spans do not use.
    Skipped,
}

/// Why a header block could not be decoded to its end. After any of these
/// the direction's table is unknown (`Decoder::forget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("HPACK integer longer than 32 bits")]
    IntegerOverflow,
    #[error("HPACK block ends inside a field")]
    Truncated,
    #[error("HPACK index {0} is not in the table")]
    BadIndex(u32),
    #[error("invalid Huffman string in HPACK block")]
    BadHuffman,
}

#[derive(Debug)]
struct Entry {
    name: Name,
    /// `None` when the name came from an entry we never saw.
    name_len: Option<usize>,
    /// Name length + value length + 32, as the peer counts it; a lower bound
    /// when the name length is unknown.
    size: usize,
    /// Only for names that keep values, processed by `keep`.
    value: Option<Box<[u8]>>,
}

/// One direction's HPACK decoding context.
#[derive(Debug)]
pub(super) struct Decoder {
    /// Newest first.
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes (a lower bound, see `Entry::size`).
    size: usize,
    /// The peer's current maximum table size: the last size update seen,
    /// else the default.
    max_size: usize,
    /// Entries older than ours may exist.
    unknown_tail: bool,
    /// Scratch for Huffman decoding, reused.
    scratch: Vec<u8>,
}

impl Decoder {
    /// A table known from the connection's start: empty.
    pub(super) fn new() -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            unknown_tail: false,
            scratch: Vec::new(),
        }
    }

    /// A table whose content we do not know (joined mid-way).
    pub(super) fn unknown() -> Self {
        let mut d = Self::new();
        d.forget();
        d
    }

    /// Everything before now is unknown (lost bytes, or a decoding error).
    pub(super) fn forget(&mut self) {
        self.entries.clear();
        self.entries.shrink_to(16);
        self.size = 0;
        self.unknown_tail = true;
    }

    /// Whether every entry the peer may refer to is known.
    #[cfg(test)]
    pub(super) fn is_known(&self) -> bool {
        !self.unknown_tail
    }

    /// Decodes one complete header block, calling `field` for each field in
    /// order. On error, the fields before it were exact and have been
    /// reported; the table is then unknown.
    pub(super) fn decode(&mut self, block: &[u8], mut field: impl FnMut(Name, Value<'_>)) -> Result<(), HpackError> {
        let result = self.decode_fields(block, &mut field);
        if result.is_err() {
            self.forget();
        }
        result
    }

    fn decode_fields(&mut self, block: &[u8], field: &mut impl FnMut(Name, Value<'_>)) -> Result<(), HpackError> {
        let mut at = 0;
        while let Some(&first) = block.get(at) {
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = read_int(block, &mut at, 7)?;
                match self.lookup(index)? {
                    Some((name, value)) => field(name, value),
                    None => field(Name::Unknown, Value::Unknown),
                }
            } else if first & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                self.literal(block, &mut at, 6, true, field)?;
            } else if first & 0x20 != 0 {
                // Dynamic table size update (§6.3).
                let size = read_int(block, &mut at, 5)? as usize;
                self.resize(size);
            } else {
                // Literal without indexing or never indexed (§6.2.2, §6.2.3).
                self.literal(block, &mut at, 4, false, field)?;
            }
        }
        Ok(())
    }

    /// Index 1..=61 is the static table, 62.. the dynamic one. `None` means
    /// an entry from before we joined.
    fn lookup(&self, index: u32) -> Result<Option<(Name, Value<'_>)>, HpackError> {
        let i = index as usize;
        if i == 0 {
            return Err(HpackError::BadIndex(index));
        }
        if let Some(&(name, value)) = STATIC_TABLE.get(i - 1) {
            let kind = Name::classify(name.as_bytes());
            let value = if kind.keeps_value() { Value::Known(value.as_bytes()) } else { Value::Skipped };
            return Ok(Some((kind, value)));
        }
        match self.entries.get(i - 1 - STATIC_TABLE.len()) {
            Some(e) => Ok(Some((e.name, e.value.as_deref().map_or(Value::Skipped, Value::Known)))),
            None if self.unknown_tail => Ok(None),
            None => Err(HpackError::BadIndex(index)),
        }
    }

    /// Name length of the entry at `index`, for sizing a new entry that
    /// reuses its name; `None` for an unknown entry.
    fn name_len(&self, index: u32) -> Result<Option<usize>, HpackError> {
        let i = index as usize;
        if let Some(&(name, _)) = STATIC_TABLE.get(i.wrapping_sub(1)) {
            return Ok(Some(name.len()));
        }
        match self.entries.get(i.wrapping_sub(1 + STATIC_TABLE.len())) {
            Some(e) => Ok(e.name_len),
            None if self.unknown_tail && i > STATIC_TABLE.len() => Ok(None),
            None => Err(HpackError::BadIndex(index)),
        }
    }

    fn literal(
        &mut self,
        block: &[u8],
        at: &mut usize,
        prefix: u8,
        index_it: bool,
        field: &mut impl FnMut(Name, Value<'_>),
    ) -> Result<(), HpackError> {
        let name_index = read_int(block, at, prefix)?;
        let (name, name_len) = if name_index == 0 {
            let raw = read_string(block, at)?;
            let decoded = decode_string(raw, &mut self.scratch)?;
            (Name::classify(decoded), Some(decoded.len()))
        } else {
            let name = match self.lookup(name_index)? {
                Some((name, _)) => name,
                None => Name::Unknown,
            };
            (name, self.name_len(name_index)?)
        };
        let raw = read_string(block, at)?;
        if !name.keeps_value() && !index_it {
            // Never decoded: a value spans do not use and the table does
            // not need.
            field(name, Value::Skipped);
            return Ok(());
        }
        let value = decode_string(raw, &mut self.scratch)?;
        let value_len = value.len();
        let kept = name.keeps_value().then(|| keep(name, value));
        match &kept {
            Some(v) => field(name, Value::Known(v)),
            None => field(name, Value::Skipped),
        }
        if index_it {
            // An unknown name is at least one byte long: the size is then a
            // lower bound, which can only make us keep more entries than
            // the peer (harmless, see the module docs).
            let size = name_len.unwrap_or(1) + value_len + ENTRY_OVERHEAD;
            self.insert(Entry { name, name_len, size, value: kept.map(Vec::into_boxed_slice) });
        }
        Ok(())
    }

    fn insert(&mut self, entry: Entry) {
        let limit = self.max_size.min(MAX_FOLLOWED_TABLE_SIZE);
        if entry.size > self.max_size {
            // §4.4: an entry larger than the table empties it.
            self.entries.clear();
            self.size = 0;
            self.unknown_tail = false;
            return;
        }
        self.size += entry.size;
        self.entries.push_front(entry);
        self.evict(limit);
    }

    fn resize(&mut self, size: usize) {
        self.max_size = size;
        if size == 0 {
            self.unknown_tail = false;
        }
        self.evict(size.min(MAX_FOLLOWED_TABLE_SIZE));
    }

    fn evict(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size,
                None => {
                    self.size = 0;
                    break;
                }
            }
            if limit < self.max_size {
                // Forgotten by our cap, not by the peer.
                self.unknown_tail = true;
            }
        }
        // No room left for even an empty entry older than ours: whatever we
        // did not see has been evicted by the peer too. (`size` is a lower
        // bound, so this never clears the flag too early for the limit we
        // believe in; if the peer's limit is larger than we believe, a later
        // index past our list is caught as an error and the table reset.)
        if self.unknown_tail && self.size + ENTRY_OVERHEAD > self.max_size && self.max_size <= MAX_FOLLOWED_TABLE_SIZE {
            self.unknown_tail = false;
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The part of a value kept: `:path` without its query (never exported) and
/// cut to `MAX_PATH_BYTES`, others cut to `MAX_VALUE_BYTES`.
fn keep(name: Name, value: &[u8]) -> Vec<u8> {
    let (value, max) = match name {
        Name::Path => {
            let end = memchr::memchr2(b'?', b'#', value).unwrap_or(value.len());
            (&value[..end], MAX_PATH_BYTES)
        }
        _ => (value, MAX_VALUE_BYTES),
    };
    value[..value.len().min(max)].to_vec()
}

/// An HPACK integer with an `prefix`-bit prefix (§5.1) at `*at`.
fn read_int(block: &[u8], at: &mut usize, prefix: u8) -> Result<u32, HpackError> {
    let first = *block.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let mask = (1u16 << prefix) as u8 - 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value as u32);
    }
    // At most five continuation bytes: 35 bits, checked against u32 below.
    for shift in (0..35).step_by(7) {
        let b = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        value += u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| HpackError::IntegerOverflow);
        }
    }
    Err(HpackError::IntegerOverflow)
}

/// A string literal (§5.2): (Huffman-coded, raw bytes).
fn read_string<'a>(block: &'a [u8], at: &mut usize) -> Result<(bool, &'a [u8]), HpackError> {
    let huffman = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(block, at, 7)? as usize;
    let end = at.checked_add(len).filter(|&end| end <= block.len()).ok_or(HpackError::Truncated)?;
    let raw = &block[*at..end];
    *at = end;
    Ok((huffman, raw))
}

fn decode_string<'a>((huffman, raw): (bool, &'a [u8]), scratch: &'a mut Vec<u8>) -> Result<&'a [u8], HpackError> {
    if !huffman {
        return Ok(raw);
    }
    scratch.clear();
    httlib_huffman::decode(raw, scratch, httlib_huffman::DecoderSpeed::FiveBits).map_err(|_| HpackError::BadHuffman)?;
    Ok(scratch)
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Result<Vec<(Name, Option<String>)>, HpackError> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                n,
                match v {
                    Value::Known(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    Value::Unknown => Some("?".into()),
                    Value::Skipped => None,
                },
            ))
        })?;
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// RFC 7541 C.4: three requests with Huffman coding, one connection.
    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new();
        let b1 = [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        assert_eq!(
            decode_all(&mut d, &b1).unwrap(),
            [
                (Name::Method, s("GET")),
                (Name::Scheme, s("http")),
                (Name::Path, s("/")),
                (Name::Authority, s("www.example.com")),
            ]
        );
        assert_eq!((d.len(), d.size), (1, 57));
        let b2 = [0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(
            decode_all(&mut d, &b2).unwrap(),
            [
                (Name::Method, s("GET")),
                (Name::Scheme, s("http")),
                (Name::Path, s("/")),
                (Name::Authority, s("www.example.com")),
                (Name::Other, None),
            ]
        );
        assert_eq!((d.len(), d.size), (2, 110));
        let b3 = [
            0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f, 0x89, 0x25, 0xa8, 0x49,
            0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
        ];
        assert_eq!(
            decode_all(&mut d, &b3).unwrap(),
            [
                (Name::Method, s("GET")),
                (Name::Scheme, s("https")),
                (Name::Path, s("/index.html")),
                (Name::Authority, s("www.example.com")),
                (Name::Other, None),
            ]
        );
        assert_eq!((d.len(), d.size), (3, 164));
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-byte table, so
    /// entries are evicted.
    #[test]
    fn rfc7541_c6_responses_with_eviction() {
        let mut d = Decoder::new();
        d.resize(256);
        let b1 = [
            0x48, 0x82, 0x64, 0x02, 0x58, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b, 0x61, 0x96, 0xd0, 0x7a, 0xbe, 0x94, 0x10,
            0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b, 0x81, 0x66, 0xe0, 0x82, 0xa6, 0x2d, 0x1b, 0xff, 0x6e,
            0x91, 0x9d, 0x29, 0xad, 0x17, 0x18, 0x63, 0xc7, 0x8f, 0x0b, 0x97, 0xc8, 0xe9, 0xae, 0x82, 0xae, 0x43, 0xd3,
        ];
        let f = decode_all(&mut d, &b1).unwrap();
        assert_eq!(f[0], (Name::Status, s("302")));
        assert_eq!((d.len(), d.size), (4, 222));
        let b2 = [0x48, 0x83, 0x64, 0x0e, 0xff, 0xc1, 0xc0, 0xbf];
        let f = decode_all(&mut d, &b2).unwrap();
        assert_eq!(f[0], (Name::Status, s("307")));
        assert_eq!((d.len(), d.size), (4, 222));
        let b3 = [
            0x88, 0xc1, 0x61, 0x96, 0xd0, 0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b,
            0x81, 0x66, 0xe0, 0x84, 0xa6, 0x2d, 0x1b, 0xff, 0xc0, 0x5a, 0x83, 0x9b, 0xd9, 0xab, 0x77, 0xad, 0x94, 0xe7,
            0x82, 0x1d, 0xd7, 0xf2, 0xe6, 0xc7, 0xb3, 0x35, 0xdf, 0xdf, 0xcd, 0x5b, 0x39, 0x60, 0xd5, 0xaf, 0x27, 0x08,
            0x7f, 0x36, 0x72, 0xc1, 0xab, 0x27, 0x0f, 0xb5, 0x29, 0x1f, 0x95, 0x87, 0x31, 0x60, 0x65, 0xc0, 0x03, 0xed,
            0x4e, 0xe5, 0xb1, 0x06, 0x3d, 0x50, 0x07,
        ];
        let f = decode_all(&mut d, &b3).unwrap();
        assert_eq!(f[0], (Name::Status, s("200")));
        assert_eq!((d.len(), d.size), (3, 215));
    }

    #[test]
    fn unknown_table_gives_static_and_literal_fields_only() {
        let mut d = Decoder::unknown();
        // :method GET (static), an entry from before the join (index 62),
        // :path literal with static name, then an insert and a reference to it.
        let mut block = vec![0x82, 0xbe, 0x04, 0x06];
        block.extend_from_slice(b"/a?q=1");
        block.extend_from_slice(&[0x41, 0x03]);
        block.extend_from_slice(b"x.y");
        block.push(0xbe);
        assert_eq!(
            decode_all(&mut d, &block).unwrap(),
            [
                (Name::Method, s("GET")),
                (Name::Unknown, s("?")),
                (Name::Path, s("/a")),
                (Name::Authority, s("x.y")),
                (Name::Authority, s("x.y")),
            ]
        );
        // Index 63 is older than anything we saw.
        assert_eq!(decode_all(&mut d, &[0xbf]).unwrap(), [(Name::Unknown, s("?"))]);
        assert!(!d.is_known());
    }

    #[test]
    fn unknown_tail_ends_when_our_entries_fill_the_table() {
        let mut d = Decoder::unknown();
        let mut block = vec![0x20 | 0x1f, 100 - 31]; // size update: 100
        block.extend_from_slice(&[0x41, 0x03]);
        block.extend_from_slice(b"a.b"); // 10 + 3 + 32 = 45
        assert_eq!(decode_all(&mut d, &block).unwrap(), [(Name::Authority, s("a.b"))]);
        assert!(!d.is_known(), "45 + 32 <= 100: an unseen entry may still be there");
        assert_eq!(decode_all(&mut d, &[0x41, 0x03, b'c', b'.', b'd']).unwrap(), [(Name::Authority, s("c.d"))]);
        assert!(d.is_known(), "90 + 32 > 100: no room for anything we did not see");
        assert_eq!(decode_all(&mut d, &[0xc0]), Err(HpackError::BadIndex(64)));
        assert!(!d.is_known(), "errors forget the table");
    }

    #[test]
    fn malformed_blocks_are_errors() {
        for (block, err) in [
            (&[0x3f][..], HpackError::Truncated),
            (&[0x41], HpackError::Truncated),
            (&[0x1f], HpackError::Truncated),
            (&[0x80], HpackError::BadIndex(0)),
            (&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], HpackError::IntegerOverflow),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], HpackError::IntegerOverflow),
            (&[0x04, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff], HpackError::BadHuffman),
            (&[0x04, 0x7f, 0x00], HpackError::Truncated),
            (&[0xbe], HpackError::BadIndex(62)),
        ] {
            let mut d = Decoder::new();
            assert_eq!(decode_all(&mut d, block), Err(err), "{block:02x?}");
        }
    }

    #[test]
    fn values_of_other_fields_are_not_kept() {
        let mut d = Decoder::new();
        let mut block = vec![0x40, 0x06];
        block.extend_from_slice(b"cookie");
        block.push(0x06);
        block.extend_from_slice(b"secret");
        block.push(0xbe);
        assert_eq!(decode_all(&mut d, &block).unwrap(), [(Name::Other, None), (Name::Other, None)]);
        assert!(d.entries[0].value.is_none());
        assert_eq!(d.size, 6 + 6 + 32);
    }
}
