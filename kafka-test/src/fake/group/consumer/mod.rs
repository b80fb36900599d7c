//! The fake cluster's coordinator of consumer groups of the KIP-848 protocol
//! (`group.protocol=consumer`): ConsumerGroupHeartbeat (in [`heartbeat`]) with
//! server-side assignment ([`assignors`]: `uniform`, `range`), and
//! ConsumerGroupDescribe (in [`describe`]). A consumer group lives in the same map as
//! the classic groups and shares their committed offsets: OffsetCommit from a
//! consumer group's member carries its member id and member epoch (STALE_MEMBER_EPOCH
//! when the epoch is not the member's, UNKNOWN_MEMBER_ID for a member not in the
//! group).
//!
//! The rules followed are KIP-848's:
//!
//! - The group epoch is bumped when a member joins or leaves, or a subscription (topic
//!   names, regex, assignor) or the subscribed topics' metadata changes. When the group
//!   epoch is ahead of the target assignment epoch, the assignor computes a new target
//!   assignment for every member, at that epoch.
//! - Each member moves towards its target on its own heartbeats. Partitions it owns and
//!   must give up are revoked first: its epoch stays until it reports (owned topic
//!   partitions) that it no longer owns them, within its rebalance timeout or it is
//!   fenced. Then its epoch becomes the target epoch and it gets the target's
//!   partitions that no other member still owns (or is revoking); the rest follow on
//!   later heartbeats, once released.
//! - A heartbeat with an epoch that is neither the member's nor (with owned partitions
//!   that it still has) its previous epoch is fenced: FENCED_MEMBER_EPOCH; a member not
//!   in the group: UNKNOWN_MEMBER_ID.
//! - Epoch -1 leaves. A static member (instance id) leaves with epoch -2 keeping its
//!   assignment until its session times out; a new member with the same instance id
//!   takes over its epoch and assignment without a rebalance. While the static member
//!   is still there (not -2), a join with its instance id is UNRELEASED_INSTANCE_ID.
//! - A member that does not heartbeat within the session timeout
//!   (`group.consumer.session.timeout.ms`) is removed.

mod assignors;
mod describe;
mod heartbeat;

pub(crate) use assignors::Tp;

use super::*;
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use kafka_protocol::{RequestKind, ResponseKind, Uuid};
use std::collections::BTreeSet;

pub(crate) const STALE_MEMBER_EPOCH: i16 = ErrorCode::StaleMemberEpoch.code();
const FENCED_MEMBER_EPOCH: i16 = ErrorCode::FencedMemberEpoch.code();

/// Topics as the consumer group coordinator sees them: name to (id, partition count).
pub(crate) type TopicView = BTreeMap<String, (Uuid, i32)>;

/// The topics of the fake cluster, for a heartbeat (read before the groups are locked).
pub(crate) fn topics_of(cluster: &crate::fake::Cluster) -> TopicView {
    cluster
        .state()
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

/// Timeouts of consumer groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_timeout: GroupCoordinator::DEFAULT_CONSUMER_SESSION_TIMEOUT,
            heartbeat_interval: GroupCoordinator::DEFAULT_CONSUMER_HEARTBEAT_INTERVAL,
        }
    }
}

/// Where a member is in its reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    Stable,
    /// It must give up partitions before its epoch moves on.
    UnrevokedPartitions,
    /// It is at the target epoch, and waits for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub(crate) struct CgMember {
    id: String,
    /// Unique per member incarnation, for its timer.
    uid: u64,
    instance_id: Option<String>,
    rack: Option<String>,
    rebalance_timeout: Duration,
    names: Vec<String>,
    regex: Option<String>,
    assignor: Option<String>,
    epoch: i32,
    previous_epoch: i32,
    state: MemberState,
    /// The partitions it is told it owns.
    assigned: BTreeSet<Tp>,
    /// Partitions it still owns and must give up.
    revoking: BTreeSet<Tp>,
    /// The assignment last sent to it.
    last_sent: Option<BTreeSet<Tp>>,
    session_deadline: Instant,
    revoke_deadline: Option<Instant>,
}

/// The consumer-protocol part of a group.
#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, CgMember>,
    target: BTreeMap<String, BTreeSet<Tp>>,
    /// The subscribed topics' metadata the target was computed for.
    subscribed: BTreeMap<String, i32>,
    /// The assignor of the current target.
    assignor: String,
}

impl ConsumerGroup {
    /// Whether any member is in the group.
    pub(crate) fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// Empty, Assigning, Reconciling or Stable, as ConsumerGroupDescribe names them.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Whether a partition is free: no member other than `except` owns it or revokes it.
    fn is_free(&self, tp: &Tp, except: &str) -> bool {
        self.members
            .values()
            .filter(|m| m.id != except)
            .all(|m| !m.assigned.contains(tp) && !m.revoking.contains(tp))
    }

