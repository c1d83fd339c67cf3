//! Typed views of the maps userspace reads or writes.

use aya::maps::{HashMap, MapData, PerCpuArray};
use ebpf_probes::abi::{self, oe_capture_rule, oe_conn_info};

/// `struct oe_conn_info` as an aya map value.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct ConnInfo(pub oe_conn_info);

/// `struct oe_capture_rule` as an aya map value.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct CaptureRule(pub oe_capture_rule);

impl CaptureRule {
    /// Longest prefix one rule can hold.
    pub const MAX_LEN: usize = abi::OE_CAPTURE_RULE_WORDS as usize * 8;

    /// The rule matching payloads that start with `prefix` (cut to `MAX_LEN`).
    /// Words are compared as the kernel loads them: native byte order.
    pub fn new(prefix: &[u8]) -> Self {
        let prefix = &prefix[..prefix.len().min(Self::MAX_LEN)];
        let mut rule = oe_capture_rule { word: [0; 8], mask: [0; 8], len: prefix.len() as u32, _pad: 0 };
        for (w, (word, mask)) in rule.word.iter_mut().zip(rule.mask.iter_mut()).enumerate() {
            let (mut bytes, mut mask_bytes) = ([0u8; 8], [0u8; 8]);
            for (i, (b, m)) in bytes.iter_mut().zip(mask_bytes.iter_mut()).enumerate() {
                if let Some(&p) = prefix.get(w * 8 + i) {
                    *b = p;
                    *m = 0xff;
                }
            }
            *word = u64::from_ne_bytes(bytes);
            *mask = u64::from_ne_bytes(mask_bytes);
        }
        Self(rule)
    }
}

// SAFETY: as below: a bindgen-generated #[repr(C)] struct of integers, no implicit padding.
unsafe impl aya::Pod for CaptureRule {}

// SAFETY: wraps a bindgen-generated #[repr(C)] struct of plain integers,
// valid for any bit pattern, with no implicit padding (see events.h).
unsafe impl aya::Pod for ConnInfo {}

/// The kernel connection table, by connection id (the socket's cookie).
pub struct ConnTable(HashMap<MapData, u64, ConnInfo>);

impl ConnTable {
    pub(crate) fn new(map: HashMap<MapData, u64, ConnInfo>) -> Self {
        Self(map)
    }

    /// Stops payload capture for connection `conn_id`: of its socket
    /// (`tls` false) or of its TLS plaintext (`tls` true).
    pub fn mute(&mut self, conn_id: u64, tls: bool) {
        let flag = if tls { abi::OE_CONN_F_TLS_MUTED } else { abi::OE_CONN_F_MUTED };
        self.set_flag(conn_id, flag);
    }

    /// Captures up to `OE_MAX_CAPTURE` bytes of each read/write of
    /// connection `conn_id`, socket and TLS plaintext alike (its parser
    /// asked for `Capture::Wide`).
    pub fn widen(&mut self, conn_id: u64) {
        self.set_flag(conn_id, abi::OE_CONN_F_WIDE);
    }

    fn set_flag(&mut self, conn_id: u64, flag: u32) {
        if let Ok(ConnInfo(mut info)) = self.0.get(&conn_id, 0) {
            // Already set: no write. The write puts back the whole entry,
            // with its event sequence number as read: one the kernel
            // advanced in between goes back, which the tracker takes for
            // lost events.
            if u32::from(info.flags) & flag == 0 {
                // The kernel may set one of its flags (OE_CONN_F_TLS, _FULL,
                // _LAST_EGRESS) between this read and the write below; losing
                // it is harmless: the next call that needs it sets it again.
                info.flags |= flag as u16;
                // BPF_EXIST: never resurrect an entry closed meanwhile.
                let _ = self.0.insert(conn_id, ConnInfo(info), 2);
            }
        }
    }

    /// Does the kernel still know connection `conn_id` as announced?
    pub fn tracks(&self, conn_id: u64) -> bool {
        matches!(self.0.get(&conn_id, 0), Ok(ConnInfo(info)) if info.flags & abi::OE_CONN_F_ANNOUNCED as u16 != 0)
    }

    /// Forgets connection `conn_id`: if its socket is used again, the kernel
    /// announces it again (with the process using it then). Already gone
    /// (closed, LRU eviction) is fine.
    pub fn forget(&mut self, conn_id: u64) {
        let _ = self.0.remove(&conn_id);
    }
}

/// Per-CPU drop counters, summed.
pub struct KernelCounters(PerCpuArray<MapData, u64>);

/// Sums of the kernel's counters (indexes OE_CNT_* in events.h).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub ringbuf_full: u64,
    pub conn_table_full: u64,
    pub io_table_full: u64,
    /// TLS plaintext dropped because its socket was unknown (not in `total_lost`:
    /// it is not a table or buffer limit, see `OE_CNT_TLS_NO_SOCKET`).
    pub tls_no_socket: u64,
    /// Lost events that began a request (`OE_CNT_REQUEST_STARTS_LOST`).
    pub request_starts_lost: u64,
    /// Socket reads and writes made through io_uring, not captured (`OE_CNT_IO_URING`).
    pub io_uring: u64,
    /// UDP datagrams not counted: the UDP flow table was full (`OE_CNT_UDP_FLOWS_FULL`).
    pub udp_flows_full: u64,
}

impl CounterSnapshot {
    pub fn total_lost(&self) -> u64 {
        self.ringbuf_full + self.conn_table_full + self.io_table_full
    }

