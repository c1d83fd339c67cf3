//! Request path patterns (syntax in `config::EndpointSpec`). Matching runs on
//! every POST the host makes or serves, so it works on the borrowed path,
//! segment by segment, and allocates nothing.

/// The only capture name: a segment (or part of one) that names the model.
const MODEL_CAPTURE: &str = "{model}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// Literal text around a non-empty variable part: `*`, or `{model}` when
    /// `capture`.
    Variable {
        before: String,
        after: String,
        capture: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// Segments before `**` (all of them when there is none)...
    head: Vec<Segment>,
    /// ...and, when there is a `**`, the segments after it, matched from the end.
    tail: Option<Vec<Segment>>,
    /// The pattern's text up to its first variable part: what every matching
    /// path starts with ("" when the pattern starts with `**`).
    literal_prefix: String,
}

/// A request path split once for matching against every pattern.
#[derive(Debug, Clone, Copy)]
pub struct PathView<'p> {
    /// The path without its leading '/'.
    rest: &'p str,
    segments: usize,
}

impl<'p> PathView<'p> {
    /// `path` must start with '/' (no query string).
    pub fn new(path: &'p str) -> Option<PathView<'p>> {
        let rest = path.strip_prefix('/')?;
        Some(PathView { rest, segments: rest.bytes().filter(|&b| b == b'/').count() + 1 })
    }
}

impl Segment {
    fn parse(text: &str, pattern: &str) -> Result<Segment, String> {
        let err = |why: &str| Err(format!("path pattern {pattern:?}: segment {text:?} {why}"));
        if text.is_empty() {
            return err("is empty");
        }
        if text.contains("**") {
            return err("may hold `**` only alone");
        }
        if text.contains(['?', '#']) {
            return err("holds '?' or '#' (patterns match the path only)");
        }
        let star = text.find('*');
        let brace = text.find('{');
        let (at, len, capture) = match (star, brace) {
            (None, None) if text.contains('}') => return err("has '}' without '{'"),
            (None, None) => return Ok(Segment::Literal(text.to_string())),
            (Some(_), Some(_)) => return err("may hold one `*` or `{model}`, not both"),
            (Some(at), None) => (at, 1, false),
            (None, Some(at)) if text[at..].starts_with(MODEL_CAPTURE) => (at, MODEL_CAPTURE.len(), true),
            (None, Some(_)) => return err("has a capture other than `{model}`"),
        };
        let (before, after) = (&text[..at], &text[at + len..]);
        if before.contains(['*', '{', '}']) || after.contains(['*', '{', '}']) {
            return err("may hold one `*` or `{model}` only");
        }
        Ok(Segment::Variable { before: before.to_string(), after: after.to_string(), capture })
    }

    /// `Some(capture)` when the segment matches (`capture` is the model, if
    /// this segment captures it).
    fn matches<'p>(&self, segment: &'p str) -> Option<Option<&'p str>> {
        match self {
            Segment::Literal(literal) => (literal == segment).then_some(None),
            Segment::Variable { before, after, capture } => {
                let middle = segment.strip_prefix(before.as_str())?.strip_suffix(after.as_str())?;
                if middle.is_empty() {
                    return None;
                }
                Some(capture.then_some(middle))
            }
        }
    }
}

impl PathPattern {
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        // "**/v1/x" reads as "/**/v1/x": the leading '/' is implied.
        let body = match text.strip_prefix('/') {
            Some(body) => body,
            None if text.starts_with("**") => text,
            None => return Err(format!("path pattern {text:?} must start with '/' or `**`")),
        };
        let mut head = Vec::new();
        let mut tail: Option<Vec<Segment>> = None;
        for part in body.split('/') {
            if part == "**" {
                if tail.is_some() {
                    return Err(format!("path pattern {text:?} may hold `**` once"));
                }
                tail = Some(Vec::new());
                continue;
            }
            let segment = Segment::parse(part, text)?;
            tail.as_mut().unwrap_or(&mut head).push(segment);
        }
        let all = || head.iter().chain(tail.iter().flatten());
        let captures = all().filter(|s| matches!(s, Segment::Variable { capture: true, .. })).count();
        if captures > 1 {
            return Err(format!("path pattern {text:?} may capture `{{model}}` once"));
        }
        let has_literal = all().any(|s| match s {
            Segment::Literal(_) => true,
            Segment::Variable { before, after, .. } => !before.is_empty() || !after.is_empty(),
        });
        if !has_literal {
            return Err(format!("path pattern {text:?} has no literal text: it would match any POST"));
        }
        let literal_prefix = literal_prefix(text);
        Ok(PathPattern { head, tail, literal_prefix })
    }

    pub fn literal_prefix(&self) -> &str {
        &self.literal_prefix
    }

    /// The literal text every matching path ends with, if any: a cheap
    /// first test for the many paths that match nothing.
    pub fn literal_suffix(&self) -> Option<&str> {
        let last = match &self.tail {
            Some(tail) => tail.last()?,
            None => self.head.last()?,
        };
        match last {
            Segment::Literal(literal) => Some(literal),
            Segment::Variable { after, .. } => Some(after.as_str()).filter(|a| !a.is_empty()),
        }
    }

    /// The last segment of a path, for `literal_suffix`.
    pub fn last_segment<'p>(path: PathView<'p>) -> &'p str {
        path.rest.rsplit('/').next().unwrap_or(path.rest)
    }

    /// `Some(model)` when the path matches; `model` is the `{model}` capture.
    pub fn matches<'p>(&self, path: PathView<'p>) -> Option<Option<&'p str>> {
        let mut model = None;
        let mut take = |segment: &Segment, text: &'p str| -> bool {
            match segment.matches(text) {
                Some(capture) => {
                    model = model.or(capture);
                    true
                }
                None => false,
            }
        };
        match &self.tail {
            None => {
                if path.segments != self.head.len() {
                    return None;
                }
                if !self.head.iter().zip(path.rest.split('/')).all(|(s, t)| take(s, t)) {
                    return None;
                }
            }
            Some(tail) => {
                if path.segments < self.head.len() + tail.len() {
                    return None;
                }
                if !self.head.iter().zip(path.rest.split('/')).all(|(s, t)| take(s, t)) {
                    return None;
                }
                if !tail.iter().rev().zip(path.rest.rsplit('/')).all(|(s, t)| take(s, t)) {
                    return None;
                }
            }
        }
        Some(model)
    }
}

