//! DescribeConfigs: every config of a topic (set ones as `DYNAMIC_TOPIC_CONFIG`, the
//! rest at Kafka's defaults), or of the broker answering (a broker resource for
//! another broker is refused with INVALID_REQUEST, as Kafka does).

use super::super::Cluster;
use super::{
    broker_def, BROKER, BROKER_CONFIGS, DEFAULT_CONFIG, DYNAMIC_BROKER_CONFIG,
    DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, TOPIC, TOPIC_CONFIGS,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::sync::Arc;

/// A config as described: name, value, source, type, read-only.
struct Described {
    name: &'static str,
    value: String,
    source: i8,
    kind: i8,
    read_only: bool,
    default: &'static str,
}

pub(crate) fn handle(
    cluster: &Arc<Cluster>,
    node: i32,
    r: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = r
        .resources
        .iter()
        .map(|res| {
            let mut out = DescribeConfigsResult {
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                ..Default::default()
            };
            let described = match describe(cluster, node, res.resource_type, &res.resource_name) {
                Ok(d) => d,
                Err((code, message)) => {
                    out.error_code = code.code();
                    out.error_message = Some(StrBytes::from(message));
                    return out;
                }
            };
            out.configs = described
                .into_iter()
                .filter(|d| {
                    res.configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == d.name))
                })
                .map(|d| {
                    let mut synonyms = Vec::new();
                    if r.include_synonyms {
                        if d.source != DEFAULT_CONFIG {
                            synonyms.push(DescribeConfigsSynonym {
                                name: d.name.into(),
                                value: Some(StrBytes::from(d.value.clone())),
                                source: d.source,
                                ..Default::default()
                            });
                        }
                        synonyms.push(DescribeConfigsSynonym {
                            name: d.name.into(),
                            value: Some(d.default.into()),
                            source: DEFAULT_CONFIG,
                            ..Default::default()
                        });
                    }
                    DescribeConfigsResourceResult {
                        name: d.name.into(),
                        value: Some(StrBytes::from(d.value)),
                        read_only: d.read_only,
                        is_default: d.source == DEFAULT_CONFIG,
                        config_source: d.source,
                        is_sensitive: false,
                        synonyms,
                        config_type: d.kind,
                        documentation: None,
                        ..Default::default()
                    }
                })
                .collect();
            out
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

fn describe(
    cluster: &Cluster,
    node: i32,
    resource_type: i8,
    name: &str,
) -> Result<Vec<Described>, (ErrorCode, String)> {
    match resource_type {
        TOPIC => {
            let id = cluster
                .state()
                .topics
                .get(name)
                .map(|t| t.id)
                .ok_or_else(|| {
                    (
                        ErrorCode::UnknownTopicOrPartition,
                        format!("Topic {name} does not exist."),
                    )
                })?;
            let configs = cluster.admin.configs();
            let set = configs.topics.get(&id);
            Ok(TOPIC_CONFIGS
                .iter()
                .map(|d| {
                    let value = set.and_then(|s| s.get(d.name));
                    Described {
                        name: d.name,
                        value: value.cloned().unwrap_or_else(|| d.default.to_string()),
                        source: if value.is_some() {
                            DYNAMIC_TOPIC_CONFIG
                        } else {
                            DEFAULT_CONFIG
                        },
                        kind: d.kind.code(),
                        read_only: false,
                        default: d.default,
                    }
                })
                .collect())
        }
        BROKER => {
            check_broker(node, name)?;
            let configs = cluster.admin.configs();
            let set = configs.brokers.get(&node);
            Ok(BROKER_CONFIGS
                .iter()
                .map(|b| {
                    let d = &b.def;
                    let value = set.and_then(|s| s.get(d.name));
                    let fixed = match d.name {
                        "num.partitions" => Some(cluster.config.default_partitions.to_string()),
                        "auto.create.topics.enable" => {
                            Some(cluster.config.auto_create_topics.to_string())
                        }
                        _ => None,
                    };
                    let source = if value.is_some() {
                        DYNAMIC_BROKER_CONFIG
                    } else if fixed.as_deref().is_some_and(|f| f != d.default) {
                        STATIC_BROKER_CONFIG
                    } else {
                        DEFAULT_CONFIG
                    };
                    Described {
                        name: d.name,
                        value: value
                            .cloned()
                            .or(fixed)
                            .unwrap_or_else(|| d.default.to_string()),
                        source,
                        kind: d.kind.code(),
                        read_only: !broker_def(d.name).is_some_and(|b| b.dynamic),
                        default: d.default,
                    }
                })
                .collect())
        }
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// A broker resource must name the broker answering (Kafka routes them so).
pub(crate) fn check_broker(node: i32, name: &str) -> Result<(), (ErrorCode, String)> {
    if name.is_empty() || name.parse::<i32>() == Ok(node) {
        Ok(())
    } else {
        Err((
            ErrorCode::InvalidRequest,
            format!("Unexpected broker id, expected {node} or empty string, but received {name}"),
        ))
    }
}
