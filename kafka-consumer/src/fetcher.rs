use std::sync::Arc;

/// Where a consumer starts reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The oldest record still in the log (`auto.offset.reset=earliest`).
    Earliest,
    /// After the newest record (`latest`): only records written from now on.
    Latest,
    /// This exact offset.
    Offset(i64),
    /// The first record at or after this timestamp (milliseconds), else the end.
    Timestamp(i64),
}

/// What to do when the fetch offset is outside the log (OFFSET_OUT_OF_RANGE).
#[derive(Clone, Default)]
pub enum OffsetReset {
    /// Move to the oldest record (the default, as the Dart client).
    #[default]
    Earliest,
    /// Move to the end of the log.
    Latest,
    /// Report an error for the partition and stop fetching it until it is given a
    /// new offset.
    Error,
    /// Ask a function (sarama-consumer's `OffsetOutOfRange`): given the topic,
    /// partition, the offset that was out of range and the log's (start, end), the
    /// offset to resume at, or `None` to fail as [`OffsetReset::Error`].
    Custom(ResetFn),
}

/// The function of [`OffsetReset::Custom`].
pub type ResetFn = Arc<dyn Fn(&str, i32, i64, (i64, i64)) -> Option<i64> + Send + Sync>;

impl std::fmt::Debug for OffsetReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OffsetReset::Earliest => f.write_str("Earliest"),
            OffsetReset::Latest => f.write_str("Latest"),
            OffsetReset::Error => f.write_str("Error"),
            OffsetReset::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

// ---------------------------------------------------------------------------------
// The fetcher.

use crate::error::{ConsumeError, ConsumeErrorKind};
use crate::fetch::{extract_records, FetchOptions};
use bytes::Bytes;
use kafka_net::{BrokerInfo, Client, KafkaClient, Purpose};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::Record;
use kafka_protocol::records::{leading_entries, next_offset_after};
use kafka_protocol::{ApiKey, ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

mod stats;

pub(crate) use stats::lag;
pub use stats::{FetchPartitionStats, FetcherStatistics};

/// How a [`Fetcher`] fetches.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetcherConfig {
    /// Per-partition fetch settings (`fetch.max.wait.ms`, `fetch.min.bytes`,
    /// `max.partition.fetch.bytes`, `isolation.level`, `check.crcs`).
    pub fetch: FetchOptions,
    /// `fetch.max.bytes`: the most one Fetch response may carry. Default 50 MiB.
    pub max_bytes: i32,
    /// Bytes of fetched records held before they are consumed; fetching pauses while
    /// the buffer is full (librdkafka `queued.max.messages.kbytes`). Default 64 MiB.
    pub prefetch_bytes: usize,
    /// What to do with an out-of-range offset. Default earliest.
    pub offset_reset: OffsetReset,
    /// Use incremental fetch sessions (KIP-227) with brokers that offer them.
    /// Default true.
    pub sessions: bool,
    /// Skip records older than this (sarama-consumer `NoOlderThan`). Default none.
    pub max_message_age: Option<Duration>,
    /// Wait after a failed fetch before the next. Default 100 ms.
    pub retry_backoff: Duration,
    /// Fetches in flight to one broker at a time, each on its own connection and
    /// fetch session and covering its share of the partitions that broker leads (never
    /// more than there are such partitions). Default 1: one outstanding Fetch per
    /// broker covering all its partitions, the Java consumer's and librdkafka's way.
    /// More lets the broker work on several Fetches at once (it handles one request
    /// per connection at a time), which reads faster when it leads several busy
    /// partitions, at the cost of a connection and a fetch session (a slot of the
    /// broker's `max.incremental.fetch.session.cache.slots`, 1000 by default) per
    /// extra lane. At most 64.
    pub fetches_per_broker: usize,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            fetch: FetchOptions::default(),
            max_bytes: 50 << 20,
            prefetch_bytes: 64 << 20,
            offset_reset: OffsetReset::Earliest,
            sessions: true,
            max_message_age: None,
            retry_backoff: Duration::from_millis(100),
            fetches_per_broker: 1,
        }
    }
}

