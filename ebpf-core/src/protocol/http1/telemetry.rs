//! An HTTP exchange as an `Operation`, per the HTTP semantic conventions:
//! a SERVER span when the traced process answered the request, CLIENT when
//! it made it, and the `http.{server,client}.*` metrics. Query strings,
//! header values (but Host) and bodies are never recorded. HTTP/1 exchanges
//! and HTTP/2 streams are both described here, through `HttpCall`.
//!
//! Span attributes: `http.request.method` (`_OTHER` and
//! `http.request.method_original` for a method not in `KNOWN_METHODS`),
//! `network.protocol.version`, `http.response.status_code`, `url.path`,
//! `url.scheme` (server) or `url.full` (client), `http.route` (server, when
//! known; it also names the span), `server.address`, `server.port`,
//! `client.address` (server), `network.peer.address`, `network.peer.port`,
//! `error.type`, and `ebpf_receiver.http2.headers_incomplete` for an HTTP/2
//! stream whose method or path could not be decoded (they are then left
//! out, never guessed).
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
    let without_query = &target[..query_start(target.as_bytes())];
    if without_query.starts_with('/') {
        return without_query;
    }
    match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => without_query,
    }
}

/// Where the first `?` or `#` is (the length when neither). Bytes, not a
/// char pattern: `split(['?', '#'])` decoded UTF-8 and cost ~190
/// instructions a call (memchr2, ~70 on short paths: its set-up); eight
/// bytes at a time, as the byte loop took ten instructions a byte. In a word,
/// the lowest byte flagged as a match is exact (a borrow only moves upwards).
fn query_start(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let (q, h) = (w ^ (ONES * u64::from(b'?')), w ^ (ONES * u64::from(b'#')));
        let found = (q.wrapping_sub(ONES) & !q | h.wrapping_sub(ONES) & !h) & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'?' || c == b'#').map_or(b.len(), |j| i + j)
}

/// Host header "name:port" / "[v6]:port" → (name, port).
pub fn split_host(host: &str) -> (&str, Option<u16>) {
    let (name, port) = host_parts(host);
    (name, port.and_then(|p| p.parse().ok()))
}

/// The name of `split_host`, without parsing the port (what a server span
/// needs of its Host header).
pub fn host_name(host: &str) -> &str {
    host_parts(host).0
}

/// Host header → (name, the port's text).
fn host_parts(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':'));
        }
    }
    // Bytes, not chars: `rsplit_once(char)` and `contains(char)` were a
    // fifth of span building (two calls per span); a byte loop, not
    // `memchr`, whose set-up outweighs a Host header's few bytes.
    let bytes = host.as_bytes();
    match bytes.iter().rposition(|&b| b == b':') {
        Some(i) if !bytes[..i].contains(&b':') => (&host[..i], Some(&host[i + 1..])),
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
    scheme_port(url_scheme(facts))
}

fn scheme_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// An HTTP request and its response, as the description reads them from
/// either version's record. Borrowed: building one copies no text.
#[derive(Debug, Clone, Copy)]
pub struct HttpCall<'a> {
    pub role: Role,
    /// As sent; None when not known (an HTTP/2 stream whose header block
    /// referred to table entries never seen).
    pub method: Option<&'a str>,
    /// The request-target (HTTP/1) or `:path` (HTTP/2); None when not known.
    pub target: Option<&'a str>,
    /// `network.protocol.version`: "1.0", "1.1", "2".
    pub version: &'static str,
    /// The Host header, or `:authority`.
    pub host: Option<&'a str>,
    /// The request's own scheme (HTTP/2 `:scheme`); None: from the
    /// connection (`https` over TLS). Only `http` and `https` are used.
    pub scheme: Option<&'a str>,
    pub status: Option<u16>,
    /// How the exchange ended when the transport says it failed (an HTTP/2
    /// stream reset, refused or cut by the connection's close): `error.type`,
    /// before what the status says.
    pub transport_error: Option<&'static str>,
    /// Header fields could not all be decoded: the span says so
    /// (`ebpf_receiver.http2.headers_incomplete`).
    pub headers_incomplete: bool,
    pub request_start_ns: u64,
    pub response_end_ns: u64,
    pub request_body_size: u64,
    pub response_body_size: u64,
}

