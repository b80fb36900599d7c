//! The consumer group protocol of KIP-848 (`group.protocol=consumer`): membership by
//! ConsumerGroupHeartbeat, with the assignment computed by the coordinator.
//!
//! The member joins with epoch 0 and a member id of its own (ConsumerGroupHeartbeat v1;
//! v0 coordinators hand one out), its subscription (topic names, or the pattern sent
//! as a regex from v1, which the broker matches against whole topic names) and
//! optionally `group.remote.assignor`. It heartbeats every interval the coordinator
//! gives, always with its full state (rebalance timeout, subscription, owned
//! partitions), so a lost response costs nothing. When an assignment arrives, the
//! partitions no longer in it are revoked first (their done offsets committed, at the
//! member epoch the coordinator still holds), then the new ones assigned, and the
//! member heartbeats at once to report what it owns ([`reconcile`]). FENCED_MEMBER_EPOCH
//! and UNKNOWN_MEMBER_ID lose the partitions (no commit) and rejoin with epoch 0.
//! Leaving sends epoch -1, or -2 for a static member (`group.instance.id`), which keeps
//! its assignment on the coordinator until its session times out.

mod reconcile;

use super::{
    assign, commit_done, lock, lost_everything, revoke, subscribed, GroupConfig, GroupState, Inner,
    Topics,
};
use crate::error::{GroupError, GroupErrorKind};
use crate::GroupEvent;
use kafka_net::{Client, KafkaClient};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::{ApiKey, ErrorCode, StrBytes};
use reconcile::Tp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// `group.protocol`: which group membership protocol the consumer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// The classic protocol (JoinGroup, SyncGroup, Heartbeat; client-side assignors).
    #[default]
    Classic,
    /// KIP-848's consumer protocol (ConsumerGroupHeartbeat; the broker assigns). Needs
    /// a broker with ConsumerGroupHeartbeat (Kafka 4.0+); `subscribe` fails with an
    /// error naming the API and versions otherwise.
    Consumer,
    /// [`Consumer`](Self::Consumer) where the broker serves ConsumerGroupHeartbeat,
    /// else [`Classic`](Self::Classic): the documented fall-back, chosen once at
    /// `subscribe`.
    ConsumerOrClassic,
}

/// The coordinator key type of groups (FindCoordinator).
const GROUP_KEY: i8 = 0;

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_string())
}

/// Resolves `group.protocol` against the cluster: [`GroupProtocol::Consumer`] needs
/// ConsumerGroupHeartbeat (the error names the API and the versions on both sides);
/// [`GroupProtocol::ConsumerOrClassic`] becomes `Consumer` where the broker has it and
/// `Classic` (logged) where it does not.
pub(super) async fn resolve(
    client: &KafkaClient,
    mut config: GroupConfig,
) -> Result<GroupConfig, GroupError> {
    if config.group_protocol == GroupProtocol::Classic {
        return Ok(config);
    }
    match client.api_version(ApiKey::ConsumerGroupHeartbeat).await {
        Ok(_) => config.group_protocol = GroupProtocol::Consumer,
        Err(e) if config.group_protocol == GroupProtocol::ConsumerOrClassic => {
            tracing::info!(group = %config.group_id, error = %e, "the broker has no KIP-848 consumer protocol: using the classic one");
            config.group_protocol = GroupProtocol::Classic;
        }
        Err(e) => {
            return Err(GroupError::from(e).context(
                "group.protocol=consumer (KIP-848) needs ConsumerGroupHeartbeat (API key 68) on the broker",
            ))
        }
    }
    Ok(config)
}

/// A random member id (KIP-1082: the client chooses it), a version 4 UUID in Kafka's
/// base64 form.
fn new_member_id() -> String {
    let v = (rand::random::<u128>() & !(0xf_u128 << 76) & !(0x3_u128 << 62))
        | (0x4_u128 << 76)
        | (0x2_u128 << 62);
    base64_url(&v.to_be_bytes())
}

/// URL-safe base64 without padding, as Kafka prints UUIDs.
fn base64_url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The membership's state between heartbeats.
struct Member {
    member_id: String,
    epoch: i32,
    interval: Duration,
}

/// One heartbeat with the member's full state.
async fn heartbeat(
    inner: &Inner,
    me: &Member,
) -> Result<ConsumerGroupHeartbeatResponse, GroupError> {
    let client = &inner.membership.client;
    let version = client.api_version(ApiKey::ConsumerGroupHeartbeat).await?;
    let owned: BTreeSet<Tp> = lock(&inner.state).assigned.clone();
    let metadata = match client.cached_metadata() {
        Some(m) => m,
        None => client.refresh_metadata().await?,
    };
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &owned {
        by_topic.entry(t).or_default().push(*p);
    }
    let topic_partitions = by_topic
        .into_iter()
        .filter_map(|(t, partitions)| {
            Some(TopicPartitions {
                topic_id: metadata.topics.get(t)?.id,
                partitions,
                ..Default::default()
            })
        })
        .collect();
    let (names, regex) = match &inner.topics {
        Topics::Pattern(re) if version >= 1 => (None, Some(s(re.as_str()))),
        _ => (
            Some(subscribed(inner).await.iter().map(|t| s(t)).collect()),
            None,
        ),
    };
    let config = &inner.config;
    let mut request = ConsumerGroupHeartbeatRequest {
        group_id: s(&config.group_id),
        member_id: s(&me.member_id),
        member_epoch: me.epoch,
        instance_id: config.instance_id.as_deref().map(s),
        rack_id: config.rack.as_deref().map(s),
        rebalance_timeout_ms: config.max_poll_interval.as_millis().min(i32::MAX as u128) as i32,
        subscribed_topic_names: names,
        subscribed_topic_regex: regex,
        server_assignor: config.remote_assignor.as_deref().map(s),
        topic_partitions: Some(topic_partitions),
        ..Default::default()
    };
    request.retain_version(version);
    Ok(client.request(request).await?)
}

