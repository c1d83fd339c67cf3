//! The userspace mirror of the kernel connection table, keyed by the id the
//! kernel gives each connection (its socket's cookie). Recognises each
//! connection's protocol from its first payload (`Protocols`), feeds each
//! data event to its parser and returns the records it completes.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::events::{ConnOpen, DataEvent, Header, Transport};
use crate::process::{IdentityConfig, ProcessIdentity, ProcessTable, TaskHint};
use crate::protocol::{Capture, Chunk, ConnFacts, Direction, Hint, Progress, Protocols, Record, Role, Verdict};

use super::connection::{Connection, Endpoints, Sniff, StreamState};
use super::overlap::{Held, HeldEvent, HOLD_MAX_NS};

/// Most bytes of a stream's first chunks gathered while a recogniser needs
/// more to tell (`Recognition::NeedMore`): a Kafka or MongoDB server reads
/// a message's length before its body, an MQTT broker its CONNECT a few
/// bytes at a time.
pub const SNIFF_MAX_BYTES: usize = 512;
/// Most chunks gathered so.
pub const SNIFF_MAX_CHUNKS: usize = 8;

/// A completed record with what is known about its connection.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub record: Record,
    pub process: Arc<ProcessIdentity>,
    pub endpoints: Option<Endpoints>,
    /// Carried over TLS (`url.scheme` https).
    pub tls: bool,
}

impl Exchange {
    /// What the record's description may use of the connection.
    pub fn facts(&self) -> ConnFacts {
        ConnFacts { endpoints: self.endpoints, tls: self.tls }
    }
}

/// A connection whose payload the kernel may stop copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mute {
    pub conn_id: u64,
    /// Stop the TLS plaintext (OpenSSL probes) rather than the syscall capture.
    pub tls: bool,
}

/// A connection whose parser wants more of each read/write than
/// `capture_size` (`Capture::Wide`): the kernel copies up to 4 KiB of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widen {
    pub conn_id: u64,
}

/// Most protocol switches followed within one chunk (an upgrade's 101 and
/// the new protocol's first bytes share it); a parser handing over in a
/// loop stops there.
const MAX_HANDOVERS_PER_CHUNK: usize = 4;

/// The table gives memory back when it holds fewer than a quarter of what
/// its capacity allows, once that capacity is at least this many entries.
const SHRINK_MIN_CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub struct ConnTracker {
    /// By connection id. Keys are kernel-assigned numbers, not
    /// attacker-chosen text: FxHash (no per-lookup SipHash) is safe here.
    conns: FxHashMap<u64, Connection>,
    processes: ProcessTable,
    /// Connections whose parser failed, since start.
    pub parse_errors: u64,
    /// Holes in connections' event numbering (kernel drops), since start.
    pub gaps: u64,
    /// Requests dropped unanswered because of such holes, since start.
    pub requests_lost: u64,
    /// Connections that need no more payload: the kernel can stop copying their bytes.
    pub muted: Vec<Mute>,
    /// Connections whose parser asked for a wide capture (`Capture::Wide`).
    pub widened: Vec<Widen>,
    /// Processes that sent or received what looks like a TLS record at the
    /// socket: they may have loaded a TLS library the probes do not know yet.
    pub tls_suspects: Vec<u32>,
    scratch: Vec<Record>,
    /// The protocols streams are recognised as.
    protocols: Protocols,
    /// Port-53 connections keep their payload coming: DNS is read from it
    /// (by flows, not by a protocol parser).
    dns: bool,
    /// `take_dns_peer`'s answer for the last data event.
    dns_peer: Option<(std::net::IpAddr, Transport)>,
    /// Receives waiting for the send they overlapped (`overlap`), by
    /// connection id; empty nearly always.
    held: FxHashMap<u64, Held>,
    /// Sends put back before receives that overtook them, since start.
    pub reordered: u64,
}

impl ConnTracker {
    pub fn new(identity: IdentityConfig) -> Self {
        Self { processes: ProcessTable::new(identity), protocols: Protocols::defaults(), ..Self::default() }
    }

    /// For replaying recorded events: identities come from the events only.
    pub fn offline() -> Self {
        Self { processes: ProcessTable::offline(), protocols: Protocols::defaults(), ..Self::default() }
    }

    /// Streams are recognised as one of `protocols` (default: every
    /// protocol on by default, keeping no bodies).
    pub fn with_protocols(mut self, protocols: Protocols) -> Self {
        self.protocols = protocols;
        self
    }

    /// Payloads of port-53 connections are wanted (`take_dns_peer`): they are
    /// never muted.
    pub fn with_dns(mut self, dns: bool) -> Self {
        self.dns = dns;
        self
    }

