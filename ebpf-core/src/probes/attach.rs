//! Loads the embedded probes object and attaches every program.

use aya::maps::{HashMap, MapData, RingBuf};
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use ebpf_probes::abi;

use super::kernel_maps::{ConnTable, KernelCounters, PidFilter};

/// How a program attaches.
#[derive(Clone, Copy)]
enum Hook {
    /// tracepoint/<category>/<name>, one or more.
    TracePoint(&'static str, &'static [&'static str]),
    /// raw_tracepoint/<name>.
    RawTracePoint(&'static str),
}

/// Every program and where it attaches. Data syscalls share one exit
/// program because their sys_exit records are identical.
const ATTACHMENTS: &[(&str, Hook)] = &[
    ("oe_exit_accept", Hook::TracePoint("syscalls", &["sys_exit_accept"])),
    ("oe_exit_accept4", Hook::TracePoint("syscalls", &["sys_exit_accept4"])),
    ("oe_enter_connect", Hook::TracePoint("syscalls", &["sys_enter_connect"])),
    ("oe_exit_connect", Hook::TracePoint("syscalls", &["sys_exit_connect"])),
    ("oe_enter_close", Hook::TracePoint("syscalls", &["sys_enter_close"])),
    ("oe_enter_read", Hook::TracePoint("syscalls", &["sys_enter_read"])),
    ("oe_enter_readv", Hook::TracePoint("syscalls", &["sys_enter_readv"])),
    ("oe_enter_recvfrom", Hook::TracePoint("syscalls", &["sys_enter_recvfrom"])),
    ("oe_enter_recvmsg", Hook::TracePoint("syscalls", &["sys_enter_recvmsg"])),
    ("oe_enter_write", Hook::TracePoint("syscalls", &["sys_enter_write"])),
    ("oe_enter_writev", Hook::TracePoint("syscalls", &["sys_enter_writev"])),
    ("oe_enter_sendto", Hook::TracePoint("syscalls", &["sys_enter_sendto"])),
    ("oe_enter_sendmsg", Hook::TracePoint("syscalls", &["sys_enter_sendmsg"])),
    ("oe_enter_sendfile64", Hook::TracePoint("syscalls", &["sys_enter_sendfile64"])),
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
}

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
    #[error("opening eBPF map {map} failed: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// The loaded, attached probes. Dropping it detaches and unloads everything.
pub struct Probes {
    // Dropping it detaches every link and unloads the programs.
    ebpf: Option<Ebpf>,
    pub events: RingBuf<MapData>,
    pub counters: KernelCounters,
    pub conns: ConnTable,
    pub pid_filter: PidFilter,
}

impl Probes {
    pub fn load(settings: &ProbeSettings) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .override_global("self_tgid", &settings.self_tgid, true)
            .override_global("capture_bytes", &settings.capture_bytes, true)
            .override_global("pid_mode", &settings.pid_mode, true)
            .override_global("port_mode", &settings.port_mode, true)
            .override_global("wakeup_bytes", &(u64::from(settings.ring_buffer_size) / 4), true)
            .map_max_entries("events", settings.ring_buffer_size)
            .map_max_entries("conns", settings.max_connections)
            .map_max_entries("not_sock", settings.max_connections)
            .load(ebpf_probes::object())
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        // Selection first: once a program attaches it must see the decisions.
        let mut pid_filter = PidFilter::new(take_map(&mut ebpf, "pid_filter", TryFrom::try_from)?);
        for &(tgid, traced) in &settings.pid_decisions {
            pid_filter.set(tgid, traced);
        }
        let mut ports: HashMap<MapData, u16, u8> = take_map(&mut ebpf, "port_filter", TryFrom::try_from)?;
        for &(port, traced) in &settings.port_decisions {
            let v = if traced { abi::OE_PID_TRACE } else { abi::OE_PID_SKIP } as u8;
            ports.insert(port, v, 0).map_err(|e| ProbeError::Selection { map: "port_filter", source: Box::new(e) })?;
        }

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

        let events = take_map(&mut ebpf, "events", RingBuf::try_from)?;
        let counters = KernelCounters::new(take_map(&mut ebpf, "counters", TryFrom::try_from)?);
        let conns = ConnTable::new(take_map(&mut ebpf, "conns", TryFrom::try_from)?);
        // The port table is only written at start-up; the kernel keeps its own reference.
        drop(ports);
        Ok(Self { ebpf: Some(ebpf), events, counters, conns, pid_filter })
    }
}

impl Probes {
    /// Detaches and unloads every program; the maps taken out (ring buffer,
    /// counters) stay readable so events already queued can be drained.
    pub fn detach(&mut self) {
        self.ebpf.take();
    }
}

fn take_map<T>(
    ebpf: &mut Ebpf,
    map: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, ProbeError> {
    let m = ebpf.take_map(map).ok_or(ProbeError::MissingMap { map })?;
    convert(m).map_err(|e| ProbeError::Map { map, source: Box::new(e) })
}
