//! One handler per API key. Each builds its answer for the newest version; the broker
//! then calls `retain_version` so it encodes in the version asked for.

use super::admin;
use super::broker::Conn;
use super::sasl::SaslStep;
use super::Cluster;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, StrBytes, Uuid};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    ApiKey::CreatePartitions,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::ElectLeaders,
    ApiKey::DescribeProducers,
];

/// Lowest version served: SaslHandshake v0 (raw SASL tokens outside Kafka frames)
/// is not.
pub(crate) fn min_version(api: ApiKey) -> i16 {
    match api {
        ApiKey::SaslHandshake => 1,
        _ => api.versions().min,
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

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from(v.into())
}

pub(crate) async fn handle(
    cluster: &Arc<Cluster>,
    conn: &mut Conn,
    request: RequestKind,
    version: i16,
) -> Answer {
    use RequestKind as R;
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
        R::DescribeProducers(r) => admin::describe_producers(cluster, conn.node, r).into(),
        R::DeleteTopics(r) => delete_topics(cluster, r).into(),
        R::CreatePartitions(r) => create_partitions(cluster, r).into(),
        R::Produce(r) => {
            let acks = r.acks;
            let response = produce(cluster, conn.node, r);
            if acks == 0 {
                return Answer::NoResponse;
            }
            response.into()
        }
        R::Fetch(r) => fetch(cluster, conn.node, r, version).await.into(),
        R::ListOffsets(r) => list_offsets(cluster, conn.node, r, version).into(),
        R::DeleteRecords(r) => delete_records(cluster, conn.node, r).into(),
        R::FindCoordinator(r) => find_coordinator(cluster, r).into(),
        R::InitProducerId(r) => init_producer_id(cluster, r).into(),
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
fn partition_error(cluster: &Cluster, node: i32, topic: &str, partition: i32) -> Option<ErrorCode> {
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

fn produce(cluster: &Arc<Cluster>, node: i32, r: ProduceRequest) -> ProduceResponse {
    use produce_response::{PartitionProduceResponse, TopicProduceResponse};

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
                    if let Some(code) = partition_error(cluster, node, &t.name, p.index) {
                        out.error_code = code.code();
                        return out;
                    }
                    let mut state = cluster.state();
                    let Some(partition) = state
                        .topics
                        .get_mut(t.name.as_str())
                        .and_then(|topic| topic.partitions.get_mut(p.index as usize))
                    else {
                        out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return out;
                    };
                    let records = p.records.clone().unwrap_or_default();
                    match partition.append(&records) {
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

/// Fetch sessions (KIP-227): session id 0 with epoch 0 opens one, epoch -1 closes or
/// skips one, a positive epoch continues one and must match.
enum SessionUse {
    None,
    New(i32),
    Incremental(i32),
    Error(ErrorCode),
}

/// Flips the last byte of every partition's records (fault injection).
pub(crate) fn corrupt_records(response: &mut FetchResponse) {
    for topic in &mut response.responses {
        for partition in &mut topic.partitions {
            if let Some(records) = partition.records.as_mut().filter(|r| !r.is_empty()) {
                let mut bytes = records.to_vec();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0xff;
                }
                *records = bytes.into();
            }
        }
    }
}

fn fetch_session(cluster: &Cluster, r: &FetchRequest) -> SessionUse {
    let mut state = cluster.state();
    match (r.session_id, r.session_epoch) {
        (0, -1) => SessionUse::None,
        (id, -1) => {
            state.fetch_sessions.remove(&id);
            SessionUse::None
        }
        (0, 0) => {
            state.next_session_id += 1;
            let id = state.next_session_id;
            state
                .fetch_sessions
                .insert(id, super::state::FetchSession::default());
            SessionUse::New(id)
        }
        (id, epoch) => match state.fetch_sessions.get(&id) {
            None => SessionUse::Error(ErrorCode::FetchSessionIdNotFound),
            Some(s) if s.epoch != epoch => SessionUse::Error(ErrorCode::InvalidFetchSessionEpoch),
            Some(_) => SessionUse::Incremental(id),
        },
    }
}

async fn fetch(cluster: &Arc<Cluster>, node: i32, r: FetchRequest, version: i16) -> FetchResponse {
    use fetch_response::{FetchableTopicResponse, PartitionData};
    let session = if version >= 7 {
        fetch_session(cluster, &r)
    } else {
        SessionUse::None
    };
    let session_id = match session {
        SessionUse::Error(code) => {
            return FetchResponse {
                error_code: code.code(),
                ..Default::default()
            }
        }
        SessionUse::New(id) | SessionUse::Incremental(id) => id,
        SessionUse::None => 0,
    };
    // Topic names for topics given by id (v13+).
    let name_of = |t: &fetch_request::FetchTopic| -> Option<String> {
        if !t.topic.is_empty() {
            return Some(t.topic.to_string());
        }
        let state = cluster.state();
        state
            .topics
            .iter()
            .find(|(_, x)| x.id == t.topic_id)
            .map(|(n, _)| n.clone())
    };
    // The partitions to answer: the request's, or for a session, the session's.
    let mut wanted: Vec<(String, Uuid, i32, i64, i32)> = Vec::new();
    let mut unknown_ids: Vec<Uuid> = Vec::new();
    for t in &r.topics {
        match name_of(t) {
            Some(name) => {
                for p in &t.partitions {
                    wanted.push((
                        name.clone(),
                        t.topic_id,
                        p.partition,
                        p.fetch_offset,
                        p.partition_max_bytes,
                    ));
                }
            }
            None => unknown_ids.push(t.topic_id),
        }
    }
    let incremental = matches!(session, SessionUse::Incremental(_));
    if session_id != 0 {
        let mut state = cluster.state();
        let topic_ids: std::collections::HashMap<String, Uuid> = state
            .topics
            .iter()
            .map(|(n, t)| (n.clone(), t.id))
            .collect();
        if let Some(sess) = state.fetch_sessions.get_mut(&session_id) {
            for (name, _, p, offset, max) in &wanted {
                sess.partitions.insert((name.clone(), *p), (*offset, *max));
            }
            for f in &r.forgotten_topics_data {
                let name = if f.topic.is_empty() {
                    topic_ids
                        .iter()
                        .find(|(_, id)| **id == f.topic_id)
                        .map(|(n, _)| n.clone())
                } else {
                    Some(f.topic.to_string())
                };
                if let Some(name) = name {
                    for p in &f.partitions {
                        sess.partitions.remove(&(name.clone(), *p));
                        sess.reported.remove(&(name.clone(), *p));
                    }
                }
            }
            if incremental {
                wanted = sess
                    .partitions
                    .iter()
                    .map(|((n, p), (o, m))| {
                        (
                            n.clone(),
                            topic_ids.get(n).copied().unwrap_or(Uuid::NIL),
                            *p,
                            *o,
                            *m,
                        )
                    })
                    .collect();
            }
            sess.epoch += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_millis(r.max_wait_ms.max(0) as u64);
    let max_bytes = if r.max_bytes <= 0 {
        usize::MAX
    } else {
        r.max_bytes as usize
    };
    loop {
        let notified = cluster.data.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut total = 0usize;
        let mut by_topic: Vec<FetchableTopicResponse> = Vec::new();
        let mut any_error = false;
        {
            let mut state = cluster.state();
            for (name, id, partition, offset, partition_max) in &wanted {
                let mut data = PartitionData {
                    partition_index: *partition,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    preferred_read_replica: -1,
                    ..Default::default()
                };
                match state
                    .topics
                    .get(name.as_str())
                    .and_then(|t| t.partitions.get(*partition as usize))
                {
                    None => data.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                    Some(p) if p.leader != node => {
                        data.error_code = ErrorCode::NotLeaderOrFollower.code()
                    }
                    Some(p) if *offset < p.log_start || *offset > p.next_offset => {
                        data.error_code = ErrorCode::OffsetOutOfRange.code();
                        data.high_watermark = p.next_offset;
                        data.log_start_offset = p.log_start;
                    }
                    Some(p) => {
                        data.high_watermark = p.next_offset;
                        data.last_stable_offset = p.next_offset;
                        data.log_start_offset = p.log_start;
                        let budget = (*partition_max as usize).min(max_bytes.saturating_sub(total));
                        let bytes = if budget == 0 && total > 0 {
                            Bytes::new()
                        } else {
                            p.read(*offset, budget.max(1))
                        };
                        total += bytes.len();
                        data.records = Some(bytes);
                        if r.isolation_level == 1 {
                            data.aborted_transactions = Some(Vec::new());
                        }
                    }
                }
                any_error |= data.error_code != 0;
                // An incremental answer leaves out partitions with nothing new.
                let key = (name.clone(), *partition);
                let report = (data.high_watermark, data.log_start_offset);
                let has_data = data.records.as_ref().is_some_and(|b| !b.is_empty());
                if incremental {
                    let sess = state.fetch_sessions.get_mut(&session_id);
                    let unchanged = sess
                        .as_ref()
                        .is_some_and(|s| s.reported.get(&key) == Some(&report));
                    if unchanged && !has_data && data.error_code == 0 {
                        continue;
                    }
                }
                if let Some(sess) = state.fetch_sessions.get_mut(&session_id) {
                    sess.reported.insert(key, report);
                }
                match by_topic.iter_mut().find(|t| t.topic.as_str() == name) {
                    Some(t) => t.partitions.push(data),
                    None => by_topic.push(FetchableTopicResponse {
                        topic: s(name.clone()),
                        topic_id: *id,
                        partitions: vec![data],
                        ..Default::default()
                    }),
                }
            }
        }
        for id in &unknown_ids {
            by_topic.push(FetchableTopicResponse {
                topic_id: *id,
                partitions: vec![PartitionData {
                    error_code: ErrorCode::UnknownTopicId.code(),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let now = Instant::now();
        if total >= r.min_bytes.max(0) as usize
            || any_error
            || !unknown_ids.is_empty()
            || now >= deadline
        {
            return FetchResponse {
                session_id,
                responses: by_topic,
                ..Default::default()
            };
        }
        let _ = tokio::time::timeout(deadline - now, notified).await;
    }
}

fn list_offsets(
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
                        -1 => (part.next_offset, -1),
                        -3 => part
                            .log
                            .iter()
                            .flat_map(|b| b.timestamps.iter().copied())
                            .max_by_key(|(_, t)| *t)
                            .unwrap_or((-1, -1)),
                        ts => part.offset_for_time(ts).unwrap_or((-1, -1)),
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

fn init_producer_id(cluster: &Arc<Cluster>, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut state = cluster.state();
    let (id, epoch) = if let Some(txn) = r.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        let existing = state.transactional_ids.get(txn.as_str()).copied();
        let id = match existing {
            Some(id) => id,
            None => {
                state.next_producer_id += 1;
                let id = state.next_producer_id;
                state.transactional_ids.insert(txn.to_string(), id);
                id
            }
        };
        let epoch = state.producer_epochs.get(&id).map_or(0, |e| e + 1);
        (id, epoch)
    } else if r.producer_id >= 0 {
        // KIP-360: an idempotent producer bumps its epoch to recover.
        match state.producer_epochs.get(&r.producer_id).copied() {
            Some(e) if e == r.producer_epoch => (r.producer_id, e + 1),
            _ => {
                return InitProducerIdResponse {
                    error_code: ErrorCode::InvalidProducerEpoch.code(),
                    producer_id: -1,
                    producer_epoch: -1,
                    ..Default::default()
                }
            }
        }
    } else {
        state.next_producer_id += 1;
        (state.next_producer_id, 0)
    };
    state.producer_epochs.insert(id, epoch);
    InitProducerIdResponse {
        producer_id: id,
        producer_epoch: epoch,
        ..Default::default()
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
        _ => return Answer::Close,
    };
    Answer::Respond(Box::new(response))
}
