//! Cost of one pass of the network-flows iterator with N established TCP
//! connections on the host (root): `cargo run --release -p ebpf-core
//! --example flow_pass -- 10000 [both]`. A Python client opens N loopback
//! connections to a server in this process, whose own sockets the iterator
//! skips before reading them (as for the collector's): N sockets are
//! reported, as on a host whose peers are elsewhere. With `both`, the server
//! is a Python process too and 2 × N sockets are reported. The iterator
//! runs 21 times; the median wall time and CPU time (of the reading thread,
//! where the kernel runs the program) are printed with the records read.
//! Other sockets of the host are walked too: the records say how many.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebpf_core::probes::FlowIter;

const SERVER: &str = r#"
import socket, sys, resource
n = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096)
print(s.getsockname()[1], flush=True)
conns = [s.accept()[0] for _ in range(n)]
print("ready", flush=True)
sys.stdin.read()
"#;

const CLIENT: &str = r#"
import socket, sys, resource
n, port = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
conns = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", port)); c.send(b"x"); conns.append(c)
print("ready", flush=True)
sys.stdin.read()
"#;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let both = std::env::args().nth(2).as_deref() == Some("both");
    let limit = libc::rlimit { rlim_cur: n as u64 + 100, rlim_max: n as u64 + 100 };
    // SAFETY: a valid rlimit owned by this frame.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut server = both.then(|| {
        Command::new("python3")
            .args(["-c", SERVER, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3")
    });
    let mut lines = server.as_mut().map(|s| BufReader::new(s.stdout.take().unwrap()).lines());
    let port = match &mut lines {
        Some(lines) => lines.next().unwrap().unwrap(),
        None => listener.local_addr().unwrap().port().to_string(),
    };
    let accept = std::thread::spawn(move || {
        if both {
            return Vec::new();
        }
        (0..n).map(|_| listener.accept().unwrap().0).collect::<Vec<_>>()
    });
    let mut client = Command::new("python3")
        .args(["-c", CLIENT, &n.to_string(), &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut client_lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(client_lines.next().unwrap().unwrap(), "ready");
    let _accepted = accept.join().unwrap();
    if let Some(lines) = &mut lines {
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
    }
    let mut iter = FlowIter::load(std::process::id()).expect("load the flows iterator");
    let mut runs = Vec::new();
    for _ in 0..21 {
        let (records, cost) = iter.pass().expect("pass");
        runs.push((cost.wall, cost.cpu, records.len() / 88));
        std::thread::sleep(Duration::from_millis(50));
    }
    runs.sort();
    let (wall, _, records) = runs[runs.len() / 2];
    let mut cpus: Vec<Duration> = runs.iter().map(|r| r.1).collect();
    cpus.sort();
    let cpu = cpus[cpus.len() / 2];
    println!(
        "flows pass, {n} connections ({} sockets reported): {records} records, median {:.2} ms wall, {:.2} ms CPU, {:.0} records/ms",
        if both { 2 * n } else { n },
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        records as f64 / (wall.as_secs_f64() * 1e3)
    );
    drop(client.stdin.take());
    let _ = client.wait();
    if let Some(mut server) = server {
        drop(server.stdin.take());
        let _ = server.wait();
    }
}
