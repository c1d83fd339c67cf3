//! What every database operation's span and metrics say, whatever its
//! protocol: the span name the database conventions build, `db.*`
//! attributes, where the server is, the error, and
//! `db.client.operation.duration`. A protocol's description fills a
//! `DbCall` from its record (borrowing, no allocation) and calls `describe`.
//!
//! Kinds: CLIENT when the traced process made the call, SERVER when it
//! served it (the conventions define client spans only; a server span
//! carries the same attributes). Only client calls feed
//! `db.client.operation.duration`: the conventions define no server-side
//! database metric.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::instruments::{DB_CLIENT, DURATION};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName};

/// One database call, as the conventions describe it.
#[derive(Debug, Clone, Copy)]
pub struct DbCall<'a> {
    /// `db.system.name`: `postgresql`, `mysql`, `mariadb`, `redis`, ...
    pub system: &'static str,
    pub role: Role,
    /// Kernel monotonic times of the request's first byte and the response's last.
    pub start_ns: u64,
    pub end_ns: u64,
    /// `db.operation.name`: low cardinality (a command, a SQL keyword).
    pub operation: Option<&'a str>,
    /// `db.collection.name`.
    pub collection: Option<&'a str>,
    /// `db.namespace`.
    pub namespace: Option<&'a str>,
    /// `db.query.summary`; when set, it is the span name.
    pub summary: Option<&'a str>,
    /// `db.query.text`, as it may leave the host (sanitized unless the user
    /// opted into raw text). Span only: never a metric attribute.
    pub query_text: Option<&'a str>,
    /// The `{target}` of the span name `{db.operation.name} {target}` (the
    /// collection, or the namespace of an operation on the database).
    pub target: Option<&'a str>,
    /// `db.response.status_code`.
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
    let optional = [
        ("db.namespace", call.namespace),
        ("db.operation.name", call.operation),
        ("db.collection.name", call.collection),
        ("db.query.summary", call.summary),
        ("db.query.text", call.query_text),
        ("db.response.status_code", call.status_code),
        ("error.type", call.error_type),
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
    // The conventions' attributes of the metric, never the query text:
    // the summary bounds cardinality.
    op.metrics.push(MetricFeed::new(&DB_CLIENT));
    let feed = op.metrics.last_mut().expect("just pushed");
    feed.attr("db.system.name", call.system);
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
