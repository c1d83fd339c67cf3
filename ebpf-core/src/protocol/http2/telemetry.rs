//! An HTTP/2 stream as an `Operation`: an HTTP request like HTTP/1's
//! (`network.protocol.version` "2", the same attributes and metrics, see
//! `http1::telemetry`), or, for a gRPC call, an RPC per the conventions.
//!
//! gRPC: span named `rpc.method` (`package.Service/Method`), or `grpc` when
//! the method is not known; `rpc.system.name` `grpc`; `rpc.method`, and
//! `_OTHER` with `rpc.method_original` for a method the server answered
//! UNIMPLEMENTED (a method it does not have: one series per random name
//! would be unbounded); `rpc.response.status_code`: the status name from
//! `grpc-status` (trailers, or a Trailers-Only response), else what gRPC
//! itself maps the stream's end to (RST_STREAM codes, GOAWAY, a non-200
//! HTTP status); `error.type` the status name when it is an error (any
//! but OK for clients; UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
//! UNAVAILABLE, DATA_LOSS for servers), or how the stream ended when no
//! status came. Server, client and peer addresses as for HTTP. Metrics:
//! `rpc.{server,client}.call.duration` with `rpc.system.name`,
//! `rpc.method`, `rpc.response.status_code`, `error.type`, and on clients
//! `server.address`/`server.port`.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::grpc::status_name;
use super::{GrpcCall, Http2Stream, StreamEnd};
use crate::metrics::instruments::{DURATION, RPC_CLIENT, RPC_SERVER};
use crate::protocol::http1::telemetry::{
    client_server_of, host_name, HttpCall, HttpLayers, ERROR_NO_RESPONSE, HEADERS_INCOMPLETE,
};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};

/// `rpc.system.name`, and the span name of a call whose method is unknown.
const GRPC: &str = "grpc";

/// `rpc.method` for a method the server does not have.
const METHOD_OTHER: &str = "_OTHER";

/// gRPC status codes used below.
const OK: u32 = 0;
const CANCELLED: u32 = 1;
const UNKNOWN: u32 = 2;
const DEADLINE_EXCEEDED: u32 = 4;
const PERMISSION_DENIED: u32 = 7;
const RESOURCE_EXHAUSTED: u32 = 8;
const UNIMPLEMENTED: u32 = 12;
const INTERNAL: u32 = 13;
const UNAVAILABLE: u32 = 14;
const DATA_LOSS: u32 = 15;
const UNAUTHENTICATED: u32 = 16;

/// Describes one stream: as a gRPC call when it is one and `grpc` is on,
/// else as an HTTP request (with `http.route` from `http`'s templates).
pub fn describe(
    stream: &Http2Stream,
    grpc: bool,
    http: &mut HttpLayers,
    facts: &ConnFacts,
    emit: &mut dyn FnMut(&Operation<'_>),
) {
    match (&stream.grpc, grpc) {
        (Some(call), true) => {
            let mut op = Operation::empty();
            rpc_operation(&mut op, stream, call, facts);
            emit(&op);
        }
        _ => http.describe_call(&http_call(stream), facts, emit),
    }
}

/// The stream as HTTP: what HTTP/1 exchanges carry, with the stream's end
/// for `error.type` (a reset, a GOAWAY, a close mid-response).
pub fn http_call(s: &Http2Stream) -> HttpCall<'_> {
    HttpCall {
        role: s.role,
        method: s.method.as_deref(),
        target: s.path.as_deref(),
        version: "2",
        host: s.authority.as_deref(),
        scheme: s.scheme.as_deref(),
        status: s.status,
        transport_error: transport_error(s),
        headers_incomplete: !s.headers_complete,
        request_start_ns: s.request_start_ns,
        response_end_ns: s.response_end_ns,
        request_body_size: s.request_body_size,
        response_body_size: s.response_body_size,
    }
}

/// `error.type` from how the stream ended, when it did not end well: the
/// HTTP/2 error code's name (`CANCEL`, `REFUSED_STREAM`, ...), and for a
/// close before the response the value HTTP/1 uses.
fn transport_error(s: &Http2Stream) -> Option<&'static str> {
    match s.end {
        StreamEnd::ConnectionClosed if s.status.is_none() => Some(ERROR_NO_RESPONSE),
        end => end.error_type(),
    }
}

