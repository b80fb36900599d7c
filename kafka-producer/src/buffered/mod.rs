//! The buffered producer (the Java client's `KafkaProducer`, kafka-go's `Writer`):
//! records accumulate per partition until `linger` or `batch_size`; one sender task
//! puts every ready partition led by a broker into one Produce request and hands the
//! requests to the broker's connection in order, up to `max_in_flight` per broker, so
//! a partition may have up to `max_in_flight` batches in flight. With idempotence (the
//! default) they carry the producer id, epoch and sequence numbers, a failed batch
//! goes back in its place and the ones behind it (which the broker refuses out of
//! order) follow it, and the epoch is bumped as the Java client does when the broker
//! lost the producer's state or a batch failed for good, so retries never duplicate
//! or reorder. Without idempotence, as in the Java client and librdkafka, a retried
//! batch can land after batches sent behind it (and be written twice when only its
//! answer was lost); `max_in_flight = 1` keeps order then.

mod append;
mod encoder;
mod reports;
mod request;
mod sender;
mod stats;
mod transaction;

pub use stats::{ProducerPartitionStats, ProducerStatistics};
pub use transaction::TransactionState;

use append::Queueing;
use request::*;
use sender::*;

use crate::config::{Acks, ProducerConfig};
use crate::error::{ProduceError, ProduceErrorKind};
use crate::partitioner::Partitioner;
use crate::record::{now_ms, ProducerRecord, RecordMetadata};
use bytes::Bytes;
use kafka_net::{BrokerInfo, Client, KafkaClient, NewTopic, Purpose};
use kafka_protocol::compression::Compression;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use kafka_protocol::records::{BatchSeal, RecordBatchWriter, SealedBatch};
use kafka_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// A record's delivery report: what the broker said, or why the record failed.
pub type DeliveryReport = Result<RecordMetadata, ProduceError>;

/// Where a record's delivery report goes.
enum Delivery {
    Future(oneshot::Sender<DeliveryReport>),
    Callback(DeliveryCallback),
    /// One callback for many records (`send_batch`).
    Shared(append::SharedCallback),
}

impl Delivery {
    fn report(self, report: DeliveryReport) {
        match self {
            Delivery::Future(tx) => {
                let _ = tx.send(report);
            }
            Delivery::Callback(mut callback) => callback.call(report),
            Delivery::Shared(mut callback) => callback.call(report),
        }
    }

    /// Drops it unreported (the caller returns the error instead).
    fn forget(self) {
        match self {
            Delivery::Callback(mut callback) => callback.0 = None,
            Delivery::Shared(mut callback) => callback.0 = None,
            Delivery::Future(_) => {}
        }
    }
}

type Callback = Box<dyn FnOnce(DeliveryReport) + Send>;

/// A user's callback, called once: with the report, or with `Closed` if the producer
/// drops the record unreported (as a dropped `DeliveryFuture` sender reads).
struct DeliveryCallback(Option<Callback>);

impl DeliveryCallback {
    fn call(&mut self, report: DeliveryReport) {
        if let Some(callback) = self.0.take() {
            // A panicking callback must not take the producer's task (and the reports
            // of the records after it) down with it.
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(report)));
            if called.is_err() {
                tracing::error!("a delivery callback panicked");
            }
        }
    }
}

impl Drop for DeliveryCallback {
    fn drop(&mut self) {
        // Only a record dropped unreported is told `Closed`: the error (a box) is not
        // made for every record whose callback already ran.
        if self.0.is_some() {
            self.call(Err(ProduceErrorKind::Closed.into()));
        }
    }
}

/// The future of one record's delivery.
#[derive(Debug)]
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata, ProduceError>>);

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(ProduceErrorKind::Closed.into())))
    }
}

struct Batch {
    /// The records in their wire form: filling, then sealed when first sent.
    records: BatchRecords,
    /// Records in the batch.
    count: usize,
    /// Each record's report and create time.
    deliveries: reports::Reports,
    /// The records' size estimates, summed (what `batch_size` and `max_request_size`
    /// count, and what the batch charges the buffer).
    bytes: usize,
    created: Instant,
    /// The buffer bytes its records (and their reports' slots) hold.
    memory: Charge,
    /// Sequence and epoch the batch was first sent with (idempotence); kept on retry.
    sequence: Option<(i32, i16)>,
    attempts: u32,
    last_error: Option<ProduceError>,
    /// Position in the partition's stream of batches: retries go back in this order.
    order: u64,
}

