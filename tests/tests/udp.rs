//! UDP on the socket-layer data path: datagrams are captured like TCP
//! payloads (a prefix of `capture_size` bytes), announced with their
//! transport and the role of their first datagram's direction, ended at the
//! socket's last close (cgroup/sock_release), and parsed by no protocol: a
//! datagram that reads like an HTTP request makes no span. The syscall path
//! (older kernels) leaves UDP out.

use std::process::Command;
use std::time::Duration;

use ebpf_core::events::Transport;
use ebpf_probes::abi;
use integration_tests::bpf_links::kernel_has_socket_layer_tracepoints;
use integration_tests::receiver::test_data_path;
use integration_tests::recording::Recording;
use integration_tests::servers::python;
use integration_tests::{require_root, unique_token, Receiver, TempDir};

/// One exchange over two UDP sockets of one process: the client sends
/// `payload_len` bytes starting with an HTTP request line, the server
/// answers with an HTTP response. Prints "pid server_port client_port".
const EXCHANGE: &str = r#"
import os, socket, sys
token, n = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 0))
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cli.bind(("127.0.0.1", 0))
head = f"GET /{token} HTTP/1.1\r\nHost: udp\r\n\r\n".encode()
cli.sendto(head + b"u" * (n - len(head)), srv.getsockname())
data, peer = srv.recvfrom(65536)
assert len(data) == n
srv.sendto(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", peer)
cli.recv(65536)
print(os.getpid(), srv.getsockname()[1], cli.getsockname()[1], flush=True)
cli.close()
srv.close()
"#;

#[test]
fn udp_datagrams_are_captured_as_a_prefix_and_make_no_span() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("udp");
    let recording = dir.path().join("events.bin");
    let rx = Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "capture_size": 256, "record_events": "{}"}}"#,
        recording.display()
    ));
    let token = unique_token("udp");
    const LEN: usize = 3000;
    let out =
        Command::new(python()).arg("-c").arg(EXCHANGE).arg(&token).arg(LEN.to_string()).output().expect("python3");
    assert!(out.status.success(), "UDP exchange failed: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u32> = line.split_whitespace().map(|n| n.parse().expect("pid and ports")).collect();
    let (pid, server_port, client_port) = (nums[0], nums[1] as u16, nums[2] as u16);
    // The close events come from the last close, after the process printed.
    std::thread::sleep(Duration::from_millis(500));
    let mut rx = rx;
    rx.stop();

    assert!(!rx.raw_contains(token.as_bytes()), "a datagram became telemetry:\n{}", rx.dump(|_| true, 20));
    let rec = Recording::read(&recording);
    let server = rec.opens_on_local_port(Transport::Udp, server_port);
    let client = rec.opens_on_local_port(Transport::Udp, client_port);
    let udp_path = test_data_path().as_deref() != Some("syscall") && kernel_has_socket_layer_tracepoints();
    if !udp_path {
        assert!(server.is_empty() && client.is_empty(), "the syscall path traced UDP: {server:?} {client:?}");
        return;
    }
    assert_eq!((server.len(), client.len()), (1, 1), "one open event per socket: {server:?} {client:?}");
    for ((h, open), role) in [(server[0], abi::OE_ROLE_SERVER), (client[0], abi::OE_ROLE_CLIENT)] {
        assert_eq!(open.transport, Transport::Udp, "{open:?}");
        assert_eq!(h.tgid, pid);
        // The first datagram's direction decides: the client sent first.
        assert_eq!(u32::from(open.role), role, "{open:?}");
        assert_eq!(open.local.0.to_string(), "127.0.0.1");
        assert!(rec.closed(h.conn_id), "no close event for the socket on port {}", open.local.1);
    }
    let (client_id, server_id) = (client[0].0.conn_id, server[0].0.conn_id);
    assert_ne!(client_id, server_id);
    // The request datagram on both sides: all of it counted, the first
    // capture_size bytes carried.
    let head = format!("GET /{token} HTTP/1.1\r\n");
    for (id, side) in [(client_id, "client"), (server_id, "server")] {
        let first = rec.data_of(id).into_iter().next().unwrap_or_else(|| panic!("no data event on the {side} socket"));
        assert_eq!(first.total_len as usize, LEN, "{side}");
        assert_eq!(first.payload.len(), 256, "{side}: capture_size bytes");
        assert!(first.payload.starts_with(head.as_bytes()), "{side}: {:?}", String::from_utf8_lossy(&first.payload));
    }
}
