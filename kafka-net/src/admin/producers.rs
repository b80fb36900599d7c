//! The producers active on partitions (DescribeProducers, one request per leader).

use super::{by_node, check, spread, Admin, Results, TopicPartition};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::DescribeProducersRequest;
use kafka_protocol::{ApiKey, StrBytes};
use std::collections::BTreeMap;

/// A producer with state on a partition (an idempotent or transactional one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerState {
    /// Its producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// The sequence of its last record on the partition.
    pub last_sequence: i32,
    /// The timestamp of its last write (-1 when unknown).
    pub last_timestamp: i64,
    /// The epoch of its transaction coordinator (-1 when not transactional).
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

impl Admin {
    /// The active producers of each partition (Kafka 2.8+), in one
    /// DescribeProducers request per leader.
    pub async fn describe_producers(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Results<TopicPartition, Vec<ProducerState>> {
        let api = ApiKey::DescribeProducers;
        self.per_item(api, partitions, |pending| async move {
            let (nodes, failed) = by_node(pending, |(t, p)| async move {
                self.client
                    .leader(&t, p)
                    .await
                    .map(|b| b.node_id)
                    .map_err(|e| e.with_resource(format!("{t}/{p}")))
            })
            .await;
            let mut out: Results<TopicPartition, Vec<ProducerState>> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, items) in nodes {
                let answered = async {
                    let (conn, broker) = self.node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (t, p) in &items {
                        topics.entry(t.clone()).or_default().push(*p);
                    }
                    let request = DescribeProducersRequest {
                        topics: topics
                            .into_iter()
                            .map(|(name, partition_indexes)| TopicRequest {
                                name: StrBytes::from(name),
                                partition_indexes,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let response = conn.send_version(&request, version).await?;
                    let addr = broker.addr();
                    let mut answered = BTreeMap::new();
                    for t in response.topics {
                        for p in t.partitions {
                            let tp = (t.name.to_string(), p.partition_index);
                            let r =
                                check(p.error_code, p.error_message.as_deref(), api, &addr, || {
                                    format!("{}/{}", tp.0, tp.1)
                                })
                                .map(|()| {
                                    p.active_producers
                                        .iter()
                                        .map(|s| ProducerState {
                                            producer_id: s.producer_id,
                                            producer_epoch: s.producer_epoch,
                                            last_sequence: s.last_sequence,
                                            last_timestamp: s.last_timestamp,
                                            coordinator_epoch: s.coordinator_epoch,
                                            current_txn_start_offset: (s.current_txn_start_offset
                                                >= 0)
                                                .then_some(s.current_txn_start_offset),
                                        })
                                        .collect()
                                });
                            answered.insert(tp, r);
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
}
