//! One received span with its resource, and the checks a user would make.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A span and the resource (process) and scope it was reported under.
#[derive(Debug, Clone)]
pub struct SpanRec {
    pub resource: Resource,
    pub scope: Option<InstrumentationScope>,
    pub span: Span,
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

fn show(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => "-".into(),
        Some(Value::StringValue(s)) => format!("{s:?}"),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

fn show_all(attrs: &[KeyValue]) -> String {
    attrs.iter().map(|kv| format!("{}={}", kv.key, show(kv.value.as_ref()))).collect::<Vec<_>>().join(" ")
}

impl SpanRec {
    /// Flattens a request into spans, each with its resource and scope.
    pub fn from_request(req: ExportTraceServiceRequest) -> Vec<SpanRec> {
        let mut out = Vec::new();
        for rs in req.resource_spans {
            let resource = rs.resource.unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    out.push(SpanRec { resource: resource.clone(), scope: ss.scope.clone(), span });
                }
            }
        }
        out
    }

    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find(&self.span.attributes, key)
    }

    /// A string attribute (None when absent or of another type).
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key)?.value.as_ref()? {
            Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    /// An int attribute (None when absent or of another type).
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }

    pub fn res_str(&self, key: &str) -> Option<&str> {
        match find(&self.resource.attributes, key)?.value.as_ref()? {
            Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    pub fn res_int(&self, key: &str) -> Option<i64> {
        match find(&self.resource.attributes, key)?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }

    /// Resource `service.name`.
    pub fn service_name(&self) -> Option<&str> {
        self.res_str("service.name")
    }

    /// Resource `process.pid`.
    pub fn pid(&self) -> Option<u32> {
        self.res_int("process.pid").and_then(|p| u32::try_from(p).ok())
    }

    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    pub fn is_server(&self) -> bool {
        self.kind() == SpanKind::Server
    }

    pub fn is_client(&self) -> bool {
        self.kind() == SpanKind::Client
    }

    /// The span's status code (Unset when there is no status).
    pub fn status(&self) -> StatusCode {
        self.span.status.as_ref().and_then(|s| StatusCode::try_from(s.code).ok()).unwrap_or(StatusCode::Unset)
    }

    pub fn http_status(&self) -> Option<i64> {
        self.int_attr("http.response.status_code")
    }

    pub fn url_path(&self) -> Option<&str> {
        self.str_attr("url.path")
    }

    pub fn server_port(&self) -> Option<u16> {
        self.int_attr("server.port").and_then(|p| u16::try_from(p).ok())
    }

    pub fn peer_port(&self) -> Option<u16> {
        self.int_attr("network.peer.port").and_then(|p| u16::try_from(p).ok())
    }

    pub fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.span.start_time_unix_nano)
    }

    pub fn end(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.span.end_time_unix_nano)
    }

    /// end - start; zero when end precedes start (checked separately).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.span.end_time_unix_nano.saturating_sub(self.span.start_time_unix_nano))
    }

    /// One line for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "[{:?} {:?} status={:?} dur={:?} pid={} svc={}] {} | resource: {}",
            self.kind(),
            self.span.name,
            self.status(),
            self.duration(),
            self.pid().map_or("-".into(), |p| p.to_string()),
            self.service_name().unwrap_or("-"),
            show_all(&self.span.attributes),
            show_all(&self.resource.attributes),
        )
    }

    /// The structural checks every span must pass: ids, times, name, kind.
    pub fn assert_well_formed(&self) {
        let d = self.describe();
        assert_eq!(self.span.trace_id.len(), 16, "trace_id must be 16 bytes: {d}");
        assert!(self.span.trace_id.iter().any(|b| *b != 0), "trace_id must not be all zero: {d}");
        assert_eq!(self.span.span_id.len(), 8, "span_id must be 8 bytes: {d}");
        assert!(self.span.span_id.iter().any(|b| *b != 0), "span_id must not be all zero: {d}");
        assert!(self.span.start_time_unix_nano > 0, "start time must be set: {d}");
        assert!(self.span.end_time_unix_nano >= self.span.start_time_unix_nano, "end must not precede start: {d}");
        assert!(!self.span.name.is_empty(), "span name must not be empty: {d}");
        assert!(self.is_server() || self.is_client(), "HTTP spans are SERVER or CLIENT: {d}");
    }

    /// The HTTP semantic-convention checks of one exchange, as seen from either side.
    ///
    /// `server_ip` is the address the server listens on, as OTel writes it
    /// (`127.0.0.1`, `::1`); `client_port` is the client's ephemeral port when known.
    pub fn assert_http(&self, exp: &Expect<'_>) {
        self.assert_well_formed();
        let d = self.describe();
        // Name: "{method} {http.route}" when the route is known (server spans), else the method.
        match self.str_attr("http.route").filter(|_| self.is_server()) {
            Some(route) => {
                assert!(route_matches(route, exp.path), "http.route {route:?} must match url.path {:?}: {d}", exp.path);
                assert_eq!(self.span.name, format!("{} {route}", exp.method), "span name is method and route: {d}");
            }
            None => assert_eq!(self.span.name, exp.method, "span name is the method (no route known): {d}"),
        }
        assert_eq!(self.str_attr("http.request.method"), Some(exp.method), "http.request.method: {d}");
        assert_eq!(self.url_path(), Some(exp.path), "url.path (without query): {d}");
        assert_eq!(self.http_status(), Some(exp.status), "http.response.status_code (int): {d}");
        assert_eq!(self.str_attr("network.protocol.version"), Some(exp.version), "network.protocol.version: {d}");
        assert_eq!(self.str_attr("server.address"), Some(exp.server_ip), "server.address: {d}");
        assert_eq!(self.server_port(), Some(exp.server_port), "server.port (int): {d}");
        if let Some(q) = self.str_attr("url.query") {
            panic!("url.query must not be recorded (it may hold secrets), got {q:?}: {d}");
        }
        if let Some(full) = self.str_attr("url.full") {
            assert!(!full.contains('?'), "url.full must not carry the query string: {d}");
        }
        let is_error = if self.is_server() { exp.status >= 500 } else { exp.status >= 400 };
        if is_error {
            assert_eq!(
                self.str_attr("error.type"),
                Some(exp.status.to_string().as_str()),
                "error.type is the status code on an error response: {d}"
            );
            assert_eq!(self.status(), StatusCode::Error, "span status Error on an error response: {d}");
        } else {
            assert_eq!(self.str_attr("error.type"), None, "no error.type on a non-error response: {d}");
            assert_eq!(self.status(), StatusCode::Unset, "span status stays Unset (server 4xx too): {d}");
        }
        match self.kind() {
            SpanKind::Server => {
                assert_eq!(self.str_attr("url.scheme"), Some("http"), "url.scheme: {d}");
                assert_eq!(self.str_attr("client.address"), Some(exp.client_ip), "client.address: {d}");
                assert_eq!(self.str_attr("network.peer.address"), Some(exp.client_ip), "network.peer.address: {d}");
                let peer = self.peer_port();
                assert!(peer.is_some_and(|p| p != 0), "network.peer.port (int) of the client: {d}");
                if let Some(cp) = exp.client_port {
                    assert_eq!(peer, Some(cp), "network.peer.port is the client's port: {d}");
                }
            }
            SpanKind::Client => {
                // url.full is required on client spans (it carries the scheme), without the query.
                let host = if exp.server_ip.contains(':') {
                    format!("[{}]", exp.server_ip)
                } else {
                    exp.server_ip.to_string()
                };
                let full = format!("http://{host}:{}{}", exp.server_port, exp.path);
                assert_eq!(self.str_attr("url.full"), Some(full.as_str()), "url.full: {d}");
                assert_eq!(self.str_attr("network.peer.address"), Some(exp.server_ip), "network.peer.address: {d}");
                assert_eq!(self.peer_port(), Some(exp.server_port), "network.peer.port: {d}");
            }
            _ => unreachable!(),
        }
    }
}

