//! Network flows and DNS: who talks to whom, how much and how badly, with no
//! work per packet.
//!
//! - `records`: the kernel iterator's records (`oe_flow_sock`) decoded.
//! - `sockets`: cumulative socket counters between passes → deltas.
//! - `udp`: the kernel's UDP counters per socket and peer → deltas.
//! - `dns`: queries and answers parsed, matched, timed; names of addresses.
//! - `metrics`: series per local process × peer × port × transport × role,
//!   bounded, encoded as OTLP.
//!
//! [`Flows`] ties them together: the worker hands it each iterator pass and
//! each DNS payload, and the metrics export collects it with the HTTP
//! metrics (same interval, same temporality, same series limit).

pub mod dns;
pub mod metrics;
pub mod records;
pub mod sockets;
#[cfg(test)]
mod tests;
pub mod udp;

use std::borrow::Borrow;
use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::MetricsConfig;
use crate::otlp::HostInfo;
use crate::process::ProcessIdentity;
use crate::protocol::Role;

pub use metrics::{FailReason, FlowKey, FlowMetrics, TcpActivity, Transport, FLOW_METRICS, REDUCER_METRIC_NAMES};
pub use sockets::{Counters, SocketDelta, SocketSample, SocketTable};
pub use udp::{UdpCounters, UdpDelta, UdpSample, UdpTable};

/// `flows` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Network flow metrics (`tcp.*`, `udp.*`) of every process and peer.
    /// Cheap by design: nothing runs per packet.
    pub enabled: bool,
    /// How often the kernel's socket counters are read (RTT sampled, open
    /// connections counted). Points are exported with the other metrics,
    /// every `metrics.interval`.
    #[schemars(range(min = MIN_FLOWS_INTERVAL_MS, max = MAX_FLOWS_INTERVAL_MS), extend("x-unit" = "ms"))]
    pub interval_ms: u64,
    /// UDP flows too (`udp.*`).
    pub udp: bool,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self { enabled: true, interval_ms: 10_000, udp: true }
    }
}

/// `dns` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// DNS queries and answers on port 53: `dns.*` metrics, and the names
    /// that answers give peers (`server.address` of flows).
    pub enabled: bool,
    /// A query unanswered this long counts as a timeout.
    #[schemars(range(min = MIN_DNS_TIMEOUT_MS, max = MAX_DNS_TIMEOUT_MS), extend("x-unit" = "ms"))]
    pub timeout_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { enabled: true, timeout_ms: 5_000 }
    }
}

/// Bounds of `flows.interval_ms`: 1 s to an hour.
const MIN_FLOWS_INTERVAL_MS: u64 = 1_000;
const MAX_FLOWS_INTERVAL_MS: u64 = 3_600_000;
/// Bounds of `dns.timeout_ms`: 100 ms to 10 minutes.
const MIN_DNS_TIMEOUT_MS: u64 = 100;
const MAX_DNS_TIMEOUT_MS: u64 = 600_000;
/// Queries waiting for an answer at once, at most.
const MAX_PENDING_DNS: usize = 65_536;
/// Handshakes waiting for the next pass, at most (beyond: recorded at once).
const MAX_PENDING_HANDSHAKES: usize = 65_536;
/// Addresses with a name, at most.
const MAX_NAMES: usize = 65_536;

impl FlowsConfig {
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.interval_ms)
    }
}

/// Who a pid is, or None when it is not traced (selection, or gone).
pub trait Identities {
    fn identity(&mut self, pid: u32) -> Option<Arc<ProcessIdentity>>;
}

impl<F: FnMut(u32) -> Option<Arc<ProcessIdentity>>> Identities for F {
    fn identity(&mut self, pid: u32) -> Option<Arc<ProcessIdentity>> {
        self(pid)
    }
}

