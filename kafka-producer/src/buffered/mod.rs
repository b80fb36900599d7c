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

mod transaction;

pub use transaction::TransactionState;

use crate::config::{Acks, ProducerConfig};
use crate::error::{ProduceError, ProduceErrorKind};
use crate::partitioner::Partitioner;
use crate::record::{now_ms, ProducerRecord, RecordMetadata};
use bytes::Bytes;
use kafka_net::{BrokerInfo, Client, KafkaClient, NewTopic, Purpose};
use kafka_protocol::compression::Compression;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use kafka_protocol::records::{Record, RecordBatch};
use kafka_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};

/// A record's delivery report: what the broker said, or why the record failed.
pub type DeliveryReport = Result<RecordMetadata, ProduceError>;

/// Where a record's delivery report goes.
enum Delivery {
    Future(oneshot::Sender<DeliveryReport>),
    Callback(DeliveryCallback),
}

impl Delivery {
    fn report(self, report: DeliveryReport) {
        match self {
            Delivery::Future(tx) => {
                let _ = tx.send(report);
            }
            Delivery::Callback(mut callback) => callback.call(report),
        }
    }

    /// Drops it unreported (the caller returns the error instead).
    fn forget(self) {
        if let Delivery::Callback(mut callback) = self {
            callback.0 = None;
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
        self.call(Err(ProduceErrorKind::Closed.into()));
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
    records: Vec<Record>,
    deliveries: Vec<Delivery>,
    bytes: usize,
    created: Instant,
    _memory: Option<OwnedSemaphorePermit>,
    /// Sequence and epoch the batch was first sent with (idempotence); kept on retry.
    sequence: Option<(i32, i16)>,
    attempts: u32,
    last_error: Option<ProduceError>,
    /// Position in the partition's stream of batches: retries go back in this order.
    order: u64,
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
}

impl PartitionQueue {
    /// Puts a batch back in its place (by order), ahead of the batches after it.
    fn requeue(&mut self, batch: Batch) {
        self.in_flight.remove(&batch.order);
        let at = self
            .batches
            .iter()
            .position(|b| b.order > batch.order)
            .unwrap_or(self.batches.len());
        self.batches.insert(at, batch);
    }
}

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
    /// Produce requests in flight, over all brokers.
    requests: usize,
    /// The transaction (transactional producers).
    txn: transaction::Phase,
}

struct Inner {
    client: KafkaClient,
    config: ProducerConfig,
    partitioner: Arc<dyn Partitioner>,
    state: Mutex<State>,
    memory: Arc<Semaphore>,
    /// Wakes the sender.
    wake: Notify,
    /// Wakes `flush` when records complete.
    progress: Notify,
    closed: AtomicBool,
    /// Requests in flight per broker address.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The configured fixed topic, shared.
    topic: Option<Topic>,
    epoch_lock: tokio::sync::Mutex<()>,
    /// Requests being encoded, in the order they go on the wire (see `submitter`).
    submissions: mpsc::UnboundedSender<Submission>,
    /// `transactional_id` and the transactional calls (transactional producers).
    txn: Option<transaction::Transactions>,
}

/// A Produce request on its way to a broker's connection: encoded (compressed) off the
/// sender task, submitted in order by the submitter.
struct Submission {
    broker: BrokerInfo,
    encoded: Encoding,
    permit: OwnedSemaphorePermit,
}

enum Encoding {
    Done(Vec<Outgoing>, ProduceRequest),
    /// The request, or `None` when the encoder panicked.
    Running(tokio::task::JoinHandle<(Vec<Outgoing>, Option<ProduceRequest>)>),
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
            client,
            config,
            partitioner,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            progress: Notify::new(),
            closed: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
            topic,
            epoch_lock: tokio::sync::Mutex::new(()),
            submissions,
        });
        tokio::spawn(submitter(Arc::downgrade(&inner), submitted));
        tokio::spawn(sender(inner.clone()));
        Ok(BufferedProducer { inner })
    }

    /// Queues a record, waiting while the buffer is full; the future resolves when the
    /// broker acknowledged it (or it failed).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (topic, partition, size, permit) = self.reserve(&record).await?;
        let (tx, rx) = oneshot::channel();
        self.enqueue(topic, partition, record, size, permit, Delivery::Future(tx))?;
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
        let (topic, partition, size, permit) = self.reserve(&record).await?;
        let callback = DeliveryCallback(Some(Box::new(callback)));
        self.enqueue(
            topic,
            partition,
            record,
            size,
            permit,
            Delivery::Callback(callback),
        )
    }

    /// Places a record and takes its room in the buffer, waiting while it is full.
    async fn reserve(
        &self,
        record: &ProducerRecord,
    ) -> Result<(Topic, i32, usize, OwnedSemaphorePermit), ProduceError> {
        let (topic, partition, size) = self.place(record).await?;
        let permit = self
            .inner
            .memory
            .clone()
            .acquire_many_owned(size as u32)
            .await
            .map_err(|_| ProduceError::new(ProduceErrorKind::Closed))?;
        Ok((topic, partition, size, permit))
    }

    /// Queues a record if the buffer has room, else fails with
    /// [`ProduceErrorKind::BufferFull`] at once.
    pub async fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (topic, partition, size) = self.place(&record).await?;
        let permit = self
            .inner
            .memory
            .clone()
            .try_acquire_many_owned(size as u32)
            .map_err(|_| {
                ProduceError::new(ProduceErrorKind::BufferFull(
                    self.inner.config.buffer_memory,
                ))
            })?;
        let (tx, rx) = oneshot::channel();
        self.enqueue(topic, partition, record, size, permit, Delivery::Future(tx))?;
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

    /// Picks the topic and partition, and checks the record's size.
    async fn place(&self, record: &ProducerRecord) -> Result<(Topic, i32, usize), ProduceError> {
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
        let partitions = self.partition_count(&topic).await?;
        let partition = match record.partition {
            Some(p) if (0..partitions).contains(&p) => p,
            Some(p) => {
                return Err(ProduceError::new(ProduceErrorKind::NoSuchPartition {
                    partition: p,
                    partitions,
                })
                .at(&topic, p))
            }
            None => self
                .inner
                .partitioner
                .partition(&topic, record.key.as_deref(), partitions),
        };
        Ok((topic, partition, size))
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, ProduceError> {
        let client = &self.inner.client;
        // The usual case, without a (boxed) call through the client trait.
        if let Some(n) = client
            .cached_metadata()
            .and_then(|m| m.partition_count(topic))
        {
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

    fn enqueue(
        &self,
        topic: Topic,
        partition: i32,
        record: ProducerRecord,
        size: usize,
        permit: OwnedSemaphorePermit,
        delivery: Delivery,
    ) -> Result<(), ProduceError> {
        if self.inner.closed.load(Ordering::Acquire) {
            delivery.forget();
            return Err(ProduceErrorKind::Closed.into());
        }
        let batch_size = self.inner.config.batch_size;
        let mut wake_sender = false;
        {
            let mut state = lock(&self.inner.state);
            if self.inner.txn.is_some() && !state.txn.open() {
                // Checked under the lock commit and abort take to close the
                // transaction, so no record slips in after they flushed.
                let e = ProduceErrorKind::TransactionState {
                    call: "send",
                    state: state.txn.state,
                };
                drop(state);
                delivery.forget();
                return Err(e.into());
            }
            state.pending += 1;
            let queue = state.queues.entry((topic, partition)).or_default();
            let open = queue.batches.back_mut().filter(|b| {
                b.sequence.is_none() && b.attempts == 0 && b.bytes + size <= batch_size
            });
            let batch = match open {
                Some(b) => b,
                None => {
                    // A new batch: the sender must learn its linger deadline.
                    wake_sender = true;
                    let order = queue.next_order;
                    queue.next_order += 1;
                    queue.batches.push_back(Batch {
                        order,
                        records: Vec::new(),
                        deliveries: Vec::new(),
                        bytes: 0,
                        created: Instant::now(),
                        _memory: None,
                        sequence: None,
                        attempts: 0,
                        last_error: None,
                    });
                    queue.batches.back_mut().ok_or(ProduceErrorKind::Closed)?
                }
            };
            let offset = batch.records.len() as i64;
            batch.records.push(record.into_record(offset, now_ms()));
            batch.deliveries.push(delivery);
            batch.bytes += size;
            match &mut batch._memory {
                Some(m) => m.merge(permit),
                None => batch._memory = Some(permit),
            }
            wake_sender |= batch.bytes >= batch_size;
        }
        if wake_sender {
            self.inner.wake.notify_one();
        }
        Ok(())
    }
}

/// A batch taken from its queue to be sent.
struct Outgoing {
    topic: Topic,
    partition: i32,
    batch: Batch,
}

/// The sender: takes ready batches, groups them by leader, sends. Requests go out from
/// this one task, so the batches of a partition are on the wire in order even with
/// several in flight.
async fn sender(inner: Arc<Inner>) {
    loop {
        let wake = inner.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if let Some(current) = bump_due(&inner) {
            // As the Java client: a new epoch once nothing is in flight, sequences from 0.
            if let Err(e) = init_producer_id(&inner, Some(current)).await {
                tracing::warn!(error = %e, "could not bump the producer epoch");
                tokio::time::sleep(inner.config.retry_backoff).await;
            } else {
                lock(&inner.state).bump = false;
            }
            continue;
        }
        let (ready, next) = take_ready(&inner);
        if !ready.is_empty() {
            dispatch(&inner, ready).await;
            continue;
        }
        if inner.closed.load(Ordering::Acquire) && lock(&inner.state).pending == 0 {
            return;
        }
        if Arc::strong_count(&inner) == 1 && lock(&inner.state).pending == 0 {
            // Every producer handle is gone and nothing is left to send.
            return;
        }
        match next {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), wake).await;
            }
            None => {
                let _ = tokio::time::timeout(Duration::from_millis(250), wake).await;
            }
        }
    }
}

