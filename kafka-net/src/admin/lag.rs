//! A group's lag per partition: committed offset, log end, lag, and the member that
//! owns the partition.

use super::{Admin, MemberDescription, TopicPartition};
use crate::error::{Error, ErrorKind, Result};
use kafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

/// One partition of [`GroupLag`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset; `None` when it has committed none.
    pub committed: Option<i64>,
    /// The partition's log end offset; `None` when it could not be listed (see
    /// `end_error`).
    pub log_end: Option<i64>,
    /// `log_end - committed` (never negative); `None` without a commit or log end.
    pub lag: Option<i64>,
    /// The member the partition is assigned to, while the group is stable.
    pub member: Option<MemberDescription>,
    /// Why the log end could not be listed (a deleted topic, an unreachable leader).
    pub end_error: Option<Error>,
}

/// What [`Admin::group_lag`] answers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupLag {
    /// The group's id.
    pub group_id: String,
    /// Its state (`Stable`, `Empty`, `PreparingRebalance`, ...).
    pub state: String,
    /// The assignor of the current generation (`range`, `cooperative-sticky`), while
    /// stable.
    pub protocol: String,
    /// Number of members.
    pub members: usize,
    /// Every partition the group has committed to or has assigned, sorted.
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// The sum of the partitions' known lags.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// The lag of a partition: how far the log end is past a position (never negative).
pub fn lag_of(log_end: i64, position: i64) -> i64 {
    (log_end - position).max(0)
}

impl Admin {
    /// The group's lag per partition: its committed offset, the log end offset, the
    /// lag, and the member (member id, client id, host, instance id) that owns the
    /// partition; for eager, cooperative and static groups alike (the assignment is
    /// read from the members' consumer protocol assignments, which the coordinator
    /// holds while the group is stable). A DescribeGroups and an OffsetFetch to the
    /// coordinator, then one ListOffsets per leader. An unknown group answers
    /// GROUP_ID_NOT_FOUND.
    pub async fn group_lag(&self, group: &str) -> Result<GroupLag> {
        let description = self.describe_groups(&[group]).await.remove(group);
        let committed = self.list_group_offsets(group).await?;
        let description = match description {
            Some(Ok(d)) => Some(d),
            Some(Err(e))
                if e.code() == Some(ErrorCode::GroupIdNotFound) && !committed.is_empty() =>
            {
                None
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::new(ErrorKind::Malformed(format!(
                    "DescribeGroups said nothing of group {group}"
                ))))
            }
        };
        let mut owners: BTreeMap<TopicPartition, MemberDescription> = BTreeMap::new();
        if let Some(d) = &description {
            for m in &d.members {
                for tp in &m.assignment {
                    owners.insert(tp.clone(), m.clone());
                }
            }
        }
        let all: BTreeSet<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        let mut ends = self.end_offsets(all.iter().cloned().collect()).await;
        let partitions = all
            .into_iter()
            .map(|tp| {
                let c = committed.get(&tp).copied();
                let (log_end, end_error) = match ends.remove(&tp) {
                    Some(Ok(e)) => (Some(e), None),
                    Some(Err(e)) => (None, Some(e)),
                    None => (None, None),
                };
                PartitionLag {
                    lag: c.zip(log_end).map(|(c, e)| lag_of(e, c)),
                    committed: c,
                    log_end,
                    member: owners.remove(&tp),
                    end_error,
                    topic: tp.0,
                    partition: tp.1,
                }
            })
            .collect();
        Ok(GroupLag {
            group_id: group.to_string(),
            state: description
                .as_ref()
                .map_or_else(|| "Empty".to_string(), |d| d.state.clone()),
            protocol: description
                .as_ref()
                .map(|d| d.protocol.clone())
                .unwrap_or_default(),
            members: description.as_ref().map_or(0, |d| d.members.len()),
            partitions,
        })
    }
}
