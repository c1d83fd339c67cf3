//! HTTP RED metrics (rate, errors, duration) aggregated in memory from
//! completed exchanges and exported as OTLP `ExportMetricsServiceRequest`s.
//!
//! # Instruments
//!
//! Per the HTTP semantic conventions, all explicit-bucket histograms with
//! count, sum, min and max:
//!
//! | metric | unit | bounds |
//! |---|---|---|
//! | `http.server.request.duration`, `http.client.request.duration` | `s` | `DURATION_BOUNDS_S` (the conventions' advice) |
//! | `http.{server,client}.{request,response}.body.size` | `By` | `BODY_SIZE_BOUNDS`: 0, then 64 B × 4ⁿ up to 256 MiB |
//!
//! Duration is `response_end − request_start`. Request body size is recorded
//! for every exchange; response body size only for exchanges that got a
//! response (a missing response has no body, not an empty one).
//!
//! Attributes: `http.request.method` (known methods, else `_OTHER`),
//! `url.scheme`, `network.protocol.version`, `http.response.status_code`
//! (when there was a response), `error.type` (same rules and values as spans),
//! `http.route` (server metrics, when the caller knows it; client calls have
//! no `http.route` in the conventions, so a route passed for them is ignored),
//! and on client metrics `server.address` / `server.port`. Nothing per request
//! (`url.path`, `url.full`, peer addresses) is ever an attribute.
//!
//! # Series and their limit
//!
//! One ResourceMetrics per traced process (its `crate::otlp::process_resource`).
//! A process's server metrics, and its client metrics, each hold at most
//! `max_series_per_metric` attribute sets; the three histograms of a family
//! share them, so each metric has at most that many series. An exchange with
//! a new attribute set beyond the limit is recorded in the family's overflow
//! series, whose only attribute is `otel.metric.overflow = true` (as in the
//! OpenTelemetry metrics SDK specification), and counted in `overflowed()`:
//! nothing is dropped. The overflow series is in addition to the limit.
//!
//! # Temporality and start times
//!
//! - Cumulative (default; what Prometheus wants): every series is exported at
//!   every collection with everything since its start. Its start time is the
//!   last collection before its first exchange (or the creation of
//!   `HttpMetrics`): the exchange's own time is a kernel monotonic timestamp
//!   this module cannot map to the wall clock, and a start time no later than
//!   the first observation is what the data model requires.
//! - Delta: each collection exports what was recorded since the previous one
//!   (start time = the previous collection, or creation), then zeroes the
//!   series. A series with nothing new is not exported and is dropped, which
//!   also frees its room under the limit; a process left with no series is
//!   forgotten.
//!
//! # Processes
//!
//! Series are kept per process identity (pid and `ProcessIdentity` content; an
//! exec that changes the identity starts a new resource). `forget_process`
//! (call it once the exchanges of an exited process have been recorded) moves
//! every state of that pid aside: the next `collect` exports them one last
//! time (cumulative: all their series; delta: what is pending) and drops
//! them. A later exchange of the same pid starts afresh. In cumulative mode a
//! process is only forgotten through `forget_process`.
//!
//! # Cost
//!
//! `record` allocates nothing once a series exists: the series is found
//! through a borrowed key (`series::KeyView`); only a new series allocates
//! (its owned key: the route and a Host name).

mod genai;
mod histogram;
mod self_telemetry;
mod series;
#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram as OtlpHistogram, HistogramDataPoint, Metric,
};
use prost::Message;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::batch::{Batch, Signal};
use crate::conntrack::Exchange;
use crate::otlp::wire::{self, AttrEncoder};
use crate::otlp::{write_process_resource, HostInfo};
use crate::process::ProcessIdentity;
use crate::protocol::Role;
use crate::stats::StatsSnapshot;

pub use genai::{GenAiObservation, GENAI_METRIC_NAMES};
pub use histogram::{BODY_SIZE_BOUNDS, DURATION_BOUNDS_S};
pub use self_telemetry::SELF_METRIC_NAMES;