/// A batch's records: written into the batch's wire form as they are queued (the Java
/// client's accumulator), so a queued record holds its wire bytes and its report, and
/// nothing of the `ProducerRecord` it came from. The batch is sealed (header written,
/// compressed) when it is first sent, and its sealed bytes are what a retry sends.
enum BatchRecords {
    Open(RecordBatchWriter),
    Sealed(SealedBatch),
}

impl Batch {
    /// Records may still be appended.
    fn is_open(&self) -> bool {
        matches!(self.records, BatchRecords::Open(_))
    }

    /// Bytes held by the reports' slots (as many as were set aside).
    fn report_bytes(&self) -> usize {
        self.deliveries.capacity() * REPORT_BYTES
    }
}

/// Bytes of the producer's buffer (`buffer_memory`) held by a batch's records, given
/// back when the batch is dropped.
struct Charge {
    memory: Arc<Semaphore>,
    bytes: u32,
    /// Its partition's bytes out (`PartitionQueue::out_bytes`) while the batch is out
    /// of its queue (sent, or being compressed); they follow `bytes`.
    out: Option<Arc<AtomicUsize>>,
}

impl Charge {
    /// The batch leaves its queue: its bytes count among its partition's `out`.
    fn go_out(&mut self, out: &Arc<AtomicUsize>) {
        out.fetch_add(self.bytes as usize, Ordering::Relaxed);
        self.out = Some(out.clone());
    }

    /// The batch is back in its queue (to be retried).
    fn come_back(&mut self) {
        if let Some(out) = self.out.take() {
            out.fetch_sub(self.bytes as usize, Ordering::Relaxed);
        }
    }

    /// Gives back what the batch no longer holds: a sealed batch holds its wire bytes
    /// (compressed ones far fewer than its records' size estimates).
    fn shrink_to(&mut self, held: usize) {
        self.give_back_over(held, 0);
    }

    /// Gives back what the batch no longer holds once that is more than `slack` (a
    /// record written into room its chunk was charged for: given back by the kilobyte,
    /// not at each record, as that takes the semaphore's lock).
    fn give_back_over(&mut self, held: usize, slack: u32) {
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        if held.saturating_add(slack) < self.bytes {
            let given = (self.bytes - held) as usize;
            self.memory.add_permits(given);
            if let Some(out) = &self.out {
                out.fetch_sub(given, Ordering::Relaxed);
            }
            self.bytes = held;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory.add_permits(self.bytes as usize);
        self.come_back();
    }
}

#[derive(Default)]
struct PartitionQueue {
    batches: VecDeque<Batch>,
    /// Orders of the batches in flight (several with idempotence, else at most one).
    in_flight: std::collections::BTreeSet<u64>,
    next_sequence: i32,
    next_order: u64,
    /// Not before this instant (retry backoff).
    retry_at: Option<Instant>,
    /// Batches delivered, retried and failed (the statistics).
    counters: stats::PartitionCounters,
    /// Records and bytes in the batch last taken to be sent: a new batch's room, so its
    /// buffers do not grow (and move their records) as it fills.
    last_len: usize,
    last_bytes: usize,
    /// What the partition's batches out of the queue hold of the buffer (see `held`).
    out_bytes: Arc<AtomicUsize>,
    /// A record waits for the partition's room (`partition_memory`): its open batch
    /// grows no more, so it goes as soon as it may.
    waited: bool,
}

impl PartitionQueue {
    /// What the partition's batches hold of the buffer, queued and out.
    fn held(&self) -> usize {
        let queued: usize = self.batches.iter().map(|b| b.memory.bytes as usize).sum();
        queued + self.out_bytes.load(Ordering::Relaxed)
    }

