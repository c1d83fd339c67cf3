//! Kafka, MongoDB and MQTT through the real kernel: the real servers
//! (franz-go's kfake, FerretDB, mosquitto; started once for the file) and
//! the clients users run (franz-go, kcat, kafka-python; pymongo;
//! mosquitto_pub/sub, paho-mqtt), with exact span and message counts on
//! both sides. The first tests check the harness alone (no probes).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::messaging::{
    ferretdb, franz_client_command, kafka, mosquitto, output, MQTT_PASSWORD, MQTT_USER,
};
use integration_tests::metric_points::{describe_points, metric_points, MetricPoint};
use integration_tests::servers::python;
use integration_tests::util::repo_root;
use integration_tests::{require_root, unique_token, Receiver, SpanRec, WAIT};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

// ---------------------------------------------------------------------------
// The harness alone.

#[test]
fn kafka_broker_serves_franz_go_kcat_and_kafka_python() {
    let k = kafka();
    let broker = format!("127.0.0.1:{}", k.port);
    let topic = unique_token("harness");
    assert_eq!(run(franz_client_command(&topic, None, &["produce", "30", "10"])).out.trim(), "produced 30");
    let lines = output(Command::new("kcat").args(["-b", &broker, "-t", &topic, "-C", "-c", "30", "-e", "-q"]));
    assert_eq!(lines.lines().count(), 30, "{lines}");
    let py = output(
        Command::new(python())
            .arg(repo_root().join("ebpf-core/tests/fixtures/kafka/record/kpy_session.py"))
            .arg(&broker),
    );
    assert_eq!(py.trim(), "kafka-python consumed 5");
    assert_eq!(kafka().pid, k.pid, "started once");
    eprintln!("kafka (kfake): build {:?} start {:?}", k.build, k.start);
}

#[test]
fn ferretdb_serves_pymongo() {
    let f = ferretdb();
    let script = format!(
        "import pymongo\n\
         c = pymongo.MongoClient('mongodb://127.0.0.1:{}/', serverSelectionTimeoutMS=10000)\n\
         c.harness.items.drop()\n\
         c.harness.items.insert_many([{{'n': i}} for i in range(5)])\n\
         print(c.harness.items.count_documents({{}}))\n",
        f.port
    );
    assert_eq!(output(Command::new(python()).args(["-c", &script])).trim(), "5");
    eprintln!("ferretdb: build {:?} start {:?}", f.build, f.start);
}

#[test]
fn mosquitto_refuses_bad_passwords() {
    let m = mosquitto();
    let auth = m.auth_port.expect("auth listener").to_string();
    let refused = Command::new("mosquitto_pub")
        .args(["-p", &auth, "-u", MQTT_USER, "-P", "wrong", "-t", "x", "-m", "1"])
        .output()
        .expect("mosquitto_pub");
    assert!(!refused.status.success());
    output(Command::new("mosquitto_pub").args([
        "-p",
        &auth,
        "-u",
        MQTT_USER,
        "-P",
        MQTT_PASSWORD,
        "-t",
        "x",
        "-m",
        "1",
    ]));
    eprintln!("mosquitto: setup {:?} start {:?}", m.build, m.start);
}

// ---------------------------------------------------------------------------
// Helpers.

/// A client run to completion.
struct Run {
    pid: u32,
    out: String,
}

/// Runs `cmd` (stdin: `input`) to completion; panics with its output if it fails.
fn run_with(mut cmd: Command, input: Option<&str>) -> Run {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    if let Some(text) = input {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run { pid, out: String::from_utf8_lossy(&out.stdout).into_owned() }
}

fn run(cmd: Command) -> Run {
    run_with(cmd, None)
}

fn python_script(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.args(["-c", script]).args(args);
    cmd
}

/// A receiver tracing the connections to `ports` only, with metrics every
/// 500 ms in delta temporality (every batch's points add up to the totals).
fn receiver(ports: &[u16]) -> Receiver {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}},
            "metrics": {{"interval_ms": 500, "temporality": "delta"}},
            "selection": {{"include": {{"ports": [{}]}}}}}}"#,
        ports.join(",")
    ))
}

