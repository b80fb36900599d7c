//! One handler per API key. Each builds its answer for the newest version; the broker
//! then calls `retain_version` so it encodes in the version asked for.

use super::admin;
use super::broker::Conn;
use super::group::consumer::topics_of;
use super::sasl::SaslStep;
use super::{fetch, list_offsets, produce, txn, Cluster};
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, StrBytes, Uuid};
use std::sync::Arc;

/// The APIs the fake serves.
pub(crate) const SERVED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::SaslHandshake,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::CreatePartitions,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::DescribeConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::ElectLeaders,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
];

/// Lowest version served: SaslHandshake v0 (raw SASL tokens outside Kafka frames)
/// is not.
pub(crate) fn min_version(api: ApiKey) -> i16 {
    match api {
        ApiKey::SaslHandshake => 1,
        _ => api.versions().min,
    }
}

/// Highest version served, where the fake implements less than the codec knows:
/// EndTxn v5 is KIP-890 part 2 (an epoch bump on every commit), which the transaction
/// coordinator does not do.
pub(crate) fn max_version(api: ApiKey) -> i16 {
    match api {
        ApiKey::EndTxn => 4,
        _ => api.versions().max,
    }
}

/// What to do with a request.
pub(crate) enum Answer {
    Respond(Box<ResponseKind>),
    /// Produce with acks=0.
    NoResponse,
    /// Close the connection (what Kafka does with requests it will not serve).
    Close,
}

pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from(v.into())
}

pub(crate) async fn handle(
    cluster: &Arc<Cluster>,
    conn: &mut Conn,
    request: RequestKind,
    version: i16,
) -> Answer {
    use RequestKind as R;
    txn::expire(cluster);
    let response: ResponseKind = match request {
        R::ApiVersions(_) => api_versions(cluster, ErrorCode::None).into(),
        R::Metadata(r) => metadata(cluster, r, version).into(),
        R::CreateTopics(r) => admin::create_topics(cluster, r, create_topics).into(),
        R::DescribeConfigs(r) => admin::describe_configs(cluster, conn.node, r).into(),
        R::IncrementalAlterConfigs(r) => admin::alter_configs(cluster, conn.node, r).into(),
        R::DescribeCluster(r) => admin::describe_cluster(cluster, r).into(),
        R::DeleteGroups(r) => admin::delete_groups(cluster, conn.node, r).into(),
        R::OffsetDelete(r) => admin::offset_delete(cluster, conn.node, r).into(),
        R::DescribeAcls(r) => admin::describe_acls(cluster, r).into(),
        R::CreateAcls(r) => admin::create_acls(cluster, r).into(),
        R::DeleteAcls(r) => admin::delete_acls(cluster, r).into(),
        R::ElectLeaders(r) => admin::elect_leaders(cluster, r).into(),
        R::DeleteTopics(r) => delete_topics(cluster, r).into(),
        R::CreatePartitions(r) => create_partitions(cluster, r).into(),
        R::Produce(r) => {
            let acks = r.acks;
            let response = produce::produce(cluster, conn.node, r, version);
            if acks == 0 {
                return Answer::NoResponse;
            }
            response.into()
        }
        R::Fetch(r) => fetch::fetch(cluster, conn.node, r, version).await.into(),
        R::ListOffsets(r) => list_offsets::list_offsets(cluster, conn.node, r, version).into(),
        R::DeleteRecords(r) => delete_records(cluster, conn.node, r).into(),
        R::FindCoordinator(r) => find_coordinator(cluster, r).into(),
        R::InitProducerId(r) => txn::init_producer_id(cluster, conn.node, r, version).into(),
        R::AddPartitionsToTxn(r) => {
            txn::add_partitions_to_txn(cluster, conn.node, r, version).into()
        }
        R::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(cluster, conn.node, r, version).into(),
        R::EndTxn(r) => txn::end_txn(cluster, conn.node, r, version).into(),
        R::TxnOffsetCommit(r) => txn::txn_offset_commit(cluster, conn.node, r, version)
            .await
            .into(),
        R::DescribeTransactions(r) => txn::describe_transactions(cluster, conn.node, r).into(),
        R::ListTransactions(r) => txn::list_transactions(cluster, conn.node, r, version).into(),
        R::DescribeProducers(r) => txn::describe_producers(cluster, conn.node, r).into(),
        R::SaslHandshake(r) => sasl_handshake(conn, r).into(),
        R::SaslAuthenticate(r) => sasl_authenticate(conn, r).into(),
        group_request => return group(cluster, conn, group_request, version).await,
    };
    Answer::Respond(Box::new(response))
}

