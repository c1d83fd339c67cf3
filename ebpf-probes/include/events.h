/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel <-> user contract: every struct that crosses the ring buffer or
 * lives in a map that userspace reads or writes. Fixed-width fields only, explicit
 * padding, no kernel types, so the Rust side can be generated from this file
 * (ebpf-probes/build.rs runs bindgen over it) and never drifts.
 */
#ifndef OTEL_EBPF_EVENTS_H
#define OTEL_EBPF_EVENTS_H

#ifndef __VMLINUX_H__
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;
#endif

/* Largest payload prefix one event can carry; the configured capture size is
 * clamped to this. Must be a power of two (the probes mask offsets with it). */
#define OE_MAX_CAPTURE 4096

/* event kinds (oe_event_header.kind) */
#define OE_EV_CONN_OPEN 1
#define OE_EV_DATA 2
#define OE_EV_CONN_CLOSE 3
#define OE_EV_PROC_EXIT 4
#define OE_EV_PROC_EXEC 5

/* which end of the connection the traced process holds (oe_conn_open.role).
 * TCP: from the socket's state machine (a passive open is a server, an active
 * one a client); a socket older than the probes is a server when its local
 * port is one a listening socket uses, else a client. UDP: a client when its
 * first datagram went out, a server when it came in. */
#define OE_ROLE_SERVER 1
#define OE_ROLE_CLIENT 2

/* oe_conn_open.transport */
#define OE_TRANSPORT_TCP 1
#define OE_TRANSPORT_UDP 2

/* data direction (oe_data.direction) */
#define OE_DIR_INGRESS 1 /* read/recv by the traced process */
#define OE_DIR_EGRESS 2  /* write/send by the traced process */

/* which syscall produced a data event (oe_data.syscall), for diagnostics */
#define OE_SYS_READ 1
#define OE_SYS_READV 2
#define OE_SYS_RECVFROM 3
#define OE_SYS_RECVMSG 4
#define OE_SYS_WRITE 5
#define OE_SYS_WRITEV 6
#define OE_SYS_SENDTO 7
#define OE_SYS_SENDMSG 8
#define OE_SYS_SENDFILE 9
/* Plaintext handed to / returned by OpenSSL (uprobes, tls.bpf.c) or Go's
 * crypto/tls (gotls.bpf.c): the connection is TLS and these bytes are what the
 * application sent or received. */
#define OE_SYS_SSL_READ 10
#define OE_SYS_SSL_WRITE 11
/* splice(2) into a socket and any other syscall the socket-layer
 * tracepoints fire in: no user buffer the probes can read, counted, never
 * copied (captured_len 0). sendmmsg/recvmmsg: each message copied on the
 * socket path when data.bpf.c can tell which one it is (mmsg_message);
 * counted only otherwise. */
#define OE_SYS_SPLICE 12
#define OE_SYS_SENDMMSG 13
#define OE_SYS_RECVMMSG 14
#define OE_SYS_OTHER 15

/* indexes into the per-CPU `counters` array map */
#define OE_CNT_RINGBUF_FULL 0   /* an event could not be reserved: lost */
#define OE_CNT_CONN_TABLE_FULL 1 /* a connection could not be tracked */
#define OE_CNT_IO_TABLE_FULL 2  /* an in-flight syscall could not be remembered */
#define OE_CNT_TLS_NO_SOCKET 3  /* TLS plaintext whose socket is unknown (memory BIO, stale SSL*): lost */
/* Lost data events that began a request (the first event after the
 * connection turned to the request direction: egress for a client, ingress
 * for a server), so lost spans can be counted, not only lost events. */
#define OE_CNT_REQUEST_STARTS_LOST 4
/* Socket reads and writes made through io_uring (by an io_uring worker
 * thread, or inside io_uring_enter): the syscall's registers do not hold
 * their buffers, so they are not captured. */
#define OE_CNT_IO_URING 5
/* A UDP socket and peer whose datagrams could not be counted: the
 * `udp_flows` table was full (flows.bpf.c's pass empties it of idle ones). */
