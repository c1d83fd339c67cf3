//! HTTP clients, each a child process (the receiver never traces its host
//! process): curl, and a keep-alive Python `http.client` script.

use std::process::{Command, Stdio};

use crate::servers::python;
use crate::util::which;

/// What one curl process did.
#[derive(Debug, Clone)]
pub struct CurlResult {
    pub pid: u32,
    /// Per URL: the response status (0 when none came).
    pub codes: Vec<u16>,
    /// Per URL: new connections opened (1, or 0 when one was reused).
    pub connects: Vec<u32>,
    /// Per URL: curl's local (ephemeral) port.
    pub local_ports: Vec<u16>,
}

/// One curl process per URL list; panics when curl fails.
fn run_curl(urls: &[String], extra: &[&str]) -> CurlResult {
    let curl = which("curl").expect("curl not found (install the Debian package curl)");
    run_curl_bin(&curl, urls, extra)
}

fn run_curl_bin(curl: &std::path::Path, urls: &[String], extra: &[&str]) -> CurlResult {
    let mut cmd = Command::new(curl);
    cmd.args(["--silent", "--show-error", "--globoff", "--http1.1", "--noproxy", "*", "--max-time", "10"])
        .args(["--write-out", "%{http_code} %{num_connects} %{local_port}\\n"])
        .args(extra);
    for url in urls {
        cmd.arg("--output").arg("/dev/null").arg(url);
    }
    let (pid, stdout) = run_curl_command(cmd, &format!("{urls:?}"));
    let mut res = CurlResult { pid, codes: vec![], connects: vec![], local_ports: vec![] };
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "unexpected curl --write-out line {line:?}");
        res.codes.push(f[0].parse().expect("http_code"));
        res.connects.push(f[1].parse().expect("num_connects"));
        res.local_ports.push(f[2].parse().expect("local_port"));
    }
    assert_eq!(res.codes.len(), urls.len(), "curl printed one line per URL: {stdout}");
    res
}

/// Runs a prepared curl command as its own process, without proxies from the
/// environment or an inherited `OTEL_SERVICE_NAME`; panics unless it
/// succeeds. Returns its pid and what it printed (`--write-out`).
pub fn run_curl_command(mut cmd: Command, what: &str) -> (u32, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "OTEL_SERVICE_NAME"] {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().expect("spawn curl");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {what} failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, stdout)
}

/// GETs `urls` from one curl process with extra curl arguments (e.g. `--parallel`).
pub fn curl_with(urls: &[String], extra: &[&str]) -> CurlResult {
    run_curl(urls, extra)
}

/// One GET from a copy of curl named `name` (in target/test-bins): a
/// short-lived process whose name is longer than the kernel's 15-byte comm.
pub fn curl_named(name: &str, url: &str) -> CurlResult {
    let curl = which("curl").expect("curl not found (install the Debian package curl)");
    let dir = crate::util::target_dir().join("test-bins");
    std::fs::create_dir_all(&dir).expect("create target/test-bins");
    let copy = dir.join(name);
    if !copy.exists() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::copy(&curl, &tmp).expect("copy curl");
        std::fs::rename(&tmp, &copy).expect("rename curl copy");
    }
    run_curl_bin(&copy, &[url.to_string()], &[])
}

/// One GET in its own curl process (so its own connection).
pub fn curl(url: &str) -> CurlResult {
    run_curl(&[url.to_string()], &[])
}

/// Several GETs from one curl process, which reuses one keep-alive connection.
pub fn curl_keepalive(urls: &[String]) -> CurlResult {
    run_curl(urls, &[])
}

/// One request of [`python_keepalive`].
#[derive(Debug, Clone)]
pub struct PyRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
    /// Send the body with Transfer-Encoding: chunked (in three chunks).
    pub chunked: bool,
}

impl PyRequest {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self { method, path: path.to_string(), body: None, chunked: false }
    }

    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

/// What the Python client did.
#[derive(Debug, Clone)]
pub struct PyResult {
    pub pid: u32,
    pub local_port: u16,
    pub codes: Vec<u16>,
}

const PY_CLIENT: &str = r#"
import http.client, json, sys
host, port, reqs = sys.argv[1], int(sys.argv[2]), json.loads(sys.stdin.read())
conn = http.client.HTTPConnection(host, port, timeout=10)
codes = []
for r in reqs:
    body = bytes(r["body"]) if r["body"] is not None else None
    if body is not None and r["chunked"]:
        third = max(1, len(body) // 3)
        body = iter([body[:third], body[third:2 * third], body[2 * third:]])
    conn.request(r["method"], r["path"], body=body)
    resp = conn.getresponse()
    resp.read()
    codes.append(resp.status)
    local_port = conn.sock.getsockname()[1]
print(json.dumps({"local_port": local_port, "codes": codes}))
conn.close()
"#;

/// Sends every request on one HTTP/1.1 connection from a Python process.
pub fn python_keepalive(host: &str, port: u16, reqs: &[PyRequest]) -> PyResult {
    use std::io::Write as _;
    let input = serde_json::Value::Array(
        reqs.iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.method,
                    "path": r.path,
                    "body": r.body.as_ref().map(|b| b.iter().map(|x| u64::from(*x)).collect::<Vec<_>>()),
                    "chunked": r.chunked,
                })
            })
            .collect(),
    );
    let mut child = Command::new(python())
        .arg("-c")
        .arg(PY_CLIENT)
        .arg(host)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python client");
    let pid = child.id();
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write requests");
    let out = child.wait_with_output().expect("wait for python client");
    assert!(out.status.success(), "python client failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python client output is JSON");
    PyResult {
        pid,
        local_port: v["local_port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("local_port"),
        codes: v["codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok()).expect("code"))
            .collect(),
    }
}

const PY_INTERACTIVE: &str = r#"
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for line in sys.stdin:
    method, path = line.split()
    conn.request(method, path)
    resp = conn.getresponse()
    resp.read()
    print(resp.status, conn.sock.getsockname()[1], flush=True)
conn.close()
"#;

/// A Python process holding one keep-alive connection open, sending a
/// request whenever asked: for connections that outlive a receiver start.
#[derive(Debug)]
pub struct PyConn {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PyConn {
    /// Starts the client; the connection opens with the first request.
    pub fn open(host: &str, port: u16) -> Self {
        let mut child = Command::new(python())
            .arg("-c")
            .arg(PY_INTERACTIVE)
            .arg(host)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python client");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one request on the connection: (status, local port).
    pub fn request(&mut self, method: &str, path: &str) -> (u16, u16) {
        use std::io::{BufRead as _, Write as _};
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{method} {path}").expect("write to python client");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from python client");
        let mut f = line.split_whitespace().map(|x| x.parse::<u16>().ok());
        match (f.next().flatten(), f.next().flatten()) {
            (Some(code), Some(port)) => (code, port),
            _ => panic!("python client answered {line:?}"),
        }
    }
}

impl Drop for PyConn {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
