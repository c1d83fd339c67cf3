//! Packet boundaries of one direction of a MySQL/MariaDB connection:
//! `length (3, little-endian) | sequence id (1) | payload`. A payload of
//! 0xFFFFFF bytes continues in the next packet (one logical message). Only
//! a bounded prefix of each payload is kept.

/// A packet, as far as it was kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet {
    pub seq: u8,
    /// `scratch[start..end]` holds the kept prefix of the payload.
    pub start: usize,
    pub end: usize,
    pub len: usize,
    /// The kept prefix is what was asked for (nothing was past the capture).
    pub complete: bool,
    /// A 0xFFFFFF-byte packet: the message goes on in the next one.
    pub continues: bool,
    pub ts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Framed,
    /// Uncaptured bytes hid where the next packet starts.
    TailLost,
}

#[derive(Debug, Default)]
pub(super) struct Framer {
    keep: usize,
    hdr: [u8; 4],
    hdr_len: usize,
    in_body: bool,
    seq: u8,
    len: usize,
    remaining: usize,
    kept: Vec<u8>,
    missing: bool,
    start_ts: u64,
}

pub(super) const MAX_PAYLOAD: usize = 0xFF_FFFF;

impl Framer {
    pub(super) fn new(keep: usize) -> Self {
        Framer { keep, ..Framer::default() }
    }

    pub(super) fn reset(&mut self) {
        self.hdr_len = 0;
        self.in_body = false;
        self.kept.clear();
        self.missing = false;
    }

    pub(super) fn feed(
        &mut self,
        data: &[u8],
        uncaptured: u64,
        ts: u64,
        out: &mut Vec<Packet>,
        scratch: &mut Vec<u8>,
    ) -> Outcome {
        let mut i = 0;
        while i < data.len() {
            if !self.in_body {
                if self.hdr_len == 0 {
                    self.start_ts = ts;
                }
                let take = (4 - self.hdr_len).min(data.len() - i);
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[i..i + take]);
                self.hdr_len += take;
                i += take;
                if self.hdr_len < 4 {
                    break;
                }
                self.len = usize::from(self.hdr[0]) | usize::from(self.hdr[1]) << 8 | usize::from(self.hdr[2]) << 16;
                self.seq = self.hdr[3];
                self.remaining = self.len;
                self.in_body = true;
                self.kept.clear();
                self.missing = false;
                if self.remaining == 0 {
                    self.emit(out, scratch);
                }
                continue;
            }
            let take = self.remaining.min(data.len() - i);
            let room = self.keep.saturating_sub(self.kept.len()).min(take);
            self.kept.extend_from_slice(&data[i..i + room]);
            self.remaining -= take;
            i += take;
            if self.remaining == 0 {
                self.emit(out, scratch);
            }
        }
        if uncaptured == 0 {
            return Outcome::Framed;
        }
        if self.in_body && self.remaining as u64 >= uncaptured {
            self.remaining -= uncaptured as usize;
            if self.kept.len() < self.keep.min(self.len) {
                self.missing = true;
            }
            if self.remaining == 0 {
                self.emit(out, scratch);
            }
            return Outcome::Framed;
        }
        if self.in_body {
            self.missing = true;
            self.remaining = 0;
            self.emit(out, scratch);
        }
        self.reset();
        Outcome::TailLost
    }

    fn emit(&mut self, out: &mut Vec<Packet>, scratch: &mut Vec<u8>) {
        let start = scratch.len();
        scratch.extend_from_slice(&self.kept);
        out.push(Packet {
            seq: self.seq,
            start,
            end: scratch.len(),
            len: self.len,
            complete: !self.missing,
            continues: self.len == MAX_PAYLOAD,
            ts: self.start_ts,
        });
        self.in_body = false;
        self.hdr_len = 0;
        self.kept.clear();
        self.missing = false;
    }
}

/// Whether a client chunk is exactly one command packet (sequence 0, a
/// known command byte) or a run of packets of one command: the check for a
/// chunk to resynchronise on.
pub(super) fn starts_command(data: &[u8], total_len: u64) -> bool {
    if data.len() < 5 {
        return false;
    }
    let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
    data[3] == 0
        && len > 0
        && (len as u64 + 4 == total_len || len == MAX_PAYLOAD)
        && super::command_name(data[4]).is_some()
}

/// Whether a server chunk (fully captured) ends with an EOF packet, or an
/// OK packet in EOF's place (CLIENT_DEPRECATE_EOF), that ends a response:
/// the next server chunk starts a packet.
pub(super) fn ends_response(data: &[u8], total_len: u64) -> bool {
    if data.len() as u64 != total_len || data.len() < 9 {
        return false;
    }
    let t = &data[data.len() - 9..];
    // EOF: 05 00 00 seq FE warnings(2) status(2)
    if t[0] == 5 && t[1] == 0 && t[2] == 0 && t[4] == 0xFE {
        let status = u16::from_le_bytes([t[7], t[8]]);
        return status & super::MORE_RESULTS == 0;
    }
    if data.len() >= 11 {
        // OK as EOF: 07 00 00 seq FE 00 00 status(2) warnings(2)
        let t = &data[data.len() - 11..];
        if t[0] == 7 && t[1] == 0 && t[2] == 0 && t[4] == 0xFE && t[5] == 0 && t[6] == 0 {
            let status = u16::from_le_bytes([t[7], t[8]]);
            return status & super::MORE_RESULTS == 0;
        }
    }
    false
}
