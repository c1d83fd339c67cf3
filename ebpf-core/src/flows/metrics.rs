//! Flow and DNS series per local process, and their OTLP encoding.
//!
//! A series is one local process × peer × server port × transport × role
//! (plus, when known, the peer's DNS name and its service on this host);
//! DNS series add the question's name and type and the outcome. Each family
//! (TCP, UDP, DNS) of a process holds at most `max_series_per_metric` series,
//! then an overflow series (`otel.metric.overflow = true`), exactly as the
//! HTTP metrics do. Temporality follows `metrics.temporality`; gauges are
//! the state at the last pass (`*.active`) or the samples since the previous
//! export (`*.average`, `tcp.rtt.num_measurements`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram as OtlpHistogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use rustc_hash::FxHashMap;

use crate::metrics::histogram::Histogram;
use crate::metrics::Temporality;
use crate::otlp::{process_resource, HostInfo};
use crate::process::ProcessIdentity;
use crate::protocol::Role;
use crate::spans::{bool_attr, int_attr, str_attr};

/// Bounds of every flow and DNS duration histogram, in seconds: from 100 µs
/// (loopback, a resolver's cache) to 10 s (a SYN given up on), about 2.5×
/// apart.
pub const NET_DURATION_BOUNDS_S: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const NET_DURATION_BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
const NET_BUCKETS: usize = NET_DURATION_BOUNDS_NS.len() + 1;

/// A duration histogram over `NET_DURATION_BOUNDS_NS`, its buckets inline
/// (a flow series holds two and a DNS series one: no shared allocation to
/// gain, unlike the RED metrics' families).
#[derive(Debug, Clone)]
struct NetHistogram {
    stats: Histogram,
    counts: [u64; NET_BUCKETS],
}

impl NetHistogram {
    fn new() -> Self {
        Self { stats: Histogram::new(), counts: [0; NET_BUCKETS] }
    }

    fn record(&mut self, ns: u64) {
        self.stats.record(&mut self.counts, ns, &NET_DURATION_BOUNDS_NS);
    }

    fn count(&self) -> u64 {
        self.stats.count()
    }

    /// The OTLP point in seconds.
    fn to_point(&self, attributes: Vec<KeyValue>, start: u64, now: u64) -> HistogramDataPoint {
        self.stats.to_point(&self.counts, &NET_DURATION_BOUNDS_S, 1e9, attributes, start, now)
    }
}

/// The attribute key of the role (project-specific: the conventions have none
/// for which end of a connection the local process holds).
pub const ROLE_ATTRIBUTE: &str = "ebpf_receiver.flow.role";
/// The attribute key of a DNS question's type ("A", "AAAA", ...): project-specific.
pub const DNS_TYPE_ATTRIBUTE: &str = "ebpf_receiver.dns.question.type";

/// Why a TCP connection attempt failed (`error.type` of `tcp.connection.failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The peer answered the SYN with a reset (ECONNREFUSED).
    Refused,
    /// No answer to the SYNs (ETIMEDOUT).
    Timeout,
    /// An ICMP unreachable (EHOSTUNREACH, ENETUNREACH).
    Unreachable,
    /// Reset during the handshake (ECONNRESET).
    Reset,
    /// Any other error.
    Other,
}

impl FailReason {
    const ALL: [FailReason; 5] =
        [FailReason::Refused, FailReason::Timeout, FailReason::Unreachable, FailReason::Reset, FailReason::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Refused => "connection_refused",
            FailReason::Timeout => "timeout",
            FailReason::Unreachable => "host_unreachable",
            FailReason::Reset => "connection_reset",
            FailReason::Other => "_OTHER",
        }
    }

    /// From the socket's error (`sk_err`, a positive errno).
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::ECONNREFUSED => FailReason::Refused,
            libc::ETIMEDOUT => FailReason::Timeout,
            libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN | libc::ENETDOWN => FailReason::Unreachable,
            libc::ECONNRESET => FailReason::Reset,
            _ => FailReason::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// The attributes of a TCP or UDP series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub peer: IpAddr,
    pub server_port: u16,
    pub role: Role,
    /// `server.address`: the name a DNS answer gave the peer (client side only).
    pub peer_name: Option<Arc<str>>,
    /// `service.peer.name`: the service of the process at the other end, on this host.
    pub peer_service: Option<Arc<str>>,
}

