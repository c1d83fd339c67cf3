//! Flows end to end in userspace: passes and DNS payloads in, OTLP out.

use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric, ResourceMetrics};

use super::dns::DnsPacket;
use super::sockets::TCP_LISTEN;
use super::*;
use crate::metrics::Temporality;
use crate::process::ProcessIdentity;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn identities() -> impl FnMut(u32) -> Option<Arc<ProcessIdentity>> {
    let mut known: Vec<Arc<ProcessIdentity>> = Vec::new();
    move |pid| {
        if pid == 666 {
            return None; // not traced
        }
        if let Some(p) = known.iter().find(|p| p.pid == pid) {
            return Some(p.clone());
        }
        let p =
            Arc::new(ProcessIdentity { service_name: format!("svc-{pid}"), ..ProcessIdentity::from_comm(pid, "x") });
        known.push(p.clone());
        Some(p)
    }
}

fn sock(cookie: u64, tgid: u32, local: (&str, u16), peer: (&str, u16), sent: u64, received: u64) -> SocketSample {
    SocketSample {
        cookie,
        tgid,
        netns: 1,
        local: (ip(local.0), local.1),
        peer: (ip(peer.0), peer.1),
        state: 1,
        counters: Counters { bytes_sent: sent, bytes_received: received, segs_out: 10, segs_in: 20, retrans: 1 },
        srtt_us: 20_000,
    }
}

fn flows(temporality: Temporality, max_series: usize) -> Flows {
    let metrics = MetricsConfig { temporality, max_series_per_metric: max_series, ..MetricsConfig::default() };
    Flows::new(&metrics, &DnsConfig::default(), 1)
}

/// (metric, attributes as "k=v" sorted, value) of every number point.
fn points(rms: &[ResourceMetrics]) -> Vec<(u32, String, String, f64)> {
    let mut out = Vec::new();
    for rm in rms {
        let pid = rm
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "process.pid")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::IntValue(i) => Some(*i as u32),
                _ => None,
            })
            .unwrap();
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let numbers = match &m.data {
                Some(Data::Sum(s)) => &s.data_points,
                Some(Data::Gauge(g)) => &g.data_points,
                Some(Data::Histogram(h)) => {
                    for p in &h.data_points {
                        out.push((pid, m.name.clone(), attrs(&p.attributes), p.count as f64));
                    }
                    continue;
                }
                _ => continue,
            };
            for p in numbers {
                let v = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    None => f64::NAN,
                };
                out.push((pid, m.name.clone(), attrs(&p.attributes), v));
            }
        }
    }
    out
}

fn attrs(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> String {
    let mut v: Vec<String> = kvs
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            format!("{}={value}", kv.key)
        })
        .collect();
    v.sort();
    v.join(",")
}

fn value(points: &[(u32, String, String, f64)], pid: u32, name: &str, having: &[&str]) -> Vec<f64> {
    points
        .iter()
        .filter(|p| p.0 == pid && p.1 == name && having.iter().all(|h| p.2.split(',').any(|a| a == *h)))
        .map(|p| p.3)
        .collect()
}

#[test]
fn a_client_and_a_server_on_this_host_see_each_other() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    let listen = SocketSample { state: TCP_LISTEN, ..sock(1, 200, ("0.0.0.0", 8080), ("0.0.0.0", 0), 0, 0) };
    f.pass_samples(std::slice::from_ref(&listen), 1, &mut ids);
    let client = sock(10, 100, ("10.0.0.1", 50000), ("10.0.0.2", 8080), 1000, 5000);
    let server = sock(11, 200, ("10.0.0.2", 8080), ("10.0.0.1", 50000), 5000, 1000);
    f.pass_samples(&[listen, client, server], 2, &mut ids);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    let client_attrs = [
        "network.peer.address=10.0.0.2",
        "server.port=8080",
        "network.transport=tcp",
        "network.type=ipv4",
        "ebpf_receiver.flow.role=client",
        "service.peer.name=svc-200",
    ];
    assert_eq!(
        value(&p, 100, "tcp.bytes", &[&client_attrs[..], &["network.io.direction=transmit"]].concat()),
        [1000.0]
    );
    assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=receive"]), [5000.0]);
    assert_eq!(value(&p, 100, "tcp.new_sockets", &client_attrs), [1.0]);
    assert_eq!(value(&p, 100, "tcp.active", &client_attrs), [1.0]);
    assert_eq!(value(&p, 100, "tcp.retrans", &client_attrs), [1.0]);
    // RTT in seconds, not the reducer's mislabelled "us".
    assert_eq!(value(&p, 100, "tcp.rtt.average", &client_attrs), [0.02]);
    assert_eq!(value(&p, 100, "tcp.rtt.num_measurements", &client_attrs), [1.0]);
    assert_eq!(value(&p, 100, "tcp.rtt", &client_attrs), [1.0], "one sample in the histogram");
    // The server side: its own listening port, never the client's ephemeral one.
    let server_attrs = ["network.peer.address=10.0.0.1", "server.port=8080", "ebpf_receiver.flow.role=server"];
    assert_eq!(
        value(&p, 200, "tcp.bytes", &[&server_attrs[..], &["network.io.direction=transmit"]].concat()),
        [5000.0]
    );
    assert_eq!(value(&p, 200, "tcp.bytes", &["service.peer.name=svc-100", "network.io.direction=receive"]), [1000.0]);
    assert!(p.iter().all(|p| !p.2.contains("50000")), "an ephemeral port leaked: {p:?}");
}

