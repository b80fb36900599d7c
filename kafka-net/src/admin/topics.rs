//! Topics: list, describe, create (with configs, replication, validate-only), delete,
//! create partitions.

use super::{check, invalid, Admin, Results};
use crate::client::{Client, NewTopic};
use crate::cluster::PartitionInfo;
use crate::error::Result;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
};
use kafka_protocol::{ApiKey, StrBytes, Uuid};
use std::collections::BTreeMap;

/// A topic of [`Admin::list_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicListing {
    /// The topic's name.
    pub name: String,
    /// Its id (nil before Kafka 2.8).
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// True for Kafka's internal topics (`__consumer_offsets`).
    pub internal: bool,
}

/// A topic of [`Admin::describe_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its id (nil before Kafka 2.8).
    pub id: Uuid,
    /// True for Kafka's internal topics.
    pub internal: bool,
    /// Partitions with leader, replicas and in-sync replicas, by index.
    pub partitions: Vec<PartitionInfo>,
}

/// What the controller says of a topic it created (or would create, validate-only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreatedTopic {
    /// The topic's id (nil for validate-only and brokers before Kafka 2.8).
    pub id: Uuid,
    /// Number of partitions (-1 from brokers before Kafka 2.4).
    pub partitions: i32,
    /// Replication factor (-1 from brokers before Kafka 2.4).
    pub replication_factor: i16,
}

fn valid_topic_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long, more than 249",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        Some(c) => Err(format!(
            "topic name {name:?} has {c:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}

