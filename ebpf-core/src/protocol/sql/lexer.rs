//! A SQL tokenizer that only needs to know where literals, comments and
//! quoted identifiers begin and end. It never fails: every byte of its input
//! belongs to exactly one token, so whatever it cannot parse still ends up
//! classified (and a literal it cannot delimit swallows the rest of the text).
//!
//! Quoting differs between the dialects:
//! - PostgreSQL: `"..."` is an identifier, `$tag$...$tag$` a string,
//!   `E'...'` a string with backslash escapes, `/* */` comments nest.
//! - MySQL/MariaDB: `"..."` is a string (unless ANSI_QUOTES), `` `...` `` an
//!   identifier, `#` starts a comment, `/* */` comments do not nest.
//!
//! Whether a backslash escapes a quote in a plain `'...'` string depends on
//! server settings we cannot see (`standard_conforming_strings`,
//! `NO_BACKSLASH_ESCAPES`). When the two readings would end the string at
//! different places, the tokenizer stops there with `Token::Ambiguous`: the
//! caller must then drop everything from that point on, since guessing wrong
//! would shift every later quote and could expose a literal.

/// Which SQL dialect's quoting rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
}

/// What one token is; `start..end` in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Space,
    /// Comments of all kinds, terminated or not.
    Comment,
    /// A bare word: keyword or identifier (letters, digits, `_`, `$`, non-ASCII).
    Word,
    /// A quoted identifier, quotes included.
    QuotedIdent,
    /// A string, number, hex/bit literal, dollar-quoted string (terminated or not).
    Literal,
    /// A bind placeholder kept as written: `?`, `$1`, `:name`, `%s`, `%(name)s`.
    Placeholder,
    /// One punctuation character or operator character.
    Punct,
    /// A quote whose end depends on unseen server settings: stop here.
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    dialect: Dialect,
    done: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(s: &'a [u8], dialect: Dialect) -> Self {
        Lexer { s, pos: 0, dialect, done: false }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        if self.done || self.pos >= self.s.len() {
            return None;
        }
        let start = self.pos;
        let (kind, end) = self.scan_at(start);
        debug_assert!(end > start || kind == Kind::Ambiguous);
        if kind == Kind::Ambiguous {
            self.done = true;
            self.pos = self.s.len();
            return Some(Token { kind, start, end: self.s.len() });
        }
        self.pos = end.max(start + 1).min(self.s.len());
        Some(Token { kind, start, end: self.pos })
    }
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    fn scan_at(&self, i: usize) -> (Kind, usize) {
        let s = self.s;
        let b = s[i];
        let next = self.at(i + 1);
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                let end = s[i..].iter().position(|c| !c.is_ascii_whitespace() && *c != 0x0b).map_or(s.len(), |n| i + n);
                (Kind::Space, end)
            }
            b'-' if next == Some(b'-') => (Kind::Comment, line_end(s, i)),
            b'#' if self.dialect == Dialect::MySql => (Kind::Comment, line_end(s, i)),
            b'/' if next == Some(b'*') => (Kind::Comment, self.block_comment_end(i)),
            b'\'' => self.string(i, i, b'\''),
            b'"' => match self.dialect {
                Dialect::Postgres => (Kind::QuotedIdent, doubled_quote_end(s, i + 1, b'"')),
                Dialect::MySql => self.string(i, i, b'"'),
            },
            b'`' if self.dialect == Dialect::MySql => (Kind::QuotedIdent, doubled_quote_end(s, i + 1, b'`')),
            b'$' => self.dollar(i),
            b'?' => (Kind::Placeholder, i + 1),
            b'%' if next == Some(b's') && !self.at(i + 2).is_some_and(is_word_byte) => (Kind::Placeholder, i + 2),
            b'%' if next == Some(b'(') => {
                // %(name)s: Python's pyformat placeholder.
                match s[i..].iter().position(|&c| c == b')') {
                    Some(close) if self.at(i + close + 1) == Some(b's') => (Kind::Placeholder, i + close + 2),
                    _ => (Kind::Punct, i + 1),
                }
            }
            b':' if next.is_some_and(is_word_start) && i.checked_sub(1).and_then(|p| self.at(p)) != Some(b':') => {
                (Kind::Placeholder, word_end(s, i + 1))
            }
            b'0'..=b'9' => (Kind::Literal, number_end(s, i)),
            b'.' if next.is_some_and(|c| c.is_ascii_digit()) => (Kind::Literal, number_end(s, i)),
            // Prefixed strings: E'..' (escapes), N'..', X'..', B'..', U&'..'.
            b'e' | b'E' if next == Some(b'\'') && self.dialect == Dialect::Postgres => {
                (Kind::Literal, escaped_string_end(s, i + 2, b'\''))
            }
            b'n' | b'N' | b'x' | b'X' | b'b' | b'B' if next == Some(b'\'') => self.string(i, i + 1, b'\''),
            b'u' | b'U' if next == Some(b'&') && self.at(i + 2) == Some(b'\'') => self.string(i, i + 2, b'\''),
            _ if is_word_start(b) => {
                let end = word_end(s, i);
                let word = &s[i..end];
                if word.eq_ignore_ascii_case(b"true") || word.eq_ignore_ascii_case(b"false") {
                    (Kind::Literal, end)
                } else {
                    (Kind::Word, end)
                }
            }
            _ => (Kind::Punct, i + 1),
        }
    }

    /// A quoted string whose opening quote is at `quote`; the token starts
    /// at `start` (before a prefix like N or X). Ends the same for both
    /// readings of a backslash, or the text is ambiguous from here on.
    fn string(&self, start: usize, quote: usize, q: u8) -> (Kind, usize) {
        let plain = doubled_quote_end(self.s, quote + 1, q);
        let escaped = escaped_string_end(self.s, quote + 1, q);
        if plain == escaped {
            (Kind::Literal, plain)
        } else {
            (Kind::Ambiguous, start)
        }
    }

    fn block_comment_end(&self, i: usize) -> usize {
        let s = self.s;
        let nests = self.dialect == Dialect::Postgres;
        let mut depth = 1usize;
        let mut j = i + 2;
        while j < s.len() {
            if s[j] == b'*' && s.get(j + 1) == Some(&b'/') {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            } else if nests && s[j] == b'/' && s.get(j + 1) == Some(&b'*') {
                depth += 1;
                j += 2;
            } else {
                j += 1;
            }
        }
        s.len()
    }

    /// `$1` placeholders and PostgreSQL `$tag$ ... $tag$` strings; in MySQL a
    /// `$` is only part of a word.
    fn dollar(&self, i: usize) -> (Kind, usize) {
        let s = self.s;
        if self.at(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            let end = s[i + 1..].iter().position(|c| !c.is_ascii_digit()).map_or(s.len(), |n| i + 1 + n);
            return (Kind::Placeholder, end);
        }
        if self.dialect == Dialect::Postgres {
            // Tag: $$ or $ident$ (no `$` inside the tag).
            let tag_end = s[i + 1..]
                .iter()
                .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
                .map(|n| i + 1 + n);
            if let Some(t) = tag_end {
                if s[t] == b'$' && (t == i + 1 || !s[i + 1].is_ascii_digit()) {
                    let tag = &s[i..=t];
                    let body = t + 1;
                    let end = memchr::memmem::find(&s[body..], tag).map_or(s.len(), |n| body + n + tag.len());
                    return (Kind::Literal, end);
                }
            }
        }
        (Kind::Word, word_end(s, i))
    }
}

