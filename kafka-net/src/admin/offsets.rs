//! A group's committed offsets: list, alter, reset (as kafka-consumer-groups.sh
//! does), delete.

use super::{check, invalid, Admin, OffsetSpec, Results, TopicPartition};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest};
use kafka_protocol::{ApiKey, ErrorCode, StrBytes};
use std::collections::BTreeMap;

/// Where [`Admin::reset_group_offsets`] moves a group's offsets (the options of
/// kafka-consumer-groups.sh `--reset-offsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetTo {
    /// The log start (`--to-earliest`).
    Earliest,
    /// The log end (`--to-latest`).
    Latest,
    /// The first offset at or after a time in ms; the log end when every record is
    /// older (`--to-datetime`, `--by-duration`).
    Timestamp(i64),
    /// An offset, clamped to the log's range (`--to-offset`).
    Offset(i64),
    /// The committed offset moved by this much, clamped to the log's range; the log
    /// start for partitions with no commit (`--shift-by`).
    ShiftBy(i64),
}

/// Groups topic partitions by topic.
fn topics_of<T: Copy>(
    items: impl IntoIterator<Item = (TopicPartition, T)>,
) -> BTreeMap<String, Vec<(i32, T)>> {
    let mut topics: BTreeMap<String, Vec<(i32, T)>> = BTreeMap::new();
    for ((t, p), v) in items {
        topics.entry(t).or_default().push((p, v));
    }
    topics
}

