//! GenAI (LLM API) helpers: the local mock of four API families
//! (`tests/genai/mock_llm.py`) and its ledger, the Python client
//! (`tests/genai/llm_client.py`), curl, accessors for the `gen_ai.*`
//! attributes, the check of one span against the ledger, and metric points
//! flattened from the receiver's metrics batches.
//!
//! The mock appends one ledger line per request once its response is sent:
//! what it answered (models, response id, token counts, finish reasons, error
//! type, stream or not, timings). That is the ground truth the spans and
//! metrics are compared with.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{json, Value as Json};

use crate::clients::run_curl_command;
pub use crate::metric_points::{describe_points, metric_points, MetricPoint};
use crate::receiver::Receiver;
use crate::servers::python;
use crate::span::SpanRec;
use crate::util::{repo_root, stop_child, wait_until, which, TempDir};

/// The mock's pause before the head of a stream (its `--first-delay`
/// default): every streamed call's time to first chunk is at least this.
pub const FIRST_DELAY: Duration = Duration::from_millis(60);

/// `tests/genai/<name>`.
pub fn script(name: &str) -> PathBuf {
    repo_root().join("tests/genai").join(name)
}

// ---------------------------------------------------------------------------
// The mock
// ---------------------------------------------------------------------------

/// `tests/genai/mock_llm.py` on 127.0.0.1, HTTPS or plain HTTP; killed on drop.
#[derive(Debug)]
pub struct MockLlm {
    pub port: u16,
    pub tls: bool,
    child: Child,
    dir: TempDir,
}

