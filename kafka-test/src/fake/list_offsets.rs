//! ListOffsets: earliest, latest (the last stable offset for read_committed), max
//! timestamp, and by time.

use super::handlers::partition_error;
use super::Cluster;
use kafka_protocol::messages::*;
use kafka_protocol::ErrorCode;
use std::sync::Arc;

pub(crate) fn list_offsets(
    cluster: &Arc<Cluster>,
    node: i32,
    r: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    let topics = r
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                        ..Default::default()
                    };
                    if let Some(code) = partition_error(cluster, node, &t.name, p.partition_index) {
                        out.error_code = code.code();
                        return out;
                    }
                    let state = cluster.state();
                    let Some(part) = state
                        .topics
                        .get(t.name.as_str())
                        .and_then(|x| x.partitions.get(p.partition_index as usize))
                    else {
                        out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return out;
                    };
                    out.leader_epoch = part.leader_epoch;
                    let (offset, ts) = match p.timestamp {
                        -2 => (part.log_start, -1),
                        -1 if r.isolation_level == 1 => (part.last_stable_offset(), -1),
                        -1 => (part.next_offset, -1),
                        -3 => part
                            .log
                            .iter()
                            .flat_map(|b| b.timestamps.iter().copied())
                            .max_by_key(|(_, t)| *t)
                            .unwrap_or((-1, -1)),
                        ts => part.offset_for_time(ts).unwrap_or((-1, -1)),
                    };
                    // Kafka: lookups by time find only offsets below the last stable
                    // offset for read_committed.
                    let (offset, ts) = match p.timestamp {
                        -3 | 0..
                            if r.isolation_level == 1 && offset >= part.last_stable_offset() =>
                        {
                            (-1, -1)
                        }
                        _ => (offset, ts),
                    };
                    out.offset = offset;
                    out.timestamp = ts;
                    if version == 0 {
                        out.old_style_offsets = if offset >= 0 {
                            vec![offset]
                        } else {
                            Vec::new()
                        };
                    }
                    out
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
