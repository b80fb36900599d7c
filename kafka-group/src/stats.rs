//! The group consumer's statistics (librdkafka's `cgrp` object, with the consumer's
//! partitions and brokers), and the bookkeeping of its membership state.

use super::{lock, GroupConsumer, GroupProtocol, Inner};
use kafka_consumer::FetchPartitionStats;
use kafka_net::stats::{ClientStatistics, Every};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Where the member stands in its group (librdkafka's `join_state`, simplified).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupState {
    /// Not a member: before the first join, after leaving for exceeding
    /// `max_poll_interval` (until messages are asked for again), or after a failed
    /// rebalance (until the retry) (librdkafka `init`).
    #[default]
    Unjoined,
    /// Joining: JoinGroup (classic), or heartbeating with member epoch 0 (KIP-848)
    /// (librdkafka `wait-join`).
    Joining,
    /// Joined, waiting for SyncGroup's assignment (classic) (librdkafka `wait-sync`).
    Syncing,
    /// Applying a new assignment: committing and revoking, then assigning (librdkafka
    /// `wait-unassign-call`, `wait-assign-call`).
    Reconciling,
    /// A member with its assignment, heartbeating (librdkafka `steady`).
    Stable,
    /// Closed (left the group) or aborted.
    Closed,
}

/// The membership's bookkeeping, kept in the consumer's state.
#[derive(Debug, Default)]
pub(super) struct Tracking {
    state: GroupState,
    since: Option<Instant>,
    rebalances: u64,
    last_rebalance: Option<Instant>,
}

impl Tracking {
    /// Moves to `state` (the age restarts only when it changes).
    pub(super) fn set(&mut self, state: GroupState) {
        if self.state != state || self.since.is_none() {
            self.state = state;
            self.since = Some(Instant::now());
        }
    }

    /// A heartbeat made the member part of the group (KIP-848): stable, unless it
    /// is in the middle of a reconciliation.
    pub(super) fn joined(&mut self) {
        if matches!(self.state, GroupState::Unjoined | GroupState::Joining) {
            self.set(GroupState::Stable);
        }
    }

    /// A rebalance (classic: a join and sync round; KIP-848: a new assignment applied)
    /// completed: the member is stable.
    pub(super) fn rebalanced(&mut self) {
        self.rebalances += 1;
        self.last_rebalance = Some(Instant::now());
        self.set(GroupState::Stable);
    }
}

/// Moves the member to `state`.
pub(super) fn set_state(inner: &Inner, state: GroupState) {
    lock(&inner.state).tracking.set(state);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The member in its group (librdkafka's `cgrp`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupStats {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// The member id the coordinator knows the member by; empty when not a member.
    pub member_id: String,
    /// Where the member stands (librdkafka `join_state`).
    pub state: GroupState,
    /// Milliseconds since the member entered `state` (librdkafka `stateage`).
    pub state_age_ms: u64,
    /// The classic protocol's generation, or KIP-848's member epoch; -1 or 0 before
    /// the first join.
    pub generation: i32,
    /// `group.protocol`: `classic` or `consumer` (KIP-848).
    pub protocol: String,
    /// The assignor in use: the classic protocol the group chose (`range`,
    /// `cooperative-sticky`, ...), or KIP-848's `group.remote.assignor` when set.
    pub assignor: Option<String>,
    /// Partitions assigned now (librdkafka `assignment_size`).
    pub assignment_size: u64,
    /// Rebalances completed (librdkafka `rebalance_cnt`): classic join and sync
    /// rounds, or KIP-848 assignment changes applied.
    pub rebalances: u64,
    /// Milliseconds since the last completed rebalance; -1 before the first
    /// (librdkafka `rebalance_age`).
    pub rebalance_age_ms: i64,
}

/// A [`GroupConsumer`]'s snapshot: its group, its partitions and its brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupConsumerStatistics {
    /// The fetching client (the one given to `subscribe`) and its brokers
    /// (`client_id`, `time_ms`, `age_us`, `brokers`).
    #[serde(flatten)]
    pub client: ClientStatistics,
    /// The member's own client for group coordination (JoinGroup, SyncGroup,
    /// Heartbeat, ConsumerGroupHeartbeat, OffsetCommit) and its brokers.
    pub coordination: ClientStatistics,
    /// The member in its group (librdkafka `cgrp`).
    pub group: GroupStats,
    /// The assigned partitions, by topic then partition, with their committed offsets
    /// (what this member last committed or found committed).
    pub partitions: Vec<FetchPartitionStats>,
}

fn statistics(inner: &Inner) -> GroupConsumerStatistics {
    let fetched = inner.fetcher.statistics();
    let coordination = inner.membership.client.statistics();
    let config = &inner.config;
    let s = lock(&inner.state);
    let state = if inner.closed.load(Ordering::Acquire) {
        GroupState::Closed
    } else {
        s.tracking.state
    };
    let classic = config.group_protocol != GroupProtocol::Consumer;
    let group = GroupStats {
        group_id: config.group_id.clone(),
        instance_id: config.instance_id.clone(),
        member_id: s.identity.member_id.clone(),
        state,
        state_age_ms: s.tracking.since.map_or(0, |t| millis(t.elapsed())),
        generation: s.identity.generation,
        protocol: if classic { "classic" } else { "consumer" }.to_string(),
        assignor: if classic {
            s.identity.protocol.clone()
        } else {
            config.remote_assignor.clone()
        },
        assignment_size: s.assigned.len() as u64,
        rebalances: s.tracking.rebalances,
        rebalance_age_ms: s.tracking.last_rebalance.map_or(-1, |t| {
            i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
        }),
    };
    let partitions = fetched
        .partitions
        .into_iter()
        .filter(|p| s.assigned.contains(&(p.topic.clone(), p.partition)))
        .map(|mut p| {
            if let Some(c) = s.committed.get(&(p.topic.clone(), p.partition)) {
                p.committed_offset = *c;
            }
            p
        })
        .collect();
    GroupConsumerStatistics {
        client: fetched.client,
        coordination,
        group,
        partitions,
    }
}

impl GroupConsumer {
    /// A snapshot of the member: its group state, generation (or member epoch),
    /// member id, assignment and rebalances; its partitions' positions, committed
    /// offsets, high watermarks and lag; and its brokers (see [`kafka_net::stats`]).
    pub fn statistics(&self) -> GroupConsumerStatistics {
        statistics(&self.inner)
    }

    /// [`statistics`](Self::statistics) every `interval` (librdkafka
    /// `statistics.interval.ms`), as a stream that ends once the consumer is closed
    /// (`close` or `abort`; a dropped handle's membership goes on in the background,
    /// and so does the stream) (see [`kafka_net::stats::every`]).
    pub fn statistics_every(&self, interval: Duration) -> Every<GroupConsumerStatistics> {
        kafka_net::stats::every_while_open(
            interval,
            &self.inner,
            |inner| !inner.closed.load(Ordering::Acquire),
            statistics,
        )
    }
}
