//! Every attribute key and metric name the product emits is a current
//! (non-deprecated) OpenTelemetry semantic convention, checked against the
//! registry YAML in ../shared/semconv (override with OTEL_EBPF_SEMCONV_DIR).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpf_core::clock::WallClock;
use ebpf_core::config::DnsConfig;
use ebpf_core::conntrack::Endpoints;
use ebpf_core::flows::metrics::DnsKey;
use ebpf_core::flows::{FailReason, FlowKey, Flows, TcpActivity, Transport, FLOW_METRICS, REDUCER_METRIC_NAMES};
use ebpf_core::metrics::instruments::{messaging, DB_CLIENT, DURATION, MESSAGING_CLIENT, RPC_CLIENT, RPC_SERVER};
use ebpf_core::metrics::{metric_names, Metrics, MetricsConfig, SELF_METRIC_NAMES};
use ebpf_core::otlp::{process_resource, HostInfo};
use ebpf_core::process::ProcessIdentity;
use ebpf_core::protocol::genai::GenAiCall;
use ebpf_core::protocol::http1::telemetry::describe_with;
use ebpf_core::protocol::http1::{HttpExchange, HttpVersion, KeptBodies};
use ebpf_core::protocol::http2::{GrpcCall, Http2Stream, StreamEnd};
use ebpf_core::protocol::kafka::{Api, KafkaOperation, KafkaStatus};
use ebpf_core::protocol::memcached::{self, Code, MemcachedOperation};
use ebpf_core::protocol::mongodb::{MongoOperation, MongoStatus, OP_MSG};
use ebpf_core::protocol::mqtt::{MqttCommand, MqttOperation, MqttStatus};
use ebpf_core::protocol::redis::{self, RedisOperation, ReplyKind, Transaction};
use ebpf_core::protocol::sql::{
    DbCommand, DbError, DbOperation, DbStatus, Dialect, QueryInfo, SqlDescriber, SqlOptions,
};
use ebpf_core::protocol::{ConnFacts, Describer, MetricFeed, Operation, ProtocolsConfig, Record, Role, SpanName};
use ebpf_core::spans::{to_span, IdGenerator};
use ebpf_core::stats::Stats;
use ebpf_core::{Config, StatsSnapshot};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_yaml_ng::Value as Yaml;

/// Product-specific names: few, namespaced, documented in README.
const PROJECT_NAMES: &[&str] = &[
    "ebpf_receiver.redis.transaction",
    "ebpf_receiver.cache.hits",
    "ebpf_receiver.cache.misses",
    ebpf_core::protocol::mqtt::telemetry::QOS,
    "ebpf_receiver.http2.headers_incomplete",
];

/// Product-specific attribute keys of the flow and DNS metrics, documented in README.
const FLOW_PROJECT_NAMES: &[&str] = &["ebpf_receiver.flow.role", "ebpf_receiver.dns.question.type"];

/// Flow metric names the conventions do not define, documented in README:
/// the OpenTelemetry eBPF network reducer's (kept so that its users'
/// dashboards work; `REDUCER_METRIC_NAMES`), and ours beside them.
const FLOW_PROJECT_METRIC_NAMES: &[&str] = &[
    "tcp.bytes",
    "tcp.packets",
    "tcp.retrans",
    "tcp.new_sockets",
    "tcp.active",
    "tcp.rtt.average",
    "tcp.rtt.num_measurements",
    "tcp.syn_timeouts",
    "tcp.resets",
    "udp.bytes",
    "udp.packets",
    "udp.active",
    "dns.responses",
    "dns.timeouts",
    "dns.client.duration.average",
    "dns.server.duration.average",
    "tcp.rtt",
    "tcp.handshake.duration",
    "tcp.connection.failures",
];

/// Names the OpenTelemetry specification (not the semantic conventions)
/// defines: the metrics SDK's cardinality-overflow attribute.
const SPEC_NAMES: &[&str] = &["otel.metric.overflow"];

/// Product-specific metric names: the receiver's self-telemetry, declared
/// with its counters (`ebpf_core::stats::COUNTERS`), namespaced, and in the
/// README's table (`tests/readme.rs`).
const PROJECT_METRIC_NAMES: &[&str] = &SELF_METRIC_NAMES;

