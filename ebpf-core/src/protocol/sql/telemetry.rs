//! A SQL operation (PostgreSQL, MySQL, MariaDB) as an `Operation`, per the
//! database conventions (`protocol::db`):
//!
//! - a query or an execution of a prepared statement: `db.operation.name`,
//!   `db.collection.name` and `db.query.summary` from its text (the summary
//!   names the span), `db.query.text` sanitized (or raw, or none: the
//!   protocol's `query_text` option);
//! - a statement prepared (PostgreSQL Parse answered before any Execute,
//!   MySQL COM_STMT_PREPARE): `db.operation.name` `PREPARE`, the statement's
//!   collection and text, no summary, so the span is `PREPARE {collection}`
//!   and a statement prepared once and executed 100 times gives 100 spans
//!   named by its summary and one `PREPARE` span;
//! - other commands (`PING`, `INIT_DB`, `RESET_CONNECTION`,
//!   `FUNCTION_CALL`): their protocol name as `db.operation.name`
//!   (`INIT_DB shop`: a change of database targets the namespace).
//!
//! Errors: `db.response.status_code` is the SQLSTATE (PostgreSQL) or the
//! error number (MySQL, MariaDB); `error.type` is the same code when the
//! error counts as a failure (`error_is_failure`), `_OTHER` when its code
//! was not captured. Server messages are never exported (they can quote
//! the data).

use crate::protocol::db::{self, DbCall, ERROR_OTHER};
use crate::protocol::{ConnFacts, Operation, ProtocolsConfig, Value};

use super::{DbCommand, DbError, DbOperation, DbStatus, QueryText};

/// Whether a server error fails the operation, per each system's
/// conventions: PostgreSQL and MariaDB when the SQLSTATE class is `02` or
/// higher (MariaDB: every error without a SQLSTATE), MySQL every error.
pub fn error_is_failure(system: &str, error: &DbError) -> bool {
    let warning = matches!(error.sqlstate_class(), Some("00" | "01"));
    match system {
        "mysql" => true,
        _ => !warning,
    }
}

/// Describes SQL records with the configured `db.query.text` policy.
#[derive(Debug, Clone, Copy)]
pub struct SqlDescriber {
    postgresql: QueryText,
    mysql: QueryText,
}

impl SqlDescriber {
    pub fn new(config: &ProtocolsConfig) -> Self {
        Self { postgresql: config.postgresql.query_text, mysql: config.mysql.query_text }
    }

    #[inline]
    pub fn describe(&self, rec: &DbOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
        let text = if rec.system == "postgresql" { self.postgresql } else { self.mysql };
        let mut call = DbCall::new(rec.system, rec.role, rec.start_ns, rec.end_ns);
        call.namespace = rec.namespace.as_deref();
        let query = rec.query.as_deref();
        if text != QueryText::Off {
            call.query_text = query.map(|q| Value::Str(&q.text));
        }
        match rec.command {
            DbCommand::Query | DbCommand::Execute => {
                call.operation = query.and_then(|q| q.operation.as_deref());
                call.collection = query.and_then(|q| q.collection.as_deref());
                call.summary = query.and_then(|q| q.summary.as_deref());
                call.target = call.collection;
            }
            DbCommand::Prepare => {
                call.operation = Some("PREPARE");
                call.collection = query.and_then(|q| q.collection.as_deref());
                call.target = call.collection;
            }
            DbCommand::Other(name) => {
                call.operation = Some(name);
                if name == "INIT_DB" {
                    call.target = call.namespace;
                }
            }
        }
        if let DbStatus::Error(e) = &rec.status {
            let known = e.code != ERROR_OTHER;
            call.status_code = known.then_some(e.code.as_str());
            if error_is_failure(rec.system, e) {
                call.error_type = Some(if known { e.code.as_str() } else { ERROR_OTHER });
            }
        }
        let mut op = Operation::empty();
        db::describe(&mut op, &call, facts);
        emit(&op);
    }
}
