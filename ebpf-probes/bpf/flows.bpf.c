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
#include <bpf/bpf_tracing.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP_NUM 6

/* The process hosting the library: its own sockets (the collector's
 * exporters) are never reported. Set by the loader. */
const volatile __u32 self_tgid = 0;

/* Payload bytes only. The kernel's bytes_acked and bytes_received count
 * sequence numbers, so an active open's SYN and each FIN add one byte:
 * first transmissions (bytes_sent less bytes_retrans) and bytes received
 * less a received FIN (SOCK_DONE, set by tcp_fin) are the data alone, exact
 * over a connection's life. */
static __always_inline __u64 payload_sent(const struct tcp_sock *tp)
{
	return BPF_CORE_READ(tp, bytes_sent) - BPF_CORE_READ(tp, bytes_retrans);
}

static __always_inline __u64 payload_received(const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 received = BPF_CORE_READ(tp, bytes_received);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if ((flags & (1UL << SOCK_DONE)) && received > 0)
		received -= 1;
	return received;
}

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

/* The iterator's tcp_sock counters in two copies rather than seven reads.
 * Since 6.8 the kernel groups them by cache line (on 6.18 segs_out to
 * segs_in lie within 228 bytes, bytes_retrans and total_retrans within
 * 12): one bpf_probe_read_kernel per group is one helper call, and the CPU
 * fetches the group's lines together. Offsets are the running kernel's
 * (CO-RE); a group spread wider than its buffer (older layouts) is read
 * field by field. */
struct tcp_counters {
	__u64 bytes_sent;     /* raw: first transmissions and retransmissions */
	__u64 bytes_retrans;
	__u64 bytes_received; /* raw: a received FIN included */
	__u32 segs_in;
	__u32 segs_out;
	__u32 total_retrans;
	__u32 srtt_us;        /* the kernel's: microseconds << 3 */
};

#define TP_OFF(f) ((__u32)bpf_core_field_offset(struct tcp_sock, f))
#define TP_END(f) (TP_OFF(f) + (__u32)bpf_core_field_size(struct tcp_sock, f))
#define SPAN_A 256
#define SPAN_B 32

static __always_inline __u32 min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

static __always_inline __u32 max_u32(__u32 a, __u32 b)
{
	return a > b ? a : b;
}

/* The field's index in the copy, computed as a number first: the verifier
 * refuses a stack pointer less a register, which is what the compiler makes
 * of `buf + off - lo` otherwise. */
static __always_inline __u32 span_index(__u32 off, __u32 lo)
{
	__u32 i = off - lo;
	asm volatile("" : "+r"(i));
	return i;
}

#define SPAN_GET(type, buf, lo, f) (*(const type *)((buf) + span_index(TP_OFF(f), (lo))))

static __always_inline void read_tcp_counters(const struct tcp_sock *tp, struct tcp_counters *c)
{
	const __u8 *base = (const __u8 *)tp;
	__u32 lo = min_u32(min_u32(TP_OFF(segs_out), TP_OFF(bytes_sent)),
			   min_u32(min_u32(TP_OFF(srtt_us), TP_OFF(bytes_received)), TP_OFF(segs_in))) & ~7u;
	__u32 hi = max_u32(max_u32(TP_END(segs_out), TP_END(bytes_sent)),
			   max_u32(max_u32(TP_END(srtt_us), TP_END(bytes_received)), TP_END(segs_in)));
	if (hi - lo <= SPAN_A) {
		__u8 buf[SPAN_A];
		bpf_probe_read_kernel(buf, hi - lo, base + lo);
		c->segs_out = SPAN_GET(__u32, buf, lo, segs_out);
		c->bytes_sent = SPAN_GET(__u64, buf, lo, bytes_sent);
		c->srtt_us = SPAN_GET(__u32, buf, lo, srtt_us);
		c->bytes_received = SPAN_GET(__u64, buf, lo, bytes_received);
		c->segs_in = SPAN_GET(__u32, buf, lo, segs_in);
	} else {
		c->segs_out = BPF_CORE_READ(tp, segs_out);
		c->bytes_sent = BPF_CORE_READ(tp, bytes_sent);
		c->srtt_us = BPF_CORE_READ(tp, srtt_us);
		c->bytes_received = BPF_CORE_READ(tp, bytes_received);
		c->segs_in = BPF_CORE_READ(tp, segs_in);
	}
	lo = min_u32(TP_OFF(bytes_retrans), TP_OFF(total_retrans)) & ~7u;
	hi = max_u32(TP_END(bytes_retrans), TP_END(total_retrans));
	if (hi - lo <= SPAN_B) {
		__u8 buf[SPAN_B];
		bpf_probe_read_kernel(buf, hi - lo, base + lo);
		c->bytes_retrans = SPAN_GET(__u64, buf, lo, bytes_retrans);
		c->total_retrans = SPAN_GET(__u32, buf, lo, total_retrans);
	} else {
		c->bytes_retrans = BPF_CORE_READ(tp, bytes_retrans);
		c->total_retrans = BPF_CORE_READ(tp, total_retrans);
	}
}

