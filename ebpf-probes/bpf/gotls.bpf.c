/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* TLS plaintext of Go programs, at crypto/tls.(*Conn).Read and .Write (Go
 * does not use OpenSSL). x86-64, Go >= 1.17 (register ABI). Userspace
 * (ebpf-core/src/tls/go.rs) attaches, per Go executable:
 *
 *   oe_go_tls_read_enter   at the entry of Read: remembers the call
 *   oe_go_tls_read_ret     at every RET instruction of Read: emits what it read
 *   oe_go_tls_write_enter  at the entry of Write, just past its stack check:
 *                          emits what it is given (a function that grows its
 *                          stack runs again from its first byte, so a probe
 *                          there would report one Write twice)
 *   oe_go_tls_handshake    at the entry of clientHandshake and serverHandshake
 *
 * Uretprobes are unsafe on Go: they rewrite the return address on the
 * goroutine stack, which the runtime copies elsewhere when the stack grows
 * (and walks, for GC and tracebacks). Hence uprobes on the RETs. Goroutines
 * also migrate between threads mid-call, so calls are keyed by goroutine (its
 * `g`, which the register ABI keeps in R14), not by thread.
 *
 * Writes are emitted at entry, not at return: Go's HTTP client writes and
 * reads a connection from two goroutines, so the response's Read can return
 * before the request's Write does; at entry the request is always first.
 * (A write that then fails is reported all the same.)
 *
 * The socket comes from the *tls.Conn itself, not from the syscalls made
 * inside the call as for OpenSSL (those run on whatever thread the goroutine
 * is on, and a read that would block parks it). The connection is flagged
 * OE_CONN_F_TLS at the handshake, or at the first Read/Write for connections
 * whose handshake was missed: its syscalls carry ciphertext, never copied.
 * Such connections are joined carefully (OE_CONN_F_GO_JOINING, below). */
#include "sock.h"

/* Go's register ABI (ABIInternal, amd64; Go >= 1.17): the receiver and the
 * arguments in RAX, RBX, RCX, RDI, ...; results in the same registers; the
 * current goroutine in R14 throughout Go code. For
 * func (c *Conn) Read(b []byte) (n int, err error): c = RAX, b = RBX (ptr),
 * RCX (len), RDI (cap); at RET n = RAX. */
#define GO_ARG0(ctx) ((ctx)->ax)
#define GO_ARG1(ctx) ((ctx)->bx)
#define GO_ARG2(ctx) ((ctx)->cx)
#define GO_RET0(ctx) ((ctx)->ax)
#define GO_G(ctx) ((ctx)->r14)

/* Layouts the probes walk from a *tls.Conn to its file descriptor. Unchanged
 * since Go 1.12; checked against the DWARF of a go1.26 binary (x86-64) and by
 * tests/tests/go_tls.rs against the installed Go:
 *   crypto/tls.Conn   conn net.Conn at 0: an interface, (itab, data)
 *   net.TCPConn       conn{fd *netFD} at 0 (the interface's data word points to it)
 *   net.netFD         pfd internal/poll.FD at 0
 *   internal/poll.FD  fdmu fdMutex (uint64 + 2 x uint32) at 0, Sysfd int at 16
 *   runtime.g         stack{lo, hi uintptr} at 0 */
#define GO_TLS_CONN_CONN_DATA 8 /* tls.Conn.conn's data word */
#define GO_TCPCONN_FD 0         /* net.TCPConn -> *netFD */
#define GO_NETFD_SYSFD 16       /* netFD.pfd.Sysfd */
#define GO_G_STACK 0            /* g.stack */

struct go_tls_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};

/* A Read in flight. The goroutine's stack bounds at entry let the RET follow
 * a buffer on that stack if the stack moved meanwhile. */
struct go_tls_read {
	__u64 buf;
	__u64 conn_id;
	__u64 stack_lo;
	__u64 stack_hi;
};

/* LRU: an entry whose RET never comes (a panic unwinding through the call, a
 * process exiting mid-call) cannot be found by thread exit as tls_calls'
 * are; it ages out instead. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_tls_key);
	__type(value, struct go_tls_read);
} go_tls_reads SEC(".maps");

struct go_stack {
	__u64 lo;
	__u64 hi;
};

/* The fd under a *tls.Conn, -1 when the chain cannot be read. A net.Conn of
 * another type than *net.TCPConn (a wrapper) yields garbage here; only a fd
 * that is a socket of this process is ever used (go_tls_conn). */
static __always_inline __s32 go_conn_fd(__u64 tls_conn)
{
	__u64 tcp_conn = 0, net_fd = 0;
	__s64 sysfd = -1;
	if (!tls_conn || bpf_probe_read_user(&tcp_conn, sizeof(tcp_conn), (void *)(tls_conn + GO_TLS_CONN_CONN_DATA)))
		return -1;
	if (!tcp_conn || bpf_probe_read_user(&net_fd, sizeof(net_fd), (void *)(tcp_conn + GO_TCPCONN_FD)))
		return -1;
	if (!net_fd || bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(net_fd + GO_NETFD_SYSFD)))
		return -1;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return (__s32)sysfd;
}

/* The tracked connection under a *tls.Conn, flagged TLS, and its id;
 * `joining`: flag one not flagged yet OE_CONN_F_GO_JOINING too. The socket's
 * cookie was made by our tp_btf or iter programs (conn.bpf.c) when it
 * opened, or at start-up for older ones; without one it is unknown. */
