//! Records into their partitions' batches: one record ([`BufferedProducer::send`] and
//! its kin), or many under one lock ([`BufferedProducer::send_batch`]).

use super::*;
use std::collections::btree_map;

/// A callback shared by the records of one `send_batch`, called once per record: with
/// its report, or with `Closed` if the producer drops the record unreported.
pub(super) struct SharedCallback(pub(super) Option<Arc<dyn Fn(DeliveryReport) + Send + Sync>>);

impl SharedCallback {
    pub(super) fn call(&mut self, report: DeliveryReport) {
        if let Some(callback) = self.0.take() {
            // As for a record's own callback: a panic must not take the producer's
            // task (and the reports behind it) down.
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(report)));
            if called.is_err() {
                tracing::error!("a delivery callback panicked");
            }
        }
    }
}

impl Drop for SharedCallback {
    fn drop(&mut self) {
        // As for a record's own callback: the error is made only for a record dropped
        // unreported.
        if self.0.is_some() {
            self.call(Err(ProduceErrorKind::Closed.into()));
        }
    }
}

/// The smallest chunk a batch's records are written in (the room a batch may hold
/// beyond what the buffer could spare when it was full).
const MIN_CHUNK: usize = 16 * 1024;

/// The chunk a batch's records are written in once it outgrows `MIN_CHUNK` (a record
/// larger still gets a chunk of its size). Chunks come in these two sizes only, so the
/// allocator reuses the chunks of acknowledged batches for new ones: chunks as large
/// as their batch so far (16 KiB to 1 MiB) left freed memory it could not reuse, and
/// the producer's peak RSS 5 to 8 MiB above what it held at 1 KiB records
/// (BENCHMARKS.md, issue 16).
const CHUNK: usize = 64 * 1024;

/// How far an open batch's charge may run over what it holds before the excess goes
/// back to the buffer (records written into room already charged are given back in
/// bulk; once sealed, a batch's charge is exact).
const GIVE_BACK_SLACK: u32 = 4 * 1024;

/// A record placed (topic, partition) and measured, not queued yet.
type Placed = (Topic, i32, ProducerRecord, usize);

/// A record placed, measured and charged, on its way into its partition's batch.
pub(super) struct Queueing<'a> {
    pub(super) topic: Topic,
    pub(super) partition: i32,
    pub(super) record: ProducerRecord,
    pub(super) size: usize,
    /// Its room in the buffer.
    pub(super) permit: SemaphorePermit<'a>,
    pub(super) delivery: Delivery,
}

/// A record waiting for its partition's room; dropped (its caller gone), its report
/// is dropped unmade.
struct Parked<'a>(Option<Queueing<'a>>);

impl<'a> Parked<'a> {
    fn release(mut self) -> Option<Queueing<'a>> {
        self.0.take()
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.delivery.forget();
        }
    }
}

