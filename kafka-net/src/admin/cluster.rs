//! The cluster: brokers, controller, cluster id.

use super::{check, Admin};
use crate::client::Client;
use crate::cluster::BrokerInfo;
use crate::error::Result;
use kafka_protocol::messages::DescribeClusterRequest;
use kafka_protocol::ApiKey;

/// What [`Admin::describe_cluster`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// The cluster's id (`None` from brokers before Kafka 0.10.1).
    pub cluster_id: Option<String>,
    /// Node id of the controller; -1 when the cluster names none.
    pub controller: i32,
    /// Brokers, by node id.
    pub brokers: Vec<BrokerInfo>,
}

impl Admin {
    /// Brokers, controller and cluster id: DescribeCluster where the broker serves
    /// it (Kafka 2.8+), else Metadata.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let api = ApiKey::DescribeCluster;
        let (conn, broker) = self.controller().await?;
        if let Ok(version) = Self::version(&conn, api) {
            let request = DescribeClusterRequest::default();
            let response = conn.send_version(&request, version).await?;
            check(
                response.error_code,
                response.error_message.as_deref(),
                api,
                &broker.addr(),
                || "the cluster".to_string(),
            )?;
            let mut brokers: Vec<BrokerInfo> = response
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    node_id: b.broker_id,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect();
            brokers.sort_by_key(|b| b.node_id);
            return Ok(ClusterDescription {
                cluster_id: Some(response.cluster_id.to_string()),
                controller: response.controller_id,
                brokers,
            });
        }
        let m = self.client.refresh_metadata().await?;
        Ok(ClusterDescription {
            cluster_id: m.cluster_id.clone(),
            controller: m.controller_id,
            brokers: m.brokers.values().cloned().collect(),
        })
    }
}

/// Which leader [`Admin::elect_leaders`] elects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Election {
    /// The preferred replica (the first of the partition's replicas), if in sync.
    Preferred,
    /// Any live replica, in sync or not, when the partition has no leader (may lose
    /// records).
    Unclean,
}

impl Admin {
    /// Elects leaders of the partitions given (`None`: every partition), one
    /// ElectLeaders to the controller. A partition whose leader is already the one
    /// the election would choose answers ELECTION_NOT_NEEDED.
    pub async fn elect_leaders(
        &self,
        election: Election,
        partitions: Option<Vec<super::TopicPartition>>,
    ) -> Result<super::Results<super::TopicPartition, ()>> {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::ElectLeadersRequest;
        let api = ApiKey::ElectLeaders;
        let (conn, broker) = self.controller().await?;
        let version = Self::version(&conn, api)?;
        if version == 0 && election == Election::Unclean {
            return Err(super::invalid(
                api,
                "unclean election",
                format!(
                    "{} serves only ElectLeaders v0, which elects preferred leaders only",
                    broker.addr()
                ),
            ));
        }
        let topic_partitions = partitions.map(|ps| {
            let mut topics: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
            for (t, p) in ps {
                topics.entry(t).or_default().push(p);
            }
            topics
                .into_iter()
                .map(|(topic, partitions)| TopicPartitions {
                    topic: topic.into(),
                    partitions,
                    ..Default::default()
                })
                .collect()
        });
        let request = ElectLeadersRequest {
            election_type: match election {
                Election::Preferred => 0,
                Election::Unclean => 1,
            },
            topic_partitions,
            timeout_ms: self.timeout_ms(),
            ..Default::default()
        };
        let response = conn.send_version(&request, version).await?;
        let addr = broker.addr();
        check(response.error_code, None, api, &addr, || {
            "the election".into()
        })?;
        let mut out = std::collections::BTreeMap::new();
        for t in response.replica_election_results {
            for p in t.partition_result {
                let tp = (t.topic.to_string(), p.partition_id);
                let r = check(p.error_code, p.error_message.as_deref(), api, &addr, || {
                    format!("{}/{}", tp.0, tp.1)
                });
                out.insert(tp, r);
            }
        }
        Ok(out)
    }
}
