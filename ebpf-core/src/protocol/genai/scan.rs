//! Top-level members of a JSON text of which only a piece was kept.
//!
//! A kept body may be a head (its first bytes) and a tail (its last bytes)
//! with the middle gone. Neither piece parses, but each can be read from the
//! end where its state is known: the head forward from the body's first
//! byte, the tail backward from the body's last byte. Either way the scan
//! tracks string and nesting state exactly, so it tells a top-level key
//! (`"usage":` one level in) from the same text nested deeper or inside a
//! string, which a plain search for `"usage"` cannot. Backward, a quote is
//! escaped when an odd number of backslashes precede it. Each scan is one
//! pass over its piece; values are then parsed where they start, and
//! top-level values do not overlap, so all the work stays linear.

use serde_json::Value;
use std::borrow::Cow;

/// A top-level member found by a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum Member<'a> {
    /// An object's key, and where its value starts.
    Key { name: Cow<'a, str>, value_at: usize },
    /// An array's object or array element, where it starts.
    Element { at: usize },
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(buf: &[u8], mut at: usize) -> usize {
    while buf.get(at).is_some_and(|&b| is_space(b)) {
        at += 1;
    }
    at
}

/// The key spelled by the string `buf[open..=close]` (quotes included).
fn key_name(buf: &[u8], open: usize, close: usize) -> Option<Cow<'_, str>> {
    let inner = buf.get(open + 1..close)?;
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(&buf[open..=close]).ok().map(Cow::Owned)
}