impl Admin {
    /// Every topic of the cluster (without the internal ones unless asked), from fresh
    /// metadata, sorted by name.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicListing>> {
        let m = self.client.refresh_metadata().await?;
        Ok(m.topics
            .values()
            .filter(|t| include_internal || !(t.is_internal || t.name.starts_with("__")))
            .map(|t| TopicListing {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions.len() as i32,
                internal: t.is_internal,
            })
            .collect())
    }

    /// Partitions, leaders and replicas of topics, in one Metadata request; an unknown
    /// topic answers UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_topics(&self, topics: &[&str]) -> Results<String, TopicDescription> {
        let items = topics.iter().map(|t| t.to_string()).collect();
        self.per_item(ApiKey::Metadata, items, |names| async move {
            let (conn, broker) = self.controller().await?;
            let version = Self::version(&conn, ApiKey::Metadata)?;
            let mut request = MetadataRequest {
                topics: Some(
                    names
                        .iter()
                        .map(|n| MetadataRequestTopic {
                            name: Some(StrBytes::from(n.clone())),
                            ..Default::default()
                        })
                        .collect(),
                ),
                allow_auto_topic_creation: false,
                ..Default::default()
            };
            request.retain_version(version);
            let response = conn.send_version(&request, version).await?;
            let addr = broker.addr();
            let mut out = BTreeMap::new();
            for t in response.topics {
                let name = t.name.as_deref().unwrap_or_default().to_string();
                let result = check(t.error_code, None, ApiKey::Metadata, &addr, || {
                    format!("topic {name}")
                })
                .map(|()| {
                    let partitions = PartitionInfo::all_of(&t.partitions);
                    TopicDescription {
                        name: name.clone(),
                        id: t.topic_id,
                        internal: t.is_internal,
                        partitions,
                    }
                });
                out.insert(name, result);
            }
            Ok(out)
        })
        .await
    }

    /// Creates topics in one CreateTopics request to the controller (with
    /// `validate_only`, checks them and creates nothing). Names that are invalid or
    /// given twice are refused here and not sent.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Results<String, CreatedTopic> {
        let api = ApiKey::CreateTopics;
        let mut refused: Results<String, CreatedTopic> = BTreeMap::new();
        let mut by_name: BTreeMap<String, NewTopic> = BTreeMap::new();
        for t in topics {
            let what = format!("topic {}", t.name);
            if let Err(m) = valid_topic_name(&t.name) {
                refused.insert(t.name.clone(), Err(invalid(api, what, m)));
            } else if t.partitions == 0 || t.partitions < -1 {
                let m = format!("{} partitions: give at least 1, or -1", t.partitions);
                refused.insert(t.name.clone(), Err(invalid(api, what, m)));
            } else if t.replication_factor == 0 || t.replication_factor < -1 {
                let m = format!(
                    "replication factor {}: give at least 1, or -1",
                    t.replication_factor
                );
                refused.insert(t.name.clone(), Err(invalid(api, what, m)));
            } else if by_name.contains_key(&t.name) || refused.contains_key(&t.name) {
                let m = "the topic is given twice".to_string();
                by_name.remove(&t.name);
                refused.insert(t.name.clone(), Err(invalid(api, what, m)));
            } else {
                by_name.insert(t.name.clone(), t);
            }
        }
        let by_name = &by_name;
        let mut results = self
            .per_item(api, by_name.keys().cloned().collect(), |names| async move {
                let (conn, broker) = self.controller().await?;
                let version = Self::version(&conn, api)?;
                let mut request = CreateTopicsRequest {
                    topics: names
                        .iter()
                        .filter_map(|n| by_name.get(n))
                        .map(NewTopic::to_creatable)
                        .collect(),
                    timeout_ms: self.timeout_ms(),
                    validate_only,
                    ..Default::default()
                };
                if validate_only && version == 0 {
                    return Err(invalid(
                        api,
                        "validate-only",
                        format!(
                            "{} serves only CreateTopics v0, which cannot validate only",
                            broker.addr()
                        ),
                    ));
                }
                request.retain_version(version);
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                Ok(response
                    .topics
                    .into_iter()
                    .map(|t| {
                        let name = t.name.to_string();
                        let r = check(t.error_code, t.error_message.as_deref(), api, &addr, || {
                            format!("topic {name}")
                        })
                        .map(|()| CreatedTopic {
                            id: t.topic_id,
                            partitions: if version >= 5 { t.num_partitions } else { -1 },
                            replication_factor: if version >= 5 {
                                t.replication_factor
                            } else {
                                -1
                            },
                        });
                        (name, r)
                    })
                    .collect())
            })
            .await;
        if !validate_only {
            let _ = self.client.refresh_metadata().await;
        }
        results.append(&mut refused);
        results
    }

    /// Deletes topics by name in one DeleteTopics request to the controller.
    pub async fn delete_topics(&self, topics: &[&str]) -> Results<String, ()> {
        let api = ApiKey::DeleteTopics;
        let items = topics.iter().map(|t| t.to_string()).collect();
        let results = self
            .per_item(api, items, |names| async move {
                let (conn, broker) = self.controller().await?;
                let version = Self::version(&conn, api)?;
                let request = delete_topics_request(&names, version, self.timeout_ms());
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                Ok(response
                    .responses
                    .into_iter()
                    .map(|r| {
                        let name = r.name.as_deref().unwrap_or_default().to_string();
                        let result =
                            check(r.error_code, r.error_message.as_deref(), api, &addr, || {
                                format!("topic {name}")
                            });
                        (name, result)
                    })
                    .collect())
            })
            .await;
        let _ = self.client.refresh_metadata().await;
        results
    }

    /// Raises topics' partition counts to the totals given (`validate_only`: checks
    /// only), in one CreatePartitions request; a total not above the current count is
    /// refused by the broker with INVALID_PARTITIONS.
    pub async fn create_partitions(
        &self,
        totals: &[(&str, i32)],
        validate_only: bool,
    ) -> Results<String, ()> {
        let api = ApiKey::CreatePartitions;
        let mut refused: Results<String, ()> = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        for &(topic, total) in totals {
            if total < 1 {
                let m = format!("{total} partitions: a topic has at least 1");
                refused.insert(
                    topic.to_string(),
                    Err(invalid(api, format!("topic {topic}"), m)),
                );
            } else {
                wanted.insert(topic.to_string(), total);
            }
        }
        let wanted = &wanted;
        let mut results = self
            .per_item(api, wanted.keys().cloned().collect(), |names| async move {
                let (conn, broker) = self.controller().await?;
                let version = Self::version(&conn, api)?;
                let request = CreatePartitionsRequest {
                    topics: names
                        .iter()
                        .map(|n| CreatePartitionsTopic {
                            name: StrBytes::from(n.clone()),
                            count: wanted.get(n).copied().unwrap_or(1),
                            assignments: None,
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms: self.timeout_ms(),
                    validate_only,
                    ..Default::default()
                };
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                Ok(response
                    .results
                    .into_iter()
                    .map(|r| {
                        let name = r.name.to_string();
                        let result =
                            check(r.error_code, r.error_message.as_deref(), api, &addr, || {
                                format!("topic {name}")
                            });
                        (name, result)
                    })
                    .collect())
            })
            .await;
        if !validate_only {
            let _ = self.client.refresh_metadata().await;
        }
        results.append(&mut refused);
        results
    }
}

/// A DeleteTopics request for `names` in `version`: by name before v6, as topic states
/// (which may carry ids) from v6.
pub(crate) fn delete_topics_request(
    names: &[String],
    version: i16,
    timeout_ms: i32,
) -> DeleteTopicsRequest {
    let names = names.iter().map(|n| StrBytes::from(n.clone()));
    let (topic_names, topics) = if version < 6 {
        (names.collect(), Vec::new())
    } else {
        let states = names.map(|name| DeleteTopicState {
            name: Some(name),
            ..Default::default()
        });
        (Vec::new(), states.collect())
    };
    DeleteTopicsRequest {
        topic_names,
        topics,
        timeout_ms,
        ..Default::default()
    }
}
