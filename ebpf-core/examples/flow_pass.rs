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
//!
//! With `memory`, the passes go through the library's flows state as the
//! receiver's worker runs them (decode, per-socket table, metrics) and the
//! process's RSS is printed before the iterator is loaded, after it is, after
//! the first pass and after the sixth (steady state), with the bytes per
//! reported socket that flows hold: what `flows.enabled` costs on a host
//! with that many sockets; and the time the library spends on each pass's
//! records (decode, table, metrics: the worker's share, beside the
//! kernel's). Both ends are Python processes of at most
//! 12,500 connections each (RLIMIT_NOFILE), so 2 × N sockets are reported;
//! client sockets come from 127.0.0.2..9, so more connections than one
//! address has ephemeral ports can be made.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ebpf_core::flows::{DnsConfig, Flows};
use ebpf_core::metrics::MetricsConfig;
use ebpf_core::probes::FlowIter;
use ebpf_core::process::ProcessIdentity;

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
    c = socket.socket(); c.bind((f"127.0.0.{2 + i % 8}", 0)); c.connect(("127.0.0.1", port))
    c.send(b"x"); conns.append(c)
print("ready", flush=True)
sys.stdin.read()
"#;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let both = std::env::args().skip(2).any(|a| a == "both");
    if std::env::args().skip(2).any(|a| a == "memory") {
        return memory(n);
    }
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
    time_passes(n, both);
    drop(client.stdin.take());
    let _ = client.wait();
    if let Some(mut server) = server {
        drop(server.stdin.take());
        let _ = server.wait();
    }
}

fn time_passes(n: usize, both: bool) {
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
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// Connections per Python process: RLIMIT_NOFILE may not be raisable.
const PER_PROCESS: usize = 12_500;

/// N connections between Python servers and clients, then the passes.
fn memory(n: usize) {
    let spawn = |script: &str, args: &[String]| {
        let mut child = Command::new("python3")
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        (child, lines)
    };
    let mut children = Vec::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(PER_PROCESS);
        left -= k;
        let (server, mut server_lines) = spawn(SERVER, &[k.to_string()]);
        let port = server_lines.next().unwrap().unwrap();
        let (client, mut client_lines) = spawn(CLIENT, &[k.to_string(), port]);
        assert_eq!(client_lines.next().unwrap().unwrap(), "ready");
        assert_eq!(server_lines.next().unwrap().unwrap(), "ready");
        children.extend([server, client]);
    }
    memory_passes(2 * n);
    for mut c in children {
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

fn memory_passes(sockets: usize) {
    let before = rss();
    let mut iter = FlowIter::load(std::process::id()).expect("load the flows iterator");
    let mut flows = Flows::new(&MetricsConfig::default(), &DnsConfig::default(), 0);
    let mut known: HashMap<u32, Arc<ProcessIdentity>> = HashMap::new();
    let mut identities =
        |pid: u32| Some(known.entry(pid).or_insert_with(|| Arc::new(ProcessIdentity::from_comm(pid, "bench"))).clone());
    let loaded = rss();
    let (mut first, mut records) = (0, 0);
    let mut userspace = Vec::new();
    for i in 1..=6u64 {
        let (bytes, _) = iter.pass().expect("pass");
        records = bytes.len() / 88;
        let started = std::time::Instant::now();
        flows.pass(bytes, i * 10_000_000_000, &mut identities);
        userspace.push(started.elapsed());
        iter.trim();
        if i == 1 {
            first = rss();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let steady = rss();
    // The first pass makes every entry; the others are the steady state.
    let mut later = userspace[1..].to_vec();
    later.sort();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let per = |b: u64| b.saturating_sub(loaded) as f64 / records.max(1) as f64;
    println!(
        "flows memory, {sockets} sockets reported ({records} records): RSS {:.1} MiB before, +{:.1} MiB iterator loaded, \
         +{:.1} MiB after the first pass ({:.0} B/socket), +{:.1} MiB after six ({:.0} B/socket); \
         userspace {:.1} ms for the first pass, {:.1} ms median after",
        mib(before),
        mib(loaded.saturating_sub(before)),
        mib(first.saturating_sub(loaded)),
        per(first),
        mib(steady.saturating_sub(loaded)),
        per(steady),
        userspace[0].as_secs_f64() * 1e3,
        later[later.len() / 2].as_secs_f64() * 1e3
    );
}
