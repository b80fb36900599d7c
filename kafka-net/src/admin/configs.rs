//! Configs of topics and brokers: describe, and alter incrementally.

use super::{by_node, check, invalid, spread, Admin, Results};
use crate::error::Result;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::{ApiKey, StrBytes};
use std::collections::BTreeMap;
use std::fmt;

/// Something that has configs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ConfigResource {
    /// A topic, by name (resource type 2).
    Topic(String),
    /// A broker, by node id (resource type 4); its requests go to that broker.
    Broker(i32),
}

impl ConfigResource {
    fn resource_type(&self) -> i8 {
        match self {
            ConfigResource::Topic(_) => 2,
            ConfigResource::Broker(_) => 4,
        }
    }

    fn name(&self) -> String {
        match self {
            ConfigResource::Topic(t) => t.clone(),
            ConfigResource::Broker(b) => b.to_string(),
        }
    }

    fn from_wire(resource_type: i8, name: &str) -> Option<ConfigResource> {
        match resource_type {
            2 => Some(ConfigResource::Topic(name.to_string())),
            4 => name.parse().ok().map(ConfigResource::Broker),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(t) => write!(f, "topic {t}"),
            ConfigResource::Broker(b) => write!(f, "broker {b}"),
        }
    }
}

/// Where a config's value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`).
    DynamicTopic,
    /// Set dynamically on this broker (`DYNAMIC_BROKER_CONFIG`).
    DynamicBroker,
    /// Set dynamically as every broker's default (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
    DynamicDefaultBroker,
    /// From the broker's properties file (`STATIC_BROKER_CONFIG`).
    StaticBroker,
    /// Kafka's default (`DEFAULT_CONFIG`).
    Default,
    /// Anything else, by its code.
    Other(i8),
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            c => ConfigSource::Other(c),
        }
    }
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The config's name (`retention.ms`).
    pub name: String,
    /// Its value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// True when it cannot be altered.
    pub read_only: bool,
    /// True when the value is a password or key, and not shown.
    pub sensitive: bool,
}

impl ConfigEntry {
    /// True when the value is Kafka's default (not set on the resource).
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// One change of [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlterConfigOp {
    /// Sets a config (`SET`).
    Set(String, String),
    /// Removes a config, back to its default (`DELETE`).
    Delete(String),
    /// Adds a value to a list config (`APPEND`).
    Append(String, String),
    /// Removes a value from a list config (`SUBTRACT`).
    Subtract(String, String),
}

impl AlterConfigOp {
    fn to_wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            AlterConfigOp::Set(n, v) => (n, 0, Some(v)),
            AlterConfigOp::Delete(n) => (n, 1, None),
            AlterConfigOp::Append(n, v) => (n, 2, Some(v)),
            AlterConfigOp::Subtract(n, v) => (n, 3, Some(v)),
        };
        AlterableConfig {
            name: StrBytes::from(name.clone()),
            config_operation: op,
            value: value.map(|v| StrBytes::from(v.clone())),
            ..Default::default()
        }
    }

    fn name(&self) -> &str {
        match self {
            AlterConfigOp::Set(n, _)
            | AlterConfigOp::Delete(n)
            | AlterConfigOp::Append(n, _)
            | AlterConfigOp::Subtract(n, _) => n,
        }
    }
}

/// The node a resource's request goes to: a broker's to itself, a topic's to the
/// controller (-1).
fn target(r: &ConfigResource) -> i32 {
    match r {
        ConfigResource::Broker(b) => *b,
        ConfigResource::Topic(_) => -1,
    }
}

impl Admin {
    async fn config_node(&self, node: i32) -> Result<(std::sync::Arc<crate::Connection>, String)> {
        let (conn, broker) = if node < 0 {
            self.controller().await?
        } else {
            self.node(node).await?
        };
        Ok((conn, broker.addr()))
    }