/// The current producer id and epoch when an epoch bump is due and nothing is in flight.
fn bump_due(inner: &Inner) -> Option<(i64, i16)> {
    let state = lock(&inner.state);
    (state.bump && state.requests == 0)
        .then_some(state.producer)
        .flatten()
}

/// tokio's timer fires on the first millisecond tick after a deadline and in practice
/// about a tick later than asked (measured: a 5 ms sleep begun just after a tick took
/// 6.1 ms), so a batch aimed at its exact linger deadline waited `linger` plus about
/// 1 ms. It is aimed one tick (at most half the linger) early instead, and so goes
/// within about a millisecond of `linger`, never much later (the Java client, which
/// counts linger in whole milliseconds, is as coarse).
fn early_linger(linger: Duration) -> Duration {
    const TIMER_TICK: Duration = Duration::from_millis(1);
    linger - TIMER_TICK.min(linger / 2)
}

/// Batches ready to go (full, lingered long enough, flushing, retried, or behind
/// another batch), at most one per partition per round, and when the next one will be.
fn take_ready(inner: &Inner) -> (Vec<Outgoing>, Option<Instant>) {
    let now = Instant::now();
    let early_linger = early_linger(inner.config.linger);
    let per_partition = inner.config.max_in_flight;
    let mut state = lock(&inner.state);
    if state.bump {
        return (Vec::new(), None);
    }
    let hurry = state.flushing > 0 || inner.closed.load(Ordering::Acquire);
    let mut ready = Vec::new();
    let mut next: Option<Instant> = None;
    for ((topic, partition), q) in state.queues.iter_mut() {
        if q.in_flight.len() >= per_partition {
            continue;
        }
        if let Some(at) = q.retry_at {
            if at > now {
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
        }
        let Some(front) = q.batches.front() else {
            continue;
        };
        // A retry waits until the batches sent before it are back.
        if front.attempts > 0 && q.in_flight.iter().any(|o| *o < front.order) {
            continue;
        }
        let due = front.created + early_linger;
        let is_ready = hurry
            || front.attempts > 0
            || front.bytes >= inner.config.batch_size
            || q.batches.len() > 1
            || due <= now;
        if is_ready {
            if let Some(batch) = q.batches.pop_front() {
                q.in_flight.insert(batch.order);
                ready.push(Outgoing {
                    topic: topic.clone(),
                    partition: *partition,
                    batch,
                });
            }
        } else {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
    }
    (ready, next)
}

/// Sends ready batches, one request per broker (split at `max_request_size`).
async fn dispatch(inner: &Arc<Inner>, ready: Vec<Outgoing>) {
    let Some(ready) = add_to_transaction(inner, ready).await else {
        return;
    };
    let producer = match producer_id(inner).await {
        Ok(p) => p,
        Err(e) => {
            for out in ready {
                retry_or_fail(inner, out, e.clone());
            }
            return;
        }
    };
    let mut by_broker: BTreeMap<String, (BrokerInfo, Vec<Outgoing>)> = BTreeMap::new();
    for out in ready {
        match inner.client.leader(&out.topic, out.partition).await {
            Ok(leader) => by_broker
                .entry(leader.addr())
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push(out),
            Err(e) => retry_or_fail(inner, out, ProduceError::from(e)),
        }
    }
    for (addr, (broker, outs)) in by_broker {
        let mut request: Vec<Outgoing> = Vec::new();
        let mut bytes = 0;
        for out in outs {
            if !request.is_empty() && bytes + out.batch.bytes > inner.config.max_request_size {
                send_request(
                    inner,
                    &addr,
                    &broker,
                    producer,
                    std::mem::take(&mut request),
                )
                .await;
                bytes = 0;
            }
            bytes += out.batch.bytes;
            request.push(out);
        }
        if !request.is_empty() {
            send_request(inner, &addr, &broker, producer, request).await;
        }
    }
}

/// In a transaction: adds the partitions of `ready` that are not in it yet (one
/// AddPartitionsToTxn), and fails the batches if the transaction has failed or the
/// partitions cannot be added. The batches that may go on, or `None`.
async fn add_to_transaction(inner: &Arc<Inner>, ready: Vec<Outgoing>) -> Option<Vec<Outgoing>> {
    if inner.txn.is_none() {
        return Some(ready);
    }
    let (failed, new) = {
        let state = lock(&inner.state);
        let new: std::collections::BTreeSet<(Topic, i32)> = ready
            .iter()
            .map(|o| (o.topic.clone(), o.partition))
            .filter(|k| !state.txn.partitions.contains(k))
            .collect();
        (state.txn.failure().cloned(), new)
    };
    let error = match failed {
        Some(e) => e,
        None if new.is_empty() => return Some(ready),
        None => match transaction::add_partitions(inner, &new).await {
            Ok(()) => return Some(ready),
            Err(e) => e,
        },
    };
    for out in ready {
        retry_or_fail(inner, out, error.clone());
    }
    None
}

/// The producer id and epoch, fetched once (idempotence; a transactional producer's
/// come from `init_transactions`).
async fn producer_id(inner: &Inner) -> Result<Option<(i64, i16)>, ProduceError> {
    if !inner.config.idempotence {
        return Ok(None);
    }
    if inner.txn.is_some() {
        return lock(&inner.state).producer.map(Some).ok_or_else(|| {
            ProduceErrorKind::TransactionState {
                call: "send",
                state: TransactionState::Uninitialized,
            }
            .into()
        });
    }
    if let Some(p) = lock(&inner.state).producer {
        return Ok(Some(p));
    }
    init_producer_id(inner, None).await.map(Some)
}

/// InitProducerId: a new id, or (KIP-360) the same id with the next epoch.
async fn init_producer_id(
    inner: &Inner,
    current: Option<(i64, i16)>,
) -> Result<(i64, i16), ProduceError> {
    let _guard = inner.epoch_lock.lock().await;
    let known = lock(&inner.state).producer;
    if known.is_some() && known != current {
        // Someone else already moved on.
        return known.ok_or_else(|| ProduceErrorKind::Closed.into());
    }
    let (id, epoch) = current.unwrap_or((-1, -1));
    let request = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: id,
        producer_epoch: epoch,
        ..Default::default()
    };
    let response = kafka_net::ClientExt::request(&inner.client, request).await?;
    if let Some(e) = ProduceError::from_code(response.error_code, None) {
        return Err(e);
    }
    let fresh = (response.producer_id, response.producer_epoch);
    set_producer(&mut lock(&inner.state), fresh);
    Ok(fresh)
}

/// Takes a producer id and epoch from InitProducerId.
fn set_producer(state: &mut State, fresh: (i64, i16)) {
    let (id, epoch) = state.producer.unwrap_or((-1, -1));
    state.producer = Some(fresh);
    if fresh.0 != id || fresh.1 != epoch {
        // A new id or epoch starts every partition's sequences at 0 again.
        for q in state.queues.values_mut() {
            q.next_sequence = 0;
            for b in q.batches.iter_mut() {
                b.sequence = None;
            }
        }
    }
}

/// Hands one request to the submitter: takes a slot of the broker's `max_in_flight`,
/// gives new batches their sequence numbers, and starts the encoding (a compressed
/// request is encoded on the blocking pool, so the sender goes on to the next while
/// it compresses, and consecutive requests compress in parallel).
async fn send_request(
    inner: &Arc<Inner>,
    addr: &str,
    broker: &BrokerInfo,
    producer: Option<(i64, i16)>,
    mut outs: Vec<Outgoing>,
) {
    let gate = lock(&inner.in_flight)
        .entry(addr.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(inner.config.max_in_flight)))
        .clone();
    // Waits here when max_in_flight requests are out to this broker.
    let Ok(permit) = gate.acquire_owned().await else {
        return;
    };
    // Sequences are given in order when a batch is first sent, and kept on retries.
    if let Some((_, epoch)) = producer {
        let mut state = lock(&inner.state);
        for out in outs.iter_mut() {
            let stale = out.batch.sequence.is_some_and(|(_, e)| e != epoch);
            if out.batch.sequence.is_none() || stale {
                let q = state
                    .queues
                    .entry((out.topic.clone(), out.partition))
                    .or_default();
                out.batch.sequence = Some((q.next_sequence, epoch));
                q.next_sequence = q.next_sequence.wrapping_add(out.batch.records.len() as i32);
            }
        }
    }
    // Counted from here, so that no epoch bump happens while it is being encoded.
    lock(&inner.state).requests += 1;
    let encoded = if inner.config.compression == Compression::None {
        let request = produce_request(inner, producer, &mut outs);
        Encoding::Done(outs, request)
    } else {
        let encoder = inner.clone();
        Encoding::Running(tokio::task::spawn_blocking(move || {
            let request = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                produce_request(&encoder, producer, &mut outs)
            }));
            (outs, request.ok())
        }))
    };
    let submission = Submission {
        broker: broker.clone(),
        encoded,
        permit,
    };
    if inner.submissions.send(submission).is_err() {
        // The submitter is gone only when the producer is.
        lock(&inner.state).requests -= 1;
    }
}

