//! Network flows from the kernel iterator, through the C ABI: a namespace
//! made here (server inside, client outside, both reported) joined by a
//! link with a set delay and loss (`netlab`).

use std::io::BufRead;
use std::time::Duration;

use integration_tests::metric_points::{describe_points, metric_points, MetricPoint};
use integration_tests::netlab::{bulk_client, bulk_server, NetLab};
use integration_tests::util::stop_child;
use integration_tests::{free_port, require_root, wait_until, Receiver};

const CONFIG: &str =
    r#"{"batch": {"timeout_ms": 200}, "metrics": {"interval_ms": 1000}, "flows": {"interval_ms": 1000}}"#;

fn points_of(rx: &Receiver, pid: u32, name: &str) -> Vec<MetricPoint> {
    metric_points(rx).into_iter().filter(|p| p.pid == Some(pid) && p.name == name).collect()
}

/// The last cumulative value of `name` for `pid` with `attrs`.
fn last(rx: &Receiver, pid: u32, name: &str, attrs: &[(&str, &str)]) -> Option<f64> {
    points_of(rx, pid, name).into_iter().rev().find(|p| attrs.iter().all(|(k, v)| p.attr(k) == Some(v))).map(|p| p.sum)
}

fn wait_done(client: &mut std::process::Child, timeout: Duration) -> usize {
    let out = client.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).expect("the transfer did not finish in time");
    line.trim().strip_prefix("done ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("client said {line:?}"))
}

/// One transfer of `bytes` from a server in the namespace to a client on
/// the host over a link of `rtt` and `loss`; returns what the receiver
/// exported, and the pids.
fn transfer(rtt: Duration, loss: f64, bytes: usize) -> (Receiver, u32, u32, u16, NetLab) {
    let lab = NetLab::new(rtt, loss);
    let port = free_port();
    let rx = Receiver::start_with(CONFIG);
    let mut server = bulk_server(&lab, port, bytes);
    // Held open past two passes after the data: the closing counters are
    // the data path's to report.
    let mut client = bulk_client(&lab.ns_addr, port, bytes, Duration::from_millis(2500));
    let got = wait_done(&mut client, Duration::from_secs(90));
    assert_eq!(got, bytes);
    let (spid, cpid) = (server.id(), client.id());
    let _ = client.wait();
    // Two more exports after the close.
    std::thread::sleep(Duration::from_millis(2200));
    stop_child(&mut server);
    (rx, spid, cpid, port, lab)
}

#[test]
fn a_delayed_link_gives_its_rtt_and_exact_bytes_on_both_sides() {
    if !require_root() {
        return;
    }
    let bytes = 4 << 20;
    let (rx, server, client, port, lab) = transfer(Duration::from_millis(20), 0.0, bytes);
    let port_s = port.to_string();
    let all = metric_points(&rx);
    let mine: Vec<&MetricPoint> = all.iter().filter(|p| p.pid == Some(server) || p.pid == Some(client)).collect();
    let client_side = [
        ("network.peer.address", lab.ns_addr.as_str()),
        ("server.port", port_s.as_str()),
        ("ebpf_receiver.flow.role", "client"),
        ("network.transport", "tcp"),
        ("network.type", "ipv4"),
    ];
    let received = last(&rx, client, "tcp.bytes", &[&client_side[..], &[("network.io.direction", "receive")]].concat());
    let received =
        received.unwrap_or_else(|| panic!("no client tcp.bytes:\n{}", describe_points(mine.iter().copied())));
    assert!(
        (received - bytes as f64).abs() <= bytes as f64 * 0.01,
        "client received {received} of {bytes}:\n{}",
        describe_points(mine.iter().copied())
    );
    // The server's process names the peer from the first pass on (its
    // listener, before the accept), so the connection is one series.
    let series: std::collections::BTreeSet<_> =
        points_of(&rx, client, "tcp.bytes").into_iter().map(|p| format!("{:?}", p.attrs)).collect();
    assert_eq!(series.len(), 2, "one series per direction: {series:?}");
    assert!(series.iter().all(|s| s.contains("service.peer.name")), "{series:?}");
    let server_side = [
        ("network.peer.address", lab.host_addr.as_str()),
        ("server.port", port_s.as_str()),
        ("ebpf_receiver.flow.role", "server"),
    ];
    let sent = last(&rx, server, "tcp.bytes", &[&server_side[..], &[("network.io.direction", "transmit")]].concat())
        .unwrap_or_else(|| panic!("no server tcp.bytes:\n{}", describe_points(mine.iter().copied())));
    assert!((sent - bytes as f64).abs() <= bytes as f64 * 0.01, "server sent {sent} of {bytes}");
    // RTT in seconds, between 20 and 30 ms, on both sides.
    for (pid, side) in [(client, &client_side[..]), (server, &server_side[..])] {
        let rtts: Vec<f64> = points_of(&rx, pid, "tcp.rtt.average")
            .into_iter()
            .filter(|p| side.iter().all(|(k, v)| p.attr(k) == Some(v)))
            .map(|p| p.sum)
            .collect();
        assert!(!rtts.is_empty(), "no tcp.rtt.average for {pid}");
        eprintln!("pid {pid}: tcp.rtt.average {rtts:?} s");
        // The last export follows 50 clean round trips; earlier ones may
        // hold the bulk transfer's tail (delayed ACKs), never less than the link.
        assert!(rtts.iter().all(|r| *r >= 0.020), "RTT {rtts:?}");
        assert!((0.020..=0.030).contains(rtts.last().unwrap()), "RTT {rtts:?}");
        let unit = points_of(&rx, pid, "tcp.rtt").first().map(|p| p.unit.clone());
        assert_eq!(unit.as_deref(), Some("s"));
    }
    assert_eq!(last(&rx, client, "tcp.new_sockets", &client_side), Some(1.0));
    assert_eq!(last(&rx, server, "tcp.retrans", &server_side), Some(0.0));
    drop(rx);
}

