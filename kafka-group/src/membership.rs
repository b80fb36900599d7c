//! The exchanges of one group member with its coordinator: JoinGroup (with the
//! member-id-required retry), SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and
//! OffsetFetch, each sent in the version the coordinator supports.

use crate::assignor::{Assignor, MemberInfo};
use crate::protocol::{Assignment, Subscription};
use kafka_net::{Client, KafkaClient};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, ErrorCode, StrBytes};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{GroupError, GroupErrorKind};

/// Who this member is in the group now.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub member_id: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: bool,
}

pub(crate) struct Membership {
    pub client: KafkaClient,
    pub group: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// Ask for stable offsets only (KIP-447, a read_committed consumer): offsets of a
    /// transaction still open are waited for, not read as they were before it.
    pub require_stable: bool,
}

/// How often committed offsets held back by an open transaction are asked for again.
const UNSTABLE_BACKOFF: Duration = Duration::from_millis(100);

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_string())
}

fn broker_error(code: i16, what: &str) -> Result<(), GroupError> {
    let code = ErrorCode::from(code);
    if code.is_ok() {
        Ok(())
    } else {
        Err(GroupError::new(GroupErrorKind::Broker(code)).context(what))
    }
}

impl Membership {
    async fn version(&self, api: ApiKey) -> Result<i16, GroupError> {
        Ok(self.client.api_version(api).await?)
    }

    /// JoinGroup until this member is in a generation: handles MEMBER_ID_REQUIRED
    /// (rejoin with the id given) and UNKNOWN_MEMBER_ID (rejoin as new). Returns the
    /// identity and, for the leader, the members' subscriptions.
    pub async fn join(
        &self,
        identity: &mut Identity,
        subscription: &Subscription,
    ) -> Result<Vec<MemberInfo>, GroupError> {
        let version = self.version(ApiKey::JoinGroup).await?;
        for _ in 0..5 {
            let protocols = self
                .assignors
                .iter()
                .map(|a| {
                    let mut sub = subscription.clone();
                    sub.user_data =
                        a.user_data(&subscription.owned_partitions, identity.generation);
                    JoinGroupRequestProtocol {
                        name: s(a.name()),
                        metadata: sub.encode(3),
                        ..Default::default()
                    }
                })
                .collect();
            let mut request = JoinGroupRequest {
                group_id: s(&self.group),
                session_timeout_ms: self.session_timeout.as_millis() as i32,
                rebalance_timeout_ms: self.rebalance_timeout.as_millis() as i32,
                member_id: s(&identity.member_id),
                group_instance_id: self.instance_id.as_deref().map(s),
                protocol_type: s("consumer"),
                protocols,
                reason: None,
                ..Default::default()
            };
            request.retain_version(version);
            let response = self.client.request(request).await?;
            match ErrorCode::from(response.error_code) {
                ErrorCode::None => {}
                ErrorCode::MemberIdRequired => {
                    identity.member_id = response.member_id.to_string();
                    continue;
                }
                ErrorCode::UnknownMemberId => {
                    identity.member_id.clear();
                    continue;
                }
                other => {
                    return Err(GroupError::new(GroupErrorKind::Broker(other)).context("JoinGroup"))
                }
            }
            identity.member_id = response.member_id.to_string();
            identity.generation = response.generation_id;
            identity.protocol = response.protocol_name.as_ref().map(|p| p.to_string());
            identity.leader =
                response.leader.as_str() == identity.member_id && !response.skip_assignment;
            let members = response
                .members
                .iter()
                .filter_map(|m| {
                    Some(MemberInfo {
                        member_id: m.member_id.to_string(),
                        group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                        subscription: Subscription::decode(&m.metadata).ok()?,
                    })
                })
                .collect();
            return Ok(members);
        }
        Err(
            GroupError::new(GroupErrorKind::Broker(ErrorCode::UnknownMemberId))
                .context("JoinGroup kept asking to rejoin"),
        )
    }

