//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on topic configs and on
//! the answering broker's dynamic configs. Each resource is all or nothing: every
//! operation is checked first (unknown config, invalid value, APPEND on a non-list
//! config, a static broker config), and nothing changes if one fails, nor with
//! `validate_only`.

use super::super::Cluster;
use super::describe_configs::check_broker;
use super::{broker_def, check_topic_config, topic_def, Kind, BROKER, TOPIC};
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::collections::BTreeMap;
use std::sync::Arc;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

type Failure = (ErrorCode, String);

pub(crate) fn handle(
    cluster: &Arc<Cluster>,
    node: i32,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = r
        .resources
        .iter()
        .map(|res| {
            let mut out = AlterConfigsResourceResponse {
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                ..Default::default()
            };
            if let Err((code, m)) = alter(
                cluster,
                node,
                res.resource_type,
                &res.resource_name,
                &res.configs,
                r.validate_only,
            ) {
                out.error_code = code.code();
                out.error_message = Some(StrBytes::from(m));
            }
            out
        })
        .collect();
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

fn alter(
    cluster: &Cluster,
    node: i32,
    resource_type: i8,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Failure> {
    let mut seen: Vec<&str> = Vec::new();
    for op in ops {
        if seen.contains(&op.name.as_str()) {
            return Err((
                ErrorCode::InvalidRequest,
                format!("Error due to duplicate config keys: {}", op.name.as_str()),
            ));
        }
        seen.push(op.name.as_str());
    }
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
            let mut configs = cluster.admin.configs();
            let current = configs.topics.get(&id).cloned().unwrap_or_default();
            let next = apply(
                &current,
                ops,
                |n| topic_def(n).map(|d| (d.kind, d.default)),
                "topic",
                |n, v| check_topic_config(n, Some(v)),
            )?;
            if !validate_only {
                configs.topics.insert(id, next);
            }
            Ok(())
        }
        BROKER => {
            check_broker(node, name)?;
            let mut configs = cluster.admin.configs();
            let current = configs.brokers.get(&node).cloned().unwrap_or_default();
            for op in ops {
                if broker_def(&op.name).is_some_and(|b| !b.dynamic) {
                    return Err((
                        ErrorCode::InvalidRequest,
                        format!(
                            "Cannot update these configs dynamically: Set({})",
                            op.name.as_str()
                        ),
                    ));
                }
            }
            let next = apply(
                &current,
                ops,
                |n| broker_def(n).map(|b| (b.def.kind, b.def.default)),
                "broker",
                |n, v| {
                    let d = broker_def(n).ok_or_else(|| {
                        (
                            ErrorCode::InvalidConfig,
                            format!("Unknown broker config name: {n}"),
                        )
                    })?;
                    d.def
                        .kind
                        .check(n, v)
                        .map_err(|m| (ErrorCode::InvalidConfig, m))
                },
            )?;
            if !validate_only {
                configs.brokers.insert(node, next);
            }
            Ok(())
        }
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// The configs after `ops`, or the first operation's error.
fn apply(
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
    def: impl Fn(&str) -> Option<(Kind, &'static str)>,
    what: &str,
    check: impl Fn(&str, &str) -> Result<(), Failure>,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut next = current.clone();
    for op in ops {
        let name = op.name.as_str();
        let Some((kind, default)) = def(name) else {
            return Err((
                ErrorCode::InvalidConfig,
                format!("Unknown {what} config name: {name}"),
            ));
        };
        let value = op.value.as_deref();
        match op.config_operation {
            SET => {
                let v = value.ok_or_else(|| {
                    (
                        ErrorCode::InvalidRequest,
                        format!("Null value not supported for : {name}"),
                    )
                })?;
                check(name, v)?;
                next.insert(name.to_string(), v.to_string());
            }
            DELETE => {
                next.remove(name);
            }
            APPEND | SUBTRACT => {
                if !matches!(kind, Kind::List(_)) {
                    let verb = if op.config_operation == APPEND {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err((
                        ErrorCode::InvalidConfig,
                        format!("Config value {verb} is not allowed for config key: {name}"),
                    ));
                }
                let v = value.ok_or_else(|| {
                    (
                        ErrorCode::InvalidRequest,
                        format!("Null value not supported for : {name}"),
                    )
                })?;
                let now = next.get(name).map_or(default, String::as_str);
                let mut items: Vec<String> = now
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                check(name, &joined)?;
                next.insert(name.to_string(), joined);
            }
            other => {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!("Unknown alter config operation {other} for {name}"),
                ));
            }
        }
    }
    Ok(next)
}
