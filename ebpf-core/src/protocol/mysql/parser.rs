//! The per-connection state machine. The server speaks first (greeting:
//! version, capabilities), the client logs in (capabilities, database),
//! authentication runs until OK or ERR, then each client command (sequence
//! id 0) gets its response, in order.
//!
//! # Operations
//!
//! COM_QUERY is a `Query`, COM_STMT_PREPARE a `Prepare` (its OK gives the
//! statement id, remembered with the text), COM_STMT_EXECUTE an `Execute`
//! carrying the prepared text; COM_PING, COM_INIT_DB and
//! COM_RESET_CONNECTION are `Other` operations. COM_STMT_CLOSE,
//! COM_STMT_RESET, COM_STMT_FETCH and the rest are followed but not
//! reported. Result sets are followed packet by packet (column count,
//! column definitions, EOF unless CLIENT_DEPRECATE_EOF, rows, EOF/OK), over
//! multiple results (SERVER_MORE_RESULTS_EXISTS). The database changes with
//! COM_INIT_DB and with the schema the server reports in OK packets
//! (session tracking: `USE db` as SQL).
//!
//! # Lost framing and lost events
//!
//! Classic-protocol clients send a command only after reading the previous
//! response whole. So when server bytes past the capture hide packet
//! boundaries (a big result set), the response ends at the next command
//! (or at a chunk ending with an EOF), with status Unknown; after `gap`, or
//! on a connection joined late, matching resumes at the next client chunk
//! that is one whole command packet (sequence id 0). A response whose
//! first packet does not carry the next sequence id puts the parser back
//! into that wait.
//!
//! The compressed protocol (CLIENT_COMPRESS) is recognised after the
//! handshake and counted (`compressed`), not parsed; TLS (an SSL request)
//! makes the socket stream go quiet: the plaintext capture starts with the
//! login packet, which this parser also accepts as a first message.

use std::collections::VecDeque;
use std::sync::Arc;

use compact_str::CompactString;

use super::framer::{ends_response, starts_command, Framer, Outcome, Packet};
use super::{command_name, MAX_IN_FLIGHT, MAX_STATEMENTS, MORE_RESULTS};
use crate::protocol::sql::first::{FirstBytes, Gathered};
use crate::protocol::sql::{
    DbCommand, DbError, DbOperation, DbStatus, Dialect, QueryInfo, SqlOptions, MAX_QUERY_BYTES,
};
use crate::protocol::{Chunk, Direction, Role};

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_COMPRESS: u32 = 0x20;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
const CLIENT_SESSION_TRACK: u32 = 0x80_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;
const CLIENT_QUERY_ATTRIBUTES: u32 = 0x800_0000;
/// MariaDB extended capability (bits 32+): result set metadata may be omitted.
const MARIADB_CACHE_METADATA: u32 = 1 << 4;
const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x40;
const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;
const SESSION_TRACK_SCHEMA: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// Waiting for the client's login (or SSL request).
    Login,
    /// Authentication exchange until OK/ERR.
    Auth,
    Command,
    /// TLS on this stream: ciphertext from here on.
    Tls,
    /// The compressed protocol: counted, not parsed.
    Compressed,
    /// Waiting for a client command packet to resynchronise on.
    Lost,
    Done,
}

/// Which product the server is, from its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

impl Flavor {
    /// `db.system.name`.
    pub fn system(self) -> &'static str {
        match self {
            Flavor::MySql => "mysql",
            Flavor::MariaDb => "mariadb",
        }
    }
}

/// Where a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    /// OK or ERR (or anything: the first packet ends it).
    Simple,
    /// A result set's first packet: OK, ERR, LOCAL INFILE, or column count.
    First,
    /// Column definitions still to come, then the EOF unless deprecated.
    Columns {
        left: u64,
        eof: bool,
    },
    /// The EOF after column definitions.
    ColumnsEof,
    Rows,
    /// After a LOCAL INFILE request: the client's file, then OK/ERR.
    LocalInfile,
    /// COM_STMT_PREPARE: its OK, then parameter and column definitions.
    PrepareOk,
    Skip {
        left: u64,
    },
    /// Column definitions until EOF (COM_FIELD_LIST).
    UntilEof,
}