use series::{KeyView, Series, SeriesMap, OVERFLOW_ATTRIBUTE};

/// How exported points relate to each other in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Totals since the series started (Prometheus-compatible).
    #[default]
    Cumulative,
    /// What happened since the previous export.
    Delta,
}

impl Temporality {
    fn otlp(self) -> i32 {
        match self {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }
}

/// Bounds of `MetricsConfig::interval_ms`: 100 ms to a day.
const MIN_INTERVAL_MS: u64 = 100;
const MAX_INTERVAL_MS: u64 = 86_400_000;
/// Upper bound of `MetricsConfig::max_series_per_metric`, against typos that would exhaust memory.
const MAX_SERIES_LIMIT: usize = 1_000_000;

/// `metrics` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Compute and export metrics at all. The collector receiver sets it from
    /// its pipelines (on when a metrics pipeline uses the receiver).
    pub enabled: bool,
    /// How often metrics are exported (and once more at shutdown).
    #[schemars(range(min = MIN_INTERVAL_MS, max = MAX_INTERVAL_MS), extend("x-unit" = "ms"))]
    pub interval_ms: u64,
    /// `cumulative` (what Prometheus wants) or `delta`.
    pub temporality: Temporality,
    /// Attribute sets per metric and process; beyond them data lands in one
    /// series marked `otel.metric.overflow=true`, and is counted.
    #[schemars(range(min = 1, max = MAX_SERIES_LIMIT))]
    pub max_series_per_metric: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, interval_ms: 60_000, temporality: Temporality::Cumulative, max_series_per_metric: 2000 }
    }
}

impl MetricsConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

/// The series of one process identity.
#[derive(Debug)]
struct ProcessSeries {
    identity: Arc<ProcessIdentity>,
    server: SeriesMap,
    client: SeriesMap,
    /// LLM API calls (`genai`), both sides.
    genai: genai::GenAiMap,
}

impl ProcessSeries {
    fn is_empty(&self) -> bool {
        self.server.is_empty() && self.client.is_empty() && self.genai.is_empty()
    }
}

/// HTTP request metrics of every traced process; see the module documentation.
#[derive(Debug)]
pub struct HttpMetrics {
    temporality: Temporality,
    interval: Duration,
    max_series: usize,
    /// By pid; more than one entry when the pid's identity changed (exec).
    processes: FxHashMap<u32, Vec<ProcessSeries>>,
    /// Forgotten processes, exported by the next `collect` then dropped.
    retired: Vec<ProcessSeries>,
    created_ns: u64,
    /// Wall-clock time of the last `collect` (`created_ns` before the first).
    last_collect_ns: u64,
    overflowed: u64,
    self_telemetry: self_telemetry::SelfTelemetry,
    scratch: EncodeScratch,
}

fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl HttpMetrics {
    pub fn new(config: &MetricsConfig) -> Self {
        Self::new_at(config, unix_now_ns())
    }

    /// Created at `now_unix_ns`, the start time of the first interval (replays, tests).
    pub fn new_at(config: &MetricsConfig, now_unix_ns: u64) -> Self {
        Self {
            temporality: config.temporality,
            interval: config.interval(),
            max_series: config.max_series_per_metric.max(1),
            processes: FxHashMap::default(),
            retired: Vec::new(),
            created_ns: now_unix_ns,
            last_collect_ns: now_unix_ns,
            overflowed: 0,
            self_telemetry: self_telemetry::SelfTelemetry::default(),
            scratch: EncodeScratch::default(),
        }
    }

    /// The configured collection interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn temporality(&self) -> Temporality {
        self.temporality
    }

    /// Exchanges recorded into an overflow series since creation.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Attribute sets currently held (overflow series included), all processes.
    pub fn series_count(&self) -> usize {
        let family = |m: &SeriesMap| m.series.len() + usize::from(m.overflow.is_some());
        self.processes
            .values()
            .flatten()
            .chain(&self.retired)
            .map(|p| family(&p.server) + family(&p.client) + p.genai.len())
            .sum()
    }

    /// Adds one completed exchange. `route` is its `http.route`, if known:
    /// `RouteMatcher::route_in(path_of(&ex.http.target), ..)` for server
    /// exchanges (see `crate::routes`, `crate::spans::http_common::path_of`);
    /// it is ignored for client exchanges, so callers need not compute it.
    pub fn record(&mut self, ex: &Exchange, route: Option<&str>) {
        let (max_series, start) = (self.max_series, self.last_collect_ns);
        let state = self.process_state(&ex.process);
        let (map, route) = match ex.http.role {
            Role::Server => (&mut state.server, route),
            Role::Client => (&mut state.client, None),
        };
        if !map.record(KeyView::of(ex, route), &ex.http, max_series, start) {
            self.overflowed += 1;
        }
    }

    /// Adds one LLM API call of `process` (on top of its HTTP exchange,
    /// recorded by `record`).
    pub fn record_genai(&mut self, process: &Arc<ProcessIdentity>, call: &GenAiObservation<'_>) {
        let (max_series, start) = (self.max_series, self.last_collect_ns);
        if !self.process_state(process).genai.record(call, max_series, start) {
            self.overflowed += 1;
        }
    }

    fn process_state(&mut self, process: &Arc<ProcessIdentity>) -> &mut ProcessSeries {
        let states = self.processes.entry(process.pid).or_default();
        // Same Arc (the usual case), else same content (identity read again).
        let same = |s: &ProcessSeries| Arc::ptr_eq(&s.identity, process) || *s.identity == **process;
        let index = match states.iter().position(same) {
            Some(i) => i,
            None => {
                states.push(ProcessSeries {
                    identity: process.clone(),
                    server: SeriesMap::default(),
                    client: SeriesMap::default(),
                    genai: genai::GenAiMap::default(),
                });
                states.len() - 1
            }
        };
        &mut states[index]
    }

    /// The process `pid` exited: its series are exported by the next
    /// `collect` one last time, then dropped.
    pub fn forget_process(&mut self, pid: u32) {
        if let Some(states) = self.processes.remove(&pid) {
            self.retired.extend(states);
        }
    }

    /// Everything to export at `now_unix_ns`: a ResourceMetrics per process
    /// with data and, when `self_stats` is given, one for the receiver
    /// itself. `None` when there is nothing at all.
    pub fn collect(&mut self, now_unix_ns: u64, host: &HostInfo, self_stats: Option<&StatsSnapshot>) -> Option<Batch> {
        let interval_start = self.last_collect_ns.min(now_unix_ns);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut states: Vec<&ProcessSeries> = self.processes.values().flatten().chain(&self.retired).collect();
        states.sort_by_key(|s| s.identity.pid);
        let mut items = 0;
        // The ExportMetricsServiceRequest, written directly (the bytes prost
        // writes for the same messages): ResourceMetrics are field 1.
        let mut data = Vec::new();
        for state in states {
            scratch.metrics.clear();
            let points = self.write_process_metrics(state, interval_start, now_unix_ns, &mut scratch);
            if scratch.metrics.is_empty() {
                continue;
            }
            items += points;
            scratch.resource.clear();
            write_process_resource(&state.identity, host, &mut scratch.resource, &mut scratch.text);
            let resource_len = scratch.resource.len();
            let scope_metrics_len = wire::len_field_len(1, scratch.scope.len()) + scratch.metrics.len();
            let resource_metrics_len = wire::len_field_len(1, resource_len) + wire::len_field_len(2, scope_metrics_len);
            data.reserve(wire::len_field_len(1, resource_metrics_len));
            wire::len_prefix(&mut data, 1, resource_metrics_len);
            // ResourceMetrics.resource (1), .scope_metrics (2): ScopeMetrics.scope (1), .metrics (2).
            wire::len_field(&mut data, 1, &scratch.resource);
            wire::len_prefix(&mut data, 2, scope_metrics_len);
            wire::len_field(&mut data, 1, &scratch.scope);
            data.extend_from_slice(&scratch.metrics);
        }
        self.retired.clear();
        if self.temporality == Temporality::Delta {
            self.processes.retain(|_, states| {
                for s in states.iter_mut() {
                    s.server.reset_for_delta();
                    s.client.reset_for_delta();
                    s.genai.reset_for_delta();
                }
                states.retain(|s| !s.is_empty());
                !states.is_empty()
            });
        }
        if let Some(stats) = self_stats {
            // This aggregator counts the overflows: its own count is the latest.
            let stats = StatsSnapshot { metric_overflows: self.overflowed, ..*stats };
            let rm = self.self_telemetry.resource_metrics(
                &stats,
                host,
                self.temporality,
                if self.temporality == Temporality::Delta { interval_start } else { self.created_ns.min(now_unix_ns) },
                now_unix_ns,
            );
            items += rm.scope_metrics.iter().flat_map(|s| &s.metrics).map(data_points).sum::<usize>();
            prost::encoding::message::encode(1, &rm, &mut data);
        }
        // Buffers grown by an unusually large export are not kept.
        if scratch.metrics.capacity() > SCRATCH_KEEP_BYTES {
            scratch = EncodeScratch::default();
        }
        self.scratch = scratch;
        self.last_collect_ns = now_unix_ns;
        if data.is_empty() {
            return None;
        }
        Some(Batch { signal: Signal::Metrics, data, items })
    }

    /// Writes the process's metrics as `ScopeMetrics.metrics` fields into
    /// `scratch.metrics`; returns the number of data points.
    fn write_process_metrics(
        &self,
        state: &ProcessSeries,
        interval_start: u64,
        now: u64,
        scratch: &mut EncodeScratch,
    ) -> usize {
        let EncodeScratch { metrics: out, points, attrs, text, .. } = scratch;
        let mut count = 0;
        let temporality = self.temporality.otlp() as u64;
        let body_bounds = BODY_SIZE_BOUNDS.map(|b| b as f64);
        for (role, map, names) in [(Role::Server, &state.server, &SERVER), (Role::Client, &state.client, &CLIENT)] {
            points.iter_mut().for_each(Vec::clear);
            let all = map.series.iter().map(|(k, s)| (Some(k), s)).chain(map.overflow.iter().map(|s| (None, s)));
            for (key, series) in all.filter(|(_, s)| s.has_data()) {
                attrs.clear();
                match key {
                    Some(k) => k.write_attributes(role, &mut AttrEncoder { buf: attrs, tag: 9, scratch: text }),
                    None => wire::bool_kv(attrs, 9, OVERFLOW_ATTRIBUTE, true),
                }
                let start = match self.temporality {
                    Temporality::Cumulative => series.start_ns,
                    Temporality::Delta => interval_start,
                }
                .min(now);
                let Series { duration, request_body, response_body, .. } = series;
                // Histogram.data_points (1).
                duration.write_point(&mut points[0], &DURATION_BOUNDS_S, 1e9, attrs, start, now);
                request_body.write_point(&mut points[1], &body_bounds, 1.0, attrs, start, now);
                count += 2;
                if response_body.count() > 0 {
                    response_body.write_point(&mut points[2], &body_bounds, 1.0, attrs, start, now);
                    count += 1;
                }
            }
            for (info, data_points) in names.iter().zip(points.iter()) {
                if data_points.is_empty() {
                    continue;
                }
                // Metric { name 1, description 2, unit 3, histogram 9 { data_points 1, temporality 2 } }.
                let histogram_len = data_points.len() + 2;
                let metric_len = wire::len_field_len(1, info.name.len())
                    + wire::len_field_len(2, info.description.len())
                    + wire::len_field_len(3, info.unit.len())
                    + wire::len_field_len(9, histogram_len);
                out.reserve(wire::len_field_len(2, metric_len));
                wire::len_prefix(out, 2, metric_len);
                wire::str_field(out, 1, info.name);
                wire::str_field(out, 2, info.description);
                wire::str_field(out, 3, info.unit);
                wire::len_prefix(out, 9, histogram_len);
                out.extend_from_slice(data_points);
                wire::varint_field(out, 2, temporality);
            }
        }
        let genai_start = |series_start: u64| match self.temporality {
            Temporality::Cumulative => series_start,
            Temporality::Delta => interval_start,
        };
        let mut genai_points: [Vec<HistogramDataPoint>; 6] = Default::default();
        for (i, point) in state.genai.points(genai_start, now) {
            genai_points[i].push(point);
        }
        for (i, data_points) in genai_points.into_iter().enumerate() {
            if data_points.is_empty() {
                continue;
            }
            count += data_points.len();
            let (unit, description) = genai::GENAI_METRIC_INFO[i];
            let metric = Metric {
                name: GENAI_METRIC_NAMES[i].to_string(),
                description: description.to_string(),
                unit: unit.to_string(),
                metadata: Vec::new(),
                data: Some(metric::Data::Histogram(OtlpHistogram {
                    data_points,
                    aggregation_temporality: self.temporality.otlp(),
                })),
            };
            prost::encoding::message::encode(2, &metric, out);
        }
        count
    }
}

