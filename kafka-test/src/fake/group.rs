//! The fake cluster's group coordinator: Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), committed offsets (OffsetCommit, OffsetFetch) and
//! the group listings (DescribeGroups, ListGroups).
//!
//! It follows the state machine of Apache Kafka's classic `GroupCoordinator`:
//!
//! - A group starts `Empty`. A join moves it to `PreparingRebalance`; once every known
//!   member has rejoined (or the rebalance timeout, the largest of the members'
//!   `RebalanceTimeoutMs`, expires and the dynamic members that did not rejoin are
//!   removed) the generation is bumped, a protocol is selected and the group is
//!   `CompletingRebalance`; the leader's SyncGroup hands out the assignments and the
//!   group is `Stable`. When its last member goes, it is `Empty` again.
//! - The first rebalance of an `Empty` group waits
//!   [`group.initial.rebalance.delay.ms`](GroupCoordinator::with_initial_delay) and
//!   extends that wait (up to the rebalance timeout) while new members keep arriving.
//! - JoinGroup v4+ without a member id or group instance id is answered
//!   `MEMBER_ID_REQUIRED` with a generated id that the client joins again with.
//! - A member that sends no Heartbeat, JoinGroup, SyncGroup or OffsetCommit within its
//!   session timeout is removed and the group rebalances; a member waiting in JoinGroup
//!   or SyncGroup is alive while its request is. Members that do not send SyncGroup
//!   within the rebalance timeout after a join completed are removed too.
//! - Static members (`group.instance.id`, JoinGroup v5+): a known instance joining with
//!   no member id replaces the old member id (which is fenced: `FENCED_INSTANCE_ID`)
//!   and, when the group is `Stable` and the selected protocol does not change, keeps
//!   the generation without a rebalance. A static member that did not rejoin a
//!   rebalance stays in the group until its session times out.
//!
//! Waiting is done with one oneshot channel per waiting request and one tokio task per
//! timer (session, pending member, join, sync); no polling.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

// DeleteGroups and OffsetDelete change the coordinator's state; their files are with
// the other admin APIs.
#[path = "admin/delete_groups.rs"]
mod delete_groups;
#[path = "admin/offset_delete.rs"]
mod offset_delete;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::{ErrorCode, StrBytes};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::debug;

/// Kafka's `offset.metadata.max.bytes` default.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// The generation of a group that has none, and of a member that is not in one.
const NO_GENERATION: i32 = -1;
/// Every operation a group supports (READ 3, DELETE 6, DESCRIBE 8), as DescribeGroups v3+
/// reports them when asked: the fake authorizes everything.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);
/// The group type ListGroups v5+ reports; the fake has only classic groups.
const CLASSIC_GROUP_TYPE: &str = "classic";

const NONE: i16 = ErrorCode::None.code();
const COORDINATOR_NOT_AVAILABLE: i16 = ErrorCode::CoordinatorNotAvailable.code();
const ILLEGAL_GENERATION: i16 = ErrorCode::IllegalGeneration.code();
const INCONSISTENT_GROUP_PROTOCOL: i16 = ErrorCode::InconsistentGroupProtocol.code();
const INVALID_GROUP_ID: i16 = ErrorCode::InvalidGroupId.code();
const UNKNOWN_MEMBER_ID: i16 = ErrorCode::UnknownMemberId.code();
const INVALID_SESSION_TIMEOUT: i16 = ErrorCode::InvalidSessionTimeout.code();
const REBALANCE_IN_PROGRESS: i16 = ErrorCode::RebalanceInProgress.code();
const MEMBER_ID_REQUIRED: i16 = ErrorCode::MemberIdRequired.code();
const FENCED_INSTANCE_ID: i16 = ErrorCode::FencedInstanceId.code();
const OFFSET_METADATA_TOO_LARGE: i16 = ErrorCode::OffsetMetadataTooLarge.code();
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ErrorCode::UnknownTopicOrPartition.code();

/// Whether a partition exists, asked before an offset is committed to it.
type PartitionCheck = Arc<dyn Fn(&str, i32) -> bool + Send + Sync>;

/// Cluster-wide group coordinator of the fake cluster: every consumer group's state
/// machine and committed offsets.
///
/// Each request method answers as Kafka's classic group coordinator does and returns the
/// response for the request's `version` (fields that the version lacks are left at their
/// defaults, so the response encodes). JoinGroup and SyncGroup wait for the rebalance;
/// dropping their future leaves the coordinator consistent.
pub struct GroupCoordinator {
    me: Weak<GroupCoordinator>,
    initial_delay: Duration,
    groups: Mutex<HashMap<String, Group>>,
    next_id: AtomicU64,
    partition_check: RwLock<Option<PartitionCheck>>,
}

