//! A field's first bytes, kept without allocating while the field arrives in
//! pieces (split across chunks, or longer than we care to keep), together
//! with how long the field really was. The key/value decoders keep command
//! names, error codes and flags this way and never the rest of a field.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix<const N: usize> {
    buf: [u8; N],
    /// Bytes held in `buf`, at most N.
    held: u8,
    /// Bytes the field had in all (held or not), including bytes counted
    /// past a capture that were never seen.
    total: u64,
}

impl<const N: usize> Default for Prefix<N> {
    fn default() -> Self {
        const { assert!(N <= u8::MAX as usize) };
        Prefix { buf: [0; N], held: 0, total: 0 }
    }
}

impl<const N: usize> Prefix<N> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn clear(&mut self) {
        self.held = 0;
        self.total = 0;
    }

    /// Appends bytes seen; those past N are only counted.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let held = usize::from(self.held);
        let take = bytes.len().min(N - held);
        self.buf[held..held + take].copy_from_slice(&bytes[..take]);
        self.held += take as u8;
        self.total = self.total.saturating_add(bytes.len() as u64);
    }

    pub(crate) fn push_byte(&mut self, b: u8) {
        self.push(std::slice::from_ref(&b));
    }

    /// Counts bytes that were never seen (past the capture).
    pub(crate) fn count_unseen(&mut self, n: u64) {
        self.total = self.total.saturating_add(n);
    }

    /// Drops the CR that ends a line (held, or only counted when the line
    /// was longer than N).
    pub(crate) fn trim_cr(&mut self) {
        let held = usize::from(self.held);
        if self.total > held as u64 {
            self.total -= 1;
        } else if held > 0 && self.buf[held - 1] == b'\r' {
            self.held -= 1;
            self.total -= 1;
        }
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.held)]
    }

    /// The whole field is held: nothing was cut or left unseen.
    pub(crate) fn is_whole(&self) -> bool {
        self.total == u64::from(self.held)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The whole field as text, when it is held whole and is `token`-shaped
    /// (ASCII letters, digits and `._:|-`), the shape of command names,
    /// subcommands and error codes. Anything else is not kept: it may be
    /// data, or not text at all.
    pub(crate) fn token(&self) -> Option<&str> {
        let b = self.bytes();
        if !self.is_whole() || b.is_empty() || !b.iter().all(|&c| is_token_byte(c)) {
            return None;
        }
        std::str::from_utf8(b).ok()
    }

    /// Case-insensitive comparison of the whole field with an ASCII word.
    pub(crate) fn eq_ignore_case(&self, word: &[u8]) -> bool {
        self.is_whole() && self.bytes().eq_ignore_ascii_case(word)
    }

    /// The whole field as a decimal integer (optional sign).
    pub(crate) fn parse_i64(&self) -> Option<i64> {
        if !self.is_whole() {
            return None;
        }
        parse_i64(self.bytes())
    }
}

impl<const N: usize> fmt::Debug for Prefix<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))?;
        if !self.is_whole() {
            write!(f, "..({} bytes)", self.total)?;
        }
        Ok(())
    }
}

pub(crate) fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'|')
}

/// A decimal integer with an optional sign; None on anything else or overflow.
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_prefix_and_counts_the_rest() {
        let mut p = Prefix::<4>::new();
        p.push(b"AB");
        p.push(b"CDEF");
        assert_eq!(p.bytes(), b"ABCD");
        assert_eq!(p.total(), 6);
        assert!(!p.is_whole());
        assert_eq!(p.token(), None);
        p.clear();
        p.push(b"GET");
        assert_eq!(p.token(), Some("GET"));
        assert!(p.eq_ignore_case(b"get"));
        p.count_unseen(1);
        assert_eq!(p.token(), None, "a field with unseen bytes is not whole");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1a"), None);
    }
}
