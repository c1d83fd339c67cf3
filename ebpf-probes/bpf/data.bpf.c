/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Payload capture: what traced processes read from and write to TCP and UDP
 * sockets. Two data paths feed the same code and send the same events:
 *
 *   socket   tp_btf/sock_send_length and sock_recv_length (Linux >= 6.3):
 *            they fire inside sock_sendmsg/sock_recvmsg only, with the socket
 *            and the byte count; the user buffer is read from the syscall's
 *            saved registers. No syscall tracepoint is attached, so the
 *            syscalls of the host keep their fast path.
 *   syscall  the fallback for older kernels: the exits of the data syscalls
 *            (tracepoint/syscalls/sys_exit_*), fd -> socket -> its cookie,
 *            which our tp_btf programs set (conn.bpf.c). TCP only.
 *
 * Either way a call costs one program run, and one that moved nothing
 * (EAGAIN) returns at the first test. */
#include "sock.h"
#include "udp_flows.h"
#include <bpf/bpf_tracing.h>

#define MAX_IOV 32


/* Event under construction: too big for the stack. The spill area lets each
 * iovec copy start anywhere below OE_MAX_CAPTURE with a length up to it. */
struct scratch {
	struct oe_data ev;
	__u8 spill[OE_MAX_CAPTURE];
	/* The exit program's call, decoded here rather than on the stack: the
	 * verifier does not track map memory, so the nine syscalls' constants
	 * reach emit_data as one state instead of nine (which blew its budget). */
	struct io_args args;
	/* Full capture: what the tail-called program still has to send. */
	struct {
		__u64 buf;
		__u64 copied;
		__u64 moved;
	} rest;
};

/* The rest of a fully captured buffer is sent by a program of its own,
 * reached by tail call: its loops are verified once there, not along every
 * path of each capturing program (which took them to the verifier's
 * 1M-instruction limit). One array per program type: a tail call stays
 * within its type. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rest_btf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rest_tp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rest_uprobe SEC(".maps");

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

/* struct mmsghdr: a whole user_msghdr (56 bytes: the fields above, then
 * control, controllen, flags) and its msg_len, padded. */
#define MMSGHDR_ABI_SIZE 64
#define MMSGHDR_ABI_LEN_OFFSET 56
/* Entries of a sendmmsg/recvmmsg msgvec looked at for the current one. */
#define MMSG_SCAN 8

struct iovec_abi {
	__u64 base;
	__u64 len;
};

/* A call's iovec array, read in one go: each bpf_probe_read_user costs
 * ~60 ns however small (measured), so one read per element cost nginx's
 * two-element writev a read more than needed. Per CPU: too big for the stack. */
struct iov_array {
	struct iovec_abi v[MAX_IOV];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iov_array);
} iov_scratch SEC(".maps");

/* Gathers up to cap (<= room) bytes of an iovec array into dst, which must
 * hold 2 * room bytes: a piece may start anywhere below room (a power of
 * two) and run up to room more. */
static __always_inline __u32 copy_iov(__u8 *dst, const struct io_args *a, __u32 cap, __u32 room)
{
	__u32 zero = 0;
	struct iov_array *iovs = bpf_map_lookup_elem(&iov_scratch, &zero);
	__u32 cnt = a->iovcnt;
	if (!iovs || cnt == 0 || cnt > MAX_IOV)
		return 0;
	if (bpf_probe_read_user(iovs->v, cnt * sizeof(struct iovec_abi), (void *)a->buf))
		return 0;
	__u32 off = 0;
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= cnt || off >= cap)
			break;
		__u64 len = iovs->v[i].len;
		__u32 n = cap - off;
		if (len < n)
			n = len;
		if (n > room)
			n = room;
		off &= room - 1;
		if (bpf_probe_read_user(dst + off, n, (void *)iovs->v[i].base))
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

/* False when the event was lost (counted). */
static __always_inline bool send(struct oe_data *ev, __u32 copied)
{
	if (copied > OE_MAX_CAPTURE)
		copied = OE_MAX_CAPTURE;
	ev->meta.captured_len = copied;
	__u64 size = offsetof(struct oe_data, payload) + copied;
	void *ring = event_ring();
	if (!ring || bpf_ringbuf_output(ring, ev, size, wakeup_between(bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA), size))) {
		count(OE_CNT_RINGBUF_FULL);
		return false;
	}
	return true;
}

