//! Consumer groups: membership (FindCoordinator, JoinGroup with the member-id-required
//! retry, SyncGroup, Heartbeat, LeaveGroup; session, rebalance and heartbeat timeouts;
//! coordinator failover; static membership), eager and cooperative incremental
//! rebalancing (KIP-429), the embedded "consumer" protocol encoded as the Java client
//! encodes it (versions 0-3), assignors behind the [`assignor::Assignor`] trait, offset
//! tracking with out-of-order completion, and the [`GroupConsumer`], which also speaks
//! KIP-848's consumer group protocol ([`GroupProtocol::Consumer`]).

mod consumer;
mod describe;
mod error;
mod membership;

pub mod assignor;
pub mod protocol;
pub mod tracker;

pub use consumer::{
    GroupConfig, GroupConsumer, GroupConsumerStatistics, GroupEvent, GroupProtocol, GroupState,
    GroupStats, StartFn, Topics,
};
pub use describe::{
    describe_consumer_group, ConsumerGroupDescription, ConsumerGroupMemberDescription,
};
pub use error::{GroupError, GroupErrorKind};
pub use kafka_net::ConsumerGroupMetadata;

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
