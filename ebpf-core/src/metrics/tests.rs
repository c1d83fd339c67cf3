use super::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram as OtlpHistogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics,
};

use crate::conntrack::Endpoints;
use crate::protocol::http1::telemetry::{describe_with, ERROR_NO_RESPONSE};
use crate::protocol::http1::{HttpExchange, HttpVersion};
use crate::protocol::{ConnFacts, Role};

/// Every HTTP metric name, in export order.
fn http_metric_names() -> Vec<&'static str> {
    let families = [&instruments::HTTP_SERVER, &instruments::HTTP_CLIENT];
    families.iter().flat_map(|f| f.instruments).map(|i| i.name).collect()
}

/// An HTTP exchange with its connection, as the tracker reports it.
#[derive(Debug, Clone)]
struct Exchange {
    http: HttpExchange,
    process: Arc<ProcessIdentity>,
    endpoints: Option<Endpoints>,
    tls: bool,
}

/// What the pipeline does with an exchange's metrics: its operation's
/// feeds, recorded.
trait RecordHttp {
    fn record(&mut self, ex: &Exchange, route: Option<&str>);
}

impl RecordHttp for Metrics {
    fn record(&mut self, ex: &Exchange, route: Option<&str>) {
        let facts = ConnFacts { endpoints: ex.endpoints, tls: ex.tls };
        describe_with(&ex.http, &facts, route, None, &mut |op| self.observe(&ex.process, op));
    }
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
/// Creation time of every `Metrics` here; collections happen later.
const T0: u64 = 1_700_000_000 * SEC;

fn identity(pid: u32, name: &str) -> Arc<ProcessIdentity> {
    Arc::new(ProcessIdentity::from_comm(pid, name))
}

fn exchange(process: &Arc<ProcessIdentity>, role: Role, status: Option<u16>, duration_ns: u64) -> Exchange {
    Exchange {
        http: HttpExchange {
            role,
            method: "GET".into(),
            target: "/users/12345?secret=hunter2".into(),
            version: HttpVersion::Http11,
            host: Some("svc:8080".into()),
            status,
            request_start_ns: 10 * SEC,
            request_end_ns: 10 * SEC + 1,
            response_start_ns: status.map(|_| 10 * SEC + 2),
            response_end_ns: 10 * SEC + duration_ns,
            request_body_size: 0,
            response_body_size: 10,
            bodies: None,
        },
        process: process.clone(),
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 8080),
            peer: ("10.0.0.2".parse().unwrap(), 5000),
        }),
        tls: false,
    }
}

fn config(temporality: Temporality, max_series: usize) -> MetricsConfig {
    MetricsConfig { temporality, max_series_per_metric: max_series, ..MetricsConfig::default() }
}

fn host() -> HostInfo {
    HostInfo { host_name: "node-1".into(), ..Default::default() }
}

fn collect(m: &mut Metrics, now: u64) -> Option<ExportMetricsServiceRequest> {
    let batch = m.collect(now, &host(), None)?;
    assert_eq!(batch.signal, Signal::Metrics);
    let req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
    // Written directly, but the bytes prost writes for the same request.
    assert_eq!(req.encode_to_vec(), batch.data);
    let points: usize =
        req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).map(data_points).sum();
    assert_eq!(batch.items, points);
    Some(req)
}

fn render(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => panic!("unexpected attribute value {other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter().map(|kv| (kv.key.clone(), render(&kv.value))).collect()
}

fn resource_attr(rm: &ResourceMetrics, key: &str) -> Option<String> {
    rm.resource.as_ref()?.attributes.iter().find(|kv| kv.key == key).map(|kv| render(&kv.value))
}

/// The metric `name` of the process whose `service.name` is `service`.
fn find<'a>(req: &'a ExportMetricsServiceRequest, service: &str, name: &str) -> Option<&'a Metric> {
    req.resource_metrics
        .iter()
        .filter(|rm| resource_attr(rm, "service.name").as_deref() == Some(service))
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
}

