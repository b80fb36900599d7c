//! [`GroupConsumer`]: a member of a consumer group that subscribes to topics (or a
//! pattern), takes part in rebalances (eager, or cooperative incremental as KIP-429),
//! fetches its partitions, tracks which messages are done, and commits.

use crate::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor, RebalanceProtocol};
use crate::error::{GroupError, GroupErrorKind};
use crate::membership::{Identity, Membership};
use crate::protocol::{Assignment, Subscription};
use crate::tracker::OffsetTracker;
use futures::Stream;
use kafka_consumer::{Fetcher, FetcherConfig, Message, StartOffset};
use kafka_net::{Client, ConsumerGroupMetadata, KafkaClient};
use kafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

#[path = "consumer_protocol/mod.rs"]
mod consumer_protocol;

pub use consumer_protocol::GroupProtocol;

#[path = "stats.rs"]
mod stats;

pub use stats::{GroupConsumerStatistics, GroupState, GroupStats};

/// What the group consumer subscribes to.
#[derive(Debug, Clone)]
pub enum Topics {
    /// These topics.
    Names(Vec<String>),
    /// Every topic whose name matches (rechecked when metadata is refreshed). With
    /// [`GroupProtocol::Consumer`] the pattern is sent to the broker, which matches it
    /// against whole topic names (Java's `Pattern.matches`).
    Pattern(regex::Regex),
}

impl Topics {
    /// Subscribes to the topics matching `pattern`; an error names the pattern and why
    /// it does not compile.
    pub fn pattern(pattern: &str) -> Result<Topics, GroupError> {
        regex::Regex::new(pattern)
            .map(Topics::Pattern)
            .map_err(|e| {
                GroupError::new(GroupErrorKind::Config(format!(
                    "topic pattern {pattern:?} does not compile: {e}"
                )))
            })
    }
}

/// Chooses the start of a partition that has no committed offset.
pub type StartFn = Arc<dyn Fn(&str, i32) -> StartOffset + Send + Sync>;