impl Admin {
    /// The group's committed offsets of every partition it has committed to (one
    /// OffsetFetch to its coordinator, Kafka 0.10.2+).
    pub async fn list_group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let api = ApiKey::OffsetFetch;
        let answers = self
            .per_item(api, vec![group.to_string()], |_| async move {
                let node = self.coordinator(group).await?;
                let (conn, broker) = self.node(node).await?;
                let version = Self::version(&conn, api)?;
                if version < 2 {
                    return Err(Error::new(ErrorKind::Unavailable(format!(
                        "{} serves only OffsetFetch v{version}, which cannot list every committed offset",
                        broker.addr()
                    )))
                    .with_api(api));
                }
                let mut request = OffsetFetchRequest {
                    group_id: StrBytes::from(group.to_string()),
                    topics: None,
                    groups: vec![OffsetFetchRequestGroup {
                        group_id: StrBytes::from(group.to_string()),
                        topics: None,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                request.retain_version(version);
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                let what = || format!("group {group}");
                let mut offsets = BTreeMap::new();
                if version >= 8 {
                    for g in &response.groups {
                        if matches!(ErrorCode::from(g.error_code), ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) {
                            self.client.invalidate_coordinator(0, group);
                        }
                        check(g.error_code, None, api, &addr, what)?;
                        for t in &g.topics {
                            for p in &t.partitions {
                                check(p.error_code, None, api, &addr, || format!("{}/{} of group {group}", t.name, p.partition_index))?;
                                if p.committed_offset >= 0 {
                                    offsets.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                                }
                            }
                        }
                    }
                } else {
                    if matches!(ErrorCode::from(response.error_code), ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) {
                        self.client.invalidate_coordinator(0, group);
                    }
                    check(response.error_code, None, api, &addr, what)?;
                    for t in &response.topics {
                        for p in &t.partitions {
                            check(p.error_code, None, api, &addr, || format!("{}/{} of group {group}", t.name, p.partition_index))?;
                            if p.committed_offset >= 0 {
                                offsets.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                            }
                        }
                    }
                }
                Ok(BTreeMap::from([(group.to_string(), Ok(offsets))]))
            })
            .await;
        answers
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .unwrap_or_else(|| Ok(BTreeMap::new()))
    }

    /// Refuses to change the offsets of a group that has members (they would
    /// overwrite them), as kafka-consumer-groups.sh does.
    async fn check_inactive(&self, group: &str, api: ApiKey) -> Result<()> {
        let described = self.describe_groups(&[group]).await.remove(group);
        match described {
            Some(Ok(g)) if !g.is_inactive() => Err(Error::new(ErrorKind::Broker {
                code: ErrorCode::NonEmptyGroup,
                message: Some(format!(
                    "offsets can only be changed while group {group} is inactive, but it is {} with {} member(s); stop its consumers first",
                    g.state,
                    g.members.len()
                )),
            })
            .with_api(api)
            .with_resource(format!("group {group}"))),
            Some(Err(e)) if e.code() != Some(ErrorCode::GroupIdNotFound) => Err(e),
            _ => Ok(()),
        }
    }

    /// Partitions of `items` that exist, and an error for each other one.
    async fn existing(
        &self,
        api: ApiKey,
        items: Vec<TopicPartition>,
    ) -> Result<(Vec<TopicPartition>, Results<TopicPartition, ()>)> {
        let m = self.client.refresh_metadata().await?;
        let mut ok = Vec::new();
        let mut refused = BTreeMap::new();
        for (t, p) in items {
            match m.partition_count(&t) {
                Some(n) if (0..n).contains(&p) => ok.push((t, p)),
                Some(n) => {
                    let m = format!("topic {t} has {n} partition(s), no partition {p}");
                    refused.insert((t.clone(), p), Err(unknown_partition(api, &t, p, m)));
                }
                None => {
                    let m = format!("topic {t} does not exist");
                    refused.insert((t.clone(), p), Err(unknown_partition(api, &t, p, m)));
                }
            }
        }
        Ok((ok, refused))
    }

    /// Sets a group's committed offsets (one OffsetCommit as an admin, generation
    /// -1). Refused as a whole, changing nothing, while the group has members; a
    /// partition that does not exist is refused and not sent.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<Results<TopicPartition, ()>> {
        let api = ApiKey::OffsetCommit;
        self.check_inactive(group, api).await?;
        let mut refused: Results<TopicPartition, ()> = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        for ((t, p), o) in offsets {
            if o < 0 {
                let m = format!("offset {o} is negative");
                refused.insert((t.clone(), p), Err(invalid(api, format!("{t}/{p}"), m)));
            } else {
                wanted.insert((t, p), o);
            }
        }
        let (ok, mut unknown) = self.existing(api, wanted.keys().cloned().collect()).await?;
        refused.append(&mut unknown);
        let wanted = &wanted;
        let mut results = self
            .per_item(api, ok, |pending| async move {
                let node = self.coordinator(group).await?;
                let (conn, broker) = self.node(node).await?;
                let version = Self::version(&conn, api)?;
                let mut request = OffsetCommitRequest {
                    group_id: StrBytes::from(group.to_string()),
                    generation_id_or_member_epoch: -1,
                    member_id: StrBytes::default(),
                    retention_time_ms: -1,
                    topics: topics_of(
                        pending
                            .iter()
                            .map(|tp| (tp.clone(), wanted.get(tp).copied().unwrap_or(0))),
                    )
                    .into_iter()
                    .map(|(name, ps)| OffsetCommitRequestTopic {
                        name: StrBytes::from(name),
                        partitions: ps
                            .into_iter()
                            .map(|(p, o)| OffsetCommitRequestPartition {
                                partition_index: p,
                                committed_offset: o,
                                committed_leader_epoch: -1,
                                commit_timestamp: -1,
                                committed_metadata: Some(StrBytes::default()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                    ..Default::default()
                };
                request.retain_version(version);
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                let mut out = BTreeMap::new();
                for t in response.topics {
                    for p in t.partitions {
                        if matches!(
                            ErrorCode::from(p.error_code),
                            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
                        ) {
                            self.client.invalidate_coordinator(0, group);
                        }
                        let tp = (t.name.to_string(), p.partition_index);
                        let r = check(p.error_code, None, api, &addr, || {
                            format!("{}/{} of group {group}", tp.0, tp.1)
                        });
                        out.insert(tp, r);
                    }
                }
                Ok(out)
            })
            .await;
        results.append(&mut refused);
        Ok(results)
    }

    /// Computes, and with `execute` commits, new offsets for the partitions given,
    /// as `kafka-consumer-groups.sh --reset-offsets` does (its `--dry-run` without
    /// `execute`); answers each partition's new offset. Refused as a whole while the
    /// group has members.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
        to: ResetTo,
        execute: bool,
    ) -> Result<Results<TopicPartition, i64>> {
        let api = ApiKey::OffsetCommit;
        self.check_inactive(group, api).await?;
        let (ok, refused) = self.existing(api, partitions).await?;
        let mut out: Results<TopicPartition, i64> = refused
            .into_iter()
            .map(|(k, r)| (k, r.map(|()| 0)))
            .collect();
        let spec = |s: OffsetSpec| ok.iter().map(|tp| (tp.clone(), s)).collect();
        let earliest = self.list_offsets(spec(OffsetSpec::Earliest)).await;
        let latest = self.list_offsets(spec(OffsetSpec::Latest)).await;
        let by_time = match to {
            ResetTo::Timestamp(t) => Some(self.list_offsets(spec(OffsetSpec::Timestamp(t))).await),
            _ => None,
        };
        let committed = match to {
            ResetTo::ShiftBy(_) => self.list_group_offsets(group).await?,
            _ => BTreeMap::new(),
        };
        let mut targets = BTreeMap::new();
        for tp in ok {
            let range = (|| {
                let lo = earliest.get(&tp)?.as_ref().map(|o| o.offset.unwrap_or(0));
                let hi = latest.get(&tp)?.as_ref().map(|o| o.offset.unwrap_or(0));
                Some((lo, hi))
            })();
            let (lo, hi) = match range {
                Some((Ok(lo), Ok(hi))) => (lo, hi),
                Some((Err(e), _)) | Some((_, Err(e))) => {
                    out.insert(tp, Err(e.clone()));
                    continue;
                }
                None => {
                    let e = Error::new(ErrorKind::Malformed("no offsets listed".into()))
                        .with_api(ApiKey::ListOffsets);
                    out.insert(tp, Err(e));
                    continue;
                }
            };
            let target = match to {
                ResetTo::Earliest => lo,
                ResetTo::Latest => hi,
                ResetTo::Offset(o) => o.clamp(lo, hi),
                ResetTo::ShiftBy(n) => committed
                    .get(&tp)
                    .map_or(lo, |c| c.saturating_add(n))
                    .clamp(lo, hi),
                ResetTo::Timestamp(_) => match by_time.as_ref().and_then(|b| b.get(&tp)) {
                    Some(Ok(o)) => o.offset.unwrap_or(hi),
                    Some(Err(e)) => {
                        out.insert(tp, Err(e.clone()));
                        continue;
                    }
                    None => hi,
                },
            };
            targets.insert(tp, target);
        }
        if execute && !targets.is_empty() {
            for (tp, r) in self.alter_group_offsets(group, targets.clone()).await? {
                if let Err(e) = r {
                    targets.remove(&tp);
                    out.insert(tp, Err(e));
                }
            }
        }
        out.extend(targets.into_iter().map(|(tp, o)| (tp, Ok(o))));
        Ok(out)
    }

    /// Deletes a group's committed offsets of partitions (OffsetDelete, Kafka 2.4+):
    /// refused per topic with GROUP_SUBSCRIBED_TO_TOPIC while a member consumes it.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) -> Results<TopicPartition, ()> {
        let api = ApiKey::OffsetDelete;
        self.per_item(api, partitions, |pending| async move {
            let node = self.coordinator(group).await?;
            let (conn, broker) = self.node(node).await?;
            let version = Self::version(&conn, api)?;
            let request = OffsetDeleteRequest {
                group_id: StrBytes::from(group.to_string()),
                topics: topics_of(pending.iter().map(|tp| (tp.clone(), ())))
                    .into_iter()
                    .map(|(name, ps)| OffsetDeleteRequestTopic {
                        name: StrBytes::from(name),
                        partitions: ps
                            .into_iter()
                            .map(|(p, ())| OffsetDeleteRequestPartition { partition_index: p })
                            .collect(),
                    })
                    .collect(),
            };
            let response = conn.send_version(&request, version).await?;
            let addr = broker.addr();
            if matches!(
                ErrorCode::from(response.error_code),
                ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
            ) {
                self.client.invalidate_coordinator(0, group);
            }
            check(response.error_code, None, api, &addr, || {
                format!("group {group}")
            })?;
            let mut out = BTreeMap::new();
            for t in response.topics {
                for p in t.partitions {
                    let tp = (t.name.to_string(), p.partition_index);
                    let r = check(p.error_code, None, api, &addr, || {
                        format!("{}/{} of group {group}", tp.0, tp.1)
                    });
                    out.insert(tp, r);
                }
            }
            Ok(out)
        })
        .await
    }
}

fn unknown_partition(api: ApiKey, topic: &str, partition: i32, message: String) -> Error {
    Error::new(ErrorKind::Broker {
        code: ErrorCode::UnknownTopicOrPartition,
        message: Some(message),
    })
    .with_api(api)
    .with_resource(format!("{topic}/{partition}"))
}
