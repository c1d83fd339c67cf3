//! An HTTP exchange as an `Operation`, per the HTTP semantic conventions:
//! a SERVER span when the traced process answered the request, CLIENT when
//! it made it, and the `http.{server,client}.*` metrics. Query strings,
//! header values (but Host) and bodies are never recorded.
//!
//! Span attributes: `http.request.method` (`_OTHER` and
//! `http.request.method_original` for a method not in `KNOWN_METHODS`),
//! `network.protocol.version`, `http.response.status_code`, `url.path`,
//! `url.scheme` (server) or `url.full` (client), `http.route` (server, when
//! known; it also names the span), `server.address`, `server.port`,
//! `client.address` (server), `network.peer.address`, `network.peer.port`,
//! `error.type`.
//!
//! Metrics (`HTTP_SERVER`, `HTTP_CLIENT`): duration (`response_end −
//! request_start`), request body size (every exchange), response body size
//! (exchanges that got a response: a missing response has no body, not an
//! empty one). Attributes: `http.request.method` (known methods, else
//! `_OTHER`), `url.scheme`, `network.protocol.version`,
//! `http.response.status_code` (when there was a response), `error.type`
//! (same rules and values as spans), `http.route` (server metrics; client
//! calls have no `http.route` in the conventions), and on client metrics
//! `server.address` / `server.port`.
//!
//! LLM API calls get the GenAI layer on top (`crate::protocol::genai::layer`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::instruments::{http as slot, HTTP_CLIENT, HTTP_SERVER};
use crate::otlp::wire;
use crate::protocol::genai::{layer as genai, GenAiCall, GenAiStage};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, TextValue, Value};
use crate::routes::RouteMatcher;

use super::HttpExchange;

/// The methods `http.request.method` carries as sent; any other is `_OTHER`.
pub const KNOWN_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// `http.request.method` for a method that is not one of `KNOWN_METHODS`.
pub const METHOD_OTHER: &str = "_OTHER";

/// `error.type` for an exchange that never got a response (connection closed, process died).
pub const ERROR_NO_RESPONSE: &str = "http.response.missing";

/// Index of `method` in `KNOWN_METHODS` (case-sensitive, as the RFC wants).
pub fn known_method(method: &str) -> Option<usize> {
    KNOWN_METHODS.iter().position(|m| *m == method)
}

/// The path of a request-target: origin-form `/p?q`, or absolute-form
/// `http://h/p?q` as sent to proxies. Never the query.
pub fn path_of(target: &str) -> &str {
    // Bytes, not a char pattern: `split(['?', '#'])` decoded UTF-8 and cost
    // ~190 instructions a call (memchr2, ~70 on short paths: its set-up),
    // two or three calls per exchange.
    let end = target.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(target.len());
    let without_query = &target[..end];
    if without_query.starts_with('/') {
        return without_query;
    }
    match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => without_query,
    }
}

/// Host header "name:port" / "[v6]:port" → (name, port).
pub fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    // Bytes, not chars: `rsplit_once(char)` and `contains(char)` were a
    // fifth of span building (two calls per span).
    let bytes = host.as_bytes();
    match memchr::memrchr(b':', bytes) {
        Some(i) if memchr::memchr(b':', &bytes[..i]).is_none() => (&host[..i], host[i + 1..].parse().ok()),
        _ => (host, None),
    }
}

/// `error.type`: a server failed only on 5xx (4xx is the caller's fault), a
/// client call failed on any 4xx/5xx; no response at all is `ERROR_NO_RESPONSE`.
pub fn error_type(role: Role, status: Option<u16>) -> Option<Value<'static>> {
    match (status, role) {
        (None, _) => Some(Value::Str(ERROR_NO_RESPONSE)),
        (Some(s), Role::Server) if s >= 500 => Some(Value::IntStr(i64::from(s))),
        (Some(s), Role::Client) if s >= 400 => Some(Value::IntStr(i64::from(s))),
        _ => None,
    }
}

/// `url.scheme`: `https` for exchanges carried over TLS.
pub fn url_scheme(facts: &ConnFacts) -> &'static str {
    if facts.tls {
        "https"
    } else {
        "http"
    }
}

/// The port `url.full` leaves out: the scheme's default.
pub fn default_port(facts: &ConnFacts) -> u16 {
    if facts.tls {
        443
    } else {
        80
    }
}