/// Encodes the batches of one Produce request.
fn produce_request(
    inner: &Inner,
    producer: Option<(i64, i16)>,
    outs: &mut [Outgoing],
) -> ProduceRequest {
    let mut topic_data: Vec<TopicProduceData> = Vec::new();
    for out in outs.iter_mut() {
        let bytes = match encode(inner, producer, &mut out.batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a batch");
                Bytes::new()
            }
        };
        let data = PartitionProduceData {
            index: out.partition,
            records: Some(bytes),
            ..Default::default()
        };
        match topic_data
            .iter_mut()
            .find(|t| t.name.as_str() == &*out.topic)
        {
            Some(t) => t.partition_data.push(data),
            None => topic_data.push(TopicProduceData {
                name: out.topic.to_string().into(),
                partition_data: vec![data],
                ..Default::default()
            }),
        }
    }
    ProduceRequest {
        transactional_id: inner
            .txn
            .as_ref()
            .map(|t| kafka_protocol::StrBytes::from(t.id.clone())),
        acks: inner.config.acks.code(),
        timeout_ms: inner
            .config
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32,
        topic_data,
        ..Default::default()
    }
}

/// Submits encoded requests to their brokers' connections in the order the sender
/// made them (so a partition's batches are on the wire in order), then waits for each
/// answer in a task of its own.
async fn submitter(inner: std::sync::Weak<Inner>, mut queue: mpsc::UnboundedReceiver<Submission>) {
    while let Some(submission) = queue.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let (outs, request) = match submission.encoded {
            Encoding::Done(outs, request) => (outs, request),
            Encoding::Running(job) => match job.await {
                Ok((outs, Some(request))) => (outs, request),
                Ok((outs, None)) => {
                    // A bug in the encoder: fail these records, not the producer.
                    lock(&inner.state).requests -= 1;
                    drop(submission.permit);
                    let e = ProduceError::new(ProduceErrorKind::Config(
                        "encoding the batch failed (a bug: please report it)".into(),
                    ));
                    for out in outs {
                        retry_or_fail(&inner, out, e.clone());
                    }
                    continue;
                }
                Err(e) => {
                    // The runtime is shutting down.
                    tracing::debug!(error = %e, "a Produce request was not encoded");
                    lock(&inner.state).requests -= 1;
                    continue;
                }
            },
        };
        submit(&inner, &submission.broker, request, outs, submission.permit).await;
    }
}

