//! Turns ring-buffer records into batches. No kernel access: it can be fed
//! recorded events (tests, benchmarks) as well as live ones.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{Batch, SpanBatcher};
use crate::clock::WallClock;
use crate::config::Config;
use crate::conntrack::{ConnTracker, Exchange};
use crate::events::{decode, Event};
use crate::otlp::HostInfo;
use crate::spans::{http_span, IdGenerator};
use crate::stats::Stats;

/// Connections silent this long are dropped (their close event was lost).
const IDLE_EXPIRY: Duration = Duration::from_secs(300);

pub struct Processor {
    conns: ConnTracker,
    batcher: SpanBatcher,
    ids: IdGenerator,
    clock: WallClock,
    stats: Arc<Stats>,
    exchanges: Vec<Exchange>,
    /// (tgid, fd) the kernel table should forget: sockets of exited processes.
    pub forget: Vec<(u32, i32)>,
    /// Processes that exec()ed since the worker last looked: to re-select.
    pub execs: Vec<u32>,
}

impl Processor {
    pub fn new(config: &Config, stats: Arc<Stats>) -> Self {
        Self::with_tracker(config, stats, ConnTracker::new(config.identity.clone()))
    }

    /// A processor for recorded events: process identities come from the
    /// events, never from this host's /proc.
    pub fn replay(config: &Config, stats: Arc<Stats>) -> Self {
        Self::with_tracker(config, stats, ConnTracker::offline())
    }

    fn with_tracker(config: &Config, stats: Arc<Stats>, conns: ConnTracker) -> Self {
        Self {
            conns,
            batcher: SpanBatcher::new(
                config.batch.max_spans,
                Duration::from_millis(config.batch.timeout_ms),
                HostInfo::read(),
            ),
            ids: IdGenerator::new(),
            clock: WallClock::new(),
            stats,
            exchanges: Vec::new(),
            forget: Vec::new(),
            execs: Vec::new(),
        }
    }

    /// Handles one record; a batch it completes goes to `emit`.
    pub fn handle(&mut self, record: &[u8], now: Instant, emit: &mut impl FnMut(Batch)) {
        self.stats.events_read.fetch_add(1, Relaxed);
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
            Event::ConnOpen(h, open) => self.conns.open(&h, &open, out),
            Event::Data(h, data) => self.conns.data(&h, &data, out),
            Event::ConnClose(h) => self.conns.close(&h, out),
            Event::ProcessExit(h) => {
                let fds = self.conns.process_exit(&h, out);
                self.forget.extend(fds.into_iter().map(|fd| (h.tgid, fd)));
            }
            // A new image: new identity, new selection decision. Its sockets
            // are forgotten too; survivors of the exec are found again lazily.
            Event::ProcessExec(h, _comm) => {
                let fds = self.conns.process_exit(&h, out);
                self.forget.extend(fds.into_iter().map(|fd| (h.tgid, fd)));
                self.execs.push(h.tgid);
            }
        }
        self.drain_exchanges(now, emit);
    }

    fn drain_exchanges(&mut self, now: Instant, emit: &mut impl FnMut(Batch)) {
        for ex in self.exchanges.drain(..) {
            let span = http_span(&ex, &self.clock, &mut self.ids);
            if let Some(batch) = self.batcher.push(&ex.process, span, now) {
                emit(batch);
            }
        }
        self.stats.parse_errors.store(self.conns.parse_errors, Relaxed);
        self.stats.connections.store(self.conns.len() as u64, Relaxed);
    }

    /// Periodic work: cut a batch that waited long enough, expire idle
    /// connections, follow wall-clock steps.
    pub fn tick(&mut self, now: Instant, now_monotonic_ns: u64, emit: &mut impl FnMut(Batch)) {
        self.clock = WallClock::new();
        let cutoff = now_monotonic_ns.saturating_sub(IDLE_EXPIRY.as_nanos() as u64);
        self.conns.expire_idle(cutoff, &mut self.exchanges);
        self.drain_exchanges(now, emit);
        if let Some(batch) = self.batcher.tick(now) {
            emit(batch);
        }
    }

    /// (tgid, fd, conn_id) whose payload the kernel may stop capturing.
    pub fn take_muted(&mut self) -> std::vec::Drain<'_, (u32, i32, u64)> {
        self.conns.muted.drain(..)
    }

    /// How long the worker may sleep before `tick` has a batch to cut.
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        self.batcher.time_left(now)
    }

    /// Everything pending, at shutdown.
    pub fn flush(&mut self, emit: &mut impl FnMut(Batch)) {
        if let Some(batch) = self.batcher.flush() {
            emit(batch);
        }
    }
}
