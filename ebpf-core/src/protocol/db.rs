//! What every database operation's span and metrics say, whatever its
//! protocol (PostgreSQL, MySQL/MariaDB, Redis, memcached, MongoDB): the span name
//! the database conventions build, `db.*` attributes, where the server is,
//! the error, and `db.client.operation.duration`. A protocol's description
//! fills a `DbCall` from its record (borrowing, no allocation), calls
//! `describe`, then adds what only it knows (Redis's transaction outcome,
//! memcached's hits and misses).
//!
//! - Span name: `{db.query.summary}` when there is one, else
//!   `{db.operation.name} {target}` (the target the protocol chose: the
//!   collection, a stored procedure, the namespace where the system's
//!   conventions allow it), else `{db.operation.name}`, else the target,
//!   else `{db.system.name}`. The conventions' last target,
//!   `server.address:server.port`, is left out: the span carries both.
//! - Kind: CLIENT when the traced process made the call, SERVER when it
//!   served it (the conventions define client spans only; a server span
//!   carries the same attributes, with `server.*` its own address).
//! - `error.type`: set when, and only when, the call failed: the status
//!   code, `_OTHER` (`ERROR_OTHER`) without one, `db.response.missing`
//!   (`ERROR_NO_RESPONSE`) when the connection ended before the response.
//! - Metrics: `db.client.operation.duration` for client calls only: the
//!   conventions define no server-side database metric. Its attributes are
//!   the span's bounded ones (never the query text, a peer port or anything
//!   per call: the summary bounds cardinality).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::instruments::{DB_CLIENT, DURATION};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};

/// `error.type` of a call whose connection ended before its response.
pub const ERROR_NO_RESPONSE: &str = "db.response.missing";

/// `error.type` of a call that failed without a status code (or whose code
/// was past the capture).
pub const ERROR_OTHER: &str = "_OTHER";

/// One database call, as the conventions describe it.
#[derive(Debug, Clone, Copy)]
pub struct DbCall<'a> {
    /// `db.system.name`: `postgresql`, `mysql`, `mariadb`, `redis`, `memcached`, `mongodb`.
    pub system: &'static str,
    pub role: Role,
    /// Kernel monotonic times of the request's first byte and the response's last.
    pub start_ns: u64,
    pub end_ns: u64,
    /// `db.operation.name`: low cardinality (a command, a SQL keyword), as sent.
    pub operation: Option<&'a str>,
    /// `db.collection.name`.
    pub collection: Option<&'a str>,
    /// `db.namespace`.
    pub namespace: Option<&'a str>,
    /// `db.query.summary`; when set, it is the span name.
    pub summary: Option<&'a str>,
    /// `db.query.text`, as it may leave the host (sanitized unless the user
    /// opted into raw text; Redis's written when encoded). Span only: never
    /// a metric attribute.
    pub query_text: Option<Value<'a>>,
    /// `db.stored_procedure.name`.
    pub stored_procedure: Option<&'a str>,
    /// The `{target}` of the span name `{db.operation.name} {target}` (the
    /// collection, the stored procedure, or the namespace of an operation on
    /// the database; never Redis's database index, which its conventions say
    /// looks confusing there).
    pub target: Option<&'a str>,
    /// `db.response.status_code`: the system's code, when the response had one.
    pub status_code: Option<&'a str>,
    /// `error.type`: set when, and only when, the call failed (span status ERROR).
    pub error_type: Option<&'a str>,
}

impl<'a> DbCall<'a> {
    /// A call with nothing known but its system, side and times.
    pub fn new(system: &'static str, role: Role, start_ns: u64, end_ns: u64) -> Self {
        Self {
            system,
            role,
            start_ns,
            end_ns,
            operation: None,
            collection: None,
            namespace: None,
            summary: None,
            query_text: None,
            stored_procedure: None,
            target: None,
            status_code: None,
            error_type: None,
        }
    }

    /// The conventions' span name: the summary; else `{operation} {target}`;
    /// else the target; else the system.
    pub fn span_name(&self) -> SpanName<'a> {
        if let Some(summary) = self.summary {
            return SpanName::new(summary, None);
        }
        match (self.operation, self.target) {
            (Some(operation), target) => SpanName::new(operation, target),
            (None, Some(target)) => SpanName::new(target, None),
            (None, None) => SpanName::new(self.system, None),
        }
    }
}

