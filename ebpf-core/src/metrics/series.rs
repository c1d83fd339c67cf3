//! Series identity: the attribute set of one exchange, looked up by a
//! borrowed view (no allocation) and stored as an owned key (allocated once,
//! when the series is created).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

use crate::conntrack::Exchange;
use crate::otlp::wire::AttrSink;
use crate::protocol::http1::{HttpExchange, HttpVersion};
use crate::protocol::Role;
use crate::spans::http_common::{client_server, error_type, known_method, ServerAddress, KNOWN_METHODS, METHOD_OTHER};

use super::histogram::{Histogram, BODY_SIZE_BOUNDS, BODY_SIZE_BUCKETS, DURATION_BOUNDS_NS, DURATION_BUCKETS};

/// `method` value for a method outside `KNOWN_METHODS`.
const OTHER: u8 = u8::MAX;

/// The attributes of an exchange, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeyView<'a> {
    /// Index into `KNOWN_METHODS`, or `OTHER`.
    method: u8,
    status: Option<u16>,
    version: HttpVersion,
    route: Option<&'a str>,
    /// Client series only.
    server_address: Option<ServerAddress<'a>>,
    server_port: Option<u16>,
    /// `url.scheme` https.
    tls: bool,
}

impl<'a> KeyView<'a> {
    pub(super) fn of(ex: &'a Exchange, route: Option<&'a str>) -> Self {
        let http = &ex.http;
        let method = known_method(&http.method).map_or(OTHER, |i| i as u8);
        let (server_address, server_port) = match http.role {
            Role::Server => (None, None),
            Role::Client => client_server(ex),
        };
        Self { method, status: http.status, version: http.version, route, server_address, server_port, tls: ex.tls }
    }

    pub(super) fn to_owned_key(self) -> SeriesKey {
        SeriesKey {
            method: self.method,
            status: self.status,
            version: self.version,
            route: self.route.map(Box::from),
            server_address: self.server_address.map(|a| match a {
                ServerAddress::Name(n) => OwnedAddress::Name(Box::from(n)),
                ServerAddress::Ip(ip) => OwnedAddress::Ip(ip),
            }),
            server_port: self.server_port,
            tls: self.tls,
        }
    }
}

#[derive(Debug, Clone)]
enum OwnedAddress {
    Name(Box<str>),
    Ip(IpAddr),
}

/// A series' attributes, owned by the series map.
#[derive(Debug, Clone)]
pub(super) struct SeriesKey {
    method: u8,
    status: Option<u16>,
    version: HttpVersion,
    route: Option<Box<str>>,
    server_address: Option<OwnedAddress>,
    server_port: Option<u16>,
    tls: bool,
}

impl SeriesKey {
    /// The data point attributes, into any sink (`Vec<KeyValue>`, or encoded
    /// straight into a buffer). Never `url.path` nor anything else per request.
    pub(super) fn write_attributes(&self, role: Role, attrs: &mut impl AttrSink) {
        let method = KNOWN_METHODS.get(usize::from(self.method)).copied().unwrap_or(METHOD_OTHER);
        attrs.str("http.request.method", method);
        attrs.str("url.scheme", if self.tls { "https" } else { "http" });
        attrs.str("network.protocol.version", self.version.as_str());
        if let Some(status) = self.status {
            attrs.int("http.response.status_code", i64::from(status));
        }
        if let Some(e) = error_type(role, self.status) {
            attrs.str("error.type", &e);
        }
        if let Some(route) = &self.route {
            attrs.str("http.route", route);
        }
        match &self.server_address {
            Some(OwnedAddress::Name(n)) => attrs.str("server.address", n),
            Some(OwnedAddress::Ip(ip)) => attrs.ip("server.address", *ip),
            None => {}
        }
        if let Some(port) = self.server_port {
            attrs.int("server.port", i64::from(port));
        }
    }
}

/// The only attribute of the series that takes what exceeds the series limit
/// (the name the OpenTelemetry metrics SDK specification gives it).
pub(super) const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// `OVERFLOW_ATTRIBUTE` as the attribute list.
pub(super) fn overflow_attributes() -> Vec<KeyValue> {
    vec![KeyValue {
        key: OVERFLOW_ATTRIBUTE.to_string(),
        value: Some(AnyValue { value: Some(Value::BoolValue(true)) }),
        ..Default::default()
    }]
}

/// Lets a `HashMap<SeriesKey, _>` be searched with a `KeyView`.
pub(super) trait AsKeyView {
    fn view(&self) -> KeyView<'_>;
}

impl AsKeyView for KeyView<'_> {
    fn view(&self) -> KeyView<'_> {
        *self
    }
}