#[derive(Debug)]
struct Pending {
    command: u8,
    /// Whether to report it.
    report: bool,
    query: Option<Arc<QueryInfo>>,
    /// COM_INIT_DB's database; COM_STMT_EXECUTE/CLOSE's statement id.
    db: Option<Arc<str>>,
    start_ns: u64,
    resp: Resp,
    /// The sequence id the next response packet must carry.
    next_seq: u8,
    started: bool,
    status: Option<DbStatus>,
    rows: u64,
    saw_rows: bool,
    affected: Option<u64>,
    /// Prepared statement id from COM_STMT_PREPARE's OK.
    stmt_id: Option<u32>,
    counts_partial: bool,
}

/// Turns one MySQL/MariaDB connection's chunks into `DbOperation`s.
#[derive(Debug)]
pub struct MysqlParser {
    opts: SqlOptions,
    phase: Phase,
    client_dir: Option<Direction>,
    client: Framer,
    server: Framer,
    caps: u32,
    ext_caps: u32,
    flavor: Option<Flavor>,
    namespace: Option<Arc<str>>,
    statements: VecDeque<(u32, Option<Arc<QueryInfo>>)>,
    pending: VecDeque<Pending>,
    done: Vec<DbOperation>,
    server_unframed: bool,
    packets: Vec<Packet>,
    scratch: Vec<u8>,
    compressed_chunks: u64,
    dropped: u64,
    /// The first bytes, while too few to recognise (a greeting or login).
    first: FirstBytes,
    /// Timestamp of the last server chunk.
    last_server_ts: u64,
}

impl MysqlParser {
    /// A parser for a connection followed from its first byte (or the
    /// plaintext side of a TLS connection, which starts with the login).
    pub fn new(opts: SqlOptions) -> Self {
        MysqlParser {
            opts,
            phase: Phase::Greeting,
            client_dir: None,
            client: Framer::new(MAX_QUERY_BYTES + 64),
            server: Framer::new(256),
            caps: 0,
            ext_caps: 0,
            flavor: None,
            namespace: None,
            statements: VecDeque::new(),
            pending: VecDeque::new(),
            done: Vec::new(),
            server_unframed: false,
            packets: Vec::new(),
            scratch: Vec::new(),
            compressed_chunks: 0,
            dropped: 0,
            first: FirstBytes::default(),
            last_server_ts: 0,
        }
    }

    /// A parser for a connection whose start was missed; `role` says which
    /// way the client's bytes go. Capabilities are unknown: CLIENT_PROTOCOL_41
    /// is assumed, CLIENT_DEPRECATE_EOF is not.
    pub fn joined(opts: SqlOptions, role: Role) -> Self {
        let mut p = Self::new(opts);
        p.client_dir = Some(role.request_direction());
        p.caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
        p.phase = Phase::Lost;
        p
    }

    pub fn namespace(&self) -> Option<&Arc<str>> {
        self.namespace.as_ref()
    }

    /// The server product, once its greeting was seen.
    pub fn flavor(&self) -> Option<Flavor> {
        self.flavor
    }

    pub fn is_tls(&self) -> bool {
        self.phase == Phase::Tls
    }

    /// The parser for the plaintext of this connection once it switched to
    /// TLS: it starts at the login, knowing the server's product from the
    /// greeting seen here in the clear. None before the switch.
    pub fn after_tls(&self) -> Option<MysqlParser> {
        if self.phase != Phase::Tls {
            return None;
        }
        let mut p = Self::new(self.opts);
        p.client_dir = self.client_dir;
        p.flavor = self.flavor;
        p.phase = Phase::Login;
        Some(p)
    }

    /// The connection negotiated the compressed protocol: not parsed.
    pub fn is_compressed(&self) -> bool {
        self.phase == Phase::Compressed
    }

    /// Nothing more to follow: quit, failed login, replication, or not MySQL.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Chunks of a compressed-protocol connection, seen and not parsed.
    pub fn compressed(&self) -> u64 {
        self.compressed_chunks
    }

