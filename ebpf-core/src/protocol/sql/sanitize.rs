//! `db.query.text` without literals: every string, number, hex/bit literal,
//! boolean and dollar-quoted string becomes `?`, comments are dropped,
//! whitespace runs become one space, and an `IN (...)` list holding a literal
//! collapses to `IN (?)`. Placeholders (`$1`, `?`, `%s`) stay: a
//! parameterized query's text is the application's, not its data.
//!
//! The output only ever contains bytes the tokenizer classified as words,
//! quoted identifiers, placeholders or punctuation, so a literal cannot leak
//! even from text that is not valid SQL: unterminated strings and comments
//! run to the end, and a quote whose end is ambiguous ends the output.

use super::lexer::{Dialect, Kind, Lexer, Token};

/// Appends the sanitized form of `sql` to `out`, at most `max_len` bytes
/// (cut at a token boundary). Returns whether the output was cut short,
/// by `max_len` or at an ambiguous quote.
pub fn sanitize_into(sql: &[u8], dialect: Dialect, max_len: usize, out: &mut String) -> bool {
    let tokens: Vec<Token> =
        Lexer::new(sql, dialect).filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment)).collect();
    let mut w = Writer { out, base: 0, max_len, cut: false };
    w.base = w.out.len();
    let mut i = 0;
    let mut prev: Option<Token> = None;
    while i < tokens.len() {
        let t = tokens[i];
        if t.kind == Kind::Ambiguous {
            w.push_token(prev, t, "?");
            w.cut = true;
            break;
        }
        if t.kind == Kind::Word && sql[t.start..t.end].eq_ignore_ascii_case(b"in") {
            if let Some(end) = in_list_end(sql, &tokens[i + 1..]) {
                w.push_token(prev, t, word(sql, t));
                let open = tokens[i + 1];
                w.push_token(Some(t), open, "(?)");
                prev = Some(tokens[i + 1 + end]);
                i += end + 2;
                continue;
            }
        }
        let text = if t.kind == Kind::Literal { "?" } else { word(sql, t) };
        w.push_token(prev, t, text);
        if w.cut {
            break;
        }
        prev = Some(t);
        i += 1;
    }
    w.cut
}

/// The sanitized text as a new string (tests, fuzzing, benchmarks).
pub fn sanitize(sql: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(sql.len());
    sanitize_into(sql.as_bytes(), dialect, usize::MAX, &mut out);
    out
}

fn word(sql: &[u8], t: Token) -> &str {
    std::str::from_utf8(&sql[t.start..t.end]).unwrap_or("\u{fffd}")
}

/// `tokens` follow an `IN`: if they are `( item, item, ... )` where each item
/// is a literal or placeholder (with an optional sign), and at least one is a
/// literal, the index of the closing parenthesis.
fn in_list_end(sql: &[u8], tokens: &[Token]) -> Option<usize> {
    let byte = |t: &Token| if t.kind == Kind::Punct { sql[t.start] } else { 0 };
    if byte(tokens.first()?) != b'(' {
        return None;
    }
    let mut saw_literal = false;
    let mut expect_item = true;
    for (n, t) in tokens.iter().enumerate().skip(1) {
        match (t.kind, expect_item) {
            (Kind::Literal, true) => {
                saw_literal = true;
                expect_item = false;
            }
            (Kind::Placeholder, true) => expect_item = false,
            (Kind::Punct, true) if matches!(byte(t), b'-' | b'+') => {}
            (Kind::Punct, false) if byte(t) == b',' => expect_item = true,
            (Kind::Punct, false) if byte(t) == b')' => return saw_literal.then_some(n),
            _ => return None,
        }
    }
    None
}

struct Writer<'o> {
    out: &'o mut String,
    base: usize,
    max_len: usize,
    cut: bool,
}

impl Writer<'_> {
    /// Appends `text` for token `t`, with one space before it when the
    /// original had whitespace or a comment between `prev` and `t`.
    fn push_token(&mut self, prev: Option<Token>, t: Token, text: &str) {
        let gap = prev.is_some_and(|p| p.end < t.start);
        let need = text.len() + usize::from(gap);
        if self.out.len() - self.base + need > self.max_len {
            self.cut = true;
            return;
        }
        if gap {
            self.out.push(' ');
        }
        self.out.push_str(text);
    }
}
