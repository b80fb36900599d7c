//! The [`Client`] trait, the handle users open first, and [`KafkaClient`], its real
//! implementation: bootstrap, metadata cache, coordinators, offsets, topic admin and
//! routed requests.

use crate::cluster::{BrokerInfo, ClusterMetadata, Pool, Purpose};
use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::MetricsSnapshot;
use crate::stats::{ClientStatistics, Every};
use async_trait::async_trait;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest,
};
use kafka_protocol::{ApiKey, ErrorCode, Request, RequestKind, ResponseKind, StrBytes};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

mod route;
use route::produce_unanswered;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// Number of partitions; -1 for the broker's default.
    pub partitions: i32,
    /// Replication factor; -1 for the broker's default.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    /// Sets the replication factor.
    pub fn with_replication_factor(mut self, rf: i16) -> Self {
        self.replication_factor = rf;
        self
    }

    /// Adds a topic config.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }

    /// The topic as CreateTopics asks for it.
    pub(crate) fn to_creatable(&self) -> CreatableTopic {
        CreatableTopic {
            name: StrBytes::from(self.name.clone()),
            num_partitions: self.partitions,
            replication_factor: self.replication_factor,
            configs: self
                .configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: StrBytes::from(k.clone()),
                    value: Some(StrBytes::from(v.clone())),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// An offset found for a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimestampOffset {
    /// The earliest offset whose timestamp is at or after the one asked for.
    pub offset: i64,
    /// That record's timestamp (-1 from brokers that do not say).
    pub timestamp: i64,
}

impl TimestampOffset {
    /// An offset and its record's timestamp.
    pub fn new(offset: i64, timestamp: i64) -> Self {
        TimestampOffset { offset, timestamp }
    }
}

/// The client handle: cluster metadata, offsets, topic admin, and any request routed
/// to the right broker. Object-safe, so it can be mocked and held as `Box<dyn Client>`.
#[async_trait]
pub trait Client: Send + Sync {
    /// The cached metadata (fetched if the client has none yet).
    async fn metadata(&self) -> Result<Arc<ClusterMetadata>>;
    /// Fetches fresh metadata; concurrent callers share one Metadata request.
    async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>>;
    /// Number of partitions of a topic.
    async fn partition_count(&self, topic: &str) -> Result<i32>;
    /// The earliest offset of a partition (its log start).
    async fn offset_earliest(&self, topic: &str, partition: i32) -> Result<i64>;
    /// The latest offset of a partition (its log end, the next offset to be written).
    async fn offset_latest(&self, topic: &str, partition: i32) -> Result<i64>;
    /// The earliest offset whose timestamp is at or after `timestamp_ms`; `None` when
    /// every record is older.
    async fn offsets_for_times(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>>;
    /// Creates topics; fails with the first topic's error (TOPIC_ALREADY_EXISTS
    /// included, see [`Error::code`]).
    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()>;
    /// Deletes topics by name.
    async fn delete_topics(&self, topics: Vec<String>) -> Result<()>;
    /// Raises a topic's partition count to `total`.
    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()>;
    /// Sends any request to the broker it belongs to (a Produce with acks=0 returns an
    /// empty answer once written, as the broker sends none): partition requests to the
    /// leader of their first partition, group requests to the group coordinator,
    /// transaction requests to the transaction coordinator, admin requests to the
    /// controller, anything else to any broker.
    async fn send(&self, request: RequestKind) -> Result<ResponseKind>;
    /// Sends a request to one broker by node id.
    async fn send_to(&self, node_id: i32, request: RequestKind) -> Result<ResponseKind>;
    /// Counters per broker address.
    fn broker_metrics(&self) -> BTreeMap<String, MetricsSnapshot>;
    /// Closes every connection; later calls fail with [`ErrorKind::Closed`].
    async fn close(&self);
}

/// Typed requests through any [`Client`] (a mock too). On a [`KafkaClient`] itself,
/// `client.request(..)` is [`KafkaClient::request`], which does the same without
/// going through [`RequestKind`], so that only the codecs of what is sent are linked.
#[async_trait]
pub trait ClientExt: Client {
    /// Sends a typed request, routed as [`Client::send`] routes it.
    async fn request<R>(&self, request: R) -> Result<R::Response>
    where
        R: Request + Into<RequestKind> + Send,
        R::Response: TryFrom<ResponseKind, Error = ResponseKind>,
    {
        let response = self.send(request.into()).await?;
        R::Response::try_from(response).map_err(|other| wrong_answer(R::API_KEY, other))
    }
}

/// The error for an answer of another type than the request's. Takes the answer and
/// drops it here, out of line: a `ResponseKind` dropped in generic code compiles the
/// drop of every response type into each crate that calls it.
#[inline(never)]
fn wrong_answer(api: ApiKey, answer: ResponseKind) -> Error {
    drop(answer);
    Error::new(ErrorKind::Malformed(format!(
        "answer of the wrong type to {api}"
    )))
    .with_api(api)
}

impl<C: Client + ?Sized> ClientExt for C {}

/// Coordinator key types of FindCoordinator.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

struct Inner {
    config: ClientConfig,
    bootstrap: Vec<String>,
    pool: Pool,
    metadata: RwLock<Option<Arc<ClusterMetadata>>>,
    generation: AtomicU64,
    refresh_lock: tokio::sync::Mutex<()>,
    coordinators: Mutex<HashMap<(i8, String), i32>>,
    closed: AtomicBool,
    /// When the client was created (the statistics' `age_us`).
    created: std::time::Instant,
}

/// The real [`Client`], talking to a Kafka cluster.
#[derive(Clone)]
pub struct KafkaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClient")
            .field("bootstrap", &self.inner.bootstrap)
            .field("config", &self.inner.config)
            .finish()
    }
}

