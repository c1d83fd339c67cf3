//! The seam both SQL parsers (PostgreSQL, MySQL) stand behind: one
//! `Parser` for the two, since they follow a connection the same way. The
//! parser is made at the connection's first chunk (from its start, or
//! joined mid-way: the protocol tells which, and the role); each chunk's
//! operations become `Record::Sql`; operations the parser gives up on are
//! counted as unmatched, except those `gap` reports as lost. Generic, not
//! boxed: each protocol gets its own copy, with no call through a vtable
//! per chunk.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::{DbOperation, SqlOptions};
use crate::protocol::{Chunk, Parser, Progress, Record, Role};
use crate::stats::Stats;

/// A SQL protocol's parser, as `SqlStream` drives it.
pub(crate) trait SqlParser: fmt::Debug + Send + Sized + 'static {
    /// The parser for a connection whose first chunk is `chunk`; `role` is
    /// the kernel's, when it saw the connection open.
    fn start(opts: SqlOptions, role: Option<Role>, chunk: &Chunk<'_>) -> Self;
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<DbOperation>);
    fn gap(&mut self);
    fn close(&mut self, out: &mut Vec<DbOperation>);
    /// Operations given up so far (never decreasing).
    fn dropped(&self) -> u64;
    /// Nothing more to copy: TLS (the plaintext comes from the TLS probes),
    /// the end of the session, or not this protocol after all.
    fn finished(&self) -> bool;
    /// Once finished: counts why, where the receiver counts it.
    fn count_finish(&self, _stats: &Stats) {}
    /// The parser for the connection's plaintext once it switched to TLS,
    /// carrying what the clear part taught; `None`: recognised afresh.
    fn after_tls(&self) -> Option<Self> {
        None
    }
}

/// One connection of a SQL protocol behind the `Parser` interface.
#[derive(Debug)]
pub(crate) struct SqlStream<P> {
    opts: SqlOptions,
    /// The kernel's, when it saw the connection open.
    role: Option<Role>,
    parser: Option<P>,
    /// Operations completed by one call, before they become records.
    ops: Vec<DbOperation>,
    /// How many of the parser's dropped operations were counted.
    dropped: u64,
    stats: Arc<Stats>,
}

impl<P: SqlParser> SqlStream<P> {
    pub(crate) fn new(opts: SqlOptions, role: Option<Role>, stats: Arc<Stats>) -> Self {
        SqlStream { opts, role, parser: None, ops: Vec::new(), dropped: 0, stats }
    }

    /// Records for the completed operations; the newly dropped ones counted
    /// (`requests_unmatched`) unless `gap` reports them; their number.
    fn flush(&mut self, out: &mut Vec<Record>, counted: bool) -> u64 {
        out.extend(self.ops.drain(..).map(Record::Sql));
        let total = self.parser.as_ref().map_or(0, P::dropped);
        let new = total - self.dropped;
        self.dropped = total;
        if counted && new > 0 {
            self.stats.requests_unmatched.fetch_add(new, Relaxed);
        }
        new
    }
}

impl<P: SqlParser> Parser for SqlStream<P> {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if self.parser.is_none() {
            self.parser = Some(P::start(self.opts, self.role, chunk));
        }
        let Some(p) = self.parser.as_mut() else { return Progress::Failed };
        p.feed(chunk, &mut self.ops);
        let done = p.finished();
        self.flush(out, true);
        if done {
            if let Some(p) = &self.parser {
                p.count_finish(&self.stats);
            }
            Progress::Done
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, out: &mut Vec<Record>) -> usize {
        let Some(p) = self.parser.as_mut() else { return 0 };
        p.gap();
        self.flush(out, false) as usize
    }

    fn close(&mut self, _ts_ns: u64, out: &mut Vec<Record>) {
        if let Some(p) = self.parser.as_mut() {
            p.close(&mut self.ops);
        }
        self.flush(out, true);
    }

    fn over_tls(&mut self) -> Option<Box<dyn Parser>> {
        let next = self.parser.as_ref()?.after_tls()?;
        let mut stream = SqlStream::<P>::new(self.opts, self.role, self.stats.clone());
        stream.parser = Some(next);
        Some(Box::new(stream))
    }
}