    /// Every config of each resource (sorted by name): one DescribeConfigs for the
    /// topics, one to each broker for its own configs. An unknown topic answers
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_configs(
        &self,
        resources: Vec<ConfigResource>,
    ) -> Results<ConfigResource, Vec<ConfigEntry>> {
        let api = ApiKey::DescribeConfigs;
        self.per_item(api, resources, |pending| async move {
            let (nodes, failed) = by_node(pending, |r| async move { Ok(target(&r)) }).await;
            let mut out: Results<ConfigResource, Vec<ConfigEntry>> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, items) in nodes {
                let answered = async {
                    let (conn, addr) = self.config_node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let request = DescribeConfigsRequest {
                        resources: items
                            .iter()
                            .map(|r| DescribeConfigsResource {
                                resource_type: r.resource_type(),
                                resource_name: StrBytes::from(r.name()),
                                configuration_keys: None,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let response = conn.send_version(&request, version).await?;
                    let mut answered = BTreeMap::new();
                    for r in response.results {
                        let Some(resource) =
                            ConfigResource::from_wire(r.resource_type, &r.resource_name)
                        else {
                            continue;
                        };
                        let result =
                            check(r.error_code, r.error_message.as_deref(), api, &addr, || {
                                resource.to_string()
                            })
                            .map(|()| {
                                let mut entries: Vec<ConfigEntry> = r
                                    .configs
                                    .iter()
                                    .map(|c| ConfigEntry {
                                        name: c.name.to_string(),
                                        value: c.value.as_ref().map(|v| v.to_string()),
                                        source: if version == 0 {
                                            if c.is_default {
                                                ConfigSource::Default
                                            } else {
                                                ConfigSource::Other(0)
                                            }
                                        } else {
                                            ConfigSource::from_code(c.config_source)
                                        },
                                        read_only: c.read_only,
                                        sensitive: c.is_sensitive,
                                    })
                                    .collect();
                                entries.sort_by(|a, b| a.name.cmp(&b.name));
                                entries
                            });
                        answered.insert(resource, result);
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

    /// Changes configs of resources, leaving the others as they are
    /// (IncrementalAlterConfigs, Kafka 2.3+; `validate_only`: checks only). Each
    /// resource is all or nothing: an invalid name or value fails it and changes none
    /// of its configs. A resource with no change, or a config changed twice, is refused
    /// here.
    pub async fn incremental_alter_configs(
        &self,
        changes: Vec<(ConfigResource, Vec<AlterConfigOp>)>,
        validate_only: bool,
    ) -> Results<ConfigResource, ()> {
        let api = ApiKey::IncrementalAlterConfigs;
        let mut refused: Results<ConfigResource, ()> = BTreeMap::new();
        let mut wanted: BTreeMap<ConfigResource, Vec<AlterConfigOp>> = BTreeMap::new();
        for (resource, ops) in changes {
            let mut names: Vec<&str> = ops.iter().map(AlterConfigOp::name).collect();
            names.sort_unstable();
            let twice = names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
            let problem = if ops.is_empty() {
                Some("no config to change".to_string())
            } else if let Some(n) = twice {
                Some(format!("config {n} is changed twice"))
            } else if wanted.contains_key(&resource) {
                Some("the resource is given twice".to_string())
            } else {
                None
            };
            match problem {
                Some(m) => {
                    wanted.remove(&resource);
                    let what = resource.to_string();
                    refused.insert(resource, Err(invalid(api, what, m)));
                }
                None => {
                    wanted.insert(resource, ops);
                }
            }
        }
        let wanted = &wanted;
        let mut results = self
            .per_item(
                api,
                wanted.keys().cloned().collect(),
                |pending| async move {
                    let (nodes, failed) = by_node(pending, |r| async move { Ok(target(&r)) }).await;
                    let mut out: Results<ConfigResource, ()> =
                        failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
                    for (node, items) in nodes {
                        let answered = async {
                            let (conn, addr) = self.config_node(node).await?;
                            let version = Self::version(&conn, api)?;
                            let request = IncrementalAlterConfigsRequest {
                                resources: items
                                    .iter()
                                    .map(|r| AlterConfigsResource {
                                        resource_type: r.resource_type(),
                                        resource_name: StrBytes::from(r.name()),
                                        configs: wanted
                                            .get(r)
                                            .map(|ops| {
                                                ops.iter().map(AlterConfigOp::to_wire).collect()
                                            })
                                            .unwrap_or_default(),
                                        ..Default::default()
                                    })
                                    .collect(),
                                validate_only,
                                ..Default::default()
                            };
                            let response = conn.send_version(&request, version).await?;
                            let mut answered = BTreeMap::new();
                            for r in response.responses {
                                let Some(resource) =
                                    ConfigResource::from_wire(r.resource_type, &r.resource_name)
                                else {
                                    continue;
                                };
                                let result = check(
                                    r.error_code,
                                    r.error_message.as_deref(),
                                    api,
                                    &addr,
                                    || resource.to_string(),
                                );
                                answered.insert(resource, result);
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