/// Hands one encoded request to the broker's connection.
async fn submit(
    inner: &Arc<Inner>,
    broker: &BrokerInfo,
    request: ProduceRequest,
    outs: Vec<Outgoing>,
    permit: OwnedSemaphorePermit,
) {
    let submitted = async {
        let conn = inner.client.connection(broker, Purpose::Produce).await?;
        let mut version = conn
            .versions()
            .version_for(kafka_protocol::ApiKey::Produce)?;
        if inner.txn.is_some() {
            // Produce v12 tells the broker the client adds no partitions itself
            // (KIP-890 transaction version 2); this producer adds them.
            version = version.min(TXN_PRODUCE_MAX);
        }
        if inner.config.acks == Acks::None {
            conn.send_without_response(&request, version).await?;
            Ok::<_, kafka_net::Error>(None)
        } else {
            Ok(Some(conn.enqueue(&request, version).await?))
        }
    }
    .await;
    let inner = inner.clone();
    match submitted {
        Err(e) => {
            lock(&inner.state).requests -= 1;
            drop(permit);
            request_failed(&inner, outs, e).await;
        }
        Ok(None) => {
            lock(&inner.state).requests -= 1;
            drop(permit);
            for out in outs {
                complete(&inner, out, None);
            }
        }
        Ok(Some(answer)) => {
            tokio::spawn(async move {
                let result = answer.await;
                lock(&inner.state).requests -= 1;
                drop(permit);
                match result {
                    Ok(response) => handle_response(&inner, outs, &response),
                    Err(e) => request_failed(&inner, outs, e).await,
                }
                inner.wake.notify_one();
            });
        }
    }
}

