//! Collects spans per process and cuts a batch when it holds `max_spans`
//! spans or its oldest span has waited `timeout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;

use crate::otlp::{encode_traces, HostInfo};
use crate::process::ProcessIdentity;

use super::{Batch, Signal};

#[derive(Debug)]
pub struct SpanBatcher {
    max_spans: usize,
    timeout: Duration,
    host: HostInfo,
    groups: HashMap<u32, (Arc<ProcessIdentity>, Vec<Span>)>,
    count: usize,
    oldest: Option<Instant>,
}

impl SpanBatcher {
    pub fn new(max_spans: usize, timeout: Duration, host: HostInfo) -> Self {
        Self { max_spans, timeout, host, groups: HashMap::new(), count: 0, oldest: None }
    }

    /// Adds a span; returns a batch when this one filled it.
    pub fn push(&mut self, process: &Arc<ProcessIdentity>, span: Span, now: Instant) -> Option<Batch> {
        self.groups.entry(process.pid).or_insert_with(|| (process.clone(), Vec::new())).1.push(span);
        self.count += 1;
        self.oldest.get_or_insert(now);
        (self.count >= self.max_spans).then(|| self.flush()).flatten()
    }

    /// Returns a batch when the oldest pending span has waited long enough.
    pub fn tick(&mut self, now: Instant) -> Option<Batch> {
        match self.oldest {
            Some(t) if now.duration_since(t) >= self.timeout => self.flush(),
            _ => None,
        }
    }

    /// How long until `tick` would cut a batch (None: nothing pending).
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        self.oldest.map(|t| self.timeout.saturating_sub(now.duration_since(t)))
    }

    /// Cuts a batch of everything pending, if anything is.
    pub fn flush(&mut self) -> Option<Batch> {
        if self.count == 0 {
            return None;
        }
        let items = std::mem::take(&mut self.count);
        self.oldest = None;
        let groups = std::mem::take(&mut self.groups);
        let data = encode_traces(groups.into_values(), &self.host);
        Some(Batch { signal: Signal::Traces, data, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    fn proc(pid: u32) -> Arc<ProcessIdentity> {
        Arc::new(ProcessIdentity {
            pid,
            service_name: format!("svc{pid}"),
            executable_name: "x".into(),
            executable_path: None,
            ..Default::default()
        })
    }

    fn host() -> HostInfo {
        HostInfo { host_name: "h".into(), ..Default::default() }
    }

    #[test]
    fn cuts_by_size_and_groups_by_process() {
        let mut b = SpanBatcher::new(3, Duration::from_secs(60), host());
        let now = Instant::now();
        assert!(b.push(&proc(1), Span::default(), now).is_none());
        assert!(b.push(&proc(2), Span::default(), now).is_none());
        let batch = b.push(&proc(1), Span::default(), now).expect("full batch");
        assert_eq!(batch.items, 3);
        let req = ExportTraceServiceRequest::decode(batch.data.as_slice()).unwrap();
        let mut sizes: Vec<usize> = req.resource_spans.iter().map(|r| r.scope_spans[0].spans.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 2]);
        assert!(b.flush().is_none());
    }

    #[test]
    fn cuts_by_time() {
        let mut b = SpanBatcher::new(100, Duration::from_millis(500), host());
        let t0 = Instant::now();
        assert!(b.tick(t0).is_none());
        b.push(&proc(1), Span::default(), t0);
        assert_eq!(b.time_left(t0), Some(Duration::from_millis(500)));
        assert!(b.tick(t0 + Duration::from_millis(499)).is_none());
        assert_eq!(b.tick(t0 + Duration::from_millis(500)).unwrap().items, 1);
        assert!(b.time_left(t0).is_none());
    }
}
