//! Which data path runs, proven from the kernel's own link info: on a kernel
//! with the socket-layer tracepoints, the receiver's default configuration
//! attaches no syscall tracepoint at all (every syscall of the host keeps its
//! fast path); `data_path: syscall` attaches the data syscalls' exits.

use integration_tests::bpf_links::{kernel_has_socket_layer_tracepoints, links_of, LinkDesc};
use integration_tests::{curl, require_root, Receiver, Server, WAIT};

fn names(links: &[LinkDesc]) -> Vec<String> {
    links.iter().map(|l| l.tracepoint.clone().unwrap_or_else(|| format!("<link type {}>", l.kind))).collect()
}

fn has(links: &[LinkDesc], tracepoint: &str) -> bool {
    links.iter().any(|l| l.tracepoint.as_deref() == Some(tracepoint))
}

/// The receiver's links (this process hosts it), and a request traced
/// through them, so the path is not only attached but working.
fn links_of_a_working_receiver(config: &str) -> Vec<LinkDesc> {
    let server = Server::python("127.0.0.1", &[]);
    let mut rx = Receiver::start_with(config);
    let links = links_of(std::process::id());
    assert_eq!(curl(&server.url("/data-path")).codes, [200]);
    let spid = server.pid();
    rx.wait_for(1, WAIT, "the SERVER span", |s| s.is_server() && s.pid() == Some(spid));
    rx.stop();
    links
}

#[test]
fn the_default_data_path_attaches_no_syscall_tracepoint() {
    if !require_root() {
        return;
    }
    // "auto" is the default; named so that $OTEL_EBPF_TEST_DATA_PATH does not replace it.
    let links = links_of_a_working_receiver(r#"{"batch": {"timeout_ms": 200}, "data_path": "auto"}"#);
    let all = names(&links);
    // Process lifecycle stays on sched tracepoints.
    for sched in ["sched_process_exec", "sched_process_exit", "sched_process_fork"] {
        assert!(has(&links, sched), "no {sched} link: {all:?}");
    }
    if !kernel_has_socket_layer_tracepoints() {
        assert!(has(&links, "sys_exit_read"), "an older kernel falls back to the syscall path: {all:?}");
        return;
    }
    let syscalls: Vec<&LinkDesc> = links.iter().filter(|l| l.is_syscall_tracepoint()).collect();
    assert!(syscalls.is_empty(), "syscall tracepoints attached: {syscalls:?} (all: {all:?})");
    for tp in ["sock_send_length", "sock_recv_length", "inet_sock_set_state", "tcp_destroy_sock"] {
        assert!(has(&links, tp), "no {tp} link: {all:?}");
    }
}

#[test]
fn the_syscall_data_path_attaches_the_data_syscalls_exits() {
    if !require_root() {
        return;
    }
    let links = links_of_a_working_receiver(r#"{"batch": {"timeout_ms": 200}, "data_path": "syscall"}"#);
    let all = names(&links);
    for tp in [
        "sys_exit_read",
        "sys_exit_readv",
        "sys_exit_recvfrom",
        "sys_exit_recvmsg",
        "sys_exit_write",
        "sys_exit_writev",
        "sys_exit_sendto",
        "sys_exit_sendmsg",
        "sys_exit_sendfile64",
        "inet_sock_set_state",
        "tcp_destroy_sock",
    ] {
        assert!(has(&links, tp), "no {tp} link: {all:?}");
    }
    assert!(!has(&links, "sock_send_length") && !has(&links, "sock_recv_length"), "{all:?}");
    // Nothing else of the syscall layer: no close/dup/accept/connect programs.
    let syscalls = links.iter().filter(|l| l.is_syscall_tracepoint()).count();
    assert_eq!(syscalls, 9, "{all:?}");
}

#[test]
fn the_socket_data_path_is_refused_where_the_kernel_lacks_it() {
    if !require_root() {
        return;
    }
    if kernel_has_socket_layer_tracepoints() {
        let links = links_of_a_working_receiver(r#"{"batch": {"timeout_ms": 200}, "data_path": "socket"}"#);
        assert!(!links.iter().any(LinkDesc::is_syscall_tracepoint), "{:?}", names(&links));
    }
    // (On an older kernel `otel_ebpf_start` fails naming data_path: covered by
    // the error's unit text; this machine cannot show it.)
}