fn kind(s: &SpanRec) -> &'static str {
    match s.kind() {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        _ => "OTHER",
    }
}

/// A span attribute as text (ints in decimal).
fn text(s: &SpanRec, key: &str) -> Option<String> {
    s.str_attr(key).map(str::to_string).or_else(|| s.int_attr(key).map(|i| i.to_string()))
}

/// `name KIND` of `pid`'s spans, counted.
fn shape(spans: &[SpanRec], pid: u32) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in spans.iter().filter(|s| s.pid() == Some(pid)) {
        *m.entry(format!("{} {}", s.span.name, kind(s))).or_default() += 1;
    }
    m
}

/// `pid`'s spans named `name`.
fn named<'a>(spans: &'a [SpanRec], pid: u32, name: &str) -> Vec<&'a SpanRec> {
    spans.iter().filter(|s| s.pid() == Some(pid) && s.span.name == name).collect()
}

/// The sum of `messaging.batch.message_count` over spans.
fn records(spans: &[&SpanRec]) -> i64 {
    spans.iter().map(|s| s.int_attr("messaging.batch.message_count").unwrap_or(0)).sum()
}

/// The sum of `name`'s points (counter values, histogram counts) of `pid`
/// whose attributes include `with`.
fn metric_total(points: &[MetricPoint], name: &str, pid: u32, with: &[(&str, &str)]) -> u64 {
    points
        .iter()
        .filter(|p| p.name == name && p.pid == Some(pid) && with.iter().all(|(k, v)| p.attr(k) == Some(v)))
        .map(|p| if p.kind == "histogram" { p.count } else { p.sum as u64 })
        .sum()
}

fn dump(spans: &[SpanRec], pids: &[u32]) -> String {
    spans
        .iter()
        .filter(|s| s.pid().is_some_and(|p| pids.contains(&p)))
        .map(|s| format!("  {}\n", s.describe()))
        .collect()
}

// ---------------------------------------------------------------------------
// Kafka.