/// Records fetched from one partition: a fetch's records, handed over in parts of
/// at most `max.partition.fetch.bytes` ([`FetchOptions::max_bytes`]) of record data,
/// or one record batch when that alone is larger.
#[derive(Debug)]
#[non_exhaustive]
pub struct FetchedBatch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The records, in offset order.
    pub records: Vec<Record>,
    /// The partition's high watermark when fetched.
    pub high_watermark: i64,
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug)]
struct PartitionState {
    start: StartOffset,
    /// Next offset to fetch; `None` until the start is resolved.
    position: Option<i64>,
    /// Bumped by every seek, so results fetched before it are dropped.
    generation: u64,
    paused: bool,
    failed: bool,
    high_watermark: i64,
    /// Offset after the last record handed to the consumer.
    consumed: Option<i64>,
    /// Records and bytes decoded (the statistics).
    fetched_records: u64,
    fetched_bytes: u64,
}

/// A partition's fetched bytes, decoded by the consumer in `next_batch` (so the
/// worker sends the next Fetch without waiting for the decode).
struct RawFetch {
    topic: String,
    partition: i32,
    records: Bytes,
    aborted: Vec<AbortedTransaction>,
    fetch_offset: i64,
    high_watermark: i64,
    generation: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl RawFetch {
    /// Splits off what follows the leading whole batches that fit in `limit` bytes
    /// (at least one batch), with its share of the buffer space; `None` when all of
    /// it fits. So a large answer (a broker may send more than
    /// `max.partition.fetch.bytes`, and Tansu does) is decoded a part at a time, and
    /// only one part's records and decompressed data are held at once.
    ///
    /// A fetch that lists aborted transactions is not split: which of them are still
    /// open where a part begins is known only by decoding the parts before it (an
    /// abort marker closes one), so such a fetch is decoded whole.
    fn split_rest(&mut self, limit: usize) -> Option<RawFetch> {
        if !self.aborted.is_empty() {
            return None;
        }
        let (len, next) = leading_entries(&self.records, limit)?;
        if len >= self.records.len() {
            return None;
        }
        let records = self.records.split_off(len);
        let permit = self
            .permit
            .as_mut()
            .and_then(|p| p.split(records.len().min(p.num_permits())));
        Some(RawFetch {
            topic: self.topic.clone(),
            partition: self.partition,
            records,
            aborted: Vec::new(),
            fetch_offset: next,
            high_watermark: self.high_watermark,
            generation: self.generation,
            permit,
        })
    }
}

enum Item {
    Fetched(RawFetch),
    Error(ConsumeError),
}

struct Inner {
    client: KafkaClient,
    config: FetcherConfig,
    partitions: Mutex<BTreeMap<(String, i32), PartitionState>>,
    /// Fetch workers by broker and lane.
    workers: Mutex<HashMap<(i32, usize), tokio::task::AbortHandle>>,
    wake: Notify,
    buffer: Arc<Semaphore>,
    closed: AtomicBool,
    tx: mpsc::UnboundedSender<Item>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetches many partitions: one task per broker keeps one Fetch outstanding for all
/// the partitions that broker leads (moving them when leaders change; or several, each
/// for a share of them, with [`FetcherConfig::fetches_per_broker`]), with an
/// incremental fetch session. The task moves on as soon as an answer is in (by the
/// batch headers) and sends the next Fetch; the records are decoded and checked by
/// [`Fetcher::next_batch`], and wait until then in a buffer bounded in bytes.
pub struct Fetcher {
    inner: Arc<Inner>,
    out: tokio::sync::Mutex<Outbox>,
}

/// What the workers fetched, for `next_batch`.
struct Outbox {
    rx: mpsc::UnboundedReceiver<Item>,
    /// The part of a fetch not handed over yet (see `RawFetch::split_rest`).
    rest: Option<RawFetch>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        for (_, w) in lock(&self.inner.workers).drain() {
            w.abort();
        }
    }
}

impl Fetcher {
    /// A fetcher over a connected client; nothing is fetched until partitions are
    /// assigned.
    pub fn new(client: KafkaClient, config: FetcherConfig) -> Result<Self, ConsumeError> {
        if config.fetch.max_bytes <= 0 || config.max_bytes <= 0 {
            return Err(ConsumeErrorKind::Config("fetch sizes must be positive".into()).into());
        }
        if !(1..=64).contains(&config.fetches_per_broker) {
            return Err(ConsumeErrorKind::Config(format!(
                "fetches_per_broker must be 1 to 64, not {}",
                config.fetches_per_broker
            ))
            .into());
        }
        if config.prefetch_bytes < config.fetch.max_bytes as usize {
            return Err(ConsumeErrorKind::Config(
                "prefetch_bytes must hold at least one partition's fetch".into(),
            )
            .into());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            buffer: Arc::new(Semaphore::new(config.prefetch_bytes)),
            client,
            config,
            partitions: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            tx,
        });
        tokio::spawn(supervise(Arc::downgrade(&inner)));
        Ok(Fetcher {
            inner,
            out: tokio::sync::Mutex::new(Outbox { rx, rest: None }),
        })
    }

