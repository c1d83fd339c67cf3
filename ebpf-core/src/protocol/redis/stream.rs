//! `RedisParser` behind the registry's interface: operations become
//! `Record::Redis`, its counters the receiver's (`kv::LossReporter`).

use super::{RedisCounters, RedisOperation, RedisParser};
use crate::protocol::kv::{LossReporter, Losses};
use crate::protocol::{Chunk, Parser, ParserContext, Progress, Record};

/// One connection's Redis parser, as the connection tracker drives it.
#[derive(Debug)]
pub(crate) struct RedisStream {
    parser: RedisParser,
    /// The operations of one call, before they become records (reused).
    ops: Vec<RedisOperation>,
    losses: LossReporter,
}

impl RedisStream {
    /// A connection seen from its start (the kernel saw it open, so the
    /// role is known) begins in database 0; one joined later in an unknown
    /// database, until a `SELECT`.
    pub(crate) fn new(ctx: &ParserContext) -> Self {
        let parser = match ctx.role {
            Some(role) => RedisParser::from_start(Some(role)),
            None => RedisParser::new(),
        };
        Self { parser, ops: Vec::new(), losses: LossReporter::new(ctx.stats.clone()) }
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        out.extend(self.ops.drain(..).map(Record::Redis));
        self.losses.report(losses(self.parser.counters()));
    }
}

fn losses(c: RedisCounters) -> Losses {
    Losses {
        dropped: c.dropped_operations,
        unmatched_replies: c.unmatched_replies,
        resyncs: c.resyncs,
        skipped_chunks: c.skipped_chunks,
    }
}

impl Parser for RedisStream {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        // An error the parser recovers from (it resynchronises) is counted
        // in its counters; only a stream that never was Redis fails.
        let _ = self.parser.feed(chunk, &mut self.ops);
        self.flush(out);
        if self.parser.is_failed() {
            Progress::Failed
        } else if self.parser.is_switched() {
            // MONITOR or replication: no longer commands and replies.
            Progress::Done
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, out: &mut Vec<Record>) -> usize {
        let dropped = self.parser.gap(&mut self.ops);
        self.losses.gap(dropped);
        self.flush(out);
        usize::try_from(dropped).unwrap_or(usize::MAX)
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        self.parser.close(ts_ns, &mut self.ops);
        self.flush(out);
    }
}