#[test]
fn kafka_produce_and_consume_counts_are_exact_for_every_client_and_the_broker() {
    if !require_root() {
        return;
    }
    let k = kafka();
    let broker = format!("127.0.0.1:{}", k.port);
    let (t_franz, t_kcat, t_py) = (unique_token("franz"), unique_token("kcat"), unique_token("kpy"));
    let group = unique_token("billing");
    let mut rx = receiver(&[k.port]);
    let franz_p = run(franz_client_command(&t_franz, None, &["produce", "30", "10"]));
    let kcat_p = run_with(
        {
            let mut c = Command::new("kcat");
            c.args(["-b", &broker, "-t", &t_kcat, "-P", "-p", "0"]);
            c
        },
        Some("a\nb\nc\nd\ne\nf\ng\n"),
    );
    let franz_c = run(franz_client_command(&t_franz, Some(&group), &["consume", "30"]));
    assert_eq!(franz_c.out.trim(), "consumed 30");
    let kcat_c = run({
        let mut c = Command::new("kcat");
        c.args(["-b", &broker, "-t", &t_kcat, "-C", "-c", "7", "-e", "-q"]);
        c
    });
    assert_eq!(kcat_c.out.lines().count(), 7);
    let py = run(python_script(KAFKA_PYTHON, &[&broker, &t_py, &group]));
    assert_eq!(py.out.trim(), "kafka-python consumed 5");
    let pids = [franz_p.pid, kcat_p.pid, franz_c.pid, kcat_c.pid, py.pid];

    let send_franz = format!("send {t_franz}");
    rx.wait_for(3, WAIT, "kfake's Produce spans", |s| s.pid() == Some(k.pid) && s.span.name == send_franz);
    rx.wait_for(1, WAIT, "kafka-python's commit", |s| s.pid() == Some(py.pid) && s.span.name.starts_with("commit"));
    std::thread::sleep(Duration::from_millis(600));
    rx.stop();
    let spans = rx.spans();
    let all = dump(&spans, &pids);

    // Producers: one PRODUCER span per Produce request, records exact.
    let sends = named(&spans, franz_p.pid, &send_franz);
    assert_eq!(sends.len(), 3, "three batches of ten:\n{all}");
    for s in &sends {
        assert_eq!(kind(s), "PRODUCER");
        assert_eq!(s.int_attr("messaging.batch.message_count"), Some(10), "{}", s.describe());
        for (key, value) in [
            ("messaging.system", "kafka"),
            ("messaging.operation.name", "send"),
            ("messaging.operation.type", "send"),
            ("messaging.destination.name", t_franz.as_str()),
            ("messaging.destination.partition.id", "0"),
            ("messaging.client.id", "otel-ebpf-test-client"),
            ("server.address", "127.0.0.1"),
        ] {
            assert_eq!(text(s, key).as_deref(), Some(value), "{key}: {}", s.describe());
        }
        assert_eq!(s.int_attr("server.port"), Some(i64::from(k.port)));
        assert_eq!(s.status(), StatusCode::Unset);
    }
    assert_eq!(records(&named(&spans, kcat_p.pid, &format!("send {t_kcat}"))), 7, "kcat:\n{all}");
    assert_eq!(records(&named(&spans, py.pid, &format!("send {t_py}"))), 5, "kafka-python:\n{all}");

    // Consumers: the records fetched add up exactly; commits name the group.
    let polls = named(&spans, franz_c.pid, &format!("poll {t_franz}"));
    assert_eq!(records(&polls), 30, "franz-go:\n{all}");
    assert!(polls
        .iter()
        .all(|s| kind(s) == "CLIENT" && text(s, "messaging.operation.type").as_deref() == Some("receive")));
    assert_eq!(records(&named(&spans, kcat_c.pid, &format!("poll {t_kcat}"))), 7, "kcat:\n{all}");
    assert_eq!(records(&named(&spans, py.pid, &format!("poll {t_py}"))), 5, "kafka-python:\n{all}");
    for (pid, topic) in [(franz_c.pid, &t_franz), (py.pid, &t_py)] {
        let commits = named(&spans, pid, &format!("commit {topic}"));
        assert_eq!(commits.len(), 1, "one commit:\n{all}");
        assert_eq!(text(commits[0], "messaging.operation.type").as_deref(), Some("settle"));
        assert_eq!(text(commits[0], "messaging.consumer.group.name").as_deref(), Some(group.as_str()));
        let joins = named(&spans, pid, "JoinGroup");
        assert!(joins.iter().any(|s| s.status() == StatusCode::Unset), "a JoinGroup succeeded:\n{all}");
    }
    // The first JoinGroup of a new member is refused with MEMBER_ID_REQUIRED, by design.
    for s in spans.iter().filter(|s| s.pid().is_some_and(|p| pids.contains(&p)) && s.status() == StatusCode::Error) {
        assert_eq!(
            (s.span.name.as_str(), text(s, "error.type").as_deref()),
            ("JoinGroup", Some("MEMBER_ID_REQUIRED")),
            "only the expected failure:\n{all}"
        );
    }

    // The broker's side of the same requests: SERVER spans, same counts.
    let server = named(&spans, k.pid, &send_franz);
    assert_eq!(server.len(), 3, "kfake:\n{}", dump(&spans, &[k.pid]));
    assert!(server.iter().all(|s| kind(s) == "SERVER"));
    assert_eq!(records(&server), 30);
    assert_eq!(records(&named(&spans, k.pid, &format!("send {t_kcat}"))), 7);
    assert_eq!(records(&named(&spans, k.pid, &format!("poll {t_franz}"))), 30);

    // Metrics: messages sent and consumed per client, none for the broker.
    let points = metric_points(&rx);
    let m = |name, pid, topic: &str| metric_total(&points, name, pid, &[("messaging.destination.name", topic)]);
    let why = describe_points(points.iter().filter(|p| p.name.starts_with("messaging")));
    assert_eq!(m("messaging.client.sent.messages", franz_p.pid, &t_franz), 30, "{why}");
    assert_eq!(m("messaging.client.sent.messages", kcat_p.pid, &t_kcat), 7, "{why}");
    assert_eq!(m("messaging.client.sent.messages", py.pid, &t_py), 5, "{why}");
    assert_eq!(m("messaging.client.consumed.messages", franz_c.pid, &t_franz), 30, "{why}");
    assert_eq!(m("messaging.client.consumed.messages", kcat_c.pid, &t_kcat), 7, "{why}");
    assert_eq!(m("messaging.client.consumed.messages", py.pid, &t_py), 5, "{why}");
    let sends = |pid| {
        metric_total(
            &points,
            "messaging.client.operation.duration",
            pid,
            &[("messaging.operation.name", "send"), ("messaging.destination.name", &t_franz)],
        )
    };
    assert_eq!(sends(franz_p.pid), 3, "one duration per Produce:\n{why}");
    assert_eq!(metric_total(&points, "messaging.client.operation.duration", k.pid, &[]), 0, "{why}");
    // No payload left the host.
    assert!(!rx.raw_contains(b"value-17"), "a record value was exported");
}

