//! DescribeAcls: the stored ACLs that match the filter, grouped by resource.

use super::super::Cluster;
use super::acl_store::Filter;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::{ErrorCode, StrBytes};
use std::collections::BTreeMap;

pub(crate) fn handle(cluster: &Cluster, r: DescribeAclsRequest) -> DescribeAclsResponse {
    let filter = Filter {
        resource_type: r.resource_type_filter,
        name: r.resource_name_filter.as_deref(),
        pattern: r.pattern_type_filter,
        principal: r.principal_filter.as_deref(),
        host: r.host_filter.as_deref(),
        operation: r.operation,
        permission: r.permission_type,
    };
    if let Some(m) = filter.problem() {
        return DescribeAclsResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some(StrBytes::from(m)),
            ..Default::default()
        };
    }
    let acls = cluster.admin.acls();
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in acls.iter().filter(|a| filter.matches(a)) {
        resources
            .entry((acl.resource_type, acl.name.clone(), acl.pattern))
            .or_default()
            .push(AclDescription {
                principal: StrBytes::from(acl.principal.clone()),
                host: StrBytes::from(acl.host.clone()),
                operation: acl.operation,
                permission_type: acl.permission,
                ..Default::default()
            });
    }
    DescribeAclsResponse {
        resources: resources
            .into_iter()
            .map(
                |((resource_type, name, pattern_type), acls)| DescribeAclsResource {
                    resource_type,
                    resource_name: StrBytes::from(name),
                    pattern_type,
                    acls,
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}