/// True when the `http.route` template `route` matches `path`: segment by
/// segment, literal segments equal, `{name}` any one non-empty segment, and a
/// final `*` one or more remaining segments.
pub fn route_matches(route: &str, path: &str) -> bool {
    if !route.starts_with('/') || !path.starts_with('/') {
        return false;
    }
    let r: Vec<&str> = route[1..].split('/').collect();
    let p: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in r.iter().enumerate() {
        if *seg == "*" && i == r.len() - 1 {
            return p.len() > i;
        }
        let Some(actual) = p.get(i) else { return false };
        let placeholder = seg.len() > 2 && seg.starts_with('{') && seg.ends_with('}');
        if !(placeholder && !actual.is_empty() || seg == actual) {
            return false;
        }
    }
    r.len() == p.len()
}

/// What one HTTP exchange should look like.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: i64,
    pub server_ip: &'a str,
    pub server_port: u16,
    pub client_ip: &'a str,
    pub client_port: Option<u16>,
    /// `network.protocol.version`: "1.1" unless said otherwise.
    pub version: &'a str,
}

impl<'a> Expect<'a> {
    /// A GET on loopback IPv4 (server and client both 127.0.0.1).
    pub fn get(path: &'a str, status: i64, server_port: u16) -> Self {
        Self {
            method: "GET",
            path,
            status,
            server_ip: "127.0.0.1",
            server_port,
            client_ip: "127.0.0.1",
            client_port: None,
            version: "1.1",
        }
    }

    pub fn ipv6(mut self) -> Self {
        self.server_ip = "::1";
        self.client_ip = "::1";
        self
    }

    pub fn version(mut self, version: &'a str) -> Self {
        self.version = version;
        self
    }

    pub fn method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }

    pub fn client_port(mut self, port: u16) -> Self {
        self.client_port = Some(port);
        self
    }
}

/// The span's start is wall-clock time taken between `before` and `after`
/// (with a little slack for clock conversion), not boot time.
pub fn assert_wall_clock(span: &SpanRec, before: SystemTime, after: SystemTime) {
    let slack = Duration::from_secs(2);
    let d = span.describe();
    let start = span.start();
    assert!(
        start + slack >= before && start <= after + slack,
        "span start {:?} is not wall-clock time between {:?} and {:?}: {d}",
        start.duration_since(UNIX_EPOCH).unwrap_or_default(),
        before.duration_since(UNIX_EPOCH).unwrap_or_default(),
        after.duration_since(UNIX_EPOCH).unwrap_or_default(),
    );
    assert!(span.end() <= after + slack, "span ends after the request finished: {d}");
}

#[cfg(test)]
mod tests {
    use super::route_matches;

    #[test]
    fn routes_match_paths_segment_by_segment() {
        assert!(route_matches("/hello", "/hello"));
        assert!(route_matches("/par/{id}", "/par/8"));
        assert!(route_matches("/status/{id}", "/status/404"));
        assert!(route_matches("/static/*", "/static/a/b.css"));
        assert!(route_matches("/static/*", "/static/"));
        assert!(!route_matches("/static/*", "/static"));
        assert!(!route_matches("/par/{id}", "/par/"));
        assert!(!route_matches("/par/{id}", "/par/8/9"));
        assert!(!route_matches("/hello", "/hello?x=1"));
        assert!(!route_matches("/a", "/b"));
    }
}