#[test]
fn kafka_errors_are_failed_spans_named_as_the_broker_said() {
    if !require_root() {
        return;
    }
    let k = kafka();
    let topic = unique_token("refused");
    let mut rx = receiver(&[k.port]);
    let c = run(franz_client_command(&topic, None, &["errors"]));
    // The client prints the broker's answers: `produce to partition 7: NAME: text`.
    let said = |prefix: &str| -> String {
        let line = c.out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}? {}", c.out));
        line[prefix.len()..].trim().split(':').next().unwrap().to_string()
    };
    let (produce_error, heartbeat_error) = (said("produce to partition 7:"), said("heartbeat:"));
    rx.wait_for(1, WAIT, "the client's Heartbeat", |s| s.pid() == Some(c.pid) && s.span.name == "Heartbeat");
    rx.wait_for(2, WAIT, "the broker's refusals", |s| s.pid() == Some(k.pid) && s.status() == StatusCode::Error);
    std::thread::sleep(Duration::from_millis(600));
    rx.stop();
    let spans = rx.spans();
    let all = dump(&spans, &[c.pid, k.pid]);
    for pid in [c.pid, k.pid] {
        let failed: Vec<&SpanRec> =
            spans.iter().filter(|s| s.pid() == Some(pid) && s.status() == StatusCode::Error).collect();
        let mut got: Vec<(String, String)> = failed
            .iter()
            .map(|s| {
                (text(s, "messaging.operation.name").unwrap_or_default(), text(s, "error.type").unwrap_or_default())
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [("Heartbeat".to_string(), heartbeat_error.clone()), ("send".to_string(), produce_error.clone())],
            "exactly the two refusals, with the broker's error names:\n{all}"
        );
        let send = failed.iter().find(|s| text(s, "messaging.operation.name").as_deref() == Some("send")).unwrap();
        assert_eq!(text(send, "messaging.destination.partition.id").as_deref(), Some("7"), "{all}");
        assert_eq!(text(send, "messaging.operation.type").as_deref(), Some("send"), "{all}");
        let heartbeat = failed.iter().find(|s| s.span.name == "Heartbeat").unwrap();
        assert_eq!(text(heartbeat, "messaging.consumer.group.name").as_deref(), Some("no-such-group"), "{all}");
    }
    // The refused Produce is an operation and a message the client attempted
    // to send, both with the error (as the conventions define the counter).
    let points = metric_points(&rx);
    let why = describe_points(points.iter().filter(|p| p.pid == Some(c.pid)));
    let refused = [("messaging.operation.name", "send"), ("error.type", produce_error.as_str())];
    assert_eq!(metric_total(&points, "messaging.client.operation.duration", c.pid, &refused), 1, "{why}");
    assert_eq!(metric_total(&points, "messaging.client.sent.messages", c.pid, &refused), 1, "{why}");
    assert_eq!(metric_total(&points, "messaging.client.sent.messages", c.pid, &[]), 1, "{why}");
}

