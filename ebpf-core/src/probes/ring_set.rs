//! The per-CPU ring buffers, merged back into one stream in time order.
//!
//! Each CPU writes its own ring (`event_rings` in common.h), so a connection
//! whose thread moved to another CPU, or whose accept and first read ran on
//! two CPUs, has its events in two rings. They are merged by their
//! timestamp (`oe_event_header.ts_ns`, CLOCK_MONOTONIC, the first 8 bytes of
//! every record), and a record is handed on only once its time is older than
//! a watermark taken before the rings were looked at:
//!
//! - Anything that happened before a record (the previous syscall on its
//!   connection, its process's earlier events) was reserved and committed in
//!   its ring before that record's syscall began, so before its timestamp.
//!   A record stamped before the watermark therefore has all of its past
//!   visible in the snapshot of the rings taken after it.
//! - A record reserved after the snapshot is stamped after it, so after the
//!   watermark: it waits for a later drain, as do records behind a record
//!   another CPU is still writing (the rings are read in order).
//!
//! The watermark is `now - WATERMARK_SLACK`: the slack covers clock reads
//! and stores that become visible a little out of order between CPUs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::ring_reader::RingReader;

/// How far behind the clock the merge stays.
pub const WATERMARK_SLACK: Duration = Duration::from_millis(1);

/// What the merge needs of one ring (the real one, or a test's).
pub trait Ring {
    /// Re-reads how far the producers have reserved.
    fn refresh(&mut self);
    /// The record at the head, if one is reserved (as of the last refresh)
    /// and committed.
    fn head(&mut self) -> Option<&[u8]>;
    /// Moves past the record `head` just returned.
    fn take(&mut self);
    /// Tells the producers how far this ring was read.
    fn publish(&mut self);
}

impl Ring for RingReader {
    fn refresh(&mut self) {
        RingReader::refresh(self)
    }
    fn head(&mut self) -> Option<&[u8]> {
        RingReader::head(self)
    }
    fn take(&mut self) {
        RingReader::take(self)
    }
    fn publish(&mut self) {
        RingReader::publish(self)
    }
}

/// What one drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub handled: usize,
    /// Records were left because they are newer than the watermark.
    pub held: bool,
    /// Stopped at the budget with records still to hand on.
    pub full: bool,
}

pub struct RingSet<R = RingReader> {
    rings: Vec<R>,
    /// The rings' heads by time; kept to reuse its allocation.
    heads: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<R: Ring> RingSet<R> {
    pub fn new(rings: Vec<R>) -> Self {
        let heads = BinaryHeap::with_capacity(rings.len());
        Self { rings, heads }
    }

    pub fn rings(&self) -> &[R] {
        &self.rings
    }

    /// Hands up to `budget` records stamped at or before `upto_ns` to
    /// `each`, oldest first across the rings (each ring in its own order).
    pub fn drain(&mut self, budget: usize, upto_ns: u64, mut each: impl FnMut(&[u8])) -> Drain {
        let mut outcome = Drain { handled: 0, held: false, full: false };
        self.heads.clear();
        for (i, ring) in self.rings.iter_mut().enumerate() {
            ring.refresh();
            if let Some(ts) = head_ts(ring) {
                self.heads.push(Reverse((ts, i)));
            }
        }
        'merge: while let Some(Reverse((_, i))) = self.heads.pop() {
            // A run of this ring's records up to the next ring's head needs
            // no heap operation: usually one CPU's burst, or the only ring.
            let next = self.heads.peek().map_or(u64::MAX, |&Reverse((t, _))| t);
            let ring = &mut self.rings[i];
            while let Some(record) = ring.head() {
                let ts = stamp(record);
                if ts > next {
                    self.heads.push(Reverse((ts, i)));
                    continue 'merge;
                }
                // The oldest record left: everything else waits as well.
                outcome.held = ts > upto_ns;
                outcome.full = !outcome.held && outcome.handled == budget;
                if outcome.held || outcome.full {
                    break 'merge;
                }
                each(record);
                ring.take();
                outcome.handled += 1;
            }
        }
        for ring in &mut self.rings {
            ring.publish();
        }
        outcome
    }
}

/// The head record's timestamp.
fn head_ts(ring: &mut impl Ring) -> Option<u64> {
    ring.head().map(stamp)
}

