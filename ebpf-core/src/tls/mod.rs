//! TLS plaintext: finds the OpenSSL libraries processes use and attaches the
//! uprobes of `ebpf-probes/bpf/tls.bpf.c` to each file, once, for every
//! process (a uprobe belongs to the file, so later users are covered too).
//! Go executables using `crypto/tls` get those of `gotls.bpf.c` (see `go`),
//! found the same way: they are executables of processes.
//!
//! Where libraries are found:
//! - at start: the system's (`ldconfig -p`) and every file any running
//!   process maps (`/proc/<pid>/maps`, read through `/proc/<pid>/root` so
//!   containers' own copies count), plus executables linking OpenSSL statically;
//! - after an `exec`: the new image's maps, a few times over the next seconds
//!   (interpreters load `libssl` when a module imports it, not at start);
//! - when a process is seen moving TLS records at a socket (it speaks TLS
//!   through a library not instrumented yet): its maps, at once (rate limited);
//! - every few seconds, processes never scanned (exec events can be lost).
//!
//! Failures (unreadable files, a kernel refusing a uprobe) are logged and
//! counted, never fatal: plaintext HTTP is traced regardless.

pub mod discovery;
pub mod elf;
pub mod go;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::probes::{Probes, TLS_ENTRY_PROGRAMS};
use crate::stats::Stats;

use discovery::FileId;

/// Rescans of a process after its exec, by delay: catches libraries loaded
/// on import, seconds after start.
const AFTER_EXEC: [Duration; 4] =
    [Duration::from_millis(100), Duration::from_millis(1000), Duration::from_secs(3), Duration::from_secs(10)];
/// Rescans of one process prompted by its TLS traffic, at most this often.
const SUSPECT_INTERVAL: Duration = Duration::from_secs(1);
/// Sweep of processes never scanned.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Scanning work per worker iteration, so the ring buffer keeps draining.
const TICK_BUDGET: Duration = Duration::from_millis(10);
/// Bounds on the state kept.
const MAX_QUEUED: usize = 16_384;
const MAX_FILES: usize = 4096;
/// Libraries attached at most; each costs a few perf events.
const MAX_ATTACHED: usize = 512;

/// What was decided about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    /// Uprobes attached.
    Attached,
    /// Neither OpenSSL nor Go `crypto/tls` (or not instrumentable), or not for this machine.
    NotTls,
    /// Could not be read or attached; not retried.
    Failed,
}

/// The library discovery and attachment state, owned by the worker thread.
pub struct TlsTracer {
    files: HashMap<FileId, FileState>,
    /// (due, pid) scans to do.
    queue: BinaryHeap<Reverse<(Instant, u32)>>,
    /// When each process was last scanned (pruned on sweeps).
    scanned: HashMap<u32, Instant>,
    next_sweep: Instant,
    self_pid: u32,
    stats: Arc<Stats>,
    /// Files instrumented.
    attached: usize,
    warned_limit: bool,
}