    /// Starts fetching a partition from `start`.
    pub fn assign(&self, topic: &str, partition: i32, start: StartOffset) {
        let position = match start {
            StartOffset::Offset(o) => Some(o),
            _ => None,
        };
        lock(&self.inner.partitions).insert(
            (topic.to_string(), partition),
            PartitionState {
                start,
                position,
                generation: 0,
                paused: false,
                failed: false,
                high_watermark: -1,
                consumed: position,
                fetched_records: 0,
                fetched_bytes: 0,
            },
        );
        self.inner.wake.notify_waiters();
    }

    /// Stops fetching a partition; its buffered records are dropped.
    pub fn unassign(&self, topic: &str, partition: i32) {
        lock(&self.inner.partitions).remove(&(topic.to_string(), partition));
        self.inner.wake.notify_waiters();
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        lock(&self.inner.partitions).keys().cloned().collect()
    }

    /// Moves a partition to `offset`; records fetched before are dropped. Also clears
    /// an out-of-range failure.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = lock(&self.inner.partitions).get_mut(&(topic.to_string(), partition)) {
            p.position = Some(offset);
            p.consumed = Some(offset);
            p.generation += 1;
            p.failed = false;
        }
        self.inner.wake.notify_waiters();
    }

    /// Pauses or resumes fetching a partition.
    pub fn set_paused(&self, topic: &str, partition: i32, paused: bool) {
        if let Some(p) = lock(&self.inner.partitions).get_mut(&(topic.to_string(), partition)) {
            p.paused = paused;
        }
        self.inner.wake.notify_waiters();
    }

    /// The offset after the last record the consumer was given (where it would resume).
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.inner.partitions)
            .get(&(topic.to_string(), partition))
            .and_then(|p| p.consumed.or(p.position))
    }

    /// The partition's high watermark as of the last fetch (-1 before one).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> i64 {
        lock(&self.inner.partitions)
            .get(&(topic.to_string(), partition))
            .map_or(-1, |p| p.high_watermark)
    }

    /// The next batch of records (or a partition's error); `None` once closed.
    /// Cancel-safe: a dropped call loses nothing.
    pub async fn next_batch(&self) -> Option<Result<FetchedBatch, ConsumeError>> {
        let mut out = self.out.lock().await;
        loop {
            if self.inner.closed.load(Ordering::Acquire) {
                return None;
            }
            let mut raw = match out.rest.take() {
                Some(raw) => raw,
                None => {
                    let item = tokio::select! {
                        item = out.rx.recv() => item?,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    };
                    match item {
                        Item::Error(e) => return Some(Err(e)),
                        Item::Fetched(raw) => raw,
                    }
                }
            };
            // Nothing is awaited from here on, so a dropped call loses nothing.
            out.rest = raw.split_rest(self.inner.config.fetch.max_bytes as usize);
            if let Some(result) = self.decode(raw) {
                return Some(result);
            }
        }
    }

    /// Decodes fetched bytes for the consumer: `None` when they are stale (the
    /// partition was moved or unassigned since) or hold no record to hand over.
    fn decode(&self, raw: RawFetch) -> Option<Result<FetchedBatch, ConsumeError>> {
        let key = (raw.topic, raw.partition);
        let is_current = |parts: &BTreeMap<(String, i32), PartitionState>| {
            parts
                .get(&key)
                .is_some_and(|p| p.generation == raw.generation)
        };
        if !is_current(&lock(&self.inner.partitions)) {
            return None;
        }
        let opts = &self.inner.config.fetch;
        let decoded = extract_records(
            &raw.records,
            raw.fetch_offset,
            opts.isolation,
            &raw.aborted,
            opts.verify_crc,
        );
        let mut parts = lock(&self.inner.partitions);
        // Checked again: the partition may have moved while this was decoded.
        let p = parts
            .get_mut(&key)
            .filter(|p| p.generation == raw.generation)?;
        let mut records = match decoded {
            Ok((records, _)) => records,
            Err(source) => {
                // Stop this partition at the bad data until it is moved (seek) past it;
                // what was fetched after it is dropped.
                p.failed = true;
                p.generation += 1;
                p.position = Some(raw.fetch_offset);
                drop(parts);
                self.inner.wake.notify_waiters();
                return Some(Err(ConsumeError::new(ConsumeErrorKind::Corrupt {
                    offset: raw.fetch_offset,
                    source,
                })
                .at(&key.0, key.1)));
            }
        };
        p.consumed = Some(records.last()?.offset + 1);
        p.fetched_records += records.len() as u64;
        p.fetched_bytes += raw.records.len() as u64;
        drop(parts);
        if let Some(age) = self.inner.config.max_message_age {
            let oldest = crate::fetch::now_ms() - age.as_millis() as i64;
            records.retain(|r| r.timestamp >= oldest);
            if records.is_empty() {
                return None;
            }
        }
        let (topic, partition) = key;
        Some(Ok(FetchedBatch {
            topic,
            partition,
            records,
            high_watermark: raw.high_watermark,
            _permit: raw.permit,
        }))
    }

    /// Stops every fetch; `next_batch` returns `None`.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for (_, w) in lock(&self.inner.workers).drain() {
            w.abort();
        }
        self.inner.wake.notify_waiters();
    }

    /// The client the fetcher uses.
    pub fn client(&self) -> &KafkaClient {
        &self.inner.client
    }
}

