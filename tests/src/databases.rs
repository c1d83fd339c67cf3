//! Real database servers for the database suites: PostgreSQL and MariaDB
//! from Debian's packages (`make deps`), each started once per test process
//! in a temp dir on a free port (no systemd), and stopped when the process
//! exits. Measured on the 2-core dev machine: PostgreSQL `initdb` ~1.1 s +
//! start ~0.15 s; MariaDB `mariadb-install-db` ~4.3 s + start ~0.3 s.
//!
//! Each server has a user `app` (password `app-password`) owning a
//! database `shop` (MariaDB: also `other`), and a self-signed certificate
//! (PostgreSQL `ssl=on`, MariaDB `--ssl-cert`) for the TLS tests.
//!
//! The servers outlive any one test: they are spawned from a thread that
//! never ends, with PR_SET_PDEATHSIG, so they die with the test process
//! (the death signal follows the spawning thread, not the process).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use crate::util::{free_port, wait_until, which};

/// The user and password the tests connect as.
pub const DB_USER: &str = "app";
pub const DB_PASSWORD: &str = "app-password";
pub const DB_NAME: &str = "shop";

/// A running database server.
#[derive(Debug)]
pub struct DbServer {
    pub port: u16,
    pub pid: u32,
    /// Data directory, sockets, logs, certificate.
    pub dir: PathBuf,
    /// How long initialising and starting took.
    pub init: Duration,
    pub start: Duration,
}

/// PostgreSQL (the newest installed major version), started once.
pub fn postgres() -> &'static DbServer {
    static PG: OnceLock<DbServer> = OnceLock::new();
    PG.get_or_init(start_postgres)
}

/// MariaDB, started once.
pub fn mariadb() -> &'static DbServer {
    static MY: OnceLock<DbServer> = OnceLock::new();
    MY.get_or_init(start_mariadb)
}

pub(crate) fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Spawns `cmd` from a thread that lives as long as the process, so that
/// PR_SET_PDEATHSIG kills it when the test process ends.
pub(crate) fn spawn_for_process_lifetime(mut cmd: Command) -> u32 {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn();
        let _ = tx.send(child.as_ref().map(std::process::Child::id).map_err(|e| e.to_string()));
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("spawner thread").unwrap_or_else(|e| panic!("cannot start server: {e}"))
}

fn self_signed_cert(dir: &Path) {
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(dir.join("server.crt"))
        .stderr(Stdio::null()));
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL not installed (Debian package postgresql; run `make deps`)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("no /usr/lib/postgresql/*/bin/postgres")
}

pub(crate) fn user_ids(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
        .and_then(|(u, g)| Some((u?, g?)))
        .unwrap_or_else(|| panic!("no user {name} in /etc/passwd (postgres comes with the postgresql package)"))
}