impl FlowKey {
    fn attributes(&self, transport: Transport, out: &mut Vec<KeyValue>) {
        // Unspecified: a UDP peer the kernel could not tell (see `udp`).
        let known = !self.peer.is_unspecified();
        if known {
            out.push(str_attr("network.peer.address", self.peer.to_string()));
        }
        if let (Some(name), Role::Client) = (&self.peer_name, self.role) {
            out.push(str_attr("server.address", &**name));
        }
        if self.server_port != 0 {
            out.push(int_attr("server.port", i64::from(self.server_port)));
        }
        out.push(str_attr("network.transport", transport.as_str()));
        if known {
            out.push(str_attr("network.type", if self.peer.is_ipv4() { "ipv4" } else { "ipv6" }));
        }
        out.push(str_attr(ROLE_ATTRIBUTE, role_str(self.role)));
        if let Some(service) = &self.peer_service {
            out.push(str_attr("service.peer.name", &**service));
        }
    }
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Server => "server",
    }
}

/// What one TCP socket did since the previous pass, or at its close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpActivity {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub retrans: u64,
    /// Opened since the previous pass.
    pub new_socket: bool,
    /// Open at this pass.
    pub live: bool,
    /// Smoothed RTT sampled now.
    pub rtt_us: Option<u32>,
}

#[derive(Debug, Clone)]
struct TcpSeries {
    start_ns: u64,
    bytes: [u64; 2],
    segs: [u64; 2],
    retrans: u64,
    new_sockets: u64,
    syn_timeouts: u64,
    resets: u64,
    failures: [u64; FailReason::ALL.len()],
    /// Open sockets at the last pass.
    active: u64,
    /// RTT samples since the previous export (gauges).
    rtt_sum_us: u64,
    rtt_samples: u64,
    rtt: NetHistogram,
    handshake: NetHistogram,
    /// Something was recorded since the previous export.
    touched: bool,
    /// A connection of this series was seen (by a pass or at its close):
    /// bytes, packets and socket counts are exported. A series of failed
    /// attempts alone has none, rather than zeros.
    connected: bool,
}

impl TcpSeries {
    fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            bytes: [0; 2],
            segs: [0; 2],
            retrans: 0,
            new_sockets: 0,
            syn_timeouts: 0,
            resets: 0,
            failures: [0; FailReason::ALL.len()],
            active: 0,
            rtt_sum_us: 0,
            rtt_samples: 0,
            rtt: NetHistogram::new(),
            handshake: NetHistogram::new(),
            touched: false,
            connected: false,
        }
    }

    fn reset_counts(&mut self) {
        let (start_ns, active, connected) = (self.start_ns, self.active, self.connected);
        *self = Self::new(start_ns);
        self.active = active;
        self.connected = connected;
    }
}

#[derive(Debug, Clone)]
struct UdpSeries {
    start_ns: u64,
    bytes: [u64; 2],
    datagrams: [u64; 2],
    active: u64,
    touched: bool,
}

impl UdpSeries {
    fn new(start_ns: u64) -> Self {
        Self { start_ns, bytes: [0; 2], datagrams: [0; 2], active: 0, touched: false }
    }
}

/// The attributes of a DNS series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsKey {
    pub role: Role,
    /// The resolver (client side) or the client (server side).
    pub peer: IpAddr,
    pub transport: Transport,
    pub name: Arc<str>,
    pub qtype: u16,
    /// The response code, or None for a query that timed out.
    pub rcode: Option<u8>,
}

#[derive(Debug, Clone)]
struct DnsSeries {
    start_ns: u64,
    responses: u64,
    timeouts: u64,
    duration: NetHistogram,
    /// Since the previous export (the average gauges).
    duration_sum_ns: u64,
    duration_count: u64,
    touched: bool,
}

impl DnsSeries {
    fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            responses: 0,
            timeouts: 0,
            duration: NetHistogram::new(),
            duration_sum_ns: 0,
            duration_count: 0,
            touched: false,
        }
    }
}

/// The series of one family of one process, bounded.
#[derive(Debug)]
struct Family<K, S> {
    series: HashMap<K, S, foldhash::fast::RandomState>,
    overflow: Option<S>,
}

impl<K, S> Default for Family<K, S> {
    fn default() -> Self {
        Self { series: HashMap::default(), overflow: None }
    }
}

