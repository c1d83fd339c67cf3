//! The GenAI metrics of LLM API calls, as the layer feeds them.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;
use prost::Message;

use crate::conntrack::Endpoints;
use crate::metrics::{Metrics, MetricsConfig, Temporality};
use crate::otlp::HostInfo;
use crate::process::ProcessIdentity;
use crate::protocol::http1::telemetry::describe_with;
use crate::protocol::http1::{HttpExchange, HttpVersion, KeptBodies};
use crate::protocol::{ConnFacts, Role};

use super::GenAiCall;

const MS: u64 = 1_000_000;

/// One call of 1.5 s whose stream started after 0.3 s; `error` makes it a 500 with that error.
fn observe(m: &mut Metrics, role: Role, model: &str, input: u64, output: u64, error: Option<&str>) {
    let ex = HttpExchange {
        role,
        method: "POST".into(),
        target: "/v1/chat/completions".into(),
        version: HttpVersion::Http11,
        host: Some("api.openai.com".into()),
        status: Some(if error.is_some() { 500 } else { 200 }),
        request_start_ns: 1_000 * MS,
        request_end_ns: 1_001 * MS,
        response_start_ns: Some(1_300 * MS),
        response_end_ns: 2_500 * MS,
        request_body_size: 10,
        response_body_size: 10,
        bodies: Some(Box::new(KeptBodies { response_body_start_ns: Some(1_300 * MS), ..KeptBodies::default() })),
    };
    let call = GenAiCall {
        provider: "openai".into(),
        operation: "chat".into(),
        request_model: Some(model.into()),
        response_model: Some(model.into()),
        stream: true,
        input_tokens: Some(input),
        output_tokens: Some(output),
        error_type: error.map(str::to_string),
        ..GenAiCall::default()
    };
    let facts = ConnFacts {
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 40000),
            peer: ("10.0.0.2".parse().unwrap(), 443),
        }),
        tls: true,
    };
    let process = Arc::new(ProcessIdentity::from_comm(7, "app"));
    describe_with(&ex, &facts, None, Some(&call), &mut |op| m.observe(&process, op));
}

/// Every point of every metric, by metric name.
fn points(m: &mut Metrics) -> Vec<(String, HistogramDataPoint)> {
    let batch = m.collect(10, &HostInfo::default(), None).expect("a batch");
    let req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
    assert_eq!(req.encode_to_vec(), batch.data, "prost's encoding");
    let mut out = Vec::new();
    for metric in req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics) {
        if let Some(Data::Histogram(h)) = &metric.data {
            out.extend(h.data_points.iter().map(|p| (metric.name.clone(), p.clone())));
        }
    }
    out
}

fn attr<'a>(p: &'a HistogramDataPoint, key: &str) -> Option<&'a Value> {
    p.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()?.value.as_ref())
}

fn named<'a>(points: &'a [(String, HistogramDataPoint)], name: &str) -> Vec<&'a HistogramDataPoint> {
    points.iter().filter(|(n, _)| n == name).map(|(_, p)| p).collect()
}

#[test]
fn client_calls_give_token_points_per_type_and_durations() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), 5);
    observe(&mut m, Role::Client, "gpt-4o", 10, 20, None);
    observe(&mut m, Role::Client, "gpt-4o", 30, 40, None);
    observe(&mut m, Role::Client, "gpt-4o", 0, 0, Some("rate_limit_error"));
    let points = points(&mut m);
    let tokens = named(&points, "gen_ai.client.token.usage");
    assert_eq!(tokens.len(), 2, "input and output; the failed call records no tokens");
    let input = tokens.iter().find(|p| attr(p, "gen_ai.token.type") == Some(&Value::StringValue("input".into())));
    assert_eq!(input.map(|p| (p.count, p.sum)), Some((2, Some(40.0))));
    assert!(tokens.iter().all(|p| attr(p, "error.type").is_none()));
    let durations = named(&points, "gen_ai.client.operation.duration");
    assert_eq!(durations.len(), 2);
    assert!(durations.iter().any(|p| attr(p, "error.type").is_some() && p.count == 1));
    let first_chunk = named(&points, "gen_ai.client.operation.time_to_first_chunk");
    assert_eq!(first_chunk.iter().map(|p| (p.count, p.sum)).collect::<Vec<_>>(), [(2, Some(0.6))]);
    assert!(points.iter().all(|(n, _)| !n.starts_with("gen_ai.server")), "no server metric from client calls");
}

#[test]
fn server_token_timings_only_for_successful_streams() {
    let mut m = Metrics::new_at(&MetricsConfig::default(), 0);
    observe(&mut m, Role::Server, "llama3", 5, 13, None);
    observe(&mut m, Role::Server, "llama3", 5, 13, Some("500"));
    let points = points(&mut m);
    let per_token = named(&points, "gen_ai.server.time_per_output_token");
    assert_eq!(per_token.len(), 1);
    // (1.5 s - 0.3 s) / 12 tokens
    assert_eq!(per_token[0].sum, Some(0.1));
    assert_eq!(named(&points, "gen_ai.server.request.duration").len(), 2);
    assert_eq!(named(&points, "gen_ai.server.time_to_first_token").len(), 1);
}

#[test]
fn the_limit_sends_new_attribute_sets_to_overflow() {
    let config =
        MetricsConfig { max_series_per_metric: 1, temporality: Temporality::Delta, ..MetricsConfig::default() };
    let mut m = Metrics::new_at(&config, 0);
    observe(&mut m, Role::Client, "a", 1, 1, None);
    assert_eq!(m.overflowed(), 0);
    observe(&mut m, Role::Client, "b", 1, 1, None);
    assert_eq!(m.overflowed(), 1, "the GenAI series; the HTTP one is the same for both calls");
    let points = points(&mut m);
    let durations = named(&points, "gen_ai.client.operation.duration");
    assert_eq!(durations.len(), 2);
    let overflow = durations.iter().find(|p| attr(p, "otel.metric.overflow") == Some(&Value::BoolValue(true)));
    assert_eq!(overflow.map(|p| (p.count, p.attributes.len())), Some((1, 1)));
    let tokens = named(&points, "gen_ai.client.token.usage");
    assert_eq!(tokens.len(), 4, "input and output, in the series and in the overflow series");
    assert!(tokens.iter().all(|p| attr(p, "gen_ai.token.type").is_some()));
    // Delta: series with nothing new are dropped.
    assert!(m.collect(20, &HostInfo::default(), None).is_none());
    assert_eq!(m.series_count(), 0);
}
