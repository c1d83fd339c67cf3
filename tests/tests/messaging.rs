//! The messaging servers of the Kafka, MongoDB and MQTT suites start and
//! serve real clients with exact counts, and say how long they took. No
//! probes: this checks the harness (tests/src/messaging.rs) the kernel
//! tests build on.

use std::process::Command;

use integration_tests::messaging::{ferretdb, franz_client, kafka, mosquitto, output, MQTT_PASSWORD, MQTT_USER};
use integration_tests::servers::python;
use integration_tests::util::repo_root;

#[test]
fn kafka_broker_serves_franz_go_kcat_and_kafka_python() {
    let k = kafka();
    let broker = format!("127.0.0.1:{}", k.port);
    assert_eq!(franz_client("harness-orders", None, &["produce", "30", "10"]).trim(), "produced 30");
    let lines =
        output(Command::new("kcat").args(["-b", &broker, "-t", "harness-orders", "-C", "-c", "30", "-e", "-q"]));
    assert_eq!(lines.lines().count(), 30, "{lines}");
    assert_eq!(franz_client("harness-orders", Some("harness-group"), &["consume", "30"]).trim(), "consumed 30");
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
fn mosquitto_serves_its_clients_and_paho_and_refuses_bad_passwords() {
    let m = mosquitto();
    let port = m.port.to_string();
    let sub = Command::new("mosquitto_sub")
        .args(["-p", &port, "-V", "mqttv5", "-q", "2", "-t", "harness/+", "-C", "2", "-W", "10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (qos, msg) in [("1", "one"), ("2", "two")] {
        output(Command::new("mosquitto_pub").args(["-p", &port, "-q", qos, "-t", "harness/x", "-m", msg]));
    }
    let got = sub.wait_with_output().expect("mosquitto_sub output");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "one\ntwo\n");
    let paho = repo_root().join("ebpf-core/tests/fixtures/mqtt/record/paho_session.py");
    let out = output(Command::new(python()).arg(paho).args([&port, "5"]));
    assert!(out.contains("('sensors/6', 2)") && out.contains("('sensors/0', 0)"), "{out}");
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
