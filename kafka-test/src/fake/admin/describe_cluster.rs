//! DescribeCluster: the brokers, the controller (node 0, as Metadata says) and the
//! cluster id.

use super::super::Cluster;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::sync::Arc;

/// Endpoint type of brokers (v1+); 2 (controllers) is not served.
const BROKERS: i8 = 1;

pub(crate) fn handle(cluster: &Arc<Cluster>, r: DescribeClusterRequest) -> DescribeClusterResponse {
    if r.endpoint_type != BROKERS {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedEndpointType.code(),
            error_message: Some(StrBytes::from(format!(
                "endpoint type {} is not served",
                r.endpoint_type
            ))),
            endpoint_type: r.endpoint_type,
            ..Default::default()
        };
    }
    DescribeClusterResponse {
        endpoint_type: BROKERS,
        cluster_id: StrBytes::from(cluster.config.cluster_id.clone()),
        controller_id: 0,
        brokers: cluster
            .broker_ids()
            .into_iter()
            .filter_map(|node| {
                let addr = cluster.addr_of(node)?;
                Some(DescribeClusterBroker {
                    broker_id: node,
                    host: StrBytes::from(addr.ip().to_string()),
                    port: i32::from(addr.port()),
                    rack: None,
                    ..Default::default()
                })
            })
            .collect(),
        cluster_authorized_operations: i32::MIN,
        ..Default::default()
    }
}