/// Group requests go to the group coordinator when this broker is the group's
/// coordinator, else NOT_COORDINATOR.
async fn group(cluster: &Arc<Cluster>, conn: &Conn, request: RequestKind, version: i16) -> Answer {
    use RequestKind as R;
    let group_id = match &request {
        R::JoinGroup(r) => Some(r.group_id.to_string()),
        R::SyncGroup(r) => Some(r.group_id.to_string()),
        R::Heartbeat(r) => Some(r.group_id.to_string()),
        R::LeaveGroup(r) => Some(r.group_id.to_string()),
        R::OffsetCommit(r) => Some(r.group_id.to_string()),
        R::OffsetFetch(r) => Some(
            r.groups
                .first()
                .map_or_else(|| r.group_id.to_string(), |g| g.group_id.to_string()),
        ),
        R::DescribeGroups(r) => r.groups.first().map(|g| g.to_string()),
        R::ListGroups(_) => None,
        R::ConsumerGroupHeartbeat(r) => Some(r.group_id.to_string()),
        R::ConsumerGroupDescribe(r) => r.group_ids.first().map(|g| g.to_string()),
        _ => return Answer::Close,
    };
    if let Some(g) = group_id {
        if cluster.coordinator_for(&g) != conn.node {
            return error_response(&request, ErrorCode::NotCoordinator, version);
        }
    }
    let groups = &cluster.groups;
    Answer::Respond(Box::new(match request {
        R::JoinGroup(r) => groups
            .join_group_with_client(r, version, &conn.client_id, &conn.host)
            .await
            .into(),
        R::SyncGroup(r) => groups.sync_group(r, version).await.into(),
        R::Heartbeat(r) => groups.heartbeat(r, version).await.into(),
        R::LeaveGroup(r) => groups.leave_group(r, version).await.into(),
        R::OffsetCommit(r) => groups.offset_commit(r, version).await.into(),
        R::OffsetFetch(r) => groups.offset_fetch(r, version).await.into(),
        R::DescribeGroups(r) => groups.describe_groups(r, version).await.into(),
        R::ListGroups(r) => admin::list_groups(cluster, conn.node, r, version)
            .await
            .into(),
        R::ConsumerGroupHeartbeat(r) => groups
            .consumer_group_heartbeat(r, version, &topics_of(cluster))
            .await
            .into(),
        R::ConsumerGroupDescribe(r) => groups
            .consumer_group_describe(r, version, &topics_of(cluster))
            .await
            .into(),
        _ => return Answer::Close,
    }))
}

pub(crate) fn api_versions(cluster: &Cluster, code: ErrorCode) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: code.code(),
        api_keys: SERVED
            .iter()
            .filter_map(|&api| {
                let v = cluster.served_versions(api)?;
                Some(api_versions_response::ApiVersion {
                    api_key: api.key(),
                    min_version: v.min,
                    max_version: v.max,
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

fn brokers(cluster: &Cluster) -> Vec<metadata_response::MetadataResponseBroker> {
    cluster
        .broker_ids()
        .into_iter()
        .filter_map(|node| {
            let addr = cluster.addr_of(node)?;
            Some(metadata_response::MetadataResponseBroker {
                node_id: node,
                host: s(addr.ip().to_string()),
                port: i32::from(addr.port()),
                rack: None,
                ..Default::default()
            })
        })
        .collect()
}

fn metadata(cluster: &Arc<Cluster>, r: MetadataRequest, version: i16) -> MetadataResponse {
    use metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    // Which topics: all (null, or an empty list in v0), else the named ones.
    let wanted: Option<Vec<(Option<String>, Uuid)>> = match &r.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.iter()
                .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
                .collect(),
        ),
    };
    if let Some(wanted) = &wanted {
        if r.allow_auto_topic_creation && cluster.config.auto_create_topics {
            for (name, _) in wanted {
                if let Some(name) = name {
                    cluster.create_topic(name, cluster.config.default_partitions);
                }
            }
        }
    }
    let state = cluster.state();
    let describe = |name: &str, t: &super::state::Topic| MetadataResponseTopic {
        error_code: 0,
        name: Some(s(name)),
        topic_id: t.id,
        is_internal: false,
        partitions: t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| MetadataResponsePartition {
                error_code: 0,
                partition_index: i as i32,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.replicas.clone(),
                offline_replicas: Vec::new(),
                ..Default::default()
            })
            .collect(),
        topic_authorized_operations: -2147483648,
        ..Default::default()
    };
    let topics = match wanted {
        None => state.topics.iter().map(|(n, t)| describe(n, t)).collect(),
        Some(wanted) => wanted
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => state.topics.get_key_value(n.as_str()),
                    None => state.topics.iter().find(|(_, t)| t.id == id),
                };
                match found {
                    Some((n, t)) => describe(n, t),
                    None => MetadataResponseTopic {
                        error_code: if name.is_some() {
                            ErrorCode::UnknownTopicOrPartition.code()
                        } else {
                            ErrorCode::UnknownTopicId.code()
                        },
                        name: name.map(s),
                        topic_id: id,
                        ..Default::default()
                    },
                }
            })
            .collect(),
    };
    MetadataResponse {
        brokers: brokers(cluster),
        cluster_id: Some(s(cluster.config.cluster_id.clone())),
        controller_id: 0,
        topics,
        cluster_authorized_operations: -2147483648,
        ..Default::default()
    }
}

