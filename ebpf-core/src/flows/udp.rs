//! UDP flows: the kernel's cumulative counters per socket, process and peer
//! (`udp_flows`, `ebpf-probes/bpf/udp_flows.h`) turned into deltas at each
//! pass, with the socket's role and the server's port.
//!
//! - A socket is a client when its first datagram went out, a server when it
//!   came in (as the data path decides for UDP connections): of a socket's
//!   entries, the one made first tells, and the decision is kept while the
//!   socket has entries.
//! - A client's server port is the peer's; a server's is its own (never a
//!   client's ephemeral port).
//! - The peer is unknown for what an unconnected socket receives (the
//!   kernel writes the sender to the caller after the probes ran) and for
//!   sends the probes cannot read (`sendmmsg`, io_uring). What a client
//!   socket receives from an unknown peer goes to its peer when it sent to
//!   exactly one (a resolver, a metrics sink); otherwise it stays unknown
//!   (`network.peer.address` absent).
//! - An entry idle for a whole pass is deleted from the kernel map (the
//!   caller does it): the map holds only recent conversations.

use std::net::{IpAddr, Ipv6Addr};

use ebpf_probes::abi;
use rustc_hash::FxHashMap;

use crate::protocol::Role;

/// A socket's cumulative UDP counters for one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounters {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
}

impl UdpCounters {
    fn since(&self, earlier: &UdpCounters) -> Option<UdpCounters> {
        Some(UdpCounters {
            bytes_sent: self.bytes_sent.checked_sub(earlier.bytes_sent)?,
            bytes_received: self.bytes_received.checked_sub(earlier.bytes_received)?,
            datagrams_sent: self.datagrams_sent.checked_sub(earlier.datagrams_sent)?,
            datagrams_received: self.datagrams_received.checked_sub(earlier.datagrams_received)?,
        })
    }

    fn add(&mut self, other: &UdpCounters) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.datagrams_sent += other.datagrams_sent;
        self.datagrams_received += other.datagrams_received;
    }

    pub fn is_zero(&self) -> bool {
        *self == UdpCounters::default()
    }
}

/// One entry of the kernel map, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSample {
    pub cookie: u64,
    pub tgid: u32,
    pub netns: u32,
    /// None: unknown.
    pub peer: Option<(IpAddr, u16)>,
    pub local_port: u16,
    pub counters: UdpCounters,
    /// When the entry's first datagram moved (monotonic), and its direction.
    pub first_ns: u64,
    pub first_egress: bool,
}

impl UdpSample {
    /// A sample for tests: counters `[bytes sent, bytes received,
    /// datagrams sent, datagrams received]`, namespace 1.
    #[cfg(test)]
    pub(crate) fn for_test(
        cookie: u64,
        tgid: u32,
        peer: Option<(&str, u16)>,
        local_port: u16,
        c: [u64; 4],
        first_ns: u64,
        first_egress: bool,
    ) -> Self {
        Self {
            cookie,
            tgid,
            netns: 1,
            peer: peer.map(|(a, p)| (a.parse().expect("test address"), p)),
            local_port,
            counters: UdpCounters {
                bytes_sent: c[0],
                bytes_received: c[1],
                datagrams_sent: c[2],
                datagrams_received: c[3],
            },
            first_ns,
            first_egress,
        }
    }

    pub fn from_kernel(k: &abi::oe_udp_flow_key, v: &abi::oe_udp_flow) -> Self {
        let unknown = k.peer_port == 0 && k.peer_addr == [0; 16];
        Self {
            cookie: k.cookie,
            tgid: k.tgid,
            netns: v.netns,
            peer: (!unknown).then(|| (super::canonical(IpAddr::V6(Ipv6Addr::from(k.peer_addr))), k.peer_port)),
            local_port: k.local_port,
            counters: UdpCounters {
                bytes_sent: v.bytes_sent,
                bytes_received: v.bytes_received,
                datagrams_sent: v.datagrams_sent,
                datagrams_received: v.datagrams_received,
            },
            first_ns: v.first_ns,
            first_egress: u32::from(v.first_dir) == abi::OE_DIR_EGRESS,
        }
    }

    /// The kernel map's key of this entry.
    pub fn kernel_key(&self) -> abi::oe_udp_flow_key {
        let (addr, port) = match self.peer {
            Some((IpAddr::V4(v4), port)) => (v4.to_ipv6_mapped().octets(), port),
            Some((IpAddr::V6(v6), port)) => (v6.octets(), port),
            None => ([0; 16], 0),
        };
        abi::oe_udp_flow_key {
            cookie: self.cookie,
            peer_addr: addr,
            tgid: self.tgid,
            peer_port: port,
            local_port: self.local_port,
        }
    }

    fn key(&self) -> EntryKey {
        (self.cookie, self.tgid, self.peer, self.local_port)
    }
}