/// kafka-python: `BROKER TOPIC GROUP`: 5 records produced in one batch,
/// then read back by a consumer of the group, which commits.
const KAFKA_PYTHON: &str = r#"
import sys
from kafka import KafkaConsumer, KafkaProducer
brokers, topic, group = sys.argv[1:4]
p = KafkaProducer(bootstrap_servers=brokers, client_id='kpy', linger_ms=200)
for i in range(5):
    p.send(topic, key=b'k%d' % i, value=b'event-%d' % i)
p.flush()
p.close()
c = KafkaConsumer(topic, bootstrap_servers=brokers, client_id='kpy', group_id=group,
                  auto_offset_reset='earliest', enable_auto_commit=False, consumer_timeout_ms=10000)
got = 0
for _ in c:
    got += 1
    if got == 5:
        break
c.commit()
c.close()
print('kafka-python consumed', got)
"#;

// ---------------------------------------------------------------------------
// MongoDB.

/// pymongo: `PORT DB SECRET`: a session of commands on `DB.orders`, the
/// secret only in documents and filters.
const PYMONGO: &str = r#"
import sys, pymongo
from pymongo.errors import DuplicateKeyError
port, db, secret = sys.argv[1:4]
c = pymongo.MongoClient('mongodb://127.0.0.1:%s/' % port, serverSelectionTimeoutMS=10000)
orders = c[db].orders
orders.create_index('sku', unique=True)
orders.insert_many([{'sku': 'sku-%d' % i, 'note': secret} for i in range(5)])
orders.insert_one({'sku': 'sku-9', 'note': secret})
assert len(list(orders.find({'note': secret}))) == 6
assert orders.count_documents({}) == 6
orders.update_one({'sku': 'sku-1'}, {'$set': {'note': 'updated'}})
try:
    orders.insert_one({'sku': 'sku-1'})
except DuplicateKeyError:
    pass
orders.delete_many({'sku': {'$in': ['sku-2', 'sku-3']}})
c.close()
print('pymongo ok')
"#;

