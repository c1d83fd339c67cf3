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
    assert!((received - bytes as f64).abs() <= bytes as f64 * 0.01, "client received {received} of {bytes}");
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
    assert!((received - bytes as f64).abs() <= bytes as f64 * 0.01, "client received {received} of {bytes}");
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
