//! Produce: appends record batches to partition logs, with idempotence checks and,
//! for transactional batches, the transaction coordinator's verification (KIP-890).

use super::handlers::partition_error;
use super::state::State;
use super::{txn, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::records::RecordBatch;
use kafka_protocol::ErrorCode;
use std::sync::Arc;

/// Whether any batch of the request is transactional (Kafka checks the first batch of
/// each partition's records).
fn has_transactional_records(r: &ProduceRequest) -> bool {
    r.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .any(|p| {
            p.records.as_ref().is_some_and(|b| {
                // The attributes are at byte 21-22 of a v2 batch (magic at 16).
                b.len() > 22 && b[16] == 2 && i16::from_be_bytes([b[21], b[22]]) & 0x10 != 0
            })
        })
}

/// A verification error as the producer sees it (Kafka's `ReplicaManager`): retriable
/// coordinator errors become `NOT_ENOUGH_REPLICAS` so that every client retries.
fn produce_verification_error(code: ErrorCode, version: i16) -> ErrorCode {
    match txn::verification_error(code, version, 11) {
        ErrorCode::ConcurrentTransactions
        | ErrorCode::NetworkException
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
        other => other,
    }
}

pub(crate) fn produce(
    cluster: &Arc<Cluster>,
    node: i32,
    r: ProduceRequest,
    version: i16,
) -> ProduceResponse {
    use produce_response::{PartitionProduceResponse, TopicProduceResponse};
    let txn_id = r.transactional_id.as_ref().map(|t| t.to_string());
    // Kafka: transactional records need a transactional id (that the client may write).
    let refused = (txn_id.is_none() && has_transactional_records(&r))
        .then_some(ErrorCode::TransactionalIdAuthorizationFailed);

    let responses = r
        .topic_data
        .iter()
        .map(|t| TopicProduceResponse {
            name: t.name.clone(),
            partition_responses: t
                .partition_data
                .iter()
                .map(|p| {
                    let mut out = PartitionProduceResponse {
                        index: p.index,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        ..Default::default()
                    };
                    if let Some(code) =
                        refused.or_else(|| partition_error(cluster, node, &t.name, p.index))
                    {
                        out.error_code = code.code();
                        return out;
                    }
                    let mut guard = cluster.state();
                    let State { topics, txns, .. } = &mut *guard;
                    let Some(partition) = topics
                        .get_mut(t.name.as_str())
                        .and_then(|topic| topic.partitions.get_mut(p.index as usize))
                    else {
                        out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return out;
                    };
                    let records = p.records.clone().unwrap_or_default();
                    // KIP-890 part 1: the first transactional batch of a producer here
                    // must be in its transaction.
                    let mut verify = |b: &RecordBatch| {
                        let code = txns.verify(
                            txn_id.as_deref().unwrap_or(""),
                            b.producer_id,
                            b.producer_epoch,
                            Some((t.name.as_str(), p.index)),
                            None,
                        );
                        match produce_verification_error(code, version) {
                            ErrorCode::None => Ok(()),
                            code => Err(code),
                        }
                    };
                    match partition.append(&records, &mut verify) {
                        Ok(base) => {
                            out.base_offset = base;
                            out.log_start_offset = partition.log_start;
                        }
                        Err(code) => out.error_code = code.code(),
                    }
                    out
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    cluster.data.notify_waiters();
    ProduceResponse {
        responses,
        ..Default::default()
    }
}