/// Starts a worker for every broker that leads an assigned partition.
async fn supervise(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let wanted: Vec<(String, i32)> = lock(&inner.partitions)
            .iter()
            .filter(|(_, p)| !p.failed)
            .map(|(k, _)| k.clone())
            .collect();
        // Brokers and how many of the partitions each leads.
        let mut leaders: HashMap<i32, (BrokerInfo, usize)> = HashMap::new();
        for (topic, partition) in &wanted {
            match inner.client.leader(topic, *partition).await {
                Ok(b) => leaders.entry(b.node_id).or_insert((b, 0)).1 += 1,
                // The topic or partition does not exist (or no longer): say so once,
                // and stop fetching it until it is assigned or moved again.
                Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                    if let Some(p) = lock(&inner.partitions).get_mut(&(topic.clone(), *partition)) {
                        p.failed = true;
                    }
                    let _ = inner
                        .tx
                        .send(Item::Error(ConsumeError::from(e).at(topic, *partition)));
                }
                Err(_) => {}
            }
        }
        {
            let mut workers = lock(&inner.workers);
            workers.retain(|_, w| !w.is_finished());
            for (broker, led) in leaders.into_values() {
                for lane in 0..led.min(inner.config.fetches_per_broker) {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        workers.entry((broker.node_id, lane))
                    {
                        let task = tokio::spawn(worker(inner.clone(), broker.clone(), lane));
                        slot.insert(task.abort_handle());
                    }
                }
            }
        }
        let wake = inner.wake.notified();
        let _ = tokio::time::timeout(Duration::from_millis(250), wake).await;
    }
}