/// The partitions of an assignment, by name; ids the metadata does not know yet are
/// looked up once more.
async fn assignment_names(
    inner: &Inner,
    assignment: &kafka_protocol::messages::consumer_group_heartbeat_response::Assignment,
) -> Result<BTreeSet<Tp>, GroupError> {
    let client = &inner.membership.client;
    let mut metadata = client.cached_metadata();
    let known = |m: &Option<Arc<kafka_net::ClusterMetadata>>| {
        assignment.topic_partitions.iter().all(|t| {
            m.as_ref()
                .is_some_and(|m| m.topic_name(&t.topic_id).is_some())
        })
    };
    if !known(&metadata) {
        metadata = Some(client.refresh_metadata().await?);
    }
    let mut out = BTreeSet::new();
    for t in &assignment.topic_partitions {
        match metadata.as_ref().and_then(|m| m.topic_name(&t.topic_id)) {
            Some(name) => out.extend(t.partitions.iter().map(|p| (name.to_owned(), *p))),
            None => {
                tracing::debug!(group = %inner.config.group_id, "assigned a topic id the metadata does not know yet")
            }
        }
    }
    Ok(out)
}

/// Applies the coordinator's assignment: revoke first, then assign. True when the
/// member's partitions changed (it then heartbeats at once to say so).
async fn apply(inner: &Inner, target: BTreeSet<Tp>) -> Result<bool, GroupError> {
    let owned = lock(&inner.state).assigned.clone();
    let plan = reconcile::plan(&owned, &target);
    if plan.is_empty() {
        return Ok(false);
    }
    revoke(inner, plan.revoke, false).await;
    assign(inner, plan.assign).await?;
    Ok(true)
}

/// Commits `offsets` as `identity`; with the consumer protocol, a commit that meets
/// STALE_MEMBER_EPOCH (the epoch moved on between taking it and committing) is sent
/// again with the new epoch while the partitions are still the member's.
pub(super) async fn commit(
    inner: &Inner,
    mut identity: crate::membership::Identity,
    offsets: &BTreeMap<Tp, i64>,
) -> Result<(), GroupError> {
    let mut tries = 0;
    loop {
        match inner.membership.commit(&identity, offsets).await {
            Err(e)
                if e.code() == Some(ErrorCode::StaleMemberEpoch)
                    && inner.config.group_protocol == GroupProtocol::Consumer
                    && tries < 20 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let state = lock(&inner.state);
                if !offsets.keys().all(|k| state.assigned.contains(k)) {
                    return Err(e.context("committing: the partitions were revoked meanwhile"));
                }
                identity = state.identity.clone();
            }
            other => return other,
        }
    }
}

/// Leaves the group: epoch -1, or -2 for a static member.
pub(super) async fn leave(inner: &Inner) -> Result<(), GroupError> {
    let identity = lock(&inner.state).identity.clone();
    if identity.member_id.is_empty() {
        return Ok(());
    }
    let epoch = if inner.config.instance_id.is_some() {
        -2
    } else {
        -1
    };
    let me = Member {
        member_id: identity.member_id,
        epoch,
        interval: Duration::ZERO,
    };
    let response = heartbeat(inner, &me).await?;
    lock(&inner.state).identity.member_id.clear();
    match ErrorCode::from(response.error_code) {
        ErrorCode::None | ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch => Ok(()),
        code => {
            Err(GroupError::new(GroupErrorKind::Broker(code))
                .context("ConsumerGroupHeartbeat (leave)"))
        }
    }
}

fn set_identity(inner: &Inner, me: &Member) {
    let mut s = lock(&inner.state);
    s.identity.member_id = me.member_id.clone();
    s.identity.generation = me.epoch;
    if me.epoch > 0 {
        s.tracking.joined();
    }
}