#[test]
fn loss_gives_retransmissions_and_the_bytes_stay_exact() {
    if !require_root() {
        return;
    }
    let bytes = 10 << 20;
    let (rx, server, client, port, _lab) = transfer(Duration::from_millis(4), 0.05, bytes);
    let port_s = port.to_string();
    let retrans = last(&rx, server, "tcp.retrans", &[("server.port", &port_s)]).unwrap_or(0.0);
    eprintln!("{retrans} retransmissions");
    assert!(retrans > 0.0, "no retransmission counted:\n{}", describe_points(&points_of(&rx, server, "tcp.retrans")));
    let received =
        last(&rx, client, "tcp.bytes", &[("server.port", &port_s), ("network.io.direction", "receive")]).unwrap();
    assert!(
        (received - bytes as f64).abs() <= bytes as f64 * 0.01,
        "client received {received} of {bytes}:\n{}",
        describe_points(&points_of(&rx, client, "tcp.bytes"))
    );
}

#[test]
fn a_connection_older_than_the_receiver_is_reported_from_the_first_export() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new(Duration::from_millis(2), 0.0);
    let port = free_port();
    let mut server = bulk_server(&lab, port, 1000);
    let mut client = bulk_client(&lab.ns_addr, port, 1000, Duration::from_secs(30));
    wait_done(&mut client, Duration::from_secs(10));
    let rx = Receiver::start_with(CONFIG);
    let port_s = port.to_string();
    let active = wait_until(Duration::from_secs(5), || {
        last(&rx, client.id(), "tcp.active", &[("server.port", &port_s), ("ebpf_receiver.flow.role", "client")])
    });
    assert_eq!(active, Some(1.0));
    // Older than the receiver: its bytes count from the receiver's start.
    assert_eq!(
        last(&rx, client.id(), "tcp.bytes", &[("server.port", &port_s), ("network.io.direction", "receive")]),
        Some(0.0)
    );
    let server_active =
        last(&rx, server.id(), "tcp.active", &[("server.port", &port_s), ("ebpf_receiver.flow.role", "server")]);
    assert_eq!(server_active, Some(1.0), "the server side, in its own namespace");
    stop_child(&mut client);
    stop_child(&mut server);
}

/// A Python server in `lab`'s namespace on `port`: for each connection it
/// reads `request` bytes, answers `response` bytes and closes.
fn short_server(lab: &NetLab, port: u16, request: usize, response: usize) -> std::process::Child {
    let script = format!(
        r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port})); s.listen(128)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    got = 0
    while got < {request}:
        d = c.recv(65536)
        if not d: break
        got += len(d)
    c.sendall(b"r" * {response})
    c.close()
"#
    );
    let mut child =
        lab.command("python3").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

/// A Python client on the host running `body` (with `socket` and `time`
/// imported); it prints "done 0" when `body` is through, then stays (its
/// series are exported while it lives).
fn python_client(body: &str) -> std::process::Child {
    let script = format!("import socket, time\n{body}\nprint('done 0', flush=True)\ntime.sleep(60)\n");
    std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3")
}

