//! Collects spans per process and cuts a batch when it holds `max_spans`
//! spans or its oldest span has waited `timeout`.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rustc_hash::FxHashMap;

use crate::otlp::{wire, HostInfo, TracesEncoder};
use crate::process::ProcessIdentity;

use super::{Batch, Signal};

/// Span buffers kept for reuse after a batch is cut, and the largest kept.
const SPARE_BUFFERS: usize = 4;
const SPARE_MAX_BYTES: usize = 512 << 10;

/// The pending spans of one process, already encoded.
#[derive(Debug)]
struct Group {
    process: Arc<ProcessIdentity>,
    /// Room for the request's head (`TracesEncoder::group_head`), then
    /// `ScopeSpans.spans` fields: key, length, `Span` message, one after
    /// another. A batch of this group alone whose head is exactly `head`
    /// bytes long is cut in place, its spans never copied.
    spans: Vec<u8>,
    head: usize,
}

#[derive(Debug)]
pub struct SpanBatcher {
    max_spans: usize,
    timeout: Duration,
    host: HostInfo,
    /// Pending spans by pid (index into `groups`, in order of first span).
    index: FxHashMap<u32, usize>,
    groups: Vec<Group>,
    spare: Vec<Vec<u8>>,
    encoder: TracesEncoder,
    /// The length prefix of a span whose length is not two varint bytes.
    prefix: Vec<u8>,
    /// Formatted attribute values of the span being written.
    scratch: String,
    count: usize,
    oldest: Option<Instant>,
    /// The head of the last batch of one group: the room a new group leaves
    /// (the head's length changes only with its varints' sizes).
    expected_head: usize,
    /// What a new batch's first group reserves: the last batch cut in
    /// place, and an eighth more, so that it grows without moving.
    expected_bytes: usize,
    /// The head of a batch being cut.
    head: Vec<u8>,
}

impl SpanBatcher {
    pub fn new(max_spans: usize, timeout: Duration, host: HostInfo) -> Self {
        Self {
            max_spans,
            timeout,
            host,
            index: FxHashMap::default(),
            groups: Vec::new(),
            spare: Vec::new(),
            encoder: TracesEncoder::new(),
            prefix: Vec::new(),
            scratch: String::new(),
            count: 0,
            oldest: None,
            expected_head: 0,
            expected_bytes: 0,
            head: Vec::new(),
        }
    }

    /// Adds a span; returns a batch when this one filled it.
    pub fn push(&mut self, process: &Arc<ProcessIdentity>, span: Span, now: Instant) -> Option<Batch> {
        self.push_with(process, now, |buf, _| span.encode_raw(buf))
    }

