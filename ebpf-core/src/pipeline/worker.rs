//! The one thread between the kernel and the host: waits on the ring buffer,
//! feeds the processor, hands batches to the bounded queue the host polls.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::batch::Batch;
use crate::clock::monotonic_now_ns;
use crate::events::recording::write_record;
use crate::probes::Probes;
use crate::selection::{ProcessFacts, Selector};
use crate::stats::Stats;
use crate::tls::TlsTracer;

use super::processor::Processor;

/// Longest sleep between drains. The probes wake the worker early only when
/// the ring buffer is a quarter full (wakeups cost more than events), so this
/// bounds the latency added to every event.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// How often the connection table is checked against the kernel's, when
/// that is needed at all (see the loop).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// Records handled between deadline checks under load.
const DRAIN_BUDGET: usize = 4096;

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

pub fn spawn_worker(
    mut probes: Probes,
    mut processor: Processor,
    tx: Sender<Batch>,
    stats: Arc<Stats>,
    mut recorder: Option<BufWriter<File>>,
    selector: Option<Selector>,
    mut tls: Option<TlsTracer>,
) -> std::io::Result<WorkerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let thread = std::thread::Builder::new().name("otel-ebpf-worker".into()).spawn(move || {
        let mut emit = |batch: Batch| send(&tx, batch, &stats);
        let mut next_reconcile = Instant::now() + RECONCILE_EVERY;
        let mut lost_at_reconcile = 0;
        while !stop_flag.load(Relaxed) {
            let now = Instant::now();
            let wait = processor.time_left(now).map_or(MAX_WAIT, |d| d.min(MAX_WAIT));
            wait_readable(probes.events.as_raw_fd(), wait);
            drain(&mut probes, &mut processor, &mut emit, &mut recorder, DRAIN_BUDGET);
            processor.tick(Instant::now(), monotonic_now_ns(), &mut emit);
            for (tgid, fd, conn_id) in processor.forget.drain(..) {
                probes.conns.forget(tgid, fd, conn_id);
            }
            for m in processor.take_muted() {
                probes.conns.mute(m.tgid, m.fd, m.conn_id, m.tls);
            }
            let now = Instant::now();
            for pid in processor.execs.drain(..) {
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
            let counters = probes.counters.snapshot();
            stats.events_lost.store(counters.total_lost(), Relaxed);
            stats.tls_no_socket.store(counters.tls_no_socket, Relaxed);
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
                    processor.reconcile(|tgid, fd, id| conns.tracks(tgid, fd, id), now, &mut emit);
                    lost_at_reconcile = lost;
                }
                next_reconcile = now + RECONCILE_EVERY;
            }
        }
        // Hand over what is queued and close the queue first, so pollers
        // see the end now; detaching takes ~40 ms per tracepoint (an RCU
        // grace period each, serialised by the kernel), about a second in all.
        drain(&mut probes, &mut processor, &mut emit, &mut recorder, DRAIN_BUDGET * 16);
        processor.flush(&mut emit);
        if let Some(r) = recorder.as_mut() {
            let _ = r.flush();
        }
        drop(tx);
        probes.detach();
        let counters = probes.counters.snapshot();
        stats.events_lost.store(counters.total_lost(), Relaxed);
        stats.requests_unseen.store(counters.requests_unseen(), Relaxed);
    })?;
    Ok(WorkerHandle { stop, thread })
}

fn drain(
    probes: &mut Probes,
    processor: &mut Processor,
    emit: &mut impl FnMut(Batch),
    recorder: &mut Option<BufWriter<File>>,
    budget: usize,
) {
    let now = Instant::now();
    for _ in 0..budget {
        let Some(item) = probes.events.next() else {
            break;
        };
        if let Some(r) = recorder.as_mut() {
            if let Err(e) = write_record(r, &item) {
                log::warn!("recording events stopped: {e}");
                *recorder = None;
            }
        }
        processor.handle(&item, now, emit);
    }
}

fn send(tx: &Sender<Batch>, batch: Batch, stats: &Stats) {
    let items = batch.items as u64;
    match tx.try_send(batch) {
        Ok(()) => {
            stats.spans_exported.fetch_add(items, Relaxed);
        }
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            stats.batches_dropped.fetch_add(1, Relaxed);
            stats.spans_dropped.fetch_add(items, Relaxed);
        }
    }
}

fn wait_readable(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
}