/* An address of the iterator's socket, read directly (the socket pointer
 * is typed: its sock_common fields need no helper call). */
static __always_inline void iter_addr(__u8 dst[16], __be32 v4, const struct in6_addr *v6, __u16 family)
{
	__u32 *d = (__u32 *)dst;
	if (family == AF_INET) {
		d[0] = 0;
		d[1] = 0;
		d[2] = bpf_htonl(0xffff);
		d[3] = v4;
	} else {
		d[0] = v6->in6_u.u6_addr32[0];
		d[1] = v6->in6_u.u6_addr32[1];
		d[2] = v6->in6_u.u6_addr32[2];
		d[3] = v6->in6_u.u6_addr32[3];
	}
}

/* A TCP socket's proto is tcp_prot ("TCP") or tcpv6_prot ("TCPv6"), one
 * struct for all of them and so always in cache, where sk_protocol sits on a
 * cache line of its own that the pass would read for nothing else.
 * (MPTCP, SCTP and UDP sockets have other protos.) */
static __always_inline int is_tcp_proto(const struct proto *prot)
{
	if (!prot)
		return 0;
	__u32 head = *(const __u32 *)prot->name;
	if (head == 0x00504354) /* "TCP\0" */
		return 1;
	return head == 0x76504354 /* "TCPv" */ && prot->name[4] == '6' && prot->name[5] == 0;
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
	if ((family != AF_INET && family != AF_INET6) || !is_tcp_proto(sk->__sk_common.skc_prot))
		return 0;
	__u8 state = sk->__sk_common.skc_state;
	/* Not connected yet: nothing to count. */
	if (state == TCP_SYN_SENT)
		return 0;
	/* `sk` is an untrusted pointer here (read from the file's socket):
	 * helpers that take a socket refuse it, and a cast to tcp_sock loses
	 * its type, so the tcp_sock counters are copied with CO-RE offsets. A
	 * TCP socket of an inet family is a tcp_sock. */
	struct tcp_counters c = {};
	if (state != TCP_LISTEN)
		read_tcp_counters((const struct tcp_sock *)sk, &c);
	/* Closed (a reset, or never connected) but still held: reported while
	 * it has counters, so that its destruction is matched with this pass
	 * rather than counted again in full. */
	if (state == TCP_CLOSE && c.bytes_sent == 0 && c.bytes_received == 0)
		return 0;
	struct oe_flow_sock rec = {};
	/* Zero when nothing asked for it yet (a socket older than the probes
	 * that none of ours has touched): userspace then keys it by its
	 * addresses. bpf_get_socket_cookie would make one, but refuses an
	 * untrusted pointer. */
	rec.cookie = sk->__sk_common.skc_cookie.counter;
	rec.tgid = tgid;
	rec.netns = sk->__sk_common.skc_net.net->ns.inum;
	rec.family = family;
	rec.state = state;
	rec.protocol = OE_FLOW_TCP;
	rec.local_port = sk->__sk_common.skc_num;
	rec.peer_port = bpf_ntohs(sk->__sk_common.skc_dport);
	iter_addr(rec.local_addr, sk->__sk_common.skc_rcv_saddr, &sk->__sk_common.skc_v6_rcv_saddr, family);
	iter_addr(rec.peer_addr, sk->__sk_common.skc_daddr, &sk->__sk_common.skc_v6_daddr, family);
	if (state != TCP_LISTEN) {
		/* Payload only, as payload_sent/payload_received. */
		rec.bytes_sent = c.bytes_sent - c.bytes_retrans;
		rec.bytes_received = c.bytes_received;
		if ((sk->__sk_common.skc_flags & (1UL << SOCK_DONE)) && c.bytes_received > 0)
			rec.bytes_received -= 1;
		rec.segs_in = c.segs_in;
		rec.segs_out = c.segs_out;
		rec.total_retrans = c.total_retrans;
		rec.srtt_us = c.srtt_us >> 3;
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* ---- Connection events: tp_btf programs, once per state change of a TCP
 * socket (never per packet). h15's socket-layer data path attaches its own
 * programs to inet_sock_set_state and tcp_destroy_sock for connection roles
 * and ends; both could later share one program per tracepoint. */

/* What is known of a connection from its open on. Keyed by the socket's
 * address (stable for its life; the entry goes at its destruction). LRU: a
 * socket whose destruction was missed cannot fill the map. */
struct flow_open {
	__u64 syn_ns;      /* active open: when its SYN was sent */
	__u32 tgid;        /* active open: the process that called connect(); 0 = passive */
	__u8 established;  /* reached ESTABLISHED: its destruction reports counters */
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct flow_open);
} oe_flow_open SEC(".maps");

/* Sized for ~37,000 events between two drains (the worker drains it on
 * every wake-up, at least once per flows.interval). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} oe_flow_events SEC(".maps");

/* Events lost to a full ring (one slot; userspace reads and exports it). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} oe_flow_lost SEC(".maps");

static __always_inline void fill_sock(struct oe_flow_sock *rec, const struct sock *sk, __u32 tgid)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	/* Made now if none was: the passes then read the same one. */
	rec->cookie = bpf_get_socket_cookie((struct sock *)sk);
	rec->tgid = tgid;
	rec->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	rec->family = family;
	rec->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	rec->protocol = OE_FLOW_TCP;
	/* Not skc_num: unhashing the closing socket zeroed it. */
	rec->local_port = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	rec->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	flow_addr(rec->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr), &sk->__sk_common.skc_v6_rcv_saddr,
		  family);
	flow_addr(rec->peer_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr), &sk->__sk_common.skc_v6_daddr, family);
	rec->bytes_sent = payload_sent(tp);
	rec->bytes_received = payload_received(sk);
	rec->segs_in = BPF_CORE_READ(tp, segs_in);
	rec->segs_out = BPF_CORE_READ(tp, segs_out);
	rec->total_retrans = BPF_CORE_READ(tp, total_retrans);
	rec->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
}