    /// Adds the span `write` encodes (the fields of a `Span` message, e.g.
    /// `crate::spans::write_http_span`, appended to the buffer it is given;
    /// the `String` is scratch space for it); returns a batch when this one
    /// filled it.
    pub fn push_with(
        &mut self,
        process: &Arc<ProcessIdentity>,
        now: Instant,
        write: impl FnOnce(&mut Vec<u8>, &mut String),
    ) -> Option<Batch> {
        let group = match self.index.entry(process.pid) {
            // The same pid after an exec() is another program with an
            // identity of its own: its spans start a group (a resource) of
            // their own rather than joining the old program's.
            Entry::Occupied(mut e) if !Arc::ptr_eq(&self.groups[*e.get()].process, process) => {
                self.groups.push(new_group(process, &mut self.spare, self.expected_head, 0));
                e.insert(self.groups.len() - 1);
                self.groups.len() - 1
            }
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                // Only a batch's first group can be cut in place: only it
                // reserves the room a whole batch takes.
                let reserve = if self.groups.is_empty() { self.expected_bytes } else { 0 };
                self.groups.push(new_group(process, &mut self.spare, self.expected_head, reserve));
                *e.insert(self.groups.len() - 1)
            }
        };
        // Written in place after its key and a two-byte length, filled in
        // once it is known: a span is 128 bytes to 16 KiB long nearly always.
        let spans = &mut self.groups[group].spans;
        let start = spans.len();
        spans.extend_from_slice(&[2 << 3 | 2, 0x80, 0]);
        write(spans, &mut self.scratch);
        let len = spans.len() - start - 3;
        if (0x80..0x4000).contains(&len) {
            spans[start + 1] = (len as u8) | 0x80;
            spans[start + 2] = (len >> 7) as u8;
        } else {
            self.prefix.clear();
            wire::len_prefix(&mut self.prefix, 2, len);
            spans.splice(start..start + 3, self.prefix.iter().copied());
        }
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
        let data = match self.in_place() {
            Some(data) => data,
            None => self.encoder.encode(self.groups.iter().map(|g| (&*g.process, &g.spans[g.head..])), &self.host),
        };
        self.index.clear();
        for Group { mut spans, .. } in self.groups.drain(..) {
            // (A buffer cut in place left as the batch: nothing to keep.)
            if self.spare.len() < SPARE_BUFFERS && spans.capacity() <= SPARE_MAX_BYTES && spans.capacity() > 0 {
                spans.clear();
                self.spare.push(spans);
            }
        }
        Some(Batch { signal: Signal::Traces, data, items })
    }

    /// The request of a batch of one group, written into its room (when its
    /// head fits it exactly): the group's buffer becomes the batch.
    fn in_place(&mut self) -> Option<Vec<u8>> {
        let [group] = self.groups.as_mut_slice() else { return None };
        self.head.clear();
        self.encoder.group_head(&group.process, &self.host, group.spans.len() - group.head, &mut self.head);
        self.expected_head = self.head.len();
        if self.head.len() != group.head {
            return None;
        }
        group.spans[..group.head].copy_from_slice(&self.head);
        let mut data = std::mem::take(&mut group.spans);
        self.expected_bytes = data.len() + data.len() / 8;
        // A batch much smaller than the one before: its room is not held
        // while the batch waits for the host.
        if data.capacity() > 2 * data.len() {
            data.shrink_to_fit();
        }
        Some(data)
    }
}

