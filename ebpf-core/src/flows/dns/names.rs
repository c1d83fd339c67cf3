//! The names DNS answers gave to addresses: a flow to an address some
//! process on this host resolved carries that name (`server.address`).
//!
//! Host-wide, latest answer wins: two names for one address (virtual hosts,
//! CDNs) show the one asked for last. An entry lives at least `MIN_KEEP`
//! (connections outlive the TTL of the answer that opened them: pools,
//! long-lived streams), longer if its TTL says so. Bounded: when full,
//! expired entries go first, then the oldest half.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// How long a name is kept at least, in nanoseconds (1 hour).
const MIN_KEEP_NS: u64 = 3_600_000_000_000;

#[derive(Debug)]
pub struct NameCache {
    by_ip: FxHashMap<IpAddr, (Arc<str>, u64)>,
    capacity: usize,
}

impl NameCache {
    pub fn new(capacity: usize) -> Self {
        Self { by_ip: FxHashMap::default(), capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// `name` answered `ip` at `now_ns` with `ttl_s`.
    pub fn insert(&mut self, ip: IpAddr, name: &Arc<str>, ttl_s: u32, now_ns: u64) {
        let expires = now_ns + MIN_KEEP_NS.max(u64::from(ttl_s) * 1_000_000_000);
        if self.by_ip.len() >= self.capacity && !self.by_ip.contains_key(&ip) {
            self.by_ip.retain(|_, (_, e)| *e > now_ns);
            if self.by_ip.len() >= self.capacity {
                // The oldest half: those expiring first.
                let mut expiries: Vec<u64> = self.by_ip.values().map(|(_, e)| *e).collect();
                let mid = expiries.len() / 2;
                let (_, cut, _) = expiries.select_nth_unstable(mid);
                let cut = *cut;
                self.by_ip.retain(|_, (_, e)| *e > cut);
            }
        }
        self.by_ip.insert(ip, (name.clone(), expires));
    }

    /// The name last answered for `ip`, if not expired at `now_ns`.
    pub fn get(&self, ip: &IpAddr, now_ns: u64) -> Option<&Arc<str>> {
        self.by_ip.get(ip).filter(|(_, e)| *e > now_ns).map(|(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_answer_wins_and_entries_expire() {
        let mut c = NameCache::new(4);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        c.insert(ip, &Arc::from("a.test"), 30, 0);
        c.insert(ip, &Arc::from("b.test"), 30, 1);
        assert_eq!(c.get(&ip, 2).map(|n| &**n), Some("b.test"));
        assert_eq!(c.get(&ip, 1 + MIN_KEEP_NS), None);
        // A long TTL keeps it longer.
        c.insert(ip, &Arc::from("c.test"), 7200, 0);
        assert!(c.get(&ip, MIN_KEEP_NS + 1).is_some());
    }

    #[test]
    fn bounded() {
        let mut c = NameCache::new(4);
        for i in 0..100u32 {
            c.insert(IpAddr::from(i.to_be_bytes()), &Arc::from("x"), 0, u64::from(i));
            assert!(c.len() <= 4);
        }
        // The newest is always kept.
        assert!(c.get(&IpAddr::from(99u32.to_be_bytes()), 100).is_some());
    }
}