async fn request_failed(inner: &Arc<Inner>, outs: Vec<Outgoing>, e: kafka_net::Error) {
    let e = ProduceError::from(e);
    for out in outs {
        retry_or_fail(inner, out, e.clone());
    }
    let _ = inner.client.refresh_metadata().await;
}

fn encode(
    inner: &Inner,
    producer: Option<(i64, i16)>,
    batch: &mut Batch,
) -> Result<Bytes, ProduceError> {
    // The records move into the batch for encoding and back after: no copy.
    let mut b = RecordBatch::new(0, std::mem::take(&mut batch.records));
    b.compression = inner.config.compression;
    b.is_transactional = inner.txn.is_some();
    if let (Some((id, _)), Some((seq, epoch))) = (producer, batch.sequence) {
        b.producer_id = id;
        b.producer_epoch = epoch;
        b.base_sequence = seq;
    }
    let encoded = crate::simple::encode_batch(&b);
    batch.records = b.records;
    encoded
}

fn handle_response(inner: &Arc<Inner>, outs: Vec<Outgoing>, response: &ProduceResponse) {
    let mut refresh = false;
    for out in outs {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.as_str() == &*out.topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == out.partition);
        let Some(p) = answer else {
            retry_or_fail(
                inner,
                out,
                ProduceErrorKind::Config("the broker did not answer for this partition".into())
                    .into(),
            );
            continue;
        };
        let code = ErrorCode::from(p.error_code);
        match code {
            ErrorCode::None => {
                let append_time = (p.log_append_time_ms >= 0).then_some(p.log_append_time_ms);
                complete(inner, out, Some((p.base_offset, append_time)));
            }
            // A retry of a batch the broker already has: it is in the log once.
            ErrorCode::DuplicateSequenceNumber => complete(inner, out, Some((p.base_offset, None))),
            ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId
                if inner.config.idempotence =>
            {
                // Behind a batch that failed and is being retried: just retry, in
                // order. First in line: the broker lost this producer's state, and
                // a new epoch is needed (the Java client's rule).
                let earlier = {
                    let state = lock(&inner.state);
                    state
                        .queues
                        .get(&(out.topic.clone(), out.partition))
                        .is_some_and(|q| {
                            q.in_flight.iter().any(|o| *o < out.batch.order)
                                || q.batches.iter().any(|b| b.order < out.batch.order)
                        })
                };
                if !earlier && inner.txn.is_some() {
                    // In a transaction the epoch is bumped by the abort: the
                    // transaction fails here.
                    let e = ProduceError::from_code(p.error_code, p.error_message.as_deref())
                        .unwrap_or_else(|| ProduceErrorKind::Closed.into());
                    retry_or_fail_as(inner, out, e, false);
                    continue;
                }
                if !earlier {
                    lock(&inner.state).bump = true;
                }
                // Retried either way (as the Java client does for an idempotent
                // producer), though Kafka does not call these codes retriable.
                let e = ProduceError::from_code(p.error_code, p.error_message.as_deref())
                    .unwrap_or_else(|| ProduceErrorKind::Closed.into());
                retry_or_fail_as(inner, out, e, true);
            }
            _ => {
                let e = ProduceError::from_code(p.error_code, p.error_message.as_deref())
                    .unwrap_or_else(|| ProduceErrorKind::Closed.into());
                refresh |= matches!(
                    code,
                    ErrorCode::NotLeaderOrFollower
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::LeaderNotAvailable
                );
                retry_or_fail(inner, out, e);
            }
        }
    }
    if refresh {
        let client = inner.client.clone();
        tokio::spawn(async move {
            let _ = client.refresh_metadata().await;
        });
    }
}

