//! InitProducerId: idempotent producers (no transactional id) get a new producer id or,
//! with KIP-360, a bumped epoch; transactional producers go through the coordinator
//! (Kafka's `TransactionCoordinator.handleInitProducerId`).

use super::{end_txn, fenced_for_version, TransactionState, TxnMeta, MAX_TRANSACTION_TIMEOUT_MS};
use crate::fake::Cluster;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_protocol::ErrorCode;
use std::sync::Arc;

/// Kafka's `isProducerEpochExhausted`: the epoch is one short of `Short.MaxValue`.
fn exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

fn answer(result: Result<(i64, i16), ErrorCode>) -> InitProducerIdResponse {
    match result {
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
            producer_id,
            producer_epoch,
            ..Default::default()
        },
        Err(code) => InitProducerIdResponse {
            error_code: code.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    }
}

pub(crate) fn init_producer_id(
    cluster: &Arc<Cluster>,
    node: i32,
    r: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let Some(txn_id) = r.transactional_id.as_ref().map(|t| t.to_string()) else {
        return answer(idempotent(cluster, &r));
    };
    // Kafka: both or neither of producer id and epoch.
    let expected = match (r.producer_id, r.producer_epoch) {
        (-1, -1) => None,
        (id, epoch) if id >= 0 && epoch >= 0 => Some((id, epoch)),
        _ => return answer(Err(ErrorCode::InvalidRequest)),
    };
    if txn_id.is_empty() {
        return answer(Err(ErrorCode::InvalidRequest));
    }
    // Kafka validates the timeout before it looks the id up (NOT_COORDINATOR).
    if r.transaction_timeout_ms <= 0 || r.transaction_timeout_ms > MAX_TRANSACTION_TIMEOUT_MS {
        return answer(Err(ErrorCode::InvalidTransactionTimeout));
    }
    if cluster.coordinator_for(&txn_id) != node {
        return answer(Err(ErrorCode::NotCoordinator));
    }
    let result = transactional(cluster, &txn_id, r.transaction_timeout_ms, expected);
    answer(result.map_err(|code| fenced_for_version(code, version, 4)))
}

/// A producer without a transactional id: a new id, or a KIP-360 epoch bump of the
/// id and epoch it names.
fn idempotent(cluster: &Cluster, r: &InitProducerIdRequest) -> Result<(i64, i16), ErrorCode> {
    let mut state = cluster.state();
    let (id, epoch) = if r.producer_id >= 0 {
        match state.producer_epochs.get(&r.producer_id).copied() {
            Some(e) if e == r.producer_epoch => (r.producer_id, e + 1),
            _ => return Err(ErrorCode::InvalidProducerEpoch),
        }
    } else {
        state.next_producer_id += 1;
        (state.next_producer_id, 0)
    };
    state.producer_epochs.insert(id, epoch);
    Ok((id, epoch))
}