fn histogram<'a>(req: &'a ExportMetricsServiceRequest, service: &str, name: &str) -> &'a OtlpHistogram {
    match &find(req, service, name).unwrap_or_else(|| panic!("no {name}")).data {
        Some(Data::Histogram(h)) => h,
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// The point whose attributes include all of `with`.
fn point<'a>(h: &'a OtlpHistogram, with: &[(&str, &str)]) -> &'a HistogramDataPoint {
    let mut found = h.data_points.iter().filter(|p| {
        let a = attrs(&p.attributes);
        with.iter().all(|(k, v)| a.get(*k).map(String::as_str) == Some(*v))
    });
    let p = found.next().unwrap_or_else(|| panic!("no point with {with:?} in {:#?}", h.data_points));
    assert!(found.next().is_none(), "several points with {with:?}");
    p
}

#[test]
fn exact_buckets_sum_min_max() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let p = identity(7, "demo");
    for (ms, req_body) in [(3, 0), (5, 0), (7, 64), (120, 65), (12_000, 1000)] {
        let mut ex = exchange(&p, Role::Server, Some(200), ms * MS);
        ex.http.request_body_size = req_body;
        m.record(&ex, Some("/users/{id}"));
    }
    let req = collect(&mut m, T0 + 60 * SEC).unwrap();
    assert_eq!(req.resource_metrics.len(), 1);

    let metric = find(&req, "demo", "http.server.request.duration").unwrap();
    assert_eq!(metric.unit, "s");
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    assert_eq!(h.data_points.len(), 1);
    let d = &h.data_points[0];
    assert_eq!(d.explicit_bounds, DURATION_BOUNDS_S);
    // 3 ms and 5 ms (a bound is inclusive) | 7 ms | 120 ms in (0.1, 0.25] | 12 s beyond 10 s.
    assert_eq!(d.bucket_counts, [2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(d.count, 5);
    assert!((d.sum.unwrap() - 12.135).abs() < 1e-12, "{:?}", d.sum);
    assert_eq!((d.min, d.max), (Some(0.003), Some(12.0)));
    assert_eq!((d.start_time_unix_nano, d.time_unix_nano), (T0, T0 + 60 * SEC));

    let metric = find(&req, "demo", "http.server.request.body.size").unwrap();
    assert_eq!(metric.unit, "By");
    let b = &histogram(&req, "demo", "http.server.request.body.size").data_points[0];
    assert_eq!(b.explicit_bounds, BODY_SIZE_BOUNDS.map(|b| b as f64));
    // 0, 0 | 64 | 65 | 1000.
    assert_eq!(b.bucket_counts, [2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!((b.count, b.sum, b.min, b.max), (5, Some(1129.0), Some(0.0), Some(1000.0)));

    let r = &histogram(&req, "demo", "http.server.response.body.size").data_points[0];
    assert_eq!(r.bucket_counts, [0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!((r.count, r.sum, r.min, r.max), (5, Some(50.0), Some(10.0), Some(10.0)));

    // No client traffic: no client metrics.
    assert!(find(&req, "demo", "http.client.request.duration").is_none());
}

#[test]
fn cumulative_keeps_accumulating() {
    let mut m = Metrics::new_at(&config(Temporality::Cumulative, 100), T0);
    let p = identity(7, "demo");
    m.record(&exchange(&p, Role::Server, Some(200), 10 * MS), None);
    let t1 = T0 + 60 * SEC;
    let req = collect(&mut m, t1).unwrap();
    assert_eq!(histogram(&req, "demo", "http.server.request.duration").data_points[0].count, 1);

    m.record(&exchange(&p, Role::Server, Some(200), 10 * MS), None);
    m.record(&exchange(&p, Role::Server, Some(404), 10 * MS), None);
    let t2 = t1 + 60 * SEC;
    let req = collect(&mut m, t2).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    let ok = point(h, &[("http.response.status_code", "200")]);
    assert_eq!((ok.count, ok.start_time_unix_nano, ok.time_unix_nano), (2, T0, t2));
    // First seen after the first collection: that collection is its start.
    let missing = point(h, &[("http.response.status_code", "404")]);
    assert_eq!((missing.count, missing.start_time_unix_nano, missing.time_unix_nano), (1, t1, t2));

    // Nothing new: still exported, unchanged.
    let t3 = t2 + 60 * SEC;
    let req = collect(&mut m, t3).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.data_points.len(), 2);
    assert_eq!(point(h, &[("http.response.status_code", "200")]).count, 2);
    assert_eq!(m.series_count(), 2);
}

#[test]
fn delta_resets_and_skips_idle_series() {
    let mut m = Metrics::new_at(&config(Temporality::Delta, 100), T0);
    let p = identity(7, "demo");
    m.record(&exchange(&p, Role::Server, Some(200), 10 * MS), None);
    m.record(&exchange(&p, Role::Server, Some(200), 20 * MS), None);
    let t1 = T0 + 60 * SEC;
    let req = collect(&mut m, t1).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.aggregation_temporality, AggregationTemporality::Delta as i32);
    let d = &h.data_points[0];
    assert_eq!((d.count, d.start_time_unix_nano, d.time_unix_nano), (2, T0, t1));
    assert_eq!((d.min, d.max), (Some(0.01), Some(0.02)));

    m.record(&exchange(&p, Role::Server, Some(404), 30 * MS), None);
    let t2 = t1 + 60 * SEC;
    let req = collect(&mut m, t2).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.data_points.len(), 1, "the 200 series had nothing new");
    let d = point(h, &[("http.response.status_code", "404")]);
    assert_eq!((d.count, d.start_time_unix_nano, d.time_unix_nano), (1, t1, t2));
    assert_eq!((d.min, d.max, d.sum), (Some(0.03), Some(0.03), Some(0.03)));

    // Idle for a whole interval: nothing to say, nothing kept.
    assert!(collect(&mut m, t2 + 60 * SEC).is_none());
    assert_eq!(m.series_count(), 0);
    assert!(m.processes.is_empty());
}

#[test]
fn statuses_get_their_own_series_and_error_types() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let p = identity(7, "demo");
    for status in [Some(200), Some(404), Some(500), None, Some(200)] {
        m.record(&exchange(&p, Role::Server, status, MS), Some("/users/{id}"));
    }
    for status in [Some(200), Some(404), Some(503)] {
        m.record(&exchange(&p, Role::Client, status, MS), None);
    }
    let req = collect(&mut m, T0 + SEC).unwrap();

    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.data_points.len(), 4);
    let ok = attrs(&point(h, &[("http.response.status_code", "200")]).attributes);
    assert_eq!(point(h, &[("http.response.status_code", "200")]).count, 2);
    assert!(!ok.contains_key("error.type"));
    let not_found = attrs(&point(h, &[("http.response.status_code", "404")]).attributes);
    assert!(!not_found.contains_key("error.type"), "4xx is not a server error");
    let failed = attrs(&point(h, &[("http.response.status_code", "500")]).attributes);
    assert_eq!(failed["error.type"], "500");
    let missing = attrs(&point(h, &[("error.type", ERROR_NO_RESPONSE)]).attributes);
    assert!(!missing.contains_key("http.response.status_code"));
    // No response, no response body.
    assert_eq!(histogram(&req, "demo", "http.server.response.body.size").data_points.len(), 3);
    assert_eq!(histogram(&req, "demo", "http.server.request.body.size").data_points.len(), 4);

    let h = histogram(&req, "demo", "http.client.request.duration");
    assert_eq!(h.data_points.len(), 3);
    assert!(!attrs(&point(h, &[("http.response.status_code", "200")]).attributes).contains_key("error.type"));
    assert_eq!(attrs(&point(h, &[("http.response.status_code", "404")]).attributes)["error.type"], "404");
    assert_eq!(attrs(&point(h, &[("http.response.status_code", "503")]).attributes)["error.type"], "503");
}

