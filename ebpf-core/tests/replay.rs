//! Real traffic, recorded from the kernel probes (python http.server answering
//! curl: a 200 with a secret query, a 404, a 500 carrying an Authorization
//! header, three keep-alive requests on one connection; see
//! tests/fixtures/events/README.md), replayed through the whole userspace
//! pipeline: decode → connection state → HTTP parser → spans → OTLP.

use std::sync::Arc;
use std::time::Instant;

use ebpf_core::events::recording::read_records;
use ebpf_core::pipeline::Processor;
use ebpf_core::stats::Stats;
use ebpf_core::{Batch, Config, Signal};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const FIXTURE: &[u8] = include_bytes!("fixtures/events/python_curl.bin");
const PORT: i64 = 18931;

fn replay() -> (Vec<Batch>, Arc<Stats>) {
    replay_with(&Config::default())
}

fn replay_with(config: &Config) -> (Vec<Batch>, Arc<Stats>) {
    let stats = Arc::new(Stats::default());
    let mut p = Processor::replay(config, stats.clone());
    let mut batches = Vec::new();
    let now = Instant::now();
    for record in read_records(FIXTURE) {
        p.handle(record, now, &mut |b| batches.push(b));
    }
    p.flush(&mut |b| batches.push(b));
    (batches, stats)
}

fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn spans_by_service() -> Vec<(String, Span)> {
    spans_of(&replay().0)
}

fn spans_of(batches: &[Batch]) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for b in batches.iter().filter(|b| b.signal == Signal::Traces) {
        let req = ExportTraceServiceRequest::decode(b.data.as_slice()).unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .unwrap()
                .attributes
                .into_iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value?.value? {
                    Value::StringValue(s) => Some(s),
                    _ => None,
                })
                .unwrap();
            for ss in rs.scope_spans {
                out.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }
    out
}

