//! Partition assignors: how the group leader divides the subscribed topics' partitions
//! among the members.
//!
//! | Type | Name | Protocol | Matches |
//! |------|------|----------|---------|
//! | [`RangeAssignor`] | `range` | eager | Java `RangeAssignor` (without racks), librdkafka `range` |
//! | [`RoundRobinAssignor`] | `roundrobin` | eager | Java `RoundRobinAssignor`, librdkafka `roundrobin` |
//! | [`StickyAssignor`] | `sticky` | eager | Java `StickyAssignor` (user data compatible) |
//! | [`CooperativeStickyAssignor`] | `cooperative-sticky` | cooperative | Java `CooperativeStickyAssignor`, librdkafka `cooperative-sticky` |
//! | [`StableAssignor`] | `stable` | eager | sarama-consumer `stable` (user data compatible) |
//! | [`ConsistentAssignor`] | `consistent` | eager | consistent hashing of member identities |
//!
//! Range and round robin produce exactly the Java client's assignment for the same
//! input, so a group may mix this crate's members with Java ones. The sticky assignors
//! follow Java's rules (keep what is validly owned, the higher generation wins a
//! conflict, balance, then for the cooperative one withhold partitions that change
//! owner) but not Java's search, so the two may pick a different, equally balanced
//! and sticky, assignment; any member can lead.
//!
//! Every assignor is deterministic: the same members and partition counts give the same
//! assignment. Members are ordered as Java orders them: members with a group instance
//! id first, by instance id, then the others by member id. (librdkafka compares
//! instance ids only when both members have one, else member ids, so with a mix of
//! static and dynamic members its `range` and `roundrobin` can differ from Java's and
//! ours.)

use crate::protocol::Subscription;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::wire::Decoder;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

/// How a group moves partitions between members in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining (the classic protocol).
    Eager,
    /// Members keep their partitions across a rebalance and revoke only those assigned
    /// elsewhere; a partition changes owner over two rebalances (KIP-429).
    Cooperative,
}

/// One member of the group as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The member's `group.instance.id`, for static members.
    pub group_instance_id: Option<String>,
    /// The member's decoded subscription (its metadata for the chosen assignor).
    pub subscription: Subscription,
}

/// Partitions of one member: topic → partitions (ascending).
pub type MemberAssignment = BTreeMap<String, Vec<i32>>;

/// The assignment of a whole group: member id → its partitions.
pub type GroupAssignment = BTreeMap<String, MemberAssignment>;

/// Divides partitions among group members (the leader runs it between JoinGroup and
/// SyncGroup).
pub trait Assignor: Send + Sync + Debug {
    /// The protocol name sent in JoinGroup; members must share one to form a group.
    fn name(&self) -> &'static str;

    /// Whether the assignor's assignments follow the eager or the cooperative protocol.
    /// Eager unless the assignor says otherwise (as Java's `supportedProtocols`).
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }
    /// The user data a member puts in its subscription, given the partitions it was
    /// assigned last (`assigned`) and that assignment's generation (-1 when none).
    fn user_data(&self, assigned: &BTreeMap<String, Vec<i32>>, generation: i32) -> Option<Bytes> {
        let _ = (assigned, generation);
        None
    }

    /// Assigns the partitions of `partitions` (topic → partition count; topics nobody
    /// subscribes to, and counts ≤ 0, are ignored) to `members`. Every member gets an
    /// entry, possibly empty; a member only gets partitions of topics it subscribes to.
    /// Member ids are unique.
    fn assign(&self, members: &[MemberInfo], partitions: &BTreeMap<String, i32>)
        -> GroupAssignment;
}

/// The assignor called `name` (`range`, `roundrobin`, `sticky`, `cooperative-sticky`,
/// `stable`, `consistent`), the names the Java client, librdkafka and sarama-consumer
/// use.
pub fn by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    let assignor: Arc<dyn Assignor> = match name {
        "range" => Arc::new(RangeAssignor),
        "roundrobin" => Arc::new(RoundRobinAssignor),
        "sticky" => Arc::new(StickyAssignor),
        "cooperative-sticky" => Arc::new(CooperativeStickyAssignor),
        "stable" => Arc::new(StableAssignor),
        "consistent" => Arc::new(ConsistentAssignor),
        _ => return None,
    };
    Some(assignor)
}

// ---------------------------------------------------------------------------------
// Shared indexing

/// Java's `MemberInfo.compareTo`: static members first by instance id, then dynamic
/// ones by member id (the member id also breaks ties, which Java leaves to input
/// order).
fn java_order(a: &MemberInfo, b: &MemberInfo) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.member_id.cmp(&b.member_id))
}

/// A topic-partition by index: (topic index, partition).
type Tp = (usize, i32);

/// The input, indexed: members in Java order, topics that have a subscriber and
/// partitions, sorted by name.
struct Group<'a> {
    members: Vec<&'a MemberInfo>,
    topics: Vec<(&'a str, i32)>,
    topic_index: BTreeMap<&'a str, usize>,
    /// Per member: indices of the topics it subscribes to (sorted).
    subs: Vec<Vec<usize>>,
    /// Per topic: the members subscribing to it, in member order.
    subscribers: Vec<Vec<usize>>,
}

impl<'a> Group<'a> {
    fn new(members: &'a [MemberInfo], partitions: &'a BTreeMap<String, i32>) -> Self {
        let mut sorted: Vec<&MemberInfo> = members.iter().collect();
        sorted.sort_by(|a, b| java_order(a, b));
        let wanted: BTreeSet<&str> = sorted
            .iter()
            .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
            .collect();
        let topics: Vec<(&str, i32)> = partitions
            .iter()
            .filter(|(t, &n)| n > 0 && wanted.contains(t.as_str()))
            .map(|(t, &n)| (t.as_str(), n))
            .collect();
        let topic_index: BTreeMap<&str, usize> = topics
            .iter()
            .enumerate()
            .map(|(i, &(t, _))| (t, i))
            .collect();
        let mut subscribers = vec![Vec::new(); topics.len()];
        let subs = sorted
            .iter()
            .enumerate()
            .map(|(m, info)| {
                let mut ts: Vec<usize> = info
                    .subscription
                    .topics
                    .iter()
                    .filter_map(|t| topic_index.get(t.as_str()).copied())
                    .collect();
                ts.sort_unstable();
                ts.dedup();
                for &t in &ts {
                    subscribers[t].push(m);
                }
                ts
            })
            .collect();
        Group {
            members: sorted,
            topics,
            topic_index,
            subs,
            subscribers,
        }
    }

    fn subscribes(&self, member: usize, topic: usize) -> bool {
        self.subs[member].binary_search(&topic).is_ok()
    }

