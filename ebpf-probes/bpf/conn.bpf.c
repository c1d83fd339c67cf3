/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Connection lifecycle: accept, connect, close. */
#include "sock.h"


static __always_inline int on_accept_exit(struct sys_exit_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32) || ctx->ret < 0)
		return 0;
	/* The new socket is already connected: addresses come from it, not from
	 * the (optional, possibly NULL) sockaddr the caller passed. */
	struct sock *sk = fd_to_sock((__s32)ctx->ret);
	if (is_tcp(sk))
		track_conn(pid_tgid, (__s32)ctx->ret, sk, OE_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int oe_exit_accept(struct sys_exit_ctx *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int oe_exit_accept4(struct sys_exit_ctx *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int oe_exit_connect(struct sys_exit_ctx *ctx)
{
	/* Non-blocking connects return -EINPROGRESS with both ends already bound. */
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	/* The fd argument, from the user registers saved at entry. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__s32 fd = (__s32)regs->di;
	struct sock *sk = fd_to_sock(fd);
	if (is_tcp(sk))
		track_conn(pid_tgid, fd, sk, OE_ROLE_CLIENT);
	return 0;
}

/* fd no longer names what it did: the connection it was ends (an event
 * for userspace) and whatever was cached about it goes. */
static __always_inline int fd_ended(__u64 pid_tgid, __s32 fd)
{
	struct oe_fd_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	struct oe_conn_info *info = bpf_map_lookup_elem(&conns, &key);
	if (!info) {
		/* Looked up first: a delete takes the bucket lock even on a miss,
		 * and most closed fds (files) were never cached. */
		if (bpf_map_lookup_elem(&not_sock, &key))
			bpf_map_delete_elem(&not_sock, &key);
		return 0;
	}
	__u64 conn_id = info->conn_id;
	__u32 image = info->exec_id;
	bpf_map_delete_elem(&conns, &key);
	/* Left by an earlier image (lookup_conn): that connection ended at the
	 * exec, and userspace forgets it there; this fd is another file. */
	if (image != oe_exec_id())
		return 0;

	void *ring;
	struct oe_conn_close *ev = reserve_event(sizeof(*ev), &ring);
	if (!ev)
		return 0;
	fill_header(&ev->hdr, pid_tgid, OE_EV_CONN_CLOSE, fd, conn_id);
	bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int oe_enter_close(struct sys_enter_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	return fd_ended(pid_tgid, (__s32)ctx->args[0]);
}

/* dup2/dup3 close their target fd without a close() call and make it
 * another file's: the old connection on it ends there. */
SEC("tracepoint/syscalls/sys_exit_dup2")
int oe_exit_dup(struct sys_exit_ctx *ctx)
{
	if (ctx->ret < 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	/* dup2(fd, fd) changes nothing. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if ((__s32)regs->di == (__s32)ctx->ret)
		return 0;
	return fd_ended(pid_tgid, (__s32)ctx->ret);
}

/* fd_ended as a function of its own: the verifier checks it once, not once
 * per iteration of close_range's loop. */
__noinline int oe_range_fd_ended(__u64 pid_tgid, __s32 fd)
{
	return fd_ended(pid_tgid, fd);
}

/* close_range() flag: mark the range close-on-exec, close nothing (the
 * exec check in lookup_conn covers them). From linux/close_range.h. */
#define OE_CLOSE_RANGE_CLOEXEC (1U << 2)
/* At most this many fds past `first` are ended; a process closing a larger
 * range of a larger table keeps entries for the rest until their numbers
 * are closed, dup2'ed over or exec'ed away. */
#define OE_CLOSE_RANGE_MAX 4096

/* close_range(first, last, flags) closes every fd in [first, last] with no
 * close() call each. */
SEC("tracepoint/syscalls/sys_exit_close_range")
int oe_exit_close_range(struct sys_exit_ctx *ctx)
{
	if (ctx->ret != 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	/* A pid past fd_pids (pid_max raised since start-up) is walked. */
	if (!is_traced(tgid) || !pid_bit(&fd_pids, tgid, true))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (regs->dx & OE_CLOSE_RANGE_CLOEXEC)
		return 0;
	__u32 first = (__u32)regs->di;
	__u32 last = (__u32)regs->si;
	/* No fd lies past the table, and the common call closes up to ~0U.
	 * (With CLOSE_RANGE_UNSHARE the new table can be smaller than the old
	 * one was: entries past it stay, as past OE_CLOSE_RANGE_MAX.) */
	__u32 size = BPF_CORE_READ(task, files, fdt, max_fds);
	if (size == 0 || first >= size)
		return 0;
	if (last >= size)
		last = size - 1;
	if (first > last)
		return 0;
	__u32 n = last - first + 1;
	for (__u32 i = 0; i < OE_CLOSE_RANGE_MAX; i++) {
		if (i >= n)
			break;
		oe_range_fd_ended(pid_tgid, (__s32)(first + i));
	}
	return 0;
}