fn create_topics(cluster: &Arc<Cluster>, r: CreateTopicsRequest) -> CreateTopicsResponse {
    use create_topics_response::CreatableTopicResult;
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.to_string();
            let partitions = if t.num_partitions < 0 {
                cluster.config.default_partitions
            } else {
                t.num_partitions
            };
            let mut result = CreatableTopicResult {
                name: t.name.clone(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            };
            if name.is_empty()
                || name.len() > 249
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                result.error_code = ErrorCode::InvalidTopicException.code();
                result.error_message = Some(s(format!("invalid topic name {name:?}")));
            } else if partitions == 0 {
                result.error_code = ErrorCode::InvalidPartitions.code();
            } else if t.replication_factor > cluster.config.brokers as i16 {
                result.error_code = ErrorCode::InvalidReplicationFactor.code();
            } else if cluster.state().topics.contains_key(&name) {
                result.error_code = ErrorCode::TopicAlreadyExists.code();
                result.error_message = Some(s(format!("Topic '{name}' already exists.")));
            } else if !r.validate_only {
                cluster.create_topic(&name, partitions);
                result.topic_id = cluster
                    .state()
                    .topics
                    .get(&name)
                    .map_or(Uuid::NIL, |t| t.id);
            }
            result
        })
        .collect();
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

fn delete_topics(cluster: &Arc<Cluster>, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    use delete_topics_response::DeletableTopicResult;
    let targets: Vec<(Option<String>, Uuid)> = r
        .topic_names
        .iter()
        .map(|n| (Some(n.to_string()), Uuid::NIL))
        .chain(
            r.topics
                .iter()
                .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)),
        )
        .collect();
    let mut state = cluster.state();
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let found = match &name {
                Some(n) => state.topics.contains_key(n).then(|| n.clone()),
                None => state
                    .topics
                    .iter()
                    .find(|(_, t)| t.id == id)
                    .map(|(n, _)| n.clone()),
            };
            match found {
                Some(n) => {
                    let t = state.topics.remove(&n);
                    DeletableTopicResult {
                        name: Some(s(n)),
                        topic_id: t.map_or(id, |t| t.id),
                        ..Default::default()
                    }
                }
                None => DeletableTopicResult {
                    name: name.map(s),
                    topic_id: id,
                    error_code: ErrorCode::UnknownTopicOrPartition.code(),
                    ..Default::default()
                },
            }
        })
        .collect();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

