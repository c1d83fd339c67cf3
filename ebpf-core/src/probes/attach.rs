//! Loads the embedded probes object and attaches every program.

use aya::maps::{MapData, RingBuf};
use aya::programs::TracePoint;
use aya::{Ebpf, EbpfLoader};

use super::kernel_maps::{ConnTable, KernelCounters};

/// Every program and the tracepoints it serves. Data syscalls share one exit
/// program because their sys_exit records are identical.
const ATTACHMENTS: &[(&str, &str, &[&str])] = &[
    ("oe_exit_accept", "syscalls", &["sys_exit_accept"]),
    ("oe_exit_accept4", "syscalls", &["sys_exit_accept4"]),
    ("oe_enter_connect", "syscalls", &["sys_enter_connect"]),
    ("oe_exit_connect", "syscalls", &["sys_exit_connect"]),
    ("oe_enter_close", "syscalls", &["sys_enter_close"]),
    ("oe_enter_read", "syscalls", &["sys_enter_read"]),
    ("oe_enter_readv", "syscalls", &["sys_enter_readv"]),
    ("oe_enter_recvfrom", "syscalls", &["sys_enter_recvfrom"]),
    ("oe_enter_recvmsg", "syscalls", &["sys_enter_recvmsg"]),
    ("oe_enter_write", "syscalls", &["sys_enter_write"]),
    ("oe_enter_writev", "syscalls", &["sys_enter_writev"]),
    ("oe_enter_sendto", "syscalls", &["sys_enter_sendto"]),
    ("oe_enter_sendmsg", "syscalls", &["sys_enter_sendmsg"]),
    ("oe_enter_sendfile64", "syscalls", &["sys_enter_sendfile64"]),
    (
        "oe_exit_data",
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
    ("oe_process_exit", "sched", &["sched_process_exit"]),
];

/// What the loader sets in the object before the kernel sees it.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub self_tgid: u32,
    pub capture_bytes: u32,
    pub ring_buffer_size: u32,
    pub max_connections: u32,
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
    #[error("attaching {program} to tracepoint {category}:{tracepoint} failed: {source}")]
    Attach {
        program: &'static str,
        category: &'static str,
        tracepoint: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
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
}

impl Probes {
    pub fn load(settings: &ProbeSettings) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .override_global("self_tgid", &settings.self_tgid, true)
            .override_global("capture_bytes", &settings.capture_bytes, true)
            .map_max_entries("events", settings.ring_buffer_size)
            .map_max_entries("conns", settings.max_connections)
            .map_max_entries("not_sock", settings.max_connections)
            .load(ebpf_probes::object())
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        for (program, category, tracepoints) in ATTACHMENTS {
            let prog: &mut TracePoint = ebpf
                .program_mut(program)
                .ok_or(ProbeError::MissingProgram { program })?
                .try_into()
                .map_err(|e| ProbeError::Verify { program, source: Box::new(e) })?;
            prog.load().map_err(|e| ProbeError::Verify { program, source: Box::new(e) })?;
            for tracepoint in *tracepoints {
                prog.attach(category, tracepoint).map_err(|e| ProbeError::Attach {
                    program,
                    category,
                    tracepoint,
                    source: Box::new(e),
                })?;
            }
        }

        let events = take_map(&mut ebpf, "events", RingBuf::try_from)?;
        let counters = KernelCounters::new(take_map(&mut ebpf, "counters", TryFrom::try_from)?);
        let conns = ConnTable::new(take_map(&mut ebpf, "conns", TryFrom::try_from)?);
        Ok(Self { ebpf: Some(ebpf), events, counters, conns })
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
