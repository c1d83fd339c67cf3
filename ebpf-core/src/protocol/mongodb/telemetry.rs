//! A MongoDB command as an `Operation`, per the database semantic
//! conventions (`db.system.name=mongodb`), through `db::describe` like every
//! database protocol: a CLIENT span for a command the traced process sent,
//! SERVER for one it answered (the conventions define no server-side
//! database metric: none is fed).
//!
//! Span name `{db.operation.name} {target}`, the target being the
//! collection, else the database: `find orders`, `insert orders`,
//! `listCollections shop`, `hello admin`.
//!
//! Span attributes: `db.system.name`, `db.operation.name` (the command),
//! `db.collection.name`, `db.namespace` (the database, `$db`),
//! `db.response.status_code` (the error code), `db.response.returned_rows`
//! (documents in the reply's cursor batch, when it was walked whole),
//! `server.address`/`server.port`, `network.peer.address`/`port`,
//! `error.type` (the error's `codeName`, else its code; a write error in an
//! `ok: 1` reply fails the command too; `db.response.missing` when the
//! connection closed first).
//!
//! Metric (clients): `db.client.operation.duration` with `db.system.name`,
//! `db.operation.name`, `db.collection.name`, `db.namespace`,
//! `db.response.status_code`, `error.type`, `server.address`, `server.port`.
//!
//! Filter documents, values and error messages are never read. A command
//! sent compressed (OP_COMPRESSED) cannot be named: it is not described
//! (and is counted, `ebpf_receiver.operations.undescribed`).

use super::{MongoOperation, MongoStatus};
use crate::protocol::db::{self, DbCall};
use crate::protocol::{ConnFacts, Operation};

/// Describes `op` and hands its operation to `emit`; false when it cannot
/// be named (compressed), so nothing is emitted.
pub fn describe(op: &MongoOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) -> bool {
    let Some(command) = op.command.as_deref().filter(|_| !op.compressed) else { return false };
    let (collection, database) = (op.collection.as_deref(), op.database.as_deref());
    // The code as text, made only for failed commands.
    let code_text = match &op.status {
        MongoStatus::Error { code: Some(c), .. } => Some(c.to_string()),
        _ => None,
    };
    let (code, error) = match &op.status {
        MongoStatus::Error { code_name, .. } => {
            let code = code_text.as_deref();
            (code, Some(code_name.as_deref().or(code).unwrap_or(db::ERROR_OTHER)))
        }
        MongoStatus::NoResponse => (None, Some(db::ERROR_NO_RESPONSE)),
        MongoStatus::Ok | MongoStatus::Unknown => (None, None),
    };
    let mut call = DbCall::new("mongodb", op.role, op.start_ns, op.end_ns);
    call.operation = Some(command);
    call.collection = collection;
    call.namespace = database;
    call.target = collection.or(database);
    call.status_code = code;
    call.error_type = error;
    let mut o = Operation::empty();
    db::describe(&mut o, &call, facts);
    if let Some(n) = op.returned_documents {
        o.attr("db.response.returned_rows", n as i64);
    }
    emit(&o);
    true
}
