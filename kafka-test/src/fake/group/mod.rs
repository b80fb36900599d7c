//! The fake cluster's group coordinator: Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), committed offsets (OffsetCommit, OffsetFetch,
//! TxnOffsetCommit; in [`offsets`]) and
//! the group listings (DescribeGroups, ListGroups). KIP-848's consumer groups are in
//! [`consumer`], in the same map, sharing the committed offsets.
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

pub(crate) mod consumer;
mod offsets;

use offsets::Committed;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

// DeleteGroups and OffsetDelete: admin APIs that change the coordinator's state.
mod delete_groups;
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
/// The group type ListGroups v5+ reports for classic groups (`consumer` for KIP-848's).
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
    consumer_settings: RwLock<consumer::Settings>,
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
            consumer_settings: RwLock::new(consumer::Settings::default()),
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
        let types_match = |g: &Group| {
            version < 5
                || req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(g.group_type()))
        };
        let mut listed: Vec<ListedGroup> = groups
            .values()
            .filter(|g| {
                types_match(g)
                    && (states.is_empty() || states.contains(&g.state_name().to_lowercase()))
            })
            .map(|g| ListedGroup {
                group_id: g.id.clone().into(),
                protocol_type: if g.consumer.is_some() {
                    "consumer".into()
                } else {
                    g.protocol_type.clone().unwrap_or_default().into()
                },
                group_state: if version >= 4 {
                    g.state_name().into()
                } else {
                    StrBytes::default()
                },
                group_type: if version >= 5 {
                    g.group_type().into()
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
        // A consumer group (KIP-848) with members takes no classic joins; an empty one
        // becomes classic again.
        if g.consumer
            .as_ref()
            .is_some_and(consumer::ConsumerGroup::has_members)
        {
            return Reply::Now(JoinOutcome::error(p.member_id, INCONSISTENT_GROUP_PROTOCOL));
        }
        g.consumer = None;
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
    /// Transactional offsets not yet committed or aborted, by producer id.
    pending_txn_offsets: HashMap<i64, BTreeMap<(String, i32), Committed>>,
    /// Set while the group is a consumer group of the KIP-848 protocol.
    consumer: Option<consumer::ConsumerGroup>,
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
            pending_txn_offsets: HashMap::new(),
            consumer: None,
        }
    }

    /// `classic`, or `consumer` for a consumer group (KIP-848).
    fn group_type(&self) -> &'static str {
        match self.consumer {
            Some(_) => "consumer",
            None => CLASSIC_GROUP_TYPE,
        }
    }

    /// The state ListGroups shows: a consumer group's own, else the classic one.
    fn state_name(&self) -> &'static str {
        match &self.consumer {
            Some(cg) => cg.state_name(),
            None => self.state.name(),
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
mod tests;