impl<'a> Queueing<'a> {
    /// A record placed and charged (`reserve`'s answer), with its report.
    pub(super) fn new(
        (topic, partition, size, permit): (Topic, i32, usize, SemaphorePermit<'a>),
        record: ProducerRecord,
        delivery: Delivery,
    ) -> Self {
        Queueing {
            topic,
            partition,
            record,
            size,
            permit,
            delivery,
        }
    }
}

/// What became of a record given to `append`.
pub(super) enum Appended {
    /// In its batch; whether the sender must be woken (a new or a full batch).
    Queued { wake: bool },
    /// Not queued: it would take its partition past `partition_memory`; the record's
    /// report and its partition's topic are handed back.
    Full(Topic, Delivery),
}

impl BufferedProducer {
    /// Queues many records with one call (franz-go's `ProduceSync(ctx, records...)`,
    /// librdkafka's `rd_kafka_produce_batch`), waiting while the buffer is full;
    /// `callback` gets each record's delivery report, once per record, as with
    /// [`send_with_callback`](Self::send_with_callback) (on the producer's task, in
    /// each partition's order). Every record is checked and placed first, so a record
    /// that would fail `send` (no topic, too large, no such partition) fails the call
    /// with nothing queued. The records then go into their batches in groups of at most
    /// a quarter of `buffer_memory`, each under one lock, so a record costs less than
    /// with a call of its own. An error after that (the producer closed, the
    /// transaction ended) leaves the groups before it queued and reported; none after.
    pub async fn send_batch(
        &self,
        records: Vec<ProducerRecord>,
        callback: impl Fn(DeliveryReport) + Send + Sync + 'static,
    ) -> Result<(), ProduceError> {
        let callback: Arc<dyn Fn(DeliveryReport) + Send + Sync> = Arc::new(callback);
        let mut placed: Vec<Placed> = Vec::with_capacity(records.len());
        // The partition count of the topic last seen (records of one topic in a row
        // look it up once).
        let mut known: Option<(Topic, i32)> = None;
        for record in records {
            let (topic, size) = self.check(&record)?;
            let partitions = match &known {
                Some((t, n)) if *t == topic => *n,
                _ => {
                    let n = self.partition_count(&topic).await?;
                    known = Some((topic.clone(), n));
                    n
                }
            };
            let partition = self.choose(&topic, &record, partitions)?;
            placed.push((topic, partition, record, size));
        }
        let limit = (self.inner.config.buffer_memory / 4).max(1);
        let mut group = Vec::new();
        let mut bytes = 0;
        for p in placed {
            let charge = self.inner.charge(p.3);
            if !group.is_empty() && bytes + charge > limit {
                self.append_group(std::mem::take(&mut group), bytes, &callback)
                    .await?;
                bytes = 0;
            }
            bytes += charge;
            group.push(p);
        }
        if !group.is_empty() {
            self.append_group(group, bytes, &callback).await?;
        }
        Ok(())
    }

    /// Takes room for a group of placed records and queues them under one lock.
    async fn append_group(
        &self,
        group: Vec<Placed>,
        bytes: usize,
        callback: &Arc<dyn Fn(DeliveryReport) + Send + Sync>,
    ) -> Result<(), ProduceError> {
        let permit = self.acquire_memory(bytes).await?;
        // The group's partitions must be below their share of the buffer; the group
        // then goes in whole (it may take a partition past its share).
        let mut last: Option<(&Topic, i32)> = None;
        for (topic, partition, ..) in &group {
            if last != Some((topic, *partition)) {
                self.partition_room(topic, *partition, 0).await;
                last = Some((topic, *partition));
            }
        }
        let now = now_ms();
        let wake = {
            let mut state = self.open_state("send_batch")?;
            let mut wake = false;
            for (topic, partition, record, size) in group {
                let delivery = Delivery::Shared(SharedCallback(Some(callback.clone())));
                let r = (topic, partition, &record, size);
                if let Appended::Queued { wake: w } =
                    self.append(&mut state, r, delivery, now, false)
                {
                    wake |= w;
                }
            }
            // The batches give the bytes back when they are dropped.
            permit.forget();
            wake
        };
        if wake {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Queues a record that `try_enqueue` handed back, waiting while it would take its
    /// partition past `partition_memory`. Apart from `try_enqueue`, which `send` calls
    /// first: a future made for every record, holding the record, moved it once more
    /// (memory copies were a tenth of a 100-byte record's CPU).
    pub(super) async fn enqueue_when_room(&self, back: Queueing<'_>) -> Result<(), ProduceError> {
        let (topic, partition) = (back.topic.clone(), back.partition);
        let charge = self.inner.charge(back.size);
        // Held so that, if the caller gives up while it waits, the record's report is
        // dropped unmade (as for a record never queued), not made `Closed`.
        let mut parked = Parked(Some(back));
        loop {
            self.partition_room(&topic, partition, charge).await;
            let Some(r) = parked.release() else {
                return Ok(());
            };
            match self.try_enqueue(r)? {
                None => return Ok(()),
                Some(back) => parked = Parked(Some(back)),
            }
        }
    }

    /// Queues one record with the room its permit holds for it; hands it back when it
    /// would take its partition past `partition_memory`.
    pub(super) fn try_enqueue<'a>(
        &self,
        mut r: Queueing<'a>,
    ) -> Result<Option<Queueing<'a>>, ProduceError> {
        // Read before the lock is taken, and only when the record has no timestamp.
        let now = if r.record.timestamp.is_none() {
            now_ms()
        } else {
            0
        };
        let wake = {
            let mut state = match self.open_state("send") {
                Ok(state) => state,
                Err(e) => {
                    r.delivery.forget();
                    return Err(e);
                }
            };
            let placed = (r.topic, r.partition, &r.record, r.size);
            match self.append(&mut state, placed, r.delivery, now, true) {
                Appended::Queued { wake } => {
                    // The batch gives the bytes back when it is dropped (no reference
                    // count per record).
                    r.permit.forget();
                    wake
                }
                Appended::Full(topic, delivery) => {
                    drop(state);
                    // Its partition's open batch is done (see `waited`): the sender
                    // sends it when it may.
                    self.inner.wake.notify_one();
                    r.topic = topic;
                    r.delivery = delivery;
                    return Ok(Some(r));
                }
            }
        };
        if wake {
            self.inner.wake.notify_one();
        }
        Ok(None)
    }