impl<K: std::hash::Hash + Eq + Clone, S> Family<K, S> {
    /// The series of `key`, or the overflow series when the family is full
    /// (`overflowed` is then counted).
    fn get(&mut self, key: &K, max: usize, new: impl Fn() -> S, overflowed: &mut u64) -> &mut S {
        if self.series.contains_key(key) {
            return self.series.get_mut(key).expect("just checked");
        }
        if self.series.len() < max {
            return self.series.entry(key.clone()).or_insert_with(new);
        }
        *overflowed += 1;
        self.overflow.get_or_insert_with(new)
    }

    fn is_empty(&self) -> bool {
        self.series.is_empty() && self.overflow.is_none()
    }

    fn retain(&mut self, mut keep: impl FnMut(&mut S) -> bool) {
        self.series.retain(|_, s| keep(s));
        if self.overflow.as_mut().is_some_and(|s| !keep(s)) {
            self.overflow = None;
        }
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.series.values_mut().chain(self.overflow.as_mut())
    }
}

#[derive(Debug)]
struct ProcessFlows {
    identity: Arc<ProcessIdentity>,
    tcp: Family<FlowKey, TcpSeries>,
    udp: Family<FlowKey, UdpSeries>,
    dns: Family<DnsKey, DnsSeries>,
}

impl ProcessFlows {
    fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty() && self.dns.is_empty()
    }
}

/// Every flow and DNS series; see the module documentation.
#[derive(Debug)]
pub struct FlowMetrics {
    temporality: Temporality,
    max_series: usize,
    processes: FxHashMap<u32, Vec<ProcessFlows>>,
    retired: Vec<ProcessFlows>,
    last_collect_ns: u64,
    overflowed: u64,
}

const TRANSMIT: usize = 0;
const RECEIVE: usize = 1;

impl FlowMetrics {
    pub fn new(temporality: Temporality, max_series: usize, now_unix_ns: u64) -> Self {
        Self {
            temporality,
            max_series: max_series.max(1),
            processes: FxHashMap::default(),
            retired: Vec::new(),
            last_collect_ns: now_unix_ns,
            overflowed: 0,
        }
    }

    /// Records that went to an overflow series since creation.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Series held, overflow series included, all processes.
    pub fn series_count(&self) -> usize {
        self.processes
            .values()
            .flatten()
            .chain(&self.retired)
            .map(|p| {
                p.tcp.series.len()
                    + usize::from(p.tcp.overflow.is_some())
                    + p.udp.series.len()
                    + usize::from(p.udp.overflow.is_some())
                    + p.dns.series.len()
                    + usize::from(p.dns.overflow.is_some())
            })
            .sum()
    }

    fn process(&mut self, identity: &Arc<ProcessIdentity>) -> &mut ProcessFlows {
        let same = |s: &ProcessFlows| Arc::ptr_eq(&s.identity, identity) || *s.identity == **identity;
        let live = self.processes.get(&identity.pid).and_then(|states| states.iter().position(same));
        // An exited process's series, retired but not yet exported once
        // more: the end of one of its connections joins them.
        if live.is_none() {
            if let Some(i) = self.retired.iter().position(same) {
                return &mut self.retired[i];
            }
        }
        let states = self.processes.entry(identity.pid).or_default();
        let index = live.unwrap_or_else(|| {
            states.push(ProcessFlows {
                identity: identity.clone(),
                tcp: Family::default(),
                udp: Family::default(),
                dns: Family::default(),
            });
            states.len() - 1
        });
        &mut states[index]
    }

    /// A pass begins: open-socket counts are rebuilt from what it finds.
    pub fn begin_pass(&mut self) {
        for p in self.processes.values_mut().flatten() {
            p.tcp.all_mut().for_each(|s| s.active = 0);
        }
    }

    pub fn record_tcp(&mut self, process: &Arc<ProcessIdentity>, key: &FlowKey, a: &TcpActivity) {
        let (max, start) = (self.max_series, self.last_collect_ns);
        let mut overflowed = self.overflowed;
        let s = self.process(process).tcp.get(key, max, || TcpSeries::new(start), &mut overflowed);
        s.bytes[TRANSMIT] += a.bytes_sent;
        s.bytes[RECEIVE] += a.bytes_received;
        s.segs[TRANSMIT] += a.segs_out;
        s.segs[RECEIVE] += a.segs_in;
        s.retrans += a.retrans;
        s.new_sockets += u64::from(a.new_socket);
        s.active += u64::from(a.live);
        if let Some(rtt) = a.rtt_us {
            s.rtt_sum_us += u64::from(rtt);
            s.rtt_samples += 1;
            s.rtt.record(u64::from(rtt) * 1000);
        }
        s.touched = true;
        s.connected = true;
        self.overflowed = overflowed;
    }

