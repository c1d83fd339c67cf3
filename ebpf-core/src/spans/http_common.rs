//! HTTP attribute derivations shared by spans and metrics, so both signals
//! describe an exchange the same way (method normalisation, `error.type`,
//! `server.address`/`server.port` of a client call, `url.path`).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use crate::conntrack::Exchange;
use crate::protocol::Role;

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
    let without_query = target.split(['?', '#']).next().unwrap_or("");
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
pub fn error_type(role: Role, status: Option<u16>) -> Option<Cow<'static, str>> {
    match (status, role) {
        (None, _) => Some(Cow::Borrowed(ERROR_NO_RESPONSE)),
        (Some(s), Role::Server) if s >= 500 => Some(Cow::Owned(s.to_string())),
        (Some(s), Role::Client) if s >= 400 => Some(Cow::Owned(s.to_string())),
        _ => None,
    }
}

/// `url.scheme`: `https` for exchanges carried over TLS.
pub fn url_scheme(ex: &Exchange) -> &'static str {
    if ex.tls {
        "https"
    } else {
        "http"
    }
}

/// The port `url.full` leaves out: the scheme's default.
pub fn default_port(ex: &Exchange) -> u16 {
    if ex.tls {
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
pub fn client_server(ex: &Exchange) -> (Option<ServerAddress<'_>>, Option<u16>) {
    let host = ex.http.host.as_deref().map(split_host);
    let address =
        host.map(|(name, _)| ServerAddress::Name(name)).or_else(|| ex.endpoints.map(|ep| ServerAddress::Ip(ep.peer.0)));
    let port = ex.endpoints.map(|ep| ep.peer.1).or_else(|| host.and_then(|(_, p)| p));
    (address, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_errors() {
        assert_eq!(known_method("GET"), Some(0));
        assert_eq!(known_method("PATCH"), Some(8));
        assert_eq!(known_method("get"), None);
        assert_eq!(known_method("PURGE"), None);
        assert_eq!(error_type(Role::Server, None).as_deref(), Some(ERROR_NO_RESPONSE));
        assert_eq!(error_type(Role::Server, Some(404)), None);
        assert_eq!(error_type(Role::Server, Some(503)).as_deref(), Some("503"));
        assert_eq!(error_type(Role::Client, Some(404)).as_deref(), Some("404"));
        assert_eq!(error_type(Role::Client, Some(302)), None);
    }

    #[test]
    fn server_address_display() {
        assert_eq!(ServerAddress::Name("svc").to_string(), "svc");
        assert_eq!(ServerAddress::Ip("::1".parse().unwrap()).to_string(), "::1");
    }
}
