//! The Kafka APIs this decoder reads, their flexible versions, and what it
//! takes from their request and response bodies: topics, partition, group,
//! record counts, error codes. Bodies are read as far as they were
//! captured; whatever was not seen stays unknown.

use compact_str::CompactString;

use super::wire::{Reader, MAX_NAME};
use crate::protocol::lenframe::Body;

/// A Kafka API, by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    OffsetCommit,
    OffsetFetch,
    FindCoordinator,
    JoinGroup,
    Heartbeat,
    LeaveGroup,
    SyncGroup,
    ApiVersions,
    InitProducerId,
    /// Another API: only its key and the request/response pairing are known.
    Other(i16),
}

impl Api {
    pub fn from_key(key: i16) -> Api {
        match key {
            0 => Api::Produce,
            1 => Api::Fetch,
            2 => Api::ListOffsets,
            3 => Api::Metadata,
            8 => Api::OffsetCommit,
            9 => Api::OffsetFetch,
            10 => Api::FindCoordinator,
            11 => Api::JoinGroup,
            12 => Api::Heartbeat,
            13 => Api::LeaveGroup,
            14 => Api::SyncGroup,
            18 => Api::ApiVersions,
            22 => Api::InitProducerId,
            k => Api::Other(k),
        }
    }

    /// The API's name in the protocol documentation (`Produce`, `Fetch`,
    /// `JoinGroup`, `PushTelemetry`); `None` for keys newer than this table.
    pub fn name(self) -> Option<&'static str> {
        let key = match self {
            Api::Produce => 0,
            Api::Fetch => 1,
            Api::ListOffsets => 2,
            Api::Metadata => 3,
            Api::OffsetCommit => 8,
            Api::OffsetFetch => 9,
            Api::FindCoordinator => 10,
            Api::JoinGroup => 11,
            Api::Heartbeat => 12,
            Api::LeaveGroup => 13,
            Api::SyncGroup => 14,
            Api::ApiVersions => 18,
            Api::InitProducerId => 22,
            Api::Other(k) => k,
        };
        usize::try_from(key).ok().and_then(|k| API_NAMES.get(k)).copied()
    }

    /// The first flexible version (compact encodings, tagged fields), for
    /// the APIs whose bodies are read.
    fn first_flexible(self) -> Option<i16> {
        Some(match self {
            Api::Produce => 9,
            Api::Fetch => 12,
            Api::ListOffsets => 6,
            Api::Metadata => 9,
            Api::OffsetCommit => 8,
            Api::OffsetFetch => 6,
            Api::FindCoordinator => 3,
            Api::JoinGroup => 6,
            Api::Heartbeat => 4,
            Api::LeaveGroup => 4,
            Api::SyncGroup => 4,
            Api::ApiVersions => 3,
            Api::InitProducerId => 2,
            Api::Other(_) => return None,
        })
    }

    /// Whether `version` uses the flexible encoding; `None` when unknown.
    pub(super) fn flexible(self, version: i16) -> Option<bool> {
        self.first_flexible().map(|f| version >= f)
    }
}

/// Every API's name by key, as the protocol documentation (and Kafka's
/// message definitions) spell them, through Kafka 4.1.
const API_NAMES: [&str; 93] = [
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "Vote",
    "BeginQuorumEpoch",
    "EndQuorumEpoch",
    "DescribeQuorum",
    "AlterPartition",
    "UpdateFeatures",
    "Envelope",
    "FetchSnapshot",
    "DescribeCluster",
    "DescribeProducers",
    "BrokerRegistration",
    "BrokerHeartbeat",
    "UnregisterBroker",
    "DescribeTransactions",
    "ListTransactions",
    "AllocateProducerIds",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "ControllerRegistration",
    "GetTelemetrySubscriptions",
    "PushTelemetry",
    "AssignReplicasToDirs",
    "ListConfigResources",
    "DescribeTopicPartitions",
    "ShareGroupHeartbeat",
    "ShareGroupDescribe",
    "ShareFetch",
    "ShareAcknowledge",
    "AddRaftVoter",
    "RemoveRaftVoter",
    "UpdateRaftVoter",
    "InitializeShareGroupState",
    "ReadShareGroupState",
    "WriteShareGroupState",
    "DeleteShareGroupState",
    "ReadShareGroupStateSummary",
    "StreamsGroupHeartbeat",
    "StreamsGroupDescribe",
    "DescribeShareGroupOffsets",
    "AlterShareGroupOffsets",
    "DeleteShareGroupOffsets",
];