fn semconv_dir() -> PathBuf {
    std::env::var_os("OTEL_EBPF_SEMCONV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/semconv"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

/// attribute id → deprecated?
fn registry() -> HashMap<String, bool> {
    let root = semconv_dir();
    assert!(
        root.join("model").is_dir(),
        "semantic-conventions registry not found at {} (set OTEL_EBPF_SEMCONV_DIR)",
        root.display()
    );
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    let mut attrs = HashMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        {
            // Two layouts coexist: `groups[].attributes[].id` and, in
            // `file_format: definition/2` files, top-level `attributes[].key`.
            let grouped =
                doc.get("groups").and_then(Yaml::as_sequence).into_iter().flatten().filter_map(|g| g.get("attributes"));
            for list in grouped.chain(doc.get("attributes")) {
                for a in list.as_sequence().into_iter().flatten() {
                    if let Some(id) = a.get("id").or_else(|| a.get("key")).and_then(Yaml::as_str) {
                        let deprecated = a.get("deprecated").is_some();
                        let e = attrs.entry(id.to_string()).or_insert(deprecated);
                        *e = *e && deprecated;
                    }
                }
            }
        }
    }
    attrs
}

fn full_genai_call() -> GenAiCall {
    let text = || Some("x".to_string());
    GenAiCall {
        provider: "openai".into(),
        operation: "chat".into(),
        request_model: text(),
        response_model: text(),
        response_id: text(),
        stream: true,
        input_tokens: Some(1),
        output_tokens: Some(2),
        cache_read_input_tokens: Some(3),
        cache_creation_input_tokens: Some(4),
        reasoning_output_tokens: Some(5),
        finish_reasons: vec!["stop".into()],
        error_type: Some("rate_limit_exceeded".into()),
        request_max_tokens: Some(6),
        request_temperature: Some(0.5),
        request_top_p: Some(0.9),
        request_top_k: Some(40.0),
        request_seed: Some(7),
        request_frequency_penalty: Some(0.1),
        request_presence_penalty: Some(0.2),
        request_stop_sequences: vec!["END".into()],
        request_choice_count: Some(2),
        system_instructions: text(),
        input_messages: text(),
        output_messages: text(),
        problem: None,
    }
}

/// SQL operations of every command kind and outcome, from both sides.
fn sql_samples() -> Vec<DbOperation> {
    let query =
        QueryInfo::analyze(b"SELECT * FROM orders WHERE id = 1", true, Dialect::Postgres, SqlOptions::default());
    let error = |code: &str, sqlstate: Option<&str>| {
        DbStatus::Error(DbError { code: code.into(), sqlstate: sqlstate.map(Into::into) })
    };
    let mut out = Vec::new();
    for role in [Role::Client, Role::Server] {
        for (system, command, status) in [
            ("postgresql", DbCommand::Query, DbStatus::Ok),
            ("postgresql", DbCommand::Execute, error("42P01", Some("42P01"))),
            ("postgresql", DbCommand::Prepare, error("_OTHER", None)),
            ("mysql", DbCommand::Query, error("1146", Some("42S02"))),
            ("mariadb", DbCommand::Other("INIT_DB"), DbStatus::Unknown),
        ] {
            out.push(DbOperation {
                system,
                command,
                query: Some(query.clone()),
                start_ns: 1,
                end_ns: 2_000_000,
                status,
                returned_rows: Some(1),
                affected_rows: None,
                namespace: Some("shop".into()),
                role,
            });
        }
    }
    out
}

/// An HTTP exchange with its connection, as the tracker reports it.
struct Exchange {
    http: HttpExchange,
    process: Arc<ProcessIdentity>,
    endpoints: Option<Endpoints>,
    tls: bool,
}

impl Exchange {
    fn facts(&self) -> ConnFacts {
        ConnFacts { endpoints: self.endpoints, tls: self.tls }
    }
}

/// The span of an exchange (an LLM API call's when `call` is given).
fn span_of(
    ex: &Exchange,
    route: Option<&str>,
    call: Option<&GenAiCall>,
    clock: &WallClock,
    ids: &mut IdGenerator,
) -> Span {
    let mut span = None;
    describe_with(&ex.http, &ex.facts(), route, call, &mut |op| span = Some(to_span(op, clock, ids)));
    span.expect("one operation per exchange")
}

fn http_span(ex: &Exchange, route: Option<&str>, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    span_of(ex, route, None, clock, ids)
}

fn genai_span(ex: &Exchange, route: Option<&str>, call: &GenAiCall, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    span_of(ex, route, Some(call), clock, ids)
}

/// Records the metrics of an exchange (and of its LLM API call).
fn record(metrics: &mut Metrics, ex: &Exchange, route: Option<&str>, call: Option<&GenAiCall>) {
    describe_with(&ex.http, &ex.facts(), route, call, &mut |op| metrics.observe(&ex.process, op));
}

fn exchange(role: Role, method: &str, status: Option<u16>) -> Exchange {
    Exchange {
        http: HttpExchange {
            role,
            method: method.into(),
            target: "/a?b=c".into(),
            version: HttpVersion::Http11,
            host: Some("svc:8080".into()),
            status,
            request_start_ns: 1,
            request_end_ns: 2,
            response_start_ns: Some(3),
            response_end_ns: 4,
            request_body_size: 5,
            response_body_size: 6,
            bodies: None,
        },
        process: Arc::new(ProcessIdentity::from_comm(1, "x")),
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 8080),
            peer: ("10.0.0.2".parse().unwrap(), 5000),
        }),
        tls: false,
    }
}

