//! The network-flows iterator (`ebpf-probes/bpf/flows.bpf.c`): loaded from
//! its own object, run once per `flows.interval_ms`.
//!
//! Each pass makes a new iterator instance (a link and its file: two
//! syscalls) and reads it to the end; the kernel runs the program over every
//! open file of every task while userspace reads. The output is a snapshot
//! of the TCP sockets processes hold in all network namespaces.
//!
//! The same object's tp_btf programs report each connection's handshake,
//! failure, resets and last counters through a ring buffer (`drain_events`);
//! a kernel that refuses them leaves the iterator working alone.

use std::io::Read;
use std::time::{Duration, Instant};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, Iter};
use aya::{Btf, Ebpf, EbpfLoader};

use super::attach::ProbeError;

const PROGRAM: &str = "oe_flows_task_file";

/// (program, tracepoint): the connection events.
const EVENT_PROGRAMS: [(&str, &str); 4] = [
    ("oe_flows_set_state", "inet_sock_set_state"),
    ("oe_flows_destroy", "tcp_destroy_sock"),
    ("oe_flows_receive_reset", "tcp_receive_reset"),
    ("oe_flows_send_reset", "tcp_send_reset"),
];

pub struct FlowIter {
    ebpf: Ebpf,
    buf: Vec<u8>,
    /// None when the kernel refused the event programs.
    events: Option<FlowEvents>,
    event_buf: Vec<u8>,
}

struct FlowEvents {
    ring: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
}

/// What a pass cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassCost {
    pub wall: Duration,
    /// CPU time of the reading thread (the kernel runs the program in it).
    pub cpu: Duration,
    pub bytes: usize,
}

impl FlowIter {
    /// Loads (verifies) the iterator; `self_tgid`'s sockets are never reported.
    pub fn load(self_tgid: u32) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .override_global("self_tgid", &self_tgid, true)
            .load(ebpf_probes::flows_object())
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Load(Box::new(aya::EbpfError::BtfError(e))))?;
        let program = PROGRAM;
        let verify = |e| ProbeError::Verify { program, source: Box::new(e) };
        let iter: &mut Iter =
            ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?.try_into().map_err(verify)?;
        iter.load("task_file", &btf).map_err(verify)?;
        let events = match attach_events(&mut ebpf, &btf) {
            Ok(events) => Some(events),
            Err(e) => {
                log::warn!("network flows: no connection events (handshakes, failures, closes between passes): {e}");
                None
            }
        };
        Ok(Self { ebpf, buf: Vec::new(), events, event_buf: Vec::new() })
    }

    /// The connection events since the last call: whole `oe_flow_event`s.
    pub fn drain_events(&mut self) -> &[u8] {
        self.event_buf.clear();
        if let Some(events) = &mut self.events {
            while let Some(item) = events.ring.next() {
                self.event_buf.extend_from_slice(&item);
            }
        }
        &self.event_buf
    }

    /// Connection events lost to a full ring since load.
    pub fn events_lost(&self) -> u64 {
        self.events.as_ref().map_or(0, |e| e.lost.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0))
    }

    /// Runs the iterator once: its records (whole `oe_flow_sock`s), and the cost.
    pub fn pass(&mut self) -> Result<(&[u8], PassCost), String> {
        let started = Instant::now();
        let cpu_before = thread_cpu();
        let iter: &mut Iter = self
            .ebpf
            .program_mut(PROGRAM)
            .ok_or("the flows program is gone")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        let id = iter.attach().map_err(|e| format!("attaching the flows iterator: {e}"))?;
        let link = iter.take_link(id).map_err(|e| e.to_string())?;
        let mut file = link.into_file().map_err(|e| format!("creating the flows iterator: {e}"))?;
        self.buf.clear();
        file.read_to_end(&mut self.buf).map_err(|e| format!("reading the flows iterator: {e}"))?;
        let cost =
            PassCost { wall: started.elapsed(), cpu: thread_cpu().saturating_sub(cpu_before), bytes: self.buf.len() };
        Ok((&self.buf, cost))
    }

    /// Gives back the read buffer when it is much larger than the last pass needed.
    pub fn trim(&mut self) {
        if self.buf.capacity() > 4 * self.buf.len().max(1 << 16) {
            self.buf = Vec::new();
        }
    }
}

fn attach_events(ebpf: &mut Ebpf, btf: &Btf) -> Result<FlowEvents, String> {
    for (program, tracepoint) in EVENT_PROGRAMS {
        let p: &mut BtfTracePoint = ebpf
            .program_mut(program)
            .ok_or_else(|| format!("{program} missing"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        p.load(tracepoint, btf).map_err(|e| format!("{program}: {e}"))?;
        p.attach().map_err(|e| format!("{program}: {e}"))?;
    }
    let ring = ebpf.take_map("oe_flow_events").ok_or("oe_flow_events missing")?;
    let lost = ebpf.take_map("oe_flow_lost").ok_or("oe_flow_lost missing")?;
    Ok(FlowEvents {
        ring: RingBuf::try_from(ring).map_err(|e| e.to_string())?,
        lost: PerCpuArray::try_from(lost).map_err(|e| e.to_string())?,
    })
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec owned by this frame; the clock id is a constant.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
