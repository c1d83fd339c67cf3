//! A MongoDB command as an `Operation`, per the database semantic
//! conventions (`db.system.name=mongodb`): a CLIENT span for a command the
//! traced process sent, SERVER for one it answered (the conventions define
//! no server-side database metric: none is fed).
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
//! `ok: 1` reply fails the command too; `mongodb.response.missing` when the
//! connection closed first).
//!
//! Metric (clients): `db.client.operation.duration` with `db.system.name`,
//! `db.operation.name`, `db.collection.name`, `db.namespace`,
//! `db.response.status_code`, `error.type`, `server.address`, `server.port`.
//!
//! Filter documents, values and error messages are never read. A command
//! sent compressed (OP_COMPRESSED) cannot be named: it is not described
//! (and is counted, `ebpf_receiver.operations.undescribed`).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::{MongoOperation, MongoStatus};
use crate::metrics::instruments::{DB_CLIENT, DURATION};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};

/// `error.type` for a command whose connection closed before its reply.
pub const ERROR_NO_RESPONSE: &str = "mongodb.response.missing";

/// `error.type` for a failed command whose reply gave no code (a legacy
/// OP_REPLY `QueryFailure`).
const ERROR_OTHER: &str = "_OTHER";

/// Describes `op` and hands its operation to `emit`; false when it cannot
/// be named (compressed), so nothing is emitted.
pub fn describe(op: &MongoOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) -> bool {
    let Some(command) = op.command.as_deref().filter(|_| !op.compressed) else { return false };
    let (collection, database) = (op.collection.as_deref(), op.database.as_deref());
    let mut o = Operation::empty();
    o.name = SpanName::new(command, collection.or(database));
    o.kind = match op.role {
        Role::Client => SpanKind::Client,
        Role::Server => SpanKind::Server,
    };
    (o.start_ns, o.end_ns) = (op.start_ns, op.end_ns);
    let (code, error) = match &op.status {
        MongoStatus::Error { code, code_name } => {
            let e = match (code_name.as_deref(), code) {
                (Some(name), _) => Value::Str(name),
                (None, Some(c)) => Value::IntStr(i64::from(*c)),
                (None, None) => Value::Str(ERROR_OTHER),
            };
            (code.map(|c| Value::IntStr(i64::from(c))), Some(e))
        }
        MongoStatus::NoResponse => (None, Some(Value::Str(ERROR_NO_RESPONSE))),
        MongoStatus::Ok | MongoStatus::Unknown => (None, None),
    };
    o.attr("db.system.name", "mongodb");
    o.attr("db.operation.name", command);
    if let Some(c) = collection {
        o.attr("db.collection.name", c);
    }
    if let Some(d) = database {
        o.attr("db.namespace", d);
    }
    if let Some(c) = code {
        o.attr("db.response.status_code", c);
    }
    if let Some(n) = op.returned_documents {
        o.attr("db.response.returned_rows", n as i64);
    }
    let server = facts.endpoints.map(|ep| match op.role {
        Role::Client => ep.peer,
        Role::Server => ep.local,
    });
    if let Some((ip, port)) = server {
        o.attr("server.address", ip);
        o.attr("server.port", i64::from(port));
    }
    if let Some(ep) = &facts.endpoints {
        o.attr("network.peer.address", ep.peer.0);
        o.attr("network.peer.port", i64::from(ep.peer.1));
    }
    if let Some(e) = error {
        o.attr("error.type", e);
        o.failed = true;
    }
    if op.role == Role::Client {
        o.metrics.push(MetricFeed::new(&DB_CLIENT));
        let feed = o.metrics.last_mut().expect("just pushed");
        feed.attr("db.system.name", "mongodb");
        feed.attr("db.operation.name", command);
        if let Some(c) = collection {
            feed.attr("db.collection.name", c);
        }
        if let Some(d) = database {
            feed.attr("db.namespace", d);
        }
        if let Some(c) = code {
            feed.attr("db.response.status_code", c);
        }
        if let Some(e) = error {
            feed.attr("error.type", e);
        }
        if let Some((ip, port)) = server {
            feed.attr("server.address", ip);
            feed.attr("server.port", i64::from(port));
        }
        feed.value(DURATION, op.end_ns.saturating_sub(op.start_ns));
    }
    emit(&o);
    true
}
