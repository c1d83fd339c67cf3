//! Turns ring-buffer records into batches. No kernel access: it can be fed
//! recorded events (tests, benchmarks) as well as live ones.
//!
//! Per completed protocol record: its description (an `Operation`) → the
//! metrics of every operation → the keep/drop decision (sampling) → span
//! encoding into the batch. Nothing here knows a protocol.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{Batch, SpanBatcher};
use crate::clock::WallClock;
use crate::config::Config;
use crate::conntrack::{ConnTracker, Exchange, Mute, Widen};
use crate::events::{decode, Event};
use crate::flows::Flows;
use crate::metrics::Metrics;
use crate::otlp::HostInfo;
use crate::protocol::{Describer, Operation, Protocols};
use crate::spans::{write_span_with, Decision, IdGenerator, Sampler, SpanHead};
use crate::stats::Stats;

/// How often `tick` looks for connections silent longer than
/// `idle_timeout_ms`.
const EXPIRY_SCAN_INTERVAL: Duration = Duration::from_secs(1);

pub struct Processor {
    conns: ConnTracker,
    /// None when traces are disabled.
    batcher: Option<SpanBatcher>,
    /// None when every span is kept (`traces.sampling.ratio` 1).
    sampler: Option<Sampler>,
    /// Spans the sampler left out (the only writer of `spans_sampled_out`).
    sampled_out: u64,
    /// None when metrics are disabled.
    metrics: Option<Metrics>,
    /// Network flows and DNS; None when flows (or metrics) are disabled.
    flows: Option<Flows>,
    next_metrics: Instant,
    /// Monotonic time of the next scan for idle connections.
    next_expiry_ns: u64,
    /// Connections silent this long are forgotten (`Config::idle_timeout_ms`).
    idle_timeout_ns: u64,
    /// Records → operations (with the layers over protocols: routes, GenAI).
    describer: Describer,
    host: HostInfo,
    ids: IdGenerator,
    clock: WallClock,
    stats: Arc<Stats>,
    exchanges: Vec<Exchange>,
    /// Processes whose series to forget once their last exchanges are recorded.
    exited: Vec<u32>,
    /// Connections the kernel table should forget (expired idle here): if
    /// used again, the kernel announces them again, with their addresses.
    pub forget: Vec<u64>,
    /// Processes that exec()ed since the worker last looked: to re-select.
    pub execs: Vec<u32>,
    /// `capture_size` is below what a wide capture gives: widening helps.
    widening_helps: bool,
}

/// A payload of a port-53 connection goes to DNS (beside the protocol
/// parsers, which never see datagrams). A payload counted but not copied
/// (`sendmmsg`, `sendfile`) has nothing to read.
fn dns_payload(
    flows: &mut Flows,
    conns: &mut ConnTracker,
    h: &crate::events::Header,
    data: &crate::events::DataEvent<'_>,
) {
    if data.tls || data.payload.is_empty() {
        return;
    }
    let Some((peer, transport)) = conns.take_dns_peer() else { return };
    let packet = crate::flows::dns::DnsPacket {
        conn_id: h.conn_id,
        tgid: h.tgid,
        ts_ns: h.ts_ns,
        peer,
        transport: match transport {
            crate::events::Transport::Tcp => crate::flows::Transport::Tcp,
            crate::events::Transport::Udp => crate::flows::Transport::Udp,
        },
        egress: data.direction == crate::protocol::Direction::Egress,
        payload: data.payload,
        total_len: data.total_len,
    };
    // The kernel captures the payloads of traced processes only.
    let mut identities = |pid: u32| Some(conns.identity(pid));
    flows.dns_packet(&packet, &mut identities);
}

impl Processor {
    /// Panics if `config` was not validated (`Config::validate` checks the routes).
    pub fn new(config: &Config, stats: Arc<Stats>) -> Self {
        Self::with_tracker(config, stats, ConnTracker::new(config.identity.clone()))
    }

    /// A processor for recorded events: process identities come from the
    /// events, never from this host's /proc.
    pub fn replay(config: &Config, stats: Arc<Stats>) -> Self {
        Self::with_tracker(config, stats, ConnTracker::offline())
    }

