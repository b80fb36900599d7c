//! DescribeProducers: the idempotent producers with state on each partition led by
//! the answering broker (NOT_LEADER_OR_FOLLOWER for the others).

use super::super::Cluster;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_protocol::ErrorCode;

pub(crate) fn handle(
    cluster: &Cluster,
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
                .map(|&p| {
                    let mut out = PartitionResponse {
                        partition_index: p,
                        ..Default::default()
                    };
                    match state
                        .topics
                        .get(t.name.as_str())
                        .and_then(|t| t.partitions.get(p as usize))
                    {
                        None => out.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                        Some(part) if part.leader != node => {
                            out.error_code = ErrorCode::NotLeaderOrFollower.code()
                        }
                        Some(part) => {
                            let mut producers: Vec<_> = part.producers.iter().collect();
                            producers.sort_by_key(|(id, _)| **id);
                            out.active_producers = producers
                                .into_iter()
                                .map(|(id, s)| ProducerState {
                                    producer_id: *id,
                                    producer_epoch: i32::from(s.epoch),
                                    last_sequence: s.recent.last().map_or(-1, |r| r.1),
                                    last_timestamp: -1,
                                    coordinator_epoch: -1,
                                    current_txn_start_offset: -1,
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
