//! The life of one Produce request of the buffered producer: sequence numbers, the
//! encoding (on the encoder threads when compressed), the submission in order, and the
//! answer: acknowledged, retried in its place, or failed.

use super::*;

/// Hands one request to the submitter: gives new batches their sequence numbers and
/// encodes it. An uncompressed request takes a slot of the broker's `max_in_flight`
/// first. A compressed one is encoded on the encoder threads (one per two cores) and
/// takes its slot in the submitter once encoded: so the sender goes on to the next
/// while it compresses, consecutive requests compress in parallel (on 4 cores or
/// more), and with few slots the broker does not wait while a request compresses in
/// one.
pub(super) async fn send_request(
    inner: &Arc<Inner>,
    (addr, lane): (&str, u8),
    broker: &BrokerInfo,
    producer: Option<(i64, i16)>,
    mut outs: Vec<Outgoing>,
) {
    let gate = lock(&inner.in_flight)
        .entry((addr.to_string(), lane))
        .or_insert_with(|| Arc::new(Semaphore::new(inner.config.max_in_flight)))
        .clone();
    let compressed = inner.config.compression != Compression::None;
    let permit = if compressed {
        None
    } else {
        // Waits here when max_in_flight requests are out to this broker.
        let Ok(permit) = gate.clone().acquire_owned().await else {
            return;
        };
        Some(permit)
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
                q.next_sequence = q.next_sequence.wrapping_add(out.batch.count as i32);
            }
        }
    }
    // A compressed request waits here while every core is compressing.
    let core = if compressed {
        // The semaphore is never closed, so this is always a permit.
        inner.encoders.clone().acquire_owned().await.ok()
    } else {
        None
    };
    // Counted from here, so that no epoch bump happens while it is being encoded.
    lock(&inner.state).requests += 1;
    let (encoded, slot) = if let Some(permit) = permit {
        let request = produce_request(inner, producer, &mut outs);
        if inner.queued.load(Ordering::Acquire) == 0 {
            // Nothing ahead of it in the submitter: hand it over from here, a task
            // wake-up less per request, in the same order.
            return submit(inner, (broker, lane), request, outs, permit).await;
        }
        (Encoding::Done(outs, request), Slot::Held(permit))
    } else {
        let encoder = inner.clone();
        let job = Encoding::Running(encoder::run(move || {
            let request = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                produce_request(&encoder, producer, &mut outs)
            }));
            drop(core);
            (outs, request.ok())
        }));
        (job, Slot::Wait(gate))
    };
    let submission = Submission {
        broker: broker.clone(),
        lane,
        encoded,
        slot,
    };
    inner.queued.fetch_add(1, Ordering::AcqRel);
    if inner.submissions.send(submission).is_err() {
        // The submitter is gone only when the producer is.
        inner.queued.fetch_sub(1, Ordering::AcqRel);
        lock(&inner.state).requests -= 1;
    }
}

/// Encodes the batches of one Produce request.
pub(super) fn produce_request(
    inner: &Inner,
    producer: Option<(i64, i16)>,
    outs: &mut Vec<Outgoing>,
) -> EncodedRequest {
    let mut topic_data: Vec<TopicProduceData> = Vec::new();
    // Each topic's partitions' records, in the order of `topic_data`.
    let mut records: Vec<Vec<Vec<Bytes>>> = Vec::new();
    let mut encoded = Vec::with_capacity(outs.len());
    for mut out in outs.drain(..) {
        let sealed = match encode(inner, producer, &mut out.batch) {
            Ok(b) => b,
            Err(e) => {
                // Not reached for records within `max_request_size`; the batch fails
                // with the reason rather than going out empty.
                tracing::error!(error = %e, "cannot encode a batch");
                retry_or_fail_as(inner, out, e, false);
                continue;
            }
        };
        let data = PartitionProduceData {
            index: out.partition,
            records: None,
            ..Default::default()
        };
        let parts = sealed.parts().collect();
        match topic_data
            .iter()
            .position(|t| t.name.as_str() == &*out.topic)
        {
            Some(t) => {
                topic_data[t].partition_data.push(data);
                records[t].push(parts);
            }
            None => {
                topic_data.push(TopicProduceData {
                    name: out.topic.to_string().into(),
                    partition_data: vec![data],
                    ..Default::default()
                });
                records.push(vec![parts]);
            }
        }
        encoded.push(out);
    }
    *outs = encoded;
    let request = ProduceRequest {
        transactional_id: inner.txn.as_ref().map(|t| t.wire_id.clone()),
        acks: inner.config.acks.code(),
        timeout_ms: inner
            .config
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32,
        topic_data,
        ..Default::default()
    };
    EncodedRequest {
        request,
        records: records.into_iter().flatten().collect(),
    }
}

