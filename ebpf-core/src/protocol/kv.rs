//! What the Redis and memcached integrations share: telling their text
//! commands apart, and counting what their parsers could not report.
//!
//! # Redis inline commands or memcached?
//!
//! A Redis client speaks RESP (`*2\r\n$3\r\nGET...`): certain. People typing
//! into telnet or nc use Redis's inline form (`GET k`), which memcached's
//! text protocol shares for four lower-case words: `get`, `set`, `incr` and
//! `quit`. Such a first line is decided by
//!
//! 1. its shape: memcached's `set k <flags> <exptime> <bytes>`, a `get` of
//!    several keys and `incr k <n>` are memcached's (Redis would refuse
//!    them); `set k v` and `incr k` are Redis's;
//! 2. for what is left (`get k`, `quit`), the port: Redis's well-known port
//!    (6379) at either end makes it Redis; any other, memcached, since
//!    memcached clients speak this way while Redis clients do not;
//! 3. the reply shape: a stream taken for memcached that is answered in
//!    RESP (`$5`, `+OK`, `-ERR`, `:1`) is handed to the Redis parser, its
//!    first commands replayed (`memcached::MemcachedStream`), when Redis is
//!    on.
//!
//! An inline command is certain on Redis's port, plausible elsewhere (where
//! `GET k` ties with an HTTP request line, and HTTP, listed first, takes it).
//! A stream first seen at a reply (joined mid-way) is recognised only on
//! the protocol's well-known port: the first bytes of replies (`+OK`,
//! `END`) are those of other line protocols' greetings too (POP3's `+OK`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::stats::Stats;

use super::{Direction, Hint, Role};

/// Redis's well-known port: a hint only.
pub(crate) const REDIS_PORT: u16 = 6379;
/// memcached's well-known port: a hint only.
pub(crate) const MEMCACHED_PORT: u16 = 11211;

/// Which protocol a text command line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Redis,
    Memcached,
    /// Either could have sent it (`get k`, `quit`).
    Either,
}

