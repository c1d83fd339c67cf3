/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Payload capture: what traced processes read from and write to TCP sockets.
 * sys_enter remembers the buffer of a call on a tracked socket; sys_exit
 * copies the prefix of what actually moved into the ring buffer. */
#include "sock.h"

#define MAX_IOV 8


/* Event under construction: too big for the stack. The spill area lets each
 * iovec copy start anywhere below OE_MAX_CAPTURE with a length up to it. */
struct scratch {
	struct oe_data ev;
	__u8 spill[OE_MAX_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_buf SEC(".maps");

/* struct user_msghdr, as the x86-64 syscall ABI lays it out. */
struct user_msghdr_abi {
	__u64 name;
	__s32 namelen;
	__s32 _pad;
	__u64 iov;
	__u64 iovlen;
};

struct iovec_abi {
	__u64 base;
	__u64 len;
};

static __always_inline int remember(__s32 fd, __u64 buf, __u32 iovcnt, __u16 sys, __u16 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	struct oe_conn_info *conn = lookup_conn(pid_tgid, fd);
	if (!conn)
		return 0;
	if (tls_enabled) {
		/* Inside SSL_read/SSL_write/handshake: ciphertext of this socket.
		 * Never copied; it names the socket for the uretprobe. */
		struct tls_call *tc = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
		if (tc) {
			tc->fd = fd;
			tc->conn_id = conn->conn_id;
			if (!(conn->flags & OE_CONN_F_TLS))
				conn->flags |= OE_CONN_F_TLS;
			return 0;
		}
	}
	/* Muted: userspace found the stream is nothing it parses. TLS: its
	 * syscalls outside OpenSSL calls (alerts, late handshake) are ciphertext. */
	if (conn->flags & (OE_CONN_F_MUTED | OE_CONN_F_TLS))
		return 0;
	struct io_args a = {
		.buf = buf, .conn_id = conn->conn_id, .fd = fd, .iovcnt = iovcnt, .sys = sys, .dir = dir,
	};
	if (bpf_map_update_elem(&in_flight, &pid_tgid, &a, BPF_ANY))
		count(OE_CNT_IO_TABLE_FULL);
	return 0;
}

static __always_inline int remember_msg(__s32 fd, __u64 msg, __u16 sys, __u16 dir)
{
	struct user_msghdr_abi m;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)msg))
		return 0;
	if (m.iovlen == 0)
		return 0;
	return remember(fd, m.iov, m.iovlen > MAX_IOV ? MAX_IOV : (__u32)m.iovlen, sys, dir);
}

