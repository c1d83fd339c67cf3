//! The one thread between the kernel and the host: waits on the ring buffers,
//! feeds the processor, hands batches to the bounded queue the host polls.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether the probes copy more of a connection flagged `OE_CONN_F_WIDE`.
const PROBES_HONOUR_WIDE: bool = false;

use crossbeam_channel::{Sender, TrySendError};

use crate::batch::{Batch, ReadySignal};
use crate::clock::monotonic_now_ns;
use crate::events::recording::write_record;
use crate::probes::{FlowIter, Probes, WATERMARK_SLACK};
use crate::selection::{ProcessFacts, Selector};
use crate::stats::Stats;
use crate::tls::TlsTracer;

use super::processor::Processor;

/// Longest sleep between drains when the last one found nothing. The probes
/// wake the worker early only when a ring buffer crosses a quarter full
/// (wakeups cost more than events), so this bounds the latency added to
/// every event.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Longest sleep between drains while events flow. Short, so that a drain is
/// a short burst: 50 ms of events at ~50k requests/s took the worker ~4 ms of
/// CPU in one go, and wrk's p99 with the receiver doubled against 5 ms waits
/// (nginx, 2 rounds each: p99 ratio 3.4-3.9 at 50 ms, 1.8-1.9 at 5 ms, CPU
/// per request within noise). An idle host still sleeps MAX_WAIT.
const BUSY_WAIT: Duration = Duration::from_millis(5);
/// How often the kernel's loss counters are read (six map lookups).
const COUNTERS_EVERY: Duration = Duration::from_millis(100);
/// How often the connection table is checked against the kernel's, when
/// that is needed at all (see the loop).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// Records handled between deadline checks under load.
const DRAIN_BUDGET: usize = 4096;

/// Where the worker hands its batches: the bounded queue hosts poll, and
/// the fd that tells hosts waiting on it.
pub struct Outbox {
    pub tx: Sender<Batch>,
    pub ready: Arc<ReadySignal>,
}

pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl WorkerHandle {
    /// Asks the worker to detach the probes, drain and flush; waits for it.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        let _ = self.thread.join();
    }
}

/// The flows iterator and how often it runs.
pub struct FlowPasses {
    pub iter: FlowIter,
    pub interval: Duration,
    /// The first pass, made before `start` returned: the baseline of the
    /// sockets older than the receiver (their bytes count from then).
    pub first: Vec<u8>,
    /// Its monotonic time.
    pub first_ns: u64,
}