/// Acknowledges a batch's records.
fn complete(inner: &Inner, out: Outgoing, result: Option<(i64, Option<i64>)>) {
    let Outgoing {
        topic,
        partition,
        batch,
    } = out;
    let n = batch.records.len();
    let bytes = batch.bytes;
    let order = batch.order;
    for (i, (record, delivery)) in batch.records.into_iter().zip(batch.deliveries).enumerate() {
        let (offset, timestamp) = match result {
            Some((base, append_time)) if base >= 0 => {
                (base + i as i64, append_time.unwrap_or(record.timestamp))
            }
            Some((_, append_time)) => (-1, append_time.unwrap_or(record.timestamp)),
            None => (-1, record.timestamp),
        };
        delivery.report(Ok(RecordMetadata {
            topic: topic.clone(),
            partition,
            offset,
            timestamp,
        }));
    }
    inner
        .partitioner
        .on_batch_complete(&topic, partition, bytes);
    finish(inner, &topic, partition, order, n);
}

/// Puts a failed batch back in its place in its queue, or fails its records when it
/// may not be retried.
fn retry_or_fail(inner: &Inner, out: Outgoing, error: ProduceError) {
    let retriable = error.is_retriable();
    retry_or_fail_as(inner, out, error, retriable);
}

/// [`retry_or_fail`], with the caller deciding whether the error is retriable.
fn retry_or_fail_as(inner: &Inner, mut out: Outgoing, error: ProduceError, retriable: bool) {
    let error = error.at(&out.topic, out.partition);
    let config = &inner.config;
    let expired = out.batch.created.elapsed() >= config.delivery_timeout;
    out.batch.attempts += 1;
    // A failed transaction sends nothing more: its batches fail at once.
    let txn_failed = inner.txn.is_some() && lock(&inner.state).txn.failure().is_some();
    let retry = retriable
        && !txn_failed
        && out.batch.attempts <= config.retries
        && !expired
        && config.acks != Acks::None;
    if retry {
        tracing::debug!(topic = %out.topic, partition = out.partition, attempt = out.batch.attempts, error = %error, "retrying a batch");
        out.batch.last_error = Some(error);
        let mut state = lock(&inner.state);
        let q = state.queues.entry((out.topic, out.partition)).or_default();
        q.requeue(out.batch);
        q.retry_at = Some(Instant::now() + config.retry_backoff);
        drop(state);
        inner.wake.notify_one();
        return;
    }
    let error = if expired {
        ProduceError::new(ProduceErrorKind::DeliveryTimeout(config.delivery_timeout))
            .at(&out.topic, out.partition)
    } else {
        error
    };
    let n = out.batch.records.len();
    for delivery in out.batch.deliveries {
        delivery.report(Err(error.clone()));
    }
    if inner.txn.is_some() {
        // The transaction can only be aborted now (which bumps the epoch when the
        // broker's sequences have a gap).
        lock(&inner.state)
            .txn
            .record_failed(&error, out.batch.sequence.is_some());
    } else if config.idempotence && out.batch.sequence.is_some() {
        // The broker never got this batch's sequence: the batches after it can only
        // be written in a new epoch.
        lock(&inner.state).bump = true;
    }
    finish(inner, &out.topic, out.partition, out.batch.order, n);
}

fn finish(inner: &Inner, topic: &Topic, partition: i32, order: u64, records: usize) {
    {
        let mut state = lock(&inner.state);
        state.pending = state.pending.saturating_sub(records);
        if let Some(q) = state.queues.get_mut(&(topic.clone(), partition)) {
            q.in_flight.remove(&order);
            if q.batches.front().is_none_or(|b| b.attempts == 0) {
                q.retry_at = None;
            }
        }
    }
    inner.progress.notify_waiters();
    inner.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::early_linger;
    use std::time::Duration;

    #[test]
    fn batches_are_aimed_a_timer_tick_early_but_never_before_half_their_linger() {
        let ms = Duration::from_millis;
        assert_eq!(early_linger(ms(5)), ms(4));
        assert_eq!(early_linger(ms(1)), Duration::from_micros(500));
        assert_eq!(early_linger(ms(0)), ms(0));
        assert_eq!(early_linger(ms(1000)), ms(999));
    }
}
