/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* From a socket to its tracked connection: discovery, announcement, end. */
#ifndef OE_SOCK_H
#define OE_SOCK_H

#include "common.h"

/* What a connection's open event says about its socket, read once, when it
 * is announced. Per CPU: the announcing function reads it from there. */
struct sock_facts {
	__u8 local_addr[16];
	__u8 peer_addr[16];
	__u16 local_port;
	__u16 peer_port;
	__u16 family;
	__u16 transport; /* OE_TRANSPORT_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_facts);
} facts_scratch SEC(".maps");

/* The destination of the datagram an unconnected UDP socket is sending, as
 * udp_flows.h read it from the call; written and read within one program
 * run (per CPU). It names the socket's peer when the socket is announced:
 * a resolver's sendto to port 53 is then DNS like a connected socket's. */
struct datagram_peer {
	__u64 cookie; /* 0: none */
	__u8 addr[16];
	__u16 port;
	__u16 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datagram_peer);
} datagram_peers SEC(".maps");

static __always_inline void set_datagram_peer(__u64 cookie, const __u8 addr[16], __u16 port)
{
	__u32 zero = 0;
	struct datagram_peer *p = bpf_map_lookup_elem(&datagram_peers, &zero);
	if (!p)
		return;
	p->cookie = cookie;
	__builtin_memcpy(p->addr, addr, 16);
	p->port = port;
}

/* An unconnected UDP socket's facts take the peer of the datagram at hand. */
static __always_inline void use_datagram_peer(__u64 cookie, struct sock_facts *f)
{
	if (f->transport != OE_TRANSPORT_UDP || f->peer_port != 0)
		return;
	__u32 zero = 0;
	struct datagram_peer *p = bpf_map_lookup_elem(&datagram_peers, &zero);
	if (!p || p->cookie != cookie)
		return;
	__builtin_memcpy(f->peer_addr, p->addr, 16);
	f->peer_port = p->port;
}

/* The struct sock behind fd in the current task, or NULL when fd is not a
 * socket. The fallback data path and the Go TLS probes, which know fds. */
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

/* A TCP socket's cookie as the kernel stores it: set by our tp_btf and iter
 * programs (bpf_get_socket_cookie), which the tracepoint and uprobe
 * programs cannot call. 0 when none was made: a socket never seen. */
static __always_inline __u64 stored_cookie(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
}

static __always_inline bool is_inet(__u16 family)
{
	return family == AF_INET || family == AF_INET6;
}

static __always_inline void map_v4(__u8 dst[16], __be32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(&dst[12], &addr, 4);
}

/* Reads what the open event tells about sk into *f; false for a socket that
 * is neither TCP nor UDP over IP, or a TCP one already closed (a data event
 * racing its end must not bring it back). CO-RE reads: any program type. */