/// Buffers `collect` reuses from one export to the next.
#[derive(Debug)]
struct EncodeScratch {
    /// The encoded `InstrumentationScope` of every process's metrics.
    scope: Vec<u8>,
    /// One process's resource.
    resource: Vec<u8>,
    /// One process's metrics.
    metrics: Vec<u8>,
    /// Duration, request body, response body points of one family.
    points: [Vec<u8>; 3],
    /// One series' attributes.
    attrs: Vec<u8>,
    /// Formatted attribute values.
    text: String,
}

impl Default for EncodeScratch {
    fn default() -> Self {
        Self {
            scope: scope().encode_to_vec(),
            resource: Vec::new(),
            metrics: Vec::new(),
            points: Default::default(),
            attrs: Vec::new(),
            text: String::new(),
        }
    }
}

/// The largest scratch buffer kept between exports.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

struct MetricInfo {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
}

/// Duration, request body size, response body size: the order of `process_metrics`' points.
const SERVER: [MetricInfo; 3] = [
    MetricInfo { name: "http.server.request.duration", unit: "s", description: "Duration of HTTP server requests." },
    MetricInfo {
        name: "http.server.request.body.size",
        unit: "By",
        description: "Size of HTTP server request bodies.",
    },
    MetricInfo {
        name: "http.server.response.body.size",
        unit: "By",
        description: "Size of HTTP server response bodies.",
    },
];

const CLIENT: [MetricInfo; 3] = [
    MetricInfo { name: "http.client.request.duration", unit: "s", description: "Duration of HTTP client requests." },
    MetricInfo {
        name: "http.client.request.body.size",
        unit: "By",
        description: "Size of HTTP client request bodies.",
    },
    MetricInfo {
        name: "http.client.response.body.size",
        unit: "By",
        description: "Size of HTTP client response bodies.",
    },
];

/// Every HTTP metric name this module can emit.
pub const HTTP_METRIC_NAMES: [&str; 6] =
    [SERVER[0].name, SERVER[1].name, SERVER[2].name, CLIENT[0].name, CLIENT[1].name, CLIENT[2].name];

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: crate::SDK_NAME.to_string(),
        version: crate::VERSION.to_string(),
        ..Default::default()
    }
}

fn data_points(m: &Metric) -> usize {
    match &m.data {
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
