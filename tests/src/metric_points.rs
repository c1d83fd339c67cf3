//! Metrics batches flattened into one record per data point, with the
//! metric's name, unit, kind, temporality and the resource's `process.pid`:
//! what assertions on exported metrics compare.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use crate::receiver::Receiver;

/// One data point of a metrics batch, flattened with its metric and resource.
#[derive(Debug, Clone)]
pub struct MetricPoint {
    pub name: String,
    pub unit: String,
    /// histogram, sum, gauge, exponential_histogram.
    pub kind: &'static str,
    /// OTLP AggregationTemporality (1 delta, 2 cumulative; 0 for gauges).
    pub temporality: i32,
    /// Resource `process.pid`.
    pub pid: Option<u32>,
    /// Attributes, values written as strings (ints in decimal).
    pub attrs: BTreeMap<String, String>,
    /// Histograms: the sum of the recorded values; sums and gauges: the value.
    pub sum: f64,
    /// Histograms: how many values were recorded; sums and gauges: 1.
    pub count: u64,
}

impl MetricPoint {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    pub fn describe(&self) -> String {
        let attrs: Vec<String> = self.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{} [{} {} t={}] pid={} sum={} count={} {}",
            self.name,
            self.kind,
            self.unit,
            self.temporality,
            self.pid.map_or("-".into(), |p| p.to_string()),
            self.sum,
            self.count,
            attrs.join(" ")
        )
    }
}

fn value_string(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

fn attr_map(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    attrs.iter().map(|kv| (kv.key.clone(), value_string(kv.value.as_ref().and_then(|v| v.value.as_ref())))).collect()
}

/// Every data point of every metrics batch `rx` received so far.
pub fn metric_points(rx: &Receiver) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for req in rx.metric_requests() {
        for rm in req.resource_metrics {
            let pid = rm.resource.as_ref().and_then(|r| {
                r.attributes.iter().find(|kv| kv.key == "process.pid").and_then(|kv| {
                    match kv.value.as_ref()?.value.as_ref()? {
                        Value::IntValue(i) => u32::try_from(*i).ok(),
                        _ => None,
                    }
                })
            });
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let base = |kind, temporality, attrs: &[KeyValue], sum, count| MetricPoint {
                        name: m.name.clone(),
                        unit: m.unit.clone(),
                        kind,
                        temporality,
                        pid,
                        attrs: attr_map(attrs),
                        sum,
                        count,
                    };
                    match &m.data {
                        Some(Data::Histogram(h)) => out.extend(h.data_points.iter().map(|p| {
                            base("histogram", h.aggregation_temporality, &p.attributes, p.sum.unwrap_or(0.0), p.count)
                        })),
                        Some(Data::ExponentialHistogram(h)) => out.extend(h.data_points.iter().map(|p| {
                            base(
                                "exponential_histogram",
                                h.aggregation_temporality,
                                &p.attributes,
                                p.sum.unwrap_or(0.0),
                                p.count,
                            )
                        })),
                        Some(Data::Sum(s)) => out.extend(
                            s.data_points
                                .iter()
                                .map(|p| base("sum", s.aggregation_temporality, &p.attributes, number(p), 1)),
                        ),
                        Some(Data::Gauge(g)) => {
                            out.extend(g.data_points.iter().map(|p| base("gauge", 0, &p.attributes, number(p), 1)))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

fn number(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> f64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as N;
    match p.value {
        Some(N::AsDouble(d)) => d,
        Some(N::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

/// One line per point, for failure messages.
pub fn describe_points<'a>(points: impl IntoIterator<Item = &'a MetricPoint>) -> String {
    points.into_iter().map(|p| format!("  {}\n", p.describe())).collect()
}
