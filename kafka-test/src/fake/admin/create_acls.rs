//! CreateAcls: each creation is checked as Kafka does (INVALID_REQUEST otherwise)
//! and stored; creating an ACL that exists changes nothing.

use super::super::Cluster;
use super::acl_store::Acl;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::StrBytes;

pub(crate) fn handle(cluster: &Cluster, r: CreateAclsRequest) -> CreateAclsResponse {
    let mut acls = cluster.admin.acls();
    let results = r
        .creations
        .iter()
        .map(|c| {
            let acl = Acl {
                resource_type: c.resource_type,
                name: c.resource_name.to_string(),
                pattern: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            };
            match acl.problem() {
                Some((code, m)) => AclCreationResult {
                    error_code: code.code(),
                    error_message: Some(StrBytes::from(m)),
                    ..Default::default()
                },
                None => {
                    if !acls.contains(&acl) {
                        acls.push(acl);
                    }
                    AclCreationResult::default()
                }
            }
        })
        .collect();
    CreateAclsResponse {
        results,
        ..Default::default()
    }
}
