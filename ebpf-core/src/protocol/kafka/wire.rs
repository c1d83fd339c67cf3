//! Kafka's primitive types read from a sparsely captured body: fixed-width
//! big-endian integers, the classic (i16/i32-length) and compact
//! (unsigned-varint length + 1) strings, bytes and arrays of the flexible
//! versions, and tagged fields. A read that needs bytes that were not
//! captured, or that runs past the body, gives `None`; skipping a field
//! only needs its length to have been captured.

use crate::protocol::lenframe::Body;

/// Longest string kept (topic names are at most 249 characters).
pub(super) const MAX_NAME: usize = 255;

#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    body: &'a Body,
    pub pos: u64,
    /// Flexible version: compact lengths and tagged fields.
    pub flex: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn new(body: &'a Body, pos: u64, flex: bool) -> Self {
        Reader { body, pos, flex }
    }

    pub(super) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.body.get(self.pos, n)?;
        self.pos += n as u64;
        Some(b)
    }

    pub(super) fn skip(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.body.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    pub(super) fn i8(&mut self) -> Option<i8> {
        self.bytes(1).map(|b| b[0] as i8)
    }

    pub(super) fn i16(&mut self) -> Option<i16> {
        self.bytes(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn i32(&mut self) -> Option<i32> {
        self.bytes(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn uuid(&mut self) -> Option<[u8; 16]> {
        self.bytes(16).and_then(|b| b.try_into().ok())
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    pub(super) fn uvarint(&mut self) -> Option<u32> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.bytes(1)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// The length of a nullable string or bytes field: `Some(None)` for null.
    fn len(&mut self, wide: bool) -> Option<Option<u64>> {
        if self.flex {
            let n = self.uvarint()?;
            return Some(n.checked_sub(1).map(u64::from));
        }
        let n = if wide { self.i32()? } else { i32::from(self.i16()?) };
        match n {
            -1 => Some(None),
            n if n >= 0 => Some(Some(n as u64)),
            _ => None,
        }
    }

    /// A nullable string, if its bytes were captured and it is at most `max` long.
    pub(super) fn string(&mut self, max: usize) -> Option<Option<&'a [u8]>> {
        match self.len(false)? {
            None => Some(None),
            Some(n) if n as usize <= max => self.bytes(n as usize).map(Some),
            Some(_) => None,
        }
    }

    pub(super) fn skip_string(&mut self) -> Option<()> {
        let n = self.len(false)?.unwrap_or(0);
        self.skip(n)
    }

    /// The length of a nullable bytes field (records); the reader stays at its start.
    pub(super) fn bytes_len(&mut self) -> Option<Option<u64>> {
        self.len(true)
    }

    /// An array's element count: `Some(None)` for a null array.
    pub(super) fn array(&mut self) -> Option<Option<u32>> {
        if self.flex {
            let n = self.uvarint()?;
            return Some(n.checked_sub(1));
        }
        match self.i32()? {
            -1 => Some(None),
            n if n >= 0 => Some(Some(n as u32)),
            _ => None,
        }
    }

    /// Tagged fields (flexible versions only).
    pub(super) fn tags(&mut self) -> Option<()> {
        if !self.flex {
            return Some(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(u64::from(size))?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_and_compact_encodings() {
        let b = Body::whole(&[0, 3, b'a', b'b', b'c', 0xff, 0xff, 4, b'x', b'y', b'z', 0, 0x96, 0x01]);
        let mut r = Reader::new(&b, 0, false);
        assert_eq!(r.string(10), Some(Some(&b"abc"[..])));
        assert_eq!(r.string(10), Some(None));
        r.flex = true;
        assert_eq!(r.string(10), Some(Some(&b"xyz"[..])));
        assert_eq!(r.string(10), Some(None), "compact 0 is null");
        assert_eq!(r.uvarint(), Some(150));
        assert_eq!(r.i8(), None, "past the body");
    }
}