/* The lost event was the first of a turn of the connection: one in the
 * request direction began a request, whose span is lost. */
static __always_inline void count_lost_turn(const struct oe_conn_info *ci, bool egress)
{
	if ((ci->role == OE_ROLE_CLIENT) == egress)
		count(OE_CNT_REQUEST_STARTS_LOST);
}

/* The scratch event of this CPU and the connection its header names, for
 * the full-capture programs that build on an event emit_data started. */
static __always_inline struct oe_conn_info *scratch_conn(struct scratch **s)
{
	__u32 zero = 0;
	*s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!*s)
		return NULL;
	__u64 cookie = (*s)->ev.meta.hdr.conn_id;
	return bpf_map_lookup_elem(&conns, &cookie);
}

/* One piece of a full capture: n bytes at addr as an event of its own,
 * built in the scratch event whose header names the connection. Global, so
 * the verifier checks it once rather than once per iteration of the loops
 * below (it made each tail program cost 1.6 s to load). */
__noinline int oe_send_piece(__u64 addr, __u32 n)
{
	struct scratch *s;
	struct oe_conn_info *ci = scratch_conn(&s);
	if (!ci)
		return 0;
	struct oe_data *ev = &s->ev;
	if (n > OE_MAX_CAPTURE)
		n = OE_MAX_CAPTURE;
	ev->meta.seq = __sync_fetch_and_add(&ci->seq, 1);
	ev->meta.total_len = n;
	/* Unreadable (paged out): counted, not copied. */
	if (bpf_probe_read_user(ev->payload, n, (void *)addr))
		n = 0;
	send(ev, n);
	return 0;
}

/* Full capture: [from, to) of a user buffer, at most OE_FULL_CHUNKS / 2
 * events. Offsets derive from the loop index alone, which keeps the
 * verifier's walk of the loop short. */
static __always_inline void send_range(__u64 buf, __u64 from, __u64 to)
{
	for (__u32 i = 0; i < OE_FULL_CHUNKS / 2; i++) {
		__u64 off = from + (__u64)i * OE_MAX_CAPTURE;
		if (off >= to)
			break;
		__u64 left = to - off;
		oe_send_piece(buf + off, left > OE_MAX_CAPTURE ? OE_MAX_CAPTURE : (__u32)left);
	}
}

/* Which program array holds the rest of a full capture for the caller's
 * program type. */
#define REST_BTF 0
#define REST_TP 1
#define REST_UPROBE 2

/* Sends a data event: the prefix of what moved through a->buf (an iovec
 * array when a->iovcnt > 0; nothing when a->buf is 0), `moved` bytes in all.
 * Shared by both data paths and the TLS uprobes. A connection in full
 * capture gets all of a contiguous buffer, as consecutive events each
 * looking like a syscall of its own (only the last may have uncaptured
 * bytes). `rest`: REST_*, a constant. */