#define OE_CNT_UDP_FLOWS_FULL 6
#define OE_CNT_MAX 8

/* Common prefix of every ring-buffer record. */
struct oe_event_header {
	__u64 ts_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 tgid;   /* process id */
	__u32 tid;    /* thread id */
	__u32 kind;   /* OE_EV_* */
	__u32 _pad;
	/* The connection: its socket's cookie (bpf_get_socket_cookie), unique
	 * among the sockets of this boot and never reused. The only identity
	 * userspace knows a connection by: tgid/tid say who read or wrote. */
	__u64 conn_id;
};

/* IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct oe_conn_open {
	struct oe_event_header hdr;
	__u8 local_addr[16];
	__u8 peer_addr[16];
	__u16 local_port; /* host byte order */
	__u16 peer_port;  /* host byte order */
	__u16 family;     /* AF_INET or AF_INET6 as the socket was created */
	__u16 role;       /* OE_ROLE_* */
	char comm[16];    /* task name: identity when the process is gone before /proc is read */
	__u32 parent_tgid; /* a fork gone before /proc is read inherits its parent's identity */
	__u16 transport;  /* OE_TRANSPORT_* */
	__u16 _pad;
	char exe[64];     /* executable's file name, which comm truncates to 15 bytes */
};

/* Fixed part of a data event; `captured_len` payload bytes follow it. */
struct oe_data_meta {
	struct oe_event_header hdr;
	__u32 total_len;    /* bytes the syscall moved */
	__u32 captured_len; /* bytes that follow in payload[] */
	__u16 direction;    /* OE_DIR_* */
	__u16 syscall;      /* OE_SYS_* */
	__u32 seq;          /* per connection, +1 per data event: a jump means events were lost */
};

/* oe_data_meta.syscall's high bit (socket path, TCP): the event overlapped a
 * send of the connection still in the kernel. On a receive: the socket's
 * write_seq moved since the last send event (bytes queued by a send whose
 * event is still to come, or by a writer not traced). On a send: its bytes
 * began before the write_seq such a receive saw, so it is the send that
 * receive overlapped and came first. Userspace orders the two back. */
#define OE_DATA_F_OVERLAP 0x8000

/* oe_data_meta.seq when the connection left the table before the event was built. */
#define OE_SEQ_UNKNOWN 0xffffffff

/* A data event as the probes build it; only meta + captured_len bytes are sent. */
struct oe_data {
	struct oe_data_meta meta;
	__u8 payload[OE_MAX_CAPTURE];
};

struct oe_conn_close {
	struct oe_event_header hdr;
};

struct oe_proc_exit {
	struct oe_event_header hdr;
};

/* A process replaced its image (exec): its identity and selection change. */
struct oe_proc_exec {
	struct oe_event_header hdr;
	char comm[16];
};

/* Process selection modes (global `pid_mode`, applied through `pid_bits`) and
 * `port_filter` map values. */
#define OE_PIDS_ALL 0      /* trace every process (but the host's own); no lookup */
#define OE_PIDS_EXCLUDE 1  /* trace all but pids whose bit is set in pid_bits */
#define OE_PIDS_INCLUDE 2  /* trace only pids whose bit is set in pid_bits */
#define OE_PID_SKIP 0
#define OE_PID_TRACE 1

/* Port selection (global `port_mode`, `port_filter` values): applied when a
 * connection is first tracked, to its server-side port. */
#define OE_PORTS_ALL 0
#define OE_PORTS_EXCLUDE 1
#define OE_PORTS_INCLUDE 2

/* oe_conn_info.flags */
#define OE_CONN_F_MUTED 1     /* userspace needs no more payload: socket data is not captured */
#define OE_CONN_F_TLS 2       /* set by the kernel: OpenSSL or Go crypto/tls reads/writes it; its syscalls carry ciphertext, never captured */
#define OE_CONN_F_TLS_MUTED 4 /* userspace needs no more TLS plaintext (not a protocol it parses) */
#define OE_CONN_F_FULL 8      /* set by the kernel: a request line matched a full-capture rule (LLM API
			       * traffic): every byte is captured, in OE_MAX_CAPTURE pieces, up to
			       * OE_FULL_CHUNKS events per syscall */
