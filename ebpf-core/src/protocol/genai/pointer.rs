//! Field lists of JSON pointers (syntax in `config::ResponseFields`),
//! compiled once at config time and evaluated on every parsed object.

use serde_json::Value;

/// Longest string taken from a body for a scalar attribute (a model name, an
/// id, an error code); a longer one is cut, since it is either garbage or an
/// attacker's way to bloat every span.
pub const MAX_VALUE_BYTES: usize = 256;

/// Most strings a list attribute (finish reasons, stop sequences) holds.
pub const MAX_LIST_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    /// `*`: every element of an array.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pointer {
    segments: Vec<Segment>,
}

/// One configured list: alternatives tried in order, each a sum of pointers
/// (a single pointer for anything but counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath {
    alternatives: Vec<Vec<Pointer>>,
}

/// Whether a field adds up numbers (`a+b`), which only counts may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sums {
    Allowed,
    Refused,
}

impl Pointer {
    fn parse(text: &str) -> Result<Pointer, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("JSON pointer {text:?} must start with '/'"));
        };
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            if raw == "*" {
                segments.push(Segment::Any);
                continue;
            }
            let mut key = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    key.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => key.push('~'),
                    Some('1') => key.push('/'),
                    _ => return Err(format!("JSON pointer {text:?}: '~' must be followed by 0 or 1")),
                }
            }
            segments.push(Segment::Key(key));
        }
        Ok(Pointer { segments })
    }

    /// Calls `found` with every non-null value the pointer reaches.
    fn visit<'v>(&self, value: &'v Value, found: &mut dyn FnMut(&'v Value)) {
        visit_from(&self.segments, value, found);
    }

    fn first_key(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }
}

fn visit_from<'v>(segments: &[Segment], value: &'v Value, found: &mut dyn FnMut(&'v Value)) {
    let Some((first, rest)) = segments.split_first() else {
        if !value.is_null() {
            found(value);
        }
        return;
    };
    match (first, value) {
        (Segment::Any, Value::Array(items)) => items.iter().for_each(|item| visit_from(rest, item, found)),
        (Segment::Key(key), Value::Object(map)) => {
            if let Some(next) = map.get(key) {
                visit_from(rest, next, found);
            }
        }
        (Segment::Key(key), Value::Array(items)) => {
            // RFC 6901 indexes have no leading zeros; "01" names no element.
            let canonical = key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
            if let Some(item) = key.parse::<usize>().ok().filter(|_| canonical).and_then(|i| items.get(i)) {
                visit_from(rest, item, found);
            }
        }
        _ => {}
    }
}

impl FieldPath {
    /// `what` names the field in error messages.
    pub fn compile(list: &[String], sums: Sums, what: &str) -> Result<FieldPath, String> {
        let mut alternatives = Vec::with_capacity(list.len());
        for text in list {
            let terms: Vec<&str> = text.split('+').collect();
            if terms.len() > 1 && sums == Sums::Refused {
                return Err(format!("{what}: {text:?}: only token counts may add pointers up with '+'"));
            }
            let pointers = terms.into_iter().map(Pointer::parse).collect::<Result<Vec<_>, _>>();
            alternatives.push(pointers.map_err(|e| format!("{what}: {e}"))?);
        }
        Ok(FieldPath { alternatives })
    }

    /// The top-level keys the pointers start with: what a scan of a cut body
    /// must look for.
    pub fn first_keys(&self) -> impl Iterator<Item = &str> {
        self.alternatives.iter().flatten().filter_map(Pointer::first_key)
    }

