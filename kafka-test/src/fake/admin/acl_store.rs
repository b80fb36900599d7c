//! The ACLs the fake's authorizer stores (it keeps them, and does not enforce them),
//! and Kafka's filter matching, shared by DescribeAcls, CreateAcls and DeleteAcls.

use kafka_protocol::ErrorCode;

pub(crate) const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const CLUSTER: i8 = 4;

/// One ACL, as the wire has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Acl {
    pub resource_type: i8,
    pub name: String,
    pub pattern: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A filter, as the wire has it.
pub(crate) struct Filter<'a> {
    pub resource_type: i8,
    pub name: Option<&'a str>,
    pub pattern: i8,
    pub principal: Option<&'a str>,
    pub host: Option<&'a str>,
    pub operation: i8,
    pub permission: i8,
}

impl Filter<'_> {
    /// Kafka's `AclBindingFilter.matches`.
    pub(crate) fn matches(&self, acl: &Acl) -> bool {
        let field = |f: Option<&str>, v: &str| f.is_none_or(|f| f == v);
        let code = |f: i8, v: i8| f == ANY || f == v;
        let name = match self.pattern {
            MATCH => match self.name {
                None => true,
                Some(n) => match acl.pattern {
                    LITERAL => acl.name == n || acl.name == "*",
                    PREFIXED => n.starts_with(acl.name.as_str()),
                    _ => false,
                },
            },
            ANY => field(self.name, &acl.name),
            p => p == acl.pattern && field(self.name, &acl.name),
        };
        code(self.resource_type, acl.resource_type)
            && name
            && field(self.principal, &acl.principal)
            && field(self.host, &acl.host)
            && code(self.operation, acl.operation)
            && code(self.permission, acl.permission)
    }

    /// Kafka's complaint about a filter, if any.
    pub(crate) fn problem(&self) -> Option<String> {
        let known = |c: i8, max: i8| (1..=max).contains(&c);
        if !known(self.resource_type, 7)
            || !known(self.pattern, 4)
            || !known(self.operation, 14)
            || !known(self.permission, 3)
        {
            return Some(
                "the filter has an unknown resource type, pattern type, operation or permission"
                    .into(),
            );
        }
        None
    }
}

impl Acl {
    /// Kafka's complaint about an ACL to create, if any.
    pub(crate) fn problem(&self) -> Option<(ErrorCode, String)> {
        let invalid = |m: &str| Some((ErrorCode::InvalidRequest, m.to_string()));
        if !(2..=7).contains(&self.resource_type) {
            return invalid("Invalid resource type: an ACL names a resource type, not ANY");
        }
        if !matches!(self.pattern, LITERAL | PREFIXED) {
            return invalid("Invalid pattern type: an ACL is LITERAL or PREFIXED");
        }
        if !(2..=14).contains(&self.operation) || !(2..=3).contains(&self.permission) {
            return invalid("Invalid operation or permission: an ACL names them, not ANY");
        }
        if self.name.is_empty() {
            return invalid("Resource name must not be empty");
        }
        if self.resource_type == CLUSTER && self.name != "kafka-cluster" {
            return invalid("The only valid name for the CLUSTER resource is kafka-cluster");
        }
        if !self
            .principal
            .split_once(':')
            .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
        {
            return invalid(&format!(
                "Could not parse principal from `{}`: expected TYPE:NAME",
                self.principal
            ));
        }
        if self.host.is_empty() {
            return invalid("Host must not be empty (* for every host)");
        }
        None
    }
}
