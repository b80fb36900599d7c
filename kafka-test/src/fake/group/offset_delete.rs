//! OffsetDelete, a part of the group coordinator (a child module of `group.rs`, for
//! its state): deletes committed offsets of an empty group, or of topics that no
//! member of a consumer group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); a
//! non-consumer group with members answers NON_EMPTY_GROUP.

use super::{GroupCoordinator, State};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::wire::Decoder;
use kafka_protocol::{Decode, ErrorCode};
use std::collections::HashSet;

/// The topics of a consumer protocol subscription (none when it does not decode).
fn subscribed_topics(metadata: &bytes::Bytes) -> Vec<String> {
    let mut d = Decoder::new(metadata);
    let Ok(version) = d.i16() else {
        return Vec::new();
    };
    ConsumerProtocolSubscription::decode(&mut d, version.clamp(0, 3))
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

impl GroupCoordinator {
    /// OffsetDelete; `exists(topic, partition)` tells which partitions the cluster
    /// has (the others answer UNKNOWN_TOPIC_OR_PARTITION).
    pub(crate) fn offset_delete(
        &self,
        req: OffsetDeleteRequest,
        exists: impl Fn(&str, i32) -> bool,
    ) -> OffsetDeleteResponse {
        let mut groups = self.lock();
        let fail = |code: ErrorCode| OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        };
        let Some(g) = groups.get_mut(req.group_id.as_str()) else {
            return fail(ErrorCode::GroupIdNotFound);
        };
        let consumer = g.protocol_type.as_deref() == Some("consumer");
        if !consumer && !g.members.is_empty() {
            return fail(ErrorCode::NonEmptyGroup);
        }
        let subscribed: HashSet<String> = if g.state == State::Empty {
            HashSet::new()
        } else {
            let protocol = g.protocol_name.clone().unwrap_or_default();
            g.members
                .values()
                .flat_map(|m| subscribed_topics(&m.metadata(&protocol)))
                .collect()
        };
        let topics = req
            .topics
            .iter()
            .map(|t| OffsetDeleteResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = if !exists(&t.name, p.partition_index) {
                            ErrorCode::UnknownTopicOrPartition
                        } else if subscribed.contains(t.name.as_str()) {
                            ErrorCode::GroupSubscribedToTopic
                        } else {
                            g.offsets.remove(&(t.name.to_string(), p.partition_index));
                            ErrorCode::None
                        };
                        OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code.code(),
                        }
                    })
                    .collect(),
            })
            .collect();
        OffsetDeleteResponse {
            topics,
            ..Default::default()
        }
    }
}