static __always_inline void emit_data(void *ctx, int rest, __u64 pid_tgid, const struct io_args *a,
				      __u64 moved, struct oe_conn_info *ci)
{
	/* Numbered only when the event is built, so calls that moved nothing
	 * (EAGAIN) leave no hole; a hole means the ring buffer dropped one. */
	__u32 seq = __sync_fetch_and_add(&ci->seq, 1);
	bool full = ci->flags & OE_CONN_F_FULL;
	bool egress = a->dir == OE_DIR_EGRESS;
	bool turn = egress != ((ci->flags & OE_CONN_F_LAST_EGRESS) != 0);
	if (turn)
		ci->flags ^= OE_CONN_F_LAST_EGRESS;

	__u32 cap = full ? OE_MAX_CAPTURE : capture_bytes;
	if (cap > OE_MAX_CAPTURE)
		cap = OE_MAX_CAPTURE;
	if (moved < cap)
		cap = (__u32)moved;
	/* Built in the per-CPU scratch event, then copied into a ring record
	 * of exactly its size (bpf_ringbuf_output): a record reserved in the
	 * ring must have a constant size, so reading straight into it meant
	 * reserving 256 or 1024 bytes (twice that for an iovec array) for a
	 * 40-byte request. Measured on the socket path (nginx, server side):
	 * the second copy costs no more BPF time than the rooms did (1947 vs
	 * 2019 ns per request, 5 interleaved rounds), and the default rings
	 * outlast a stalled reader ~3.5x longer (bench/loss.py: ~1.9 s at
	 * 5,000 req/s, both sides traced, against ~0.5 s). */
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return;
	struct oe_data *ev = &s->ev;
	fill_header(&ev->meta.hdr, pid_tgid, OE_EV_DATA, a->conn_id);
	ev->meta.total_len = moved > 0xffffffffULL ? 0xffffffff : (__u32)moved;
	ev->meta.direction = a->dir;
	ev->meta.syscall = a->sys;
	ev->meta.seq = seq;
	/* Clang knows cap's bound from above and drops a plain re-check, but
	 * the verifier lost it on the way here. */
	barrier_var(cap);
	if (cap > OE_MAX_CAPTURE)
		cap = OE_MAX_CAPTURE;
	__u32 copied = 0;
	if (!a->buf) {
		copied = 0;
	} else if (a->iovcnt == 0) {
		if (bpf_probe_read_user(ev->payload, cap, (void *)a->buf) == 0)
			copied = cap;
	} else {
		copied = copy_iov(ev->payload, a, cap, OE_MAX_CAPTURE);
	}
	if (copied > OE_MAX_CAPTURE)
		copied = OE_MAX_CAPTURE;
	if (!full && wants_full_capture(ev->payload, copied)) {
		ci->flags |= OE_CONN_F_FULL;
		full = true;
	}
	/* Full capture of a contiguous buffer: the rest follows in events of
	 * their own, all of it up to OE_FULL_BYTES; past that its first and
	 * last halves, with an event that only counts the middle (usage totals
	 * sit at a body's end). */
	if (!full || a->iovcnt != 0 || copied == 0 || moved <= copied) {
		if (!send(ev, copied) && turn)
			count_lost_turn(ci, egress);
		return;
	}
	/* Not counted when lost here: keeping that state across the tail call
	 * multiplies the verifier's paths. */
	ev->meta.total_len = copied;
	send(ev, copied);
	s->rest.buf = a->buf;
	s->rest.copied = copied;
	s->rest.moved = moved;
	if (rest == REST_BTF)
		bpf_tail_call(ctx, &rest_btf, 0);
	else if (rest == REST_TP)
		bpf_tail_call(ctx, &rest_tp, 0);
	else
		bpf_tail_call(ctx, &rest_uprobe, 0);
	count(OE_CNT_RINGBUF_FULL); /* no tail program: the rest is lost */
}

/* The tail of emit_data: the rest of a fully captured contiguous buffer, all
 * of it up to OE_FULL_BYTES; past that its first and last halves, with an
 * event that only counts the middle (usage totals sit at a body's end). The
 * scratch event's header names the connection. */
static __always_inline int send_rest(void)
{
	struct scratch *s;
	struct oe_conn_info *ci = scratch_conn(&s);
	if (!ci)
		return 0;
	struct oe_data *ev = &s->ev;
	__u64 buf = s->rest.buf, copied = s->rest.copied, moved = s->rest.moved;
	/* Bounds the caller guaranteed, restated: from map memory the verifier
	 * knows nothing, and unbounded offsets multiply its paths. A syscall
	 * moves at most 0x7ffff000 bytes. */
	if (copied == 0 || copied > OE_MAX_CAPTURE || moved <= copied || moved > 0x7ffff000)
		return 0;
	__u64 half = OE_FULL_BYTES / 2, mid, tail;
	if (moved <= OE_FULL_BYTES) {
		mid = copied + half < moved ? copied + half : moved;
		tail = mid;
	} else {
		mid = half;
		tail = moved - half;
	}
	send_range(buf, copied, mid);
	if (tail > mid) {
		ev->meta.seq = __sync_fetch_and_add(&ci->seq, 1);
		__u64 hole = tail - mid;
		ev->meta.total_len = hole > 0xffffffffULL ? 0xffffffff : (__u32)hole;
		send(ev, 0);
	}
	send_range(buf, tail, moved);
	return 0;
}

/* Loaded for sock_send_length, tail-called by both socket programs (their
 * tracepoints share one prototype). */
