//! [`ScriptedClient`]: a small in-memory [`kafka_net::Client`] whose state and answers
//! a test sets (the idea of optiopay's `kafkatest`), for code that needs a client that
//! behaves plausibly rather than one expectation per call (for that, see
//! [`crate::mock::MockClient`]; for the real wire protocol, see [`crate::FakeCluster`]).
//!
//! - Topics live in memory: `create_topics`, `delete_topics`, `create_partitions` and
//!   `partition_count` act on them, with the broker's error codes
//!   (TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, ...).
//! - Each partition has an earliest and a latest offset ([`ScriptedClient::set_offsets`])
//!   and a timestamp index ([`ScriptedClient::append`],
//!   [`ScriptedClient::set_timestamp_index`]) that `offsets_for_times` searches.
//! - Errors by API key: [`ScriptedClient::fail_next`] fails the next call of that API,
//!   [`ScriptedClient::fail_always`] every call until [`ScriptedClient::clear_failures`].
//! - `send` and `send_to` answer with the function set for the request's API key by
//!   [`ScriptedClient::respond_with`].
//! - Every trait call is logged as a [`Call`] ([`ScriptedClient::calls`]).
//!
//! The client is `Send + Sync` and clones share one state, so a test keeps a clone to
//! script and inspect while the code under test holds another (as `Arc<dyn Client>`,
//! say). Setup helpers panic on a topic or partition that does not exist: that is a
//! bug in the test, not a behaviour of the client.
//!
//! ```
//! use kafka_net::{Client, Error, ErrorKind};
//! use kafka_protocol::{ApiKey, ErrorCode};
//! use kafka_test::scripted::ScriptedClient;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = ScriptedClient::new().with_topic("orders", 2);
//! client.set_offsets("orders", 1, 5, 42);
//! client.fail_next(
//!     ApiKey::ListOffsets,
//!     Error::new(ErrorKind::Broker { code: ErrorCode::NotLeaderOrFollower, message: None }),
//! );
//! assert!(client.offset_latest("orders", 1).await.is_err());
//! assert_eq!(client.offset_latest("orders", 1).await.ok(), Some(42));
//! # }
//! ```