    /// The topics any member subscribes to, with their partition counts.
    fn subscribed_topics(&self, topics: &TopicView) -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        for m in self.members.values() {
            let re = m
                .regex
                .as_deref()
                .and_then(|r| regex::Regex::new(&anchored(r)).ok());
            for (name, (_, n)) in topics {
                if m.names.contains(name) || re.as_ref().is_some_and(|re| re.is_match(name)) {
                    out.insert(name.clone(), *n);
                }
            }
        }
        out
    }

    /// Recomputes the target assignment when the group epoch is ahead of it; a change
    /// of the subscribed topics' metadata bumps the group epoch, unless `bumped`
    /// says this heartbeat already did.
    fn maybe_assign(&mut self, topics: &TopicView, bumped: bool) {
        let subscribed = self.subscribed_topics(topics);
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            if !bumped {
                self.group_epoch += 1;
            }
        }
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let members: Vec<assignors::AssignorMember> = self
            .members
            .values()
            .map(|m| {
                let re = m
                    .regex
                    .as_deref()
                    .and_then(|r| regex::Regex::new(&anchored(r)).ok());
                assignors::AssignorMember {
                    id: m.id.clone(),
                    topics: self
                        .subscribed
                        .keys()
                        .filter(|t| {
                            m.names.contains(t) || re.as_ref().is_some_and(|re| re.is_match(t))
                        })
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        // The assignor most members ask for (the default when none does).
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let assignor = votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map_or(assignors::ASSIGNORS[0], |(name, _)| name)
            .to_owned();
        self.target = assignors::assign(&assignor, &members, &self.subscribed, &self.target);
        self.assignor = assignor;
        self.assignment_epoch = self.group_epoch;
        debug!(
            group_epoch = self.group_epoch,
            assignor = %self.assignor,
            "consumer group target assignment"
        );
    }

    /// Moves `member_id` towards its target (KIP-848's reconciliation); `owned` is what
    /// the member reported owning in this heartbeat, if it did.
    fn reconcile(&mut self, member_id: &str, owned: Option<&BTreeSet<Tp>>, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        let mut m = m.clone();
        if m.state == MemberState::UnrevokedPartitions {
            let still_owns = owned.is_none_or(|o| !o.is_disjoint(&m.revoking));
            if still_owns {
                // The target may have moved on meanwhile: revoke what it no longer has.
                let extra: BTreeSet<Tp> = m.assigned.difference(&target).cloned().collect();
                m.assigned.retain(|tp| target.contains(tp));
                m.revoking.extend(extra);
                self.members.insert(member_id.to_owned(), m);
                return;
            }
            m.revoking.clear();
            m.revoke_deadline = None;
            m.state = MemberState::Stable;
        }
        if m.state == MemberState::Stable && m.epoch == epoch && m.assigned == target {
            self.members.insert(member_id.to_owned(), m);
            return;
        }
        let revoke: BTreeSet<Tp> = m.assigned.difference(&target).cloned().collect();
        if !revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.revoking = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_deadline = Some(now + m.rebalance_timeout);
            self.members.insert(member_id.to_owned(), m);
            return;
        }
        let wanted: Vec<Tp> = target.difference(&m.assigned).cloned().collect();
        let mut unreleased = false;
        for tp in wanted {
            if self.is_free(&tp, member_id) {
                m.assigned.insert(tp);
            } else {
                unreleased = true;
            }
        }
        if m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        self.members.insert(member_id.to_owned(), m);
    }

    /// Removes a member; its partitions are free, and the group rebalances.
    fn remove(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }
}

/// Kafka matches a subscription regex against the whole topic name (RE2J `matches`).
fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}

/// OffsetCommit of a consumer group (KIP-848): by member id and member epoch; an empty
/// member id with epoch -1 commits as an admin tool would, only to an empty group.
pub(crate) fn validate_offset_commit(
    cg: &mut ConsumerGroup,
    epoch: i32,
    member_id: &str,
) -> Option<i16> {
    if member_id.is_empty() && epoch < 0 {
        return (!cg.members.is_empty()).then_some(UNKNOWN_MEMBER_ID);
    }
    let Some(m) = cg.members.get(member_id) else {
        return Some(UNKNOWN_MEMBER_ID);
    };
    (epoch != m.epoch).then_some(STALE_MEMBER_EPOCH)
}

/// TxnOffsetCommit of a consumer group: only what the request gives is checked.
pub(crate) fn validate_txn_offset_commit(
    cg: &ConsumerGroup,
    epoch: i32,
    member_id: &str,
) -> Option<i16> {
    if member_id.is_empty() {
        return None;
    }
    match cg.members.get(member_id) {
        None => Some(UNKNOWN_MEMBER_ID),
        Some(m) if epoch >= 0 && epoch != m.epoch => Some(STALE_MEMBER_EPOCH),
        Some(_) => None,
    }
}

