//! SQL text shared by the PostgreSQL and MySQL/MariaDB parsers: a tokenizer
//! that knows each dialect's quoting, the sanitizer behind the default
//! `db.query.text` (no literal ever leaves), and `db.query.summary`.
//!
//! A hand-written tokenizer rather than a SQL parser (`sqlparser`): captured
//! queries are often cut at `capture_size`, written in a dialect a parser
//! only half knows, or not SQL at all, and the sanitizer must still classify
//! every byte. Measured in `benches` / the module tests: see `NOTES.md`.

mod config;
pub(crate) mod first;
mod lexer;
mod operation;
mod query;
mod sanitize;
pub(crate) mod seam;
mod summary;
mod telemetry;

#[cfg(test)]
pub(crate) mod checks;
#[cfg(test)]
mod tests;

pub use config::{QueryText, SqlProtocolConfig};
pub use lexer::Dialect;
pub use operation::{DbCommand, DbError, DbOperation, DbStatus};
pub use query::{QueryInfo, SqlOptions, MAX_QUERY_BYTES};
pub use sanitize::{sanitize, sanitize_into};
pub use summary::{summarize, Summary, MAX_SUMMARY_BYTES};
pub use telemetry::{error_is_failure, SqlDescriber};