    /// Waits until a record charged `charge` may go into `partition` of `topic`
    /// (returns at once when it may now, and after one batch answered otherwise).
    pub(super) async fn partition_room(&self, topic: &Topic, partition: i32, charge: usize) {
        let progress = self.inner.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        let over = lock(&self.inner.state)
            .queues
            .get(&(topic.clone(), partition))
            .is_some_and(|q| self.past_share(q.held(), charge));
        if over {
            progress.await;
        }
    }

    /// Whether a record charged `charge` would take a partition that holds `held` past
    /// `partition_memory` (a partition that holds nothing takes any record).
    fn past_share(&self, held: usize, charge: usize) -> bool {
        held > 0 && held + charge > self.inner.partition_memory
    }

    /// The state, locked, when records may be queued: the producer is open and, for a
    /// transactional producer, a transaction is (checked under the lock commit and
    /// abort take to close it, so no record slips in after they flushed).
    fn open_state(
        &self,
        call: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, State>, ProduceError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ProduceErrorKind::Closed.into());
        }
        let state = lock(&self.inner.state);
        if self.inner.txn.is_some() && !state.txn.open() {
            let e = ProduceErrorKind::TransactionState {
                call,
                state: state.txn.state,
            };
            return Err(e.into());
        }
        Ok(state)
    }

    /// Puts a record into its partition's open batch (or a new one), charging its size
    /// and its report's slot (which its caller took from the buffer) to the batch. True
    /// when the sender must look: a new batch (its linger deadline) or a full one.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        state: &mut State,
        (topic, partition, record, size): (Topic, i32, &ProducerRecord, usize),
        delivery: Delivery,
        now: i64,
        bounded: bool,
    ) -> Appended {
        let batch_size = self.inner.config.batch_size;
        // What the caller charged for the record: all of it, and the part that is not
        // its report's slot (room for its bytes, at least `size`).
        let charge = self.inner.charge(size);
        let own = charge - REPORT_BYTES;
        let share = self.inner.partition_memory;
        let (queue, held) = match state.queues.entry((topic, partition)) {
            btree_map::Entry::Occupied(mut o) => {
                // Only a bounded record needs it (a walk of the queue's batches).
                let held = if bounded { o.get().held() } else { 0 };
                if bounded && self.past_share(held, charge) {
                    o.get_mut().waited = true;
                    return Appended::Full(o.key().0.clone(), delivery);
                }
                (o.into_mut(), held)
            }
            btree_map::Entry::Vacant(v) => (v.insert(PartitionQueue::default()), 0),
        };
        queue.waited = false;
        // What a new chunk may take of the partition's share beyond the record's charge.
        let spare = if bounded {
            share.saturating_sub(held + charge)
        } else {
            usize::MAX
        };
        let open = queue
            .batches
            .back()
            .is_some_and(|b| b.is_open() && b.bytes + size <= batch_size);
        let mut wake = false;
        if !open {
            // A new batch: the sender must learn its linger deadline.
            wake = true;
            let order = queue.next_order;
            queue.next_order += 1;
            let (records, bytes) = match queue.batches.back() {
                Some(b) => (b.count, b.bytes),
                None => (queue.last_len, queue.last_bytes),
            };
            // The batch's first chunk: a small one when the last batch was small. Its
            // room is charged to the buffer when it opens if the buffer can spare it;
            // at least this record's size, which its caller has charged.
            let want = if bytes > MIN_CHUNK { CHUNK } else { MIN_CHUNK };
            let charged = self.take_room(want.min(batch_size), own, spare);
            let room = charged.max(MIN_CHUNK.min(batch_size));
            queue.batches.push_back(Batch {
                order,
                records: BatchRecords::Open(RecordBatchWriter::with_capacity(room)),
                count: 0,
                deliveries: reports::Reports::new(records),
                bytes: 0,
                created: Instant::now(),
                memory: Charge {
                    memory: self.inner.memory.clone(),
                    bytes: (charged - own) as u32,
                    out: None,
                },
                sequence: None,
                attempts: 0,
                last_error: None,
            });
        }
        let Some(batch) = queue.batches.back_mut() else {
            // Not reached: a batch was just opened. The record is dropped and its
            // delivery reports `Closed`.
            return Appended::Queued { wake };
        };
        let BatchRecords::Open(writer) = &mut batch.records else {
            // Not reached: only an open batch is appended to.
            return Appended::Queued { wake };
        };
        if writer.room() < size {
            // A new chunk, charged if the buffer can spare it; the records so far stay
            // where they are.
            let want = CHUNK.min(batch_size.max(MIN_CHUNK));
            let room = self.take_room(want, own, spare);
            batch.memory.bytes += (room - own) as u32;
            writer.add_chunk(room.max(MIN_CHUNK));
        }
        let timestamp = record.timestamp.unwrap_or(now);
        if let Err(e) = writer.append(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        ) {
            // Not reached for a record within `max_request_size` (checked before).
            let error = ProduceError::from(kafka_net::Error::from(e));
            delivery.report(Err(error));
            self.inner.memory.add_permits(charge);
            return Appended::Queued { wake };
        }
        let room = writer.capacity();
        batch.deliveries.push((delivery, timestamp));
        batch.count += 1;
        batch.bytes += size;
        batch.memory.bytes += charge as u32;
        // Charged: the room it holds, or its records' estimates when they are more, and
        // its reports' slots, or the records' floor when that is more (what is over
        // given back a few kilobytes at a time).
        let held = self
            .inner
            .held(room.max(batch.bytes) + batch.report_bytes(), batch.count);
        batch.memory.give_back_over(held, GIVE_BACK_SLACK);
        let full = batch.bytes >= batch_size;
        state.pending += 1;
        Appended::Queued { wake: wake || full }
    }

    /// Room for a new chunk: `want` bytes if the buffer (and, of them, `spare` of the
    /// partition's share beyond `size`) can spare them now, else `size` (charged
    /// already); what is more than `size` is charged here. All or nothing, so that
    /// chunks keep to their sizes.
    fn take_room(&self, want: usize, size: usize, spare: usize) -> usize {
        let memory = &self.inner.memory;
        let extra = want.saturating_sub(size);
        if extra > spare {
            return size;
        }
        match u32::try_from(extra).map(|n| memory.try_acquire_many(n)) {
            Ok(Ok(permit)) if extra > 0 => {
                permit.forget();
                size + extra
            }
            _ => size,
        }
    }
}