    /// A connection attempt that failed (it never carried data).
    pub fn record_failure(&mut self, process: &Arc<ProcessIdentity>, key: &FlowKey, reason: FailReason) {
        self.tcp_event(process, key, |s| {
            s.failures[FailReason::ALL.iter().position(|r| *r == reason).unwrap_or(4)] += 1;
            if reason == FailReason::Timeout {
                s.syn_timeouts += 1;
            }
        });
    }

    /// An active open that completed its handshake in `ns`.
    pub fn record_handshake(&mut self, process: &Arc<ProcessIdentity>, key: &FlowKey, ns: u64) {
        self.tcp_event(process, key, |s| s.handshake.record(ns));
    }

    /// A reset sent or received.
    pub fn record_reset(&mut self, process: &Arc<ProcessIdentity>, key: &FlowKey) {
        self.tcp_event(process, key, |s| s.resets += 1);
    }

    fn tcp_event(&mut self, process: &Arc<ProcessIdentity>, key: &FlowKey, f: impl FnOnce(&mut TcpSeries)) {
        let (max, start) = (self.max_series, self.last_collect_ns);
        let mut overflowed = self.overflowed;
        let s = self.process(process).tcp.get(key, max, || TcpSeries::new(start), &mut overflowed);
        f(s);
        s.touched = true;
        self.overflowed = overflowed;
    }

    /// A UDP pass begins: the sockets exchanging datagrams are counted anew.
    pub fn begin_udp_pass(&mut self) {
        for p in self.processes.values_mut().flatten() {
            p.udp.all_mut().for_each(|s| s.active = 0);
        }
    }

    /// What one UDP socket exchanged with `key`'s peer since the previous
    /// pass: (bytes, datagrams) each way. The socket counts as active.
    pub fn record_udp(
        &mut self,
        process: &Arc<ProcessIdentity>,
        key: &FlowKey,
        sent: (u64, u64),
        received: (u64, u64),
    ) {
        let (max, start) = (self.max_series, self.last_collect_ns);
        let mut overflowed = self.overflowed;
        let s = self.process(process).udp.get(key, max, || UdpSeries::new(start), &mut overflowed);
        s.bytes[TRANSMIT] += sent.0;
        s.datagrams[TRANSMIT] += sent.1;
        s.bytes[RECEIVE] += received.0;
        s.datagrams[RECEIVE] += received.1;
        s.active += 1;
        s.touched = true;
        self.overflowed = overflowed;
    }

    /// A DNS answer (`duration_ns` from its query) or, with `rcode` None in
    /// `key` and no duration, a query that timed out.
    pub fn record_dns(&mut self, process: &Arc<ProcessIdentity>, key: &DnsKey, duration_ns: Option<u64>) {
        let (max, start) = (self.max_series, self.last_collect_ns);
        let mut overflowed = self.overflowed;
        let s = self.process(process).dns.get(key, max, || DnsSeries::new(start), &mut overflowed);
        match duration_ns {
            Some(ns) => {
                s.responses += 1;
                s.duration.record(ns);
                s.duration_sum_ns += ns;
                s.duration_count += 1;
            }
            None => s.timeouts += 1,
        }
        s.touched = true;
        self.overflowed = overflowed;
    }

    /// The identity of `pid`'s latest series, retired ones included, when
    /// the process exited (`exit_seen`, or its series were retired): it
    /// keeps it for the ends of its connections. None for a live process.
    pub fn identity_after_exit(&self, pid: u32, exit_seen: bool) -> Option<Arc<ProcessIdentity>> {
        let retired = self.retired.iter().rev().find(|s| s.identity.pid == pid).map(|s| s.identity.clone());
        if !exit_seen && retired.is_none() {
            return None;
        }
        self.processes.get(&pid).and_then(|states| states.last()).map(|s| s.identity.clone()).or(retired)
    }

    /// The process exited: its series are exported once more, then dropped.
    pub fn forget_process(&mut self, pid: u32) {
        if let Some(states) = self.processes.remove(&pid) {
            self.retired.extend(states);
        }
    }