#[test]
fn names_units_and_attributes_decode() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let p = identity(42, "checkout");
    let mut server = exchange(&p, Role::Server, Some(201), MS);
    server.http.method = "PURGE".into();
    server.http.version = HttpVersion::Http10;
    m.record(&server, Some("/cache/{key}"));
    m.record(&exchange(&p, Role::Client, Some(200), MS), Some("/ignored/for/clients"));
    let mut no_host = exchange(&p, Role::Client, Some(200), MS);
    no_host.http.host = None;
    m.record(&no_host, None);
    let req = collect(&mut m, T0 + SEC).unwrap();

    assert_eq!(req.resource_metrics.len(), 1);
    let rm = &req.resource_metrics[0];
    assert_eq!(resource_attr(rm, "process.pid").as_deref(), Some("42"));
    assert_eq!(resource_attr(rm, "host.name").as_deref(), Some("node-1"));
    assert_eq!(rm.scope_metrics.len(), 1);
    assert_eq!(rm.scope_metrics[0].scope.as_ref().unwrap().name, crate::SDK_NAME);
    let names: Vec<(&str, &str)> =
        rm.scope_metrics[0].metrics.iter().map(|m| (m.name.as_str(), m.unit.as_str())).collect();
    assert_eq!(
        names,
        [
            ("http.server.request.duration", "s"),
            ("http.server.request.body.size", "By"),
            ("http.server.response.body.size", "By"),
            ("http.client.request.duration", "s"),
            ("http.client.request.body.size", "By"),
            ("http.client.response.body.size", "By"),
        ]
    );
    assert_eq!(names.iter().map(|(n, _)| *n).collect::<Vec<_>>(), http_metric_names());
    assert!(rm.scope_metrics[0].metrics.iter().all(|m| !m.description.is_empty()));

    let s = &histogram(&req, "checkout", "http.server.request.duration").data_points[0];
    let want: BTreeMap<String, String> = [
        ("http.request.method", "_OTHER"),
        ("url.scheme", "http"),
        ("network.protocol.version", "1.0"),
        ("http.response.status_code", "201"),
        ("http.route", "/cache/{key}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(attrs(&s.attributes), want);

    let h = histogram(&req, "checkout", "http.client.request.duration");
    let named = attrs(&point(h, &[("server.address", "svc")]).attributes);
    let want: BTreeMap<String, String> = [
        ("http.request.method", "GET"),
        ("url.scheme", "http"),
        ("network.protocol.version", "1.1"),
        ("http.response.status_code", "200"),
        ("server.address", "svc"),
        ("server.port", "5000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(named, want, "a client has no http.route");
    // Without a Host header the peer address stands in.
    assert_eq!(attrs(&point(h, &[("server.address", "10.0.0.2")]).attributes)["server.port"], "5000");
}

#[test]
fn tls_exchanges_are_https_series() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let p = identity(7, "demo");
    for role in [Role::Server, Role::Client] {
        m.record(&exchange(&p, role, Some(200), MS), None);
        let mut tls = exchange(&p, role, Some(200), 2 * MS);
        tls.tls = true;
        m.record(&tls, None);
        m.record(&tls, None);
    }
    let req = collect(&mut m, T0 + SEC).unwrap();
    for name in ["http.server.request.duration", "http.client.request.duration"] {
        let h = histogram(&req, "demo", name);
        assert_eq!(h.data_points.len(), 2, "{name}: one series per scheme");
        assert_eq!(point(h, &[("url.scheme", "http")]).count, 1, "{name}");
        assert_eq!(point(h, &[("url.scheme", "https")]).count, 2, "{name}");
    }
}

#[test]
fn nothing_per_request_is_an_attribute() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let p = identity(7, "demo");
    for role in [Role::Server, Role::Client] {
        for status in [Some(200), Some(500), None] {
            m.record(&exchange(&p, role, status, MS), Some("/users/{id}"));
            m.record(&exchange(&p, role, status, MS), None);
        }
    }
    let req = collect(&mut m, T0 + SEC).unwrap();
    let allowed = [
        "http.request.method",
        "url.scheme",
        "network.protocol.version",
        "http.response.status_code",
        "error.type",
        "http.route",
        "server.address",
        "server.port",
    ];
    let mut points = 0;
    for metric in req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics) {
        let Some(Data::Histogram(h)) = &metric.data else { panic!("{} is not a histogram", metric.name) };
        for p in &h.data_points {
            points += 1;
            for (k, v) in attrs(&p.attributes) {
                assert!(allowed.contains(&k.as_str()), "{k} on {}", metric.name);
                assert!(!v.contains("12345") && !v.contains("hunter2"), "{k}={v} leaks the request");
            }
        }
    }
    assert!(points > 0);
    let debug = format!("{req:?}");
    assert!(!debug.contains("url.path") && !debug.contains("/users/12345"), "{debug}");
}