#[allow(clippy::too_many_arguments)]
pub fn spawn_worker(
    mut probes: Probes,
    mut processor: Processor,
    out: Outbox,
    stats: Arc<Stats>,
    mut recorder: Option<BufWriter<File>>,
    selector: Option<Selector>,
    mut tls: Option<TlsTracer>,
    mut flow_passes: Option<FlowPasses>,
) -> std::io::Result<WorkerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let thread = std::thread::Builder::new().name("otel-ebpf-worker".into()).spawn(move || {
        let Outbox { tx, ready } = out;
        let mut emit = |batch: Batch| send(&tx, batch, &stats, &ready);
        let mut next_reconcile = Instant::now() + RECONCILE_EVERY;
        let mut next_counters = Instant::now();
        let mut lost_at_reconcile = 0;
        let fds: Vec<i32> = probes.events.rings().iter().map(|r| r.as_raw_fd()).collect();
        let waiter = match RingWaiter::new(&fds) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!(
                    "epoll on the ring buffers failed ({e}); draining on a timer ({BUSY_WAIT:?} to {MAX_WAIT:?})"
                );
                None
            }
        };
        let mut drained = Drained::Empty;
        let mut flow_selection = FlowSelection::default();
        let mut next_flow_pass = Instant::now();
        let mut udp = UdpPass::default();
        if let Some(passes) = flow_passes.as_mut() {
            let traced = &mut |pid| flow_selection.traced(pid, selector.as_ref());
            processor.flow_pass(&passes.first, passes.first_ns, traced);
            udp.run(&mut probes, &mut processor, traced);
            flow_selection.end_pass();
            passes.first = Vec::new();
            next_flow_pass += passes.interval;
        }
        while !stop_flag.load(Relaxed) {
            // A drain that stopped at its budget left records behind: no wait.
            if drained != Drained::Budget {
                let now = Instant::now();
                let cap = if drained == Drained::Some { BUSY_WAIT } else { MAX_WAIT };
                let wait = processor.time_left(now).map_or(cap, |d| d.min(cap));
                match &waiter {
                    Some(w) => w.wait(wait),
                    None => std::thread::sleep(wait),
                }
            }
            let upto = monotonic_now_ns().saturating_sub(WATERMARK_SLACK.as_nanos() as u64);
            drained = drain(&mut probes, &mut processor, &mut emit, &mut recorder, DRAIN_BUDGET, upto);
            processor.tick(Instant::now(), monotonic_now_ns(), &mut emit);
            for conn_id in processor.forget.drain(..) {
                probes.conns.forget(conn_id);
            }
            for m in processor.take_muted() {
                probes.conns.mute(m.conn_id, m.tls);
            }
            // Not applied while the probes ignore OE_CONN_F_WIDE (neither
            // data path reads it yet): the write would only race the
            // kernel's sequence numbers for nothing (see
            // `ConnTable::set_flag`).
            if PROBES_HONOUR_WIDE {
                for w in processor.take_widened() {
                    probes.conns.widen(w.conn_id);
                }
            } else {
                processor.take_widened().for_each(drop);
            }
            // Connection events first: a socket's end is matched with the
            // pass that saw it last, before the next pass misses it.
            if let Some(passes) = flow_passes.as_mut() {
                let events = passes.iter.drain_events();
                if !events.is_empty() {
                    let traced = &mut |pid| flow_selection.traced(pid, selector.as_ref());
                    processor.flow_events(events, traced);
                }
            }
            let now = Instant::now();
            if let Some(passes) = flow_passes.as_mut().filter(|_| now >= next_flow_pass) {
                next_flow_pass = now + passes.interval;
                match passes.iter.pass() {
                    Ok((records, cost)) => {
                        log::debug!(
                            "flows: pass of {} records in {:?} ({:?} CPU)",
                            records.len() / std::mem::size_of::<ebpf_probes::abi::oe_flow_sock>(),
                            cost.wall,
                            cost.cpu
                        );
                        let traced = &mut |pid| flow_selection.traced(pid, selector.as_ref());
                        processor.flow_pass(records, monotonic_now_ns(), traced);
                        udp.run(&mut probes, &mut processor, traced);
                        flow_selection.end_pass();
                    }
                    Err(e) => log::warn!("flows: {e}"),
                }
                passes.iter.trim();
            }
            for pid in processor.execs.drain(..) {
                flow_selection.forget(pid);
                if let Some(selector) = &selector {
                    let facts = ProcessFacts::read(pid, selector.needs_otel_check());
                    probes.pid_filter.set(pid, selector.decide(&facts));
                }
                if let Some(tls) = &mut tls {
                    tls.exec(pid, now);
                }
            }
            for pid in processor.take_tls_suspects() {
                if let Some(tls) = &mut tls {
                    tls.suspect(pid, now);
                }
            }
            if let Some(tls) = &mut tls {
                tls.tick(&mut probes, now);
            }
            if now < next_counters {
                continue;
            }
            next_counters = now + COUNTERS_EVERY;
            let counters = probes.counters.snapshot();
            // The flows' connection events lost to their full ring count too.
            let flow_lost = flow_passes.as_ref().map_or(0, |p| p.iter.events_lost());
            stats.events_lost.store(counters.total_lost() + flow_lost, Relaxed);
            stats.tls_no_socket.store(counters.tls_no_socket, Relaxed);
            stats.io_uring_uncaptured.store(counters.io_uring, Relaxed);
            stats.udp_flows_uncounted.store(counters.udp_flows_full, Relaxed);
            stats.requests_unseen.store(counters.requests_unseen(), Relaxed);
            // Connections the kernel forgot without a close event: when its
            // LRU table is nearly full (it pushes old ones out silently) or
            // events were lost (close events among them). A lookup per
            // connection, once a second, only then.
            if now >= next_reconcile {
                let lost = counters.total_lost();
                let full = processor.connections() as u64 * 10 >= u64::from(probes.max_connections) * 9;
                if full || lost != lost_at_reconcile {
                    let conns = &probes.conns;
                    processor.reconcile(|id| conns.tracks(id), now, &mut emit);
                    lost_at_reconcile = lost;
                }
                next_reconcile = now + RECONCILE_EVERY;
            }
        }
        // Hand over what is queued and close the queue first, so pollers
        // see the end now; detaching takes ~40 ms per tracepoint (an RCU
        // grace period each, serialised by the kernel), about a second in all.
        drain(&mut probes, &mut processor, &mut emit, &mut recorder, DRAIN_BUDGET * 16, u64::MAX);
        processor.flush(&mut emit);
        if let Some(r) = recorder.as_mut() {
            let _ = r.flush();
        }
        drop(tx);
        ready.signal();
        probes.detach();
        let counters = probes.counters.snapshot();
        stats.events_lost.store(counters.total_lost(), Relaxed);
        stats.requests_unseen.store(counters.requests_unseen(), Relaxed);
    })?;
    Ok(WorkerHandle { stop, thread })
}