/// Submits encoded requests to their brokers' connections in the order the sender
/// made them (so a partition's batches are on the wire in order), then waits for each
/// answer in a task of its own.
pub(super) async fn submitter(
    inner: std::sync::Weak<Inner>,
    mut queue: mpsc::UnboundedReceiver<Submission>,
) {
    while let Some(submission) = queue.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        submit_one(&inner, submission).await;
        // Counted down once handed over, so that the sender hands a request over
        // itself only when none is ahead of it.
        inner.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits for one submission's encoding and hands it to its broker's connection.
async fn submit_one(inner: &Arc<Inner>, submission: Submission) {
    let (outs, encoded) = match submission.encoded {
        Encoding::Done(outs, encoded) => (outs, encoded),
        Encoding::Running(job) => match job.await {
            Ok((outs, Some(encoded))) => (outs, encoded),
            Ok((outs, None)) => {
                // A bug in the encoder: fail these records, not the producer.
                lock(&inner.state).requests -= 1;
                let e = ProduceError::new(ProduceErrorKind::Config(
                    "encoding the batch failed (a bug: please report it)".into(),
                ));
                for out in outs {
                    retry_or_fail(inner, out, e.clone());
                }
                return;
            }
            Err(e) => {
                // Not reached: the encoder catches a panic and sends `None`.
                tracing::debug!(error = %e, "a Produce request was not encoded");
                lock(&inner.state).requests -= 1;
                return;
            }
        },
    };
    let permit = match submission.slot {
        Slot::Held(permit) => permit,
        // Waits here when max_in_flight requests are out to this broker.
        Slot::Wait(gate) => match gate.acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => {
                // Not reached: the semaphore is never closed.
                lock(&inner.state).requests -= 1;
                return;
            }
        },
    };
    let to = (&submission.broker, submission.lane);
    submit(inner, to, encoded, outs, permit).await;
}

/// Hands one encoded request to the broker's connection.
pub(super) async fn submit(
    inner: &Arc<Inner>,
    (broker, lane): (&BrokerInfo, u8),
    encoded: EncodedRequest,
    outs: Vec<Outgoing>,
    permit: OwnedSemaphorePermit,
) {
    let purpose = match lane {
        0 => Purpose::Produce,
        n => Purpose::ProduceLane(n),
    };
    let submitted = async {
        let conn = inner.client.connection(broker, purpose).await?;
        let mut version = conn
            .versions()
            .version_for(kafka_protocol::ApiKey::Produce)?;
        if inner.txn.is_some() {
            // Produce v12 tells the broker the client adds no partitions itself
            // (KIP-890 transaction version 2); this producer adds them.
            version = version.min(TXN_PRODUCE_MAX);
        }
        Ok::<_, kafka_net::Error>((conn, version))
    }
    .await;
    let (conn, version) = match submitted {
        Ok(c) => c,
        Err(e) => {
            lock(&inner.state).requests -= 1;
            drop(permit);
            return request_failed(inner, outs, e);
        }
    };
    let EncodedRequest {
        mut request,
        records,
    } = encoded;
    if inner.config.acks == Acks::None {
        // No answer to wait for: the records go in the request, copied.
        let partitions = request
            .topic_data
            .iter_mut()
            .flat_map(|t| &mut t.partition_data);
        for (p, parts) in partitions.zip(&records) {
            p.records = Some(parts.concat().into());
        }
        let written = conn.send_without_response(&request, version).await;
        lock(&inner.state).requests -= 1;
        drop(permit);
        match written {
            Ok(()) => outs.into_iter().for_each(|out| complete(inner, out, None)),
            Err(e) => request_failed(inner, outs, e),
        }
        return;
    }
    // The answer is handled on the connection's reader task: no task of ours waits
    // for it (a task wake-up less per request). The callback holds the producer
    // weakly: the producer holds the client, which holds the connection and so this
    // callback, and a strong hold would keep all of them, and the records queued, alive
    // once the runtime's tasks are gone (the records never reported).
    let weak = Arc::downgrade(inner);
    conn.enqueue_produce_then(&request, &records, version, move |answer| {
        drop(permit);
        let Some(inner) = weak.upgrade() else {
            // The producer is being dropped: the batches report `Closed` as they drop.
            return;
        };
        lock(&inner.state).requests -= 1;
        match answer {
            Ok(response) => handle_response(&inner, outs, &response),
            Err(e) => request_failed(&inner, outs, e),
        }
    })
    .await;
}

