/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Network flows: a BPF iterator run by userspace every `flows.interval`,
 * writing one oe_flow_sock per TCP socket a process holds. Nothing runs per
 * packet: the cost of a pass grows with the open files of the host, not with
 * its traffic.
 *
 * Why the file tables (iter/task_file) and not iter/tcp: a TCP iterator sees
 * the sockets of the network namespace it was created in, and not who owns
 * them. Walking every task's file table reaches the sockets of every
 * namespace (containers, pods) in one pass and names the process holding
 * each; sockets no process holds any more (closing, orphaned) are reported by
 * their destruction instead. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP_NUM 6

/* The process hosting the library: its own sockets (the collector's
 * exporters) are never reported. Set by the loader. */
const volatile __u32 self_tgid = 0;

static __always_inline void flow_addr(__u8 dst[16], __be32 v4, const struct in6_addr *v6, __u16 family)
{
	if (family == AF_INET) {
		__builtin_memset(dst, 0, 10);
		dst[10] = 0xff;
		dst[11] = 0xff;
		__builtin_memcpy(dst + 12, &v4, 4);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)dst, v6, in6_u.u6_addr8);
	}
}

SEC("iter/task_file")
int oe_flows_task_file(struct bpf_iter__task_file *ctx)
{
	struct file *file = ctx->file;
	struct task_struct *task = ctx->task;
	if (!file || !task)
		return 0;
	/* First, before any socket field is read: each costs a cache miss. */
	__u32 tgid = task->tgid;
	if (tgid == self_tgid)
		return 0;
	struct socket *sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP_NUM)
		return 0;
	__u8 state = sk->__sk_common.skc_state;
	/* Not connected (yet or any more): nothing to count. */
	if (state == TCP_CLOSE || state == TCP_SYN_SENT)
		return 0;
	/* `sk` is an untrusted pointer here (read from the file's socket):
	 * helpers that take a socket refuse it, so its fields are read with
	 * CO-RE reads. A TCP socket of an inet family is a tcp_sock. */
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct oe_flow_sock rec = {};
	/* Zero when nothing asked for it yet (a socket older than the probes
	 * that none of ours has touched): userspace then keys it by its
	 * addresses. bpf_get_socket_cookie would make one, but refuses an
	 * untrusted pointer. */
	rec.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	rec.tgid = tgid;
	rec.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	rec.family = family;
	rec.state = state;
	rec.protocol = OE_FLOW_TCP;
	rec.local_port = sk->__sk_common.skc_num;
	rec.peer_port = bpf_ntohs(sk->__sk_common.skc_dport);
	flow_addr(rec.local_addr, sk->__sk_common.skc_rcv_saddr, &sk->__sk_common.skc_v6_rcv_saddr, family);
	flow_addr(rec.peer_addr, sk->__sk_common.skc_daddr, &sk->__sk_common.skc_v6_daddr, family);
	if (state != TCP_LISTEN) {
		rec.bytes_acked = BPF_CORE_READ(tp, bytes_acked);
		rec.bytes_received = BPF_CORE_READ(tp, bytes_received);
		rec.segs_in = BPF_CORE_READ(tp, segs_in);
		rec.segs_out = BPF_CORE_READ(tp, segs_out);
		rec.total_retrans = BPF_CORE_READ(tp, total_retrans);
		rec.srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
