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
use integration_tests::metric_points::metric_points;
use integration_tests::receiver::test_data_path;
use integration_tests::recording::Recording;
use integration_tests::servers::python;
use integration_tests::{require_root, unique_token, wait_until, Receiver, TempDir};

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

/// UDP flows (`udp.bytes`, `udp.packets`): counted in the kernel for every
/// process, per socket and peer, read at each flows pass. Socket path only.
const FLOWS_CONFIG: &str =
    r#"{"batch": {"timeout_ms": 200}, "metrics": {"interval_ms": 1000}, "flows": {"interval_ms": 1000}}"#;

/// Two servers (unconnected sockets: recvfrom, answer with sendto) and two
/// clients: a connected one (send/recv) to server A, five datagrams of
/// 100..500 bytes, each answered with 10 bytes more; and an unconnected
/// one (sendto/recvfrom) sending three datagrams of 11, 22, 33 bytes to A
/// and two of 44, 55 bytes to B, each answered with 1 byte more; and over
/// IPv6, an unconnected client sending 7 and 8 bytes to C, answered in
/// kind. Prints "pid a_port b_port c_port", then stays (its series live
/// while it does).
const UDP_FLOWS: &str = r#"
import os, socket, threading, time
def serve(s, extra):
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(b"r" * (len(data) + extra), peer)
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 0))
conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); conn.connect(a.getsockname())
# A's answers: 10 more bytes to the connected client, 1 more to the other.
def serve_a():
    while True:
        data, peer = a.recvfrom(65536)
        a.sendto(b"r" * (len(data) + (10 if peer == conn.getsockname() else 1)), peer)
threading.Thread(target=serve_a, daemon=True).start()
threading.Thread(target=serve, args=(b, 1), daemon=True).start()
for n in (100, 200, 300, 400, 500):
    conn.send(b"c" * n)
    assert len(conn.recv(65536)) == n + 10
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# All sent before any answer is read: a flows pass between the answers
# would otherwise see one peer so far, and give it what came back.
for n, to in ((11, a), (22, a), (33, a), (44, b), (55, b)):
    u.sendto(b"u" * n, to.getsockname())
assert sorted(len(u.recvfrom(65536)[0]) for _ in range(5)) == [12, 23, 34, 45, 56]
# IPv6: an unconnected client sends 7 and 8 bytes to C on ::1 (sockaddr_in6).
c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); c.bind(("::1", 0))
threading.Thread(target=serve, args=(c, 0), daemon=True).start()
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for n in (7, 8):
    v6.sendto(b"6" * n, c.getsockname())
    v6.recvfrom(65536)
print(os.getpid(), a.getsockname()[1], b.getsockname()[1], c.getsockname()[1], flush=True)
time.sleep(60)
"#;

/// (metric, attributes (an empty value: the attribute is absent), value).
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// A child stopped when the test ends, failed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        integration_tests::util::stop_child(&mut self.0);
    }
}