/// A group for `process`'s spans, with `head` bytes of room in front and
/// room for `reserve` bytes in all.
fn new_group(process: &Arc<ProcessIdentity>, spare: &mut Vec<Vec<u8>>, head: usize, reserve: usize) -> Group {
    let mut spans = spare.pop().unwrap_or_default();
    spans.reserve(reserve.max(head));
    spans.resize(head, 0);
    Group { process: process.clone(), spans, head }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::encode_traces;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
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
        let p1 = proc(1);
        assert!(b.push(&p1, Span::default(), now).is_none());
        assert!(b.push(&proc(2), Span::default(), now).is_none());
        let batch = b.push(&p1, Span::default(), now).expect("full batch");
        assert_eq!(batch.items, 3);
        let req = ExportTraceServiceRequest::decode(batch.data.as_slice()).unwrap();
        let mut sizes: Vec<usize> = req.resource_spans.iter().map(|r| r.scope_spans[0].spans.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 2]);
        assert!(b.flush().is_none());
    }

    /// A pid that exec()ed is another program: the spans after the exec go
    /// under the new identity, not the old one's resource.
    #[test]
    fn a_new_identity_of_the_same_pid_gets_its_own_resource() {
        let mut b = SpanBatcher::new(100, Duration::from_secs(60), host());
        let now = Instant::now();
        let before = proc(7);
        let after = Arc::new(ProcessIdentity { service_name: "curl".into(), ..(*before).clone() });
        b.push(&before, Span { name: "before".into(), ..Default::default() }, now);
        b.push(&after, Span { name: "after".into(), ..Default::default() }, now);
        b.push(&after, Span { name: "after".into(), ..Default::default() }, now);
        let req = ExportTraceServiceRequest::decode(b.flush().unwrap().data.as_slice()).unwrap();
        let by_service: Vec<(String, Vec<String>)> = req
            .resource_spans
            .iter()
            .map(|r| {
                let svc = r.resource.as_ref().unwrap().attributes.iter().find(|a| a.key == "service.name").unwrap();
                let Some(Value::StringValue(name)) = svc.value.as_ref().unwrap().value.clone() else { panic!() };
                (name, r.scope_spans[0].spans.iter().map(|s| s.name.clone()).collect())
            })
            .collect();
        assert_eq!(
            by_service,
            vec![("svc7".into(), vec!["before".into()]), ("curl".into(), vec!["after".into(), "after".into()])]
        );
    }

    /// Spans encoded on the way in give the bytes `encode_traces` gives.
    #[test]
    fn same_bytes_as_encode_traces() {
        use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
        let span = |n: u8| Span {
            name: format!("GET /{n}"),
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            kind: 2,
            start_time_unix_nano: 5,
            end_time_unix_nano: 6,
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue { value: Some(Value::StringValue("v".repeat(usize::from(n) * 40))) }),
                ..Default::default()
            }],
            status: Some(Default::default()),
            ..Default::default()
        };
        let mut b = SpanBatcher::new(100, Duration::from_secs(60), host());
        let now = Instant::now();
        let (p1, p2) = (proc(1), proc(2));
        for n in 0..6u8 {
            b.push(if n % 3 == 0 { &p2 } else { &p1 }, span(n), now);
        }
        let got = b.flush().unwrap();
        let expected =
            encode_traces([(&*p2, vec![span(0), span(3)]), (&*p1, vec![span(1), span(2), span(4), span(5)])], &host());
        assert_eq!(got.data, expected);
        assert_eq!(got.items, 6);
        // Buffers are reused for the next batch, which holds only its own spans.
        b.push(&p1, span(7), now);
        let expected = encode_traces([(&*p1, vec![span(7)])], &host());
        assert_eq!(b.flush().unwrap().data, expected);
        // Spans whose length is not two varint bytes: under 128, over 16 KiB.
        let huge = Span {
            name: "big".into(),
            attributes: vec![crate::spans::str_attr("k", "v".repeat(20_000))],
            ..Default::default()
        };
        for spans in [vec![Span::default(), huge.clone(), span(0)], vec![huge.clone()], vec![Span::default()]] {
            for s in &spans {
                b.push(&p1, s.clone(), now);
            }
            assert_eq!(b.flush().unwrap().data, encode_traces([(&*p1, spans)], &host()));
        }
    }

    /// Batches of one process are cut in their group's buffer, as long as
    /// their head fits its room; the bytes are `encode_traces`' either way,
    /// across the sizes where the head's lengths gain a varint byte.
    #[test]
    fn cut_in_place_gives_the_same_bytes() {
        let span = |n: usize| Span {
            name: "GET".into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![crate::spans::str_attr("k", "v".repeat(n % 7 * 10))],
            ..Default::default()
        };
        let mut b = SpanBatcher::new(10_000, Duration::from_secs(60), host());
        let now = Instant::now();
        let p = proc(1);
        let mut in_place = 0;
        for count in [1, 1, 2, 40, 40, 300, 300, 2, 2, 20_000, 1, 1] {
            let spans: Vec<Span> = (0..count).map(span).collect();
            let mut cut = Vec::new();
            for s in &spans {
                cut.extend(b.push(&p, s.clone(), now));
            }
            let buffer = b.groups.first().map(|g| g.spans.as_ptr());
            cut.extend(b.flush());
            let mut expected = Vec::new();
            for chunk in spans.chunks(10_000) {
                expected.push(encode_traces([(&*p, chunk.to_vec())], &host()));
            }
            assert_eq!(cut.iter().map(|b| &b.data).collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());
            in_place += usize::from(buffer == cut.last().map(|b| b.data.as_ptr()));
        }
        assert!(in_place >= 5, "{in_place}");
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
