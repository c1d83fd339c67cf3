//! Message boundaries of one direction of a length-prefixed binary protocol
//! (Kafka, MongoDB, MQTT): a short head that says how long the body is,
//! then the body.
//!
//! The syscall probes capture only a prefix of each read/write
//! (`capture_size`) but report its full length, so a message is framed by
//! its length field and its uncaptured bytes are counted, not read. What was
//! captured of a body is kept as a sparse set of byte ranges (up to a
//! budget): a large message read by several syscalls leaves the captured
//! prefix of each, so a decoder that jumps by length fields (Kafka record
//! batches, BSON elements) can still read headers past the first chunk.

/// Longest head any protocol here has (MongoDB: 16 bytes).
pub(crate) const MAX_HEAD: usize = 16;

/// What a protocol says about the head bytes gathered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// At least this many head bytes are needed (more than gathered).
    Need(usize),
    /// The head is `head_len` bytes, and `body_len` bytes follow it.
    Frame { head_len: usize, body_len: u64 },
    /// No message of this protocol starts like this.
    Bad,
}

/// Reads a head from the bytes gathered so far (never more than `MAX_HEAD`).
pub(crate) type HeadFn = fn(&[u8]) -> Head;

/// A captured range of a body.
#[derive(Debug, Clone, Copy)]
struct Span {
    off: u64,
    at: u32,
    len: u32,
}

/// What was captured of a message body: sparse ranges, within a budget.
#[derive(Debug, Default)]
pub(crate) struct Body {
    buf: Vec<u8>,
    spans: Vec<Span>,
    len: u64,
}

/// Captured ranges kept per body: each syscall adds at most one.
const MAX_SPANS: usize = 32;

impl Body {
    /// The body's full length, as its head declared it.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `n` bytes at `off`, if they were captured (in one range).
    pub(crate) fn get(&self, off: u64, n: usize) -> Option<&[u8]> {
        let end = off.checked_add(n as u64)?;
        let s = self.spans.iter().find(|s| off >= s.off && end <= s.off + u64::from(s.len))?;
        let at = s.at as usize + (off - s.off) as usize;
        self.buf.get(at..at + n)
    }

    /// The captured bytes from offset 0 on, as far as they run contiguously.
    pub(crate) fn prefix(&self) -> &[u8] {
        match self.spans.first() {
            Some(s) if s.off == 0 => &self.buf[s.at as usize..(s.at + s.len) as usize],
            _ => &[],
        }
    }

    /// Every byte of the body was captured.
    pub(crate) fn is_whole(&self) -> bool {
        self.prefix().len() as u64 == self.len
    }

    fn clear(&mut self, len: u64) {
        self.buf.clear();
        self.spans.clear();
        self.len = len;
    }

    /// Keeps `data` (captured at body offset `off`) as far as the budget allows.
    fn keep(&mut self, off: u64, data: &[u8], budget: usize) {
        let room = budget.saturating_sub(self.buf.len()).min(data.len());
        if room == 0 {
            return;
        }
        let data = &data[..room];
        let end = self.buf.len();
        let full = self.spans.len() >= MAX_SPANS;
        match self.spans.last_mut() {
            Some(last) if last.off + u64::from(last.len) == off && (last.at + last.len) as usize == end => {
                last.len += room as u32;
            }
            _ if full => return,
            _ => self.spans.push(Span { off, at: end as u32, len: room as u32 }),
        }
        self.buf.extend_from_slice(data);
    }

    /// A body made of the given bytes, all captured (tests, fuzzing).
    #[cfg(test)]
    pub(crate) fn whole(data: &[u8]) -> Body {
        let mut b = Body::default();
        b.clear(data.len() as u64);
        b.keep(0, data, usize::MAX);
        b
    }
}

/// One framed message.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub head: &'a [u8],
    pub body: &'a Body,
    /// Timestamp of the chunk where the message started.
    pub start_ns: u64,
    /// Timestamp of the chunk where its last byte was.
    pub end_ns: u64,
}

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every byte was framed; the chunk may end inside a message.
    Framed,
    /// Uncaptured bytes hid where the next message starts.
    TailLost,
    /// A head no message can have: not a message boundary.
    Garbage,
}

/// Frames one direction of a connection.
#[derive(Debug)]
pub(crate) struct Framer {
    head_fn: HeadFn,
    /// Body bytes kept per message.
    budget: usize,
    head: [u8; MAX_HEAD],
    head_len: usize,
    /// The current head's length, once known.
    head_total: usize,
    in_body: bool,
    pos: u64,
    body: Body,
    start_ns: u64,
}

impl Framer {
    pub(crate) fn new(head_fn: HeadFn, budget: usize) -> Self {
        Framer {
            head_fn,
            budget,
            head: [0; MAX_HEAD],
            head_len: 0,
            head_total: 0,
            in_body: false,
            pos: 0,
            body: Body::default(),
            start_ns: 0,
        }
    }

    /// Forgets any message in progress: the next byte starts a message.
    pub(crate) fn reset(&mut self) {
        self.head_len = 0;
        self.head_total = 0;
        self.in_body = false;
        self.body.clear(0);
        if self.body.buf.capacity() > 4 * self.budget.min(64 * 1024) {
            self.body.buf = Vec::new();
        }
    }

    /// Between messages: the next byte starts one.
    #[cfg(test)]
    pub(crate) fn at_boundary(&self) -> bool {
        !self.in_body && self.head_len == 0
    }