    /// Puts a batch back in its place (by order), ahead of the batches after it.
    fn requeue(&mut self, mut batch: Batch) {
        batch.memory.come_back();
        self.in_flight.remove(&batch.order);
        let at = self
            .batches
            .iter()
            .position(|b| b.order > batch.order)
            .unwrap_or(self.batches.len());
        self.batches.insert(at, batch);
    }
}

/// What a queued record holds besides its wire bytes: its report's slot in the
/// batch (where the report goes, and the create time), charged to the buffer with it
/// (at 100-byte records, a quarter of what they hold).
const REPORT_BYTES: usize = std::mem::size_of::<(Delivery, i64)>();

/// The highest Produce version a transactional producer sends (see `submit`).
const TXN_PRODUCE_MAX: i16 = 11;

/// A topic name shared by every record, batch and report of it (no copy per record).
type Topic = Arc<str>;

#[derive(Default)]
struct State {
    queues: BTreeMap<(Topic, i32), PartitionQueue>,
    /// Records queued or in flight.
    pending: usize,
    flushing: usize,
    /// Producer id and epoch (idempotence).
    producer: Option<(i64, i16)>,
    /// An epoch bump is due: nothing is sent until the requests in flight are back.
    bump: bool,
    /// Produce requests made and not answered, over all brokers (sent, being
    /// encoded, or waiting for a slot).
    requests: usize,
    /// The sender held a batch back until a batch in flight is answered (the
    /// partition's `max_in_flight`, or a retry waiting for the batches before it):
    /// answers wake it only then.
    stalled: bool,
    /// The transaction (transactional producers).
    txn: transaction::Phase,
}

struct Inner {
    client: KafkaClient,
    config: ProducerConfig,
    partitioner: Arc<dyn Partitioner>,
    state: Mutex<State>,
    memory: Arc<Semaphore>,
    /// The least a record is charged to `memory`, its report's slot included
    /// (`buffer_memory / max_buffered_records`, rounded up; 0 without a record bound).
    record_floor: usize,
    /// The most one partition's batches may hold of `memory` (`partition_memory`).
    partition_memory: usize,
    /// Wakes the sender.
    wake: Notify,
    /// Wakes `flush` when records complete.
    progress: Notify,
    closed: AtomicBool,
    /// Requests in flight per broker address and connection (`lane`).
    in_flight: Mutex<HashMap<(String, u8), Arc<Semaphore>>>,
    /// Compressed requests being encoded at once: at most one per CPU core (the
    /// encoder threads, `encoder`), so that the sender waits rather than queue more
    /// requests than can be compressed.
    encoders: Arc<Semaphore>,
    /// The configured fixed topic, shared.
    topic: Option<Topic>,
    epoch_lock: tokio::sync::Mutex<()>,
    /// Requests being encoded, in the order they go on the wire (see `submitter`).
    submissions: mpsc::UnboundedSender<Submission>,
    /// Submissions sent to the submitter and not yet handed to a connection.
    queued: std::sync::atomic::AtomicUsize,
    /// `transactional_id` and the transactional calls (transactional producers).
    txn: Option<transaction::Transactions>,
    /// The fixed topic's partition count (low `COUNT_BITS` bits) and the metadata
    /// generation it was read in (the rest); 0 when not read yet.
    topic_partitions: std::sync::atomic::AtomicU64,
}

impl Inner {
    /// What a record of `size` (its estimate) is charged to the buffer when queued: its
    /// size and its report's slot, or `record_floor` when that is more.
    fn charge(&self, size: usize) -> usize {
        (size + REPORT_BYTES).max(self.record_floor)
    }