/// Fills `op` (an empty operation) with the span and metrics of `call`, on
/// the connection `facts` tells about.
pub fn describe<'a>(op: &mut Operation<'a>, call: &DbCall<'a>, facts: &ConnFacts) {
    op.name = call.span_name();
    op.kind = match call.role {
        Role::Client => SpanKind::Client,
        Role::Server => SpanKind::Server,
    };
    (op.start_ns, op.end_ns) = (call.start_ns, call.end_ns);
    op.failed = call.error_type.is_some();
    // The server's address: the peer of a client, this process's own end on a server.
    let server = facts.endpoints.map(|ep| match call.role {
        Role::Client => ep.peer,
        Role::Server => ep.local,
    });
    op.attr("db.system.name", call.system);
    let optional: [(&'static str, Option<Value<'a>>); 8] = [
        ("db.namespace", call.namespace.map(Value::Str)),
        ("db.operation.name", call.operation.map(Value::Str)),
        ("db.collection.name", call.collection.map(Value::Str)),
        ("db.query.summary", call.summary.map(Value::Str)),
        ("db.stored_procedure.name", call.stored_procedure.map(Value::Str)),
        ("db.query.text", call.query_text),
        ("db.response.status_code", call.status_code.map(Value::Str)),
        ("error.type", call.error_type.map(Value::Str)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            op.attr(key, v);
        }
    }
    if let Some((ip, port)) = server {
        op.attr("server.address", ip);
        op.attr("server.port", i64::from(port));
    }
    if let Some(ep) = &facts.endpoints {
        op.attr("network.peer.address", ep.peer.0);
        op.attr("network.peer.port", i64::from(ep.peer.1));
    }
    if call.role != Role::Client {
        return;
    }
    op.metrics.push(MetricFeed::new(&DB_CLIENT));
    let feed = op.metrics.last_mut().expect("just pushed");
    feed.attr("db.system.name", call.system);
    // The conventions' attributes of the metric, never the query text:
    // the summary bounds cardinality.
    for (key, value) in optional {
        if key != "db.query.text" {
            if let Some(v) = value {
                feed.attr(key, v);
            }
        }
    }
    if let Some((ip, port)) = server {
        feed.attr("server.address", ip);
        feed.attr("server.port", i64::from(port));
    }
    feed.value(DURATION, call.end_ns.saturating_sub(call.start_ns));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Endpoints;

    fn facts() -> ConnFacts {
        ConnFacts {
            endpoints: Some(Endpoints {
                local: ("10.0.0.1".parse().unwrap(), 40000),
                peer: ("10.0.0.2".parse().unwrap(), 6379),
            }),
            tls: false,
        }
    }

    fn text(v: Option<&Value<'_>>) -> String {
        v.map_or("-".into(), |v| format!("{v:?}"))
    }

    #[test]
    fn span_names_follow_the_conventions() {
        let mut call = DbCall::new("redis", Role::Client, 1, 2);
        assert_eq!(call.span_name().to_string(), "redis");
        call.target = Some("shop");
        assert_eq!(call.span_name().to_string(), "shop");
        call.operation = Some("GET");
        call.target = None;
        call.namespace = Some("3");
        assert_eq!(call.span_name().to_string(), "GET", "the namespace names a span only as its target");
        call.target = Some("myfunc");
        assert_eq!(call.span_name().to_string(), "GET myfunc");
        call.summary = Some("SELECT orders");
        assert_eq!(call.span_name().to_string(), "SELECT orders");
    }

    #[test]
    fn client_calls_feed_the_duration_server_calls_do_not() {
        let mut call = DbCall::new("redis", Role::Client, 10, 35);
        call.operation = Some("LPUSH");
        call.query_text = Some(Value::Str("LPUSH ? ?"));
        call.status_code = Some("WRONGTYPE");
        call.error_type = Some("WRONGTYPE");
        let facts = facts();
        let mut op = Operation::empty();
        describe(&mut op, &call, &facts);
        assert_eq!((op.kind, op.failed, op.duration_ns()), (SpanKind::Client, true, 25));
        assert_eq!(text(op.get("server.address")), "10.0.0.2");
        assert_eq!(text(op.get("server.port")), "6379");
        assert_eq!(text(op.get("network.peer.port")), "6379");
        assert_eq!(text(op.get("error.type")), "\"WRONGTYPE\"");
        assert_eq!(text(op.get("db.query.text")), "\"LPUSH ? ?\"");
        let feed = &op.metrics[0];
        let keys: Vec<&str> = feed.attributes.iter().map(|a| a.key).collect();
        assert_eq!(
            keys,
            [
                "db.system.name",
                "db.operation.name",
                "db.response.status_code",
                "error.type",
                "server.address",
                "server.port"
            ],
            "never the query text"
        );
        assert_eq!(feed.values[DURATION], Some(25));

        call.role = Role::Server;
        call.error_type = None;
        let mut op = Operation::empty();
        describe(&mut op, &call, &facts);
        assert_eq!((op.kind, op.failed, op.metrics.len()), (SpanKind::Server, false, 0));
        assert_eq!(text(op.get("server.address")), "10.0.0.1", "the serving process's own address");
        assert_eq!(text(op.get("server.port")), "40000");
        assert_eq!(text(op.get("network.peer.address")), "10.0.0.2", "the client");
    }

    #[test]
    fn without_endpoints_no_address() {
        let call = DbCall::new("memcached", Role::Client, 1, 2);
        let mut op = Operation::empty();
        describe(&mut op, &call, &ConnFacts::default());
        assert!(op.get("server.address").is_none() && op.get("network.peer.address").is_none());
        assert_eq!(op.metrics[0].attributes.len(), 1);
    }
}