use async_trait::async_trait;
use kafka_net::{
    Client, ClusterMetadata, Error, ErrorKind, MetricsSnapshot, NewTopic, Result, TimestampOffset,
};
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Partitions of a topic created with `partitions: -1` (Kafka's `num.partitions`
/// default).
pub const DEFAULT_PARTITIONS: i32 = 1;

/// One call of a [`Client`] method on a [`ScriptedClient`], with its arguments.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Call {
    /// [`Client::metadata`].
    Metadata,
    /// [`Client::refresh_metadata`].
    RefreshMetadata,
    /// [`Client::partition_count`].
    PartitionCount {
        /// The topic.
        topic: String,
    },
    /// [`Client::offset_earliest`].
    OffsetEarliest {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// [`Client::offset_latest`].
    OffsetLatest {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// [`Client::offsets_for_times`].
    OffsetsForTimes {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The timestamp asked for.
        timestamp_ms: i64,
    },
    /// [`Client::create_topics`].
    CreateTopics(Vec<NewTopic>),
    /// [`Client::delete_topics`].
    DeleteTopics(Vec<String>),
    /// [`Client::create_partitions`].
    CreatePartitions {
        /// The topic.
        topic: String,
        /// The partition count asked for.
        total: i32,
    },
    /// [`Client::send`].
    Send(RequestKind),
    /// [`Client::send_to`].
    SendTo {
        /// The broker addressed.
        node_id: i32,
        /// The request.
        request: RequestKind,
    },
    /// [`Client::broker_metrics`].
    BrokerMetrics,
    /// [`Client::close`].
    Close,
}

impl Call {
    /// The API key whose scripted failures apply to this call: Metadata for
    /// `metadata`, `refresh_metadata` and `partition_count`, ListOffsets for the three
    /// offset lookups, CreateTopics, DeleteTopics and CreatePartitions for the admin
    /// calls, the request's key for `send` and `send_to`; `None` for `broker_metrics`
    /// and `close`, which cannot fail.
    pub fn api(&self) -> Option<ApiKey> {
        match self {
            Call::Metadata | Call::RefreshMetadata | Call::PartitionCount { .. } => {
                Some(ApiKey::Metadata)
            }
            Call::OffsetEarliest { .. }
            | Call::OffsetLatest { .. }
            | Call::OffsetsForTimes { .. } => Some(ApiKey::ListOffsets),
            Call::CreateTopics(_) => Some(ApiKey::CreateTopics),
            Call::DeleteTopics(_) => Some(ApiKey::DeleteTopics),
            Call::CreatePartitions { .. } => Some(ApiKey::CreatePartitions),
            Call::Send(request) | Call::SendTo { request, .. } => Some(request.api_key()),
            Call::BrokerMetrics | Call::Close => None,
        }
    }
}

type Responder = Arc<dyn Fn(&RequestKind) -> Result<ResponseKind> + Send + Sync>;

#[derive(Debug, Clone, Default)]
struct PartitionLog {
    earliest: i64,
    latest: i64,
    /// Record timestamps by offset.
    timestamps: BTreeMap<i64, i64>,
}

impl PartitionLog {
    /// The first record at or after `timestamp_ms` still in `[earliest, latest)`, as
    /// (offset, timestamp).
    fn offset_for_time(&self, timestamp_ms: i64) -> Option<(i64, i64)> {
        if self.earliest >= self.latest {
            return None;
        }
        self.timestamps
            .range(self.earliest..self.latest)
            .find(|(_, ts)| **ts >= timestamp_ms)
            .map(|(offset, ts)| (*offset, *ts))
    }
}

#[derive(Debug, Default)]
struct Failures {
    next: VecDeque<Error>,
    always: Option<Error>,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Vec<PartitionLog>>,
    metadata: Option<Arc<ClusterMetadata>>,
    failures: HashMap<ApiKey, Failures>,
    responders: HashMap<ApiKey, Responder>,
    calls: Vec<Call>,
    metrics: BTreeMap<String, MetricsSnapshot>,
    closed: bool,
}

impl State {
    fn partition(&self, topic: &str, partition: i32) -> Result<&PartitionLog> {
        self.topics
            .get(topic)
            .and_then(|ps| usize::try_from(partition).ok().and_then(|i| ps.get(i)))
            .ok_or_else(|| {
                broker_error(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("{topic}/{partition}"),
                )
            })
    }

    fn partition_mut(&mut self, topic: &str, partition: i32, caller: &str) -> &mut PartitionLog {
        match self
            .topics
            .get_mut(topic)
            .and_then(|ps| usize::try_from(partition).ok().and_then(|i| ps.get_mut(i)))
        {
            Some(p) => p,
            None => panic!(
                "ScriptedClient::{caller}: there is no partition {topic}/{partition}; add the topic first"
            ),
        }
    }

    fn create_topic(&mut self, topic: &NewTopic) -> Result<()> {
        let name = &topic.name;
        if let Err(why) = check_topic_name(name) {
            return Err(broker_error(
                ErrorCode::InvalidTopicException,
                format!("topic {name:?}: {why}"),
            ));
        }
        if self.topics.contains_key(name) {
            return Err(broker_error(
                ErrorCode::TopicAlreadyExists,
                format!("topic {name} already exists"),
            ));
        }
        let partitions = match topic.partitions {
            -1 => DEFAULT_PARTITIONS,
            n if n > 0 => n,
            n => {
                return Err(broker_error(
                    ErrorCode::InvalidPartitions,
                    format!("topic {name}: {n} partitions"),
                ))
            }
        };
        if topic.replication_factor == 0 || topic.replication_factor < -1 {
            return Err(broker_error(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "topic {name}: replication factor {}",
                    topic.replication_factor
                ),
            ));
        }
        self.topics.insert(name.clone(), new_partitions(partitions));
        Ok(())
    }
}

fn new_partitions(n: i32) -> Vec<PartitionLog> {
    vec![PartitionLog::default(); usize::try_from(n).unwrap_or(0)]
}

/// Kafka's topic name rules: 1 to 249 of `[a-zA-Z0-9._-]`, neither `.` nor `..`.
fn check_topic_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        Err("the name is empty")
    } else if name == "." || name == ".." {
        Err("the name cannot be \".\" or \"..\"")
    } else if name.len() > 249 {
        Err("the name is longer than 249 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("the name has a character other than ASCII letters, digits, '.', '_' and '-'")
    } else {
        Ok(())
    }
}

fn broker_error(code: ErrorCode, message: String) -> Error {
    Error::new(ErrorKind::Broker {
        code,
        message: Some(message),
    })
}