impl TlsTracer {
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            files: HashMap::new(),
            queue: BinaryHeap::new(),
            scanned: HashMap::new(),
            next_sweep: Instant::now() + SWEEP_INTERVAL,
            self_pid: std::process::id(),
            stats,
            attached: 0,
            warned_limit: false,
        }
    }

    /// Start-up: the system's libraries, then every running process, until
    /// `deadline`; processes left over are scanned by the worker soon after.
    pub fn start(&mut self, probes: &mut Probes, deadline: Instant) {
        for path in system_libraries() {
            self.consider(probes, Path::new(&path), &path, None);
        }
        let now = Instant::now();
        for pid in running_pids() {
            if Instant::now() < deadline {
                self.scan(probes, pid, now);
            } else {
                self.schedule(now, pid);
            }
        }
        log::info!("TLS: uprobes attached to {} file(s) (OpenSSL libraries, Go executables)", self.attached);
    }

    /// A process replaced its image.
    pub fn exec(&mut self, pid: u32, now: Instant) {
        for delay in AFTER_EXEC {
            self.schedule(now + delay, pid);
        }
    }

    /// A process moved TLS records at a socket: maybe a library we miss.
    /// Scanned at once, or, if it was scanned less than `SUSPECT_INTERVAL`
    /// ago, when that interval ends: a library loaded just after a scan
    /// (an `import ssl` right after start-up) must not wait for ever.
    pub fn suspect(&mut self, pid: u32, now: Instant) {
        let due = match self.scanned.get(&pid) {
            Some(t) if now.saturating_duration_since(*t) < SUSPECT_INTERVAL => *t + SUSPECT_INTERVAL,
            _ => now,
        };
        if self.queue.iter().any(|Reverse((d, p))| *p == pid && *d >= due) {
            return; // already coming
        }
        self.schedule(due, pid);
    }

    /// Scans what is due, within a small time budget.
    pub fn tick(&mut self, probes: &mut Probes, now: Instant) {
        if now >= self.next_sweep {
            self.next_sweep = now + SWEEP_INTERVAL;
            self.sweep(now);
        }
        let budget_end = Instant::now() + TICK_BUDGET;
        while let Some(Reverse((due, pid))) = self.queue.peek().copied() {
            if due > now || Instant::now() >= budget_end {
                break;
            }
            self.queue.pop();
            // Several triggers at once: one scan.
            if self.scanned.get(&pid).is_some_and(|t| *t >= due) {
                continue;
            }
            self.scan(probes, pid, now);
        }
    }

    fn schedule(&mut self, due: Instant, pid: u32) {
        if pid == self.self_pid || self.queue.len() >= MAX_QUEUED {
            return;
        }
        self.queue.push(Reverse((due, pid)));
    }

    /// Queues processes never scanned; forgets those gone.
    fn sweep(&mut self, now: Instant) {
        let live: HashSet<u32> = running_pids().collect();
        self.scanned.retain(|pid, _| live.contains(pid));
        let new: Vec<u32> = live.into_iter().filter(|pid| !self.scanned.contains_key(pid)).collect();
        for pid in new {
            self.schedule(now, pid);
        }
    }

    /// One process: the TLS libraries it maps and its executable.
    fn scan(&mut self, probes: &mut Probes, pid: u32, now: Instant) {
        if pid == self.self_pid {
            return;
        }
        self.scanned.insert(pid, now);
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return; // gone, or a kernel thread
        };
        for entry in discovery::tls_candidates(&maps) {
            if self.files.contains_key(&entry.id) {
                continue;
            }
            // The path as the process sees it, from this mount namespace.
            let host_path = PathBuf::from(format!("/proc/{pid}/root{}", entry.path));
            self.consider(probes, &host_path, entry.path, Some(entry.id));
        }
        // OpenSSL linked statically into the executable, or a Go program.
        // (Attached through the magic link: it resolves to the file itself,
        // whatever mount namespace the process lives in.)
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let shown = std::fs::read_link(&exe).map(|p| p.display().to_string()).unwrap_or_default();
        self.consider(probes, &exe, &shown, None);
    }

    /// Decides about one file (once per (device, inode)) and attaches to it.
    /// `maps_id`: the id a maps line gave, recorded too so it is not looked at again.
    fn consider(&mut self, probes: &mut Probes, path: &Path, shown: &str, maps_id: Option<FileId>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let id = FileId { dev: meta.dev(), ino: meta.ino() };
        if let Some(state) = self.files.get(&id).copied() {
            if let Some(m) = maps_id {
                self.remember(m, state);
            }
            return;
        }
        let state = self.inspect_and_attach(probes, path, shown);
        self.remember(id, state);
        if let Some(m) = maps_id {
            self.remember(m, state);
        }
    }

    fn remember(&mut self, id: FileId, state: FileState) {
        if self.files.len() >= MAX_FILES {
            // Forget what was not attached: at worst a file is inspected again.
            self.files.retain(|_, s| matches!(s, FileState::Attached));
        }
        self.files.insert(id, state);
    }

    fn inspect_and_attach(&mut self, probes: &mut Probes, path: &Path, shown: &str) -> FileState {
        let (ssl, go) = match elf::with_elf(path, |obj| (elf::ssl_offsets_of(obj), go::inspect(obj))) {
            Ok(found) => found,
            Err(elf::ElfError::NotElf | elf::ElfError::OtherArch(_)) => return FileState::NotTls,
            Err(e) => {
                log::debug!("TLS: cannot read {shown}: {e}");
                return FileState::NotTls;
            }
        };
        let ssl = Some(ssl).filter(elf::is_usable);
        let go = match go {
            Ok(go) => go,
            // Most stripped Go binaries do not speak TLS at all: not worth a line each.
            Err(e @ go::GoError::Stripped) => {
                log::debug!("TLS: {shown}: {e}");
                None
            }
            Err(e) => {
                log::info!("TLS: {shown}: {e}");
                None
            }
        };
        if ssl.is_none() && go.is_none() {
            return FileState::NotTls;
        }
        if self.attached >= MAX_ATTACHED {
            if !self.warned_limit {
                log::warn!("TLS: {MAX_ATTACHED} libraries instrumented already; {shown} and later ones are not");
                self.warned_limit = true;
            }
            return FileState::Failed;
        }
        let mut done = Vec::new();
        let mut errors = Vec::new();
        if let Some(offsets) = &ssl {
            let mut functions = 0;
            for &(function, offset) in offsets {
                match attach_function(probes, path, function, offset) {
                    Ok(()) => functions += 1,
                    Err(e) => errors.push(format!("{function}: {e}")),
                }
            }
            if functions > 0 {
                done.push(format!("OpenSSL, {functions} functions"));
            }
        }
        if let Some(go) = &go {
            if let Some(what) = attach_go(probes, path, go, &mut errors) {
                done.push(what);
            }
        }
        if !errors.is_empty() {
            self.stats.tls_attach_errors.fetch_add(errors.len() as u64, Relaxed);
            log::warn!("TLS: attaching uprobes to {shown} failed: {}", errors.join("; "));
        }
        if done.is_empty() {
            return FileState::Failed;
        }
        self.attached += 1;
        self.stats.tls_libraries.fetch_add(1, Relaxed);
        log::info!("TLS: instrumented {shown} ({})", done.join("; "));
        FileState::Attached
    }
}