/// Puts a failed request's batches back (or fails them), and refreshes the metadata
/// in the background (a moved leader is the usual cause).
pub(super) fn request_failed(inner: &Arc<Inner>, outs: Vec<Outgoing>, e: kafka_net::Error) {
    let e = ProduceError::from(e);
    for out in outs {
        retry_or_fail(inner, out, e.clone());
    }
    // Called on a connection's task, or when the connection is dropped (then maybe
    // outside the runtime, with nothing to refresh for).
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let client = inner.client.clone();
        runtime.spawn(async move {
            let _ = client.refresh_metadata().await;
        });
    }
}

pub(super) fn encode(
    inner: &Inner,
    producer: Option<(i64, i16)>,
    batch: &mut Batch,
) -> Result<SealedBatch, ProduceError> {
    let (producer_id, producer_epoch, base_sequence) = match (producer, batch.sequence) {
        (Some((id, _)), Some((seq, epoch))) => (id, epoch, seq),
        _ => (-1, -1, -1),
    };
    let records = std::mem::replace(&mut batch.records, BatchRecords::Open(Default::default()));
    let sealed = match records {
        BatchRecords::Open(writer) => {
            let room = writer.capacity();
            let compressed = inner.config.compression != Compression::None;
            let sealed = writer
                .seal(&BatchSeal {
                    compression: inner.config.compression,
                    transactional: inner.txn.is_some(),
                    producer_id,
                    producer_epoch,
                    base_sequence,
                })
                .map_err(|e| ProduceError::from(kafka_net::Error::from(e)))?;
            // Sealed, an uncompressed batch keeps its chunks' room; a compressed one
            // holds only its bytes (and either, its reports' slots).
            let records = if compressed { sealed.len() } else { room };
            let held = inner.held(records + batch.report_bytes(), batch.count);
            batch.memory.shrink_to(held);
            sealed
        }
        // A retry: the same bytes, under a new header if a new epoch gave it a new
        // sequence.
        BatchRecords::Sealed(sealed) => {
            if sealed.producer() == (producer_id, producer_epoch, base_sequence) {
                sealed
            } else {
                sealed.restamp(producer_id, producer_epoch, base_sequence)
            }
        }
    };
    batch.records = BatchRecords::Sealed(sealed.clone());
    Ok(sealed)
}

