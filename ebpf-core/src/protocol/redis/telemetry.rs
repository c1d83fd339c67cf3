//! A Redis command as an `Operation`, per the Redis semantic conventions
//! (`span.db.redis.client`), through the shared database description
//! (`protocol::db`): CLIENT in the process that sent the command, SERVER in
//! redis-server.
//!
//! - Span name: `db.operation.name`, then the script for `EVALSHA`/`FCALL`
//!   (`FCALL myfunc`); `redis` when the command's name was not captured.
//!   The database index never names a span (the conventions' rule).
//! - `db.operation.name`: the command as sent, case kept, with its
//!   subcommand for container commands (`CLIENT SETNAME`, `CONFIG GET`).
//!   Pipelined and transaction commands each get their own span.
//! - `db.query.text`: the command in the CLI's syntax with every argument
//!   a `?` (`SET ? ?`, `HSET ? ? ? ? ?`; past 32, `...`). Keys are
//!   arguments: they carry user data (`session:<token>`), so none is ever
//!   exported. There is no raw opt-in: the parser never keeps argument bytes.
//! - `db.namespace`: the database index, when known reliably: 0 on a
//!   connection the kernel saw open, then what each `SELECT` chose (and
//!   `RESET` restored); unknown on a connection older than the receiver
//!   until its first `SELECT`.
//! - `db.stored_procedure.name`: the SHA-1 of `EVALSHA`, the function of `FCALL`.
//! - `db.response.status_code` and `error.type`: the error prefix
//!   (`ERR`, `WRONGTYPE`, `NOSCRIPT`); every error reply fails the span.
//!   An error without a prefix: `error.type` `_OTHER`; no reply before the
//!   connection ended: `db.response.missing`.
//! - `ebpf_receiver.redis.transaction` (commands queued between `MULTI` and
//!   `EXEC`): `executed`, `rejected` (refused when queued), `aborted` (EXEC
//!   ran nothing: a watched key changed), `discarded`, or `unknown` (EXEC's
//!   reply not seen). A queued command's span ends with `EXEC`'s reply and
//!   its outcome is its element of it.
//! - Metrics: `db.client.operation.duration` (client commands).

use compact_str::{CompactString, ToCompactString};

use super::{Outcome, RedisOperation};
use crate::protocol::db::{self, DbCall, ERROR_NO_RESPONSE, ERROR_OTHER};
use crate::protocol::{ConnFacts, Operation, TextValue, Value};

/// `db.system.name`.
pub const SYSTEM: &str = "redis";

/// `db.query.text`, written when the span is encoded.
struct QueryText<'a>(&'a RedisOperation);

impl TextValue for QueryText<'_> {
    fn write(&self, out: &mut String) {
        self.0.write_query_text(out);
    }
}

/// A command, subcommand or function name: what Redis names them with
/// (`GET`, `JSON.SET`, `NO-EVICT`, `my_func`). A token that is not one is a
/// client's mistake that may hold anything (a key, a password): it is not
/// exported.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-|:".contains(&b))
}

/// Describes one command and hands the operation to `emit`.
pub fn describe(r: &RedisOperation, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
    let command = r.command.as_deref().filter(|c| is_name(c));
    let subcommand = r.subcommand.as_deref();
    let named = command.is_some() && subcommand.is_none_or(is_name);
    // Inline up to 24 bytes: no allocation for any real command name.
    let name: Option<CompactString> = command.map(|command| match subcommand.filter(|_| named) {
        Some(sub) => {
            let mut name = CompactString::from(command);
            name.push(' ');
            name.push_str(sub);
            name
        }
        None => CompactString::from(command),
    });
    let namespace = r.database.map(|d| d.to_compact_string());
    let mut call = DbCall::new(SYSTEM, r.role, r.request_start_ns, r.response_end_ns);
    call.operation = name.as_deref();
    call.namespace = namespace.as_deref();
    call.stored_procedure = r.procedure.as_deref().filter(|p| is_name(p));
    // Never the database index: the conventions say a number there looks confusing.
    call.target = call.stored_procedure;
    match &r.outcome {
        Outcome::Error(Some(code)) => (call.status_code, call.error_type) = (Some(code.as_str()), Some(code.as_str())),
        Outcome::Error(None) => call.error_type = Some(ERROR_OTHER),
        Outcome::NoResponse => call.error_type = Some(ERROR_NO_RESPONSE),
        Outcome::Reply(_) | Outcome::NoReply | Outcome::Unknown => {}
    }
    let text = QueryText(r);
    if named {
        call.query_text = Some(Value::Text(&text));
    }
    let mut op = Operation::empty();
    db::describe(&mut op, &call, facts);
    if let Some(tx) = r.transaction {
        op.attr("ebpf_receiver.redis.transaction", tx.as_str());
    }
    emit(&op);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::redis::ReplyKind;
    use crate::protocol::Role;

    fn op(command: Option<&str>, subcommand: Option<&str>) -> RedisOperation {
        RedisOperation {
            role: Role::Client,
            command: command.map(Into::into),
            subcommand: subcommand.map(Into::into),
            args: 2,
            database: None,
            procedure: None,
            outcome: Outcome::Reply(ReplyKind::SimpleString),
            transaction: None,
            cut: false,
            request_start_ns: 1,
            request_end_ns: 2,
            response_start_ns: Some(3),
            response_end_ns: 4,
            request_bytes: 10,
            response_bytes: 5,
        }
    }

    fn described(r: &RedisOperation) -> (String, Option<String>, Option<String>) {
        let mut out = None;
        describe(r, &ConnFacts::default(), &mut |op| {
            let text = |k| op.get(k).map(|v| format!("{v:?}").trim_matches('"').to_string());
            out = Some((op.name.to_string(), text("db.operation.name"), text("db.query.text")));
        });
        out.unwrap()
    }

    #[test]
    fn names_that_are_not_names_are_not_exported() {
        let name = |c, s| described(&op(c, s));
        assert_eq!(
            name(Some("CLIENT"), Some("SETNAME")),
            ("CLIENT SETNAME".into(), Some("CLIENT SETNAME".into()), Some("CLIENT SETNAME ?".into()))
        );
        assert_eq!(
            name(Some("JSON.SET"), None),
            ("JSON.SET".into(), Some("JSON.SET".into()), Some("JSON.SET ? ?".into()))
        );
        assert_eq!(name(Some("CLIENT"), Some("user@example.com")), ("CLIENT".into(), Some("CLIENT".into()), None));
        assert_eq!(name(Some("hunter2 pass"), None), ("redis".into(), None, None));
        assert_eq!(name(None, None), ("redis".into(), None, None));
    }
}
