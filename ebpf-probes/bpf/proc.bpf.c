/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Process lifecycle: selection follows forks; userspace re-reads identity on
 * exec and releases a process's state on exit. */
#include "common.h"

/* raw_tracepoint context: the tracepoint's arguments. Our own layout, so no
 * CO-RE relocation indexes bpf_raw_tracepoint_args' flexible array. */
struct raw_tp_args {
	__u64 args[2];
};

SEC("raw_tracepoint/sched_process_fork")
int oe_process_fork(struct raw_tp_args *ctx)
{
	if (pid_mode == OE_PIDS_ALL)
		return 0;
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	/* Threads share their process's decision already. */
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	/* Copied either way: a set bit left by an earlier process with this pid
	 * (its exit unseen) must not decide for the child. */
	set_pid_bit(&pid_bits, child_tgid, pid_bit(&pid_bits, BPF_CORE_READ(parent, tgid), false));
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int oe_process_exec(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) == self_tgid)
		return 0;
	void *ring;
	struct oe_proc_exec *ev = reserve_event(sizeof(*ev), &ring);
	if (!ev)
		return 0;
	fill_header(&ev->hdr, pid_tgid, OE_EV_PROC_EXEC, 0);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int oe_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	/* A thread killed inside SSL_read() never reaches its return. */
	if (tls_enabled)
		bpf_map_delete_elem(&tls_calls, &pid_tgid);
	/* Beyond that, only the whole process going away matters: the last of its
	 * threads (not the leader, which can exit while others still read). */
	if (tgid == self_tgid)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	if (pid_mode != OE_PIDS_ALL)
		set_pid_bit(&pid_bits, tgid, false);
	if (tls_enabled)
		set_pid_bit(&tls_pids, tgid, false);
	void *ring;
	struct oe_proc_exit *ev = reserve_event(sizeof(*ev), &ring);
	if (!ev)
		return 0;
	fill_header(&ev->hdr, pid_tgid, OE_EV_PROC_EXIT, 0);
	bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
	return 0;
}