/// `server.address` of a client call, borrowed from the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerAddress<'a> {
    /// From the Host header.
    Name(&'a str),
    /// The peer address, when the request had no Host header.
    Ip(IpAddr),
}

impl<'a> ServerAddress<'a> {
    fn value(self) -> Value<'a> {
        match self {
            ServerAddress::Name(name) => Value::Str(name),
            ServerAddress::Ip(ip) => Value::Ip(ip),
        }
    }
}

impl fmt::Display for ServerAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Name(name) => f.write_str(name),
            ServerAddress::Ip(ip) => ip.fmt(f),
        }
    }
}

/// (`server.address`, `server.port`) of a client call: the Host header's name
/// else the peer address; the peer port (what was actually dialled) else the
/// Host header's port.
pub fn client_server<'a>(ex: &'a HttpExchange, facts: &ConnFacts) -> (Option<ServerAddress<'a>>, Option<u16>) {
    let host = ex.host.as_deref().map(split_host);
    let address = host
        .map(|(name, _)| ServerAddress::Name(name))
        .or_else(|| facts.endpoints.map(|ep| ServerAddress::Ip(ep.peer.0)));
    let port = facts.endpoints.map(|ep| ep.peer.1).or_else(|| host.and_then(|(_, p)| p));
    (address, port)
}

/// Where an exchange went: its path, and for a client call the server and
/// `url.full` (written when encoded). Worked out once per exchange for the
/// span and the metrics both.
#[derive(Debug, Clone, Copy)]
pub struct UrlFull<'a> {
    scheme: &'static str,
    /// `url.path`: the target without its query.
    path: &'a str,
    /// Client calls: `server.address`, `server.port`.
    address: Option<ServerAddress<'a>>,
    port: Option<u16>,
    /// The scheme's default port, left out of `url.full`.
    default_port: u16,
}

impl<'a> UrlFull<'a> {
    pub fn new(ex: &'a HttpExchange, facts: &ConnFacts) -> Self {
        let (address, port) = match ex.role {
            Role::Server => (None, None),
            Role::Client => client_server(ex, facts),
        };
        Self { scheme: url_scheme(facts), path: path_of(&ex.target), address, port, default_port: default_port(facts) }
    }
}

impl TextValue for UrlFull<'_> {
    fn write(&self, s: &mut String) {
        let Some(address) = self.address else { return };
        s.push_str(self.scheme);
        s.push_str("://");
        match address {
            ServerAddress::Name(name) if name.contains(':') => {
                s.push('[');
                s.push_str(name);
                s.push(']');
            }
            ServerAddress::Name(name) => s.push_str(name),
            ServerAddress::Ip(ip @ IpAddr::V6(_)) => {
                s.push('[');
                wire::write_ip(s, ip);
                s.push(']');
            }
            ServerAddress::Ip(ip) => wire::write_ip(s, ip),
        }
        if let Some(p) = self.port.filter(|&p| p != self.default_port) {
            s.push(':');
            wire::push_u16(s, p);
        }
        s.push_str(self.path);
    }
}