/// A broker's fetch session (KIP-227).
#[derive(Default)]
struct Session {
    id: i32,
    epoch: i32,
    /// What the broker has: fetch offset per partition.
    sent: HashMap<(String, i32), i64>,
}

impl Session {
    fn reset(&mut self) {
        *self = Session::default();
    }
}

/// Resolves `StartOffset`s and applies the out-of-range policy.
async fn resolve(
    inner: &Inner,
    topic: &str,
    partition: i32,
    start: StartOffset,
) -> Result<i64, ConsumeError> {
    let c = &inner.client;
    let at = |e: kafka_net::Error| ConsumeError::from(e).at(topic, partition);
    match start {
        StartOffset::Offset(o) => Ok(o),
        StartOffset::Earliest => c.offset_earliest(topic, partition).await.map_err(at),
        StartOffset::Latest => c.offset_latest(topic, partition).await.map_err(at),
        StartOffset::Timestamp(ts) => match c
            .offsets_for_times(topic, partition, ts)
            .await
            .map_err(at)?
        {
            Some(found) => Ok(found.offset),
            None => c.offset_latest(topic, partition).await.map_err(at),
        },
    }
}

/// A partition a worker fetches: key, position, start, generation.
type Wanted = ((String, i32), Option<i64>, StartOffset, u64);

/// Keeps one Fetch in flight to `broker` for the partitions of `lane`: the broker's
/// partitions (in key order) are dealt out over its lanes.
async fn worker(inner: Arc<Inner>, broker: BrokerInfo, lane: usize) {
    let mut session = Session::default();
    let mut rotation = 0usize;
    let mut idle_since: Option<Instant> = None;
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let wake = inner.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // The partitions this broker leads now.
        let metadata = match inner.client.metadata().await {
            Ok(m) => m,
            Err(_) => {
                tokio::time::sleep(inner.config.retry_backoff).await;
                continue;
            }
        };
        let led: Vec<Wanted> = lock(&inner.partitions)
            .iter()
            .filter(|(_, p)| !p.paused && !p.failed)
            .filter(|((t, p), _)| {
                metadata
                    .leader(t, *p)
                    .is_some_and(|b| b.node_id == broker.node_id)
            })
            .map(|(k, p)| (k.clone(), p.position, p.start, p.generation))
            .collect();
        let lanes = led.len().min(inner.config.fetches_per_broker).max(1);
        let mine: Vec<Wanted> = led
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % lanes == lane)
            .map(|(_, w)| w)
            .collect();
        if mine.is_empty() {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), wake).await;
            continue;
        }
        idle_since = None;
        // Resolve start offsets first.
        let mut fetchable = Vec::new();
        for ((topic, partition), position, start, generation) in mine {
            let position = match position {
                Some(p) => p,
                None => match resolve(&inner, &topic, partition, start).await {
                    Ok(p) => {
                        let mut parts = lock(&inner.partitions);
                        match parts.get_mut(&(topic.clone(), partition)) {
                            Some(s) if s.generation == generation => {
                                s.position = Some(p);
                                s.consumed.get_or_insert(p);
                            }
                            _ => continue,
                        }
                        p
                    }
                    Err(e) => {
                        tracing::debug!(%topic, partition, error = %e, "cannot resolve the start offset");
                        continue;
                    }
                },
            };
            fetchable.push((topic, partition, position, generation));
        }
        // Wait while the buffer is full.
        if inner.buffer.available_permits() < inner.config.fetch.max_bytes as usize {
            let _ = tokio::time::timeout(Duration::from_millis(50), wake).await;
            continue;
        }
        // Rotate the order of partitions in each request, as librdkafka does: brokers
        // fill a response partition by partition, so a fixed order starves the last.
        if !fetchable.is_empty() {
            rotation = rotation.wrapping_add(1);
            let by = rotation % fetchable.len();
            fetchable.rotate_left(by);
        }
        if let Err(e) = fetch_once(&inner, &broker, lane, &mut session, &metadata, fetchable).await
        {
            tracing::debug!(broker = %broker.addr(), error = %e, "fetch failed");
            session.reset();
            let _ = inner.client.refresh_metadata().await;
            tokio::time::sleep(inner.config.retry_backoff).await;
        }
    }
}

