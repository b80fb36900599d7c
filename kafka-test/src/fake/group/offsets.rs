//! Committed offsets of the group coordinator: OffsetCommit, OffsetFetch, and
//! transactional offsets (TxnOffsetCommit), kept pending per producer until the
//! transaction's marker commits or discards them (KIP-98, KIP-447).

use super::*;
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

const UNSTABLE_OFFSET_COMMIT: i16 = ErrorCode::UnstableOffsetCommit.code();

impl GroupCoordinator {
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
        let stable = version >= 7 && req.require_stable;
        let mut resp = if version <= 7 {
            let wanted = req.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let found = fetch_offsets(groups.get(req.group_id.as_str()), wanted, stable);
            let topics = found
                .into_iter()
                .map(|(name, partitions)| OffsetFetchResponseTopic {
                    name: name.into(),
                    partitions: partitions
                        .into_iter()
                        .map(
                            |(partition_index, c, error_code)| OffsetFetchResponsePartition {
                                partition_index,
                                committed_offset: c.offset,
                                committed_leader_epoch: if version >= 5 {
                                    c.leader_epoch
                                } else {
                                    -1
                                },
                                metadata: Some(c.metadata.clone().into()),
                                error_code,
                                ..Default::default()
                            },
                        )
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
                    let found = fetch_offsets(groups.get(rg.group_id.as_str()), wanted, stable);
                    OffsetFetchResponseGroup {
                        group_id: rg.group_id.clone(),
                        topics: found
                            .into_iter()
                            .map(|(name, partitions)| OffsetFetchResponseTopics {
                                name: name.into(),
                                partitions: partitions
                                    .into_iter()
                                    .map(|(partition_index, c, error_code)| {
                                        OffsetFetchResponsePartitions {
                                            partition_index,
                                            committed_offset: c.offset,
                                            committed_leader_epoch: c.leader_epoch,
                                            metadata: Some(c.metadata.clone().into()),
                                            error_code,
                                            ..Default::default()
                                        }
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

    /// TxnOffsetCommit, once the transaction coordinator has verified that the group is
    /// in the producer's transaction: creates the group if unknown, checks the member
    /// (generation, member id, group instance id; KIP-447) and keeps the offsets pending
    /// for the producer until [`complete_txn_offsets`](Self::complete_txn_offsets).
    pub(crate) async fn txn_offset_commit(
        self: &Arc<Self>,
        req: TxnOffsetCommitRequest,
        version: i16,
    ) -> TxnOffsetCommitResponse {
        use kafka_protocol::messages::txn_offset_commit_response::{
            TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
        };
        let check = self
            .partition_check
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut groups = self.lock();
        let group_id = req.group_id.to_string();
        let g = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id));
        let rejected = validate_txn_offset_commit(
            g,
            req.generation_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
        );
        let topics = req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = p.committed_metadata.as_deref().unwrap_or("");
                        let error_code = if let Some(error) = rejected {
                            error
                        } else if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                            OFFSET_METADATA_TOO_LARGE
                        } else if check
                            .as_ref()
                            .is_some_and(|exists| !exists(&t.name, p.partition_index))
                        {
                            UNKNOWN_TOPIC_OR_PARTITION
                        } else {
                            g.pending_txn_offsets
                                .entry(req.producer_id)
                                .or_default()
                                .insert(
                                    (t.name.to_string(), p.partition_index),
                                    Committed {
                                        offset: p.committed_offset,
                                        leader_epoch: p.committed_leader_epoch,
                                        metadata: metadata.to_owned(),
                                    },
                                );
                            NONE
                        };
                        TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let mut resp = TxnOffsetCommitResponse {
            topics,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    /// The transaction marker of `producer_id` reached the group's offsets: its pending
    /// transactional offsets become committed (`commit`) or are discarded.
    pub(crate) fn complete_txn_offsets(&self, group: &str, producer_id: i64, commit: bool) {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return;
        };
        let Some(pending) = g.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if commit {
            g.offsets.extend(pending);
        }
    }

    /// Whether a group has transactional offsets waiting for their transaction to end,
    /// for tests.
    pub fn has_pending_txn_offsets(&self, group: &str) -> bool {
        self.lock()
            .get(group)
            .is_some_and(|g| g.pending_txn_offsets.values().any(|o| !o.is_empty()))
    }

    /// The committed offset of a partition, for tests.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .map(|c| c.offset)
    }
}

pub(super) struct Committed {
    pub(super) offset: i64,
    pub(super) leader_epoch: i32,
    pub(super) metadata: String,
}

static NO_COMMIT: Committed = Committed {
    offset: -1,
    leader_epoch: -1,
    metadata: String::new(),
};

/// Kafka's OffsetCommit check; None when the commit is accepted (and the member's
/// session is refreshed).
fn validate_offset_commit(
    g: &mut Group,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<i16> {
    if let Some(cg) = g.consumer.as_mut() {
        return consumer::validate_offset_commit(cg, generation, member_id);
    }
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

/// Offsets found, by topic: (partition, offset, error code).
type Found<'a> = Vec<(String, Vec<(i32, &'a Committed, i16)>)>;

/// The committed offsets of `wanted` topics and partitions (all when None), by topic,
/// each with its error: with `require_stable`, `UNSTABLE_OFFSET_COMMIT` (and no offset)
/// for a partition with a pending transactional offset, as Kafka.
fn fetch_offsets(
    group: Option<&Group>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Found<'_> {
    let answer = |topic: &str, p: i32, c: &'static Committed| -> (&Committed, i16) {
        let key = (topic.to_owned(), p);
        let pending = group.is_some_and(|g| {
            g.pending_txn_offsets
                .values()
                .any(|offsets| offsets.contains_key(&key))
        });
        if require_stable && pending {
            return (&NO_COMMIT, UNSTABLE_OFFSET_COMMIT);
        }
        (group.and_then(|g| g.offsets.get(&key)).unwrap_or(c), NONE)
    };
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| {
                        let (c, code) = answer(&topic, p, &NO_COMMIT);
                        (p, c, code)
                    })
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut out: Found<'_> = Vec::new();
            for ((topic, partition), _) in group.into_iter().flat_map(|g| g.offsets.iter()) {
                let (c, code) = answer(topic, *partition, &NO_COMMIT);
                match out.last_mut() {
                    Some((t, partitions)) if t == topic => partitions.push((*partition, c, code)),
                    _ => out.push((topic.clone(), vec![(*partition, c, code)])),
                }
            }
            out
        }
    }
}

/// Kafka's TxnOffsetCommit check of the member (KIP-447): only what the request gives
/// is checked. None when accepted.
fn validate_txn_offset_commit(
    g: &Group,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<i16> {
    if let Some(cg) = g.consumer.as_ref() {
        return consumer::validate_txn_offset_commit(cg, generation, member_id);
    }
    let fenced = instance_id
        .and_then(|i| g.static_members.get(i))
        .is_some_and(|holder| holder != member_id);
    if fenced {
        Some(FENCED_INSTANCE_ID)
    } else if !member_id.is_empty() && !g.members.contains_key(member_id) {
        Some(UNKNOWN_MEMBER_ID)
    } else if generation >= 0 && generation != g.generation {
        Some(ILLEGAL_GENERATION)
    } else {
        None
    }
}