/// An address and a port; None: unknown.
type Peer = Option<(IpAddr, u16)>;
type EntryKey = (u64, u32, Peer, u16);

/// What one socket of one process exchanged with one peer since the previous pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDelta {
    pub tgid: u32,
    /// None: unknown.
    pub peer: Option<IpAddr>,
    pub server_port: u16,
    pub role: Role,
    pub delta: UdpCounters,
    /// The process at the other end, when it is on this host (loopback).
    pub peer_tgid: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Socket {
    role: Role,
    first_ns: u64,
    /// The last pass that saw it, and the first.
    seen: u64,
    since: u64,
}

/// Entries and sockets between passes.
#[derive(Debug, Default)]
pub struct UdpTable {
    entries: FxHashMap<EntryKey, UdpCounters>,
    sockets: FxHashMap<u64, Socket>,
    passes: u64,
}

impl UdpTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One pass over every entry of the kernel map: deltas with something in
    /// them go to `out`; the indexes of entries that moved nothing since the
    /// previous pass go to `idle` (to delete from the kernel map).
    pub fn pass(&mut self, samples: &[UdpSample], out: &mut Vec<UdpDelta>, idle: &mut Vec<usize>) {
        self.passes += 1;
        let pass = self.passes;
        // Each socket's role: its earliest entry's first direction, kept
        // while the socket has entries.
        for s in samples {
            let role = if s.first_egress { Role::Client } else { Role::Server };
            let socket =
                self.sockets.entry(s.cookie).or_insert(Socket { role, first_ns: s.first_ns, seen: pass, since: pass });
            // First seen in this pass: of its entries, the earliest decides.
            if socket.since == pass && s.first_ns < socket.first_ns {
                socket.role = role;
                socket.first_ns = s.first_ns;
            }
            socket.seen = pass;
        }
        // A client socket's one known peer, for what it received from an unknown one.
        let mut only_peer: FxHashMap<(u64, u32), Option<(IpAddr, u16)>> = FxHashMap::default();
        for s in samples {
            if let Some(p) = s.peer {
                only_peer.entry((s.cookie, s.tgid)).and_modify(|o| *o = o.filter(|o| *o == p)).or_insert(Some(p));
            }
        }
        // Loopback peers: the process whose socket has the peer's port.
        let mut by_port: FxHashMap<(u32, u16), u32> = FxHashMap::default();
        for s in samples {
            by_port.entry((s.netns, s.local_port)).or_insert(s.tgid);
        }
        // An unknown peer's entry given to the socket's one peer joins that peer's.
        let mut merged: FxHashMap<(u64, u32, Peer), UdpDelta> = FxHashMap::default();
        for (i, s) in samples.iter().enumerate() {
            let key = s.key();
            let delta = match self.entries.get(&key) {
                Some(prev) => s.counters.since(prev).unwrap_or(s.counters),
                None => s.counters,
            };
            if delta.is_zero() {
                idle.push(i);
                self.entries.remove(&key);
                continue;
            }
            self.entries.insert(key, s.counters);
            let role = self.sockets.get(&s.cookie).map_or(Role::Client, |k| k.role);
            let peer = match (s.peer, role) {
                (None, Role::Client) => only_peer.get(&(s.cookie, s.tgid)).copied().flatten(),
                (peer, _) => peer,
            };
            let server_port = match role {
                Role::Client => peer.map_or(0, |p| p.1),
                Role::Server => s.local_port,
            };
            let peer_tgid = peer.filter(|p| p.0.is_loopback()).and_then(|p| by_port.get(&(s.netns, p.1)).copied());
            let slot = merged.entry((s.cookie, s.tgid, peer)).or_insert_with(|| UdpDelta {
                tgid: s.tgid,
                peer: peer.map(|p| p.0),
                server_port,
                role,
                delta: UdpCounters::default(),
                peer_tgid,
            });
            slot.delta.add(&delta);
        }
        out.extend(merged.into_values());
        self.sockets.retain(|_, s| s.seen + 1 >= pass);
        if self.entries.capacity() > 4 * self.entries.len() + 1024 {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sample(cookie: u64, peer: Option<(&str, u16)>, local_port: u16, c: [u64; 4], first_egress: bool) -> UdpSample {
        UdpSample::for_test(cookie, 100, peer, local_port, c, 1000 + cookie, first_egress)
    }

    fn pass(t: &mut UdpTable, samples: &[UdpSample]) -> (Vec<UdpDelta>, Vec<usize>) {
        let (mut out, mut idle) = (Vec::new(), Vec::new());
        t.pass(samples, &mut out, &mut idle);
        out.sort_by_key(|d| (d.peer, d.tgid));
        (out, idle)
    }

    #[test]
    fn cumulative_counters_give_deltas_and_idle_entries_go() {
        let mut t = UdpTable::new();
        let (d, idle) = pass(&mut t, &[sample(1, Some(("10.0.0.2", 53)), 40000, [100, 300, 2, 2], true)]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].role, d[0].server_port, d[0].peer), (Role::Client, 53, Some(ip("10.0.0.2"))));
        assert_eq!(
            d[0].delta,
            UdpCounters { bytes_sent: 100, bytes_received: 300, datagrams_sent: 2, datagrams_received: 2 }
        );
        assert!(idle.is_empty());
        let (d, _) = pass(&mut t, &[sample(1, Some(("10.0.0.2", 53)), 40000, [150, 300, 3, 2], true)]);
        assert_eq!((d[0].delta.bytes_sent, d[0].delta.datagrams_sent, d[0].delta.bytes_received), (50, 1, 0));
        let (d, idle) = pass(&mut t, &[sample(1, Some(("10.0.0.2", 53)), 40000, [150, 300, 3, 2], true)]);
        assert!(d.is_empty());
        assert_eq!(idle, [0]);
        assert!(t.is_empty());
        // Deleted, then made again by the kernel: counted from zero.
        let (d, _) = pass(&mut t, &[sample(1, Some(("10.0.0.2", 53)), 40000, [10, 0, 1, 0], true)]);
        assert_eq!(d[0].delta.bytes_sent, 10);
    }

    #[test]
    fn a_server_reports_its_own_port_and_the_socket_role_holds_for_every_peer() {
        let mut t = UdpTable::new();
        // A server: a request in from an unknown peer (recvfrom) made the
        // first entry; its answers went to named clients (sendto).
        let mut first = sample(7, None, 8125, [0, 500, 0, 5], false);
        first.first_ns = 10;
        let mut a = sample(7, Some(("10.0.0.5", 51000)), 8125, [40, 0, 1, 0], true);
        a.first_ns = 20;
        let (d, _) = pass(&mut t, &[a, first]);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.role == Role::Server && d.server_port == 8125), "{d:?}");
        let unknown = d.iter().find(|d| d.peer.is_none()).unwrap();
        assert_eq!((unknown.delta.bytes_received, unknown.delta.datagrams_received), (500, 5));
    }

    #[test]
    fn a_client_with_one_peer_gets_what_it_received_from_an_unknown_one() {
        let mut t = UdpTable::new();
        let sent = sample(3, Some(("10.0.0.53", 53)), 40000, [60, 0, 2, 0], true);
        let mut got = sample(3, None, 40000, [0, 200, 0, 2], false);
        got.first_ns = sent.first_ns + 1;
        let (d, _) = pass(&mut t, &[sent.clone(), got.clone()]);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].role, d[0].server_port, d[0].peer), (Role::Client, 53, Some(ip("10.0.0.53"))));
        assert_eq!(
            d[0].delta,
            UdpCounters { bytes_sent: 60, bytes_received: 200, datagrams_sent: 2, datagrams_received: 2 }
        );
        // Two peers: what came back stays unknown, and has no server port.
        let other = sample(3, Some(("10.0.0.54", 53)), 40000, [30, 0, 1, 0], true);
        got.counters.bytes_received = 300;
        got.counters.datagrams_received = 3;
        let (d, _) = pass(&mut t, &[sent, got, other]);
        let unknown = d.iter().find(|d| d.peer.is_none()).unwrap();
        assert_eq!((unknown.role, unknown.server_port, unknown.delta.bytes_received), (Role::Client, 0, 100));
        assert_eq!(d.iter().find(|d| d.peer == Some(ip("10.0.0.54"))).unwrap().delta.bytes_sent, 30);
    }

    #[test]
    fn a_loopback_peer_is_named_by_the_socket_on_its_port() {
        let mut t = UdpTable::new();
        let client = sample(1, Some(("127.0.0.1", 9000)), 40000, [10, 0, 1, 0], true);
        let server = UdpSample { cookie: 2, tgid: 200, ..sample(2, None, 9000, [0, 10, 0, 1], false) };
        let (d, _) = pass(&mut t, &[client, server]);
        let c = d.iter().find(|d| d.tgid == 100).unwrap();
        assert_eq!((c.peer_tgid, c.server_port), (Some(200), 9000));
    }

    #[test]
    fn kernel_keys_round_trip() {
        for peer in [Some(("10.1.2.3", 53)), Some(("fd00::1", 443)), None] {
            let s = sample(9, peer, 1234, [1, 2, 3, 4], true);
            let k = s.kernel_key();
            let v = abi::oe_udp_flow {
                bytes_sent: 1,
                bytes_received: 2,
                datagrams_sent: 3,
                datagrams_received: 4,
                first_ns: s.first_ns,
                netns: 1,
                first_dir: abi::OE_DIR_EGRESS as u16,
                _pad: 0,
            };
            assert_eq!(UdpSample::from_kernel(&k, &v), s);
        }
    }
}