/// The reading of a first line that both Redis's inline form and
/// memcached's text protocol recognise, by its shape alone (rule 1).
pub(crate) fn shape(data: &[u8]) -> Reading {
    let line = &data[..memchr::memchr(b'\n', data).unwrap_or(data.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let command = tokens.next().unwrap_or_default();
    let (mut count, mut numbers) = (0usize, [false; 4]);
    for (i, t) in tokens.enumerate() {
        count = i + 1;
        if let Some(n) = numbers.get_mut(i) {
            *n = t.iter().all(u8::is_ascii_digit);
        }
    }
    match command {
        // set <key> <flags> <exptime> <bytes> [noreply]
        b"set" if (4..=5).contains(&count) && numbers[1..4].iter().all(|&n| n) => Reading::Memcached,
        b"set" => Reading::Redis,
        b"get" if count >= 2 => Reading::Memcached,
        // incr <key> <value> [noreply]
        b"incr" if (2..=3).contains(&count) && numbers[1] => Reading::Memcached,
        b"incr" => Reading::Redis,
        _ => Reading::Either,
    }
}

/// The reading of an ambiguous first line, by its shape then the ports
/// (rules 1 and 2): never `Either`.
pub(crate) fn resolve(hint: &Hint<'_>) -> Reading {
    match shape(hint.data) {
        Reading::Either if hint.on_port(REDIS_PORT) => Reading::Redis,
        Reading::Either => Reading::Memcached,
        decided => decided,
    }
}

/// Whether `hint`'s bytes travel the way replies do: from the server
/// (when the role is known) and on the protocol's `port` (see the module
/// documentation).
pub(crate) fn reply_first(hint: &Hint<'_>, port: u16) -> bool {
    let reply_direction = match hint.role {
        Some(Role::Client) => hint.direction == Direction::Ingress,
        Some(Role::Server) => hint.direction == Direction::Egress,
        None => true,
    };
    reply_direction && hint.on_port(port)
}

/// What a key/value parser could not turn into operations, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Losses {
    /// Commands seen that gave no operation (gaps included).
    pub dropped: u64,
    pub unmatched_replies: u64,
    pub resyncs: u64,
    pub skipped_chunks: u64,
}

/// Adds a parser's losses to the receiver's counters as they grow.
#[derive(Debug, Default)]
pub(crate) struct LossReporter {
    stats: Arc<Stats>,
    reported: Losses,
    /// Commands `Parser::gap` returned: the connection tracker counts those
    /// (`requests_lost`), so they are not counted again as dropped.
    dropped_by_gaps: u64,
    /// Of the other dropped commands, those counted.
    dropped_counted: u64,
}

impl LossReporter {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Self { stats, ..Self::default() }
    }

    /// `n` commands dropped by a gap, reported by `Parser::gap`.
    pub(crate) fn gap(&mut self, n: u64) {
        self.dropped_by_gaps += n;
    }

    /// The parser's cumulative losses now: what grew since the last call is counted.
    pub(crate) fn report(&mut self, now: Losses) {
        if now == self.reported {
            return;
        }
        let was = std::mem::replace(&mut self.reported, now);
        let stats = &self.stats;
        let dropped = now.dropped.saturating_sub(self.dropped_by_gaps);
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        };
        add(&stats.requests_unmatched, dropped.saturating_sub(self.dropped_counted));
        self.dropped_counted = self.dropped_counted.max(dropped);
        add(&stats.responses_unmatched, now.unmatched_replies.saturating_sub(was.unmatched_replies));
        add(&stats.stream_resyncs, now.resyncs.saturating_sub(was.resyncs));
        add(&stats.chunks_skipped, now.skipped_chunks.saturating_sub(was.skipped_chunks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(data: &[u8], local: u16, peer: u16) -> Hint<'_> {
        Hint {
            data,
            total_len: data.len() as u64,
            direction: Direction::Egress,
            role: Some(Role::Client),
            local_port: Some(local),
            peer_port: Some(peer),
            tls: false,
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(shape(b"set k 0 0 5\r\nhello\r\n"), Reading::Memcached);
        assert_eq!(shape(b"set k 0 0 5 noreply\r\n"), Reading::Memcached);
        assert_eq!(shape(b"set k v\r\n"), Reading::Redis);
        assert_eq!(shape(b"set k v EX 10\r\n"), Reading::Redis);
        assert_eq!(shape(b"get a b c\r\n"), Reading::Memcached);
        assert_eq!(shape(b"get a\r\n"), Reading::Either);
        assert_eq!(shape(b"incr n 5\r\n"), Reading::Memcached);
        assert_eq!(shape(b"incr n\r\n"), Reading::Redis);
        assert_eq!(shape(b"quit\r\n"), Reading::Either);
        assert_eq!(shape(b"get a"), Reading::Either, "a line the capture cut");
    }

    #[test]
    fn ports_decide_what_shapes_cannot() {
        assert_eq!(resolve(&hint(b"get a\r\n", 40000, 6379)), Reading::Redis);
        assert_eq!(resolve(&hint(b"get a\r\n", 6379, 40000)), Reading::Redis, "either end");
        assert_eq!(resolve(&hint(b"get a\r\n", 40000, 7000)), Reading::Memcached);
        assert_eq!(resolve(&hint(b"get a b\r\n", 40000, 6379)), Reading::Memcached, "the shape first");
    }

    #[test]
    fn replies_first_only_on_the_port_and_from_the_server() {
        let mut h = hint(b"+OK\r\n", 40000, 6379);
        assert!(!reply_first(&h, REDIS_PORT), "a client does not send replies");
        h.direction = Direction::Ingress;
        assert!(reply_first(&h, REDIS_PORT));
        h.peer_port = Some(110);
        assert!(!reply_first(&h, REDIS_PORT), "POP3's greeting");
    }

    #[test]
    fn the_registry_picks_by_the_rule() {
        let protocols = crate::protocol::Protocols::defaults();
        let pick = |data: &[u8], direction, peer: u16| {
            let h = Hint { direction, ..hint(data, 40000, peer) };
            match protocols.recognise(&h, false) {
                crate::protocol::Verdict::Parse(p, _) => Some(p.name),
                _ => None,
            }
        };
        let out = Direction::Egress;
        assert_eq!(pick(b"*1\r\n$4\r\nPING\r\n", out, 7000), Some("redis"));
        assert_eq!(pick(b"GET k\r\n", out, 6379), Some("redis"), "memcached is lower case");
        assert_eq!(pick(b"GET k\r\n", out, 7000), Some("http1"), "a tie with HTTP's request line: table order");
        assert_eq!(pick(b"PING\r\n", out, 7000), Some("redis"));
        assert_eq!(pick(b"get k\r\n", out, 7000), Some("memcached"));
        assert_eq!(pick(b"get k\r\n", out, 6379), Some("redis"));
        assert_eq!(pick(b"set k 0 0 1\r\nx\r\n", out, 6379), Some("memcached"), "the shape first");
        assert_eq!(pick(b"set k v\r\n", out, 11211), Some("redis"));
        assert_eq!(pick(b"mg k v\r\n", out, 7000), Some("memcached"));
        assert_eq!(pick(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", out, 6379), Some("http1"));
        assert_eq!(pick(b"+OK\r\n", Direction::Ingress, 6379), Some("redis"), "joined mid-way");
        assert_eq!(pick(b"+OK POP3 ready\r\n", Direction::Ingress, 110), None);
        assert_eq!(pick(b"END\r\n", Direction::Ingress, 11211), Some("memcached"));
        assert_eq!(pick(b"220 mail ESMTP\r\n", Direction::Ingress, 11211), None);
        assert_eq!(pick(b"bogus\r\n", out, 11211), None);
    }

    #[test]
    fn losses_are_counted_once_and_gaps_not_twice() {
        let stats = Arc::new(Stats::default());
        let mut r = LossReporter::new(stats.clone());
        r.report(Losses { dropped: 2, unmatched_replies: 1, resyncs: 1, skipped_chunks: 0 });
        r.gap(3);
        r.report(Losses { dropped: 5, unmatched_replies: 1, resyncs: 1, skipped_chunks: 4 });
        r.report(Losses { dropped: 6, unmatched_replies: 3, resyncs: 2, skipped_chunks: 4 });
        let s = stats.snapshot();
        assert_eq!((s.requests_unmatched, s.responses_unmatched, s.stream_resyncs, s.chunks_skipped), (3, 3, 2, 4));
    }
}