/// The found offset as the client answers it.
fn timestamp_offset(offset: i64, timestamp: i64) -> Result<TimestampOffset> {
    Ok(TimestampOffset::new(offset, timestamp))
}

/// An in-memory [`Client`] whose topics, offsets, errors and `send` answers a test
/// sets; see the [module docs](self). Clones share one state.
#[derive(Clone, Default)]
pub struct ScriptedClient {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for ScriptedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("ScriptedClient")
            .field("topics", &s.topics)
            .field("failures", &s.failures)
            .field("responders", &s.responders.keys().collect::<Vec<_>>())
            .field("calls", &s.calls.len())
            .field("closed", &s.closed)
            .finish()
    }
}

impl ScriptedClient {
    /// A client with no topics, no scripted errors or answers, and an empty call log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking setup helper poisons the lock; the state it guards is still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a call, then fails it if the client is closed or a failure is scripted for
    /// its API key.
    fn begin(&self, call: Call) -> Result<MutexGuard<'_, State>> {
        let api = call.api();
        let mut s = self.lock();
        s.calls.push(call);
        if s.closed {
            return Err(Error::new(ErrorKind::Closed));
        }
        if let Some(api) = api {
            if let Some(f) = s.failures.get_mut(&api) {
                if let Some(e) = f.next.pop_front().or_else(|| f.always.clone()) {
                    return Err(e.with_api(api));
                }
            }
        }
        Ok(s)
    }

    /// Adds a topic with `partitions` partitions (offsets 0, no records), replacing
    /// any topic of that name. Not logged and never failed.
    ///
    /// # Panics
    ///
    /// If `partitions` is not positive.
    pub fn add_topic(&self, topic: impl Into<String>, partitions: i32) {
        assert!(
            partitions > 0,
            "ScriptedClient::add_topic: {partitions} partitions"
        );
        self.lock()
            .topics
            .insert(topic.into(), new_partitions(partitions));
    }

    /// [`add_topic`](Self::add_topic), for building a client in one expression.
    #[must_use]
    pub fn with_topic(self, topic: impl Into<String>, partitions: i32) -> Self {
        self.add_topic(topic, partitions);
        self
    }

    /// The topics and their partition counts.
    pub fn topics(&self) -> BTreeMap<String, i32> {
        self.lock()
            .topics
            .iter()
            .map(|(name, ps)| (name.clone(), i32::try_from(ps.len()).unwrap_or(i32::MAX)))
            .collect()
    }

    /// Sets a partition's earliest (log start) and latest (log end) offsets.
    ///
    /// # Panics
    ///
    /// If the partition does not exist, or `earliest > latest`.
    pub fn set_offsets(&self, topic: &str, partition: i32, earliest: i64, latest: i64) {
        assert!(
            0 <= earliest && earliest <= latest,
            "ScriptedClient::set_offsets: earliest {earliest}, latest {latest}"
        );
        let mut s = self.lock();
        let p = s.partition_mut(topic, partition, "set_offsets");
        p.earliest = earliest;
        p.latest = latest;
    }

    /// A partition's (earliest, latest) offsets, or `None` when it does not exist.
    pub fn offsets(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        self.lock()
            .partition(topic, partition)
            .ok()
            .map(|p| (p.earliest, p.latest))
    }

    /// Appends a record with this timestamp to a partition: it takes the latest
    /// offset, which is returned, and the latest offset moves one on.
    ///
    /// # Panics
    ///
    /// If the partition does not exist.
    pub fn append(&self, topic: &str, partition: i32, timestamp_ms: i64) -> i64 {
        let mut s = self.lock();
        let p = s.partition_mut(topic, partition, "append");
        let offset = p.latest;
        p.timestamps.insert(offset, timestamp_ms);
        p.latest += 1;
        offset
    }

    /// Replaces a partition's timestamp index with these (offset, timestamp) records,
    /// and moves its latest offset past the last of them if it is not already.
    /// `offsets_for_times` answers the first record, in offset order, between the
    /// earliest and the latest offset whose timestamp is at or after the one asked for.
    ///
    /// # Panics
    ///
    /// If the partition does not exist.
    pub fn set_timestamp_index(
        &self,
        topic: &str,
        partition: i32,
        records: impl IntoIterator<Item = (i64, i64)>,
    ) {
        let mut s = self.lock();
        let p = s.partition_mut(topic, partition, "set_timestamp_index");
        p.timestamps = records.into_iter().collect();
        if let Some((&last, _)) = p.timestamps.last_key_value() {
            p.latest = p.latest.max(last + 1);
        }
    }

    /// Answers `metadata` and `refresh_metadata` with this snapshot from now on
    /// (without one, they describe the in-memory topics, all led by node 0).
    pub fn set_metadata(&self, metadata: ClusterMetadata) {
        self.lock().metadata = Some(Arc::new(metadata));
    }

    /// Fails the next call of `api` with `error` (with the API named on it). Errors
    /// queued for one API fail consecutive calls, in order, before any
    /// [`fail_always`](Self::fail_always) error applies. See [`Call::api`] for the
    /// key of each `Client` method.
    pub fn fail_next(&self, api: ApiKey, error: Error) {
        self.lock()
            .failures
            .entry(api)
            .or_default()
            .next
            .push_back(error);
    }

    /// Fails every call of `api` with `error` until
    /// [`clear_failures`](Self::clear_failures).
    pub fn fail_always(&self, api: ApiKey, error: Error) {
        self.lock().failures.entry(api).or_default().always = Some(error);
    }

    /// Forgets the failures scripted for `api`, queued and permanent.
    pub fn clear_failures(&self, api: ApiKey) {
        self.lock().failures.remove(&api);
    }

    /// Answers `send` and `send_to` of requests with this API key by calling
    /// `respond` (after any scripted failure of the key), replacing an earlier
    /// function for the key. A request of a key with no function fails with a
    /// non-retriable [`ErrorKind::Config`] error.
    pub fn respond_with<F>(&self, api: ApiKey, respond: F)
    where
        F: Fn(&RequestKind) -> Result<ResponseKind> + Send + Sync + 'static,
    {
        self.lock().responders.insert(api, Arc::new(respond));
    }

    /// Sets what `broker_metrics` answers (empty by default).
    pub fn set_broker_metrics(&self, metrics: BTreeMap<String, MetricsSnapshot>) {
        self.lock().metrics = metrics;
    }

    /// Every `Client` call so far, in order, failed ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// True once `close` was called; every later call but `broker_metrics` and `close`
    /// fails with [`ErrorKind::Closed`], as the real client's do.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn metadata_answer(&self, call: Call) -> Result<Arc<ClusterMetadata>> {
        let state = self.begin(call)?;
        if let Some(m) = &state.metadata {
            return Ok(m.clone());
        }
        // Built from the in-memory topics: one broker (node 0) leads every partition.
        let mut m = ClusterMetadata::default();
        m.controller_id = 0;
        m.brokers
            .insert(0, kafka_net::BrokerInfo::new(0, "scripted", 9092));
        for (name, partitions) in &state.topics {
            let parts = (0..partitions.len() as i32)
                .map(|p| kafka_net::PartitionInfo::new(p, 0))
                .collect();
            m.topics
                .insert(name.clone(), kafka_net::TopicInfo::new(name.clone(), parts));
        }
        Ok(Arc::new(m))
    }

    fn answer(&self, node_id: Option<i32>, request: RequestKind) -> Result<ResponseKind> {
        let call = match node_id {
            Some(node_id) => Call::SendTo {
                node_id,
                request: request.clone(),
            },
            None => Call::Send(request.clone()),
        };
        let api = request.api_key();
        let respond = self.begin(call)?.responders.get(&api).cloned();
        // Called without the lock held, so the function may use the client itself.
        match respond {
            Some(respond) => respond(&request).map_err(|e| e.with_api(api)),
            None => Err(Error::new(ErrorKind::Config(format!(
                "ScriptedClient has no answer for {api}; set one with respond_with"
            )))
            .with_api(api)),
        }
    }
}