#[test]
fn mongodb_commands_collections_and_counts_are_exact() {
    if !require_root() {
        return;
    }
    let f = ferretdb();
    let db = unique_token("shop");
    let secret = unique_token("card4111");
    let mut rx = receiver(&[f.port]);
    let py = run(python_script(PYMONGO, &[&f.port.to_string(), &db, &secret]));
    assert_eq!(py.out.trim(), "pymongo ok");
    rx.wait_for(1, WAIT, "FerretDB's delete", |s| s.pid() == Some(f.pid) && s.span.name == "delete orders");
    std::thread::sleep(Duration::from_millis(600));
    rx.stop();
    let spans = rx.spans();
    let all = dump(&spans, &[py.pid]);
    let app: Vec<&SpanRec> =
        spans.iter().filter(|s| s.pid() == Some(py.pid) && text(s, "db.namespace").as_deref() == Some(&db)).collect();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &app {
        *names.entry(s.span.name.as_str()).or_default() += 1;
    }
    assert_eq!(
        names,
        BTreeMap::from([
            ("aggregate orders", 1),
            ("createIndexes orders", 1),
            ("delete orders", 1),
            ("find orders", 1),
            ("insert orders", 3),
            ("update orders", 1),
        ]),
        "{all}"
    );
    for s in &app {
        assert_eq!(kind(s), "CLIENT");
        assert_eq!(text(s, "db.system.name").as_deref(), Some("mongodb"));
        assert_eq!(text(s, "db.collection.name").as_deref(), Some("orders"));
        assert_eq!(s.int_attr("server.port"), Some(i64::from(f.port)));
    }
    let failed: Vec<_> = app.iter().filter(|s| s.status() == StatusCode::Error).collect();
    assert_eq!(failed.len(), 1, "the duplicate key:\n{all}");
    assert_eq!(failed[0].span.name, "insert orders");
    assert_eq!(text(failed[0], "db.response.status_code").as_deref(), Some("11000"));
    assert_eq!(text(failed[0], "error.type").as_deref(), Some("11000"));
    let find = app.iter().find(|s| s.span.name == "find orders").expect("find");
    assert_eq!(find.int_attr("db.response.returned_rows"), Some(6));
    // The server's side: the same commands, SERVER spans.
    let server: Vec<&SpanRec> =
        spans.iter().filter(|s| s.pid() == Some(f.pid) && text(s, "db.namespace").as_deref() == Some(&db)).collect();
    assert_eq!(server.len(), app.len(), "FerretDB:\n{}", dump(&spans, &[f.pid]));
    assert!(server.iter().all(|s| kind(s) == "SERVER"));
    // Metrics: one duration per command, by command and collection.
    let points = metric_points(&rx);
    let d = |op| {
        metric_total(
            &points,
            "db.client.operation.duration",
            py.pid,
            &[("db.operation.name", op), ("db.collection.name", "orders"), ("db.namespace", &db)],
        )
    };
    assert_eq!((d("insert"), d("find"), d("update"), d("delete")), (3, 1, 1, 1));
    assert_eq!(metric_total(&points, "db.client.operation.duration", f.pid, &[]), 0);
    assert!(!rx.raw_contains(secret.as_bytes()), "a document value was exported");
}

// ---------------------------------------------------------------------------
// MQTT.

