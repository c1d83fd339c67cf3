//! Metrics aggregated in memory from every completed operation (before any
//! sampling) and exported as OTLP `ExportMetricsServiceRequest`s. Protocols
//! say what to record through an `Operation`'s `MetricFeed`s; this module
//! knows instruments (`instruments`), not protocols.
//!
//! # Instruments
//!
//! Families of instruments recorded with one attribute set each (see
//! `instruments`): HTTP server and client requests (duration, request and
//! response body size), GenAI client and server calls, database client
//! operations, RPC server and client calls, messaging client operations.
//! Histograms are explicit-bucket with count, sum, min and max, over the
//! conventions' advised bounds; counters are monotonic sums. A point is
//! exported for an instrument that recorded something.
//!
//! What each protocol records, and with which attributes, is documented
//! with the protocol (`crate::protocol`). Nothing per request (`url.path`,
//! `url.full`, peer addresses, query text) is ever a metric attribute.
//!
//! # Series and their limit
//!
//! One ResourceMetrics per traced process (its `crate::otlp::process_resource`).
//! Each family of a process holds at most `max_series_per_metric` attribute
//! sets; the instruments of a family share them, so each metric has at most
//! that many series. A feed with a new attribute set beyond the limit is
//! recorded in the family's overflow series, whose only attribute is
//! `otel.metric.overflow = true` (as in the OpenTelemetry metrics SDK
//! specification), and counted in `overflowed()`: nothing is dropped. The
//! overflow series is in addition to the limit.
//!
//! # Temporality and start times
//!
//! - Cumulative (default; what Prometheus wants): every series is exported at
//!   every collection with everything since its start. Its start time is the
//!   last collection before its first operation (or the creation of
//!   `Metrics`): the operation's own time is a kernel monotonic timestamp
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
//! (call it once the operations of an exited process have been recorded) moves
//! every state of that pid aside: the next `collect` exports them one last
//! time (cumulative: all their series; delta: what is pending) and drops
//! them. A later operation of the same pid starts afresh. In cumulative mode a
//! process is only forgotten through `forget_process`.
//!
//! # Cost
//!
//! `observe` allocates nothing once a series exists: the series is found
//! through the feed's borrowed attributes; only a new series allocates (its
//! owned key and its points).

pub(crate) mod histogram;
pub mod instruments;
mod self_telemetry;
mod series;
#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality, Metric};
use prost::Message;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::batch::{Batch, Signal};
use crate::otlp::wire::{self, AttrEncoder};
use crate::otlp::{write_process_resource, HostInfo};
use crate::process::ProcessIdentity;
use crate::protocol::Operation;
use crate::stats::StatsSnapshot;

pub use instruments::{
    metric_names, Family, Instrument, Kind, BODY_SIZE_BOUNDS, DURATION_BOUNDS_S, FAMILIES, MAX_INSTRUMENTS,
};
pub use self_telemetry::SELF_METRIC_NAMES;

use series::{write_overflow_attributes, FamilySeries, Point};

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
    pub(crate) fn otlp(self) -> i32 {
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
    /// The families this process fed, in order of first use (a few at most).
    families: SmallVec<[FamilySeries; 2]>,
}

impl ProcessSeries {
    fn is_empty(&self) -> bool {
        self.families.iter().all(FamilySeries::is_empty)
    }

    fn family(&mut self, family: &'static Family) -> &mut FamilySeries {
        match self.families.iter().position(|f| std::ptr::eq(f.family, family)) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push(FamilySeries::new(family));
                self.families.last_mut().expect("just pushed")
            }
        }
    }
}

/// The metrics of every traced process; see the module documentation.
#[derive(Debug)]
pub struct Metrics {
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

impl Metrics {
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

    /// Feeds recorded into an overflow series since creation.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Attribute sets currently held (overflow series included), all processes.
    pub fn series_count(&self) -> usize {
        let families = |p: &ProcessSeries| p.families.iter().map(FamilySeries::len).sum::<usize>();
        self.processes.values().flatten().chain(&self.retired).map(families).sum()
    }

    /// Records every metric feed of one completed operation of `process`.
    pub fn observe(&mut self, process: &Arc<ProcessIdentity>, op: &Operation<'_>) {
        if op.metrics.is_empty() {
            return;
        }
        let (max_series, start) = (self.max_series, self.last_collect_ns);
        let state = self.process_state(process);
        let mut overflowed = 0;
        for feed in &op.metrics {
            if !state.family(feed.family).record(feed, max_series, start) {
                overflowed += 1;
            }
        }
        self.overflowed += overflowed;
    }

