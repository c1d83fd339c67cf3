/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* TLS plaintext at OpenSSL's API (libssl 1.1 and 3, and BoringSSL, which share
 * these signatures). Userspace attaches the entry programs below to SSL_read,
 * SSL_write, SSL_read_ex, SSL_write_ex and SSL_do_handshake of every libssl
 * it finds, and oe_ssl_ret to the return of each.
 *
 *   entry     remembers the call by thread (tls_calls)
 *   socket    reads and writes made inside it (data.bpf.c capture()) name its
 *             connection, flag it OE_CONN_F_TLS and are not captured: ciphertext
 *   return    emits the plaintext as an ordinary data event of that
 *             connection, syscall OE_SYS_SSL_READ/WRITE
 *
 * SSL_read can return plaintext buffered by an earlier call without any
 * syscall: the socket under each SSL object is remembered (tls_socks). The
 * handshake is followed only to learn the socket and flag the connection
 * before its first record, so handshake bytes never reach userspace. */
#include "sock.h"
#include <bpf/bpf_tracing.h>

/* At a return, the stack pointer is the entry's plus the popped return address. */
#define RET_SP_DELTA 8

static __always_inline int tls_enter(struct pt_regs *ctx, __u16 sys, __u16 dir, bool ex)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	__u64 sp = PT_REGS_SP(ctx);
	/* Called from inside another call of this thread (BoringSSL's SSL_read
	 * runs SSL_do_handshake): the outer call keeps the state, and the inner
	 * return is told apart by its stack pointer. A state whose frame is gone
	 * (a return never seen) sits higher up the stack: replaced. */
	struct tls_call *outer = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (outer && outer->sp > sp)
		return 0;
	struct tls_call c = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		/* SSL_read_ex(ssl, buf, num, size_t *readbytes), SSL_write_ex(..., size_t *written) */
		.len_ptr = ex ? PT_REGS_PARM4(ctx) : 0,
		.sp = sp,
		.sys = sys,
		.dir = dir,
	};
	/* Before the call is recorded: a syscall inside it must find both. */
	set_pid_bit(&tls_pids, pid_tgid >> 32, true);
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, &c, BPF_ANY))
		count(OE_CNT_IO_TABLE_FULL);
	return 0;
}

SEC("uprobe")
int oe_ssl_read_enter(struct pt_regs *ctx)
{
	return tls_enter(ctx, OE_SYS_SSL_READ, OE_DIR_INGRESS, false);
}

SEC("uprobe")
int oe_ssl_write_enter(struct pt_regs *ctx)
{
	return tls_enter(ctx, OE_SYS_SSL_WRITE, OE_DIR_EGRESS, false);
}

SEC("uprobe")
int oe_ssl_read_ex_enter(struct pt_regs *ctx)
{
	return tls_enter(ctx, OE_SYS_SSL_READ, OE_DIR_INGRESS, true);
}

SEC("uprobe")
int oe_ssl_write_ex_enter(struct pt_regs *ctx)
{
	return tls_enter(ctx, OE_SYS_SSL_WRITE, OE_DIR_EGRESS, true);
}

/* SSL_do_handshake (SSL_connect and SSL_accept call it too). */
SEC("uprobe")
int oe_ssl_handshake_enter(struct pt_regs *ctx)
{
	return tls_enter(ctx, 0, 0, false);
}

/* The return of every function above. */
SEC("uretprobe")
int oe_ssl_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call *cp = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!cp || cp->sp + RET_SP_DELTA != PT_REGS_SP(ctx)) /* none, or a nested call's return */
		return 0;
	struct tls_call c = *cp;
	bpf_map_delete_elem(&tls_calls, &pid_tgid);

	struct tls_sock_key key = { .ssl = c.ssl, .tgid = pid_tgid >> 32 };
	bool from_call = c.conn_id != 0;
	if (from_call)
		bpf_map_update_elem(&tls_socks, &key, &c.conn_id, BPF_ANY);
	if (c.sys == 0) /* handshake: nothing to send */
		return 0;

	/* int SSL_read/SSL_write: bytes moved, <= 0 on failure or retry;
	 * int SSL_*_ex: 1 on success, the count behind len_ptr. */
	int ret = (int)PT_REGS_RC(ctx);
	__u64 moved = 0;
	if (c.len_ptr) {
		if (ret != 1)
			return 0;
		if (bpf_probe_read_user(&moved, sizeof(moved), (void *)c.len_ptr))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		moved = (__u64)ret;
	}
	if (moved == 0)
		return 0;

	if (!from_call) {
		__u64 *known = bpf_map_lookup_elem(&tls_socks, &key);
		if (!known) {
			count(OE_CNT_TLS_NO_SOCKET);
			return 0;
		}
		c.conn_id = *known;
	}
	/* Gone (closed, or forgotten by userspace and not announced again by
	 * a read or write since): no connection to give the plaintext to. */
	struct oe_conn_info *conn = bpf_map_lookup_elem(&conns, &c.conn_id);
	if (!conn || !(conn->flags & OE_CONN_F_ANNOUNCED)) {
		count(OE_CNT_TLS_NO_SOCKET);
		return 0;
	}
	if (!(conn->flags & OE_CONN_F_TLS))
		conn->flags |= OE_CONN_F_TLS;
	if (conn->flags & OE_CONN_F_TLS_MUTED)
		return 0;

	struct io_args a = { .buf = c.buf, .conn_id = c.conn_id, .iovcnt = 0, .sys = c.sys, .dir = c.dir };
	emit_data(ctx, REST_UPROBE, pid_tgid, &a, moved, conn);
	return 0;
}