    /// Resolves a claimed (topic name, partition) to an index when the topic is
    /// assigned here and the partition exists.
    fn tp(&self, topic: &str, partition: i32) -> Option<Tp> {
        let &t = self.topic_index.get(topic)?;
        (0..self.topics[t].1)
            .contains(&partition)
            .then_some((t, partition))
    }

    /// The output: every member, its partitions grouped by topic name.
    fn output(&self, sets: &[BTreeSet<Tp>]) -> GroupAssignment {
        let mut out = GroupAssignment::new();
        for (m, info) in self.members.iter().enumerate() {
            let mut mine = MemberAssignment::new();
            // Sets are sorted by topic, then partition.
            for &(t, p) in &sets[m] {
                mine.entry(self.topics[t].0.to_owned()).or_default().push(p);
            }
            out.insert(info.member_id.clone(), mine);
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Range

/// Java's and librdkafka's `range`: per topic, the members subscribing to it in member
/// order each get a contiguous range of partitions; when the count does not divide,
/// the first `partitions % members` get one more.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        let group = Group::new(members, partitions);
        let mut sets = vec![BTreeSet::new(); group.members.len()];
        for (t, &(_, n)) in group.topics.iter().enumerate() {
            let subscribers = &group.subscribers[t];
            let m = subscribers.len() as i64;
            let (quota, extra) = (i64::from(n) / m, i64::from(n) % m);
            for (i, &member) in subscribers.iter().enumerate() {
                let i = i as i64;
                let start = quota * i + i.min(extra);
                let len = quota + i64::from(i < extra);
                for p in start..start + len {
                    // start + len <= n, which is an i32.
                    sets[member].insert((t, p as i32));
                }
            }
        }
        group.output(&sets)
    }
}

// ---------------------------------------------------------------------------------
// Round robin

/// Java's and librdkafka's `roundrobin`: all partitions sorted by topic then partition
/// are dealt to the members in member order, one each in turn, skipping a member not
/// subscribed to the partition's topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        let group = Group::new(members, partitions);
        let count = group.members.len();
        let mut sets = vec![BTreeSet::new(); count];
        let mut next = 0;
        for (t, &(_, n)) in group.topics.iter().enumerate() {
            for p in 0..n {
                // The topic has a subscriber, so one turn around the circle finds it.
                for _ in 0..count {
                    let member = next;
                    next = (next + 1) % count;
                    if group.subscribes(member, t) {
                        sets[member].insert((t, p));
                        break;
                    }
                }
            }
        }
        group.output(&sets)
    }
}

// ---------------------------------------------------------------------------------
// Sticky

/// Java's `StickyAssignor` (`sticky`), eager: a balanced assignment that keeps as many
/// of each member's previous partitions as it can.
///
/// A member's previous partitions are its subscription's owned partitions, or, when
/// it sends none (eager members revoke everything before rejoining, so Java sends
/// none), those in its user data, which is Java's `StickyAssignor` user data (the
/// previous assignment and its generation; [`user_data`](Assignor::user_data) writes
/// it). A claim counts when the member still subscribes to the topic and the partition
/// exists; when members claim the same partition the one with the highest generation
/// keeps it, and if several share the highest generation none does (as Java does).
///
/// Then partitions nobody keeps go one by one (by topic, then partition) to the least
/// loaded member subscribed to their topic, and partitions move from a member to one
/// subscribed to their topic with at least two fewer until no such move is left.
/// Members with the same subscriptions end with counts within one of each other.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    /// Java's `StickyAssignor` user data, version 1: the assignment and its generation;
    /// none before the first assignment.
    fn user_data(&self, assigned: &BTreeMap<String, Vec<i32>>, generation: i32) -> Option<Bytes> {
        if generation < 0 && assigned.values().all(Vec::is_empty) {
            return None;
        }
        Some(encode_sticky_user_data(assigned, generation))
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        sticky_assign(members, partitions, false)
    }
}

/// Java's and librdkafka's `cooperative-sticky`: the [`StickyAssignor`]'s assignment,
/// minus every partition it gives a member that does not own it while another member
/// still claims it. Those are left unassigned this round, so that their owner revokes
/// them; the follow-up rebalance the owner triggers hands them over (KIP-429).
///
/// Previous partitions and the generation come from the subscription (version 2+);
/// with an older subscription the generation comes from the user data, which is
/// Java's (the generation as an `int32`) or librdkafka's (the sticky user data).
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// Java's `CooperativeStickyAssignor` user data: the generation as an `int32`.
    fn user_data(&self, _assigned: &BTreeMap<String, Vec<i32>>, generation: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        sticky_assign(members, partitions, true)
    }
}

/// What a member says it owns, and since which generation.
struct Claims {
    owned: BTreeMap<String, Vec<i32>>,
    generation: i32,
}

/// The sticky assignors' reading of a subscription: the owned partitions and
/// generation fields when set, else the user data (Java's or librdkafka's sticky user
/// data, or Java's cooperative one, the generation alone).
fn sticky_claims(sub: &Subscription) -> Claims {
    let user = sub.user_data.as_ref().and_then(decode_sticky_user_data);
    let field_generation = (sub.generation >= 0).then_some(sub.generation);
    let has_owned = sub.owned_partitions.values().any(|ps| !ps.is_empty());
    match user {
        Some(StickyUserData {
            partitions: Some(partitions),
            generation,
        }) if !has_owned => Claims {
            owned: partitions,
            generation: generation.or(field_generation).unwrap_or(-1),
        },
        user => Claims {
            owned: sub.owned_partitions.clone(),
            generation: field_generation
                .or(user.and_then(|u| u.generation))
                .unwrap_or(-1),
        },
    }
}

struct StickyUserData {
    partitions: Option<BTreeMap<String, Vec<i32>>>,
    generation: Option<i32>,
}

/// Java's `StickyAssignor` user data v1: `[topic: string, partitions: [int32]]`, then
/// the generation as an `int32`.
fn encode_sticky_user_data(assigned: &BTreeMap<String, Vec<i32>>, generation: i32) -> Bytes {
    let topics: Vec<(&String, &Vec<i32>)> = assigned
        .iter()
        .filter(|(t, ps)| !ps.is_empty() && t.len() <= i16::MAX as usize)
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for &p in partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i32(generation);
    buf.freeze()
}

/// Reads sticky user data: exactly four bytes are Java's cooperative generation; else
/// Java's `StickyAssignor` v1, else v0 (no generation). `None` when it is neither.
fn decode_sticky_user_data(bytes: &Bytes) -> Option<StickyUserData> {
    if bytes.len() == 4 {
        let mut d = Decoder::new(bytes);
        return d.i32().ok().map(|g| StickyUserData {
            partitions: None,
            generation: Some(g),
        });
    }
    let mut d = Decoder::new(bytes);
    let partitions = read_topic_partitions(&mut d)?;
    let generation = d.i32().ok();
    Some(StickyUserData {
        partitions: Some(partitions),
        generation,
    })
}