#[test]
fn a_connection_a_pass_sees_before_its_server_accepts_is_one_named_series() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    // The server in namespace 2, listening on 0.0.0.0: until it accepts,
    // nothing tells that 10.0.0.2 is its address.
    let listen = SocketSample { state: TCP_LISTEN, netns: 2, ..sock(1, 200, ("0.0.0.0", 8080), ("0.0.0.0", 0), 0, 0) };
    f.pass_samples(std::slice::from_ref(&listen), 1, &mut ids);
    let client = sock(10, 100, ("10.0.0.1", 50000), ("10.0.0.2", 8080), 0, 0);
    f.handshakes.push((client.clone(), 20_000_000));
    f.pass_samples(&[listen.clone(), client], 2, &mut ids);
    let client = sock(10, 100, ("10.0.0.1", 50000), ("10.0.0.2", 8080), 1000, 5000);
    let server = SocketSample { netns: 2, ..sock(11, 200, ("10.0.0.2", 8080), ("10.0.0.1", 50000), 5000, 1000) };
    f.pass_samples(&[listen, client, server], 3, &mut ids);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    let mine: Vec<_> = p.iter().filter(|p| p.0 == 100).collect();
    assert!(mine.iter().all(|p| p.2.contains("service.peer.name=svc-200")), "{mine:?}");
    assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=receive"]), [5000.0]);
    assert_eq!(value(&p, 100, "tcp.new_sockets", &[]), [1.0]);
    assert_eq!(value(&p, 100, "tcp.handshake.duration", &[]), [1.0]);
}

#[test]
fn a_name_resolved_on_this_host_names_the_flows_to_its_address() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    for (i, (from_client, _, bytes)) in super::dns::tests_fixture("python_getaddrinfo").into_iter().enumerate() {
        let p = DnsPacket {
            conn_id: 77,
            tgid: 100,
            ts_ns: 1_000_000 + i as u64 * 300_000,
            peer: ip("127.0.0.1"),
            transport: Transport::Udp,
            egress: from_client,
            payload: &bytes,
            total_len: bytes.len() as u32,
        };
        f.dns_packet(&p, &mut ids);
    }
    f.pass_samples(&[sock(5, 100, ("10.0.0.1", 40000), ("10.77.0.5", 80), 10, 20)], 2, &mut ids);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    assert_eq!(
        value(&p, 100, "tcp.active", &["server.address=web.flows.test", "network.peer.address=10.77.0.5"]),
        [1.0]
    );
    let dns =
        ["dns.question.name=web.flows.test", "ebpf_receiver.dns.question.type=A", "network.peer.address=127.0.0.1"];
    assert_eq!(value(&p, 100, "dns.responses", &dns), [1.0]);
    assert_eq!(value(&p, 100, "dns.lookup.duration", &dns), [1.0]);
    assert_eq!(value(&p, 100, "dns.client.duration.average", &dns), [0.0003]);
    assert!(p.iter().filter(|p| p.1.starts_with("dns.")).all(|p| !p.2.contains("error.type")));
}