    /// The peer address and transport of the connection the last `data`
    /// event was for, when its payloads are DNS messages: port 53 on either
    /// side (a client's connected socket, or a server's bound one), and DNS
    /// is wanted. Found by the lookup `data` makes anyway, so that traffic
    /// on other ports pays nothing for DNS.
    pub fn take_dns_peer(&mut self) -> Option<(std::net::IpAddr, Transport)> {
        self.dns_peer.take()
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Connections the table has room for without growing.
    pub fn capacity(&self) -> usize {
        self.conns.capacity()
    }

    /// After removals: when the table is mostly empty, shrink it to twice what
    /// it holds (so 10,000 connections closed do not keep their table). Each
    /// shrink at least halves the capacity, so its cost is amortised over the
    /// removals that led to it.
    fn maybe_shrink(&mut self) {
        let capacity = self.conns.capacity();
        if capacity >= SHRINK_MIN_CAPACITY && self.conns.len() < capacity / 4 {
            self.conns.shrink_to(self.conns.len() * 2);
            // The parsers freed with the connections are small blocks the
            // allocator keeps; hand the free pages back to the system.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free memory; no pointer is involved.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    /// The identity of `pid` (read from /proc the first time), for telemetry
    /// that does not come from a connection (network flows).
    pub fn identity(&mut self, pid: u32) -> Arc<ProcessIdentity> {
        self.processes.get_or_read(pid, "")
    }

    /// Processes with an identity cached (seen on a connection and not exited).
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// The kernel announced connection `hdr.conn_id` for process `hdr.tgid`.
    /// A connection already known is announced again when another process
    /// (a fork sharing the socket) or image (an exec that kept it) uses it,
    /// or when the kernel's table lost and found it again: it goes on, its
    /// stream state kept, under the process announced now.
    pub fn open(&mut self, hdr: &Header, open: &ConnOpen) {
        let process = self.processes.get_or_read_hinted(
            hdr.tgid,
            &TaskHint { comm: &open.comm, exe: &open.exe, parent_tgid: Some(open.parent_tgid) },
        );
        let endpoints = Some(Endpoints { local: open.local, peer: open.peer });
        let role = match u32::from(open.role) {
            ebpf_probes::abi::OE_ROLE_SERVER => Some(Role::Server),
            ebpf_probes::abi::OE_ROLE_CLIENT => Some(Role::Client),
            _ => None,
        };
        if let Some(conn) = self.conns.get_mut(&hdr.conn_id) {
            conn.tgid = hdr.tgid;
            conn.process = process;
            conn.endpoints = endpoints;
            conn.transport = open.transport;
            conn.role = role;
            conn.last_seen_ns = hdr.ts_ns;
            // Numbering may restart (an entry made anew): the next event sets it.
            conn.next_seq = None;
            return;
        }
        self.conns.insert(
            hdr.conn_id,
            Connection {
                conn_id: hdr.conn_id,
                tgid: hdr.tgid,
                process,
                transport: open.transport,
                endpoints,
                role,
                stream: StreamState::Unclassified,
                last_seen_ns: hdr.ts_ns,
                tls: false,
                next_seq: None,
            },
        );
    }

    pub fn data(&mut self, hdr: &Header, data: &DataEvent<'_>, out: &mut Vec<Exchange>) {
        if data.overlap || !self.held.is_empty() {
            self.ordered(hdr, data, out);
        } else {
            self.feed(hdr, data, out);
        }
    }

    /// A data event when receives may wait for a send (`overlap`).
    fn ordered(&mut self, hdr: &Header, data: &DataEvent<'_>, out: &mut Vec<Exchange>) {
        let id = hdr.conn_id;
        let holding = self.held.contains_key(&id);
        let starts = data.overlap && data.direction == Direction::Ingress;
        if !holding && !starts {
            return self.feed(hdr, data, out);
        }
        // Numbered as it comes, so that a send put first is no hole.
        let Some(conn) = self.conns.get_mut(&id) else {
            return self.feed(hdr, data, out);
        };
        conn.last_seen_ns = hdr.ts_ns;
        check_seq(conn, data.seq, &mut self.scratch, &mut self.gaps, &mut self.requests_lost);
        let unnumbered = DataEvent { seq: None, overlap: false, ..*data };
        if data.direction == Direction::Ingress {
            self.dns_peer = None;
            match self.held.get_mut(&id) {
                None => {
                    self.held.insert(id, Held::new(HeldEvent::new(hdr, data)));
                }
                Some(held) if !held.is_full() => held.events.push(HeldEvent::new(hdr, data)),
                Some(_) => {
                    self.release(id, out);
                    self.feed(hdr, &unnumbered, out);
                }
            }
            return;
        }
        let since = self.held.get(&id).map_or(hdr.ts_ns, Held::since_ns);
        if data.overlap {
            // The send the held receives overtook: first, stamped just
            // before them (it was in the kernel by then).
            self.reordered += 1;
            let before = Header { ts_ns: hdr.ts_ns.min(since.saturating_sub(1)), ..*hdr };
            self.feed(&before, &unnumbered, out);
            self.release(id, out);
        } else {
            // A later send: what moved the socket's write_seq was not
            // traced; the held receives go first, as they came.
            self.release(id, out);
            self.feed(hdr, &unnumbered, out);
        }
    }

    /// Connection `id`'s held receives, in the order they came.
    fn release(&mut self, id: u64, out: &mut Vec<Exchange>) {
        if let Some(held) = self.held.remove(&id) {
            for e in &held.events {
                self.feed(&e.hdr, &e.event(), out);
            }
        }
    }

    /// Receives held longer than `HOLD_MAX_NS` at `now_ns` go on without
    /// their send.
    pub fn release_overdue(&mut self, now_ns: u64, out: &mut Vec<Exchange>) {
        if !self.held.is_empty() {
            self.release_where(|h| now_ns.saturating_sub(h.since_ns()) > HOLD_MAX_NS, out);
        }
    }

    /// Every held receive, now (the receiver stops).
    pub fn release_all(&mut self, out: &mut Vec<Exchange>) {
        self.release_where(|_| true, out);
    }

    fn release_where(&mut self, pick: impl Fn(&Held) -> bool, out: &mut Vec<Exchange>) {
        let ids: Vec<u64> = self.held.iter().filter(|(_, h)| pick(h)).map(|(id, _)| *id).collect();
        for id in ids {
            self.release(id, out);
        }
    }

    fn feed(&mut self, hdr: &Header, data: &DataEvent<'_>, out: &mut Vec<Exchange>) {
        let processes = &mut self.processes;
        // The open event was lost (ring buffer full): what the data event
        // says is all there is.
        let conn = self.conns.entry(hdr.conn_id).or_insert_with(|| Connection {
            conn_id: hdr.conn_id,
            tgid: hdr.tgid,
            process: processes.get_or_read(hdr.tgid, ""),
            transport: Transport::Tcp,
            endpoints: None,
            role: None,
            stream: StreamState::Unclassified,
            last_seen_ns: hdr.ts_ns,
            tls: false,
            next_seq: None,
        });
        conn.last_seen_ns = hdr.ts_ns;
        self.dns_peer =
            if self.dns { conn.endpoints.filter(on_port_53).map(|ep| (ep.peer.0, conn.transport)) } else { None };
        check_seq(conn, data.seq, &mut self.scratch, &mut self.gaps, &mut self.requests_lost);
        let mute = Mute { conn_id: hdr.conn_id, tls: data.tls };
        if data.tls != conn.tls {
            if !data.tls {
                // Ciphertext at the socket of a connection whose plaintext the
                // OpenSSL probes deliver: never parsed.
                return;
            }
            // The first plaintext of a TLS connection. Whatever came through
            // the socket before (handshake records, seen before the kernel
            // knew) was ciphertext: start over, once, on the plaintext,
            // with the parser a protocol's own TLS request handed over. The
            // socket was muted for it, which does not stop TLS plaintext.
            conn.tls = true;
            conn.stream = match std::mem::replace(&mut conn.stream, StreamState::Unclassified) {
                StreamState::AwaitingTls(protocol, parser) => StreamState::Parsed(protocol, parser),
                _ => StreamState::Unclassified,
            };
        }
        let mut replay = None;
        if matches!(conn.stream, StreamState::Unclassified | StreamState::Sniffing(_)) {
            if data.payload.is_empty() {
                return;
            }
            // Datagrams: no protocol parser reads them (DNS is read beside
            // them, through `take_dns_peer`, and keeps its payload coming).
            if conn.transport == Transport::Udp {
                if !(self.dns && conn.endpoints.is_some_and(|ep| on_port_53(&ep))) {
                    self.muted.push(mute);
                }
                conn.stream = StreamState::Ignored;
                return;
            }
            let sniff = match std::mem::replace(&mut conn.stream, StreamState::Unclassified) {
                StreamState::Sniffing(s) => Some(s),
                _ => None,
            };
            let complete = data.payload.len() as u64 == u64::from(data.total_len);
            let mut hint = Hint {
                data: data.payload,
                total_len: u64::from(data.total_len),
                direction: data.direction,
                role: conn.role,
                local_port: conn.endpoints.map(|ep| ep.local.1),
                peer_port: conn.endpoints.map(|ep| ep.peer.1),
                tls: data.tls,
            };
            let joined;
            let verdict = match &sniff {
                None => self.protocols.recognise(&hint, complete && data.payload.len() < SNIFF_MAX_BYTES),
                // The other direction spoke: what was gathered is all the first message there is.
                Some(s) if s.direction != data.direction => {
                    hint.data = &s.bytes;
                    hint.direction = s.direction;
                    hint.total_len = s.bytes.len() as u64;
                    self.protocols.recognise(&hint, false)
                }
                Some(s) => {
                    joined = [s.bytes.as_slice(), data.payload].concat();
                    hint.data = &joined;
                    hint.total_len = s.bytes.len() as u64 + u64::from(data.total_len);
                    let can_wait = complete && joined.len() < SNIFF_MAX_BYTES && s.chunks.len() + 1 < SNIFF_MAX_CHUNKS;
                    self.protocols.recognise(&hint, can_wait)
                }
            };
            conn.stream = match verdict {
                Verdict::Parse(protocol, parser) => {
                    if parser.capture() == Capture::Wide {
                        self.widened.push(Widen { conn_id: hdr.conn_id });
                    }
                    replay = sniff;
                    StreamState::Parsed(protocol, parser)
                }
                Verdict::NeedMore => {
                    let mut s = sniff.unwrap_or_else(|| {
                        Box::new(Sniff { direction: data.direction, bytes: Vec::new(), chunks: Vec::new() })
                    });
                    s.bytes.extend_from_slice(data.payload);
                    s.chunks.push((hdr.ts_ns, data.payload.len()));
                    StreamState::Sniffing(s)
                }
                // No enabled protocol follows this stream: the kernel can
                // stop copying its payload.
                Verdict::Unknown => {
                    if !data.tls && looks_like_tls_record(data.payload) {
                        self.tls_suspects.push(hdr.tgid);
                    }
                    // DNS over TCP is read beside the parsers.
                    if !(self.dns && conn.endpoints.is_some_and(|ep| on_port_53(&ep))) {
                        self.muted.push(mute);
                    }
                    StreamState::Ignored
                }
            };
        }
        let StreamState::Parsed(..) = conn.stream else {
            return;
        };
        self.scratch.clear();
        // The chunks gathered for recognition, then this one.
        let gathered = replay.as_deref().into_iter().flat_map(|s| {
            let mut at = 0;
            s.chunks.iter().map(move |&(ts_ns, len)| {
                let data = &s.bytes[at..at + len];
                at += len;
                Chunk { ts_ns, direction: s.direction, data, total_len: len as u64 }
            })
        });
        let current = Chunk {
            ts_ns: hdr.ts_ns,
            direction: data.direction,
            data: data.payload,
            total_len: u64::from(data.total_len),
        };
        'chunks: for mut chunk in gathered.chain(std::iter::once(current)) {
            for _ in 0..MAX_HANDOVERS_PER_CHUNK {
                let StreamState::Parsed(current, parser) = &mut conn.stream else { break 'chunks };
                let current = *current;
                let progress = parser.feed(&chunk, &mut self.scratch);
                self.requests_lost += parser.dropped();
                if progress == Progress::Continue {
                    continue 'chunks;
                }
                if progress == Progress::Failed {
                    self.parse_errors += 1;
                }
                // An upgrade to a protocol we parse goes on with its parser,
                // from where the switch happened in this chunk; a switch to
                // TLS may go on with the parser's successor on the plaintext;
                // any other switch, or garbage, ends the parsing (a
                // WebSocket, a CONNECT tunnel).
                let (protocols, role, endpoints) = (&self.protocols, conn.role, conn.endpoints);
                let next = |name: &str| {
                    protocols.context(name, role, endpoints.map(|ep| ep.local.1), endpoints.map(|ep| ep.peer.1))
                };
                let handover = match progress {
                    Progress::Done => parser.handover(&next, &mut self.scratch),
                    _ => None,
                };
                let next = handover.and_then(|h| Some((protocols.named(h.protocol)?, h)));
                let Some((protocol, h)) = next else {
                    let over_tls = if progress == Progress::Done { parser.over_tls() } else { None };
                    conn.stream = match over_tls {
                        Some(parser) if !data.tls => StreamState::AwaitingTls(current, parser),
                        _ => StreamState::Ignored,
                    };
                    self.muted.push(mute);
                    break 'chunks;
                };
                if h.parser.capture() == Capture::Wide {
                    self.widened.push(Widen { conn_id: hdr.conn_id });
                }
                let offset = h.offset.min(chunk.data.len());
                chunk.data = &chunk.data[offset..];
                chunk.total_len = chunk.total_len.saturating_sub(offset as u64);
                conn.stream = StreamState::Parsed(protocol, h.parser);
                if chunk.data.is_empty() && chunk.total_len == 0 {
                    continue 'chunks;
                }
            }
        }
        let (process, endpoints, tls) = (conn.process.clone(), conn.endpoints, conn.tls);
        out.extend(self.scratch.drain(..).map(|record| Exchange { record, process: process.clone(), endpoints, tls }));
    }

    /// Connection `hdr.conn_id` ended at `hdr.ts_ns` (its socket did).
    pub fn close(&mut self, hdr: &Header, out: &mut Vec<Exchange>) {
        self.release(hdr.conn_id, out);
        if let Some(conn) = self.conns.remove(&hdr.conn_id) {
            self.finish(conn, hdr.ts_ns, out);
            self.maybe_shrink();
        }
    }

    /// The process exited, or exec()ed another image: its connections end
    /// here. A socket that lives on in another process (a fork), or in the
    /// new image, is announced again by the kernel when it is used.
    pub fn process_exit(&mut self, hdr: &Header, out: &mut Vec<Exchange>) {
        self.end_where(|c| c.tgid == hdr.tgid, Some(hdr.ts_ns), out);
        self.processes.remove(hdr.tgid);
    }

    /// Drops the connections the kernel no longer tracks (`tracked(conn_id)`
    /// false): pushed out of its full LRU table, or closed while the close
    /// event was lost. Neither sends a close event, so without this they
    /// would wait for the idle expiry. Their pending requests end as on
    /// expiry. Returns how many went.
    pub fn reconcile(&mut self, mut tracked: impl FnMut(u64) -> bool, out: &mut Vec<Exchange>) -> usize {
        self.end_where(|c| !tracked(c.conn_id), None, out).len()
    }

    /// Drops connections silent since `cutoff_ns` (their close was lost, or
    /// they idle): bounds memory when events go missing. Returns their ids,
    /// for the kernel table to forget as well.
    pub fn expire_idle(&mut self, cutoff_ns: u64, out: &mut Vec<Exchange>) -> Vec<u64> {
        self.end_where(|c| c.last_seen_ns < cutoff_ns, None, out)
    }

    /// Ends the connections `pred` picks, at `at_ns` or else at their last
    /// event (no close was seen), and gives the table's memory back;
    /// returns their ids.
    fn end_where(
        &mut self,
        mut pred: impl FnMut(&Connection) -> bool,
        at_ns: Option<u64>,
        out: &mut Vec<Exchange>,
    ) -> Vec<u64> {
        let gone: Vec<u64> = self.conns.values().filter(|c| pred(c)).map(|c| c.conn_id).collect();
        for id in &gone {
            self.release(*id, out);
            if let Some(conn) = self.conns.remove(id) {
                let ts = at_ns.unwrap_or(conn.last_seen_ns);
                self.finish(conn, ts, out);
            }
        }
        if !gone.is_empty() {
            self.maybe_shrink();
        }
        gone
    }

    fn finish(&mut self, conn: Connection, ts_ns: u64, out: &mut Vec<Exchange>) {
        if let StreamState::Parsed(_, mut parser) = conn.stream {
            self.scratch.clear();
            parser.close(ts_ns, &mut self.scratch);
            self.requests_lost += parser.dropped();
            out.extend(self.scratch.drain(..).map(|record| Exchange {
                record,
                process: conn.process.clone(),
                endpoints: conn.endpoints,
                tls: conn.tls,
            }));
        }
    }
}

/// A hole in a connection's event numbering: the kernel lost events of it
/// (ring buffer full). Half-known exchanges are dropped and the parser
/// resynchronises rather than pair a request with the wrong response.
fn check_seq(
    conn: &mut Connection,
    seq: Option<u32>,
    scratch: &mut Vec<Record>,
    gaps: &mut u64,
    requests_lost: &mut u64,
) {
    let Some(seq) = seq else { return };
    if conn.next_seq.is_some_and(|expected| expected != seq) {
        *gaps += 1;
        match &mut conn.stream {
            StreamState::Parsed(_, parser) => {
                scratch.clear();
                *requests_lost += parser.gap(scratch) as u64 + parser.dropped();
                scratch.clear();
            }
            // What was gathered does not continue into what comes next.
            StreamState::Sniffing(_) => conn.stream = StreamState::Unclassified,
            _ => {}
        }
    }
    conn.next_seq = Some(seq.wrapping_add(1));
}

/// A TLS record header: content type (change_cipher_spec, alert, handshake,
/// application_data), then version 3.x (SSL 3.0 to TLS 1.3, which says 3.3 or 3.1).
pub fn looks_like_tls_record(payload: &[u8]) -> bool {
    matches!(payload, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

/// DNS's port, on either side.
fn on_port_53(ep: &Endpoints) -> bool {
    ep.local.1 == 53 || ep.peer.1 == 53
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Direction;

    const TGID: u32 = 4242;
    const CONN: u64 = 99;

    fn hdr(ts_ns: u64) -> Header {
        Header { ts_ns, tgid: TGID, tid: TGID, conn_id: CONN }
    }

    fn announce(tgid: u32, transport: Transport) -> ConnOpen {
        ConnOpen {
            local: ("127.0.0.1".parse().unwrap(), 8443),
            peer: ("127.0.0.1".parse().unwrap(), 50000),
            role: 1,
            transport,
            comm: format!("server-{tgid}"),
            exe: format!("server-{tgid}"),
            parent_tgid: 1,
        }
    }

    fn open(t: &mut ConnTracker) {
        t.open(&hdr(1), &announce(TGID, Transport::Tcp));
    }

    fn feed(t: &mut ConnTracker, ts: u64, direction: Direction, payload: &[u8], tls: bool, out: &mut Vec<Exchange>) {
        let data = DataEvent { direction, total_len: payload.len() as u32, payload, seq: None, tls, overlap: false };
        t.data(&hdr(ts), &data, out);
    }

    const CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03random";
    const APP_DATA: &[u8] = b"\x17\x03\x03\x00\x40encrypted-garbage-GET / HTTP/1.1";
    const REQUEST: &[u8] = b"GET /secure?x=1 HTTP/1.1\r\nHost: localhost:8443\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn tls_plaintext_after_handshake_bytes_is_parsed_and_https() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        // The handshake reached userspace before the kernel knew the socket was TLS.
        feed(&mut t, 2, Direction::Ingress, CLIENT_HELLO, false, out);
        assert_eq!(t.muted, [Mute { conn_id: CONN, tls: false }], "socket capture muted");
        assert_eq!(t.tls_suspects, [TGID]);
        // Plaintext from the OpenSSL probes: the connection starts over, as TLS.
        feed(&mut t, 3, Direction::Ingress, REQUEST, true, out);
        // Ciphertext seen at the socket afterwards is ignored, even if it would parse.
        feed(&mut t, 4, Direction::Egress, APP_DATA, false, out);
        feed(&mut t, 5, Direction::Egress, b"HTTP/1.1 500 Nope\r\n\r\n", false, out);
        feed(&mut t, 6, Direction::Egress, RESPONSE, true, out);
        assert_eq!(out.len(), 1, "{out:?}");
        let ex = &out[0];
        assert!(ex.tls);
        let http = ex.record.http1().expect("an HTTP/1 record");
        assert_eq!(http.status, Some(200));
        assert_eq!(http.target, "/secure?x=1");
        assert_eq!(t.parse_errors, 0);
        assert_eq!(t.muted.len(), 1);
    }

    #[test]
    fn tls_plaintext_first_needs_no_reset() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        feed(&mut t, 2, Direction::Ingress, REQUEST, true, out);
        feed(&mut t, 3, Direction::Egress, RESPONSE, true, out);
        feed(&mut t, 4, Direction::Ingress, REQUEST, true, out);
        feed(&mut t, 5, Direction::Egress, RESPONSE, true, out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| e.tls));
        assert!(t.muted.is_empty() && t.tls_suspects.is_empty());
    }

    #[test]
    fn tls_plaintext_nobody_parses_mutes_the_tls_capture() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        // A protocol of no parser inside TLS.
        feed(&mut t, 2, Direction::Egress, b"\xfe\xed\xfa\xce binary", true, out);
        feed(&mut t, 3, Direction::Egress, b"\x00\x00\x12\x04", true, out);
        assert!(out.is_empty());
        assert_eq!(t.muted, [Mute { conn_id: CONN, tls: true }]);
        assert!(t.tls_suspects.is_empty(), "plaintext is not a TLS record");
    }

    /// HTTP/2 inside TLS (ALPN h2) is parsed, and its capture widened.
    #[test]
    fn http2_tls_plaintext_is_parsed() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        feed(
            &mut t,
            2,
            Direction::Ingress,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
            true,
            out,
        );
        assert!(t.muted.is_empty());
        assert_eq!(t.widened, [Widen { conn_id: CONN }]);
        assert_eq!(t.parse_errors, 0);
    }

