//! What every SQL parser (PostgreSQL, MySQL) must do with its recordings,
//! checked the same way for each: the same operations from either side and
//! however the bytes are split into syscalls; truncated captures and lost
//! events never invent an operation, and a parser recovers after a gap.

use crate::protocol::fixture::{direction, feed_chunks, random_split, whole, Segment, SEG_NS};
use crate::protocol::sql::seam::SqlParser;
use crate::protocol::sql::{DbOperation, DbStatus};
use crate::protocol::{Chunk, Role};

/// A SQL parser as the checks drive it: as the seam does, from the
/// connection's first byte.
pub(crate) trait SqlWire: SqlParser {
    fn fresh() -> Self;
}

/// Plays one recorded connection from `role`'s side, each segment split by
/// `split` into syscalls and each cut to `capture` bytes.
pub(crate) fn play<P: SqlWire>(
    segs: &[Segment],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<DbOperation>, P) {
    let mut p = P::fresh();
    let mut out = Vec::new();
    feed_chunks(segs, 0, role, capture, split, &mut |chunk| p.feed(chunk, &mut out));
    p.close(&mut out);
    (out, p)
}

type Describe = fn(&DbOperation) -> String;

fn descriptions(ops: &[DbOperation], describe: Describe) -> Vec<String> {
    ops.iter().map(describe).collect()
}

/// The same operations from the server's side, and however the bytes are
/// split into syscalls.
pub(crate) fn same_from_either_side_and_any_split<P: SqlWire>(all: &[(&str, Vec<Segment>)], describe: Describe) {
    for (name, segs) in all {
        let want = descriptions(&play::<P>(segs, Role::Client, usize::MAX, &mut whole).0, describe);
        let (server, _) = play::<P>(segs, Role::Server, usize::MAX, &mut whole);
        assert_eq!(descriptions(&server, describe), want, "{name} from the server");
        assert!(server.iter().all(|o| o.role == Role::Server));
        let (bytewise, _) = play::<P>(segs, Role::Client, usize::MAX, &mut |_, len| vec![1; len]);
        assert_eq!(descriptions(&bytewise, describe), want, "{name} byte by byte");
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20 {
            let (random, _) = play::<P>(segs, Role::Client, usize::MAX, &mut |_, len| random_split(&mut rng, len));
            assert_eq!(descriptions(&random, describe), want, "{name} split at random");
        }
    }
}

/// Captures cut at sizes from nothing to 1 KiB: only operations of the
/// clean run come out, all of them at 1 KiB.
pub(crate) fn truncation_invents_nothing<P: SqlWire>(all: &[(&str, Vec<Segment>)], describe: Describe) {
    for (name, segs) in all {
        let (want, _) = play::<P>(segs, Role::Client, usize::MAX, &mut whole);
        for capture in [0, 1, 5, 16, 64, 100, 256, 1024] {
            let (got, _) = play::<P>(segs, Role::Client, capture, &mut whole);
            assert_subsequence(&format!("{name} capture {capture}"), &got, &want, describe);
            if capture >= 1024 {
                assert_eq!(got.len(), want.len(), "{name}: all operations at capture {capture}");
            }
        }
    }
}

/// Each segment lost in turn: only operations of the clean run come out,
/// and a gap well before the end is recovered from (the last operation
/// still comes out).
pub(crate) fn lost_segments_invent_nothing_and_recover<P: SqlWire>(all: &[(&str, Vec<Segment>)], describe: Describe) {
    for (name, segs) in all {
        let (want, _) = play::<P>(segs, Role::Client, usize::MAX, &mut whole);
        for lost in 0..segs.len() {
            let mut p = P::fresh();
            let mut got = Vec::new();
            for (i, seg) in segs.iter().enumerate() {
                if i == lost {
                    p.gap();
                    continue;
                }
                let (ts_ns, data) = (SEG_NS * (i as u64 + 1), &seg.bytes[..]);
                let chunk =
                    Chunk { ts_ns, direction: direction(seg, Role::Client), data, total_len: data.len() as u64 };
                p.feed(&chunk, &mut got);
            }
            p.close(&mut got);
            assert_subsequence(&format!("{name} without segment {lost}"), &got, &want, describe);
            if want.len() > 50 && lost + 20 < segs.len() && lost > 8 {
                assert_eq!(got.last().map(describe), want.last().map(describe), "{name} after losing {lost}");
            }
        }
    }
}

/// An operation emitted under adverse conditions must be one of those of the
/// clean run, in order: same request segment, same command, same text (or
/// a cut prefix of it), same status (or Unknown), never invented.
fn assert_subsequence(name: &str, got: &[DbOperation], want: &[DbOperation], describe: Describe) {
    let mut w = want.iter();
    for g in got {
        let found = w.by_ref().find(|c| {
            c.start_ns / SEG_NS == g.start_ns / SEG_NS
                && c.command == g.command
                && match (&g.query, &c.query) {
                    (Some(gq), Some(cq)) => gq.text == cq.text || (gq.truncated && cq.text.starts_with(&*gq.text)),
                    (None, _) => true,
                    _ => false,
                }
                && (g.status == c.status
                    || g.status == DbStatus::Unknown
                    // An error whose SQLSTATE was past the capture.
                    || matches!((&g.status, &c.status), (DbStatus::Error(ge), DbStatus::Error(_)) if ge.code == "_OTHER"))
        });
        assert!(found.is_some(), "{name}: {} is not among the clean run's operations", describe(g));
    }
}