/// Redis commands with every attribute set: an error, a script, a
/// database index, a transaction, no response.
fn redis_operations(role: Role) -> Vec<RedisOperation> {
    let base = RedisOperation {
        role,
        command: Some("EVALSHA".into()),
        subcommand: None,
        args: 3,
        database: Some(2),
        procedure: Some("e0e1f9fabfc9d4800c877a703b823ac0578ff8db".into()),
        outcome: redis::Outcome::Error(Some("NOSCRIPT".into())),
        transaction: Some(Transaction::Executed),
        cut: false,
        request_start_ns: 1,
        request_end_ns: 2,
        response_start_ns: Some(3),
        response_end_ns: 4,
        request_bytes: 50,
        response_bytes: 20,
    };
    vec![
        base.clone(),
        RedisOperation { outcome: redis::Outcome::Error(None), ..base.clone() },
        RedisOperation { outcome: redis::Outcome::NoResponse, ..base.clone() },
        RedisOperation {
            command: Some("CLIENT".into()),
            subcommand: Some("SETNAME".into()),
            procedure: None,
            outcome: redis::Outcome::Reply(ReplyKind::SimpleString),
            ..base
        },
    ]
}

/// memcached commands with every attribute set: a multi-key get, an error, no response.
fn memcached_operations(role: Role) -> Vec<MemcachedOperation> {
    let base = MemcachedOperation {
        role,
        command: Some("get".into()),
        keys: 3,
        hits: Some(2),
        outcome: memcached::Outcome::Reply(Code::End),
        quiet: false,
        cut: false,
        request_start_ns: 1,
        request_end_ns: 2,
        response_start_ns: Some(3),
        response_end_ns: 4,
        request_bytes: 20,
        response_bytes: 40,
    };
    vec![
        base.clone(),
        MemcachedOperation { hits: None, outcome: memcached::Outcome::Reply(Code::ServerError), ..base.clone() },
        MemcachedOperation { hits: None, outcome: memcached::Outcome::NoResponse, ..base },
    ]
}

