//! What is wrong with a configuration: every problem found, each naming its
//! key, so that a user fixes them all in one go.

use std::fmt;

use serde::Serialize;

/// Most problems kept: past them, one more says how many were left out (a
/// list of 65,536 bad pids must not make a 65,536-line error).
const MAX_PROBLEMS: usize = 50;
/// Longest key and message kept: they quote the user's input (an unknown
/// key, a glob), which can be megabytes.
const MAX_KEY_BYTES: usize = 256;
const MAX_MESSAGE_BYTES: usize = 1024;

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
    }
    s
}

/// One problem: the key it is about (`batch.timeout_ms`,
/// `genai.providers[2].name`; empty for the whole document) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The problems of one configuration, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    list: Vec<Problem>,
    left_out: usize,
}

impl Problems {
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            let (key, message) = (cut(key.into(), MAX_KEY_BYTES), cut(message.into(), MAX_MESSAGE_BYTES));
            self.list.push(Problem { key, message });
        } else {
            self.left_out += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a problem is about `key` or a key inside it (`selection`
    /// covers `selection.include.pids` and `selection.include.pids[3]`):
    /// checks that build on a key skip it once it is known to be bad.
    pub fn touch(&self, key: &str) -> bool {
        self.list
            .iter()
            .any(|p| p.key.strip_prefix(key).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '['])))
    }

    /// Every problem, then one saying how many were left out, if any.
    pub fn list(&self) -> Vec<Problem> {
        let mut out = self.list.clone();
        if self.left_out > 0 {
            out.push(Problem { key: String::new(), message: format!("… and {} more problems", self.left_out) });
        }
        out
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = self.list();
        f.write_str("invalid config: ")?;
        if list.len() > 1 {
            write!(f, "{} problems: ", self.list.len() + self.left_out)?;
        }
        for (i, p) in list.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_matches_the_key_and_what_is_inside_it() {
        let mut p = Problems::default();
        p.push("selection.include.pids[3]", "bad");
        assert!(p.touch("selection") && p.touch("selection.include") && p.touch("selection.include.pids"));
        assert!(!p.touch("selection.inc") && !p.touch("selection.exclude") && !p.touch("routes"));
    }

    #[test]
    fn many_problems_are_capped_and_counted() {
        let mut p = Problems::default();
        for i in 0..MAX_PROBLEMS + 7 {
            p.push(format!("k{i}"), "bad");
        }
        let list = p.list();
        assert_eq!(list.len(), MAX_PROBLEMS + 1);
        assert_eq!(list.last().unwrap().message, "… and 7 more problems");
        assert!(p.to_string().starts_with("invalid config: 57 problems: k0: bad; k1: bad;"), "{p}");
    }

    #[test]
    fn huge_keys_and_messages_are_cut() {
        let mut p = Problems::default();
        p.push("k".repeat(10_000), "é".repeat(10_000));
        let only = &p.list()[0];
        assert_eq!(only.key.len(), MAX_KEY_BYTES + '…'.len_utf8());
        assert!(only.message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8() && only.message.ends_with('…'));
    }

    #[test]
    fn one_problem_reads_as_a_sentence() {
        let mut p = Problems::default();
        p.push("capture_size", "must be between 1 and 4096 bytes, not 0");
        assert_eq!(p.to_string(), "invalid config: capture_size: must be between 1 and 4096 bytes, not 0");
        let mut p = Problems::default();
        p.push("", "not valid JSON: EOF");
        assert_eq!(p.to_string(), "invalid config: not valid JSON: EOF");
    }
}
