/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* From a file descriptor to a tracked TCP connection. */
#ifndef OE_SOCK_H
#define OE_SOCK_H

#include "common.h"

/* The struct sock behind fd in the current task, or NULL when fd is not a socket. */
static __always_inline struct sock *fd_to_sock(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

static __always_inline bool is_tcp(struct sock *sk)
{
	if (!sk)
		return false;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_type) == SOCK_STREAM &&
	       BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP_NUM;
}

static __always_inline void map_v4(__u8 dst[16], __be32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(&dst[12], &addr, 4);
}

/* Does port selection want this connection? The server side's port decides;
 * for sockets found already open either port may. */
static __always_inline bool conn_selected(struct sock *sk, __u16 role)
{
	if (port_mode == OE_PORTS_ALL)
		return true;
	__u16 local = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 peer = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (role == OE_ROLE_SERVER)
		return port_selected(local);
	if (role == OE_ROLE_CLIENT)
		return port_selected(peer);
	if (port_mode == OE_PORTS_INCLUDE)
		return port_selected(local) || port_selected(peer);
	return port_selected(local) && port_selected(peer);
}

/* Starts tracking fd as a TCP connection and tells userspace where it goes. */
static __always_inline struct oe_conn_info *track_conn(__u64 pid_tgid, __s32 fd, struct sock *sk,
						       __u16 role)
{
	struct oe_fd_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	__u32 image = oe_exec_id();
	set_pid_bit(&fd_pids, key.tgid, true);
	if (!conn_selected(sk, role)) {
		bpf_map_delete_elem(&conns, &key);
		bpf_map_update_elem(&not_sock, &key, &image, BPF_ANY);
		return NULL;
	}
	struct oe_conn_info info = {
		/* creation time and CPU: unique without a shared counter */
		.conn_id = (bpf_ktime_get_ns() << 6) | (bpf_get_smp_processor_id() & 63),
		.role = role,
		.flags = role == OE_ROLE_SERVER ? OE_CONN_F_LAST_EGRESS : 0,
		.exec_id = image,
	};
	bpf_map_delete_elem(&not_sock, &key);
	if (bpf_map_update_elem(&conns, &key, &info, BPF_ANY)) {
		count(OE_CNT_CONN_TABLE_FULL);
		return NULL;
	}

	void *ring;
	struct oe_conn_open *ev = reserve_event(sizeof(*ev), &ring);
	if (ev) {
		fill_header(&ev->hdr, pid_tgid, OE_EV_CONN_OPEN, fd, info.conn_id);
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (family == AF_INET) {
			map_v4(ev->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
			map_v4(ev->peer_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		} else {
			BPF_CORE_READ_INTO(&ev->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
			BPF_CORE_READ_INTO(&ev->peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		}
		ev->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
		ev->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		ev->family = family;
		ev->role = role;
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		ev->parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
		ev->_pad = 0;
		ev->exe[0] = 0;
		const unsigned char *exe = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
		if (exe)
			bpf_probe_read_kernel_str(ev->exe, sizeof(ev->exe), exe);
		bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
	}
	return bpf_map_lookup_elem(&conns, &key);
}

/* Starts tracking fd if it is a TCP socket; 1 when it is now tracked.
 * Global (not static) so the verifier checks it once, on its own, rather
 * than along every path of every program that may discover a socket: the
 * data exit program came close to the verifier's 1M-instruction limit. */
__noinline int oe_discover_conn(__u64 pid_tgid, __s32 fd)
{
	struct sock *sk = fd_to_sock(fd);
	if (!is_tcp(sk)) {
		struct oe_fd_key key = { .tgid = pid_tgid >> 32, .fd = fd };
		__u32 image = oe_exec_id();
		set_pid_bit(&fd_pids, key.tgid, true);
		bpf_map_update_elem(&not_sock, &key, &image, BPF_ANY);
		return 0;
	}
	return track_conn(pid_tgid, fd, sk, OE_ROLE_UNKNOWN) != NULL;
}

/* The tracked connection for fd, discovering sockets opened before we attached
 * (or obtained by dup/SCM_RIGHTS, or kept across an exec) on first use. NULL
 * for anything else. An entry an earlier image of the process left is stale:
 * userspace forgets that image's connections when it sees the exec, but the
 * new image runs before it does. */
static __always_inline struct oe_conn_info *lookup_conn(__u64 pid_tgid, __s32 fd)
{
	struct oe_fd_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	__u32 image = oe_exec_id();
	struct oe_conn_info *info = bpf_map_lookup_elem(&conns, &key);
	if (info) {
		if (info->exec_id == image)
			return info;
		bpf_map_delete_elem(&conns, &key);
	} else {
		__u32 *seen_by = bpf_map_lookup_elem(&not_sock, &key);
		if (seen_by && *seen_by == image)
			return NULL;
	}
	if (!oe_discover_conn(pid_tgid, fd))
		return NULL;
	return bpf_map_lookup_elem(&conns, &key);
}

#endif