    #[test]
    fn plain_http_is_unchanged() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        feed(&mut t, 2, Direction::Ingress, REQUEST, false, out);
        feed(&mut t, 3, Direction::Egress, RESPONSE, false, out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].tls);
        t.close(&hdr(3), out);
        open(&mut t);
        feed(&mut t, 4, Direction::Ingress, b"\x00binary", false, out);
        assert_eq!(t.muted, [Mute { conn_id: CONN, tls: false }]);
        assert!(t.tls_suspects.is_empty(), "not a TLS record");
    }

    fn client(t: &mut ConnTracker) {
        t.open(&hdr(1), &ConnOpen { role: 2, ..announce(TGID, Transport::Tcp) });
    }

    /// A data event as the socket path numbers and marks it.
    fn mark(
        t: &mut ConnTracker,
        ts: u64,
        seq: u32,
        direction: Direction,
        payload: &[u8],
        overlap: bool,
    ) -> Vec<Exchange> {
        let mut out = Vec::new();
        let data =
            DataEvent { direction, total_len: payload.len() as u32, payload, seq: Some(seq), tls: false, overlap };
        t.data(&hdr(ts), &data, &mut out);
        out
    }

    const UPLOAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_reply_read_while_its_request_was_still_being_sent_waits_for_it() {
        let mut t = ConnTracker::offline();
        client(&mut t);
        // The reply's receive completed (ts 10) before the upload's send
        // (ts 50); the kernel marked both.
        assert!(mark(&mut t, 10, 0, Direction::Ingress, RESPONSE, true).is_empty(), "held");
        let out = mark(&mut t, 50, 1, Direction::Egress, UPLOAD, true);
        assert_eq!(out.len(), 1);
        let http = out[0].record.http1().expect("an HTTP/1 record");
        assert_eq!((http.role, http.method.as_str(), http.status), (Role::Client, "POST", Some(200)));
        assert_eq!((http.request_start_ns, http.response_start_ns), (9, Some(10)), "the send goes just before");
        assert_eq!((t.reordered, t.gaps), (1, 0), "numbered as they came: no hole");
        // The next exchange, in order, is not held.
        assert!(mark(&mut t, 60, 2, Direction::Egress, REQUEST, false).is_empty());
        let out = mark(&mut t, 70, 3, Direction::Ingress, RESPONSE, false);
        assert_eq!(out[0].record.http1().unwrap().target.as_str(), "/secure?x=1");
        assert!(t.held.is_empty());
    }

    #[test]
    fn held_receives_go_in_arrival_order_when_their_send_never_comes() {
        let mut t = ConnTracker::offline();
        client(&mut t);
        mark(&mut t, 2, 0, Direction::Egress, REQUEST, false);
        // write_seq moved by a writer nothing traced: a later send is not
        // marked, and the held reply goes before it.
        assert!(mark(&mut t, 10, 1, Direction::Ingress, RESPONSE, true).is_empty());
        let out = mark(&mut t, 20, 2, Direction::Egress, REQUEST, false);
        assert_eq!(out.len(), 1, "the held reply answered the first request");
        assert_eq!(out[0].record.http1().unwrap().status, Some(200));
        // Held past the deadline: released by the tick.
        assert!(mark(&mut t, 1_000, 3, Direction::Ingress, RESPONSE, true).is_empty());
        let mut out = Vec::new();
        t.release_overdue(1_000 + HOLD_MAX_NS, &mut out);
        assert!(out.is_empty() && !t.held.is_empty(), "not yet");
        t.release_overdue(1_001 + HOLD_MAX_NS, &mut out);
        assert_eq!(out.len(), 1);
        assert!(t.held.is_empty());
        // A close lets what is held go first.
        mark(&mut t, 3_000_000_000, 4, Direction::Egress, REQUEST, false);
        mark(&mut t, 3_000_000_010, 5, Direction::Ingress, RESPONSE, true);
        let mut out = Vec::new();
        t.close(&hdr(3_000_000_020), &mut out);
        let http = out[0].record.http1().unwrap();
        assert_eq!((out.len(), http.status), (1, Some(200)));
        assert!(t.held.is_empty());
    }

    #[test]
    fn a_connection_holds_a_bounded_number_of_receives() {
        let mut t = ConnTracker::offline();
        client(&mut t);
        mark(&mut t, 1, 0, Direction::Egress, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", false);
        mark(&mut t, 2, 1, Direction::Ingress, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true);
        for i in 0..super::super::overlap::HOLD_MAX_EVENTS as u32 + 1 {
            mark(&mut t, 3 + u64::from(i), 2 + i, Direction::Ingress, b"x", false);
        }
        assert!(t.held.is_empty(), "full: released");
        assert_eq!(t.gaps, 0);
    }

    /// Datagrams, even ones that read like HTTP, make no exchange: the
    /// connection is muted after its first payload.
    #[test]
    fn udp_payloads_are_parsed_by_nothing() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        t.open(&hdr(1), &announce(TGID, Transport::Udp));
        feed(&mut t, 2, Direction::Egress, REQUEST, false, out);
        feed(&mut t, 3, Direction::Ingress, RESPONSE, false, out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.muted, [Mute { conn_id: CONN, tls: false }]);
        assert_eq!(t.parse_errors, 0);
        assert_eq!(t.len(), 1);
    }

    /// Port 53 (either side, either transport) keeps its payload coming
    /// when DNS is wanted, and says who the peer is; elsewhere, or with DNS
    /// off, datagrams are muted as before.
    #[test]
    fn port_53_is_never_muted_when_dns_is_wanted() {
        let out = &mut Vec::new();
        // Longer than recognition waits for: a verdict at once.
        let message = [b"\x12\x34\x01\x00".as_slice(), &[0; SNIFF_MAX_BYTES]].concat();
        for (transport, local, peer) in
            [(Transport::Udp, 40000, 53), (Transport::Udp, 53, 40000), (Transport::Tcp, 40000, 53)]
        {
            let mut t = ConnTracker::offline().with_dns(true);
            let mut open = announce(TGID, transport);
            open.local.1 = local;
            open.peer = ("10.0.0.53".parse().unwrap(), peer);
            t.open(&hdr(1), &open);
            feed(&mut t, 2, Direction::Egress, &message, false, out);
            assert!(t.muted.is_empty(), "{transport:?} {local}->{peer}");
            assert_eq!(t.take_dns_peer(), Some(("10.0.0.53".parse().unwrap(), transport)));
            let mut off = ConnTracker::offline();
            off.open(&hdr(1), &open);
            feed(&mut off, 2, Direction::Egress, &message, false, out);
            assert_eq!(off.muted.len(), 1);
            assert_eq!(off.take_dns_peer(), None);
        }
        let mut t = ConnTracker::offline().with_dns(true);
        t.open(&hdr(1), &announce(TGID, Transport::Udp));
        feed(&mut t, 2, Direction::Egress, REQUEST, false, out);
        assert_eq!(t.muted.len(), 1, "not port 53");
        assert_eq!(t.take_dns_peer(), None);
        assert!(out.is_empty());
    }

    /// Another process (a fork sharing the socket) announced for a known
    /// connection: the stream goes on, its exchanges under the new process.
    #[test]
    fn a_connection_announced_again_keeps_its_stream_under_the_new_process() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        feed(&mut t, 2, Direction::Ingress, REQUEST, false, out);
        let child = Header { ts_ns: 3, tgid: TGID + 1, tid: TGID + 1, conn_id: CONN };
        t.open(&child, &announce(TGID + 1, Transport::Tcp));
        let data = DataEvent {
            direction: Direction::Egress,
            total_len: RESPONSE.len() as u32,
            payload: RESPONSE,
            seq: Some(7),
            tls: false,
            overlap: false,
        };
        t.data(&Header { ts_ns: 4, ..child }, &data, out);
        assert_eq!(out.len(), 1, "request and response pair across the two processes");
        assert_eq!(out[0].process.pid, TGID + 1);
        assert_eq!(t.len(), 1);
        // The old process exiting no longer ends it; the new one's does.
        t.process_exit(&hdr(5), out);
        assert_eq!(t.len(), 1);
        t.process_exit(&Header { ts_ns: 6, ..child }, out);
        assert!(t.is_empty());
    }

    /// Connections are ended by their id alone: an id the table does not
    /// know (a close of a connection already expired) changes nothing.
    #[test]
    fn close_takes_the_connection_id_only() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        open(&mut t);
        feed(&mut t, 2, Direction::Ingress, REQUEST, false, out);
        t.close(&Header { ts_ns: 3, tgid: 1, tid: 1, conn_id: CONN + 1 }, out);
        assert_eq!(t.len(), 1);
        // A close seen in another task (softirq, the last closer) still ends it.
        t.close(&Header { ts_ns: 4, tgid: 0, tid: 0, conn_id: CONN }, out);
        assert!(t.is_empty());
        assert_eq!(out.len(), 1, "the unanswered request ends as an exchange");
        let http = out[0].record.http1().expect("an HTTP/1 record");
        assert_eq!((http.status, http.response_end_ns), (None, 4), "ended at the close");
    }

    /// The first bytes of a request, as one ingress event.
    fn request_head(payload: &'static [u8]) -> DataEvent<'static> {
        DataEvent {
            direction: Direction::Ingress,
            total_len: payload.len() as u32,
            payload,
            seq: None,
            tls: false,
            overlap: false,
        }
    }

    fn conn_hdr(id: u64, ts_ns: u64) -> Header {
        Header { ts_ns, tgid: TGID, tid: TGID, conn_id: id }
    }

    #[test]
    fn table_gives_memory_back_after_mass_close() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        for id in 0..10_000 {
            t.data(&conn_hdr(id, 1), &request_head(b"GET / HTTP/1.1"), out);
        }
        assert_eq!(t.len(), 10_000);
        let full = t.capacity();
        assert!(full >= 10_000);
        // All but 100 close: the table shrinks on the way down...
        for id in 100..10_000 {
            t.close(&conn_hdr(id, 1), out);
        }
        assert_eq!(t.len(), 100);
        assert!(t.capacity() < full / 8, "capacity {} of {full}", t.capacity());
        assert!(t.capacity() <= 4 * SHRINK_MIN_CAPACITY);
        // ... not on every removal: below the minimum it stays put.
        let small = t.capacity();
        for id in 0..100 {
            t.close(&conn_hdr(id, 1), out);
        }
        assert!(t.is_empty());
        assert_eq!(t.capacity(), small);
        // Connections of an exited process, and idle ones, count as removals too.
        for id in 0..5_000 {
            t.data(&conn_hdr(id, 1), &request_head(b"GET / HTTP/1.1"), out);
        }
        assert!(t.capacity() >= 5_000);
        t.process_exit(&conn_hdr(0, 1), out);
        assert!(t.is_empty());
        assert!(t.capacity() < SHRINK_MIN_CAPACITY, "capacity {}", t.capacity());
    }

    /// Connections the kernel no longer holds (pushed out of its full LRU
    /// table: no close event) leave userspace too, their requests reported.
    #[test]
    fn reconcile_drops_what_the_kernel_forgot() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        for id in 100..104 {
            t.data(&conn_hdr(id, 1), &request_head(b"GET / HTTP/1.1\r\n\r\n"), out);
        }
        assert_eq!((t.len(), out.len()), (4, 0));
        // The kernel still holds connections 100 and 103.
        let gone = t.reconcile(|id| id == 100 || id == 103, out);
        assert_eq!(gone, 2);
        assert_eq!(t.len(), 2);
        assert_eq!(out.len(), 2, "the unanswered requests of 101 and 102 end as exchanges");
        assert_eq!(t.reconcile(|_| true, out), 0);
    }

    /// Connections silent since the cutoff end, their unanswered requests
    /// reported, and come back with their ids for the kernel to forget too.
    #[test]
    fn idle_connections_expire_and_are_named_for_the_kernel() {
        let mut t = ConnTracker::offline();
        let out = &mut Vec::new();
        t.data(&conn_hdr(101, 10), &request_head(b"GET / HTTP/1.1\r\n\r\n"), out);
        t.data(&conn_hdr(102, 20), &request_head(b"GET / HTTP/1.1\r\n\r\n"), out);
        t.data(&conn_hdr(103, 30), &request_head(b"GET / HTTP/1.1\r\n\r\n"), out);
        let mut gone = t.expire_idle(25, out);
        gone.sort_unstable();
        assert_eq!(gone, [101, 102]);
        assert_eq!((t.len(), out.len()), (1, 2), "103 stays; the requests of 101 and 102 end as exchanges");
        assert!(t.expire_idle(25, out).is_empty());
    }

    #[test]
    fn tls_record_sniffing() {
        assert!(looks_like_tls_record(CLIENT_HELLO));
        assert!(looks_like_tls_record(APP_DATA));
        assert!(looks_like_tls_record(b"\x15\x03\x03\x00\x02"));
        assert!(!looks_like_tls_record(b"\x16\x03"));
        assert!(!looks_like_tls_record(b"GET / HTTP/1.1"));
        assert!(!looks_like_tls_record(b"\x18\x03\x03\x00"));
        assert!(!looks_like_tls_record(b"\x16\x02\x00\x00"));
    }
}
