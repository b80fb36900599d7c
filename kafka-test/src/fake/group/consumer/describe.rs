//! ConsumerGroupDescribe: a consumer group's epochs, assignor and members with their
//! subscriptions, current and target assignments.

use super::*;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

const GROUP_ID_NOT_FOUND: i16 = ErrorCode::GroupIdNotFound.code();

impl GroupCoordinator {
    /// ConsumerGroupDescribe: an unknown group, or a classic one, is GROUP_ID_NOT_FOUND.
    pub async fn consumer_group_describe(
        self: &Arc<Self>,
        req: ConsumerGroupDescribeRequest,
        version: i16,
        topics: &TopicView,
    ) -> ConsumerGroupDescribeResponse {
        let groups = self.lock();
        let assignment = |parts: &BTreeSet<Tp>| {
            let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in parts {
                grouped.entry(t.as_str()).or_default().push(*p);
            }
            Assignment {
                topic_partitions: grouped
                    .into_iter()
                    .map(|(t, partitions)| TopicPartitions {
                        topic_id: topics.get(t).map(|(id, _)| *id).unwrap_or_default(),
                        topic_name: t.to_owned().into(),
                        partitions,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        };
        let described = req
            .group_ids
            .iter()
            .map(|group_id| {
                let Some(cg) = groups
                    .get(group_id.as_str())
                    .and_then(|g| g.consumer.as_ref())
                else {
                    return DescribedGroup {
                        error_code: GROUP_ID_NOT_FOUND,
                        error_message: Some(
                            format!("group {group_id} is not a consumer group").into(),
                        ),
                        group_id: group_id.clone(),
                        group_state: "Dead".into(),
                        ..Default::default()
                    };
                };
                DescribedGroup {
                    error_code: NONE,
                    group_id: group_id.clone(),
                    group_state: cg.state_name().into(),
                    group_epoch: cg.group_epoch,
                    assignment_epoch: cg.assignment_epoch,
                    assignor_name: cg.assignor.clone().into(),
                    authorized_operations: if req.include_authorized_operations {
                        GROUP_AUTHORIZED_OPERATIONS
                    } else {
                        i32::MIN
                    },
                    members: cg
                        .members
                        .values()
                        .map(|m| Member {
                            member_id: m.id.clone().into(),
                            instance_id: m.instance_id.clone().map(StrBytes::from),
                            rack_id: m.rack.clone().map(StrBytes::from),
                            member_epoch: m.epoch,
                            subscribed_topic_names: m
                                .names
                                .iter()
                                .map(|n| StrBytes::from(n.clone()))
                                .collect(),
                            subscribed_topic_regex: m.regex.clone().map(StrBytes::from),
                            assignment: assignment(&m.assigned),
                            target_assignment: assignment(
                                &cg.target.get(&m.id).cloned().unwrap_or_default(),
                            ),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        let mut resp = ConsumerGroupDescribeResponse {
            groups: described,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }
}