SEC("tracepoint/syscalls/sys_enter_read")
int oe_enter_read(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], ctx->args[1], 0, OE_SYS_READ, OE_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int oe_enter_readv(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], ctx->args[1], ctx->args[2] > MAX_IOV ? MAX_IOV : ctx->args[2],
			OE_SYS_READV, OE_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int oe_enter_recvfrom(struct sys_enter_ctx *ctx)
{
	if (ctx->args[3] & MSG_PEEK) /* the same bytes will be read again */
		return 0;
	return remember(ctx->args[0], ctx->args[1], 0, OE_SYS_RECVFROM, OE_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int oe_enter_recvmsg(struct sys_enter_ctx *ctx)
{
	if (ctx->args[2] & MSG_PEEK)
		return 0;
	return remember_msg(ctx->args[0], ctx->args[1], OE_SYS_RECVMSG, OE_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_write")
int oe_enter_write(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], ctx->args[1], 0, OE_SYS_WRITE, OE_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int oe_enter_writev(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], ctx->args[1], ctx->args[2] > MAX_IOV ? MAX_IOV : ctx->args[2],
			OE_SYS_WRITEV, OE_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int oe_enter_sendto(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], ctx->args[1], 0, OE_SYS_SENDTO, OE_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int oe_enter_sendmsg(struct sys_enter_ctx *ctx)
{
	return remember_msg(ctx->args[0], ctx->args[1], OE_SYS_SENDMSG, OE_DIR_EGRESS);
}

/* sendfile moves file bytes to the socket: counted, never copied. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int oe_enter_sendfile64(struct sys_enter_ctx *ctx)
{
	return remember(ctx->args[0], 0, 0, OE_SYS_SENDFILE, OE_DIR_EGRESS);
}

static __always_inline __u32 copy_iov(__u8 *dst, const struct io_args *a, __u32 cap)
{
	__u32 off = 0;
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= a->iovcnt || off >= cap)
			break;
		struct iovec_abi iov;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(a->buf + i * sizeof(iov))))
			break;
		__u32 n = cap - off;
		if (iov.len < n)
			n = iov.len;
		if (n > OE_MAX_CAPTURE)
			n = OE_MAX_CAPTURE;
		off &= OE_MAX_CAPTURE - 1;
		if (bpf_probe_read_user(dst + off, n, (void *)iov.base))
			break;
		off += n;
	}
	return off;
}

/* Does this payload start with a request line a full-capture rule names?
 * Only payloads starting "POST " get this far; 16 rules of 8 word compares. */
static __always_inline bool wants_full_capture(const __u8 *payload, __u32 len)
{
	if (capture_rule_count == 0 || len < 5)
		return false;
	if (payload[0] != 'P' || payload[1] != 'O' || payload[2] != 'S' || payload[3] != 'T' || payload[4] != ' ')
		return false;
	const __u64 *words = (const __u64 *)payload;
	for (__u32 i = 0; i < OE_MAX_CAPTURE_RULES; i++) {
		if (i >= capture_rule_count)
			break;
		/* The lookup takes its key's address: a copy, so that the counter is
		 * not kept as 4 bytes at an unaligned stack offset, where the
		 * verifier loses its value and, seeing no progress, rejects the
		 * loop as infinite (it did once this was inlined into gotls.bpf.c). */
		__u32 key = i;
		struct oe_capture_rule *r = bpf_map_lookup_elem(&capture_rules, &key);
		if (!r)
			break;
		if (r->len == 0 || r->len > len)
			continue;
		__u64 diff = 0;
#pragma unroll
		for (int w = 0; w < OE_CAPTURE_RULE_WORDS; w++)
			diff |= (words[w] ^ r->word[w]) & r->mask[w];
		if (diff == 0)
			return true;
	}
	return false;
}

static __always_inline void send(struct oe_data *ev, __u32 copied)
{
	if (copied > OE_MAX_CAPTURE)
		copied = OE_MAX_CAPTURE;
	ev->meta.captured_len = copied;
	if (bpf_ringbuf_output(&events, ev, offsetof(struct oe_data, payload) + copied, wakeup_flag()))
		count(OE_CNT_RINGBUF_FULL);
}

/* Full capture: [from, to) of a user buffer, at most OE_FULL_CHUNKS / 2
 * events. Offsets derive from the loop index alone, which keeps the
 * verifier's walk of the loop short. */
static __always_inline void send_range(struct oe_data *ev, struct oe_conn_info *ci, __u64 buf, __u64 from, __u64 to)
{
	for (__u32 i = 0; i < OE_FULL_CHUNKS / 2; i++) {
		__u64 off = from + (__u64)i * OE_MAX_CAPTURE;
		if (off >= to)
			break;
		__u64 left = to - off;
		__u32 n = left > OE_MAX_CAPTURE ? OE_MAX_CAPTURE : (__u32)left;
		ev->meta.seq = __sync_fetch_and_add(&ci->seq, 1);
		ev->meta.total_len = n;
		/* Unreadable (paged out): counted, not copied. */
		if (bpf_probe_read_user(ev->payload, n, (void *)(buf + off)))
			n = 0;
		send(ev, n);
	}
}

/* Sends a data event: the prefix of what moved through a->buf (an iovec
 * array when a->iovcnt > 0), `moved` bytes in all. Shared by the syscall exit
 * below and the OpenSSL uretprobe (tls.bpf.c). A connection in full capture
 * gets all of a contiguous buffer, as consecutive events each looking like a
 * syscall of its own (only the last may have uncaptured bytes). */
static __always_inline void emit_data(__u64 pid_tgid, const struct io_args *a, __u64 moved)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return;
	struct oe_data *ev = &s->ev;
	fill_header(&ev->meta.hdr, pid_tgid, OE_EV_DATA, a->fd, a->conn_id);
	ev->meta.total_len = moved > 0xffffffffULL ? 0xffffffff : (__u32)moved;
	ev->meta.direction = a->dir;
	ev->meta.syscall = a->sys;
	/* Numbered only when the event is built, so calls that moved nothing
	 * (EAGAIN) leave no hole; a hole means the ring buffer dropped one. */
	struct oe_fd_key key = { .tgid = pid_tgid >> 32, .fd = a->fd };
	struct oe_conn_info *ci = bpf_map_lookup_elem(&conns, &key);
	if (ci && ci->conn_id != a->conn_id)
		ci = NULL;
	ev->meta.seq = ci ? __sync_fetch_and_add(&ci->seq, 1) : OE_SEQ_UNKNOWN;
	bool full = ci && (ci->flags & OE_CONN_F_FULL);

	__u32 cap = full ? OE_MAX_CAPTURE : capture_bytes;
	if (cap > OE_MAX_CAPTURE)
		cap = OE_MAX_CAPTURE;
	if (moved < cap)
		cap = (__u32)moved;
	__u32 copied = 0;
	if (a->sys == OE_SYS_SENDFILE) {
		copied = 0;
	} else if (a->iovcnt == 0) {
		if (bpf_probe_read_user(ev->payload, cap, (void *)a->buf) == 0)
			copied = cap;
	} else {
		copied = copy_iov(ev->payload, a, cap);
	}
	if (copied > OE_MAX_CAPTURE)
		copied = OE_MAX_CAPTURE;
	if (ci && !full && wants_full_capture(ev->payload, copied)) {
		ci->flags |= OE_CONN_F_FULL;
		full = true;
	}
	if (!full || a->iovcnt != 0 || copied == 0 || moved <= copied) {
		send(ev, copied);
		return;
	}
	/* The rest follows in events of their own: all of it up to
	 * OE_FULL_BYTES; past that its first and last halves, with an event
	 * that only counts the middle (usage totals sit at a body's end). */
	ev->meta.total_len = copied;
	send(ev, copied);
	__u64 half = OE_FULL_BYTES / 2, mid, tail;
	if (moved <= OE_FULL_BYTES) {
		mid = copied + half < moved ? copied + half : moved;
		tail = mid;
	} else {
		mid = half;
		tail = moved - half;
	}
	send_range(ev, ci, a->buf, copied, mid);
	if (tail > mid) {
		ev->meta.seq = __sync_fetch_and_add(&ci->seq, 1);
		__u64 hole = tail - mid;
		ev->meta.total_len = hole > 0xffffffffULL ? 0xffffffff : (__u32)hole;
		send(ev, 0);
	}
	send_range(ev, ci, a->buf, tail, moved);
}

/* One exit program serves every data syscall: their sys_exit records match. */
SEC("tracepoint/syscalls/sys_exit_read")
int oe_exit_data(struct sys_exit_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args *ap = bpf_map_lookup_elem(&in_flight, &pid_tgid);
	if (!ap)
		return 0;
	struct io_args a = *ap;
	bpf_map_delete_elem(&in_flight, &pid_tgid);
	__s64 ret = ctx->ret;
	if (ret <= 0)
		return 0;
	emit_data(pid_tgid, &a, (__u64)ret);
	return 0;
}
