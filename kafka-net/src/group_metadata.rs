//! [`ConsumerGroupMetadata`]: who a group member is, as a transactional producer needs
//! it to commit the member's offsets inside a transaction (KIP-447).

/// A consumer group member's identity (the Java client's `ConsumerGroupMetadata`):
/// what a transactional producer sends with the offsets it commits, so that the group
/// coordinator fences a member that lost its partitions in a rebalance (a zombie).
/// The group consumer hands it out; it lives here because producers and consumers
/// both use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation the member is in; -1 for none (no generation check).
    pub generation_id: i32,
    /// The member id the coordinator gave; empty for none (no member check).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group without member information: the coordinator checks no generation
    /// (what a producer that is not part of the group, or a broker older than
    /// Kafka 2.5, uses).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// A member of the group in a generation.
    pub fn member(
        group_id: impl Into<String>,
        generation_id: i32,
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
    ) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id,
        }
    }
}
