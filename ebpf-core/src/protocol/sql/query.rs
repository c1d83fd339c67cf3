//! What a parser keeps of one query text: analysed once (sanitized text,
//! summary, operation, collection) and shared, so a prepared statement
//! executed many times costs one analysis.

use std::sync::Arc;

use super::lexer::{Dialect, Kind, Lexer};
use super::sanitize::sanitize_into;
use super::summary::summarize;

/// Longest query text analysed; longer (captured) text is cut here.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// How query texts are exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlOptions {
    /// Keep the text as sent, literals included (opt-in). Off: sanitized.
    pub raw_text: bool,
}

/// One query text, analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    /// `db.query.text`: sanitized unless `SqlOptions::raw_text`.
    pub text: Box<str>,
    /// `db.query.summary`, when the text names a known operation.
    pub summary: Option<Box<str>>,
    /// `db.operation.name`: the operation of a single-statement text.
    pub operation: Option<Box<str>>,
    /// `db.collection.name`: when the text names exactly one collection.
    pub collection: Option<Box<str>>,
    /// Only a prefix of the text was seen (capture size, `MAX_QUERY_BYTES`,
    /// or an ambiguous quote ended the sanitized text).
    pub truncated: bool,
}

impl QueryInfo {
    /// `sql` is what was captured of the text; `complete` says whether that
    /// is all of it. A cut text loses its last token, which may be cut too
    /// (`FROM use` of `FROM users` must not become a collection).
    pub fn analyze(sql: &[u8], complete: bool, dialect: Dialect, opts: SqlOptions) -> Arc<QueryInfo> {
        let mut complete = complete && sql.len() <= MAX_QUERY_BYTES;
        let mut sql = &sql[..sql.len().min(MAX_QUERY_BYTES)];
        // A NUL ends C strings; nothing after it is query text.
        if let Some(nul) = memchr::memchr(0, sql) {
            sql = &sql[..nul];
        }
        if !complete {
            sql = without_last_token(sql, dialect);
        }
        let summary = summarize(sql, dialect);
        let text: Box<str> = if opts.raw_text {
            String::from_utf8_lossy(sql).into()
        } else {
            let mut out = String::with_capacity(sql.len());
            if sanitize_into(sql, dialect, MAX_QUERY_BYTES, &mut out) {
                complete = false;
            }
            out.into()
        };
        let boxed = |s: String| (!s.is_empty()).then(|| s.into_boxed_str());
        Arc::new(QueryInfo {
            text,
            summary: boxed(summary.text),
            operation: summary.operation.map(String::into_boxed_str),
            collection: summary.collection.map(String::into_boxed_str),
            truncated: !complete,
        })
    }
}

fn without_last_token(sql: &[u8], dialect: Dialect) -> &[u8] {
    match Lexer::new(sql, dialect).last() {
        Some(t) if t.end == sql.len() && t.kind != Kind::Space && t.kind != Kind::Punct => &sql[..t.start],
        _ => sql,
    }
}
