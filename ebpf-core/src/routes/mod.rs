//! `http.route` templates: low-cardinality names for the paths a server
//! answers, so metrics can be broken down by endpoint without one series per
//! URL.
//!
//! The input is always `url.path` (no query string, no fragment).
//!
//! # Configured patterns
//!
//! A pattern is a template such as `/users/{id}`, `/api/v1/orders/{order_id}/items/{item}`
//! or `/static/*`, compared segment by segment (segments are what lies between
//! `/`s; `/a/` has the segments `a` and an empty one):
//!
//! - a literal segment matches exactly that segment (case-sensitive);
//! - `{name}` matches exactly one non-empty segment (`name`: letters, digits, `_`, `-`, `.`);
//!   it must be the whole segment (`/files/{name}.txt` is rejected);
//! - `*` as the whole last segment matches one or more remaining segments, any
//!   content, empty included: `/static/*` matches `/static/`, `/static/a.css`
//!   and `/static/a/b.css`, but not `/static`.
//!
//! Patterns must start with `/`. They are tried in the configured order and the
//! first match wins; the route is the pattern text itself.
//!
//! # Heuristic
//!
//! When no pattern matches and the heuristic is on, the route is the path with
//! every ID-like segment replaced by `{id}` (other segments, and the number of
//! segments, are kept). A segment is ID-like when it is:
//!
//! 1. all ASCII digits (`123`, `0042`);
//! 2. a UUID: 8-4-4-4-12 hex digits separated by `-` (either case);
//! 3. hex: at least 8 characters, all `0-9a-fA-F`, at least one of them a
//!    decimal digit (`9f1c2e7a`, a MongoDB ObjectId, a SHA); `deadbeef`, with
//!    no digit, stays;
//! 4. a random-looking token: at least 16 characters, all of them ASCII
//!    letters, digits or `-_.=~` (base64url, JWT, ULID, nanoid, Stripe-style
//!    `cus_…` alphabets), containing a run of at least 8 ASCII letters and digits
//!    (between two of those separators) that mixes letters and digits
//!    (`cus_NffrFeUfNV2Hib`, `01ARZ3NDEKTSV4RRFFQ69G5FAV`). Slugs whose words
//!    are each all letters or all digits stay (`release-notes-2024`,
//!    `ipv6-configuration-guide`).
//!
//! Short words are never touched (`v1`, `api`, `users`, `h2c`), nor is anything
//! with `%` (percent-encoded text). Paths with no ID-like segment are their own
//! route (`/health`), so the heuristic bounds the cardinality of ID-keyed REST
//! paths but not of arbitrary free-text paths; the metrics' per-metric series
//! limit is the backstop for those.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Problems;

/// Most `routes.patterns`: each is tried in order on every server request.
const MAX_ROUTE_PATTERNS: usize = 10_000;

/// The placeholder the heuristic puts in place of an ID-like segment.
pub const ID_PLACEHOLDER: &str = "{id}";

/// A configured pattern that cannot be used; names the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid http.route pattern {pattern:?}: {reason}")]
pub struct RouteError {
    pub pattern: String,
    pub reason: &'static str,
}

/// `routes` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// `http.route` templates such as `/users/{id}` or `/static/*`, tried in
    /// order on every server request; the first match wins.
    #[schemars(length(max = MAX_ROUTE_PATTERNS))]
    pub patterns: Vec<String>,
    /// When no pattern matches, derive the route from the path by turning
    /// ID-like segments (numbers, UUIDs, hex, random tokens) into `{id}`.
    pub heuristic: bool,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        Self { patterns: Vec::new(), heuristic: true }
    }
}

impl RoutesConfig {
    /// Every pattern parses; the first one that does not is the error.
    pub fn validate(&self) -> Result<(), RouteError> {
        self.matcher().map(drop)
    }

    pub(crate) fn check(&self, problems: &mut Problems) {
        if !problems.touch("routes.patterns") {
            if let Err(e) = self.validate() {
                problems.push("routes.patterns", e.to_string());
            }
        }
    }

