//! gRPC over HTTP/2 (the gRPC "PROTOCOL-HTTP2" spec): what a stream tells
//! about the call it carries. `grpc-message` is never read: it is free text
//! a server may fill with user data, and the conventions define no attribute
//! for it.

use compact_str::CompactString;

/// A request or response `content-type` of gRPC: `application/grpc`, alone or
/// with a `+codec` suffix or parameters. gRPC-Web (`application/grpc-web`)
/// carries its status in the body, so it is not gRPC here.
pub(super) fn is_grpc_content_type(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"application/grpc") else {
        return false;
    };
    matches!(rest.first(), None | Some(b'+' | b';' | b' '))
}

/// `package.Service/Method` from a `:path` of the form `/package.Service/Method`;
/// None for any other shape (never a guess).
pub(super) fn method_of(path: &str) -> Option<CompactString> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then(|| CompactString::from(rest))
}

/// A `grpc-status` value: a decimal code.
pub(super) fn parse_status(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u32, |n, &d| Some(n * 10 + u32::from(d - b'0')))
}

/// The name of a gRPC status code, as `rpc.response.status_code` carries it.
pub fn status_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

/// Counts the length-prefixed messages (1 flag byte, 4 length bytes, the
/// message) in one direction of a stream's DATA payload. Bytes not captured
/// are fine inside a message; a prefix among them loses the count.
#[derive(Debug, Clone, Default)]
pub(super) struct MessageCounter {
    prefix: [u8; 5],
    prefix_have: u8,
    /// Bytes of the current message still to come (0: a prefix is next).
    remaining: u64,
    count: u64,
    lost: bool,
}

impl MessageCounter {
    pub(super) fn captured(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(data.len());
                self.remaining -= take as u64;
                data = &data[take..];
                continue;
            }
            let need = 5 - usize::from(self.prefix_have);
            let take = need.min(data.len());
            let at = usize::from(self.prefix_have);
            self.prefix[at..at + take].copy_from_slice(&data[..take]);
            self.prefix_have += take as u8;
            data = &data[take..];
            if self.prefix_have == 5 {
                self.prefix_have = 0;
                self.count += 1;
                let p = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([p[1], p[2], p[3], p[4]]));
            }
        }
    }

    pub(super) fn uncaptured(&mut self, n: u64) {
        if n == 0 || self.lost {
            return;
        }
        if self.prefix_have == 0 && n <= self.remaining {
            self.remaining -= n;
        } else {
            self.lost = true;
        }
    }

    /// Messages begun, when every prefix was seen and the last message is
    /// whole.
    pub(super) fn count(&self) -> Option<u64> {
        (!self.lost && self.prefix_have == 0 && self.remaining == 0).then_some(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ct in [&b"application/grpc"[..], b"application/grpc+proto", b"application/grpc;charset=utf-8"] {
            assert!(is_grpc_content_type(ct));
        }
        for ct in [&b"application/grpc-web"[..], b"application/grpcx", b"application/json", b""] {
            assert!(!is_grpc_content_type(ct));
        }
    }

    #[test]
    fn methods_from_paths() {
        assert_eq!(method_of("/demo.Greeter/SayHello").as_deref(), Some("demo.Greeter/SayHello"));
        assert_eq!(method_of("/Echo/Echo").as_deref(), Some("Echo/Echo"));
        for bad in ["", "/", "/svc", "/svc/", "//m", "/a/b/c", "svc/m"] {
            assert_eq!(method_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status(b"0"), Some(0));
        assert_eq!(parse_status(b"16"), Some(16));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"1a"), None);
        assert_eq!(parse_status(b"1234"), None);
        assert_eq!(status_name(5), Some("NOT_FOUND"));
        assert_eq!(status_name(17), None);
    }

    #[test]
    fn counts_messages_split_anywhere() {
        let mut stream = Vec::new();
        for len in [0u32, 3, 300] {
            stream.push(0);
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend(std::iter::repeat_n(b'x', len as usize));
        }
        for split in 0..stream.len() {
            let mut c = MessageCounter::default();
            c.captured(&stream[..split]);
            c.captured(&stream[split..]);
            assert_eq!(c.count(), Some(3), "split at {split}");
        }
        // A hole inside the 300-byte message is fine, one over a prefix is not.
        let mut c = MessageCounter::default();
        c.captured(&stream[..20]);
        c.uncaptured(250);
        c.captured(&stream[270..]);
        assert_eq!(c.count(), Some(3));
        let mut c = MessageCounter::default();
        c.captured(&stream[..3]);
        c.uncaptured(10);
        assert_eq!(c.count(), None);
    }
}
