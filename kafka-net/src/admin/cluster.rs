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
