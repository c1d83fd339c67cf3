//! The receiver's own health as metrics, under a resource of its own
//! (`service.name = otel-ebpf-receiver`). Names are project-specific
//! (`ebpf_receiver.*`); the semantic-conventions test allows exactly these.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::otlp::HostInfo;
use crate::spans::{int_attr, str_attr};
use crate::stats::StatsSnapshot;

use super::Temporality;

struct Counter {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    /// The one attribute of its only point, if any.
    attribute: Option<(&'static str, &'static str)>,
    value: fn(&StatsSnapshot, u64) -> u64,
}

/// Monotonic sums; the `u64` handed to `value` is `HttpMetrics::overflowed()`.
const COUNTERS: [Counter; 12] = [
    Counter {
        name: "ebpf_receiver.events.read",
        unit: "{event}",
        description: "Events read from the kernel ring buffer.",
        attribute: None,
        value: |s, _| s.events_read,
    },
    Counter {
        name: "ebpf_receiver.events.lost",
        unit: "{event}",
        description: "Events the kernel dropped (ring buffer or tables full).",
        attribute: None,
        value: |s, _| s.events_lost,
    },
    Counter {
        name: "ebpf_receiver.decode.errors",
        unit: "{event}",
        description: "Kernel events userspace could not decode.",
        attribute: None,
        value: |s, _| s.decode_errors,
    },
    Counter {
        name: "ebpf_receiver.spans.exported",
        unit: "{span}",
        description: "Spans handed to the host.",
        attribute: None,
        value: |s, _| s.spans_exported,
    },
    Counter {
        name: "ebpf_receiver.batches.dropped",
        unit: "{batch}",
        description: "Batches dropped because the host did not poll in time.",
        attribute: None,
        value: |s, _| s.batches_dropped,
    },
    Counter {
        name: "ebpf_receiver.spans.dropped",
        unit: "{span}",
        description: "Spans inside batches dropped because the host did not poll in time.",
        attribute: None,
        value: |s, _| s.spans_dropped,
    },
    Counter {
        name: "ebpf_receiver.requests.lost",
        unit: "{request}",
        description:
            "Requests that produced no span because the kernel lost their events (from their start, or cut by a hole).",
        attribute: None,
        value: |s, _| s.requests_lost,
    },
    Counter {
        name: "ebpf_receiver.parse.errors",
        unit: "{connection}",
        description: "Connections whose protocol parser failed.",
        attribute: Some(("network.protocol.name", "http")),
        value: |s, _| s.parse_errors,
    },
    Counter {
        name: "ebpf_receiver.metric.overflows",
        unit: "{request}",
        description: "Exchanges recorded in an overflow series because a metric reached its series limit.",
        attribute: None,
        value: |_, overflowed| overflowed,
    },
    Counter {
        name: "ebpf_receiver.genai.calls",
        unit: "{call}",
        description: "LLM API calls recognised.",
        attribute: None,
        value: |s, _| s.genai_calls,
    },
    Counter {
        name: "ebpf_receiver.genai.incomplete",
        unit: "{call}",
        description: "LLM API calls whose bodies could not be read in full: token counts or models may be missing.",
        attribute: None,
        value: |s, _| s.genai_incomplete,
    },
    Counter {
        name: "ebpf_receiver.tls.lost",
        unit: "{event}",
        description: "TLS plaintext the kernel dropped because its socket was unknown (an SSL object doing its own I/O, such as a memory BIO).",
        attribute: None,
        value: |s, _| s.tls_no_socket,
    },
];

struct GaugeInfo {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    value: fn(&StatsSnapshot) -> u64,
}

const GAUGES: [GaugeInfo; 2] = [
    GaugeInfo {
        name: "ebpf_receiver.connections.tracked",
        unit: "{connection}",
        description: "Connections tracked in userspace.",
        value: |s| s.connections,
    },
    GaugeInfo {
        name: "ebpf_receiver.processes.traced",
        unit: "{process}",
        description: "Processes traced (with a cached identity).",
        value: |s| s.processes,
    },
];

/// Every self-telemetry metric name.
pub const SELF_METRIC_NAMES: [&str; 14] = [
    COUNTERS[0].name,
    COUNTERS[1].name,
    COUNTERS[2].name,
    COUNTERS[3].name,
    COUNTERS[4].name,
    COUNTERS[5].name,
    COUNTERS[6].name,
    COUNTERS[7].name,
    COUNTERS[8].name,
    COUNTERS[9].name,
    COUNTERS[10].name,
    COUNTERS[11].name,
    GAUGES[0].name,
    GAUGES[1].name,
];

/// Counter values at the previous collection, for delta temporality.
#[derive(Debug, Default)]
pub(super) struct SelfTelemetry {
    previous: [u64; COUNTERS.len()],
}

impl SelfTelemetry {
    /// `start` is the receiver's start (cumulative) or the previous collection (delta).
    pub(super) fn resource_metrics(
        &mut self,
        stats: &StatsSnapshot,
        overflowed: u64,
        host: &HostInfo,
        temporality: Temporality,
        start: u64,
        now: u64,
    ) -> ResourceMetrics {
        let mut metrics = Vec::with_capacity(COUNTERS.len() + GAUGES.len());
        for (counter, previous) in COUNTERS.iter().zip(&mut self.previous) {
            let total = (counter.value)(stats, overflowed);
            let value = match temporality {
                Temporality::Cumulative => total,
                Temporality::Delta => total.saturating_sub(*previous),
            };
            *previous = total;
            let attributes = counter.attribute.iter().map(|(k, v)| str_attr(k, *v)).collect();
            metrics.push(Metric {
                name: counter.name.to_string(),
                description: counter.description.to_string(),
                unit: counter.unit.to_string(),
                metadata: Vec::new(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![point(attributes, start, now, value)],
                    aggregation_temporality: temporality.otlp(),
                    is_monotonic: true,
                })),
            });
        }
        for gauge in &GAUGES {
            metrics.push(Metric {
                name: gauge.name.to_string(),
                description: gauge.description.to_string(),
                unit: gauge.unit.to_string(),
                metadata: Vec::new(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![point(Vec::new(), 0, now, (gauge.value)(stats))],
                })),
            });
        }
        ResourceMetrics {
            resource: Some(resource(host)),
            scope_metrics: vec![ScopeMetrics { scope: Some(super::scope()), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }
    }
}

fn point(attributes: Vec<KeyValue>, start: u64, now: u64, value: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(number_data_point::Value::AsInt(i64::try_from(value).unwrap_or(i64::MAX))),
    }
}

fn resource(host: &HostInfo) -> Resource {
    let mut attributes = vec![
        str_attr("service.name", crate::SDK_NAME),
        str_attr("service.version", crate::VERSION),
        int_attr("process.pid", i64::from(std::process::id())),
    ];
    if !host.host_name.is_empty() {
        attributes.push(str_attr("host.name", host.host_name.as_str()));
    }
    if let Some(id) = host.host_id.as_deref().filter(|id| !id.is_empty()) {
        attributes.push(str_attr("host.id", id));
    }
    attributes.push(str_attr("telemetry.sdk.name", crate::SDK_NAME));
    attributes.push(str_attr("telemetry.sdk.language", "rust"));
    attributes.push(str_attr("telemetry.sdk.version", crate::VERSION));
    Resource { attributes, ..Default::default() }
}