    fn with_tracker(config: &Config, stats: Arc<Stats>, conns: ConnTracker) -> Self {
        let host = HostInfo::read();
        let clock = WallClock::new();
        let now_unix = clock.to_unix_ns(crate::clock::monotonic_now_ns());
        let describer = Describer::new(config, stats.clone());
        let protocols = Protocols::new(&config.protocols, describer.body_policy()).counting_into(stats.clone());
        let flows = (config.metrics.enabled && config.flows.enabled)
            .then(|| Flows::new(&config.metrics, &config.dns, now_unix));
        let dns = flows.is_some() && config.dns.enabled;
        Self {
            conns: conns.with_protocols(protocols).with_dns(dns),
            describer,
            batcher: config.traces.enabled.then(|| {
                SpanBatcher::new(config.batch.max_spans, Duration::from_millis(config.batch.timeout_ms), host.clone())
            }),
            sampler: Sampler::new(&config.traces.sampling),
            sampled_out: 0,
            metrics: config.metrics.enabled.then(|| Metrics::new_at(&config.metrics, now_unix)),
            flows,
            next_metrics: Instant::now() + config.metrics.interval(),
            next_expiry_ns: 0,
            idle_timeout_ns: config.idle_timeout_ms.saturating_mul(1_000_000),
            host,
            ids: IdGenerator::new(),
            clock,
            stats,
            exchanges: Vec::new(),
            exited: Vec::new(),
            forget: Vec::new(),
            execs: Vec::new(),
            widening_helps: config.capture_size < crate::config::MAX_CAPTURE_SIZE,
        }
    }

    /// Handles one record; a batch it completes goes to `emit`.
    pub fn handle(&mut self, record: &[u8], now: Instant, emit: &mut impl FnMut(Batch)) {
        // The processor is the only writer of this counter: a plain load and
        // store, not a locked read-modify-write per event.
        let read = &self.stats.events_read;
        read.store(read.load(Relaxed) + 1, Relaxed);
        let event = match decode(record) {
            Ok(e) => e,
            Err(e) => {
                self.stats.decode_errors.fetch_add(1, Relaxed);
                log::debug!("undecodable event: {e}");
                return;
            }
        };
        let out = &mut self.exchanges;
        match event {
            Event::ConnOpen(h, open) => self.conns.open(&h, &open),
            Event::Data(h, data) => {
                self.conns.data(&h, &data, out);
                if let Some(flows) = &mut self.flows {
                    dns_payload(flows, &mut self.conns, &h, &data);
                }
            }
            Event::ConnClose(h) => {
                if let Some(flows) = &mut self.flows {
                    flows.dns_close(h.conn_id);
                }
                self.conns.close(&h, out)
            }
            Event::ProcessExit(h) => {
                if let Some(flows) = &mut self.flows {
                    flows.forget_process(h.tgid);
                }
                self.conns.process_exit(&h, out);
                self.exited.push(h.tgid);
            }
            // A new image: new identity, new selection decision. Its
            // connections end here; a socket the exec kept is announced
            // again (for the new image) by the kernel when it is used.
            Event::ProcessExec(h, _comm) => {
                self.conns.process_exit(&h, out);
                self.execs.push(h.tgid);
            }
        }
        self.drain_exchanges(now, emit);
    }

