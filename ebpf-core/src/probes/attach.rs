//! Loads the embedded probes object and attaches every program.

use std::io::Read;
use std::path::{Path, PathBuf};

use aya::maps::{Array, ArrayOfMaps, HashMap, MapData, ProgramArray};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeLink, UProbeScope};
use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSock, Iter, RawTracePoint, TracePoint, UProbe};
use aya::{Btf, Ebpf, EbpfLoader};
use ebpf_probes::abi;

use crate::config::DataPathChoice;

use super::kernel_maps::{CaptureRule, ConnTable, KernelCounters, UdpFlowTable};
use super::pid_bits::{pid_words, PidFilter};
use super::ring_reader::{RingError, RingReader};
use super::ring_set::RingSet;

/// How a program attaches.
#[derive(Clone, Copy)]
enum Hook {
    /// tracepoint/<category>/<name>, one or more (perf-event tracepoints).
    Perf(&'static str, &'static [&'static str]),
    /// raw_tracepoint/<name>.
    Raw(&'static str),
    /// tp_btf/<name>: a raw tracepoint with typed arguments.
    Btf(&'static str),
}

/// Where the payload comes from (`data_path` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPath {
    /// `tp_btf/sock_send_length` and `sock_recv_length` (Linux 6.3+): no
    /// syscall tracepoint attached; TCP and UDP.
    Socket,
    /// The exits of the data syscalls (Linux 5.15 to 6.2): TCP only.
    Syscall,
}

impl DataPath {
    pub fn name(self) -> &'static str {
        match self {
            DataPath::Socket => "socket",
            DataPath::Syscall => "syscall",
        }
    }
}

/// The tracepoint the socket path needs, as the kernel's BTF names it.
const SOCKET_PATH_PROBE: &str = "btf_trace_sock_send_length";

/// Picks the data path: `auto` takes the socket path where the kernel has
/// its tracepoints.
fn choose_data_path(choice: DataPathChoice, btf: &Btf) -> Result<DataPath, ProbeError> {
    let socket_layer = btf.id_by_type_name_kind(SOCKET_PATH_PROBE, aya_obj::btf::BtfKind::Typedef).is_ok();
    match choice {
        DataPathChoice::Auto if socket_layer => Ok(DataPath::Socket),
        DataPathChoice::Auto | DataPathChoice::Syscall => Ok(DataPath::Syscall),
        DataPathChoice::Socket if socket_layer => Ok(DataPath::Socket),
        DataPathChoice::Socket => Err(ProbeError::NoSocketPath),
    }
}

/// Programs of both data paths, attached in this order. The state machine
/// first: a socket that opens from then on gets its cookie and role there,
/// and the start-up pass over older ones (`ITER_TCP_PROGRAM`) follows.
const LIFECYCLE: &[(&str, Hook)] = &[
    ("oe_sock_state", Hook::Btf("inet_sock_set_state")),
    ("oe_tcp_destroy", Hook::Btf("tcp_destroy_sock")),
    ("oe_process_fork", Hook::Raw("sched_process_fork")),
    ("oe_process_exec", Hook::Perf("sched", &["sched_process_exec"])),
    ("oe_process_exit", Hook::Perf("sched", &["sched_process_exit"])),
];

/// The socket path's data programs.
const SOCKET_DATA: &[(&str, Hook)] =
    &[("oe_sock_send", Hook::Btf("sock_send_length")), ("oe_sock_recv", Hook::Btf("sock_recv_length"))];

/// The syscall path's: one exit program for every data syscall (their
/// sys_exit records are identical; the arguments come from the registers
/// saved at entry, so there is no enter program).
const SYSCALL_DATA: &[(&str, Hook)] = &[(
    "oe_exit_data",
    Hook::Perf(
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
)];

/// Run once at start-up over the host's TCP sockets.
const ITER_TCP_PROGRAM: &str = "oe_iter_tcp";
/// The end of UDP sockets, on the root of the cgroup v2 hierarchy.
const SOCK_RELEASE_PROGRAM: &str = "oe_sock_release";

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
    pub data_path: DataPathChoice,
    /// Count UDP datagrams per socket and peer (`flows.enabled` and `flows.udp`).
    pub udp_flows: bool,
}

/// Sockets × peers the kernel counts UDP datagrams for between two flows
/// passes (`udp_flows`; each pass deletes the idle ones). Preallocated:
/// about 2 MiB of kernel memory.
const UDP_FLOW_ENTRIES: u32 = 16384;

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
/// the socket path's programs, the syscall path's, and the TLS programs.
const REST_BTF_PROGRAM: &str = "oe_rest_btf";
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
    #[error("reading the kernel's BTF (/sys/kernel/btf/vmlinux) failed: {0}")]
    Btf(#[source] Box<aya::BtfError>),
    #[error(
        "data_path \"socket\" needs the socket-layer tracepoints sock_send_length and sock_recv_length \
         (Linux 6.3 or newer), which this kernel lacks; use \"auto\" or \"syscall\""
    )]
    NoSocketPath,
    #[error("the start-up pass over open TCP sockets (iter/tcp) failed: {0}")]
    Iter(String),
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
    /// The data path attached.
    pub data_path: DataPath,
    /// The kernel's UDP flow counters (socket path only: the syscall path
    /// has no program that sees UDP).
    pub udp_flows: UdpFlowTable,
    /// Where UDP sockets' ends are seen (the cgroup v2 root the release
    /// program is attached to); None: UDP connections end by idle expiry.
    pub udp_release_cgroup: Option<PathBuf>,
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
        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Btf(Box::new(e)))?;
        let data_path = choose_data_path(settings.data_path, &btf)?;
        // The syscall path has no program that sees UDP.
        let udp_flows = settings.udp_flows && data_path == DataPath::Socket;
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
            .override_global("udp_flows_enabled", &u8::from(udp_flows), true)
            .map_max_entries("event_rings", cpus.possible)
            .map_max_entries("conns", settings.max_connections)
            .map_max_entries("udp_flows", if udp_flows { UDP_FLOW_ENTRIES } else { 1 })
            // TLS off: its maps shrink to nothing.
            .map_max_entries("tls_socks", if settings.tls { settings.max_connections } else { 1 })
            .map_max_entries("tls_calls", if settings.tls { TLS_CALLS_IN_FLIGHT } else { 1 })
            .map_max_entries("go_tls_reads", if settings.tls { GO_TLS_READS_IN_FLIGHT } else { 1 })
            .map_max_entries("tls_pids", if settings.tls { pid_words() } else { 1 })
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

        // Tail-called by the data programs, never attached: loaded and
        // entered in its array before they attach.
        match data_path {
            DataPath::Socket => {
                let program = REST_BTF_PROGRAM;
                let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
                let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
                let tp: &mut BtfTracePoint = prog.try_into().map_err(verify)?;
                tp.load("sock_send_length", &btf).map_err(verify)?;
                set_tail_call(&mut ebpf, REST_BTF_PROGRAM, "rest_btf")?;
            }
            DataPath::Syscall => {
                let program = REST_TRACEPOINT_PROGRAM;
                let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
                let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
                let tp: &mut TracePoint = prog.try_into().map_err(verify)?;
                tp.load().map_err(verify)?;
                set_tail_call(&mut ebpf, REST_TRACEPOINT_PROGRAM, "rest_tp")?;
            }
        }

        attach_all(&mut ebpf, &btf, LIFECYCLE)?;
        run_iter_tcp(&mut ebpf, &btf)?;
        let udp_release_cgroup = match data_path {
            DataPath::Socket => attach_sock_release(&mut ebpf),
            DataPath::Syscall => None,
        };
        let data_programs = match data_path {
            DataPath::Socket => SOCKET_DATA,
            DataPath::Syscall => SYSCALL_DATA,
        };
        attach_all(&mut ebpf, &btf, data_programs)?;
        log::info!("data path: {}", data_path.name());

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
        let udp_flows = UdpFlowTable::new(take_map(&mut ebpf, "udp_flows", |m| match m {
            aya::maps::Map::HashMap(data) => Ok(data),
            _ => Err(aya::maps::MapError::InvalidMapType { map_type: 0 }),
        })?);
        Ok(Self {
            udp_flows,
            ebpf: Some(ebpf),
            events,
            counters,
            conns,
            pid_filter,
            max_connections: settings.max_connections,
            data_path,
            udp_release_cgroup,
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

/// Loads and attaches each program where its hook says, in order.
fn attach_all(ebpf: &mut Ebpf, btf: &Btf, programs: &[(&'static str, Hook)]) -> Result<(), ProbeError> {
    for &(program, hook) in programs {
        let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
        let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
        let attach = |hook: String| move |e| ProbeError::Attach { program, hook, source: Box::new(e) };
        match hook {
            Hook::Perf(category, names) => {
                let tp: &mut TracePoint = prog.try_into().map_err(verify)?;
                tp.load().map_err(verify)?;
                for name in names {
                    tp.attach(category, name).map_err(attach(format!("tracepoint {category}:{name}")))?;
                }
            }
            Hook::Raw(name) => {
                let tp: &mut RawTracePoint = prog.try_into().map_err(verify)?;
                tp.load().map_err(verify)?;
                tp.attach(name).map_err(attach(format!("raw tracepoint {name}")))?;
            }
            Hook::Btf(name) => {
                let tp: &mut BtfTracePoint = prog.try_into().map_err(verify)?;
                tp.load(name, btf).map_err(verify)?;
                tp.attach().map_err(attach(format!("BTF tracepoint {name}")))?;
            }
        }
    }
    Ok(())
}

/// One pass of `ITER_TCP_PROGRAM` over the host's TCP sockets: the ports
/// listening now, and cookies for the rest (see conn.bpf.c).
fn run_iter_tcp(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), ProbeError> {
    let program = ITER_TCP_PROGRAM;
    let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
    let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
    let iter: &mut Iter = prog.try_into().map_err(verify)?;
    iter.load("tcp", btf).map_err(verify)?;
    let fail = |e: &dyn std::error::Error| ProbeError::Iter(format!("{e}: {}", error_chain(e)));
    let link = iter.attach().map_err(|e| fail(&e))?;
    let link = iter.take_link(link).map_err(|e| fail(&e))?;
    let mut file = link.into_file().map_err(|e| fail(&e))?;
    // The program prints nothing: reading to the end runs it over every socket.
    let mut sink = Vec::new();
    file.read_to_end(&mut sink).map_err(|e| fail(&e))?;
    Ok(())
}

/// Attaches the UDP end program to the root of the cgroup v2 hierarchy, so
/// that it runs for every socket of the host. Best effort: without it (no
/// cgroup v2, or a cgroup namespace hiding the root) UDP connections end by
/// idle expiry; logged.
fn attach_sock_release(ebpf: &mut Ebpf) -> Option<PathBuf> {
    let program = SOCK_RELEASE_PROGRAM;
    let Some(root) = cgroup2_root() else {
        log::warn!("no cgroup v2 hierarchy mounted: UDP connections end only by idle expiry");
        return None;
    };
    let attached = (|| -> Result<(), String> {
        let prog = ebpf.program_mut(program).ok_or("missing from the object")?;
        let release: &mut CgroupSock = prog.try_into().map_err(|e: aya::programs::ProgramError| e.to_string())?;
        release.load().map_err(|e| format!("{e}: {}", error_chain(&e)))?;
        let dir = std::fs::File::open(&root).map_err(|e| e.to_string())?;
        // Through a BPF link (5.7+, which aya uses) the kernel takes no
        // flags and always lets other programs run beside ours: `Single`
        // passes none (AllowMultiple's flag is EINVAL there).
        release.attach(&dir, CgroupAttachMode::Single).map_err(|e| format!("{e}: {}", error_chain(&e)))?;
        Ok(())
    })();
    match attached {
        Ok(()) => Some(root),
        Err(e) => {
            log::warn!("{program} on {}: {e}: UDP connections end only by idle expiry", root.display());
            None
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted (its root, as this process's
/// mount namespace shows it): `/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
fn cgroup2_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup2_root_in(&mountinfo)
}

fn cgroup2_root_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let (fields, rest) = line.split_once(" - ")?;
        let fields: Vec<&str> = fields.split(' ').collect();
        let fstype = rest.split(' ').next()?;
        let mount_point = fields.get(4)?;
        (fstype == "cgroup2" && fields.get(3) == Some(&"/")).then(|| PathBuf::from(unescape_mount(mount_point)))
    })
}

/// Mount points escape space, tab, newline and backslash as octal (`\040`).
fn unescape_mount(path: &str) -> String {
    let mut out = Vec::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    use super::{cgroup2_root_in, ring_size_per_cpu};
    use std::path::PathBuf;

    #[test]
    fn the_cgroup2_root_is_found_in_mountinfo() {
        // A hybrid host (v1 controllers, v2 at .../unified), as here.
        let hybrid = "\
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
37 35 0:32 / /sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu";
        assert_eq!(cgroup2_root_in(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        // Unified; a bind mount of a sub-cgroup first is not the root.
        let unified = "\
40 30 0:26 /kubepods/pod1 /mnt/pod rw - cgroup2 cgroup2 rw
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(cgroup2_root_in(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        // Optional fields before the separator; an escaped space in the path.
        let odd = "50 1 0:40 / /run/my\\040cgroup rw shared:1 master:2 - cgroup2 none rw";
        assert_eq!(cgroup2_root_in(odd), Some(PathBuf::from("/run/my cgroup")));
        assert_eq!(cgroup2_root_in("36 35 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu"), None);
        assert_eq!(cgroup2_root_in(""), None);
    }

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