#[test]
fn overflow_series_takes_what_exceeds_the_limit() {
    let mut m = Metrics::new_at(&config(Temporality::Cumulative, 2), T0);
    let p = identity(7, "demo");
    for route in ["/r0", "/r1", "/r2", "/r3", "/r4", "/r0", "/r3"] {
        m.record(&exchange(&p, Role::Server, Some(200), MS), Some(route));
    }
    // Client series have their own limit.
    m.record(&exchange(&p, Role::Client, Some(200), MS), None);
    assert_eq!(m.overflowed(), 4, "/r2, /r3, /r4, then /r3 again: it never got a series");
    let req = collect(&mut m, T0 + SEC).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.data_points.len(), 3);
    assert_eq!(point(h, &[("http.route", "/r0")]).count, 2);
    assert_eq!(point(h, &[("http.route", "/r1")]).count, 1);
    let overflow = point(h, &[("otel.metric.overflow", "true")]);
    assert_eq!(overflow.count, 4);
    assert_eq!(overflow.attributes.len(), 1, "the overflow series has no other attribute");
    assert!(matches!(overflow.attributes[0].value.as_ref().unwrap().value, Some(Value::BoolValue(true))));
    for name in ["http.server.request.body.size", "http.server.response.body.size"] {
        assert_eq!(point(histogram(&req, "demo", name), &[("otel.metric.overflow", "true")]).count, 4);
    }
    assert_eq!(h.data_points.iter().map(|p| p.count).sum::<u64>(), 7, "nothing dropped");
    assert_eq!(histogram(&req, "demo", "http.client.request.duration").data_points.len(), 1);
}

