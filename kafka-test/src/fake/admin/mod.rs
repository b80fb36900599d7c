//! The fake cluster's admin APIs, one module per API, and the configs they share:
//! topic configs (by topic id, so a deleted and re-created topic starts from the
//! defaults) and dynamic broker configs (by node id), checked against a table of
//! Kafka's config definitions.
//!
//! DeleteGroups and OffsetDelete are modules of the group coordinator
//! (`group/delete_groups.rs`, `group/offset_delete.rs`), whose state they change;
//! their entry points are here.

mod acl_store;
mod create_acls;
mod create_topics;
mod delete_acls;
mod describe_acls;
mod describe_cluster;
mod describe_configs;
mod elect_leaders;
mod errors;
mod incremental_alter_configs;

pub(crate) use create_acls::handle as create_acls;
pub(crate) use create_topics::handle as create_topics;
pub(crate) use delete_acls::handle as delete_acls;
pub(crate) use describe_acls::handle as describe_acls;
pub(crate) use describe_cluster::handle as describe_cluster;
pub(crate) use describe_configs::handle as describe_configs;
pub(crate) use elect_leaders::handle as elect_leaders;
pub(crate) use errors::error_response;
pub(crate) use incremental_alter_configs::handle as alter_configs;

use kafka_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Resource types of the config APIs.
pub(crate) const TOPIC: i8 = 2;
pub(crate) const BROKER: i8 = 4;

/// Config sources of DescribeConfigs.
pub(crate) const DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub(crate) const DYNAMIC_BROKER_CONFIG: i8 = 2;
pub(crate) const STATIC_BROKER_CONFIG: i8 = 4;
pub(crate) const DEFAULT_CONFIG: i8 = 5;

/// A config's type, as DescribeConfigs v3 names it, with how values are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Boolean,
    /// One of these values (case-insensitive as Kafka's validators are, for most).
    Choice(&'static [&'static str]),
    Int(i64),
    Long(i64),
    /// A double in [0, 1].
    Ratio,
    /// A list whose items are each one of these values.
    List(&'static [&'static str]),
}

impl Kind {
    pub(crate) fn code(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::Choice(_) => 2,
            Kind::Int(_) => 3,
            Kind::Long(_) => 5,
            Kind::Ratio => 6,
            Kind::List(_) => 7,
        }
    }

    /// Kafka's complaint about `value`, if any.
    fn check(self, name: &str, value: &str) -> Result<(), String> {
        let bad = |why: &str| {
            Err(format!(
                "Invalid value {value} for configuration {name}: {why}"
            ))
        };
        match self {
            Kind::Boolean => match value.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => bad("Expected value to be either true or false"),
            },
            Kind::Choice(options) => {
                if options.iter().any(|o| o.eq_ignore_ascii_case(value)) {
                    Ok(())
                } else {
                    bad(&format!("String must be one of: {}", options.join(", ")))
                }
            }
            Kind::Int(min) | Kind::Long(min) => {
                let parsed = if matches!(self, Kind::Int(_)) {
                    value.trim().parse::<i32>().map(i64::from).ok()
                } else {
                    value.trim().parse::<i64>().ok()
                };
                match parsed {
                    None if matches!(self, Kind::Int(_)) => bad("Not a number of type INT"),
                    None => bad("Not a number of type LONG"),
                    Some(v) if v < min => bad(&format!("Value must be at least {min}")),
                    Some(_) => Ok(()),
                }
            }
            Kind::Ratio => match value.trim().parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
                Ok(_) => bad("Value must be between 0 and 1"),
                Err(_) => bad("Not a number of type DOUBLE"),
            },
            Kind::List(options) => {
                for item in value.split(',').map(str::trim) {
                    if !options.iter().any(|o| o.eq_ignore_ascii_case(item)) {
                        return bad(&format!("[{item}] is not one of [{}]", options.join(", ")));
                    }
                }
                Ok(())
            }
        }
    }
}

/// A config Kafka defines: name, default and type.
pub(crate) struct Def {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
}

const fn def(name: &'static str, default: &'static str, kind: Kind) -> Def {
    Def {
        name,
        default,
        kind,
    }
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Topic configs and their defaults, as Kafka 3.x documents them.
pub(crate) const TOPIC_CONFIGS: &[Def] = &[
    def(
        "cleanup.policy",
        "delete",
        Kind::List(&["delete", "compact"]),
    ),
    def("compression.type", "producer", Kind::Choice(COMPRESSION)),
    def("delete.retention.ms", "86400000", Kind::Long(0)),
    def("file.delete.delay.ms", "60000", Kind::Long(0)),
    def("flush.messages", "9223372036854775807", Kind::Long(1)),
    def("flush.ms", "9223372036854775807", Kind::Long(0)),
    def("index.interval.bytes", "4096", Kind::Int(0)),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        Kind::Long(1),
    ),
    def("max.message.bytes", "1048588", Kind::Int(0)),
    def(
        "message.timestamp.type",
        "CreateTime",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
    ),
    def("min.cleanable.dirty.ratio", "0.5", Kind::Ratio),
    def("min.compaction.lag.ms", "0", Kind::Long(0)),
    def("min.insync.replicas", "1", Kind::Int(1)),
    def("preallocate", "false", Kind::Boolean),
    def("retention.bytes", "-1", Kind::Long(-1)),
    def("retention.ms", "604800000", Kind::Long(-1)),
    def("segment.bytes", "1073741824", Kind::Int(14)),
    def("segment.index.bytes", "10485760", Kind::Int(4)),
    def("segment.jitter.ms", "0", Kind::Long(0)),
    def("segment.ms", "604800000", Kind::Long(1)),
    def("unclean.leader.election.enable", "false", Kind::Boolean),
];