/// A record's timestamp; 0 for a record too short to have one (the decoder
/// reports it), so it goes first rather than blocking its ring.
fn stamp(record: &[u8]) -> u64 {
    record.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A ring of whole records; `busy_from` marks the first one its CPU is
    /// still writing, `reserved` how many the producers have reserved (the
    /// rest arrive at the next refresh).
    #[derive(Default)]
    struct FakeRing {
        records: VecDeque<Vec<u8>>,
        visible: usize,
        busy_from: Option<usize>,
        published: usize,
        taken: usize,
    }

    impl FakeRing {
        fn with(stamps: &[u64]) -> Self {
            let mut r = Self::default();
            for &ts in stamps {
                r.push(ts);
            }
            r
        }

        fn push(&mut self, ts: u64) {
            let mut rec = ts.to_le_bytes().to_vec();
            rec.extend_from_slice(b"payload");
            self.records.push_back(rec);
        }
    }

    impl Ring for FakeRing {
        fn refresh(&mut self) {
            self.visible = self.records.len();
        }
        fn head(&mut self) -> Option<&[u8]> {
            if self.visible == 0 || self.busy_from == Some(self.taken) {
                return None;
            }
            self.records.front().map(Vec::as_slice)
        }
        fn take(&mut self) {
            self.records.pop_front();
            self.visible -= 1;
            self.taken += 1;
        }
        fn publish(&mut self) {
            self.published = self.taken;
        }
    }

    fn stamps(set: &mut RingSet<FakeRing>, budget: usize, upto: u64) -> (Vec<u64>, Drain) {
        let mut seen = Vec::new();
        let d = set.drain(budget, upto, |r| seen.push(u64::from_le_bytes(r[..8].try_into().unwrap())));
        (seen, d)
    }

    #[test]
    fn merges_the_rings_in_time_order() {
        let mut set =
            RingSet::new(vec![FakeRing::with(&[1, 4, 5, 9]), FakeRing::with(&[2, 3, 8]), FakeRing::default()]);
        let (seen, d) = stamps(&mut set, 100, u64::MAX);
        assert_eq!(seen, [1, 2, 3, 4, 5, 8, 9]);
        assert_eq!(d, Drain { handled: 7, held: false, full: false });
        assert_eq!(set.rings().iter().map(|r| r.published).collect::<Vec<_>>(), [4, 3, 0], "all published");
        assert_eq!(stamps(&mut set, 100, u64::MAX).1.handled, 0);
    }

    #[test]
    fn holds_records_newer_than_the_watermark() {
        let mut set = RingSet::new(vec![FakeRing::with(&[10, 30]), FakeRing::with(&[20, 40])]);
        let (seen, d) = stamps(&mut set, 100, 25);
        assert_eq!(seen, [10, 20]);
        assert!(d.held && !d.full, "{d:?}");
        // A record stamped earlier than the held ones, reserved meanwhile on
        // the first ring, still goes before them.
        set.rings[0].records.push_front(26u64.to_le_bytes().to_vec());
        let (seen, d) = stamps(&mut set, 100, u64::MAX);
        assert_eq!(seen, [26, 30, 40]);
        assert!(!d.held, "{d:?}");
    }

    #[test]
    fn stops_at_its_budget_and_goes_on_from_there() {
        let mut set = RingSet::new(vec![FakeRing::with(&[1, 3, 5]), FakeRing::with(&[2, 4, 6])]);
        let (seen, d) = stamps(&mut set, 4, u64::MAX);
        assert_eq!(seen, [1, 2, 3, 4]);
        assert!(d.full && !d.held, "{d:?}");
        assert_eq!(stamps(&mut set, 4, u64::MAX).0, [5, 6]);
    }

    #[test]
    fn a_record_still_being_written_blocks_only_its_own_ring() {
        let mut busy = FakeRing::with(&[1, 5, 6]);
        busy.busy_from = Some(1);
        let mut set = RingSet::new(vec![busy, FakeRing::with(&[2, 7])]);
        // Its followers wait behind it; the other ring goes on (whatever
        // follows the busy record happened after it was reserved).
        assert_eq!(stamps(&mut set, 100, u64::MAX).0, [1, 2, 7]);
        set.rings[0].busy_from = None;
        assert_eq!(stamps(&mut set, 100, u64::MAX).0, [5, 6]);
    }

    #[test]
    fn records_reserved_after_the_snapshot_wait_for_the_next_drain() {
        let mut set = RingSet::new(vec![FakeRing::with(&[1]), FakeRing::with(&[2])]);
        let mut seen = Vec::new();
        // Mid-drain arrivals are not visible until the next refresh.
        let d = set.drain(100, u64::MAX, |r| seen.push(r[0]));
        set.rings[1].push(3);
        assert_eq!((seen, d.handled), (vec![1, 2], 2));
        assert_eq!(stamps(&mut set, 100, u64::MAX).0, [3]);
    }

    #[test]
    fn a_record_too_short_for_a_timestamp_is_handed_on_first() {
        let mut ring = FakeRing::with(&[5]);
        ring.records.push_front(vec![1, 2, 3]);
        let mut set = RingSet::new(vec![ring, FakeRing::with(&[4])]);
        let mut lens = Vec::new();
        set.drain(100, u64::MAX, |r| lens.push(r.len()));
        assert_eq!(lens, [3, 15, 15]);
    }
}