impl<'a> HttpCall<'a> {
    /// An HTTP/1 exchange.
    pub fn of(ex: &'a HttpExchange) -> Self {
        HttpCall {
            role: ex.role,
            method: Some(&ex.method),
            target: Some(&ex.target),
            version: ex.version.as_str(),
            host: ex.host.as_deref(),
            scheme: None,
            status: ex.status,
            transport_error: None,
            headers_incomplete: false,
            request_start_ns: ex.request_start_ns,
            response_end_ns: ex.response_end_ns,
            request_body_size: ex.request_body_size,
            response_body_size: ex.response_body_size,
        }
    }

    /// `url.scheme`: the request's own when it is `http` or `https` (any
    /// other value would be a metric series per value), else the
    /// connection's.
    fn url_scheme(&self, facts: &ConnFacts) -> &'a str {
        match self.scheme {
            Some(s @ ("http" | "https")) => s,
            _ => url_scheme(facts),
        }
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
    pub fn value(self) -> Value<'a> {
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
    client_server_of(ex.host.as_deref(), facts)
}

/// `client_server` from a Host header or `:authority`.
pub fn client_server_of<'a>(host: Option<&'a str>, facts: &ConnFacts) -> (Option<ServerAddress<'a>>, Option<u16>) {
    let host = host.map(split_host);
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
    scheme: &'a str,
    /// `url.path`: the target without its query; None when not known
    /// (then there is no `url.full` either).
    path: Option<&'a str>,
    /// Client calls: `server.address`, `server.port`.
    address: Option<ServerAddress<'a>>,
    port: Option<u16>,
    /// The scheme's default port, left out of `url.full`.
    default_port: u16,
}

impl<'a> UrlFull<'a> {
    pub fn new(ex: &'a HttpExchange, facts: &ConnFacts) -> Self {
        Self::of(&HttpCall::of(ex), facts)
    }

    pub fn of(call: &HttpCall<'a>, facts: &ConnFacts) -> Self {
        let (address, port) = match call.role {
            Role::Server => (None, None),
            Role::Client => client_server_of(call.host, facts),
        };
        let scheme = call.url_scheme(facts);
        Self { scheme, path: call.target.map(path_of), address, port, default_port: scheme_port(scheme) }
    }
}

impl TextValue for UrlFull<'_> {
    fn write(&self, s: &mut String) {
        let (Some(address), Some(path)) = (self.address, self.path) else { return };
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
        s.push_str(path);
    }
}

/// The attribute that marks a span whose HTTP/2 header fields could not all
/// be decoded (connection joined mid-way, or bytes lost): its method, path or
/// status may be missing, never guessed.
pub const HEADERS_INCOMPLETE: &str = "ebpf_receiver.http2.headers_incomplete";

