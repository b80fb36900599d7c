//! Error answers of the admin APIs, for injected faults
//! ([`FaultAction::Error`](crate::FaultAction::Error)): the code in every error
//! field the answer has, per resource, group, ACL or partition asked for.

use kafka_protocol::messages::*;
use kafka_protocol::{ErrorCode, RequestKind, ResponseKind};

/// The answer to `request` with `code` everywhere, if it is an admin API of this
/// module (the others are answered elsewhere).
pub(crate) fn error_response(request: &RequestKind, code: ErrorCode) -> Option<ResponseKind> {
    use RequestKind as R;
    let c = code.code();
    Some(match request {
        R::DescribeConfigs(r) => DescribeConfigsResponse {
            results: r
                .resources
                .iter()
                .map(|x| describe_configs_response::DescribeConfigsResult {
                    error_code: c,
                    resource_type: x.resource_type,
                    resource_name: x.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::IncrementalAlterConfigs(r) => IncrementalAlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(
                    |x| incremental_alter_configs_response::AlterConfigsResourceResponse {
                        error_code: c,
                        resource_type: x.resource_type,
                        resource_name: x.resource_name.clone(),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DescribeCluster(_) => DescribeClusterResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::DeleteGroups(r) => DeleteGroupsResponse {
            results: r
                .groups_names
                .iter()
                .map(|g| delete_groups_response::DeletableGroupResult {
                    group_id: g.clone(),
                    error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::OffsetDelete(r) => OffsetDeleteResponse {
            error_code: c,
            topics: r
                .topics
                .iter()
                .map(|t| offset_delete_response::OffsetDeleteResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| offset_delete_response::OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code: c,
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DescribeAcls(_) => DescribeAclsResponse {
            error_code: c,
            ..Default::default()
        }
        .into(),
        R::CreateAcls(r) => CreateAclsResponse {
            results: r
                .creations
                .iter()
                .map(|_| create_acls_response::AclCreationResult {
                    error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::DeleteAcls(r) => DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|_| delete_acls_response::DeleteAclsFilterResult {
                    error_code: c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        R::ElectLeaders(r) => ElectLeadersResponse {
            error_code: c,
            replica_election_results: r
                .topic_partitions
                .iter()
                .flatten()
                .map(|t| elect_leaders_response::ReplicaElectionResult {
                    topic: t.topic.clone(),
                    partition_result: t
                        .partitions
                        .iter()
                        .map(|p| elect_leaders_response::PartitionResult {
                            partition_id: *p,
                            error_code: c,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        _ => return None,
    })
}