/// Describes the key/value samples, handing each operation to `f`.
fn kv_operations(mut f: impl FnMut(&Operation<'_>)) {
    let facts = exchange(Role::Client, "GET", None).facts();
    for role in [Role::Server, Role::Client] {
        for op in redis_operations(role) {
            redis::telemetry::describe(&op, &facts, &mut f);
        }
        for op in memcached_operations(role) {
            memcached::telemetry::describe(&op, &facts, &mut f);
        }
    }
}

/// Every messaging and MongoDB operation shape, both roles, every field
/// set, each status: handed to `emit` as described.
fn messaging_and_mongodb_samples(emit: &mut dyn FnMut(&Operation<'_>)) {
    let facts = ConnFacts {
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 40000),
            peer: ("10.0.0.2".parse().unwrap(), 9092),
        }),
        tls: false,
    };
    for role in [Role::Client, Role::Server] {
        for (api, status) in [
            (Api::Produce, KafkaStatus::Ok),
            (Api::Produce, KafkaStatus::NoResponse),
            (Api::Fetch, KafkaStatus::Error(3)),
            (Api::Fetch, KafkaStatus::Error(999)),
            (Api::OffsetCommit, KafkaStatus::Ok),
            (Api::JoinGroup, KafkaStatus::Unknown),
            (Api::Other(72), KafkaStatus::Ok),
        ] {
            let op = KafkaOperation {
                api,
                api_version: 9,
                correlation_id: 1,
                client_id: Some("app".into()),
                topic: Some("orders".into()),
                topic_id: None,
                topic_count: 1,
                partition: Some(3),
                group: Some("billing".into()),
                message_count: Some(10),
                status,
                fire_and_forget: false,
                start_ns: 1,
                end_ns: 2,
                role,
            };
            assert!(ebpf_core::protocol::kafka::telemetry::describe(&op, &facts, emit));
        }
        for status in [
            MongoStatus::Ok,
            MongoStatus::Error { code: Some(11000), code_name: Some("DuplicateKey".into()) },
            MongoStatus::Error { code: None, code_name: None },
            MongoStatus::NoResponse,
        ] {
            let op = MongoOperation {
                command: Some("find".into()),
                collection: Some("orders".into()),
                database: Some("shop".into()),
                op_code: OP_MSG,
                request_id: 1,
                batch_size: Some(2),
                returned_documents: Some(3),
                status,
                compressed: false,
                start_ns: 1,
                end_ns: 2,
                role,
            };
            assert!(ebpf_core::protocol::mongodb::telemetry::describe(&op, &facts, emit));
        }
        for (command, sent, status) in [
            (MqttCommand::Connect, true, MqttStatus::Error(5)),
            (MqttCommand::Publish, true, MqttStatus::Ok),
            (MqttCommand::Publish, false, MqttStatus::NoResponse),
            (MqttCommand::Subscribe, true, MqttStatus::Error(0x87)),
            (MqttCommand::Unsubscribe, true, MqttStatus::Ok),
            (MqttCommand::Ping, true, MqttStatus::Ok),
        ] {
            let op = MqttOperation {
                command,
                sent,
                protocol_level: Some(4),
                client_id: Some("sensor-1".into()),
                topic: Some("sensors/1".into()),
                topic_count: 1,
                qos: Some(1),
                retain: false,
                packet_id: Some(7),
                payload_size: Some(9),
                status,
                start_ns: 1,
                end_ns: 2,
                role,
            };
            ebpf_core::protocol::mqtt::telemetry::describe(&op, &facts, emit);
        }
    }
}

/// HTTP/2 streams of every kind the description tells apart: complete
/// requests, a reset, one whose headers were not all decoded, gRPC calls
/// that succeeded, failed, hit a method the server lacks, or lost their
/// status; from both sides.
fn http2_streams() -> Vec<Http2Stream> {
    let base = |role| Http2Stream {
        role,
        stream_id: 1,
        method: Some("GET".into()),
        path: Some("/a".into()),
        scheme: Some("https".into()),
        authority: Some("svc:8443".into()),
        status: Some(200),
        headers_complete: true,
        request_start_ns: 1,
        request_end_ns: 2,
        response_start_ns: Some(3),
        response_end_ns: 4,
        request_body_size: 5,
        response_body_size: 6,
        end: StreamEnd::Complete,
        grpc: None,
    };
    let grpc = |role, status, end| Http2Stream {
        method: Some("POST".into()),
        path: Some("/shop.Orders/Get".into()),
        end,
        grpc: Some(GrpcCall {
            method: Some("shop.Orders/Get".into()),
            status,
            request_messages: Some(1),
            response_messages: Some(1),
        }),
        ..base(role)
    };
    let mut out = Vec::new();
    for role in [Role::Server, Role::Client] {
        out.push(base(role));
        out.push(Http2Stream { status: Some(503), ..base(role) });
        out.push(Http2Stream { status: None, end: StreamEnd::Reset { code: Some(8), by_client: true }, ..base(role) });
        out.push(Http2Stream { method: None, path: None, headers_complete: false, ..base(role) });
        out.push(Http2Stream { method: Some("PURGE".into()), ..base(role) });
        out.push(grpc(role, Some(0), StreamEnd::Complete));
        out.push(grpc(role, Some(13), StreamEnd::Complete));
        out.push(grpc(role, Some(12), StreamEnd::Complete));
        out.push(grpc(role, None, StreamEnd::ConnectionClosed));
        out.push(Http2Stream { headers_complete: false, ..grpc(role, Some(0), StreamEnd::Complete) });
    }
    out
}

/// Describes each stream the way the pipeline does, handing each operation to `f`.
fn describe_http2(mut f: impl FnMut(&Operation<'_>)) {
    let mut describer = Describer::new(&Config::default(), Arc::new(Stats::default()));
    let facts = ConnFacts {
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 8443),
            peer: ("10.0.0.2".parse().unwrap(), 5000),
        }),
        tls: true,
    };
    for stream in http2_streams() {
        describer.describe(&Record::Http2(stream), &facts, &mut |op| f(op));
    }
}

