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
//! - [`trace`]: a `tracing` subscriber that records spans and events, for tests of
//!   what a client traces.
//!
//! The fake cluster is behind the `fake` feature and the mocks behind `mock` (both on
//! by default), so a test that only mocks builds no broker: `kafka-test = { version =
//! "0.1", default-features = false, features = ["mock"] }`. [`scripted`] is always
//! there.

#[cfg(feature = "fake")]
pub mod fake;
#[cfg(feature = "mock")]
pub mod mock;
pub mod scripted;
pub mod trace;

#[cfg(feature = "fake")]
pub use fake::{
    FakeCluster, FakeClusterConfig, FakeTls, Fault, FaultAction, SaslUsers, Times,
    TransactionState, TransactionView,
};

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "fake"))]
pub struct ReadmeDoctests;
