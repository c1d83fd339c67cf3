//! Per-socket state between iterator passes: cumulative kernel counters in,
//! deltas out.
//!
//! A pass is a snapshot of every TCP socket some process holds (see
//! `ebpf-probes/bpf/flows.bpf.c`). Each socket is known by its cookie (unique
//! per boot, never reused) or, when nothing has asked the kernel for a cookie
//! yet, by its network namespace and four addresses (unique among live
//! connected sockets of a namespace). Between two passes:
//!
//! - a socket seen before gives the difference of its counters;
//! - a socket new since the previous pass gives all of its counters (it was
//!   opened since), except at the first pass, where every socket is older
//!   than the receiver: its counters are the baseline and count from zero
//!   (a week-old connection must not show a week of bytes in ten seconds);
//! - a socket whose counters went down, or whose peer changed, was reset
//!   (`connect(AF_UNSPEC)` then a new connection keeps the socket and its
//!   cookie but zeroes the counters): it counts as new;
//! - a socket missing from a pass was closed: its destruction reports its
//!   last counters (`close`), which give what it moved after the previous
//!   pass, or all of it for a connection opened and closed between two
//!   passes. Its entry stays one more pass, for a destruction that is read
//!   after the pass that no longer saw it.

use std::borrow::Borrow;
use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::protocol::Role;

/// An address and a port.
type Endpoint = (IpAddr, u16);

/// TCP states, as the kernel numbers them (`include/net/tcp_states.h`).
pub const TCP_LISTEN: u8 = 10;

/// One socket of a pass, decoded from `oe_flow_sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSample {
    /// 0: the kernel has not made one for this socket.
    pub cookie: u64,
    pub tgid: u32,
    pub netns: u32,
    pub local: (IpAddr, u16),
    pub peer: (IpAddr, u16),
    pub state: u8,
    pub counters: Counters,
    /// Smoothed round-trip time; 0 when none was measured yet.
    pub srtt_us: u32,
}

/// A socket's cumulative counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub retrans: u64,
}

impl Counters {
    /// `self - earlier`, or None when any counter went down (the socket was reset).
    fn since(&self, earlier: &Counters) -> Option<Counters> {
        Some(Counters {
            bytes_sent: self.bytes_sent.checked_sub(earlier.bytes_sent)?,
            bytes_received: self.bytes_received.checked_sub(earlier.bytes_received)?,
            segs_out: self.segs_out.checked_sub(earlier.segs_out)?,
            segs_in: self.segs_in.checked_sub(earlier.segs_in)?,
            retrans: self.retrans.checked_sub(earlier.retrans)?,
        })
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// A 64-bit fingerprint of a connection's namespace and addresses: a
/// socket's entry keeps this instead of its two endpoints (8 bytes instead
/// of 40, on hosts with hundreds of thousands of sockets). Every word goes
/// through a full avalanche (splitmix64's finaliser), so that structured
/// inputs (neighbouring ports and addresses) collide no more than random
/// ones: about 1 in 2^64 per pair.
fn fingerprint(netns: u32, local: Endpoint, peer: Endpoint) -> u64 {
    fn mix(h: u64, w: u64) -> u64 {
        let mut z = (h ^ w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(a) => (u128::from(a.to_bits()), 4u64),
        IpAddr::V6(a) => (a.to_bits(), 6u64),
    };
    let ((l, lv), (p, pv)) = (bits(local.0), bits(peer.0));
    let ports = u64::from(netns) << 32 | u64::from(local.1) << 16 | u64::from(peer.1);
    [l as u64, (l >> 64) as u64, p as u64, (p >> 64) as u64, ports, lv << 8 | pv].into_iter().fold(0, mix)
}

/// What identifies a socket across passes: its cookie, or (the top bit
/// set, which no cookie reaches) the fingerprint of its namespace and
/// addresses.
fn key_of(s: &SocketSample, tuple: u64) -> u64 {
    if s.cookie != 0 {
        s.cookie
    } else {
        addresses_key(tuple)
    }
}

fn addresses_key(tuple: u64) -> u64 {
    tuple | 1 << 63
}

/// One socket between passes: fixed size (64 bytes), no endpoint, no
/// string; the pass's sample gives the endpoints.
#[derive(Debug, Clone)]
struct Entry {
    /// `fingerprint` of its namespace and addresses: a different one under
    /// the same cookie is a new connection.
    tuple: u64,
    counters: Counters,
    tgid: u32,
    /// The process at the other end, once known (0: not known): kept, so
    /// that the connection's series does not change when the peer's socket
    /// leaves the pass first (it closed first).
    peer_tgid: u32,
    /// The pass that last saw it.
    pass: u32,
    role: Role,
    /// Seen by a pass, not reported yet (its counters are still zero): a
    /// client whose peer may be a process here that has not accepted it.
    unreported: bool,
}

impl Entry {
    fn peer_tgid(&self) -> Option<u32> {
        (self.peer_tgid != 0).then_some(self.peer_tgid)
    }
}

/// What one socket did since the previous pass, ready to aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketDelta {
    pub tgid: u32,
    pub peer: IpAddr,
    /// The server's port: the peer's for a client, the local (listening) one for a server.
    pub server_port: u16,
    pub role: Role,
    pub delta: Counters,
    /// The socket was opened since the previous pass.
    pub new: bool,
    /// Smoothed RTT now, in microseconds (None: not measured, or closed).
    pub rtt_us: Option<u32>,
    /// Still open at this pass (false: a closed socket's last counters).
    pub live: bool,
    /// The process at the other end, when it is on this host and holds the
    /// socket of the mirrored connection.
    pub peer_tgid: Option<u32>,
}

/// Every socket of the last pass, and the listening ports that decide roles.
#[derive(Debug, Default)]
pub struct SocketTable {
    entries: FxHashMap<u64, Entry>,
    /// (network namespace, port) of every listening socket of the last
    /// pass, and the process listening (the first one seen).
    listening: FxHashMap<(u32, u16), u32>,
    /// The network namespace of each local address of the last pass.
    local_addrs: FxHashMap<IpAddr, u32>,
    /// Every port listened on at the last pass, in any namespace.
    listened_ports: FxHashSet<u16>,
    passes: u32,
}

/// Who holds a connection reported by an event, and its series' shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub tgid: u32,
    pub role: Role,
    pub server_port: u16,
    pub peer_tgid: Option<u32>,
}

impl SocketTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sockets tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A socket that listens: later connections on `port` of namespace
    /// `netns` are the server side, held by `tgid` until it accepts them.
    pub fn add_listening(&mut self, netns: u32, port: u16, tgid: u32) {
        self.listening.entry((netns, port)).or_insert(tgid);
    }