    /// Requests the kernel lost from their first event on: userspace never
    /// saw them, so they count as lost spans beside those cut by a hole.
    pub fn requests_unseen(&self) -> u64 {
        self.request_starts_lost
    }
}

impl KernelCounters {
    pub(crate) fn new(map: PerCpuArray<MapData, u64>) -> Self {
        Self(map)
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let sum = |idx: u32| self.0.get(&idx, 0).map(|v| v.iter().sum()).unwrap_or(0);
        CounterSnapshot {
            ringbuf_full: sum(abi::OE_CNT_RINGBUF_FULL),
            conn_table_full: sum(abi::OE_CNT_CONN_TABLE_FULL),
            io_table_full: sum(abi::OE_CNT_IO_TABLE_FULL),
            tls_no_socket: sum(abi::OE_CNT_TLS_NO_SOCKET),
            request_starts_lost: sum(abi::OE_CNT_REQUEST_STARTS_LOST),
            io_uring: sum(abi::OE_CNT_IO_URING),
            udp_flows_full: sum(abi::OE_CNT_UDP_FLOWS_FULL),
        }
    }
}

/// The kernel's UDP flow counters (`udp_flows`, udp_flows.h): cumulative per
/// socket, process and peer. Read and pruned with the kernel's batch
/// commands, a few syscalls per pass rather than two per entry (a full
/// table of 16,384 entries took ~55 ms entry by entry); aya has no batch
/// operations, hence the syscall by hand.
pub struct UdpFlowTable {
    map: MapData,
    keys: Vec<abi::oe_udp_flow_key>,
    values: Vec<abi::oe_udp_flow>,
    doomed: Vec<abi::oe_udp_flow_key>,
}

/// `union bpf_attr`'s `batch` member (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// Entries per lookup syscall (a hash bucket never holds this many).
const BATCH: usize = 4096;

/// One batch command; Ok(true) when the map has no more entries (ENOENT).
/// `attr.count` is what the kernel did, in every case.
fn batch(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<bool> {
    // SAFETY: attr is a valid, exclusively borrowed bpf_attr prefix of the
    // size passed; the buffers it points to (set by the callers) hold
    // attr.count keys (and values) of the map's sizes; the kernel writes
    // count (and out_batch, a u32 the caller owns) back into it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut BatchAttr, std::mem::size_of::<BatchAttr>()) };
    if r == 0 {
        return Ok(false);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(true),
        _ => Err(e),
    }
}

impl UdpFlowTable {
    pub(crate) fn new(map: MapData) -> Self {
        Self { map, keys: Vec::new(), values: Vec::new(), doomed: Vec::new() }
    }

    fn fd(&self) -> u32 {
        use std::os::fd::{AsFd, AsRawFd};
        self.map.fd().as_fd().as_raw_fd() as u32
    }

    /// Every entry now, into `out` (cleared first). Entries the kernel adds
    /// meanwhile are read now or at the next pass.
    pub fn read(&mut self, out: &mut Vec<crate::flows::UdpSample>) {
        out.clear();
        self.keys.clear();
        self.values.clear();
        let (mut token, mut next) = (0u32, 0u32);
        let mut first = true;
        loop {
            self.keys.reserve(BATCH);
            self.values.reserve(BATCH);
            let have = self.keys.len();
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { &token as *const u32 as u64 },
                out_batch: &mut next as *mut u32 as u64,
                keys: self.keys.spare_capacity_mut().as_mut_ptr() as u64,
                values: self.values.spare_capacity_mut().as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: self.fd(),
                ..BatchAttr::default()
            };
            let done = batch(BPF_MAP_LOOKUP_BATCH, &mut attr);
            // On a failure, what was copied is dropped rather than trusted.
            let n = if done.is_ok() { (attr.count as usize).min(BATCH) } else { 0 };
            // SAFETY: the kernel wrote n keys and n values (plain integer
            // structs, any bit pattern valid) past `have` in both buffers,
            // whose capacity is at least have + BATCH.
            unsafe {
                self.keys.set_len(have + n);
                self.values.set_len(have + n);
            }
            match done {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    log::warn!("flows: reading the UDP table: {e}");
                    break;
                }
            }
            token = next;
            first = false;
        }
        out.extend(self.keys.iter().zip(&self.values).map(|(k, v)| crate::flows::UdpSample::from_kernel(k, v)));
    }

    /// Deletes the entries of `samples` (they stayed idle for a pass). A
    /// datagram counted between the read and this delete is lost: the
    /// window is a syscall, on an entry idle for a whole pass.
    pub fn remove<'a>(&mut self, samples: impl Iterator<Item = &'a crate::flows::UdpSample>) {
        self.doomed.clear();
        self.doomed.extend(samples.map(|s| s.kernel_key()));
        let mut at = 0;
        while at < self.doomed.len() {
            let left = self.doomed.len() - at;
            let mut attr = BatchAttr {
                keys: self.doomed[at..].as_ptr() as u64,
                count: left as u32,
                map_fd: self.fd(),
                ..BatchAttr::default()
            };
            let result = batch(BPF_MAP_DELETE_BATCH, &mut attr);
            let done = (attr.count as usize).min(left);
            match result {
                Ok(_) if done == left => break,
                // Stopped at a key already gone (ENOENT, reported as the
                // end): skip it and go on.
                Ok(_) => at += done + 1,
                Err(e) => {
                    log::warn!("flows: pruning the UDP table: {e}");
                    break;
                }
            }
        }
    }
}