impl MockLlm {
    /// Starts the mock on a port of its choosing (`--port 0`) and waits for
    /// it to print that port, which it does once listening.
    pub fn start(tls: bool) -> Self {
        let dir = TempDir::new(if tls { "mockllm-tls" } else { "mockllm" });
        let log = File::create(dir.path().join("mock.log")).expect("create the mock's log");
        let mut cmd = Command::new(python());
        cmd.arg("-u")
            .arg(script("mock_llm.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--verbose", "--ledger"])
            .arg(dir.path().join("ledger.jsonl"));
        if tls {
            cmd.arg("--tls");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        cmd.env_remove("OTEL_SERVICE_NAME");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep the pipe open (and drained) for the mock's lifetime.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let mut mock = Self { port: 0, tls, child, dir };
        match line.trim().parse::<u16>() {
            Ok(port) if port != 0 => mock.port = port,
            _ => panic!("the LLM mock did not print its port (got {line:?}):\n{}", mock.log()),
        }
        mock
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `<scheme>://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.port)
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.jsonl")
    }

    /// Every ledger entry so far, in the order the responses completed.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        std::fs::read_to_string(self.ledger_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| LedgerEntry::parse(l).unwrap_or_else(|e| panic!("ledger line {l:?}: {e}")))
            .collect()
    }

    /// Waits until the ledger holds `n` entries (the mock writes one once the
    /// response is sent, so just after the client has read it).
    pub fn wait_ledger(&self, n: usize, timeout: Duration) -> Vec<LedgerEntry> {
        match wait_until(timeout, || Some(self.ledger()).filter(|l| l.len() >= n)) {
            Some(l) => l,
            None => panic!(
                "the mock's ledger has {} entries, want {n}:\n{}\nmock log:\n{}",
                self.ledger().len(),
                describe_ledger(&self.ledger()),
                self.log()
            ),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mock.log")).unwrap_or_default()
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// One request the mock answered.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub seq: u64,
    /// The client's port: the SERVER span's `network.peer.port`.
    pub client_port: u16,
    pub path: String,
    /// `gen_ai.provider.name` (None: a path the mock does not serve).
    pub provider: Option<String>,
    pub operation: Option<String>,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    /// The semconv total, cached tokens included (None: not reported, e.g. errors).
    pub input_tokens: Option<i64>,
    /// None: not reported (embeddings, errors, streams without usage).
    pub output_tokens: Option<i64>,
    pub cached_tokens: i64,
    pub stream: bool,
    pub status: i64,
    pub finish_reasons: Vec<String>,
    /// The error body's type (OpenAI `error.type`, Anthropic `error.type`, Gemini `error.status`).
    pub error_type: Option<String>,
    /// OpenAI's `error.code`.
    pub error_code: Option<String>,
    pub gzip: bool,
    pub chunked: bool,
    /// Response body bytes on the wire (compressed when gzip).
    pub body_bytes: u64,
    /// Stream events (or chunks) written.
    pub events: u64,
    /// From the request read to the first event written (streams).
    pub first_chunk_s: Option<f64>,
    pub duration_s: f64,
    /// A unique word at the start of the completion text.
    pub completion_marker: Option<String>,
    /// Set when the client went away mid-response.
    pub aborted: Option<String>,
    pub raw: Json,
}

fn opt_str(v: &Json, k: &str) -> Option<String> {
    v.get(k).and_then(Json::as_str).map(str::to_string)
}

impl LedgerEntry {
    fn parse(line: &str) -> Result<Self, String> {
        let v: Json = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let int = |k: &str| v.get(k).and_then(Json::as_i64);
        Ok(Self {
            seq: v["seq"].as_u64().ok_or("seq")?,
            client_port: v["client_port"].as_u64().ok_or("client_port")? as u16,
            path: opt_str(&v, "path").ok_or("path")?,
            provider: opt_str(&v, "provider"),
            operation: opt_str(&v, "operation"),
            request_model: opt_str(&v, "request_model"),
            response_model: opt_str(&v, "response_model"),
            response_id: opt_str(&v, "response_id"),
            input_tokens: int("input_tokens"),
            output_tokens: int("output_tokens"),
            cached_tokens: int("cached_tokens").unwrap_or(0),
            stream: v["stream"].as_bool().unwrap_or(false),
            status: int("status").ok_or("status")?,
            finish_reasons: v["finish_reasons"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            error_type: opt_str(&v, "error_type"),
            error_code: opt_str(&v, "error_code"),
            gzip: v["gzip"].as_bool().unwrap_or(false),
            chunked: v["chunked"].as_bool().unwrap_or(false),
            body_bytes: v["body_bytes"].as_u64().unwrap_or(0),
            events: v["events"].as_u64().unwrap_or(0),
            first_chunk_s: v.get("first_chunk_s").and_then(Json::as_f64),
            duration_s: v["duration_s"].as_f64().unwrap_or(0.0),
            completion_marker: opt_str(&v, "completion_marker"),
            aborted: opt_str(&v, "aborted"),
            raw: v,
        })
    }

    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    pub fn provider(&self) -> &str {
        self.provider.as_deref().unwrap_or("-")
    }

    pub fn operation(&self) -> &str {
        self.operation.as_deref().unwrap_or("-")
    }

    pub fn request_model(&self) -> &str {
        self.request_model.as_deref().unwrap_or("")
    }

    /// `{gen_ai.operation.name} {gen_ai.request.model}`, or the operation alone.
    pub fn span_name(&self) -> String {
        match self.request_model.as_deref() {
            Some(m) if !m.is_empty() => format!("{} {m}", self.operation()),
            _ => self.operation().to_string(),
        }
    }

    /// The `error.type` values the contract allows for this call: the error
    /// body's type (for OpenAI, whose body has both, its `type` or its
    /// `code`), else the status code.
    pub fn allowed_error_types(&self) -> Vec<String> {
        if !self.is_error() {
            return vec![];
        }
        let mut v: Vec<String> = [&self.error_type, &self.error_code].into_iter().flatten().cloned().collect();
        if self.error_type.is_none() {
            v.push(self.status.to_string());
        }
        v.dedup();
        v
    }

    /// True when `span` reports this call: same provider, operation and request model.
    pub fn matches(&self, span: &SpanRec) -> bool {
        span.str_attr("gen_ai.provider.name") == self.provider.as_deref()
            && span.str_attr("gen_ai.operation.name") == self.operation.as_deref()
            && span.str_attr("gen_ai.request.model") == self.request_model.as_deref()
    }

    pub fn describe(&self) -> String {
        format!(
            "#{} {} {} {} [{}] model={}→{} id={} tokens in={:?} out={:?} cached={} stream={} finish={:?} \
             error={:?}/{:?} gzip={} chunked={} events={} bytes={} first={:?} dur={:.3}s port={}{}",
            self.seq,
            self.status,
            self.provider(),
            self.operation(),
            self.path,
            self.request_model(),
            self.response_model.as_deref().unwrap_or("-"),
            self.response_id.as_deref().unwrap_or("-"),
            self.input_tokens,
            self.output_tokens,
            self.cached_tokens,
            self.stream,
            self.finish_reasons,
            self.error_type,
            self.error_code,
            self.gzip,
            self.chunked,
            self.events,
            self.body_bytes,
            self.first_chunk_s,
            self.duration_s,
            self.client_port,
            self.aborted.as_deref().map(|a| format!(" ABORTED {a}")).unwrap_or_default(),
        )
    }
}

/// One line per entry, for failure messages.
pub fn describe_ledger(ledger: &[LedgerEntry]) -> String {
    ledger.iter().map(|e| format!("  {}\n", e.describe())).collect()
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// One call of [`run_llm_client`].
#[derive(Debug, Clone)]
pub struct LlmCall {
    pub label: String,
    /// Path and query, e.g. `/v1beta/models/gemini-2.0-flash:generateContent?key=...`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body; `@MARKER@` anywhere in it is replaced by the client's marker.
    pub body: Json,
}

impl LlmCall {
    pub fn new(label: &str, path: &str, body: Json) -> Self {
        Self { label: label.to_string(), path: path.to_string(), headers: vec![], body }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn to_json(&self) -> Json {
        let headers: serde_json::Map<String, Json> =
            self.headers.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
        json!({"label": self.label, "path": self.path, "method": "POST", "headers": headers, "body": self.body})
    }
}

/// What the Python client got for one call.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub label: String,
    /// 0 when the call failed (see `error`).
    pub status: u16,
    pub local_port: u16,
    pub content_type: String,
    pub content_encoding: String,
    pub transfer_encoding: String,
    /// Body bytes after gunzip.
    pub body_bytes: u64,
    /// Reads that returned data: more than one for a stream that arrived in pieces.
    pub reads: u64,
    pub first_chunk_s: Option<f64>,
    pub total_s: f64,
    /// The parsed body: JSON, or the list of SSE events / NDJSON objects.
    pub response: Json,
    pub error: Option<String>,
}

/// One run of the Python client.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub pid: u32,
    pub results: Vec<CallResult>,
}

impl ClientRun {
    pub fn result(&self, label: &str) -> &CallResult {
        self.results.iter().find(|r| r.label == label).unwrap_or_else(|| panic!("no result labelled {label}"))
    }
}

/// Runs `tests/genai/llm_client.py`: one process, one keep-alive connection
/// to 127.0.0.1:`port` (TLS without verification when `tls`), the calls in
/// order, `@MARKER@` replaced by `marker`. Panics when a call failed.
pub fn run_llm_client(port: u16, tls: bool, marker: &str, calls: &[LlmCall]) -> ClientRun {
    let dir = TempDir::new("llmclient");
    let calls_file = dir.path().join("calls.json");
    let list = Json::Array(calls.iter().map(LlmCall::to_json).collect());
    std::fs::write(&calls_file, serde_json::to_vec_pretty(&list).expect("calls JSON")).expect("write calls.json");
    let mut cmd = Command::new(python());
    cmd.arg(script("llm_client.py"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--marker", marker, "--calls"])
        .arg(&calls_file);
    if tls {
        cmd.arg("--tls");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("OTEL_SERVICE_NAME");
    let child = cmd.spawn().expect("spawn the LLM client");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the LLM client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut results = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("client line {line:?}: {e}\n{stderr}"));
        let s = |k: &str| opt_str(&v, k).unwrap_or_default();
        results.push(CallResult {
            label: s("label"),
            status: v["status"].as_u64().unwrap_or(0) as u16,
            local_port: v["local_port"].as_u64().unwrap_or(0) as u16,
            content_type: s("content_type"),
            content_encoding: s("content_encoding"),
            transfer_encoding: s("transfer_encoding"),
            body_bytes: v["body_bytes"].as_u64().unwrap_or(0),
            reads: v["reads"].as_u64().unwrap_or(0),
            first_chunk_s: v.get("first_chunk_s").and_then(Json::as_f64),
            total_s: v["total_s"].as_f64().unwrap_or(0.0),
            response: v.get("response").cloned().unwrap_or(Json::Null),
            error: opt_str(&v, "error"),
        });
    }
    let failed: Vec<String> =
        results.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.label))).collect();
    assert!(
        out.status.success() && failed.is_empty() && results.len() == calls.len(),
        "the LLM client failed ({}; {} of {} calls reported): {failed:?}\n{stderr}",
        out.status,
        results.len(),
        calls.len()
    );
    ClientRun { pid, results }
}

/// What one curl process got.
#[derive(Debug, Clone)]
pub struct CurlLlm {
    pub pid: u32,
    pub status: u16,
    pub local_port: u16,
    /// The body as curl wrote it (decompressed with `--compressed`).
    pub body: String,
    /// `time_starttransfer`: first response byte, seconds.
    pub first_byte_s: f64,
    pub total_s: f64,
}

/// One POST from its own curl process: `curl -sS -k --compressed [-N]
/// -H ... --data-binary @body`. The body goes through a file so a secret in it
/// never sits on a command line.
pub fn curl_llm(url: &str, headers: &[(&str, &str)], body: &Json, stream: bool) -> CurlLlm {
    let curl = which("curl").expect("curl not found (install the Debian package curl)");
    let dir = TempDir::new("curlllm");
    let body_file = dir.path().join("body.json");
    let out_file = dir.path().join("out");
    std::fs::write(&body_file, serde_json::to_vec(body).expect("body JSON")).expect("write body");
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "-k", "--compressed", "--http1.1", "--noproxy", "*", "--max-time", "30"]);
    if stream {
        cmd.arg("-N");
    }
    cmd.args(["-H", "Content-Type: application/json"]);
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    cmd.arg("--data-binary").arg(format!("@{}", body_file.display()));
    cmd.arg("-o").arg(&out_file);
    cmd.args(["-w", "%{http_code} %{local_port} %{time_starttransfer} %{time_total}"]);
    cmd.arg(url);
    let (pid, stdout) = run_curl_command(cmd, url);
    let f: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(f.len(), 4, "unexpected curl --write-out {stdout:?}");
    let mut body = String::new();
    let _ = File::open(&out_file).and_then(|mut f| f.read_to_string(&mut body));
    CurlLlm {
        pid,
        status: f[0].parse().expect("http_code"),
        local_port: f[1].parse().expect("local_port"),
        first_byte_s: f[2].parse().unwrap_or(0.0),
        total_s: f[3].parse().unwrap_or(0.0),
        body,
    }
}

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/// A double attribute (an int is accepted too).
pub fn attr_f64(span: &SpanRec, key: &str) -> Option<f64> {
    match span.attr(key)?.value.as_ref()? {
        Value::DoubleValue(d) => Some(*d),
        Value::IntValue(i) => Some(*i as f64),
        _ => None,
    }
}

pub fn attr_bool(span: &SpanRec, key: &str) -> Option<bool> {
    match span.attr(key)?.value.as_ref()? {
        Value::BoolValue(b) => Some(*b),
        _ => None,
    }
}

/// A string-array attribute (None when absent or of another type).
pub fn attr_str_array(span: &SpanRec, key: &str) -> Option<Vec<String>> {
    match span.attr(key)?.value.as_ref()? {
        Value::ArrayValue(a) => a
            .values
            .iter()
            .map(|v| match v.value.as_ref() {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// True for spans of LLM calls.
pub fn is_genai(span: &SpanRec) -> bool {
    span.attr("gen_ai.operation.name").is_some()
}

/// Checks one span (CLIENT of the caller or SERVER of the mock) against the
/// ledger entry of its call, per the GenAI contract: name, operation,
/// provider, models, id, token counts, finish reasons, stream flag, time to
/// first chunk, error type, and the HTTP attributes of the exchange.
pub fn assert_genai_span(span: &SpanRec, e: &LedgerEntry, port: u16, scheme: &str) {
    span.assert_well_formed();
    let d = format!("{}\n  ledger: {}", span.describe(), e.describe());
    assert_eq!(span.span.name, e.span_name(), "span name is `{{operation}} {{request model}}`: {d}");
    assert_eq!(span.str_attr("gen_ai.operation.name"), e.operation.as_deref(), "gen_ai.operation.name: {d}");
    assert_eq!(span.str_attr("gen_ai.provider.name"), e.provider.as_deref(), "gen_ai.provider.name: {d}");
    assert_eq!(span.str_attr("gen_ai.request.model"), e.request_model.as_deref(), "gen_ai.request.model: {d}");
    // Semconv: set when streaming; unset means non-streaming.
    let stream = attr_bool(span, "gen_ai.request.stream");
    if e.stream {
        assert_eq!(stream, Some(true), "gen_ai.request.stream true (bool) on a streamed call: {d}");
    } else {
        assert!(stream != Some(true), "gen_ai.request.stream absent or false on a non-stream call: {d}");
        assert!(
            span.attr("gen_ai.request.stream").is_none() || stream.is_some(),
            "gen_ai.request.stream is a bool: {d}"
        );
    }
    // The HTTP side of the same exchange.
    assert_eq!(span.str_attr("http.request.method"), Some("POST"), "http.request.method: {d}");
    assert_eq!(span.http_status(), Some(e.status), "http.response.status_code: {d}");
    assert_eq!(span.str_attr("server.address"), Some("127.0.0.1"), "server.address: {d}");
    assert_eq!(span.server_port(), Some(port), "server.port: {d}");
    let scheme_ok = span.str_attr("url.scheme") == Some(scheme)
        || (span.is_client()
            && span.str_attr("url.scheme").is_none()
            && span.str_attr("url.full").is_some_and(|u| u.starts_with(&format!("{scheme}://"))));
    assert!(scheme_ok, "url.scheme (or the client's url.full) says {scheme}: {d}");
    if let Some(full) = span.str_attr("url.full") {
        assert!(!full.contains('?'), "url.full never carries the query (Gemini's ?key=): {d}");
    }
    if span.is_server() {
        assert_eq!(span.peer_port(), Some(e.client_port), "network.peer.port is the caller's port: {d}");
    }
    assert!(span.duration() > Duration::ZERO, "a call takes time: {d}");

    if e.is_error() {
        let allowed = e.allowed_error_types();
        let got = span.str_attr("error.type");
        if span.is_client() {
            assert!(got.is_some_and(|g| allowed.iter().any(|a| a == g)), "error.type one of {allowed:?}: {d}");
            assert_eq!(span.status(), StatusCode::Error, "span status Error on a failed call: {d}");
        } else {
            // The server answered as designed: its span may or may not call it an error.
            assert!(got.is_none_or(|g| allowed.iter().any(|a| a == g)), "error.type, if any, one of {allowed:?}: {d}");
        }
        for k in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.id"] {
            assert!(span.attr(k).is_none(), "{k} on a call that got an error body: {d}");
        }
        return;
    }
    assert_eq!(span.str_attr("error.type"), None, "no error.type on a successful call: {d}");
    assert_eq!(span.str_attr("gen_ai.response.model"), e.response_model.as_deref(), "gen_ai.response.model: {d}");
    assert_eq!(span.str_attr("gen_ai.response.id"), e.response_id.as_deref(), "gen_ai.response.id: {d}");
    assert_eq!(span.int_attr("gen_ai.usage.input_tokens"), e.input_tokens, "gen_ai.usage.input_tokens (int): {d}");
    match e.output_tokens {
        Some(n) => assert_eq!(span.int_attr("gen_ai.usage.output_tokens"), Some(n), "gen_ai.usage.output_tokens: {d}"),
        // Embeddings: nothing generated; absent or 0.
        None => {
            let absent = span.attr("gen_ai.usage.output_tokens").is_none();
            assert!(
                absent || span.int_attr("gen_ai.usage.output_tokens") == Some(0),
                "gen_ai.usage.output_tokens absent or 0 when the provider reports none: {d}"
            );
        }
    }
    let cached = span.int_attr("gen_ai.usage.cache_read.input_tokens");
    if e.cached_tokens > 0 {
        assert_eq!(cached, Some(e.cached_tokens), "gen_ai.usage.cache_read.input_tokens: {d}");
        if let Some(input) = e.input_tokens {
            assert!(input >= e.cached_tokens, "the ledger's input includes cached tokens: {d}");
        }
    } else {
        assert!(matches!(cached, None | Some(0)), "gen_ai.usage.cache_read.input_tokens absent or 0: {d}");
    }
    let finish = attr_str_array(span, "gen_ai.response.finish_reasons");
    if e.finish_reasons.is_empty() {
        assert!(finish.as_ref().is_none_or(Vec::is_empty), "no finish reasons for this operation: {d}");
    } else {
        assert_eq!(finish.as_ref(), Some(&e.finish_reasons), "gen_ai.response.finish_reasons (string[]): {d}");
    }
    let ttft = attr_f64(span, "gen_ai.response.time_to_first_chunk");
    // The conventions define it as the caller's measure: required on CLIENT
    // spans of streams; on the SERVER span optional, and then just as right.
    if e.stream && (span.is_client() || ttft.is_some()) {
        let t = ttft.unwrap_or_else(|| panic!("gen_ai.response.time_to_first_chunk (double) on a stream: {d}"));
        let is_double = matches!(
            span.attr("gen_ai.response.time_to_first_chunk").and_then(|v| v.value.as_ref()),
            Some(Value::DoubleValue(_))
        );
        assert!(is_double, "gen_ai.response.time_to_first_chunk is a double: {d}");
        let dur = span.duration().as_secs_f64();
        assert!(t > 0.0 && t < dur, "0 < time to first chunk {t} < duration {dur}: {d}");
        let floor = FIRST_DELAY.as_secs_f64() * 0.8;
        assert!(t >= floor, "time to first chunk {t} s >= the mock's first delay ({floor} s): {d}");
        // The last event comes (events - 1) event delays after the first.
        assert!(
            dur - t >= 0.010 * (e.events.saturating_sub(2)) as f64,
            "the stream's events came after the first chunk: {d}"
        );
    } else {
        assert_eq!(ttft, None, "no time_to_first_chunk on a non-stream call: {d}");
    }
}

/// Every call of `ledger` has exactly one CLIENT span from `client_pid` and
/// one SERVER span from the mock, each right per [`assert_genai_span`];
/// the caller's and the mock's spans on this port are nothing else (one span
/// per call, the HTTP one carrying the `gen_ai.*` attributes).
pub fn assert_calls(spans: &[SpanRec], ledger: &[LedgerEntry], client_pids: &[u32], mock: &MockLlm) {
    let mine =
        |s: &&SpanRec, pids: &[u32]| s.pid().is_some_and(|p| pids.contains(&p)) && s.server_port() == Some(mock.port);
    let clients: Vec<&SpanRec> = spans.iter().filter(|s| mine(s, client_pids)).collect();
    let servers: Vec<&SpanRec> = spans.iter().filter(|s| mine(s, &[mock.pid()])).collect();
    let dump = || {
        let mut out = format!("ledger:\n{}spans of the callers and the mock:\n", describe_ledger(ledger));
        for s in clients.iter().chain(&servers) {
            out.push_str(&format!("  {}\n", s.describe()));
        }
        out
    };
    for e in ledger {
        assert!(e.provider.is_some(), "the mock answered a path it does not serve: {}\n{}", e.describe(), dump());
        assert!(e.aborted.is_none(), "a call was cut short: {}", e.describe());
        let c: Vec<&&SpanRec> = clients.iter().filter(|s| s.is_client() && e.matches(s)).collect();
        assert_eq!(c.len(), 1, "one CLIENT span for {}\n{}", e.describe(), dump());
        assert_genai_span(c[0], e, mock.port, mock.scheme());
        let s: Vec<&&SpanRec> = servers.iter().filter(|s| s.is_server() && e.matches(s)).collect();
        assert_eq!(s.len(), 1, "one SERVER span for {}\n{}", e.describe(), dump());
        assert_genai_span(s[0], e, mock.port, mock.scheme());
        assert!(
            s[0].start() <= c[0].end() && c[0].start() <= s[0].end(),
            "the CLIENT and SERVER spans of a call overlap in time: {}\n{}",
            e.describe(),
            dump()
        );
    }
    assert_eq!(clients.len(), ledger.len(), "one span per call from the callers, no other:\n{}", dump());
    assert_eq!(servers.len(), ledger.len(), "one span per call from the mock, no other:\n{}", dump());
}

/// Waits until every call of `ledger` has its CLIENT span (from one of
/// `client_pids`) and its SERVER span (from the mock).
pub fn wait_for_calls(rx: &Receiver, ledger: &[LedgerEntry], client_pids: &[u32], mock: &MockLlm, timeout: Duration) {
    let mock_pid = mock.pid();
    for e in ledger {
        let what = format!("the CLIENT span of {}", e.describe());
        rx.wait_for(1, timeout, &what, |s| {
            s.is_client() && s.pid().is_some_and(|p| client_pids.contains(&p)) && e.matches(s)
        });
        let what = format!("the SERVER span of {}", e.describe());
        rx.wait_for(1, timeout, &what, |s| s.is_server() && s.pid() == Some(mock_pid) && e.matches(s));
    }
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// The GenAI metrics of a run with delta temporality, checked against the
/// ledger (every batch's points add up to the run's totals; call after
/// `Receiver::stop`, which makes the final export):
/// - `gen_ai.client.token.usage` (`{token}`): per request model and token
///   type, the sum over the callers' points equals the ledger's sum;
/// - `gen_ai.client.operation.duration` (`s`): one recorded value per call,
///   per request model; the failed calls' series carry their `error.type`;
/// - `gen_ai.client.operation.time_to_first_chunk` (`s`): one per successful stream;
/// - `gen_ai.server.request.duration` (`s`): one per call on the mock's side;
/// - every point names the operation, provider, server address and port.
pub fn assert_genai_metrics(rx: &Receiver, ledger: &[LedgerEntry], client_pids: &[u32], mock: &MockLlm) {
    assert_genai_points(&metric_points(rx), ledger, client_pids, mock.pid(), mock.port);
}

/// [`assert_genai_metrics`] on points already flattened; `mock_pid` and
/// `port` are the mock's.
pub fn assert_genai_points(all: &[MetricPoint], ledger: &[LedgerEntry], client_pids: &[u32], mock_pid: u32, port: u16) {
    let genai: Vec<&MetricPoint> = all.iter().filter(|p| p.name.starts_with("gen_ai.")).collect();
    let dump =
        || format!("ledger:\n{}gen_ai points:\n{}", describe_ledger(ledger), describe_points(genai.iter().copied()));
    let of_clients = |p: &&&MetricPoint| p.pid.is_some_and(|pid| client_pids.contains(&pid));
    let of_mock = |p: &&&MetricPoint| p.pid == Some(mock_pid);
    let port = port.to_string();
    for p in genai.iter().filter(|p| of_clients(p) || of_mock(p)) {
        let d = format!("{}\n{}", p.describe(), dump());
        assert_eq!(p.temporality, 1, "delta temporality as configured: {d}");
        assert!(p.attr("gen_ai.operation.name").is_some(), "gen_ai.operation.name on every point: {d}");
        assert!(p.attr("gen_ai.provider.name").is_some(), "gen_ai.provider.name on every point: {d}");
        assert_eq!(p.attr("server.port"), Some(port.as_str()), "server.port: {d}");
        assert_eq!(p.attr("server.address"), Some("127.0.0.1"), "server.address: {d}");
        let unit = if p.name == "gen_ai.client.token.usage" { "{token}" } else { "s" };
        assert_eq!(p.unit, unit, "unit: {d}");
    }

    // Token usage, per (request model, token type).
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in ledger.iter().filter(|e| !e.is_error()) {
        for (ty, n) in [("input", e.input_tokens), ("output", e.output_tokens)] {
            if let Some(n) = n {
                *want.entry((e.request_model().to_string(), ty.to_string())).or_default() += n;
            }
        }
    }
    let mut got: BTreeMap<(String, String), i64> = BTreeMap::new();
    for p in genai.iter().filter(of_clients).filter(|p| p.name == "gen_ai.client.token.usage") {
        let model = p.attr("gen_ai.request.model").unwrap_or("").to_string();
        let ty = p.attr("gen_ai.token.type").unwrap_or("?").to_string();
        assert!(ty == "input" || ty == "output", "gen_ai.token.type input|output: {}\n{}", p.describe(), dump());
        assert!(p.attr("error.type").is_none(), "token usage carries no error.type: {}", p.describe());
        let response_models: Vec<Option<&str>> = ledger
            .iter()
            .filter(|e| !e.is_error() && e.request_model() == model)
            .map(|e| e.response_model.as_deref())
            .collect();
        assert!(
            response_models.contains(&p.attr("gen_ai.response.model")),
            "gen_ai.response.model is the one the provider answered ({response_models:?}): {}",
            p.describe()
        );
        *got.entry((model, ty)).or_default() += p.sum.round() as i64;
    }
    got.retain(|_, v| *v != 0);
    want.retain(|_, v| *v != 0);
    assert_eq!(
        got,
        want,
        "gen_ai.client.token.usage sums per (request model, token type) equal the ledger's\n{}",
        dump()
    );

    // Operation durations: one value per call, per model; errors carry error.type.
    let count_where = |name: &str, points: &[&&MetricPoint], model: &str, pred: &dyn Fn(&MetricPoint) -> bool| -> u64 {
        points
            .iter()
            .filter(|p| p.name == name && p.attr("gen_ai.request.model") == Some(model) && pred(p))
            .map(|p| p.count)
            .sum()
    };
    let client_points: Vec<&&MetricPoint> = genai.iter().filter(of_clients).collect();
    let mock_points: Vec<&&MetricPoint> = genai.iter().filter(of_mock).collect();
    let mut models: Vec<&str> = ledger.iter().map(LedgerEntry::request_model).collect();
    models.sort_unstable();
    models.dedup();
    for model in models {
        let calls: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.request_model() == model).collect();
        let n = calls.len() as u64;
        let d = || format!("model {model}\n{}", dump());
        assert_eq!(
            count_where("gen_ai.client.operation.duration", &client_points, model, &|_| true),
            n,
            "client operation.duration count: {}",
            d()
        );
        assert_eq!(
            count_where("gen_ai.server.request.duration", &mock_points, model, &|_| true),
            n,
            "server request.duration count: {}",
            d()
        );
        for e in calls.iter().filter(|e| e.is_error()) {
            let allowed = e.allowed_error_types();
            let with_error = count_where("gen_ai.client.operation.duration", &client_points, model, &|p| {
                p.attr("error.type").is_some_and(|t| allowed.iter().any(|a| a == t))
            });
            assert!(with_error >= 1, "the failed call's duration series has error.type one of {allowed:?}: {}", d());
        }
        // One per successful stream; a stream request answered with a JSON
        // error body may count or not (it is no stream, but its body is a first chunk).
        let streams = calls.iter().filter(|e| e.stream && !e.is_error()).count() as u64;
        let failed_streams = calls.iter().filter(|e| e.stream && e.is_error()).count() as u64;
        let ttft = count_where("gen_ai.client.operation.time_to_first_chunk", &client_points, model, &|_| true);
        assert!(
            (streams..=streams + failed_streams).contains(&ttft),
            "client time_to_first_chunk count {ttft}, want {streams} (successful streams): {}",
            d()
        );
        let sum: f64 = client_points
            .iter()
            .filter(|p| {
                p.name == "gen_ai.client.operation.time_to_first_chunk" && p.attr("gen_ai.request.model") == Some(model)
            })
            .map(|p| p.sum)
            .sum();
        assert!(
            sum >= streams as f64 * FIRST_DELAY.as_secs_f64() * 0.8,
            "time to first chunk at least the mock's delay: {}",
            d()
        );
    }
}

/// Nothing of `secrets` appears in any byte the receiver exported (spans and
/// metrics), and at least one metrics batch was among them.
pub fn assert_not_exported(rx: &Receiver, secrets: &[String]) {
    assert!(rx.other_batches() > 0, "no metrics batch arrived: the privacy check would miss them");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!rx.raw_contains(s.as_bytes()), "{s:?} reached an exported signal");
    }
}

#[cfg(test)]
mod tests {
    //! The checkers against spans and points built by hand per the contract:
    //! what the contract describes passes, each kind of deviation fails.

    use std::panic::{catch_unwind, AssertUnwindSafe};

    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::{Span, Status};

    use super::*;

    const PORT: u16 = 44321;
    const CLIENT_PID: u32 = 100;
    const MOCK_PID: u32 = 200;

    fn entry(extra: Json) -> LedgerEntry {
        let mut v = json!({
            "seq": 1, "client_port": 50000, "path": "/v1/chat/completions", "provider": "openai",
            "operation": "chat", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-07-18",
            "response_id": "chatcmpl-abc", "input_tokens": 40, "output_tokens": 12, "cached_tokens": 18,
            "stream": true, "status": 200, "finish_reasons": ["stop"], "error_type": null, "error_code": null,
            "gzip": false, "chunked": true, "body_bytes": 3000, "events": 10, "first_chunk_s": 0.061,
            "duration_s": 0.25, "completion_marker": "cmplmarkx", "aborted": null
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        LedgerEntry::parse(&v.to_string()).unwrap()
    }

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    /// The span the contract describes for `e`, as `kind` sees it.
    fn span_for(e: &LedgerEntry, kind: SpanKind) -> SpanRec {
        let client = kind == SpanKind::Client;
        let mut a = vec![
            kv("gen_ai.operation.name", s(e.operation())),
            kv("gen_ai.provider.name", s(e.provider())),
            kv("gen_ai.request.model", s(e.request_model())),
            kv("http.request.method", s("POST")),
            kv("http.response.status_code", Value::IntValue(e.status)),
            kv("server.address", s("127.0.0.1")),
            kv("server.port", Value::IntValue(PORT.into())),
        ];
        if client {
            a.push(kv("url.full", s(&format!("https://127.0.0.1:{PORT}{}", e.path))));
        } else {
            a.push(kv("url.scheme", s("https")));
            a.push(kv("network.peer.port", Value::IntValue(e.client_port.into())));
        }
        if e.stream {
            a.push(kv("gen_ai.request.stream", Value::BoolValue(true)));
            a.push(kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.065)));
        }
        let mut status = None;
        if e.is_error() {
            a.push(kv("error.type", s(&e.allowed_error_types()[0])));
            status = Some(Status { message: String::new(), code: StatusCode::Error as i32 });
        } else {
            a.push(kv("gen_ai.response.model", s(e.response_model.as_deref().unwrap())));
            if let Some(id) = &e.response_id {
                a.push(kv("gen_ai.response.id", s(id)));
            }
            if let Some(n) = e.input_tokens {
                a.push(kv("gen_ai.usage.input_tokens", Value::IntValue(n)));
            }
            if let Some(n) = e.output_tokens {
                a.push(kv("gen_ai.usage.output_tokens", Value::IntValue(n)));
            }
            if e.cached_tokens > 0 {
                a.push(kv("gen_ai.usage.cache_read.input_tokens", Value::IntValue(e.cached_tokens)));
            }
            if !e.finish_reasons.is_empty() {
                let values = e.finish_reasons.iter().map(|f| AnyValue { value: Some(s(f)) }).collect();
                a.push(kv("gen_ai.response.finish_reasons", Value::ArrayValue(ArrayValue { values })));
            }
        }
        let pid = if client { CLIENT_PID } else { MOCK_PID };
        SpanRec {
            resource: Resource {
                attributes: vec![kv("process.pid", Value::IntValue(pid.into()))],
                ..Default::default()
            },
            scope: None,
            span: Span {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                name: e.span_name(),
                kind: kind as i32,
                start_time_unix_nano: 1_000_000_000,
                end_time_unix_nano: 1_000_000_000 + (e.duration_s * 1e9) as u64,
                attributes: a,
                status,
                ..Default::default()
            },
        }
    }

    fn without(mut span: SpanRec, key: &str) -> SpanRec {
        span.span.attributes.retain(|kv| kv.key != key);
        span
    }

    fn with(mut span: SpanRec, key: &str, v: Value) -> SpanRec {
        span.span.attributes.retain(|kv| kv.key != key);
        span.span.attributes.push(kv(key, v));
        span
    }

    fn fails(span: &SpanRec, e: &LedgerEntry) -> bool {
        catch_unwind(AssertUnwindSafe(|| assert_genai_span(span, e, PORT, "https"))).is_err()
    }

    #[test]
    fn a_span_per_contract_passes_on_both_sides() {
        let errors = [
            entry(json!({"status": 429, "provider": "anthropic", "request_model": "rate-limited", "stream": false,
                         "error_type": "rate_limit_error", "input_tokens": null, "output_tokens": null, "response_id": null})),
            entry(json!({"status": 429, "provider": "ollama", "request_model": "rate-limited", "stream": false,
                         "input_tokens": null, "output_tokens": null})),
        ];
        for e in [
            entry(json!({})),
            entry(json!({"stream": false, "first_chunk_s": null, "cached_tokens": 0})),
            entry(json!({"operation": "embeddings", "output_tokens": null, "finish_reasons": [], "response_id": null,
                         "stream": false, "cached_tokens": 0})),
        ]
        .iter()
        .chain(&errors)
        {
            assert_genai_span(&span_for(e, SpanKind::Client), e, PORT, "https");
            assert_genai_span(&span_for(e, SpanKind::Server), e, PORT, "https");
        }
        assert_eq!(errors[1].allowed_error_types(), ["429"]);
    }

    #[test]
    fn each_deviation_fails() {
        let e = entry(json!({}));
        let ok = span_for(&e, SpanKind::Client);
        assert!(!fails(&ok, &e));
        let mut renamed = ok.clone();
        renamed.span.name = "chat".into();
        assert!(fails(&renamed, &e), "name without the model");
        assert!(fails(&with(ok.clone(), "gen_ai.usage.input_tokens", Value::IntValue(22)), &e), "input without cached");
        assert!(
            fails(&with(ok.clone(), "gen_ai.usage.output_tokens", Value::StringValue("12".into())), &e),
            "string count"
        );
        assert!(fails(&without(ok.clone(), "gen_ai.usage.cache_read.input_tokens"), &e), "cached missing");
        assert!(fails(&without(ok.clone(), "gen_ai.response.time_to_first_chunk"), &e), "ttft missing");
        assert!(
            fails(&with(ok.clone(), "gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.01)), &e),
            "ttft < delay"
        );
        assert!(
            fails(&with(ok.clone(), "gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.3)), &e),
            "ttft > duration"
        );
        assert!(
            fails(&with(ok.clone(), "gen_ai.response.finish_reasons", s("stop")), &e),
            "finish reasons not an array"
        );
        assert!(fails(&with(ok.clone(), "gen_ai.provider.name", s("gcp.gemini")), &e), "provider");
        assert!(fails(&with(ok.clone(), "server.port", Value::IntValue(1)), &e), "port");
        assert!(fails(&with(ok.clone(), "url.full", s("http://127.0.0.1:1/x")), &e), "scheme");
        assert!(fails(&with(ok.clone(), "error.type", s("500")), &e), "error.type on success");
        let e429 =
            entry(json!({"status": 429, "error_type": "tokens", "error_code": "rate_limit_exceeded", "stream": false,
                                "input_tokens": null, "output_tokens": null, "response_id": null}));
        let c429 = span_for(&e429, SpanKind::Client);
        assert!(
            !fails(&with(c429.clone(), "error.type", s("rate_limit_exceeded")), &e429),
            "OpenAI: code accepted too"
        );
        assert!(fails(&with(c429.clone(), "error.type", s("429")), &e429), "a typed error body wins over the status");
        assert!(fails(&without(c429, "error.type"), &e429), "error.type missing");
    }

    fn point(name: &str, pid: u32, model: &str, extra: &[(&str, &str)], sum: f64, count: u64) -> MetricPoint {
        let mut attrs: BTreeMap<String, String> = [
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", model),
            ("server.address", "127.0.0.1"),
        ]
        .into_iter()
        .chain((model == "gpt-4o").then_some(("gen_ai.response.model", "gpt-4o-2024-07-18")))
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        attrs.insert("server.port".into(), PORT.to_string());
        let unit = if name.ends_with("token.usage") { "{token}" } else { "s" };
        MetricPoint {
            name: name.into(),
            unit: unit.into(),
            kind: "histogram",
            temporality: 1,
            pid: Some(pid),
            attrs,
            sum,
            count,
        }
    }

    #[test]
    fn metrics_add_up_to_the_ledger() {
        let ledger = [
            entry(json!({})),
            entry(json!({"seq": 2, "stream": false, "input_tokens": 10, "output_tokens": 3})),
            entry(json!({"seq": 3, "request_model": "m2", "status": 429, "stream": false, "error_type": "tokens",
                         "error_code": "rate_limit_exceeded", "input_tokens": null, "output_tokens": null})),
        ];
        let usage = "gen_ai.client.token.usage";
        let dur = "gen_ai.client.operation.duration";
        let mut points = vec![
            // Two delta exports of gpt-4o's series.
            point(usage, CLIENT_PID, "gpt-4o", &[("gen_ai.token.type", "input")], 40.0, 1),
            point(usage, CLIENT_PID, "gpt-4o", &[("gen_ai.token.type", "input")], 10.0, 1),
            point(usage, CLIENT_PID, "gpt-4o", &[("gen_ai.token.type", "output")], 15.0, 2),
            point(dur, CLIENT_PID, "gpt-4o", &[], 0.3, 2),
            point(dur, CLIENT_PID, "m2", &[("error.type", "rate_limit_exceeded")], 0.01, 1),
            point("gen_ai.client.operation.time_to_first_chunk", CLIENT_PID, "gpt-4o", &[], 0.07, 1),
            point("gen_ai.server.request.duration", MOCK_PID, "gpt-4o", &[], 0.3, 2),
            point("gen_ai.server.request.duration", MOCK_PID, "m2", &[("error.type", "tokens")], 0.01, 1),
            // Another process's points do not count.
            point(usage, 999, "gpt-4o", &[("gen_ai.token.type", "input")], 1000.0, 1),
        ];
        assert_genai_points(&points, &ledger, &[CLIENT_PID], MOCK_PID, PORT);
        let check = |p: &[MetricPoint]| {
            catch_unwind(AssertUnwindSafe(|| assert_genai_points(p, &ledger, &[CLIENT_PID], MOCK_PID, PORT))).is_err()
        };
        let mut wrong_sum = points.clone();
        wrong_sum[1].sum = 11.0;
        assert!(check(&wrong_sum), "token sum off by one");
        let mut missing_error = points.clone();
        missing_error[4].attrs.remove("error.type");
        assert!(check(&missing_error), "error.type missing on the failed call's duration");
        let mut wrong_unit = points.clone();
        wrong_unit[0].unit = "token".into();
        assert!(check(&wrong_unit), "unit");
        points.remove(5);
        assert!(check(&points), "time to first chunk missing for the stream");
    }
}