fn read_topic_partitions(d: &mut Decoder<'_>) -> Option<BTreeMap<String, Vec<i32>>> {
    let n = d.array_len(false).ok()?;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for _ in 0..n {
        let topic = d.string(false).ok()?;
        let count = d.array_len(false).ok()?;
        let entry = out.entry(topic.as_str().to_owned()).or_default();
        for _ in 0..count {
            entry.push(d.i32().ok()?);
        }
    }
    Some(out)
}

/// Who keeps each claimed partition: the claimant with the highest generation, or
/// nobody when several share it. Only valid claims (existing partition, subscribed
/// topic) count.
fn resolve_owners(group: &Group<'_>, claims: &[Claims]) -> BTreeMap<Tp, usize> {
    // (generation, claimant; None once contested at that generation)
    let mut best: BTreeMap<Tp, (i32, Option<usize>)> = BTreeMap::new();
    for (m, claim) in claims.iter().enumerate() {
        let mut seen = HashSet::new();
        for (topic, partitions) in &claim.owned {
            for &p in partitions {
                let Some(tp) = group.tp(topic, p) else {
                    continue;
                };
                if !group.subscribes(m, tp.0) || !seen.insert(tp) {
                    continue;
                }
                let g = claim.generation;
                best.entry(tp)
                    .and_modify(|e| match g.cmp(&e.0) {
                        Ordering::Greater => *e = (g, Some(m)),
                        Ordering::Equal => e.1 = None,
                        Ordering::Less => {}
                    })
                    .or_insert((g, Some(m)));
            }
        }
    }
    best.into_iter()
        .filter_map(|(tp, (_, owner))| owner.map(|m| (tp, m)))
        .collect()
}

/// The state of a balancing assignment.
struct Balance<'g, 'a> {
    group: &'g Group<'a>,
    /// Per member: topic → partitions held.
    held: Vec<BTreeMap<usize, BTreeSet<i32>>>,
    /// Per member: partitions it got this round (cheapest to move again).
    fresh: Vec<BTreeSet<Tp>>,
    count: Vec<usize>,
    /// (count, member), to find the least and most loaded.
    by_count: BTreeSet<(usize, usize)>,
}

impl<'g, 'a> Balance<'g, 'a> {
    fn new(group: &'g Group<'a>) -> Self {
        let n = group.members.len();
        Balance {
            group,
            held: vec![BTreeMap::new(); n],
            fresh: vec![BTreeSet::new(); n],
            count: vec![0; n],
            by_count: (0..n).map(|m| (0, m)).collect(),
        }
    }

    fn set_count(&mut self, m: usize, count: usize) {
        self.by_count.remove(&(self.count[m], m));
        self.count[m] = count;
        self.by_count.insert((count, m));
    }

    fn add(&mut self, m: usize, tp: Tp, fresh: bool) {
        if self.held[m].entry(tp.0).or_default().insert(tp.1) {
            self.set_count(m, self.count[m] + 1);
        }
        if fresh {
            self.fresh[m].insert(tp);
        }
    }

    fn remove(&mut self, m: usize, tp: Tp) {
        if let Some(ps) = self.held[m].get_mut(&tp.0) {
            if ps.remove(&tp.1) {
                if ps.is_empty() {
                    self.held[m].remove(&tp.0);
                }
                self.set_count(m, self.count[m] - 1);
            }
        }
        self.fresh[m].remove(&tp);
    }

    /// The least loaded member subscribed to topic `t`.
    fn least_loaded(&self, t: usize) -> Option<usize> {
        self.by_count
            .iter()
            .map(|&(_, m)| m)
            .find(|&m| self.group.subscribes(m, t))
    }

    /// A partition `from` holds that `to` could take: one `from` got this round if
    /// possible, else the last partition of the shared topic `from` holds most of.
    fn pick(&self, from: usize, to: usize) -> Option<Tp> {
        if let Some(&tp) = self.fresh[from]
            .iter()
            .find(|tp| self.group.subscribes(to, tp.0))
        {
            return Some(tp);
        }
        let (&t, ps) = self.held[from]
            .iter()
            .filter(|(t, _)| self.group.subscribes(to, **t))
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(a.0)))?;
        Some((t, *ps.iter().next_back()?))
    }

    /// Moves partitions from a member to one subscribed to their topic holding at
    /// least two fewer, until there is no such move. Each move lowers the sum of
    /// squared counts, so this ends.
    fn rebalance(&mut self) {
        loop {
            let mut found = None;
            'search: for &(low, to) in &self.by_count {
                for &(high, from) in self.by_count.iter().rev() {
                    if high < low + 2 {
                        break;
                    }
                    if let Some(tp) = self.pick(from, to) {
                        found = Some((from, to, tp));
                        break 'search;
                    }
                }
            }
            let Some((from, to, tp)) = found else { return };
            self.remove(from, tp);
            self.add(to, tp, true);
        }
    }

    fn held(&self, m: usize) -> impl Iterator<Item = Tp> + '_ {
        self.held[m]
            .iter()
            .flat_map(|(&t, ps)| ps.iter().map(move |&p| (t, p)))
    }
}

fn sticky_assign(
    members: &[MemberInfo],
    partitions: &BTreeMap<String, i32>,
    cooperative: bool,
) -> GroupAssignment {
    let group = Group::new(members, partitions);
    let claims: Vec<Claims> = group
        .members
        .iter()
        .map(|m| sticky_claims(&m.subscription))
        .collect();
    let owners = resolve_owners(&group, &claims);

    let mut state = Balance::new(&group);
    for (&tp, &m) in &owners {
        state.add(m, tp, false);
    }
    for (t, &(_, n)) in group.topics.iter().enumerate() {
        for p in 0..n {
            if !owners.contains_key(&(t, p)) {
                if let Some(m) = state.least_loaded(t) {
                    state.add(m, (t, p), true);
                }
            }
        }
    }
    state.rebalance();

    let mut sets: Vec<BTreeSet<Tp>> = (0..group.members.len())
        .map(|m| state.held(m).collect())
        .collect();
    if cooperative {
        // Everything any member says it owns (valid or not: it holds it until it
        // revokes it).
        let claimed: Vec<HashSet<(&str, i32)>> = claims
            .iter()
            .map(|c| {
                c.owned
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.as_str(), p)))
                    .collect()
            })
            .collect();
        let all: HashSet<(&str, i32)> = claimed.iter().flatten().copied().collect();
        for (m, set) in sets.iter_mut().enumerate() {
            set.retain(|&(t, p)| {
                let key = (group.topics[t].0, p);
                claimed[m].contains(&key) || !all.contains(&key)
            });
        }
    }
    group.output(&sets)
}

