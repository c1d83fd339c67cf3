//! The public face of the library: one receiver instance with a
//! create → start → poll* → stop lifecycle, safe to share between threads.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use crate::batch::{Batch, ReadySignal};
use crate::config::{Config, ConfigError};
use crate::pipeline::{spawn_worker, FlowPasses, Outbox, Processor, WorkerHandle};
use crate::probes::{preflight, CaptureRule, FlowIter, PreflightError, ProbeError, ProbeSettings, Probes};
use crate::selection::{PidMode, PortMode, ProcessFacts, Selector};
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::TlsTracer;
use ebpf_probes::abi;

/// Longest `start` spends finding TLS libraries in running processes.
const TLS_START_BUDGET: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start: {0}")]
    Preflight(#[from] PreflightError),
    #[error("cannot start: {0}")]
    Probe(#[from] ProbeError),
    #[error("cannot start the worker thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("{0}")]
    State(&'static str),
    #[error("cannot create the event recording {0}: {1}")]
    Record(String, #[source] std::io::Error),
}

impl Error {
    /// True when the call was wrong for the instance's state (not a failure of the host).
    pub fn is_state(&self) -> bool {
        matches!(self, Error::State(_))
    }
}

/// What `poll` found.
#[derive(Debug)]
pub enum Poll {
    Batch(Batch),
    Timeout,
    /// Stopped and drained: no batch will ever come.
    Stopped,
    NotStarted,
}

enum State {
    Created,
    Running {
        rx: Receiver<Batch>,
        worker: WorkerHandle,
    },
    /// `rx` still holds the batches cut while stopping.
    Stopped {
        rx: Option<Receiver<Batch>>,
    },
    /// Transient, while start or stop runs.
    Busy,
}

pub struct Instance {
    config: Config,
    state: Mutex<State>,
    stats: Arc<Stats>,
    ready: Arc<ReadySignal>,
}

impl Instance {
    pub fn new(config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::validated(config))
    }

    pub fn from_json(json: &str) -> Result<Self, Error> {
        Ok(Self::validated(Config::from_json(json)?))
    }

    fn validated(config: Config) -> Self {
        Self { config, state: Mutex::new(State::Created), stats: Arc::new(Stats::default()), ready: Arc::default() }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Checks privileges and kernel, loads and attaches the probes, starts the worker.
    pub fn start(&self) -> Result<(), Error> {
        {
            let mut state = self.state.lock();
            match *state {
                State::Created => *state = State::Busy,
                State::Running { .. } | State::Busy => return Err(Error::State("already started")),
                State::Stopped { .. } => {
                    return Err(Error::State("stopped instances cannot be restarted; create a new one"))
                }
            }
        }
        let started = self.start_inner();
        let mut state = self.state.lock();
        match started {
            Ok((rx, worker)) => {
                *state = State::Running { rx, worker };
                Ok(())
            }
            Err(e) => {
                *state = State::Created;
                Err(e)
            }
        }
    }

    fn start_inner(&self) -> Result<(Receiver<Batch>, WorkerHandle), Error> {
        preflight()?;
        let selector = Selector::new(&self.config.selection)
            .map_err(|e| ConfigError::one(format!("selection.{}", e.field()), e.to_string()))?;
        let pid_mode = selector.pid_mode();
        // Processes running now are decided before the probes attach; later
        // ones on exec (or inherit their parent's decision on fork).
        let pid_decisions = match pid_mode {
            PidMode::All => Vec::new(),
            _ => running_pids()
                .map(|pid| (pid, selector.decide(&ProcessFacts::read(pid, selector.needs_otel_check()))))
                .collect(),
        };
        let probes = Probes::load(&ProbeSettings {
            self_tgid: std::process::id(),
            capture_bytes: self.config.capture_size,
            ring_buffer_size: self.config.ring_buffer_size,
            max_connections: self.config.max_connections,
            pid_mode: match pid_mode {
                PidMode::All => abi::OE_PIDS_ALL,
                PidMode::Exclude => abi::OE_PIDS_EXCLUDE,
                PidMode::Include => abi::OE_PIDS_INCLUDE,
            } as u8,
            port_mode: match selector.port_mode() {
                PortMode::All => abi::OE_PORTS_ALL,
                PortMode::Exclude => abi::OE_PORTS_EXCLUDE,
                PortMode::Include => abi::OE_PORTS_INCLUDE,
            } as u8,
            pid_decisions,
            port_decisions: selector.port_decisions(),
            tls: self.config.tls.enabled,
            full_capture_prefixes: full_capture_prefixes(&self.config.genai),
            data_path: self.config.data_path,
            udp_flows: self.config.metrics.enabled && self.config.flows.enabled && self.config.flows.udp,
        })?;
        let mut probes = probes;
        let tls = probes.tls_ready().then(|| {
            let mut tls = TlsTracer::new(self.stats.clone());
            // Libraries in use now are instrumented before start returns (the
            // rest of a large host soon after, by the worker).
            tls.start(&mut probes, Instant::now() + TLS_START_BUDGET);
            tls
        });
        let (tx, rx) = crossbeam_channel::bounded(self.config.queue_size);
        let processor = Processor::new(&self.config, self.stats.clone());
        let recorder = match &self.config.record_events {
            Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| Error::Record(path.clone(), e))?)),
            None => None,
        };
        let selector = (pid_mode != PidMode::All).then_some(selector);
        let out = Outbox { tx, ready: self.ready.clone() };
        // Flows are an extra: a kernel that refuses the iterator still traces.
        let flow_passes = processor.flows_enabled().then(|| self.first_flow_pass()).flatten();
        let worker = spawn_worker(probes, processor, out, self.stats.clone(), recorder, selector, tls, flow_passes)
            .map_err(Error::Thread)?;
        Ok((rx, worker))
    }

    /// Loads the flows iterator and runs its first pass now, so that the
    /// sockets open when `start` returns are the baseline. None (with a
    /// warning) when the kernel refuses it: flows are an extra.
    fn first_flow_pass(&self) -> Option<FlowPasses> {
        let mut iter =
            FlowIter::load(std::process::id()).map_err(|e| log::warn!("network flows disabled: {e}")).ok()?;
        let first_ns = crate::clock::monotonic_now_ns();
        let first = match iter.pass() {
            Ok((records, _)) => records.to_vec(),
            Err(e) => {
                log::warn!("network flows disabled: {e}");
                return None;
            }
        };
        Some(FlowPasses { iter, interval: self.config.flows.interval(), first, first_ns })
    }

    /// Waits up to `timeout` for the next batch. Several threads may poll.
    pub fn poll(&self, timeout: Duration) -> Poll {
        let rx = match &*self.state.lock() {
            State::Created => return Poll::NotStarted,
            State::Running { rx, .. } | State::Stopped { rx: Some(rx) } => rx.clone(),
            State::Stopped { rx: None } => return Poll::Stopped,
            // Starting or stopping: nothing yet; wait a little rather than
            // have callers spin through a stop that takes a while.
            State::Busy => {
                std::thread::sleep(timeout.min(Duration::from_millis(10)));
                return Poll::Timeout;
            }
        };
        match rx.recv_timeout(timeout) {
            Ok(batch) => Poll::Batch(batch),
            Err(RecvTimeoutError::Timeout) => Poll::Timeout,
            Err(RecvTimeoutError::Disconnected) => Poll::Stopped,
        }
    }

    /// A file descriptor that becomes readable when `poll` may have
    /// something new: a batch, or the end after `stop`. Read it (8 bytes) to
    /// clear it, then `poll` with a zero timeout until `Poll::Timeout`. The
    /// instance owns it (closed when the instance is dropped).
    pub fn ready_fd(&self) -> std::io::Result<std::os::fd::RawFd> {
        self.ready.fd()
    }

    /// Flushes pending telemetry, detaches the probes and returns when they
    /// are gone. Pollers drain the last batches and see `Stopped` as soon as
    /// the flush is done, without waiting for the detach. Idempotent; fine
    /// before start.
    pub fn stop(&self) {
        let worker = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, State::Busy) {
                State::Running { rx, worker } => {
                    *state = State::Stopped { rx: Some(rx) };
                    Some(worker)
                }
                State::Created => {
                    *state = State::Stopped { rx: None };
                    self.ready.signal();
                    None
                }
                other => {
                    *state = other;
                    None
                }
            }
        };
        if let Some(worker) = worker {
            worker.stop();
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

/// Every process id in /proc.
fn running_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc").into_iter().flatten().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Request lines the kernel switches to full capture on: the LLM API
/// endpoints' literal prefixes (their bodies outgrow `capture_size`).
fn full_capture_prefixes(config: &crate::config::GenAiConfig) -> Vec<Vec<u8>> {
    if !config.enabled {
        return Vec::new();
    }
    match crate::protocol::genai::Catalog::new(config) {
        Ok(catalog) => catalog.kernel_prefixes(abi::OE_MAX_CAPTURE_RULES as usize, CaptureRule::MAX_LEN),
        Err(_) => Vec::new(), // validated with the config
    }
}