#[test]
fn every_emitted_attribute_is_a_current_convention() {
    let registry = registry();
    assert!(registry.len() > 500, "registry looks empty: {} attributes", registry.len());
    let mut keys = Vec::new();
    let ids = &mut IdGenerator::new();
    let clock = WallClock::new();
    for role in [Role::Server, Role::Client] {
        for (method, status) in [("GET", Some(200)), ("POST", Some(500)), ("PURGE", Some(404)), ("GET", None)] {
            let span = http_span(&exchange(role, method, status), Some("/a/{id}"), &clock, ids);
            keys.extend(span.attributes.into_iter().map(|kv| kv.key));
        }
        // An LLM call with every GenAI field set (content capture included).
        for status in [Some(200), Some(429), None] {
            let mut ex = exchange(role, "POST", status);
            ex.http.bodies = Some(Box::new(KeptBodies { response_body_start_ns: Some(3), ..KeptBodies::default() }));
            let span = genai_span(&ex, None, &full_genai_call(), &clock, ids);
            keys.extend(span.attributes.into_iter().map(|kv| kv.key));
        }
    }
    // Database operations: every command kind, outcome and side.
    let sql = SqlDescriber::new(&ProtocolsConfig::default());
    for op in sql_samples() {
        let facts = exchange(op.role, "GET", None).facts();
        sql.describe(&op, &facts, &mut |o| {
            keys.extend(to_span(o, &clock, ids).attributes.into_iter().map(|kv| kv.key))
        });
    }
    kv_operations(|op| {
        keys.extend(to_span(op, &clock, &mut IdGenerator::new()).attributes.into_iter().map(|kv| kv.key))
    });
    describe_http2(|op| {
        let span = to_span(op, &clock, &mut IdGenerator::new());
        keys.extend(span.attributes.into_iter().map(|kv| kv.key));
    });
    for key in [
        "rpc.system.name",
        "rpc.method_original",
        "rpc.response.status_code",
        "ebpf_receiver.http2.headers_incomplete",
        "gen_ai.usage.input_tokens",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.input.messages",
        "db.query.summary",
        "db.query.text",
        "db.response.status_code",
        "db.namespace",
        "db.collection.name",
        "db.stored_procedure.name",
    ] {
        assert!(keys.iter().any(|k| k == key), "the sample spans lack {key}");
    }
    messaging_and_mongodb_samples(&mut |op| {
        keys.extend(to_span(op, &clock, ids).attributes.into_iter().map(|kv| kv.key))
    });
    for key in [
        "gen_ai.usage.input_tokens",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.input.messages",
        "messaging.batch.message_count",
        "messaging.consumer.group.name",
        "messaging.destination.subscription.name",
        "db.response.returned_rows",
        "db.response.status_code",
    ] {
        assert!(keys.iter().any(|k| k == key), "the sample spans lack {key}");
    }
    for key in PROJECT_NAMES {
        assert!(keys.iter().any(|k| k == key), "{key} is never emitted: drop it from PROJECT_NAMES");
    }
    // The project's own names are documented in the README.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    for name in PROJECT_NAMES {
        assert!(readme.contains(name), "{name} is not documented in README.md");
    }
    // Every field set, the opt-in command line included, so every key the resource can carry appears.
    let identity = ProcessIdentity {
        pid: 1,
        service_name: "s".into(),
        executable_name: "e".into(),
        executable_path: Some("/bin/e".into()),
        service_namespace: Some("ns".into()),
        service_instance_id: None,
        parent_pid: Some(0),
        start_time_ticks: Some(10),
        owner: Some("root".into()),
        command_line: Some("/bin/e --flag".into()),
        container_id: Some("c59e8338a22cc3f71e41b0f447228b574ecc8c9d76508b6810543ec273e5f2a9".into()),
        k8s_pod_uid: Some("98580e16-1a60-4b4a-830e-d7cca11d393b".into()),
    };
    let host = HostInfo {
        host_name: "h".into(),
        host_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
        boot_id: Some("8f08bb5f-fb8b-451f-af09-ef64490197ae".into()),
    };
    let resource = process_resource(&identity, &host);
    let resource_keys: Vec<String> = resource.attributes.into_iter().map(|kv| kv.key).collect();
    for key in [
        "service.name",
        "service.namespace",
        "service.instance.id",
        "process.pid",
        "process.parent_pid",
        "process.executable.name",
        "process.executable.path",
        "process.command_line",
        "process.owner",
        "host.name",
        "host.id",
        "container.id",
        "k8s.pod.uid",
    ] {
        assert!(resource_keys.iter().any(|k| k == key), "the sample resource lacks {key}");
    }
    keys.extend(resource_keys);
    keys.sort();
    keys.dedup();
    for key in &keys {
        if PROJECT_NAMES.contains(&key.as_str()) || FLOW_PROJECT_NAMES.contains(&key.as_str()) {
            continue;
        }
        match registry.get(key) {
            None => panic!("{key} is not in the semantic-conventions registry"),
            Some(true) => panic!("{key} is deprecated in the semantic-conventions registry"),
            Some(false) => {}
        }
    }
    // The check itself must be able to fail.
    assert_eq!(registry.get("http.method"), Some(&true), "http.method should read as deprecated");
    assert!(!registry.contains_key("http.not_a_convention"));
}

