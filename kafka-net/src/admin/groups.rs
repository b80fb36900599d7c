//! Consumer groups: list, describe (with each member's assignment), delete.

use super::{by_node, check, spread, Admin, Results, TopicPartition};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest,
};
use kafka_protocol::wire::Decoder;
use kafka_protocol::{ApiKey, Decode, ErrorCode, StrBytes};
use std::collections::BTreeMap;

/// A group of [`Admin::list_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// The group's id.
    pub group_id: String,
    /// Its protocol type (`consumer`; empty for groups that only commit offsets).
    pub protocol_type: String,
    /// Its state (`Stable`, `Empty`, ...; empty from brokers before Kafka 2.6).
    pub state: String,
    /// Node id of its coordinator.
    pub coordinator: i32,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from, as the coordinator sees it (`/10.0.0.1`).
    pub host: String,
    /// The partitions assigned to it (consumer groups, while the group is stable;
    /// empty otherwise).
    pub assignment: Vec<TopicPartition>,
}

/// A group of [`Admin::describe_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group's id.
    pub group_id: String,
    /// Its state: `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`.
    pub state: String,
    /// Its protocol type (`consumer`).
    pub protocol_type: String,
    /// The assignor chosen for this generation (`range`, `cooperative-sticky`), while
    /// stable.
    pub protocol: String,
    /// Members, as the coordinator lists them.
    pub members: Vec<MemberDescription>,
    /// Node id of its coordinator.
    pub coordinator: i32,
}

impl GroupDescription {
    /// True when no member is in the group (its offsets may be altered).
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && (self.state == "Empty" || self.state == "Dead")
    }
}