/// The highest API key Kafka defines (share groups, 4.x), with margin.
pub(super) const MAX_API_KEY: i16 = 100;
/// The highest version any API has, with margin.
pub(super) const MAX_API_VERSION: i16 = 30;

/// A topic as a request or response names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Name(CompactString),
    /// Produce v13+ and Fetch v13+ name topics by ID.
    Id([u8; 16]),
}

/// The topics an operation involves, as far as seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Topics {
    pub first: Option<TopicRef>,
    /// How many topics the request or response lists (its array length).
    pub count: u32,
    /// The partition, when exactly one partition of one topic is involved.
    pub partition: Option<i32>,
    /// Records in the record batches, when every batch header was seen.
    pub records: Option<u64>,
}

/// What a request says.
#[derive(Debug, Clone, Default)]
pub(super) struct RequestInfo {
    pub topics: Topics,
    pub group: Option<CompactString>,
    /// Produce: `acks` (0: the broker sends no response).
    pub acks: Option<i16>,
}

/// What a response says.
#[derive(Debug, Clone, Default)]
pub(super) struct ResponseInfo {
    pub topics: Topics,
    /// The first non-zero error code seen.
    pub error: Option<i16>,
    /// Every error code the response carries was seen.
    pub complete: bool,
    /// Metadata: topic IDs and names learned.
    pub learned: Vec<([u8; 16], CompactString)>,
}

/// A topic name as Kafka allows them (`[a-zA-Z0-9._-]`, 1..=249): anything
/// else is not kept (it could only come from misframed bytes).
fn topic_name(b: Option<&[u8]>) -> Option<CompactString> {
    let b = b?;
    let ok = !b.is_empty() && b.len() <= 249 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
    ok.then(|| CompactString::from_utf8_lossy(b))
}

/// A group id or client id: printable UTF-8 only.
pub(super) fn label(b: Option<&[u8]>) -> Option<CompactString> {
    let s = std::str::from_utf8(b?).ok()?;
    (!s.is_empty() && !s.chars().any(char::is_control)).then(|| CompactString::from(s))
}

fn read_topic(r: &mut Reader<'_>, by_id: bool) -> Option<TopicRef> {
    if by_id {
        r.uuid().map(TopicRef::Id)
    } else {
        r.string(MAX_NAME).map(topic_name).and_then(|n| n.map(TopicRef::Name))
    }
}

/// Decodes a request body after its header (`pos`).
pub(super) fn request(api: Api, version: i16, body: &Body, pos: u64, flex: bool) -> RequestInfo {
    let mut info = RequestInfo::default();
    let mut r = Reader::new(body, pos, flex);
    let _ = match api {
        Api::Produce => produce_request(&mut r, version, &mut info),
        Api::Fetch => fetch_request(&mut r, version, &mut info),
        Api::JoinGroup | Api::SyncGroup | Api::Heartbeat | Api::LeaveGroup | Api::OffsetCommit => {
            info.group = r.string(MAX_NAME).and_then(label);
            if api == Api::OffsetCommit {
                offset_commit_request(&mut r, version, &mut info);
            }
            Some(())
        }
        Api::OffsetFetch if version >= 8 => {
            // Several groups at once: the first one's id.
            if r.array().flatten().unwrap_or(0) > 0 {
                info.group = r.string(MAX_NAME).and_then(label);
            }
            Some(())
        }
        Api::OffsetFetch => {
            info.group = r.string(MAX_NAME).and_then(label);
            Some(())
        }
        Api::FindCoordinator => {
            // v0-3: one key (then its type, v1+); v4+: the type, then keys.
            if version >= 4 {
                let key_type = r.i8();
                if key_type == Some(0) && r.array().flatten().unwrap_or(0) > 0 {
                    info.group = r.string(MAX_NAME).and_then(label);
                }
            } else {
                let key = r.string(MAX_NAME).and_then(label);
                let key_type = if version >= 1 { r.i8() } else { Some(0) };
                if key_type == Some(0) {
                    info.group = key;
                }
            }
            Some(())
        }
        Api::Metadata => metadata_request(&mut r, version, &mut info),
        _ => Some(()),
    };
    info
}

