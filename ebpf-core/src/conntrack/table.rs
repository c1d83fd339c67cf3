//! The userspace mirror of the kernel connection table. Feeds each data event
//! to its connection's parser and returns the exchanges it completes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::events::{ConnOpen, DataEvent, Header};
use crate::process::{IdentityConfig, ProcessIdentity, ProcessTable};
use crate::protocol::http1::{Http1Parser, HttpExchange};
use crate::protocol::Chunk;

use super::connection::{Connection, Endpoints, StreamState};

/// A completed exchange with what is known about its connection.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub http: HttpExchange,
    pub process: Arc<ProcessIdentity>,
    pub endpoints: Option<Endpoints>,
}

#[derive(Debug, Default)]
pub struct ConnTracker {
    conns: HashMap<(u32, i32), Connection>,
    processes: ProcessTable,
    /// Connections whose parser failed, since start.
    pub parse_errors: u64,
    /// (tgid, fd, conn_id) of connections that need no more payload: the
    /// kernel can stop copying their bytes.
    pub muted: Vec<(u32, i32, u64)>,
    scratch: Vec<HttpExchange>,
}

impl ConnTracker {
    pub fn new(identity: IdentityConfig) -> Self {
        Self { processes: ProcessTable::new(identity), ..Self::default() }
    }

    /// For replaying recorded events: identities come from the events only.
    pub fn offline() -> Self {
        Self { processes: ProcessTable::offline(), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Processes with an identity cached (seen on a connection and not exited).
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    pub fn open(&mut self, hdr: &Header, open: &ConnOpen, out: &mut Vec<Exchange>) {
        // An fd reused without a close we saw: finish the old connection first.
        self.close(hdr, out);
        let process = self.processes.get_or_read(hdr.tgid, &open.comm);
        self.conns.insert(
            (hdr.tgid, hdr.fd),
            Connection {
                conn_id: hdr.conn_id,
                process,
                endpoints: Some(Endpoints { local: open.local, peer: open.peer }),
                stream: StreamState::Unclassified,
                last_seen_ns: hdr.ts_ns,
            },
        );
    }

    pub fn data(&mut self, hdr: &Header, data: &DataEvent<'_>, out: &mut Vec<Exchange>) {
        let key = (hdr.tgid, hdr.fd);
        if self.conns.get(&key).is_some_and(|c| c.conn_id != hdr.conn_id) {
            self.close(hdr, out);
        }
        let processes = &mut self.processes;
        let conn = self.conns.entry(key).or_insert_with(|| Connection {
            conn_id: hdr.conn_id,
            process: processes.get_or_read(hdr.tgid, ""),
            endpoints: None,
            stream: StreamState::Unclassified,
            last_seen_ns: hdr.ts_ns,
        });
        conn.last_seen_ns = hdr.ts_ns;
        if matches!(conn.stream, StreamState::Unclassified) {
            if data.payload.is_empty() {
                return;
            }
            conn.stream = if Http1Parser::looks_like_http(data.payload) {
                StreamState::Http1(Box::default())
            } else {
                self.muted.push((hdr.tgid, hdr.fd, hdr.conn_id));
                StreamState::Ignored
            };
        }
        let StreamState::Http1(parser) = &mut conn.stream else {
            return;
        };
        let chunk = Chunk {
            ts_ns: hdr.ts_ns,
            direction: data.direction,
            data: data.payload,
            total_len: u64::from(data.total_len),
        };
        self.scratch.clear();
        let failed = parser.feed(&chunk, &mut self.scratch).is_err();
        if failed {
            self.parse_errors += 1;
        }
        // Garbage, or an upgrade to another protocol (WebSocket, CONNECT tunnel).
        if failed || parser.is_switched() {
            conn.stream = StreamState::Ignored;
            self.muted.push((hdr.tgid, hdr.fd, hdr.conn_id));
        }
        let (process, endpoints) = (conn.process.clone(), conn.endpoints);
        out.extend(self.scratch.drain(..).map(|http| Exchange { http, process: process.clone(), endpoints }));
    }

    /// The connection at (tgid, fd) closed at `hdr.ts_ns`.
    pub fn close(&mut self, hdr: &Header, out: &mut Vec<Exchange>) {
        if let Some(conn) = self.conns.remove(&(hdr.tgid, hdr.fd)) {
            self.finish(conn, hdr.ts_ns, out);
        }
    }

    /// The process exited: its sockets closed without close() calls. Returns
    /// the fds it had, so the kernel table can forget them too.
    pub fn process_exit(&mut self, hdr: &Header, out: &mut Vec<Exchange>) -> Vec<i32> {
        let fds: Vec<i32> = self.conns.keys().filter(|(tgid, _)| *tgid == hdr.tgid).map(|&(_, fd)| fd).collect();
        for &fd in &fds {
            if let Some(conn) = self.conns.remove(&(hdr.tgid, fd)) {
                self.finish(conn, hdr.ts_ns, out);
            }
        }
        self.processes.remove(hdr.tgid);
        fds
    }

    /// Drops connections silent since `cutoff_ns` (their close was lost):
    /// bounds memory when events go missing.
    pub fn expire_idle(&mut self, cutoff_ns: u64, out: &mut Vec<Exchange>) {
        let stale: Vec<(u32, i32)> =
            self.conns.iter().filter(|(_, c)| c.last_seen_ns < cutoff_ns).map(|(k, _)| *k).collect();
        for key in stale {
            if let Some(conn) = self.conns.remove(&key) {
                let ts = conn.last_seen_ns;
                self.finish(conn, ts, out);
            }
        }
    }

    fn finish(&mut self, conn: Connection, ts_ns: u64, out: &mut Vec<Exchange>) {
        if let StreamState::Http1(mut parser) = conn.stream {
            self.scratch.clear();
            parser.close(ts_ns, &mut self.scratch);
            out.extend(self.scratch.drain(..).map(|http| Exchange {
                http,
                process: conn.process.clone(),
                endpoints: conn.endpoints,
            }));
        }
    }
}