#define OE_CONN_F_GO_JOINING 16 /* kernel only (gotls.bpf.c): a Go TLS connection met mid-stream; its
				 * writes are not captured until a Read is seen starting */
#define OE_CONN_F_LAST_EGRESS 32 /* kernel only: the last data event went out (a turn starts a request);
				  * set at first for servers, whose first event is a request coming in */
#define OE_CONN_F_ANNOUNCED 64 /* its OE_EV_CONN_OPEN was sent: userspace knows it, with the process
				* (owner_tgid, owner_image) that used it then. Without it the entry
				* only remembers the role the state machine gave it; the first data
				* event in a traced process announces it. */
#define OE_CONN_F_SKIP 128    /* kernel only: not traced (port selection, or neither TCP nor UDP) */
#define OE_CONN_F_WIDE 256    /* userspace: its parser wants more than capture_size of each read/write
			       * (HTTP/2 frames): up to OE_MAX_CAPTURE bytes are captured */
#define OE_CONN_F_SEQ_KNOWN 512 /* kernel only: sent_seq holds a write_seq (OE_DATA_F_OVERLAP) */

/* Value of the connection table, keyed by socket cookie (__u64). Userspace
 * sets `flags` on live entries and deletes entries it forgot. */
struct oe_conn_info {
	__u16 role;
	__u16 flags;
	__u32 seq; /* next oe_data_meta.seq */
	/* The process it was announced for, and which image of it (its
	 * task's self_exec_id): another process (a fork sharing the socket) or
	 * another image (an exec that kept it) announces it again, so that
	 * userspace attributes what follows to who does it. */
	__u32 owner_tgid;
	__u32 owner_image;
	/* Socket path, TCP (OE_DATA_F_OVERLAP): the socket's write_seq as of
	 * the last send event, and the one a receive that found it moved saw
	 * (0: none since the last send). */
	__u32 sent_seq;
	__u32 held_seq;
};

/* Full capture (OE_CONN_F_FULL): a syscall is split into OE_MAX_CAPTURE-byte
 * events, all of it up to OE_FULL_BYTES; a larger one gives its first and
 * last OE_FULL_BYTES / 2 and, between them, one event that only counts the
 * middle (captured_len 0). At most OE_FULL_CHUNKS + 2 events follow the
 * first. Only contiguous buffers (read/write/send/recv, OpenSSL) are split;
 * an iovec call gives its first OE_MAX_CAPTURE bytes. */
#define OE_FULL_CHUNKS 32
#define OE_FULL_BYTES (OE_FULL_CHUNKS * OE_MAX_CAPTURE)

/* Full-capture rules (`capture_rules` array map, `capture_rule_count` of them
 * used): a payload whose first `len` bytes equal `bytes` (e.g. "POST
 * /v1/chat/completions") turns on OE_CONN_F_FULL for its connection. Compared
 * 8 bytes at a time under `mask`, which userspace fills from `len`. */
#define OE_MAX_CAPTURE_RULES 16
#define OE_CAPTURE_RULE_WORDS 8 /* 64 bytes */
struct oe_capture_rule {
	__u64 word[OE_CAPTURE_RULE_WORDS];
	__u64 mask[OE_CAPTURE_RULE_WORDS];
	__u32 len;
	__u32 _pad;
};

/* ---- Network flows (flows.bpf.c): one record per socket per iterator pass ----
 *
 * Read from the iterator's file (bpf_seq_write), not a ring buffer: a pass
 * is a snapshot of every socket held by a process, in every network
 * namespace (the iterator walks the file tables of all tasks, so one pass
 * needs no setns() and knows each socket's owner). Counters are cumulative
 * over the socket's life; userspace turns them into deltas. */