fn rlock<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unavailable(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unavailable(msg.into()))
}

impl KafkaClient {
    /// Connects to the cluster through the first bootstrap address that answers a
    /// Metadata request (addresses as `host:port`, several may be given, also comma
    /// separated).
    pub async fn connect<S: AsRef<str>>(
        bootstrap: &[S],
        config: ClientConfig,
    ) -> Result<KafkaClient> {
        config.validate()?;
        let bootstrap: Vec<String> = bootstrap
            .iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|a| !a.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::new(ErrorKind::Config(
                "no bootstrap address given".into(),
            )));
        }
        let inner = Arc::new(Inner {
            pool: Pool::new(config.clone()),
            config,
            bootstrap,
            metadata: RwLock::new(None),
            generation: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            coordinators: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            created: std::time::Instant::now(),
        });
        let client = KafkaClient { inner };
        client.refresh_metadata().await?;
        tokio::spawn(refresh_periodically(Arc::downgrade(&client.inner)));
        Ok(client)
    }

    /// A new client for the same cluster with connections of its own. Brokers handle
    /// one request at a time per connection, so a long request (a JoinGroup waiting
    /// for a rebalance) holds up everything behind it on that connection; each group
    /// member takes its own client for that reason.
    pub async fn fork(&self) -> Result<KafkaClient> {
        let mut bootstrap = self.inner.bootstrap.clone();
        if let Some(m) = self.cached_metadata() {
            bootstrap.extend(m.brokers.values().map(BrokerInfo::addr));
        }
        KafkaClient::connect(&bootstrap, self.inner.config.clone()).await
    }

    /// The request timeout in milliseconds, as admin requests carry it.
    fn timeout_ms(&self) -> i32 {
        let ms = self.inner.config.request_timeout.as_millis();
        i32::try_from(ms).unwrap_or(i32::MAX)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed))
        } else {
            Ok(())
        }
    }

    /// The cached metadata, if any was fetched.
    pub fn cached_metadata(&self) -> Option<Arc<ClusterMetadata>> {
        rlock(&self.inner.metadata).clone()
    }

    /// How many times the cached metadata has been replaced: a value read from
    /// [`cached_metadata`](Self::cached_metadata) after this returned `n` is still
    /// current while it returns `n` (a producer keeps its topic's partition count by
    /// it).
    pub fn metadata_generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The topic's partition count in the cached metadata, if it is known (looked up
    /// in place, without taking a reference to the metadata: a producer asks once per
    /// record).
    pub fn cached_partition_count(&self, topic: &str) -> Option<i32> {
        rlock(&self.inner.metadata)
            .as_ref()
            .and_then(|m| m.partition_count(topic))
    }

    /// Addresses to try for cluster-wide requests: known brokers first (in random
    /// order), then the bootstrap list.
    fn candidate_addrs(&self) -> Vec<String> {
        use rand::seq::SliceRandom;
        let mut addrs: Vec<String> = self
            .cached_metadata()
            .map(|m| m.brokers.values().map(BrokerInfo::addr).collect())
            .unwrap_or_default();
        addrs.shuffle(&mut rand::thread_rng());
        for b in &self.inner.bootstrap {
            if !addrs.contains(b) {
                addrs.push(b.clone());
            }
        }
        addrs
    }

    /// A connection to any broker that answers.
    async fn any_broker(&self, purpose: Purpose) -> Result<Arc<Connection>> {
        let mut last = None;
        for addr in self.candidate_addrs() {
            match self.inner.pool.get(&addr, purpose).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "broker unreachable");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| unavailable("no broker is known")))
    }

    async fn fetch_metadata(&self) -> Result<ClusterMetadata> {
        let conn = self.any_broker(Purpose::Admin).await?;
        let version = conn.versions().version_for(ApiKey::Metadata)?;
        let request = MetadataRequest {
            // All topics: null from v1, an empty list in v0.
            topics: if version == 0 { Some(Vec::new()) } else { None },
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let response = conn.send_version(&request, version).await?;
        Ok(ClusterMetadata::from_response(&response))
    }

    async fn node(&self, node_id: i32) -> Result<BrokerInfo> {
        let find = |m: &ClusterMetadata| m.brokers.get(&node_id).cloned();
        if let Some(b) = self.cached_metadata().as_deref().and_then(find) {
            return Ok(b);
        }
        let m = self.refresh_metadata().await?;
        find(&m)
            .ok_or_else(|| unavailable(format!("broker {node_id} is not in the cluster metadata")))
    }

    /// The leader of a partition, refreshing metadata once when it is not known.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<BrokerInfo> {
        let lookup = |m: &ClusterMetadata| -> Result<BrokerInfo> {
            let t = m.topics.get(topic).ok_or_else(|| {
                Error::new(ErrorKind::Broker {
                    code: ErrorCode::UnknownTopicOrPartition,
                    message: Some(format!("topic {topic}")),
                })
            })?;
            let p = t
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .ok_or_else(|| {
                    Error::new(ErrorKind::Broker {
                        code: ErrorCode::UnknownTopicOrPartition,
                        message: Some(format!("{topic}/{partition}")),
                    })
                })?;
            m.brokers.get(&p.leader).cloned().ok_or_else(|| {
                Error::new(ErrorKind::Broker {
                    code: ErrorCode::LeaderNotAvailable,
                    message: Some(format!("{topic}/{partition}")),
                })
            })
        };
        if let Some(Ok(b)) = self.cached_metadata().as_deref().map(lookup) {
            return Ok(b);
        }
        lookup(&*self.refresh_metadata().await?)
    }

    /// The coordinator of a group (`key_type` 0) or transactional id (1), cached until
    /// a NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE answer invalidates it.
    pub async fn coordinator(&self, key_type: i8, key: &str) -> Result<BrokerInfo> {
        let cached = lock(&self.inner.coordinators)
            .get(&(key_type, key.to_string()))
            .copied();
        if let Some(node) = cached {
            return self.node(node).await;
        }
        let conn = self.any_broker(Purpose::Admin).await?;
        let version = conn.versions().version_for(ApiKey::FindCoordinator)?;
        let mut request = FindCoordinatorRequest {
            key_type,
            ..Default::default()
        };
        if version >= 4 {
            request.coordinator_keys = vec![StrBytes::from(key.to_string())];
        } else {
            request.key = StrBytes::from(key.to_string());
        }
        let response = conn.send_version(&request, version).await?;
        let (node, code, message) = if version >= 4 {
            let c = response.coordinators.first().ok_or_else(|| {
                Error::new(ErrorKind::Malformed(
                    "FindCoordinator answered no coordinator".into(),
                ))
            })?;
            (
                c.node_id,
                c.error_code,
                c.error_message.as_ref().map(|m| m.to_string()),
            )
        } else {
            (
                response.node_id,
                response.error_code,
                response.error_message.as_ref().map(|m| m.to_string()),
            )
        };
        Error::check_code(code, message.as_deref())
            .map_err(|e| e.with_api(ApiKey::FindCoordinator))?;
        lock(&self.inner.coordinators).insert((key_type, key.to_string()), node);
        self.node(node).await
    }

    /// The version of `api` that requests to cluster brokers are sent in (the highest
    /// one a broker shares with this client), for callers that build version-dependent
    /// requests (Fetch names topics by id from v13).
    pub async fn api_version(&self, api: ApiKey) -> Result<i16> {
        self.any_broker(Purpose::Admin)
            .await?
            .versions()
            .version_for(api)
    }

    /// A snapshot of the client's brokers: requests, bytes, errors, connections and
    /// round-trip times per broker (see [`crate::stats`]).
    pub fn statistics(&self) -> ClientStatistics {
        let metadata = self.cached_metadata();
        ClientStatistics::new(
            &self.inner.config.client_id,
            self.inner.created.elapsed(),
            self.inner.pool.metrics(),
            |addr| {
                metadata.as_ref().and_then(|m| {
                    m.brokers
                        .values()
                        .find(|b| b.addr() == addr)
                        .map(|b| b.node_id)
                })
            },
        )
    }

    /// [`statistics`](Self::statistics) every `interval` (librdkafka
    /// `statistics.interval.ms`), as a stream that ends when the client is closed or
    /// every other handle to it is dropped (see [`crate::stats::every`]).
    pub fn statistics_every(&self, interval: Duration) -> Every<ClientStatistics> {
        let inner = Arc::downgrade(&self.inner);
        crate::stats::every(interval, move || {
            let inner = inner.upgrade()?;
            if inner.closed.load(Ordering::Acquire) {
                return None;
            }
            Some(KafkaClient { inner }.statistics())
        })
    }

    /// Forgets a cached coordinator.
    pub fn invalidate_coordinator(&self, key_type: i8, key: &str) {
        lock(&self.inner.coordinators).remove(&(key_type, key.to_string()));
    }

    /// A connection to a broker for a purpose.
    pub async fn connection(
        &self,
        broker: &BrokerInfo,
        purpose: Purpose,
    ) -> Result<Arc<Connection>> {
        self.check_open()?;
        self.inner.pool.get(&broker.addr(), purpose).await
    }

    async fn controller(&self) -> Result<Arc<Connection>> {
        let m = self.metadata().await?;
        match m.brokers.get(&m.controller_id) {
            Some(b) => self.connection(b, Purpose::Admin).await,
            None => self.any_broker(Purpose::Admin).await,
        }
    }

    async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<TimestampOffset> {
        self.check_open()?;
        let leader = self.leader(topic, partition).await?;
        let conn = self.connection(&leader, Purpose::Admin).await?;
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: StrBytes::from(topic.to_string()),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    max_num_offsets: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let version = conn.versions().version_for(ApiKey::ListOffsets)?;
        let response = conn.send_version(&request, version).await?;
        let p = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                Error::new(ErrorKind::Malformed(format!(
                    "ListOffsets answered nothing for {topic}/{partition}"
                )))
            })?;
        if let Err(e) = Error::check_code(p.error_code, None) {
            self.note_partition_error(p.error_code);
            return Err(e.with_api(ApiKey::ListOffsets).with_broker(leader.addr()));
        }
        let offset = if version == 0 {
            p.old_style_offsets.first().copied().unwrap_or(-1)
        } else {
            p.offset
        };
        Ok(TimestampOffset {
            offset,
            timestamp: p.timestamp,
        })
    }

    /// Marks metadata stale after errors that mean it is.
    fn note_partition_error(&self, code: i16) {
        if matches!(
            ErrorCode::from(code),
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
        ) {
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.refresh_metadata().await;
            });
        }
    }
}

