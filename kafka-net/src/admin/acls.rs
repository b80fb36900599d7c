//! ACLs: describe, create, delete (what the cluster's authorizer stores).

use super::{check, invalid, Admin, Results};
use crate::error::Result;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::{ApiKey, StrBytes};
use std::collections::BTreeMap;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Its code on the wire.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The value of a code; `None` for codes this client does not know.
            pub fn from_code(code: i8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// What an ACL is on (Kafka's `ResourceType`).
    AclResourceType {
        /// Any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (named `kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user.
        User = 7,
    }
);

wire_enum!(
    /// How an ACL's resource name matches (Kafka's `PatternType`).
    AclPatternType {
        /// Any pattern (filters only).
        Any = 1,
        /// Every ACL that applies to the name: literal, wildcard and prefixed ones
        /// (filters only).
        Match = 2,
        /// The name itself (`*` for every resource).
        Literal = 3,
        /// Every name that starts with it.
        Prefixed = 4,
    }
);

wire_enum!(
    /// What an ACL allows or denies (Kafka's `AclOperation`).
    AclOperation {
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster action.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent write.
        IdempotentWrite = 12,
        /// Create tokens.
        CreateTokens = 13,
        /// Describe tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Allow or deny (Kafka's `AclPermissionType`).
    AclPermission {
        /// Either (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
);

/// An ACL: `principal` from `host` may (or may not) do `operation` on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct AclBinding {
    /// The resource's type.
    pub resource_type: AclResourceType,
    /// The resource's name (or prefix; `*` for all).
    pub name: String,
    /// How the name matches.
    pub pattern: AclPatternType,
    /// Who, as `User:alice` (`User:*` for everyone).
    pub principal: String,
    /// From where (`*` for anywhere).
    pub host: String,
    /// What.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// An ACL that allows `principal` `operation` on a resource, from any host, with
    /// a literal name.
    pub fn allow(
        resource_type: AclResourceType,
        name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            name: name.into(),
            pattern: AclPatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: AclPermission::Allow,
        }
    }

    /// The same ACL with another pattern type.
    pub fn with_pattern(mut self, pattern: AclPatternType) -> Self {
        self.pattern = pattern;
        self
    }

    /// The same ACL with another permission.
    pub fn with_permission(mut self, permission: AclPermission) -> Self {
        self.permission = permission;
        self
    }

    /// Why the ACL cannot be created, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.resource_type == AclResourceType::Any
            || matches!(self.pattern, AclPatternType::Any | AclPatternType::Match)
            || self.operation == AclOperation::Any
            || self.permission == AclPermission::Any
        {
            return Some("ANY and MATCH are for filters; an ACL names each of its parts".into());
        }
        if self.name.is_empty() {
            return Some("the resource name is empty".into());
        }
        if !self.principal.contains(':') {
            return Some(format!(
                "principal {:?} is not TYPE:NAME (User:alice)",
                self.principal
            ));
        }
        None
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ACL {:?} {} from {} {:?} on {:?} {:?} {}",
            self.permission,
            self.principal,
            self.host,
            self.operation,
            self.resource_type,
            self.pattern,
            self.name
        )
    }
}

/// Which ACLs [`Admin::describe_acls`] and [`Admin::delete_acls`] concern: `None`
/// and the `Any` values match everything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct AclFilter {
    /// The resource type.
    pub resource_type: AclResourceType,
    /// The resource name.
    pub name: Option<String>,
    /// How names match (`Match`: every ACL that applies to `name`).
    pub pattern: AclPatternType,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: AclOperation,
    /// The permission.
    pub permission: AclPermission,
}

impl AclFilter {
    /// Every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: AclResourceType::Any,
            name: None,
            pattern: AclPatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// The ACLs of one resource type (and name, when given).
    pub fn on(resource_type: AclResourceType, name: Option<&str>) -> AclFilter {
        AclFilter {
            resource_type,
            name: name.map(str::to_string),
            ..AclFilter::any()
        }
    }

    /// The filter that matches exactly this ACL.
    pub fn exactly(acl: &AclBinding) -> AclFilter {
        AclFilter {
            resource_type: acl.resource_type,
            name: Some(acl.name.clone()),
            pattern: acl.pattern,
            principal: Some(acl.principal.clone()),
            host: Some(acl.host.clone()),
            operation: acl.operation,
            permission: acl.permission,
        }
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_string())
}

/// An ACL from the wire; `None` when it has codes this client does not know.
fn binding(
    rt: i8,
    name: &str,
    pt: i8,
    principal: &str,
    host: &str,
    op: i8,
    perm: i8,
) -> Option<AclBinding> {
    Some(AclBinding {
        resource_type: AclResourceType::from_code(rt)?,
        name: name.to_string(),
        pattern: AclPatternType::from_code(pt)?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(op)?,
        permission: AclPermission::from_code(perm)?,
    })
}