fn produce_request(r: &mut Reader<'_>, version: i16, info: &mut RequestInfo) -> Option<()> {
    if version >= 3 {
        r.skip_string()?; // transactional_id
    }
    info.acks = Some(r.i16()?);
    r.i32()?; // timeout
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    let mut total = Some(0u64);
    let mut partitions = 0u32;
    for t in 0..n {
        let topic = read_topic(r, version >= 13);
        if topic.is_none() {
            total = None;
            // The rest cannot be walked without the topic's length.
            if t == 0 {
                return None;
            }
            break;
        }
        if t == 0 {
            info.topics.first = topic;
        }
        let np = r.array()?.unwrap_or(0);
        for _ in 0..np {
            partitions += 1;
            let index = r.i32()?;
            if partitions == 1 {
                info.topics.partition = Some(index);
            }
            let len = r.bytes_len()?.unwrap_or(0);
            let start = r.pos;
            total = total.and_then(|t| Some(t + count_records(r, start, len, false)?));
            r.pos = start;
            r.skip(len)?;
            r.tags()?;
        }
        r.tags()?;
    }
    if partitions != 1 || n != 1 {
        info.topics.partition = None;
    }
    info.topics.records = total.filter(|_| partitions > 0);
    Some(())
}

/// Records in a records field (`len` bytes at `start`): the sum of the
/// record batches' counts, when every batch header was captured and the
/// batches tile the field. In a Fetch response the last batch may be cut
/// by the broker's size limit (`partial_ok`): it is not counted (the
/// client fetches it again). Control batches (transaction markers) hold no
/// messages.
fn count_records(r: &mut Reader<'_>, start: u64, len: u64, partial_ok: bool) -> Option<u64> {
    let end = start.checked_add(len)?;
    let mut off = start;
    let mut n = 0u64;
    while off < end {
        if end - off < 61 {
            return partial_ok.then_some(n);
        }
        r.pos = off + 8;
        let batch_len = r.i32()?;
        r.pos = off + 16;
        let magic = r.i8()?;
        if batch_len < 49 || magic != 2 {
            // Message sets of magic 0/1 (pre-0.11 clients) are not counted.
            return None;
        }
        let next = off + 12 + batch_len as u64;
        if next > end {
            return partial_ok.then_some(n);
        }
        r.pos = off + 21;
        let attributes = r.i16()?;
        r.pos = off + 57;
        let records = r.i32()?;
        if records < 0 {
            return None;
        }
        if attributes & 0x20 == 0 {
            n += records as u64;
        }
        off = next;
    }
    Some(n)
}

fn fetch_request(r: &mut Reader<'_>, version: i16, info: &mut RequestInfo) -> Option<()> {
    if version < 15 {
        r.i32()?; // replica_id
    }
    r.i32()?; // max_wait_ms
    r.i32()?; // min_bytes
    if version >= 3 {
        r.i32()?; // max_bytes
    }
    if version >= 4 {
        r.i8()?; // isolation_level
    }
    if version >= 7 {
        r.i32()?; // session_id
        r.i32()?; // session_epoch
    }
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    if n == 0 {
        return Some(());
    }
    info.topics.first = read_topic(r, version >= 13);
    let np = r.array()?.unwrap_or(0);
    if n == 1 && np == 1 {
        info.topics.partition = Some(r.i32()?);
    }
    Some(())
}

