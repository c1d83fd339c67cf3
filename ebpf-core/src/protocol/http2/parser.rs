//! The per-connection state machine: two frame streams (the client's and the
//! server's), one HPACK decoder each, and the streams they carry, matched by
//! stream id.

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use super::frame::{self, FrameHeader, HEADER_LEN};
use super::grpc::{self, MessageCounter};
use super::hpack::{self, Name, Value};
use super::stream::{GrpcCall, Http2Stream, StreamEnd};
use super::{H2cUpgrade, Http2Error, Http2Stats, MAX_HEADER_BLOCK, MAX_OPEN_STREAMS, PREFACE};
use crate::protocol::{Chunk, Direction, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Not HTTP/2: nothing more is parsed.
    Failed,
    Closed,
}

/// Where a direction's byte stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Connection seen from its start, first bytes this way not seen yet:
    /// they are either the client preface or the server's first frame.
    Start,
    /// Inside the 24-byte client preface; this many bytes matched.
    Preface(u8),
    /// At a known position in the frame stream.
    Frames,
    /// Framing lost (bytes not captured where a frame header was, lost
    /// events, or joined mid-way): chunks are skipped until one is a whole
    /// number of frames (`frame::is_frame_aligned`).
    Lost,
}

/// One direction of the connection.
#[derive(Debug)]
struct Side {
    sync: Sync,
    hdr: [u8; HEADER_LEN],
    hdr_have: u8,
    frame: Option<Frame>,
    /// The payload kept of the current frame (header block fragments and
    /// small control frames), up to its kind's limit.
    payload: Vec<u8>,
    /// Bytes of the current frame were not captured: `payload` stops there.
    payload_hole: bool,
    /// A header block continued by CONTINUATION frames.
    block: Option<Block>,
    hpack: hpack::Decoder,
    /// Largest frame the other side allows this one to send.
    max_frame_size: u32,
    /// Chunks skipped so far while framing was lost.
    skipped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    h: FrameHeader,
    /// Payload bytes still to come.
    remaining: u32,
    /// Timestamp of the chunk carrying the frame's first byte.
    start_ts: u64,
    /// DATA: the pad length, once read (0 when not padded).
    pad: Option<u8>,
}

impl Frame {
    fn pos(&self) -> u32 {
        self.h.len - self.remaining
    }
}

#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    start_ts: u64,
    /// The block of a PUSH_PROMISE: decoded for the table only.
    push: bool,
    bytes: Vec<u8>,
    /// Bytes of the block were lost: it is decoded up to there.
    partial: bool,
}

/// The fields of one header block that streams use.
#[derive(Debug, Default)]
struct Fields {
    method: Option<CompactString>,
    path: Option<CompactString>,
    scheme: Option<CompactString>,
    authority: Option<CompactString>,
    host: Option<CompactString>,
    status: Option<u16>,
    grpc_content_type: bool,
    grpc_status: Option<u32>,
    /// A field referred to a table entry we never saw, or the block could not
    /// be decoded to its end.
    incomplete: bool,
}

impl Fields {
    fn is_request(&self) -> bool {
        self.method.is_some() || self.path.is_some()
    }
}

/// One direction of a stream.
#[derive(Debug, Default)]
struct Half {
    ended_ns: Option<u64>,
    body: u64,
    messages: MessageCounter,
}

#[derive(Debug)]
struct Stream {
    method: Option<CompactString>,
    path: Option<CompactString>,
    scheme: Option<CompactString>,
    authority: Option<CompactString>,
    status: Option<u16>,
    grpc: bool,
    grpc_status: Option<u32>,
    headers_complete: bool,
    request_start_ns: u64,
    response_start_ns: Option<u64>,
    request: Half,
    response: Half,
    /// Each side's `Side::skipped` when the stream began.
    skipped_at_start: [u64; 2],
}