/// glibc sends its A and AAAA queries with one `sendmmsg`, which the data
/// path counts but does not copy: the answers alone (read with `recvfrom`)
/// still name the addresses; nothing is counted as a response.
#[test]
fn answers_to_queries_not_seen_still_name_their_addresses() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    let answers: Vec<_> = super::dns::tests_fixture("python_getaddrinfo")
        .into_iter()
        .filter(|(from_client, _, _)| !from_client)
        .collect();
    assert!(!answers.is_empty());
    for (i, (_, _, bytes)) in answers.iter().enumerate() {
        let p = DnsPacket {
            conn_id: 78,
            tgid: 100,
            ts_ns: 1_000_000 + i as u64,
            peer: ip("127.0.0.1"),
            transport: Transport::Udp,
            egress: false,
            payload: bytes,
            total_len: bytes.len() as u32,
        };
        f.dns_packet(&p, &mut ids);
    }
    assert_eq!(f.dns_counters(), (0, answers.len() as u64, 0), "unmatched, not malformed");
    f.pass_samples(&[sock(6, 100, ("10.0.0.1", 40001), ("10.77.0.5", 80), 10, 20)], 2, &mut ids);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    assert_eq!(value(&p, 100, "tcp.active", &["server.address=web.flows.test"]), [1.0]);
    assert!(p.iter().all(|p| !p.1.starts_with("dns.")), "{p:?}");
}

#[test]
fn nxdomain_and_timeouts_are_errors() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    let msgs = super::dns::tests_fixture("getent_nxdomain");
    for (i, (from_client, _, bytes)) in msgs.iter().enumerate() {
        let p = DnsPacket {
            conn_id: 1,
            tgid: 100,
            ts_ns: 1000 + i as u64,
            peer: ip("127.0.0.1"),
            transport: Transport::Udp,
            egress: *from_client,
            payload: bytes,
            total_len: bytes.len() as u32,
        };
        f.dns_packet(&p, &mut ids);
    }
    // A query with no answer.
    let (_, _, query) = &super::dns::tests_fixture("dig_aaaa")[0];
    let p = DnsPacket {
        conn_id: 2,
        tgid: 100,
        ts_ns: 2000,
        peer: ip("127.0.0.1"),
        transport: Transport::Udp,
        egress: true,
        payload: query,
        total_len: query.len() as u32,
    };
    f.dns_packet(&p, &mut ids);
    f.tick(2000 + 4_999_999_999, &mut ids);
    f.tick(2000 + 5_000_000_000, &mut ids);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    let responses = msgs.iter().filter(|m| !m.0).count() as f64;
    // One series per question type (getent asks for both families).
    let nx = value(&p, 100, "dns.responses", &["error.type=nxdomain", "dns.question.name=missing.flows.test"]);
    assert_eq!(nx.iter().sum::<f64>(), responses);
    assert!(nx.iter().all(|n| *n == 1.0), "{nx:?}");
    assert_eq!(value(&p, 100, "dns.timeouts", &["error.type=timeout", "ebpf_receiver.dns.question.type=AAAA"]), [1.0]);
}

#[test]
fn the_series_limit_sends_the_rest_to_the_overflow_series() {
    let mut f = flows(Temporality::Cumulative, 2);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    let socks: Vec<_> = (0..5)
        .map(|i| sock(100 + i, 100, ("10.0.0.1", 40000 + i as u16), ("10.0.1.1", 80 + i as u16), 10, 10))
        .collect();
    f.pass_samples(&socks, 2, &mut ids);
    assert_eq!(f.overflowed(), 3);
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    let active: Vec<_> = p.iter().filter(|p| p.1 == "tcp.active").collect();
    assert_eq!(active.len(), 3, "two series and the overflow series");
    assert_eq!(value(&p, 100, "tcp.active", &["otel.metric.overflow=true"]), [3.0]);
    assert_eq!(value(&p, 100, "tcp.bytes", &["otel.metric.overflow=true", "network.io.direction=transmit"]), [30.0]);
}

#[test]
fn delta_temporality_exports_what_is_new_and_drops_quiet_series() {
    let mut f = flows(Temporality::Delta, 100);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    f.pass_samples(&[sock(1, 100, ("10.0.0.1", 40000), ("10.0.0.2", 80), 100, 0)], 2, &mut ids);
    let host = crate::otlp::HostInfo::default();
    let p = points(&f.collect(10, &host));
    assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=transmit"]), [100.0]);
    f.pass_samples(&[sock(1, 100, ("10.0.0.1", 40000), ("10.0.0.2", 80), 150, 0)], 3, &mut ids);
    let p = points(&f.collect(20, &host));
    assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=transmit"]), [50.0]);
    assert_eq!(value(&p, 100, "tcp.new_sockets", &[]), [0.0]);
    // Closed (missing from the pass): one last export of nothing open, then gone.
    f.pass_samples(&[], 4, &mut ids);
    let p = points(&f.collect(30, &host));
    assert_eq!(value(&p, 100, "tcp.active", &[]), [0.0]);
    assert!(f.collect(40, &host).is_empty());
}

