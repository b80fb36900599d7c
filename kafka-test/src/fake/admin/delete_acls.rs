//! DeleteAcls: each filter deletes the stored ACLs it matches and lists them.

use super::super::Cluster;
use super::acl_store::Filter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::{ErrorCode, StrBytes};

pub(crate) fn handle(cluster: &Cluster, r: DeleteAclsRequest) -> DeleteAclsResponse {
    let mut acls = cluster.admin.acls();
    let filter_results = r
        .filters
        .iter()
        .map(|f| {
            let filter = Filter {
                resource_type: f.resource_type_filter,
                name: f.resource_name_filter.as_deref(),
                pattern: f.pattern_type_filter,
                principal: f.principal_filter.as_deref(),
                host: f.host_filter.as_deref(),
                operation: f.operation,
                permission: f.permission_type,
            };
            if let Some(m) = filter.problem() {
                return DeleteAclsFilterResult {
                    error_code: ErrorCode::InvalidRequest.code(),
                    error_message: Some(StrBytes::from(m)),
                    ..Default::default()
                };
            }
            let (gone, kept): (Vec<_>, Vec<_>) = acls.drain(..).partition(|a| filter.matches(a));
            *acls = kept;
            DeleteAclsFilterResult {
                matching_acls: gone
                    .into_iter()
                    .map(|a| DeleteAclsMatchingAcl {
                        resource_type: a.resource_type,
                        resource_name: StrBytes::from(a.name),
                        pattern_type: a.pattern,
                        principal: StrBytes::from(a.principal),
                        host: StrBytes::from(a.host),
                        operation: a.operation,
                        permission_type: a.permission,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    DeleteAclsResponse {
        filter_results,
        ..Default::default()
    }
}