/// Go `crypto/tls`: Read and Write, then the handshakes (they flag new
/// connections TLS before their first record). What was attached, if anything.
fn attach_go(probes: &mut Probes, path: &Path, go: &go::GoTls, errors: &mut Vec<String>) -> Option<String> {
    if let Err(e) = probes.attach_go_tls(path, go.read.entry, &go.read.rets, go.write) {
        errors.push(format!("Go crypto/tls Read and Write: {e}"));
        return None;
    }
    let mut handshakes = 0;
    for &entry in &go.handshakes {
        match probes.attach_go_tls_handshake(path, entry) {
            Ok(()) => handshakes += 1,
            Err(e) => errors.push(format!("Go crypto/tls handshake: {e}")),
        }
    }
    let rets = go.read.rets.len();
    Some(format!("Go {} crypto/tls: Read ({rets} RETs), Write, {handshakes} handshakes", go.version))
}

fn attach_function(probes: &mut Probes, path: &Path, function: &str, offset: u64) -> Result<(), String> {
    let entry = TLS_ENTRY_PROGRAMS.iter().find(|(f, _)| *f == function).map(|(_, p)| *p).ok_or("no program")?;
    probes.attach_tls_function(path, offset, entry)
}

/// The system's TLS libraries, from the loader cache.
fn system_libraries() -> Vec<String> {
    for ldconfig in ["/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig"] {
        if !Path::new(ldconfig).exists() {
            continue;
        }
        match std::process::Command::new(ldconfig).arg("-p").stdin(std::process::Stdio::null()).output() {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                return discovery::ldconfig_candidates(&text).into_iter().map(String::from).collect();
            }
            Ok(out) => log::debug!("TLS: {ldconfig} -p failed: {}", out.status),
            Err(e) => log::debug!("TLS: cannot run {ldconfig}: {e}"),
        }
    }
    Vec::new()
}

/// Every process id in /proc.
fn running_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc").into_iter().flatten().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

#[cfg(test)]
mod suspect_tests {
    use super::*;

    #[test]
    fn a_suspect_scanned_just_before_is_rescanned_when_the_interval_ends() {
        let mut tls = TlsTracer::new(Arc::new(Stats::default()));
        let t0 = Instant::now();
        tls.scanned.insert(42, t0);
        tls.suspect(42, t0 + Duration::from_millis(300));
        tls.suspect(42, t0 + Duration::from_millis(400)); // a repeat: queued once
        let queued: Vec<(Instant, u32)> = tls.queue.iter().map(|Reverse(e)| *e).collect();
        assert_eq!(queued, vec![(t0 + SUSPECT_INTERVAL, 42)]);
        // Long after the last scan: at once.
        tls.suspect(7, t0);
        assert!(tls.queue.iter().any(|Reverse((d, p))| *p == 7 && *d == t0));
    }
}
