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
#define SOCK_STREAM 1
#define IPPROTO_TCP_NUM 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define MSG_PEEK 2

/* Settings the loader writes before load (aya EbpfLoader::set_global). */
const volatile __u32 self_tgid = 0;      /* the process hosting the library: never traced */
const volatile __u32 capture_bytes = 1024; /* payload prefix per syscall, <= OE_MAX_CAPTURE */

/* Syscall tracepoint records. Our own layouts (stable tracepoint ABI: 8 bytes
 * of common fields, the syscall nr, then 8-byte slots) so no CO-RE relocation
 * indexes a flexible array, which aya rejects. */
struct sys_enter_ctx {
	__u64 _common;
	__s64 id;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 _common;
	__s64 id;
	__s64 ret;
};

/* Kernel -> user events; size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

/* Tracked TCP sockets by (tgid, fd). LRU so a missed close can never fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct oe_fd_key);
	__type(value, struct oe_conn_info);
} conns SEC(".maps");

/* Negative cache: fds known not to be TCP sockets (files, pipes, UDP, unix),
 * so the common read/write of a file costs two lookups, not a task walk. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct oe_fd_key);
	__type(value, __u8);
} not_sock SEC(".maps");

/* Drop and overflow counters, per CPU; indexes OE_CNT_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline bool is_self(__u32 tgid)
{
	return tgid == self_tgid;
}

static __always_inline void fill_header(struct oe_event_header *h, __u64 pid_tgid, __u32 kind,
					__s32 fd, __u64 conn_id)
{
	h->ts_ns = bpf_ktime_get_ns();
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->kind = kind;
	h->fd = fd;
	h->conn_id = conn_id;
}

#endif
