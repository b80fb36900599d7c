//! Error answers of the transaction APIs (fault injection and early rejections): the
//! code in every error field of the response.

use kafka_protocol::messages::*;
use kafka_protocol::{ErrorCode, RequestKind, ResponseKind};

/// TxnOffsetCommit answered `code` for every partition.
pub(crate) fn txn_offset_commit(
    r: &TxnOffsetCommitRequest,
    code: ErrorCode,
) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    TxnOffsetCommitResponse {
        topics: r
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn add_partitions_results(
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    c: i16,
) -> Vec<add_partitions_to_txn_response::AddPartitionsToTxnTopicResult> {
    use add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
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
                    partition_error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// The answer to a transaction API request that fails with `code`; None for other
/// APIs.
pub(crate) fn error_response(
    request: &RequestKind,
    code: ErrorCode,
    version: i16,
) -> Option<ResponseKind> {
    use RequestKind as R;
    let c = code.code();
    Some(match request {
        R::AddPartitionsToTxn(r) if version <= 3 => AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: add_partitions_results(&r.v3_and_below_topics, c),
            ..Default::default()
        }
        .into(),
        R::AddPartitionsToTxn(r) => AddPartitionsToTxnResponse {
            error_code: c,
            results_by_transaction: r
                .transactions
                .iter()
                .map(
                    |t| add_partitions_to_txn_response::AddPartitionsToTxnResult {
                        transactional_id: t.transactional_id.clone(),
                        topic_results: add_partitions_results(&t.topics, c),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }
        .into(),
        R::AddOffsetsToTxn(_) => AddOffsetsToTxnResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::EndTxn(_) => EndTxnResponse {
            error_code: c,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
        .into(),
        R::TxnOffsetCommit(r) => txn_offset_commit(r, code).into(),
        R::DescribeTransactions(r) => DescribeTransactionsResponse {
            transaction_states: r
                .transactional_ids
                .iter()
                .map(|id| describe_transactions_response::TransactionState {
                    error_code: c,
                    transactional_id: id.clone(),
                    producer_id: -1,
                    producer_epoch: -1,
                    transaction_start_time_ms: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::ListTransactions(_) => ListTransactionsResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::DescribeProducers(r) => DescribeProducersResponse {
            topics: r
                .topics
                .iter()
                .map(|t| describe_producers_response::TopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|p| describe_producers_response::PartitionResponse {
                            partition_index: *p,
                            error_code: c,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        _ => return None,
    })
}