    /// The process listening on the peer's port, when the peer is on this
    /// host (loopback, or an address of one of its namespaces).
    fn peer_listener(&self, netns: u32, peer: Endpoint) -> Option<u32> {
        let ns = if peer.0.is_loopback() { Some(netns) } else { self.local_addrs.get(&peer.0).copied() };
        ns.and_then(|ns| self.listening.get(&(ns, peer.1)).copied())
    }

    /// The owner of a connection an event reports: `s.tgid` (the process
    /// that called connect()) for an active open, the listener for a passive
    /// one (the kernel reports it with tgid 0). None when neither is known.
    pub fn owner(&self, s: &SocketSample) -> Option<Owner> {
        let tuple = fingerprint(s.netns, s.local, s.peer);
        if let Some(e) = self.entries.get(&key_of(s, tuple)).filter(|e| e.tuple == tuple) {
            let server_port = if e.role == Role::Server { s.local.1 } else { s.peer.1 };
            return Some(Owner { tgid: e.tgid, role: e.role, server_port, peer_tgid: e.peer_tgid() });
        }
        if s.tgid != 0 {
            let peer_tgid = self.peer_listener(s.netns, s.peer);
            return Some(Owner { tgid: s.tgid, role: Role::Client, server_port: s.peer.1, peer_tgid });
        }
        let tgid = *self.listening.get(&(s.netns, s.local.1))?;
        Some(Owner { tgid, role: Role::Server, server_port: s.local.1, peer_tgid: None })
    }

    /// A socket the last pass saw and left for the next one to report
    /// (see `pass`): what happened to it (its handshake) waits as well.
    pub fn unreported(&self, s: &SocketSample) -> bool {
        let tuple = fingerprint(s.netns, s.local, s.peer);
        self.entries.get(&key_of(s, tuple)).is_some_and(|e| e.tuple == tuple && e.unreported)
    }