#[test]
fn overflow_room_frees_up_in_delta_mode() {
    let mut m = Metrics::new_at(&config(Temporality::Delta, 1), T0);
    let p = identity(7, "demo");
    m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/a"));
    m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/b"));
    assert_eq!(m.overflowed(), 1);
    collect(&mut m, T0 + SEC).unwrap();
    m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/b"));
    // `/a` is still there (it had data) until a collection finds it idle.
    assert_eq!(m.overflowed(), 2);
    let req = collect(&mut m, T0 + 2 * SEC).unwrap();
    let h = histogram(&req, "demo", "http.server.request.duration");
    assert_eq!(h.data_points.len(), 1);
    assert_eq!(point(h, &[("otel.metric.overflow", "true")]).count, 1);
    m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/b"));
    assert_eq!(m.overflowed(), 2, "/a was dropped: /b has a series now");
    let req = collect(&mut m, T0 + 3 * SEC).unwrap();
    assert_eq!(point(histogram(&req, "demo", "http.server.request.duration"), &[("http.route", "/b")]).count, 1);
}

#[test]
fn forgotten_processes_are_exported_once_more() {
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let mut m = Metrics::new_at(&config(temporality, 100), T0);
        let (a, b) = (identity(7, "gone"), identity(8, "stays"));
        m.record(&exchange(&a, Role::Server, Some(200), MS), None);
        m.record(&exchange(&b, Role::Server, Some(200), MS), None);
        collect(&mut m, T0 + SEC).unwrap();
        m.record(&exchange(&a, Role::Server, Some(200), MS), None);
        m.forget_process(7);
        m.forget_process(12345);
        let req = collect(&mut m, T0 + 2 * SEC).unwrap();
        let last = &histogram(&req, "gone", "http.server.request.duration").data_points[0];
        let want = if temporality == Temporality::Cumulative { 2 } else { 1 };
        assert_eq!(last.count, want, "{temporality:?}");
        let req = collect(&mut m, T0 + 3 * SEC);
        assert!(req.is_none_or(|r| find(&r, "gone", "http.server.request.duration").is_none()), "{temporality:?}");

        // The pid comes back (reused, or a late exchange): a fresh start.
        m.record(&exchange(&a, Role::Server, Some(200), MS), None);
        let req = collect(&mut m, T0 + 4 * SEC).unwrap();
        let again = &histogram(&req, "gone", "http.server.request.duration").data_points[0];
        assert_eq!((again.count, again.start_time_unix_nano), (1, T0 + 3 * SEC));
    }
}