    /// What a batch of `count` records holds in the buffer when its bytes and reports'
    /// slots come to `held`: at least `record_floor` per record.
    fn held(&self, held: usize, count: usize) -> usize {
        held.max(count * self.record_floor)
    }
}

/// Bits of `Inner::topic_partitions` that hold the count.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// A Produce request on its way to a broker's connection: encoded (compressed) off the
/// sender task, submitted in order by the submitter.
struct Submission {
    broker: BrokerInfo,
    /// Which of the broker's produce connections.
    lane: u8,
    encoded: Encoding,
    slot: Slot,
}

/// A request's slot of its connection's `max_in_flight`.
enum Slot {
    /// Taken by the sender (an uncompressed request).
    Held(OwnedSemaphorePermit),
    /// Taken by the submitter once the request is encoded (a compressed one), so that
    /// the sender goes on to compress the next while this one waits for its slot.
    Wait(Arc<Semaphore>),
}

/// A Produce request with its partitions' records apart, as the parts of their sealed
/// batches (in the request's order), which the connection writes without copying.
struct EncodedRequest {
    request: ProduceRequest,
    records: Vec<Vec<Bytes>>,
}

enum Encoding {
    Done(Vec<Outgoing>, EncodedRequest),
    /// The request, or `None` when the encoder panicked.
    Running(tokio::sync::oneshot::Receiver<(Vec<Outgoing>, Option<EncodedRequest>)>),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The batching, idempotent producer. Cheap to clone; all clones share one buffer.
#[derive(Clone)]
pub struct BufferedProducer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BufferedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedProducer")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl BufferedProducer {
    /// A producer over a connected client. The configuration is checked here.
    pub fn new(client: KafkaClient, config: ProducerConfig) -> Result<Self, ProduceError> {
        config.validate()?;
        let partitioner = config
            .partitioner
            .clone()
            .unwrap_or_else(|| Arc::new(crate::partitioner::Murmur2::new()));
        let (submissions, submitted) = mpsc::unbounded_channel();
        let topic = config.topic.as_deref().map(Topic::from);
        let txn = config
            .transactional_id
            .clone()
            .map(|id| transaction::Transactions::new(id, config.transaction_timeout));
        let inner = Arc::new(Inner {
            txn,
            memory: Arc::new(Semaphore::new(config.buffer_memory)),
            record_floor: match config.max_buffered_records {
                0 => 0,
                n => config.buffer_memory.div_ceil(n),
            },
            partition_memory: config
                .partition_memory
                .unwrap_or(config.buffer_memory / 4 * 3)
                .max(config.max_request_size),
            client,
            config,
            partitioner,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            progress: Notify::new(),
            closed: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
            encoders: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            topic,
            epoch_lock: tokio::sync::Mutex::new(()),
            submissions,
            queued: std::sync::atomic::AtomicUsize::new(0),
            topic_partitions: std::sync::atomic::AtomicU64::new(0),
        });
        tokio::spawn(submitter(Arc::downgrade(&inner), submitted));
        tokio::spawn(sender(inner.clone()));
        Ok(BufferedProducer { inner })
    }

    /// Queues a record, waiting while the buffer (or its partition's share of it,
    /// `partition_memory`) is full; the future resolves when the broker acknowledged it
    /// (or it failed).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let placed = self.reserve(&record).await?;
        let (tx, rx) = oneshot::channel();
        let delivery = Delivery::Future(tx);
        if let Some(back) = self.try_enqueue(Queueing::new(placed, record, delivery))? {
            self.enqueue_when_room(back).await?;
        }
        Ok(DeliveryFuture(rx))
    }