/// A metric of the registry.
#[derive(Debug)]
struct MetricDef {
    deprecated: bool,
    instrument: String,
    unit: String,
}

/// metric name → definition, from both layouts: `groups[]` with
/// `type: metric` and `metric_name`, and in `file_format: definition/2` files
/// top-level `metrics[]` with `name`.
fn metric_registry() -> HashMap<String, MetricDef> {
    let mut files = Vec::new();
    yaml_files(&semconv_dir(), &mut files);
    let mut metrics: HashMap<String, MetricDef> = HashMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let grouped = doc
            .get("groups")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
            .filter(|g| g.get("type").and_then(Yaml::as_str) == Some("metric"))
            .filter_map(|g| Some((g.get("metric_name")?.as_str()?, g)));
        let flat = doc
            .get("metrics")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m.get("name")?.as_str()?, m)));
        for (name, m) in grouped.chain(flat) {
            let text = |key| m.get(key).and_then(Yaml::as_str).unwrap_or_default().to_string();
            let def = MetricDef {
                deprecated: m.get("deprecated").is_some(),
                instrument: text("instrument"),
                unit: text("unit"),
            };
            match metrics.get_mut(name) {
                // Current if any definition is.
                Some(known) if known.deprecated && !def.deprecated => *known = def,
                Some(_) => {}
                None => {
                    metrics.insert(name.to_string(), def);
                }
            }
        }
    }
    metrics
}

/// One of every kind of HTTP series (both roles, errors, no response, a
/// route, an overflow) and the self-telemetry, decoded.
fn sample_metrics() -> ExportMetricsServiceRequest {
    let mut metrics = Metrics::new(&MetricsConfig { max_series_per_metric: 3, ..MetricsConfig::default() });
    for role in [Role::Server, Role::Client] {
        for (method, status) in [("GET", Some(200)), ("POST", Some(500)), ("PURGE", Some(404)), ("GET", None)] {
            record(&mut metrics, &exchange(role, method, status), Some("/a/{id}"), None);
        }
    }
    assert!(metrics.overflowed() > 0, "the sample should reach the overflow series");
    let process = Arc::new(ProcessIdentity::from_comm(2, "llm"));
    for role in [Role::Client, Role::Server] {
        for status in [Some(200), Some(429)] {
            let mut ex = exchange(role, "POST", status);
            ex.process = process.clone();
            ex.http.response_end_ns = 2_000_000_000;
            ex.http.bodies = Some(Box::new(KeptBodies { response_body_start_ns: Some(3), ..KeptBodies::default() }));
            record(&mut metrics, &ex, None, Some(&full_genai_call()));
        }
    }
    let sql = SqlDescriber::new(&ProtocolsConfig::default());
    for op in sql_samples() {
        let ex = exchange(op.role, "GET", None);
        sql.describe(&op, &ex.facts(), &mut |o| metrics.observe(&ex.process, o));
    }
    // HTTP/2 requests and gRPC calls, as described.
    let process = Arc::new(ProcessIdentity::from_comm(4, "h2"));
    describe_http2(|op| metrics.observe(&process, op));
    // The instruments of the protocols to come (databases, messaging),
    // with the attributes the conventions give them.
    let process = Arc::new(ProcessIdentity::from_comm(3, "app"));
    let mut op = Operation::new(SpanName::new("SELECT", Some("orders")), SpanKind::Client, 1, 2);
    let mut db = MetricFeed::new(&DB_CLIENT);
    for (key, value) in [
        ("db.system.name", "postgresql"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "orders"),
        ("db.namespace", "shop"),
        ("db.query.summary", "SELECT orders"),
        ("db.response.status_code", "42P01"),
        ("error.type", "42P01"),
        ("server.address", "db"),
    ] {
        db.attr(key, value);
    }
    db.attr("server.port", 5432i64);
    db.value(DURATION, 1_000_000);
    op.metrics.push(db);
    for family in [&RPC_SERVER, &RPC_CLIENT] {
        let mut rpc = MetricFeed::new(family);
        rpc.attr("rpc.system.name", "grpc");
        rpc.attr("rpc.method", "shop.Orders/Get");
        rpc.attr("rpc.response.status_code", "OK");
        rpc.attr("server.address", "orders");
        rpc.attr("server.port", 50051i64);
        rpc.value(DURATION, 2_000_000);
        op.metrics.push(rpc);
    }
    let mut queue = MetricFeed::new(&MESSAGING_CLIENT);
    for (key, value) in [
        ("messaging.system", "kafka"),
        ("messaging.destination.name", "orders"),
        ("messaging.destination.partition.id", "1"),
        ("messaging.operation.name", "send"),
        ("messaging.operation.type", "send"),
        ("messaging.consumer.group.name", "billing"),
        ("error.type", "timeout"),
        ("server.address", "broker"),
    ] {
        queue.attr(key, value);
    }
    queue.value(messaging::DURATION, 3_000_000);
    queue.value(messaging::SENT, 10);
    queue.value(messaging::CONSUMED, 7);
    op.metrics.push(queue);
    metrics.observe(&process, &op);
    kv_operations(|op| metrics.observe(&process, op));
    // The messaging and MongoDB feeds as the protocols describe them.
    messaging_and_mongodb_samples(&mut |op| metrics.observe(&process, op));
    let host =
        HostInfo { host_name: "h".into(), host_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()), boot_id: None };
    let stats = StatsSnapshot::default();
    let batch = metrics.collect(1, &host, Some(&stats)).expect("a batch");
    let mut req = ExportMetricsServiceRequest::decode(batch.data.as_slice()).unwrap();
    req.resource_metrics.extend(sample_flows().collect(2, &host));
    req
}