#[test]
fn a_changed_identity_is_another_resource() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let before = identity(7, "before-exec");
    let after = identity(7, "after-exec");
    let same_as_after = identity(7, "after-exec");
    m.record(&exchange(&before, Role::Server, Some(200), MS), None);
    m.record(&exchange(&after, Role::Server, Some(200), MS), None);
    m.record(&exchange(&same_as_after, Role::Server, Some(200), MS), None);
    m.record(&exchange(&before, Role::Server, Some(200), MS), None);
    let req = collect(&mut m, T0 + SEC).unwrap();
    assert_eq!(req.resource_metrics.len(), 2);
    assert_eq!(histogram(&req, "before-exec", "http.server.request.duration").data_points[0].count, 2);
    assert_eq!(histogram(&req, "after-exec", "http.server.request.duration").data_points[0].count, 2);
    m.forget_process(7);
    assert_eq!(collect(&mut m, T0 + 2 * SEC).unwrap().resource_metrics.len(), 2);
    assert!(collect(&mut m, T0 + 3 * SEC).is_none());
}

fn sum_value(req: &ExportMetricsServiceRequest, name: &str) -> (i64, i32, u64) {
    match &find(req, crate::SDK_NAME, name).unwrap_or_else(|| panic!("no {name}")).data {
        Some(Data::Sum(s)) => {
            assert!(s.is_monotonic, "{name}");
            assert_eq!(s.data_points.len(), 1);
            (number(&s.data_points[0]), s.aggregation_temporality, s.data_points[0].start_time_unix_nano)
        }
        other => panic!("{name} is not a sum: {other:?}"),
    }
}

fn number(p: &NumberDataPoint) -> i64 {
    match p.value {
        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => i,
        other => panic!("not an int: {other:?}"),
    }
}

#[test]
fn self_telemetry() {
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let mut m = Metrics::new_at(&config(temporality, 1), T0);
        let p = identity(7, "demo");
        m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/a"));
        m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/b"));
        let mut stats = StatsSnapshot {
            events_read: 100,
            events_lost: 2,
            decode_errors: 1,
            spans_exported: 40,
            batches_dropped: 3,
            spans_dropped: 9,
            parse_errors: 4,
            connections: 12,
            processes: 5,
            tls_no_socket: 6,
            ..StatsSnapshot::default()
        };
        let t1 = T0 + SEC;
        let batch = m.collect(t1, &host(), Some(&stats)).unwrap();
        let req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
        // Written directly, but the bytes prost writes for the same request.
        assert_eq!(req.encode_to_vec(), batch.data);
        assert_eq!(req.resource_metrics.len(), 2);
        let own = req
            .resource_metrics
            .iter()
            .find(|r| resource_attr(r, "service.name").as_deref() == Some(crate::SDK_NAME))
            .unwrap();
        assert_eq!(resource_attr(own, "telemetry.sdk.name").as_deref(), Some(crate::SDK_NAME));
        assert_eq!(resource_attr(own, "host.name").as_deref(), Some("node-1"));
        let names: Vec<&str> = own.scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, SELF_METRIC_NAMES);
        let expected_temporality = temporality.otlp();
        for (name, value) in [
            ("ebpf_receiver.events.read", 100),
            ("ebpf_receiver.events.lost", 2),
            ("ebpf_receiver.decode.errors", 1),
            ("ebpf_receiver.spans.exported", 40),
            ("ebpf_receiver.batches.dropped", 3),
            ("ebpf_receiver.parse.errors", 4),
            ("ebpf_receiver.metric.overflows", 1),
            ("ebpf_receiver.tls.lost", 6),
        ] {
            assert_eq!(sum_value(&req, name), (value, expected_temporality, T0), "{name}");
        }
        let parse = find(&req, crate::SDK_NAME, "ebpf_receiver.parse.errors").unwrap();
        let Some(Data::Sum(s)) = &parse.data else { unreachable!() };
        assert_eq!(
            attrs(&s.data_points[0].attributes),
            BTreeMap::from([("network.protocol.name".into(), "http".into())])
        );
        for (name, value) in [("ebpf_receiver.connections.tracked", 12), ("ebpf_receiver.processes.traced", 5)] {
            let Some(Data::Gauge(g)) = &find(&req, crate::SDK_NAME, name).unwrap().data else { panic!("{name}") };
            assert_eq!(number(&g.data_points[0]), value);
            assert_eq!(g.data_points[0].time_unix_nano, t1);
        }

        // Second collection: cumulative totals, or what changed.
        stats.events_read = 250;
        stats.connections = 3;
        m.record(&exchange(&p, Role::Server, Some(200), MS), Some("/c"));
        let t2 = T0 + 2 * SEC;
        let batch = m.collect(t2, &host(), Some(&stats)).unwrap();
        let req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
        // Written directly, but the bytes prost writes for the same request.
        assert_eq!(req.encode_to_vec(), batch.data);
        let (read, lost, overflows) = match temporality {
            Temporality::Cumulative => ((250, T0), (2, T0), (2, T0)),
            Temporality::Delta => ((150, t1), (0, t1), (1, t1)),
        };
        let value = |name| {
            let (v, _, start) = sum_value(&req, name);
            (v, start)
        };
        assert_eq!(value("ebpf_receiver.events.read"), read, "{temporality:?}");
        assert_eq!(value("ebpf_receiver.events.lost"), lost, "{temporality:?}");
        assert_eq!(value("ebpf_receiver.metric.overflows"), overflows, "{temporality:?}");
    }
}

