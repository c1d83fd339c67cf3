//! Spans grouped by process → `ExportTraceServiceRequest` bytes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::borrow::Borrow;

use crate::process::ProcessIdentity;

use super::resource::{process_resource, HostInfo};

/// Encodes one request with a ResourceSpans per process.
pub fn encode_traces<P: Borrow<ProcessIdentity>>(
    groups: impl IntoIterator<Item = (P, Vec<Span>)>,
    host: &HostInfo,
) -> Vec<u8> {
    let resource_spans = groups
        .into_iter()
        .map(|(process, spans)| ResourceSpans {
            resource: Some(process_resource(process.borrow(), host)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: crate::SDK_NAME.to_string(),
                    version: crate::VERSION.to_string(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    #[test]
    fn round_trips_through_protobuf() {
        let p = ProcessIdentity {
            pid: 42,
            service_name: "checkout".into(),
            executable_name: "demo-server".into(),
            executable_path: Some("/usr/bin/demo-server".into()),
            ..Default::default()
        };
        let span = Span { name: "GET".into(), trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() };
        let host = HostInfo { host_name: "node-1".into(), ..Default::default() };
        let bytes = encode_traces([(&p, vec![span.clone(), span])], &host);
        let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.scope_spans[0].spans.len(), 2);
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, crate::SDK_NAME);
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        let get = |k: &str| attrs.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone()?.value);
        assert_eq!(get("service.name"), Some(Value::StringValue("checkout".into())));
        assert_eq!(get("process.pid"), Some(Value::IntValue(42)));
        assert_eq!(get("process.executable.name"), Some(Value::StringValue("demo-server".into())));
        assert_eq!(get("host.name"), Some(Value::StringValue("node-1".into())));
        assert_eq!(get("telemetry.sdk.language"), Some(Value::StringValue("rust".into())));
    }
}