/// The operation of one exchange: span and metrics, written into `op`
/// (an empty operation: it is large, and filled where it lives rather than
/// moved). `route` is the `http.route` template of a server exchange, when
/// known (ignored for client calls); `url` is `UrlFull::of(call, facts)`.
pub fn operation<'a>(
    op: &mut Operation<'a>,
    call: &HttpCall<'a>,
    facts: &'a ConnFacts,
    route: Option<&'a str>,
    url: &'a UrlFull<'a>,
) {
    let known = call.method.filter(|m| known_method(m).is_some());
    let route = route.filter(|_| call.role == Role::Server);
    let (kind, family) = match call.role {
        Role::Server => (SpanKind::Server, &HTTP_SERVER),
        Role::Client => (SpanKind::Client, &HTTP_CLIENT),
    };
    // The span name: the method (`HTTP` when not a known one), then the route.
    op.name = SpanName::new(known.unwrap_or("HTTP"), route);
    op.kind = kind;
    (op.start_ns, op.end_ns) = (call.request_start_ns, call.response_end_ns);
    let (path, scheme, server_address, server_port) = (url.path, url.scheme, url.address, url.port);
    // A method not decoded is left out: `_OTHER` would say it was one
    // outside the known set.
    let method = call.method.map(|_| known.unwrap_or(METHOD_OTHER));
    if let Some(method) = method {
        op.attr("http.request.method", method);
    }
    if let (None, Some(original)) = (known, call.method) {
        op.attr("http.request.method_original", original);
    }
    op.attr("network.protocol.version", call.version);
    if let Some(status) = call.status {
        op.attr("http.response.status_code", i64::from(status));
    }
    match call.role {
        Role::Server => {
            if let Some(path) = path {
                op.attr("url.path", path);
            }
            op.attr("url.scheme", scheme);
            if let Some(route) = route {
                op.attr("http.route", route);
            }
            if let Some(ep) = &facts.endpoints {
                match call.host.map(host_name) {
                    Some(name) => op.attr("server.address", name),
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
                if path.is_some() {
                    op.attr("url.full", Value::Text(url));
                }
                op.attr("server.address", address.value());
            }
            if let Some(path) = path {
                op.attr("url.path", path);
            }
            if let Some(port) = server_port {
                op.attr("server.port", i64::from(port));
            }
            if let Some(ep) = &facts.endpoints {
                op.attr("network.peer.address", ep.peer.0);
                op.attr("network.peer.port", i64::from(ep.peer.1));
            }
        }
    }
    // The transport's verdict first (a reset stream failed whatever its
    // status); then the status: server only 5xx (the server's fault),
    // client any 4xx/5xx.
    let error = match call.transport_error {
        Some(e) => Some(Value::Str(e)),
        None => error_type(call.role, call.status),
    };
    if let Some(e) = error {
        op.attr("error.type", e);
        op.failed = true;
    }
    if call.headers_incomplete {
        op.attr(HEADERS_INCOMPLETE, true);
    }
    // Pushed empty and filled in place (a feed is a few hundred bytes).
    op.metrics.push(MetricFeed::new(family));
    let feed = op.metrics.last_mut().expect("just pushed");
    if let Some(method) = method {
        feed.attr("http.request.method", method);
    }
    feed.attr("url.scheme", scheme);
    feed.attr("network.protocol.version", call.version);
    if let Some(status) = call.status {
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
    feed.value(slot::DURATION, call.response_end_ns.saturating_sub(call.request_start_ns));
    feed.value(slot::REQUEST_BODY, call.request_body_size);
    // No response, no response body to measure (not even an empty one).
    if call.status.is_some() {
        feed.value(slot::RESPONSE_BODY, call.response_body_size);
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
    let http = HttpCall::of(ex);
    let url = UrlFull::of(&http, facts);
    describe_url(ex, &http, &url, facts, route, call, emit);
}

/// `describe_with` for the exchange's `HttpCall` and `UrlFull`, worked out
/// by the caller (whose `http.route` comes from the path in `url`).
#[inline]
fn describe_url<'a>(
    ex: &HttpExchange,
    http: &HttpCall<'a>,
    url: &'a UrlFull<'a>,
    facts: &'a ConnFacts,
    route: Option<&'a str>,
    call: Option<&GenAiCall>,
    emit: &mut dyn FnMut(&Operation<'_>),
) {
    let mut op = Operation::empty();
    operation(&mut op, http, facts, route, url);
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
        let http = HttpCall::of(ex);
        let url = UrlFull::of(&http, facts);
        // http.route belongs to the server side only (semantic conventions).
        let route = match (ex.role, url.path) {
            (Role::Server, Some(path)) => self.routes.route_in(path, &mut self.route_buf),
            _ => None,
        };
        let call = self.genai.as_ref().and_then(|g| g.analyse(ex));
        describe_url(ex, &http, &url, facts, route, call.as_ref(), emit);
    }

    /// An exchange of another HTTP version (HTTP/2): the same description,
    /// `http.route` included; no GenAI layer (its bodies are not kept).
    pub fn describe_call(&mut self, call: &HttpCall<'_>, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
        let url = UrlFull::of(call, facts);
        let route = match (call.role, url.path) {
            (Role::Server, Some(path)) => self.routes.route_in(path, &mut self.route_buf),
            _ => None,
        };
        let mut op = Operation::empty();
        operation(&mut op, call, facts, route, &url);
        emit(&op);
    }
}

#[cfg(test)]
mod tests;