/// Flow and DNS state; see the module documentation.
#[derive(Debug)]
pub struct Flows {
    sockets: SocketTable,
    udp: UdpTable,
    udp_deltas: Vec<UdpDelta>,
    metrics: FlowMetrics,
    dns: Option<dns::DnsTracker>,
    names: dns::NameCache,
    outcomes: Vec<dns::DnsOutcome>,
    events: Vec<records::FlowEvent>,
    /// Handshakes of connections no pass has seen yet.
    handshakes: Vec<(SocketSample, u64)>,
    /// Identities resolved since the last pass: the end of a connection
    /// read after its process (or its peer) exited keeps the series it had
    /// while the process lived. Emptied at the start of each pass.
    known: rustc_hash::FxHashMap<u32, Option<Arc<ProcessIdentity>>>,
    /// Processes exited since the last pass (their names go at its end).
    exited: Vec<u32>,
    /// Monotonic time of the last pass (names expire by it).
    now_ns: u64,
    /// Passes done, and records the iterator wrote that did not decode.
    pub passes: u64,
    pub bad_records: u64,
}

impl Flows {
    pub fn new(metrics: &MetricsConfig, dns: &DnsConfig, now_unix_ns: u64) -> Self {
        Self {
            sockets: SocketTable::new(),
            udp: UdpTable::new(),
            udp_deltas: Vec::new(),
            metrics: FlowMetrics::new(metrics.temporality, metrics.max_series_per_metric, now_unix_ns),
            dns: dns.enabled.then(|| dns::DnsTracker::new(dns.timeout_ms.saturating_mul(1_000_000), MAX_PENDING_DNS)),
            names: dns::NameCache::new(MAX_NAMES),
            outcomes: Vec::new(),
            events: Vec::new(),
            handshakes: Vec::new(),
            known: Default::default(),
            exited: Vec::new(),
            now_ns: 0,
            passes: 0,
            bad_records: 0,
        }
    }

    /// One iterator pass: `records` is what the iterator wrote.
    pub fn pass(&mut self, records: &[u8], now_ns: u64, identities: &mut impl Identities) {
        self.bad_records += records::bad_records(records);
        self.pass_iter(records::samples(records), now_ns, identities);
    }

    pub fn pass_samples(&mut self, samples: &[SocketSample], now_ns: u64, identities: &mut impl Identities) {
        self.pass_iter(samples.iter(), now_ns, identities);
    }

    fn pass_iter<I>(&mut self, samples: I, now_ns: u64, identities: &mut impl Identities)
    where
        I: IntoIterator<Item: Borrow<SocketSample>, IntoIter: Clone>,
    {
        self.now_ns = now_ns;
        self.passes += 1;
        // Resolved afresh once per pass (an exec changes an identity), then
        // kept until the next one.
        self.known.clear();
        self.metrics.begin_pass();
        // Each delta recorded as the table makes it: a list of them would
        // cost ~100 bytes per socket of the host.
        let mut sockets = std::mem::take(&mut self.sockets);
        sockets.pass(samples, |d| self.record_delta(&d, identities));
        self.sockets = sockets;
        for (h, ns) in std::mem::take(&mut self.handshakes) {
            if self.sockets.unreported(&h) {
                self.handshakes.push((h, ns));
                continue;
            }
            self.connection_event(&h, identities, |m, p, k| m.record_handshake(p, k, ns));
        }
        // Processes that exited before this pass: the ends of their
        // connections, read since, went to their series and were named
        // while they lived.
        for pid in self.exited.drain(..) {
            self.metrics.forget_process(pid);
        }
    }

    /// The UDP flow table read from the kernel at this pass (after
    /// `pass_samples`, which sets the time): deltas recorded; the indexes of
    /// entries idle since the previous pass go to `idle`, for the caller to
    /// delete from the kernel map.
    pub fn udp_pass(&mut self, samples: &[UdpSample], idle: &mut Vec<usize>, identities: &mut impl Identities) {
        let mut deltas = std::mem::take(&mut self.udp_deltas);
        deltas.clear();
        self.udp.pass(samples, &mut deltas, idle);
        self.metrics.begin_udp_pass();
        for d in &deltas {
            let Some(process) = self.identity(d.tgid, identities) else { continue };
            let peer = d.peer.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
            let key = self.key(peer, d.server_port, d.role, d.peer_tgid, identities);
            let c = &d.delta;
            self.metrics.record_udp(
                &process,
                &key,
                (c.bytes_sent, c.datagrams_sent),
                (c.bytes_received, c.datagrams_received),
            );
        }
        self.udp_deltas = deltas;
    }