/// The UDP half of a flows pass: the kernel's counters per socket and peer,
/// read and recorded; entries idle since the previous pass deleted.
#[derive(Default)]
struct UdpPass {
    samples: Vec<crate::flows::UdpSample>,
    idle: Vec<usize>,
}

impl UdpPass {
    fn run(&mut self, probes: &mut Probes, processor: &mut Processor, traced: &mut impl FnMut(u32) -> bool) {
        let started = Instant::now();
        probes.udp_flows.read(&mut self.samples);
        let read = started.elapsed();
        self.idle.clear();
        processor.udp_flow_pass(&self.samples, &mut self.idle, traced);
        probes.udp_flows.remove(self.idle.iter().map(|&i| &self.samples[i]));
        log::debug!(
            "flows: UDP table of {} entries read in {read:?}, {} idle deleted, {:?} in all",
            self.samples.len(),
            self.idle.len(),
            started.elapsed()
        );

        if self.samples.capacity() > 4 * self.samples.len().max(1024) {
            self.samples = Vec::new();
        }
    }
}

/// Which processes' flows are reported: the selection's decision, read
/// from /proc once per process and kept while it holds sockets (a pid not
/// seen in a pass is decided afresh, so a reused pid is not mistaken for its
/// predecessor for long).
#[derive(Default)]
struct FlowSelection {
    decided: rustc_hash::FxHashMap<u32, (bool, bool)>,
}

impl FlowSelection {
    fn traced(&mut self, pid: u32, selector: Option<&Selector>) -> bool {
        let Some(selector) = selector else { return true };
        let entry = self
            .decided
            .entry(pid)
            .or_insert_with(|| (selector.decide(&ProcessFacts::read(pid, selector.needs_otel_check())), true));
        entry.1 = true;
        entry.0
    }

    fn end_pass(&mut self) {
        self.decided.retain(|_, (_, seen)| std::mem::take(seen));
    }

    fn forget(&mut self, pid: u32) {
        self.decided.remove(&pid);
    }
}

/// What a drain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    Empty,
    /// Records were handled, or are waiting for the merge's watermark.
    Some,
    /// Stopped at its budget: more records are waiting.
    Budget,
}

/// Handles up to `budget` records stamped up to `upto_ns`, merged from the
/// per-CPU rings in time order.
fn drain(
    probes: &mut Probes,
    processor: &mut Processor,
    emit: &mut impl FnMut(Batch),
    recorder: &mut Option<BufWriter<File>>,
    budget: usize,
    upto_ns: u64,
) -> Drained {
    let now = Instant::now();
    let done = probes.events.drain(budget, upto_ns, |item| {
        if let Some(r) = recorder.as_mut() {
            if let Err(e) = write_record(r, item) {
                log::warn!("recording events stopped: {e}");
                *recorder = None;
            }
        }
        processor.handle(item, now, emit);
    });
    if done.full {
        Drained::Budget
    } else if done.handled > 0 || done.held {
        Drained::Some
    } else {
        Drained::Empty
    }
}

fn send(tx: &Sender<Batch>, batch: Batch, stats: &Stats, ready: &ReadySignal) {
    let items = batch.items as u64;
    match tx.try_send(batch) {
        Ok(()) => {
            stats.spans_exported.fetch_add(items, Relaxed);
            ready.signal();
        }
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            stats.batches_dropped.fetch_add(1, Relaxed);
            stats.spans_dropped.fetch_add(items, Relaxed);
        }
    }
}

/// Sleeps until the probes wake a ring buffer's reader, or a timeout.
///
/// Edge-triggered epoll, not poll(): a ring buffer polls readable whenever it
/// holds a single record, so under steady load poll() returned at once and
/// the worker chased the producers a few dozen records at a time (5,000
/// loops a second at 48k requests/s), paying each loop's fixed costs and
/// pulling every record's cache lines across CPUs as it was written. Edge
/// triggering waits for an actual wakeup: the probes send one when the
/// buffer crosses a quarter full, and the timeout bounds the rest.
struct RingWaiter {
    epoll: std::os::fd::OwnedFd,
}

impl RingWaiter {
    fn new(ring_fds: &[i32]) -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall with no pointer arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by epoll_create1 and is owned by nothing else.
        let epoll = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        for &ring_fd in ring_fds {
            let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: 0 };
            // SAFETY: both fds are open for the call; ev is a valid epoll_event owned by this frame.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, ring_fd, &mut ev) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Self { epoll })
    }

    fn wait(&self, timeout: Duration) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // Rounded up: a sub-millisecond deadline must not become a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: the epoll fd is open; ev is valid for one event, owned by this frame.
        unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, ms) };
    }
}
