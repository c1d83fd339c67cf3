//! Queries matched to their answers.
//!
//! A query is matched by the connection (socket) it went out on, its id and
//! the side: a process that sends a query and reads the answer is a client;
//! one that reads a query and sends the answer, a server. The answer must
//! repeat the question's name (case aside), so an id reused on the same
//! socket cannot match the wrong query. A query not answered within the
//! timeout is a timeout; pending queries are bounded (`max_pending`), the
//! excess counted and dropped. Over TCP, messages carry a 2-byte length
//! prefix and may span reads: a small buffer per connection and direction
//! puts them together (a read cut by `capture_size` ends that stream's
//! reassembly until the next message boundary is certain: the connection's
//! next read).

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::message::{parse, DnsMessage};
use crate::flows::metrics::Transport;
use crate::protocol::Role;

/// The longest TCP message put together (RFC 1035 allows 65,535 bytes; the
/// capture holds far less).
const MAX_TCP_MESSAGE: usize = 65_535;

/// A payload on a port-53 connection.
#[derive(Debug, Clone, Copy)]
pub struct DnsPacket<'a> {
    /// The data path's connection (socket) id.
    pub conn_id: u64,
    pub tgid: u32,
    pub ts_ns: u64,
    pub peer: IpAddr,
    pub transport: Transport,
    /// Sent by the process (else received).
    pub egress: bool,
    /// The captured bytes...
    pub payload: &'a [u8],
    /// ...of this many the call moved.
    pub total_len: u32,
}

/// A query answered or timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOutcome {
    pub tgid: u32,
    pub role: Role,
    pub peer: IpAddr,
    pub transport: Transport,
    pub name: Arc<str>,
    pub qtype: u16,
    /// None: timed out.
    pub rcode: Option<u8>,
    pub duration_ns: Option<u64>,
    /// Addresses answered, with their TTL.
    pub addresses: Vec<(IpAddr, u32)>,
}

/// A name and the addresses (with their TTL) an answer gave it.
pub type Unasked = (Arc<str>, Vec<(IpAddr, u32)>);

#[derive(Debug)]
struct Pending {
    tgid: u32,
    ts_ns: u64,
    peer: IpAddr,
    transport: Transport,
    name: Arc<str>,
    qtype: u16,
}

#[derive(Debug)]
pub struct DnsTracker {
    /// By (connection, id, role).
    pending: FxHashMap<(u64, u16, bool), Pending>,
    /// TCP bytes not yet a whole message, by (connection, egress).
    streams: FxHashMap<(u64, bool), Vec<u8>>,
    timeout_ns: u64,
    max_pending: usize,
    /// Messages that did not parse.
    pub malformed: u64,
    /// Answers to no query seen (sent before the receiver started, or after a timeout).
    pub unmatched: u64,
    /// Queries dropped because `max_pending` were waiting.
    pub dropped: u64,
    /// Names and addresses of answers a client received to no query seen:
    /// glibc's resolver sends its A and AAAA queries with one `sendmmsg`,
    /// which the data path counts but does not copy, and reads the answers
    /// with plain `recvfrom`. They name peers, and count nowhere else.
    pub unasked: Vec<Unasked>,
}

impl DnsTracker {
    pub fn new(timeout_ns: u64, max_pending: usize) -> Self {
        Self {
            pending: FxHashMap::default(),
            streams: FxHashMap::default(),
            timeout_ns,
            max_pending,
            malformed: 0,
            unmatched: 0,
            dropped: 0,
            unasked: Vec::new(),
        }
    }