fn create_partitions(
    cluster: &Arc<Cluster>,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    use create_partitions_response::CreatePartitionsTopicResult;
    let brokers = cluster.config.brokers.max(1);
    let mut state = cluster.state();
    let results = r
        .topics
        .iter()
        .map(|t| {
            let mut result = CreatePartitionsTopicResult {
                name: t.name.clone(),
                ..Default::default()
            };
            match state.topics.get_mut(t.name.as_str()) {
                None => result.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(topic) if t.count as usize <= topic.partitions.len() => {
                    result.error_code = ErrorCode::InvalidPartitions.code();
                    result.error_message = Some(s(format!(
                        "Topic currently has {} partitions, which is higher than the requested {}.",
                        topic.partitions.len(),
                        t.count
                    )));
                }
                Some(topic) if !r.validate_only => {
                    for p in topic.partitions.len() as i32..t.count {
                        let leader = p % brokers;
                        topic
                            .partitions
                            .push(super::state::Partition::new(leader, vec![leader]));
                    }
                }
                Some(_) => {}
            }
            result
        })
        .collect();
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}

/// The partition's error for a request to `node`, if any.
pub(crate) fn partition_error(
    cluster: &Cluster,
    node: i32,
    topic: &str,
    partition: i32,
) -> Option<ErrorCode> {
    let state = cluster.state();
    match state
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(partition as usize))
    {
        None => Some(ErrorCode::UnknownTopicOrPartition),
        Some(p) if p.leader != node => Some(ErrorCode::NotLeaderOrFollower),
        Some(_) => None,
    }
}

