//! The servers under observation, each a child process: the Go demo server
//! (examples/demo-server), the stdlib Python server (examples/python-server)
//! and nginx (examples/nginx/nginx.conf.template).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{free_port, repo_root, stop_child, target_dir, wait_until, which, TempDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Go,
    Python,
    Nginx,
}

/// A running server; killed (SIGTERM, then SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Server {
    pub kind: ServerKind,
    /// The address it listens on as OTel writes it: `127.0.0.1` or `::1`.
    pub ip: &'static str,
    pub port: u16,
    child: Child,
    dir: TempDir,
}

/// The Go demo server binary, built once per test process into target/.
pub fn demo_server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = repo_root().join("examples/demo-server");
        let out_dir = target_dir().join("test-bins");
        std::fs::create_dir_all(&out_dir).expect("create target/test-bins");
        let bin = out_dir.join("demo-server");
        // Build to a private name, then rename: concurrent builds never see a half-written binary.
        let tmp = out_dir.join(format!(".demo-server.{}", std::process::id()));
        let go = which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"));
        let out = Command::new(&go)
            .args(["build", "-trimpath", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(&src)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (install Go to build examples/demo-server): {e}", go.display()));
        assert!(
            out.status.success(),
            "go build examples/demo-server failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).expect("rename demo-server");
        bin
    })
    .clone()
}

/// The Python interpreter: `$PYTHON`, else python3 on PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYTHON") {
        return PathBuf::from(p);
    }
    which("python3").expect("python3 not found on PATH (set PYTHON)")
}

