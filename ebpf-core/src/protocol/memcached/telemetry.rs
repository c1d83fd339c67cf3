//! A memcached command as an `Operation`, through the shared database
//! description (`protocol::db`; the conventions have nothing specific to
//! memcached): CLIENT in the process that sent the command, SERVER in
//! memcached.
//!
//! - Span name and `db.operation.name`: the command as sent (`get`, `set`,
//!   `mg`, `incr`); `memcached` when it was not captured.
//! - `db.response.status_code`: the reply's code as the server sent it
//!   (`STORED`, `NOT_FOUND`, `END`, `EN`, `CLIENT_ERROR`), except for
//!   incr/decr's number; for a quiet meta command whose reply was
//!   suppressed, the code its silence stands for.
//! - `error.type`: `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR` (the span
//!   fails), or `db.response.missing` when the connection ended first. A
//!   miss, `NOT_STORED` or `EXISTS` is an answer, not a failure.
//! - `ebpf_receiver.cache.hits` and `ebpf_receiver.cache.misses`, on
//!   retrievals (`get`, `gets`, `gat`, `gats`, `mg`): keys found and not
//!   found; a multi-key `get` counts each key.
//! - No `db.query.text`: memcached has no query language, and its keys
//!   carry user data; no key or value is ever exported.
//! - Metrics: `db.client.operation.duration` (client commands).

use super::{Code, MemcachedOperation, Outcome};
use crate::protocol::db::{self, DbCall, ERROR_NO_RESPONSE};
use crate::protocol::{ConnFacts, Operation};

/// `db.system.name`.
pub const SYSTEM: &str = "memcached";

/// Describes one command and hands the operation to `emit`.
pub fn describe(m: &MemcachedOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
    let mut call = DbCall::new(SYSTEM, m.role, m.request_start_ns, m.response_end_ns);
    call.operation = m.command.as_deref();
    match m.outcome {
        Outcome::Reply(code) => {
            if !matches!(code, Code::Number | Code::Other) {
                call.status_code = Some(code.as_str());
            }
            if code.is_error() {
                call.error_type = Some(code.as_str());
            }
        }
        Outcome::NoResponse => call.error_type = Some(ERROR_NO_RESPONSE),
        Outcome::NoReply | Outcome::Unknown => {}
    }
    let mut op = Operation::empty();
    db::describe(&mut op, &call, facts);
    if let (Some(hits), Some(misses)) = (m.hits, m.misses()) {
        op.attr("ebpf_receiver.cache.hits", i64::from(hits));
        op.attr("ebpf_receiver.cache.misses", i64::from(misses));
    }
    emit(&op);
}