    /// Queues a record as [`send`](Self::send) does, and hands its delivery report to
    /// `callback` instead of a future (the Java client's `send(record, callback)`,
    /// franz-go's promise). The callback is called exactly once, on the producer's
    /// task when the broker answers (so keep it short and do not block in it), in the
    /// order of the partition's records; if the producer is dropped with the record
    /// unsent, with [`ProduceErrorKind::Closed`]. A record that cannot be queued is
    /// an error here and the callback is not called. A panic in the callback is
    /// caught and logged.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(DeliveryReport) + Send + 'static,
    ) -> Result<(), ProduceError> {
        let placed = self.reserve(&record).await?;
        let delivery = Delivery::Callback(DeliveryCallback(Some(Box::new(callback))));
        match self.try_enqueue(Queueing::new(placed, record, delivery))? {
            None => Ok(()),
            Some(back) => self.enqueue_when_room(back).await,
        }
    }

    /// Places a record and takes its room in the buffer, waiting while it is full.
    async fn reserve(
        &self,
        record: &ProducerRecord,
    ) -> Result<(Topic, i32, usize, SemaphorePermit<'_>), ProduceError> {
        let (topic, partition, size) = self.place(record).await?;
        let permit = self.acquire_memory(self.inner.charge(size)).await?;
        Ok((topic, partition, size, permit))
    }

    /// Takes `bytes` of the buffer, waiting while it is full.
    async fn acquire_memory(&self, bytes: usize) -> Result<SemaphorePermit<'_>, ProduceError> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        // Room to spare (the usual case) is taken without the waiting future, which
        // cost a 100-byte record 7% of its CPU in a profile (BENCHMARKS.md, issue 16).
        let closed = || ProduceError::new(ProduceErrorKind::Closed);
        match self.inner.memory.try_acquire_many(n) {
            Ok(permit) => Ok(permit),
            Err(tokio::sync::TryAcquireError::NoPermits) => self
                .inner
                .memory
                .acquire_many(n)
                .await
                .map_err(|_| closed()),
            Err(tokio::sync::TryAcquireError::Closed) => Err(closed()),
        }
    }

    /// Queues a record if the buffer (and its partition's share of it,
    /// `partition_memory`) has room, else fails with [`ProduceErrorKind::BufferFull`]
    /// at once.
    pub async fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (topic, partition, size) = self.place(&record).await?;
        let permit = self.try_reserve(size)?;
        let (tx, rx) = oneshot::channel();
        let placed = (topic, partition, size, permit);
        self.try_enqueue_now(Queueing::new(placed, record, Delivery::Future(tx)))?;
        Ok(DeliveryFuture(rx))
    }

    /// Sends many records and waits for all of them; one result per record, in order.
    pub async fn send_all(
        &self,
        records: impl IntoIterator<Item = ProducerRecord>,
    ) -> Vec<Result<RecordMetadata, ProduceError>> {
        let mut futures = Vec::new();
        for r in records {
            futures.push(self.send(r).await);
        }
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            out.push(match f {
                Ok(f) => f.await,
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Sends everything queued now and waits until all of it is acknowledged or failed.
    pub async fn flush(&self) {
        lock(&self.inner.state).flushing += 1;
        self.inner.wake.notify_one();
        loop {
            let progress = self.inner.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if lock(&self.inner.state).pending == 0 {
                break;
            }
            self.inner.wake.notify_one();
            progress.await;
        }
        lock(&self.inner.state).flushing -= 1;
    }

    /// Flushes, then stops: later sends fail with [`ProduceErrorKind::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.flush().await;
        self.inner.wake.notify_one();
    }

    /// Records queued or in flight.
    pub fn pending(&self) -> usize {
        lock(&self.inner.state).pending
    }

    /// Queues a record without waiting, for code outside the async runtime (a plain
    /// thread, as librdkafka's `rd_kafka_produce` or franz-go's `TryProduce` are
    /// called): no future, no `block_on`. The callback is called as with
    /// [`send_with_callback`](Self::send_with_callback). Fails at once, and the
    /// callback is not called, when the buffer (or its partition's share) is full
    /// ([`ProduceErrorKind::BufferFull`]: wait for deliveries and call again, as
    /// librdkafka's callers do on `QUEUE_FULL`), when the topic's partition count is
    /// not in the client's cached metadata yet ([`ProduceErrorKind::WouldBlock`]: one
    /// [`send`](Self::send) to the topic, or the client's `partition_count`, fetches it),
    /// and for the reasons `send` fails.
    pub fn try_send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(DeliveryReport) + Send + 'static,
    ) -> Result<(), ProduceError> {
        let (topic, size) = self.check(&record)?;
        let partitions = self.cached_partition_count(&topic).ok_or_else(|| {
            ProduceError::new(ProduceErrorKind::WouldBlock(format!(
                "the partition count of topic {topic} is not known yet"
            )))
        })?;
        let partition = self.choose(&topic, &record, partitions)?;
        let permit = self.try_reserve(size)?;
        let delivery = Delivery::Callback(DeliveryCallback(Some(Box::new(callback))));
        let placed = (topic, partition, size, permit);
        self.try_enqueue_now(Queueing::new(placed, record, delivery))
    }

    /// Queues a record now, or fails with `BufferFull` when it would take its partition
    /// past `partition_memory` (its room goes back to the buffer, its report unmade).
    fn try_enqueue_now(&self, r: Queueing<'_>) -> Result<(), ProduceError> {
        match self.try_enqueue(r)? {
            None => Ok(()),
            Some(back) => {
                back.delivery.forget();
                Err(ProduceError::new(ProduceErrorKind::BufferFull(
                    self.inner.config.buffer_memory,
                )))
            }
        }
    }

    /// Takes a record's room in the buffer (`size` and its report's slot), or fails
    /// with `BufferFull`.
    fn try_reserve(&self, size: usize) -> Result<SemaphorePermit<'_>, ProduceError> {
        self.inner
            .memory
            .try_acquire_many(self.inner.charge(size) as u32)
            .map_err(|_| {
                ProduceError::new(ProduceErrorKind::BufferFull(
                    self.inner.config.buffer_memory,
                ))
            })
    }

    /// Picks the topic and partition, and checks the record's size.
    async fn place(&self, record: &ProducerRecord) -> Result<(Topic, i32, usize), ProduceError> {
        let (topic, size) = self.check(record)?;
        let partitions = self.partition_count(&topic).await?;
        let partition = self.choose(&topic, record, partitions)?;
        Ok((topic, partition, size))
    }

    /// The record's topic and size estimate, checked against the producer's state and
    /// limits.
    fn check(&self, record: &ProducerRecord) -> Result<(Topic, usize), ProduceError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ProduceErrorKind::Closed.into());
        }
        let topic = match (&self.inner.topic, &record.topic) {
            (Some(t), None) => t.clone(),
            (None, Some(t)) => Topic::from(t.as_str()),
            (Some(_), Some(_)) => {
                return Err(ProduceErrorKind::AmbiguousTopic(
                    "the record names a topic but the producer has a fixed one".into(),
                )
                .into())
            }
            (None, None) => {
                return Err(ProduceErrorKind::AmbiguousTopic(
                    "neither the record nor the producer names a topic".into(),
                )
                .into())
            }
        };
        let size = record.size_estimate();
        if size + 128 > self.inner.config.max_request_size {
            return Err(ProduceError::new(ProduceErrorKind::RecordTooLarge {
                size,
                max: self.inner.config.max_request_size,
            })
            .at(&topic, record.partition.unwrap_or(-1)));
        }
        Ok((topic, size))
    }

    /// The record's partition: its own (checked), or the partitioner's choice.
    fn choose(
        &self,
        topic: &Topic,
        record: &ProducerRecord,
        partitions: i32,
    ) -> Result<i32, ProduceError> {
        match record.partition {
            Some(p) if (0..partitions).contains(&p) => Ok(p),
            Some(p) => Err(ProduceError::new(ProduceErrorKind::NoSuchPartition {
                partition: p,
                partitions,
            })
            .at(topic, p)),
            None => Ok(self
                .inner
                .partitioner
                .partition(topic, record.key.as_deref(), partitions)),
        }
    }

    /// The topic's partition count from the client's cached metadata. The fixed
    /// topic's is kept with the metadata generation it was read in, so that a record
    /// costs two atomic loads here, not the metadata's lock.
    fn cached_partition_count(&self, topic: &str) -> Option<i32> {
        let client = &self.inner.client;
        let fixed = self.inner.topic.as_deref();
        if !fixed.is_some_and(|t| std::ptr::eq(t, topic)) {
            return client.cached_partition_count(topic);
        }
        let generation = client.metadata_generation();
        let kept = self.inner.topic_partitions.load(Ordering::Acquire);
        if kept != 0 && kept >> COUNT_BITS == generation & (u64::MAX >> COUNT_BITS) {
            return Some((kept & COUNT_MASK) as i32);
        }
        let n = client.cached_partition_count(topic)?;
        if let Ok(count) = u64::try_from(n) {
            if count <= COUNT_MASK {
                let kept = (generation << COUNT_BITS) | count;
                self.inner.topic_partitions.store(kept, Ordering::Release);
            }
        }
        Some(n)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, ProduceError> {
        let client = &self.inner.client;
        // The usual case, without a (boxed) call through the client trait.
        if let Some(n) = self.cached_partition_count(topic) {
            return Ok(n);
        }
        match client.partition_count(topic).await {
            Ok(n) => Ok(n),
            Err(e)
                if e.code() == Some(ErrorCode::UnknownTopicOrPartition)
                    && self.inner.config.auto_create_topics =>
            {
                match client.create_topics(vec![NewTopic::new(topic, -1)]).await {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
                    Err(e) => return Err(ProduceError::from(e).at(topic, -1)),
                }
                client
                    .partition_count(topic)
                    .await
                    .map_err(|e| ProduceError::from(e).at(topic, -1))
            }
            Err(e) => Err(ProduceError::from(e).at(topic, -1)),
        }
    }
}
