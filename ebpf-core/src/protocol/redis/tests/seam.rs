//! Recorded Redis traffic through the whole seam (recognition among the
//! registry's protocols, the connection tracker, the description, span
//! encoding and metrics): the spans and counters a user sees.

use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::fixtures::load;
use crate::protocol::recorded::{span_attributes, through_seam, whole, Seam};
use crate::protocol::{ProtocolsConfig, Role};

const PORT: u16 = 6379;

fn seam(name: &str, role: Role, capture: usize, opened: bool) -> Seam {
    let fix = load(name);
    through_seam(&fix.steps(role, capture, &whole), role, PORT, opened, &ProtocolsConfig::default())
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span_attributes(span).into_iter().find_map(|a| a.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn failed(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// The 50 commands of redis-py's pipeline, in order.
fn pipeline50() -> Vec<&'static str> {
    ["SET", "GET", "INCRBY", "GET", "LPUSH"].iter().copied().cycle().take(50).collect()
}

#[test]
fn a_pipeline_gives_a_client_span_per_command_in_order() {
    let s = seam("py2_pipeline50", Role::Client, 4096, true);
    let mut expected = vec!["CLIENT SETINFO"; 2];
    expected.extend(pipeline50());
    assert_eq!(names(&s.spans), expected);
    let set = &s.spans[2];
    assert_eq!(set.kind, SpanKind::Client as i32);
    assert_eq!(
        span_attributes(set),
        [
            "db.system.name=redis",
            "db.namespace=0",
            "db.operation.name=SET",
            "db.query.text=SET ? ?",
            "server.address=127.0.0.1",
            "server.port=6379",
            "network.peer.address=127.0.0.1",
            "network.peer.port=6379",
        ]
    );
    // LPUSH on a string: the error prefix, and a failed span.
    let lpush = &s.spans[6];
    assert_eq!(lpush.name, "LPUSH");
    assert!(failed(lpush));
    assert_eq!(attr(lpush, "db.response.status_code").as_deref(), Some("WRONGTYPE"));
    assert_eq!(attr(lpush, "error.type").as_deref(), Some("WRONGTYPE"));
    assert_eq!(s.spans.iter().filter(|s| failed(s)).count(), 12, "10 LPUSH, 2 CLIENT SETINFO (Redis 7.0)");
    assert_eq!((s.stats.responses_unmatched, s.stats.requests_unmatched, s.stats.parse_errors), (0, 0, 0));
    // One duration point per operation name and outcome, 52 calls in all.
    let metric = s.metrics.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == "db.client.operation.duration")
        .expect("db.client.operation.duration");
    let Some(Data::Histogram(h)) = &metric.data else { panic!("a histogram") };
    assert_eq!(h.data_points.iter().map(|p| p.count).sum::<u64>(), 52);
    assert_eq!(h.data_points.len(), 5, "SET, GET, INCRBY, LPUSH error, CLIENT SETINFO error: no key, no text");
}

#[test]
fn a_pipeline_longer_than_the_capture_counts_what_it_cannot_see() {
    // redis-py writes the 50 commands in one 1762-byte write: at the default
    // capture the commands past 1024 bytes are not seen, their replies are
    // counted as unmatched.
    let s = seam("py2_pipeline50", Role::Client, 1024, true);
    // The 30th command starts at byte 1020: its name is past the capture,
    // so its span is named for the system.
    assert_eq!(s.spans.len(), 2 + 30);
    assert_eq!(names(&s.spans)[2..31], pipeline50()[..29]);
    assert_eq!(s.spans[31].name, "redis");
    assert!(attr(&s.spans[31], "db.operation.name").is_none() && attr(&s.spans[31], "db.query.text").is_none());
    assert_eq!(s.stats.responses_unmatched, 20);
    assert_eq!(s.stats.parse_errors, 0);
}

#[test]
fn the_server_side_gives_server_spans_and_no_client_metric() {
    let s = seam("strace_server_pipeline50", Role::Server, 4096, true);
    assert_eq!(s.spans.len(), 52);
    assert!(s.spans.iter().all(|s| s.kind == SpanKind::Server as i32));
    let get = &s.spans[3];
    assert_eq!(get.name, "GET");
    assert_eq!(attr(get, "server.port").as_deref(), Some("6379"));
    assert_eq!(attr(get, "network.peer.port").as_deref(), Some("40000"), "the client");
    assert!(s.metrics.resource_metrics.is_empty(), "no server-side database metric in the conventions");
}

#[test]
fn transactions_say_what_became_of_each_queued_command() {
    let s = seam("py2_multi", Role::Client, 4096, true);
    let tx: Vec<String> = s
        .spans
        .iter()
        .map(|sp| format!("{} {}", sp.name, attr(sp, "ebpf_receiver.redis.transaction").unwrap_or("-".into())))
        .collect();
    assert_eq!(
        tx[2..],
        [
            "SET -",
            "MULTI -",
            "SET executed",
            "INCRBY executed",
            "INCRBY executed",
            "GET executed",
            "EXEC -",
            "WATCH -",
            "GET -",
            "MULTI -",
            "SET aborted",
            "EXEC -",
            "MULTI -",
            "SET aborted",
            "INCRBY rejected",
            "EXEC -",
            "MULTI -",
            "SET discarded",
            "DISCARD -",
        ]
    );
    // The failing element of EXEC's reply fails its command's span, and
    // EXECABORT fails the EXEC.
    assert!(failed(&s.spans[6]) && !failed(&s.spans[5]));
    assert_eq!(attr(&s.spans[17], "error.type").as_deref(), Some("EXECABORT"));
}

#[test]
fn scripts_name_their_span_databases_do_not() {
    let s = seam("raw_session", Role::Client, 4096, true);
    let evalsha = s.spans.iter().find(|s| s.name.starts_with("EVALSHA")).expect("EVALSHA");
    let sha = attr(evalsha, "db.stored_procedure.name").expect("db.stored_procedure.name");
    assert_eq!(sha.len(), 40);
    assert_eq!(evalsha.name, format!("EVALSHA {sha}"));
    assert_eq!(attr(evalsha, "error.type").as_deref(), Some("NOSCRIPT"));
    assert_eq!(attr(evalsha, "db.namespace").as_deref(), Some("5"), "after SELECT 5");
    assert_eq!(attr(evalsha, "db.query.text").as_deref(), Some("EVALSHA ? ?"));
    let auth: Vec<_> = s.spans.iter().filter(|s| s.name == "AUTH").collect();
    assert_eq!(auth.len(), 2);
    assert_eq!(attr(auth[0], "db.response.status_code").as_deref(), Some("WRONGPASS"));
    assert_eq!(attr(auth[1], "db.query.text").as_deref(), Some("AUTH ? ?"));
    // Database index and subcommands: never the span name's target.
    assert!(s.spans.iter().any(|s| s.name == "CLIENT SETNAME"));
    assert!(s.spans.iter().all(|s| !s.name.ends_with(" 5")));
}

#[test]
fn no_key_value_or_password_in_any_span() {
    for (name, secrets) in [
        ("raw_session", &["s3cret-pass", "wrong-password", "billing-worker", "alice"][..]),
        ("py2_pipeline50", &["pipe:", "value-"][..]),
        ("cli_session", &["user:1001", "alice@example.com", "4111111111111111", "checkout", "maxmemory"][..]),
    ] {
        let s = seam(name, Role::Client, 4096, true);
        assert!(!s.spans.is_empty());
        for span in &s.spans {
            let bytes = prost::Message::encode_to_vec(span);
            for secret in secrets {
                assert!(
                    memchr::memmem::find(&bytes, secret.as_bytes()).is_none(),
                    "{name}: {secret} in {}: {:?}",
                    span.name,
                    span_attributes(span)
                );
            }
        }
    }
}

#[test]
fn a_connection_older_than_the_receiver_has_no_known_database_until_select() {
    let s = seam("cli_session", Role::Client, 4096, false);
    assert_eq!(s.spans.len(), 20);
    let select = s.spans.iter().position(|s| s.name == "SELECT").unwrap();
    assert!(s.spans[..=select].iter().all(|s| attr(s, "db.namespace").is_none()));
    assert!(s.spans[select + 1..].iter().all(|s| attr(s, "db.namespace").as_deref() == Some("3")));
    assert!(s.spans.iter().all(|s| s.kind == SpanKind::Client as i32), "the role from the first command's direction");
    assert!(attr(&s.spans[0], "server.address").is_none(), "no open event: no addresses");
}

#[test]
fn switched_off_redis_is_muted() {
    let fix = load("py2_pipeline50");
    let mut off = ProtocolsConfig::default();
    off.redis.enabled = false;
    let s = through_seam(&fix.steps(Role::Client, 4096, &whole), Role::Client, PORT, true, &off);
    assert!(s.spans.is_empty());
    assert_eq!(s.muted, 1);
}

#[test]
fn inline_commands_are_redis() {
    let s = seam("nc_inline", Role::Client, 4096, true);
    assert_eq!(names(&s.spans), ["PING", "SET", "GET", "EXISTS", "QUIT"]);
    assert_eq!(attr(&s.spans[1], "db.query.text").as_deref(), Some("SET ? ?"));
}