    pub fn matcher(&self) -> Result<RouteMatcher, RouteError> {
        RouteMatcher::new(&self.patterns, self.heuristic)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    /// `*`, only ever last.
    Rest,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, RouteError> {
        let err = |reason| Err(RouteError { pattern: text.to_string(), reason });
        let Some(rest) = text.strip_prefix('/') else {
            return err("must start with '/'");
        };
        if text.contains(['?', '#']) {
            return err("must not contain a query ('?') or fragment ('#')");
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let segment = if *part == "*" {
                if i + 1 != parts.len() {
                    return err("'*' is only allowed as the whole last segment");
                }
                Segment::Rest
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                if !valid {
                    return err("a parameter is '{name}' with a non-empty name of letters, digits, '_', '-' or '.'");
                }
                if names.contains(&name) {
                    return err("a parameter name is used twice");
                }
                names.push(name);
                Segment::Param
            } else if part.contains(['{', '}', '*']) {
                return err("'{', '}' and '*' must make up a whole segment ('{name}' or a last '*')");
            } else {
                Segment::Literal(part.to_string())
            };
            segments.push(segment);
        }
        Ok(Self { text: text.to_string(), segments })
    }

    /// `path` is `url.path`; its leading `/` is not a segment.
    fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match segment {
                // Anything left, empty included, but at least one segment.
                Segment::Rest => return parts.next().is_some(),
                Segment::Param => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(lit) => match parts.next() {
                    Some(p) if p == lit => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

/// Which route a path has, if any, without allocating.
enum Resolved {
    Pattern(usize),
    /// The heuristic found nothing to replace: the path is its own route.
    Path,
    /// The heuristic's template was written to the caller's buffer.
    Buffer,
}

/// Maps `url.path` to `http.route`.
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    patterns: Vec<Pattern>,
    heuristic: bool,
}

impl RouteMatcher {
    /// Fails on the first pattern that is not valid, naming it.
    pub fn new(patterns: &[String], heuristic: bool) -> Result<Self, RouteError> {
        let patterns = patterns.iter().map(|p| Pattern::parse(p)).collect::<Result<_, _>>()?;
        Ok(Self { patterns, heuristic })
    }

    /// True when `route` can never return a route.
    pub fn is_disabled(&self) -> bool {
        self.patterns.is_empty() && !self.heuristic
    }

    /// The route of `path` (a `url.path`): the first matching pattern, else
    /// the heuristic template (if enabled), else `None`. Allocates only when
    /// the heuristic replaced a segment; see `route_in` for a version that
    /// never allocates in the steady state.
    pub fn route<'a>(&'a self, path: &'a str) -> Option<Cow<'a, str>> {
        let mut buf = String::new();
        Some(match self.resolve(path, &mut buf)? {
            Resolved::Pattern(i) => Cow::Borrowed(self.patterns[i].text.as_str()),
            Resolved::Path => Cow::Borrowed(path),
            Resolved::Buffer => Cow::Owned(buf),
        })
    }

    /// Like `route`, writing a heuristic template into `buf` (cleared first)
    /// and returning a view of it: reuse one buffer for every call.
    pub fn route_in<'a>(&'a self, path: &'a str, buf: &'a mut String) -> Option<&'a str> {
        Some(match self.resolve(path, buf)? {
            Resolved::Pattern(i) => self.patterns[i].text.as_str(),
            Resolved::Path => path,
            Resolved::Buffer => buf.as_str(),
        })
    }

    fn resolve(&self, path: &str, buf: &mut String) -> Option<Resolved> {
        if let Some(i) = self.patterns.iter().position(|p| p.matches(path)) {
            return Some(Resolved::Pattern(i));
        }
        if !self.heuristic || path.is_empty() {
            return None;
        }
        // One pass: the buffer is only written from the first ID-like segment on.
        let mut replaced = false;
        let mut offset = 0;
        // Split as bytes: `split('/')` set up a char searcher per call, most
        // of this function's time on short paths.
        for segment in path.as_bytes().split(|&b| b == b'/') {
            if is_id_like_bytes(segment) {
                if !replaced {
                    buf.clear();
                    buf.push_str(&path[..offset]);
                    replaced = true;
                }
                buf.push_str(ID_PLACEHOLDER);
            } else if replaced {
                // Between two '/' (or the ends): char boundaries.
                buf.push_str(&path[offset..offset + segment.len()]);
            }
            offset += segment.len() + 1;
            if replaced && offset <= path.len() {
                buf.push('/');
            }
        }
        Some(if replaced { Resolved::Buffer } else { Resolved::Path })
    }
}

/// The heuristic's test for one path segment; see the module documentation.
pub fn is_id_like(segment: &str) -> bool {
    is_id_like_bytes(segment.as_bytes())
}

fn is_id_like_bytes(b: &[u8]) -> bool {
    if b.is_empty() {
        return false;
    }
    // 1. Numbers.
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    // 2. UUIDs.
    if b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
    {
        return true;
    }
    // 3. Long hex with a digit.
    if b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return true;
    }
    // 4. Long random-looking tokens.
    b.len() >= 16
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'=' | b'~'))
        && b.split(|c| !c.is_ascii_alphanumeric())
            .any(|run| run.len() >= 8 && run.iter().any(u8::is_ascii_digit) && run.iter().any(u8::is_ascii_alphabetic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn matcher(patterns: &[&str], heuristic: bool) -> RouteMatcher {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        RouteMatcher::new(&patterns, heuristic).unwrap()
    }

    fn route(m: &RouteMatcher, path: &str) -> Option<String> {
        let via_cow = m.route(path).map(Cow::into_owned);
        let mut buf = String::from("stale");
        let via_buf = m.route_in(path, &mut buf).map(str::to_string);
        assert_eq!(via_cow, via_buf, "{path}");
        via_cow
    }

    #[test]
    fn patterns_match_segment_by_segment() {
        let m = matcher(&["/users/{id}", "/api/v1/orders/{order_id}/items/{item}", "/static/*", "/"], false);
        assert_eq!(route(&m, "/users/42").as_deref(), Some("/users/{id}"));
        assert_eq!(route(&m, "/users/alice").as_deref(), Some("/users/{id}"));
        assert_eq!(route(&m, "/users/42/orders"), None);
        assert_eq!(route(&m, "/users/"), None, "a parameter needs a non-empty segment");
        assert_eq!(route(&m, "/users"), None);
        assert_eq!(route(&m, "/Users/42"), None, "literals are case-sensitive");
        assert_eq!(route(&m, "/api/v1/orders/7/items/abc").as_deref(), Some("/api/v1/orders/{order_id}/items/{item}"));
        assert_eq!(route(&m, "/api/v2/orders/7/items/abc"), None);
        assert_eq!(route(&m, "/static/app.css").as_deref(), Some("/static/*"));
        assert_eq!(route(&m, "/static/js/app.js").as_deref(), Some("/static/*"));
        assert_eq!(route(&m, "/static/").as_deref(), Some("/static/*"));
        assert_eq!(route(&m, "/static"), None);
        assert_eq!(route(&m, "/").as_deref(), Some("/"));
        assert_eq!(route(&m, "/health"), None, "no heuristic");
        assert_eq!(route(&m, ""), None);
        assert!(!m.is_disabled());
        assert!(matcher(&[], false).is_disabled());
    }

    #[test]
    fn first_match_wins() {
        let m = matcher(&["/users/me", "/users/{id}", "/users/*"], true);
        assert_eq!(route(&m, "/users/me").as_deref(), Some("/users/me"));
        assert_eq!(route(&m, "/users/7").as_deref(), Some("/users/{id}"));
        assert_eq!(route(&m, "/users/7/avatar").as_deref(), Some("/users/*"));
        let m = matcher(&["/users/*", "/users/me"], true);
        assert_eq!(route(&m, "/users/me").as_deref(), Some("/users/*"));
        // Patterns come before the heuristic.
        let m = matcher(&["/orders/{order}"], true);
        assert_eq!(route(&m, "/orders/123").as_deref(), Some("/orders/{order}"));
        assert_eq!(route(&m, "/carts/123").as_deref(), Some("/carts/{id}"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for (bad, why) in [
            ("users/{id}", "start with '/'"),
            ("", "start with '/'"),
            ("/files/{name}.txt", "whole segment"),
            ("/a/{}/b", "non-empty name"),
            ("/a/{x y}", "non-empty name"),
            ("/a/*/b", "last segment"),
            ("/a/{id}/b/{id}", "twice"),
            ("/a?b", "query"),
            ("/a/b*", "whole segment"),
        ] {
            let err = RouteMatcher::new(&["/ok".to_string(), bad.to_string()], true).unwrap_err();
            assert_eq!(err.pattern, bad);
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")) && msg.contains(why), "{bad}: {msg}");
        }
    }

    #[test]
    fn heuristic_on_realistic_paths() {
        let m = matcher(&[], true);
        let cases = [
            ("/users/123/orders/9f1c2e7a-4b3d-4c1e-8f2a-0123456789ab", "/users/{id}/orders/{id}"),
            ("/v1/items/abc123def456abc1", "/v1/items/{id}"),
            ("/health", "/health"),
            ("/", "/"),
            ("/api/v2/users", "/api/v2/users"),
            ("/users/42/", "/users/{id}/"),
            ("/commits/3f786850e387550fdab836ed7e6dc881de23001b", "/commits/{id}"),
            ("/objects/507f1f77bcf86cd799439011", "/objects/{id}"),
            ("/blobs/deadbeef", "/blobs/deadbeef"),
            ("/tx/ABCDEF0123", "/tx/{id}"),
            ("/customers/cus_NffrFeUfNV2Hib", "/customers/{id}"),
            ("/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/events/{id}"),
            ("/s/V1StGXR8_Z5jdHi6B-myT", "/s/{id}"),
            ("/auth/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln", "/auth/{id}"),
            ("/blog/release-notes-2024", "/blog/release-notes-2024"),
            ("/docs/ipv6-configuration-guide", "/docs/ipv6-configuration-guide"),
            ("/docs/getting-started-with-kubernetes", "/docs/getting-started-with-kubernetes"),
            ("/media/h2c/mp4/utf8", "/media/h2c/mp4/utf8"),
            ("/search/hello%20world%202024abcdef", "/search/hello%20world%202024abcdef"),
            ("/a1b2c3", "/a1b2c3"),
            ("/files/2024/report.pdf", "/files/{id}/report.pdf"),
        ];
        for (path, want) in cases {
            assert_eq!(route(&m, path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn unchanged_paths_are_borrowed() {
        let m = matcher(&["/users/{id}"], true);
        assert!(matches!(m.route("/health"), Some(Cow::Borrowed("/health"))));
        assert!(matches!(m.route("/users/1"), Some(Cow::Borrowed("/users/{id}"))));
        assert!(matches!(m.route("/carts/1"), Some(Cow::Owned(_))));
    }

    #[test]
    fn ten_thousand_ids_make_one_route() {
        let m = matcher(&[], true);
        let mut buf = String::new();
        let mut routes = HashSet::new();
        for n in 0..10_000u32 {
            routes.insert(m.route_in(&format!("/users/{n}"), &mut buf).unwrap().to_string());
        }
        assert_eq!(routes.len(), 1);
        assert!(routes.contains("/users/{id}"));
        // The same holds for UUIDs and hashes.
        let mut rng = fastrand::Rng::with_seed(7);
        routes.clear();
        for _ in 0..10_000 {
            let uuid = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                rng.u32(..),
                rng.u16(..),
                rng.u16(..),
                rng.u16(..),
                rng.u64(..1 << 48)
            );
            routes.insert(m.route(&format!("/orders/{uuid}/items")).unwrap().into_owned());
        }
        assert_eq!(routes.into_iter().collect::<Vec<_>>(), ["/orders/{id}/items"]);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: RoutesConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, RoutesConfig { patterns: vec![], heuristic: true });
        let c: RoutesConfig = serde_json::from_str(r#"{"patterns": ["/a/{b}"], "heuristic": false}"#).unwrap();
        assert!(c.validate().is_ok());
        assert!(c.matcher().unwrap().route("/x/1").is_none());
        let c: RoutesConfig = serde_json::from_str(r#"{"patterns": ["/ok", "nope"]}"#).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(serde_json::from_str::<RoutesConfig>(r#"{"pattern": []}"#).is_err());
    }
}