/// One of every kind of flow and DNS series: both roles, a DNS name and a
/// local peer service, failures, UDP, answers and timeouts on both sides,
/// and an overflow series.
fn sample_flows() -> Flows {
    let config = MetricsConfig { max_series_per_metric: 3, ..MetricsConfig::default() };
    let mut flows = Flows::new(&config, &DnsConfig::default(), 1);
    let processes = [Arc::new(ProcessIdentity::from_comm(3, "app")), Arc::new(ProcessIdentity::from_comm(4, "dns"))];
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let m = flows.metrics_mut();
    for (i, role) in [Role::Client, Role::Server].into_iter().enumerate() {
        let p = &processes[i];
        let key = FlowKey {
            peer: ip(if i == 0 { "10.0.0.2" } else { "fd00::2" }),
            server_port: 443,
            role,
            peer_name: Some(Arc::from("api.example.com")),
            peer_service: Some(Arc::from("checkout")),
        };
        let activity = TcpActivity {
            bytes_sent: 1,
            bytes_received: 2,
            segs_out: 3,
            segs_in: 4,
            retrans: 5,
            new_socket: true,
            live: true,
            rtt_us: Some(20_000),
        };
        m.record_tcp(p, &key, &activity);
        m.record_failure(p, &key, FailReason::Refused);
        m.record_failure(p, &key, FailReason::Timeout);
        m.record_handshake(p, &key, 1_000_000);
        m.record_reset(p, &key);
        m.record_udp(p, &key, (1, 1), (2, 1));
        for rcode in [Some(0), Some(3), None] {
            let key = DnsKey {
                role,
                peer: ip("127.0.0.53"),
                transport: Transport::Udp,
                name: Arc::from("api.example.com"),
                qtype: 28,
                rcode,
            };
            m.record_dns(p, &key, rcode.map(|_| 300_000));
        }
    }
    for port in 0..4 {
        let key = FlowKey {
            peer: ip("10.0.0.3"),
            server_port: port,
            role: Role::Client,
            peer_name: None,
            peer_service: None,
        };
        m.record_tcp(&processes[0], &key, &TcpActivity::default());
    }
    assert!(flows.overflowed() > 0, "the sample should reach the overflow series");
    flows
}

