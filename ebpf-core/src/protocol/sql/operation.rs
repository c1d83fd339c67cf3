//! The record both SQL parsers produce: one completed database operation,
//! protocol-neutral enough for span and metric assembly.

use std::sync::Arc;

use compact_str::CompactString;

use super::query::QueryInfo;
use crate::protocol::Role;

/// What the client asked for, in protocol terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbCommand {
    /// Query text run as sent (PostgreSQL simple query, MySQL COM_QUERY).
    Query,
    /// A prepared statement executed (PostgreSQL Bind/Execute, MySQL
    /// COM_STMT_EXECUTE); the text is the statement's.
    Execute,
    /// A statement prepared (PostgreSQL Parse without Execute, MySQL
    /// COM_STMT_PREPARE).
    Prepare,
    /// Another command, by its protocol name (`PING`, `INIT_DB`, `FUNCTION_CALL`).
    Other(&'static str),
}

/// How the operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbStatus {
    Ok,
    Error(DbError),
    /// The response's end was seen but not all of it (bytes past the
    /// capture or lost events): it may have failed.
    Unknown,
}

/// An error the server returned. Only codes: messages can quote the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// `db.response.status_code`: the SQLSTATE (PostgreSQL) or the error
    /// number (MySQL/MariaDB), as a string.
    pub code: CompactString,
    /// The SQLSTATE, when the server sent one (MySQL sends both).
    pub sqlstate: Option<CompactString>,
}

impl DbError {
    /// The SQLSTATE class (its first two characters), e.g. `23` for an
    /// integrity constraint violation; classes `00` and `01` are not errors.
    pub fn sqlstate_class(&self) -> Option<&str> {
        self.sqlstate.as_deref().and_then(|s| s.get(..2))
    }
}

/// One completed operation on a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct DbOperation {
    /// `db.system.name`: `postgresql`, `mysql` or `mariadb`.
    pub system: &'static str,
    pub command: DbCommand,
    /// The query text analysed (None when it was never seen: a statement
    /// prepared before the connection was followed, or a command without text).
    pub query: Option<Arc<QueryInfo>>,
    /// When the first byte of the request was sent/received (the chunk's ts).
    pub start_ns: u64,
    /// When the response's last message was seen.
    pub end_ns: u64,
    pub status: DbStatus,
    /// Rows returned (result rows of a SELECT-like statement), if known.
    pub returned_rows: Option<u64>,
    /// Rows changed, as the server reported (INSERT/UPDATE/DELETE/COPY).
    pub affected_rows: Option<u64>,
    /// `db.namespace`: the database the connection uses.
    pub namespace: Option<Arc<str>>,
    /// Which side the traced process was on.
    pub role: Role,
}
