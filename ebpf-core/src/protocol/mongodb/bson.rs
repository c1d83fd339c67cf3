//! Just enough BSON to walk a document's top-level elements by their
//! sizes, in a body captured only in part: each element's type, name and
//! where its value lies. Values are read only where the decoder asks for
//! one (`ok`, `code`, a command's collection), never filter documents.
//!
//! Hand-written rather than the `bson` crate: that crate decodes whole,
//! well-formed documents into owned values, whereas a captured command is
//! often cut at `capture_size` (a document can be read up to the cut), and
//! reading every value would be both wasted work and a privacy risk.

use crate::protocol::lenframe::Body;

/// Longest element name read (command names, field names).
const MAX_NAME: usize = 128;

/// A document: `len` bytes at `start` (its i32 length included).
#[derive(Debug, Clone, Copy)]
pub(super) struct Doc {
    pub start: u64,
    pub len: u64,
}

/// One element of a document.
#[derive(Debug, Clone, Copy)]
pub(super) struct Element<'a> {
    pub typ: u8,
    pub name: &'a [u8],
    /// Where the value starts and how long it is.
    pub value: u64,
    pub value_len: u64,
}

pub(super) fn i32_at(body: &Body, at: u64) -> Option<i32> {
    body.get(at, 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn i64_at(body: &Body, at: u64) -> Option<i64> {
    body.get(at, 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes)
}

/// A NUL-terminated string at `at` (at most `max` bytes): its bytes and
/// the offset after the NUL.
pub(super) fn cstring(body: &Body, at: u64, max: usize) -> Option<(&[u8], u64)> {
    for n in 0..=max {
        if body.get(at + n as u64, 1)?[0] == 0 {
            return Some((body.get(at, n)?, at + n as u64 + 1));
        }
    }
    None
}

impl Doc {
    /// The document whose length field is at `at`, if it fits in `limit`.
    pub(super) fn at(body: &Body, at: u64, limit: u64) -> Option<Doc> {
        let len = i32_at(body, at)?;
        (len >= 5 && at + len as u64 <= limit).then_some(Doc { start: at, len: len as u64 })
    }

    pub(super) fn end(&self) -> u64 {
        self.start + self.len
    }

    /// The elements, in order, as far as their headers were captured.
    pub(super) fn elements<'a>(&self, body: &'a Body) -> Elements<'a> {
        Elements { body, pos: self.start + 4, end: self.end() - 1, done: false }
    }

    /// The first element named `name`.
    #[cfg(test)]
    pub(super) fn find<'a>(&self, body: &'a Body, name: &[u8]) -> Option<Element<'a>> {
        self.elements(body).find(|e| e.name == name)
    }

    /// How many elements it has, if every element header was captured.
    pub(super) fn count(&self, body: &Body) -> Option<u64> {
        let mut it = self.elements(body);
        let n = it.by_ref().count() as u64;
        it.complete().then_some(n)
    }
}

/// Iterates a document's elements; stops at the end or at the first
/// element that cannot be walked (uncaptured or malformed).
pub(super) struct Elements<'a> {
    body: &'a Body,
    pos: u64,
    end: u64,
    done: bool,
}

impl Elements<'_> {
    /// Whether the walk reached the document's end.
    pub(super) fn complete(&self) -> bool {
        self.pos == self.end
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        if self.done || self.pos >= self.end {
            return None;
        }
        let e = self.element();
        match e {
            Some(e) if e.value + e.value_len <= self.end => {
                self.pos = e.value + e.value_len;
                Some(e)
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

impl<'a> Elements<'a> {
    fn element(&self) -> Option<Element<'a>> {
        let body = self.body;
        let typ = body.get(self.pos, 1)?[0];
        let (name, value) = cstring(body, self.pos + 1, MAX_NAME)?;
        let len_field = || i32_at(body, value).filter(|n| *n >= 0).map(|n| n as u64);
        let value_len = match typ {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 | 0x0d | 0x0e => 4 + len_field()?,
            0x03 | 0x04 | 0x0f => len_field()?,
            0x05 => 5 + len_field()?,
            0x06 | 0x0a | 0x7f | 0xff => 0,
            0x07 => 12,
            0x08 => 1,
            0x0b => {
                let (_, after) = cstring(body, value, 4096)?;
                let (_, after) = cstring(body, after, 64)?;
                after - value
            }
            0x0c => 4 + len_field()? + 12,
            0x10 => 4,
            0x13 => 16,
            _ => return None,
        };
        Some(Element { typ, name, value, value_len })
    }
}

impl Element<'_> {
    /// A numeric value as a float (`ok` is a double, an int or a bool).
    pub(super) fn number(&self, body: &Body) -> Option<f64> {
        match self.typ {
            0x01 => body.get(self.value, 8).and_then(|b| b.try_into().ok()).map(f64::from_le_bytes),
            0x10 => i32_at(body, self.value).map(f64::from),
            0x12 => i64_at(body, self.value).map(|v| v as f64),
            0x08 => body.get(self.value, 1).map(|b| f64::from(b[0])),
            _ => None,
        }
    }

    /// A string value (without its NUL), if captured and at most `max` bytes.
    pub(super) fn string<'b>(&self, body: &'b Body, max: usize) -> Option<&'b [u8]> {
        if self.typ != 0x02 || self.value_len < 5 || self.value_len - 5 > max as u64 {
            return None;
        }
        body.get(self.value + 4, (self.value_len - 5) as usize)
    }

    /// An embedded document or array.
    pub(super) fn doc(&self) -> Option<Doc> {
        matches!(self.typ, 0x03 | 0x04).then_some(Doc { start: self.value, len: self.value_len }).filter(|d| d.len >= 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_elements_and_stops_where_capture_ends() {
        // {find: "orders", filter: {x: 1}, $db: "shop"}
        let mut d = vec![0, 0, 0, 0];
        d.extend_from_slice(b"\x02find\0\x07\0\0\0orders\0");
        d.extend_from_slice(b"\x03filter\0\x0c\0\0\0\x10x\0\x01\0\0\0\0");
        d.extend_from_slice(b"\x02$db\0\x05\0\0\0shop\0\0");
        let n = d.len() as i32;
        d[..4].copy_from_slice(&n.to_le_bytes());
        let body = Body::whole(&d);
        let doc = Doc::at(&body, 0, body.len()).expect("doc");
        let names: Vec<_> = doc.elements(&body).map(|e| e.name).collect();
        assert_eq!(names, [&b"find"[..], b"filter", b"$db"]);
        assert_eq!(doc.count(&body), Some(3));
        let db = doc.find(&body, b"$db").expect("$db");
        assert_eq!(db.string(&body, 64), Some(&b"shop"[..]));
        // Cut inside the filter: the walk stops, the count is unknown.
        let cut = Body::whole(&d[..30]);
        let doc = Doc { start: 0, len: d.len() as u64 };
        assert_eq!(doc.elements(&cut).count(), 1, "the filter's length was not captured");
        assert_eq!(doc.count(&cut), None);
    }
}