static __always_inline struct oe_conn_info *go_tls_conn(__u64 pid_tgid, __u64 tls_conn, __u32 dir, __u64 *cookie,
							bool joining)
{
	__s32 fd = go_conn_fd(tls_conn);
	if (fd < 0)
		return NULL;
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return NULL;
	*cookie = stored_cookie(sk);
	if (!*cookie)
		return NULL;
	struct oe_conn_info *conn = conn_of(sk, *cookie, pid_tgid, dir, current_image());
	if (conn && !(conn->flags & OE_CONN_F_TLS))
		conn->flags |= OE_CONN_F_TLS | (joining ? OE_CONN_F_GO_JOINING : 0);
	return conn;
}

/* A connection whose handshake was not seen (it predates the probes) is met
 * mid-stream, and a Read that started before the probes may be in flight on
 * it: Go's Read waits for data (a keep-alive connection always has one
 * waiting). Its bytes will be missing, so a request written now could be
 * paired with the response to the next one. Its writes are dropped
 * (OE_CONN_F_GO_JOINING) until a Read is seen starting: whatever answers
 * them is then captured. */

SEC("uprobe")
int oe_go_tls_read_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	struct go_tls_key key = { .g = GO_G(ctx), .tgid = pid_tgid >> 32 };
	__u64 cookie = 0;
	struct oe_conn_info *conn = go_tls_conn(pid_tgid, GO_ARG0(ctx), OE_DIR_INGRESS, &cookie, false);
	if (conn && (conn->flags & OE_CONN_F_GO_JOINING))
		conn->flags &= ~OE_CONN_F_GO_JOINING;
	if (!conn || (conn->flags & OE_CONN_F_TLS_MUTED)) {
		/* A call of this goroutine whose RET was never seen must not be
		 * taken for this one's. */
		bpf_map_delete_elem(&go_tls_reads, &key);
		return 0;
	}
	struct go_tls_read r = { .buf = GO_ARG1(ctx), .conn_id = cookie };
	struct go_stack st = {};
	if (bpf_probe_read_user(&st, sizeof(st), (void *)(key.g + GO_G_STACK)) == 0) {
		r.stack_lo = st.lo;
		r.stack_hi = st.hi;
	}
	/* A function whose prologue grows the stack (morestack) re-enters from the
	 * top with the same arguments: the second entry overwrites the first. */
	if (bpf_map_update_elem(&go_tls_reads, &key, &r, BPF_ANY))
		count(OE_CNT_IO_TABLE_FULL);
	return 0;
}

/* Every RET of Read. */
SEC("uprobe")
int oe_go_tls_read_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_tls_key key = { .g = GO_G(ctx), .tgid = pid_tgid >> 32 };
	struct go_tls_read *rp = bpf_map_lookup_elem(&go_tls_reads, &key);
	if (!rp)
		return 0;
	struct go_tls_read r = *rp;
	bpf_map_delete_elem(&go_tls_reads, &key);
	__s64 n = (__s64)GO_RET0(ctx);
	if (n <= 0)
		return 0;
	/* A buffer on the goroutine's stack moved with it if the stack grew
	 * during the call: runtime.copystack shifts such pointers by the
	 * difference of the stacks' tops, and so do we. */
	if (r.buf >= r.stack_lo && r.buf < r.stack_hi) {
		struct go_stack st = {};
		if (bpf_probe_read_user(&st, sizeof(st), (void *)(key.g + GO_G_STACK)))
			return 0;
		r.buf += st.hi - r.stack_hi;
	}
	struct oe_conn_info *conn = bpf_map_lookup_elem(&conns, &r.conn_id);
	/* Closed or forgotten during the call, or muted meanwhile. */
	if (!conn || !(conn->flags & OE_CONN_F_ANNOUNCED) || (conn->flags & OE_CONN_F_TLS_MUTED))
		return 0;
	struct io_args a = { .buf = r.buf, .conn_id = r.conn_id, .iovcnt = 0, .sys = OE_SYS_SSL_READ, .dir = OE_DIR_INGRESS };
	emit_data(ctx, REST_UPROBE, pid_tgid, &a, (__u64)n, conn);
	return 0;
}

SEC("uprobe")
int oe_go_tls_write_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	__s64 len = (__s64)GO_ARG2(ctx);
	if (len <= 0)
		return 0;
	__u64 cookie = 0;
	struct oe_conn_info *conn = go_tls_conn(pid_tgid, GO_ARG0(ctx), OE_DIR_EGRESS, &cookie, true);
	if (!conn || (conn->flags & (OE_CONN_F_TLS_MUTED | OE_CONN_F_GO_JOINING)))
		return 0;
	struct io_args a = { .buf = GO_ARG1(ctx), .conn_id = cookie, .iovcnt = 0, .sys = OE_SYS_SSL_WRITE, .dir = OE_DIR_EGRESS };
	emit_data(ctx, REST_UPROBE, pid_tgid, &a, (__u64)len, conn);
	return 0;
}

/* (*Conn).clientHandshake / serverHandshake: flags the connection before its
 * first record, so handshake ciphertext never reaches userspace. */
SEC("uprobe")
int oe_go_tls_handshake(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	__u64 cookie;
	go_tls_conn(pid_tgid, GO_ARG0(ctx), OE_DIR_EGRESS, &cookie, false);
	return 0;
}
