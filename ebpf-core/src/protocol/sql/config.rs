//! The options of a SQL protocol (`protocols.postgresql`, `protocols.mysql`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SqlOptions;

/// A SQL database protocol: its switch, and what its spans carry of the
/// query text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqlProtocolConfig {
    /// Parse this protocol. Off, its connections are muted after their first
    /// payload, like any stream no enabled protocol recognises.
    pub enabled: bool,
    /// `db.query.text` on spans: `sanitized` (every literal, string, number
    /// and `IN (...)` list becomes `?`; comments dropped), `raw` (as sent,
    /// literals included: opt in only where the data is not sensitive), or
    /// `off` (no text; `db.query.summary` and the span name stay).
    pub query_text: QueryText,
}

impl Default for SqlProtocolConfig {
    fn default() -> Self {
        Self { enabled: true, query_text: QueryText::Sanitized }
    }
}

impl SqlProtocolConfig {
    /// What the parsers keep of query texts: the raw text only when opted into.
    pub fn parser_options(&self) -> SqlOptions {
        SqlOptions { raw_text: self.query_text == QueryText::Raw }
    }
}

/// What `db.query.text` holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryText {
    /// Literals replaced by `?`.
    #[default]
    Sanitized,
    /// As sent (opt-in: literals can be personal data or secrets).
    Raw,
    /// Not exported.
    Off,
}
