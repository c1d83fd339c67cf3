//! The receiver's own health as metrics, under a resource of its own
//! (`service.name = otel-ebpf-receiver`): one metric per counter of
//! `crate::stats::COUNTERS` (a monotonic sum, or a gauge). Names are
//! project-specific (`ebpf_receiver.*`); the semantic-conventions test
//! allows exactly these.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::otlp::HostInfo;
use crate::spans::{int_attr, str_attr};
use crate::stats::{Kind, StatsSnapshot, COUNTERS};

use super::Temporality;

/// Every self-telemetry metric name, in the order they are exported.
pub const SELF_METRIC_NAMES: [&str; COUNTERS.len()] = {
    let mut names = [""; COUNTERS.len()];
    let mut i = 0;
    while i < COUNTERS.len() {
        names[i] = COUNTERS[i].metric;
        i += 1;
    }
    names
};

/// Counter values at the previous collection, for delta temporality.
#[derive(Debug)]
pub(super) struct SelfTelemetry {
    previous: [u64; COUNTERS.len()],
}

// By hand: arrays derive Default only up to 32 elements.
impl Default for SelfTelemetry {
    fn default() -> Self {
        Self { previous: [0; COUNTERS.len()] }
    }
}

impl SelfTelemetry {
    /// `start` is the receiver's start (cumulative) or the previous collection (delta).
    pub(super) fn resource_metrics(
        &mut self,
        stats: &StatsSnapshot,
        host: &HostInfo,
        temporality: Temporality,
        start: u64,
        now: u64,
    ) -> ResourceMetrics {
        let mut metrics = Vec::with_capacity(COUNTERS.len());
        for ((counter, total), previous) in COUNTERS.iter().zip(stats.values()).zip(&mut self.previous) {
            let attributes = counter.attribute.iter().map(|(k, v)| str_attr(k, *v)).collect();
            let data = match counter.kind {
                Kind::Counter => {
                    let value = match temporality {
                        Temporality::Cumulative => total,
                        Temporality::Delta => total.saturating_sub(*previous),
                    };
                    *previous = total;
                    metric::Data::Sum(Sum {
                        data_points: vec![point(attributes, start, now, value)],
                        aggregation_temporality: temporality.otlp(),
                        is_monotonic: true,
                    })
                }
                Kind::Gauge => metric::Data::Gauge(Gauge { data_points: vec![point(attributes, 0, now, total)] }),
            };
            metrics.push(Metric {
                name: counter.metric.to_string(),
                description: counter.description().to_string(),
                unit: counter.unit.to_string(),
                metadata: Vec::new(),
                data: Some(data),
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
