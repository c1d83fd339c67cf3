//! HTTP/2 frame headers (RFC 9113 §4.1) and the checks that tell a frame
//! boundary from a byte in the middle of a frame.

pub(super) const HEADER_LEN: usize = 9;

/// Frame types (RFC 9113 §6). Others are extensions, skipped by length.
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const PRIORITY: u8 = 0x2;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY_FLAG: u8 = 0x20;

/// SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2).
pub(super) const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// SETTINGS parameters we use.
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    /// The reserved bit of the stream identifier: always 0 from real peers.
    pub reserved: bool,
}

impl FrameHeader {
    pub(super) fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let id = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: id & 0x7fff_ffff,
            reserved: id & 0x8000_0000 != 0,
        }
    }

    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether this header is one a conforming peer could send: a known
    /// type, no undefined flag, the stream identifier its type requires, the
    /// fixed length of fixed-size frames, and a length within
    /// `max_frame_size`. Used to accept a chunk as starting at a frame
    /// boundary after framing was lost, so it is strict: extension frames,
    /// legal but never seen in practice here, fail it.
    pub(super) fn is_plausible(&self, max_frame_size: u32) -> bool {
        if self.reserved || self.len > max_frame_size {
            return false;
        }
        let (allowed_flags, on_stream) = match self.kind {
            DATA => (END_STREAM | PADDED, Some(true)),
            HEADERS => (END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG, Some(true)),
            PRIORITY => (0, Some(true)),
            RST_STREAM => (0, Some(true)),
            SETTINGS => (ACK, Some(false)),
            PUSH_PROMISE => (END_HEADERS | PADDED, Some(true)),
            PING => (ACK, Some(false)),
            GOAWAY => (0, Some(false)),
            WINDOW_UPDATE => (0, None),
            CONTINUATION => (END_HEADERS, Some(true)),
            _ => return false,
        };
        if self.flags & !allowed_flags != 0 {
            return false;
        }
        if on_stream.is_some_and(|on| on != (self.stream != 0)) {
            return false;
        }
        match self.kind {
            PRIORITY => self.len == 5,
            RST_STREAM | WINDOW_UPDATE => self.len == 4,
            PING => self.len == 8,
            SETTINGS => self.len % 6 == 0 && (!self.has(ACK) || self.len == 0),
            GOAWAY => self.len >= 8,
            // Padding needs its length byte, PRIORITY its five bytes.
            HEADERS => self.len >= u32::from(self.has(PADDED)) + if self.has(PRIORITY_FLAG) { 5 } else { 0 },
            DATA => self.len >= u32::from(self.has(PADDED)),
            PUSH_PROMISE => self.len >= 4 + u32::from(self.has(PADDED)),
            _ => true,
        }
    }
}

/// Whether `data`, the captured start of a syscall that moved `total_len`
/// bytes, is a whole number of frames: every header readable within the
/// capture is plausible, and the lengths chain to exactly `total_len`, with
/// the last header inside the capture. A chunk starting inside a frame passes
/// only if its first bytes happen to form a plausible header whose length
/// lands exactly on the chunk's end (or on another such header): a chance
/// well below one in 2^24 for any misaligned start.
pub(super) fn is_frame_aligned(data: &[u8], total_len: u64, max_frame_size: u32) -> bool {
    let mut at: u64 = 0;
    loop {
        if at == total_len {
            return at > 0;
        }
        let Some(hdr) = usize::try_from(at).ok().and_then(|at| data.get(at..at + HEADER_LEN)) else {
            return false;
        };
        let Ok(hdr) = <&[u8; HEADER_LEN]>::try_from(hdr) else {
            return false;
        };
        let h = FrameHeader::parse(hdr);
        if !h.is_plausible(max_frame_size) {
            return false;
        }
        at += HEADER_LEN as u64 + u64::from(h.len);
        if at > total_len {
            return false;
        }
    }
}

/// The name of an HTTP/2 error code (RFC 9113 §7), as `error.type` carries it.
pub fn error_code_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN_ERROR_CODE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u32, kind: u8, flags: u8, stream: u32) -> [u8; 9] {
        let l = len.to_be_bytes();
        let s = stream.to_be_bytes();
        [l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]]
    }

    #[test]
    fn plausible_headers() {
        let ok = [
            hdr(0, SETTINGS, 0, 0),
            hdr(18, SETTINGS, 0, 0),
            hdr(0, SETTINGS, ACK, 0),
            hdr(4, WINDOW_UPDATE, 0, 0),
            hdr(4, WINDOW_UPDATE, 0, 3),
            hdr(100, HEADERS, END_HEADERS | END_STREAM, 1),
            hdr(16_384, DATA, 0, 7),
            hdr(8, PING, ACK, 0),
            hdr(4, RST_STREAM, 0, 9),
            hdr(8, GOAWAY, 0, 0),
        ];
        for h in ok {
            assert!(FrameHeader::parse(&h).is_plausible(DEFAULT_MAX_FRAME_SIZE), "{h:02x?}");
        }
        let bad = [
            hdr(6, SETTINGS, 0, 1),
            hdr(5, SETTINGS, 0, 0),
            hdr(6, SETTINGS, ACK, 0),
            hdr(100, HEADERS, END_HEADERS, 0),
            hdr(16_385, DATA, 0, 7),
            hdr(10, DATA, 0x2, 7),
            hdr(7, PING, 0, 0),
            hdr(4, 0x0a, 0, 0),
            hdr(5, RST_STREAM, 0, 9),
            hdr(4, DATA, 0, 0x8000_0001),
        ];
        for h in bad {
            assert!(!FrameHeader::parse(&h).is_plausible(DEFAULT_MAX_FRAME_SIZE), "{h:02x?}");
        }
    }

    #[test]
    fn alignment_needs_an_exact_chain() {
        let mut two = hdr(4, WINDOW_UPDATE, 0, 0).to_vec();
        two.extend_from_slice(&[0, 0, 1, 0]);
        two.extend_from_slice(&hdr(3, DATA, END_STREAM, 1));
        two.extend_from_slice(b"abc");
        assert!(is_frame_aligned(&two, two.len() as u64, DEFAULT_MAX_FRAME_SIZE));
        // The last frame's payload need not be captured, its header must be.
        assert!(is_frame_aligned(&two[..22], two.len() as u64, DEFAULT_MAX_FRAME_SIZE));
        assert!(!is_frame_aligned(&two[..20], two.len() as u64, DEFAULT_MAX_FRAME_SIZE));
        assert!(!is_frame_aligned(&two, two.len() as u64 + 1, DEFAULT_MAX_FRAME_SIZE));
        assert!(!is_frame_aligned(&two[1..], two.len() as u64 - 1, DEFAULT_MAX_FRAME_SIZE));
        assert!(!is_frame_aligned(&[], 0, DEFAULT_MAX_FRAME_SIZE));
    }
}
