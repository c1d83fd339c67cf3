//! Bodies kept for the few exchanges a layer above asks for (LLM API calls,
//! whose token counts are in the bodies). Every other body is counted and
//! skipped, never stored.

use std::fmt;

/// Decides from a request head whether its exchange's bodies are kept.
/// Called for every request head on every connection, so it must be cheap
/// when the answer is no.
pub trait BodyPolicy: fmt::Debug + Send + Sync {
    /// Most bytes kept per body of this exchange; 0 keeps nothing.
    fn keep_limit(&self, method: &str, target: &str, host: Option<&str>) -> usize;
}

/// One message's body as kept: its first bytes (`head`), then `skipped`
/// bytes not kept (over the limit, or never captured by the kernel), then its
/// last bytes (`tail`). Chunked framing is removed; content coding is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptBody {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    pub skipped: u64,
    /// The message ended as its framing said (or, for a response delimited
    /// by close, at the close); false when cut short or lost.
    pub complete: bool,
    limit: usize,
}

impl KeptBody {
    fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Appends captured payload: the head fills first, then the tail keeps
    /// the latest bytes (where usage totals sit in streams and JSON alike).
    pub(super) fn push(&mut self, data: &[u8]) {
        let half = self.limit / 2;
        let mut data = data;
        if self.head.len() < half && self.tail.is_empty() && self.skipped == 0 {
            let take = data.len().min(half - self.head.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if data.is_empty() {
            return;
        }
        self.tail.extend_from_slice(data);
        // Trim in halves so that appending stays amortised O(1) per byte.
        if self.tail.len() > 2 * half.max(1) {
            let cut = self.tail.len() - half;
            self.tail.drain(..cut);
            self.skipped += cut as u64;
        }
    }

    /// Payload bytes that moved but were not captured: a hole in the body.
    pub(super) fn lose(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        // What came before the hole cannot be joined to what comes after:
        // the tail restarts so head ++ hole ++ tail stays the body's order.
        self.skipped += self.tail.len() as u64 + n;
        self.tail.clear();
    }

    /// Bytes held in memory.
    pub fn kept_len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

/// What is kept of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptBodies {
    pub request: KeptBody,
    pub response: KeptBody,
    pub request_content_encoding: Option<String>,
    pub response_content_type: Option<String>,
    pub response_content_encoding: Option<String>,
    /// Timestamp of the chunk carrying the final response's first body byte
    /// (a stream's first event).
    pub response_body_start_ns: Option<u64>,
}

impl KeptBodies {
    pub(super) fn body_mut(&mut self, kind: super::MessageKind) -> &mut KeptBody {
        match kind {
            super::MessageKind::Request => &mut self.request,
            super::MessageKind::Response => &mut self.response,
        }
    }

    pub(super) fn new(limit: usize, request_content_encoding: &ShortValue) -> Self {
        Self {
            request: KeptBody::new(limit),
            response: KeptBody::new(limit),
            request_content_encoding: request_content_encoding.to_string_opt(),
            ..Self::default()
        }
    }
}

/// A header value copied without allocating (heads of exchanges nobody
/// keeps bodies for are parsed by the million). Longer values are cut.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ShortValue {
    len: u8,
    bytes: [u8; 63],
}

impl Default for ShortValue {
    fn default() -> Self {
        Self { len: 0, bytes: [0; 63] }
    }
}

impl fmt::Debug for ShortValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

impl ShortValue {
    pub(super) fn new(value: &[u8]) -> Self {
        let mut v = Self::default();
        let n = value.len().min(v.bytes.len());
        v.bytes[..n].copy_from_slice(&value[..n]);
        v.len = n as u8;
        v
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(super) fn to_string_opt(self) -> Option<String> {
        (self.len > 0).then(|| String::from_utf8_lossy(self.as_bytes()).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_then_rolling_tail() {
        let mut b = KeptBody::new(8);
        b.push(b"abcdef");
        assert_eq!((b.head.as_slice(), b.tail.as_slice(), b.skipped), (&b"abcd"[..], &b"ef"[..], 0));
        b.push(b"ghijklmn");
        // head keeps its 4; the tail keeps the latest 4..8 bytes, the rest is skipped.
        assert_eq!(b.head, b"abcd");
        assert!(b.tail.len() <= 8 && b.tail.ends_with(b"mn"), "{b:?}");
        assert_eq!(b.skipped as usize + b.kept_len(), 14);
    }

    #[test]
    fn a_hole_separates_head_and_tail() {
        let mut b = KeptBody::new(100);
        b.push(b"{\"model\":");
        b.lose(10);
        b.push(b"\"usage\":{}}");
        assert_eq!(b.head, b"{\"model\":");
        assert_eq!(b.tail, b"\"usage\":{}}");
        assert_eq!(b.skipped, 10);
    }

    #[test]
    fn short_values_are_cut_not_allocated() {
        let v = ShortValue::new(&[b'x'; 100]);
        assert_eq!(v.as_bytes().len(), 63);
        assert_eq!(ShortValue::new(b" gzip ").to_string_opt().as_deref(), Some("gzip"));
        assert_eq!(ShortValue::default().to_string_opt(), None);
    }
}