/// The answer to a consumer group request sent to the wrong broker.
pub(crate) fn error_response(request: &RequestKind, code: ErrorCode) -> Option<ResponseKind> {
    use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as Cgd;
    use kafka_protocol::messages::ConsumerGroupDescribeResponse;
    match request {
        RequestKind::ConsumerGroupHeartbeat(_) => Some(
            ConsumerGroupHeartbeatResponse {
                error_code: code.code(),
                ..Default::default()
            }
            .into(),
        ),
        RequestKind::ConsumerGroupDescribe(r) => Some(
            ConsumerGroupDescribeResponse {
                groups: r
                    .group_ids
                    .iter()
                    .map(|g| Cgd {
                        group_id: g.clone(),
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into(),
        ),
        _ => None,
    }
}

impl GroupCoordinator {
    /// The fake's `group.consumer.session.timeout.ms` default: 45 s, as Kafka.
    pub const DEFAULT_CONSUMER_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
    /// The fake's `group.consumer.heartbeat.interval.ms` default: 250 ms (Kafka: 5 s),
    /// so that hand-overs in tests are quick.
    pub const DEFAULT_CONSUMER_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);

    /// Sets the session timeout and heartbeat interval of consumer groups (KIP-848).
    pub fn set_consumer_group_timeouts(&self, session_timeout: Duration, heartbeat: Duration) {
        let mut s = self
            .consumer_settings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        s.session_timeout = session_timeout;
        s.heartbeat_interval = heartbeat;
    }

    fn consumer_settings(&self) -> Settings {
        *self
            .consumer_settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A consumer group's epochs and its members' (member id, member epoch, assigned
    /// partitions), for tests: `(group epoch, assignment epoch, members)`.
    #[allow(clippy::type_complexity)]
    pub fn consumer_group(&self, group: &str) -> Option<(i32, i32, Vec<(String, i32, Vec<Tp>)>)> {
        let groups = self.lock();
        let cg = groups.get(group)?.consumer.as_ref()?;
        Some((
            cg.group_epoch,
            cg.assignment_epoch,
            cg.members
                .values()
                .map(|m| (m.id.clone(), m.epoch, m.assigned.iter().cloned().collect()))
                .collect(),
        ))
    }

    /// Expires a consumer group member whose session ends or who does not revoke in
    /// time; follows its deadlines as they move.
    fn spawn_consumer_member_timer(&self, group_id: &str, member_id: &str, uid: u64, at: Instant) {
        let (me, group_id, member_id) =
            (self.me.clone(), group_id.to_owned(), member_id.to_owned());
        tokio::spawn(async move {
            let mut at = at;
            loop {
                tokio::time::sleep_until(at).await;
                let Some(this) = me.upgrade() else { return };
                match this.on_consumer_member_timer(&group_id, &member_id, uid) {
                    Some(next) => at = next,
                    None => return,
                }
            }
        });
    }

    /// Fences a member that has not revoked what it must by `at` (its rebalance
    /// timeout), when that comes before its session's end.
    fn spawn_revoke_timer(&self, group_id: &str, member_id: &str, uid: u64, at: Instant) {
        let (me, group_id, member_id) =
            (self.me.clone(), group_id.to_owned(), member_id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some(this) = me.upgrade() else { return };
            let mut groups = this.lock();
            let Some(cg) = groups.get_mut(&group_id).and_then(|g| g.consumer.as_mut()) else {
                return;
            };
            let late = cg.members.get(&member_id).is_some_and(|m| {
                m.uid == uid && m.revoke_deadline.is_some_and(|d| d <= Instant::now())
            });
            if late {
                debug!(group_id = %group_id, member_id = %member_id, "did not revoke within the rebalance timeout: fenced");
                cg.remove(&member_id);
            }
        });
    }

    fn on_consumer_member_timer(
        &self,
        group_id: &str,
        member_id: &str,
        uid: u64,
    ) -> Option<Instant> {
        let mut groups = self.lock();
        let cg = groups.get_mut(group_id)?.consumer.as_mut()?;
        let m = cg.members.get(member_id).filter(|m| m.uid == uid)?;
        let now = Instant::now();
        let next = m
            .revoke_deadline
            .map_or(m.session_deadline, |r| r.min(m.session_deadline));
        if next > now {
            return Some(next);
        }
        let why = if m.session_deadline <= now {
            "session expired"
        } else {
            "did not revoke within the rebalance timeout"
        };
        debug!(group_id = %group_id, member_id = %member_id, epoch = m.epoch, "consumer group member {why}: fenced");
        cg.remove(member_id);
        None
    }
}

#[cfg(test)]
mod tests;