// ---------------------------------------------------------------------------------
// Stable (sarama-consumer)

/// sarama-consumer's `stable`, per topic: each member keeps up to `ceil(n/m)` of the
/// partitions it had; the partitions nobody kept (those of departed members and any
/// beyond that cap) go first to members below `floor(n/m)`, then members still below
/// it take the last partitions of the most loaded, then what is left goes to members
/// below `ceil(n/m)`. So a rejoining member keeps its partitions and a new member takes
/// as few as balance needs. Ties go to the member with the fewest partitions over the
/// topics assigned so far (sarama leaves them to map order), then member order.
///
/// A member's partitions are its subscription's owned partitions, or, when it sends
/// none, sarama-consumer's user data (which [`user_data`](Assignor::user_data)
/// writes). When members claim the same partition the highest generation keeps it,
/// then member order.
#[derive(Debug, Clone, Copy, Default)]
pub struct StableAssignor;

impl Assignor for StableAssignor {
    fn name(&self) -> &'static str {
        "stable"
    }

    /// sarama-consumer's stable user data: version byte 1, then the assignment as
    /// uvarint-counted topics (uvarint-length names) with zig-zag varint partitions.
    fn user_data(&self, assigned: &BTreeMap<String, Vec<i32>>, _generation: i32) -> Option<Bytes> {
        Some(encode_stable_user_data(assigned))
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        let group = Group::new(members, partitions);
        let n_members = group.members.len();
        let claims: Vec<BTreeMap<String, Vec<i32>>> = group
            .members
            .iter()
            .map(|m| {
                let sub = &m.subscription;
                if sub.owned_partitions.values().any(|ps| !ps.is_empty()) {
                    sub.owned_partitions.clone()
                } else {
                    sub.user_data
                        .as_ref()
                        .and_then(decode_stable_user_data)
                        .unwrap_or_default()
                }
            })
            .collect();

        let mut sets = vec![BTreeSet::new(); n_members];
        let mut total = vec![0usize; n_members];
        for (t, &(topic, n)) in group.topics.iter().enumerate() {
            let subscribers = &group.subscribers[t];
            let m = subscribers.len();
            let n_usize = n as usize;
            let low = n_usize / m;
            let high = n_usize.div_ceil(m);

            // Who keeps what: highest generation, then member order (subscribers are
            // in member order, so the first claimant at a generation wins).
            let mut owner: Vec<Option<(i32, usize)>> = vec![None; n_usize];
            for &member in subscribers {
                let generation = group.members[member].subscription.generation;
                for &p in claims[member].get(topic).into_iter().flatten() {
                    if !(0..n).contains(&p) {
                        continue;
                    }
                    let slot = &mut owner[p as usize];
                    if slot.is_none_or(|(g, _)| generation > g) {
                        *slot = Some((generation, member));
                    }
                }
            }
            let mut mine: BTreeMap<usize, Vec<i32>> =
                subscribers.iter().map(|&s| (s, Vec::new())).collect();
            for (p, o) in owner.iter().enumerate() {
                if let Some((_, member)) = o {
                    if let Some(ps) = mine.get_mut(member) {
                        // Ascending, so a member over the cap keeps its lowest.
                        if ps.len() < high {
                            ps.push(p as i32);
                        }
                    }
                }
            }
            let kept: HashSet<i32> = mine.values().flatten().copied().collect();
            let mut unassigned = (0..n)
                .filter(|p| !kept.contains(p))
                .collect::<Vec<_>>()
                .into_iter();

            let least = |mine: &BTreeMap<usize, Vec<i32>>, below: usize| {
                subscribers
                    .iter()
                    .copied()
                    .filter(|s| mine[s].len() < below)
                    .min_by_key(|&s| (mine[&s].len(), total[s], s))
            };
            // 1. To members below the floor.
            let mut rest = Vec::new();
            for p in unassigned.by_ref() {
                match least(&mine, low) {
                    Some(s) => mine.entry(s).or_default().push(p),
                    None => {
                        rest.push(p);
                        break;
                    }
                }
            }
            rest.extend(unassigned);
            // 2. Members still below the floor take from the most loaded.
            while let Some(to) = least(&mine, low) {
                let from = subscribers
                    .iter()
                    .copied()
                    .max_by_key(|&s| (mine[&s].len(), std::cmp::Reverse(s)));
                let Some(from) = from.filter(|f| mine[f].len() > low) else {
                    break;
                };
                let Some(p) = mine.get_mut(&from).and_then(Vec::pop) else {
                    break;
                };
                mine.entry(to).or_default().push(p);
            }
            // 3. The rest to members below the ceiling.
            for p in rest {
                if let Some(s) = least(&mine, high) {
                    mine.entry(s).or_default().push(p);
                }
            }
            for (s, ps) in mine {
                total[s] += ps.len();
                sets[s].extend(ps.into_iter().map(|p| (t, p)));
            }
        }
        group.output(&sets)
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn encode_stable_user_data(assigned: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(1);
    put_uvarint(&mut buf, assigned.len() as u64);
    for (topic, partitions) in assigned {
        put_uvarint(&mut buf, topic.len() as u64);
        buf.put_slice(topic.as_bytes());
        put_uvarint(&mut buf, partitions.len() as u64);
        for &p in partitions {
            // Go's binary.PutVarint: zig-zag.
            let p = i64::from(p);
            put_uvarint(&mut buf, ((p << 1) ^ (p >> 63)) as u64);
        }
    }
    buf.freeze()
}

fn decode_stable_user_data(bytes: &Bytes) -> Option<BTreeMap<String, Vec<i32>>> {
    let (&version, mut rest) = bytes.split_first()?;
    if version != 1 {
        return None;
    }
    fn uvarint(rest: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, tail) = rest.split_first()?;
            *rest = tail;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let topics = uvarint(&mut rest)?;
    for _ in 0..topics {
        let len = usize::try_from(uvarint(&mut rest)?).ok()?;
        if len > rest.len() {
            return None;
        }
        let (name, tail) = rest.split_at(len);
        rest = tail;
        let topic = std::str::from_utf8(name).ok()?.to_owned();
        let count = uvarint(&mut rest)?;
        // Every partition takes at least one byte.
        if count > rest.len() as u64 {
            return None;
        }
        let entry = out.entry(topic).or_default();
        for _ in 0..count {
            let z = uvarint(&mut rest)?;
            let p = ((z >> 1) as i64) ^ -((z & 1) as i64);
            entry.push(i32::try_from(p).ok()?);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------
// Consistent hashing

/// `consistent`: partitions go to members by consistent hashing of each member's
/// group instance id (its member id when it has none), so an assignment changes little
/// when members come and go; with static members (`group.instance.id`) a restarted
/// member gets the same partitions back without any state.
///
/// Per topic, each subscribed member has 128 points on a hash ring; partition `p`
/// hashes to a point and goes to the first member clockwise that is below its
/// capacity. Capacities make the assignment balanced: `n / m` each, one more for the
/// first `n % m` members ordered by the hash of their identity. The hash of a partition
/// depends only on its number, so topics with the same partition count and the same
/// subscribers are assigned identically (co-partitioned, like sarama-consumer's
/// `stable&consistent`). Owned partitions and user data are not used.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsistentAssignor;

const POINTS_PER_MEMBER: u32 = 128;

/// The hash ring of one set of subscribers.
struct Ring {
    /// (point, member), sorted.
    points: Vec<(u64, usize)>,
    /// The subscribers by the hash of their identity: the first `n % m` get one more.
    by_hash: Vec<usize>,
}

/// FNV-1a 64, then the splitmix64 finalizer to spread the bits. Fixed forever: members
/// of different versions may lead the same group.
fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Assignor for ConsistentAssignor {
    fn name(&self) -> &'static str {
        "consistent"
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        let group = Group::new(members, partitions);
        let keys: Vec<&str> = group
            .members
            .iter()
            .map(|m| m.group_instance_id.as_deref().unwrap_or(&m.member_id))
            .collect();
        let mut sets = vec![BTreeSet::new(); group.members.len()];
        // Rings, shared by topics with the same subscribers.
        let mut rings: BTreeMap<&[usize], Ring> = BTreeMap::new();
        for (t, &(_, n)) in group.topics.iter().enumerate() {
            let subscribers = group.subscribers[t].as_slice();
            let Ring {
                points: ring,
                by_hash,
            } = rings.entry(subscribers).or_insert_with(|| {
                let mut ring = Vec::with_capacity(subscribers.len() * POINTS_PER_MEMBER as usize);
                for &s in subscribers {
                    for i in 0..POINTS_PER_MEMBER {
                        ring.push((
                            hash64(&[b"member", keys[s].as_bytes(), &i.to_be_bytes()]),
                            s,
                        ));
                    }
                }
                ring.sort_unstable();
                let mut by_hash = subscribers.to_vec();
                by_hash.sort_by_key(|&s| (hash64(&[b"member", keys[s].as_bytes()]), s));
                Ring {
                    points: ring,
                    by_hash,
                }
            });
            let m = subscribers.len();
            let n_usize = n as usize;
            let mut capacity = vec![0usize; group.members.len()];
            for (rank, &s) in by_hash.iter().enumerate() {
                capacity[s] = n_usize / m + usize::from(rank < n_usize % m);
            }
            let mut load = vec![0usize; group.members.len()];
            for p in 0..n {
                let h = hash64(&[b"partition", &p.to_be_bytes()]);
                let start = ring.partition_point(|&(x, _)| x < h);
                // Capacities add up to n, so someone below capacity is on the ring.
                let owner = (0..ring.len())
                    .map(|i| ring[(start + i) % ring.len()].1)
                    .find(|&s| load[s] < capacity[s]);
                if let Some(s) = owner {
                    load[s] += 1;
                    sets[s].insert((t, p));
                }
            }
        }
        group.output(&sets)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn member(id: &str, topics: &[&str]) -> MemberInfo {
        MemberInfo {
            member_id: id.to_owned(),
            group_instance_id: None,
            subscription: Subscription::new(topics.iter().copied()),
        }
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|&(t, n)| (t.to_owned(), n)).collect()
    }

    fn ma(list: &[(&str, &[i32])]) -> MemberAssignment {
        list.iter()
            .map(|&(t, ps)| (t.to_owned(), ps.to_vec()))
            .collect()
    }

    fn all_assignors() -> Vec<Arc<dyn Assignor>> {
        [
            "range",
            "roundrobin",
            "sticky",
            "cooperative-sticky",
            "stable",
            "consistent",
        ]
        .iter()
        .map(|n| by_name(n).unwrap())
        .collect()
    }

    #[test]
    fn by_name_knows_every_assignor() {
        for a in all_assignors() {
            assert_eq!(by_name(a.name()).unwrap().name(), a.name());
        }
        assert!(by_name("nope").is_none());
        assert_eq!(
            by_name("cooperative-sticky").unwrap().protocol(),
            RebalanceProtocol::Cooperative
        );
        assert_eq!(
            by_name("sticky").unwrap().protocol(),
            RebalanceProtocol::Eager
        );
    }

    #[test]
    fn range_matches_the_java_example() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let out = RangeAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(out["C0"], ma(&[("t0", &[0, 1]), ("t1", &[0, 1])]));
        assert_eq!(out["C1"], ma(&[("t0", &[2]), ("t1", &[2])]));
    }

    #[test]
    fn range_per_topic_subscribers_and_static_members_first() {
        // Java: static members sort before dynamic ones, by instance id.
        let mut a = member("a", &["t0"]);
        let mut b = member("b", &["t0", "t1"]);
        let c = member("c", &["t0"]);
        b.group_instance_id = Some("z".into());
        a.group_instance_id = Some("y".into());
        let out = RangeAssignor.assign(&[c, b, a], &counts(&[("t0", 7), ("t1", 2), ("t2", 5)]));
        // Order a(y), b(z), c: 7 = 3 + 2 + 2.
        assert_eq!(out["a"], ma(&[("t0", &[0, 1, 2])]));
        assert_eq!(out["b"], ma(&[("t0", &[3, 4]), ("t1", &[0, 1])]));
        assert_eq!(out["c"], ma(&[("t0", &[5, 6])]));
    }

    #[test]
    fn roundrobin_matches_the_java_examples() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let out = RoundRobinAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(out["C0"], ma(&[("t0", &[0, 2]), ("t1", &[1])]));
        assert_eq!(out["C1"], ma(&[("t0", &[1]), ("t1", &[0, 2])]));

        // Java's javadoc example with unequal subscriptions: C0 [t0], C1 [t0, t1],
        // C2 [t0, t1, t2]; t0 1, t1 2, t2 3 partitions.
        let members = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let out = RoundRobinAssignor.assign(&members, &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(out["C0"], ma(&[("t0", &[0])]));
        assert_eq!(out["C1"], ma(&[("t1", &[0])]));
        assert_eq!(out["C2"], ma(&[("t1", &[1]), ("t2", &[0, 1, 2])]));
    }

    #[test]
    fn unknown_topics_and_empty_groups() {
        for a in all_assignors() {
            assert!(a.assign(&[], &counts(&[("t", 3)])).is_empty());
            let members = [member("m", &["missing"]), member("n", &[])];
            let out = a.assign(&members, &counts(&[("t", 3), ("missing", 0)]));
            assert_eq!(out.len(), 2, "{}", a.name());
            assert!(out.values().all(BTreeMap::is_empty), "{}", a.name());
        }
    }

    #[test]
    fn sticky_fresh_group_deals_like_roundrobin() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let p = counts(&[("t0", 3), ("t1", 3)]);
        assert_eq!(
            StickyAssignor.assign(&members, &p),
            RoundRobinAssignor.assign(&members, &p)
        );
    }

    fn owning(mut m: MemberInfo, owned: &MemberAssignment, generation: i32) -> MemberInfo {
        m.subscription.owned_partitions = owned.clone();
        m.subscription.generation = generation;
        m
    }

    #[test]
    fn higher_generation_wins_a_conflict() {
        let p = counts(&[("t", 4)]);
        for a in [
            &StickyAssignor as &dyn Assignor,
            &CooperativeStickyAssignor,
            &StableAssignor,
        ] {
            let members = [
                owning(member("a", &["t"]), &ma(&[("t", &[0, 1])]), 3),
                owning(member("b", &["t"]), &ma(&[("t", &[0, 1, 2, 3])]), 4),
            ];
            let out = a.assign(&members, &p);
            // b keeps 0 and 1 against a's older claim, then gives two away to balance.
            let b = &out["b"]["t"];
            assert_eq!(b.len(), 2, "{}", a.name());
            if a.protocol() == RebalanceProtocol::Eager {
                assert_eq!(out["a"]["t"].len(), 2, "{}", a.name());
                assert!(!out["a"]["t"].contains(&0) || !b.contains(&0));
            }
        }
        // With a's generation higher, a keeps 0 and 1 and b keeps 2 and 3.
        let members = [
            owning(member("a", &["t"]), &ma(&[("t", &[0, 1])]), 5),
            owning(member("b", &["t"]), &ma(&[("t", &[0, 1, 2, 3])]), 4),
        ];
        for a in [
            &StickyAssignor as &dyn Assignor,
            &CooperativeStickyAssignor,
            &StableAssignor,
        ] {
            let out = a.assign(&members, &p);
            assert_eq!(out["a"], ma(&[("t", &[0, 1])]), "{}", a.name());
            assert_eq!(out["b"], ma(&[("t", &[2, 3])]), "{}", a.name());
        }
    }

    #[test]
    fn same_generation_conflict_is_owned_by_nobody() {
        let p = counts(&[("t", 2)]);
        let members = [
            owning(member("a", &["t"]), &ma(&[("t", &[0])]), 2),
            owning(member("b", &["t"]), &ma(&[("t", &[0, 1])]), 2),
        ];
        // Partition 0 is contested: b keeps 1, 0 goes to the least loaded (a); in the
        // cooperative case a claims it too, so it is not withheld.
        for a in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
            let out = a.assign(&members, &p);
            assert_eq!(out["a"], ma(&[("t", &[0])]));
            assert_eq!(out["b"], ma(&[("t", &[1])]));
        }
    }

    #[test]
    fn cooperative_withholds_partitions_that_change_owner() {
        let p = counts(&[("t", 4)]);
        let members = [
            owning(member("a", &["t"]), &ma(&[("t", &[0, 1, 2, 3])]), 1),
            member("b", &["t"]),
        ];
        let eager = StickyAssignor.assign(&members, &p);
        assert_eq!(eager["a"]["t"].len(), 2);
        assert_eq!(eager["b"]["t"].len(), 2);
        let coop = CooperativeStickyAssignor.assign(&members, &p);
        assert_eq!(coop["a"], eager["a"], "a keeps what it keeps");
        assert!(coop["b"].is_empty(), "b waits until a has revoked");
        // Round two: a owns what it was given.
        let members = [
            owning(member("a", &["t"]), &coop["a"], 2),
            owning(member("b", &["t"]), &coop["b"], 2),
        ];
        let coop2 = CooperativeStickyAssignor.assign(&members, &p);
        assert_eq!(coop2, eager);
    }

    #[test]
    fn sticky_user_data_round_trips_and_is_read_when_owned_is_empty() {
        let assigned = ma(&[("t", &[1, 3]), ("u", &[0])]);
        let ud = StickyAssignor.user_data(&assigned, 9).unwrap();
        // Java's layout: [topic, [partition]], generation.
        let mut hand = vec![0, 0, 0, 2, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
        hand.extend_from_slice(&[0, 1, b'u', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(ud, Bytes::from(hand.clone()));
        let data = decode_sticky_user_data(&ud).unwrap();
        assert_eq!(data.partitions.unwrap(), assigned);
        assert_eq!(data.generation, Some(9));
        // v0 (no generation).
        let v0 = Bytes::from(hand[..hand.len() - 4].to_vec());
        let data = decode_sticky_user_data(&v0).unwrap();
        assert_eq!(data.partitions.unwrap(), assigned);
        assert_eq!(data.generation, None);
        assert!(StickyAssignor.user_data(&BTreeMap::new(), -1).is_none());
        assert!(decode_sticky_user_data(&Bytes::from_static(&[0, 0, 0])).is_none());

        // An eager member (no owned partitions) is sticky through its user data.
        let mut a = member("a", &["t", "u"]);
        a.subscription.user_data = Some(ud);
        let b = member("b", &["t", "u"]);
        let out = StickyAssignor.assign(&[b, a], &counts(&[("t", 4), ("u", 2)]));
        assert_eq!(out["a"], assigned);

        let coop = CooperativeStickyAssignor.user_data(&assigned, 5).unwrap();
        assert_eq!(coop, Bytes::from_static(&[0, 0, 0, 5]));
        let mut m = member("m", &["t"]);
        m.subscription.user_data = Some(coop);
        m.subscription.owned_partitions = ma(&[("t", &[0])]);
        let claims = sticky_claims(&m.subscription);
        assert_eq!(claims.generation, 5);
        assert_eq!(claims.owned, ma(&[("t", &[0])]));
    }

    #[test]
    fn stable_user_data_matches_sarama_consumer() {
        let assigned = ma(&[("ab", &[0, 1, -1, 300])]);
        let ud = StableAssignor.user_data(&assigned, 0).unwrap();
        // version 1, 1 topic, "ab", 4 partitions: zig-zag 0, 2, 1, 600 (0xd8 0x04).
        assert_eq!(&ud[..], &[1, 1, 2, b'a', b'b', 4, 0, 2, 1, 0xd8, 0x04]);
        assert_eq!(decode_stable_user_data(&ud).unwrap(), assigned);
        for bad in [
            &[][..],
            &[2, 0],
            &[1, 1, 5, b'a'],
            &[1, 1, 1, b'a', 9, 0],
            &[1, 0xff],
        ] {
            assert!(decode_stable_user_data(&Bytes::copy_from_slice(bad)).is_none());
        }
        let mut a = member("a", &["ab"]);
        a.subscription.user_data = Some(
            StableAssignor
                .user_data(&ma(&[("ab", &[2, 3])]), 0)
                .unwrap(),
        );
        let out = StableAssignor.assign(&[a, member("b", &["ab"])], &counts(&[("ab", 4)]));
        assert_eq!(out["a"], ma(&[("ab", &[2, 3])]));
        assert_eq!(out["b"], ma(&[("ab", &[0, 1])]));
    }

    #[test]
    fn stable_new_member_takes_only_what_balance_needs() {
        let p = counts(&[("t", 10)]);
        let members = [
            owning(member("a", &["t"]), &ma(&[("t", &[0, 1, 2, 3])]), 1),
            owning(member("b", &["t"]), &ma(&[("t", &[4, 5, 6])]), 1),
            owning(member("c", &["t"]), &ma(&[("t", &[7, 8, 9])]), 1),
            member("d", &["t"]),
        ];
        let out = StableAssignor.assign(&members, &p);
        // floor 2, ceil 3: a is over the ceiling and gives up 3, which d takes; d is
        // still below the floor and takes one more from the most loaded. Nothing else
        // moves.
        assert_eq!(out["d"]["t"].len(), 2);
        assert!(out["d"]["t"].contains(&3));
        let mut moved = 0;
        for m in &members[..3] {
            let before = &m.subscription.owned_partitions["t"];
            let now = &out[&m.member_id]["t"];
            assert!(
                now.iter().all(|p| before.contains(p)),
                "{} gained",
                m.member_id
            );
            moved += before.len() - now.len();
        }
        assert_eq!(moved, 2);
    }

    #[test]
    fn consistent_is_balanced_and_co_partitions_matching_topics() {
        let members: Vec<MemberInfo> = (0..5)
            .map(|i| member(&format!("m{i}"), &["a", "b"]))
            .collect();
        let out = ConsistentAssignor.assign(&members, &counts(&[("a", 12), ("b", 12)]));
        for m in out.values() {
            assert!((2..=3).contains(&m["a"].len()));
            assert_eq!(m["a"], m["b"]);
        }
    }

    // -----------------------------------------------------------------------------
    // Property tests

    struct Case {
        members: Vec<MemberInfo>,
        partitions: BTreeMap<String, i32>,
    }

    fn random_case(rng: &mut StdRng, identical: bool) -> Case {
        let n_topics = rng.gen_range(1..6);
        let topics: Vec<String> = (0..n_topics).map(|i| format!("topic-{i}")).collect();
        let mut partitions: BTreeMap<String, i32> = topics
            .iter()
            .map(|t| (t.clone(), rng.gen_range(1..40)))
            .collect();
        if rng.gen_bool(0.2) {
            partitions.insert("unsubscribed".into(), 5);
        }
        let n_members = rng.gen_range(1..12);
        let common: Vec<&str> = topics
            .iter()
            .map(String::as_str)
            .filter(|_| rng.gen_bool(0.7))
            .collect();
        let members = (0..n_members)
            .map(|i| {
                let subscribed: Vec<&str> = if identical {
                    common.clone()
                } else {
                    topics
                        .iter()
                        .map(String::as_str)
                        .filter(|_| rng.gen_bool(0.5))
                        .collect()
                };
                let mut m = member(&format!("member-{i:02}-{}", rng.gen::<u16>()), &subscribed);
                if rng.gen_bool(0.3) {
                    m.group_instance_id = Some(format!("instance-{}", rng.gen::<u16>()));
                }
                m
            })
            .collect();
        Case {
            members,
            partitions,
        }
    }

    /// Every partition of a subscribed topic is assigned exactly once, to a member
    /// subscribed to its topic; `complete` = every one is assigned.
    fn check_valid(case: &Case, out: &GroupAssignment, complete: bool, name: &str) {
        assert_eq!(out.len(), case.members.len(), "{name}");
        let mut seen = HashSet::new();
        for m in &case.members {
            for (t, ps) in &out[&m.member_id] {
                assert!(
                    m.subscription.topics.contains(t),
                    "{name}: {t} to a non-subscriber"
                );
                for &p in ps {
                    assert!((0..case.partitions[t]).contains(&p), "{name}");
                    assert!(
                        seen.insert((t.clone(), p)),
                        "{name}: {t}/{p} assigned twice"
                    );
                }
            }
        }
        if complete {
            for (t, &n) in &case.partitions {
                if case
                    .members
                    .iter()
                    .any(|m| m.subscription.topics.contains(t))
                {
                    for p in 0..n {
                        assert!(seen.contains(&(t.clone(), p)), "{name}: {t}/{p} unassigned");
                    }
                }
            }
        }
    }

    fn total(m: &MemberAssignment) -> usize {
        m.values().map(Vec::len).sum()
    }

    /// No partition could move to a subscribed member holding two fewer (for
    /// identical subscriptions: counts within one).
    fn check_balanced(case: &Case, out: &GroupAssignment, name: &str) {
        for to in &case.members {
            for from in &case.members {
                let (nt, nf) = (total(&out[&to.member_id]), total(&out[&from.member_id]));
                if nf >= nt + 2 {
                    let movable = out[&from.member_id]
                        .keys()
                        .any(|t| to.subscription.topics.contains(t));
                    assert!(
                        !movable,
                        "{name}: {} has {nf}, {} has {nt}",
                        from.member_id, to.member_id
                    );
                }
            }
        }
    }

    /// Members own what `out` gave them, from generation `generation`.
    fn members_owning(case: &Case, out: &GroupAssignment, generation: i32) -> Vec<MemberInfo> {
        case.members
            .iter()
            .map(|m| owning(m.clone(), &out[&m.member_id], generation))
            .collect()
    }

    #[test]
    fn every_partition_once_to_a_subscriber() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..300 {
            let identical = rng.gen_bool(0.5);
            let case = random_case(&mut rng, identical);
            for a in all_assignors() {
                let out = a.assign(&case.members, &case.partitions);
                check_valid(&case, &out, true, a.name());
                assert_eq!(
                    out,
                    a.assign(&case.members, &case.partitions),
                    "deterministic"
                );
            }
        }
    }

    #[test]
    fn balanced_within_one_for_identical_subscriptions() {
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..300 {
            let case = random_case(&mut rng, true);
            for a in all_assignors() {
                if a.name() == "range" {
                    continue; // per-topic balance only
                }
                let out = a.assign(&case.members, &case.partitions);
                let totals: Vec<usize> = out.values().map(total).collect();
                let (min, max) = (totals.iter().min().unwrap(), totals.iter().max().unwrap());
                if a.name() == "stable" || a.name() == "consistent" {
                    // Balanced per topic, like range.
                    for t in case.partitions.keys() {
                        let per: Vec<usize> =
                            out.values().map(|m| m.get(t).map_or(0, Vec::len)).collect();
                        if case.members[0].subscription.topics.contains(t) {
                            let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
                            assert!(hi - lo <= 1, "{} {t}: {per:?}", a.name());
                        }
                    }
                } else {
                    assert!(max - min <= 1, "{}: {totals:?}", a.name());
                }
            }
        }
    }

    #[test]
    fn sticky_is_balanced_for_any_subscriptions() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let case = random_case(&mut rng, false);
            let out = StickyAssignor.assign(&case.members, &case.partitions);
            check_balanced(&case, &out, "sticky");
            // With random previous owners too.
            let mut case2 = Case {
                members: members_owning(&case, &out, 1),
                partitions: case.partitions.clone(),
            };
            case2.members.shuffle(&mut rng);
            for m in case2.members.iter_mut().take(2) {
                m.subscription.owned_partitions.clear();
            }
            let out2 = StickyAssignor.assign(&case2.members, &case2.partitions);
            check_valid(&case2, &out2, true, "sticky");
            check_balanced(&case2, &out2, "sticky");
        }
    }

    #[test]
    fn members_that_stay_keep_everything() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..300 {
            let case = random_case(&mut rng, true);
            for a in [
                &StickyAssignor as &dyn Assignor,
                &CooperativeStickyAssignor,
                &StableAssignor,
            ] {
                let first = a.assign(&case.members, &case.partitions);
                let mut members = members_owning(&case, &first, 1);
                let gone = rng.gen_range(0..members.len());
                members.remove(gone);
                if a.name() == "stable" {
                    for m in &mut members {
                        // sarama-consumer sends its partitions as user data.
                        let owned = std::mem::take(&mut m.subscription.owned_partitions);
                        m.subscription.user_data = a.user_data(&owned, 1);
                    }
                }
                let next = Case {
                    members,
                    partitions: case.partitions.clone(),
                };
                let second = a.assign(&next.members, &next.partitions);
                check_valid(&next, &second, true, a.name());
                for m in &next.members {
                    for (t, ps) in &first[&m.member_id] {
                        let now = second[&m.member_id].get(t).cloned().unwrap_or_default();
                        for p in ps {
                            assert!(
                                now.contains(p),
                                "{}: {} lost {t}/{p}",
                                a.name(),
                                m.member_id
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sticky_moves_the_minimum_when_a_member_joins() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let case = random_case(&mut rng, true);
            let first = StickyAssignor.assign(&case.members, &case.partitions);
            let mut members = members_owning(&case, &first, 1);
            let topics = members[0].subscription.topics.clone();
            members.push(member(
                "zz-new",
                &topics.iter().map(String::as_str).collect::<Vec<_>>(),
            ));
            let second = StickyAssignor.assign(&members, &case.partitions);
            let total_partitions: usize = first.values().map(total).sum();
            // The newcomer takes floor(total / members) and nobody else changes hands.
            assert_eq!(total(&second["zz-new"]), total_partitions / members.len());
            let moved: usize = case
                .members
                .iter()
                .map(|m| total(&first[&m.member_id]) - total(&second[&m.member_id]))
                .sum();
            assert_eq!(moved, total(&second["zz-new"]));
        }
    }

    /// Cooperative rounds: each member owns what it was given; a partition is never
    /// given to a member while another one still owns it; the assignment is complete
    /// after the follow-up rebalance(s).
    #[test]
    fn cooperative_never_hands_over_an_owned_partition() {
        let mut rng = StdRng::seed_from_u64(6);
        for _ in 0..200 {
            let identical = rng.gen_bool(0.5);
            let mut case = random_case(&mut rng, identical);
            let mut out = CooperativeStickyAssignor.assign(&case.members, &case.partitions);
            for round in 0..6 {
                case.members = members_owning(&case, &out, round + 1);
                // Membership changes: someone leaves, someone joins.
                if round < 2 && case.members.len() > 1 && rng.gen_bool(0.5) {
                    let i = rng.gen_range(0..case.members.len());
                    case.members.remove(i);
                }
                if round < 2 && rng.gen_bool(0.5) {
                    let topics: Vec<String> = case
                        .partitions
                        .keys()
                        .filter(|_| rng.gen_bool(0.6))
                        .cloned()
                        .collect();
                    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                    case.members
                        .push(member(&format!("joiner-{round}"), &topics));
                }
                let next = CooperativeStickyAssignor.assign(&case.members, &case.partitions);
                check_valid(&case, &next, false, "cooperative-sticky");
                for m in &case.members {
                    let owned = &m.subscription.owned_partitions;
                    for (t, ps) in &next[&m.member_id] {
                        for p in ps {
                            if owned.get(t).is_some_and(|o| o.contains(p)) {
                                continue;
                            }
                            let holder = case.members.iter().find(|o| {
                                o.subscription
                                    .owned_partitions
                                    .get(t)
                                    .is_some_and(|x| x.contains(p))
                            });
                            assert!(
                                holder.is_none(),
                                "{t}/{p} given to {} while owned",
                                m.member_id
                            );
                        }
                    }
                }
                out = next;
            }
            // Membership stopped changing after round 1: complete and balanced by now.
            check_valid(&case, &out, true, "cooperative-sticky");
            check_balanced(&case, &out, "cooperative-sticky");
        }
    }

    #[test]
    fn consistent_moves_little_when_membership_changes() {
        let partitions = counts(&[("t", 120)]);
        let members: Vec<MemberInfo> = (0..6).map(|i| member(&format!("m{i}"), &["t"])).collect();
        let before = ConsistentAssignor.assign(&members, &partitions);
        // A member leaves: its 20 partitions move, and few others.
        let fewer = &members[1..];
        let after = ConsistentAssignor.assign(fewer, &partitions);
        let moved: usize = fewer
            .iter()
            .map(|m| {
                before[&m.member_id]["t"]
                    .iter()
                    .filter(|p| !after[&m.member_id]["t"].contains(p))
                    .count()
            })
            .sum();
        assert!(
            moved <= 12,
            "moved {moved} of the remaining members' partitions"
        );
        // Static members are keyed by instance id: new member ids, same partitions.
        let renamed: Vec<MemberInfo> = members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberInfo {
                member_id: format!("new-{i}"),
                group_instance_id: Some(m.member_id.clone()),
                subscription: m.subscription.clone(),
            })
            .collect();
        let statics: Vec<MemberInfo> = members
            .iter()
            .map(|m| MemberInfo {
                group_instance_id: Some(m.member_id.clone()),
                ..m.clone()
            })
            .collect();
        let a = ConsistentAssignor.assign(&statics, &partitions);
        let b = ConsistentAssignor.assign(&renamed, &partitions);
        for (i, m) in statics.iter().enumerate() {
            assert_eq!(a[&m.member_id], b[&format!("new-{i}")]);
        }
    }
}
