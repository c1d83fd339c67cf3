//! Recorded memcached traffic through the whole seam (recognition among
//! the registry's protocols, the connection tracker, the description,
//! span encoding and metrics), and the streams Redis's inline form shares
//! (`kv`'s rule: shape, port, then the reply).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::protocol::recorded::{span_attributes, through_seam, whole, Fixture, Seam, Step};
use crate::protocol::{Direction, ProtocolsConfig, Role};

const PORT: u16 = 11211;

fn seam(name: &str, role: Role) -> Seam {
    let fix = Fixture::load("memcached", name);
    through_seam(&fix.steps(role, 4096, &whole), role, PORT, true, &ProtocolsConfig::default())
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span_attributes(span).into_iter().find_map(|a| a.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn failed(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// `name status [hits/misses]` of each span.
fn summary(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .map(|s| {
            let mut line = format!("{} {}", s.name, attr(s, "db.response.status_code").unwrap_or("-".into()));
            if let Some(hits) = attr(s, "ebpf_receiver.cache.hits") {
                line.push_str(&format!(" {hits}/{}", attr(s, "ebpf_receiver.cache.misses").unwrap()));
            }
            if failed(s) {
                line.push_str(" !");
            }
            line
        })
        .collect()
}

#[test]
fn pymemcache_commands_give_client_spans_with_hits_and_misses() {
    let s = seam("pymc_text", Role::Client);
    let lines = summary(&s.spans);
    assert_eq!(lines.len(), 32);
    assert_eq!(
        lines[..8],
        [
            "set -",
            "set STORED",
            "get END 1/0",
            "get END 0/1",
            "get END 2/2",
            "gets END 1/0",
            "cas STORED",
            "cas EXISTS",
        ]
    );
    assert!(lines.contains(&"incr NOT_FOUND".to_string()) && lines.contains(&"gats END 1/1".to_string()));
    assert!(lines.contains(&"incr -".to_string()), "incr's number is no status code");
    assert!(s.spans.iter().all(|s| !failed(s)), "misses and NOT_STORED are answers");
    let get = &s.spans[4];
    assert_eq!(get.kind, SpanKind::Client as i32);
    assert_eq!(
        span_attributes(get),
        [
            "db.system.name=memcached",
            "db.operation.name=get",
            "db.response.status_code=END",
            "server.address=127.0.0.1",
            "server.port=11211",
            "network.peer.address=127.0.0.1",
            "network.peer.port=11211",
            "ebpf_receiver.cache.hits=2",
            "ebpf_receiver.cache.misses=2",
        ]
    );
    assert_eq!(s.stats.parse_errors, 0);
    let names: Vec<&str> =
        s.metrics.resource_metrics[0].scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["db.client.operation.duration"]);
}

#[test]
fn meta_commands_and_quiet_batches() {
    let s = seam("raw_meta", Role::Server);
    let lines = summary(&s.spans);
    assert_eq!(
        lines[..11],
        [
            "ms HD",
            "mg VA 1/0",
            "mg EN 0/1",
            "mg VA 1/0",
            "mg VA 1/0",
            // Misses answered by silence in a quiet batch.
            "mg EN 0/1",
            "mg EN 0/1",
            "ms HD",
            "md NF",
            "mg VA 1/0",
            "mn MN",
        ]
    );
    assert!(s.spans.iter().all(|s| s.kind == SpanKind::Server as i32));
    assert_eq!(lines.iter().filter(|l| l.ends_with('!')).count(), 2, "two CLIENT_ERRORs");
    assert!(s.metrics.resource_metrics.is_empty(), "no server-side database metric");
}

#[test]
fn errors_fail_their_spans() {
    // Its first command is unknown: no protocol claims the connection.
    let s = seam("raw_errors", Role::Client);
    assert_eq!((s.spans.len(), s.muted), (0, 1));
    let s = seam("pymc_large", Role::Client);
    let last = s.spans.last().unwrap();
    assert_eq!(last.name, "set");
    assert!(failed(last));
    assert_eq!(attr(last, "error.type").as_deref(), Some("SERVER_ERROR"));
}

#[test]
fn no_key_or_value_in_any_span() {
    for (name, secrets) in [
        ("pymc_text", &["user:", "alice@example.com", "bobby", "robert", "nocounter"][..]),
        ("raw_meta", &["meta:", "hello", "bWV0YTpiNjQ="][..]),
    ] {
        let s = seam(name, Role::Client);
        for span in &s.spans {
            let bytes = prost::Message::encode_to_vec(span);
            for secret in secrets {
                assert!(memchr::memmem::find(&bytes, secret.as_bytes()).is_none(), "{name}: {secret}");
            }
        }
    }
}

/// A client connection to `port` that sends `exchanges` (request, reply) in turn.
fn steps<'a>(exchanges: &[(&'a [u8], &'a [u8])]) -> Vec<Step<'a>> {
    let mut out = Vec::new();
    for (i, (req, resp)) in exchanges.iter().enumerate() {
        let ts = 1_000 * (i as u64 + 1);
        out.push((Direction::Egress, ts, *req, req.len() as u64));
        if !resp.is_empty() {
            out.push((Direction::Ingress, ts + 500, *resp, resp.len() as u64));
        }
    }
    out
}

fn names(s: &Seam) -> Vec<String> {
    s.spans.iter().map(|s| format!("{} {}", attr(s, "db.system.name").unwrap(), s.name)).collect()
}

/// Someone typing into nc: `get k` reads as both protocols.
const INLINE_REDIS: &[(&[u8], &[u8])] =
    &[(b"get greeting\r\n", b"$5\r\nhello\r\n"), (b"PING\r\n", b"+PONG\r\n"), (b"quit\r\n", b"+OK\r\n")];

#[test]
fn get_k_answered_in_resp_is_redis() {
    let s = through_seam(&steps(INLINE_REDIS), Role::Client, 7000, true, &ProtocolsConfig::default());
    assert_eq!(names(&s), ["redis get", "redis PING", "redis quit"]);
    assert_eq!(attr(&s.spans[0], "db.query.text").as_deref(), Some("get ?"));
    assert_eq!((s.stats.parse_errors, s.stats.responses_unmatched), (0, 0));
}

#[test]
fn get_k_answered_by_memcached_is_memcached() {
    let exchanges: &[(&[u8], &[u8])] = &[
        (b"get greeting\r\n", b"VALUE greeting 0 5\r\nhello\r\nEND\r\n"),
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"quit\r\n", b""),
    ];
    let s = through_seam(&steps(exchanges), Role::Client, 7000, true, &ProtocolsConfig::default());
    assert_eq!(names(&s), ["memcached get", "memcached set", "memcached quit"]);
    assert_eq!(attr(&s.spans[0], "ebpf_receiver.cache.hits").as_deref(), Some("1"));
}

#[test]
fn get_k_on_the_redis_port_is_redis_from_the_start() {
    let s = through_seam(&steps(INLINE_REDIS), Role::Client, 6379, true, &ProtocolsConfig::default());
    assert_eq!(names(&s), ["redis get", "redis PING", "redis quit"]);
    // And a connection seen from the server's side, older than the receiver.
    let s = through_seam(&steps(INLINE_REDIS), Role::Server, 6379, false, &ProtocolsConfig::default());
    assert_eq!(names(&s), ["redis get", "redis PING", "redis quit"]);
}

#[test]
fn quit_alone_stays_memcached() {
    let s = through_seam(&steps(&[(b"quit\r\n", b"")]), Role::Client, 7000, true, &ProtocolsConfig::default());
    assert_eq!(names(&s), ["memcached quit"]);
    assert!(!failed(&s.spans[0]), "quit asks for no reply");
}

#[test]
fn with_redis_off_the_stream_is_not_handed_over() {
    let mut config = ProtocolsConfig::default();
    config.redis.enabled = false;
    let s = through_seam(&steps(INLINE_REDIS), Role::Client, 7000, true, &config);
    assert!(names(&s).iter().all(|n| n.starts_with("memcached")), "{:?}", names(&s));
    // Recognisers do not see the switches: with memcached off, `get k` off
    // Redis's port is nobody's (a person's inline session only).
    config.memcached.enabled = false;
    config.redis.enabled = true;
    let s = through_seam(&steps(INLINE_REDIS), Role::Client, 7000, true, &config);
    assert_eq!((s.spans.len(), s.muted), (0, 1));
}
