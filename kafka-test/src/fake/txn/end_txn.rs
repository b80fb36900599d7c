//! EndTxn (Kafka's `endTransaction` for transaction version 1), the completion of a
//! transaction (markers into its partitions, the groups' pending offsets), and the
//! coordinator's aborts: timeouts and fencing.

use super::{fenced_for_version, now_ms, TransactionState, COORDINATOR_EPOCH};
use crate::fake::state::State;
use crate::fake::Cluster;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use kafka_protocol::ErrorCode;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the ticker looks for timed-out transactions.
const TICK: Duration = Duration::from_millis(50);

pub(crate) fn end_txn(
    cluster: &Arc<Cluster>,
    node: i32,
    r: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let id = r.transactional_id.to_string();
    let code = if id.is_empty() {
        ErrorCode::InvalidRequest
    } else if cluster.coordinator_for(&id) != node {
        ErrorCode::NotCoordinator
    } else {
        match prepare(cluster, &id, r.producer_id, r.producer_epoch, r.committed) {
            Ok(true) => {
                schedule_completion(cluster, &id, r.producer_id, r.producer_epoch, r.committed);
                ErrorCode::None
            }
            Ok(false) => ErrorCode::None,
            Err(code) => code,
        }
    };
    EndTxnResponse {
        error_code: fenced_for_version(code, version, 2).code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}

/// Moves an `Ongoing` transaction to `PrepareCommit`/`PrepareAbort`: `Ok(true)`, and
/// the markers are to be written; `Ok(false)` for a retry of a completed EndTxn with the
/// same outcome.
fn prepare(
    cluster: &Cluster,
    id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<bool, ErrorCode> {
    use TransactionState as S;
    let mut state = cluster.state();
    let meta = state
        .txns
        .ids
        .get_mut(id)
        .ok_or(ErrorCode::InvalidProducerIdMapping)?;
    meta.check_producer(producer_id, epoch)?;
    match (meta.state, commit) {
        (S::Ongoing, _) => {
            meta.state = if commit {
                S::PrepareCommit
            } else {
                S::PrepareAbort
            };
            Ok(true)
        }
        (S::CompleteCommit, true) | (S::CompleteAbort, false) => Ok(false),
        (S::PrepareCommit, true) | (S::PrepareAbort, false) => {
            Err(ErrorCode::ConcurrentTransactions)
        }
        _ => Err(ErrorCode::InvalidTxnState),
    }
}

/// Completes a prepared transaction now, or after the cluster's marker delay.
pub(crate) fn schedule_completion(
    cluster: &Arc<Cluster>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) {
    let delay = cluster.state().txns.marker_delay;
    let runtime = tokio::runtime::Handle::try_current();
    match runtime {
        Ok(runtime) if !delay.is_zero() => {
            let cluster = Arc::downgrade(cluster);
            let id = id.to_string();
            runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(cluster) = cluster.upgrade() {
                    complete(&cluster, &id, producer_id, epoch, commit);
                }
            });
        }
        _ => complete(cluster, id, producer_id, epoch, commit),
    }
}

/// Completes the prepared transaction of `id` at once, if there is one.
pub(crate) fn complete_pending_now(cluster: &Cluster, id: &str) {
    let pending = {
        let state = cluster.state();
        state.txns.ids.get(id).and_then(|m| match m.state {
            TransactionState::PrepareCommit => Some((m.producer_id, m.epoch, true)),
            TransactionState::PrepareAbort => Some((m.producer_id, m.epoch, false)),
            _ => None,
        })
    };
    if let Some((producer_id, epoch, commit)) = pending {
        complete(cluster, id, producer_id, epoch, commit);
    }
}

/// Writes the markers of a prepared transaction into its partitions, completes the
/// groups' pending offsets and moves to `CompleteCommit`/`CompleteAbort`. Nothing if the
/// transaction is no longer the one prepared.
fn complete(cluster: &Cluster, id: &str, producer_id: i64, epoch: i16, commit: bool) {
    let prepared = if commit {
        TransactionState::PrepareCommit
    } else {
        TransactionState::PrepareAbort
    };
    let is_it = |state: &State| {
        state
            .txns
            .ids
            .get(id)
            .filter(|m| m.producer_id == producer_id && m.epoch == epoch && m.state == prepared)
            .map(|m| m.groups.clone())
    };
    // The group coordinator is never called with the state locked.
    let Some(groups) = is_it(&cluster.state()) else {
        return;
    };
    for g in &groups {
        cluster.groups.complete_txn_offsets(g, producer_id, commit);
    }
    {
        let mut guard = cluster.state();
        if is_it(&guard).is_none() {
            return;
        }
        let State { topics, txns, .. } = &mut *guard;
        let Some(meta) = txns.ids.get_mut(id) else {
            return;
        };
        let now = now_ms();
        for (topic, partition) in &meta.partitions {
            if let Some(p) = topics
                .get_mut(topic.as_str())
                .and_then(|t| t.partitions.get_mut(*partition as usize))
            {
                p.append_marker(producer_id, epoch, commit, COORDINATOR_EPOCH, now);
            }
        }
        meta.state = if commit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        meta.partitions.clear();
        meta.groups.clear();
        meta.started = None;
    }
    cluster.data.notify_waiters();
}

/// Aborts every `Ongoing` transaction older than its timeout, with a bumped epoch (as
/// Kafka's `abortTimedOutTransactions`), so that its producer is fenced.
pub(crate) fn expire(cluster: &Arc<Cluster>) {
    let now = Instant::now();
    let expired: Vec<(String, i64, i16)> = {
        let mut state = cluster.state();
        state
            .txns
            .ids
            .iter_mut()
            .filter(|(_, m)| {
                m.state == TransactionState::Ongoing
                    && m.epoch < i16::MAX
                    && m.started.is_some_and(|s| {
                        now.duration_since(s) >= Duration::from_millis(m.timeout_ms.max(0) as u64)
                    })
            })
            .map(|(id, m)| {
                m.epoch += 1;
                m.last_epoch = -1;
                m.state = TransactionState::PrepareAbort;
                tracing::debug!(transactional_id = %id, "fake coordinator: transaction timed out");
                (id.clone(), m.producer_id, m.epoch)
            })
            .collect()
    };
    for (id, producer_id, epoch) in expired {
        schedule_completion(cluster, &id, producer_id, epoch, false);
    }
}

/// Fences the producer of `id` as a second InitProducerId would; see
/// [`FakeCluster::fence_transactional_id`](crate::FakeCluster::fence_transactional_id).
pub(crate) fn fence(cluster: &Arc<Cluster>, id: &str) -> Option<(i64, i16)> {
    super::init_producer_id::fence_now(cluster, id)
}

/// A task that aborts timed-out transactions every 50 ms, until the cluster is dropped.
pub(crate) fn spawn_ticker(cluster: &Arc<Cluster>) {
    let cluster: Weak<Cluster> = Arc::downgrade(cluster);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            expire(&cluster);
        }
    });
}