#[async_trait]
impl Client for ScriptedClient {
    async fn metadata(&self) -> Result<Arc<ClusterMetadata>> {
        self.metadata_answer(Call::Metadata)
    }

    async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        self.metadata_answer(Call::RefreshMetadata)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let s = self.begin(Call::PartitionCount {
            topic: topic.to_string(),
        })?;
        match s.topics.get(topic) {
            Some(ps) => Ok(i32::try_from(ps.len()).unwrap_or(i32::MAX)),
            None => Err(
                broker_error(ErrorCode::UnknownTopicOrPartition, format!("topic {topic}"))
                    .with_api(ApiKey::Metadata),
            ),
        }
    }

    async fn offset_earliest(&self, topic: &str, partition: i32) -> Result<i64> {
        let s = self.begin(Call::OffsetEarliest {
            topic: topic.to_string(),
            partition,
        })?;
        s.partition(topic, partition)
            .map(|p| p.earliest)
            .map_err(|e| e.with_api(ApiKey::ListOffsets))
    }

    async fn offset_latest(&self, topic: &str, partition: i32) -> Result<i64> {
        let s = self.begin(Call::OffsetLatest {
            topic: topic.to_string(),
            partition,
        })?;
        s.partition(topic, partition)
            .map(|p| p.latest)
            .map_err(|e| e.with_api(ApiKey::ListOffsets))
    }

    async fn offsets_for_times(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>> {
        let s = self.begin(Call::OffsetsForTimes {
            topic: topic.to_string(),
            partition,
            timestamp_ms,
        })?;
        if timestamp_ms < 0 {
            return Err(Error::new(ErrorKind::Config(format!(
                "timestamp {timestamp_ms} is negative; use offset_earliest or offset_latest"
            ))));
        }
        let found = s
            .partition(topic, partition)
            .map_err(|e| e.with_api(ApiKey::ListOffsets))?
            .offset_for_time(timestamp_ms);
        found
            .map(|(offset, timestamp)| timestamp_offset(offset, timestamp))
            .transpose()
    }

    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        let mut s = self.begin(Call::CreateTopics(topics.clone()))?;
        // As a broker does: every valid topic is created, the first error is reported.
        let mut first_error = None;
        for topic in &topics {
            if let Err(e) = s.create_topic(topic) {
                first_error.get_or_insert(e.with_api(ApiKey::CreateTopics));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn delete_topics(&self, topics: Vec<String>) -> Result<()> {
        let mut s = self.begin(Call::DeleteTopics(topics.clone()))?;
        let mut first_error = None;
        for topic in &topics {
            if s.topics.remove(topic).is_none() {
                first_error.get_or_insert(
                    broker_error(ErrorCode::UnknownTopicOrPartition, format!("topic {topic}"))
                        .with_api(ApiKey::DeleteTopics),
                );
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let mut s = self.begin(Call::CreatePartitions {
            topic: topic.to_string(),
            total,
        })?;
        let error =
            |code, message| Err(broker_error(code, message).with_api(ApiKey::CreatePartitions));
        let Some(partitions) = s.topics.get_mut(topic) else {
            return error(ErrorCode::UnknownTopicOrPartition, format!("topic {topic}"));
        };
        let current = partitions.len();
        match usize::try_from(total) {
            Ok(n) if n > current => {
                partitions.resize(n, PartitionLog::default());
                Ok(())
            }
            _ => error(
                ErrorCode::InvalidPartitions,
                format!("topic {topic} has {current} partitions; {total} is not more"),
            ),
        }
    }

    async fn send(&self, request: RequestKind) -> Result<ResponseKind> {
        self.answer(None, request)
    }

    async fn send_to(&self, node_id: i32, request: RequestKind) -> Result<ResponseKind> {
        self.answer(Some(node_id), request)
    }

    fn broker_metrics(&self) -> BTreeMap<String, MetricsSnapshot> {
        let mut s = self.lock();
        s.calls.push(Call::BrokerMetrics);
        s.metrics.clone()
    }

    async fn close(&self) {
        let mut s = self.lock();
        s.calls.push(Call::Close);
        s.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_for_time_is_the_first_record_at_or_after_in_the_live_log() {
        let mut p = PartitionLog {
            earliest: 0,
            latest: 5,
            timestamps: [(0, 100), (1, 300), (2, 200), (3, 300), (4, 400)].into(),
        };
        assert_eq!(p.offset_for_time(0), Some((0, 100)));
        assert_eq!(p.offset_for_time(101), Some((1, 300)));
        assert_eq!(p.offset_for_time(200), Some((1, 300)));
        assert_eq!(p.offset_for_time(400), Some((4, 400)));
        assert_eq!(p.offset_for_time(401), None);
        // Records before the log start and past the log end are gone.
        p.earliest = 2;
        p.latest = 4;
        assert_eq!(p.offset_for_time(0), Some((2, 200)));
        assert_eq!(p.offset_for_time(301), None);
        p.earliest = 4;
        assert_eq!(p.offset_for_time(0), None);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(check_topic_name("orders.v1_eu-west").is_ok());
        assert!(check_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"a".repeat(250)] {
            assert!(check_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