    /// Queries waiting for their answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn packet(&mut self, p: &DnsPacket<'_>, out: &mut Vec<DnsOutcome>) {
        match p.transport {
            Transport::Udp => {
                if p.payload.len() < p.total_len as usize && p.payload.len() < 12 {
                    self.malformed += 1;
                    return;
                }
                self.message(p, p.payload, out);
            }
            Transport::Tcp => self.tcp(p, out),
        }
    }

    fn tcp(&mut self, p: &DnsPacket<'_>, out: &mut Vec<DnsOutcome>) {
        let key = (p.conn_id, p.egress);
        let mut buf = self.streams.remove(&key).unwrap_or_default();
        buf.extend_from_slice(p.payload);
        let mut at = 0;
        while buf.len() - at >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            if buf.len() - at - 2 < len {
                break;
            }
            let message = buf[at + 2..at + 2 + len].to_vec();
            self.message(p, &message, out);
            at += 2 + len;
        }
        buf.drain(..at);
        let truncated = p.payload.len() < p.total_len as usize;
        // A cut read loses the stream's framing: start again at the next read.
        if !buf.is_empty() && !truncated && buf.len() <= MAX_TCP_MESSAGE + 2 {
            self.streams.insert(key, buf);
        } else if !buf.is_empty() {
            self.malformed += 1;
        }
    }

    fn message(&mut self, p: &DnsPacket<'_>, bytes: &[u8], out: &mut Vec<DnsOutcome>) {
        let m: DnsMessage = match parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.malformed += 1;
                log::debug!("DNS: {e}");
                return;
            }
        };
        // Who sent the query decides the side.
        let server = if m.response { p.egress } else { !p.egress };
        let key = (p.conn_id, m.id, server);
        if !m.response {
            if self.pending.len() >= self.max_pending && !self.pending.contains_key(&key) {
                self.dropped += 1;
                return;
            }
            self.pending.insert(
                key,
                Pending {
                    tgid: p.tgid,
                    ts_ns: p.ts_ns,
                    peer: p.peer,
                    transport: p.transport,
                    name: Arc::from(m.name),
                    qtype: m.qtype,
                },
            );
            return;
        }
        match self.pending.remove(&key) {
            Some(q) if q.name.eq_ignore_ascii_case(&m.name) && q.qtype == m.qtype => out.push(DnsOutcome {
                tgid: q.tgid,
                role: if server { Role::Server } else { Role::Client },
                peer: q.peer,
                transport: q.transport,
                name: q.name,
                qtype: q.qtype,
                rcode: Some(m.rcode),
                duration_ns: Some(p.ts_ns.saturating_sub(q.ts_ns)),
                addresses: m.addresses,
            }),
            Some(q) => {
                // Not its answer: the query waits on.
                self.pending.insert(key, q);
                self.unmatched += 1;
            }
            None => {
                self.unmatched += 1;
                if !server && m.rcode == 0 && !m.addresses.is_empty() {
                    self.unasked.push((Arc::from(m.name), m.addresses));
                }
            }
        }
    }

    /// Queries older than the timeout at `now_ns` are timeouts.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<DnsOutcome>) {
        let cutoff = now_ns.saturating_sub(self.timeout_ns);
        self.pending.retain(|&(_, _, server), q| {
            if q.ts_ns > cutoff {
                return true;
            }
            out.push(DnsOutcome {
                tgid: q.tgid,
                role: if server { Role::Server } else { Role::Client },
                peer: q.peer,
                transport: q.transport,
                name: q.name.clone(),
                qtype: q.qtype,
                rcode: None,
                duration_ns: None,
                addresses: Vec::new(),
            });
            false
        });
    }

    /// The connection ended: its partial TCP messages go.
    pub fn close(&mut self, conn_id: u64) {
        self.streams.remove(&(conn_id, true));
        self.streams.remove(&(conn_id, false));
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::fixture;
    use super::*;

    const RESOLVER: &str = "127.0.0.1";

    /// Replays a fixture as the client process saw it: its queries go out
    /// (egress), 1 ms apart from their answers.
    fn replay(t: &mut DnsTracker, name: &str, conn_id: u64) -> Vec<DnsOutcome> {
        let mut out = Vec::new();
        for (i, (from_client, tcp, bytes)) in fixture(name).into_iter().enumerate() {
            let p = DnsPacket {
                conn_id,
                tgid: 42,
                ts_ns: 1_000_000 * (i as u64 + 1),
                peer: RESOLVER.parse().unwrap(),
                transport: if tcp { Transport::Tcp } else { Transport::Udp },
                egress: from_client,
                payload: &bytes,
                total_len: bytes.len() as u32,
            };
            t.packet(&p, &mut out);
        }
        out
    }

    fn tracker() -> DnsTracker {
        DnsTracker::new(5_000_000_000, 1024)
    }

    #[test]
    fn getent_a_and_aaaa_are_two_lookups_with_their_addresses() {
        let mut t = tracker();
        let out = replay(&mut t, "getent_ahosts", 1);
        let got: Vec<_> = out.iter().map(|o| (&*o.name, o.qtype, o.rcode, o.role, o.addresses.len())).collect();
        assert_eq!(got.len(), 2, "{out:?}");
        assert!(got.contains(&("web.flows.test", 1, Some(0), Role::Client, 1)));
        assert!(got.contains(&("web.flows.test", 28, Some(0), Role::Client, 1)));
        assert!(out.iter().all(|o| o.duration_ns.unwrap() > 0));
        assert_eq!((t.pending(), t.malformed, t.unmatched), (0, 0, 0));
    }

    #[test]
    fn nxdomain_python_and_tcp() {
        let mut t = tracker();
        let out = replay(&mut t, "getent_nxdomain", 1);
        assert!(!out.is_empty());
        assert!(out.iter().all(|o| o.rcode == Some(3) && &*o.name == "missing.flows.test"), "{out:?}");
        let out = replay(&mut t, "python_getaddrinfo", 2);
        assert_eq!(out.iter().map(|o| (&*o.name, o.qtype)).collect::<Vec<_>>(), [("web.flows.test", 1)]);
        let out = replay(&mut t, "dig_tcp_a", 3);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].transport, out[0].addresses[0].0), (Transport::Tcp, "10.77.0.5".parse().unwrap()));
        assert_eq!((t.pending(), t.malformed, t.unmatched), (0, 0, 0));
    }

    #[test]
    fn tcp_messages_split_across_reads_are_put_together() {
        let mut t = tracker();
        let mut out = Vec::new();
        for (i, (from_client, _, bytes)) in fixture("dig_tcp_a").into_iter().enumerate() {
            // One byte at a time.
            for (j, b) in bytes.iter().enumerate() {
                let p = DnsPacket {
                    conn_id: 9,
                    tgid: 1,
                    ts_ns: (i * 1000 + j) as u64 + 1,
                    peer: RESOLVER.parse().unwrap(),
                    transport: Transport::Tcp,
                    egress: from_client,
                    payload: std::slice::from_ref(b),
                    total_len: 1,
                };
                t.packet(&p, &mut out);
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(t.malformed, 0);
    }

    #[test]
    fn the_server_side_is_seen_from_the_resolver() {
        let mut t = tracker();
        let mut out = Vec::new();
        for (i, (from_client, _, bytes)) in fixture("dig_aaaa").into_iter().enumerate() {
            let p = DnsPacket {
                conn_id: 5,
                tgid: 7,
                ts_ns: 10 + i as u64 * 5,
                peer: "127.0.0.1".parse().unwrap(),
                transport: Transport::Udp,
                // The resolver reads the query and sends the answer.
                egress: !from_client,
                payload: &bytes,
                total_len: bytes.len() as u32,
            };
            t.packet(&p, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].role, out[0].duration_ns), (Role::Server, Some(5)));
    }

    #[test]
    fn unanswered_queries_time_out_and_pending_is_bounded() {
        let mut t = DnsTracker::new(1000, 1);
        let msgs = fixture("getent_ahosts");
        let queries: Vec<_> = msgs.iter().filter(|m| m.0).collect();
        let mut out = Vec::new();
        for (i, (_, _, bytes)) in queries.iter().enumerate() {
            let p = DnsPacket {
                conn_id: 1,
                tgid: 3,
                ts_ns: 100 + i as u64,
                peer: RESOLVER.parse().unwrap(),
                transport: Transport::Udp,
                egress: true,
                payload: bytes,
                total_len: bytes.len() as u32,
            };
            t.packet(&p, &mut out);
        }
        assert_eq!((t.pending(), t.dropped), (1, 1));
        t.expire(1000, &mut out);
        assert!(out.is_empty(), "not yet");
        t.expire(1100, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].rcode, out[0].duration_ns, &*out[0].name), (None, None, "web.flows.test"));
        assert_eq!(t.pending(), 0);
    }
}