    /// A TCP socket's last counters, at its destruction.
    pub fn close(&mut self, closed: &SocketSample, identities: &mut impl Identities) {
        if let Some(d) = self.sockets.close(closed) {
            self.record_delta(&d, identities);
        }
    }

    /// Connection events (`oe_flow_event`s) read from the kernel since the
    /// last call; read them before each pass, so that a socket's end is
    /// matched with the pass that saw it last.
    pub fn events(&mut self, bytes: &[u8], identities: &mut impl Identities) {
        let mut events = std::mem::take(&mut self.events);
        self.bad_records += records::decode_events(bytes, &mut events);
        for e in events.drain(..) {
            match e {
                records::FlowEvent::Close(s) => {
                    // Its handshake, still waiting for a pass: the same series as its bytes.
                    if let Some(i) = self.handshakes.iter().position(|(h, _)| h.cookie == s.cookie) {
                        let (h, ns) = self.handshakes.swap_remove(i);
                        self.connection_event(&h, identities, |m, p, k| m.record_handshake(p, k, ns));
                    }
                    self.close(&s, identities)
                }
                // Recorded at the next pass, which names the peer's process
                // as it does for the connection's bytes.
                records::FlowEvent::Handshake(s, ns) => {
                    if self.handshakes.len() < MAX_PENDING_HANDSHAKES {
                        self.handshakes.push((s, ns));
                    } else {
                        self.connection_event(&s, identities, |m, p, k| m.record_handshake(p, k, ns));
                    }
                }
                records::FlowEvent::Failed(s, errno) => {
                    let reason = FailReason::from_errno(errno);
                    self.connection_event(&s, identities, |m, p, k| m.record_failure(p, k, reason))
                }
                records::FlowEvent::Reset(s) => self.connection_event(&s, identities, |m, p, k| m.record_reset(p, k)),
            }
        }
        self.events = events;
    }

    fn connection_event(
        &mut self,
        s: &SocketSample,
        identities: &mut impl Identities,
        record: impl FnOnce(&mut FlowMetrics, &Arc<ProcessIdentity>, &FlowKey),
    ) {
        let Some(owner) = self.sockets.owner(s) else { return };
        let Some(process) = self.identity(owner.tgid, identities) else { return };
        let key = self.key(s.peer.0, owner.server_port, owner.role, owner.peer_tgid, identities);
        record(&mut self.metrics, &process, &key);
    }

    fn record_delta(&mut self, d: &SocketDelta, identities: &mut impl Identities) {
        let Some(process) = self.identity(d.tgid, identities) else { return };
        let key = self.key(d.peer, d.server_port, d.role, d.peer_tgid, identities);
        let a = TcpActivity {
            bytes_sent: d.delta.bytes_sent,
            bytes_received: d.delta.bytes_received,
            segs_out: d.delta.segs_out,
            segs_in: d.delta.segs_in,
            retrans: d.delta.retrans,
            new_socket: d.new,
            live: d.live,
            rtt_us: d.rtt_us,
        };
        self.metrics.record_tcp(&process, &key, &a);
    }

    fn identity(&mut self, pid: u32, identities: &mut impl Identities) -> Option<Arc<ProcessIdentity>> {
        if let Some(known) = self.known.get(&pid) {
            return known.clone();
        }
        // A process that exited: the ends of its connections (read after
        // its exit, often after a pass that no longer listed them) go to
        // the series it had. Read again now, it would be another identity
        // (its /proc entry gone), and its connection two series.
        let kept = self.metrics.identity_after_exit(pid, self.exited.contains(&pid));
        let identity = kept.or_else(|| identities.identity(pid));
        self.known.insert(pid, identity.clone());
        identity
    }