    /// Frames `data` (the captured prefix of a chunk, timestamp `ts`) and
    /// then `uncaptured` more bytes, calling `on` with each message
    /// completed.
    pub(crate) fn feed(&mut self, data: &[u8], uncaptured: u64, ts: u64, on: &mut dyn FnMut(Frame<'_>)) -> Outcome {
        let mut i = 0;
        while i < data.len() {
            if !self.in_body {
                if self.head_len == 0 {
                    self.start_ns = ts;
                }
                match (self.head_fn)(&self.head[..self.head_len]) {
                    Head::Bad => {
                        self.reset();
                        return Outcome::Garbage;
                    }
                    Head::Need(n) if n > MAX_HEAD || n <= self.head_len => {
                        self.reset();
                        return Outcome::Garbage;
                    }
                    Head::Need(n) => {
                        let take = (n - self.head_len).min(data.len() - i);
                        self.head[self.head_len..self.head_len + take].copy_from_slice(&data[i..i + take]);
                        self.head_len += take;
                        i += take;
                        continue;
                    }
                    Head::Frame { head_len, body_len } => {
                        if head_len != self.head_len {
                            self.reset();
                            return Outcome::Garbage;
                        }
                        self.start_body(body_len, ts, on);
                        continue;
                    }
                }
            }
            let remaining = self.body.len - self.pos;
            let take = remaining.min((data.len() - i) as u64) as usize;
            self.body.keep(self.pos, &data[i..i + take], self.budget);
            self.pos += take as u64;
            i += take;
            if self.pos == self.body.len {
                self.emit(ts, on);
            }
        }
        // A head completed by the chunk's last captured byte.
        if !self.in_body && self.head_len > 0 {
            match (self.head_fn)(&self.head[..self.head_len]) {
                Head::Frame { head_len, body_len } if head_len == self.head_len => self.start_body(body_len, ts, on),
                Head::Need(n) if n > self.head_len && n <= MAX_HEAD => {}
                _ => {
                    self.reset();
                    return Outcome::Garbage;
                }
            }
        }
        if uncaptured == 0 {
            return Outcome::Framed;
        }
        if self.in_body && self.body.len - self.pos >= uncaptured {
            self.pos += uncaptured;
            if self.pos == self.body.len {
                self.emit(ts, on);
            }
            return Outcome::Framed;
        }
        if self.in_body {
            // The message ends inside the uncaptured bytes; what follows it
            // cannot be found.
            self.pos = self.body.len;
            self.emit(ts, on);
        }
        self.reset();
        Outcome::TailLost
    }

    fn start_body(&mut self, body_len: u64, ts: u64, on: &mut dyn FnMut(Frame<'_>)) {
        self.head_total = self.head_len;
        self.in_body = true;
        self.pos = 0;
        self.body.clear(body_len);
        if body_len == 0 {
            self.emit(ts, on);
        }
    }

    fn emit(&mut self, ts: u64, on: &mut dyn FnMut(Frame<'_>)) {
        on(Frame { head: &self.head[..self.head_total], body: &self.body, start_ns: self.start_ns, end_ns: ts });
        self.in_body = false;
        self.head_len = 0;
        self.head_total = 0;
        self.body.clear(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-byte big-endian length head.
    fn head2(h: &[u8]) -> Head {
        match h {
            [a, b] if *a == 0xff => {
                let _ = b;
                Head::Bad
            }
            [a, b] => Head::Frame { head_len: 2, body_len: u64::from(u16::from_be_bytes([*a, *b])) },
            _ => Head::Need(2),
        }
    }

    fn frames(f: &mut Framer, data: &[u8], uncaptured: u64) -> (Vec<(Vec<u8>, u64, bool)>, Outcome) {
        let mut out = Vec::new();
        let o = f.feed(data, uncaptured, 1, &mut |fr| {
            out.push((fr.body.prefix().to_vec(), fr.body.len(), fr.body.is_whole()))
        });
        (out, o)
    }

    #[test]
    fn frames_split_and_uncaptured_messages() {
        let mut f = Framer::new(head2, 8);
        let (out, o) = frames(&mut f, &[0, 3, b'a', b'b', b'c', 0], 0);
        assert_eq!(o, Outcome::Framed);
        assert_eq!(out, [(b"abc".to_vec(), 3, true)]);
        let (out, _) = frames(&mut f, &[0], 0);
        assert_eq!(out, [(vec![], 0, true)]);
        // 20-byte body, 2 captured, 18 counted; budget 8.
        let (out, o) = frames(&mut f, &[0, 20, 1, 2], 18);
        assert_eq!((out.len(), o), (1, Outcome::Framed));
        assert_eq!(out[0], (vec![1, 2], 20, false));
        // The uncaptured tail runs past the message: the next boundary is lost.
        let (out, o) = frames(&mut f, &[0, 2, 9], 5);
        assert_eq!((out.len(), o), (1, Outcome::TailLost));
        assert!(f.at_boundary());
        let (_, o) = frames(&mut f, &[0xff, 0], 0);
        assert_eq!(o, Outcome::Garbage);
    }

    #[test]
    fn sparse_body_keeps_each_captured_prefix() {
        let mut f = Framer::new(head2, 64);
        let mut seen = None;
        let mut on = |fr: Frame<'_>| {
            seen = Some((
                fr.body.get(0, 2).map(<[u8]>::to_vec),
                fr.body.get(10, 2).map(<[u8]>::to_vec),
                fr.body.get(4, 2).is_none(),
            ))
        };
        // Body bytes 0-1 captured, 2-9 not; 10-11 captured, 12-19 not.
        assert_eq!(f.feed(&[0, 20, 1, 2], 8, 1, &mut on), Outcome::Framed);
        assert_eq!(f.feed(&[10, 11], 8, 2, &mut on), Outcome::Framed);
        assert_eq!(seen, Some((Some(vec![1, 2]), Some(vec![10, 11]), true)));
    }
}
