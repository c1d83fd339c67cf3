//! DNS from the kernel, through the C ABI: a real dnsmasq (Debian) started
//! here with a local zone (A, AAAA, and NXDOMAIN for any other name in it)
//! on a loopback address of its own, port 53, and real clients. The
//! payloads come from the socket-layer data path; the receiver parses and
//! matches them (`ebpf-core/src/flows/dns`).

use std::io::BufRead;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::metric_points::{metric_points, MetricPoint};
use integration_tests::util::stop_child;
use integration_tests::{free_port, require_root, wait_until, Receiver, TempDir};

const CONFIG: &str =
    r#"{"batch": {"timeout_ms": 200}, "metrics": {"interval_ms": 1000}, "flows": {"interval_ms": 1000}}"#;
const ZONE: &str = "flows.test";

/// Loopback addresses of this run (127/8 is all local): the resolver's and
/// the web server's, apart from other tests' and other receivers'.
fn addresses() -> (Ipv4Addr, Ipv4Addr) {
    let n = std::process::id();
    let (b, c) = ((n >> 8) as u8 % 250 + 1, n as u8 % 250 + 1);
    (Ipv4Addr::new(127, 83, b, c), Ipv4Addr::new(127, 84, b, c))
}

struct Dnsmasq {
    child: Child,
    _dir: TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A child stopped when the test ends, failed or not.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

/// dnsmasq answering for `ZONE` only: `web` has an A (`web_v4`) and an AAAA
/// record, any other name is NXDOMAIN; nothing is forwarded.
fn dnsmasq(listen: Ipv4Addr, web_v4: Ipv4Addr) -> Dnsmasq {
    let dir = TempDir::new("dnsmasq");
    let conf = dir.path().join("dnsmasq.conf");
    std::fs::write(
        &conf,
        format!(
            "no-resolv\nno-hosts\nno-poll\nport=53\nlisten-address={listen}\nbind-interfaces\n\
             local=/{ZONE}/\nhost-record=web.{ZONE},{web_v4},fd77::5\nlog-facility=-\n"
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/dnsmasq")
        .arg(format!("--conf-file={}", conf.display()))
        .args(["--keep-in-foreground", "--user=root", "--pid-file="])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (scripts/deps.sh installs dnsmasq-base)");
    let up = wait_until(Duration::from_secs(15), || {
        std::net::UdpSocket::bind((listen, 0)).ok()?;
        let out = Command::new("dig")
            .args([&format!("@{listen}"), "+short", "+tries=1", "+time=1"])
            .arg(format!("web.{ZONE}"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).contains(&web_v4.to_string()).then_some(())
    });
    assert!(up.is_some(), "dnsmasq did not answer on {listen}:53");
    Dnsmasq { child, _dir: dir }
}

fn points(rx: &Receiver, pid: u32, name: &str) -> Vec<MetricPoint> {
    metric_points(rx).into_iter().filter(|p| p.pid == Some(pid) && p.name == name).collect()
}

/// The last cumulative point of `name` for `pid` whose attributes include `attrs`.
fn last(rx: &Receiver, pid: u32, name: &str, attrs: &[(&str, &str)]) -> Option<MetricPoint> {
    points(rx, pid, name).into_iter().rev().find(|p| attrs.iter().all(|(k, v)| p.attr(k) == Some(v)))
}

/// A Python client asking `resolver` over a connected UDP socket with
/// plain send/recv: web A, web AAAA, missing A; then a TCP connection to
/// the A answer's address on `port`. Prints "done", then stays.
const CLIENT: &str = r#"
import socket, struct, sys, time
resolver, zone, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def query(qid, name, qtype):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((resolver, 53))
answers = []
for qid, (name, qtype) in enumerate([("web." + zone, 1), ("web." + zone, 28), ("missing." + zone, 1)], 1000):
    s.send(query(qid, name, qtype))
    answers.append(s.recv(512))
a = answers[0]
assert a[3] & 0xf == 0 and answers[2][3] & 0xf == 3, answers
addr = socket.inet_ntoa(a[-4:])
c = socket.create_connection((addr, port))
c.sendall(b"x" * 100)
c.recv(100)
print("done", flush=True)
time.sleep(60)
"#;

/// A Python client asking `resolver` over an unconnected UDP socket
/// (sendto, recvfrom): web A, web AAAA, missing A; then 5 bytes that are no
/// DNS message. Prints "done", then stays.
const SENDTO_CLIENT: &str = r#"
import socket, struct, sys, time
resolver, zone = sys.argv[1], sys.argv[2]
def query(qid, name, qtype):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for qid, (name, qtype) in enumerate([("web." + zone, 1), ("web." + zone, 28), ("missing." + zone, 1)], 2000):
    s.sendto(query(qid, name, qtype), (resolver, 53))
    answer, peer = s.recvfrom(512)
    assert peer[0] == resolver and struct.unpack(">H", answer[:2])[0] == qid, (peer, answer)
s.sendto(b"hello", (resolver, 53))
print("done", flush=True)
time.sleep(60)
"#;

/// A TCP server on `addr:port` that answers 100 bytes to each connection's first read.
fn web_server(addr: Ipv4Addr, port: u16) -> Child {
    let script = format!(
        "import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{addr}', {port})); s.listen(16); print('ready', flush=True)\n\
         while True:\n    c, _ = s.accept(); c.recv(1000); c.sendall(b'y' * 100)\n"
    );
    let mut child = Command::new("python3").args(["-c", &script]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn wait_line(child: &mut Child, want: &str) {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("the client did not finish in time");
    assert_eq!(line.trim(), want);
}

#[test]
fn queries_answers_and_nxdomain_from_a_real_resolver_name_the_flows() {
    if !require_root() {
        return;
    }
    let (resolver, web) = addresses();
    let server = dnsmasq(resolver, web);
    let port = free_port();
    let _www = Stopped(web_server(web, port));
    let rx = Receiver::start_with(CONFIG);
    // The receiver traces processes that start after it.
    std::thread::sleep(Duration::from_millis(500));
    let mut client = Command::new("python3")
        .args(["-c", CLIENT, &resolver.to_string(), ZONE, &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    wait_line(&mut client, "done");
    let pid = client.id();
    let resolver_s = resolver.to_string();
    let name = format!("web.{ZONE}");
    let missing = format!("missing.{ZONE}");
    let base = [("network.peer.address", resolver_s.as_str()), ("network.transport", "udp")];
    let a = [&base[..], &[("dns.question.name", &name), ("ebpf_receiver.dns.question.type", "A")]].concat();
    let got = wait_until(Duration::from_secs(15), || last(&rx, pid, "dns.responses", &a));
    let got = got.expect("no dns.responses for the A query");
    assert_eq!(got.sum, 1.0);
    assert_eq!(got.attr("error.type"), None);
    assert_eq!(got.attr("ebpf_receiver.flow.role"), Some("client"));
    let aaaa = [&base[..], &[("dns.question.name", &name), ("ebpf_receiver.dns.question.type", "AAAA")]].concat();
    assert_eq!(last(&rx, pid, "dns.responses", &aaaa).map(|p| p.sum), Some(1.0));
    let nx = [&base[..], &[("dns.question.name", &missing), ("error.type", "nxdomain")]].concat();
    assert_eq!(last(&rx, pid, "dns.responses", &nx).map(|p| p.sum), Some(1.0));
    // Three responses in all, three lookups timed.
    let responses: f64 = {
        let all = points(&rx, pid, "dns.responses");
        let mut series: std::collections::BTreeMap<_, f64> = Default::default();
        for p in all {
            series.insert(p.attrs.clone(), p.sum);
        }
        series.values().sum()
    };
    assert_eq!(responses, 3.0);
    let lookups: Vec<_> = points(&rx, pid, "dns.lookup.duration");
    let lookup = lookups.iter().rev().find(|p| p.attr("dns.question.name") == Some(&name)).expect("a lookup duration");
    assert!(lookup.count >= 1 && lookup.sum > 0.0 && lookup.sum < 1.0, "{lookup:?}");
    let avg = last(&rx, pid, "dns.client.duration.average", &a).expect("client average");
    assert!(avg.sum > 0.0 && avg.sum < 1.0, "{avg:?}");
    // The resolver's side: three queries answered, timed.
    let spid = server.child.id();
    let served = wait_until(Duration::from_secs(15), || {
        let p = last(
            &rx,
            spid,
            "dns.responses",
            &[("dns.question.name", &name), ("ebpf_receiver.dns.question.type", "A")],
        )?;
        (p.attr("ebpf_receiver.flow.role") == Some("server")).then_some(p.sum)
    });
    assert_eq!(served, Some(1.0));
    assert!(
        last(&rx, spid, "dns.server.duration.average", &[("dns.question.name", &missing)]).is_some_and(|p| p.sum > 0.0)
    );
    // The answered address is named on the client's flow to it.
    let port_s = port.to_string();
    let web_s = web.to_string();
    let flow = wait_until(Duration::from_secs(15), || {
        last(&rx, pid, "tcp.active", &[("network.peer.address", &web_s), ("server.port", &port_s)])
    });
    assert_eq!(flow.expect("the client's flow to the web server").attr("server.address"), Some(name.as_str()));
    assert!(points(&rx, pid, "dns.timeouts").is_empty());
    stop_child(&mut client);

    // An unconnected socket (sendto/recvfrom, as musl and dnspython ask):
    // the kernel reads each query's destination from the call. And a
    // datagram to port 53 that is no DNS message is counted as malformed.
    let malformed_before = rx.counter("dns_malformed");
    let mut unconnected = Command::new("python3")
        .args(["-c", SENDTO_CLIENT, &resolver.to_string(), ZONE])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    wait_line(&mut unconnected, "done");
    let upid = unconnected.id();
    for (qname, qtype, rcode) in [(&name, "A", None), (&name, "AAAA", None), (&missing, "A", Some("nxdomain"))] {
        let want =
            [&base[..], &[("dns.question.name", qname.as_str()), ("ebpf_receiver.dns.question.type", qtype)]].concat();
        let got = wait_until(Duration::from_secs(15), || last(&rx, upid, "dns.responses", &want));
        let got = got.unwrap_or_else(|| panic!("no dns.responses from sendto {qtype} {qname}"));
        assert_eq!((got.sum, got.attr("error.type")), (1.0, rcode), "sendto {qtype} {qname}");
        assert_eq!(got.attr("ebpf_receiver.flow.role"), Some("client"));
    }
    let all: f64 = {
        let mut series: std::collections::BTreeMap<_, f64> = Default::default();
        for p in points(&rx, upid, "dns.responses") {
            series.insert(p.attrs.clone(), p.sum);
        }
        series.values().sum()
    };
    assert_eq!(all, 3.0, "three answers in all");
    let malformed = wait_until(Duration::from_secs(15), || {
        let n = rx.counter("dns_malformed");
        (n > malformed_before).then_some(n)
    });
    assert!(malformed.is_some(), "the non-DNS datagram to port 53 was not counted as malformed");
    // Its UDP flow: three queries to the resolver's port 53, and the
    // answers from its only peer.
    let flow = [("network.peer.address", resolver_s.as_str()), ("server.port", "53"), ("network.transport", "udp")];
    let sent = wait_until(Duration::from_secs(15), || {
        let p = last(&rx, upid, "udp.packets", &[&flow[..], &[("network.io.direction", "transmit")]].concat())?;
        (p.sum == 4.0).then_some(p)
    });
    assert!(sent.is_some(), "udp.packets to the resolver: {:?}", points(&rx, upid, "udp.packets"));
    stop_child(&mut unconnected);

    // dig (BIND 9, libuv) sends each query with a one-message sendmmsg.
    for (qname, qtype, rcode) in [(&name, "A", None), (&name, "AAAA", None), (&missing, "A", Some("nxdomain"))] {
        let dig = Command::new("dig")
            .args([&format!("@{resolver}"), "+tries=1", "+time=2", "-t", qtype, qname.as_str()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dig");
        let dig_pid = dig.id();
        let out = dig.wait_with_output().expect("dig");
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.contains(if rcode.is_some() { "NXDOMAIN" } else { "NOERROR" }), "{out}");
        let want =
            [&base[..], &[("dns.question.name", qname.as_str()), ("ebpf_receiver.dns.question.type", qtype)]].concat();
        let got = wait_until(Duration::from_secs(15), || last(&rx, dig_pid, "dns.responses", &want));
        let got = got.unwrap_or_else(|| panic!("no dns.responses from dig -t {qtype} {qname}"));
        assert_eq!((got.sum, got.attr("error.type")), (1.0, rcode), "dig -t {qtype} {qname}");
        assert!(points(&rx, dig_pid, "dns.lookup.duration").iter().all(|p| p.sum > 0.0));
    }

    // glibc (Python's getaddrinfo) sends A and AAAA with one two-message
    // sendmmsg and reads the answers with recvfrom. The resolver is the
    // test's through /etc/resolv.conf, bound over in a mount namespace of
    // the client's own.
    let dir = TempDir::new("resolv");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {resolver}\noptions attempts:1 timeout:2\n")).unwrap();
    let script = format!(
        "import socket, sys, time\n\
         ok = {{a[4][0] for a in socket.getaddrinfo('{name}', {port}, proto=socket.IPPROTO_TCP)}}\n\
         try:\n    socket.getaddrinfo('{missing}', 80)\n    sys.exit('resolved a missing name')\n\
         except socket.gaierror:\n    pass\n\
         c = socket.create_connection(('{web}', {port})); c.sendall(b'x'); c.recv(100)\n\
         print(' '.join(sorted(ok)), flush=True)\ntime.sleep(60)\n"
    );
    let mut glibc = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!("mount --bind {} /etc/resolv.conf && exec python3 -c \"$0\"", resolv.display()))
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare");
    wait_line(&mut glibc, &format!("{web} fd77::5"));
    let gpid = glibc.id();
    for (qname, qtype, rcode) in [
        (&name, "A", None),
        (&name, "AAAA", None),
        (&missing, "A", Some("nxdomain")),
        (&missing, "AAAA", Some("nxdomain")),
    ] {
        let want =
            [&base[..], &[("dns.question.name", qname.as_str()), ("ebpf_receiver.dns.question.type", qtype)]].concat();
        let got = wait_until(Duration::from_secs(15), || last(&rx, gpid, "dns.responses", &want));
        let got = got.unwrap_or_else(|| panic!("no dns.responses from getaddrinfo {qtype} {qname}"));
        assert_eq!((got.sum, got.attr("error.type")), (1.0, rcode), "getaddrinfo {qtype} {qname}");
    }
    let flow = wait_until(Duration::from_secs(15), || {
        last(&rx, gpid, "tcp.active", &[("network.peer.address", &web_s), ("server.port", &port_s)])
    });
    assert_eq!(flow.expect("getaddrinfo's client flow").attr("server.address"), Some(name.as_str()));
    stop_child(&mut glibc);
}