impl Admin {
    /// The ACLs that match `filter` (DescribeAcls to the controller), sorted.
    pub async fn describe_acls(&self, filter: AclFilter) -> Result<Vec<AclBinding>> {
        let api = ApiKey::DescribeAcls;
        let (conn, broker) = self.controller().await?;
        let version = Self::version(&conn, api)?;
        let request = DescribeAclsRequest {
            resource_type_filter: filter.resource_type.code(),
            resource_name_filter: filter.name.as_deref().map(s),
            pattern_type_filter: filter.pattern.code(),
            principal_filter: filter.principal.as_deref().map(s),
            host_filter: filter.host.as_deref().map(s),
            operation: filter.operation.code(),
            permission_type: filter.permission.code(),
            ..Default::default()
        };
        let response = conn.send_version(&request, version).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            api,
            &broker.addr(),
            || "the ACLs".into(),
        )?;
        let mut acls: Vec<AclBinding> = response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().filter_map(move |a| {
                    binding(
                        r.resource_type,
                        &r.resource_name,
                        r.pattern_type,
                        &a.principal,
                        &a.host,
                        a.operation,
                        a.permission_type,
                    )
                })
            })
            .collect();
        acls.sort();
        Ok(acls)
    }

    /// Creates ACLs in one CreateAcls request to the controller; an ACL that names
    /// `Any` or `Match`, or a principal that is not `TYPE:NAME`, is refused here.
    pub async fn create_acls(&self, acls: Vec<AclBinding>) -> Results<AclBinding, ()> {
        let api = ApiKey::CreateAcls;
        let mut refused: Results<AclBinding, ()> = BTreeMap::new();
        let mut wanted = Vec::new();
        for acl in acls {
            match acl.problem() {
                Some(m) => {
                    let what = acl.to_string();
                    refused.insert(acl, Err(invalid(api, what, m)));
                }
                None => wanted.push(acl),
            }
        }
        let mut results = self
            .per_item(api, wanted, |pending| async move {
                let (conn, broker) = self.controller().await?;
                let version = Self::version(&conn, api)?;
                let request = CreateAclsRequest {
                    creations: pending
                        .iter()
                        .map(|a| AclCreation {
                            resource_type: a.resource_type.code(),
                            resource_name: s(&a.name),
                            resource_pattern_type: a.pattern.code(),
                            principal: s(&a.principal),
                            host: s(&a.host),
                            operation: a.operation.code(),
                            permission_type: a.permission.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let response = conn.send_version(&request, version).await?;
                let addr = broker.addr();
                // Results come in the order of the creations.
                Ok(pending
                    .into_iter()
                    .zip(response.results)
                    .map(|(acl, r)| {
                        let result =
                            check(r.error_code, r.error_message.as_deref(), api, &addr, || {
                                acl.to_string()
                            });
                        (acl, result)
                    })
                    .collect())
            })
            .await;
        results.append(&mut refused);
        results
    }

    /// Deletes the ACLs each filter matches (one DeleteAcls to the controller);
    /// answers, per filter, the ACLs deleted.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Results<AclFilter, Vec<AclBinding>> {
        let api = ApiKey::DeleteAcls;
        self.per_item(api, filters, |pending| async move {
            let (conn, broker) = self.controller().await?;
            let version = Self::version(&conn, api)?;
            let request = DeleteAclsRequest {
                filters: pending
                    .iter()
                    .map(|f| DeleteAclsFilter {
                        resource_type_filter: f.resource_type.code(),
                        resource_name_filter: f.name.as_deref().map(s),
                        pattern_type_filter: f.pattern.code(),
                        principal_filter: f.principal.as_deref().map(s),
                        host_filter: f.host.as_deref().map(s),
                        operation: f.operation.code(),
                        permission_type: f.permission.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let response = conn.send_version(&request, version).await?;
            let addr = broker.addr();
            Ok(pending
                .into_iter()
                .zip(response.filter_results)
                .map(|(f, r)| {
                    let result =
                        check(r.error_code, r.error_message.as_deref(), api, &addr, || {
                            format!("ACL filter {f:?}")
                        })
                        .map(|()| {
                            let mut deleted: Vec<AclBinding> = r
                                .matching_acls
                                .iter()
                                .filter(|m| m.error_code == 0)
                                .filter_map(|m| {
                                    binding(
                                        m.resource_type,
                                        &m.resource_name,
                                        m.pattern_type,
                                        &m.principal,
                                        &m.host,
                                        m.operation,
                                        m.permission_type,
                                    )
                                })
                                .collect();
                            deleted.sort();
                            deleted
                        });
                    (f, result)
                })
                .collect())
        })
        .await
    }
}