    /// Operations given up because their responses could not be matched.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn role(&self) -> Role {
        self.client_dir.map_or(Role::Client, |d| Role::of(d, true))
    }

    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        match self.phase {
            Phase::Tls | Phase::Done => return,
            Phase::Compressed => {
                self.compressed_chunks += 1;
                return;
            }
            _ => {}
        }
        let from_client = match self.client_dir {
            Some(d) => d == chunk.direction,
            None if chunk.data.len() < 8 || !self.first.is_empty() => return self.first_bytes(chunk, out),
            None => {
                if looks_like_greeting(chunk.data) {
                    self.client_dir = Some(chunk.direction.opposite());
                    false
                } else if looks_like_login(chunk.data) {
                    // The plaintext of a TLS connection starts here.
                    self.client_dir = Some(chunk.direction);
                    self.phase = Phase::Login;
                    true
                } else {
                    self.phase = Phase::Done;
                    return;
                }
            }
        };
        if self.phase == Phase::Lost {
            if !from_client || !starts_command(chunk.data, chunk.total_len) {
                return;
            }
            self.phase = Phase::Command;
            self.client.reset();
            self.server.reset();
            self.server_unframed = false;
        }
        if from_client {
            self.client_chunk(chunk);
        } else {
            self.server_chunk(chunk);
        }
        out.append(&mut self.done);
    }

    /// The connection's first bytes came in pieces too small to recognise.
    fn first_bytes(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>) {
        match self.first.gather(chunk, 4096) {
            Gathered::More => {}
            Gathered::Refused => self.phase = Phase::Done,
            Gathered::Whole { bytes, ts_ns } => {
                let whole = Chunk { ts_ns, direction: chunk.direction, data: &bytes, total_len: bytes.len() as u64 };
                self.feed(&whole, out);
            }
        }
    }

    pub fn gap(&mut self) {
        match self.phase {
            Phase::Tls | Phase::Done | Phase::Compressed => {}
            Phase::Greeting | Phase::Login | Phase::Auth if self.client_dir.is_none() => self.phase = Phase::Done,
            _ => self.enter_lost(),
        }
    }

    /// The connection closed: responses still in progress are dropped.
    pub fn close(&mut self, out: &mut Vec<DbOperation>) {
        out.append(&mut self.done);
        self.dropped += self.pending.iter().filter(|p| p.report).count() as u64;
        self.pending.clear();
        if !matches!(self.phase, Phase::Tls | Phase::Compressed) {
            self.phase = Phase::Done;
        }
    }

    fn enter_lost(&mut self) {
        if self.caps == 0 {
            // The login was not seen: assume what every current client sends.
            self.caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
        }
        self.dropped += self.pending.iter().filter(|p| p.report).count() as u64;
        self.pending.clear();
        self.client.reset();
        self.server.reset();
        self.server_unframed = false;
        self.phase = Phase::Lost;
    }

    fn client_chunk(&mut self, chunk: &Chunk<'_>) {
        if self.server_unframed {
            // The client read the whole response before writing again.
            self.finish_unframed(None);
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.packets.clear();
        self.scratch.clear();
        let outcome = self.client.feed(chunk.data, uncaptured, chunk.ts_ns, &mut self.packets, &mut self.scratch);
        let packets = std::mem::take(&mut self.packets);
        let scratch = std::mem::take(&mut self.scratch);
        for p in &packets {
            self.client_packet(*p, &scratch[p.start..p.end]);
            if !matches!(self.phase, Phase::Login | Phase::Auth | Phase::Command) {
                break;
            }
        }
        self.packets = packets;
        self.scratch = scratch;
        if outcome == Outcome::TailLost && self.phase == Phase::Command {
            self.enter_lost();
        }
    }

    fn server_chunk(&mut self, chunk: &Chunk<'_>) {
        self.last_server_ts = chunk.ts_ns;
        if self.server_unframed {
            if ends_response(chunk.data, chunk.total_len) {
                self.finish_unframed(Some(chunk.ts_ns));
            }
            return;
        }
        let uncaptured = chunk.total_len.saturating_sub(chunk.data.len() as u64);
        self.packets.clear();
        self.scratch.clear();
        let outcome = self.server.feed(chunk.data, uncaptured, chunk.ts_ns, &mut self.packets, &mut self.scratch);
        let packets = std::mem::take(&mut self.packets);
        let scratch = std::mem::take(&mut self.scratch);
        for p in &packets {
            self.server_packet(*p, &scratch[p.start..p.end], chunk.ts_ns);
            if !matches!(self.phase, Phase::Greeting | Phase::Auth | Phase::Command) {
                break;
            }
        }
        self.packets = packets;
        self.scratch = scratch;
        if outcome == Outcome::TailLost && self.phase == Phase::Command {
            if let Some(head) = self.pending.front_mut() {
                head.counts_partial = true;
                self.server_unframed = true;
            }
        }
    }

    /// The response in progress ended somewhere in bytes we did not see.
    fn finish_unframed(&mut self, ts: Option<u64>) {
        self.server_unframed = false;
        self.server.reset();
        if let Some(mut head) = self.pending.pop_front() {
            if head.status.is_none() {
                head.status = Some(DbStatus::Unknown);
            }
            // Without an end seen, the response ended with the last server
            // chunk before the client's next command.
            let end = ts.unwrap_or(self.last_server_ts).max(head.start_ns);
            self.finish(head, end);
        }
        if !self.pending.is_empty() {
            self.enter_lost();
        }
    }

    // ---- client ---------------------------------------------------------

    fn client_packet(&mut self, p: Packet, body: &[u8]) {
        match self.phase {
            Phase::Login => self.login(p, body),
            Phase::Greeting => {
                // A login before a greeting we saw: the TLS plaintext side.
                self.login(p, body);
            }
            Phase::Auth => {}
            Phase::Command => {
                if let Some(head) = self.pending.front() {
                    if head.resp == Resp::LocalInfile {
                        return;
                    }
                }
                if p.seq != 0 {
                    // The rest of a long command (0xFFFFFF continuation).
                    return;
                }
                self.command(p, body);
            }
            _ => {}
        }
    }

    fn login(&mut self, p: Packet, body: &[u8]) {
        if body.len() < 4 {
            self.phase = Phase::Done;
            return;
        }
        let caps = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            // Pre-4.1 clients: not followed.
            self.phase = Phase::Done;
            return;
        }
        if caps & CLIENT_SSL != 0 && p.len == 32 {
            self.phase = Phase::Tls;
            return;
        }
        self.caps = caps;
        if caps & CLIENT_LONG_PASSWORD == 0 && body.len() >= 32 {
            self.ext_caps = u32::from_le_bytes([body[28], body[29], body[30], body[31]]);
        }
        self.phase = Phase::Auth;
        // user\0, auth data, database\0
        let Some(rest) = body.get(32..) else { return };
        let Some(user_end) = memchr::memchr(0, rest) else { return };
        let rest = &rest[user_end + 1..];
        let rest = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
            lenenc(rest).and_then(|(n, used)| rest.get(used + n as usize..))
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            rest.first().and_then(|&n| rest.get(1 + usize::from(n)..))
        } else {
            memchr::memchr(0, rest).and_then(|n| rest.get(n + 1..))
        };
        if caps & CLIENT_CONNECT_WITH_DB != 0 {
            if let Some(db) = rest.and_then(|r| memchr::memchr(0, r).map(|n| &r[..n])) {
                if !db.is_empty() {
                    self.namespace = Some(Arc::from(String::from_utf8_lossy(db).as_ref()));
                }
            }
        }
    }

    fn command(&mut self, p: Packet, body: &[u8]) {
        let Some(&cmd) = body.first() else { return };
        let mut pending = Pending {
            command: cmd,
            report: false,
            query: None,
            db: None,
            start_ns: p.ts,
            resp: Resp::Simple,
            next_seq: 1,
            started: false,
            status: None,
            rows: 0,
            saw_rows: false,
            affected: None,
            stmt_id: None,
            counts_partial: false,
        };
        let complete = p.complete && !p.continues;
        match cmd {
            0x03 => {
                let mut text = &body[1..];
                if self.caps & CLIENT_QUERY_ATTRIBUTES != 0 {
                    // parameter count, parameter set count: only without attributes.
                    match lenenc(text) {
                        Some((0, used)) => text = text.get(used + 1..).unwrap_or_default(),
                        _ => text = &[],
                    }
                }
                pending.report = true;
                if !text.is_empty() {
                    pending.query = Some(QueryInfo::analyze(text, complete, Dialect::MySql, self.opts));
                }
                pending.resp = Resp::First;
            }
            0x16 => {
                pending.report = true;
                pending.query = Some(QueryInfo::analyze(&body[1..], complete, Dialect::MySql, self.opts));
                pending.resp = Resp::PrepareOk;
            }
            0x17 => {
                pending.report = true;
                if let Some(id) = stmt_id(body) {
                    pending.stmt_id = Some(id);
                    pending.query = self.statements.iter().rev().find(|s| s.0 == id).and_then(|s| s.1.clone());
                }
                pending.resp = Resp::First;
            }
            0x1c => pending.resp = Resp::Rows,
            0x19 => {
                if let Some(id) = stmt_id(body) {
                    self.statements.retain(|s| s.0 != id);
                }
                return;
            }
            0x18 => return,
            0x01 => {
                self.phase = Phase::Done;
                return;
            }
            0x02 => {
                pending.report = true;
                let db = &body[1..body.len().min(1 + 256)];
                if complete && !db.is_empty() {
                    pending.db = Some(Arc::from(String::from_utf8_lossy(db).as_ref()));
                }
            }
            0x0e | 0x1f => pending.report = true,
            0x04 => pending.resp = Resp::UntilEof,
            0x11 => {
                // COM_CHANGE_USER: a new authentication exchange.
                self.phase = Phase::Auth;
                return;
            }
            0x12 | 0x15 | 0x1e => {
                // Replication streams: not requests and responses.
                self.phase = Phase::Done;
                return;
            }
            _ if command_name(cmd).is_none() => {
                self.enter_lost();
                return;
            }
            _ => {}
        }
        if self.pending.len() >= MAX_IN_FLIGHT {
            self.enter_lost();
            return;
        }
        self.pending.push_back(pending);
    }

    // ---- server ---------------------------------------------------------

    fn server_packet(&mut self, p: Packet, body: &[u8], ts: u64) {
        match self.phase {
            Phase::Greeting => {
                self.greeting(body);
                self.phase = Phase::Login;
            }
            Phase::Auth => match body.first() {
                Some(0x00) => {
                    self.ok_packet(body);
                    self.phase = if self.caps & CLIENT_COMPRESS != 0 { Phase::Compressed } else { Phase::Command };
                }
                Some(0xFF) => self.phase = Phase::Done,
                _ => {}
            },
            Phase::Command => self.response_packet(p, body, ts),
            _ => {}
        }
    }

    fn greeting(&mut self, body: &[u8]) {
        if body.first() != Some(&10) {
            return;
        }
        let version = cstr(&body[1..]);
        self.flavor =
            Some(if memchr::memmem::find(version, b"MariaDB").is_some() { Flavor::MariaDb } else { Flavor::MySql });
    }

    fn deprecate_eof(&self) -> bool {
        self.caps & CLIENT_DEPRECATE_EOF != 0
    }

    fn response_packet(&mut self, p: Packet, body: &[u8], ts: u64) {
        let deprecate_eof = self.deprecate_eof();
        let cache_metadata = self.ext_caps & MARIADB_CACHE_METADATA != 0;
        let Some(head) = self.pending.front_mut() else {
            // A response to no command we saw.
            self.enter_lost();
            return;
        };
        if !head.started {
            head.started = true;
            head.next_seq = p.seq;
            if p.seq != 1 {
                self.enter_lost();
                return;
            }
        }
        if p.seq != head.next_seq {
            self.enter_lost();
            return;
        }
        head.next_seq = p.seq.wrapping_add(1);
        let first = body.first().copied();
        let mut done = false;
        match (head.resp, first) {
            (
                Resp::LocalInfile | Resp::Simple | Resp::First | Resp::PrepareOk | Resp::Rows | Resp::UntilEof,
                Some(0xFF),
            ) => {
                head.status = Some(err_packet(body, self.caps));
                done = true;
            }
            (Resp::Simple, _) => {
                if first == Some(0x00) {
                    head.affected = ok_affected(body);
                }
                done = true;
            }
            (Resp::LocalInfile, _) => {
                head.affected = ok_affected(body);
                done = true;
            }
            (Resp::First, Some(0x00)) => {
                head.affected = Some(head.affected.unwrap_or(0) + ok_affected(body).unwrap_or(0));
                done = ok_status(body).is_none_or(|s| s & MORE_RESULTS == 0);
            }
            (Resp::First, Some(0xFB)) => head.resp = Resp::LocalInfile,
            (Resp::First, _) => match lenenc(body) {
                Some((n, used)) if n > 0 => {
                    let metadata = !cache_metadata || body.get(used) != Some(&0);
                    head.resp = if metadata { Resp::Columns { left: n, eof: !deprecate_eof } } else { Resp::Rows };
                }
                _ => {
                    self.enter_lost();
                    return;
                }
            },
            (Resp::Columns { left, eof }, _) => {
                head.resp = match (left - 1, eof) {
                    (0, true) => Resp::ColumnsEof,
                    (0, false) => Resp::Rows,
                    (n, _) => Resp::Columns { left: n, eof },
                };
            }
            (Resp::ColumnsEof, Some(0xFE)) if p.len < 9 => {
                let status = eof_status(body);
                // A cursor was opened: rows come with COM_STMT_FETCH.
                done = status.is_some_and(|s| s & SERVER_STATUS_CURSOR_EXISTS != 0);
                head.resp = Resp::Rows;
            }
            (Resp::ColumnsEof, _) => {
                self.enter_lost();
                return;
            }
            (Resp::Rows | Resp::UntilEof, Some(0xFE))
                if (!deprecate_eof && p.len < 9) || (deprecate_eof && p.len < 0xFF_FFFF) =>
            {
                let status = if p.len < 9 && !deprecate_eof { eof_status(body) } else { ok_status(body) };
                head.saw_rows = head.resp == Resp::Rows;
                if status.is_some_and(|s| s & MORE_RESULTS != 0) && head.resp == Resp::Rows {
                    head.resp = Resp::First;
                } else {
                    done = true;
                }
            }
            (Resp::Rows, _) => {
                head.rows += 1;
                head.saw_rows = true;
            }
            (Resp::UntilEof, _) => {}
            (Resp::PrepareOk, Some(0x00)) if body.len() >= 9 => {
                let id = u32::from_le_bytes([body[1], body[2], body[3], body[4]]);
                let cols = u64::from(u16::from_le_bytes([body[5], body[6]]));
                let params = u64::from(u16::from_le_bytes([body[7], body[8]]));
                head.stmt_id = Some(id);
                let eofs = if deprecate_eof { 0 } else { u64::from(cols > 0) + u64::from(params > 0) };
                let left = cols + params + eofs;
                if left == 0 {
                    done = true;
                } else {
                    head.resp = Resp::Skip { left };
                }
            }
            (Resp::PrepareOk, _) => {
                self.enter_lost();
                return;
            }
            (Resp::Skip { left }, _) => {
                if left <= 1 {
                    done = true;
                } else {
                    head.resp = Resp::Skip { left: left - 1 };
                }
            }
        }
        if done {
            if let Some(head) = self.pending.pop_front() {
                if first == Some(0x00) || first == Some(0xFE) {
                    self.ok_packet(body);
                }
                self.finish(head, ts);
            }
        }
    }

    /// Session state in an OK: the schema the connection now uses.
    fn ok_packet(&mut self, body: &[u8]) {
        if self.caps & CLIENT_SESSION_TRACK == 0 {
            return;
        }
        let Some(schema) = ok_schema(body) else { return };
        self.namespace = Some(Arc::from(String::from_utf8_lossy(schema).as_ref()));
    }

    fn finish(&mut self, mut p: Pending, end: u64) {
        if p.command == 0x16 {
            if let (Some(id), None | Some(DbStatus::Ok)) = (p.stmt_id, &p.status) {
                if self.statements.len() >= MAX_STATEMENTS {
                    self.statements.pop_front();
                }
                self.statements.push_back((id, p.query.clone()));
            }
        }
        let status = p.status.take().unwrap_or(DbStatus::Ok);
        if p.command == 0x02 && status == DbStatus::Ok {
            if let Some(db) = p.db.take() {
                self.namespace = Some(db);
            }
        }
        if !p.report {
            return;
        }
        let command = match p.command {
            0x03 => DbCommand::Query,
            0x16 => DbCommand::Prepare,
            0x17 => DbCommand::Execute,
            c => DbCommand::Other(command_name(c).unwrap_or("UNKNOWN")),
        };
        let status = if p.counts_partial && status == DbStatus::Ok { DbStatus::Unknown } else { status };
        self.done.push(DbOperation {
            system: self.flavor.unwrap_or(Flavor::MySql).system(),
            command,
            query: p.query,
            start_ns: p.start_ns,
            end_ns: end,
            status,
            returned_rows: p.saw_rows.then_some(p.rows),
            affected_rows: p.affected.filter(|_| !p.saw_rows),
            namespace: self.namespace.clone(),
            role: self.role(),
        });
    }
}