SEC("tp_btf/sock_send_length")
int oe_rest_btf(void *ctx)
{
	return send_rest();
}

SEC("tracepoint")
int oe_rest_tp(void *ctx)
{
	return send_rest();
}

SEC("uprobe")
int oe_rest_uprobe(struct pt_regs *ctx)
{
	return send_rest();
}

/* x86-64 syscall numbers (the tracepoint record's id, the saved orig_ax). */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDFILE 40
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_SPLICE 275
#define NR_PREADV 295
#define NR_PWRITEV 296
#define NR_RECVMMSG 299
#define NR_SENDMMSG 307
#define NR_PREADV2 327
#define NR_PWRITEV2 328
#define NR_IO_URING_ENTER 426

/* Which way a syscall moves bytes; 0 for one that is not a data syscall. */
static __always_inline __u16 syscall_dir(__s64 nr)
{
	switch (nr) {
	case NR_READ:
	case NR_READV:
	case NR_RECVFROM:
	case NR_RECVMSG:
	case NR_PREADV:
	case NR_PREADV2:
	case NR_RECVMMSG:
		return OE_DIR_INGRESS;
	case NR_WRITE:
	case NR_WRITEV:
	case NR_SENDTO:
	case NR_SENDMSG:
	case NR_PWRITEV:
	case NR_PWRITEV2:
	case NR_SENDFILE:
	case NR_SPLICE:
	case NR_SENDMMSG:
		return OE_DIR_EGRESS;
	}
	return 0;
}

/* Does the syscall name its socket by fd in its first argument? */
static __always_inline bool fd_in_first_arg(__s64 nr)
{
	return nr != NR_SPLICE && syscall_dir(nr) != 0;
}

/* The call's buffer, from the user registers saved at syscall entry
 * (unchanged by the syscall; only ax gets the result). Fills a->buf (0: no
 * user buffer to copy, the event only counts), iovcnt and sys; false for
 * calls not to report at all (a peek: the same bytes will be read again). */
static __always_inline bool syscall_args(__s64 nr, struct pt_regs *regs, struct io_args *a)
{
	__u64 arg1 = regs->si, arg2 = regs->dx;
	a->buf = arg1;
	a->iovcnt = 0;
	switch (nr) {
	case NR_READ:
		a->sys = OE_SYS_READ;
		return true;
	case NR_WRITE:
		a->sys = OE_SYS_WRITE;
		return true;
	case NR_READV:
	case NR_WRITEV:
	case NR_PREADV:
	case NR_PWRITEV:
	case NR_PREADV2:
	case NR_PWRITEV2:
		if (arg2 == 0)
			return false;
		a->iovcnt = arg2 > MAX_IOV ? MAX_IOV : (__u32)arg2;
		a->sys = a->dir == OE_DIR_INGRESS ? OE_SYS_READV : OE_SYS_WRITEV;
		return true;
	case NR_RECVFROM:
		if (regs->r10 & MSG_PEEK)
			return false;
		a->sys = OE_SYS_RECVFROM;
		return true;
	case NR_SENDTO:
		a->sys = OE_SYS_SENDTO;
		return true;
	case NR_RECVMSG:
	case NR_SENDMSG: {
		if (nr == NR_RECVMSG && (arg2 & MSG_PEEK))
			return false;
		struct user_msghdr_abi m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)arg1) || m.iovlen == 0)
			return false;
		a->buf = m.iov;
		a->iovcnt = m.iovlen > MAX_IOV ? MAX_IOV : (__u32)m.iovlen;
		a->sys = nr == NR_RECVMSG ? OE_SYS_RECVMSG : OE_SYS_SENDMSG;
		return true;
	}
	}
	/* No user buffer we can place: file bytes (sendfile, splice), or one
	 * message of several whose index the registers do not give. */
	a->buf = 0;
	switch (nr) {
	case NR_SENDFILE:
		a->sys = OE_SYS_SENDFILE;
		break;
	case NR_SPLICE:
		a->sys = OE_SYS_SPLICE;
		break;
	case NR_SENDMMSG:
		a->sys = OE_SYS_SENDMMSG;
		break;
	case NR_RECVMMSG:
		if (regs->r10 & MSG_PEEK)
			return false;
		a->sys = OE_SYS_RECVMMSG;
		break;
	default:
		a->sys = OE_SYS_OTHER;
	}
	return true;
}