/// The pattern's text up to its first `*` or `{`, with the implied leading
/// '/' of a `**` pattern giving "" (nothing certain about the start).
fn literal_prefix(text: &str) -> String {
    if !text.starts_with('/') || text.starts_with("/**") {
        return String::new();
    }
    let end = text.find(['*', '{']).unwrap_or(text.len());
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> Option<Option<String>> {
        let pattern = PathPattern::parse(pattern).expect("valid pattern");
        pattern.matches(PathView::new(path)?).map(|m| m.map(str::to_string))
    }

    #[test]
    fn literal_star_globstar_and_capture() {
        assert_eq!(matches("/v1/chat/completions", "/v1/chat/completions"), Some(None));
        assert_eq!(matches("/v1/chat/completions", "/v1/chat/completions/x"), None);
        assert_eq!(matches("/v1/chat/completions", "/v1/chat"), None);
        assert_eq!(matches("**/v1/chat/completions", "/v1/chat/completions"), Some(None));
        assert_eq!(matches("**/v1/chat/completions", "/proxy/openai/v1/chat/completions"), Some(None));
        assert_eq!(matches("**/v1/chat/completions", "/v1/chat/completion"), None);
        assert_eq!(matches("/a/*/c", "/a/b/c"), Some(None));
        assert_eq!(matches("/a/*/c", "/a//c"), None);
        assert_eq!(
            matches("/v1beta/models/{model}:generateContent", "/v1beta/models/gemini-2.0-flash:generateContent"),
            Some(Some("gemini-2.0-flash".into()))
        );
        assert_eq!(matches("/v1beta/models/{model}:generateContent", "/v1beta/models/:generateContent"), None);
        assert_eq!(matches("/v1beta/models/{model}:generateContent", "/v1beta/models/g:streamGenerateContent"), None);
        assert_eq!(
            matches("/x/**/deployments/{model}/chat", "/x/a/b/deployments/gpt4o/chat"),
            Some(Some("gpt4o".into()))
        );
        assert_eq!(matches("/v1/**", "/v1/anything/at/all"), Some(None));
    }

    #[test]
    fn literal_prefixes() {
        let prefix = |p: &str| PathPattern::parse(p).unwrap().literal_prefix().to_string();
        assert_eq!(prefix("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(prefix("/v1beta/models/{model}:generateContent"), "/v1beta/models/");
        assert_eq!(prefix("/v1/projects/*/locations"), "/v1/projects/");
        assert_eq!(prefix("**/v1/chat/completions"), "");
        assert_eq!(prefix("/**/v1/chat/completions"), "");
        assert_eq!(prefix("/v1/**/chat"), "/v1/");
    }

    #[test]
    fn literal_suffixes() {
        let suffix = |p: &str| PathPattern::parse(p).unwrap().literal_suffix().map(str::to_string);
        assert_eq!(suffix("**/v1/chat/completions").as_deref(), Some("completions"));
        assert_eq!(suffix("/v1beta/models/{model}:generateContent").as_deref(), Some(":generateContent"));
        assert_eq!(suffix("/x/{model}"), None);
        assert_eq!(suffix("/x/**"), None);
        assert_eq!(suffix("/x/*.json").as_deref(), Some(".json"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (pattern, why) in [
            ("v1/chat", "must start"),
            ("/v1//chat", "is empty"),
            ("/v1/", "is empty"),
            ("/**/a/**", "once"),
            ("/a**/b", "alone"),
            ("/{model}/{model}", "once"),
            ("/{deployment}/chat", "other than"),
            ("/a/*{model}", "not both"),
            ("/a/x*y*z", "one"),
            ("/a/b}", "without"),
            ("/a?key=1", "'?'"),
            ("**", "no literal"),
            ("/*/{model}", "no literal"),
        ] {
            let err = PathPattern::parse(pattern).unwrap_err();
            assert!(err.contains(why), "{pattern}: {err}");
        }
    }
}
