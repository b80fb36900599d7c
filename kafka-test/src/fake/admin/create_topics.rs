//! CreateTopics with configs and replication: checks each topic's configs against
//! Kafka's definitions (an invalid one fails that topic, which is not created), then
//! creates the rest as the base handler does, and keeps their configs and replicas.

use super::super::Cluster;
use super::check_topic_config;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The CreateTopics handler that creates topics without configs.
type Base = fn(&Arc<Cluster>, CreateTopicsRequest) -> CreateTopicsResponse;

pub(crate) fn handle(
    cluster: &Arc<Cluster>,
    mut r: CreateTopicsRequest,
    base: Base,
) -> CreateTopicsResponse {
    let mut refused: BTreeMap<usize, CreatableTopicResult> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for (i, t) in r.topics.iter().enumerate() {
        let name = t.name.to_string();
        if names.contains(&name) {
            // Kafka answers a topic named twice with INVALID_REQUEST for each.
            refused.insert(i, failed(&t.name, ErrorCode::InvalidRequest, format!("Create topics request from client contains multiple entries for topic {name}.")));
            continue;
        }
        names.push(name.clone());
        for c in &t.configs {
            if let Err((code, m)) = check_topic_config(&c.name, c.value.as_deref()) {
                refused.insert(i, failed(&t.name, code, m));
                break;
            }
        }
        if t.replication_factor > 0 && t.num_partitions > 0 && !t.assignments.is_empty() {
            refused.insert(i, failed(&t.name, ErrorCode::InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into()));
        }
    }
    let all = std::mem::take(&mut r.topics);
    let wanted: Vec<_> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains_key(i))
        .map(|(_, t)| t.clone())
        .collect();
    let validate_only = r.validate_only;
    r.topics = wanted.clone();
    let base = base(cluster, r);
    let mut created = base.topics.into_iter();
    let mut topics = Vec::new();
    let mut wanted = wanted.into_iter();
    for i in 0..all.len() {
        if let Some(f) = refused.remove(&i) {
            topics.push(f);
            continue;
        }
        let (Some(mut result), Some(t)) = (created.next(), wanted.next()) else {
            break;
        };
        let rf = if t.replication_factor < 0 {
            1
        } else {
            t.replication_factor
        };
        if result.error_code == 0 {
            result.replication_factor = rf;
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            result.configs = Some(
                super::TOPIC_CONFIGS
                    .iter()
                    .map(|d| {
                        let set = configs.get(d.name);
                        CreatableTopicConfigs {
                            name: d.name.into(),
                            value: Some(StrBytes::from(
                                set.cloned().unwrap_or_else(|| d.default.to_string()),
                            )),
                            config_source: if set.is_some() {
                                super::DYNAMIC_TOPIC_CONFIG
                            } else {
                                super::DEFAULT_CONFIG
                            },
                            ..Default::default()
                        }
                    })
                    .collect(),
            );
            if !validate_only {
                keep(cluster, &t.name, rf, configs);
            }
        }
        topics.push(result);
    }
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

/// Keeps a created topic's configs, and gives its partitions `rf` replicas.
fn keep(cluster: &Cluster, name: &str, rf: i16, configs: BTreeMap<String, String>) {
    let brokers = cluster.config.brokers.max(1);
    let id = {
        let mut state = cluster.state();
        let Some(topic) = state.topics.get_mut(name) else {
            return;
        };
        for p in &mut topic.partitions {
            p.replicas = (0..i32::from(rf))
                .map(|k| (p.leader + k) % brokers)
                .collect();
        }
        topic.id
    };
    cluster.admin.configs().topics.insert(id, configs);
}

fn failed(name: &StrBytes, code: ErrorCode, message: String) -> CreatableTopicResult {
    CreatableTopicResult {
        name: name.clone(),
        error_code: code.code(),
        error_message: Some(StrBytes::from(message)),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    }
}