#[test]
fn every_emitted_metric_is_a_current_convention() {
    let registry = metric_registry();
    let attributes = registry_attributes_checker();
    assert!(registry.len() > 300, "metric registry looks empty: {} metrics", registry.len());
    let req = sample_metrics();

    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for rm in &req.resource_metrics {
        keys.extend(rm.resource.iter().flat_map(|r| &r.attributes).map(|kv| kv.key.clone()));
        for metric in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            names.insert(metric.name.clone());
            let (instrument, point_keys): (&str, Vec<&str>) = match &metric.data {
                Some(Data::Histogram(h)) => {
                    ("histogram", h.data_points.iter().flat_map(|p| &p.attributes).map(|kv| kv.key.as_str()).collect())
                }
                Some(Data::Sum(s)) => (
                    if s.is_monotonic { "counter" } else { "updowncounter" },
                    s.data_points.iter().flat_map(|p| &p.attributes).map(|kv| kv.key.as_str()).collect(),
                ),
                Some(Data::Gauge(g)) => {
                    ("gauge", g.data_points.iter().flat_map(|p| &p.attributes).map(|kv| kv.key.as_str()).collect())
                }
                other => panic!("{}: unexpected data {other:?}", metric.name),
            };
            keys.extend(point_keys.into_iter().map(str::to_string));
            if PROJECT_METRIC_NAMES.contains(&metric.name.as_str()) {
                assert!(metric.name.starts_with("ebpf_receiver."), "{} is not namespaced", metric.name);
                continue;
            }
            if FLOW_PROJECT_METRIC_NAMES.contains(&metric.name.as_str()) {
                // Durations in seconds, whatever the reducer's "us" said.
                assert_ne!(metric.unit, "us", "{}", metric.name);
                continue;
            }
            let def = registry
                .get(&metric.name)
                .unwrap_or_else(|| panic!("metric {} is not in the semantic-conventions registry", metric.name));
            assert!(!def.deprecated, "metric {} is deprecated in the semantic-conventions registry", metric.name);
            assert_eq!(metric.unit, def.unit, "unit of {}", metric.name);
            assert_eq!(instrument, def.instrument, "instrument of {}", metric.name);
        }
    }
    for key in &keys {
        if !SPEC_NAMES.contains(&key.as_str()) {
            attributes(key);
        }
    }

    // The sample covers every name the receiver can emit, and the allowlists
    // hold nothing that is not needed.
    let flow_names: Vec<&str> = FLOW_METRICS.iter().map(|m| m.name).collect();
    let all: BTreeSet<String> =
        metric_names().iter().chain(&SELF_METRIC_NAMES).chain(&flow_names).map(|s| s.to_string()).collect();
    assert_eq!(names, all, "the sample misses metrics, or the name lists are stale");
    for name in PROJECT_METRIC_NAMES.iter().chain(FLOW_PROJECT_METRIC_NAMES) {
        assert!(!registry.contains_key(*name), "{name} is a convention now: drop it from the project's names");
    }
    for name in REDUCER_METRIC_NAMES {
        assert!(FLOW_PROJECT_METRIC_NAMES.contains(&name), "{name}");
    }
    for key in FLOW_PROJECT_NAMES {
        assert!(keys.contains(*key), "{key} is never emitted: drop it from FLOW_PROJECT_NAMES");
    }
    for key in SPEC_NAMES {
        assert!(keys.contains(*key), "{key} is never emitted: drop it from SPEC_NAMES");
    }
    assert!(!keys.contains("url.path"), "url.path on a metric");

    // The check itself must be able to fail, and reads both layouts.
    assert!(registry["v8js.heap.space.available_size"].deprecated, "a deprecated metric should read as deprecated");
    assert_eq!(registry["http.server.request.duration"].instrument, "histogram");
    assert_eq!(registry["hw.fan.speed"].unit, "rpm", "definition/2 metrics should be read");
    assert!(!registry.contains_key("http.server.not_a_metric"));
}

/// Panics unless `key` is a current registry attribute or a project name.
fn registry_attributes_checker() -> impl Fn(&str) {
    let registry = registry();
    move |key| {
        if PROJECT_NAMES.contains(&key) || FLOW_PROJECT_NAMES.contains(&key) {
            return;
        }
        match registry.get(key) {
            None => panic!("{key} is not in the semantic-conventions registry"),
            Some(true) => panic!("{key} is deprecated in the semantic-conventions registry"),
            Some(false) => {}
        }
    }
}

#[test]
fn project_names_are_namespaced_and_documented() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let registry = registry();
    for name in PROJECT_NAMES {
        assert!(name.starts_with("ebpf_receiver."), "{name} is not namespaced");
        assert!(!registry.contains_key(*name), "{name} is a convention now: use the convention's name");
        assert!(readme.contains(&format!("| `{name}` |")), "{name} is not in README.md's table of project attributes");
    }
}