/// Turns one connection's chunks into completed streams. See the module
/// documentation for what is followed and what is dropped when bytes are
/// lost.
#[derive(Debug)]
pub struct Http2Parser {
    state: State,
    /// The direction the client's frames travel; None until known.
    client: Option<Direction>,
    /// Indexed by `side_of`.
    sides: [Side; 2],
    streams: FxHashMap<u32, Stream>,
    stats: Http2Stats,
    /// Highest client stream id followed or counted as lost; None when
    /// joined mid-way until the first one. Clients open streams in
    /// increasing order, so the ids skipped between two seen ones are
    /// streams whose request was lost with the framing (`account`).
    highest_id: Option<u32>,
    /// Timestamp of the last chunk seen.
    last_ts: u64,
}

fn side_of(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

fn direction_of(side: usize) -> Direction {
    if side == 0 {
        Direction::Ingress
    } else {
        Direction::Egress
    }
}

impl Side {
    fn new(sync: Sync, hpack: hpack::Decoder) -> Self {
        Side {
            sync,
            hdr: [0; HEADER_LEN],
            hdr_have: 0,
            frame: None,
            payload: Vec::new(),
            payload_hole: false,
            block: None,
            hpack,
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            skipped: 0,
        }
    }

    fn reset_framing(&mut self) {
        self.hdr_have = 0;
        self.frame = None;
        self.payload.clear();
        self.payload_hole = false;
        self.block = None;
    }

    /// How many payload bytes of a frame of this kind are kept.
    fn keep_limit(kind: u8) -> usize {
        match kind {
            frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE => MAX_HEADER_BLOCK,
            frame::RST_STREAM => 4,
            frame::GOAWAY => 8,
            // Up to 16 parameters; real peers send at most 7.
            frame::SETTINGS => 6 * 16,
            // The pad length byte.
            frame::DATA => 1,
            _ => 0,
        }
    }
}

impl Default for Http2Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Http2Parser {
    /// A connection seen from its start: the client's first bytes are the
    /// connection preface (prior knowledge, or TLS with ALPN `h2`), the
    /// server's are its SETTINGS frame.
    pub fn new() -> Self {
        Self::with(None, Sync::Start, Sync::Start, hpack::Decoder::new)
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`, answered 101):
    /// `upgrade` is the HTTP/1.1 request, which becomes stream 1; feed the
    /// bytes that follow the 101 response head in each direction. The
    /// client's start with the preface, the server's with SETTINGS.
    pub fn after_upgrade(upgrade: H2cUpgrade) -> Self {
        let client = upgrade.request_direction;
        let mut p = Self::with(Some(client), Sync::Frames, Sync::Frames, hpack::Decoder::new);
        p.sides[side_of(client)].sync = Sync::Preface(0);
        p.highest_id = Some(1);
        p.streams.insert(
            1,
            Stream {
                method: Some(upgrade.method),
                path: Some(upgrade.path),
                scheme: Some(CompactString::const_new("http")),
                authority: upgrade.authority,
                status: None,
                grpc: false,
                grpc_status: None,
                headers_complete: true,
                request_start_ns: upgrade.request_start_ns,
                response_start_ns: None,
                request: Half {
                    ended_ns: Some(upgrade.request_end_ns),
                    body: upgrade.request_body_size,
                    ..Half::default()
                },
                response: Half::default(),
                skipped_at_start: [0, 0],
            },
        );
        p
    }

    /// A connection joined mid-way (it predates the receiver): nothing is
    /// known until each direction shows a chunk that is a whole number of
    /// frames, and header fields that refer to HPACK table entries from
    /// before stay unknown.
    pub fn midway() -> Self {
        let mut p = Self::with(None, Sync::Lost, Sync::Lost, hpack::Decoder::unknown);
        p.highest_id = None;
        p
    }

    fn with(client: Option<Direction>, ingress: Sync, egress: Sync, table: fn() -> hpack::Decoder) -> Self {
        Http2Parser {
            state: State::Open,
            client,
            sides: [Side::new(ingress, table()), Side::new(egress, table())],
            streams: FxHashMap::default(),
            stats: Http2Stats::default(),
            highest_id: Some(0),
            last_ts: 0,
        }
    }

    /// Client stream `id` shows up (its request, or with `unseen` a response
    /// whose request was not followed): the client streams opened since the
    /// highest one accounted for, and never seen, are counted as lost (and
    /// `id` itself when `unseen`).
    fn account(&mut self, id: u32, unseen: bool) {
        if id % 2 == 0 {
            return;
        }
        match self.highest_id {
            Some(h) if id > h => {
                // Odd ids strictly between: h is odd, or 0 before the first.
                let between = if h == 0 { (id - 1) / 2 } else { (id - h) / 2 - 1 };
                self.stats.streams_lost += u64::from(between + u32::from(unseen));
                self.highest_id = Some(id);
            }
            Some(_) => {}
            // Joined mid-way: what came before is unknown.
            None => self.highest_id = Some(id),
        }
    }

    /// Which side the traced process is on, once known.
    pub fn role(&self) -> Option<Role> {
        self.client.map(|c| Role::of(c, true))
    }

    /// The connection turned out not to be HTTP/2 (its first bytes were
    /// neither the preface nor frames): nothing more will be parsed.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Streams in flight.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// What was lost since the last call (for the receiver's counters).
    pub fn take_stats(&mut self) -> Http2Stats {
        std::mem::take(&mut self.stats)
    }

    /// Feed one chunk; push every stream it completes onto `out`. Bytes lost
    /// by the capture are followed by frame length where possible; where a
    /// frame header is lost, that direction resynchronises on a later chunk
    /// (see `take_stats`). Errs only when the connection is not HTTP/2, and
    /// then stays failed.
    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Http2Stream>) -> Result<(), Http2Error> {
        if self.state != State::Open {
            return Ok(());
        }
        self.last_ts = self.last_ts.max(chunk.ts_ns);
        let result = self.feed_open(chunk, out);
        if result.is_err() {
            self.state = State::Failed;
            self.streams.clear();
        }
        result
    }

    /// Events of this connection were lost (ring buffer full): streams in
    /// flight are dropped and both directions resynchronise. Returns how
    /// many streams were dropped.
    pub fn gap(&mut self) -> usize {
        if self.state != State::Open {
            return 0;
        }
        for s in 0..2 {
            let side = &mut self.sides[s];
            if side.sync != Sync::Lost {
                side.sync = Sync::Lost;
                side.reset_framing();
                side.hpack.forget();
            }
        }
        let n = self.streams.len();
        self.drop_streams();
        n
    }

    /// The connection closed at `ts_ns`: streams whose response ended are
    /// complete, the others end with `ConnectionClosed`.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<Http2Stream>) {
        if self.state != State::Open {
            return;
        }
        self.state = State::Closed;
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        // The server's direction, if it skipped chunks while a stream was
        // open, may have carried its response: lost, not missing.
        let server = self.client.map(|c| side_of(c.opposite()));
        for id in ids {
            let end = match self.streams.get(&id) {
                Some(s) if s.response.ended_ns.is_some() => StreamEnd::Complete,
                Some(s)
                    if server.is_some_and(|si| {
                        self.sides[si].sync == Sync::Lost || self.sides[si].skipped != s.skipped_at_start[si]
                    }) =>
                {
                    self.streams.remove(&id);
                    self.stats.streams_lost += 1;
                    continue;
                }
                Some(_) => StreamEnd::ConnectionClosed,
                None => continue,
            };
            self.finish(id, end, ts_ns, out);
        }
    }

    fn feed_open(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Http2Stream>) -> Result<(), Http2Error> {
        let si = side_of(chunk.direction);
        let mut data = chunk.data;
        let mut missing = chunk.total_len.saturating_sub(data.len() as u64);
        if data.is_empty() && missing == 0 {
            return Ok(());
        }
        match self.sides[si].sync {
            Sync::Start => {
                self.start(chunk)?;
                if self.sides[si].sync == Sync::Lost {
                    return Ok(());
                }
            }
            Sync::Lost => {
                if !frame::is_frame_aligned(data, chunk.total_len, self.sides[si].max_frame_size) {
                    self.stats.chunks_skipped += 1;
                    self.sides[si].skipped += 1;
                    return Ok(());
                }
                let side = &mut self.sides[si];
                side.sync = Sync::Frames;
                side.reset_framing();
                self.stats.resyncs += 1;
                // Streams begun (the other way) while this way was lost may
                // have had frames in the chunks skipped since: not those
                // begun after the last skipped chunk.
                let skipped = self.sides[si].skipped;
                let before = self.streams.len();
                self.streams.retain(|_, s| s.skipped_at_start[si] == skipped);
                self.stats.streams_lost += (before - self.streams.len()) as u64;
            }
            Sync::Preface(_) | Sync::Frames => {}
        }
        if let Sync::Preface(matched) = self.sides[si].sync {
            let want = &PREFACE[usize::from(matched)..];
            let n = want.len().min(data.len());
            if data[..n] != want[..n] {
                return Err(Http2Error::BadPreface);
            }
            data = &data[n..];
            let matched = usize::from(matched) + n;
            if matched < PREFACE.len() {
                if missing > 0 {
                    // The preface itself was not captured: follow nothing.
                    self.lose(si);
                } else {
                    self.sides[si].sync = Sync::Preface(matched as u8);
                }
                return Ok(());
            }
            self.sides[si].sync = Sync::Frames;
        }
        while !data.is_empty() {
            if self.sides[si].frame.is_none() {
                let side = &mut self.sides[si];
                let have = usize::from(side.hdr_have);
                let take = (HEADER_LEN - have).min(data.len());
                side.hdr[have..have + take].copy_from_slice(&data[..take]);
                side.hdr_have += take as u8;
                data = &data[take..];
                if usize::from(side.hdr_have) == HEADER_LEN {
                    side.hdr_have = 0;
                    let h = FrameHeader::parse(&side.hdr);
                    self.begin_frame(si, h, chunk.ts_ns);
                    if h.len == 0 {
                        self.end_frame(si, chunk.ts_ns, out);
                    }
                }
                continue;
            }
            let Some(f) = self.sides[si].frame else { break };
            let take = usize::try_from(f.remaining).unwrap_or(usize::MAX).min(data.len());
            self.payload(si, Some(&data[..take]), take as u32);
            data = &data[take..];
            if self.sides[si].frame.is_some_and(|f| f.remaining == 0) {
                self.end_frame(si, chunk.ts_ns, out);
            }
        }
        while missing > 0 {
            let Some(f) = self.sides[si].frame else {
                // A frame header was not captured: framing is lost this way.
                self.lose(si);
                return Ok(());
            };
            let take = u64::from(f.remaining).min(missing) as u32;
            self.payload(si, None, take);
            missing -= u64::from(take);
            if self.sides[si].frame.is_some_and(|f| f.remaining == 0) {
                self.end_frame(si, chunk.ts_ns, out);
            }
        }
        Ok(())
    }

    /// The first bytes of a connection seen from its start decide which
    /// direction is the client's.
    fn start(&mut self, chunk: &Chunk<'_>) -> Result<(), Http2Error> {
        let (d, data) = (chunk.direction, chunk.data);
        if data.is_empty() {
            // Not captured: who is the client is unknown, and so is where
            // the frames are.
            self.lose(0);
            self.lose(1);
            return Ok(());
        }
        let n = data.len().min(PREFACE.len());
        let client = if n > 0 && data[..n] == PREFACE[..n] {
            d
        } else if frame::is_frame_aligned(data, chunk.total_len, frame::DEFAULT_MAX_FRAME_SIZE)
            && data.get(3) == Some(&frame::SETTINGS)
        {
            // The server's SETTINGS came first.
            d.opposite()
        } else {
            return Err(Http2Error::BadPreface);
        };
        self.client = Some(client);
        self.sides[side_of(client)].sync = Sync::Preface(0);
        self.sides[side_of(client.opposite())].sync = Sync::Frames;
        Ok(())
    }

    /// Framing is lost in direction `si`: its table is unknown from now on,
    /// and every stream in flight is dropped (its frames this way can no
    /// longer be followed).
    fn lose(&mut self, si: usize) {
        let side = &mut self.sides[si];
        side.sync = Sync::Lost;
        side.reset_framing();
        side.hpack.forget();
        self.stats.framing_lost += 1;
        self.drop_streams();
    }

    fn drop_streams(&mut self) {
        self.stats.streams_lost += self.streams.len() as u64;
        self.streams.clear();
        if self.streams.capacity() > 64 {
            self.streams.shrink_to(16);
        }
    }

    fn begin_frame(&mut self, si: usize, h: FrameHeader, ts: u64) {
        let side = &mut self.sides[si];
        side.payload.clear();
        side.payload_hole = false;
        if side.block.is_some() && h.kind != frame::CONTINUATION {
            // A header block must be continued at once (RFC 9113 §6.10): the
            // block and the table are lost.
            side.block = None;
            side.hpack.forget();
            self.stats.hpack_errors += 1;
        }
        let pad = (h.kind == frame::DATA && !h.has(frame::PADDED)).then_some(0);
        side.frame = Some(Frame { h, remaining: h.len, start_ts: ts, pad });
    }

    /// `len` payload bytes of the current frame: `bytes` when captured,
    /// None when only counted.
    fn payload(&mut self, si: usize, bytes: Option<&[u8]>, len: u32) {
        let side = &mut self.sides[si];
        let Some(f) = side.frame.as_mut() else { return };
        let start = f.pos();
        f.remaining -= len;
        if f.h.kind != frame::DATA {
            if side.payload_hole {
                return;
            }
            match bytes {
                Some(b) => {
                    let room = Side::keep_limit(f.h.kind).saturating_sub(side.payload.len());
                    side.payload.extend_from_slice(&b[..b.len().min(room)]);
                    // A header block past the limit cannot be decoded to its
                    // end; other frames keep just the fields we read.
                    side.payload_hole = b.len() > room
                        && matches!(f.h.kind, frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE);
                }
                None => side.payload_hole = true,
            }
            return;
        }
        // DATA: [pad length][data][padding].
        let (h, mut bytes, mut at, mut len) = (f.h, bytes, start, len);
        if f.pad.is_none() && len > 0 {
            // PADDED: the first payload byte is the pad length. Not captured:
            // counted as no padding (the body size is then an upper bound).
            f.pad = Some(bytes.and_then(|b| b.first().copied()).unwrap_or(0));
            bytes = bytes.map(|b| &b[1..]);
            at += 1;
            len -= 1;
        }
        let data_end = h.len.saturating_sub(u32::from(f.pad.unwrap_or(0)));
        let data_len = data_end.saturating_sub(at).min(len);
        if data_len == 0 {
            return;
        }
        let Some(client) = self.client else { return };
        let Some(stream) = self.streams.get_mut(&h.stream) else { return };
        let half = if direction_of(si) == client { &mut stream.request } else { &mut stream.response };
        half.body += u64::from(data_len);
        // Counted for every stream: a response content-type may say gRPC
        // only after the request's messages went by. Cheap: it looks at one
        // 5-byte prefix per message.
        match bytes {
            Some(b) => half.messages.captured(&b[..data_len as usize]),
            None => half.messages.uncaptured(u64::from(data_len)),
        }
    }

    fn end_frame(&mut self, si: usize, ts: u64, out: &mut Vec<Http2Stream>) {
        let Some(f) = self.sides[si].frame.take() else { return };
        let h = f.h;
        match h.kind {
            frame::DATA if h.has(frame::END_STREAM) => self.end_half(si, h.stream, ts, out),
            frame::HEADERS | frame::PUSH_PROMISE => self.header_frame(si, f, ts, out),
            frame::CONTINUATION => self.continuation(si, h, ts, out),
            frame::RST_STREAM => {
                let side = &self.sides[si];
                let code = (!side.payload_hole && side.payload.len() == 4)
                    .then(|| u32::from_be_bytes([side.payload[0], side.payload[1], side.payload[2], side.payload[3]]));
                self.reset(si, h.stream, code, ts, out);
            }
            frame::SETTINGS if !h.has(frame::ACK) => {
                // SETTINGS sent this way bound the frames the other way.
                let mut max_frame = None;
                for p in self.sides[si].payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([p[0], p[1]]);
                    let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    if id == frame::SETTINGS_MAX_FRAME_SIZE && (frame::DEFAULT_MAX_FRAME_SIZE..1 << 24).contains(&value)
                    {
                        max_frame = Some(value);
                    }
                }
                if let Some(v) = max_frame {
                    self.sides[1 - si].max_frame_size = v;
                }
            }
            frame::GOAWAY => {
                let p = &self.sides[si].payload;
                if p.len() == 8 {
                    let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
                    let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                    self.goaway(si, last, code, ts, out);
                }
            }
            // PING, WINDOW_UPDATE, PRIORITY and extension frames say nothing
            // about requests.
            _ => {}
        }
        let side = &mut self.sides[si];
        side.payload.clear();
        side.payload_hole = false;
        if side.payload.capacity() > 4 * 1024 {
            side.payload.shrink_to(256);
        }
    }

    /// A HEADERS or PUSH_PROMISE frame ended: start its header block, and
    /// decode it if it is complete.
    fn header_frame(&mut self, si: usize, f: Frame, ts: u64, out: &mut Vec<Http2Stream>) {
        let h = f.h;
        let side = &mut self.sides[si];
        let mut partial = side.payload_hole;
        let p = std::mem::take(&mut side.payload);
        let fragment = header_fragment(&p, h, partial);
        let fragment = match fragment {
            Some(frag) => frag,
            None => {
                partial = true;
                &[][..]
            }
        };
        let block = Block {
            stream: h.stream,
            end_stream: h.kind == frame::HEADERS && h.has(frame::END_STREAM),
            start_ts: f.start_ts,
            push: h.kind == frame::PUSH_PROMISE,
            bytes: Vec::new(),
            partial,
        };
        if h.has(frame::END_HEADERS) {
            self.header_block(si, &block, fragment, ts, out);
        } else {
            let mut block = block;
            block.bytes.extend_from_slice(fragment);
            self.sides[si].block = Some(block);
        }
        let side = &mut self.sides[si];
        side.payload = p;
    }

    fn continuation(&mut self, si: usize, h: FrameHeader, ts: u64, out: &mut Vec<Http2Stream>) {
        let side = &mut self.sides[si];
        let Some(mut block) = side.block.take() else {
            // No block to continue: the table may have missed its start.
            side.hpack.forget();
            self.stats.hpack_errors += 1;
            return;
        };
        if block.stream != h.stream {
            side.hpack.forget();
            self.stats.hpack_errors += 1;
            return;
        }
        if side.payload_hole || block.bytes.len() + side.payload.len() > MAX_HEADER_BLOCK {
            block.partial = true;
        }
        if !block.partial {
            block.bytes.extend_from_slice(&side.payload);
        }
        if h.has(frame::END_HEADERS) {
            let bytes = std::mem::take(&mut block.bytes);
            self.header_block(si, &block, &bytes, ts, out);
        } else {
            self.sides[si].block = Some(block);
        }
    }

    /// A complete header block (or its captured start, when `partial`).
    fn header_block(&mut self, si: usize, block: &Block, bytes: &[u8], ts: u64, out: &mut Vec<Http2Stream>) {
        let side = &mut self.sides[si];
        let mut fields = Fields { incomplete: block.partial, ..Fields::default() };
        let decoded = side.hpack.decode(bytes, |name, value| fields.add(name, value));
        if decoded.is_err() {
            fields.incomplete = true;
            self.stats.hpack_errors += 1;
        } else if block.partial {
            // Insertions in the lost bytes were missed.
            side.hpack.forget();
        }
        if block.push {
            return;
        }
        let d = direction_of(si);
        if self.client.is_none() {
            // Joined mid-way: an exact :method or :path marks the client's
            // direction, an exact :status the server's.
            if fields.is_request() {
                self.client = Some(d);
            } else if fields.status.is_some() {
                self.client = Some(d.opposite());
            }
        }
        let Some(client) = self.client else {
            self.stats.streams_lost += 1;
            return;
        };
        if d == client {
            self.request_headers(si, block, fields, ts, out);
        } else {
            self.response_headers(si, block, fields, ts, out);
        }
    }

    fn request_headers(&mut self, si: usize, block: &Block, fields: Fields, ts: u64, out: &mut Vec<Http2Stream>) {
        let id = block.stream;
        if let Some(stream) = self.streams.get_mut(&id) {
            // Request trailers.
            stream.headers_complete &= !fields.incomplete;
        } else {
            // Client-initiated streams are odd; an even one would be the
            // server's (push), which carries no request of the client.
            if id % 2 == 0 {
                return;
            }
            self.account(id, false);
            if self.streams.len() >= MAX_OPEN_STREAMS {
                self.stats.streams_lost += 1;
                return;
            }
            let authority = fields.authority.or(fields.host);
            self.streams.insert(
                id,
                Stream {
                    method: fields.method,
                    path: fields.path,
                    scheme: fields.scheme,
                    authority,
                    status: None,
                    grpc: fields.grpc_content_type,
                    grpc_status: None,
                    headers_complete: !fields.incomplete,
                    request_start_ns: block.start_ts,
                    response_start_ns: None,
                    request: Half::default(),
                    response: Half::default(),
                    skipped_at_start: [self.sides[0].skipped, self.sides[1].skipped],
                },
            );
        }
        if block.end_stream {
            self.end_half(si, id, ts, out);
        }
    }

    fn response_headers(&mut self, si: usize, block: &Block, fields: Fields, ts: u64, out: &mut Vec<Http2Stream>) {
        let id = block.stream;
        let Some(stream) = self.streams.get_mut(&id) else {
            // The request was not followed: before we joined, or lost with
            // the framing (counted then, or now).
            self.account(id, true);
            return;
        };
        stream.headers_complete &= !fields.incomplete;
        stream.grpc |= fields.grpc_content_type;
        if fields.grpc_status.is_some() {
            stream.grpc_status = fields.grpc_status;
        }
        if stream.response_start_ns.is_none() {
            match fields.status {
                // Interim responses (100 Continue, 103 Early Hints).
                Some(status) if (100..200).contains(&status) && !block.end_stream => return,
                status => {
                    stream.status = status;
                    stream.response_start_ns = Some(block.start_ts);
                }
            }
        }
        if block.end_stream {
            self.end_half(si, id, ts, out);
        }
    }

    /// END_STREAM from the direction of side `si` on stream `id`.
    fn end_half(&mut self, si: usize, id: u32, ts: u64, out: &mut Vec<Http2Stream>) {
        let Some(client) = self.client else { return };
        let Some(stream) = self.streams.get_mut(&id) else { return };
        let from_client = direction_of(si) == client;
        let half = if from_client { &mut stream.request } else { &mut stream.response };
        half.ended_ns = Some(ts);
        if stream.request.ended_ns.is_some() && stream.response.ended_ns.is_some() {
            self.finish(id, StreamEnd::Complete, ts, out);
        }
    }

    fn reset(&mut self, si: usize, id: u32, code: Option<u32>, ts: u64, out: &mut Vec<Http2Stream>) {
        let Some(client) = self.client else { return };
        let Some(stream) = self.streams.get(&id) else { return };
        let by_client = direction_of(si) == client;
        // A server that answered in full may reset the rest of the request
        // with NO_ERROR (RFC 9113 §8.1): the exchange is complete.
        let end = if code == Some(0) && !by_client && stream.response.ended_ns.is_some() {
            StreamEnd::Complete
        } else {
            StreamEnd::Reset { code, by_client }
        };
        self.finish(id, end, ts, out);
    }

    /// GOAWAY from the server ends the client streams it will not process.
    /// (A client's GOAWAY only concerns pushed streams, which we do not
    /// follow.)
    fn goaway(&mut self, si: usize, last: u32, code: u32, ts: u64, out: &mut Vec<Http2Stream>) {
        if self.client.is_none_or(|c| direction_of(si) == c) {
            return;
        }
        let mut ids: Vec<u32> = self.streams.keys().copied().filter(|&id| id > last).collect();
        ids.sort_unstable();
        for id in ids {
            self.finish(id, StreamEnd::GoAway { code }, ts, out);
        }
    }

    fn finish(&mut self, id: u32, end: StreamEnd, ts: u64, out: &mut Vec<Http2Stream>) {
        let (Some(client), Some(s)) = (self.client, self.streams.remove(&id)) else { return };
        let role = Role::of(client, true);
        let grpc = s.grpc.then(|| GrpcCall {
            method: s.path.as_deref().and_then(grpc::method_of),
            status: s.grpc_status,
            request_messages: s.request.messages.count(),
            response_messages: s.response.messages.count(),
        });
        out.push(Http2Stream {
            role,
            stream_id: id,
            method: s.method,
            path: s.path,
            scheme: s.scheme,
            authority: s.authority,
            status: s.status,
            headers_complete: s.headers_complete,
            request_start_ns: s.request_start_ns,
            request_end_ns: s.request.ended_ns.unwrap_or(ts),
            response_start_ns: s.response_start_ns,
            response_end_ns: s.response.ended_ns.unwrap_or(ts),
            request_body_size: s.request.body,
            response_body_size: s.response.body,
            end,
            grpc,
        });
    }
}

impl Fields {
    fn add(&mut self, name: Name, value: Value<'_>) {
        let Value::Known(v) = value else {
            if matches!(value, Value::Unknown) || name == Name::Unknown {
                self.incomplete = true;
            }
            return;
        };
        // Valid UTF-8 is the rule; the lossy path only for the rest.
        let text = || match std::str::from_utf8(v) {
            Ok(s) => CompactString::from(s),
            Err(_) => CompactString::from_utf8_lossy(v),
        };
        match name {
            Name::Method => self.method = Some(text()),
            Name::Path => self.path = Some(text()),
            Name::Scheme => self.scheme = Some(text()),
            Name::Authority => self.authority = Some(text()),
            Name::Host => self.host = Some(text()),
            Name::Status => {
                self.status = std::str::from_utf8(v).ok().filter(|s| s.len() == 3).and_then(|s| s.parse().ok())
            }
            Name::ContentType => self.grpc_content_type |= grpc::is_grpc_content_type(v),
            Name::GrpcStatus => self.grpc_status = grpc::parse_status(v),
            Name::Other | Name::Unknown => {}
        }
    }
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload: without
/// the pad length, priority or promised stream id, and padding. None when
/// the payload is shorter than they say. With `partial`, the payload's end
/// was not captured, so there is no padding to strip.
fn header_fragment(p: &[u8], h: FrameHeader, partial: bool) -> Option<&[u8]> {
    let mut at = 0usize;
    let mut pad = 0usize;
    if h.has(frame::PADDED) {
        pad = usize::from(*p.first()?);
        at += 1;
    }
    if h.kind == frame::HEADERS && h.has(frame::PRIORITY_FLAG) {
        at += 5;
    }
    if h.kind == frame::PUSH_PROMISE {
        at += 4;
    }
    let end = if partial { p.len() } else { p.len().checked_sub(pad)? };
    p.get(at..end)
}
