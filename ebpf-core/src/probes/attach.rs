//! Loads the embedded probes object and attaches every program.

use std::path::Path;

use aya::maps::{Array, ArrayOfMaps, HashMap, MapData, ProgramArray};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeLink, UProbeScope};
use aya::programs::{RawTracePoint, TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use ebpf_probes::abi;

use super::kernel_maps::{CaptureRule, ConnTable, KernelCounters};
use super::pid_bits::{pid_words, PidFilter};
use super::ring_reader::{RingError, RingReader};
use super::ring_set::RingSet;

/// How a program attaches.
#[derive(Clone, Copy)]
enum Hook {
    /// tracepoint/<category>/<name>, one or more.
    TracePoint(&'static str, &'static [&'static str]),
    /// raw_tracepoint/<name>.
    RawTracePoint(&'static str),
}

/// Every program and where it attaches. Data syscalls share one exit
/// program because their sys_exit records are identical; they have no
/// enter program (the exit reads the arguments from the saved registers).
const ATTACHMENTS: &[(&str, Hook)] = &[
    ("oe_exit_accept", Hook::TracePoint("syscalls", &["sys_exit_accept"])),
    ("oe_exit_accept4", Hook::TracePoint("syscalls", &["sys_exit_accept4"])),
    ("oe_exit_connect", Hook::TracePoint("syscalls", &["sys_exit_connect"])),
    ("oe_enter_close", Hook::TracePoint("syscalls", &["sys_enter_close"])),
    ("oe_exit_dup", Hook::TracePoint("syscalls", &["sys_exit_dup2", "sys_exit_dup3"])),
    ("oe_exit_close_range", Hook::TracePoint("syscalls", &["sys_exit_close_range"])),
    (
        "oe_exit_data",
        Hook::TracePoint(
            "syscalls",
            &[
                "sys_exit_read",
                "sys_exit_readv",
                "sys_exit_recvfrom",
                "sys_exit_recvmsg",
                "sys_exit_write",
                "sys_exit_writev",
                "sys_exit_sendto",
                "sys_exit_sendmsg",
                "sys_exit_sendfile64",
            ],
        ),
    ),
    ("oe_process_fork", Hook::RawTracePoint("sched_process_fork")),
    ("oe_process_exec", Hook::TracePoint("sched", &["sched_process_exec"])),
    ("oe_process_exit", Hook::TracePoint("sched", &["sched_process_exit"])),
];

/// What the loader sets in the object before the kernel sees it.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub self_tgid: u32,
    pub capture_bytes: u32,
    pub ring_buffer_size: u32,
    pub max_connections: u32,
    /// `OE_PIDS_*`.
    pub pid_mode: u8,
    /// `OE_PORTS_*`.
    pub port_mode: u8,
    /// Decisions written before any program attaches: (tgid, traced).
    pub pid_decisions: Vec<(u32, bool)>,
    /// (port, traced), applied in order.
    pub port_decisions: Vec<(u16, bool)>,
    /// Load the OpenSSL uprobe programs (attached later, per library file, by `crate::tls`).
    pub tls: bool,
    /// Request-line prefixes that switch a connection to full capture (LLM
    /// APIs), at most `OE_MAX_CAPTURE_RULES`; longer ones are cut.
    pub full_capture_prefixes: Vec<Vec<u8>>,
}

/// The OpenSSL uprobe programs of `tls.bpf.c`: (function, entry program).
/// Each function's return gets `TLS_RETURN_PROGRAM`.
pub const TLS_ENTRY_PROGRAMS: &[(&str, &str)] = &[
    ("SSL_read", "oe_ssl_read_enter"),
    ("SSL_write", "oe_ssl_write_enter"),
    ("SSL_read_ex", "oe_ssl_read_ex_enter"),
    ("SSL_write_ex", "oe_ssl_write_ex_enter"),
    ("SSL_do_handshake", "oe_ssl_handshake_enter"),
];

/// Threads inside an OpenSSL call at once (`tls_calls`).
const TLS_CALLS_IN_FLIGHT: u32 = 16384;

/// Full capture's rest of a buffer (`data.bpf.c`), reached by tail call from
/// the data exit program and from the TLS programs respectively.
const REST_TRACEPOINT_PROGRAM: &str = "oe_rest_tp";
const REST_UPROBE_PROGRAM: &str = "oe_rest_uprobe";

/// The uretprobe of every function in `TLS_ENTRY_PROGRAMS`.
pub const TLS_RETURN_PROGRAM: &str = "oe_ssl_ret";

/// Go `crypto/tls` (`gotls.bpf.c`): `(*Conn).Read`'s entry, and a plain
/// uprobe on each of its `RET` instructions (uretprobes are unsafe on Go)...
const GO_TLS_READ_PROGRAM: &str = "oe_go_tls_read_enter";
const GO_TLS_READ_RET_PROGRAM: &str = "oe_go_tls_read_ret";
/// ...`.Write`'s entry (it emits there), and the handshakes' entries.
const GO_TLS_WRITE_PROGRAM: &str = "oe_go_tls_write_enter";
const GO_TLS_HANDSHAKE_PROGRAM: &str = "oe_go_tls_handshake";
const GO_TLS_PROGRAMS: [&str; 4] =
    [GO_TLS_READ_PROGRAM, GO_TLS_READ_RET_PROGRAM, GO_TLS_WRITE_PROGRAM, GO_TLS_HANDSHAKE_PROGRAM];

/// Goroutines inside a Go `crypto/tls` Read at once (`go_tls_reads`).
const GO_TLS_READS_IN_FLIGHT: u32 = 16384;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("eBPF program {program} is missing from the object")]
    MissingProgram { program: &'static str },
    #[error("eBPF map {map} is missing from the object")]
    MissingMap { map: &'static str },
    #[error("the kernel verifier rejected program {program}: {source}")]
    Verify {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("attaching {program} to {hook} failed: {source}")]
    Attach {
        program: &'static str,
        hook: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("writing the initial selection into eBPF map {map} failed: {source}")]
    Selection {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("entering eBPF program {program} in tail-call array {array} failed: {reason}")]
    TailCall { program: &'static str, array: &'static str, reason: String },
    #[error("creating the per-CPU ring buffers: {0}")]
    Rings(String),
    #[error("reading a ring buffer: {0}")]
    Ring(#[from] RingError),
    #[error("opening eBPF map {map} failed: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoTlsPrograms {
    NotLoaded,
    Ready,
    Failed,
}

/// The loaded, attached probes. Dropping it detaches and unloads everything.
pub struct Probes {
    // Dropping it detaches every link and unloads the programs.
    ebpf: Option<Ebpf>,
    /// One ring buffer per online CPU.
    pub events: RingSet,
    pub counters: KernelCounters,
    pub conns: ConnTable,
    pub pid_filter: PidFilter,
    /// Entries of the kernel connection table (an LRU: when it is full, new
    /// connections push old ones out without telling anyone).
    pub max_connections: u32,
    /// The OpenSSL uprobe programs loaded (verified) and ready to attach.
    tls_ready: bool,
    /// The Go `crypto/tls` ones: loaded when the first Go binary using
    /// `crypto/tls` is found, since verifying them costs about a second.
    go_tls: GoTlsPrograms,
    /// Written at start-up only, but held open: the Go programs, loaded
    /// later, refer to it by file descriptor.
    _port_filter: HashMap<MapData, u16, u8>,
    /// Their attachments (dropping one detaches it).
    tls_links: Vec<UProbeLink>,
}

impl Probes {
    pub fn load(settings: &ProbeSettings) -> Result<Self, ProbeError> {
        let rules: Vec<CaptureRule> = settings
            .full_capture_prefixes
            .iter()
            .take(abi::OE_MAX_CAPTURE_RULES as usize)
            .map(|p| CaptureRule::new(p))
            .collect();
        let cpus = RingCpus::of_this_host()?;
        let ring_size = ring_size_per_cpu(settings.ring_buffer_size, cpus.online.len());
        let mut ebpf = EbpfLoader::new()
            .override_global("self_tgid", &settings.self_tgid, true)
            .override_global("capture_bytes", &settings.capture_bytes, true)
            .override_global("pid_mode", &settings.pid_mode, true)
            .override_global("port_mode", &settings.port_mode, true)
            .override_global("wakeup_bytes", &(u64::from(ring_size) / 4), true)
            .override_global("tls_enabled", &u8::from(settings.tls), true)
            .override_global("capture_rule_count", &(rules.len() as u32), true)
            .map_max_entries("event_rings", cpus.possible)
            .map_max_entries("conns", settings.max_connections)
            .map_max_entries("not_sock", settings.max_connections)
            // TLS off: its maps shrink to nothing.
            .map_max_entries("tls_socks", if settings.tls { settings.max_connections } else { 1 })
            .map_max_entries("tls_calls", if settings.tls { TLS_CALLS_IN_FLIGHT } else { 1 })
            .map_max_entries("go_tls_reads", if settings.tls { GO_TLS_READS_IN_FLIGHT } else { 1 })
            .map_max_entries("tls_pids", if settings.tls { pid_words() } else { 1 })
            .map_max_entries("fd_pids", pid_words())
            // Tracing every process: no decision is ever stored.
            .map_max_entries("pid_bits", if settings.pid_mode == abi::OE_PIDS_ALL as u8 { 1 } else { pid_words() })
            .load(ebpf_probes::object())
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        // Selection first: once a program attaches it must see the decisions.
        let bits = take_map(&mut ebpf, "pid_bits", |m| match m {
            aya::maps::Map::Array(data) => Ok(data),
            _ => Err(aya::maps::MapError::InvalidMapType { map_type: 0 }),
        })?;
        let mut pid_filter = PidFilter::new(bits, settings.pid_mode)
            .map_err(|e| ProbeError::Map { map: "pid_bits", source: Box::new(e) })?;
        for &(tgid, traced) in &settings.pid_decisions {
            pid_filter.set(tgid, traced);
        }
        let mut ports: HashMap<MapData, u16, u8> = take_map(&mut ebpf, "port_filter", TryFrom::try_from)?;
        for &(port, traced) in &settings.port_decisions {
            let v = if traced { abi::OE_PID_TRACE } else { abi::OE_PID_SKIP } as u8;
            ports.insert(port, v, 0).map_err(|e| ProbeError::Selection { map: "port_filter", source: Box::new(e) })?;
        }

        // Borrowed, not taken: the programs still to load refer to it.
        let rules_map = ebpf.map_mut("capture_rules").ok_or(ProbeError::MissingMap { map: "capture_rules" })?;
        let mut capture_rules: Array<&mut MapData, CaptureRule> =
            Array::try_from(rules_map).map_err(|e| ProbeError::Map { map: "capture_rules", source: Box::new(e) })?;
        for (i, rule) in rules.iter().enumerate() {
            capture_rules
                .set(i as u32, rule, 0)
                .map_err(|e| ProbeError::Selection { map: "capture_rules", source: Box::new(e) })?;
        }

        // Before any program attaches: a CPU without its ring loses its events.
        let events = create_rings(&mut ebpf, &cpus.online, ring_size)?;

        // Tail-called by the data exit program, never attached: loaded and
        // entered in its array before that program attaches.
        {
            let program = REST_TRACEPOINT_PROGRAM;
            let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
            let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
            let tp: &mut TracePoint = prog.try_into().map_err(verify)?;
            tp.load().map_err(verify)?;
        }
        set_tail_call(&mut ebpf, REST_TRACEPOINT_PROGRAM, "rest_tp")?;

        for &(program, hook) in ATTACHMENTS {
            let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
            let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
            match hook {
                Hook::TracePoint(category, names) => {
                    let tp: &mut TracePoint = prog.try_into().map_err(verify)?;
                    tp.load().map_err(verify)?;
                    for name in names {
                        tp.attach(category, name).map_err(|e| ProbeError::Attach {
                            program,
                            hook: format!("tracepoint {category}:{name}"),
                            source: Box::new(e),
                        })?;
                    }
                }
                Hook::RawTracePoint(name) => {
                    let tp: &mut RawTracePoint = prog.try_into().map_err(verify)?;
                    tp.load().map_err(verify)?;
                    tp.attach(name).map_err(|e| ProbeError::Attach {
                        program,
                        hook: format!("raw tracepoint {name}"),
                        source: Box::new(e),
                    })?;
                }
            }
        }

        // TLS is an extra: a kernel that rejects the uprobe programs still
        // gets plaintext HTTP.
        let openssl = TLS_ENTRY_PROGRAMS.iter().map(|(_, p)| *p).chain([TLS_RETURN_PROGRAM, REST_UPROBE_PROGRAM]);
        let tls_ready = settings.tls
            && load_uprobe_programs(&mut ebpf, "TLS", openssl)
            && match set_tail_call(&mut ebpf, REST_UPROBE_PROGRAM, "rest_uprobe") {
                Ok(()) => true,
                Err(e) => {
                    log::warn!("TLS capture disabled: {e}");
                    false
                }
            };

        let counters = KernelCounters::new(take_map(&mut ebpf, "counters", TryFrom::try_from)?);
        let conns = ConnTable::new(take_map(&mut ebpf, "conns", TryFrom::try_from)?);
        Ok(Self {
            ebpf: Some(ebpf),
            events,
            counters,
            conns,
            pid_filter,
            max_connections: settings.max_connections,
            tls_ready,
            go_tls: GoTlsPrograms::NotLoaded,
            _port_filter: ports,
            tls_links: Vec::new(),
        })
    }

    /// True when the OpenSSL uprobe programs are loaded and can be attached.
    pub fn tls_ready(&self) -> bool {
        self.tls_ready && self.ebpf.is_some()
    }

    /// Attaches the OpenSSL probes to one function of `target` (a library or
    /// executable, as a path), at file offset `offset`: `entry_program` at its
    /// entry, `TLS_RETURN_PROGRAM` at its return. The return probe goes first:
    /// an entry without its return would leave threads "inside an SSL call".
    pub fn attach_tls_function(&mut self, target: &Path, offset: u64, entry_program: &str) -> Result<(), String> {
        let ret = self.attach_uprobe(TLS_RETURN_PROGRAM, target, offset)?;
        let entry = self.attach_uprobe(entry_program, target, offset)?; // `ret` dropped (detached) on failure
        self.tls_links.extend([ret, entry]);
        Ok(())
    }

    /// Loads (verifies) the Go `crypto/tls` programs on first use; a
    /// failure is final. They are an extra: OpenSSL's work without them.
    fn go_tls_programs(&mut self) -> Result<(), String> {
        if self.go_tls == GoTlsPrograms::NotLoaded {
            let ebpf = self.ebpf.as_mut().filter(|_| self.tls_ready).ok_or("the TLS programs are not loaded")?;
            let started = std::time::Instant::now();
            self.go_tls = if load_uprobe_programs(ebpf, "Go crypto/tls", GO_TLS_PROGRAMS) {
                log::info!("TLS: Go crypto/tls programs loaded in {:?}", started.elapsed());
                GoTlsPrograms::Ready
            } else {
                GoTlsPrograms::Failed
            };
        }
        match self.go_tls {
            GoTlsPrograms::Ready => Ok(()),
            _ => Err("the Go crypto/tls programs could not be loaded".into()),
        }
    }

    /// Attaches the Go probes to one executable, at file offsets: every RET
    /// of `crypto/tls.(*Conn).Read`, then its entry and `.Write`'s. All or
    /// nothing: a Read entry without all its RETs would leave calls in flight
    /// that never end, and either function alone gives half of each exchange.
    pub fn attach_go_tls(&mut self, target: &Path, read: u64, read_rets: &[u64], write: u64) -> Result<(), String> {
        self.go_tls_programs()?;
        // On a failure, `links` is dropped: what was attached is detached.
        let mut links = Vec::with_capacity(read_rets.len() + 2);
        for &ret in read_rets {
            links.push(self.attach_uprobe(GO_TLS_READ_RET_PROGRAM, target, ret)?);
        }
        links.push(self.attach_uprobe(GO_TLS_READ_PROGRAM, target, read)?);
        links.push(self.attach_uprobe(GO_TLS_WRITE_PROGRAM, target, write)?);
        self.tls_links.extend(links);
        Ok(())
    }

    /// Attaches the Go handshake probe at the entry of `clientHandshake` or
    /// `serverHandshake` (file offset `entry`).
    pub fn attach_go_tls_handshake(&mut self, target: &Path, entry: u64) -> Result<(), String> {
        self.go_tls_programs()?;
        let link = self.attach_uprobe(GO_TLS_HANDSHAKE_PROGRAM, target, entry)?;
        self.tls_links.push(link);
        Ok(())
    }

    /// TLS probe attachments held (OpenSSL: two per function; Go: one per
    /// entry and per RET of Read).
    pub fn tls_link_count(&self) -> usize {
        self.tls_links.len()
    }

    fn attach_uprobe(&mut self, program: &str, target: &Path, offset: u64) -> Result<UProbeLink, String> {
        if !self.tls_ready {
            return Err("the TLS programs are not loaded".into());
        }
        let ebpf = self.ebpf.as_mut().ok_or("detached")?;
        let prog: &mut UProbe = ebpf
            .program_mut(program)
            .ok_or("missing program")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        let id = prog
            .attach(UProbeAttachLocation::AbsoluteOffset(offset), target, UProbeScope::AllProcesses)
            .map_err(|e| format!("{e}: {}", error_chain(&e)))?;
        prog.take_link(id).map_err(|e| e.to_string())
    }
}

/// Loads (verifies) uprobe programs; false, with a warning, if any fails.
fn load_uprobe_programs(ebpf: &mut Ebpf, what: &str, programs: impl IntoIterator<Item = &'static str>) -> bool {
    for program in programs {
        let loaded = match ebpf.program_mut(program) {
            None => Err("missing from the object".to_string()),
            Some(prog) => match <&mut UProbe>::try_from(prog) {
                Err(e) => Err(e.to_string()),
                Ok(up) => up.load().map_err(|e| format!("{e}: {}", error_chain(&e))),
            },
        };
        if let Err(e) = loaded {
            log::warn!("{what} capture disabled: eBPF program {program} could not be loaded: {e}");
            return false;
        }
    }
    true
}

/// Enters the loaded `program` at index 0 of the program array `array`.
fn set_tail_call(ebpf: &mut Ebpf, program: &'static str, array: &'static str) -> Result<(), ProbeError> {
    let tail = |reason: String| ProbeError::TailCall { program, array, reason };
    let prog = ebpf.program(program).ok_or(ProbeError::MissingProgram { program })?;
    let fd = prog.fd().map_err(|e| tail(e.to_string()))?.try_clone().map_err(|e| tail(e.to_string()))?;
    let map = ebpf.map_mut(array).ok_or(ProbeError::MissingMap { map: array })?;
    let mut slots: ProgramArray<&mut MapData> = ProgramArray::try_from(map).map_err(|e| tail(e.to_string()))?;
    slots.set(0, &fd, 0).map_err(|e| tail(e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(&s.to_string());
        out.push_str("; ");
        src = s.source();
    }
    out
}

impl Probes {
    /// Detaches and unloads every program; the maps taken out (ring buffer,
    /// counters) stay readable so events already queued can be drained.
    pub fn detach(&mut self) {
        // Each uprobe takes the kernel ~0.1 s to remove (10 per OpenSSL
        // library, ~10 per Go binary); removals are serialised there, so
        // threads do not help.
        self.tls_links.clear();
        self.ebpf.take();
    }
}

/// The CPUs the rings are made for: the outer array has a slot per possible
/// CPU (the index `bpf_get_smp_processor_id` may return); online ones get a
/// ring.
struct RingCpus {
    possible: u32,
    online: Vec<u32>,
}

impl RingCpus {
    fn of_this_host() -> Result<Self, ProbeError> {
        let fail = |(file, e): (&str, std::io::Error)| ProbeError::Rings(format!("reading {file}: {e}"));
        let possible = aya::util::nr_cpus().map_err(fail)?;
        let online = aya::util::online_cpus().map_err(fail)?;
        let possible = u32::try_from(possible).map_err(|_| ProbeError::Rings(format!("{possible} CPUs")))?;
        if online.is_empty() || online.iter().any(|&c| c >= possible) {
            return Err(ProbeError::Rings(format!("online CPUs {online:?} outside the {possible} possible")));
        }
        Ok(Self { possible, online })
    }
}

/// `total` (the configured `ring_buffer_size`, a power of two) shared
/// between `cpus` rings: the largest power of two that fits, and at least a
/// page.
fn ring_size_per_cpu(total: u32, cpus: usize) -> u32 {
    let share = total / u32::try_from(cpus.max(1)).unwrap_or(u32::MAX);
    if share == 0 {
        PAGE_SIZE
    } else {
        (1 << share.ilog2()).max(PAGE_SIZE)
    }
}

/// The smallest ring the kernel takes (x86-64's page).
const PAGE_SIZE: u32 = 4096;

/// Creates a ring buffer of `size` bytes for each online CPU and puts it in
/// `event_rings` at the CPU's index.
fn create_rings(ebpf: &mut Ebpf, online: &[u32], size: u32) -> Result<RingSet, ProbeError> {
    let map = "event_rings";
    let outer = ebpf.map_mut(map).ok_or(ProbeError::MissingMap { map })?;
    let mut outer: ArrayOfMaps<&mut MapData> =
        ArrayOfMaps::try_from(outer).map_err(|e| ProbeError::Map { map, source: Box::new(e) })?;
    let mut readers = Vec::with_capacity(online.len());
    for &cpu in online {
        let def =
            aya_obj::Map::new_from_params(aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32, 0, 0, size, 0);
        let ring = MapData::create(def, &format!("oe_ring_{cpu}"), None)
            .map_err(|e| ProbeError::Rings(format!("CPU {cpu}, {size} bytes: {e}: {}", error_chain(&e))))?;
        outer.set(cpu, &ring, 0).map_err(|e| ProbeError::Map { map, source: Box::new(e) })?;
        readers.push(RingReader::new(ring)?);
    }
    Ok(RingSet::new(readers))
}

fn take_map<T>(
    ebpf: &mut Ebpf,
    map: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, ProbeError> {
    let m = ebpf.take_map(map).ok_or(ProbeError::MissingMap { map })?;
    convert(m).map_err(|e| ProbeError::Map { map, source: Box::new(e) })
}

#[cfg(test)]
mod tests {
    use super::ring_size_per_cpu;

    #[test]
    fn the_ring_buffer_size_is_shared_between_the_cpus() {
        assert_eq!(ring_size_per_cpu(8 << 20, 1), 8 << 20);
        assert_eq!(ring_size_per_cpu(8 << 20, 2), 4 << 20);
        // Not a power of two of CPUs: the largest power of two that fits.
        assert_eq!(ring_size_per_cpu(8 << 20, 3), 2 << 20);
        assert_eq!(ring_size_per_cpu(8 << 20, 96), 64 << 10);
        // Never below a page.
        assert_eq!(ring_size_per_cpu(16 << 10, 8), 4096);
        assert_eq!(ring_size_per_cpu(4096, 1024), 4096);
        assert_eq!(ring_size_per_cpu(4096, 0), 4096);
    }
}