fn line_end(s: &[u8], i: usize) -> usize {
    memchr::memchr(b'\n', &s[i..]).map_or(s.len(), |n| i + n)
}

fn word_end(s: &[u8], i: usize) -> usize {
    s[i..].iter().position(|&c| !is_word_byte(c)).map_or(s.len(), |n| i + n)
}

/// Numbers in every form either dialect knows (`1`, `1.5e-3`, `.5`, `0x1F`,
/// `0b101`, `1_000`): digits, letters, `_` and `.`, and a sign right after an
/// exponent. Swallowing a trailing letter is harmless: it all becomes `?`.
fn number_end(s: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < s.len() {
        let c = s[j];
        let exponent_sign =
            (c == b'+' || c == b'-') && j > i && matches!(s[j - 1], b'e' | b'E') && !is_hex_number(&s[i..j]);
        if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign) {
            break;
        }
        j += 1;
    }
    j
}

fn is_hex_number(s: &[u8]) -> bool {
    s.len() > 1 && s[0] == b'0' && matches!(s[1], b'x' | b'X')
}

/// End (one past the closing quote) of a string whose body starts at `i`,
/// where the quote is escaped only by doubling it; the input's end if
/// unterminated.
fn doubled_quote_end(s: &[u8], mut i: usize, q: u8) -> usize {
    while let Some(n) = memchr::memchr(q, &s[i.min(s.len())..]) {
        let at = i + n;
        if s.get(at + 1) == Some(&q) {
            i = at + 2;
        } else {
            return at + 1;
        }
    }
    s.len()
}

