/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Process lifecycle: userspace releases a process's state when it exits. */
#include "common.h"

SEC("tracepoint/sched/sched_process_exit")
int oe_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	/* Only the whole process going away matters, not each thread. */
	if ((__u32)pid_tgid != (__u32)(pid_tgid >> 32) || is_self(pid_tgid >> 32))
		return 0;
	struct oe_proc_exit *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(OE_CNT_RINGBUF_FULL);
		return 0;
	}
	fill_header(&ev->hdr, pid_tgid, OE_EV_PROC_EXIT, -1, 0);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