static __always_inline int is_inet_tcp(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return (family == AF_INET || family == AF_INET6) && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP_NUM;
}

static __always_inline void flow_event(const struct sock *sk, __u8 kind, __u32 tgid, __u64 duration_ns, __s32 err)
{
	struct oe_flow_event *ev = bpf_ringbuf_reserve(&oe_flow_events, sizeof(*ev), 0);
	if (!ev) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&oe_flow_lost, &zero);
		if (lost)
			*lost += 1;
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	fill_sock(&ev->sock, sk, tgid);
	ev->kind = kind;
	ev->duration_ns = duration_ns;
	ev->err = err;
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(oe_flows_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!is_inet_tcp(sk))
		return 0;
	__u64 key = (__u64)sk;
	if (newstate == TCP_SYN_SENT) {
		/* connect(): the caller is the owner. */
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		if (tgid == self_tgid)
			return 0;
		struct flow_open o = { .syn_ns = bpf_ktime_get_ns(), .tgid = tgid };
		bpf_map_update_elem(&oe_flow_open, &key, &o, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		struct flow_open *o = bpf_map_lookup_elem(&oe_flow_open, &key);
		if (!o)
			return 0;
		o->established = 1;
		flow_event(sk, OE_FLOW_EV_HANDSHAKE, o->tgid, bpf_ktime_get_ns() - o->syn_ns, 0);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV) {
		/* A passive open, in softirq: its owner is the listener's. */
		struct flow_open o = { .established = 1 };
		bpf_map_update_elem(&oe_flow_open, &key, &o, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_CLOSE && oldstate == TCP_SYN_SENT) {
		struct flow_open *o = bpf_map_lookup_elem(&oe_flow_open, &key);
		if (!o)
			return 0;
		/* sk_err is set before the state changes (tcp_done_with_error). */
		flow_event(sk, OE_FLOW_EV_FAILED, o->tgid, bpf_ktime_get_ns() - o->syn_ns, BPF_CORE_READ(sk, sk_err));
		bpf_map_delete_elem(&oe_flow_open, &key);
	}
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(oe_flows_destroy, struct sock *sk)
{
	if (!is_inet_tcp(sk))
		return 0;
	__u64 key = (__u64)sk;
	struct flow_open *o = bpf_map_lookup_elem(&oe_flow_open, &key);
	if (o) {
		if (o->established)
			flow_event(sk, OE_FLOW_EV_CLOSE, o->tgid, 0, 0);
		bpf_map_delete_elem(&oe_flow_open, &key);
		return 0;
	}
	/* Opened before the probes: the passes know it (userspace drops the
	 * event otherwise). A listener has no peer port. */
	if (BPF_CORE_READ(sk, __sk_common.skc_dport) != 0)
		flow_event(sk, OE_FLOW_EV_CLOSE, 0, 0, 0);
	return 0;
}

static __always_inline void flow_reset(const struct sock *sk)
{
	if (!sk || !is_inet_tcp(sk))
		return;
	__u64 key = (__u64)sk;
	struct flow_open *o = bpf_map_lookup_elem(&oe_flow_open, &key);
	flow_event(sk, OE_FLOW_EV_RESET, o ? o->tgid : 0, 0, 0);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(oe_flows_receive_reset, struct sock *sk)
{
	flow_reset(sk);
	return 0;
}

/* sk is NULL for a reset answering no socket (a closed port): not a flow. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(oe_flows_send_reset, const struct sock *sk)
{
	flow_reset(sk);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
