//! The C example (examples/embed-c): its hand-written protobuf walker decodes
//! what prost encodes, rejects every malformed length without reading out of
//! bounds (built with AddressSanitizer when the compiler has it), and the
//! full program, linked against the static library, prints the spans of real
//! requests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use integration_tests::util::{repo_root, target_dir, which};
use integration_tests::{curl, require_root, Server, TempDir};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

fn cc() -> PathBuf {
    std::env::var_os("CC").map(PathBuf::from).or_else(|| which("cc")).expect("a C compiler (cc)")
}

/// Builds examples/embed-c's otlp-decode into target/test-bins, with ASan+UBSan when available.
fn decoder() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = repo_root().join("examples/embed-c");
        let out = target_dir().join("test-bins");
        std::fs::create_dir_all(&out).unwrap();
        let bin = out.join("otlp-decode");
        let build = |sanitize: bool| {
            let mut cmd = Command::new(cc());
            cmd.args(["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror"]);
            if sanitize {
                cmd.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]);
            }
            cmd.arg("-o").arg(&bin).arg(src.join("decode.c")).arg(src.join("otlp_walk.c"));
            cmd.output().expect("run cc")
        };
        let out = build(true);
        if !out.status.success() {
            eprintln!("note: building otlp-decode without sanitizers: {}", String::from_utf8_lossy(&out.stderr));
            let out = build(false);
            assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        bin
    })
    .clone()
}

/// Runs the decoder on `bytes`: (exit code, stdout, stderr). Panics on a
/// crash (signal) or a sanitizer report.
fn decode(dir: &Path, bytes: &[u8]) -> (i32, String, String) {
    let file = dir.join("batch.pb");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new(decoder())
        .arg(&file)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86")
        .env("UBSAN_OPTIONS", "halt_on_error=1:exitcode=87")
        .stdin(Stdio::null())
        .output()
        .expect("run otlp-decode");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code =
        out.status.code().unwrap_or_else(|| panic!("otlp-decode crashed ({}) on {bytes:02x?}\n{stderr}", out.status));
    assert!(
        code != 86 && code != 87 && !stderr.contains("Sanitizer"),
        "otlp-decode: sanitizer report on {bytes:02x?}:\n{stderr}"
    );
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn i(key: &str, v: i64) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Value::IntValue(v)) }), ..Default::default() }
}

fn other(key: &str, v: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn span(name: &str, kind: SpanKind, start: u64, dur_ns: u64, attrs: Vec<KeyValue>, code: StatusCode) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur_ns,
        attributes: attrs,
        status: Some(Status { code: code as i32, message: String::new() }),
        ..Default::default()
    }
}

/// A request with what the walker must skip (events, scope, doubles,
/// bools, trace_state) and, in the second ResourceSpans, the resource
/// *after* the spans on the wire (legal protobuf: fields in any order).
fn sample() -> Vec<u8> {
    let t0 = 1_700_000_000_000_000_000u64;
    let mut server = span(
        "GET",
        SpanKind::Server,
        t0,
        100_412_000,
        vec![
            s("http.request.method", "GET"),
            s("url.path", "/status/500"),
            i("http.response.status_code", 500),
            other("weird.double", Value::DoubleValue(1.5)),
            s("server.address", "127.0.0.1"),
            i("server.port", 8080),
            other("weird.bool", Value::BoolValue(true)),
            s("network.peer.address", "127.0.0.1"),
            i("network.peer.port", 54321),
            s("error.type", "500"),
        ],
        StatusCode::Error,
    );
    server.trace_state = "k=v".into();
    server.events.push(Event { name: "ev".into(), time_unix_nano: t0, ..Default::default() });
    server.dropped_attributes_count = 3;
    let first = ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                s("service.name", "demo-server"),
                i("process.pid", 4242),
                s("process.executable.name", "demo-server"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "otel-ebpf".into(),
                version: "0.1.0".into(),
                ..Default::default()
            }),
            spans: vec![server],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
        schema_url: String::new(),
    };
    let client = span(
        "GET",
        SpanKind::Client,
        t0,
        101_000_000,
        vec![
            s("url.path", "/x\u{1b}[31m"),
            i("http.response.status_code", 200),
            i("server.port", 8080),
            i("network.peer.port", 8080),
        ],
        StatusCode::Unset,
    );
    // Second ResourceSpans: spans first, resource last (concatenation merges).
    let mut second = ResourceSpans {
        resource: None,
        scope_spans: vec![ScopeSpans { scope: None, spans: vec![client], schema_url: String::new() }],
        schema_url: String::new(),
    }
    .encode_to_vec();
    second.extend(
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", "curl"), i("process.pid", 7)],
                ..Default::default()
            }),
            scope_spans: vec![],
            schema_url: String::new(),
        }
        .encode_to_vec(),
    );
    let mut req = ExportTraceServiceRequest { resource_spans: vec![first] }.encode_to_vec();
    // Append field 1 (resource_spans), wire type 2, with the hand-merged bytes.
    req.push(0x0a);
    prost::encoding::encode_varint(second.len() as u64, &mut req);
    req.extend(second);
    req
}

const EXPECTED: &str = "\
demo-server[4242] SERVER \"GET\" status=ERROR duration_ms=100.412 http.response.status_code=500 url.path=/status/500 server.port=8080 network.peer.address=127.0.0.1 network.peer.port=54321 error.type=500
curl[7] CLIENT \"GET\" status=UNSET duration_ms=101.000 http.response.status_code=200 url.path=/x?[31m server.port=8080 network.peer.port=8080
";