#[test]
fn short_connections_between_two_passes_are_all_counted_exactly() {
    if !require_root() {
        return;
    }
    // Passes 5 s apart: the connections open and close between the first
    // (inside start) and the second; only their ends report them.
    let config = r#"{"batch": {"timeout_ms": 200}, "metrics": {"interval_ms": 1000}, "flows": {"interval_ms": 5000}}"#;
    let lab = NetLab::new(Duration::from_millis(1), 0.0);
    let port = free_port();
    let (n, request, response) = (40usize, 1234usize, 5678usize);
    let mut server = short_server(&lab, port, request, response);
    let rx = Receiver::start_with(config);
    let mut client = python_client(&format!(
        r#"
for _ in range({n}):
    c = socket.create_connection(("{addr}", {port}))
    c.sendall(b"q" * {request})
    got = 0
    while True:
        d = c.recv(65536)
        if not d: break
        got += len(d)
    assert got == {response}, got
    c.close()
"#,
        addr = lab.ns_addr
    ));
    wait_done(&mut client, Duration::from_secs(30));
    let (spid, cpid) = (server.id(), client.id());
    let port_s = port.to_string();
    let client_side = [("server.port", port_s.as_str()), ("ebpf_receiver.flow.role", "client")];
    let server_side = [("server.port", port_s.as_str()), ("ebpf_receiver.flow.role", "server")];
    fn with<'a>(side: &[(&'a str, &'a str)], dir: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut v = side.to_vec();
        v.push(("network.io.direction", dir));
        v
    }
    let expected = [
        (cpid, with(&client_side, "transmit"), n * request),
        (cpid, with(&client_side, "receive"), n * response),
        (spid, with(&server_side, "transmit"), n * response),
        (spid, with(&server_side, "receive"), n * request),
    ];
    // Exact, and all there before the second pass (the client still holds nothing).
    let complete = wait_until(Duration::from_secs(4), || {
        expected
            .iter()
            .all(|(pid, attrs, want)| last(&rx, *pid, "tcp.bytes", attrs) == Some(*want as f64))
            .then_some(())
    });
    let mine: Vec<MetricPoint> =
        metric_points(&rx).into_iter().filter(|p| p.pid == Some(spid) || p.pid == Some(cpid)).collect();
    assert!(complete.is_some(), "bytes not exact:\n{}", describe_points(mine.iter()));
    assert_eq!(last(&rx, cpid, "tcp.new_sockets", &client_side), Some(n as f64));
    assert_eq!(last(&rx, spid, "tcp.new_sockets", &server_side), Some(n as f64));
    // Every active open's handshake, over a link of 1 ms round trip.
    let handshakes: Vec<MetricPoint> = points_of(&rx, cpid, "tcp.handshake.duration");
    let h = handshakes.last().unwrap_or_else(|| panic!("no handshakes:\n{}", describe_points(mine.iter())));
    assert_eq!(h.count, n as u64);
    let mean = h.sum / n as f64;
    assert!((0.001..0.1).contains(&mean), "mean handshake {mean} s");
    // Past the second pass: nothing counted twice.
    std::thread::sleep(Duration::from_millis(5500));
    for (pid, attrs, want) in &expected {
        assert_eq!(last(&rx, *pid, "tcp.bytes", attrs), Some(*want as f64), "{attrs:?}");
    }
    assert_eq!(last(&rx, cpid, "tcp.new_sockets", &client_side), Some(n as f64));
    stop_child(&mut client);
    stop_child(&mut server);
}

#[test]
fn refused_timed_out_and_reset_connections_are_counted_by_reason() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new(Duration::from_millis(2), 0.0);
    let (closed, resetting) = (free_port(), free_port());
    let blackholed = lab.blackholed_addr();
    // A server that accepts, then aborts (SO_LINGER 0: a reset, not a FIN).
    let script = format!(
        r#"
import socket, struct
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {resetting})); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
"#
    );
    let mut server =
        lab.command("python3").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let rx = Receiver::start_with(CONFIG);
    let mut client = python_client(&format!(
        r#"
def attempt(addr, port):
    c = socket.socket()
    # One SYN retry: a timeout after ~3 s, not the default 2 minutes.
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    try:
        c.connect((addr, port))
    except OSError as e:
        c.close()
        return e.errno
    return c
import errno
assert attempt("{ns}", {closed}) == errno.ECONNREFUSED
assert attempt("{blackholed}", 80) == errno.ETIMEDOUT
c = attempt("{ns}", {resetting})
c.sendall(b"x")
try:
    while c.recv(100): pass
except ConnectionResetError:
    pass
c.close()
"#,
        ns = lab.ns_addr
    ));
    wait_done(&mut client, Duration::from_secs(30));
    let cpid = client.id();
    let failures = |addr: &str, port: u16, reason: &str| {
        let port = port.to_string();
        let attrs = [("network.peer.address", addr), ("server.port", port.as_str()), ("error.type", reason)];
        wait_until(Duration::from_secs(4), || last(&rx, cpid, "tcp.connection.failures", &attrs))
    };
    let all = || describe_points(metric_points(&rx).iter().filter(|p| p.pid == Some(cpid)));
    assert_eq!(failures(&lab.ns_addr, closed, "connection_refused"), Some(1.0), "{}", all());
    assert_eq!(failures(&blackholed, 80, "timeout"), Some(1.0), "{}", all());
    let blackholed_attrs = [("network.peer.address", blackholed.as_str()), ("server.port", "80")];
    assert_eq!(last(&rx, cpid, "tcp.syn_timeouts", &blackholed_attrs), Some(1.0));
    // No failure is a connection.
    assert_eq!(last(&rx, cpid, "tcp.new_sockets", &blackholed_attrs).unwrap_or(0.0), 0.0);
    let resetting_s = resetting.to_string();
    let resets = wait_until(Duration::from_secs(4), || {
        last(&rx, cpid, "tcp.resets", &[("server.port", resetting_s.as_str()), ("ebpf_receiver.flow.role", "client")])
    });
    assert_eq!(resets, Some(1.0), "{}", all());
    let server_resets = last(
        &rx,
        server.id(),
        "tcp.resets",
        &[("server.port", resetting_s.as_str()), ("ebpf_receiver.flow.role", "server")],
    );
    assert_eq!(server_resets, Some(1.0));
    stop_child(&mut client);
    stop_child(&mut server);
}