/* oe_flow_sock.protocol */
#define OE_FLOW_TCP 6
#define OE_FLOW_UDP 17

struct oe_flow_sock {
	__u64 cookie;         /* the socket's cookie: unique per boot, never reused */
	__u64 bytes_sent;     /* TCP payload bytes sent, retransmissions excluded */
	__u64 bytes_received; /* TCP payload bytes received (not the SYN or FIN) */
	__u32 tgid;           /* the process whose file table holds the socket */
	__u32 netns;          /* inode number of the socket's network namespace */
	__u32 segs_in;        /* segments received, pure ACKs included */
	__u32 segs_out;       /* segments sent, retransmissions included */
	__u32 total_retrans;  /* segments retransmitted */
	__u32 srtt_us;        /* smoothed round-trip time in microseconds; 0 = none measured yet */
	__u8 local_addr[16];  /* IPv4 as IPv4-mapped IPv6 */
	__u8 peer_addr[16];
	__u16 local_port;     /* host byte order */
	__u16 peer_port;      /* host byte order */
	__u16 family;         /* AF_INET or AF_INET6 */
	__u8 state;           /* TCP state (TCP_ESTABLISHED = 1 ... TCP_LISTEN = 10) */
	__u8 protocol;        /* OE_FLOW_* */
};

/* ---- Connection events (flows.bpf.c, tp_btf): one per connection, never per packet ----
 *
 * Sent through the `oe_flow_events` ring buffer, which userspace drains
 * before each iterator pass and between passes. `sock.tgid` is the process
 * that opened an active connection (it called connect()); 0 for a passive
 * one, whose owner userspace knows from the listener. */

/* oe_flow_event.kind */
#define OE_FLOW_EV_CLOSE 1     /* the socket's last counters, at tcp_destroy_sock */
#define OE_FLOW_EV_HANDSHAKE 2 /* an active open reached ESTABLISHED: duration_ns since its SYN */
#define OE_FLOW_EV_FAILED 3    /* an active open went from SYN_SENT to CLOSE: err = sk_err */
#define OE_FLOW_EV_RESET 4     /* a reset sent or received on the connection */

struct oe_flow_event {
	struct oe_flow_sock sock;
	__u64 duration_ns;
	__s32 err;            /* errno (positive): ECONNREFUSED, ETIMEDOUT, ... ; 0 = none */
	__u8 kind;            /* OE_FLOW_EV_* */
	__u8 _pad[3];
};

/* ---- UDP flows (udp_flows.h, on the socket data path): counted in the kernel ----
 *
 * Every datagram a process sends or receives through an IP UDP socket adds
 * to the entry of its socket, process and peer in the `udp_flows` hash map;
 * nothing goes through a ring buffer. Cumulative over the entry's life:
 * userspace reads the map at every flows pass, turns the counters into
 * deltas and deletes the entries that stayed idle for a pass. The peer is
 * the connected socket's, or a send's destination (msg_name); unknown (all
 * zero) for what an unconnected socket receives and for sends whose
 * destination the probes cannot read (sendmmsg, io_uring). */
struct oe_udp_flow_key {
	__u64 cookie;         /* the socket's cookie */
	__u8 peer_addr[16];   /* IPv4 as IPv4-mapped IPv6; all zero: unknown */
	__u32 tgid;           /* the process that sent or received */
	__u16 peer_port;      /* host byte order; 0: unknown */
	__u16 local_port;     /* host byte order */
};

struct oe_udp_flow {
	__u64 bytes_sent;         /* UDP payload bytes */
	__u64 bytes_received;
	__u64 datagrams_sent;
	__u64 datagrams_received;
	__u64 first_ns;           /* bpf_ktime_get_ns() of the entry's first datagram */
	__u32 netns;              /* inode number of the socket's network namespace */
	__u16 first_dir;          /* OE_DIR_* of the entry's first datagram: the socket's earliest
				   * entry tells a client (it sent first) from a server */
	__u16 _pad;
};

#endif /* OTEL_EBPF_EVENTS_H */