impl fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("initial_delay", &self.initial_delay)
            .field("groups", &self.groups.try_lock().map(|g| g.len()).ok())
            .finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    /// The default of [`with_initial_delay`](Self::with_initial_delay) in the fake: 100 ms
    /// (Kafka's `group.initial.rebalance.delay.ms` defaults to 3 s), so that tests stay fast.
    pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);

    /// A coordinator with no groups and the [default initial rebalance
    /// delay](Self::DEFAULT_INITIAL_DELAY).
    pub fn new() -> Arc<Self> {
        Self::with_initial_delay(Self::DEFAULT_INITIAL_DELAY)
    }

    /// A coordinator whose first rebalance of an empty group waits `delay` for more
    /// members (Kafka's `group.initial.rebalance.delay.ms`, default 3 s in Kafka,
    /// [100 ms](Self::DEFAULT_INITIAL_DELAY) here).
    pub fn with_initial_delay(delay: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| GroupCoordinator {
            me: me.clone(),
            initial_delay: delay,
            groups: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            partition_check: RwLock::new(None),
        })
    }

    /// Makes OffsetCommit answer `UNKNOWN_TOPIC_OR_PARTITION` for partitions for which
    /// `exists(topic, partition)` is false, as a broker does for partitions it does not
    /// know. Without it every partition is accepted. `exists` is called with the
    /// coordinator locked: it must not call back into it.
    pub fn set_partition_check(&self, exists: impl Fn(&str, i32) -> bool + Send + Sync + 'static) {
        *self
            .partition_check
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(exists));
    }

    /// JoinGroup, from a client with no client id or address known (see
    /// [`join_group_with_client`](Self::join_group_with_client)).
    pub async fn join_group(
        self: &Arc<Self>,
        req: JoinGroupRequest,
        version: i16,
    ) -> JoinGroupResponse {
        self.join_group_with_client(req, version, "", "").await
    }

    /// JoinGroup from the client with `client_id` (of the request header) at
    /// `client_host`: new member ids are `{client_id}-{uuid}` (`{group_instance_id}-{uuid}`
    /// for static members), and DescribeGroups shows both.
    pub async fn join_group_with_client(
        self: &Arc<Self>,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let outcome = match self.do_join(req, version, client_id, client_host) {
            Reply::Now(outcome) => outcome,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinOutcome::error("", COORDINATOR_NOT_AVAILABLE)),
        };
        let mut resp = join_response(outcome, version);
        resp.retain_version(version);
        resp
    }

    /// SyncGroup: the leader's assignments are handed out; followers wait for them.
    pub async fn sync_group(
        self: &Arc<Self>,
        req: SyncGroupRequest,
        version: i16,
    ) -> SyncGroupResponse {
        let outcome = match self.do_sync(req) {
            Reply::Now(outcome) => outcome,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncOutcome::error(COORDINATOR_NOT_AVAILABLE)),
        };
        let mut resp = SyncGroupResponse {
            error_code: outcome.error,
            assignment: outcome.assignment,
            ..Default::default()
        };
        if version >= 5 {
            resp.protocol_type = outcome.protocol_type.map(StrBytes::from);
            resp.protocol_name = outcome.protocol_name.map(StrBytes::from);
        }
        resp.retain_version(version);
        resp
    }

    /// Heartbeat: keeps the member alive; `REBALANCE_IN_PROGRESS` while the group
    /// prepares a rebalance.
    pub async fn heartbeat(
        self: &Arc<Self>,
        req: HeartbeatRequest,
        version: i16,
    ) -> HeartbeatResponse {
        let mut resp = HeartbeatResponse {
            error_code: self.do_heartbeat(&req),
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    /// LeaveGroup: v0-2 remove `member_id`, v3+ a batch of members (by member id, or by
    /// group instance id alone); the group rebalances.
    pub async fn leave_group(
        self: &Arc<Self>,
        req: LeaveGroupRequest,
        version: i16,
    ) -> LeaveGroupResponse {
        let leaving: Vec<(String, Option<String>)> = if version <= 2 {
            vec![(req.member_id.to_string(), None)]
        } else {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_deref().map(str::to_owned),
                    )
                })
                .collect()
        };
        let (top, errors) = self.do_leave(&req.group_id, &leaving);
        let mut resp = if version >= 3 {
            LeaveGroupResponse {
                error_code: top,
                members: leaving
                    .into_iter()
                    .zip(errors)
                    .map(|((member_id, instance_id), error_code)| MemberResponse {
                        member_id: member_id.into(),
                        group_instance_id: instance_id.map(StrBytes::from),
                        error_code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        } else {
            let member_error = errors.into_iter().find(|&e| e != NONE).unwrap_or(NONE);
            LeaveGroupResponse {
                error_code: if top != NONE { top } else { member_error },
                ..Default::default()
            }
        };
        resp.retain_version(version);
        resp
    }

    /// OffsetCommit: accepted from a member of the current generation, or with
    /// generation -1 while the group is empty or unknown (simple consumers, admin
    /// tools); stores offset, leader epoch and metadata per partition.
    pub async fn offset_commit(
        self: &Arc<Self>,
        req: OffsetCommitRequest,
        version: i16,
    ) -> OffsetCommitResponse {
        let check = self
            .partition_check
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut groups = self.lock();
        let group_id = req.group_id.to_string();
        let generation = req.generation_id_or_member_epoch;
        let instance_id = req.group_instance_id.as_deref();
        let mut group = match groups.entry(group_id.clone()) {
            Entry::Occupied(e) => {
                let g = e.into_mut();
                match validate_offset_commit(g, generation, &req.member_id, instance_id) {
                    None => Ok(g),
                    Some(error) => Err(error),
                }
            }
            Entry::Vacant(e) if generation < 0 => {
                debug!(group_id = %group_id, "creating a simple group by an offset commit");
                Ok(e.insert(Group::new(group_id.clone())))
            }
            Entry::Vacant(_) => Err(ILLEGAL_GENERATION),
        };
        let topics = req
            .topics
            .iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = p.committed_metadata.as_deref().unwrap_or("");
                        let error_code = match &mut group {
                            Err(error) => *error,
                            Ok(_) if metadata.len() > OFFSET_METADATA_MAX_BYTES => {
                                OFFSET_METADATA_TOO_LARGE
                            }
                            Ok(_)
                                if check
                                    .as_ref()
                                    .is_some_and(|exists| !exists(&t.name, p.partition_index)) =>
                            {
                                UNKNOWN_TOPIC_OR_PARTITION
                            }
                            Ok(g) => {
                                g.offsets.insert(
                                    (t.name.to_string(), p.partition_index),
                                    Committed {
                                        offset: p.committed_offset,
                                        leader_epoch: p.committed_leader_epoch,
                                        metadata: metadata.to_owned(),
                                    },
                                );
                                NONE
                            }
                        };
                        OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let mut resp = OffsetCommitResponse {
            topics,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    /// OffsetFetch: v0-7 for one group, v8+ for several; no topics (null) means every
    /// committed partition; a partition with no commit answers offset -1.
    pub async fn offset_fetch(
        self: &Arc<Self>,
        req: OffsetFetchRequest,
        version: i16,
    ) -> OffsetFetchResponse {
        let groups = self.lock();
        let mut resp = if version <= 7 {
            let wanted = req.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let found = fetch_offsets(groups.get(req.group_id.as_str()), wanted);
            let topics = found
                .into_iter()
                .map(|(name, partitions)| OffsetFetchResponseTopic {
                    name: name.into(),
                    partitions: partitions
                        .into_iter()
                        .map(|(partition_index, c)| OffsetFetchResponsePartition {
                            partition_index,
                            committed_offset: c.offset,
                            committed_leader_epoch: if version >= 5 { c.leader_epoch } else { -1 },
                            metadata: Some(c.metadata.clone().into()),
                            error_code: NONE,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
            OffsetFetchResponse {
                topics,
                ..Default::default()
            }
        } else {
            let response_groups = req
                .groups
                .iter()
                .map(|rg| {
                    let wanted = rg.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let found = fetch_offsets(groups.get(rg.group_id.as_str()), wanted);
                    OffsetFetchResponseGroup {
                        group_id: rg.group_id.clone(),
                        topics: found
                            .into_iter()
                            .map(|(name, partitions)| OffsetFetchResponseTopics {
                                name: name.into(),
                                partitions: partitions
                                    .into_iter()
                                    .map(|(partition_index, c)| OffsetFetchResponsePartitions {
                                        partition_index,
                                        committed_offset: c.offset,
                                        committed_leader_epoch: c.leader_epoch,
                                        metadata: Some(c.metadata.clone().into()),
                                        error_code: NONE,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        error_code: NONE,
                        ..Default::default()
                    }
                })
                .collect();
            OffsetFetchResponse {
                groups: response_groups,
                ..Default::default()
            }
        };
        resp.retain_version(version);
        resp
    }

    /// DescribeGroups: state, protocol type, protocol and members; member metadata and
    /// assignments only while the group is `Stable`; an unknown group is `Dead`.
    pub async fn describe_groups(
        self: &Arc<Self>,
        req: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let groups = self.lock();
        let described = req
            .groups
            .iter()
            .map(|group_id| {
                let mut d = DescribedGroup {
                    error_code: NONE,
                    group_id: group_id.clone(),
                    ..Default::default()
                };
                if version >= 3 && req.include_authorized_operations {
                    d.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
                }
                let Some(g) = groups.get(group_id.as_str()) else {
                    d.group_state = "Dead".into();
                    return d;
                };
                let stable_protocol = match (g.state, &g.protocol_name) {
                    (State::Stable, Some(protocol)) => Some(protocol.as_str()),
                    _ => None,
                };
                d.group_state = g.state.name().into();
                d.protocol_type = g.protocol_type.clone().unwrap_or_default().into();
                d.protocol_data = stable_protocol.unwrap_or("").to_owned().into();
                d.members = g
                    .ordered_members()
                    .map(|m| DescribedGroupMember {
                        member_id: m.id.clone().into(),
                        group_instance_id: if version >= 4 {
                            m.instance_id.clone().map(StrBytes::from)
                        } else {
                            None
                        },
                        client_id: m.client_id.clone().into(),
                        client_host: m.client_host.clone().into(),
                        member_metadata: stable_protocol.map(|p| m.metadata(p)).unwrap_or_default(),
                        member_assignment: if stable_protocol.is_some() {
                            m.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                        ..Default::default()
                    })
                    .collect();
                d
            })
            .collect();
        let mut resp = DescribeGroupsResponse {
            groups: described,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    /// ListGroups: every group with its protocol type; v4+ also its state and an
    /// optional state filter, v5+ the group type (`classic`) and a type filter (both
    /// filters case-insensitive).
    pub async fn list_groups(
        self: &Arc<Self>,
        req: ListGroupsRequest,
        version: i16,
    ) -> ListGroupsResponse {
        let groups = self.lock();
        let states: Vec<String> = if version >= 4 {
            req.states_filter.iter().map(|s| s.to_lowercase()).collect()
        } else {
            Vec::new()
        };
        let types_match = version < 5
            || req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let mut listed: Vec<ListedGroup> = groups
            .values()
            .filter(|g| {
                types_match
                    && (states.is_empty() || states.contains(&g.state.name().to_lowercase()))
            })
            .map(|g| ListedGroup {
                group_id: g.id.clone().into(),
                protocol_type: g.protocol_type.clone().unwrap_or_default().into(),
                group_state: if version >= 4 {
                    g.state.name().into()
                } else {
                    StrBytes::default()
                },
                group_type: if version >= 5 {
                    CLASSIC_GROUP_TYPE.into()
                } else {
                    StrBytes::default()
                },
                ..Default::default()
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.as_str().cmp(b.group_id.as_str()));
        let mut resp = ListGroupsResponse {
            error_code: NONE,
            groups: listed,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    /// The committed offset of a partition, for tests.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .map(|c| c.offset)
    }

    /// A group's state name and generation, for tests ("Empty", "PreparingRebalance",
    /// "CompletingRebalance", "Stable", "Dead").
    pub fn group_state(&self, group: &str) -> Option<(String, i32)> {
        self.lock()
            .get(group)
            .map(|g| (g.state.name().to_owned(), g.generation))
    }

    /// The member ids of a group in join order, for tests.
    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.lock()
            .get(group)
            .map(|g| g.ordered_members().map(|m| m.id.clone()).collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    // ---- JoinGroup ----

    fn do_join(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> Reply<JoinOutcome> {
        let member_id = req.member_id.to_string();
        if req.group_id.is_empty() {
            return Reply::Now(JoinOutcome::error(member_id, INVALID_GROUP_ID));
        }
        if req.session_timeout_ms <= 0 {
            return Reply::Now(JoinOutcome::error(member_id, INVALID_SESSION_TIMEOUT));
        }
        let session_timeout = millis(req.session_timeout_ms);
        let rebalance_timeout = if version >= 1 && req.rebalance_timeout_ms >= 0 {
            millis(req.rebalance_timeout_ms)
        } else {
            session_timeout
        };
        let instance_id = req.group_instance_id.as_deref().map(str::to_owned);
        let p = JoinParams {
            require_known_member_id: version >= 4 && instance_id.is_none(),
            supports_skip_assignment: version >= 9,
            member_id,
            instance_id,
            client_id: client_id.to_owned(),
            client_host: client_host.to_owned(),
            session_timeout,
            rebalance_timeout,
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
        };

        let mut groups = self.lock();
        let g = match groups.entry(req.group_id.to_string()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) if p.member_id.is_empty() => {
                e.insert(Group::new(req.group_id.to_string()))
            }
            Entry::Vacant(_) => {
                return Reply::Now(JoinOutcome::error(p.member_id, UNKNOWN_MEMBER_ID))
            }
        };
        let reply = if !g.supports_protocols(&p.protocol_type, &p.protocols) {
            Reply::Now(JoinOutcome::error(p.member_id, INCONSISTENT_GROUP_PROTOCOL))
        } else if p.member_id.is_empty() {
            self.new_member_join(g, p)
        } else {
            self.current_member_join(g, p)
        };
        self.try_complete_join(g);
        reply
    }

    fn new_member_join(&self, g: &mut Group, p: JoinParams) -> Reply<JoinOutcome> {
        let prefix = match &p.instance_id {
            Some(instance_id) => instance_id.as_str(),
            None if p.client_id.is_empty() => "member",
            None => p.client_id.as_str(),
        };
        let new_id = format!("{prefix}-{}", random_uuid());
        match &p.instance_id {
            Some(instance_id) => match g.static_members.get(instance_id).cloned() {
                Some(old_id) => self.update_static_member_and_rebalance(g, &old_id, new_id, p),
                None => self.add_member_and_rebalance(g, new_id, p),
            },
            None if p.require_known_member_id => {
                debug!(group_id = %g.id, member_id = %new_id, "member id required");
                g.pending_members.insert(new_id.clone());
                self.spawn_pending_expiry(&g.id, &new_id, Instant::now() + p.session_timeout);
                Reply::Now(JoinOutcome::error(new_id, MEMBER_ID_REQUIRED))
            }
            None => self.add_member_and_rebalance(g, new_id, p),
        }
    }

    fn current_member_join(&self, g: &mut Group, p: JoinParams) -> Reply<JoinOutcome> {
        let member_id = p.member_id.clone();
        if g.pending_members.contains(&member_id) {
            return self.add_member_and_rebalance(g, member_id, p);
        }
        if let Some(error) = g.validate_current_member(&member_id, p.instance_id.as_deref()) {
            return Reply::Now(JoinOutcome::error(member_id, error));
        }
        let (matches, is_leader) = match g.members.get_mut(&member_id) {
            Some(m) => {
                m.touch(Instant::now());
                (
                    m.protocols == p.protocols,
                    g.leader.as_deref() == Some(member_id.as_str()),
                )
            }
            None => return Reply::Now(JoinOutcome::error(member_id, UNKNOWN_MEMBER_ID)),
        };
        match g.state {
            State::PreparingRebalance => self.update_member_and_rebalance(g, &member_id, p),
            // The member did not get the JoinGroup answer: the same one again.
            State::CompletingRebalance if matches => {
                Reply::Now(g.current_join_outcome(&member_id, true))
            }
            // A follower rejoining with unchanged metadata gets the current generation;
            // the leader rejoining forces a rebalance (it saw a metadata change).
            State::Stable if matches && !is_leader => {
                Reply::Now(g.current_join_outcome(&member_id, false))
            }
            State::CompletingRebalance | State::Stable => {
                self.update_member_and_rebalance(g, &member_id, p)
            }
            State::Empty => Reply::Now(JoinOutcome::error(member_id, UNKNOWN_MEMBER_ID)),
        }
    }

    fn add_member_and_rebalance(
        &self,
        g: &mut Group,
        member_id: String,
        p: JoinParams,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let uid = self.next_id();
        let now = Instant::now();
        let member = Member {
            uid,
            seq: uid,
            id: member_id.clone(),
            instance_id: p.instance_id,
            client_id: p.client_id,
            client_host: p.client_host,
            session_timeout: p.session_timeout,
            rebalance_timeout: p.rebalance_timeout,
            protocol_type: p.protocol_type,
            protocols: p.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            deadline: now + p.session_timeout,
        };
        let deadline = member.deadline;
        if g.state == State::PreparingRebalance && g.generation == 0 {
            g.new_member_added = true;
        }
        debug!(group_id = %g.id, member_id = %member_id, generation = g.generation, "member added");
        g.add(member);
        self.spawn_member_expiry(&g.id, &member_id, uid, deadline);
        self.maybe_prepare_rebalance(g);
        Reply::Wait(rx)
    }

    fn update_member_and_rebalance(
        &self,
        g: &mut Group,
        member_id: &str,
        p: JoinParams,
    ) -> Reply<JoinOutcome> {
        let reply = match g.members.get_mut(member_id) {
            Some(m) => {
                m.protocols = p.protocols;
                m.rebalance_timeout = p.rebalance_timeout;
                m.session_timeout = p.session_timeout;
                m.touch(Instant::now());
                m.await_join()
            }
            None => return Reply::Now(JoinOutcome::error(member_id, UNKNOWN_MEMBER_ID)),
        };
        self.maybe_prepare_rebalance(g);
        reply
    }

    /// A known static member joined with no member id: its member id is replaced and the
    /// old one fenced.
    fn update_static_member_and_rebalance(
        &self,
        g: &mut Group,
        old_id: &str,
        new_id: String,
        p: JoinParams,
    ) -> Reply<JoinOutcome> {
        let current_leader = g.leader.clone().unwrap_or_default();
        let Some(mut m) = g.members.remove(old_id) else {
            return Reply::Now(JoinOutcome::error("", UNKNOWN_MEMBER_ID));
        };
        debug!(group_id = %g.id, old_member_id = %old_id, member_id = %new_id, "static member replaced");
        m.answer_join(JoinOutcome::error(old_id, FENCED_INSTANCE_ID));
        m.answer_sync(SyncOutcome::error(FENCED_INSTANCE_ID));
        m.id = new_id.clone();
        m.uid = self.next_id();
        m.protocols = p.protocols;
        m.rebalance_timeout = p.rebalance_timeout;
        m.session_timeout = p.session_timeout;
        m.touch(Instant::now());
        let (uid, deadline) = (m.uid, m.deadline);
        g.members.insert(new_id.clone(), m);
        if g.leader.as_deref() == Some(old_id) {
            g.leader = Some(new_id.clone());
        }
        if let Some(instance_id) = p.instance_id {
            g.static_members.insert(instance_id, new_id.clone());
        }
        if g.pending_sync.remove(old_id) {
            g.pending_sync.insert(new_id.clone());
        }
        self.spawn_member_expiry(&g.id, &new_id, uid, deadline);

        match g.state {
            State::Stable if g.protocol_name.as_deref() == Some(g.select_protocol().as_str()) => {
                let mut outcome = g.current_join_outcome(&new_id, false);
                if p.supports_skip_assignment {
                    // v9+: the leader learns it leads but must not assign again.
                    if g.is_leader(&new_id) {
                        outcome.members = g.current_member_metadata();
                        outcome.skip_assignment = true;
                    }
                } else {
                    // Before v9 the old leader id keeps a replaced leader from assigning.
                    outcome.leader = current_leader;
                }
                Reply::Now(outcome)
            }
            State::Stable | State::PreparingRebalance => {
                let reply = g.await_join(&new_id);
                self.maybe_prepare_rebalance(g);
                reply
            }
            State::CompletingRebalance => {
                // The leader may be assigning to the old member id: rebalance.
                let reply = g.await_join(&new_id);
                self.prepare_rebalance(g);
                reply
            }
            State::Empty => Reply::Now(JoinOutcome::error(new_id, UNKNOWN_MEMBER_ID)),
        }
    }

    fn maybe_prepare_rebalance(&self, g: &mut Group) {
        if matches!(
            g.state,
            State::Empty | State::Stable | State::CompletingRebalance
        ) {
            self.prepare_rebalance(g);
        }
    }

    fn prepare_rebalance(&self, g: &mut Group) {
        if g.state == State::CompletingRebalance {
            g.reset_and_propagate_assignment_error(REBALANCE_IN_PROGRESS);
        }
        g.pending_sync.clear();
        g.sync_timer = 0;
        let epoch = self.next_id();
        g.join_timer = epoch;
        if g.state == State::Empty {
            g.initial_join = true;
            let remaining = g.rebalance_timeout().saturating_sub(self.initial_delay);
            self.spawn_join_timer(&g.id, epoch, self.initial_delay, Some(remaining));
        } else {
            g.initial_join = false;
            self.spawn_join_timer(&g.id, epoch, g.rebalance_timeout(), None);
        }
        debug!(group_id = %g.id, generation = g.generation, from = g.state.name(), "preparing rebalance");
        g.state = State::PreparingRebalance;
        self.try_complete_join(g);
    }

    /// Completes the join phase early once every member rejoined (not during the initial
    /// delay, which only its timer ends).
    fn try_complete_join(&self, g: &mut Group) {
        if g.state == State::PreparingRebalance && !g.initial_join && g.all_joined() {
            self.complete_join(g);
        }
    }

    fn complete_join(&self, g: &mut Group) {
        g.join_timer = 0;
        let not_rejoined: Vec<String> = g
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in not_rejoined {
            debug!(group_id = %g.id, member_id = %id, "removing a member that did not rejoin");
            g.remove(&id);
        }
        if !g.maybe_elect_new_joined_leader() && !g.members.is_empty() {
            // Only static members that have not rejoined: wait until their sessions end.
            let epoch = self.next_id();
            g.join_timer = epoch;
            g.initial_join = false;
            self.spawn_join_timer(&g.id, epoch, g.rebalance_timeout(), None);
            return;
        }
        g.generation += 1;
        g.pending_sync.clear();
        if g.members.is_empty() {
            g.protocol_name = None;
            g.state = State::Empty;
            debug!(group_id = %g.id, generation = g.generation, "group is empty");
            return;
        }
        g.protocol_name = Some(g.select_protocol());
        g.state = State::CompletingRebalance;
        debug!(group_id = %g.id, generation = g.generation, members = g.members.len(), "join complete");
        let now = Instant::now();
        let ids: Vec<String> = g.ordered_members().map(|m| m.id.clone()).collect();
        for id in ids {
            let outcome = g.current_join_outcome(&id, true);
            if let Some(m) = g.members.get_mut(&id) {
                m.answer_join(outcome);
                m.touch(now);
            }
            g.pending_sync.insert(id);
        }
        let epoch = self.next_id();
        g.sync_timer = epoch;
        self.spawn_sync_timer(&g.id, epoch, g.rebalance_timeout());
    }

    fn remove_member_and_update_group(&self, g: &mut Group, member_id: &str) {
        if let Some(m) = g.members.get_mut(member_id) {
            m.answer_join(JoinOutcome::error("", UNKNOWN_MEMBER_ID));
            m.answer_sync(SyncOutcome::error(UNKNOWN_MEMBER_ID));
        }
        g.remove(member_id);
        match g.state {
            State::Empty => {}
            State::Stable | State::CompletingRebalance => self.maybe_prepare_rebalance(g),
            State::PreparingRebalance => self.try_complete_join(g),
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup ----

    fn do_sync(&self, req: SyncGroupRequest) -> Reply<SyncOutcome> {
        if req.group_id.is_empty() {
            return Reply::Now(SyncOutcome::error(INVALID_GROUP_ID));
        }
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(req.group_id.as_str()) else {
            return Reply::Now(SyncOutcome::error(UNKNOWN_MEMBER_ID));
        };
        let member_id = req.member_id.as_str();
        if let Some(error) = g.validate_current_member(member_id, req.group_instance_id.as_deref())
        {
            return Reply::Now(SyncOutcome::error(error));
        }
        if req.generation_id != g.generation {
            return Reply::Now(SyncOutcome::error(ILLEGAL_GENERATION));
        }
        if req
            .protocol_type
            .as_deref()
            .is_some_and(|t| g.protocol_type.as_deref() != Some(t))
            || req
                .protocol_name
                .as_deref()
                .is_some_and(|n| g.protocol_name.as_deref() != Some(n))
        {
            return Reply::Now(SyncOutcome::error(INCONSISTENT_GROUP_PROTOCOL));
        }
        let now = Instant::now();
        match g.state {
            State::Empty => Reply::Now(SyncOutcome::error(UNKNOWN_MEMBER_ID)),
            State::PreparingRebalance => Reply::Now(SyncOutcome::error(REBALANCE_IN_PROGRESS)),
            State::CompletingRebalance => {
                let Some(m) = g.members.get_mut(member_id) else {
                    return Reply::Now(SyncOutcome::error(UNKNOWN_MEMBER_ID));
                };
                m.touch(now);
                let reply = m.await_sync();
                g.pending_sync.remove(member_id);
                if g.is_leader(member_id) {
                    debug!(group_id = %g.id, member_id = %member_id, generation = g.generation, "assignment from the leader");
                    let assignments = req
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    g.set_and_propagate_assignment(assignments, now);
                }
                reply
            }
            State::Stable => {
                g.pending_sync.remove(member_id);
                let assignment = match g.members.get_mut(member_id) {
                    Some(m) => {
                        m.touch(now);
                        m.assignment.clone()
                    }
                    None => return Reply::Now(SyncOutcome::error(UNKNOWN_MEMBER_ID)),
                };
                Reply::Now(SyncOutcome {
                    error: NONE,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment,
                })
            }
        }
    }

    fn do_heartbeat(&self, req: &HeartbeatRequest) -> i16 {
        if req.group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(req.group_id.as_str()) else {
            return UNKNOWN_MEMBER_ID;
        };
        if let Some(error) =
            g.validate_current_member(&req.member_id, req.group_instance_id.as_deref())
        {
            return error;
        }
        if req.generation_id != g.generation {
            return ILLEGAL_GENERATION;
        }
        let state = g.state;
        match g.members.get_mut(req.member_id.as_str()) {
            Some(m) if state != State::Empty => m.touch(Instant::now()),
            _ => return UNKNOWN_MEMBER_ID,
        }
        match state {
            State::PreparingRebalance => REBALANCE_IN_PROGRESS,
            _ => NONE,
        }
    }

    /// The top-level error and one error per leaving member.
    fn do_leave(&self, group_id: &str, leaving: &[(String, Option<String>)]) -> (i16, Vec<i16>) {
        if group_id.is_empty() {
            return (INVALID_GROUP_ID, Vec::new());
        }
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return (NONE, vec![UNKNOWN_MEMBER_ID; leaving.len()]);
        };
        let errors = leaving
            .iter()
            .map(|(member_id, instance_id)| {
                if member_id.is_empty() {
                    // Removal by group instance id alone (admin tools).
                    match instance_id
                        .as_ref()
                        .and_then(|i| g.static_members.get(i))
                        .cloned()
                    {
                        Some(current) => {
                            debug!(group_id = %g.id, member_id = %current, "static member leaves");
                            self.remove_member_and_update_group(g, &current);
                            NONE
                        }
                        None => UNKNOWN_MEMBER_ID,
                    }
                } else if g.pending_members.remove(member_id) {
                    self.try_complete_join(g);
                    NONE
                } else if let Some(error) =
                    g.validate_current_member(member_id, instance_id.as_deref())
                {
                    error
                } else {
                    debug!(group_id = %g.id, member_id = %member_id, "member leaves");
                    self.remove_member_and_update_group(g, member_id);
                    NONE
                }
            })
            .collect();
        (NONE, errors)
    }

    // ---- timers ----

    /// Expires a member whose session ends; follows the member's deadline as it moves.
    fn spawn_member_expiry(&self, group_id: &str, member_id: &str, uid: u64, at: Instant) {
        let (me, group_id, member_id) =
            (self.me.clone(), group_id.to_owned(), member_id.to_owned());
        tokio::spawn(async move {
            let mut at = at;
            loop {
                tokio::time::sleep_until(at).await;
                let Some(this) = me.upgrade() else { return };
                match this.on_member_timer(&group_id, &member_id, uid) {
                    Some(next) => at = next,
                    None => return,
                }
            }
        });
    }

    fn on_member_timer(&self, group_id: &str, member_id: &str, uid: u64) -> Option<Instant> {
        let mut groups = self.lock();
        let g = groups.get_mut(group_id)?;
        let m = g.members.get(member_id).filter(|m| m.uid == uid)?;
        let now = Instant::now();
        if m.kept_alive() {
            return Some(now + m.session_timeout);
        }
        if m.deadline > now {
            return Some(m.deadline);
        }
        debug!(group_id = %group_id, member_id = %member_id, generation = g.generation, "session expired");
        self.remove_member_and_update_group(g, member_id);
        None
    }

    /// Forgets a member id handed out with `MEMBER_ID_REQUIRED` that was not used in time.
    fn spawn_pending_expiry(&self, group_id: &str, member_id: &str, at: Instant) {
        let (me, group_id, member_id) =
            (self.me.clone(), group_id.to_owned(), member_id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some(this) = me.upgrade() else { return };
            let mut groups = this.lock();
            if let Some(g) = groups.get_mut(&group_id) {
                if g.pending_members.remove(&member_id) {
                    debug!(group_id = %group_id, member_id = %member_id, "pending member expired");
                    this.try_complete_join(g);
                }
            }
        });
    }

    /// Ends the join phase `delay` from now; an initial join (`remaining` is set) waits
    /// again while new members keep arriving, up to the rebalance timeout.
    fn spawn_join_timer(
        &self,
        group_id: &str,
        epoch: u64,
        delay: Duration,
        remaining: Option<Duration>,
    ) {
        let (me, group_id) = (self.me.clone(), group_id.to_owned());
        tokio::spawn(async move {
            let (mut delay, mut remaining) = (delay, remaining);
            loop {
                tokio::time::sleep(delay).await;
                let Some(this) = me.upgrade() else { return };
                match this.on_join_timer(&group_id, epoch, remaining) {
                    Some((next, rest)) => (delay, remaining) = (next, rest),
                    None => return,
                }
            }
        });
    }

    fn on_join_timer(
        &self,
        group_id: &str,
        epoch: u64,
        remaining: Option<Duration>,
    ) -> Option<(Duration, Option<Duration>)> {
        let mut groups = self.lock();
        let g = groups.get_mut(group_id)?;
        if g.join_timer != epoch || g.state != State::PreparingRebalance {
            return None;
        }
        if let Some(rest) = remaining {
            if g.new_member_added && !rest.is_zero() {
                g.new_member_added = false;
                let delay = self.initial_delay.min(rest);
                return Some((delay, Some(rest - delay)));
            }
        }
        self.complete_join(g);
        None
    }

    /// Removes the members that did not send SyncGroup within the rebalance timeout.
    fn spawn_sync_timer(&self, group_id: &str, epoch: u64, delay: Duration) {
        let (me, group_id) = (self.me.clone(), group_id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(this) = me.upgrade() else { return };
            let mut groups = this.lock();
            let Some(g) = groups.get_mut(&group_id) else {
                return;
            };
            if g.sync_timer != epoch
                || g.pending_sync.is_empty()
                || !matches!(g.state, State::CompletingRebalance | State::Stable)
            {
                return;
            }
            let missing: Vec<String> = g.pending_sync.drain().collect();
            for id in &missing {
                debug!(group_id = %group_id, member_id = %id, "removing a member that did not sync");
                if let Some(m) = g.members.get_mut(id) {
                    m.answer_join(JoinOutcome::error("", UNKNOWN_MEMBER_ID));
                }
                g.remove(id);
            }
            this.prepare_rebalance(g);
        });
    }
}

// ---- group state ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A request answered now, or later through the channel.
enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// What a JoinGroup is answered, before it is shaped for the request's version.
#[derive(Debug, Clone)]
struct JoinOutcome {
    error: i16,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: String,
    skip_assignment: bool,
    member_id: String,
    members: Vec<MemberMetadata>,
}

impl JoinOutcome {
    fn error(member_id: impl Into<String>, error: i16) -> Self {
        JoinOutcome {
            error,
            generation: NO_GENERATION,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct MemberMetadata {
    member_id: String,
    instance_id: Option<String>,
    metadata: Bytes,
}

/// What a SyncGroup is answered.
#[derive(Debug, Clone)]
struct SyncOutcome {
    error: i16,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    assignment: Bytes,
}

impl SyncOutcome {
    fn error(error: i16) -> Self {
        SyncOutcome {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A JoinGroup request, version differences resolved.
struct JoinParams {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    require_known_member_id: bool,
    supports_skip_assignment: bool,
}

struct Member {
    /// Identifies this incarnation for its session timer (changes with the member id).
    uid: u64,
    /// Join order, kept across a static member's id replacement.
    seq: u64,
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    /// The session ends at this instant unless the member is heard from.
    deadline: Instant,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// A member waiting in JoinGroup or SyncGroup (whose request is still there) is alive.
    fn kept_alive(&self) -> bool {
        self.awaiting_join
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
            || self
                .awaiting_sync
                .as_ref()
                .is_some_and(|tx| !tx.is_closed())
    }

    fn touch(&mut self, now: Instant) {
        self.deadline = now + self.session_timeout;
    }

    /// Parks a JoinGroup; an earlier one of the same member still waiting is answered
    /// `REBALANCE_IN_PROGRESS`.
    fn await_join(&mut self) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(old) = self.awaiting_join.replace(tx) {
            let _ = old.send(JoinOutcome::error(self.id.clone(), REBALANCE_IN_PROGRESS));
        }
        Reply::Wait(rx)
    }

    fn await_sync(&mut self) -> Reply<SyncOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(old) = self.awaiting_sync.replace(tx) {
            let _ = old.send(SyncOutcome::error(REBALANCE_IN_PROGRESS));
        }
        Reply::Wait(rx)
    }

    fn answer_join(&mut self, outcome: JoinOutcome) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(outcome);
        }
    }

    fn answer_sync(&mut self, outcome: SyncOutcome) {
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(outcome);
        }
    }
}

struct Committed {
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

static NO_COMMIT: Committed = Committed {
    offset: -1,
    leader_epoch: -1,
    metadata: String::new(),
};

struct Group {
    id: String,
    state: State,
    generation: i32,
    /// Set by the first member of an empty group; kept when the group empties.
    protocol_type: Option<String>,
    /// The protocol selected for the current generation.
    protocol_name: Option<String>,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// Member ids handed out with `MEMBER_ID_REQUIRED`, not yet joined with.
    pending_members: HashSet<String>,
    /// Group instance id to the member id that holds it.
    static_members: HashMap<String, String>,
    /// Members that have not sent SyncGroup since the join phase completed.
    pending_sync: HashSet<String>,
    /// A member joined during the initial delay: wait once more.
    new_member_added: bool,
    /// The epoch of the armed join timer (0: none); re-arming or completing cancels.
    join_timer: u64,
    /// The armed join timer is the initial delay, which only its expiry completes.
    initial_join: bool,
    /// The epoch of the armed sync timer (0: none).
    sync_timer: u64,
    offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    fn new(id: String) -> Self {
        Group {
            id,
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: HashMap::new(),
            pending_members: HashSet::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_timer: 0,
            initial_join: false,
            sync_timer: 0,
            offsets: BTreeMap::new(),
        }
    }

    fn ordered_members(&self) -> impl Iterator<Item = &Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        members.into_iter()
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn add(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance_id) = &member.instance_id {
            self.static_members
                .insert(instance_id.clone(), member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    fn remove(&mut self, member_id: &str) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance_id) = &member.instance_id {
            if self.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance_id);
            }
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            let next = self.ordered_members().next().map(|m| m.id.clone());
            self.leader = next;
        }
    }

    fn await_join(&mut self, member_id: &str) -> Reply<JoinOutcome> {
        match self.members.get_mut(member_id) {
            Some(m) => m.await_join(),
            None => Reply::Now(JoinOutcome::error(member_id, UNKNOWN_MEMBER_ID)),
        }
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Kafka's check: an empty group takes any non-empty protocol type and list; else
    /// the type must match and one of the protocols must be supported by every member.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == State::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
        }
    }

    /// Of the protocols every member supports, the one most members prefer (each votes
    /// for the first of its own list that is a candidate); ties go to the earliest vote.
    fn select_protocol(&self) -> String {
        let members: Vec<&Member> = self.ordered_members().collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for m in &members {
            let vote = m
                .protocols
                .iter()
                .map(|(name, _)| name.as_str())
                .find(|name| members.iter().all(|other| other.supports(name)));
            if let Some(vote) = vote {
                match votes.iter_mut().find(|(name, _)| *name == vote) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((vote, 1)),
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
            .or_else(|| {
                members
                    .first()
                    .and_then(|m| m.protocols.first())
                    .map(|(n, _)| n.clone())
            })
            .unwrap_or_default()
    }

    fn current_member_metadata(&self) -> Vec<MemberMetadata> {
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        self.ordered_members()
            .map(|m| MemberMetadata {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// The current generation as a JoinGroup answer; the leader gets every member's
    /// metadata when `leader_gets_members`.
    fn current_join_outcome(&self, member_id: &str, leader_gets_members: bool) -> JoinOutcome {
        JoinOutcome {
            error: NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if leader_gets_members && self.is_leader(member_id) {
                self.current_member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    /// Kafka's check of a request's member: a given group instance id must be held by
    /// `member_id` (else `FENCED_INSTANCE_ID`, or `UNKNOWN_MEMBER_ID` when nobody holds
    /// it), and the member must be in the group.
    fn validate_current_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<i16> {
        if let Some(instance_id) = instance_id {
            match self.static_members.get(instance_id) {
                Some(current) if current != member_id => return Some(FENCED_INSTANCE_ID),
                Some(_) => {}
                None => return Some(UNKNOWN_MEMBER_ID),
            }
        }
        if self.members.contains_key(member_id) {
            None
        } else {
            Some(UNKNOWN_MEMBER_ID)
        }
    }

    /// If the leader did not rejoin, another member that did leads; false if none did.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        let joined = self
            .ordered_members()
            .find(|m| m.awaiting_join.is_some())
            .map(|m| m.id.clone());
        match joined {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    fn set_and_propagate_assignment(
        &mut self,
        mut assignments: HashMap<String, Bytes>,
        now: Instant,
    ) {
        for m in self.members.values_mut() {
            m.assignment = assignments.remove(&m.id).unwrap_or_default();
            let outcome = SyncOutcome {
                error: NONE,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                assignment: m.assignment.clone(),
            };
            if m.awaiting_sync.is_some() {
                m.answer_sync(outcome);
                m.touch(now);
            }
        }
        self.state = State::Stable;
        debug!(group_id = %self.id, generation = self.generation, "group is stable");
    }

    fn reset_and_propagate_assignment_error(&mut self, error: i16) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            m.answer_sync(SyncOutcome::error(error));
        }
    }
}

/// Kafka's OffsetCommit check; None when the commit is accepted (and the member's
/// session is refreshed).
fn validate_offset_commit(
    g: &mut Group,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<i16> {
    if generation < 0 && g.state == State::Empty {
        return None;
    }
    if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
        if let Some(error) = g.validate_current_member(member_id, instance_id) {
            return Some(error);
        }
        if generation != g.generation {
            return Some(ILLEGAL_GENERATION);
        }
    } else if g.state != State::Empty {
        // Only members commit to a group that has members.
        return Some(UNKNOWN_MEMBER_ID);
    }
    match g.state {
        State::Empty => None,
        State::Stable | State::PreparingRebalance => {
            if let Some(m) = g.members.get_mut(member_id) {
                m.touch(Instant::now());
            }
            None
        }
        State::CompletingRebalance => Some(REBALANCE_IN_PROGRESS),
    }
}

/// The committed offsets of `wanted` topics and partitions (all when None), by topic.
fn fetch_offsets(
    group: Option<&Group>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<(i32, &Committed)>)> {
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| {
                        let c = group
                            .and_then(|g| g.offsets.get(&(topic.clone(), p)))
                            .unwrap_or(&NO_COMMIT);
                        (p, c)
                    })
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut out: Vec<(String, Vec<(i32, &Committed)>)> = Vec::new();
            for ((topic, partition), c) in group.into_iter().flat_map(|g| g.offsets.iter()) {
                match out.last_mut() {
                    Some((t, partitions)) if t == topic => partitions.push((*partition, c)),
                    _ => out.push((topic.clone(), vec![(*partition, c)])),
                }
            }
            out
        }
    }
}

fn join_response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: o.error,
        generation_id: o.generation,
        protocol_type: if version >= 7 {
            o.protocol_type.map(StrBytes::from)
        } else {
            None
        },
        // Nullable from v7; before, "" stands for none.
        protocol_name: if version >= 7 {
            o.protocol_name.map(StrBytes::from)
        } else {
            Some(o.protocol_name.unwrap_or_default().into())
        },
        leader: o.leader.into(),
        skip_assignment: version >= 9 && o.skip_assignment,
        member_id: o.member_id.into(),
        members: o
            .members
            .into_iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.into(),
                group_instance_id: if version >= 5 {
                    m.instance_id.map(StrBytes::from)
                } else {
                    None
                },
                metadata: m.metadata,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A random version 4 UUID in its usual text form, as Kafka suffixes member ids.
fn random_uuid() -> String {
    let v = (rand::random::<u128>() & !(0xf_u128 << 76) & !(0x3_u128 << 62))
        | (0x4_u128 << 76)
        | (0x2_u128 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::Encode;
    use std::future::Future;

    const SESSION_MS: i32 = 10_000;
    const REBALANCE_MS: i32 = 5_000;

    /// Every test body runs under this timeout.
    async fn within<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("test timed out")
    }

    fn coordinator() -> Arc<GroupCoordinator> {
        GroupCoordinator::with_initial_delay(Duration::from_millis(50))
    }

    /// Fails the test if `msg` does not encode in `version`.
    fn encodes<T: Encode>(msg: &T, version: i16) {
        msg.encode_to_bytes(version).expect("response encodes");
    }

    fn code(error: ErrorCode) -> i16 {
        error.code()
    }

    /// One member's JoinGroup parameters.
    #[derive(Clone)]
    struct Joiner {
        group: &'static str,
        member_id: String,
        instance_id: Option<&'static str>,
        session_ms: i32,
        rebalance_ms: i32,
        protocol_type: &'static str,
        protocols: Vec<(&'static str, &'static [u8])>,
    }

    impl Joiner {
        fn new(group: &'static str) -> Self {
            Joiner {
                group,
                member_id: String::new(),
                instance_id: None,
                session_ms: SESSION_MS,
                rebalance_ms: REBALANCE_MS,
                protocol_type: "consumer",
                protocols: vec![("range", b"range-meta")],
            }
        }

        fn request(&self, version: i16) -> JoinGroupRequest {
            JoinGroupRequest {
                group_id: self.group.into(),
                session_timeout_ms: self.session_ms,
                rebalance_timeout_ms: if version >= 1 { self.rebalance_ms } else { -1 },
                member_id: self.member_id.clone().into(),
                group_instance_id: self.instance_id.map(StrBytes::from),
                protocol_type: self.protocol_type.into(),
                protocols: self
                    .protocols
                    .iter()
                    .map(|(name, metadata)| JoinGroupRequestProtocol {
                        name: (*name).into(),
                        metadata: Bytes::from_static(metadata),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
    }

    async fn join(c: &Arc<GroupCoordinator>, j: &Joiner, version: i16) -> JoinGroupResponse {
        let resp = c
            .join_group_with_client(j.request(version), version, "client", "/127.0.0.1")
            .await;
        encodes(&resp, version);
        resp
    }

    /// JoinGroup v4+ as the Java client does it: the MEMBER_ID_REQUIRED round trip, then
    /// the join with the given id. Updates `j.member_id`.
    async fn join_new(
        c: &Arc<GroupCoordinator>,
        j: &mut Joiner,
        version: i16,
    ) -> JoinGroupResponse {
        let first = join(c, j, version).await;
        assert_eq!(first.error_code, code(ErrorCode::MemberIdRequired));
        j.member_id = first.member_id.to_string();
        let resp = join(c, j, version).await;
        assert_eq!(resp.error_code, NONE, "{resp:?}");
        assert_eq!(resp.member_id.as_str(), j.member_id);
        resp
    }

    async fn sync(
        c: &Arc<GroupCoordinator>,
        j: &Joiner,
        generation: i32,
        assignments: &[(&str, &'static [u8])],
        version: i16,
    ) -> SyncGroupResponse {
        let req = SyncGroupRequest {
            group_id: j.group.into(),
            generation_id: generation,
            member_id: j.member_id.clone().into(),
            group_instance_id: if version >= 3 {
                j.instance_id.map(StrBytes::from)
            } else {
                None
            },
            assignments: assignments
                .iter()
                .map(|(member, assignment)| SyncGroupRequestAssignment {
                    member_id: member.to_string().into(),
                    assignment: Bytes::from_static(assignment),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let resp = c.sync_group(req, version).await;
        encodes(&resp, version);
        resp
    }

    async fn heartbeat(
        c: &Arc<GroupCoordinator>,
        j: &Joiner,
        generation: i32,
        version: i16,
    ) -> i16 {
        let req = HeartbeatRequest {
            group_id: j.group.into(),
            generation_id: generation,
            member_id: j.member_id.clone().into(),
            group_instance_id: if version >= 3 {
                j.instance_id.map(StrBytes::from)
            } else {
                None
            },
            ..Default::default()
        };
        let resp = c.heartbeat(req, version).await;
        encodes(&resp, version);
        resp.error_code
    }

    async fn leave(c: &Arc<GroupCoordinator>, j: &Joiner, version: i16) -> LeaveGroupResponse {
        let mut req = LeaveGroupRequest {
            group_id: j.group.into(),
            ..Default::default()
        };
        if version >= 3 {
            req.members = vec![MemberIdentity {
                member_id: j.member_id.clone().into(),
                group_instance_id: j.instance_id.map(StrBytes::from),
                ..Default::default()
            }];
        } else {
            req.member_id = j.member_id.clone().into();
        }
        let resp = c.leave_group(req, version).await;
        encodes(&resp, version);
        resp
    }

    /// Two members A (leader) and B join a new group and sync; returns them and the
    /// generation.
    async fn stable_pair(c: &Arc<GroupCoordinator>, group: &'static str) -> (Joiner, Joiner, i32) {
        let (mut a, mut b) = (Joiner::new(group), Joiner::new(group));
        // B joins while A's first rebalance is still waiting out the initial delay.
        let (ra, rb) = tokio::join!(join_new(c, &mut a, 5), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            join_new(c, &mut b, 5).await
        });
        assert_eq!(ra.leader.as_str(), a.member_id);
        assert_eq!(ra.generation_id, rb.generation_id);
        let generation = rb.generation_id;
        let assignments = [
            (a.member_id.as_str(), &b"to-a"[..]),
            (b.member_id.as_str(), &b"to-b"[..]),
        ];
        let (sa, sb) = tokio::join!(
            sync(c, &a, generation, &assignments, 5),
            sync(c, &b, generation, &[], 5),
        );
        assert_eq!((sa.error_code, sb.error_code), (NONE, NONE));
        assert_eq!(
            c.group_state(group),
            Some(("Stable".to_owned(), generation))
        );
        (a, b, generation)
    }

    fn commit_req(
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&'static str, i32, i64)],
    ) -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: group.to_owned().into(),
            generation_id_or_member_epoch: generation,
            member_id: member.to_owned().into(),
            topics: offsets
                .iter()
                .map(|(topic, partition, offset)| OffsetCommitRequestTopic {
                    name: (*topic).into(),
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: *partition,
                        committed_offset: *offset,
                        committed_metadata: Some("meta".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn commit(c: &Arc<GroupCoordinator>, req: OffsetCommitRequest, version: i16) -> Vec<i16> {
        let resp = c.offset_commit(req, version).await;
        encodes(&resp, version);
        resp.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    #[tokio::test]
    async fn single_member_join_sync_heartbeat() {
        within(async {
            let c = coordinator();
            let mut a = Joiner::new("g1");
            // v3: no MEMBER_ID_REQUIRED round trip.
            let resp = join(&c, &a, 3).await;
            assert_eq!(resp.error_code, NONE);
            assert_eq!(resp.generation_id, 1);
            assert!(resp.member_id.starts_with("client-"), "{}", resp.member_id);
            assert_eq!(resp.leader, resp.member_id);
            assert_eq!(resp.protocol_name.as_deref(), Some("range"));
            assert_eq!(resp.members.len(), 1);
            assert_eq!(resp.members[0].metadata, Bytes::from_static(b"range-meta"));
            a.member_id = resp.member_id.to_string();
            assert_eq!(
                c.group_state("g1"),
                Some(("CompletingRebalance".to_owned(), 1))
            );

            let s = sync(&c, &a, 1, &[(&a.member_id.clone(), b"assigned")], 3).await;
            assert_eq!(s.error_code, NONE);
            assert_eq!(s.assignment, Bytes::from_static(b"assigned"));
            assert_eq!(c.group_state("g1"), Some(("Stable".to_owned(), 1)));
            // A second SyncGroup in Stable returns the same assignment (v5: with protocol).
            let s = sync(&c, &a, 1, &[], 5).await;
            assert_eq!(s.assignment, Bytes::from_static(b"assigned"));
            assert_eq!(s.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(s.protocol_name.as_deref(), Some("range"));

            assert_eq!(heartbeat(&c, &a, 1, 4).await, NONE);
            assert_eq!(
                heartbeat(&c, &a, 0, 4).await,
                code(ErrorCode::IllegalGeneration)
            );
            let mut stranger = a.clone();
            stranger.member_id = "nobody".into();
            assert_eq!(heartbeat(&c, &stranger, 1, 4).await, UNKNOWN_MEMBER_ID);
            assert_eq!(
                sync(&c, &stranger, 1, &[], 4).await.error_code,
                UNKNOWN_MEMBER_ID
            );
            assert_eq!(
                sync(&c, &a, 7, &[], 4).await.error_code,
                code(ErrorCode::IllegalGeneration)
            );
            let mut elsewhere = a.clone();
            elsewhere.group = "no-such-group";
            assert_eq!(heartbeat(&c, &elsewhere, 1, 0).await, UNKNOWN_MEMBER_ID);
            // A follower-less leader rejoining in Stable starts a new generation.
            let resp = join(&c, &a, 3).await;
            assert_eq!((resp.error_code, resp.generation_id), (NONE, 2));
        })
        .await;
    }

    #[tokio::test]
    async fn member_id_required_flow() {
        within(async {
            let c = coordinator();
            let j = Joiner::new("g2");
            for version in [4, 7, 9] {
                let resp = c
                    .join_group_with_client(j.request(version), version, "my-client", "/10.0.0.1")
                    .await;
                encodes(&resp, version);
                assert_eq!(resp.error_code, code(ErrorCode::MemberIdRequired));
                assert_eq!(resp.generation_id, -1);
                assert!(
                    resp.member_id.starts_with("my-client-"),
                    "{}",
                    resp.member_id
                );
                // 36 characters of UUID after the prefix.
                assert_eq!(resp.member_id.len(), "my-client-".len() + 36);
                assert!(resp.members.is_empty());
                if version >= 7 {
                    assert_eq!(resp.protocol_name, None);
                }
            }
            assert_eq!(c.group_state("g2"), Some(("Empty".to_owned(), 0)));

            let mut j = Joiner::new("g2");
            let resp = join_new(&c, &mut j, 7).await;
            assert_eq!(resp.generation_id, 1);
            assert_eq!(resp.leader.as_str(), j.member_id);
            assert_eq!(resp.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(c.group_members("g2"), vec![j.member_id.clone()]);
            // A made-up member id is refused.
            let mut bogus = Joiner::new("g2");
            bogus.member_id = "made-up".into();
            assert_eq!(join(&c, &bogus, 7).await.error_code, UNKNOWN_MEMBER_ID);
            bogus.group = "unknown-group";
            assert_eq!(join(&c, &bogus, 7).await.error_code, UNKNOWN_MEMBER_ID);
        })
        .await;
    }

    #[tokio::test]
    async fn two_members_one_leader_assignments_by_sync() {
        within(async {
            let c = coordinator();
            let mut a = Joiner::new("g3");
            a.protocols = vec![("roundrobin", b"rr-a"), ("range", b"range-a")];
            let mut b = Joiner::new("g3");
            b.protocols = vec![("range", b"range-b")];
            let (ra, rb) = tokio::join!(join_new(&c, &mut a, 6), join_new(&c, &mut b, 6));
            assert_eq!(ra.generation_id, rb.generation_id);
            assert_eq!(ra.generation_id, 1);
            assert_eq!(ra.leader, rb.leader);
            // Only "range" is supported by both.
            assert_eq!(ra.protocol_name.as_deref(), Some("range"));
            assert_eq!(rb.protocol_name.as_deref(), Some("range"));
            let (leader, follower, leader_resp, follower_resp) =
                if ra.leader.as_str() == a.member_id {
                    (&a, &b, &ra, &rb)
                } else {
                    (&b, &a, &rb, &ra)
                };
            assert_eq!(leader_resp.members.len(), 2);
            assert!(follower_resp.members.is_empty());
            let metadata: Vec<&[u8]> = leader_resp
                .members
                .iter()
                .map(|m| m.metadata.as_ref())
                .collect();
            assert!(metadata.contains(&&b"range-a"[..]) && metadata.contains(&&b"range-b"[..]));

            // The follower's SyncGroup waits for the leader's.
            let follower_sync = {
                let (c, f) = (c.clone(), follower.clone());
                tokio::spawn(async move { sync(&c, &f, 1, &[], 4).await })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!follower_sync.is_finished());
            let assignments = [
                (a.member_id.as_str(), &b"for-a"[..]),
                (b.member_id.as_str(), &b"for-b"[..]),
            ];
            let ls = sync(&c, leader, 1, &assignments, 4).await;
            let fs = follower_sync.await.unwrap();
            assert_eq!((ls.error_code, fs.error_code), (NONE, NONE));
            let expect = |j: &Joiner| {
                if j.member_id == a.member_id {
                    &b"for-a"[..]
                } else {
                    &b"for-b"[..]
                }
            };
            assert_eq!(ls.assignment.as_ref(), expect(leader));
            assert_eq!(fs.assignment.as_ref(), expect(follower));
            assert_eq!(c.group_state("g3"), Some(("Stable".to_owned(), 1)));

            // A different protocol type, or no protocol in common, is refused.
            let mut other = Joiner::new("g3");
            other.protocol_type = "connect";
            assert_eq!(
                join(&c, &other, 3).await.error_code,
                code(ErrorCode::InconsistentGroupProtocol)
            );
            other.protocol_type = "consumer";
            other.protocols = vec![("sticky", b"")];
            assert_eq!(
                join(&c, &other, 3).await.error_code,
                code(ErrorCode::InconsistentGroupProtocol)
            );
            // SyncGroup v5 naming another protocol is refused.
            let mut req = SyncGroupRequest {
                group_id: "g3".into(),
                generation_id: 1,
                member_id: a.member_id.clone().into(),
                protocol_type: Some("consumer".into()),
                protocol_name: Some("roundrobin".into()),
                ..Default::default()
            };
            let resp = c.sync_group(req.clone(), 5).await;
            assert_eq!(resp.error_code, code(ErrorCode::InconsistentGroupProtocol));
            req.protocol_name = Some("range".into());
            assert_eq!(c.sync_group(req, 5).await.error_code, NONE);
        })
        .await;
    }

    #[tokio::test]
    async fn third_member_triggers_rebalance() {
        within(async {
            let c = coordinator();
            let (a, b, generation) = stable_pair(&c, "g4").await;
            let mut third = Joiner::new("g4");
            let first = join(&c, &third, 5).await;
            assert_eq!(first.error_code, code(ErrorCode::MemberIdRequired));
            third.member_id = first.member_id.to_string();
            let third_join = {
                let (c, t) = (c.clone(), third.clone());
                tokio::spawn(async move { join(&c, &t, 5).await })
            };
            // Existing members learn of the rebalance from their heartbeats...
            let mut seen = (false, false);
            while !(seen.0 && seen.1) {
                seen.0 |= heartbeat(&c, &a, generation, 4).await == REBALANCE_IN_PROGRESS;
                seen.1 |= heartbeat(&c, &b, generation, 4).await == REBALANCE_IN_PROGRESS;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                c.group_state("g4"),
                Some(("PreparingRebalance".to_owned(), generation))
            );
            // ... a SyncGroup of the old generation is told the same ...
            assert_eq!(
                sync(&c, &a, generation, &[], 4).await.error_code,
                REBALANCE_IN_PROGRESS
            );
            // ... and rejoin with their member ids.
            let (ra, rb) = tokio::join!(join(&c, &a, 5), join(&c, &b, 5));
            let rc = third_join.await.unwrap();
            for r in [&ra, &rb, &rc] {
                assert_eq!(r.error_code, NONE);
                assert_eq!(r.generation_id, generation + 1);
            }
            assert_eq!(
                ra.leader.as_str(),
                a.member_id,
                "the leader stays the leader"
            );
            assert_eq!(ra.members.len(), 3);
            assert_eq!(c.group_members("g4").len(), 3);
            let g = generation + 1;
            let assignments = [(third.member_id.as_str(), &b"t"[..])];
            let (s1, s2, s3) = tokio::join!(
                sync(&c, &a, g, &assignments, 4),
                sync(&c, &b, g, &[], 4),
                sync(&c, &third, g, &[], 4),
            );
            assert_eq!(
                (s1.error_code, s2.error_code, s3.error_code),
                (NONE, NONE, NONE)
            );
            assert_eq!(s3.assignment, Bytes::from_static(b"t"));
            assert!(
                s2.assignment.is_empty(),
                "members the leader left out get an empty assignment"
            );
            assert_eq!(c.group_state("g4"), Some(("Stable".to_owned(), g)));
        })
        .await;
    }

    #[tokio::test]
    async fn leave_triggers_rebalance() {
        within(async {
            let c = coordinator();
            let (a, b, generation) = stable_pair(&c, "g5").await;
            let resp = leave(&c, &b, 3).await;
            assert_eq!(resp.error_code, NONE);
            assert_eq!(resp.members.len(), 1);
            assert_eq!(resp.members[0].error_code, NONE);
            assert_eq!(
                heartbeat(&c, &a, generation, 4).await,
                REBALANCE_IN_PROGRESS
            );
            assert_eq!(heartbeat(&c, &b, generation, 4).await, UNKNOWN_MEMBER_ID);
            let ra = join(&c, &a, 5).await;
            assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 1));
            assert_eq!(ra.members.len(), 1);
            // v0-2: the member's error is the top-level error.
            assert_eq!(leave(&c, &b, 1).await.error_code, UNKNOWN_MEMBER_ID);
            let mut nowhere = b.clone();
            nowhere.group = "no-such-group";
            let resp = leave(&c, &nowhere, 4).await;
            assert_eq!(
                (resp.error_code, resp.members[0].error_code),
                (NONE, UNKNOWN_MEMBER_ID)
            );
            // The last member leaving (v0) empties the group with a new generation.
            assert_eq!(leave(&c, &a, 0).await.error_code, NONE);
            assert_eq!(
                c.group_state("g5"),
                Some(("Empty".to_owned(), generation + 2))
            );
            // A pending member (MEMBER_ID_REQUIRED) may leave too.
            let mut p = Joiner::new("g5");
            p.member_id = join(&c, &p, 4).await.member_id.to_string();
            assert_eq!(leave(&c, &p, 4).await.members[0].error_code, NONE);
        })
        .await;
    }

    #[tokio::test]
    async fn session_expiry_removes_a_silent_member() {
        within(async {
            let c = coordinator();
            let (mut a, mut b) = (Joiner::new("g6"), Joiner::new("g6"));
            a.session_ms = 300;
            b.session_ms = 300;
            let (ra, _) = tokio::join!(join_new(&c, &mut a, 5), join_new(&c, &mut b, 5));
            let generation = ra.generation_id;
            let (s1, s2) = tokio::join!(
                sync(&c, &a, generation, &[], 3),
                sync(&c, &b, generation, &[], 3)
            );
            assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

            // A heartbeats, B is silent: B's session ends and A is told to rejoin.
            let started = Instant::now();
            loop {
                let error = heartbeat(&c, &a, generation, 4).await;
                if error == REBALANCE_IN_PROGRESS {
                    break;
                }
                assert_eq!(error, NONE);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(started.elapsed() >= Duration::from_millis(200));
            let ra = join(&c, &a, 5).await;
            assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 1));
            assert_eq!(ra.leader.as_str(), a.member_id);
            assert_eq!(ra.members.len(), 1);
            assert_eq!(sync(&c, &a, generation + 1, &[], 3).await.error_code, NONE);
            assert_eq!(
                c.group_state("g6"),
                Some(("Stable".to_owned(), generation + 1))
            );
            assert_eq!(c.group_members("g6"), vec![a.member_id.clone()]);
            assert_eq!(heartbeat(&c, &b, generation, 4).await, UNKNOWN_MEMBER_ID);

            // A dynamic member that does not rejoin within the rebalance timeout is removed
            // when the join phase ends (A's session is long now, its rebalance timeout short).
            a.session_ms = 10_000;
            a.rebalance_ms = 300;
            let ra = join(&c, &a, 5).await; // the leader rejoining starts a new generation
            assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 2));
            assert_eq!(sync(&c, &a, generation + 2, &[], 3).await.error_code, NONE);
            b.member_id.clear();
            b.rebalance_ms = 300;
            b.session_ms = 10_000;
            let started = Instant::now();
            let rb = join_new(&c, &mut b, 5).await; // A does not rejoin
            assert!(started.elapsed() >= Duration::from_millis(250));
            assert_eq!(rb.generation_id, generation + 3);
            assert_eq!(rb.leader.as_str(), b.member_id);
            assert_eq!(c.group_members("g6"), vec![b.member_id.clone()]);
        })
        .await;
    }

    #[tokio::test]
    async fn static_member_rejoin_keeps_generation_and_fences_old_id() {
        within(async {
            let c = coordinator();
            let (mut a, mut b) = (Joiner::new("g7"), Joiner::new("g7"));
            a.instance_id = Some("instance-a");
            b.instance_id = Some("instance-b");
            // Static members get no MEMBER_ID_REQUIRED; their ids start with the instance id.
            let (ra, rb) = tokio::join!(join(&c, &a, 5), async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                join(&c, &b, 5).await
            });
            assert_eq!((ra.error_code, rb.error_code), (NONE, NONE));
            assert!(ra.member_id.starts_with("instance-a-"));
            a.member_id = ra.member_id.to_string();
            b.member_id = rb.member_id.to_string();
            assert_eq!(ra.leader.as_str(), a.member_id);
            assert_eq!(
                ra.members[0].group_instance_id.as_deref(),
                Some("instance-a")
            );
            let generation = ra.generation_id;
            let assignments = [
                (a.member_id.as_str(), &b"for-a"[..]),
                (b.member_id.as_str(), &b"for-b"[..]),
            ];
            let (s1, s2) = tokio::join!(
                sync(&c, &a, generation, &assignments, 5),
                sync(&c, &b, generation, &[], 5)
            );
            assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

            // B restarts: same instance id, no member id, same metadata.
            let old_b = b.clone();
            b.member_id.clear();
            let rb = join(&c, &b, 5).await;
            assert_eq!(rb.error_code, NONE);
            assert_eq!(rb.generation_id, generation, "no rebalance");
            assert_ne!(rb.member_id.as_str(), old_b.member_id);
            assert_eq!(rb.leader.as_str(), a.member_id);
            assert!(rb.members.is_empty());
            b.member_id = rb.member_id.to_string();
            assert_eq!(c.group_state("g7"), Some(("Stable".to_owned(), generation)));
            assert_eq!(
                heartbeat(&c, &old_b, generation, 4).await,
                FENCED_INSTANCE_ID
            );
            assert_eq!(
                sync(&c, &old_b, generation, &[], 4).await.error_code,
                FENCED_INSTANCE_ID
            );
            assert_eq!(heartbeat(&c, &b, generation, 4).await, NONE);
            assert_eq!(heartbeat(&c, &a, generation, 4).await, NONE);
            let s = sync(&c, &b, generation, &[], 5).await;
            assert_eq!((s.error_code, s.assignment.as_ref()), (NONE, &b"for-b"[..]));
            let mut old_b_v0 = old_b.clone();
            old_b_v0.instance_id = None;
            assert_eq!(
                heartbeat(&c, &old_b_v0, generation, 0).await,
                UNKNOWN_MEMBER_ID
            );

            // The leader restarts with v9: it is told it leads but skips the assignment.
            let old_a = a.clone();
            a.member_id.clear();
            let ra = join(&c, &a, 9).await;
            assert_eq!((ra.error_code, ra.generation_id), (NONE, generation));
            assert!(ra.skip_assignment);
            assert_eq!(ra.leader, ra.member_id);
            assert_eq!(ra.members.len(), 2);
            a.member_id = ra.member_id.to_string();
            // Before v9, a restarted leader sees the old leader id and does not assign.
            let mut again = a.clone();
            again.member_id.clear();
            let r = join(&c, &again, 5).await;
            assert_eq!((r.error_code, r.generation_id), (NONE, generation));
            assert_eq!(r.leader.as_str(), a.member_id);
            assert_ne!(r.member_id.as_str(), a.member_id);
            assert_eq!(
                heartbeat(&c, &old_a, generation, 4).await,
                FENCED_INSTANCE_ID
            );
            assert_eq!(heartbeat(&c, &a, generation, 4).await, FENCED_INSTANCE_ID);
            a.member_id = r.member_id.to_string();
            assert_eq!(c.group_state("g7"), Some(("Stable".to_owned(), generation)));

            // A replacement whose new metadata leaves the selected protocol as it is does
            // not rebalance either ...
            let mut changed = b.clone();
            changed.member_id.clear();
            changed.protocols = vec![("roundrobin", b"rr"), ("range", b"range-2")];
            let r = join(&c, &changed, 5).await;
            assert_eq!((r.error_code, r.generation_id), (NONE, generation));
            b.member_id = r.member_id.to_string();
            // ... but a follower rejoining with its member id and new metadata does.
            let mut changed = b.clone();
            changed.protocols = vec![("range", b"range-3")];
            let c2 = c.clone();
            let rejoin = tokio::spawn(async move { join(&c2, &changed, 5).await });
            while heartbeat(&c, &a, generation, 4).await != REBALANCE_IN_PROGRESS {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let ra = join(&c, &a, 5).await;
            let rb = rejoin.await.unwrap();
            assert_eq!(
                ra.members
                    .iter()
                    .map(|m| m.metadata.as_ref())
                    .collect::<Vec<_>>(),
                vec![&b"range-meta"[..], b"range-3"]
            );
            assert_eq!(
                (ra.generation_id, rb.generation_id),
                (generation + 1, generation + 1)
            );

            // A static member leaving by instance id alone (admin removal).
            let req = LeaveGroupRequest {
                group_id: "g7".into(),
                members: vec![MemberIdentity {
                    group_instance_id: Some("instance-b".into()),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let resp = c.leave_group(req, 4).await;
            assert_eq!(resp.members[0].error_code, NONE);
            assert_eq!(c.group_members("g7"), vec![a.member_id.clone()]);
        })
        .await;
    }

    #[tokio::test]
    async fn absent_static_member_stays_through_a_rebalance() {
        within(async {
            let c = coordinator();
            let (mut a, mut b) = (Joiner::new("g8"), Joiner::new("g8"));
            a.instance_id = Some("a");
            b.instance_id = Some("b");
            a.rebalance_ms = 300;
            b.rebalance_ms = 300;
            let (ra, rb) = tokio::join!(join(&c, &a, 5), join(&c, &b, 5));
            a.member_id = ra.member_id.to_string();
            b.member_id = rb.member_id.to_string();
            let generation = ra.generation_id;
            let (leader, follower) = if ra.leader.as_str() == a.member_id {
                (&a, &b)
            } else {
                (&b, &a)
            };
            let (s1, s2) = tokio::join!(
                sync(&c, leader, generation, &[], 5),
                sync(&c, follower, generation, &[], 5)
            );
            assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

            // A new dynamic member joins; only A rejoins; B (static, silent) is kept.
            let mut d = Joiner::new("g8");
            d.rebalance_ms = 300;
            let (rd, ra) = tokio::join!(join_new(&c, &mut d, 5), async {
                while heartbeat(&c, &a, generation, 4).await != REBALANCE_IN_PROGRESS {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                join(&c, &a, 5).await
            });
            assert_eq!(
                (rd.generation_id, ra.generation_id),
                (generation + 1, generation + 1)
            );
            let members = c.group_members("g8");
            assert_eq!(members.len(), 3, "{members:?}");
            assert!(members.contains(&b.member_id));
        })
        .await;
    }

    #[tokio::test]
    async fn offsets_commit_fetch_round_trip() {
        within(async {
            let c = coordinator();
            // Generation -1 creates a simple group.
            let errors = commit(
                &c,
                commit_req("simple", "", -1, &[("t", 0, 42), ("t", 1, 7), ("u", 0, 3)]),
                2,
            )
            .await;
            assert_eq!(errors, vec![NONE; 3]);
            assert_eq!(c.committed("simple", "t", 0), Some(42));
            assert_eq!(c.committed("simple", "t", 2), None);
            assert_eq!(c.group_state("simple"), Some(("Empty".to_owned(), 0)));
            // v0 has no generation at all.
            assert_eq!(
                commit(&c, commit_req("simple", "", -1, &[("t", 0, 43)]), 0).await,
                vec![NONE]
            );
            assert_eq!(c.committed("simple", "t", 0), Some(43));
            // v6+ keeps the leader epoch.
            let mut req = commit_req("simple", "", -1, &[("t", 1, 8)]);
            req.topics[0].partitions[0].committed_leader_epoch = 5;
            assert_eq!(commit(&c, req, 8).await, vec![NONE]);
            // An unknown group with a generation: ILLEGAL_GENERATION.
            assert_eq!(
                commit(&c, commit_req("nope", "m", 3, &[("t", 0, 1)]), 2).await,
                vec![ILLEGAL_GENERATION]
            );
            let mut req = commit_req("simple", "", -1, &[("t", 0, 1)]);
            req.topics[0].partitions[0].committed_metadata = Some("x".repeat(5000).into());
            assert_eq!(
                commit(&c, req, 2).await,
                vec![code(ErrorCode::OffsetMetadataTooLarge)]
            );

            // v1: named partitions, one never committed.
            let req = OffsetFetchRequest {
                group_id: "simple".into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "t".into(),
                    partition_indexes: vec![0, 9],
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let resp = c.offset_fetch(req, 1).await;
            encodes(&resp, 1);
            let parts = &resp.topics[0].partitions;
            assert_eq!(
                (parts[0].committed_offset, parts[0].metadata.as_deref()),
                (43, Some("meta"))
            );
            assert_eq!((parts[1].committed_offset, parts[1].error_code), (-1, NONE));
            // v5: all topics (null), with leader epochs.
            let req = OffsetFetchRequest {
                group_id: "simple".into(),
                topics: None,
                ..Default::default()
            };
            let resp = c.offset_fetch(req, 5).await;
            encodes(&resp, 5);
            let all: Vec<(String, i32, i64, i32)> = resp
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                        )
                    })
                })
                .collect();
            assert_eq!(
                all,
                vec![
                    ("t".into(), 0, 43, -1),
                    ("t".into(), 1, 8, 5),
                    ("u".into(), 0, 3, -1)
                ]
            );
            // v8: several groups, one unknown.
            let req = OffsetFetchRequest {
                groups: vec![
                    OffsetFetchRequestGroup {
                        group_id: "simple".into(),
                        topics: Some(vec![OffsetFetchRequestTopics {
                            name: "u".into(),
                            partition_indexes: vec![0],
                            ..Default::default()
                        }]),
                        ..Default::default()
                    },
                    OffsetFetchRequestGroup {
                        group_id: "unknown".into(),
                        topics: None,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            };
            let resp = c.offset_fetch(req, 8).await;
            encodes(&resp, 8);
            assert_eq!(resp.groups.len(), 2);
            assert_eq!(resp.groups[0].topics[0].partitions[0].committed_offset, 3);
            assert!(resp.groups[1].topics.is_empty());
            assert_eq!(resp.groups[1].error_code, NONE);

            // A managed group: members of the current generation commit.
            let (a, _b, generation) = stable_pair(&c, "managed").await;
            assert_eq!(
                commit(
                    &c,
                    commit_req("managed", &a.member_id, generation, &[("t", 0, 100)]),
                    7
                )
                .await,
                vec![NONE]
            );
            assert_eq!(c.committed("managed", "t", 0), Some(100));
            assert_eq!(
                commit(
                    &c,
                    commit_req("managed", &a.member_id, generation - 1, &[("t", 0, 1)]),
                    7
                )
                .await,
                vec![ILLEGAL_GENERATION]
            );
            assert_eq!(
                commit(&c, commit_req("managed", "", -1, &[("t", 0, 1)]), 7).await,
                vec![UNKNOWN_MEMBER_ID]
            );
            assert_eq!(
                commit(
                    &c,
                    commit_req("managed", "stranger", generation, &[("t", 0, 1)]),
                    7
                )
                .await,
                vec![UNKNOWN_MEMBER_ID]
            );
            assert_eq!(c.committed("managed", "t", 0), Some(100));

            // With a partition check, unknown partitions are refused.
            c.set_partition_check(|topic, partition| topic == "t" && partition < 2);
            assert_eq!(
                commit(
                    &c,
                    commit_req("simple", "", -1, &[("t", 1, 9), ("t", 5, 9), ("zz", 0, 9)]),
                    2
                )
                .await,
                vec![NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn describe_and_list_groups() {
        within(async {
            let c = coordinator();
            let (a, _b, generation) = stable_pair(&c, "described").await;
            commit(&c, commit_req("offsets-only", "", -1, &[("t", 0, 1)]), 2).await;
            let req = DescribeGroupsRequest {
                groups: vec!["described".into(), "missing".into()],
                include_authorized_operations: true,
                ..Default::default()
            };
            for version in 0..=5 {
                let resp = c.describe_groups(req.clone(), version).await;
                encodes(&resp, version);
            }
            let resp = c.describe_groups(req, 5).await;
            let d = &resp.groups[0];
            assert_eq!(d.group_state.as_str(), "Stable");
            assert_eq!(d.protocol_type.as_str(), "consumer");
            assert_eq!(d.protocol_data.as_str(), "range");
            assert_eq!(d.members.len(), 2);
            let m = d
                .members
                .iter()
                .find(|m| m.member_id.as_str() == a.member_id)
                .unwrap();
            assert_eq!(m.client_id.as_str(), "client");
            assert_eq!(m.client_host.as_str(), "/127.0.0.1");
            assert_eq!(m.member_metadata, Bytes::from_static(b"range-meta"));
            assert_eq!(m.member_assignment, Bytes::from_static(b"to-a"));
            assert_eq!(d.authorized_operations, GROUP_AUTHORIZED_OPERATIONS);
            assert_eq!(resp.groups[1].group_state.as_str(), "Dead");
            assert!(resp.groups[1].members.is_empty());
            assert_eq!(
                c.group_state("described"),
                Some(("Stable".to_owned(), generation))
            );

            for version in 0..=5 {
                let resp = c.list_groups(ListGroupsRequest::default(), version).await;
                encodes(&resp, version);
                let ids: Vec<&str> = resp.groups.iter().map(|g| g.group_id.as_str()).collect();
                assert_eq!(ids, vec!["described", "offsets-only"]);
                assert_eq!(resp.groups[0].protocol_type.as_str(), "consumer");
                assert_eq!(resp.groups[1].protocol_type.as_str(), "");
                if version >= 4 {
                    assert_eq!(resp.groups[0].group_state.as_str(), "Stable");
                    assert_eq!(resp.groups[1].group_state.as_str(), "Empty");
                }
            }
            let req = ListGroupsRequest {
                states_filter: vec!["stable".into()],
                ..Default::default()
            };
            let resp = c.list_groups(req, 4).await;
            assert_eq!(resp.groups.len(), 1);
            assert_eq!(resp.groups[0].group_id.as_str(), "described");
            let req = ListGroupsRequest {
                types_filter: vec!["consumer".into()],
                ..Default::default()
            };
            assert!(c.list_groups(req, 5).await.groups.is_empty());
            let req = ListGroupsRequest {
                types_filter: vec!["Classic".into()],
                ..Default::default()
            };
            let resp = c.list_groups(req, 5).await;
            assert_eq!(resp.groups.len(), 2);
            assert_eq!(resp.groups[0].group_type.as_str(), "classic");
        })
        .await;
    }

    #[tokio::test]
    async fn every_version_round_trip_encodes() {
        within(async {
            let c = GroupCoordinator::with_initial_delay(Duration::from_millis(10));
            const GROUPS: [&str; 10] = ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"];
            for (version, group) in (0i16..=9).zip(GROUPS) {
                let mut j = Joiner::new(group);
                if version >= 5 && version % 2 == 1 {
                    j.instance_id = Some("static");
                }
                let resp = if version >= 4 && j.instance_id.is_none() {
                    join_new(&c, &mut j, version).await
                } else {
                    let resp = join(&c, &j, version).await;
                    j.member_id = resp.member_id.to_string();
                    resp
                };
                assert_eq!(
                    (resp.error_code, resp.generation_id),
                    (NONE, 1),
                    "JoinGroup v{version}"
                );
                let (sync_v, hb_v, leave_v) = (version.min(5), version.min(4), version.min(5));
                let s = sync(&c, &j, 1, &[(&j.member_id.clone(), b"x")], sync_v).await;
                assert_eq!(s.error_code, NONE, "SyncGroup v{sync_v}");
                assert_eq!(heartbeat(&c, &j, 1, hb_v).await, NONE, "Heartbeat v{hb_v}");
                // v0 commits carry no generation nor member id.
                let req = if version == 0 {
                    commit_req(group, "", -1, &[("t", 0, 5)])
                } else {
                    commit_req(group, &j.member_id, 1, &[("t", 0, 5)])
                };
                let errors = commit(&c, req, version).await;
                // Refused while the group has members.
                let expected = if version == 0 {
                    UNKNOWN_MEMBER_ID
                } else {
                    NONE
                };
                assert_eq!(errors, vec![expected], "OffsetCommit v{version}");
                let resp = leave(&c, &j, leave_v).await;
                assert_eq!(resp.error_code, NONE, "LeaveGroup v{leave_v}");
                assert_eq!(c.group_state(group), Some(("Empty".to_owned(), 2)));
            }
        })
        .await;
    }
}
