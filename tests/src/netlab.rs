//! A network namespace joined to the host by a link whose delay and loss the
//! test sets, for the flow tests.
//!
//! This kernel has no netem qdisc, so the link is made here: two TUN
//! devices, one in the host's namespace and one moved into the test's, and
//! a relay in this process that reads every packet from one, holds it for
//! half the round trip and writes it to the other, dropping a set fraction.
//! Point-to-point addresses 10.201.N.1 (host) and 10.201.N.2 (namespace);
//! the MTU is 9000 so that a lossy transfer of megabytes takes seconds, not
//! minutes. Dropping the lab stops the relay and deletes the namespace and
//! both devices.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TUNSETIFF: libc::c_ulong = 0x400454ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

static LABS: AtomicU32 = AtomicU32::new(0);

pub struct NetLab {
    pub netns: String,
    /// The host's end.
    pub host_addr: String,
    /// The namespace's end.
    pub ns_addr: String,
    host_dev: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn tun(name: &str) -> OwnedFd {
    let path = CString::new("/dev/net/tun").unwrap();
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open /dev/net/tun: {}", std::io::Error::last_os_error());
    // SAFETY: fd was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq { name: [0; 16], flags: IFF_TUN | IFF_NO_PI, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is (40 bytes).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) };
    assert_eq!(rc, 0, "TUNSETIFF {name}: {}", std::io::Error::last_os_error());
    fd
}

/// Real-time priority for the calling thread: on a busy host a relay (or an
/// echo) woken late adds its wait to the link's delay.
fn realtime() {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: a valid sched_param owned by this frame; 0 is the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
}

/// Packets from `from` written to `to` `delay` later; `loss` of them dropped.
fn relay(
    from: Arc<OwnedFd>,
    to: Arc<OwnedFd>,
    delay: Duration,
    loss: f64,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> [JoinHandle<()>; 2] {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = std::thread::spawn(move || {
        realtime();
        let mut state = seed | 1;
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd { fd: from.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            // SAFETY: buf has buf.len() writable bytes; the fd is open.
            let n = unsafe { libc::read(from.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                continue;
            }
            // xorshift: the loss pattern is the same every run.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if (state % 1_000_000) as f64 / 1e6 < loss {
                continue;
            }
            if tx.send((Instant::now() + delay, buf[..n as usize].to_vec())).is_err() {
                break;
            }
        }
    });
    let writer = std::thread::spawn(move || {
        realtime();
        while let Ok((due, packet)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // SAFETY: packet is a valid buffer of packet.len() bytes; the fd is open.
            unsafe { libc::write(to.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        }
    });
    [reader, writer]
}

impl NetLab {
    /// A namespace joined by a link of `rtt` round trip, dropping `loss`
    /// (0..1) of the packets each way.
    pub fn new(rtt: Duration, loss: f64) -> Self {
        let n = (std::process::id() + LABS.fetch_add(1, Ordering::Relaxed)) % 250 + 1;
        let netns = format!("oe-flows-{}-{n}", std::process::id());
        let (host_dev, ns_dev) = (format!("oefh{n}"), format!("oefn{n}"));
        let (host_addr, ns_addr) = (format!("10.201.{n}.1"), format!("10.201.{n}.2"));
        let _ = Command::new("ip").args(["netns", "del", &netns]).stderr(Stdio::null()).status();
        run(&["ip", "netns", "add", &netns]);
        let host_fd = Arc::new(tun(&host_dev));
        let ns_fd = Arc::new(tun(&ns_dev));
        run(&["ip", "link", "set", &ns_dev, "netns", &netns]);
        run(&["ip", "addr", "add", &host_addr, "peer", &ns_addr, "dev", &host_dev]);
        run(&["ip", "link", "set", &host_dev, "mtu", "9000", "up"]);
        let exec = |args: &[&str]| {
            let mut cmd = vec!["ip", "netns", "exec", &netns];
            cmd.extend_from_slice(args);
            run(&cmd);
        };
        exec(&["ip", "link", "set", "lo", "up"]);
        exec(&["ip", "addr", "add", &ns_addr, "peer", &host_addr, "dev", &ns_dev]);
        exec(&["ip", "link", "set", &ns_dev, "mtu", "9000", "up"]);
        let stop = Arc::new(AtomicBool::new(false));
        let half = rtt / 2;
        let mut threads = Vec::new();
        threads.extend(relay(host_fd.clone(), ns_fd.clone(), half, loss, stop.clone(), 0x9e3779b97f4a7c15));
        threads.extend(relay(ns_fd, host_fd, half, loss, stop.clone(), 0xd1b54a32d192ed03));
        Self { netns, host_addr, ns_addr, host_dev, stop, threads }
    }

    /// An address routed into the link that nothing answers (the
    /// namespace does not forward): a SYN sent to it times out.
    pub fn blackholed_addr(&self) -> String {
        let addr = self.ns_addr.rsplit_once('.').map(|(net, _)| format!("{net}.3")).unwrap();
        run(&["ip", "route", "replace", &format!("{addr}/32"), "dev", &self.host_dev]);
        addr
    }

    /// A command run inside the namespace (its pid is the command's: `ip
    /// netns exec` execs it).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_dev]).stderr(Stdio::null()).status();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A Python TCP server in `lab`'s namespace on `port`: to each connection
/// it sends `bytes` bytes, then echoes what it receives until the client
/// closes.
pub fn bulk_server(lab: &NetLab, port: u16, bytes: usize) -> Child {
    let script = format!(
        r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port})); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"x" * {bytes})
    while True:
        d = c.recv(65536)
        if not d: break
        if d == b"q":
            # Acknowledged at once: a delayed ACK would be the client's last RTT sample.
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            continue
        c.sendall(d)
    c.close()
"#
    );
    // Real-time, as the relay: its echoes are RTT samples (chrt execs python: same pid).
    let mut child = lab
        .command("chrt")
        .args(["-f", "10", "python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

/// A Python client on the host: connects to `addr:port`, reads `bytes`
/// bytes, then makes 50 one-byte round trips and sends a last byte that is
/// acknowledged at once (so that the smoothed RTT of both ends is the
/// link's, not the bulk transfer's tail or a delayed ACK's), holds the
/// connection `hold` longer, closes. Returns the child (its stdout says
/// "done <bytes>" when the data is in and the round trips made).
pub fn bulk_client(addr: &str, port: u16, bytes: usize, hold: Duration) -> Child {
    let script = format!(
        r#"
import socket, time
c = socket.create_connection(("{addr}", {port}))
got = 0
while got < {bytes}:
    d = c.recv(1 << 20)
    if not d: break
    got += len(d)
for _ in range(50):
    c.sendall(b"p")
    c.recv(1)
c.sendall(b"q")
print("done", got, flush=True)
time.sleep({hold})
c.close()
"#,
        hold = hold.as_secs_f64()
    );
    Command::new("chrt").args(["-f", "10", "python3", "-c", &script]).stdout(Stdio::piped()).spawn().expect("python3")
}