/// The membership loop of the consumer protocol: heartbeats, reconciliation,
/// auto-commits and the poll interval.
pub(super) async fn run(inner: Arc<Inner>) {
    let config = &inner.config;
    let mut me = Member {
        member_id: new_member_id(),
        epoch: 0,
        interval: config.heartbeat_interval,
    };
    let mut next_commit = Instant::now() + config.auto_commit_interval;
    let mut backoff = Duration::from_millis(100);
    super::stats::set_state(&inner, GroupState::Joining);
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let (last_poll, left) = {
            let s = lock(&inner.state);
            (s.last_poll, s.left)
        };
        if left {
            // Waiting for the application to ask for messages again (then: rejoin).
            wait(&inner, config.heartbeat_interval).await;
            continue;
        }
        if me.epoch > 0 && last_poll.is_some_and(|t| t.elapsed() > config.max_poll_interval) {
            let reason = format!(
                "no messages were asked for in {:?} (max_poll_interval): leaving the group",
                config.max_poll_interval
            );
            tracing::warn!(group = %config.group_id, "{reason}");
            let all = lock(&inner.state).assigned.clone();
            revoke(&inner, all, false).await;
            let _ = leave(&inner).await;
            me.epoch = 0;
            {
                let mut s = lock(&inner.state);
                s.left = true;
                s.tracking.set(GroupState::Unjoined);
            }
            let _ = inner
                .events
                .send(GroupEvent::Error(GroupError::new(GroupErrorKind::Left(
                    reason,
                ))));
            continue;
        }
        let mut at_once = false;
        match heartbeat(&inner, &me).await {
            Ok(r) => match ErrorCode::from(r.error_code) {
                ErrorCode::None => {
                    backoff = Duration::from_millis(100);
                    if let Some(id) = r.member_id.as_ref().filter(|id| !id.is_empty()) {
                        me.member_id = id.to_string();
                    }
                    me.epoch = r.member_epoch;
                    if r.heartbeat_interval_ms > 0 {
                        me.interval = Duration::from_millis(r.heartbeat_interval_ms as u64);
                    }
                    set_identity(&inner, &me);
                    if let Some(a) = &r.assignment {
                        // A reconciliation: its own span, as a classic rebalance has.
                        let span = tracing::info_span!(
                            "rebalance",
                            group_id = %config.group_id,
                            member_id = %me.member_id,
                            generation = me.epoch,
                            protocol = "consumer",
                        );
                        super::stats::set_state(&inner, GroupState::Reconciling);
                        let applied = async {
                            match assignment_names(&inner, a).await {
                                Ok(target) => apply(&inner, target).await,
                                Err(e) => Err(e),
                            }
                        }
                        .instrument(span)
                        .await;
                        if applied.is_ok() {
                            lock(&inner.state).tracking.rebalanced();
                        }
                        match applied {
                            Ok(changed) => at_once = changed,
                            Err(e) => {
                                let _ = inner
                                    .events
                                    .send(GroupEvent::Error(e.context("applying the assignment")));
                            }
                        }
                    }
                }
                code @ (ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId) => {
                    tracing::info!(group = %config.group_id, member = %me.member_id, epoch = me.epoch, "fenced ({code}); rejoining");
                    lost_everything(&inner).await;
                    me.epoch = 0;
                    set_identity(&inner, &me);
                    super::stats::set_state(&inner, GroupState::Joining);
                    let _ = inner.events.send(GroupEvent::Error(
                        GroupError::new(GroupErrorKind::Broker(code))
                            .context("ConsumerGroupHeartbeat: the member was fenced and rejoins"),
                    ));
                    at_once = true;
                }
                code @ (ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress) => {
                    tracing::debug!(group = %config.group_id, "heartbeat: {code}");
                    inner
                        .membership
                        .client
                        .invalidate_coordinator(GROUP_KEY, &config.group_id);
                    sleep_backoff(&mut backoff).await;
                }
                code => {
                    let message = r.error_message.as_deref().unwrap_or("").to_string();
                    let mut e = GroupError::new(GroupErrorKind::Broker(code))
                        .context("ConsumerGroupHeartbeat");
                    if !message.is_empty() {
                        e = e.context(&message);
                    }
                    tracing::debug!(group = %config.group_id, error = %e, "heartbeat refused");
                    let _ = inner.events.send(GroupEvent::Error(e));
                    sleep_backoff(&mut backoff).await;
                }
            },
            Err(e) => {
                tracing::debug!(group = %config.group_id, error = %e, "heartbeat failed");
                inner
                    .membership
                    .client
                    .invalidate_coordinator(GROUP_KEY, &config.group_id);
                sleep_backoff(&mut backoff).await;
            }
        }
        if config.auto_commit && me.epoch > 0 && Instant::now() >= next_commit {
            next_commit = Instant::now() + config.auto_commit_interval;
            if let Err(e) = commit_done(&inner, None).await {
                let _ = inner
                    .events
                    .send(GroupEvent::Error(e.context("auto-commit")));
            }
        }
        if !at_once {
            wait(&inner, me.interval).await;
        }
    }
}

/// Sleeps up to `d`, or until woken (close).
async fn wait(inner: &Inner, d: Duration) {
    let _ = tokio::time::timeout(d, inner.wake.notified()).await;
}

async fn sleep_backoff(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_22_base64_characters() {
        let a = new_member_id();
        assert_eq!(a.len(), 22, "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, new_member_id());
        assert_eq!(base64_url(b"Man"), "TWFu");
        assert_eq!(base64_url(b"Ma"), "TWE");
    }
}
