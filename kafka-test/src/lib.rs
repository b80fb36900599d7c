//! Test support for Kafka clients, so that code using this workspace can be tested
//! without a broker:
//!
//! - [`FakeCluster`]: an in-process fake Kafka cluster of N brokers on loopback that
//!   speaks the real wire protocol (through `kafka-protocol`), with fault injection:
//!   intercept any request, move leaders, stop and restart brokers, cap versions; and a
//!   transaction coordinator with Kafka's semantics (exactly-once producers and
//!   read_committed consumers work against it).
//! - [`mock`]: `mockall` mocks of the workspace's public async traits.
//! - [`scripted`]: simple in-memory implementations whose answers and errors a test
//!   sets.

pub mod fake;
pub mod mock;
pub mod scripted;

pub use fake::{
    FakeCluster, FakeClusterConfig, FakeTls, Fault, FaultAction, SaslUsers, Times,
    TransactionState, TransactionView,
};