static __always_inline bool read_sock_facts(struct sock *sk, struct sock_facts *f)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!is_inet(family))
		return false;
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	if (protocol == IPPROTO_TCP_NUM) {
		if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE)
			return false;
		f->transport = OE_TRANSPORT_TCP;
	} else if (protocol == IPPROTO_UDP_NUM) {
		f->transport = OE_TRANSPORT_UDP;
	} else {
		return false;
	}
	f->family = family;
	if (family == AF_INET) {
		map_v4(f->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		map_v4(f->peer_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&f->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&f->peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	f->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	f->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return true;
}

static __always_inline void set_listen_port(__u16 port)
{
	set_pid_bit(&listen_ports, port, true);
}

static __always_inline bool is_listen_port(__u16 port)
{
	return pid_bit(&listen_ports, port, false);
}

/* Does port selection want this connection? The server side's port decides. */
static __always_inline bool conn_selected(const struct sock_facts *f, __u16 role)
{
	if (port_mode == OE_PORTS_ALL)
		return true;
	return port_selected(role == OE_ROLE_SERVER ? f->local_port : f->peer_port);
}

/* Announces the connection of socket `cookie`, whose facts are in this
 * CPU's facts_scratch, to userspace: decides its role if the state machine
 * did not, applies port selection, and sends the open event. 1 when it is
 * now tracked. Global (not static) so the verifier checks it once, on its
 * own, rather than along every path of every program that may discover a
 * socket: the data programs are big already. */
__noinline int oe_announce(__u64 cookie, __u64 pid_tgid, __u32 dir, __u32 image)
{
	__u32 zero = 0;
	struct sock_facts *f = bpf_map_lookup_elem(&facts_scratch, &zero);
	if (!f)
		return 0;
	struct oe_conn_info info = {};
	struct oe_conn_info *known = bpf_map_lookup_elem(&conns, &cookie);
	if (known)
		info = *known;
	if (!info.role) {
		if (f->transport == OE_TRANSPORT_TCP)
			info.role = is_listen_port(f->local_port) ? OE_ROLE_SERVER : OE_ROLE_CLIENT;
		else
			info.role = dir == OE_DIR_EGRESS ? OE_ROLE_CLIENT : OE_ROLE_SERVER;
	}
	if (!conn_selected(f, info.role)) {
		info.flags |= OE_CONN_F_SKIP;
		bpf_map_update_elem(&conns, &cookie, &info, BPF_ANY);
		return 0;
	}
	/* A server's first event is a request coming in: a turn. */
	if (info.role == OE_ROLE_SERVER && !(info.flags & OE_CONN_F_ANNOUNCED))
		info.flags |= OE_CONN_F_LAST_EGRESS;
	info.flags |= OE_CONN_F_ANNOUNCED;
	info.owner_tgid = pid_tgid >> 32;
	info.owner_image = image;
	if (bpf_map_update_elem(&conns, &cookie, &info, BPF_ANY)) {
		count(OE_CNT_CONN_TABLE_FULL);
		return 0;
	}

	void *ring;
	struct oe_conn_open *ev = reserve_event(sizeof(*ev), &ring);
	if (!ev)
		return 1;
	fill_header(&ev->hdr, pid_tgid, OE_EV_CONN_OPEN, cookie);
	__builtin_memcpy(ev->local_addr, f->local_addr, 16);
	__builtin_memcpy(ev->peer_addr, f->peer_addr, 16);
	ev->local_port = f->local_port;
	ev->peer_port = f->peer_port;
	ev->family = f->family;
	ev->role = info.role;
	ev->transport = f->transport;
	ev->_pad = 0;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ev->parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	ev->exe[0] = 0;
	const unsigned char *exe = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	if (exe)
		bpf_probe_read_kernel_str(ev->exe, sizeof(ev->exe), exe);
	bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
	return 1;
}

/* The tracked connection of socket sk (cookie `cookie`) for a traced
 * process moving data in direction `dir`, announcing it on first use (and
 * again when another process or image (`image`: its self_exec_id) uses
 * it). NULL when it is not traced. The common case is one lookup. */
static __always_inline struct oe_conn_info *conn_of(struct sock *sk, __u64 cookie, __u64 pid_tgid, __u32 dir,
						    __u32 image)
{
	struct oe_conn_info *ci = bpf_map_lookup_elem(&conns, &cookie);
	if (ci) {
		if (ci->flags & OE_CONN_F_SKIP)
			return NULL;
		if ((ci->flags & OE_CONN_F_ANNOUNCED) && ci->owner_tgid == (__u32)(pid_tgid >> 32) &&
		    ci->owner_image == image)
			return ci;
	}
	__u32 zero = 0;
	struct sock_facts *f = bpf_map_lookup_elem(&facts_scratch, &zero);
	if (!f || !read_sock_facts(sk, f))
		return NULL;
	use_datagram_peer(cookie, f);
	if (!oe_announce(cookie, pid_tgid, dir, image))
		return NULL;
	return bpf_map_lookup_elem(&conns, &cookie);
}

/* Socket `cookie` ended: its entry goes, and userspace hears of it if it
 * knew the connection. */
static __always_inline void end_conn(__u64 cookie)
{
	struct oe_conn_info *ci = bpf_map_lookup_elem(&conns, &cookie);
	if (!ci)
		return;
	bool announced = ci->flags & OE_CONN_F_ANNOUNCED;
	bpf_map_delete_elem(&conns, &cookie);
	if (!announced)
		return;
	void *ring;
	struct oe_conn_close *ev = reserve_event(sizeof(*ev), &ring);
	if (!ev)
		return;
	fill_header(&ev->hdr, bpf_get_current_pid_tgid(), OE_EV_CONN_CLOSE, cookie);
	bpf_ringbuf_submit(ev, wakeup_flag(ring, sizeof(*ev)));
}

#endif
