//! AddPartitionsToTxn (v0-3 from clients, v4+ batched from brokers with `verify_only`,
//! KIP-890) and AddOffsetsToTxn.

use super::fenced_for_version;
use crate::fake::Cluster;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
};
use kafka_protocol::ErrorCode;
use std::sync::Arc;

pub(crate) fn add_partitions_to_txn(
    cluster: &Arc<Cluster>,
    node: i32,
    r: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let txn = Txn {
            id: r.v3_and_below_transactional_id.as_str(),
            producer_id: r.v3_and_below_producer_id,
            epoch: r.v3_and_below_producer_epoch,
            verify_only: false,
        };
        return AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: one(
                cluster,
                node,
                &txn,
                &r.v3_and_below_topics,
                version,
            ),
            ..Default::default()
        };
    }
    let results_by_transaction = r
        .transactions
        .iter()
        .map(|t| {
            let txn = Txn {
                id: t.transactional_id.as_str(),
                producer_id: t.producer_id,
                epoch: t.producer_epoch,
                verify_only: t.verify_only,
            };
            AddPartitionsToTxnResult {
                transactional_id: t.transactional_id.clone(),
                topic_results: one(cluster, node, &txn, &t.topics, version),
                ..Default::default()
            }
        })
        .collect();
    AddPartitionsToTxnResponse {
        results_by_transaction,
        ..Default::default()
    }
}

struct Txn<'a> {
    id: &'a str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
}

/// The per-partition answers for one transaction: unknown partitions fail the whole
/// request (`UNKNOWN_TOPIC_OR_PARTITION`, the others `OPERATION_NOT_ATTEMPTED`), as
/// Kafka's `handleAddPartitionsToTxnRequest`; else one coordinator answer for all (or,
/// with `verify_only`, one per partition).
fn one(
    cluster: &Cluster,
    node: i32,
    txn: &Txn<'_>,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut state = cluster.state();
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let exists: Vec<bool> = partitions
        .iter()
        .map(|(t, p)| {
            state
                .topics
                .get(t.as_str())
                .is_some_and(|x| *p >= 0 && (*p as usize) < x.partitions.len())
        })
        .collect();
    // One code per partition, in request order.
    let codes: Vec<ErrorCode> = if txn.id.is_empty() {
        vec![ErrorCode::InvalidRequest; partitions.len()]
    } else if cluster.coordinator_for(txn.id) != node {
        vec![ErrorCode::NotCoordinator; partitions.len()]
    } else if exists.contains(&false) {
        exists
            .iter()
            .map(|&known| {
                if known {
                    ErrorCode::OperationNotAttempted
                } else {
                    ErrorCode::UnknownTopicOrPartition
                }
            })
            .collect()
    } else if txn.verify_only {
        partitions
            .iter()
            .map(|(t, p)| {
                state.txns.verify(
                    txn.id,
                    txn.producer_id,
                    txn.epoch,
                    Some((t.as_str(), *p)),
                    None,
                )
            })
            .collect()
    } else {
        let code = match state
            .txns
            .add(txn.id, txn.producer_id, txn.epoch, &partitions, None)
        {
            Ok(()) => ErrorCode::None,
            Err(code) => fenced_for_version(code, version, 2),
        };
        vec![code; partitions.len()]
    };
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|p| AddPartitionsToTxnPartitionResult {
                    partition_index: *p,
                    partition_error_code: codes.next().unwrap_or(ErrorCode::None).code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn add_offsets_to_txn(
    cluster: &Arc<Cluster>,
    node: i32,
    r: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let id = r.transactional_id.as_str();
    let code = if id.is_empty() || r.group_id.is_empty() {
        ErrorCode::InvalidRequest
    } else if cluster.coordinator_for(id) != node {
        ErrorCode::NotCoordinator
    } else {
        let result = cluster.state().txns.add(
            id,
            r.producer_id,
            r.producer_epoch,
            &[],
            Some(r.group_id.as_str()),
        );
        match result {
            Ok(()) => ErrorCode::None,
            Err(code) => fenced_for_version(code, version, 2),
        }
    };
    AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