/// The partitions of a consumer protocol assignment (any version; an empty one for
/// an empty assignment).
pub(crate) fn decode_assignment(bytes: &bytes::Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut d = Decoder::new(bytes);
    let version = d.i16()?.clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(&mut d, version)?;
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether a group answer means the cached coordinator is stale.
fn coordinator_moved(code: i16) -> bool {
    matches!(
        ErrorCode::from(code),
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
    )
}

impl Admin {
    /// Groups `groups` by coordinator.
    pub(super) async fn by_coordinator(
        &self,
        groups: Vec<String>,
    ) -> (BTreeMap<i32, Vec<String>>, Vec<(String, Error)>) {
        by_node(groups, |g| async move {
            self.coordinator(&g)
                .await
                .map_err(|e| e.with_resource(format!("group {g}")))
        })
        .await
    }

    /// Every group of the cluster (a ListGroups to each broker), sorted by id; fails
    /// when a broker cannot answer.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let api = ApiKey::ListGroups;
        let brokers: Vec<i32> = self
            .client
            .refresh_metadata()
            .await?
            .brokers
            .keys()
            .copied()
            .collect();
        let answers = self
            .per_item(api, brokers, |nodes| async move {
                let mut out = BTreeMap::new();
                for node in nodes {
                    let r = async {
                        let (conn, broker) = self.node(node).await?;
                        let version = Self::version(&conn, api)?;
                        let response = conn
                            .send_version(&ListGroupsRequest::default(), version)
                            .await?;
                        check(response.error_code, None, api, &broker.addr(), || {
                            format!("broker {node}")
                        })?;
                        Ok::<_, Error>(
                            response
                                .groups
                                .into_iter()
                                .map(|g| GroupListing {
                                    group_id: g.group_id.to_string(),
                                    protocol_type: g.protocol_type.to_string(),
                                    state: g.group_state.to_string(),
                                    coordinator: node,
                                })
                                .collect::<Vec<_>>(),
                        )
                    }
                    .await;
                    out.insert(node, r);
                }
                Ok(out)
            })
            .await;
        let mut groups = Vec::new();
        for (_, r) in answers {
            groups.extend(r?);
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// State, protocol and members of groups, one DescribeGroups per coordinator; a
    /// group that does not exist answers GROUP_ID_NOT_FOUND.
    pub async fn describe_groups(&self, groups: &[&str]) -> Results<String, GroupDescription> {
        let api = ApiKey::DescribeGroups;
        let items = groups.iter().map(|g| g.to_string()).collect();
        self.per_item(api, items, |pending| async move {
            let (nodes, failed) = self.by_coordinator(pending).await;
            let mut out: Results<String, GroupDescription> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, items) in nodes {
                let answered = async {
                    let (conn, broker) = self.node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let request = DescribeGroupsRequest {
                        groups: items.iter().map(|g| StrBytes::from(g.clone())).collect(),
                        ..Default::default()
                    };
                    let response = conn.send_version(&request, version).await?;
                    let addr = broker.addr();
                    let mut answered = BTreeMap::new();
                    for g in response.groups {
                        let id = g.group_id.to_string();
                        if coordinator_moved(g.error_code) {
                            self.client.invalidate_coordinator(0, &id);
                        }
                        let what = || format!("group {id}");
                        let result = check(g.error_code, None, api, &addr, what).and_then(|()| {
                            if g.group_state.as_str() == "Dead" {
                                return Err(Error::new(ErrorKind::Broker {
                                    code: ErrorCode::GroupIdNotFound,
                                    message: Some(format!("group {id} does not exist")),
                                })
                                .with_api(api)
                                .with_broker(addr.clone())
                                .with_resource(what()));
                            }
                            let consumer = g.protocol_type.as_str() == "consumer";
                            let members = g
                                .members
                                .iter()
                                .map(|m| {
                                    let assignment = if consumer {
                                        decode_assignment(&m.member_assignment).map_err(|e| {
                                            e.with_api(api).with_resource(format!(
                                                "the assignment of member {} of group {id}",
                                                m.member_id
                                            ))
                                        })?
                                    } else {
                                        Vec::new()
                                    };
                                    Ok(MemberDescription {
                                        member_id: m.member_id.to_string(),
                                        instance_id: m
                                            .group_instance_id
                                            .as_ref()
                                            .map(|i| i.to_string()),
                                        client_id: m.client_id.to_string(),
                                        host: m.client_host.to_string(),
                                        assignment,
                                    })
                                })
                                .collect::<Result<Vec<_>>>()?;
                            Ok(GroupDescription {
                                group_id: id.clone(),
                                state: g.group_state.to_string(),
                                protocol_type: g.protocol_type.to_string(),
                                protocol: g.protocol_data.to_string(),
                                members,
                                coordinator: node,
                            })
                        });
                        answered.insert(id, result);
                    }
                    Ok::<_, Error>(answered)
                }
                .await;
                spread(&mut out, items, answered);
            }
            Ok(out)
        })
        .await
    }

    /// Deletes groups and their committed offsets, one DeleteGroups per coordinator; a
    /// group with members answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
    pub async fn delete_groups(&self, groups: &[&str]) -> Results<String, ()> {
        let api = ApiKey::DeleteGroups;
        let items = groups.iter().map(|g| g.to_string()).collect();
        self.per_item(api, items, |pending| async move {
            let (nodes, failed) = self.by_coordinator(pending).await;
            let mut out: Results<String, ()> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, items) in nodes {
                let answered = async {
                    let (conn, broker) = self.node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let request = DeleteGroupsRequest {
                        groups_names: items.iter().map(|g| StrBytes::from(g.clone())).collect(),
                        ..Default::default()
                    };
                    let response = conn.send_version(&request, version).await?;
                    let addr = broker.addr();
                    let mut answered = BTreeMap::new();
                    for g in response.results {
                        let id = g.group_id.to_string();
                        if coordinator_moved(g.error_code) {
                            self.client.invalidate_coordinator(0, &id);
                        }
                        let result =
                            check(g.error_code, None, api, &addr, || format!("group {id}"));
                        answered.insert(id, result);
                    }
                    Ok::<_, Error>(answered)
                }
                .await;
                spread(&mut out, items, answered);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::Encode;

    #[test]
    fn decodes_assignments_of_every_version() {
        for version in 0..=3 {
            let a = ConsumerProtocolAssignment {
                assigned_partitions: vec![
                    Assigned {
                        topic: "b".into(),
                        partitions: vec![2, 0],
                    },
                    Assigned {
                        topic: "a".into(),
                        partitions: vec![1],
                    },
                ],
                ..Default::default()
            };
            let mut buf = BytesMut::new();
            buf.put_i16(version);
            a.encode(&mut buf, version).unwrap();
            let got = decode_assignment(&buf.freeze()).unwrap();
            assert_eq!(
                got,
                vec![("a".into(), 1), ("b".into(), 0), ("b".into(), 2)],
                "v{version}"
            );
        }
        assert!(decode_assignment(&bytes::Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&bytes::Bytes::from_static(&[0, 0, 0])).is_err());
    }
}