#[test]
fn mqtt_publish_and_subscribe_counts_per_qos_are_exact() {
    if !require_root() {
        return;
    }
    let m = mosquitto();
    let port = m.port.to_string();
    let base = unique_token("plant");
    let auth_port = m.auth_port.expect("auth listener");
    let mut rx = receiver(&[m.port, auth_port]);
    let sub = Command::new("mosquitto_sub")
        .args(["-p", &port, "-i", "sub-it", "-q", "2", "-t", &format!("{base}/+"), "-C", "7", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    let sub_pid = sub.id();
    // Publish once the broker has acknowledged the subscription (its span is
    // the SUBACK seen), so no message can precede it.
    rx.wait_for(1, WAIT, "mosquitto_sub's subscribe", |s| s.pid() == Some(sub_pid) && s.span.name == "subscribe");
    // 3 messages at QoS 0, 2 at QoS 1, 2 at QoS 2, each publisher one connection.
    let mut pubs = Vec::new();
    for (qos, n) in [("0", 3), ("1", 2), ("2", 2)] {
        let lines: String = (0..n).map(|i| format!("m{qos}-{i}\n")).collect();
        let mut c = Command::new("mosquitto_pub");
        c.args(["-p", &port, "-i", &format!("pub-q{qos}"), "-q", qos, "-t", &format!("{base}/q{qos}"), "-l"]);
        pubs.push((qos, n, run_with(c, Some(&lines))));
    }
    let got = sub.wait_with_output().expect("mosquitto_sub");
    assert_eq!(String::from_utf8_lossy(&got.stdout).lines().count(), 7);
    let paho = run({
        let mut c = Command::new(python());
        c.arg(repo_root().join("ebpf-core/tests/fixtures/mqtt/record/paho_session.py")).args([&port, "5"]);
        c
    });
    let refused = Command::new("mosquitto_pub")
        .args(["-p", &auth_port.to_string(), "-u", MQTT_USER, "-P", "wrong", "-t", "x", "-m", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_pub");
    let refused_pid = refused.id();
    assert!(!refused.wait_with_output().expect("mosquitto_pub").status.success());
    rx.wait_for(1, WAIT, "paho's ping", |s| s.pid() == Some(paho.pid) && s.span.name == "ping");
    std::thread::sleep(Duration::from_millis(600));
    rx.stop();
    let spans = rx.spans();
    let qos_of = |s: &&SpanRec| s.int_attr("ebpf_receiver.mqtt.qos");

    // Each publisher: its messages at its QoS, acknowledged.
    for (qos, n, p) in &pubs {
        let all = dump(&spans, &[p.pid]);
        let sent = named(&spans, p.pid, "publish");
        assert_eq!(sent.len(), *n, "{all}");
        for s in &sent {
            assert_eq!(kind(s), "PRODUCER");
            assert_eq!(qos_of(s), Some(qos.parse().unwrap()));
            assert_eq!(text(s, "messaging.destination.name"), Some(format!("{base}/q{qos}")));
            assert_eq!(text(s, "messaging.client.id").as_deref(), Some(format!("pub-q{qos}").as_str()));
            assert_eq!(s.status(), StatusCode::Unset, "{}", s.describe());
        }
        assert_eq!(shape(&spans, p.pid).get("connect CLIENT"), Some(&1), "{all}");
        let points = metric_points(&rx);
        assert_eq!(
            metric_total(&points, "messaging.client.sent.messages", p.pid, &[("messaging.system", "mqtt")]),
            *n as u64
        );
    }
    // The subscriber: every message delivered, at its QoS.
    let all = dump(&spans, &[sub_pid]);
    let received = named(&spans, sub_pid, "receive");
    let per_qos = |q| received.iter().filter(|s| qos_of(s) == Some(q)).count();
    assert_eq!((per_qos(0), per_qos(1), per_qos(2)), (3, 2, 2), "{all}");
    let subscribe = named(&spans, sub_pid, "subscribe");
    assert_eq!(subscribe.len(), 1, "{all}");
    assert_eq!(text(subscribe[0], "messaging.destination.subscription.name"), Some(format!("{base}/+")));
    let points = metric_points(&rx);
    assert_eq!(metric_total(&points, "messaging.client.consumed.messages", sub_pid, &[]), 7);
    // paho-mqtt (MQTT 5): 7 published and 7 delivered back, per QoS.
    let all = dump(&spans, &[paho.pid]);
    for (name, counts) in [("publish", (3, 2, 2)), ("receive", (3, 2, 2))] {
        let s = named(&spans, paho.pid, name);
        let q = |n| s.iter().filter(|s| qos_of(s) == Some(n)).count();
        assert_eq!((q(0), q(1), q(2)), counts, "{name}:\n{all}");
    }
    // The broker: the publishes it was sent (SERVER) and the deliveries it made (PRODUCER).
    let broker = dump(&spans, &[m.pid]);
    let ours = |s: &&SpanRec| text(s, "messaging.destination.name").is_some_and(|t| t.starts_with(&base));
    let served = named(&spans, m.pid, "publish").into_iter().filter(ours).filter(|s| kind(s) == "SERVER").count();
    let delivered = named(&spans, m.pid, "publish").into_iter().filter(ours).filter(|s| kind(s) == "PRODUCER").count();
    assert_eq!((served, delivered), (7, 7), "{broker}");
    // The refused password: a failed connect, with the reason's name.
    let refused = named(&spans, refused_pid, "connect");
    assert_eq!(refused.len(), 1, "{}", dump(&spans, &[refused_pid]));
    assert_eq!(text(refused[0], "error.type").as_deref(), Some("not_authorized"));
    assert_eq!(refused[0].status(), StatusCode::Error);
    assert!(!rx.raw_contains(b"m1-1"), "a payload was exported");
}