#[async_trait]
impl Client for KafkaClient {
    async fn metadata(&self) -> Result<Arc<ClusterMetadata>> {
        self.check_open()?;
        match self.cached_metadata() {
            Some(m) => Ok(m),
            None => self.refresh_metadata().await,
        }
    }

    async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        self.check_open()?;
        let seen = self.inner.generation.load(Ordering::Acquire);
        let _guard = self.inner.refresh_lock.lock().await;
        if self.inner.generation.load(Ordering::Acquire) != seen {
            // Another caller refreshed while this one waited: share its answer.
            if let Some(m) = self.cached_metadata() {
                return Ok(m);
            }
        }
        let fresh = Arc::new(self.fetch_metadata().await?);
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        Ok(fresh)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        if let Some(n) = self.metadata().await?.partition_count(topic) {
            return Ok(n);
        }
        self.refresh_metadata()
            .await?
            .partition_count(topic)
            .ok_or_else(|| {
                Error::new(ErrorKind::Broker {
                    code: ErrorCode::UnknownTopicOrPartition,
                    message: Some(format!("topic {topic}")),
                })
            })
    }

    async fn offset_earliest(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self.list_offset(topic, partition, -2).await?.offset)
    }

    async fn offset_latest(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self.list_offset(topic, partition, -1).await?.offset)
    }

    async fn offsets_for_times(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>> {
        if timestamp_ms < 0 {
            return Err(Error::new(ErrorKind::Config(format!(
                "timestamp {timestamp_ms} is negative; use offset_earliest or offset_latest"
            ))));
        }
        let found = self.list_offset(topic, partition, timestamp_ms).await?;
        Ok((found.offset >= 0).then_some(found))
    }

    async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        self.check_open()?;
        let timeout_ms = self.timeout_ms();
        let request = CreateTopicsRequest {
            topics: topics.iter().map(NewTopic::to_creatable).collect(),
            timeout_ms,
            ..Default::default()
        };
        let conn = self.controller().await?;
        let response = conn.send(&request).await?;
        let _ = self.refresh_metadata().await;
        for t in &response.topics {
            Error::check_code(t.error_code, t.error_message.as_deref()).map_err(|e| {
                e.with_api(ApiKey::CreateTopics)
                    .with_broker(format!("topic {}", t.name))
            })?;
        }
        Ok(())
    }

    async fn delete_topics(&self, topics: Vec<String>) -> Result<()> {
        self.check_open()?;
        let conn = self.controller().await?;
        let version = conn.versions().version_for(ApiKey::DeleteTopics)?;
        let request = crate::admin::delete_topics_request(&topics, version, self.timeout_ms());
        let response = conn.send_version(&request, version).await?;
        let _ = self.refresh_metadata().await;
        for r in &response.responses {
            Error::check_code(r.error_code, r.error_message.as_deref()).map_err(|e| {
                e.with_api(ApiKey::DeleteTopics)
                    .with_broker(format!("topic {}", r.name.as_deref().unwrap_or("?")))
            })?;
        }
        Ok(())
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        self.check_open()?;
        let conn = self.controller().await?;
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: StrBytes::from(topic.to_string()),
                count: total,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: self.timeout_ms(),
            ..Default::default()
        };
        let response = conn.send(&request).await?;
        let _ = self.refresh_metadata().await;
        for r in &response.results {
            Error::check_code(r.error_code, r.error_message.as_deref())
                .map_err(|e| e.with_api(ApiKey::CreatePartitions))?;
        }
        Ok(())
    }

    async fn send(&self, request: RequestKind) -> Result<ResponseKind> {
        self.check_open()?;
        let api = request.api_key();
        let (conn, coordinator) = self
            .open_route(self.route_of(api, request.as_any()))
            .await?;
        if let RequestKind::Produce(p) = &request {
            if p.acks == 0 {
                produce_unanswered(&conn, p).await?;
                return Ok(ResponseKind::Produce(Default::default()));
            }
        }
        let response = conn.send_kind(&request).await?;
        self.note_answer(coordinator, api, response.as_any());
        Ok(response)
    }

    async fn send_to(&self, node_id: i32, request: RequestKind) -> Result<ResponseKind> {
        self.check_open()?;
        let broker = self.node(node_id).await?;
        let conn = self.connection(&broker, Purpose::Admin).await?;
        conn.send_kind(&request).await
    }

    fn broker_metrics(&self) -> BTreeMap<String, MetricsSnapshot> {
        self.inner.pool.metrics()
    }

    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.pool.close();
    }
}

/// Refreshes metadata every `metadata_max_age` until the client is dropped or closed.
async fn refresh_periodically(inner: Weak<Inner>) {
    loop {
        let Some(every) = inner.upgrade().map(|i| i.config.metadata_max_age) else {
            return;
        };
        tokio::time::sleep(every.max(Duration::from_millis(100))).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let client = KafkaClient { inner };
        if let Err(e) = client.refresh_metadata().await {
            tracing::debug!(error = %e, "periodic metadata refresh failed");
        }
    }
}
