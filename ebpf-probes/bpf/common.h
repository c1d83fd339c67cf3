/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Maps, settings and helpers shared by every program of the probes object. */
#ifndef OE_COMMON_H
#define OE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP_NUM 6
#define IPPROTO_UDP_NUM 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_PEEK 2
#define PF_IO_WORKER 0x00000010 /* an io_uring worker (or SQPOLL) thread */
#define PF_KTHREAD 0x00200000

/* Settings the loader writes before load (aya EbpfLoader::set_global). */
const volatile __u32 self_tgid = 0;      /* the process hosting the library: never traced */
const volatile __u32 capture_bytes = 1024; /* payload prefix per syscall, <= OE_MAX_CAPTURE */
const volatile __u8 pid_mode = OE_PIDS_ALL;   /* OE_PIDS_*: process selection */
const volatile __u8 port_mode = OE_PORTS_ALL; /* OE_PORTS_*: connection selection */
const volatile __u64 wakeup_bytes = 1 << 20;  /* power of two: wake the reader as queued data crosses its multiples */
const volatile __u8 tls_enabled = 0;          /* the TLS uprobes (tls.bpf.c, gotls.bpf.c) are in use */
const volatile __u32 capture_rule_count = 0;  /* entries of `capture_rules` in use */

/* A syscall exit tracepoint's record (the fallback data path, data.bpf.c).
 * Our own layout (stable tracepoint ABI: 8 bytes of common fields, the
 * syscall nr, then 8-byte slots) so no CO-RE relocation indexes a flexible
 * array, which aya rejects. */
struct sys_exit_ctx {
	__u64 _common;
	__s32 nr; /* the syscall number; the 4 bytes after it are padding */
	__s32 _pad;
	__s64 ret;
};

/* Kernel -> user events: one ring buffer per CPU, so that producers on
 * different CPUs never take the same lock or write the same producer
 * position (a shared buffer cost each event ~50 ns more on two CPUs, and its
 * lock is contended by every CPU of a large host). Userspace creates a ring
 * per online CPU, puts it at the CPU's index, and merges the rings back into
 * time order (ebpf-core/src/probes/ring_set.rs). Sizes set by the loader. */
struct event_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct event_ring);
} event_rings SEC(".maps");

/* Connections by socket cookie (bpf_get_socket_cookie; never reused while
 * the machine runs). An entry is made when TCP's state machine opens a
 * connection (tp_btf/inet_sock_set_state, which may run in softirq: it only
 * remembers the role there), or when a traced process first moves data
 * through a socket no entry names yet (one older than the probes, or UDP).
 * Its first data event in a traced process announces it to userspace
 * (OE_CONN_F_ANNOUNCED). Deleted when the socket ends: tcp_destroy_sock for
 * TCP, cgroup/sock_release for the rest. LRU, so an end never seen cannot
 * fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct oe_conn_info);
} conns SEC(".maps");

/* Local ports TCP listens on, one bit per port: a socket older than the
 * probes whose local port has its bit set is the server end of its
 * connection. Filled by the iter/tcp pass at start-up with the listening
 * sockets of that time, and by every passive open since. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536 / 64);
	__type(key, __u32);
	__type(value, __u64);
} listen_ports SEC(".maps");

/* Process selection, one bit per pid: set when the process's decision is
 * not the mode's default (OE_PIDS_EXCLUDE: skipped; OE_PIDS_INCLUDE: traced).
 * An array of words, so the check on every syscall of every process is an
 * index the JIT inlines, not a hash lookup (~37 ns measured; in the include
 * and exclude modes every untraced process paid it on each traced syscall).
 * Written by userspace on start-up and exec (mapped into its memory, hence
 * BPF_F_MMAPABLE: both sides flip bits with atomic operations, never a
 * read-modify-write of a whole word) and by the fork and exit programs.
 * Sized by the loader from pid_max; one word when every process is traced. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pid_bits SEC(".maps");

/* Processes that have entered OpenSSL since they started, one bit per pid:
 * the data exit program looks a thread up in tls_calls only for them, so
 * processes that never use OpenSSL (most, and every plain-HTTP server) skip
 * that hash lookup (~37 ns) on each traced syscall. Set by the OpenSSL entry
 * uprobes before they record the call, cleared at process exit. Sized by the
 * loader from pid_max; one word when TLS is off. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tls_pids SEC(".maps");

/* Port selection decisions (OE_PID_SKIP/TRACE) by port. Unused in OE_PORTS_ALL. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} port_filter SEC(".maps");

/* A data call to capture: its buffer and connection. */
struct io_args {
	__u64 buf;     /* user buffer, or user iovec array when iovcnt > 0; 0: nothing to copy */
	__u64 conn_id;
	__u32 iovcnt;
	__u16 sys;     /* OE_SYS_* */
	__u16 dir;     /* OE_DIR_* */
};

/* An OpenSSL call in flight, by thread (tls.bpf.c): the uprobe at entry
 * remembers it, data syscalls made inside it name its socket (and are not
 * captured: ciphertext), the uretprobe emits the plaintext. */