async fn fetch_once(
    inner: &Arc<Inner>,
    broker: &BrokerInfo,
    lane: usize,
    session: &mut Session,
    metadata: &kafka_net::ClusterMetadata,
    fetchable: Vec<(String, i32, i64, u64)>,
) -> Result<(), ConsumeError> {
    let purpose = match lane {
        0 => Purpose::Fetch,
        n => Purpose::FetchLane(u8::try_from(n).unwrap_or(u8::MAX)),
    };
    let conn = inner.client.connection(broker, purpose).await?;
    let version = conn.versions().version_for(ApiKey::Fetch)?;
    let use_sessions = inner.config.sessions && version >= 7;
    if !use_sessions {
        session.reset();
    }
    let by_id = version >= 13;
    let topic_id = |t: &str| metadata.topics.get(t).map_or(Uuid::NIL, |i| i.id);
    let opts = &inner.config.fetch;
    // Full fetch: every partition. Incremental: only those whose offset changed, and
    // the ones no longer wanted as forgotten.
    let incremental = use_sessions && session.id != 0;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (topic, partition, position, _) in &fetchable {
        if incremental && session.sent.get(&(topic.clone(), *partition)) == Some(position) {
            continue;
        }
        let p = FetchPartition {
            partition: *partition,
            fetch_offset: *position,
            partition_max_bytes: opts.max_bytes,
            log_start_offset: -1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| {
            if by_id {
                t.topic_id == topic_id(topic)
            } else {
                t.topic.as_str() == topic
            }
        }) {
            Some(t) => t.partitions.push(p),
            None => topics.push(FetchTopic {
                topic: if by_id {
                    Default::default()
                } else {
                    topic.clone().into()
                },
                topic_id: if by_id { topic_id(topic) } else { Uuid::NIL },
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    if incremental {
        for (topic, partition) in session.sent.keys() {
            if !fetchable
                .iter()
                .any(|(t, p, _, _)| t == topic && p == partition)
            {
                match forgotten.iter_mut().find(|f| f.topic.as_str() == topic) {
                    Some(f) => f.partitions.push(*partition),
                    None => forgotten.push(ForgottenTopic {
                        topic: if by_id {
                            Default::default()
                        } else {
                            topic.clone().into()
                        },
                        topic_id: if by_id { topic_id(topic) } else { Uuid::NIL },
                        partitions: vec![*partition],
                        ..Default::default()
                    }),
                }
            }
        }
    }
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: opts.max_wait.as_millis().min(i32::MAX as u128) as i32,
        min_bytes: opts.min_bytes,
        max_bytes: inner.config.max_bytes,
        isolation_level: opts.isolation.code(),
        session_id: if use_sessions { session.id } else { 0 },
        session_epoch: if use_sessions { session.epoch } else { -1 },
        topics,
        forgotten_topics_data: forgotten,
        ..Default::default()
    };
    let response = conn.send_version(&request, version).await?;
    let top = ErrorCode::from(response.error_code);
    if matches!(
        top,
        ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch
    ) {
        // Evicted or out of step: start over with a full fetch.
        session.reset();
        return Ok(());
    }
    if !top.is_ok() {
        return Err(ConsumeErrorKind::Broker(top).into());
    }
    if use_sessions {
        if session.id == 0 && response.session_id == 0 {
            // The broker would not open a session: full fetches from now on.
        } else {
            if session.id == 0 {
                session.id = response.session_id;
                session.epoch = 0;
            }
            session.epoch = if session.epoch >= i32::MAX - 1 {
                1
            } else {
                session.epoch + 1
            };
            session.sent = fetchable
                .iter()
                .map(|(t, p, o, _)| ((t.clone(), *p), *o))
                .collect();
        }
    }
    let mut refresh = false;
    for t in &response.responses {
        let topic = if by_id {
            match metadata.topic_name(&t.topic_id) {
                Some(n) => n.to_string(),
                None => continue,
            }
        } else {
            t.topic.to_string()
        };
        for p in &t.partitions {
            let Some((_, _, position, generation)) = fetchable
                .iter()
                .find(|(tt, pp, _, _)| *tt == topic && *pp == p.partition_index)
            else {
                continue;
            };
            let code = ErrorCode::from(p.error_code);
            match code {
                ErrorCode::None => {}
                ErrorCode::OffsetOutOfRange => {
                    out_of_range(
                        inner,
                        &topic,
                        p.partition_index,
                        *position,
                        *generation,
                        (p.log_start_offset, p.high_watermark),
                    )
                    .await;
                    continue;
                }
                ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::UnknownTopicId => {
                    refresh = true;
                    continue;
                }
                other => {
                    let e = ConsumeError::new(ConsumeErrorKind::Broker(other))
                        .at(&topic, p.partition_index);
                    if !other.is_retriable() {
                        let _ = inner.tx.send(Item::Error(e));
                    }
                    continue;
                }
            }
            // Move on by the batch headers alone; the consumer decodes (and checks) the
            // records in `next_batch` while this worker sends the next Fetch.
            let bytes = p.records.clone().unwrap_or_default();
            let next = next_offset_after(&bytes).map_or(*position, |n| n.max(*position));
            let size: usize = bytes.len().max(1);
            // Take the buffer space first, then advance and queue under the lock, so
            // that a partition's fetches queue in offset order whichever lane (or
            // worker, after a leader change) fetched them.
            let permit = if next > *position {
                let permits = size.min(inner.config.prefetch_bytes) as u32;
                inner.buffer.clone().acquire_many_owned(permits).await.ok()
            } else {
                None
            };
            let mut parts = lock(&inner.partitions);
            let Some(s) = parts.get_mut(&(topic.clone(), p.partition_index)) else {
                continue;
            };
            if s.generation != *generation || s.position != Some(*position) {
                continue;
            }
            s.position = Some(next);
            s.high_watermark = p.high_watermark;
            if next == *position {
                continue;
            }
            let _ = inner.tx.send(Item::Fetched(RawFetch {
                topic: topic.clone(),
                partition: p.partition_index,
                records: bytes,
                aborted: p.aborted_transactions.clone().unwrap_or_default(),
                fetch_offset: *position,
                high_watermark: p.high_watermark,
                generation: *generation,
                permit,
            }));
        }
    }
    if refresh {
        let _ = inner.client.refresh_metadata().await;
        inner.wake.notify_waiters();
    }
    Ok(())
}

/// Applies the out-of-range policy to a partition.
async fn out_of_range(
    inner: &Inner,
    topic: &str,
    partition: i32,
    offset: i64,
    generation: u64,
    log: (i64, i64),
) {
    let target = match &inner.config.offset_reset {
        OffsetReset::Earliest => resolve(inner, topic, partition, StartOffset::Earliest)
            .await
            .ok(),
        OffsetReset::Latest => resolve(inner, topic, partition, StartOffset::Latest)
            .await
            .ok(),
        OffsetReset::Error => None,
        OffsetReset::Custom(f) => f(topic, partition, offset, log),
    };
    let mut parts = lock(&inner.partitions);
    let Some(s) = parts.get_mut(&(topic.to_string(), partition)) else {
        return;
    };
    if s.generation != generation {
        return;
    }
    match target {
        Some(o) => {
            tracing::debug!(
                topic,
                partition,
                offset,
                reset_to = o,
                "offset out of range: reset"
            );
            s.position = Some(o);
            s.consumed = Some(o);
            s.generation += 1;
        }
        None => {
            s.failed = true;
            let e = ConsumeError::new(ConsumeErrorKind::OffsetOutOfRange {
                offset,
                low: log.0,
                high: log.1,
            })
            .at(topic, partition);
            let _ = inner.tx.send(Item::Error(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Isolation;
    use bytes::BytesMut;
    use kafka_protocol::records::RecordBatch;

    /// Three batches of 4 records (offsets 0..12), and where each batch ends.
    fn three_batches() -> (Bytes, Vec<usize>) {
        let mut buf = BytesMut::new();
        let mut ends = Vec::new();
        for base in [0i64, 4, 8] {
            let records = (base..base + 4)
                .map(|offset| Record {
                    offset,
                    value: Some(Bytes::from(vec![b'x'; 100])),
                    ..Record::default()
                })
                .collect();
            RecordBatch::new(base, records).encode(&mut buf).unwrap();
            ends.push(buf.len());
        }
        (buf.freeze(), ends)
    }

    fn raw_of(records: Bytes) -> RawFetch {
        RawFetch {
            topic: "t".into(),
            partition: 3,
            records,
            aborted: Vec::new(),
            fetch_offset: 0,
            high_watermark: 12,
            generation: 7,
            permit: None,
        }
    }

    #[test]
    fn a_large_fetch_is_handed_over_in_parts_with_their_share_of_the_buffer() {
        let (bytes, ends) = three_batches();
        let buffer = Arc::new(Semaphore::new(bytes.len()));
        let permit = buffer
            .clone()
            .try_acquire_many_owned(bytes.len() as u32)
            .unwrap();
        let mut raw = RawFetch {
            permit: Some(permit),
            ..raw_of(bytes.clone())
        };
        // Room for a batch and a half: one batch per part.
        let limit = ends[0] + ends[0] / 2;
        let mut parts = Vec::new();
        loop {
            let rest = raw.split_rest(limit);
            parts.push(raw);
            match rest {
                Some(r) => raw = r,
                None => break,
            }
        }
        assert_eq!(parts.len(), 3);
        let mut offsets = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            assert_eq!(part.records, bytes.slice(start..ends[i]));
            assert_eq!(part.fetch_offset, 4 * i as i64);
            assert_eq!((part.partition, part.generation), (3, 7));
            assert_eq!(
                part.permit.as_ref().map(|p| p.num_permits()),
                Some(ends[i] - start)
            );
            let (records, _) = extract_records(
                &part.records,
                part.fetch_offset,
                Isolation::ReadUncommitted,
                &[],
                true,
            )
            .unwrap();
            offsets.extend(records.iter().map(|r| r.offset));
        }
        assert_eq!(offsets, (0..12).collect::<Vec<_>>());
        // The buffer space comes back as the parts are dropped.
        assert_eq!(buffer.available_permits(), 0);
        drop(parts);
        assert_eq!(buffer.available_permits(), bytes.len());
        // A limit that holds everything, or less than a batch.
        assert!(raw_of(bytes.clone()).split_rest(bytes.len()).is_none());
        let mut tiny = raw_of(bytes.clone());
        let rest = tiny.split_rest(1).unwrap();
        assert_eq!(tiny.records.len(), ends[0]);
        assert_eq!(rest.fetch_offset, 4);
        // With aborted transactions listed, the fetch is decoded whole.
        let mut with_aborted = RawFetch {
            aborted: vec![AbortedTransaction {
                producer_id: 1,
                first_offset: 0,
                ..Default::default()
            }],
            ..raw_of(bytes.clone())
        };
        assert!(with_aborted.split_rest(1).is_none());
        assert_eq!(with_aborted.records, bytes);
    }
}
