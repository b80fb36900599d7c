//! ElectLeaders: a preferred election makes each partition's first replica its
//! leader (its epoch goes up), ELECTION_NOT_NEEDED when it already is; an unclean one
//! answers ELECTION_NOT_NEEDED, as every partition of the fake has a live leader.

use super::super::Cluster;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::collections::BTreeMap;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(crate) fn handle(cluster: &Cluster, r: ElectLeadersRequest) -> ElectLeadersResponse {
    if !matches!(r.election_type, PREFERRED | UNCLEAN) {
        return ElectLeadersResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            ..Default::default()
        };
    }
    let mut state = cluster.state();
    let wanted: BTreeMap<String, Vec<i32>> = match &r.topic_partitions {
        Some(tps) => {
            let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for t in tps {
                m.entry(t.topic.to_string())
                    .or_default()
                    .extend(&t.partitions);
            }
            m
        }
        None => state
            .topics
            .iter()
            .map(|(n, t)| (n.clone(), (0..t.partitions.len() as i32).collect()))
            .collect(),
    };
    let replica_election_results = wanted
        .into_iter()
        .map(|(topic, partitions)| {
            let partition_result = partitions
                .into_iter()
                .map(|p| {
                    let part = state
                        .topics
                        .get_mut(&topic)
                        .and_then(|t| t.partitions.get_mut(p as usize));
                    let (code, message) = match part {
                        None => (ErrorCode::UnknownTopicOrPartition, None),
                        Some(part) if r.election_type == UNCLEAN => {
                            let _ = part;
                            (
                                ErrorCode::ElectionNotNeeded,
                                Some("the partition has a live leader".to_string()),
                            )
                        }
                        Some(part) => match part.replicas.first().copied() {
                            Some(preferred) if preferred != part.leader => {
                                part.leader = preferred;
                                part.leader_epoch += 1;
                                (ErrorCode::None, None)
                            }
                            _ => (
                                ErrorCode::ElectionNotNeeded,
                                Some("the preferred replica is the leader".to_string()),
                            ),
                        },
                    };
                    PartitionResult {
                        partition_id: p,
                        error_code: code.code(),
                        error_message: message.map(StrBytes::from),
                        ..Default::default()
                    }
                })
                .collect();
            ReplicaElectionResult {
                topic: StrBytes::from(topic),
                partition_result,
                ..Default::default()
            }
        })
        .collect();
    ElectLeadersResponse {
        replica_election_results,
        ..Default::default()
    }
}
