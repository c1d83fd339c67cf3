//! MQTT on the seam, end to end: recorded clients through the connection
//! tracker, the registry's parser and the description, as spans and
//! metrics; and the broker's side, reading a CONNECT a byte at a time.

use crate::protocol::fixture::{recording, Segment};
use crate::protocol::replay::{attr, kind, replay, whole, Side};

const PORT: u16 = 1883;

#[test]
fn publishes_and_deliveries_per_qos() {
    let r = replay(&[recording!("mqtt", "paho_v311.c1")], Side::client(PORT), &whole, None);
    let names: Vec<String> = r.names();
    assert_eq!(names.iter().filter(|n| *n == "publish PRODUCER").count(), 7);
    assert_eq!(names.iter().filter(|n| *n == "receive CLIENT").count(), 7);
    assert_eq!(
        names.iter().filter(|n| !n.starts_with("publish") && !n.starts_with("receive")).collect::<Vec<_>>(),
        ["connect CLIENT", "subscribe CLIENT", "unsubscribe CLIENT", "ping CLIENT"]
    );
    for (name, qos, count) in
        [("publish", "0", 3), ("publish", "1", 2), ("publish", "2", 2), ("receive", "0", 3), ("receive", "1", 2)]
    {
        let n = r.named(name).iter().filter(|s| attr(s, "ebpf_receiver.mqtt.qos").as_deref() == Some(qos)).count();
        assert_eq!(n, count, "{name} QoS {qos}");
    }
    let p = r.named("publish");
    for (key, value) in [
        ("messaging.system", "mqtt"),
        ("messaging.operation.name", "publish"),
        ("messaging.operation.type", "send"),
        ("messaging.destination.name", "sensors/0"),
        ("messaging.client.id", "paho-311"),
        ("server.port", "1883"),
    ] {
        assert_eq!(attr(p[0], key).as_deref(), Some(value), "{key}");
    }
    let sub = r.named("subscribe");
    assert_eq!(attr(sub[0], "messaging.destination.subscription.name"), None, "two filters");
    assert_eq!(
        attr(r.named("unsubscribe")[0], "messaging.destination.subscription.name").as_deref(),
        Some("sensors/#")
    );
    let sys = [("messaging.system", "mqtt")];
    assert_eq!(r.metric_total("messaging.client.sent.messages", &sys), 7);
    assert_eq!(r.metric_total("messaging.client.consumed.messages", &sys), 7);
    assert_eq!(r.metric_total("messaging.client.operation.duration", &[("messaging.operation.name", "ping")]), 1);
    assert!(r
        .metrics
        .resource_metrics
        .iter()
        .flat_map(|m| &m.scope_metrics)
        .flat_map(|s| &s.metrics)
        .all(|m| { format!("{m:?}").find("messaging.destination.name").is_none() }));
    assert_eq!((r.parse_errors, r.requests_lost, r.muted), (0, 0, 0));
}

#[test]
fn refused_connections_name_the_reason() {
    let conns = [recording!("mqtt", "refused.c1"), recording!("mqtt", "refused.c2")];
    let r = replay(&conns, Side::client(PORT), &whole, None);
    assert_eq!(r.names(), ["connect CLIENT", "connect CLIENT"]);
    for s in &r.spans {
        assert_eq!(attr(s, "error.type").as_deref(), Some("not_authorized"));
        assert_eq!(s.status.as_ref().map(|st| st.code), Some(2));
    }
}

#[test]
fn the_broker_reading_a_byte_at_a_time_is_followed() {
    // mosquitto reads a packet's first byte, its remaining length a byte
    // at a time, then the rest.
    let split = |seg: &Segment| match seg.bytes.len() {
        n if seg.from_client && n > 2 => vec![1, 1, n - 2],
        n => vec![n],
    };
    let conns = [
        recording!("mqtt", "mosquitto_v5.c1"),
        recording!("mqtt", "mosquitto_v5.c2"),
        recording!("mqtt", "mosquitto_v5.c3"),
    ];
    let r = replay(&conns, Side::server(PORT), &split, None);
    assert_eq!(
        r.names(),
        [
            "connect SERVER",
            "subscribe SERVER",
            "publish PRODUCER",
            "publish PRODUCER",
            "connect SERVER",
            "publish SERVER",
            "connect SERVER",
            "publish SERVER",
        ]
    );
    assert_eq!(r.metric_total("messaging.client.operation.duration", &[]), 0);
    assert_eq!((r.parse_errors, r.muted), (0, 0));
    assert!(r.spans.iter().all(|s| kind(s) != "CLIENT"));
}

#[test]
fn a_connection_older_than_the_receiver_is_joined_on_the_mqtt_port_only() {
    // The subscriber from its SUBACK on: no CONNECT seen.
    let conn: Vec<Segment> = recording!("mqtt", "mosquitto_v311.c1").into_iter().skip(3).collect();
    let joined = Side { traced: crate::protocol::Role::Client, opened: false, port: PORT };
    let r = replay(std::slice::from_ref(&conn), joined, &whole, None);
    assert_eq!(r.muted, 0);
    assert_eq!(r.names(), ["receive CLIENT", "receive CLIENT"]);
    let r = replay(&[conn], Side { port: 11883, ..joined }, &whole, None);
    assert!(r.spans.is_empty());
    assert_eq!(r.muted, 1);
}