/// Like `doubled_quote_end`, where a backslash also escapes the next byte.
fn escaped_string_end(s: &[u8], mut i: usize, q: u8) -> usize {
    while i < s.len() {
        let c = s[i];
        if c == b'\\' {
            i += 2;
        } else if c == q {
            if s.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str, d: Dialect) -> Vec<(Kind, &str)> {
        Lexer::new(s.as_bytes(), d).map(|t| (t.kind, &s[t.start..t.end])).filter(|(k, _)| *k != Kind::Space).collect()
    }

    #[test]
    fn postgres_quoting() {
        use Kind::*;
        assert_eq!(
            kinds(r#"SELECT "a""b", E'x\'y', $q$it's$q$, $1 FROM t"#, Dialect::Postgres),
            vec![
                (Word, "SELECT"),
                (QuotedIdent, r#""a""b""#),
                (Punct, ","),
                (Literal, r"E'x\'y'"),
                (Punct, ","),
                (Literal, "$q$it's$q$"),
                (Punct, ","),
                (Placeholder, "$1"),
                (Word, "FROM"),
                (Word, "t"),
            ]
        );
        assert_eq!(kinds("a::int", Dialect::Postgres), vec![(Word, "a"), (Punct, ":"), (Punct, ":"), (Word, "int")]);
        assert_eq!(kinds("/* a /* b */ c */x", Dialect::Postgres), vec![(Comment, "/* a /* b */ c */"), (Word, "x")]);
    }

    #[test]
    fn mysql_quoting() {
        use Kind::*;
        assert_eq!(
            kinds(r#"SELECT `a`, "s", 0x1F, 1.5e-3 # c"#, Dialect::MySql),
            vec![
                (Word, "SELECT"),
                (QuotedIdent, "`a`"),
                (Punct, ","),
                (Literal, r#""s""#),
                (Punct, ","),
                (Literal, "0x1F"),
                (Punct, ","),
                (Literal, "1.5e-3"),
                (Comment, "# c"),
            ]
        );
        assert_eq!(kinds("/* a /* b */ c", Dialect::MySql), vec![(Comment, "/* a /* b */"), (Word, "c")]);
    }

    #[test]
    fn backslash_before_quote_is_ambiguous() {
        let toks = kinds(r"SELECT 'a\' , 'b'", Dialect::MySql);
        assert_eq!(toks.last().map(|t| t.0), Some(Kind::Ambiguous));
        // An even run of backslashes ends the string the same way in both readings.
        let toks = kinds(r"SELECT 'a\\' , 'b'", Dialect::Postgres);
        assert!(toks.iter().all(|t| t.0 != Kind::Ambiguous), "{toks:?}");
    }
}
