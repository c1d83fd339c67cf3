//! `MemcachedParser` behind the registry's interface: operations become
//! `Record::Memcached`, its counters the receiver's
//! (`kv::LossReporter`). A stream whose first command Redis's inline form
//! reads too (`get k`, `quit`: see `kv`) is followed as memcached but its
//! records are held until the first reply: one in RESP hands the stream,
//! replayed from its start, to Redis's parser (when Redis is on).

use super::{MemcachedCounters, MemcachedOperation, MemcachedParser};
use crate::protocol::kv::{self, LossReporter, Losses, Reading};
use crate::protocol::redis::{self, RedisStream};
use crate::protocol::{Chunk, Direction, Parser, ParserContext, Progress, Record};

/// Most chunks, and captured bytes, held while the first reply is awaited;
/// past them the stream stays memcached's.
const HOLD_CHUNKS: usize = 8;
const HOLD_BYTES: usize = 8 * 1024;

/// One connection's memcached parser, as the connection tracker drives it.
#[derive(Debug)]
pub(crate) struct MemcachedStream {
    parser: MemcachedParser,
    /// The operations of one call, before they become records (reused;
    /// held while `Undecided`).
    ops: Vec<MemcachedOperation>,
    losses: LossReporter,
    state: State,
}

#[derive(Debug)]
enum State {
    /// No chunk yet; the context a Redis parser would need, when Redis is on.
    Start(Option<Box<ParserContext>>),
    /// The first command reads as Redis's too: its chunks, until a reply.
    Undecided(Box<Held>),
    Memcached,
    /// Answered in RESP: Redis's.
    Redis(Box<RedisStream>),
}

#[derive(Debug)]
struct Held {
    ctx: Box<ParserContext>,
    /// The direction commands travel (the first chunk's).
    requests: Direction,
    chunks: Vec<(u64, Direction, Vec<u8>, u64)>,
    bytes: usize,
}

impl MemcachedStream {
    pub(crate) fn new(ctx: &ParserContext) -> Self {
        let redis = ctx.config.redis.enabled.then(|| Box::new(ctx.clone()));
        Self {
            parser: MemcachedParser::with_role(ctx.role),
            ops: Vec::new(),
            losses: LossReporter::new(ctx.stats.clone()),
            state: State::Start(redis),
        }
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        out.extend(self.ops.drain(..).map(Record::Memcached));
        self.losses.report(losses(self.parser.counters()));
    }

    fn progress(&self) -> Progress {
        if self.parser.is_failed() {
            Progress::Failed
        } else if self.parser.is_switched() {
            // `watch`: a log stream now.
            Progress::Done
        } else {
            Progress::Continue
        }
    }

    /// Whether to hold `chunk` (the stream is undecided and it is no reply),
    /// or to hand the stream to Redis (it is a reply in RESP); updates the state.
    fn decide(&mut self, chunk: &Chunk<'_>) -> Decision {
        if let State::Start(redis) = &mut self.state {
            let ambiguous = !chunk.data.is_empty()
                && redis::sniff::looks_like_inline_command(chunk.data)
                && kv::shape(chunk.data) == Reading::Either;
            self.state = match redis.take() {
                Some(ctx) if ambiguous => {
                    State::Undecided(Box::new(Held { ctx, requests: chunk.direction, chunks: Vec::new(), bytes: 0 }))
                }
                _ => State::Memcached,
            };
        }
        let State::Undecided(held) = &mut self.state else { return Decision::Memcached };
        if chunk.direction != held.requests {
            return if redis::sniff::starts_reply(chunk.data) && !super::sniff::starts_reply(chunk.data) {
                Decision::Redis
            } else {
                self.state = State::Memcached;
                Decision::Memcached
            };
        }
        if held.chunks.len() == HOLD_CHUNKS || held.bytes + chunk.data.len() > HOLD_BYTES {
            self.state = State::Memcached;
            return Decision::Memcached;
        }
        held.bytes += chunk.data.len();
        held.chunks.push((chunk.ts_ns, chunk.direction, chunk.data.to_vec(), chunk.total_len));
        Decision::Hold
    }

    /// Replays the held chunks, then `chunk`, into a Redis parser that
    /// takes the stream over; the memcached operations held are dropped.
    fn hand_to_redis(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        let State::Undecided(held) = std::mem::replace(&mut self.state, State::Memcached) else {
            unreachable!("only an undecided stream is handed over")
        };
        self.ops.clear();
        self.parser = MemcachedParser::new();
        let mut redis = Box::new(RedisStream::new(&held.ctx));
        for (ts_ns, direction, data, total_len) in &held.chunks {
            let chunk = Chunk { ts_ns: *ts_ns, direction: *direction, data, total_len: *total_len };
            if redis.feed(&chunk, out) != Progress::Continue {
                return Progress::Failed;
            }
        }
        let progress = redis.feed(chunk, out);
        self.state = State::Redis(redis);
        progress
    }
}

enum Decision {
    Hold,
    Memcached,
    Redis,
}

fn losses(c: MemcachedCounters) -> Losses {
    Losses {
        dropped: c.dropped_operations,
        unmatched_replies: c.unmatched_replies,
        resyncs: c.resyncs,
        skipped_chunks: c.skipped_chunks,
    }
}

impl Parser for MemcachedStream {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if let State::Redis(redis) = &mut self.state {
            return redis.feed(chunk, out);
        }
        if !matches!(self.state, State::Memcached) {
            match self.decide(chunk) {
                Decision::Redis => return self.hand_to_redis(chunk, out),
                Decision::Hold => {
                    // Followed as memcached meanwhile; its operations wait.
                    let _ = self.parser.feed(chunk, &mut self.ops);
                    return self.progress();
                }
                Decision::Memcached => {}
            }
        }
        // An error the parser recovers from (it resynchronises) is in its
        // counters; only a stream that never was memcached fails.
        let _ = self.parser.feed(chunk, &mut self.ops);
        self.flush(out);
        self.progress()
    }

    fn gap(&mut self, out: &mut Vec<Record>) -> usize {
        match &mut self.state {
            State::Redis(redis) => return redis.gap(out),
            State::Undecided(_) | State::Start(_) => self.state = State::Memcached,
            State::Memcached => {}
        }
        let dropped = self.parser.gap(&mut self.ops);
        self.losses.gap(dropped);
        self.flush(out);
        usize::try_from(dropped).unwrap_or(usize::MAX)
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        if let State::Redis(redis) = &mut self.state {
            return redis.close(ts_ns, out);
        }
        // Undecided at the close: no reply in RESP came, memcached's it stays.
        self.state = State::Memcached;
        self.parser.close(ts_ns, &mut self.ops);
        self.flush(out);
    }
}