impl AsKeyView for SeriesKey {
    fn view(&self) -> KeyView<'_> {
        KeyView {
            method: self.method,
            status: self.status,
            version: self.version,
            route: self.route.as_deref(),
            server_address: self.server_address.as_ref().map(|a| match a {
                OwnedAddress::Name(n) => ServerAddress::Name(n),
                OwnedAddress::Ip(ip) => ServerAddress::Ip(*ip),
            }),
            server_port: self.server_port,
            tls: self.tls,
        }
    }
}

impl<'a> Borrow<dyn AsKeyView + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn AsKeyView + 'a) {
        self
    }
}

impl Hash for dyn AsKeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl PartialEq for dyn AsKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for dyn AsKeyView + '_ {}

// Must hash and compare exactly as the `dyn AsKeyView` it borrows as.
impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for SeriesKey {}

/// The three histograms of one attribute set.
#[derive(Debug, Clone)]
pub(super) struct Series {
    /// Cumulative start time: the last collection before the series' first
    /// record (or the creation of `HttpMetrics`).
    pub(super) start_ns: u64,
    pub(super) duration: Histogram<DURATION_BUCKETS>,
    pub(super) request_body: Histogram<BODY_SIZE_BUCKETS>,
    pub(super) response_body: Histogram<BODY_SIZE_BUCKETS>,
}

impl Series {
    pub(super) fn new(start_ns: u64) -> Self {
        Self { start_ns, duration: Histogram::new(), request_body: Histogram::new(), response_body: Histogram::new() }
    }

    #[inline]
    pub(super) fn record(&mut self, http: &HttpExchange) {
        self.duration.record(http.response_end_ns.saturating_sub(http.request_start_ns), &DURATION_BOUNDS_NS);
        self.request_body.record(http.request_body_size, &BODY_SIZE_BOUNDS);
        // No response, no response body to measure (not even an empty one).
        if http.status.is_some() {
            self.response_body.record(http.response_body_size, &BODY_SIZE_BOUNDS);
        }
    }

    /// Every record lands in `duration`: a series has new data iff it counts some.
    pub(super) fn has_data(&self) -> bool {
        self.duration.count() > 0
    }

    pub(super) fn reset(&mut self) {
        self.duration.reset();
        self.request_body.reset();
        self.response_body.reset();
    }
}

/// The series of one metric family (server or client) of one process.
#[derive(Debug, Default)]
pub(super) struct SeriesMap {
    /// foldhash: several times cheaper than SipHash on these small keys, and
    /// seeded at random per process, as the keys hold request text (routes, Host).
    pub(super) series: HashMap<SeriesKey, Series, foldhash::fast::RandomState>,
    /// Data whose attribute set found no room (`max_series_per_metric`).
    pub(super) overflow: Option<Series>,
}

impl SeriesMap {
    /// Records into the series of `view`, created if there is room; `false`
    /// when the limit was hit and the overflow series took the record.
    #[inline]
    pub(super) fn record(&mut self, view: KeyView<'_>, http: &HttpExchange, max_series: usize, start_ns: u64) -> bool {
        if let Some(series) = self.series.get_mut(&view as &dyn AsKeyView) {
            series.record(http);
            return true;
        }
        if self.series.len() < max_series {
            self.series.entry(view.to_owned_key()).or_insert_with(|| Series::new(start_ns)).record(http);
            return true;
        }
        self.overflow.get_or_insert_with(|| Series::new(start_ns)).record(http);
        false
    }

    pub(super) fn is_empty(&self) -> bool {
        self.series.is_empty() && self.overflow.is_none()
    }

    /// Delta mode, after an export: drop series without new data, zero the others.
    pub(super) fn reset_for_delta(&mut self) {
        self.series.retain(|_, s| s.has_data());
        self.series.values_mut().for_each(Series::reset);
        if self.overflow.as_ref().is_some_and(|s| !s.has_data()) {
            self.overflow = None;
        }
        if let Some(s) = &mut self.overflow {
            s.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash(k: &dyn AsKeyView) -> u64 {
        let mut h = DefaultHasher::new();
        k.hash(&mut h);
        h.finish()
    }

    #[test]
    fn owned_and_borrowed_keys_agree() {
        let view = KeyView {
            method: 0,
            status: Some(200),
            version: HttpVersion::Http11,
            route: Some("/users/{id}"),
            server_address: Some(ServerAddress::Name("svc")),
            server_port: Some(8080),
            tls: false,
        };
        let owned = view.to_owned_key();
        assert_eq!(hash(&view), hash(&owned));
        assert!(&view as &dyn AsKeyView == &owned as &dyn AsKeyView);
        let mut map = HashMap::new();
        map.insert(owned, 1);
        assert_eq!(map.get(&view as &dyn AsKeyView), Some(&1));
        let other = KeyView { route: Some("/users"), ..view };
        assert_eq!(map.get(&other as &dyn AsKeyView), None);
        let https = KeyView { tls: true, ..view };
        assert_eq!(map.get(&https as &dyn AsKeyView), None);
    }
}