/* The socket path inside sendmmsg/recvmmsg: which message this firing is
 * for. The kernel handles the messages in order and writes each one's
 * msg_len back once it is through, so the current message is the first
 * entry whose msg_len is still 0, as callers leave it (glibc's resolver,
 * libuv: zeroed arrays). No syscall enter tracepoint tells where a call
 * starts: attaching one takes every syscall of the host off its fast path.
 * A sent message must be exactly `ret` bytes in one iovec, a received one
 * fit its iovec; else (an array left dirty, several iovecs) it stays
 * counted only. */
static __always_inline void mmsg_message(struct pt_regs *regs, struct io_args *a, __s64 ret)
{
	__u64 vlen = regs->dx;
	for (__u32 i = 0; i < MMSG_SCAN; i++) {
		if ((__u64)i >= vlen)
			return;
		__u64 entry = regs->si + (__u64)i * MMSGHDR_ABI_SIZE;
		__u32 done;
		if (bpf_probe_read_user(&done, sizeof(done), (void *)(entry + MMSGHDR_ABI_LEN_OFFSET)))
			return;
		if (done)
			continue;
		struct user_msghdr_abi m;
		struct iovec_abi v;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)entry) || m.iovlen != 1 ||
		    bpf_probe_read_user(&v, sizeof(v), (void *)m.iov))
			return;
		if (a->dir == OE_DIR_EGRESS ? v.len != (__u64)ret : v.len < (__u64)ret)
			return;
		a->buf = m.iov;
		a->iovcnt = 1;
		return;
	}
}

/* OE_DATA_F_OVERLAP for a TCP socket-path event that moved `moved` bytes
 * (see events.h): a data event is stamped when its call completes, so a
 * reply read while the send it answers is still in the kernel (a blocked
 * upload, or a writer preempted after loopback delivered its bytes) would
 * otherwise come first. Costs one read of tcp_sock.write_seq per event. */
static __always_inline __u16 overlap_mark(struct sock *sk, struct oe_conn_info *ci, __u16 dir, __u64 moved)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	__u32 write_seq = tp->write_seq;
	if (!(ci->flags & OE_CONN_F_SEQ_KNOWN)) {
		/* First event: write_seq when nothing was written yet, from the
		 * bytes acknowledged (a client's count includes its SYN; where
		 * it does not, this is one past, and only a 1-byte send in
		 * flight goes unseen). */
		ci->sent_seq = tp->snd_una - tp->bytes_acked + 1;
		ci->held_seq = 0;
		ci->flags |= OE_CONN_F_SEQ_KNOWN;
	}
	if (dir == OE_DIR_EGRESS) {
		__u32 start = write_seq - (__u32)moved;
		__u16 mark = ci->held_seq && (__s32)(ci->held_seq - start) > 0 ? OE_DATA_F_OVERLAP : 0;
		ci->held_seq = 0;
		ci->sent_seq = write_seq;
		return mark;
	}
	if ((__s32)(write_seq - ci->sent_seq) <= 0)
		return 0;
	if (!ci->held_seq)
		ci->held_seq = write_seq;
	return OE_DATA_F_OVERLAP;
}

/* The work of both data paths once the socket and the call are known:
 * `dir` is the way the bytes moved, `nr` the syscall they moved in. */