#[test]
fn one_span_per_request_on_each_side() {
    let spans = spans_by_service();
    let server: Vec<&Span> = spans.iter().filter(|(_, s)| s.kind == SpanKind::Server as i32).map(|(_, s)| s).collect();
    let client: Vec<&Span> = spans.iter().filter(|(_, s)| s.kind == SpanKind::Client as i32).map(|(_, s)| s).collect();
    assert_eq!(server.len(), 6, "{spans:#?}");
    assert_eq!(client.len(), 6);
    assert!(spans.iter().all(|(svc, s)| match SpanKind::try_from(s.kind).unwrap() {
        // The executable's name from the kernel, not the 15-byte task name.
        SpanKind::Server => svc == "python3.11",
        _ => svc == "curl",
    }));
    let mut paths: Vec<String> = server
        .iter()
        .map(|s| match attr(s, "url.path") {
            Some(Value::StringValue(p)) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["/hello", "/ka/1", "/ka/2", "/ka/3", "/status/404", "/status/500"]);
    for s in &server {
        // Named by the heuristic route: ID-like segments become {id}.
        let Some(Value::StringValue(route)) = attr(s, "http.route") else { panic!("no route: {s:?}") };
        assert_eq!(s.name, format!("GET {route}"));
        assert_eq!(attr(s, "server.port"), Some(Value::IntValue(PORT)));
        assert_eq!(attr(s, "url.scheme"), Some(Value::StringValue("http".into())));
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    for s in &client {
        assert_eq!(s.name, "GET");
        assert_eq!(attr(s, "server.port"), Some(Value::IntValue(PORT)));
        assert_eq!(attr(s, "network.peer.address"), Some(Value::StringValue("127.0.0.1".into())));
    }
}

#[test]
fn statuses_and_errors() {
    let spans = spans_by_service();
    let find = |kind: SpanKind, path: &str| {
        spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.kind == kind as i32 && attr(s, "url.path") == Some(Value::StringValue(path.into())))
            .unwrap_or_else(|| panic!("no {kind:?} span for {path}"))
    };
    let s500 = find(SpanKind::Server, "/status/500");
    assert_eq!(attr(s500, "http.response.status_code"), Some(Value::IntValue(500)));
    assert_eq!(attr(s500, "error.type"), Some(Value::StringValue("500".into())));
    let s404 = find(SpanKind::Server, "/status/404");
    assert_eq!(attr(s404, "http.response.status_code"), Some(Value::IntValue(404)));
    assert_eq!(attr(s404, "error.type"), None, "4xx is not a server error");
    let c404 = find(SpanKind::Client, "/status/404");
    assert_eq!(attr(c404, "error.type"), Some(Value::StringValue("404".into())));
    let ok = find(SpanKind::Client, "/hello");
    assert_eq!(attr(ok, "http.response.status_code"), Some(Value::IntValue(200)));
    assert_eq!(attr(ok, "url.full"), Some(Value::StringValue(format!("http://127.0.0.1:{PORT}/hello"))));
}

#[test]
fn routes_collapse_ids() {
    let spans = spans_by_service();
    let mut routes: Vec<String> = spans
        .iter()
        .filter_map(|(_, s)| match attr(s, "http.route") {
            Some(Value::StringValue(r)) => Some(r),
            _ => None,
        })
        .collect();
    routes.sort();
    routes.dedup();
    assert_eq!(routes, ["/hello", "/ka/{id}", "/status/{id}"]);
}

#[test]
fn keep_alive_requests_share_one_connection() {
    let spans = spans_by_service();
    let ports: std::collections::HashSet<i64> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| {
            s.kind == SpanKind::Server as i32
                && matches!(attr(s, "url.path"), Some(Value::StringValue(p)) if p.starts_with("/ka/"))
        })
        .map(|s| match attr(s, "network.peer.port") {
            Some(Value::IntValue(p)) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ports.len(), 1, "keep-alive requests came from one client port: {ports:?}");
}

#[test]
fn no_secret_leaves_the_host() {
    assert!(contains(FIXTURE, b"secret=abc"), "fixture lost its query string");
    assert!(contains(FIXTURE, b"topsecret"), "fixture lost its Authorization header");
    let (batches, stats) = replay();
    for b in &batches {
        assert!(!contains(&b.data, b"secret"), "a secret reached the OTLP output");
    }
    let s = stats.snapshot();
    assert_eq!((s.decode_errors, s.parse_errors), (0, 0));
    assert_eq!(s.events_read, read_records(FIXTURE).count() as u64);
}

/// Sampling: with a ratio of 0 exactly the failed requests are exported
/// (the server's 500; the client's 404 and 500), each saying it was kept
/// with probability 1; the others are counted as sampled out, and metrics
/// still count every request.
#[test]
fn sampling_keeps_every_failure_and_counts_the_rest() {
    let config = Config::from_json(r#"{"traces": {"sampling": {"ratio": 0}}}"#).unwrap();
    let (batches, stats) = replay_with(&config);
    let spans = spans_of(&batches);
    let mut kept: Vec<(i32, String, String)> = spans
        .iter()
        .map(|(_, s)| {
            let Some(Value::StringValue(path)) = attr(s, "url.path") else { panic!("no url.path") };
            (s.kind, path, s.trace_state.clone())
        })
        .collect();
    kept.sort();
    let state = "ot=th:0".to_string();
    assert_eq!(
        kept,
        [
            (SpanKind::Server as i32, "/status/500".to_string(), state.clone()),
            (SpanKind::Client as i32, "/status/404".to_string(), state.clone()),
            (SpanKind::Client as i32, "/status/500".to_string(), state),
        ]
    );
    assert_eq!(stats.snapshot().spans_sampled_out, 12 - 3);
    assert_eq!(server_request_counts(&batches).values().sum::<u64>(), 6, "metrics count every request");

    // Slower than 1 ms: curl's first request and two of its keep-alive
    // requests (every other request of the recording took under 1 ms) join
    // the failures.
    let config = Config::from_json(r#"{"traces": {"sampling": {"ratio": 0, "keep_slower_than_ms": 1}}}"#).unwrap();
    let (batches, stats) = replay_with(&config);
    let mut kept: Vec<(i32, String)> = spans_of(&batches)
        .iter()
        .map(|(_, s)| {
            assert_eq!(s.trace_state, "ot=th:0");
            let Some(Value::StringValue(path)) = attr(s, "url.path") else { panic!("no url.path") };
            (s.kind, path)
        })
        .collect();
    kept.sort();
    let (server, client) = (SpanKind::Server as i32, SpanKind::Client as i32);
    let expected: Vec<(i32, String)> = [
        (server, "/status/500"),
        (client, "/hello"),
        (client, "/ka/2"),
        (client, "/ka/3"),
        (client, "/status/404"),
        (client, "/status/500"),
    ]
    .into_iter()
    .map(|(k, p)| (k, p.to_string()))
    .collect();
    assert_eq!(kept, expected);
    assert_eq!(stats.snapshot().spans_sampled_out, 12 - 6);
}

/// A ratio keeps exactly the spans whose trace id's last 7 bytes reach the
/// threshold (errors whatever their id); kept + sampled out = requests.
#[test]
fn ratio_sampling_is_decided_by_the_trace_id() {
    let config = Config::from_json(r#"{"traces": {"sampling": {"ratio": 0.5}}}"#).unwrap();
    for _ in 0..8 {
        let (batches, stats) = replay_with(&config);
        let spans = spans_of(&batches);
        assert_eq!(spans.len() as u64 + stats.snapshot().spans_sampled_out, 12);
        for (_, s) in &spans {
            let failed = attr(s, "error.type").is_some();
            let top = s.trace_id[9];
            match (failed, s.trace_state.as_str()) {
                (true, state) => assert_eq!(state, "ot=th:0"),
                (false, "ot=th:8") => assert!(top >= 0x80, "kept with randomness below the threshold"),
                (false, other) => panic!("tracestate {other:?}"),
            }
        }
    }
}

/// Requests per (route, status) in `http.server.request.duration`.
fn server_request_counts(batches: &[Batch]) -> std::collections::BTreeMap<(String, i64), u64> {
    let mut counts = std::collections::BTreeMap::new();
    for b in batches.iter().filter(|b| b.signal == Signal::Metrics) {
        let req = ExportMetricsServiceRequest::decode(b.data.as_slice()).unwrap();
        for rm in &req.resource_metrics {
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                if m.name != "http.server.request.duration" {
                    continue;
                }
                let Some(Data::Histogram(h)) = &m.data else { panic!("not a histogram") };
                for p in &h.data_points {
                    let get =
                        |k: &str| p.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone()?.value);
                    let (Some(Value::StringValue(route)), Some(Value::IntValue(status))) =
                        (get("http.route"), get("http.response.status_code"))
                    else {
                        panic!("no route or status")
                    };
                    *counts.entry((route, status)).or_insert(0) += p.count;
                }
            }
        }
    }
    counts
}

#[test]
fn red_metrics_count_every_request() {
    let (batches, _) = replay();
    let metrics: Vec<ExportMetricsServiceRequest> = batches
        .iter()
        .filter(|b| b.signal == Signal::Metrics)
        .map(|b| ExportMetricsServiceRequest::decode(b.data.as_slice()).unwrap())
        .collect();
    assert_eq!(metrics.len(), 1, "one final export at flush");
    // (route, status) → count, from http.server.request.duration.
    let mut counts = std::collections::BTreeMap::new();
    for rm in &metrics[0].resource_metrics {
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            if m.name != "http.server.request.duration" {
                continue;
            }
            assert_eq!(m.unit, "s");
            let Some(Data::Histogram(h)) = &m.data else { panic!("not a histogram") };
            for p in &h.data_points {
                let get = |k: &str| p.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone()?.value);
                assert!(get("url.path").is_none(), "url.path must never be a metric attribute");
                let route = match get("http.route") {
                    Some(Value::StringValue(r)) => r,
                    other => panic!("{other:?}"),
                };
                let status = match get("http.response.status_code") {
                    Some(Value::IntValue(s)) => s,
                    other => panic!("{other:?}"),
                };
                *counts.entry((route, status)).or_insert(0) += p.count;
            }
        }
    }
    let expected: std::collections::BTreeMap<(String, i64), u64> = [
        (("/hello".to_string(), 200), 1),
        (("/ka/{id}".to_string(), 200), 3),
        (("/status/{id}".to_string(), 404), 1),
        (("/status/{id}".to_string(), 500), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