fn offset_commit_request(r: &mut Reader<'_>, version: i16, info: &mut RequestInfo) -> Option<()> {
    if version >= 1 {
        r.i32()?; // generation
        r.skip_string()?; // member_id
    }
    if (2..=4).contains(&version) {
        r.skip(8)?; // retention_time_ms
    }
    if version >= 7 {
        r.skip_string()?; // group_instance_id
    }
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    if n > 0 {
        info.topics.first = read_topic(r, version >= 10);
        let np = r.array()?.unwrap_or(0);
        if n == 1 && np == 1 {
            info.topics.partition = Some(r.i32()?);
        }
    }
    Some(())
}

fn metadata_request(r: &mut Reader<'_>, version: i16, info: &mut RequestInfo) -> Option<()> {
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    if n > 0 {
        if version >= 10 {
            let id = r.uuid()?;
            let name = r.string(MAX_NAME)?;
            info.topics.first = topic_name(name).map(TopicRef::Name).or(Some(TopicRef::Id(id)));
        } else {
            info.topics.first = read_topic(r, false);
        }
    }
    Some(())
}

/// Decodes a response body after its header (`pos`).
pub(super) fn response(api: Api, version: i16, body: &Body, pos: u64, flex: bool) -> ResponseInfo {
    let mut info = ResponseInfo::default();
    let mut r = Reader::new(body, pos, flex);
    let done = match api {
        Api::Produce => produce_response(&mut r, version, &mut info),
        Api::Fetch => fetch_response(&mut r, version, &mut info),
        Api::Metadata => metadata_response(&mut r, version, &mut info),
        Api::ListOffsets => partitions_response(&mut r, version, &mut info, ListOffsetsShape),
        Api::OffsetCommit => partitions_response(&mut r, version, &mut info, OffsetCommitShape),
        Api::OffsetFetch => offset_fetch_response(&mut r, version, &mut info),
        Api::FindCoordinator => find_coordinator_response(&mut r, version, &mut info),
        // ApiVersions: the error code comes first; the others: throttle time first (from a version on).
        Api::ApiVersions => error_code(&mut r, &mut info),
        Api::JoinGroup => throttle_then_error(&mut r, version >= 2, &mut info),
        Api::SyncGroup | Api::Heartbeat | Api::LeaveGroup => throttle_then_error(&mut r, version >= 1, &mut info),
        Api::InitProducerId => throttle_then_error(&mut r, true, &mut info),
        Api::Other(_) => None,
    };
    info.complete = done.is_some();
    info
}

fn error_code(r: &mut Reader<'_>, info: &mut ResponseInfo) -> Option<()> {
    let code = r.i16()?;
    if code != 0 && info.error.is_none() {
        info.error = Some(code);
    }
    Some(())
}

fn throttle_then_error(r: &mut Reader<'_>, throttle: bool, info: &mut ResponseInfo) -> Option<()> {
    if throttle {
        r.i32()?;
    }
    error_code(r, info)
}

/// Counts the topics and partitions of a response for `Topics`.
#[derive(Default)]
struct Tally {
    partitions: u32,
}

impl Tally {
    fn partition(&mut self, info: &mut ResponseInfo, index: i32) {
        self.partitions += 1;
        if self.partitions == 1 {
            info.topics.partition = Some(index);
        }
    }

    fn finish(&self, info: &mut ResponseInfo) {
        if self.partitions != 1 || info.topics.count != 1 {
            info.topics.partition = None;
        }
    }
}

