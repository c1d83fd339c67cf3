/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* UDP flows: bytes and datagrams per socket, process and peer, counted in
 * the kernel by the socket data path's programs (sock_send_length and
 * sock_recv_length) for every process of the host, traced or not, muted or
 * not. Nothing per datagram reaches userspace: the flows pass reads the
 * `udp_flows` map every interval (see struct oe_udp_flow_key in events.h).
 * The syscall data path has none of this: UDP flows need Linux 6.3. */
#ifndef OE_UDP_FLOWS_H
#define OE_UDP_FLOWS_H

#include "sock.h"

/* Set by the loader: `flows.enabled` and `flows.udp`. */
const volatile __u8 udp_flows_enabled = 0;

/* Sized by the loader; a plain hash, not an LRU, so that an entry that does
 * not fit is counted (OE_CNT_UDP_FLOWS_FULL) rather than pushing out one
 * whose counts were not read yet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct oe_udp_flow_key);
	__type(value, struct oe_udp_flow);
} udp_flows SEC(".maps");

/* x86-64 syscall numbers of the sends whose destination is in the registers. */
#define UDP_NR_SENDTO 44
#define UDP_NR_SENDMSG 46

/* The start of a struct sockaddr_in / sockaddr_in6. */
struct sockaddr_head {
	__u16 family;
	__be16 port;
	__be32 v4; /* sockaddr_in6: sin6_flowinfo */
};

/* The destination a send names (sendto's dest_addr, sendmsg's msg_name), as
 * the caller wrote it: the kernel copied it in before sending, so it is
 * still there. False when there is none the probes can read. */
static __always_inline bool udp_send_peer(struct pt_regs *regs, struct oe_udp_flow_key *k)
{
	__s64 nr = regs->orig_ax;
	__u64 name;
	__u32 namelen;
	if (nr == UDP_NR_SENDTO) {
		name = regs->r8;
		namelen = (__u32)regs->r9;
	} else if (nr == UDP_NR_SENDMSG) {
		struct {
			__u64 name;
			__s32 namelen;
		} m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)regs->si))
			return false;
		name = m.name;
		namelen = (__u32)m.namelen;
	} else {
		return false;
	}
	struct sockaddr_head h;
	if (!name || namelen < sizeof(h) || bpf_probe_read_user(&h, sizeof(h), (void *)name))
		return false;
	if (h.family == AF_INET) {
		map_v4(k->peer_addr, h.v4);
	} else if (h.family == AF_INET6 && namelen >= sizeof(h) + 16) {
		if (bpf_probe_read_user(k->peer_addr, 16, (void *)(name + sizeof(h))))
			return false;
	} else {
		return false;
	}
	k->peer_port = bpf_ntohs(h.port);
	return true;
}

/* One datagram of `len` bytes through UDP socket sk, `dir` OE_DIR_*, by the
 * current task (sock_send_length / sock_recv_length, process context). */
static __always_inline void udp_flow_count(struct sock *sk, int len, __u16 dir)
{
	if (!udp_flows_enabled || sk->sk_protocol != IPPROTO_UDP_NUM)
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	/* Kernel sockets (tunnels, NFS) belong to no process. */
	struct socket *so = sk->sk_socket;
	if ((task->flags & PF_KTHREAD) || !so || !so->file)
		return;
	struct oe_udp_flow_key k = {};
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	k.cookie = cookie ? cookie : bpf_get_socket_cookie(sk);
	k.tgid = tgid;
	k.local_port = sk->__sk_common.skc_num;
	__be16 dport = sk->__sk_common.skc_dport;
	if (dport) {
		k.peer_port = bpf_ntohs(dport);
		if (sk->__sk_common.skc_family == AF_INET)
			map_v4(k.peer_addr, sk->__sk_common.skc_daddr);
		else
			__builtin_memcpy(k.peer_addr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
	} else {
		/* Unconnected: the destination the call names. A receive's
		 * source is written to the caller only after this tracepoint:
		 * unknown (the all-zero peer). */
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		/* io_uring's sends (its workers, or task work on the way out of
		 * any syscall) are not the call the registers describe. */
		bool uring = (task->flags & PF_IO_WORKER) ||
			     (bpf_core_field_exists(task->io_uring) && task->io_uring &&
			      fd_to_sock((__s32)regs->di) != sk);
		if (dir != OE_DIR_EGRESS || uring || !udp_send_peer(regs, &k)) {
			__builtin_memset(k.peer_addr, 0, 16);
			k.peer_port = 0;
		}
		set_datagram_peer(k.peer_port ? k.cookie : 0, k.peer_addr, k.peer_port);
	}
	struct oe_udp_flow *f = bpf_map_lookup_elem(&udp_flows, &k);
	if (!f) {
		struct oe_udp_flow fresh = { .first_dir = dir, .first_ns = bpf_ktime_get_ns() };
		fresh.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
		/* Another CPU may have made it meanwhile: EEXIST, then found. */
		long err = bpf_map_update_elem(&udp_flows, &k, &fresh, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&udp_flows, &k);
		if (!f) {
			if (err)
				count(OE_CNT_UDP_FLOWS_FULL);
			return;
		}
	}
	if (dir == OE_DIR_EGRESS) {
		__sync_fetch_and_add(&f->bytes_sent, len);
		__sync_fetch_and_add(&f->datagrams_sent, 1);
	} else {
		__sync_fetch_and_add(&f->bytes_received, len);
		__sync_fetch_and_add(&f->datagrams_received, 1);
	}
}

#endif