/// The operation of one exchange: span and metrics, written into `op`
/// (an empty operation: it is large, and filled where it lives rather than
/// moved). `route` is the `http.route` template of a server exchange, when
/// known (ignored for client calls); `url` is `UrlFull::new(ex, facts)`.
pub fn operation<'a>(
    op: &mut Operation<'a>,
    ex: &'a HttpExchange,
    facts: &'a ConnFacts,
    route: Option<&'a str>,
    url: &'a UrlFull<'a>,
) {
    let known = known_method(&ex.method).is_some();
    let route = route.filter(|_| ex.role == Role::Server);
    let (kind, family) = match ex.role {
        Role::Server => (SpanKind::Server, &HTTP_SERVER),
        Role::Client => (SpanKind::Client, &HTTP_CLIENT),
    };
    // The span name: the method (`HTTP` when not a known one), then the route.
    op.name = SpanName::new(if known { ex.method.as_str() } else { "HTTP" }, route);
    op.kind = kind;
    (op.start_ns, op.end_ns) = (ex.request_start_ns, ex.response_end_ns);
    let (path, scheme, server_address, server_port) = (url.path, url.scheme, url.address, url.port);
    let method = if known { ex.method.as_str() } else { METHOD_OTHER };
    op.attr("http.request.method", method);
    if !known {
        op.attr("http.request.method_original", ex.method.as_str());
    }
    op.attr("network.protocol.version", ex.version.as_str());
    if let Some(status) = ex.status {
        op.attr("http.response.status_code", i64::from(status));
    }
    match ex.role {
        Role::Server => {
            op.attr("url.path", path);
            op.attr("url.scheme", scheme);
            if let Some(route) = route {
                op.attr("http.route", route);
            }
            if let Some(ep) = &facts.endpoints {
                match ex.host.as_deref().map(split_host) {
                    Some((name, _)) => op.attr("server.address", name),
                    None => op.attr("server.address", ep.local.0),
                }
                op.attr("server.port", i64::from(ep.local.1));
                op.attr("client.address", ep.peer.0);
                op.attr("network.peer.address", ep.peer.0);
                op.attr("network.peer.port", i64::from(ep.peer.1));
            }
        }
        Role::Client => {
            if let Some(address) = server_address {
                op.attr("url.full", Value::Text(url));
                op.attr("server.address", address.value());
            }
            op.attr("url.path", path);
            if let Some(port) = server_port {
                op.attr("server.port", i64::from(port));
            }
            if let Some(ep) = &facts.endpoints {
                op.attr("network.peer.address", ep.peer.0);
                op.attr("network.peer.port", i64::from(ep.peer.1));
            }
        }
    }
    // Server: only 5xx is the server's fault. Client: any 4xx/5xx failed the call.
    let error = error_type(ex.role, ex.status);
    if let Some(e) = error {
        op.attr("error.type", e);
        op.failed = true;
    }
    // Pushed empty and filled in place (a feed is a few hundred bytes).
    op.metrics.push(MetricFeed::new(family));
    let feed = op.metrics.last_mut().expect("just pushed");
    feed.attr("http.request.method", method);
    feed.attr("url.scheme", scheme);
    feed.attr("network.protocol.version", ex.version.as_str());
    if let Some(status) = ex.status {
        feed.attr("http.response.status_code", i64::from(status));
    }
    if let Some(e) = error {
        feed.attr("error.type", e);
    }
    if let Some(route) = route {
        feed.attr("http.route", route);
    }
    if let Some(address) = server_address {
        feed.attr("server.address", address.value());
    }
    if let Some(port) = server_port {
        feed.attr("server.port", i64::from(port));
    }
    feed.value(slot::DURATION, ex.response_end_ns.saturating_sub(ex.request_start_ns));
    feed.value(slot::REQUEST_BODY, ex.request_body_size);
    // No response, no response body to measure (not even an empty one).
    if ex.status.is_some() {
        feed.value(slot::RESPONSE_BODY, ex.response_body_size);
    }
}

/// Describes one exchange, with the GenAI facts of an LLM API call when
/// `call` is given, and hands the operation to `emit`.
#[inline]
pub fn describe_with(
    ex: &HttpExchange,
    facts: &ConnFacts,
    route: Option<&str>,
    call: Option<&GenAiCall>,
    emit: &mut dyn FnMut(&Operation<'_>),
) {
    let url = UrlFull::new(ex, facts);
    let mut op = Operation::empty();
    operation(&mut op, ex, facts, route, &url);
    if let Some(call) = call {
        genai::enrich(&mut op, ex, facts, call);
    }
    emit(&op);
}

/// What describing HTTP exchanges needs: `http.route` templates and the
/// GenAI layer (LLM API calls), from the configuration.
#[derive(Debug)]
pub struct HttpLayers {
    routes: RouteMatcher,
    route_buf: String,
    genai: Option<Arc<GenAiStage>>,
}

impl HttpLayers {
    pub fn new(routes: RouteMatcher, genai: Option<Arc<GenAiStage>>) -> Self {
        Self { routes, route_buf: String::new(), genai }
    }

    /// The GenAI layer, when on (its body policy goes to the parsers).
    pub fn genai(&self) -> Option<&Arc<GenAiStage>> {
        self.genai.as_ref()
    }

    #[inline]
    pub fn describe(&mut self, ex: &HttpExchange, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
        // http.route belongs to the server side only (semantic conventions).
        let route = match ex.role {
            Role::Server => self.routes.route_in(path_of(&ex.target), &mut self.route_buf),
            Role::Client => None,
        };
        let call = self.genai.as_ref().and_then(|g| g.analyse(ex));
        describe_with(ex, facts, route, call.as_ref(), emit);
    }
}

#[cfg(test)]
mod tests;
