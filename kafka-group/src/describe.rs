//! ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and members,
//! each with its subscription, its assignment and its target assignment, as the group
//! coordinator holds them.

use crate::error::{GroupError, GroupErrorKind};
use kafka_net::{Client, KafkaClient};
use kafka_protocol::messages::consumer_group_describe_response::Assignment;
use kafka_protocol::messages::ConsumerGroupDescribeRequest;
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, StrBytes};

/// The coordinator key type of groups (FindCoordinator).
const GROUP_KEY: i8 = 0;

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerGroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Empty`, `Assigning`, `Reconciling`, `Stable` (or `Dead`).
    pub state: String,
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The server-side assignor of the target assignment.
    pub assignor: String,
    /// The members.
    pub members: Vec<ConsumerGroupMemberDescription>,
}

/// One member of a [`ConsumerGroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerGroupMemberDescription {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack: Option<String>,
    /// The member epoch.
    pub member_epoch: i32,
    /// The topics subscribed to by name.
    pub subscribed_topics: Vec<String>,
    /// The subscription regex, if any.
    pub subscribed_regex: Option<String>,
    /// The partitions it owns now, as (topic, partition).
    pub assignment: Vec<(String, i32)>,
    /// The partitions the coordinator means it to own.
    pub target_assignment: Vec<(String, i32)>,
}

fn partitions(a: &Assignment) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = a
        .topic_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.to_string(), *p)))
        .collect();
    out.sort();
    out
}

/// Describes consumer group `group` (KIP-848) at its coordinator. A group that is not
/// a consumer group (unknown, or classic) is GROUP_ID_NOT_FOUND; a broker without the
/// API gets an error naming it and the versions.
pub async fn describe_consumer_group(
    client: &KafkaClient,
    group: &str,
) -> Result<ConsumerGroupDescription, GroupError> {
    let context = |e: GroupError| e.context(&format!("ConsumerGroupDescribe of group {group}"));
    client
        .api_version(ApiKey::ConsumerGroupDescribe)
        .await
        .map_err(|e| context(e.into()))?;
    for attempt in 0..3 {
        let coordinator = client
            .coordinator(GROUP_KEY, group)
            .await
            .map_err(|e| context(e.into()))?;
        let request = ConsumerGroupDescribeRequest {
            group_ids: vec![StrBytes::from(group.to_string())],
            include_authorized_operations: false,
            ..Default::default()
        };
        let response = client
            .send_to(
                coordinator.node_id,
                RequestKind::ConsumerGroupDescribe(request),
            )
            .await
            .map_err(|e| context(e.into()))?;
        let ResponseKind::ConsumerGroupDescribe(response) = response else {
            return Err(context(GroupError::new(GroupErrorKind::Protocol(
                "answer of the wrong type to ConsumerGroupDescribe".into(),
            ))));
        };
        let Some(g) = response.groups.into_iter().next() else {
            return Err(context(GroupError::new(GroupErrorKind::Protocol(
                "ConsumerGroupDescribe answered no group".into(),
            ))));
        };
        let code = ErrorCode::from(g.error_code);
        match code {
            ErrorCode::None => {}
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable if attempt < 2 => {
                client.invalidate_coordinator(GROUP_KEY, group);
                continue;
            }
            _ => {
                let mut e = context(GroupError::new(GroupErrorKind::Broker(code)));
                if let Some(m) = g.error_message.as_deref().filter(|m| !m.is_empty()) {
                    e = e.context(m);
                }
                return Err(e);
            }
        }
        return Ok(ConsumerGroupDescription {
            group_id: g.group_id.to_string(),
            state: g.group_state.to_string(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor_name.to_string(),
            members: g
                .members
                .iter()
                .map(|m| ConsumerGroupMemberDescription {
                    member_id: m.member_id.to_string(),
                    instance_id: m.instance_id.as_ref().map(|i| i.to_string()),
                    rack: m.rack_id.as_ref().map(|r| r.to_string()),
                    member_epoch: m.member_epoch,
                    subscribed_topics: m
                        .subscribed_topic_names
                        .iter()
                        .map(|t| t.to_string())
                        .collect(),
                    subscribed_regex: m.subscribed_topic_regex.as_ref().map(|r| r.to_string()),
                    assignment: partitions(&m.assignment),
                    target_assignment: partitions(&m.target_assignment),
                })
                .collect(),
        });
    }
    Err(context(GroupError::new(GroupErrorKind::Broker(
        ErrorCode::NotCoordinator,
    ))))
}