    /// The first value the first present alternative reaches (sums: their first term).
    pub fn value<'v>(&self, object: &'v Value) -> Option<&'v Value> {
        self.alternatives.iter().find_map(|alt| {
            let mut first = None;
            for pointer in alt {
                pointer.visit(object, &mut |v| {
                    first.get_or_insert(v);
                });
                if first.is_some() {
                    break;
                }
            }
            first
        })
    }

    /// A string (numbers are written out, for numeric error codes).
    pub fn string(&self, object: &Value) -> Option<String> {
        self.alternatives.iter().find_map(|alt| {
            let mut out = None;
            alt.first()?.visit(object, &mut |v| {
                if out.is_none() {
                    out = match v {
                        Value::String(s) => Some(cut(s, MAX_VALUE_BYTES).to_string()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    };
                }
            });
            out
        })
    }

    /// A count: the sum of every number the alternative's pointers reach.
    pub fn count(&self, object: &Value) -> Option<u64> {
        self.alternatives.iter().find_map(|alt| {
            let mut sum: Option<u64> = None;
            for pointer in alt {
                pointer.visit(object, &mut |v| {
                    if let Some(n) = as_count(v) {
                        sum = Some(sum.unwrap_or(0).saturating_add(n));
                    }
                });
            }
            sum
        })
    }

    pub fn float(&self, object: &Value) -> Option<f64> {
        self.first_scalar(object, |v| v.as_f64().filter(|f| f.is_finite()))
    }

    pub fn integer(&self, object: &Value) -> Option<i64> {
        self.first_scalar(object, |v| v.as_i64().or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))))
    }

    pub fn boolean(&self, object: &Value) -> Option<bool> {
        self.first_scalar(object, Value::as_bool)
    }

    /// Strings from the first alternative that has any: strings reached, and
    /// the string elements of arrays reached. At most `MAX_LIST_LEN`.
    pub fn strings(&self, object: &Value) -> Vec<String> {
        for alt in &self.alternatives {
            let mut out = Vec::new();
            if let Some(pointer) = alt.first() {
                pointer.visit(object, &mut |v| push_strings(v, &mut out));
            }
            if !out.is_empty() {
                return out;
            }
        }
        Vec::new()
    }

    /// Every string the first alternative that has any reaches, for
    /// appending text pieces; returns whether there was one.
    pub fn each_string<'v>(&self, object: &'v Value, found: &mut dyn FnMut(&'v str)) -> bool {
        for alt in &self.alternatives {
            let mut any = false;
            if let Some(pointer) = alt.first() {
                pointer.visit(object, &mut |v| {
                    if let Value::String(s) = v {
                        any = true;
                        found(s);
                    }
                });
            }
            if any {
                return true;
            }
        }
        false
    }

    fn first_scalar<T>(&self, object: &Value, convert: impl Fn(&Value) -> Option<T>) -> Option<T> {
        self.alternatives.iter().find_map(|alt| {
            let mut out = None;
            alt.first()?.visit(object, &mut |v| {
                if out.is_none() {
                    out = convert(v);
                }
            });
            out
        })
    }
}

fn push_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if out.len() < MAX_LIST_LEN => out.push(cut(s, MAX_VALUE_BYTES).to_string()),
        Value::Array(items) => items.iter().for_each(|item| {
            if let Value::String(s) = item {
                if out.len() < MAX_LIST_LEN {
                    out.push(cut(s, MAX_VALUE_BYTES).to_string());
                }
            }
        }),
        _ => {}
    }
}

/// A token count: a non-negative integer (`12.0` accepted, as some servers
/// write counts as floats).
fn as_count(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        // 2^53: beyond it a float no longer holds every integer.
        (f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0).then_some(f as u64)
    })
}

/// `text` cut to at most `max` bytes, at a char boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(list: &[&str]) -> FieldPath {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        FieldPath::compile(&list, Sums::Allowed, "test").expect("valid")
    }

    #[test]
    fn first_present_alternative_wins_and_null_is_absent() {
        let v = json!({"a": null, "b": {"c": "x"}, "d": "y"});
        assert_eq!(path(&["/a", "/b/c", "/d"]).string(&v).as_deref(), Some("x"));
        assert_eq!(path(&["/zz"]).string(&v), None);
    }

    #[test]
    fn escapes_indexes_and_fan_out() {
        let v = json!({"a/b": {"~": 3}, "l": [{"r": "stop"}, {"r": null}, {"r": "length"}], "n": [1, 2]});
        assert_eq!(path(&["/a~1b/~0"]).count(&v), Some(3));
        assert_eq!(path(&["/l/*/r"]).strings(&v), vec!["stop", "length"]);
        assert_eq!(path(&["/l/2/r"]).string(&v).as_deref(), Some("length"));
        assert_eq!(path(&["/l/02/r"]).string(&v), None);
        assert_eq!(path(&["/n/*"]).count(&v), Some(3));
    }

    #[test]
    fn sums_count_any_present_term() {
        let v = json!({"u": {"a": 10, "b": 5}});
        assert_eq!(path(&["/u/a+/u/b+/u/c"]).count(&v), Some(15));
        assert_eq!(path(&["/u/x+/u/b"]).count(&v), Some(5));
        assert_eq!(path(&["/u/x+/u/y", "/u/a"]).count(&v), Some(10));
    }

    #[test]
    fn bad_pointers_are_refused() {
        let bad = |p: &str, sums| FieldPath::compile(&[p.to_string()], sums, "f").unwrap_err();
        assert!(bad("model", Sums::Allowed).contains("must start with '/'"));
        assert!(bad("/a~2", Sums::Allowed).contains("'~'"));
        assert!(bad("/a+/b", Sums::Refused).contains("'+'"));
        assert!(bad("/a+", Sums::Allowed).contains("must start"));
    }

    #[test]
    fn counts_refuse_negative_and_fractional_numbers() {
        let v = json!({"a": -1, "b": 2.5, "c": 7.0});
        assert_eq!(path(&["/a"]).count(&v), None);
        assert_eq!(path(&["/b"]).count(&v), None);
        assert_eq!(path(&["/c"]).count(&v), Some(7));
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        let got = path(&["/m"]).string(&json!({ "m": long })).unwrap();
        assert!(got.len() <= MAX_VALUE_BYTES && got.chars().all(|c| c == 'é'));
    }
}