#[test]
fn nothing_to_say_is_none() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    assert!(m.collect(T0 + SEC, &host(), None).is_none());
    let batch = m.collect(T0 + 2 * SEC, &host(), Some(&StatsSnapshot::default())).unwrap();
    assert_eq!(batch.items, SELF_METRIC_NAMES.len());
}

#[test]
fn config_parses_and_validates() {
    let c: MetricsConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(
        c,
        MetricsConfig {
            enabled: true,
            interval_ms: 60_000,
            temporality: Temporality::Cumulative,
            max_series_per_metric: 2000
        }
    );
    assert_eq!(c.interval(), Duration::from_secs(60));
    let c: MetricsConfig = serde_json::from_str(r#"{"temporality": "delta", "interval_ms": 1000}"#).unwrap();
    assert_eq!((c.temporality, c.interval_ms, c.max_series_per_metric), (Temporality::Delta, 1000, 2000));
    let c: MetricsConfig = serde_json::from_str(r#"{"temporality": "cumulative"}"#).unwrap();
    assert_eq!(c.temporality, Temporality::Cumulative);
    for bad in [r#"{"temporality": "Delta"}"#, r#"{"temporality": "gauge"}"#, r#"{"interval": 5}"#] {
        assert!(serde_json::from_str::<MetricsConfig>(bad).is_err(), "{bad}");
    }
    // Bounds: `crate::config` tests every key's.
    for (c, field) in [
        (MetricsConfig { interval_ms: 0, ..MetricsConfig::default() }, "metrics.interval_ms"),
        (MetricsConfig { max_series_per_metric: 0, ..MetricsConfig::default() }, "metrics.max_series_per_metric"),
    ] {
        let err = crate::Config { metrics: c, ..crate::Config::default() }.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}

// Counts this thread's allocations, to check the hot path allocates nothing.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: defers everything to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn recording_into_existing_series_allocates_nothing() {
    let mut m = Metrics::new_at(&config(Temporality::Delta, 3), T0);
    let (a, b) = (identity(7, "a"), identity(8, "b"));
    let mut exchanges = Vec::new();
    for role in [Role::Server, Role::Client] {
        for status in [Some(200), Some(404), None] {
            exchanges.push(exchange(&a, role, status, 3 * MS));
            exchanges.push(exchange(&b, role, status, 300 * MS));
        }
    }
    let mut no_host = exchange(&a, Role::Client, Some(200), MS);
    no_host.http.host = None;
    exchanges.push(no_host);
    let mut other = exchange(&b, Role::Server, Some(200), MS);
    other.http.method = "PURGE".into();
    exchanges.push(other);
    let routes = ["/users/{id}", "/orders/{id}", "/r2", "/r3", "/r4", "/r5"];
    let record_all = |m: &mut Metrics| {
        for (i, ex) in exchanges.iter().enumerate() {
            m.record(ex, Some(routes[i % routes.len()]));
        }
    };
    record_all(&mut m);
    assert!(m.overflowed() > 0, "the test should exercise the overflow path too");
    let before = allocations();
    for _ in 0..1000 {
        record_all(&mut m);
    }
    assert_eq!(allocations() - before, 0, "record() allocated in the steady state");

    // Delta keeps series that had data: still nothing to allocate afterwards.
    collect(&mut m, T0 + SEC).unwrap();
    let before = allocations();
    record_all(&mut m);
    assert_eq!(allocations() - before, 0, "record() allocated after a delta collection");
}

/// `cargo test --release -p ebpf-core record_throughput -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run in release"]
fn record_throughput() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), T0);
    let routes = crate::routes::RouteMatcher::new(&[], true).unwrap();
    let p = identity(7, "demo");
    let mut exchanges = Vec::new();
    for i in 0..64u64 {
        let role = if i % 4 == 0 { Role::Client } else { Role::Server };
        let status = [Some(200), Some(200), Some(404), Some(500)][(i % 4) as usize];
        let mut ex = exchange(&p, role, status, (i + 1) * 3 * MS);
        ex.http.target = format!("/api/v1/users/{}/orders/{}?x=1", i * 7919, i % 3).into();
        exchanges.push(ex);
    }
    let mut buf = String::new();
    let n = 2_000_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        let ex = &exchanges[i % exchanges.len()];
        let path = crate::protocol::http1::telemetry::path_of(&ex.http.target);
        let route = routes.route_in(path, &mut buf);
        m.record(ex, route);
    }
    let with_routes = start.elapsed();
    let start = std::time::Instant::now();
    for i in 0..n {
        m.record(&exchanges[i % exchanges.len()], Some("/api/v1/users/{id}/orders/{id}"));
    }
    let record_only = start.elapsed();
    println!(
        "record: {:.1} ns, route_in + record: {:.1} ns per exchange",
        record_only.as_nanos() as f64 / n as f64,
        with_routes.as_nanos() as f64 / n as f64
    );
}