struct tls_call {
	__u64 ssl;     /* SSL * */
	__u64 buf;     /* plaintext buffer */
	__u64 len_ptr; /* SSL_*_ex: the size_t * the byte count is written to; else 0 */
	__u64 conn_id; /* of the socket a syscall inside the call used; 0 until one is seen */
	__u64 sp;      /* stack pointer at entry: tells nested calls' returns apart */
	__u16 sys;     /* OE_SYS_SSL_*, 0 for a handshake */
	__u16 dir;     /* OE_DIR_* */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The connection under each SSL object, learnt from earlier calls: SSL_read
 * may return buffered plaintext without any syscall. Keyed by process too,
 * since pointers are per address space. */
struct tls_sock_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_sock_key);
	__type(value, __u64);
} tls_socks SEC(".maps");

/* Request-line prefixes that switch a connection to full capture (LLM APIs);
 * written by userspace before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OE_MAX_CAPTURE_RULES);
	__type(key, __u32);
	__type(value, struct oe_capture_rule);
} capture_rules SEC(".maps");

/* Drop and overflow counters, per CPU; indexes OE_CNT_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Waking the reader costs more than most events (an irq_work IPI: a VM exit
 * on a virtual machine). It sleeps on a short timer anyway, so it is woken
 * early only as the queued data crosses a multiple of wakeup_bytes (a power
 * of two, a quarter of the buffer): once per crossing, not on every record
 * past it while the reader is still on its way. A crossing missed in a race
 * between two CPUs costs at most the timer's wait. */
static __always_inline __u64 wakeup_between(__u64 queued_before, __u64 size)
{
	return (queued_before ^ (queued_before + size + 8)) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									    : BPF_RB_NO_WAKEUP;
}

/* For a record of `size` bytes already reserved in `ring` (so counted as queued). */
static __always_inline __u64 wakeup_flag(void *ring, __u64 size)
{
	__u64 queued = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	return wakeup_between(queued > size + 8 ? queued - size - 8 : 0, size);
}

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

/* This CPU's ring buffer. NULL only for a CPU brought online after
 * start-up: its events are counted as lost. */
static __always_inline void *event_ring(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&event_rings, &cpu);
}

/* A record of `size` bytes in this CPU's ring, which *ring is set to (for
 * wakeup_flag); NULL, counted as lost, when there is no room or no ring. */
static __always_inline void *reserve_event(__u64 size, void **ring)
{
	*ring = event_ring();
	void *rec = *ring ? bpf_ringbuf_reserve(*ring, size, 0) : NULL;
	if (!rec)
		count(OE_CNT_RINGBUF_FULL);
	return rec;
}

/* Is tgid's bit set in `bits` (pid_bits, tls_pids; listen_ports by port)?
 * `past` for a pid past the array (pid_max raised after start-up): the safe
 * answer differs. */
static __always_inline bool pid_bit(void *bits, __u32 tgid, bool past)
{
	__u32 word = tgid >> 6;
	__u64 *w = bpf_map_lookup_elem(bits, &word);
	return w ? (*w >> (tgid & 63)) & 1 : past;
}

static __always_inline void set_pid_bit(void *bits, __u32 tgid, bool on)
{
	__u32 word = tgid >> 6;
	__u64 *w = bpf_map_lookup_elem(bits, &word);
	if (!w)
		return;
	__u64 bit = 1ULL << (tgid & 63);
	/* Read first: the OpenSSL entry sets its bit on every call, and a locked
	 * write would pull a word 64 processes share to this CPU each time. */
	if (((*w & bit) != 0) == on)
		return;
	if (on)
		__sync_fetch_and_or(w, bit);
	else
		__sync_fetch_and_and(w, ~bit);
}

/* Which image of its process the current task runs: exec() bumps the
 * task's self_exec_id. A direct BTF load, not a helper call. */
static __always_inline __u32 current_image(void)
{
	return (__u32)bpf_get_current_task_btf()->self_exec_id;
}

/* Should this process be traced? The common case (trace all) costs nothing. */
static __always_inline bool is_traced(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (pid_mode == OE_PIDS_ALL)
		return true;
	/* Past the array: the mode's default. */
	return pid_bit(&pid_bits, tgid, false) == (pid_mode == OE_PIDS_INCLUDE);
}

static __always_inline bool port_selected(__u16 port)
{
	if (port_mode == OE_PORTS_ALL)
		return true;
	__u8 *d = bpf_map_lookup_elem(&port_filter, &port);
	if (port_mode == OE_PORTS_EXCLUDE)
		return !d || *d != OE_PID_SKIP;
	return d && *d == OE_PID_TRACE;
}

static __always_inline void fill_header(struct oe_event_header *h, __u64 pid_tgid, __u32 kind, __u64 conn_id)
{
	h->ts_ns = bpf_ktime_get_ns();
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->kind = kind;
	h->_pad = 0;
	h->conn_id = conn_id;
}

#endif