pub(super) fn handle_response(inner: &Arc<Inner>, outs: Vec<Outgoing>, response: &ProduceResponse) {
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
pub(super) fn complete(inner: &Inner, out: Outgoing, result: Option<(i64, Option<i64>)>) {
    let Outgoing {
        topic,
        partition,
        batch,
    } = out;
    let Batch {
        count: n,
        bytes,
        order,
        deliveries,
        memory,
        ..
    } = batch;
    // The buffer first: a caller waiting for room goes on while the reports are made.
    drop(memory);
    // The reports share a copy of the name of their own: the count of the queue's
    // shared name is what the application's thread changes for each record it
    // queues, and one cache line changed by both threads for every record cost both
    // (BENCHMARKS.md, issue 16).
    let reported = Topic::from(&*topic);
    settle(
        inner,
        &topic,
        partition,
        order,
        Some((n, stats::Outcome::Delivered { bytes })),
    );
    for (i, (delivery, created)) in deliveries.into_iter().enumerate() {
        let (offset, timestamp) = match result {
            Some((base, append_time)) if base >= 0 => {
                (base + i as i64, append_time.unwrap_or(created))
            }
            Some((_, append_time)) => (-1, append_time.unwrap_or(created)),
            None => (-1, created),
        };
        delivery.report(Ok(RecordMetadata {
            topic: reported.clone(),
            partition,
            offset,
            timestamp,
        }));
    }
    inner
        .partitioner
        .on_batch_complete(&topic, partition, bytes);
    finish(inner, n);
}

/// Puts a failed batch back in its place in its queue, or fails its records when it
/// may not be retried.
pub(super) fn retry_or_fail(inner: &Inner, out: Outgoing, error: ProduceError) {
    let retriable = error.is_retriable();
    retry_or_fail_as(inner, out, error, retriable);
}

/// [`retry_or_fail`], with the caller deciding whether the error is retriable.
pub(super) fn retry_or_fail_as(
    inner: &Inner,
    mut out: Outgoing,
    error: ProduceError,
    retriable: bool,
) {
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
        q.counters.retried();
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
    let n = out.batch.count;
    drop(out.batch.memory);
    // Counted before its records are reported (see `settle`).
    let failed = (n, stats::Outcome::Failed);
    count(&mut lock(&inner.state), &out.topic, out.partition, failed);
    for (delivery, _) in out.batch.deliveries {
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
    settle(inner, &out.topic, out.partition, out.batch.order, None);
    finish(inner, n);
}

/// A batch answered: no longer out to the broker, and counted in its partition's
/// statistics (`outcome`, unless counted already). Done before its records are reported
/// when it was delivered, so that a caller who has a report sees its record counted,
/// and the sender takes the partition's next batch while the reports are made (at
/// 100-byte records, some 8,000 of them per batch); after them for a failed batch,
/// whose failure may stop the batches behind it (an epoch bump).
fn settle(
    inner: &Inner,
    topic: &Topic,
    partition: i32,
    order: u64,
    outcome: Option<(usize, stats::Outcome)>,
) {
    let wake = {
        let mut state = lock(&inner.state);
        if let Some(outcome) = outcome {
            count(&mut state, topic, partition, outcome);
        }
        if let Some(q) = state.queues.get_mut(&(topic.clone(), partition)) {
            q.in_flight.remove(&order);
            if q.batches.front().is_none_or(|b| b.attempts == 0) {
                q.retry_at = None;
            }
        }
        // The sender only needs this answer when it held batches back for it, or has
        // an epoch bump waiting for the requests in flight.
        state.stalled || state.bump
    };
    inner.progress.notify_waiters();
    if wake {
        inner.wake.notify_one();
    }
}

/// Counts how a batch of `records` ended in its partition's statistics.
fn count(
    state: &mut State,
    topic: &Topic,
    partition: i32,
    (records, outcome): (usize, stats::Outcome),
) {
    if let Some(q) = state.queues.get_mut(&(topic.clone(), partition)) {
        q.counters.finished(records, outcome);
    }
}

/// A settled batch's `records` reported: no longer pending (`flush` waits for none).
fn finish(inner: &Inner, records: usize) {
    let idle = {
        let mut state = lock(&inner.state);
        state.pending = state.pending.saturating_sub(records);
        // The sender may stop now.
        state.pending == 0
    };
    inner.progress.notify_waiters();
    if idle {
        inner.wake.notify_one();
    }
}