fn host_of(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

impl Server {
    /// The Go demo server on `ip` (`127.0.0.1` or `::1`) with the given per-request sleep.
    pub fn go(ip: &'static str, sleep: Duration, env: &[(&str, &str)]) -> Self {
        Self::go_listening_on(ip, ip, sleep, env)
    }

    /// The Go demo server listening on `listen_ip` (e.g. `::` for a
    /// dual-stack socket) while the tests talk to it on `ip`.
    pub fn go_listening_on(listen_ip: &str, ip: &'static str, sleep: Duration, env: &[(&str, &str)]) -> Self {
        Self::go_binary(&demo_server_binary(), listen_ip, ip, sleep, env)
    }

    /// The Go demo server run from a copy named `name` (in target/test-bins),
    /// e.g. to check names longer than the kernel's 15-byte `comm`.
    pub fn go_named(name: &str, ip: &'static str, sleep: Duration, env: &[(&str, &str)]) -> Self {
        let bin = demo_server_binary();
        let copy = bin.with_file_name(name);
        if !copy.exists() {
            let tmp = bin.with_file_name(format!(".{name}.{}", std::process::id()));
            std::fs::copy(&bin, &tmp).expect("copy demo-server");
            std::fs::rename(&tmp, &copy).expect("rename demo-server copy");
        }
        Self::go_binary(&copy, ip, ip, sleep, env)
    }

    fn go_binary(bin: &Path, listen_ip: &str, ip: &'static str, sleep: Duration, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("-addr")
            .arg(format!("{}:{port}", host_of(listen_ip)))
            .arg("-sleep")
            .arg(format!("{}ms", sleep.as_millis()));
        Self::spawn(ServerKind::Go, ip, port, cmd, env, TempDir::new("go"))
    }

    /// The stdlib Python server on `ip`.
    pub fn python(ip: &'static str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg("-u").arg(repo_root().join("examples/python-server/server.py")).arg(ip).arg(port.to_string());
        Self::spawn(ServerKind::Python, ip, port, cmd, env, TempDir::new("py"))
    }

    /// nginx, single foreground process, listening on 127.0.0.1 and [::1]
    /// (`ip` only says which address the test will use).
    pub fn nginx(ip: &'static str, env: &[(&str, &str)]) -> Self {
        Self::nginx_with(ip, env, false)
    }

    /// nginx with a master process and `workers` forked worker processes,
    /// which serve the requests (still in the foreground).
    pub fn nginx_with_workers(ip: &'static str, env: &[(&str, &str)]) -> Self {
        Self::nginx_with(ip, env, true)
    }

    fn nginx_with(ip: &'static str, env: &[(&str, &str)], workers: bool) -> Self {
        let nginx = which("nginx").expect("nginx not found (install the Debian package nginx, or run `make deps`)");
        let port = free_port();
        let dir = TempDir::new("nginx");
        let conf = write_nginx_conf(dir.path(), port);
        if workers {
            let text = std::fs::read_to_string(&conf).expect("read nginx.conf");
            let text = text
                .replace("master_process off;", "master_process on;")
                .replace("worker_processes 1;", "worker_processes 2;");
            std::fs::write(&conf, text).expect("write nginx.conf");
        }
        let mut cmd = Command::new(nginx);
        cmd.arg("-p").arg(dir.path()).arg("-c").arg(&conf).arg("-e").arg(dir.path().join("error.log"));
        Self::spawn(ServerKind::Nginx, ip, port, cmd, env, dir)
    }

    fn spawn(
        kind: ServerKind,
        ip: &'static str,
        port: u16,
        mut cmd: Command,
        env: &[(&str, &str)],
        dir: TempDir,
    ) -> Self {
        let log = dir.path().join("server.log");
        let out = File::create(&log).expect("create server log");
        cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("dup log")).stderr(out);
        cmd.env_remove("OTEL_SERVICE_NAME");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {kind:?} server {cmd:?}: {e}"));
        let mut server = Server { kind, ip, port, child, dir };
        server.wait_listening();
        server
    }

    /// Waits until the port is in LISTEN state (read from /proc/net, so the
    /// check itself opens no connection that the receiver would see).
    fn wait_listening(&mut self) {
        let port = self.port;
        let ok = wait_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} server exited with {status} before listening:\n{}", self.kind, self.log());
            }
            is_listening(port).then_some(())
        });
        assert!(ok.is_some(), "{:?} server did not listen on port {port} within 20s:\n{}", self.kind, self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pids of the server's child processes (nginx workers), from /proc.
    pub fn children(&self) -> Vec<u32> {
        let pid = self.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// `http://<ip>:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", host_of(self.ip), self.port)
    }

    /// What the server printed so far (stdout and stderr), plus nginx's error log.
    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        if let Ok(e) = std::fs::read_to_string(self.dir.path().join("error.log")) {
            s.push_str(&e);
        }
        s
    }

    /// The executable name the receiver should report as service.name.
    pub fn expected_service_names(&self) -> Vec<String> {
        match self.kind {
            ServerKind::Go => {
                let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid())).expect("read /proc/PID/exe");
                vec![exe.file_name().expect("exe name").to_string_lossy().into_owned()]
            }
            ServerKind::Nginx => vec!["nginx".into()],
            ServerKind::Python => {
                // comm is the name it was exec'd as (python3), the executable
                // behind the symlink is python3.N: either is the executable name.
                let mut names = vec!["python3".to_string(), "python".to_string()];
                if let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", self.pid())) {
                    if let Some(n) = exe.file_name() {
                        names.push(n.to_string_lossy().into_owned());
                    }
                }
                names
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Size of nginx's `/static/big.bin`.
pub const NGINX_BIG_FILE_SIZE: usize = 256 * 1024;

/// True when some socket is listening on `port` (IPv4 or IPv6).
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().skip(1).any(|line| {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1).unwrap_or("");
                let state = cols.nth(1).unwrap_or("");
                state == "0A"
                    && local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()).is_some_and(|p| p == port)
            })
        })
    })
}

/// Writes examples/nginx/nginx.conf.template filled in for `dir` and `port`,
/// and the static files it serves: `/static/big.bin` (256 KiB).
pub fn write_nginx_conf(dir: &Path, port: u16) -> PathBuf {
    let www = dir.join("www/static");
    std::fs::create_dir_all(&www).expect("create www/static");
    let big: Vec<u8> = (0..NGINX_BIG_FILE_SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(www.join("big.bin"), big).expect("write big.bin");
    let template = include_str!("../../examples/nginx/nginx.conf.template");
    let conf = template.replace("@DIR@", &dir.display().to_string()).replace("@PORT@", &port.to_string());
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    path
}