/// A feed of the messaging family: one send of `sent` messages to `topic`.
fn messaging_op(topic: &str, sent: u64) -> crate::protocol::Operation<'_> {
    use crate::protocol::{MetricFeed, Operation, SpanName};
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    let mut op = Operation::new(SpanName::new("send", Some(topic)), SpanKind::Producer, 0, 2 * MS);
    let mut feed = MetricFeed::new(&instruments::MESSAGING_CLIENT);
    feed.attr("messaging.system", "kafka");
    feed.attr("messaging.destination.name", topic);
    feed.attr("messaging.operation.type", "send");
    feed.value(instruments::messaging::DURATION, op.duration_ns());
    feed.value(instruments::messaging::SENT, sent);
    op.metrics.push(feed);
    op
}

fn sum_points(req: &ExportMetricsServiceRequest, name: &str) -> Vec<(BTreeMap<String, String>, i64, bool, i32)> {
    let m =
        req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).find(|m| m.name == name);
    match m.and_then(|m| m.data.as_ref()) {
        Some(Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| (attrs(&p.attributes), number(p), s.is_monotonic, s.aggregation_temporality))
            .collect(),
        other => panic!("{name} is not a sum: {other:?}"),
    }
}

#[test]
fn counters_are_monotonic_sums_with_their_own_attributes() {
    let mut m = Metrics::new_at(&config(Temporality::Cumulative, 1), T0);
    let p = identity(9, "producer");
    m.observe(&p, &messaging_op("orders", 10));
    m.observe(&p, &messaging_op("orders", 5));
    m.observe(&p, &messaging_op("payments", 1));
    let req = collect(&mut m, T0 + SEC).unwrap();
    let sent = sum_points(&req, "messaging.client.sent.messages");
    let cumulative = AggregationTemporality::Cumulative as i32;
    let orders: BTreeMap<String, String> = [("messaging.system", "kafka"), ("messaging.destination.name", "orders")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let overflow: BTreeMap<String, String> = [("otel.metric.overflow".to_string(), "true".to_string())].into();
    // messaging.operation.type is the duration's only; the limit of one
    // series sends "payments" to the overflow series, counters included.
    assert_eq!(sent, [(orders, 15, true, cumulative), (overflow, 1, true, cumulative)]);
    let h = histogram(&req, "producer", "messaging.client.operation.duration");
    assert_eq!(h.data_points.iter().map(|p| p.count).sum::<u64>(), 3);
    assert!(h.data_points.iter().any(|p| attrs(&p.attributes).contains_key("messaging.operation.type")));
    // Nothing consumed: no point, so no metric.
    assert!(find(&req, "producer", "messaging.client.consumed.messages").is_none());
    // Cumulative: the totals go on.
    m.observe(&p, &messaging_op("orders", 1));
    let req = collect(&mut m, T0 + 2 * SEC).unwrap();
    assert_eq!(sum_points(&req, "messaging.client.sent.messages")[0].1, 16);
}
