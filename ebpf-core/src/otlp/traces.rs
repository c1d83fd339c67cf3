//! Spans grouped by process → `ExportTraceServiceRequest` bytes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::borrow::Borrow;

use crate::process::ProcessIdentity;

use super::resource::{process_resource, HostInfo};
use super::wire;

/// Builds `ExportTraceServiceRequest`s around spans already encoded
/// (`crate::spans::write_span`): the same bytes `encode_traces` gives
/// for the same spans.
#[derive(Debug)]
pub struct TracesEncoder {
    /// The encoded `InstrumentationScope` of every span.
    scope: Vec<u8>,
}

impl Default for TracesEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TracesEncoder {
    pub fn new() -> Self {
        Self { scope: scope().encode_to_vec() }
    }

    /// One request with a ResourceSpans per group; a group's bytes are its
    /// spans as `ScopeSpans.spans` fields (key 2, length, `Span` message).
    pub fn encode<'a>(
        &self,
        groups: impl IntoIterator<Item = (&'a ProcessIdentity, &'a [u8])>,
        host: &HostInfo,
    ) -> Vec<u8> {
        // Heads first: one allocation for the whole request.
        let mut heads = Vec::new();
        let groups: Vec<_> = groups
            .into_iter()
            .map(|(process, spans)| {
                let start = heads.len();
                self.group_head(process, host, spans.len(), &mut heads);
                (start..heads.len(), spans)
            })
            .collect();
        let mut out = Vec::with_capacity(heads.len() + groups.iter().map(|(_, spans)| spans.len()).sum::<usize>());
        for (head, spans) in groups {
            out.extend_from_slice(&heads[head]);
            out.extend_from_slice(spans);
        }
        out
    }

    /// What precedes a group's `spans_len` bytes of spans in a request: the
    /// `ResourceSpans` key and length, its resource, the `ScopeSpans` key
    /// and length, and the scope. A request of one group is this head, then
    /// the spans.
    pub fn group_head(&self, process: &ProcessIdentity, host: &HostInfo, spans_len: usize, out: &mut Vec<u8>) {
        let resource = process_resource(process, host);
        let resource_len = resource.encoded_len();
        let scope_spans_len = wire::len_field_len(1, self.scope.len()) + spans_len;
        let resource_spans_len = wire::len_field_len(1, resource_len) + wire::len_field_len(2, scope_spans_len);
        // ExportTraceServiceRequest.resource_spans (1)
        wire::len_prefix(out, 1, resource_spans_len);
        // ResourceSpans.resource (1), .scope_spans (2)
        wire::len_prefix(out, 1, resource_len);
        resource.encode_raw(out);
        wire::len_prefix(out, 2, scope_spans_len);
        // ScopeSpans.scope (1); .spans (2) follow, already framed
        wire::len_field(out, 1, &self.scope);
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: crate::SDK_NAME.to_string(),
        version: crate::VERSION.to_string(),
        ..Default::default()
    }
}

/// Encodes one request with a ResourceSpans per process.
pub fn encode_traces<P: Borrow<ProcessIdentity>>(
    groups: impl IntoIterator<Item = (P, Vec<Span>)>,
    host: &HostInfo,
) -> Vec<u8> {
    let resource_spans = groups
        .into_iter()
        .map(|(process, spans)| ResourceSpans {
            resource: Some(process_resource(process.borrow(), host)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: String::new() }],
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