#[test]
fn walker_decodes_what_prost_encodes() {
    let dir = TempDir::new("embedc");
    let (code, out, err) = decode(dir.path(), &sample());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, EXPECTED);
    // Empty input is an empty request, not an error.
    let (code, out, _) = decode(dir.path(), &[]);
    assert_eq!((code, out.as_str()), (0, ""));
    // The receiver's real batches decode too (a request with no resource).
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![Span::default()], ..Default::default() }],
            ..Default::default()
        }],
    };
    let (code, out, err) = decode(dir.path(), &req.encode_to_vec());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "? UNSPECIFIED \"\" status=UNSET duration_ms=0.000\n");
}

#[test]
fn walker_rejects_malformed_lengths_without_overruns() {
    let dir = TempDir::new("embedc");
    let good = sample();
    // Every truncation: the walker must stop cleanly (0 when cut at a field
    // boundary of the outer message, else 3 "malformed"), never overrun.
    let mut malformed = 0;
    for cut in 0..good.len() {
        let (code, _, err) = decode(dir.path(), &good[..cut]);
        assert!(code == 0 || code == 3, "cut at {cut}: exit {code}: {err}");
        if code == 3 {
            malformed += 1;
            assert!(err.contains("malformed"), "cut at {cut}: {err}");
        }
    }
    assert!(malformed > good.len() / 2, "most truncations are malformed ({malformed}/{})", good.len());
    // Every byte set to 0xff (huge varints, lengths and wire type 7): never an overrun.
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] = 0xff;
        let (code, _, err) = decode(dir.path(), &bad);
        assert!(code == 0 || code == 3, "0xff at {pos}: exit {code}: {err}");
    }
    // Named cases.
    for (bytes, msg) in [
        (&[0x0a, 0x05, 0x00][..], "runs past the end"), // length 5, 1 byte left
        (&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..], "runs past the end"), // length 4 GiB
        (&[0x0a][..], "varint runs past the end"),      // key without length
        (&[0x0b][..], "wire type"),                     // group start
        (&[0x0a, 0x02, 0x12, 0x05][..], "runs past the end"), // inner length overruns the outer one
        (&[0x09, 0x01, 0x02][..], "fixed-width"),       // fixed64 with 2 bytes
        (&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..], "varint"),
        (&[0x00, 0x00][..], "field number"),
    ] {
        let (code, _, err) = decode(dir.path(), bytes);
        assert_eq!(code, 3, "{bytes:02x?} must be malformed: {err}");
        assert!(err.contains(msg), "{bytes:02x?}: {err:?} should say {msg:?}");
    }
}

/// The full example against the real library: needs the release static
/// library (built by `make -C examples/embed-c`, or `make lib`), the header
/// and root. Without the library this test says so and returns.
#[test]
fn embed_c_prints_spans_of_real_requests() {
    let root = repo_root();
    let lib = target_dir().join("release/libotel_ebpf.a");
    let header = root.join("ffi/include/otel_ebpf.h");
    if !lib.exists() || !header.exists() {
        eprintln!(
            "skipped: {} or {} missing (run `make lib` first; CI builds it before the tests)",
            lib.display(),
            header.display()
        );
        return;
    }
    if !require_root() {
        return;
    }
    let bin = target_dir().join("test-bins/embed-c");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let src = root.join("examples/embed-c");
    let out = Command::new(cc())
        .args(["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("ffi/include"))
        .arg("-o")
        .arg(&bin)
        .arg(src.join("main.c"))
        .arg(src.join("otlp_walk.c"))
        .arg(&lib)
        .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"])
        .output()
        .expect("run cc");
    assert!(out.status.success(), "building embed-c failed:\n{}", String::from_utf8_lossy(&out.stderr));

    let server = Server::go("127.0.0.1", Duration::from_millis(100), &[]);
    let mut child = Command::new(&bin)
        .arg("5")
        .arg(r#"{"batch": {"timeout_ms": 200}}"#)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run embed-c");
    // It prints "tracing for" on stderr once the probes are attached.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if line.contains("tracing for") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    if started {
        for p in ["/embed/one", "/status/404"] {
            curl(&server.url(p));
        }
    }
    let out = child.wait_with_output().expect("wait embed-c");
    let stderr = reader.join().expect("stderr reader");
    assert!(started, "embed-c did not start:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "embed-c failed: {}\n{stderr}", out.status);
    let port = format!("server.port={}", server.port);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(&port)).collect();
    // The name is "GET" or "GET <http.route>".
    let server_line = format!("demo-server[{}] SERVER \"GET", server.pid());
    for (path, code) in [("/embed/one", 200), ("/status/404", 404)] {
        let needle = format!("http.response.status_code={code} url.path={path} {port}");
        let matching: Vec<&&str> =
            lines.iter().filter(|l| l.contains(&needle) && l.starts_with(&server_line)).collect();
        assert_eq!(matching.len(), 1, "one SERVER line for {path} in:\n{stdout}\n{stderr}");
        let clients = lines.iter().filter(|l| l.contains(&needle) && l.starts_with("curl[")).count();
        assert_eq!(clients, 1, "one curl CLIENT line for {path} in:\n{stdout}\n{stderr}");
    }
    assert!(stderr.contains("0 malformed"), "{stderr}");
}