#[test]
fn udp_bytes_and_datagrams_per_peer_are_exact() {
    if !require_root() {
        return;
    }
    if test_data_path().as_deref() == Some("syscall") || !kernel_has_socket_layer_tracepoints() {
        eprintln!("skipped: UDP flows need the socket data path");
        return;
    }
    let rx = Receiver::start_with(FLOWS_CONFIG);
    let mut child =
        Command::new(python()).arg("-c").arg(UDP_FLOWS).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    let nums: Vec<u32> = line.split_whitespace().map(|n| n.parse().expect("pid and ports")).collect();
    assert_eq!(nums.len(), 4, "{line}");
    let (pid, a_port, b_port, c_port) = (nums[0], nums[1].to_string(), nums[2].to_string(), nums[3].to_string());
    let _stop = Stopped(child);

    let point = |name: &str, attrs: &[(&str, &str)]| {
        metric_points(&rx)
            .into_iter()
            .rev()
            .find(|p| {
                p.pid == Some(pid)
                    && p.name == name
                    && attrs.iter().all(|(k, v)| if v.is_empty() { p.attr(k).is_none() } else { p.attr(k) == Some(v) })
            })
            .map(|p| p.sum)
    };
    let dump = || {
        metric_points(&rx)
            .into_iter()
            .filter(|p| p.pid == Some(pid) && p.name.starts_with("udp."))
            .map(|p| p.describe())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let local = ("network.peer.address", "127.0.0.1");
    let udp = ("network.transport", "udp");
    let (tx, rx_) = (("network.io.direction", "transmit"), ("network.io.direction", "receive"));
    let (client, server) = (("ebpf_receiver.flow.role", "client"), ("ebpf_receiver.flow.role", "server"));
    let (to_a, to_b) = (("server.port", a_port.as_str()), ("server.port", b_port.as_str()));
    let (to_c, v6) = (("server.port", c_port.as_str()), ("network.peer.address", "::1"));
    // (metric, attributes, value): the clients' series to A and B, the
    // servers' (their own port), both directions.
    let want: Vec<Expected> = vec![
        // The connected client to A, and the unconnected one to A: one
        // series (same process, peer, port, role): 1500 + 66 bytes out.
        ("udp.bytes", vec![local, udp, client, to_a, tx], 1566.0),
        ("udp.packets", vec![local, udp, client, to_a, tx], 8.0),
        ("udp.bytes", vec![local, udp, client, to_b, tx], 99.0),
        ("udp.packets", vec![local, udp, client, to_b, tx], 2.0),
        // Answers sent by the servers, to the clients (known: sendto).
        ("udp.bytes", vec![local, udp, server, to_a, tx], 1550.0 + 69.0),
        ("udp.packets", vec![local, udp, server, to_a, tx], 8.0),
        ("udp.bytes", vec![local, udp, server, to_b, tx], 101.0),
        ("udp.packets", vec![local, udp, server, to_b, tx], 2.0),
        // The connected client's answers from A (its peer).
        ("udp.bytes", vec![local, udp, client, to_a, rx_], 1550.0),
        ("udp.packets", vec![local, udp, client, to_a, rx_], 5.0),
        // What unconnected sockets received (recvfrom): the sender is
        // written to the caller after the probes ran, so the servers'
        // requests have no peer address, on their own port...
        ("udp.bytes", vec![("network.peer.address", ""), udp, server, to_a, rx_], 1566.0),
        ("udp.packets", vec![("network.peer.address", ""), udp, server, to_a, rx_], 8.0),
        ("udp.bytes", vec![("network.peer.address", ""), udp, server, to_b, rx_], 99.0),
        // ...and the unconnected client, which talked to two peers, has
        // its answers under no peer and no server port.
        ("udp.bytes", vec![("network.peer.address", ""), ("server.port", ""), udp, client, rx_], 69.0 + 101.0),
        ("udp.packets", vec![("network.peer.address", ""), ("server.port", ""), udp, client, rx_], 5.0),
        // IPv6: the destination read from a sockaddr_in6; the answers from
        // the client's only peer.
        ("udp.bytes", vec![v6, ("network.type", "ipv6"), client, to_c, tx], 15.0),
        ("udp.packets", vec![v6, client, to_c, tx], 2.0),
        ("udp.bytes", vec![v6, client, to_c, rx_], 15.0),
        ("udp.bytes", vec![v6, server, to_c, tx], 15.0),
    ];
    let all_there = wait_until(Duration::from_secs(15), || {
        want.iter().all(|(name, attrs, v)| point(name, attrs) == Some(*v)).then_some(())
    });
    if all_there.is_none() {
        let wrong: Vec<String> = want
            .iter()
            .filter(|(name, attrs, v)| point(name, attrs) != Some(*v))
            .map(|(name, attrs, v)| format!("{name} {attrs:?}: want {v}, got {:?}", point(name, attrs)))
            .collect();
        panic!("UDP flows differ:\n{}\nall points:\n{}", wrong.join("\n"), dump());
    }
    assert_eq!(rx.counter("udp_flows_uncounted"), 0);
}

/// More sockets × peers between two passes than the kernel's table holds
/// (16,384): one unconnected socket sends one datagram to each of 17,000
/// peers. What does not fit is counted, never silently lost: the
/// process's datagrams in `udp.packets` and the uncounted ones add up to at
/// least what it sent (other processes of the host may fill the table too).
#[test]
fn udp_datagrams_that_do_not_fit_the_table_are_counted() {
    if !require_root() {
        return;
    }
    if test_data_path().as_deref() == Some("syscall") || !kernel_has_socket_layer_tracepoints() {
        eprintln!("skipped: UDP flows need the socket data path");
        return;
    }
    const SENT: u32 = 17_000;
    let rx = Receiver::start_with(FLOWS_CONFIG);
    // To 17,000 loopback addresses on the port of a socket of its own,
    // bound to every address: no other process's socket gets a datagram.
    let script = format!(
        "import os, socket, time\n\
         sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(('0.0.0.0', 0))\n\
         port = sink.getsockname()[1]\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({SENT}):\n    s.sendto(b'x', ('127.88.%d.%d' % (i // 250, i % 250 + 1), port))\n\
         print(os.getpid(), flush=True)\ntime.sleep(60)\n"
    );
    let mut child =
        Command::new(python()).args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    let pid: u32 = line.trim().parse().expect("pid");
    let _stop = Stopped(child);
    let counted = || -> u64 {
        let mut series = std::collections::BTreeMap::new();
        for p in metric_points(&rx) {
            if p.pid == Some(pid) && p.name == "udp.packets" && p.attr("network.io.direction") == Some("transmit") {
                series.insert(p.attrs.clone(), p.sum as u64);
            }
        }
        series.values().sum()
    };
    let total = wait_until(Duration::from_secs(15), || {
        let (counted, uncounted) = (counted(), rx.counter("udp_flows_uncounted"));
        (uncounted > 0 && counted + uncounted >= u64::from(SENT)).then_some((counted, uncounted))
    });
    let (counted, uncounted) = total
        .unwrap_or_else(|| panic!("counted {} + uncounted {} < {SENT}", counted(), rx.counter("udp_flows_uncounted")));
    assert!(counted <= u64::from(SENT), "{counted}");
    assert!(uncounted >= u64::from(SENT) - 16_384, "{uncounted}");
}