    /// A ResourceMetrics per process with flows, at `now_unix_ns`.
    pub fn collect(&mut self, now_unix_ns: u64, host: &HostInfo) -> Vec<ResourceMetrics> {
        let interval_start = self.last_collect_ns.min(now_unix_ns);
        let temporality = self.temporality;
        let mut states: Vec<&mut ProcessFlows> =
            self.processes.values_mut().flatten().chain(self.retired.iter_mut()).collect();
        states.sort_by_key(|s| s.identity.pid);
        let mut out = Vec::new();
        for state in states {
            let metrics = encode_process(state, temporality, interval_start, now_unix_ns);
            if metrics.is_empty() {
                continue;
            }
            out.push(ResourceMetrics {
                resource: Some(process_resource(&state.identity, host)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(crate::metrics::scope()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        self.retired.clear();
        // After an export: gauges of samples start over; delta sums too, and
        // a delta series with nothing new (and nothing open) goes.
        let delta = temporality == Temporality::Delta;
        self.processes.retain(|_, states| {
            for p in states.iter_mut() {
                p.tcp.retain(|s| {
                    let keep = !delta || s.touched || s.active > 0;
                    if delta {
                        s.reset_counts();
                    } else {
                        s.rtt_sum_us = 0;
                        s.rtt_samples = 0;
                    }
                    s.touched = false;
                    keep
                });
                p.udp.retain(|s| {
                    let keep = !delta || s.touched || s.active > 0;
                    if delta {
                        *s = UdpSeries { active: s.active, ..UdpSeries::new(s.start_ns) };
                    }
                    s.touched = false;
                    keep
                });
                p.dns.retain(|s| {
                    let keep = !delta || s.touched;
                    if delta {
                        *s = DnsSeries::new(s.start_ns);
                    } else {
                        s.duration_sum_ns = 0;
                        s.duration_count = 0;
                    }
                    s.touched = false;
                    keep
                });
            }
            states.retain(|s| !s.is_empty());
            !states.is_empty()
        });
        self.last_collect_ns = now_unix_ns;
        out
    }
}

/// Metric names, units, descriptions; the reducer-compatible ones first.
pub struct FlowMetricInfo {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
}

macro_rules! info {
    ($name:expr, $unit:expr, $desc:expr) => {
        FlowMetricInfo { name: $name, unit: $unit, description: $desc }
    };
}

const TCP_BYTES: FlowMetricInfo =
    info!("tcp.bytes", "By", "TCP payload bytes sent (acknowledged by the peer) or received.");
const TCP_PACKETS: FlowMetricInfo =
    info!("tcp.packets", "{packet}", "TCP segments sent (retransmissions included) or received.");
const TCP_RETRANS: FlowMetricInfo = info!("tcp.retrans", "{packet}", "TCP segments retransmitted.");
const TCP_NEW_SOCKETS: FlowMetricInfo = info!("tcp.new_sockets", "{socket}", "TCP connections opened.");
const TCP_ACTIVE: FlowMetricInfo = info!("tcp.active", "{socket}", "TCP connections open at the last pass.");
const TCP_RTT_AVERAGE: FlowMetricInfo =
    info!("tcp.rtt.average", "s", "Mean of the smoothed round-trip times sampled since the previous export.");
const TCP_RTT_COUNT: FlowMetricInfo =
    info!("tcp.rtt.num_measurements", "{measurement}", "Round-trip times sampled since the previous export.");
const TCP_SYN_TIMEOUTS: FlowMetricInfo =
    info!("tcp.syn_timeouts", "{connection}", "Connection attempts that got no answer.");
const TCP_RESETS: FlowMetricInfo = info!("tcp.resets", "{reset}", "TCP resets sent or received.");
const TCP_RTT: FlowMetricInfo =
    info!("tcp.rtt", "s", "Smoothed round-trip time of open TCP connections, sampled at every pass.");
const TCP_HANDSHAKE: FlowMetricInfo =
    info!("tcp.handshake.duration", "s", "Time from an active open's SYN to its established connection.");
const TCP_FAILURES: FlowMetricInfo =
    info!("tcp.connection.failures", "{connection}", "Connection attempts that failed, by reason (error.type).");
const UDP_BYTES: FlowMetricInfo = info!("udp.bytes", "By", "UDP payload bytes sent or received.");
const UDP_PACKETS: FlowMetricInfo = info!("udp.packets", "{datagram}", "UDP datagrams sent or received.");
const UDP_ACTIVE: FlowMetricInfo =
    info!("udp.active", "{socket}", "UDP sockets that exchanged datagrams with the peer since the previous pass.");
const DNS_RESPONSES: FlowMetricInfo =
    info!("dns.responses", "{response}", "DNS responses, by question and response code.");
const DNS_TIMEOUTS: FlowMetricInfo = info!("dns.timeouts", "{query}", "DNS queries that got no response in time.");
const DNS_CLIENT_AVERAGE: FlowMetricInfo = info!(
    "dns.client.duration.average",
    "s", "Mean time from a DNS query to its response, client side, since the previous export."
);
const DNS_SERVER_AVERAGE: FlowMetricInfo = info!(
    "dns.server.duration.average",
    "s", "Mean time from a DNS query received to its response sent, server side, since the previous export."
);
const DNS_LOOKUP: FlowMetricInfo =
    info!("dns.lookup.duration", "s", "Measures the time taken to perform a DNS lookup.");

/// Every flow and DNS metric, in export order.
pub const FLOW_METRICS: [&FlowMetricInfo; 20] = [
    &TCP_BYTES,
    &TCP_PACKETS,
    &TCP_RETRANS,
    &TCP_NEW_SOCKETS,
    &TCP_ACTIVE,
    &TCP_RTT_AVERAGE,
    &TCP_RTT_COUNT,
    &TCP_SYN_TIMEOUTS,
    &TCP_RESETS,
    &TCP_RTT,
    &TCP_HANDSHAKE,
    &TCP_FAILURES,
    &UDP_BYTES,
    &UDP_PACKETS,
    &UDP_ACTIVE,
    &DNS_RESPONSES,
    &DNS_TIMEOUTS,
    &DNS_CLIENT_AVERAGE,
    &DNS_SERVER_AVERAGE,
    &DNS_LOOKUP,
];

/// The names of the OpenTelemetry eBPF network reducer's metrics kept here
/// (with correct units: its "us" gauges hold seconds; ours say "s").
pub const REDUCER_METRIC_NAMES: [&str; 16] = [
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
];

/// Points of one metric being assembled.
#[derive(Default)]
struct Points {
    numbers: Vec<NumberDataPoint>,
    histograms: Vec<HistogramDataPoint>,
}

fn number(attributes: Vec<KeyValue>, start: u64, now: u64, value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(value),
    }
}

fn int(v: u64) -> number_data_point::Value {
    number_data_point::Value::AsInt(i64::try_from(v).unwrap_or(i64::MAX))
}

fn encode_process(p: &ProcessFlows, temporality: Temporality, interval_start: u64, now: u64) -> Vec<Metric> {
    let mut points: Vec<Points> = (0..FLOW_METRICS.len()).map(|_| Points::default()).collect();
    // A start no later than the point's time, as for the RED metrics: the
    // wall clock can step back between a series' start and an export.
    let start_of = |series_start: u64| {
        match temporality {
            Temporality::Cumulative => series_start,
            Temporality::Delta => interval_start,
        }
        .min(now)
    };
    let overflow_attrs = || vec![bool_attr("otel.metric.overflow", true)];
    let tcp = p.tcp.series.iter().map(|(k, s)| (Some(k), s)).chain(p.tcp.overflow.iter().map(|s| (None, s)));
    for (key, s) in tcp {
        let mut base = Vec::new();
        match key {
            Some(k) => k.attributes(Transport::Tcp, &mut base),
            None => base = overflow_attrs(),
        }
        let start = start_of(s.start_ns);
        let with = |extra: Option<KeyValue>| {
            let mut a = base.clone();
            a.extend(extra);
            a
        };
        if s.connected {
            for (dir, name) in [(TRANSMIT, "transmit"), (RECEIVE, "receive")] {
                let d = Some(str_attr("network.io.direction", name));
                points[0].numbers.push(number(with(d.clone()), start, now, int(s.bytes[dir])));
                points[1].numbers.push(number(with(d), start, now, int(s.segs[dir])));
            }
            points[2].numbers.push(number(with(None), start, now, int(s.retrans)));
            points[3].numbers.push(number(with(None), start, now, int(s.new_sockets)));
            points[4].numbers.push(number(with(None), 0, now, int(s.active)));
        }
        if s.rtt_samples > 0 {
            let mean_s = s.rtt_sum_us as f64 / s.rtt_samples as f64 / 1e6;
            points[5].numbers.push(number(with(None), 0, now, number_data_point::Value::AsDouble(mean_s)));
            points[6].numbers.push(number(with(None), 0, now, int(s.rtt_samples)));
        }
        if s.syn_timeouts > 0 {
            points[7].numbers.push(number(with(None), start, now, int(s.syn_timeouts)));
        }
        if s.resets > 0 {
            points[8].numbers.push(number(with(None), start, now, int(s.resets)));
        }
        if s.rtt.count() > 0 {
            points[9].histograms.push(s.rtt.to_point(with(None), start, now));
        }
        if s.handshake.count() > 0 {
            points[10].histograms.push(s.handshake.to_point(with(None), start, now));
        }
        for (reason, &n) in FailReason::ALL.iter().zip(&s.failures) {
            if n > 0 {
                let e = Some(str_attr("error.type", reason.as_str()));
                points[11].numbers.push(number(with(e), start, now, int(n)));
            }
        }
    }
    let udp = p.udp.series.iter().map(|(k, s)| (Some(k), s)).chain(p.udp.overflow.iter().map(|s| (None, s)));
    for (key, s) in udp {
        let mut base = Vec::new();
        match key {
            Some(k) => k.attributes(Transport::Udp, &mut base),
            None => base = overflow_attrs(),
        }
        let start = start_of(s.start_ns);
        for (dir, name) in [(TRANSMIT, "transmit"), (RECEIVE, "receive")] {
            let mut a = base.clone();
            a.push(str_attr("network.io.direction", name));
            points[12].numbers.push(number(a.clone(), start, now, int(s.bytes[dir])));
            points[13].numbers.push(number(a, start, now, int(s.datagrams[dir])));
        }
        points[14].numbers.push(number(base, 0, now, int(s.active)));
    }
    let dns = p.dns.series.iter().map(|(k, s)| (Some(k), s)).chain(p.dns.overflow.iter().map(|s| (None, s)));
    for (key, s) in dns {
        let attrs = match key {
            Some(k) => dns_attributes(k),
            None => overflow_attrs(),
        };
        let start = start_of(s.start_ns);
        let server = key.is_some_and(|k| k.role == Role::Server);
        if s.responses > 0 {
            points[15].numbers.push(number(attrs.clone(), start, now, int(s.responses)));
        }
        if s.timeouts > 0 {
            points[16].numbers.push(number(attrs.clone(), start, now, int(s.timeouts)));
        }
        if s.duration_count > 0 {
            let mean = s.duration_sum_ns as f64 / s.duration_count as f64 / 1e9;
            let i = if server { 18 } else { 17 };
            points[i].numbers.push(number(attrs.clone(), 0, now, number_data_point::Value::AsDouble(mean)));
        }
        // The conventions' lookup duration is the client's.
        if !server && s.duration.count() > 0 {
            points[19].histograms.push(s.duration.to_point(attrs, start, now));
        }
    }
    let temporality = temporality.otlp();
    let mut metrics = Vec::new();
    for (info, p) in FLOW_METRICS.iter().zip(points) {
        if p.numbers.is_empty() && p.histograms.is_empty() {
            continue;
        }
        let data = if !p.histograms.is_empty() {
            metric::Data::Histogram(OtlpHistogram { data_points: p.histograms, aggregation_temporality: temporality })
        } else if info.name.ends_with(".active")
            || info.name.contains(".average")
            || info.name.ends_with(".num_measurements")
        {
            metric::Data::Gauge(Gauge { data_points: p.numbers })
        } else {
            metric::Data::Sum(Sum { data_points: p.numbers, aggregation_temporality: temporality, is_monotonic: true })
        };
        metrics.push(Metric {
            name: info.name.to_string(),
            description: info.description.to_string(),
            unit: info.unit.to_string(),
            metadata: Vec::new(),
            data: Some(data),
        });
    }
    metrics
}

fn dns_attributes(k: &DnsKey) -> Vec<KeyValue> {
    let mut a = vec![
        str_attr("dns.question.name", &*k.name),
        str_attr(DNS_TYPE_ATTRIBUTE, super::dns::type_name(k.qtype)),
        str_attr("network.peer.address", k.peer.to_string()),
        str_attr("network.transport", k.transport.as_str()),
        str_attr(ROLE_ATTRIBUTE, role_str(k.role)),
    ];
    match k.rcode {
        Some(0) => {}
        Some(rcode) => a.push(str_attr("error.type", super::dns::rcode_name(rcode))),
        None => a.push(str_attr("error.type", "timeout")),
    }
    a
}
