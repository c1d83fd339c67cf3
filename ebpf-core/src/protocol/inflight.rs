//! The commands of a pipelined text protocol (Redis, memcached) from the
//! moment they are sent until their operations are handed out, in order.
//!
//! Not `matching::Fifo`: a reply does not simply answer the oldest entry.
//! Commands complete without a reply (`noreply`, `CLIENT REPLY OFF`) behind
//! ones still waiting, commands past the limit are only counted (each still
//! takes a reply), and bytes past the capture may hide an unknown number of
//! commands. Both parsers keep their commands this way; how entries are
//! added, passed over and handed out is the same for both and lives here,
//! what a reply does to an entry is each parser's own.

use std::collections::VecDeque;

/// A command as the queue sees it.
pub(crate) trait Command {
    /// What it is handed out as, once complete.
    type Op;
    /// It still waits for a reply: the oldest such entry is answered next.
    fn awaits_reply(&self) -> bool;
    /// Complete: its operation can be handed out.
    fn is_done(&self) -> bool;
    fn into_op(self) -> Self::Op;
}

#[derive(Debug)]
pub(crate) enum Entry<C> {
    Op(C),
    /// Commands counted but not kept (past the limit): each takes a reply.
    Skipped(u64),
    /// An unknown number of commands in bytes past the capture.
    Unknown,
}

/// The commands of one connection, in the order they were sent.
#[derive(Debug)]
pub(crate) struct InFlight<C> {
    /// Commands in order until their operations are complete and handed out.
    pub(crate) entries: VecDeque<Entry<C>>,
    /// Index in `entries` of the oldest entry awaiting a reply.
    pub(crate) awaiting: usize,
    /// Entries kept at most.
    limit: usize,
}

impl<C: Command> InFlight<C> {
    pub(crate) fn new(limit: usize) -> Self {
        InFlight { entries: VecDeque::new(), awaiting: 0, limit }
    }

    /// Forgets every entry (and frees the queue's memory).
    pub(crate) fn clear(&mut self) {
        self.entries = VecDeque::new();
        self.awaiting = 0;
    }

    /// Queues a command. Past the limit it is only counted, and one that
    /// needs no reply is forgotten: returns how many commands that dropped.
    pub(crate) fn push(&mut self, command: C) -> u64 {
        if self.entries.len() < self.limit {
            self.entries.push_back(Entry::Op(command));
            self.settle();
            return 0;
        }
        if command.is_done() {
            // Needs no reply: nothing to keep a place for.
            return 1;
        }
        match self.entries.back_mut() {
            Some(Entry::Skipped(m)) => *m += 1,
            _ => self.entries.push_back(Entry::Skipped(1)),
        }
        self.settle();
        1
    }

    /// Bytes past the capture may have held commands (one `Unknown` stands
    /// for any run of them).
    pub(crate) fn push_unknown(&mut self) {
        if !matches!(self.entries.back(), Some(Entry::Unknown)) {
            self.entries.push_back(Entry::Unknown);
        }
    }

    /// The awaiting entry got its reply: the next one awaits.
    pub(crate) fn answered(&mut self) {
        self.awaiting += 1;
        self.settle();
    }

    /// Moves `awaiting` past commands that need no reply.
    pub(crate) fn settle(&mut self) {
        while let Some(Entry::Op(c)) = self.entries.get(self.awaiting) {
            if c.awaits_reply() {
                break;
            }
            self.awaiting += 1;
        }
    }

