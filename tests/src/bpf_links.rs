//! The BPF links a process holds, as the kernel itself describes them
//! (`BPF_LINK_GET_NEXT_ID`, `BPF_LINK_GET_FD_BY_ID`, `BPF_OBJ_GET_INFO_BY_FD`):
//! which tracepoint each one attaches to. Debian's bpftool 7.1 prints no
//! tracepoint name for perf-event links, and `bpftool perf list` misses
//! tracepoints held through a link, hence this.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;

const BPF_LINK_TYPE_RAW_TRACEPOINT: u32 = 1;
const BPF_LINK_TYPE_PERF_EVENT: u32 = 7;
const BPF_PERF_EVENT_TRACEPOINT: u32 = 5;

/// One link: its kernel id, type and, for tracepoints, the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkDesc {
    pub id: u32,
    /// `bpf_link_type`.
    pub kind: u32,
    /// The tracepoint's name for a perf-event tracepoint link (`sys_exit_read`,
    /// `sched_process_exec`) or a raw/BTF tracepoint link (`sock_send_length`).
    pub tracepoint: Option<String>,
}

impl LinkDesc {
    /// A syscall tracepoint: what the socket-layer data path must not need.
    pub fn is_syscall_tracepoint(&self) -> bool {
        self.tracepoint.as_deref().is_some_and(|n| n.starts_with("sys_enter") || n.starts_with("sys_exit"))
    }
}

/// `union bpf_attr`, the parts these commands read (zero-padded).
#[repr(C)]
#[derive(Default)]
struct Attr {
    words: [u32; 32],
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> libc::c_long {
    // SAFETY: attr is a valid, writable bpf_attr-sized buffer for the whole call.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut Attr, std::mem::size_of::<Attr>()) }
}

/// Every link id in the kernel, by `BPF_LINK_GET_NEXT_ID`.
pub fn all_link_ids() -> BTreeSet<u32> {
    let mut ids = BTreeSet::new();
    let mut start = 0;
    loop {
        let mut attr = Attr::default();
        attr.words[0] = start;
        if bpf(BPF_LINK_GET_NEXT_ID, &mut attr) != 0 {
            return ids; // ENOENT: the last one
        }
        start = attr.words[1];
        ids.insert(start);
    }
}

/// The ids of the links process `pid` holds an fd of (`link_id:` in its fdinfo).
pub fn link_ids_of(pid: u32) -> BTreeSet<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")).flatten() {
        let Ok(info) = std::fs::read_to_string(entry.path()) else { continue };
        if let Some(id) = info.lines().find_map(|l| l.strip_prefix("link_id:")).and_then(|v| v.trim().parse().ok()) {
            ids.insert(id);
        }
    }
    ids
}

/// What the kernel says about link `id`; None if it went meanwhile.
pub fn describe(id: u32) -> Option<LinkDesc> {
    let mut attr = Attr::default();
    attr.words[0] = id;
    let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd the kernel just gave us, owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut name = [0u8; 256];
    // struct bpf_link_info: type, id, prog_id, then the union (8-aligned, at 16).
    let mut info = [0u64; 16];
    let info_words = info.as_mut_ptr().cast::<u32>();
    // Ask for the name in our buffer: the union's name pointer and length,
    // whose place depends on the link type; try the perf-event layout and the
    // raw-tracepoint one in turn.
    let query = |info: &mut [u64; 16], set: &dyn Fn(&mut [u64; 16])| {
        *info = [0; 16];
        set(info);
        let mut attr = Attr::default();
        attr.words[0] = fd.as_raw_fd() as u32;
        attr.words[1] = std::mem::size_of::<[u64; 16]>() as u32;
        let ptr = info.as_mut_ptr() as u64;
        attr.words[2] = ptr as u32;
        attr.words[3] = (ptr >> 32) as u32;
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) == 0
    };
    let name_ptr = name.as_mut_ptr() as u64;
    if !query(&mut info, &|_| {}) {
        return None;
    }
    // SAFETY: info holds at least the 3 leading u32 fields the kernel filled.
    let (kind, link_id) = unsafe { (*info_words, *info_words.add(1)) };
    let tracepoint = match kind {
        BPF_LINK_TYPE_PERF_EVENT => {
            // perf_event { u32 type; u32 pad; union { tracepoint { u64 tp_name; u32 name_len; ... } } }
            let ok = query(&mut info, &|i| {
                i[3] = name_ptr;
                i[4] = name.len() as u64;
            });
            // SAFETY: as above; word 4 is perf_event.type.
            let perf_type = unsafe { *info_words.add(4) };
            (ok && perf_type == BPF_PERF_EVENT_TRACEPOINT).then(|| c_name(&name))
        }
        BPF_LINK_TYPE_RAW_TRACEPOINT => {
            // raw_tracepoint { u64 tp_name; u32 tp_name_len; }
            let ok = query(&mut info, &|i| {
                i[2] = name_ptr;
                i[3] = name.len() as u64;
            });
            (ok && name[0] != 0).then(|| c_name(&name))
        }
        _ => None,
    };
    Some(LinkDesc { id: link_id, kind, tracepoint })
}

fn c_name(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The links process `pid` holds that the kernel lists, described.
pub fn links_of(pid: u32) -> Vec<LinkDesc> {
    let all = all_link_ids();
    link_ids_of(pid).into_iter().filter(|id| all.contains(id)).filter_map(describe).collect()
}

/// Does this kernel have the socket-layer tracepoints (Linux 6.3+)?
pub fn kernel_has_socket_layer_tracepoints() -> bool {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_default();
    crate::contains_bytes(&btf, b"btf_trace_sock_send_length\0")
}