#[test]
fn untraced_processes_and_exited_ones() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    f.pass_samples(
        &[
            sock(1, 666, ("10.0.0.1", 40000), ("10.0.0.2", 80), 1, 1),
            sock(2, 100, ("10.0.0.1", 40001), ("10.0.0.2", 80), 1, 1),
        ],
        2,
        &mut ids,
    );
    let host = crate::otlp::HostInfo::default();
    f.forget_process(100);
    // Kept until the next pass: the ends of its connections may come later.
    assert_eq!(f.collect(5, &host).len(), 1);
    f.pass_samples(&[], 3, &mut ids);
    let rms = f.collect(10, &host);
    assert_eq!(rms.len(), 1, "pid 666 is not traced");
    assert!(f.collect(20, &host).is_empty(), "an exited process is exported once more, then dropped");
}

#[test]
fn the_end_of_a_connection_read_after_its_process_exited_joins_its_series() {
    let host = crate::otlp::HostInfo::default();
    for pass_between in [false, true] {
        let mut f = flows(Temporality::Cumulative, 100);
        // Read again after its exit, pid 100 is another identity (its /proc
        // entry is gone): what the ProcessTable would make of it.
        let exited = std::cell::Cell::new(false);
        let alive = Arc::new(ProcessIdentity { service_name: "client".into(), ..ProcessIdentity::from_comm(100, "x") });
        let mut ids = |pid: u32| {
            Some(if exited.get() {
                Arc::new(ProcessIdentity { service_name: "client".into(), ..ProcessIdentity::from_comm(pid, "") })
            } else {
                alive.clone()
            })
        };
        f.pass_samples(&[], 1, &mut ids);
        let open = sock(1, 100, ("10.0.0.1", 40000), ("10.0.0.2", 80), 10, 4000);
        f.pass_samples(std::slice::from_ref(&open), 2, &mut ids);
        // Closed by the process, which then exits; the next pass (before
        // or after the exit is read) lists neither, and the socket's end
        // comes after it.
        if !pass_between {
            f.pass_samples(&[], 3, &mut ids);
        }
        exited.set(true);
        f.forget_process(100);
        if pass_between {
            f.pass_samples(&[], 3, &mut ids);
        }
        f.close(&sock(1, 100, ("10.0.0.1", 40000), ("10.0.0.2", 80), 11, 4001), &mut ids);
        let rms = f.collect(10, &host);
        assert_eq!(rms.len(), 1, "one resource for pid 100 (pass between: {pass_between})");
        let p = points(&rms);
        assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=receive"]), [4001.0]);
        assert_eq!(value(&p, 100, "tcp.bytes", &["network.io.direction=transmit"]), [11.0]);
    }
}

#[test]
fn failures_handshakes_resets_and_udp_have_their_names() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    let p = ids(100).unwrap();
    let key =
        FlowKey { peer: ip("10.0.0.9"), server_port: 443, role: Role::Client, peer_name: None, peer_service: None };
    let m = f.metrics_mut();
    m.record_failure(&p, &key, FailReason::from_errno(libc::ECONNREFUSED));
    m.record_failure(&p, &key, FailReason::from_errno(libc::ETIMEDOUT));
    m.record_handshake(&p, &key, 25_000_000);
    m.record_reset(&p, &key);
    m.record_udp(&p, &key, (100, 2), (300, 3));
    let rms = f.collect(10, &crate::otlp::HostInfo::default());
    let p = points(&rms);
    assert_eq!(value(&p, 100, "tcp.connection.failures", &["error.type=connection_refused"]), [1.0]);
    assert_eq!(value(&p, 100, "tcp.connection.failures", &["error.type=timeout"]), [1.0]);
    assert_eq!(value(&p, 100, "tcp.syn_timeouts", &[]), [1.0]);
    assert_eq!(value(&p, 100, "tcp.handshake.duration", &[]), [1.0]);
    assert_eq!(value(&p, 100, "tcp.resets", &[]), [1.0]);
    assert_eq!(value(&p, 100, "udp.bytes", &["network.io.direction=receive", "network.transport=udp"]), [300.0]);
    assert_eq!(value(&p, 100, "udp.packets", &["network.io.direction=transmit"]), [2.0]);
    assert_eq!(value(&p, 100, "udp.active", &[]), [1.0]);
    let units: Vec<(&str, &str)> =
        rms[0].scope_metrics[0].metrics.iter().map(|m: &Metric| (m.name.as_str(), m.unit.as_str())).collect();
    assert!(units.contains(&("tcp.handshake.duration", "s")));
}