/// Broker configs the fake describes; `dynamic` ones may be altered per broker.
pub(crate) struct BrokerDef {
    pub def: Def,
    pub dynamic: bool,
}

const fn broker(name: &'static str, default: &'static str, kind: Kind, dynamic: bool) -> BrokerDef {
    BrokerDef {
        def: def(name, default, kind),
        dynamic,
    }
}

pub(crate) const BROKER_CONFIGS: &[BrokerDef] = &[
    broker("auto.create.topics.enable", "true", Kind::Boolean, false),
    broker(
        "compression.type",
        "producer",
        Kind::Choice(COMPRESSION),
        true,
    ),
    broker("log.cleaner.threads", "1", Kind::Int(0), true),
    broker("log.retention.bytes", "-1", Kind::Long(-1), true),
    broker("log.retention.ms", "604800000", Kind::Long(-1), true),
    broker("message.max.bytes", "1048588", Kind::Int(0), true),
    broker("num.io.threads", "8", Kind::Int(1), true),
    broker("num.partitions", "1", Kind::Int(1), false),
    broker("default.replication.factor", "1", Kind::Int(1), false),
];

pub(crate) fn topic_def(name: &str) -> Option<&'static Def> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

pub(crate) fn broker_def(name: &str) -> Option<&'static BrokerDef> {
    BROKER_CONFIGS.iter().find(|d| d.def.name == name)
}

/// Checks a topic config as CreateTopics and the alter APIs do.
pub(crate) fn check_topic_config(
    name: &str,
    value: Option<&str>,
) -> Result<(), (ErrorCode, String)> {
    let Some(d) = topic_def(name) else {
        return Err((
            ErrorCode::InvalidConfig,
            format!("Unknown topic config name: {name}"),
        ));
    };
    match value {
        None => Err((
            ErrorCode::InvalidConfig,
            format!("Null value not supported for topic configs: {name}"),
        )),
        Some(v) => d
            .kind
            .check(name, v)
            .map_err(|m| (ErrorCode::InvalidConfig, m)),
    }
}

/// Configs set on topics and brokers.
#[derive(Debug, Default)]
pub(crate) struct Configs {
    pub topics: HashMap<Uuid, BTreeMap<String, String>>,
    pub brokers: HashMap<i32, BTreeMap<String, String>>,
}

/// The admin state of the cluster.
#[derive(Debug, Default)]
pub(crate) struct AdminState {
    configs: Mutex<Configs>,
    acls: Mutex<Vec<acl_store::Acl>>,
}

impl AdminState {
    pub(crate) fn acls(&self) -> MutexGuard<'_, Vec<acl_store::Acl>> {
        self.acls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn configs(&self) -> MutexGuard<'_, Configs> {
        self.configs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// DeleteGroups to broker `node`: the coordinator deletes the groups it coordinates.
pub(crate) fn delete_groups(
    cluster: &super::Cluster,
    node: i32,
    r: kafka_protocol::messages::DeleteGroupsRequest,
) -> kafka_protocol::messages::DeleteGroupsResponse {
    cluster
        .groups
        .delete_groups(r, |g| cluster.coordinator_for(g) == node)
}

/// ListGroups to broker `node`: the groups it coordinates, as each Kafka broker
/// lists only its own.
pub(crate) async fn list_groups(
    cluster: &std::sync::Arc<super::Cluster>,
    node: i32,
    r: kafka_protocol::messages::ListGroupsRequest,
    version: i16,
) -> kafka_protocol::messages::ListGroupsResponse {
    let mut response = cluster.groups.list_groups(r, version).await;
    response
        .groups
        .retain(|g| cluster.coordinator_for(&g.group_id) == node);
    response
}

/// OffsetDelete to broker `node`: NOT_COORDINATOR unless it coordinates the group.
pub(crate) fn offset_delete(
    cluster: &super::Cluster,
    node: i32,
    r: kafka_protocol::messages::OffsetDeleteRequest,
) -> kafka_protocol::messages::OffsetDeleteResponse {
    if cluster.coordinator_for(&r.group_id) != node {
        return kafka_protocol::messages::OffsetDeleteResponse {
            error_code: ErrorCode::NotCoordinator.code(),
            ..Default::default()
        };
    }
    let exists = |topic: &str, p: i32| {
        cluster
            .state()
            .topics
            .get(topic)
            .is_some_and(|t| (0..t.partitions.len() as i32).contains(&p))
    };
    cluster.groups.offset_delete(r, exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_checked_as_kafka_does() {
        assert!(check_topic_config("retention.ms", Some("1000")).is_ok());
        assert!(check_topic_config("retention.ms", Some("-1")).is_ok());
        let (code, m) = check_topic_config("retention.ms", Some("soon")).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidConfig);
        assert!(m.contains("retention.ms") && m.contains("LONG"), "{m}");
        assert!(check_topic_config("retention.ms", Some("-2")).is_err());
        assert!(check_topic_config("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(check_topic_config("cleanup.policy", Some("compact,shred")).is_err());
        assert!(check_topic_config("min.cleanable.dirty.ratio", Some("1.5")).is_err());
        assert!(check_topic_config("segment.bytes", Some("3000000000")).is_err());
        let (_, m) = check_topic_config("retention.msec", Some("1")).unwrap_err();
        assert!(
            m.contains("Unknown topic config name: retention.msec"),
            "{m}"
        );
    }
}
