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
    let exists = |t: &str, p: i32| {
        state
            .topics
            .get(t)
            .is_some_and(|x| p >= 0 && (p as usize) < x.partitions.len())
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| !exists(&t.name, *p)));
    let codes: Box<dyn Fn(&str, i32) -> ErrorCode> = if txn.id.is_empty() {
        Box::new(|_, _| ErrorCode::InvalidRequest)
    } else if cluster.coordinator_for(txn.id) != node {
        Box::new(|_, _| ErrorCode::NotCoordinator)
    } else if any_unknown {
        let known: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
            .filter(|(t, p)| exists(t, *p))
            .collect();
        Box::new(move |t, p| {
            if known.iter().any(|(kt, kp)| kt == t && *kp == p) {
                ErrorCode::OperationNotAttempted
            } else {
                ErrorCode::UnknownTopicOrPartition
            }
        })
    } else if txn.verify_only {
        let txns = &state.txns;
        let answers: Vec<(String, i32, ErrorCode)> = topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let code = txns.verify(
                        txn.id,
                        txn.producer_id,
                        txn.epoch,
                        Some((t.name.as_str(), *p)),
                        None,
                    );
                    (t.name.to_string(), *p, code)
                })
            })
            .collect();
        Box::new(move |t, p| {
            answers
                .iter()
                .find(|(at, ap, _)| at == t && *ap == p)
                .map_or(ErrorCode::UnknownServerError, |a| a.2)
        })
    } else {
        let partitions: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
            .collect();
        let code = match state
            .txns
            .add(txn.id, txn.producer_id, txn.epoch, &partitions, None)
        {
            Ok(()) => ErrorCode::None,
            Err(code) => fenced_for_version(code, version, 2),
        };
        Box::new(move |_, _| code)
    };
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|p| AddPartitionsToTxnPartitionResult {
                    partition_index: *p,
                    partition_error_code: codes(&t.name, *p).code(),
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