#[test]
fn failed_attempts_alone_export_no_zero_counts() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    let p = ids(100).unwrap();
    let key =
        FlowKey { peer: ip("10.0.0.9"), server_port: 8080, role: Role::Client, peer_name: None, peer_service: None };
    f.metrics_mut().record_failure(&p, &key, FailReason::from_errno(libc::ECONNREFUSED));
    let host = crate::otlp::HostInfo::default();
    for now in [10, 20] {
        let rms = f.collect(now, &host);
        let pts = points(&rms);
        assert_eq!(value(&pts, 100, "tcp.connection.failures", &["error.type=connection_refused"]), [1.0]);
        for name in ["tcp.bytes", "tcp.packets", "tcp.retrans", "tcp.new_sockets", "tcp.active"] {
            assert!(value(&pts, 100, name, &[]).is_empty(), "{name} of a series that never connected");
        }
    }
}

fn udp(cookie: u64, tgid: u32, peer: Option<(&str, u16)>, local_port: u16, c: [u64; 4], first_ns: u64) -> UdpSample {
    UdpSample::for_test(cookie, tgid, peer, local_port, c, first_ns, c[2] > 0)
}

#[test]
fn udp_flows_per_peer_with_the_server_port_and_an_unknown_peer_without_address() {
    let mut f = flows(Temporality::Cumulative, 100);
    let mut ids = identities();
    f.pass_samples(&[], 1, &mut ids);
    let samples = [
        // pid 100: a client of two resolvers, one unconnected socket.
        udp(1, 100, Some(("10.0.0.53", 53)), 40000, [120, 0, 3, 0], 10),
        udp(1, 100, Some(("10.0.0.54", 53)), 40000, [80, 0, 2, 0], 11),
        udp(1, 100, None, 40000, [0, 500, 0, 5], 12),
        // pid 200: a server on 8125 that only receives, from unknown peers.
        udp(2, 200, None, 8125, [0, 900, 0, 9], 5),
        // pid 666: not traced.
        udp(3, 666, Some(("10.0.0.53", 53)), 40001, [7, 0, 1, 0], 13),
    ];
    let mut idle = Vec::new();
    f.udp_pass(&samples, &mut idle, &mut ids);
    assert!(idle.is_empty());
    let p = points(&f.collect(10, &crate::otlp::HostInfo::default()));
    let tx = "network.io.direction=transmit";
    let rx = "network.io.direction=receive";
    let a = "network.peer.address=10.0.0.53";
    let b = "network.peer.address=10.0.0.54";
    assert_eq!(value(&p, 100, "udp.bytes", &[a, tx, "server.port=53", "ebpf_receiver.flow.role=client"]), [120.0]);
    assert_eq!(value(&p, 100, "udp.packets", &[a, tx]), [3.0]);
    assert_eq!(value(&p, 100, "udp.bytes", &[b, tx]), [80.0]);
    assert_eq!(value(&p, 100, "udp.packets", &[b, tx]), [2.0]);
    // Two peers: what came back has no peer address and no server port.
    let unknown: Vec<_> =
        p.iter().filter(|q| q.0 == 100 && q.1 == "udp.bytes" && q.2.contains(rx) && q.3 > 0.0).collect();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(!unknown[0].2.contains("network.peer.address") && !unknown[0].2.contains("server.port"), "{unknown:?}");
    assert_eq!(unknown[0].3, 500.0);
    assert_eq!(value(&p, 100, "udp.active", &[a]), [1.0]);
    assert_eq!(value(&p, 200, "udp.bytes", &[rx, "server.port=8125", "ebpf_receiver.flow.role=server"]), [900.0]);
    assert_eq!(value(&p, 200, "udp.packets", &[rx]), [9.0]);
    assert!(p.iter().all(|q| q.0 != 666));
    // Nothing new: the entries are idle, to delete; the sums stay.
    f.udp_pass(&samples, &mut idle, &mut ids);
    assert_eq!(idle, [0, 1, 2, 3, 4]);
    let p = points(&f.collect(20, &crate::otlp::HostInfo::default()));
    assert_eq!(value(&p, 100, "udp.bytes", &[a, tx]), [120.0]);
    assert_eq!(value(&p, 100, "udp.active", &[a]), [0.0]);
}
