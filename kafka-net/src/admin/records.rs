//! Records and offsets: list offsets of many partitions (one request per leader),
//! delete records before an offset.

use super::{by_node, check, invalid, spread, Admin, Results, TopicPartition};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};
use kafka_protocol::{ApiKey, StrBytes};
use std::collections::BTreeMap;

/// Which offset of a partition [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The log start.
    Earliest,
    /// The log end (the next offset to be written).
    Latest,
    /// The first offset whose record timestamp is at or after this one (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// An offset [`Admin::list_offsets`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// The offset; for [`OffsetSpec::Timestamp`], `None` when every record is older.
    pub offset: Option<i64>,
    /// The record's timestamp for a time lookup (-1 otherwise, and from brokers that
    /// do not say).
    pub timestamp: i64,
    /// The leader's epoch (-1 when unknown).
    pub leader_epoch: i32,
}

/// Groups topic partitions by topic, for requests that list topics with their
/// partitions.
fn by_topic<T: Copy>(
    items: &[TopicPartition],
    value: impl Fn(&TopicPartition) -> T,
) -> BTreeMap<String, Vec<(i32, T)>> {
    let mut topics: BTreeMap<String, Vec<(i32, T)>> = BTreeMap::new();
    for tp in items {
        topics
            .entry(tp.0.clone())
            .or_default()
            .push((tp.1, value(tp)));
    }
    topics
}

impl Admin {
    /// The node leading each partition.
    async fn leaders(
        &self,
        items: Vec<TopicPartition>,
    ) -> (
        BTreeMap<i32, Vec<TopicPartition>>,
        Vec<(TopicPartition, crate::Error)>,
    ) {
        by_node(items, |(t, p)| async move {
            self.client
                .leader(&t, p)
                .await
                .map(|b| b.node_id)
                .map_err(|e| e.with_resource(format!("{t}/{p}")))
        })
        .await
    }

    /// Offsets of many partitions, in one ListOffsets request per leader.
    pub async fn list_offsets(
        &self,
        wanted: BTreeMap<TopicPartition, OffsetSpec>,
    ) -> Results<TopicPartition, ListedOffset> {
        let api = ApiKey::ListOffsets;
        let wanted = &wanted;
        self.per_item(api, wanted.keys().cloned().collect(), |pending| async move {
            let (nodes, failed) = self.leaders(pending).await;
            let mut out: Results<TopicPartition, ListedOffset> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, items) in nodes {
                let answered = async {
                    let (conn, broker) = self.node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let topics = by_topic(&items, |tp| wanted.get(tp).map_or(-1, |s| s.wire()));
                    if version == 0 {
                        if let Some(((t, p), _)) = wanted
                            .iter()
                            .find(|(tp, s)| items.contains(tp) && matches!(s, OffsetSpec::Timestamp(_)))
                        {
                            return Err(invalid(
                                api,
                                format!("{t}/{p}"),
                                format!("{} serves only ListOffsets v0, which cannot look up by time", broker.addr()),
                            ));
                        }
                    }
                    let mut request = ListOffsetsRequest {
                        replica_id: -1,
                        topics: topics
                            .into_iter()
                            .map(|(name, partitions)| ListOffsetsTopic {
                                name: StrBytes::from(name),
                                partitions: partitions
                                    .into_iter()
                                    .map(|(p, timestamp)| ListOffsetsPartition {
                                        partition_index: p,
                                        current_leader_epoch: -1,
                                        timestamp,
                                        max_num_offsets: 1,
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
                    let mut answered = BTreeMap::new();
                    for t in response.topics {
                        for p in t.partitions {
                            let tp = (t.name.to_string(), p.partition_index);
                            let result = check(p.error_code, None, api, &addr, || {
                                format!("{}/{}", tp.0, tp.1)
                            })
                            .map(|()| {
                                let offset = if version == 0 {
                                    p.old_style_offsets.first().copied().unwrap_or(-1)
                                } else {
                                    p.offset
                                };
                                ListedOffset {
                                    offset: (offset >= 0).then_some(offset),
                                    timestamp: p.timestamp,
                                    leader_epoch: p.leader_epoch,
                                }
                            });
                            answered.insert(tp, result);
                        }
                    }
                    Ok::<_, crate::Error>(answered)
                }
                .await;
                spread(&mut out, items, answered);
            }
            Ok(out)
        })
        .await
    }

    /// The log end offset of each partition (a [`list_offsets`](Self::list_offsets)
    /// of [`OffsetSpec::Latest`]).
    pub async fn end_offsets(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Results<TopicPartition, i64> {
        let wanted = partitions
            .into_iter()
            .map(|tp| (tp, OffsetSpec::Latest))
            .collect();
        self.list_offsets(wanted)
            .await
            .into_iter()
            .map(|(tp, r)| (tp, r.map(|o| o.offset.unwrap_or(0))))
            .collect()
    }

    /// Deletes the records of each partition before the offset given (-1: every
    /// record), in one DeleteRecords request per leader; answers each partition's new
    /// log start (its low watermark). An offset past the log end answers
    /// OFFSET_OUT_OF_RANGE.
    pub async fn delete_records(
        &self,
        before: BTreeMap<TopicPartition, i64>,
    ) -> Results<TopicPartition, i64> {
        let api = ApiKey::DeleteRecords;
        let mut refused: Results<TopicPartition, i64> = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        for ((t, p), offset) in before {
            if offset < -1 {
                let m = format!("offset {offset}: give an offset, or -1 for the log end");
                refused.insert((t.clone(), p), Err(invalid(api, format!("{t}/{p}"), m)));
            } else {
                wanted.insert((t, p), offset);
            }
        }
        let wanted = &wanted;
        let mut results = self
            .per_item(
                api,
                wanted.keys().cloned().collect(),
                |pending| async move {
                    let (nodes, failed) = self.leaders(pending).await;
                    let mut out: Results<TopicPartition, i64> =
                        failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
                    for (node, items) in nodes {
                        let answered = async {
                            let (conn, broker) = self.node(node).await?;
                            let version = Self::version(&conn, api)?;
                            let request = DeleteRecordsRequest {
                                topics: by_topic(&items, |tp| wanted.get(tp).copied().unwrap_or(0))
                                    .into_iter()
                                    .map(|(name, partitions)| DeleteRecordsTopic {
                                        name: StrBytes::from(name),
                                        partitions: partitions
                                            .into_iter()
                                            .map(|(p, offset)| DeleteRecordsPartition {
                                                partition_index: p,
                                                offset,
                                                ..Default::default()
                                            })
                                            .collect(),
                                        ..Default::default()
                                    })
                                    .collect(),
                                timeout_ms: self.timeout_ms(),
                                ..Default::default()
                            };
                            let response = conn.send_version(&request, version).await?;
                            let addr = broker.addr();
                            let mut answered = BTreeMap::new();
                            for t in response.topics {
                                for p in t.partitions {
                                    let tp = (t.name.to_string(), p.partition_index);
                                    let result = check(p.error_code, None, api, &addr, || {
                                        format!("{}/{}", tp.0, tp.1)
                                    })
                                    .map(|()| p.low_watermark);
                                    answered.insert(tp, result);
                                }
                            }
                            Ok::<_, crate::Error>(answered)
                        }
                        .await;
                        spread(&mut out, items, answered);
                    }
                    Ok(out)
                },
            )
            .await;
        results.append(&mut refused);
        results
    }
}