/// The gRPC status a stream ended with: `grpc-status`, else what gRPC maps
/// the stream's end to (its PROTOCOL-HTTP2 spec: RST_STREAM codes; a GOAWAY
/// refused it; a response without `grpc-status` by its HTTP status).
fn status(s: &Http2Stream, call: &GrpcCall) -> Option<u32> {
    if call.status.is_some() {
        return call.status;
    }
    match s.end {
        StreamEnd::Reset { code: Some(code), .. } => match code {
            0x7 => Some(UNAVAILABLE),
            0x8 => Some(CANCELLED),
            0xb => Some(RESOURCE_EXHAUSTED),
            0xc => Some(PERMISSION_DENIED),
            0x5 | 0xd => None,
            _ => Some(INTERNAL),
        },
        StreamEnd::Reset { code: None, .. } => None,
        StreamEnd::GoAway { .. } => Some(UNAVAILABLE),
        StreamEnd::Complete | StreamEnd::ConnectionClosed => match s.status? {
            200 => None,
            400 => Some(INTERNAL),
            401 => Some(UNAUTHENTICATED),
            403 => Some(PERMISSION_DENIED),
            404 => Some(UNIMPLEMENTED),
            429 | 502..=504 => Some(UNAVAILABLE),
            _ => Some(UNKNOWN),
        },
    }
}

/// Whether `status` fails the call: any but OK for a client; for a server
/// only the codes the conventions list (the others are the caller's doing).
fn is_error(role: Role, status: u32) -> bool {
    match role {
        Role::Client => status != OK,
        Role::Server => {
            matches!(status, UNKNOWN | DEADLINE_EXCEEDED | UNIMPLEMENTED | INTERNAL | UNAVAILABLE | DATA_LOSS)
        }
    }
}

/// A status as `rpc.response.status_code` carries it: its name, or its
/// number for codes past the known ones.
fn status_value(code: u32) -> Value<'static> {
    match status_name(code) {
        Some(name) => Value::Str(name),
        None => Value::IntStr(i64::from(code)),
    }
}

/// The operation of a gRPC call: span and metrics, into `op` (empty).
pub fn rpc_operation<'a>(op: &mut Operation<'a>, s: &'a Http2Stream, call: &'a GrpcCall, facts: &ConnFacts) {
    let (kind, family) = match s.role {
        Role::Server => (SpanKind::Server, &RPC_SERVER),
        Role::Client => (SpanKind::Client, &RPC_CLIENT),
    };
    let status = status(s, call);
    // The method as called, when the path has its shape; a path of another
    // shape names no method gRPC could have.
    let original = call.method.as_deref().or_else(|| s.path.as_deref().map(|p| p.strip_prefix('/').unwrap_or(p)));
    let method = match (call.method.as_deref(), original) {
        (Some(m), _) if status != Some(UNIMPLEMENTED) => Some(m),
        (_, None) => None,
        _ => Some(METHOD_OTHER),
    };
    op.name = SpanName::new(method.filter(|m| *m != METHOD_OTHER).unwrap_or(GRPC), None);
    op.kind = kind;
    (op.start_ns, op.end_ns) = (s.request_start_ns, s.response_end_ns);
    op.attr("rpc.system.name", GRPC);
    if let Some(m) = method {
        op.attr("rpc.method", m);
        if m == METHOD_OTHER {
            if let Some(o) = original {
                op.attr("rpc.method_original", o);
            }
        }
    }
    if let Some(code) = status {
        op.attr("rpc.response.status_code", status_value(code));
    }
    let (server_address, server_port) = match s.role {
        Role::Server => (None, None),
        Role::Client => client_server_of(s.authority.as_deref(), facts),
    };
    match s.role {
        Role::Server => {
            if let Some(ep) = &facts.endpoints {
                match s.authority.as_deref().map(host_name) {
                    Some(name) => op.attr("server.address", name),
                    None => op.attr("server.address", ep.local.0),
                }
                op.attr("server.port", i64::from(ep.local.1));
                op.attr("client.address", ep.peer.0);
            }
        }
        Role::Client => {
            if let Some(address) = server_address {
                op.attr("server.address", address.value());
            }
            if let Some(port) = server_port {
                op.attr("server.port", i64::from(port));
            }
        }
    }
    if let Some(ep) = &facts.endpoints {
        op.attr("network.peer.address", ep.peer.0);
        op.attr("network.peer.port", i64::from(ep.peer.1));
    }
    let error = match status {
        Some(code) => is_error(s.role, code).then(|| status_value(code)),
        None => transport_error(s).map(Value::Str),
    };
    if let Some(e) = error {
        op.attr("error.type", e);
        op.failed = true;
    }
    if !s.headers_complete {
        op.attr(HEADERS_INCOMPLETE, true);
    }
    op.metrics.push(MetricFeed::new(family));
    let feed = op.metrics.last_mut().expect("just pushed");
    feed.attr("rpc.system.name", GRPC);
    if let Some(m) = method {
        feed.attr("rpc.method", m);
    }
    if let Some(code) = status {
        feed.attr("rpc.response.status_code", status_value(code));
    }
    if let Some(e) = error {
        feed.attr("error.type", e);
    }
    if let Some(address) = server_address {
        feed.attr("server.address", address.value());
    }
    if let Some(port) = server_port {
        feed.attr("server.port", i64::from(port));
    }
    feed.value(DURATION, s.response_end_ns.saturating_sub(s.request_start_ns));
}