fn produce_response(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo) -> Option<()> {
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    let mut tally = Tally::default();
    for t in 0..n {
        let topic = read_topic(r, version >= 13)?;
        if t == 0 {
            info.topics.first = Some(topic);
        }
        for _ in 0..r.array()?.unwrap_or(0) {
            let index = r.i32()?;
            tally.partition(info, index);
            error_code(r, info)?;
            r.skip(8)?; // base_offset
            if version >= 2 {
                r.skip(8)?; // log_append_time_ms
            }
            if version >= 5 {
                r.skip(8)?; // log_start_offset
            }
            if version >= 8 {
                for _ in 0..r.array()?.unwrap_or(0) {
                    r.i32()?;
                    r.skip_string()?;
                    r.tags()?;
                }
                r.skip_string()?; // error_message
            }
            r.tags()?;
        }
        r.tags()?;
    }
    tally.finish(info);
    Some(())
}

fn fetch_response(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo) -> Option<()> {
    if version >= 1 {
        r.i32()?; // throttle_time_ms
    }
    if version >= 7 {
        error_code(r, info)?;
        r.i32()?; // session_id
    }
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    let mut tally = Tally::default();
    let mut total = Some(0u64);
    let mut result = Some(());
    'topics: for t in 0..n {
        let Some(topic) = read_topic(r, version >= 13) else {
            result = None;
            break;
        };
        if t == 0 {
            info.topics.first = Some(topic);
        }
        let Some(np) = r.array() else {
            result = None;
            break;
        };
        for _ in 0..np.unwrap_or(0) {
            let Some(len) = fetch_partition_head(r, version, info, &mut tally) else {
                result = None;
                break 'topics;
            };
            let start = r.pos;
            total = total.and_then(|t| Some(t + count_records(r, start, len, true)?));
            r.pos = start;
            if r.skip(len).and_then(|_| r.tags()).is_none() {
                result = None;
                break 'topics;
            }
        }
        if r.tags().is_none() {
            result = None;
            break;
        }
    }
    tally.finish(info);
    // Counted only when every partition's records were walked.
    info.topics.records = total.filter(|_| result.is_some());
    result
}

/// A Fetch response partition up to its records; returns their length.
fn fetch_partition_head(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo, tally: &mut Tally) -> Option<u64> {
    let index = r.i32()?;
    tally.partition(info, index);
    error_code(r, info)?;
    r.skip(8)?; // high_watermark
    if version >= 4 {
        r.skip(8)?; // last_stable_offset
    }
    if version >= 5 {
        r.skip(8)?; // log_start_offset
    }
    if version >= 4 {
        for _ in 0..r.array()?.unwrap_or(0) {
            r.skip(16)?; // producer_id, first_offset
            r.tags()?;
        }
    }
    if version >= 11 {
        r.i32()?; // preferred_read_replica
    }
    Some(r.bytes_len()?.unwrap_or(0))
}

fn metadata_response(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo) -> Option<()> {
    if version >= 3 {
        r.i32()?; // throttle_time_ms
    }
    for _ in 0..r.array()?.unwrap_or(0) {
        r.i32()?; // node_id
        r.skip_string()?; // host
        r.i32()?; // port
        if version >= 1 {
            r.skip_string()?; // rack
        }
        r.tags()?;
    }
    if version >= 2 {
        r.skip_string()?; // cluster_id
    }
    if version >= 1 {
        r.i32()?; // controller_id
    }
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    for t in 0..n {
        error_code(r, info)?;
        let name = topic_name(r.string(MAX_NAME)?);
        let id = if version >= 10 { Some(r.uuid()?) } else { None };
        if let (Some(id), Some(name)) = (id, &name) {
            if id != [0; 16] && info.learned.len() < 256 {
                info.learned.push((id, name.clone()));
            }
        }
        if t == 0 {
            info.topics.first = name.map(TopicRef::Name);
        }
        if version >= 1 {
            r.i8()?; // is_internal
        }
        for _ in 0..r.array()?.unwrap_or(0) {
            r.i16()?; // partition error (leader not available while electing: not the call's)
            r.i32()?; // partition_index
            r.i32()?; // leader_id
            if version >= 7 {
                r.i32()?; // leader_epoch
            }
            let arrays = if version >= 5 { 3 } else { 2 };
            for _ in 0..arrays {
                let k = r.array()?.unwrap_or(0);
                r.skip(4 * u64::from(k))?;
            }
            r.tags()?;
        }
        if version >= 8 {
            r.i32()?; // topic_authorized_operations
        }
        r.tags()?;
    }
    Some(())
}