    fn key(
        &mut self,
        peer: IpAddr,
        server_port: u16,
        role: Role,
        peer_tgid: Option<u32>,
        identities: &mut impl Identities,
    ) -> FlowKey {
        let peer = canonical(peer);
        let peer_service =
            peer_tgid.and_then(|pid| self.identity(pid, identities)).map(|p| Arc::from(p.service_name.as_str()));
        FlowKey { peer, server_port, role, peer_name: self.names.get(&peer, self.now_ns).cloned(), peer_service }
    }

    /// A payload on a port-53 connection.
    pub fn dns_packet(&mut self, p: &dns::DnsPacket<'_>, identities: &mut impl Identities) {
        let Some(tracker) = &mut self.dns else { return };
        let mut out = std::mem::take(&mut self.outcomes);
        tracker.packet(p, &mut out);
        for (name, addresses) in tracker.unasked.drain(..) {
            for (ip, ttl) in addresses {
                self.names.insert(canonical(ip), &name, ttl, self.now_ns);
            }
        }
        self.record_dns(&mut out, identities);
        self.outcomes = out;
    }

    /// A connection ended: its partial DNS-over-TCP messages go.
    pub fn dns_close(&mut self, conn_id: u64) {
        if let Some(tracker) = &mut self.dns {
            tracker.close(conn_id);
        }
    }

    /// Periodic work: DNS queries past their timeout.
    pub fn tick(&mut self, now_ns: u64, identities: &mut impl Identities) {
        let Some(tracker) = &mut self.dns else { return };
        let mut out = std::mem::take(&mut self.outcomes);
        tracker.expire(now_ns, &mut out);
        self.record_dns(&mut out, identities);
        self.outcomes = out;
    }

    fn record_dns(&mut self, out: &mut Vec<dns::DnsOutcome>, identities: &mut impl Identities) {
        for o in out.drain(..) {
            // Names come from answers to clients on this host.
            if o.role == Role::Client && o.rcode == Some(0) {
                for (ip, ttl) in &o.addresses {
                    self.names.insert(canonical(*ip), &o.name, *ttl, self.now_ns);
                }
            }
            let Some(process) = self.identity(o.tgid, identities) else { continue };
            let key = metrics::DnsKey {
                role: o.role,
                peer: canonical(o.peer),
                transport: o.transport,
                name: o.name,
                qtype: o.qtype,
                rcode: o.rcode,
            };
            self.metrics.record_dns(&process, &key, o.duration_ns);
        }
    }

    /// DNS counters: (malformed messages, unmatched answers, queries dropped).
    pub fn dns_counters(&self) -> (u64, u64, u64) {
        self.dns.as_ref().map_or((0, 0, 0), |t| (t.malformed, t.unmatched, t.dropped))
    }

    /// Records in an overflow series since start.
    pub fn overflowed(&self) -> u64 {
        self.metrics.overflowed()
    }

    /// A process exited: its series are exported one last time and dropped
    /// at the end of the next pass, since the ends of its connections may
    /// be read after its exit.
    pub fn forget_process(&mut self, pid: u32) {
        self.exited.push(pid);
    }

    /// Sockets tracked between passes.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    pub fn collect(&mut self, now_unix_ns: u64, host: &HostInfo) -> Vec<ResourceMetrics> {
        self.metrics.collect(now_unix_ns, host)
    }

    /// The metrics model, for recording events that are not socket counters
    /// (handshakes, failures, resets, UDP datagrams).
    pub fn metrics_mut(&mut self) -> &mut FlowMetrics {
        &mut self.metrics
    }
}

/// IPv4-mapped IPv6 addresses as IPv4 (a dual-stack socket's IPv4 peers).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