static __always_inline int capture(void *ctx, int rest, struct sock *sk, __u64 cookie, __u64 pid_tgid,
				   __u32 image, struct pt_regs *regs, __s64 nr, __u16 dir, __s64 ret)
{
	struct oe_conn_info *conn = conn_of(sk, cookie, pid_tgid, dir, image);
	if (!conn)
		return 0;
	/* A pid past tls_pids (pid_max raised since start-up) is looked up. */
	if (tls_enabled && pid_bit(&tls_pids, pid_tgid >> 32, true)) {
		/* Inside SSL_read/SSL_write/handshake: ciphertext of this socket.
		 * Never copied; it names the socket for the uretprobe. */
		struct tls_call *tc = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
		if (tc) {
			tc->conn_id = cookie;
			if (!(conn->flags & OE_CONN_F_TLS))
				conn->flags |= OE_CONN_F_TLS;
			return 0;
		}
	}
	/* Muted: userspace found the stream is nothing it parses. TLS: its
	 * bytes outside OpenSSL calls (alerts, late handshake) are ciphertext. */
	if (conn->flags & (OE_CONN_F_MUTED | OE_CONN_F_TLS))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 0;
	struct io_args *a = &s->args;
	a->conn_id = cookie;
	a->dir = dir;
	if (!syscall_args(nr, regs, a))
		return 0;
	if (rest == REST_BTF) {
		if (nr == NR_SENDMMSG || nr == NR_RECVMMSG)
			mmsg_message(regs, a, ret);
		a->sys |= overlap_mark(sk, conn, dir, (__u64)ret);
	}
	emit_data(ctx, rest, pid_tgid, a, (__u64)ret, conn);
	return 0;
}

/* The socket path: sock_sendmsg/sock_recvmsg moved `ret` bytes through sk.
 * Everything that is not a traced process's own TCP or UDP call leaves at
 * the cheapest test that tells: nothing moved, a peek, not IP (UNIX
 * sockets), a process not selected. */
static __always_inline int on_sock_data(void *ctx, struct sock *sk, int ret, int flags, __u16 dir)
{
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	if (!is_inet(sk->__sk_common.skc_family))
		return 0;
	/* Every process's datagrams, before selection and muting. */
	udp_flow_count(sk, ret, dir);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* Kernel threads have no user registers; io_uring's workers neither,
	 * and their calls are the application's I/O, lost to us: counted. */
	if (task->flags & (PF_KTHREAD | PF_IO_WORKER)) {
		if (task->flags & PF_IO_WORKER)
			count(OE_CNT_IO_URING);
		return 0;
	}
	/* A kernel socket (NFS, SMB...) used on behalf of a syscall about
	 * something else: the registers describe that syscall. */
	struct socket *so = sk->sk_socket;
	if (!so || !so->file)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__s64 nr = regs->orig_ax;
	if (nr == NR_IO_URING_ENTER) {
		count(OE_CNT_IO_URING);
		return 0;
	}
	/* io_uring also issues requests from task work, which runs on the
	 * way out of any syscall: in a process that uses it, the registers
	 * count only if their fd is this socket. */
	if (bpf_core_field_exists(task->io_uring) && task->io_uring &&
	    (!fd_in_first_arg(nr) || fd_to_sock((__s32)regs->di) != sk)) {
		count(OE_CNT_IO_URING);
		return 0;
	}
	/* A syscall that moves the other way (kernel-internal) only counts. */
	if (syscall_dir(nr) != dir)
		nr = -1;
	/* The cookie as stored (a load); made only the first time. */
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	if (!cookie)
		cookie = bpf_get_socket_cookie(sk);
	return capture(ctx, REST_BTF, sk, cookie, pid_tgid, (__u32)task->self_exec_id, regs, nr, dir, ret);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(oe_sock_send, struct sock *sk, int ret, int flags)
{
	return on_sock_data(ctx, sk, ret, flags, OE_DIR_EGRESS);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(oe_sock_recv, struct sock *sk, int ret, int flags)
{
	return on_sock_data(ctx, sk, ret, flags, OE_DIR_INGRESS);
}

/* The syscall path: one exit program serves every data syscall (their
 * sys_exit records match, and the record's syscall number says which call
 * it was). TCP sockets only: their cookies exist (conn.bpf.c makes one for
 * every TCP socket), those of UDP sockets may not. */
SEC("tracepoint/syscalls/sys_exit_read")
int oe_exit_data(struct sys_exit_ctx *ctx)
{
	__s64 ret = ctx->ret;
	if (ret <= 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct sock *sk = fd_to_sock((__s32)regs->di);
	if (!sk || !is_inet(BPF_CORE_READ(sk, __sk_common.skc_family)) ||
	    BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_NUM)
		return 0;
	__u64 cookie = stored_cookie(sk);
	if (!cookie)
		return 0;
	__u16 dir = syscall_dir(ctx->nr);
	if (!dir)
		return 0;
	return capture(ctx, REST_TP, sk, cookie, pid_tgid, current_image(), regs, ctx->nr, dir, ret);
}
