//! The sender task of the buffered producer: takes the ready batches, adds their
//! partitions to the open transaction, gets the producer id, and groups the batches
//! by leader into requests (see `request` for what happens to a request).

use super::*;

/// A batch taken from its queue to be sent.
pub(super) struct Outgoing {
    pub(super) topic: Topic,
    pub(super) partition: i32,
    pub(super) batch: Batch,
}

/// The sender: takes ready batches, groups them by leader, sends. Requests go out from
/// this one task, so the batches of a partition are on the wire in order even with
/// several in flight.
pub(super) async fn sender(inner: Arc<Inner>) {
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
pub(super) fn bump_due(inner: &Inner) -> Option<(i64, i16)> {
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
pub(super) fn early_linger(linger: Duration) -> Duration {
    const TIMER_TICK: Duration = Duration::from_millis(1);
    linger - TIMER_TICK.min(linger / 2)
}

/// Batches of one partition taken by the sender and not yet answered: those in flight
/// (`max_in_flight`, as the Java client) and, when compressed, up to
/// [`COMPRESSED_AHEAD`] more being compressed or waiting for a slot, so that a
/// partition's next requests compress while its last ones are at the broker. With
/// `max_in_flight` 1 (strict order without idempotence) none more: a batch waiting
/// for its slot could go before a retried one.
pub(super) fn batches_out_per_partition(config: &ProducerConfig) -> usize {
    let ahead = if config.compression != Compression::None && config.max_in_flight > 1 {
        COMPRESSED_AHEAD
    } else {
        0
    };
    config.max_in_flight + ahead
}

/// Compressed batches of a partition that may be out beyond `max_in_flight` (see
/// [`batches_out_per_partition`]).
const COMPRESSED_AHEAD: usize = 1;

/// Batches ready to go (full, lingered long enough, flushing, retried, or behind
/// another batch), at most one per partition per round, and when the next one will be.
pub(super) fn take_ready(inner: &Inner) -> (Vec<Outgoing>, Option<Instant>) {
    let now = Instant::now();
    let early_linger = early_linger(inner.config.linger);
    let per_partition = batches_out_per_partition(&inner.config);
    let mut state = lock(&inner.state);
    if state.bump {
        return (Vec::new(), None);
    }
    // A full buffer (callers waiting for room) does not hurry batches, as it does in
    // the Java client: cut early, they are smaller, and the broker's work per batch
    // made the producer slower (BENCHMARKS.md, issue 16).
    let hurry = state.flushing > 0 || inner.closed.load(Ordering::Acquire);
    // The buffer nearly full: less than a request's worth of room left, so callers
    // are waiting or about to.
    let pressed = inner.memory.available_permits() < inner.config.max_request_size;
    let mut ready = Vec::new();
    let mut next: Option<Instant> = None;
    // Whether a batch waits for an answer (see `finish`).
    let mut stalled = false;
    for ((topic, partition), q) in state.queues.iter_mut() {
        if q.in_flight.len() >= per_partition {
            stalled |= !q.batches.is_empty();
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
            stalled = true;
            continue;
        }
        let due = front.created + early_linger;
        // Full, another batch opened behind it, or a record waits for its partition's
        // room (`partition_memory`): it grows no more.
        let done = front.bytes >= inner.config.batch_size || q.batches.len() > 1 || q.waited;
        let is_ready = hurry || front.attempts > 0 || done || due <= now;
        if is_ready && pressed && !hurry && !done && !q.in_flight.is_empty() {
            // Lingered while the buffer is nearly full and a batch of its partition is
            // at the broker: it waits for that answer, growing meanwhile, so the
            // buffer holds fewer, larger batches (a broker's work is partly per
            // batch: on Tansu about 1.6 ms of CPU per idempotent batch, BENCHMARKS.md
            // issue 16). The answer wakes the sender.
            stalled = true;
            continue;
        }
        if is_ready {
            if let Some(mut batch) = q.batches.pop_front() {
                batch.memory.go_out(&q.out_bytes);
                q.in_flight.insert(batch.order);
                if batch.attempts == 0 {
                    q.last_len = batch.count;
                    q.last_bytes = batch.bytes;
                }
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
    state.stalled = stalled;
    (ready, next)
}

/// Sends ready batches, one request per broker (split at `max_request_size`).
pub(super) async fn dispatch(inner: &Arc<Inner>, ready: Vec<Outgoing>) {
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
    let mut by_broker: BTreeMap<(String, u8), (BrokerInfo, Vec<Outgoing>)> = BTreeMap::new();
    for out in ready {
        match inner.client.leader(&out.topic, out.partition).await {
            Ok(leader) => by_broker
                .entry((leader.addr(), lane(inner, &out.topic, out.partition)))
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push(out),
            Err(e) => retry_or_fail(inner, out, ProduceError::from(e)),
        }
    }
    for ((addr, lane), (broker, outs)) in by_broker {
        let mut request: Vec<Outgoing> = Vec::new();
        let mut bytes = 0;
        for out in outs {
            if !request.is_empty() && bytes + out.batch.bytes > inner.config.max_request_size {
                send_request(
                    inner,
                    (&addr, lane),
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
            send_request(inner, (&addr, lane), &broker, producer, request).await;
        }
    }
}

/// The connection (of `connections_per_broker`) a partition's requests go on: always
/// the same, so its batches reach the broker in order.
pub(super) fn lane(inner: &Inner, topic: &str, partition: i32) -> u8 {
    let lanes = inner.config.connections_per_broker as u32;
    if lanes <= 1 {
        return 0;
    }
    let topic_hash = topic
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (topic_hash.wrapping_add(partition as u32) % lanes) as u8
}

/// In a transaction: adds the partitions of `ready` that are not in it yet (one
/// AddPartitionsToTxn), and fails the batches if the transaction has failed or the
/// partitions cannot be added. The batches that may go on, or `None`.
pub(super) async fn add_to_transaction(
    inner: &Arc<Inner>,
    ready: Vec<Outgoing>,
) -> Option<Vec<Outgoing>> {
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
pub(super) async fn producer_id(inner: &Inner) -> Result<Option<(i64, i16)>, ProduceError> {
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
pub(super) async fn init_producer_id(
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
    let response = inner.client.request(request).await?;
    if let Some(e) = ProduceError::from_code(response.error_code, None) {
        return Err(e);
    }
    let fresh = (response.producer_id, response.producer_epoch);
    set_producer(&mut lock(&inner.state), fresh);
    Ok(fresh)
}

/// Takes a producer id and epoch from InitProducerId.
pub(super) fn set_producer(state: &mut State, fresh: (i64, i16)) {
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