/// The coordinator's InitProducerId; `CONCURRENT_TRANSACTIONS` after aborting an open
/// transaction (the client retries).
fn transactional(
    cluster: &Arc<Cluster>,
    txn_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> Result<(i64, i16), ErrorCode> {
    let fence = {
        let mut state = cluster.state();
        if !state.txns.ids.contains_key(txn_id) {
            state.next_producer_id += 1;
            let id = state.next_producer_id;
            state
                .txns
                .ids
                .insert(txn_id.to_string(), TxnMeta::new(id, timeout_ms));
        }
        let next_id = state.next_producer_id + 1;
        let meta = state
            .txns
            .ids
            .get_mut(txn_id)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        // Kafka's isValidProducerId.
        let valid = expected.is_none_or(|(id, epoch)| {
            meta.epoch == -1
                || id == meta.producer_id
                || (id == meta.previous_producer_id && exhausted(epoch))
        });
        if meta.state.is_prepare() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        if !valid {
            return Err(ErrorCode::ProducerFenced);
        }
        match meta.state {
            TransactionState::Ongoing => {
                // Fence: abort with a bumped epoch that is never returned.
                meta.epoch = meta.epoch.saturating_add(1);
                meta.last_epoch = -1;
                meta.state = TransactionState::PrepareAbort;
                (meta.producer_id, meta.epoch)
            }
            _ => {
                let rotate = exhausted(meta.epoch) && expected.is_none_or(|(_, e)| e == meta.epoch);
                if rotate {
                    meta.previous_producer_id = meta.producer_id;
                    meta.last_epoch = if expected.is_some() { meta.epoch } else { -1 };
                    meta.producer_id = next_id;
                    meta.epoch = 0;
                } else {
                    let (epoch, last) = match expected {
                        None => (meta.epoch + 1, -1),
                        Some((_, e)) if meta.epoch == -1 || e == meta.epoch => {
                            (meta.epoch + 1, meta.epoch)
                        }
                        Some((_, e)) if e == meta.last_epoch => (meta.epoch, meta.last_epoch),
                        Some(_) => return Err(ErrorCode::ProducerFenced),
                    };
                    meta.epoch = epoch;
                    meta.last_epoch = last;
                }
                meta.timeout_ms = timeout_ms;
                meta.state = TransactionState::Empty;
                meta.partitions.clear();
                meta.groups.clear();
                let answer = (meta.producer_id, meta.epoch);
                if rotate {
                    state.next_producer_id = next_id;
                }
                return Ok(answer);
            }
        }
    };
    end_txn::schedule_completion(cluster, txn_id, fence.0, fence.1, false);
    Err(ErrorCode::ConcurrentTransactions)
}

/// Fences the producer of `txn_id` as a new producer with the same id would (for
/// tests): aborts an open transaction, then bumps the epoch. The new producer id and
/// epoch, or None for an unknown id.
pub(crate) fn fence_now(cluster: &Arc<Cluster>, txn_id: &str) -> Option<(i64, i16)> {
    let timeout = cluster.state().txns.ids.get(txn_id)?.timeout_ms;
    for _ in 0..3 {
        match transactional(cluster, txn_id, timeout, None) {
            Ok(answer) => return Some(answer),
            Err(ErrorCode::ConcurrentTransactions) => {
                end_txn::complete_pending_now(cluster, txn_id)
            }
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fake::{FakeCluster, FakeClusterConfig};

    fn request(id: &str, expected: Option<(i64, i16)>) -> InitProducerIdRequest {
        let (producer_id, producer_epoch) = expected.unwrap_or((-1, -1));
        InitProducerIdRequest {
            transactional_id: Some(id.to_string().into()),
            transaction_timeout_ms: 60_000,
            producer_id,
            producer_epoch,
            ..Default::default()
        }
    }

    /// Kafka's `prepareProducerIdRotation`: an exhausted epoch gets a new producer id
    /// at epoch 0; a recovering producer's retry with the old id and its exhausted epoch
    /// is accepted.
    #[tokio::test]
    async fn an_exhausted_epoch_gets_a_new_producer_id() {
        let fake = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        let cluster = &fake.cluster;
        let first = init_producer_id(cluster, 0, request("worn", None), 4);
        assert_eq!(first.producer_epoch, 0);
        cluster.state().txns.ids.get_mut("worn").unwrap().epoch = i16::MAX - 1;
        let rotated = init_producer_id(cluster, 0, request("worn", None), 4);
        assert_eq!(rotated.error_code, 0);
        assert_ne!(rotated.producer_id, first.producer_id);
        assert_eq!(rotated.producer_epoch, 0);
        // Every later id is new too.
        let other = init_producer_id(cluster, 0, request("other", None), 4);
        assert!(other.producer_id > rotated.producer_id);

        // KIP-360 from the exhausted epoch: rotation, and the previous id stays valid.
        let meta_epoch = |c: &Cluster| c.state().txns.ids.get("other").unwrap().epoch;
        cluster.state().txns.ids.get_mut("other").unwrap().epoch = i16::MAX - 1;
        assert_eq!(meta_epoch(cluster), i16::MAX - 1);
        let exhausted = Some((other.producer_id, i16::MAX - 1));
        let recovered = init_producer_id(cluster, 0, request("other", exhausted), 4);
        assert_eq!(recovered.error_code, 0);
        assert_ne!(recovered.producer_id, other.producer_id);
        assert_eq!(recovered.producer_epoch, 0);
        let retried = init_producer_id(cluster, 0, request("other", exhausted), 4);
        assert_eq!(
            (
                retried.error_code,
                retried.producer_id,
                retried.producer_epoch
            ),
            (0, recovered.producer_id, 0),
            "a retry of the rotation gets the same answer"
        );
    }
}
