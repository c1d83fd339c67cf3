//! Which end of a TCP connection a process holds, as the kernel announces it
//! (`OE_ROLE_*` in the open event; the kernel's loss accounting counts lost
//! requests by it). New connections: from TCP's state machine (an active
//! open is a client, an accepted one a server). Connections older than the
//! receiver: a server when the local port is one a socket listened on at
//! start-up, else a client.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebpf_core::events::Transport;
use ebpf_probes::abi;
use integration_tests::recording::Recording;
use integration_tests::servers::python;
use integration_tests::{require_root, Receiver, TempDir};

/// A listener, one connection accepted before the receiver starts ("old"),
/// and, once a line arrives on stdin, a request and response on it and on a
/// connection made then ("new"). Prints the ports, then "done".
const PAIRS: &str = r#"
import socket, sys
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
port = ls.getsockname()[1]
old_c = socket.create_connection(("127.0.0.1", port))
old_s, _ = ls.accept()
print(port, old_c.getsockname()[1], flush=True)
sys.stdin.readline()
new_c = socket.create_connection(("127.0.0.1", port))
new_s, _ = ls.accept()
for c, s in ((old_c, old_s), (new_c, new_s)):
    c.sendall(b"GET /role HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    s.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    c.recv(4096)
print(new_c.getsockname()[1], flush=True)
sys.stdin.readline()
"#;

#[test]
fn roles_of_new_and_older_connections() {
    if !require_root() {
        return;
    }
    let mut child = Command::new(python())
        .arg("-c")
        .arg(PAIRS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ports");
    let ports: Vec<u16> = line.split_whitespace().map(|p| p.parse().expect("port")).collect();
    let (listen_port, old_client_port) = (ports[0], ports[1]);

    let dir = TempDir::new("roles");
    let recording = dir.path().join("events.bin");
    let mut rx = Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "record_events": "{}"}}"#,
        recording.display()
    ));
    writeln!(stdin, "go").expect("stdin");
    line.clear();
    out.read_line(&mut line).expect("new client port");
    let new_client_port: u16 = line.trim().parse().expect("port");
    std::thread::sleep(Duration::from_millis(300));
    rx.stop();
    drop(stdin);
    let _ = child.wait();

    let rec = Recording::read(&recording);
    let role_of = |port: u16, peer: u16| -> u32 {
        let found: Vec<_> = rec
            .opens
            .iter()
            .filter(|(_, o)| o.transport == Transport::Tcp && o.local.1 == port && o.peer.1 == peer)
            .collect();
        assert_eq!(found.len(), 1, "one open event for local port {port}, peer {peer}: {:?}", rec.opens);
        u32::from(found[0].1.role)
    };
    // Older than the receiver: decided from the listening ports seen at start-up.
    assert_eq!(role_of(listen_port, old_client_port), abi::OE_ROLE_SERVER, "accepted before start");
    assert_eq!(role_of(old_client_port, listen_port), abi::OE_ROLE_CLIENT, "connected before start");
    // New: from the state machine.
    assert_eq!(role_of(listen_port, new_client_port), abi::OE_ROLE_SERVER, "accepted");
    assert_eq!(role_of(new_client_port, listen_port), abi::OE_ROLE_CLIENT, "connected");
}