fn start_postgres() -> DbServer {
    let bin = postgres_bin();
    // PostgreSQL refuses to run as root: its files and process belong to `postgres`.
    let (uid, gid) = user_ids("postgres");
    let dir = process_dir("postgres");
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    chown(&dir);
    let data = dir.join("data");
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, "postgres-password\n").expect("write pwfile");
    chown(&pwfile);
    let t0 = Instant::now();
    run(Command::new(bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .uid(uid)
        .gid(gid));
    self_signed_cert(&data);
    for f in ["server.key", "server.crt"] {
        chown(&data.join(f));
    }
    std::fs::set_permissions(data.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");
    let init = t0.elapsed();
    let port = free_port();
    let t1 = Instant::now();
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(&dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "ssl=on"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("postgres.log")).expect("log"));
    let pid = spawn_for_process_lifetime(cmd);
    let psql = which("psql").expect("psql not found (Debian package postgresql-client)");
    let ready = wait_until(Duration::from_secs(30), || {
        Command::new(&psql)
            .args(["-qtAX", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-c", "SELECT 1"])
            .env("PGPASSWORD", "postgres-password")
            .env("PGSSLMODE", "disable")
            .output()
            .ok()
            .filter(|o| o.status.success())
    });
    assert!(ready.is_some(), "PostgreSQL did not start; see {}", dir.join("postgres.log").display());
    let start = t1.elapsed();
    run(Command::new(&psql)
        .args(["-qX", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-c", &format!("CREATE USER {DB_USER} PASSWORD '{DB_PASSWORD}'")])
        .args(["-c", &format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}")])
        .env("PGPASSWORD", "postgres-password")
        .env("PGSSLMODE", "disable"));
    DbServer { port, pid, dir, init, start }
}

fn start_mariadb() -> DbServer {
    let install = which("mariadb-install-db").expect("mariadb-install-db not found (Debian package mariadb-server)");
    let server = which("mariadbd").expect("mariadbd not found (Debian package mariadb-server)");
    let client = which("mariadb").or_else(|| which("mysql")).expect("mariadb client not found (mariadb-client)");
    let dir = process_dir("mariadb");
    let data = dir.join("data");
    let user = if unsafe_geteuid_is_root() { "root" } else { "" };
    let t0 = Instant::now();
    let mut cmd = Command::new(install);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if !user.is_empty() {
        cmd.arg(format!("--user={user}"));
    }
    run(&mut cmd);
    self_signed_cert(&dir);
    let init = t0.elapsed();
    let port = free_port();
    let sock = dir.join("sock");
    let t1 = Instant::now();
    let mut cmd = Command::new(server);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--ssl-cert={}", dir.join("server.crt").display()))
        .arg(format!("--ssl-key={}", dir.join("server.key").display()))
        .args(["--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !user.is_empty() {
        cmd.arg(format!("--user={user}"));
    }
    let pid = spawn_for_process_lifetime(cmd);
    let sock_arg = format!("--socket={}", sock.display());
    let ready = wait_until(Duration::from_secs(30), || {
        Command::new(&client).args(["-uroot", &sock_arg, "-e", "SELECT 1"]).output().ok().filter(|o| o.status.success())
    });
    assert!(ready.is_some(), "MariaDB did not start; see {}", dir.join("error.log").display());
    let start = t1.elapsed();
    let setup = format!(
        "CREATE DATABASE {DB_NAME}; CREATE DATABASE other; \
         CREATE USER {DB_USER}@'%' IDENTIFIED BY '{DB_PASSWORD}'; \
         GRANT ALL ON {DB_NAME}.* TO {DB_USER}@'%'; GRANT ALL ON other.* TO {DB_USER}@'%';"
    );
    run(Command::new(&client).args(["-uroot", &sock_arg, "-e", &setup]));
    DbServer { port, pid, dir, init, start }
}

/// A directory for this process's server of `kind`; those of test
/// processes that are gone (the servers died with them) are removed first.
pub(crate) fn process_dir(kind: &str) -> PathBuf {
    let tmp = std::env::temp_dir();
    let prefix = format!("otel-ebpf-db-{kind}-");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = tmp.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create server dir");
    dir
}

fn unsafe_geteuid_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A database client run to its end.
#[derive(Debug)]
pub struct DbClientRun {
    pub pid: u32,
    /// Exit code (clients report failed statements through it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end with `stdin` as its input, and its pid. Failing
/// statements are part of the tests: the exit code is returned, not checked.
pub fn run_db_client(mut cmd: Command, stdin: &[u8], what: &str) -> DbClientRun {
    use std::io::Write;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("OTEL_SERVICE_NAME");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin).unwrap_or_else(|e| panic!("write to {what}: {e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait for {what}: {e}"));
    DbClientRun {
        pid,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `psql` as the test user on the PostgreSQL server, reading `script`
/// (each statement its own simple query), over TLS when `sslmode` says so.
pub fn psql(sslmode: &str, script: &str) -> DbClientRun {
    let pg = postgres();
    let psql = which("psql").expect("psql not found (Debian package postgresql-client)");
    let url = format!("postgresql://{DB_USER}@127.0.0.1:{}/{DB_NAME}?sslmode={sslmode}", pg.port);
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=0", &url]).env("PGPASSWORD", DB_PASSWORD);
    run_db_client(cmd, script.as_bytes(), "psql")
}

/// The `mysql` command-line client as the test user on MariaDB, reading
/// `script` (`--force`: on past failing statements).
pub fn mysql_cli(script: &str) -> DbClientRun {
    let my = mariadb();
    let client = which("mysql").or_else(|| which("mariadb")).expect("mysql client not found (mariadb-client)");
    let mut cmd = Command::new(client);
    cmd.args(["--protocol=tcp", "-h127.0.0.1", &format!("-P{}", my.port), &format!("-u{DB_USER}")])
        .arg(format!("-p{DB_PASSWORD}"))
        .args(["--skip-ssl", "--force", DB_NAME]);
    run_db_client(cmd, script.as_bytes(), "mysql")
}

/// A Python client: `script` run by python3 with the server's port, user,
/// password and database as sys.argv[1:5] (psycopg, PyMySQL and
/// mysql-connector-python come from `make deps`).
pub fn python_db_client(port: u16, script: &str) -> DbClientRun {
    let mut cmd = Command::new(crate::servers::python());
    cmd.arg("-c").arg(script).args([&port.to_string(), DB_USER, DB_PASSWORD, DB_NAME]);
    run_db_client(cmd, b"", "python3 database client")
}

/// The pgx client of `tests/go/pgx`, built once per test process (pgx v5
/// from the Go module proxy).
pub fn pgx_client_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = crate::util::target_dir().join("test-bins");
        std::fs::create_dir_all(&dir).expect("create target/test-bins");
        let tmp = dir.join(format!(".pgx-client.{}", std::process::id()));
        let go = which("go").unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"));
        run(Command::new(go)
            .args(["build", "-trimpath", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(crate::util::repo_root().join("tests/go/pgx"))
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod"));
        // Renamed into place: concurrent test processes never see a half-written binary.
        let bin = dir.join("pgx-client");
        std::fs::rename(&tmp, &bin).expect("rename pgx-client");
        bin
    })
}