    /// One pass: `samples` is every socket the iterator wrote (a socket held
    /// by several processes appears once per process; the one seen before
    /// keeps it). Each socket's delta goes to `emit` as it is computed (none
    /// is kept: on a host with many sockets a list of them would cost as
    /// much as the table).
    pub fn pass<I>(&mut self, samples: I, mut emit: impl FnMut(SocketDelta))
    where
        I: IntoIterator<Item: Borrow<SocketSample>, IntoIter: Clone>,
    {
        let samples = samples.into_iter();
        self.passes += 1;
        let pass = self.passes;
        let first = pass == 1;
        // Listening sockets first: they decide the role of the others. The
        // set is rebuilt from each pass, so a port no longer listened on
        // stops making servers.
        self.listening.clear();
        self.local_addrs.clear();
        self.listened_ports.clear();
        // The process at the other end of a connection, when it is on this
        // host: the one holding the mirrored socket or, before the server
        // accepted it, the one listening on the peer's port in the
        // namespace that has the peer's address. Keyed by the fingerprint
        // of both endpoints in any namespace (the mirror may be in another).
        let mut by_tuple: FxHashMap<u64, u32> = FxHashMap::default();
        for s in samples.clone() {
            let s = s.borrow();
            if s.state == TCP_LISTEN {
                self.listening.entry((s.netns, s.local.1)).or_insert(s.tgid);
                self.listened_ports.insert(s.local.1);
            } else {
                by_tuple.entry(fingerprint(0, s.local, s.peer)).or_insert(s.tgid);
            }
            if !s.local.0.is_unspecified() && !s.local.0.is_loopback() {
                self.local_addrs.entry(s.local.0).or_insert(s.netns);
            }
        }
        let (listening, local_addrs, listened_ports) = (&self.listening, &self.local_addrs, &self.listened_ports);
        let peer_of = |s: &SocketSample| {
            by_tuple.get(&fingerprint(0, s.peer, s.local)).copied().or_else(|| {
                let netns = if s.peer.0.is_loopback() { Some(s.netns) } else { local_addrs.get(&s.peer.0).copied() };
                netns.and_then(|ns| listening.get(&(ns, s.peer.1)).copied())
            })
        };
        for s in samples {
            let s = s.borrow();
            if s.state == TCP_LISTEN {
                continue;
            }
            let tuple = fingerprint(s.netns, s.local, s.peer);
            let key = key_of(s, tuple);
            let role = || if listening.contains_key(&(s.netns, s.local.1)) { Role::Server } else { Role::Client };
            // Looked up only for a socket whose peer is not known yet: a
            // known one keeps it, and most sockets of a pass are known.
            let fresh = |role| Entry {
                tuple,
                counters: s.counters,
                tgid: s.tgid,
                peer_tgid: peer_of(s).unwrap_or(0),
                pass,
                role,
                unreported: false,
            };
            let (delta, new, role, tgid, peer_tgid) = match self.entries.get_mut(&key) {
                // Seen in this pass already: another process holding it.
                Some(e) if e.pass == pass => continue,
                Some(e) => match (e.tuple == tuple).then(|| s.counters.since(&e.counters)) {
                    Some(Some(delta)) => {
                        e.counters = s.counters;
                        e.pass = pass;
                        if e.peer_tgid == 0 {
                            e.peer_tgid = peer_of(s).unwrap_or(0);
                        }
                        let new = std::mem::take(&mut e.unreported);
                        (delta, new, e.role, e.tgid, e.peer_tgid())
                    }
                    // Reset, or connected anew: a new connection.
                    _ => {
                        *e = fresh(role());
                        (s.counters, true, e.role, s.tgid, e.peer_tgid())
                    }
                },
                None => {
                    let mut entry = fresh(role());
                    let (role, peer_tgid) = (entry.role, entry.peer_tgid());
                    // A new client with no peer named while its server port
                    // is listened on here: the server may not have accepted
                    // it yet (its socket is in no file, so no pass lists
                    // it). Reported at the next pass, in full, with the
                    // name that pass finds: a connection is one series.
                    let wait =
                        !first && role == Role::Client && peer_tgid.is_none() && listened_ports.contains(&s.peer.1);
                    if wait {
                        entry.counters = Counters::default();
                        entry.unreported = true;
                    }
                    self.entries.insert(key, entry);
                    if wait {
                        continue;
                    }
                    if first {
                        (Counters::default(), false, role, s.tgid, peer_tgid)
                    } else {
                        (s.counters, true, role, s.tgid, peer_tgid)
                    }
                }
            };
            let server_port = match role {
                Role::Client => s.peer.1,
                Role::Server => s.local.1,
            };
            emit(SocketDelta {
                tgid,
                peer: s.peer.0,
                server_port,
                role,
                delta,
                new,
                rtt_us: (s.srtt_us > 0).then_some(s.srtt_us),
                live: true,
                peer_tgid,
            });
        }
        // Missing from this pass: closed. Kept one more pass for its
        // destruction, which may be read after this pass.
        self.entries.retain(|_, e| e.pass + 1 >= pass);
        // A burst of connections leaves a table sized for it: give the
        // memory back once they are gone, as the connection table does.
        if self.entries.capacity() > 4 * self.entries.len() + 1024 {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    /// The last counters of a socket that is being destroyed (Linux reports
    /// them at `tcp_destroy_sock`): what it moved since the previous pass, or
    /// all of it if no pass saw it. None when its owner is unknown (a
    /// connection older than the receiver that no pass saw).
    pub fn close(&mut self, closed: &SocketSample) -> Option<SocketDelta> {
        // The kernel may have made the cookie after the last pass read none.
        let tuple = fingerprint(closed.netns, closed.local, closed.peer);
        let entry = [key_of(closed, tuple), addresses_key(tuple)]
            .into_iter()
            .find_map(|k| self.entries.remove(&k))
            .filter(|e| e.tuple == tuple);
        let (delta, new, owner) = match entry {
            Some(e) => {
                let server_port = if e.role == Role::Server { closed.local.1 } else { closed.peer.1 };
                let owner = Owner { tgid: e.tgid, role: e.role, server_port, peer_tgid: e.peer_tgid() };
                match closed.counters.since(&e.counters) {
                    Some(delta) => (delta, e.unreported, owner),
                    None => (closed.counters, true, owner),
                }
            }
            None => (closed.counters, true, self.owner(closed)?),
        };
        Some(SocketDelta {
            tgid: owner.tgid,
            peer: closed.peer.0,
            server_port: owner.server_port,
            role: owner.role,
            delta,
            new,
            rtt_us: None,
            live: false,
            peer_tgid: owner.peer_tgid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sock(cookie: u64, local_port: u16, peer_port: u16, sent: u64, received: u64) -> SocketSample {
        SocketSample {
            cookie,
            tgid: 100,
            netns: 1,
            local: (ip("10.0.0.1"), local_port),
            peer: (ip("10.0.0.2"), peer_port),
            state: 1,
            counters: Counters {
                bytes_sent: sent,
                bytes_received: received,
                segs_out: sent / 100,
                segs_in: received / 100,
                retrans: 0,
            },
            srtt_us: 250,
        }
    }

    fn listener(port: u16) -> SocketSample {
        SocketSample {
            cookie: 9000 + u64::from(port),
            tgid: 200,
            netns: 1,
            local: (ip("0.0.0.0"), port),
            peer: (ip("0.0.0.0"), 0),
            state: TCP_LISTEN,
            counters: Counters::default(),
            srtt_us: 0,
        }
    }

    fn pass(t: &mut SocketTable, samples: &[SocketSample]) -> Vec<SocketDelta> {
        let mut out = Vec::new();
        t.pass(samples, |d| out.push(d));
        out
    }

    #[test]
    fn the_first_pass_is_the_baseline_later_ones_give_deltas() {
        let mut t = SocketTable::new();
        let d = pass(&mut t, &[sock(1, 40000, 80, 1000, 5000)]);
        assert_eq!(d.len(), 1);
        assert!(d[0].delta.is_zero() && !d[0].new && d[0].live);
        assert_eq!((d[0].role, d[0].server_port, d[0].rtt_us), (Role::Client, 80, Some(250)));
        let d = pass(&mut t, &[sock(1, 40000, 80, 1500, 9000)]);
        assert_eq!((d[0].delta.bytes_sent, d[0].delta.bytes_received, d[0].new), (500, 4000, false));
        // Nothing moved: a zero delta, still live (it counts as active).
        let d = pass(&mut t, &[sock(1, 40000, 80, 1500, 9000)]);
        assert!(d[0].delta.is_zero() && d[0].live);
    }

    #[test]
    fn a_socket_new_since_the_previous_pass_counts_in_full() {
        let mut t = SocketTable::new();
        pass(&mut t, &[]);
        let d = pass(&mut t, &[sock(7, 40001, 80, 300, 700)]);
        assert_eq!((d[0].delta.bytes_sent, d[0].delta.bytes_received, d[0].new), (300, 700, true));
    }

    #[test]
    fn a_listening_port_makes_the_server_side_and_its_port_is_reported() {
        let mut t = SocketTable::new();
        let server =
            SocketSample { local: (ip("10.0.0.1"), 8080), peer: (ip("10.0.0.2"), 51000), ..sock(3, 0, 0, 0, 0) };
        let d = pass(&mut t, &[listener(8080), server]);
        assert_eq!(d.len(), 1, "the listening socket itself is no flow");
        assert_eq!((d[0].role, d[0].server_port), (Role::Server, 8080), "never the client's ephemeral port");
    }

    #[test]
    fn counters_that_go_down_or_a_new_peer_start_a_new_connection() {
        let mut t = SocketTable::new();
        pass(&mut t, &[sock(1, 40000, 80, 1000, 1000)]);
        let d = pass(&mut t, &[sock(1, 40000, 80, 10, 20)]);
        assert_eq!((d[0].delta.bytes_sent, d[0].delta.bytes_received, d[0].new), (10, 20, true));
        let d = pass(&mut t, &[sock(1, 40000, 443, 50, 60)]);
        assert_eq!((d[0].delta.bytes_sent, d[0].server_port, d[0].new), (50, 443, true));
    }

    #[test]
    fn a_socket_held_by_two_processes_counts_once_for_the_first_owner() {
        let mut t = SocketTable::new();
        pass(&mut t, &[sock(1, 40000, 80, 0, 0)]);
        let child = SocketSample { tgid: 101, ..sock(1, 40000, 80, 100, 100) };
        let d = pass(&mut t, &[child, sock(1, 40000, 80, 100, 100)]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].tgid, d[0].delta.bytes_sent), (100, 100));
    }

    #[test]
    fn sockets_without_a_cookie_are_known_by_their_addresses() {
        let mut t = SocketTable::new();
        pass(&mut t, &[sock(0, 40000, 80, 100, 0), sock(0, 40001, 80, 100, 0)]);
        let d = pass(&mut t, &[sock(0, 40000, 80, 150, 0), sock(0, 40001, 80, 400, 0)]);
        assert_eq!(d.iter().map(|d| d.delta.bytes_sent).collect::<Vec<_>>(), [50, 300]);
    }

    #[test]
    fn closed_sockets_leave_and_their_last_counters_give_the_rest() {
        let mut t = SocketTable::new();
        pass(&mut t, &[sock(1, 40000, 80, 100, 100)]);
        // Closed after moving 50 more bytes each way: only what is new.
        let d = t.close(&sock(1, 40000, 80, 150, 150)).unwrap();
        assert_eq!((d.delta.bytes_sent, d.delta.bytes_received, d.new, d.live), (50, 50, false, false));
        assert!(t.is_empty());
        // Opened and closed between two passes: all of it.
        let d = t.close(&sock(2, 40002, 80, 10, 20)).unwrap();
        assert_eq!((d.delta.bytes_sent, d.delta.bytes_received, d.new), (10, 20, true));
        // A socket missing from a pass is forgotten one pass later: its
        // destruction, read after the pass that missed it, still finds it.
        pass(&mut t, &[sock(3, 40003, 80, 1, 1)]);
        pass(&mut t, &[]);
        let d = t.close(&sock(3, 40003, 80, 5, 1)).unwrap();
        assert_eq!((d.delta.bytes_sent, d.new), (4, false));
        pass(&mut t, &[sock(4, 40004, 80, 1, 1)]);
        pass(&mut t, &[]);
        pass(&mut t, &[]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_passive_connection_closed_between_passes_belongs_to_its_listener() {
        let mut t = SocketTable::new();
        pass(&mut t, &[listener(8080)]);
        // The kernel reports a passive open's end with tgid 0.
        let closed = SocketSample {
            tgid: 0,
            local: (ip("10.0.0.1"), 8080),
            peer: (ip("10.0.0.2"), 51000),
            ..sock(7, 0, 0, 300, 40)
        };
        let d = t.close(&closed).unwrap();
        assert_eq!((d.tgid, d.role, d.server_port, d.new), (200, Role::Server, 8080, true));
        assert_eq!((d.delta.bytes_sent, d.delta.bytes_received), (300, 40));
        // Unknown owner: dropped rather than guessed.
        let stray = SocketSample { tgid: 0, ..sock(8, 40000, 9999, 1, 1) };
        assert_eq!(t.close(&stray), None);
        // A cookie made after the pass read none: found by its addresses.
        pass(&mut t, &[listener(8080), sock(0, 40005, 80, 10, 10)]);
        let d = t.close(&sock(99, 40005, 80, 15, 10)).unwrap();
        assert_eq!((d.delta.bytes_sent, d.new, d.tgid), (5, false, 100));
    }

    #[test]
    fn a_peer_not_yet_accepted_is_named_by_its_listener_and_the_name_stays() {
        let mut t = SocketTable::new();
        // The server's namespace (2) has 10.0.0.2; its listener on 8080 is pid 200.
        let listen = SocketSample { netns: 2, local: (ip("0.0.0.0"), 8080), ..listener(8080) };
        let other = SocketSample {
            netns: 2,
            tgid: 300,
            local: (ip("10.0.0.2"), 22),
            peer: (ip("10.0.0.9"), 5555),
            ..sock(50, 0, 0, 0, 0)
        };
        let client = sock(1, 40000, 8080, 0, 0);
        let d = pass(&mut t, &[listen.clone(), other.clone(), client.clone()]);
        assert_eq!(d.iter().find(|d| d.tgid == 100).unwrap().peer_tgid, Some(200));
        // Later the listener is gone: the connection keeps its peer.
        let d = pass(&mut t, &[other, client]);
        assert_eq!(d.iter().find(|d| d.tgid == 100).unwrap().peer_tgid, Some(200));
    }

    #[test]
    fn a_client_its_listening_peer_has_not_accepted_yet_waits_one_pass_for_the_name() {
        let mut t = SocketTable::new();
        // The server's namespace (2) has only its listener (on 0.0.0.0):
        // nothing tells that 10.0.0.2 is there until it accepts.
        let listen = SocketSample { netns: 2, ..listener(8080) };
        pass(&mut t, std::slice::from_ref(&listen));
        let client = sock(1, 40000, 8080, 0, 0);
        assert!(pass(&mut t, &[listen.clone(), client.clone()]).is_empty());
        assert!(t.unreported(&client));
        let accepted =
            SocketSample { cookie: 2, tgid: 200, netns: 2, local: client.peer, peer: client.local, ..client };
        let client = sock(1, 40000, 8080, 10, 4000);
        let d = pass(&mut t, &[listen.clone(), client.clone(), accepted.clone()]);
        let c = d.iter().find(|d| d.tgid == 100).unwrap();
        assert_eq!((c.delta.bytes_sent, c.delta.bytes_received, c.new, c.peer_tgid), (10, 4000, true, Some(200)));
        assert!(!t.unreported(&client));
        // Closed before the next pass: all of it, as a new connection.
        let early = sock(3, 40001, 8080, 0, 0);
        pass(&mut t, &[listen.clone(), early]);
        let d = t.close(&sock(3, 40001, 8080, 5, 7)).unwrap();
        assert_eq!((d.delta.bytes_sent, d.delta.bytes_received, d.new), (5, 7, true));
        // No listener on its port here: reported at once, without a peer.
        let remote = sock(4, 40002, 443, 1, 2);
        let d = pass(&mut t, &[listen, remote]);
        assert_eq!((d[0].delta.bytes_sent, d[0].new, d[0].peer_tgid), (1, true, None));
    }

    #[test]
    fn an_entry_is_small_and_fingerprints_tell_neighbours_apart() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
        let mut seen = std::collections::HashSet::new();
        for port in 0..=u16::MAX {
            for peer in ["10.0.0.2", "10.0.0.3", "::ffff:10.0.0.2"] {
                assert!(seen.insert(fingerprint(1, (ip("10.0.0.1"), port), (ip(peer), 80))));
            }
            assert!(seen.insert(fingerprint(2, (ip("10.0.0.1"), port), (ip("10.0.0.2"), 80))));
            assert!(seen.insert(fingerprint(1, (ip("10.0.0.2"), 80), (ip("10.0.0.1"), port))));
        }
    }

    #[test]
    fn a_peer_on_this_host_is_named() {
        let mut t = SocketTable::new();
        let client = sock(1, 40000, 8080, 0, 0);
        let server = SocketSample { cookie: 2, tgid: 200, local: client.peer, peer: client.local, ..client.clone() };
        let d = pass(&mut t, &[listener(8080), client, server]);
        assert_eq!(
            d.iter().map(|d| (d.tgid, d.role, d.peer_tgid)).collect::<Vec<_>>(),
            [(100, Role::Client, Some(200)), (200, Role::Server, Some(100))]
        );
    }
}