/// How the group consumer behaves. Fields name the Java client's property and default.
#[derive(Clone)]
#[non_exhaustive]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership. Default none.
    pub instance_id: Option<String>,
    /// `session.timeout.ms`. Default 45 s.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, also the rebalance timeout: a member that does not ask
    /// for messages for this long leaves the group (and says so). Default 5 min.
    pub max_poll_interval: Duration,
    /// `heartbeat.interval.ms`. Default 3 s.
    pub heartbeat_interval: Duration,
    /// `partition.assignment.strategy`, in preference order. Default range, then
    /// cooperative-sticky (the Java client's default).
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `enable.auto.commit`. Default true.
    pub auto_commit: bool,
    /// `auto.commit.interval.ms`. Default 5 s.
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` for partitions without a committed offset. Default latest.
    pub start: StartOffset,
    /// A function that picks the start instead (given topic and partition).
    pub start_fn: Option<StartFn>,
    /// Commit in order: `done(m)` covers every message before `m` too. Default false
    /// (messages may be done in any order; the commit is the end of the contiguous
    /// done prefix).
    pub in_order: bool,
    /// How partitions are fetched (also `OffsetReset` and max message age).
    pub fetcher: FetcherConfig,
    /// `client.rack`.
    pub rack: Option<String>,
    /// `group.protocol`. Default [`GroupProtocol::Classic`]; after `subscribe`,
    /// [`GroupProtocol::ConsumerOrClassic`] is resolved to the one in use.
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker's assignor for [`GroupProtocol::Consumer`]
    /// (`uniform`, `range`). Default none (the broker's default).
    pub remote_assignor: Option<String>,
}

impl std::fmt::Debug for GroupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConfig")
            .field("group_id", &self.group_id)
            .field("instance_id", &self.instance_id)
            .field("session_timeout", &self.session_timeout)
            .field("group_protocol", &self.group_protocol)
            .field(
                "assignors",
                &self.assignors.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl GroupConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            instance_id: None,
            session_timeout: Duration::from_secs(45),
            max_poll_interval: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignors: vec![Arc::new(RangeAssignor), Arc::new(CooperativeStickyAssignor)],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            start: StartOffset::Latest,
            start_fn: None,
            in_order: false,
            fetcher: FetcherConfig::default(),
            rack: None,
            group_protocol: GroupProtocol::Classic,
            remote_assignor: None,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), GroupError> {
        let bad = |m: &str| Err(GroupError::new(GroupErrorKind::Config(m.to_string())));
        if self.group_id.is_empty() {
            return bad("group_id must not be empty");
        }
        if self.assignors.is_empty() {
            return bad("at least one assignor is needed");
        }
        if self.heartbeat_interval >= self.session_timeout {
            return bad("heartbeat_interval must be below session_timeout");
        }
        let cooperative = self
            .assignors
            .iter()
            .filter(|a| a.protocol() == RebalanceProtocol::Cooperative)
            .count();
        if cooperative > 0
            && cooperative < self.assignors.len()
            && self.assignors[0].protocol() == RebalanceProtocol::Cooperative
        {
            // Java allows mixing only with an eager assignor first (the upgrade path).
            return bad("a cooperative assignor may only be mixed with eager ones listed first");
        }
        Ok(())
    }

    fn cooperative(&self) -> bool {
        self.assignors
            .iter()
            .all(|a| a.protocol() == RebalanceProtocol::Cooperative)
    }
}

/// What happened to the member's assignment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GroupEvent {
    /// These partitions were assigned; fetching starts at their committed offsets.
    Assigned(Vec<(String, i32)>),
    /// These partitions were taken away (after their offsets were committed).
    Revoked(Vec<(String, i32)>),
    /// These partitions were lost without a chance to commit (the member fell out of
    /// the generation).
    Lost(Vec<(String, i32)>),
    /// An error the consumer recovered from, or the reason it left the group.
    Error(GroupError),
}

/// Messages fetched and not yet handed out, per partition.
#[derive(Default)]
struct Buffers {
    queues: BTreeMap<(String, i32), VecDeque<Message>>,
    /// Partitions whose fetching is paused because nobody reads them.
    paused: BTreeSet<(String, i32)>,
    /// Where the merged stream looks first next time (round robin).
    cursor: usize,
}

/// Backlog of one partition after which it stops being fetched (per-partition reads).
const BACKLOG_PAUSE: usize = 5_000;

impl Buffers {
    /// The next message of `want`, or of any partition (round robin).
    fn pop(&mut self, want: Option<&(String, i32)>, fetcher: &Fetcher) -> Option<Message> {
        let key = match want {
            Some(k) => k.clone(),
            None => {
                let keys: Vec<&(String, i32)> = self
                    .queues
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(k, _)| k)
                    .collect();
                if keys.is_empty() {
                    return None;
                }
                self.cursor = (self.cursor + 1) % keys.len();
                keys[self.cursor].clone()
            }
        };
        let queue = self.queues.get_mut(&key)?;
        let m = queue.pop_front()?;
        if queue.len() < BACKLOG_PAUSE / 5 && self.paused.remove(&key) {
            fetcher.set_paused(&key.0, key.1, false);
        }
        Some(m)
    }
}

#[derive(Default)]
struct State {
    identity: Identity,
    assigned: BTreeSet<(String, i32)>,
    trackers: BTreeMap<(String, i32), OffsetTracker>,
    committed: BTreeMap<(String, i32), i64>,
    last_poll: Option<Instant>,
    left: bool,
    /// Membership state and rebalances, for the statistics.
    tracking: stats::Tracking,
}

struct Inner {
    membership: Membership,
    config: GroupConfig,
    topics: Topics,
    fetcher: Fetcher,
    state: Mutex<State>,
    buffer: tokio::sync::Mutex<Buffers>,
    events: mpsc::UnboundedSender<GroupEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<GroupEvent>>,
    wake: Notify,
    rejoin: AtomicBool,
    closed: AtomicBool,
    done: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A member of a consumer group.
#[derive(Clone)]
pub struct GroupConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl GroupConsumer {
    /// Joins `config.group_id`, subscribed to `topics`. Membership runs in the
    /// background; messages arrive through [`next`](Self::next).
    pub async fn subscribe(
        client: KafkaClient,
        topics: Topics,
        config: GroupConfig,
    ) -> Result<Self, GroupError> {
        config.validate()?;
        let fetcher = Fetcher::new(client.clone(), config.fetcher.clone())?;
        // The member's coordinator traffic gets connections of its own (see
        // `KafkaClient::fork`): members sharing a client must not queue their
        // JoinGroups behind each other.
        let client = client.fork().await?;
        let config = consumer_protocol::resolve(&client, config).await?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            membership: Membership {
                client,
                group: config.group_id.clone(),
                instance_id: config.instance_id.clone(),
                session_timeout: config.session_timeout,
                rebalance_timeout: config.max_poll_interval,
                assignors: config.assignors.clone(),
                require_stable: config.fetcher.fetch.isolation
                    == kafka_consumer::Isolation::ReadCommitted,
            },
            config,
            topics,
            fetcher,
            state: Mutex::new(State::default()),
            buffer: tokio::sync::Mutex::new(Buffers::default()),
            events,
            events_rx: tokio::sync::Mutex::new(events_rx),
            wake: Notify::new(),
            rejoin: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            done: Notify::new(),
        });
        if inner.config.group_protocol == GroupProtocol::Consumer {
            tokio::spawn(consumer_protocol::run(inner.clone()));
        } else {
            tokio::spawn(run(inner.clone()));
        }
        Ok(GroupConsumer { inner })
    }

    /// The next message of any assigned partition; `None` once closed. Cancel-safe.
    pub async fn next(&self) -> Option<Result<Message, GroupError>> {
        self.next_inner(None).await
    }

    /// The next message of one assigned partition (for one task or stream per
    /// partition); messages of other partitions fetched meanwhile wait for their
    /// readers, and a partition whose backlog grows past 5,000 messages stops being
    /// fetched until it is read. `None` once closed. Cancel-safe.
    pub async fn next_from(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<Result<Message, GroupError>> {
        self.next_inner(Some((topic.to_string(), partition))).await
    }

    /// One partition's messages as a stream (see [`next_from`](Self::next_from)).
    pub fn partition_stream(
        &self,
        topic: &str,
        partition: i32,
    ) -> impl Stream<Item = Result<Message, GroupError>> + '_ {
        let key = (topic.to_string(), partition);
        futures::stream::unfold((self, key), |(c, key)| async move {
            c.next_from(&key.0, key.1).await.map(|m| (m, (c, key)))
        })
    }

    async fn next_inner(&self, want: Option<(String, i32)>) -> Option<Result<Message, GroupError>> {
        let inner = &self.inner;
        let mut buffers = inner.buffer.lock().await;
        loop {
            if inner.closed.load(Ordering::Acquire) {
                return None;
            }
            {
                let mut state = lock(&inner.state);
                state.last_poll = Some(Instant::now());
                if state.left {
                    // Asking for messages again after leaving for slowness: rejoin.
                    state.left = false;
                    inner.rejoin.store(true, Ordering::Release);
                    inner.wake.notify_one();
                }
                while let Some(m) = buffers.pop(want.as_ref(), &inner.fetcher) {
                    let key = (m.topic.to_string(), m.partition);
                    if state.assigned.contains(&key) {
                        if let Some(t) = state.trackers.get_mut(&key) {
                            t.delivered(m.offset);
                        }
                        return Some(Ok(m));
                    }
                }
                buffers
                    .queues
                    .retain(|k, q| !q.is_empty() || state.assigned.contains(k));
            }
            let batch = tokio::select! {
                b = inner.fetcher.next_batch() => b,
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
            };
            match batch {
                None => return None,
                Some(Err(e)) => return Some(Err(e.into())),
                Some(Ok(batch)) => {
                    let topic: Arc<str> = Arc::from(batch.topic.as_str());
                    let key = (batch.topic.clone(), batch.partition);
                    let queue = buffers.queues.entry(key.clone()).or_default();
                    queue.extend(
                        batch
                            .records
                            .into_iter()
                            .map(|r| Message::from_record(topic.clone(), batch.partition, r)),
                    );
                    if queue.len() > BACKLOG_PAUSE && want.as_ref() != Some(&key) {
                        inner.fetcher.set_paused(&key.0, key.1, true);
                        buffers.paused.insert(key);
                    }
                }
            }
        }
    }

    /// The messages as a stream; it ends when the consumer is closed.
    pub fn stream(&self) -> impl Stream<Item = Result<Message, GroupError>> + '_ {
        futures::stream::unfold(self, |c| async move { c.next().await.map(|m| (m, c)) })
    }

    /// Marks a message as processed: its offset may be committed once every earlier
    /// delivered message of its partition is done too (or at once in in-order mode).
    pub fn done(&self, message: &Message) {
        let mut state = lock(&self.inner.state);
        if let Some(t) = state
            .trackers
            .get_mut(&(message.topic.to_string(), message.partition))
        {
            t.done(message.offset);
        }
    }

    /// Commits what is done now.
    pub async fn commit(&self) -> Result<(), GroupError> {
        commit_done(&self.inner, None).await
    }

    /// Commits these offsets (the next offset to read, per partition) now, whatever
    /// is marked done.
    pub async fn commit_offsets(
        &self,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), GroupError> {
        let identity = lock(&self.inner.state).identity.clone();
        self.inner.membership.commit(&identity, offsets).await?;
        lock(&self.inner.state)
            .committed
            .extend(offsets.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(())
    }

    /// The next assignment/revocation notification or recovered error.
    pub async fn event(&self) -> Option<GroupEvent> {
        self.inner.events_rx.lock().await.recv().await
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        lock(&self.inner.state).assigned.iter().cloned().collect()
    }

    /// The member id and generation.
    pub fn member(&self) -> (String, i32) {
        let s = lock(&self.inner.state);
        (s.identity.member_id.clone(), s.identity.generation)
    }

    /// Who this member is now (group, generation, member id, instance id), for a
    /// transactional producer's `send_offsets_to_transaction`: the group coordinator
    /// refuses offsets sent with a generation the member has left (KIP-447).
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        let s = lock(&self.inner.state);
        ConsumerGroupMetadata::member(
            self.inner.config.group_id.clone(),
            s.identity.generation,
            s.identity.member_id.clone(),
            self.inner.config.instance_id.clone(),
        )
    }

    /// Messages behind the end of an assigned partition, as of the last fetch.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        let hw = self.inner.fetcher.high_watermark(topic, partition);
        let pos = self.inner.fetcher.position(topic, partition)?;
        (hw >= 0).then(|| (hw - pos).max(0))
    }

    /// The lag of every assigned partition from this member's own positions (see
    /// [`lag`](Self::lag)), sorted; `None` for a partition not fetched yet. For the
    /// lag the group's committed offsets show, see `kafka_net::Admin::group_lag`.
    pub fn lags(&self) -> Vec<((String, i32), Option<i64>)> {
        let mut assigned = self.assignment();
        assigned.sort();
        assigned
            .into_iter()
            .map(|(t, p)| {
                let lag = self.lag(&t, p);
                ((t, p), lag)
            })
            .collect()
    }

    /// Commits what is done, leaves the group, and stops.
    pub async fn close(&self) -> Result<(), GroupError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.wake.notify_one();
        let result = commit_done(&self.inner, None).await;
        let identity = lock(&self.inner.state).identity.clone();
        let left = if self.inner.config.group_protocol == GroupProtocol::Consumer {
            consumer_protocol::leave(&self.inner).await
        } else {
            self.inner
                .membership
                .leave(&identity, "the consumer is closing")
                .await
        };
        self.inner.fetcher.close();
        self.inner.done.notify_waiters();
        result.and(left)
    }

    /// Leaves without committing or saying goodbye, as a crashed member would (for
    /// tests of failover).
    pub fn abort(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.fetcher.close();
        self.inner.wake.notify_one();
    }
}

/// The topics subscribed to now.
async fn subscribed(inner: &Inner) -> Vec<String> {
    match &inner.topics {
        Topics::Names(n) => n.clone(),
        Topics::Pattern(re) => match inner.membership.client.refresh_metadata().await {
            Ok(m) => m
                .topics
                .keys()
                .filter(|t| re.is_match(t))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        },
    }
}

async fn commit_done(
    inner: &Inner,
    only: Option<&BTreeSet<(String, i32)>>,
) -> Result<(), GroupError> {
    let (identity, offsets) = {
        let state = lock(&inner.state);
        let offsets: BTreeMap<(String, i32), i64> = state
            .trackers
            .iter()
            .filter(|(k, t)| only.is_none_or(|o| o.contains(*k)) && t.has_progressed())
            .map(|(k, t)| (k.clone(), t.committable()))
            .filter(|(k, o)| *o >= 0 && state.committed.get(k) != Some(o))
            .collect();
        (state.identity.clone(), offsets)
    };
    if offsets.is_empty() || identity.member_id.is_empty() {
        return Ok(());
    }
    consumer_protocol::commit(inner, identity, &offsets).await?;
    lock(&inner.state).committed.extend(offsets);
    Ok(())
}

/// Takes partitions away: commits them (unless lost), stops fetching them.
async fn revoke(inner: &Inner, partitions: BTreeSet<(String, i32)>, lost: bool) {
    if partitions.is_empty() {
        return;
    }
    if !lost {
        if let Err(e) = commit_done(inner, Some(&partitions)).await {
            let _ = inner.events.send(GroupEvent::Error(
                e.context("committing revoked partitions"),
            ));
        }
    }
    {
        let mut state = lock(&inner.state);
        for p in &partitions {
            state.assigned.remove(p);
            state.trackers.remove(p);
            state.committed.remove(p);
        }
    }
    for (t, p) in &partitions {
        inner.fetcher.unassign(t, *p);
    }
    let list: Vec<_> = partitions.into_iter().collect();
    tracing::info!(
        group_id = %inner.config.group_id,
        count = list.len(),
        partitions = ?list,
        lost,
        "partitions revoked"
    );
    let _ = inner.events.send(if lost {
        GroupEvent::Lost(list)
    } else {
        GroupEvent::Revoked(list)
    });
}

/// Starts fetching newly assigned partitions at their committed offsets.
async fn assign(inner: &Inner, partitions: BTreeSet<(String, i32)>) -> Result<(), GroupError> {
    if partitions.is_empty() {
        return Ok(());
    }
    let list: Vec<(String, i32)> = partitions.iter().cloned().collect();
    let committed = inner.membership.committed(&list).await?;
    {
        let mut state = lock(&inner.state);
        for key in &list {
            let start = match committed.get(key) {
                Some(o) => StartOffset::Offset(*o),
                None => match &inner.config.start_fn {
                    Some(f) => f(&key.0, key.1),
                    None => inner.config.start,
                },
            };
            inner.fetcher.assign(&key.0, key.1, start);
            let from = committed.get(key).copied().unwrap_or(-1);
            state
                .trackers
                .insert(key.clone(), OffsetTracker::new(from, inner.config.in_order));
            if from >= 0 {
                state.committed.insert(key.clone(), from);
            }
            state.assigned.insert(key.clone());
        }
    }
    tracing::info!(
        group_id = %inner.config.group_id,
        count = list.len(),
        partitions = ?list,
        "partitions assigned"
    );
    let _ = inner.events.send(GroupEvent::Assigned(list));
    Ok(())
}

/// One rebalance in a span of its own, `rebalance{group_id, member_id, generation,
/// protocol}` (member id and generation as the join gave them), which the
/// JoinGroup and SyncGroup requests and the assigned and revoked events are in.
async fn rebalance(inner: &Inner) -> Result<(), GroupError> {
    let identity = lock(&inner.state).identity.clone();
    let span = tracing::info_span!(
        "rebalance",
        group_id = %inner.config.group_id,
        member_id = %identity.member_id,
        generation = identity.generation,
        protocol = "classic",
    );
    stats::set_state(inner, GroupState::Joining);
    let result = join_and_sync(inner, &span).instrument(span.clone()).await;
    match &result {
        Ok(()) => lock(&inner.state).tracking.rebalanced(),
        Err(e) => {
            span.in_scope(|| tracing::info!(error = %e, "rebalance failed"));
            stats::set_state(inner, GroupState::Unjoined);
        }
    }
    result
}

/// One rebalance: join, (lead and) sync, apply the assignment.
async fn join_and_sync(inner: &Inner, span: &tracing::Span) -> Result<(), GroupError> {
    let cooperative = inner.config.cooperative();
    if !cooperative {
        // Eager: give everything back before joining.
        let all = lock(&inner.state).assigned.clone();
        revoke(inner, all, false).await;
    }
    let topics = subscribed(inner).await;
    let (mut identity, owned) = {
        let s = lock(&inner.state);
        let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &s.assigned {
            owned.entry(t.clone()).or_default().push(*p);
        }
        (s.identity.clone(), owned)
    };
    let subscription = Subscription {
        topics,
        user_data: None,
        owned_partitions: if cooperative { owned } else { BTreeMap::new() },
        generation: identity.generation,
        rack: inner.config.rack.clone(),
    };
    let members = match inner.membership.join(&mut identity, &subscription).await {
        Ok(m) => m,
        Err(e) => {
            if matches!(
                e.code(),
                Some(
                    ErrorCode::UnknownMemberId
                        | ErrorCode::IllegalGeneration
                        | ErrorCode::FencedInstanceId
                )
            ) {
                lost_everything(inner).await;
                lock(&inner.state).identity.member_id.clear();
            }
            return Err(e);
        }
    };
    lock(&inner.state).identity = identity.clone();
    span.record("member_id", identity.member_id.as_str());
    span.record("generation", identity.generation);
    stats::set_state(inner, GroupState::Syncing);
    let assignments = if identity.leader {
        inner.membership.assign(&identity, &members).await?
    } else {
        BTreeMap::new()
    };
    let mine: Assignment = inner.membership.sync(&identity, assignments).await?;
    let new: BTreeSet<(String, i32)> = mine
        .partitions
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect();
    let current = lock(&inner.state).assigned.clone();
    let revoked: BTreeSet<_> = current.difference(&new).cloned().collect();
    let added: BTreeSet<_> = new.difference(&current).cloned().collect();
    let follow_up = cooperative && !revoked.is_empty();
    stats::set_state(inner, GroupState::Reconciling);
    revoke(inner, revoked, false).await;
    assign(inner, added).await?;
    if follow_up {
        // KIP-429: what was revoked is handed over in a second rebalance.
        inner.rejoin.store(true, Ordering::Release);
    }
    Ok(())
}

async fn lost_everything(inner: &Inner) {
    let all = lock(&inner.state).assigned.clone();
    revoke(inner, all, true).await;
}

/// The membership loop: rebalances, heartbeats, auto-commits, the poll interval and
/// pattern rechecks.
async fn run(inner: Arc<Inner>) {
    let config = &inner.config;
    let mut next_commit = Instant::now() + config.auto_commit_interval;
    let mut next_pattern_check = Instant::now() + Duration::from_secs(5);
    let mut last_topics = subscribed(&inner).await;
    let mut backoff = Duration::from_millis(100);
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let waiting_to_rejoin = lock(&inner.state).left;
        if inner.rejoin.swap(false, Ordering::AcqRel) && !waiting_to_rejoin {
            if let Err(e) = rebalance(&inner).await {
                tracing::debug!(group = %config.group_id, error = %e, "rebalance failed; retrying");
                if !e.is_retriable()
                    && !matches!(
                        e.code(),
                        Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)
                    )
                {
                    let _ = inner.events.send(GroupEvent::Error(e));
                }
                inner.rejoin.store(true, Ordering::Release);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            backoff = Duration::from_millis(100);
        }
        let wake = inner.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if inner.rejoin.load(Ordering::Acquire) {
            continue;
        }
        let _ = tokio::time::timeout(config.heartbeat_interval, wake).await;
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let (identity, last_poll, left) = {
            let s = lock(&inner.state);
            (s.identity.clone(), s.last_poll, s.left)
        };
        if left {
            continue;
        }
        // A member that stopped asking for messages leaves, and says so.
        if last_poll.is_some_and(|t| t.elapsed() > config.max_poll_interval) {
            let reason = format!(
                "no messages were asked for in {:?} (max_poll_interval): leaving the group",
                config.max_poll_interval
            );
            tracing::warn!(group = %config.group_id, "{reason}");
            let all = lock(&inner.state).assigned.clone();
            revoke(&inner, all, false).await;
            let _ = inner.membership.leave(&identity, &reason).await;
            {
                let mut s = lock(&inner.state);
                s.left = true;
                s.identity.member_id.clear();
                s.tracking.set(GroupState::Unjoined);
            }
            let _ = inner
                .events
                .send(GroupEvent::Error(GroupError::new(GroupErrorKind::Left(
                    reason,
                ))));
            continue;
        }
        if identity.member_id.is_empty() {
            inner.rejoin.store(true, Ordering::Release);
            continue;
        }
        match inner.membership.heartbeat(&identity).await {
            Ok(()) => {}
            Err(e) => match e.code() {
                Some(ErrorCode::RebalanceInProgress) => inner.rejoin.store(true, Ordering::Release),
                Some(
                    ErrorCode::UnknownMemberId
                    | ErrorCode::IllegalGeneration
                    | ErrorCode::FencedInstanceId,
                ) => {
                    lost_everything(&inner).await;
                    if e.code() != Some(ErrorCode::FencedInstanceId)
                        || inner.config.instance_id.is_none()
                    {
                        lock(&inner.state).identity.member_id.clear();
                    }
                    let _ = inner.events.send(GroupEvent::Error(e));
                    inner.rejoin.store(true, Ordering::Release);
                }
                _ => tracing::debug!(group = %config.group_id, error = %e, "heartbeat failed"),
            },
        }
        if config.auto_commit && Instant::now() >= next_commit {
            next_commit = Instant::now() + config.auto_commit_interval;
            if let Err(e) = commit_done(&inner, None).await {
                let _ = inner
                    .events
                    .send(GroupEvent::Error(e.context("auto-commit")));
            }
        }
        if matches!(inner.topics, Topics::Pattern(_)) && Instant::now() >= next_pattern_check {
            next_pattern_check = Instant::now() + Duration::from_secs(5);
            let topics = subscribed(&inner).await;
            if topics != last_topics {
                last_topics = topics;
                inner.rejoin.store(true, Ordering::Release);
            }
        }
    }
}