/// Members of the JSON text that starts at the start of `buf` (leading
/// whitespace allowed), up to where `buf` ends.
pub fn forward(buf: &[u8]) -> Vec<Member<'_>> {
    let mut out = Vec::new();
    let mut at = skip_space(buf, 0);
    let is_object = match buf.get(at) {
        Some(b'{') => true,
        Some(b'[') => false,
        _ => return out,
    };
    at += 1;
    let mut depth = 1usize;
    while let Some(&b) = buf.get(at) {
        match b {
            b'"' => {
                let open = at;
                let Some(close) = string_end(buf, at + 1) else { break };
                at = close + 1;
                if depth == 1 && is_object {
                    let colon = skip_space(buf, at);
                    if buf.get(colon) == Some(&b':') {
                        if let Some(name) = key_name(buf, open, close) {
                            out.push(Member::Key { name, value_at: colon + 1 });
                        }
                        at = colon + 1;
                    }
                }
                continue;
            }
            b'{' | b'[' => {
                if depth == 1 && !is_object {
                    out.push(Member::Element { at });
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        at += 1;
    }
    out
}

/// Index of the quote closing a string whose content starts at `at`.
fn string_end(buf: &[u8], mut at: usize) -> Option<usize> {
    while let Some(&b) = buf.get(at) {
        match b {
            b'"' => return Some(at),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    None
}

/// Members of the JSON text that ends at the end of `buf` (trailing
/// whitespace allowed), as far back as `buf` goes, in document order.
pub fn backward(buf: &[u8]) -> Vec<Member<'_>> {
    let mut out = Vec::new();
    let mut at = buf.len();
    while at > 0 && is_space(buf[at - 1]) {
        at -= 1;
    }
    let is_object = match at.checked_sub(1).map(|i| buf[i]) {
        Some(b'}') => true,
        Some(b']') => false,
        _ => return out,
    };
    at -= 1;
    let mut depth = 1usize;
    while at > 0 {
        at -= 1;
        match buf[at] {
            b'"' => {
                let close = at;
                let Some(open) = string_start(buf, close) else { break };
                at = open;
                if depth == 1 && is_object {
                    let colon = skip_space(buf, close + 1);
                    if buf.get(colon) == Some(&b':') {
                        if let Some(name) = key_name(buf, open, close) {
                            out.push(Member::Key { name, value_at: colon + 1 });
                        }
                    }
                }
            }
            b'}' | b']' => depth += 1,
            b'{' | b'[' => {
                depth -= 1;
                if depth == 1 && !is_object {
                    out.push(Member::Element { at });
                }
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    out.reverse();
    out
}

/// Index of the quote opening the string closed at `close`: the nearest
/// quote before it not escaped by an odd run of backslashes.
fn string_start(buf: &[u8], close: usize) -> Option<usize> {
    let mut at = close;
    while at > 0 {
        at -= 1;
        if buf[at] != b'"' {
            continue;
        }
        let backslashes = buf[..at].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
    }
    None
}

/// The JSON value starting at `at` (after optional whitespace), if it ends
/// inside `buf`. A number, `true`, `false` or `null` running into the end of
/// `buf` is refused: it may be the cut start of a longer one.
pub fn value_at(buf: &[u8], at: usize) -> Option<Value> {
    let rest = buf.get(at..)?;
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
    let value = values.next()?.ok()?;
    let unterminated = !matches!(value, Value::Object(_) | Value::Array(_) | Value::String(_));
    if unterminated && values.byte_offset() >= rest.len() {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(members: &[Member<'_>]) -> Vec<String> {
        members
            .iter()
            .map(|m| match m {
                Member::Key { name, .. } => name.to_string(),
                Member::Element { at } => format!("@{at}"),
            })
            .collect()
    }

    #[test]
    fn forward_finds_top_level_keys_of_a_cut_object() {
        let body =
            br#"{"id": "x", "nested": {"usage": 1}, "text": "a \"usage\": 2", "model":"m", "usage": {"a": [1, 2"#;
        let members = forward(body);
        assert_eq!(keys(&members), ["id", "nested", "text", "model", "usage"]);
        let Member::Key { value_at: at, .. } = &members[3] else { panic!() };
        assert_eq!(value_at_str(body, *at), Some("m".into()));
        let Member::Key { value_at: at, .. } = &members[4] else { panic!() };
        assert_eq!(value_at(body, *at), None, "cut value");
    }

    fn value_at_str(buf: &[u8], at: usize) -> Option<String> {
        value_at(buf, at)?.as_str().map(str::to_string)
    }

    #[test]
    fn backward_finds_top_level_keys_of_a_tail() {
        // The tail starts inside a string holding escaped quotes and key-like text.
        let tail = br#"ll \"fake\": {\"x\": 1} here", "k\"ey": 5, "nested": {"usage": {"b": 1}}, "usage": {"a": 3}}  "#;
        let members = backward(tail);
        assert_eq!(keys(&members), ["k\"ey", "nested", "usage"]);
        let Member::Key { value_at: at, .. } = &members[2] else { panic!() };
        assert_eq!(value_at(tail, *at), Some(serde_json::json!({"a": 3})));
    }

    #[test]
    fn backward_handles_backslash_runs() {
        let tail = br#"x", "a": "ends with backslash\\", "b": "q\\\"", "c": 1}"#;
        assert_eq!(keys(&backward(tail)), ["a", "b", "c"]);
    }

    #[test]
    fn array_elements_both_ways() {
        let body = b"[{\"a\": [1]}\n,\r\n{\"b\": 2}\n,\r\n{\"c\": ";
        assert_eq!(keys(&forward(body)), ["@1", "@15", "@27"]);
        let tail = b"\": 1}\n,\r\n{\"b\": {\"x\": 1}}\n,\r\n{\"c\": 3}\n]\n";
        let members = backward(tail);
        assert_eq!(members.len(), 2);
        let Member::Element { at } = members[1] else { panic!() };
        assert_eq!(value_at(tail, at), Some(serde_json::json!({"c": 3})));
    }

    #[test]
    fn numbers_at_the_cut_are_refused() {
        assert_eq!(value_at(b"12", 0), None);
        assert_eq!(value_at(b"12,", 0), Some(serde_json::json!(12)));
        assert_eq!(value_at(b" \"ab\"", 0), Some(serde_json::json!("ab")));
        assert_eq!(value_at(b"tru", 0), None);
        assert_eq!(value_at(b"", 5), None);
    }
}