    /// The leader's assignment of `members` with the protocol's assignor.
    pub async fn assign(
        &self,
        identity: &Identity,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>, GroupError> {
        let name = identity.protocol.clone().unwrap_or_default();
        let assignor = self
            .assignors
            .iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                GroupError::new(GroupErrorKind::Config(format!(
                    "the group chose assignor {name:?}, which this member does not have"
                )))
            })?;
        let mut topics: Vec<String> = members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        let metadata = self.client.refresh_metadata().await?;
        let partitions: BTreeMap<String, i32> = topics
            .into_iter()
            .filter_map(|t| metadata.partition_count(&t).map(|n| (t, n)))
            .collect();
        let plan = assignor.assign(members, &partitions);
        Ok(members
            .iter()
            .map(|m| {
                let parts = plan.get(&m.member_id).cloned().unwrap_or_default();
                let user_data = assignor.user_data(&parts, identity.generation);
                (
                    m.member_id.clone(),
                    Assignment {
                        partitions: parts,
                        user_data,
                    },
                )
            })
            .collect())
    }

    /// SyncGroup: sends the leader's assignments (empty for followers) and returns this
    /// member's.
    pub async fn sync(
        &self,
        identity: &Identity,
        assignments: BTreeMap<String, Assignment>,
    ) -> Result<Assignment, GroupError> {
        let version = self.version(ApiKey::SyncGroup).await?;
        let mut request = SyncGroupRequest {
            group_id: s(&self.group),
            generation_id: identity.generation,
            member_id: s(&identity.member_id),
            group_instance_id: self.instance_id.as_deref().map(s),
            protocol_type: Some(s("consumer")),
            protocol_name: identity.protocol.as_deref().map(s),
            assignments: assignments
                .into_iter()
                .map(|(member, a)| SyncGroupRequestAssignment {
                    member_id: s(&member),
                    assignment: a.encode(3),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        request.retain_version(version);
        let response = self.client.request(request).await?;
        broker_error(response.error_code, "SyncGroup")?;
        if response.assignment.is_empty() {
            return Ok(Assignment::default());
        }
        Assignment::decode(&response.assignment)
            .map_err(|e| GroupError::new(GroupErrorKind::Protocol(e.to_string())))
    }

    pub async fn heartbeat(&self, identity: &Identity) -> Result<(), GroupError> {
        let version = self.version(ApiKey::Heartbeat).await?;
        let mut request = HeartbeatRequest {
            group_id: s(&self.group),
            generation_id: identity.generation,
            member_id: s(&identity.member_id),
            group_instance_id: self.instance_id.as_deref().map(s),
            ..Default::default()
        };
        request.retain_version(version);
        let response = self.client.request(request).await?;
        broker_error(response.error_code, "Heartbeat")
    }

    pub async fn leave(&self, identity: &Identity, reason: &str) -> Result<(), GroupError> {
        if identity.member_id.is_empty() {
            return Ok(());
        }
        let version = self.version(ApiKey::LeaveGroup).await?;
        let mut request = LeaveGroupRequest {
            group_id: s(&self.group),
            member_id: s(&identity.member_id),
            members: vec![MemberIdentity {
                member_id: s(&identity.member_id),
                group_instance_id: self.instance_id.as_deref().map(s),
                reason: Some(s(reason)),
                ..Default::default()
            }],
            ..Default::default()
        };
        request.retain_version(version);
        let response = self.client.request(request).await?;
        broker_error(response.error_code, "LeaveGroup")
    }

    /// Commits `offsets` (the next offset to read, per partition) in this generation.
    pub async fn commit(
        &self,
        identity: &Identity,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let version = self.version(ApiKey::OffsetCommit).await?;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: *partition,
                    committed_offset: *offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some(StrBytes::default()),
                    ..Default::default()
                });
        }
        let mut request = OffsetCommitRequest {
            group_id: s(&self.group),
            generation_id_or_member_epoch: identity.generation,
            member_id: s(&identity.member_id),
            group_instance_id: self.instance_id.as_deref().map(s),
            retention_time_ms: -1,
            topics: topics
                .into_iter()
                .map(|(t, partitions)| OffsetCommitRequestTopic {
                    name: s(t),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        request.retain_version(version);
        let response = self.client.request(request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                broker_error(p.error_code, "OffsetCommit")
                    .map_err(|e| e.context(&format!("{}/{}", t.name, p.partition_index)))?;
            }
        }
        Ok(())
    }

    /// The committed offsets of `partitions` (absent when none is committed). With
    /// `require_stable`, offsets that an open transaction will commit
    /// (UNSTABLE_OFFSET_COMMIT) are waited for, up to the rebalance timeout.
    pub async fn committed(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, GroupError> {
        let deadline = tokio::time::Instant::now() + self.rebalance_timeout;
        loop {
            match self.committed_once(partitions).await {
                Err(e)
                    if e.code() == Some(ErrorCode::UnstableOffsetCommit)
                        && tokio::time::Instant::now() + UNSTABLE_BACKOFF < deadline =>
                {
                    tracing::debug!(group = %self.group, "committed offsets wait for an open transaction");
                    tokio::time::sleep(UNSTABLE_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    async fn committed_once(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, GroupError> {
        let version = self.version(ApiKey::OffsetFetch).await?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(*p);
        }
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            request.groups = vec![OffsetFetchRequestGroup {
                group_id: s(&self.group),
                topics: Some(
                    by_topic
                        .iter()
                        .map(|(t, ps)| OffsetFetchRequestTopics {
                            name: s(t),
                            partition_indexes: ps.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }];
        } else {
            request.group_id = s(&self.group);
            request.topics = Some(
                by_topic
                    .iter()
                    .map(|(t, ps)| OffsetFetchRequestTopic {
                        name: s(t),
                        partition_indexes: ps.clone(),
                        ..Default::default()
                    })
                    .collect(),
            );
        }
        request.require_stable = self.require_stable && version >= 7;
        request.retain_version(version);
        let response = self.client.request(request).await?;
        let mut out = BTreeMap::new();
        if version >= 8 {
            for g in &response.groups {
                broker_error(g.error_code, "OffsetFetch")?;
                for t in &g.topics {
                    for p in &t.partitions {
                        broker_error(p.error_code, "OffsetFetch")?;
                        if p.committed_offset >= 0 {
                            out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                        }
                    }
                }
            }
        } else {
            broker_error(response.error_code, "OffsetFetch")?;
            for t in &response.topics {
                for p in &t.partitions {
                    broker_error(p.error_code, "OffsetFetch")?;
                    if p.committed_offset >= 0 {
                        out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                    }
                }
            }
        }
        Ok(out)
    }
}