/// Responses shaped `[throttle] topics[name, partitions[index, error, ...]]`.
trait PartitionShape {
    fn throttle(&self, version: i16) -> bool;
    fn by_id(&self, _version: i16) -> bool {
        false
    }
    /// Skips a partition's fields after its error code.
    fn rest(&self, r: &mut Reader<'_>, version: i16) -> Option<()>;
}

struct ListOffsetsShape;
impl PartitionShape for ListOffsetsShape {
    fn throttle(&self, version: i16) -> bool {
        version >= 2
    }
    fn rest(&self, r: &mut Reader<'_>, version: i16) -> Option<()> {
        if version == 0 {
            let k = r.array()?.unwrap_or(0);
            r.skip(8 * u64::from(k))
        } else {
            r.skip(16)?; // timestamp, offset
            if version >= 4 {
                r.i32()?; // leader_epoch
            }
            Some(())
        }
    }
}

struct OffsetCommitShape;
impl PartitionShape for OffsetCommitShape {
    fn throttle(&self, version: i16) -> bool {
        version >= 3
    }
    fn by_id(&self, version: i16) -> bool {
        version >= 10
    }
    fn rest(&self, _: &mut Reader<'_>, _: i16) -> Option<()> {
        Some(())
    }
}

fn partitions_response(
    r: &mut Reader<'_>,
    version: i16,
    info: &mut ResponseInfo,
    shape: impl PartitionShape,
) -> Option<()> {
    if shape.throttle(version) {
        r.i32()?;
    }
    let n = r.array()?.unwrap_or(0);
    info.topics.count = n;
    let mut tally = Tally::default();
    for t in 0..n {
        let topic = read_topic(r, shape.by_id(version))?;
        if t == 0 {
            info.topics.first = Some(topic);
        }
        for _ in 0..r.array()?.unwrap_or(0) {
            let index = r.i32()?;
            tally.partition(info, index);
            error_code(r, info)?;
            shape.rest(r, version)?;
            r.tags()?;
        }
        r.tags()?;
    }
    tally.finish(info);
    Some(())
}

fn offset_fetch_response(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo) -> Option<()> {
    if version >= 3 {
        r.i32()?; // throttle_time_ms
    }
    let groups = if version >= 8 { r.array()?.unwrap_or(0) } else { 1 };
    for _ in 0..groups {
        if version >= 8 {
            r.skip_string()?; // group_id
        }
        let n = r.array()?.unwrap_or(0);
        info.topics.count += n;
        for t in 0..n {
            let topic = read_topic(r, version >= 10)?;
            if t == 0 && info.topics.first.is_none() {
                info.topics.first = Some(topic);
            }
            for _ in 0..r.array()?.unwrap_or(0) {
                r.i32()?; // partition_index
                r.skip(8)?; // committed_offset
                if version >= 5 {
                    r.i32()?; // committed_leader_epoch
                }
                r.skip_string()?; // metadata
                error_code(r, info)?;
                r.tags()?;
            }
            r.tags()?;
        }
        if version >= 2 {
            error_code(r, info)?;
        }
        if version >= 8 {
            r.tags()?;
        }
    }
    Some(())
}

fn find_coordinator_response(r: &mut Reader<'_>, version: i16, info: &mut ResponseInfo) -> Option<()> {
    if version >= 1 {
        r.i32()?; // throttle_time_ms
    }
    if version < 4 {
        return error_code(r, info);
    }
    for _ in 0..r.array()?.unwrap_or(0) {
        r.skip_string()?; // key
        r.i32()?; // node_id
        r.skip_string()?; // host
        r.i32()?; // port
        error_code(r, info)?;
        r.skip_string()?; // error_message
        r.tags()?;
    }
    Some(())
}
