//! The seam for protocols whose decoder matches answers to requests by an
//! id the messages carry (Kafka, MongoDB, MQTT): one `Parser` for all of
//! them. The decoder is made on the connection's first chunk, by a closure
//! the protocol's constructor gives (followed from its start when the kernel
//! saw the connection open; else joined mid-way, its role told by that chunk
//! or the port, or not at all: the connection is then given up). Each chunk's
//! operations become records at once; requests the decoder gives up on
//! (found unanswered after lost events, or at close) are handed over by
//! `dropped`, each once.

use std::fmt;

use crate::protocol::{Chunk, Parser, Progress, Record};

/// A protocol's stream decoder, as `Decoded` drives it.
pub trait Decoder: fmt::Debug + Send + 'static {
    /// What it completes: one request with its answer, or without one.
    type Op: fmt::Debug + Send + 'static;
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Self::Op>);
    /// The kernel lost events of the connection: what the decoder keeps
    /// (requests an answer can still name) or forgets is its own to say.
    fn gap(&mut self);
    /// The connection ended: operations it completes, and the requests
    /// left unanswered.
    fn close(&mut self, ts_ns: u64, out: &mut Vec<Self::Op>);
    /// The stream turned out not to be this protocol: stop following it.
    fn is_done(&self) -> bool;
    /// Requests given up on so far (never decreasing).
    fn given_up(&self) -> u64;
    /// The registry's record of an operation.
    fn record(op: Self::Op) -> Record;
}

/// Makes the decoder from the connection's first chunk; `None`: the chunk
/// cannot tell the role of a connection joined mid-way.
type Start<D> = Box<dyn FnOnce(&Chunk<'_>) -> Option<D> + Send>;

/// One connection of an id-matched protocol behind the `Parser` interface.
pub struct Decoded<D: Decoder> {
    start: Option<Start<D>>,
    decoder: Option<D>,
    ops: Vec<D::Op>,
    /// `given_up` already handed over by `dropped`.
    reported: u64,
}

impl<D: Decoder> Decoded<D> {
    pub fn boxed(start: impl FnOnce(&Chunk<'_>) -> Option<D> + Send + 'static) -> Box<dyn Parser> {
        Box::new(Decoded { start: Some(Box::new(start)), decoder: None, ops: Vec::new(), reported: 0 })
    }

    fn emit(&mut self, out: &mut Vec<Record>) {
        out.extend(self.ops.drain(..).map(D::record));
    }
}

impl<D: Decoder> fmt::Debug for Decoded<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded").field("decoder", &self.decoder).field("reported", &self.reported).finish()
    }
}

impl<D: Decoder> Parser for Decoded<D> {
    fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<Record>) -> Progress {
        if self.decoder.is_none() {
            self.decoder = self.start.take().and_then(|start| start(chunk));
        }
        let Some(decoder) = self.decoder.as_mut() else { return Progress::Failed };
        decoder.feed(chunk, &mut self.ops);
        let done = decoder.is_done();
        self.emit(out);
        if done {
            Progress::Failed
        } else {
            Progress::Continue
        }
    }

    fn gap(&mut self, _out: &mut Vec<Record>) -> usize {
        // Nothing is counted here: what the gap costs shows in `dropped`.
        if let Some(d) = &mut self.decoder {
            d.gap();
        }
        0
    }

    fn close(&mut self, ts_ns: u64, out: &mut Vec<Record>) {
        if let Some(d) = &mut self.decoder {
            d.close(ts_ns, &mut self.ops);
        }
        self.emit(out);
    }

    fn dropped(&mut self) -> u64 {
        let total = self.decoder.as_ref().map_or(0, D::given_up);
        let new = total.saturating_sub(self.reported);
        self.reported = total;
        new
    }
}
