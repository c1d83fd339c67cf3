/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Connection lifecycle, from the socket layer on both data paths: who opened
 * it (the role), when it ends, and the sockets already open at start-up. */
#include "sock.h"
#include <bpf/bpf_tracing.h>

/* TCP's state machine. An active open (SYN_SENT, in the connecting task) is a
 * client; the child socket of a passive open (SYN_RECV, made in softirq
 * when the handshake's last ACK arrives, no task of its own) a server. The
 * role is remembered by cookie; the connection is announced at its first
 * data event, in the process that reads or writes it. Making the cookie here
 * is also what lets the syscall path and the Go TLS probes, which cannot
 * call bpf_get_socket_cookie, find the connection by reading it. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(oe_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_SYN_SENT && newstate != TCP_SYN_RECV)
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP_NUM)
		return 0;
	__u64 cookie = bpf_get_socket_cookie((struct sock *)sk);
	struct oe_conn_info info = {};
	if (newstate == TCP_SYN_RECV) {
		info.role = OE_ROLE_SERVER;
		set_listen_port(sk->__sk_common.skc_num);
	} else {
		/* Process context: a process not traced makes no entry (one that
		 * later inherits the socket and is traced finds it anyway). */
		if (!is_traced(bpf_get_current_pid_tgid() >> 32))
			return 0;
		info.role = OE_ROLE_CLIENT;
	}
	/* A socket connecting again starts a new connection. */
	bpf_map_update_elem(&conns, &cookie, &info, BPF_ANY);
	return 0;
}

/* The end of a TCP socket: after its last close, once the protocol is done
 * with it (no read or write can follow). */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(oe_tcp_destroy, struct sock *sk)
{
	/* Read, not made: a socket without a cookie was never tracked. */
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	if (cookie)
		end_conn(cookie);
	return 0;
}

/* The last close of any other IP socket (UDP), by any process: attached to
 * the root of the cgroup v2 hierarchy, so every socket of the host runs it.
 * TCP's end is tcp_destroy_sock's. */
SEC("cgroup/sock_release")
int oe_sock_release(struct bpf_sock *sk)
{
	if (sk->protocol != IPPROTO_TCP_NUM && (sk->family == AF_INET || sk->family == AF_INET6))
		end_conn(bpf_get_socket_cookie(sk));
	return 1;
}

/* Run once at start-up over every TCP socket of the host: the ports of
 * listening sockets (a connection older than the probes whose local port
 * is one of them is a server's), and a cookie for every other socket, which
 * the syscall path reads. */
SEC("iter/tcp")
int oe_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	unsigned char state = skc->skc_state;
	if (state == TCP_LISTEN)
		set_listen_port(skc->skc_num);
	else if (state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV)
		bpf_get_socket_cookie(skc);
	return 0;
}
