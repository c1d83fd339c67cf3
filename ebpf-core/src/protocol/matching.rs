//! Requests waiting for their responses, matched first-in-first-out
//! (HTTP/1, Redis, PostgreSQL, MySQL, memcached) or by an id the protocol
//! carries (HTTP/2 stream id, Kafka correlation id, MongoDB requestID, MQTT
//! packet id). Both are bounded: a peer that sends requests without end
//! (or responses we never see) cannot grow memory; a full queue refuses
//! the request and the protocol decides (fail the stream, or count it).

use std::collections::VecDeque;

/// The queue was full; the refused item comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full<T>(pub T);

/// Requests in the order they were sent; each response answers the oldest.
#[derive(Debug, Clone)]
pub struct Fifo<T> {
    queue: VecDeque<T>,
    limit: usize,
}

impl<T> Fifo<T> {
    /// A queue holding at most `limit` requests.
    pub fn new(limit: usize) -> Self {
        Self { queue: VecDeque::new(), limit }
    }

    /// Queues a request; refused when `limit` are waiting.
    pub fn push(&mut self, request: T) -> Result<(), Full<T>> {
        if self.queue.len() >= self.limit {
            return Err(Full(request));
        }
        self.queue.push_back(request);
        Ok(())
    }

    /// The request the next response answers.
    pub fn front(&self) -> Option<&T> {
        self.queue.front()
    }

    pub fn front_mut(&mut self) -> Option<&mut T> {
        self.queue.front_mut()
    }

    /// The most recent request (still being sent, for a pipelining client).
    pub fn back_mut(&mut self) -> Option<&mut T> {
        self.queue.back_mut()
    }

    /// A response completed: its request leaves the queue.
    pub fn pop(&mut self) -> Option<T> {
        self.queue.pop_front()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events were lost: every waiting request is dropped (what was lost
    /// could be any part of them). Returns how many, for `Parser::gap`.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue = VecDeque::new();
        n
    }

    /// The connection closed: the unanswered requests, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queue.drain(..)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.queue.iter()
    }
}

/// Requests by the id their response will carry. Lookups scan in the order
/// requests were sent (the oldest is usually answered first), so `limit`
/// should stay in the hundreds.
#[derive(Debug, Clone)]
pub struct ById<K, T> {
    entries: VecDeque<(K, T)>,
    limit: usize,
}

impl<K: PartialEq, T> ById<K, T> {
    pub fn new(limit: usize) -> Self {
        Self { entries: VecDeque::new(), limit }
    }

    /// Adds a request under `id`. An id still waiting is reused by the peer
    /// (its response was lost, or never comes): the old request comes back
    /// as `Ok(Some(old))`, for the protocol to report unanswered. Refused
    /// when `limit` requests are waiting.
    pub fn insert(&mut self, id: K, request: T) -> Result<Option<T>, Full<(K, T)>> {
        if let Some(i) = self.entries.iter().position(|(k, _)| *k == id) {
            let (_, old) = self.entries.remove(i).expect("found");
            self.entries.push_back((id, request));
            return Ok(Some(old));
        }
        if self.entries.len() >= self.limit {
            return Err(Full((id, request)));
        }
        self.entries.push_back((id, request));
        Ok(None)
    }

    /// The request `id` answers, leaving the table.
    pub fn take(&mut self, id: &K) -> Option<T> {
        let i = self.entries.iter().position(|(k, _)| k == id)?;
        self.entries.remove(i).map(|(_, t)| t)
    }

    /// The request `id`, staying (a response in several parts).
    pub fn get_mut(&mut self, id: &K) -> Option<&mut T> {
        self.entries.iter_mut().find(|(k, _)| k == id).map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Events were lost: every waiting request is dropped. Returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.entries.len();
        self.entries = VecDeque::new();
        n
    }

    /// The connection closed: the unanswered requests, in the order sent.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, T)> + '_ {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_answers_the_oldest_and_is_bounded() {
        let mut q = Fifo::new(2);
        q.push("a").unwrap();
        q.push("b").unwrap();
        assert_eq!(q.push("c"), Err(Full("c")));
        assert_eq!(q.front(), Some(&"a"));
        assert_eq!(q.pop(), Some("a"));
        q.push("c").unwrap();
        assert_eq!(q.drain().collect::<Vec<_>>(), ["b", "c"]);
        q.push("d").unwrap();
        assert_eq!(q.clear(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn by_id_matches_out_of_order_and_reports_reused_ids() {
        let mut t = ById::new(3);
        assert_eq!(t.insert(1, "a"), Ok(None));
        assert_eq!(t.insert(3, "b"), Ok(None));
        assert_eq!(t.insert(5, "c"), Ok(None));
        assert_eq!(t.insert(7, "d"), Err(Full((7, "d"))));
        assert_eq!(t.take(&3), Some("b"));
        assert_eq!(t.take(&3), None);
        *t.get_mut(&5).unwrap() = "c2";
        // Id 1 again before its response: the first request was never answered.
        assert_eq!(t.insert(1, "e"), Ok(Some("a")));
        assert_eq!(t.drain().collect::<Vec<_>>(), [(5, "c2"), (1, "e")]);
        t.insert(9, "f").unwrap();
        assert_eq!(t.clear(), 1);
        assert!(t.is_empty());
    }
}