fn delete_records(
    cluster: &Arc<Cluster>,
    node: i32,
    r: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    let topics = r
        .topics
        .iter()
        .map(|t| DeleteRecordsTopicResult {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: -1,
                        ..Default::default()
                    };
                    if let Some(code) = partition_error(cluster, node, &t.name, p.partition_index) {
                        out.error_code = code.code();
                        return out;
                    }
                    let mut state = cluster.state();
                    if let Some(part) = state
                        .topics
                        .get_mut(t.name.as_str())
                        .and_then(|x| x.partitions.get_mut(p.partition_index as usize))
                    {
                        match part.delete_before(p.offset) {
                            Ok(low) => out.low_watermark = low,
                            Err(code) => out.error_code = code.code(),
                        }
                    }
                    out
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

fn find_coordinator(cluster: &Arc<Cluster>, r: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let locate = |key: &str| {
        let node = cluster.coordinator_for(key);
        let addr = cluster.addr_of(node);
        (
            node,
            addr.map(|a| a.ip().to_string()).unwrap_or_default(),
            addr.map_or(0, |a| i32::from(a.port())),
        )
    };
    if !(0..=1).contains(&r.key_type) {
        return FindCoordinatorResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            ..Default::default()
        };
    }
    if r.coordinator_keys.is_empty() {
        let (node_id, host, port) = locate(&r.key);
        FindCoordinatorResponse {
            node_id,
            host: s(host),
            port,
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            coordinators: r
                .coordinator_keys
                .iter()
                .map(|k| {
                    let (node_id, host, port) = locate(k);
                    find_coordinator_response::Coordinator {
                        key: k.clone(),
                        node_id,
                        host: s(host),
                        port,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    }
}

fn sasl_handshake(conn: &mut Conn, r: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let Some(session) = conn.sasl.as_mut() else {
        // A listener without SASL.
        return SaslHandshakeResponse {
            error_code: ErrorCode::IllegalSaslState.code(),
            mechanisms: Vec::new(),
        };
    };
    match session.handshake(&r.mechanism) {
        Ok(()) => SaslHandshakeResponse {
            error_code: 0,
            mechanisms: vec![r.mechanism],
        },
        Err(enabled) => SaslHandshakeResponse {
            error_code: ErrorCode::UnsupportedSaslMechanism.code(),
            mechanisms: enabled.into_iter().map(s).collect(),
        },
    }
}

fn sasl_authenticate(conn: &mut Conn, r: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let Some(session) = conn.sasl.as_mut() else {
        return SaslAuthenticateResponse {
            error_code: ErrorCode::IllegalSaslState.code(),
            ..Default::default()
        };
    };
    match session.authenticate(&r.auth_bytes) {
        SaslStep::Continue(reply) => SaslAuthenticateResponse {
            auth_bytes: Bytes::from(reply),
            ..Default::default()
        },
        SaslStep::Done { reply, .. } => SaslAuthenticateResponse {
            auth_bytes: Bytes::from(reply),
            ..Default::default()
        },
        SaslStep::Failed(message) => SaslAuthenticateResponse {
            error_code: ErrorCode::SaslAuthenticationFailed.code(),
            error_message: Some(s(message)),
            ..Default::default()
        },
    }
}

/// The answer to `request` when a fault says it fails with `code`: the code in every
/// error field the response has.
pub(crate) fn error_response(request: &RequestKind, code: ErrorCode, version: i16) -> Answer {
    use RequestKind as R;
    let c = code.code();
    let response: ResponseKind = match request {
        R::Produce(r) => {
            if r.acks == 0 {
                return Answer::NoResponse;
            }
            ProduceResponse {
                responses: r
                    .topic_data
                    .iter()
                    .map(|t| produce_response::TopicProduceResponse {
                        name: t.name.clone(),
                        partition_responses: t
                            .partition_data
                            .iter()
                            .map(|p| produce_response::PartitionProduceResponse {
                                index: p.index,
                                error_code: c,
                                base_offset: -1,
                                log_append_time_ms: -1,
                                log_start_offset: -1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into()
        }
        R::Fetch(r) => FetchResponse {
            error_code: if version >= 7 { c } else { 0 },
            responses: r
                .topics
                .iter()
                .map(|t| fetch_response::FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| fetch_response::PartitionData {
                            partition_index: p.partition,
                            error_code: c,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            preferred_read_replica: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::ListOffsets(r) => ListOffsetsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| list_offsets_response::ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| list_offsets_response::ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: c,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::Metadata(r) => MetadataResponse {
            topics: r
                .topics
                .iter()
                .flatten()
                .map(|t| metadata_response::MetadataResponseTopic {
                    error_code: c,
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    ..Default::default()
                })
                .collect(),
            controller_id: -1,
            ..Default::default()
        }
        .into(),
        R::FindCoordinator(r) => FindCoordinatorResponse {
            error_code: c,
            node_id: -1,
            coordinators: r
                .coordinator_keys
                .iter()
                .map(|k| find_coordinator_response::Coordinator {
                    key: k.clone(),
                    node_id: -1,
                    error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::JoinGroup(r) => JoinGroupResponse {
            error_code: c,
            generation_id: -1,
            member_id: r.member_id.clone(),
            protocol_name: if version >= 7 {
                None
            } else {
                Some(StrBytes::default())
            },
            ..Default::default()
        }
        .into(),
        R::SyncGroup(_) => SyncGroupResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::Heartbeat(_) => HeartbeatResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::LeaveGroup(_) => LeaveGroupResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::OffsetCommit(r) => OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| offset_commit_response::OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| offset_commit_response::OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
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
        R::OffsetFetch(r) => OffsetFetchResponse {
            error_code: c,
            groups: r
                .groups
                .iter()
                .map(|g| offset_fetch_response::OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DescribeGroups(r) => DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| describe_groups_response::DescribedGroup {
                    error_code: c,
                    group_id: g.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::ListGroups(_) => ListGroupsResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::InitProducerId(_) => InitProducerIdResponse {
            error_code: c,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
        .into(),
        R::CreateTopics(r) => CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| create_topics_response::CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: c,
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DeleteTopics(r) => DeleteTopicsResponse {
            responses: r
                .topic_names
                .iter()
                .map(|n| delete_topics_response::DeletableTopicResult {
                    name: Some(n.clone()),
                    error_code: c,
                    ..Default::default()
                })
                .chain(
                    r.topics
                        .iter()
                        .map(|t| delete_topics_response::DeletableTopicResult {
                            name: t.name.clone(),
                            topic_id: t.topic_id,
                            error_code: c,
                            ..Default::default()
                        }),
                )
                .collect(),
            ..Default::default()
        }
        .into(),
        R::CreatePartitions(r) => CreatePartitionsResponse {
            results: r
                .topics
                .iter()
                .map(
                    |t| create_partitions_response::CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: c,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DeleteRecords(r) => DeleteRecordsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| delete_records_response::DeleteRecordsTopicResult {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| delete_records_response::DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
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
        R::ApiVersions(_) => ApiVersionsResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::SaslHandshake(_) => SaslHandshakeResponse {
            error_code: c,
            mechanisms: Vec::new(),
        }
        .into(),
        R::SaslAuthenticate(_) => SaslAuthenticateResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        other => match txn::error_response(other, code, version)
            .or_else(|| super::group::consumer::error_response(other, code))
            .or_else(|| admin::error_response(other, code))
        {
            Some(response) => response,
            None => return Answer::Close,
        },
    };
    Answer::Respond(Box::new(response))
}