    fn process_state(&mut self, process: &Arc<ProcessIdentity>) -> &mut ProcessSeries {
        let states = self.processes.entry(process.pid).or_default();
        // Same Arc (the usual case), else same content (identity read again).
        let same = |s: &ProcessSeries| Arc::ptr_eq(&s.identity, process) || *s.identity == **process;
        let index = match states.iter().position(same) {
            Some(i) => i,
            None => {
                states.push(ProcessSeries { identity: process.clone(), families: SmallVec::new() });
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
                    s.families.iter_mut().for_each(FamilySeries::reset_for_delta);
                    s.families.retain(|f| !f.is_empty());
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
    /// `scratch.metrics`, families in `FAMILIES` order; returns the number
    /// of data points.
    fn write_process_metrics(
        &self,
        state: &ProcessSeries,
        interval_start: u64,
        now: u64,
        scratch: &mut EncodeScratch,
    ) -> usize {
        let EncodeScratch { metrics: out, points, attrs, own_attrs, text, .. } = scratch;
        let mut count = 0;
        let temporality = self.temporality.otlp() as u64;
        let mut families: SmallVec<[&FamilySeries; 4]> = state.families.iter().collect();
        families.sort_by_key(|f| f.family.position());
        for fs in families {
            let instruments = fs.family.instruments;
            points.iter_mut().for_each(Vec::clear);
            for (key, series) in fs.with_data() {
                let start = match self.temporality {
                    Temporality::Cumulative => series.start_ns,
                    Temporality::Delta => interval_start,
                }
                .min(now);
                // The series' attributes, encoded once for the instruments
                // that take them as they are (most).
                attrs.clear();
                let mut sink = AttrEncoder::new(attrs, 9, text);
                match key {
                    Some(k) => k.write_attributes(&[], &[], &mut sink),
                    None => write_overflow_attributes(&[], &mut sink),
                }
                for ((instrument, point), buf) in instruments.iter().zip(series.points.iter()).zip(points.iter_mut()) {
                    if point.count() == 0 {
                        continue;
                    }
                    let tag = point_attributes_tag(point);
                    let own = tag != 9 || !instrument.omit.is_empty() || !instrument.extra.is_empty();
                    if own {
                        own_attrs.clear();
                        let mut sink = AttrEncoder::new(own_attrs, tag, text);
                        match key {
                            Some(k) => k.write_attributes(instrument.omit, instrument.extra, &mut sink),
                            None => write_overflow_attributes(instrument.extra, &mut sink),
                        }
                    }
                    let point_attrs = if own { &own_attrs[..] } else { &attrs[..] };
                    match (point, &instrument.kind) {
                        (Point::Histogram(h, offset, bounds), Kind::Histogram { exported_bounds, scale, .. }) => {
                            let counts = series.buckets(*offset, bounds);
                            h.write_point(counts, buf, exported_bounds, *scale, point_attrs, (start, now));
                        }
                        (Point::Counter { total, .. }, _) => write_sum_point(buf, *total, point_attrs, start, now),
                        _ => continue,
                    }
                    count += 1;
                }
            }
            // Instruments of a family that share a name are one metric.
            let mut i = 0;
            while i < instruments.len() {
                let info = &instruments[i];
                let mut j = i + 1;
                while j < instruments.len() && instruments[j].name == info.name {
                    j += 1;
                }
                let data_len: usize = points[i..j].iter().map(Vec::len).sum();
                if data_len > 0 {
                    write_metric(out, info, &points[i..j], data_len, temporality);
                }
                i = j;
            }
        }
        count
    }
}

/// Field of a data point's attributes: 9 in a `HistogramDataPoint`, 7 in a `NumberDataPoint`.
fn point_attributes_tag(point: &Point) -> u32 {
    match point {
        Point::Counter { .. } => 7,
        Point::Histogram(..) | Point::Unused => 9,
    }
}

/// `Metric { name 1, description 2, unit 3, histogram 9 | sum 7 { data_points 1,
/// aggregation_temporality 2 [, is_monotonic 3] } }` as `ScopeMetrics.metrics` (2).
fn write_metric(out: &mut Vec<u8>, info: &Instrument, points: &[Vec<u8>], data_len: usize, temporality: u64) {
    let (tag, data_len) = match info.kind {
        Kind::Histogram { .. } => (9, data_len + 2),
        // Sum { data_points, aggregation_temporality, is_monotonic: true }.
        Kind::Counter => (7, data_len + 4),
    };
    let metric_len = wire::len_field_len(1, info.name.len())
        + wire::len_field_len(2, info.description.len())
        + wire::len_field_len(3, info.unit.len())
        + wire::len_field_len(tag, data_len);
    out.reserve(wire::len_field_len(2, metric_len));
    wire::len_prefix(out, 2, metric_len);
    wire::str_field(out, 1, info.name);
    wire::str_field(out, 2, info.description);
    wire::str_field(out, 3, info.unit);
    wire::len_prefix(out, tag, data_len);
    for p in points {
        out.extend_from_slice(p);
    }
    wire::varint_field(out, 2, temporality);
    if tag == 7 {
        wire::varint_field(out, 3, 1);
    }
}

/// `NumberDataPoint { start 2, time 3, as_int 6, attributes 7 }` as
/// `Sum.data_points` (1), the bytes prost writes for it.
fn write_sum_point(buf: &mut Vec<u8>, total: u64, attributes: &[u8], start: u64, now: u64) {
    let fixed = |v: u64| if v != 0 { 9 } else { 0 };
    let len = fixed(start) + fixed(now) + 9 + attributes.len();
    wire::len_prefix(buf, 1, len);
    wire::fixed64_field(buf, 2, start);
    wire::fixed64_field(buf, 3, now);
    // as_int (sfixed64) is a oneof member: written even when 0.
    buf.push(6 << 3 | 1);
    buf.extend_from_slice(&(i64::try_from(total).unwrap_or(i64::MAX)).to_le_bytes());
    buf.extend_from_slice(attributes);
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
    /// The points of each instrument of one family.
    points: [Vec<u8>; MAX_INSTRUMENTS],
    /// One series' attributes.
    attrs: Vec<u8>,
    /// One point's attributes, when its instrument takes others.
    own_attrs: Vec<u8>,
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
            own_attrs: Vec::new(),
            text: String::new(),
        }
    }
}

/// The largest scratch buffer kept between exports.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: crate::SDK_NAME.to_string(),
        version: crate::VERSION.to_string(),
        ..Default::default()
    }
}

/// Data points in a ResourceMetrics.
pub fn resource_points(rm: &opentelemetry_proto::tonic::metrics::v1::ResourceMetrics) -> usize {
    rm.scope_metrics.iter().flat_map(|s| &s.metrics).map(data_points).sum()
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