    /// The run of unknown commands ended (a request chunk starting a
    /// command came): whether there was one.
    pub(crate) fn remove_unknown(&mut self) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| !matches!(e, Entry::Unknown));
        if self.entries.len() == before {
            return false;
        }
        self.awaiting = self.awaiting.min(self.entries.len());
        self.settle();
        true
    }

    /// Every kept command has its outcome (the connection closed): the
    /// counted and unknown entries go, and none awaits.
    pub(crate) fn close_all(&mut self) {
        self.entries.retain(|e| matches!(e, Entry::Op(_)));
        self.awaiting = self.entries.len();
    }

    /// The stretch whose replies went unframed ended, its commands given
    /// their outcomes and its skipped counts zeroed: the markers go, and
    /// none awaits.
    pub(crate) fn end_unframed(&mut self) {
        self.entries.retain(|e| !matches!(e, Entry::Unknown | Entry::Skipped(0)));
        self.awaiting = self.entries.len();
    }

    /// Hands out the complete operations at the front, in order; returns
    /// how many entries left the front.
    pub(crate) fn drain(&mut self, out: &mut Vec<C::Op>) -> usize {
        let mut n = 0;
        while let Some(front) = self.entries.front() {
            match front {
                Entry::Op(c) if c.is_done() => {}
                Entry::Skipped(0) => {}
                _ => break,
            }
            if let Some(Entry::Op(c)) = self.entries.pop_front() {
                out.push(c.into_op());
            }
            self.awaiting = self.awaiting.saturating_sub(1);
            n += 1;
        }
        n
    }

    /// Events were lost: every entry goes. Operations already complete
    /// behind ones in flight (commands that asked for no reply) still go
    /// to `out`; returns how many commands were in flight.
    pub(crate) fn drop_all(&mut self, out: &mut Vec<C::Op>) -> u64 {
        let mut dropped = 0;
        for entry in self.entries.drain(..) {
            match entry {
                Entry::Op(c) if c.is_done() => out.push(c.into_op()),
                Entry::Op(_) => dropped += 1,
                Entry::Skipped(n) => dropped += n,
                Entry::Unknown => {}
            }
        }
        self.awaiting = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command: its number, and whether it was answered (or needs no answer).
    #[derive(Debug)]
    struct Cmd(u32, bool);

    impl Command for Cmd {
        type Op = u32;

        fn awaits_reply(&self) -> bool {
            !self.1
        }

        fn is_done(&self) -> bool {
            self.1
        }

        fn into_op(self) -> u32 {
            self.0
        }
    }

    fn answer(q: &mut InFlight<Cmd>) {
        match &mut q.entries[q.awaiting] {
            Entry::Op(c) => c.1 = true,
            Entry::Skipped(n) => *n -= 1,
            Entry::Unknown => unreachable!(),
        }
        if !matches!(q.entries[q.awaiting], Entry::Skipped(n) if n > 0) {
            q.answered();
        }
    }

    #[test]
    fn hands_out_in_order_and_counts_commands_past_the_limit() {
        let mut q = InFlight::new(3);
        let mut out = Vec::new();
        assert_eq!(q.push(Cmd(1, false)), 0);
        // A command needing no reply behind one awaiting: awaiting stays.
        assert_eq!(q.push(Cmd(2, true)), 0);
        assert_eq!(q.awaiting, 0);
        assert_eq!(q.push(Cmd(3, false)), 0);
        // Full: a noreply command is forgotten, others are counted and
        // keep their place for a reply.
        assert_eq!((q.push(Cmd(4, true)), q.push(Cmd(5, false)), q.push(Cmd(6, false))), (1, 1, 1));
        assert!(matches!(q.entries.back(), Some(Entry::Skipped(2))));
        assert_eq!(q.drain(&mut out), 0);
        answer(&mut q);
        assert_eq!(q.awaiting, 2, "past the noreply command");
        assert_eq!(q.drain(&mut out), 2);
        assert_eq!((out.as_slice(), q.awaiting), (&[1, 2][..], 0));
        answer(&mut q);
        answer(&mut q);
        answer(&mut q);
        assert_eq!(q.drain(&mut out), 2);
        assert_eq!(out, [1, 2, 3]);
        assert!(q.entries.is_empty());
    }

    #[test]
    fn unknown_runs_are_one_entry_and_drop_all_counts_in_flight() {
        let mut q = InFlight::new(8);
        q.push(Cmd(1, false));
        q.push_unknown();
        q.push_unknown();
        assert_eq!(q.entries.len(), 2);
        q.push(Cmd(2, true));
        assert!(q.remove_unknown());
        assert!(!q.remove_unknown());
        q.push(Cmd(3, false));
        let mut out = Vec::new();
        // The noreply command behind one in flight is still handed out.
        assert_eq!(q.drop_all(&mut out), 2);
        assert_eq!((out, q.awaiting, q.entries.len()), (vec![2], 0, 0));
    }

    #[test]
    fn closing_and_ending_a_lost_stretch_leave_nothing_awaiting() {
        let mut q = InFlight::new(2);
        q.push(Cmd(1, true));
        q.push(Cmd(2, false));
        q.push(Cmd(3, false));
        q.push_unknown();
        q.close_all();
        assert!(q.entries.iter().all(|e| matches!(e, Entry::Op(_))));
        assert_eq!((q.entries.len(), q.awaiting), (2, 2));
        let mut q = InFlight::new(1);
        q.push(Cmd(1, false));
        q.push(Cmd(2, false));
        q.push_unknown();
        if let Some(Entry::Skipped(n)) = q.entries.get_mut(1) {
            *n = 0;
        }
        q.end_unframed();
        assert_eq!(q.entries.len(), 1);
        assert!(matches!(q.entries[0], Entry::Op(Cmd(1, false))));
        assert_eq!(q.awaiting, 1);
    }
}
