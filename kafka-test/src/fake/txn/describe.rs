//! DescribeTransactions and ListTransactions (the coordinator's state, for admin
//! clients) and DescribeProducers (a partition leader's producer state).

use super::{now_ms, TransactionState};
use crate::fake::Cluster;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    describe_transactions_response, list_transactions_response, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ListTransactionsRequest, ListTransactionsResponse,
};
use kafka_protocol::{ErrorCode, StrBytes};
use std::sync::Arc;

pub(crate) fn describe_transactions(
    cluster: &Arc<Cluster>,
    node: i32,
    r: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    use describe_transactions_response::{TopicData, TransactionState as Described};
    let state = cluster.state();
    let transaction_states = r
        .transactional_ids
        .iter()
        .map(|id| {
            let mut d = Described {
                transactional_id: id.clone(),
                producer_id: -1,
                producer_epoch: -1,
                transaction_start_time_ms: -1,
                ..Default::default()
            };
            let meta = state.txns.ids.get(id.as_str());
            let code = if id.is_empty() {
                ErrorCode::InvalidRequest
            } else if cluster.coordinator_for(id) != node {
                ErrorCode::NotCoordinator
            } else if let Some(m) = meta {
                d.transaction_state = m.state.name().into();
                d.transaction_timeout_ms = m.timeout_ms;
                d.transaction_start_time_ms = m.start_ms;
                d.producer_id = m.producer_id;
                d.producer_epoch = m.epoch;
                d.topics = m
                    .described_partitions()
                    .into_iter()
                    .map(|(topic, partitions)| TopicData {
                        topic: topic.into(),
                        partitions,
                        ..Default::default()
                    })
                    .collect();
                ErrorCode::None
            } else {
                ErrorCode::TransactionalIdNotFound
            };
            d.error_code = code.code();
            d
        })
        .collect();
    DescribeTransactionsResponse {
        transaction_states,
        ..Default::default()
    }
}

/// ListTransactions: the transactional ids this broker coordinates, filtered by state
/// name, producer id and (v1) by running longer than the duration filter.
pub(crate) fn list_transactions(
    cluster: &Arc<Cluster>,
    node: i32,
    r: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let known = |s: &StrBytes| TransactionState::ALL.iter().any(|k| k.name() == s.as_str());
    let unknown_state_filters: Vec<StrBytes> = r
        .state_filters
        .iter()
        .filter(|s| !known(s))
        .cloned()
        .collect();
    let duration = if version >= 1 { r.duration_filter } else { -1 };
    let now = now_ms();
    let state = cluster.state();
    let transaction_states = state
        .txns
        .ids
        .iter()
        .filter(|(id, m)| {
            cluster.coordinator_for(id) == node
                && (r.producer_id_filters.is_empty()
                    || r.producer_id_filters.contains(&m.producer_id))
                && (r.state_filters.is_empty()
                    || r.state_filters.iter().any(|s| s.as_str() == m.state.name()))
                && (duration < 0 || now - m.start_ms > duration)
        })
        .map(|(id, m)| list_transactions_response::TransactionState {
            transactional_id: id.clone().into(),
            producer_id: m.producer_id,
            transaction_state: m.state.name().into(),
            ..Default::default()
        })
        .collect();
    ListTransactionsResponse {
        unknown_state_filters,
        transaction_states,
        ..Default::default()
    }
}

/// DescribeProducers: the producers with state on each partition led by this broker.
pub(crate) fn describe_producers(
    cluster: &Arc<Cluster>,
    node: i32,
    r: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let state = cluster.state();
    let topics = r
        .topics
        .iter()
        .map(|t| TopicResponse {
            name: t.name.clone(),
            partitions: t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let mut out = PartitionResponse {
                        partition_index: index,
                        ..Default::default()
                    };
                    let partition = state
                        .topics
                        .get(t.name.as_str())
                        .and_then(|x| x.partitions.get(usize::try_from(index).ok()?));
                    match partition {
                        None => out.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                        Some(p) if p.leader != node => {
                            out.error_code = ErrorCode::NotLeaderOrFollower.code()
                        }
                        Some(p) => {
                            let mut producers: Vec<_> = p.producers.iter().collect();
                            producers.sort_by_key(|(id, _)| **id);
                            out.active_producers = producers
                                .into_iter()
                                .map(|(&id, s)| ProducerState {
                                    producer_id: id,
                                    producer_epoch: i32::from(s.epoch),
                                    last_sequence: s.recent.last().map_or(-1, |r| r.1),
                                    last_timestamp: -1,
                                    coordinator_epoch: if state.txns.id_of_producer(id).is_some() {
                                        super::COORDINATOR_EPOCH
                                    } else {
                                        -1
                                    },
                                    current_txn_start_offset: p
                                        .open_txns
                                        .get(&id)
                                        .copied()
                                        .unwrap_or(-1),
                                    ..Default::default()
                                })
                                .collect();
                        }
                    }
                    out
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    DescribeProducersResponse {
        topics,
        ..Default::default()
    }
}