    fn drain_exchanges(&mut self, now: Instant, emit: &mut impl FnMut(Batch)) {
        let Self { describer, metrics, batcher, sampler, sampled_out, clock, ids, .. } = self;
        for ex in self.exchanges.drain(..) {
            let process = &ex.process;
            describer.describe(&ex.record, &ex.facts(), &mut |op: &Operation<'_>| {
                // Metrics count every operation, whatever sampling keeps.
                if let Some(metrics) = metrics.as_mut() {
                    metrics.observe(process, op);
                }
                let Some(batcher) = batcher.as_mut() else { return };
                // Sampling: the keep/drop decision of a complete operation,
                // before anything is encoded. Its randomness is the trace id.
                let trace_id = ids.trace_id_bytes();
                let trace_state = match sampler {
                    None => None,
                    Some(sampler) => match sampler.decide(&trace_id, op.failed, op.duration_ns()) {
                        Decision::Drop => {
                            *sampled_out += 1;
                            return;
                        }
                        Decision::Keep(state) => state,
                    },
                };
                let head = SpanHead { trace_id, trace_state };
                let batch =
                    batcher.push_with(process, now, |buf, scratch| write_span_with(op, clock, head, ids, buf, scratch));
                if let Some(batch) = batch {
                    emit(batch);
                }
            });
        }
        if let Some(metrics) = &mut self.metrics {
            for pid in self.exited.drain(..) {
                metrics.forget_process(pid);
            }
        } else {
            self.exited.clear();
        }
        self.stats.spans_sampled_out.store(self.sampled_out, Relaxed);
        self.stats.parse_errors.store(self.conns.parse_errors, Relaxed);
        self.stats.stream_gaps.store(self.conns.gaps, Relaxed);
        self.stats.sends_reordered.store(self.conns.reordered, Relaxed);
        self.stats.requests_lost.store(self.conns.requests_lost, Relaxed);
        self.stats.connections.store(self.conns.len() as u64, Relaxed);
        self.stats.processes.store(self.conns.process_count() as u64, Relaxed);
        if let Some(metrics) = &self.metrics {
            self.stats.metric_overflows.store(metrics.overflowed(), Relaxed);
        }
        if let Some(flows) = &self.flows {
            let (malformed, unmatched, dropped) = flows.dns_counters();
            self.stats.dns_malformed.store(malformed, Relaxed);
            self.stats.dns_unmatched.store(unmatched, Relaxed);
            self.stats.dns_dropped.store(dropped, Relaxed);
        }
    }

    /// Periodic work: cut a batch that waited long enough, export metrics when
    /// due, expire idle connections, follow wall-clock steps.
    pub fn tick(&mut self, now: Instant, now_monotonic_ns: u64, emit: &mut impl FnMut(Batch)) {
        self.clock = WallClock::new();
        self.conns.release_overdue(now_monotonic_ns, &mut self.exchanges);
        // A scan of every connection: once a second is plenty for a timeout
        // of at least a second (5 minutes by default).
        if now_monotonic_ns >= self.next_expiry_ns {
            let cutoff = now_monotonic_ns.saturating_sub(self.idle_timeout_ns);
            // The kernel forgets them too: a connection that wakes up is then
            // found again with its addresses (and a new id), instead of
            // going on in userspace with none.
            let expired = self.conns.expire_idle(cutoff, &mut self.exchanges);
            self.forget.extend(expired);
            self.next_expiry_ns = now_monotonic_ns + EXPIRY_SCAN_INTERVAL.as_nanos() as u64;
        }
        self.drain_exchanges(now, emit);
        if let Some(batch) = self.batcher.as_mut().and_then(|b| b.tick(now)) {
            emit(batch);
        }
        if now >= self.next_metrics {
            self.collect_metrics(now_monotonic_ns, emit);
            let interval = self.metrics.as_ref().map_or(Duration::from_secs(60), |m| m.interval());
            self.next_metrics = now + interval;
        }
    }

    /// True when flows are collected (the worker then runs the iterator).
    pub fn flows_enabled(&self) -> bool {
        self.flows.is_some()
    }

    /// One pass of the flows iterator: `records` is its output; `traced`
    /// says whether a process is selected.
    pub fn flow_pass(&mut self, records: &[u8], now_monotonic_ns: u64, traced: &mut impl FnMut(u32) -> bool) {
        let Some(flows) = &mut self.flows else { return };
        let conns = &mut self.conns;
        let mut identities = |pid: u32| traced(pid).then(|| conns.identity(pid));
        flows.pass(records, now_monotonic_ns, &mut identities);
        flows.tick(now_monotonic_ns, &mut identities);
    }

    /// The kernel's UDP flow table, read right after a `flow_pass`; the
    /// indexes of entries idle since the previous read go to `idle` (the
    /// caller deletes them from the kernel map). `traced` as for `flow_pass`.
    pub fn udp_flow_pass(
        &mut self,
        samples: &[crate::flows::UdpSample],
        idle: &mut Vec<usize>,
        traced: &mut impl FnMut(u32) -> bool,
    ) {
        let Some(flows) = &mut self.flows else { return };
        let conns = &mut self.conns;
        let mut identities = |pid: u32| traced(pid).then(|| conns.identity(pid));
        flows.udp_pass(samples, idle, &mut identities);
    }

    /// Connection events (handshakes, failures, resets, ends) read from
    /// the kernel; `traced` as for `flow_pass`.
    pub fn flow_events(&mut self, events: &[u8], traced: &mut impl FnMut(u32) -> bool) {
        let Some(flows) = &mut self.flows else { return };
        let conns = &mut self.conns;
        let mut identities = |pid: u32| traced(pid).then(|| conns.identity(pid));
        flows.events(events, &mut identities);
    }

    /// Connections tracked in userspace.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Drops the connections the kernel table no longer holds (see
    /// `ConnTracker::reconcile`).
    pub fn reconcile(&mut self, tracked: impl FnMut(u64) -> bool, now: Instant, emit: &mut impl FnMut(Batch)) -> usize {
        let gone = self.conns.reconcile(tracked, &mut self.exchanges);
        self.drain_exchanges(now, emit);
        self.stats.connections.store(self.conns.len() as u64, Relaxed);
        gone
    }

    fn collect_metrics(&mut self, now_monotonic_ns: u64, emit: &mut impl FnMut(Batch)) {
        let snapshot = self.stats.snapshot();
        let now_unix = self.clock.to_unix_ns(now_monotonic_ns);
        let mut batch = self.metrics.as_mut().and_then(|m| m.collect(now_unix, &self.host, Some(&snapshot)));
        // Flow metrics travel in the same request: ResourceMetrics are its field 1.
        if let Some(flows) = &mut self.flows {
            for rm in flows.collect(now_unix, &self.host) {
                let points = crate::metrics::resource_points(&rm);
                let b = batch.get_or_insert_with(|| Batch {
                    signal: crate::batch::Signal::Metrics,
                    data: Vec::new(),
                    items: 0,
                });
                prost::encoding::message::encode(1, &rm, &mut b.data);
                b.items += points;
            }
        }
        if let Some(batch) = batch {
            emit(batch);
        }
    }

    /// How long the worker may sleep before `tick` has a batch to cut.
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        let spans = self.batcher.as_ref().and_then(|b| b.time_left(now));
        let metrics = self.metrics.as_ref().map(|_| self.next_metrics.saturating_duration_since(now));
        match (spans, metrics) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Connections whose payload the kernel may stop capturing.
    pub fn take_muted(&mut self) -> std::vec::Drain<'_, Mute> {
        self.conns.muted.drain(..)
    }

    /// Connections whose parser wants more of each read/write captured than
    /// `capture_size` (the kernel copies up to `OE_MAX_CAPTURE` of them).
    /// None when `capture_size` is the most already.
    pub fn take_widened(&mut self) -> std::vec::Drain<'_, Widen> {
        if !self.widening_helps {
            self.conns.widened.clear();
        }
        self.conns.widened.drain(..)
    }

    /// Processes seen moving TLS records at a socket since the last call
    /// (with repeats): they may use a TLS library not instrumented yet.
    pub fn take_tls_suspects(&mut self) -> std::vec::Drain<'_, u32> {
        self.conns.tls_suspects.drain(..)
    }

    /// Everything pending, at shutdown: the last spans and a final metrics export.
    pub fn flush(&mut self, emit: &mut impl FnMut(Batch)) {
        self.conns.release_all(&mut self.exchanges);
        self.drain_exchanges(Instant::now(), emit);
        if let Some(batch) = self.batcher.as_mut().and_then(|b| b.flush()) {
            emit(batch);
        }
        self.collect_metrics(crate::clock::monotonic_now_ns(), emit);
    }
}