/// A server greeting: sequence 0, protocol version 10, a version string.
pub fn looks_like_greeting(data: &[u8]) -> bool {
    if data.len() < 6 {
        return false;
    }
    let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
    data[3] == 0 && data[4] == 10 && (40..1024).contains(&len) && data[5].is_ascii_digit()
}

/// A client login (HandshakeResponse41) or SSL request: sequence 1 or 2,
/// CLIENT_PROTOCOL_41 set.
pub fn looks_like_login(data: &[u8]) -> bool {
    if data.len() < 8 {
        return false;
    }
    let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
    let caps = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    matches!(data[3], 1 | 2) && (32..4096).contains(&len) && caps & CLIENT_PROTOCOL_41 != 0
}

fn stmt_id(body: &[u8]) -> Option<u32> {
    body.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn cstr(b: &[u8]) -> &[u8] {
    memchr::memchr(0, b).map_or(b, |n| &b[..n])
}

/// A length-encoded integer: (value, bytes used).
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let le = |n: usize| -> Option<u64> {
        let bytes = b.get(1..=n)?;
        Some(bytes.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    };
    match first {
        0..=0xFA => Some((u64::from(first), 1)),
        0xFC => Some((le(2)?, 3)),
        0xFD => Some((le(3)?, 4)),
        0xFE => Some((le(8)?, 9)),
        _ => None,
    }
}

fn ok_affected(body: &[u8]) -> Option<u64> {
    lenenc(body.get(1..)?).map(|(n, _)| n)
}

/// An OK packet's status flags (also for OK-as-EOF, header 0xFE).
fn ok_status(body: &[u8]) -> Option<u16> {
    let rest = body.get(1..)?;
    let (_, a) = lenenc(rest)?;
    let (_, b) = lenenc(rest.get(a..)?)?;
    let s = rest.get(a + b..a + b + 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn eof_status(body: &[u8]) -> Option<u16> {
    body.get(3..5).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

/// The schema named in an OK packet's session state changes, if any.
fn ok_schema(body: &[u8]) -> Option<&[u8]> {
    let rest = body.get(1..)?;
    let (_, a) = lenenc(rest)?;
    let (_, b) = lenenc(rest.get(a..)?)?;
    let mut i = a + b;
    let status = u16::from_le_bytes([*rest.get(i)?, *rest.get(i + 1)?]);
    i += 4; // status, warnings
    if status & SERVER_SESSION_STATE_CHANGED == 0 {
        return None;
    }
    let (info_len, used) = lenenc(rest.get(i..)?)?;
    i += used + info_len as usize;
    let (total, used) = lenenc(rest.get(i..)?)?;
    i += used;
    let end = (i + total as usize).min(rest.len());
    let mut state = rest.get(i..end)?;
    while let Some((&typ, after)) = state.split_first() {
        let (len, used) = lenenc(after)?;
        let data = after.get(used..used + len as usize)?;
        if typ == SESSION_TRACK_SCHEMA {
            let (n, u) = lenenc(data)?;
            return data.get(u..u + n as usize);
        }
        state = &after[used + len as usize..];
    }
    None
}

/// ERR: 0xFF, code (2), then with CLIENT_PROTOCOL_41 `#` and a SQLSTATE.
/// The message is never kept: it can quote the data.
fn err_packet(body: &[u8], caps: u32) -> DbStatus {
    let Some(code) = body.get(1..3).map(|c| u16::from_le_bytes([c[0], c[1]])) else {
        return DbStatus::Error(DbError {
            code: CompactString::const_new(crate::protocol::db::ERROR_OTHER),
            sqlstate: None,
        });
    };
    let sqlstate = (caps & CLIENT_PROTOCOL_41 != 0 && body.get(3) == Some(&b'#'))
        .then(|| body.get(4..9))
        .flatten()
        .filter(|s| s.iter().all(u8::is_ascii_alphanumeric))
        .map(CompactString::from_utf8_lossy);
    DbStatus::Error(DbError { code: compact_str::format_compact!("{code}"), sqlstate })
}
