//! [`mockall`] mocks of the workspace's public async traits, for unit tests that set an
//! expectation per call: what a method is called with, how often, in which order, and
//! what it answers.
//!
//! - [`MockClient`], a mock of [`kafka_net::Client`]. The extension trait
//!   [`kafka_net::ClientExt`] needs no mock: its typed `request` goes through
//!   [`kafka_net::Client::send`], so `expect_send` answers it.
//! - [`MockProducer`], a mock of [`kafka_producer::Producer`] (the simple producer's
//!   `produce(topic, partition, records)`), for code that takes `&dyn Producer` or
//!   `Box<dyn Producer>`, such as [`kafka_producer::produce_many`]. The batching
//!   [`kafka_producer::BufferedProducer`] is a concrete type over a real client; test
//!   code that uses it against [`crate::FakeCluster`] instead.
//!
//! - [`MockConsumer`], a mock of [`kafka_consumer::Consumer`] (optiopay's one message
//!   per `consume()` call), for code that takes `Arc<dyn Consumer>` or
//!   `Box<dyn Consumer>`, such as [`kafka_consumer::Mx`]. The concrete consumers
//!   ([`kafka_consumer::SimpleConsumer`], [`kafka_consumer::PartitionReader`], the
//!   `kafka-group` consumer) read a real client; test code that uses them against
//!   [`crate::FakeCluster`] instead.
//!
//! ```
//! use kafka_consumer::{Consumer, ConsumeError, ConsumeErrorKind, Message};
//! use kafka_protocol::records::Record;
//! use kafka_test::mock::MockConsumer;
//! use mockall::Sequence;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut seq = Sequence::new();
//! let mut mock = MockConsumer::new();
//! mock.expect_consume()
//!     .times(1)
//!     .in_sequence(&mut seq)
//!     .returning(|| Ok(Message::from_record("orders", 0, Record::default())));
//! mock.expect_consume()
//!     .times(1)
//!     .in_sequence(&mut seq)
//!     .returning(|| Err(ConsumeError::new(ConsumeErrorKind::NoData(1))));
//! let consumer: Arc<dyn Consumer> = Arc::new(mock);
//! assert_eq!(consumer.consume().await.map(|m| m.offset).ok(), Some(0));
//! assert!(consumer.consume().await.unwrap_err().is_no_data());
//! # }
//! ```
//!
//! For a client whose behaviour is state rather than expectations (topics, offsets,
//! scripted errors), see [`crate::scripted::ScriptedClient`].
//!
//! ```
//! use kafka_net::Client;
//! use kafka_test::mock::MockClient;
//! use mockall::predicate::eq;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut mock = MockClient::new();
//! mock.expect_partition_count()
//!     .with(eq("orders"))
//!     .times(1)
//!     .returning(|_| Ok(3));
//! let client: Arc<dyn Client> = Arc::new(mock);
//! assert_eq!(client.partition_count("orders").await.ok(), Some(3));
//! # }
//! ```
//!
//! ```
//! use kafka_producer::{Message, Producer};
//! use kafka_test::mock::MockProducer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut mock = MockProducer::new();
//! mock.expect_produce()
//!     .withf(|topic, partition, records| {
//!         topic == "orders" && *partition == 2 && records.len() == 1
//!     })
//!     .times(1)
//!     .returning(|_, _, _| Ok(41));
//! let producer: Box<dyn Producer> = Box::new(mock);
//! let offset = producer.produce("orders", 2, vec![Message::new("a")]).await;
//! assert_eq!(offset.ok(), Some(41));
//! # }
//! ```

use async_trait::async_trait;
use kafka_net::{ClusterMetadata, MetricsSnapshot, NewTopic, Result, TimestampOffset};
use kafka_producer::{Message, ProduceError};
use kafka_protocol::{RequestKind, ResponseKind};
use std::collections::BTreeMap;
use std::sync::Arc;

mockall::mock! {
    /// A [`mockall`] mock of [`kafka_net::Client`]: `MockClient::new()`, then one
    /// `expect_<method>()` per call the code under test makes, each with optional
    /// `with`/`withf` argument matchers, `times`, `in_sequence` and a `returning`
    /// closure. A call nobody expected panics, and so does a `times` left unmet when
    /// the mock drops.
    ///
    /// `MockClient` is `Send + Sync`; hand it to the code under test as
    /// `Box<dyn Client>` or `Arc<dyn Client>`.
    pub Client {}

    #[async_trait]
    impl kafka_net::Client for Client {
        async fn metadata(&self) -> Result<Arc<ClusterMetadata>>;
        async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>>;
        async fn partition_count(&self, topic: &str) -> Result<i32>;
        async fn offset_earliest(&self, topic: &str, partition: i32) -> Result<i64>;
        async fn offset_latest(&self, topic: &str, partition: i32) -> Result<i64>;
        async fn offsets_for_times(
            &self,
            topic: &str,
            partition: i32,
            timestamp_ms: i64,
        ) -> Result<Option<TimestampOffset>>;
        async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()>;
        async fn delete_topics(&self, topics: Vec<String>) -> Result<()>;
        async fn create_partitions(&self, topic: &str, total: i32) -> Result<()>;
        async fn send(&self, request: RequestKind) -> Result<ResponseKind>;
        async fn send_to(&self, node_id: i32, request: RequestKind) -> Result<ResponseKind>;
        fn broker_metrics(&self) -> BTreeMap<String, MetricsSnapshot>;
        async fn close(&self);
    }
}

mockall::mock! {
    /// A [`mockall`] mock of [`kafka_producer::Producer`]: `MockProducer::new()`, then
    /// `expect_produce()` per call (or group of calls) the code under test makes, with
    /// optional `with`/`withf` matchers on (topic, partition, records), `times`,
    /// `in_sequence`, and a `returning` closure giving the first record's offset or a
    /// [`ProduceError`]. A call nobody expected panics, and so does a `times` left
    /// unmet when the mock drops.
    ///
    /// `MockProducer` is `Send + Sync`; hand it over as `Box<dyn Producer>`,
    /// `Arc<dyn Producer>` or `&dyn Producer`.
    pub Producer {}

    #[async_trait]
    impl kafka_producer::Producer for Producer {
        async fn produce(
            &self,
            topic: &str,
            partition: i32,
            records: Vec<Message>,
        ) -> std::result::Result<i64, ProduceError>;
    }
}

mockall::mock! {
    /// A [`mockall`] mock of [`kafka_consumer::Consumer`]: `MockConsumer::new()`, then
    /// `expect_consume()` per call (or group of calls) the code under test makes, with
    /// `times`, `in_sequence` and a `returning` closure giving the next
    /// [`kafka_consumer::Message`] or a [`kafka_consumer::ConsumeError`]. A call nobody
    /// expected panics, and so does a `times` left unmet when the mock drops.
    ///
    /// `MockConsumer` is `Send + Sync`; hand it over as `Arc<dyn Consumer>` (what
    /// [`kafka_consumer::Mx::new`] takes) or `Box<dyn Consumer>`. A consumer inside an
    /// `Mx` is called in a loop until it answers `NoData` or `Closed`, so end its
    /// script with one of those, or let it answer until the `Mx` is closed. As in all
    /// mockall sequences, an expectation in a `Sequence` needs an exact `times`.
    pub Consumer {}

    #[async_trait]
    impl kafka_consumer::Consumer for Consumer {
        async fn consume(
            &self,
        ) -> std::result::Result<kafka_consumer::Message, kafka_consumer::ConsumeError>;
    }
}

mockall::mock! {
    /// A [`mockall`] mock of [`kafka_group::assignor::Assignor`], to test code that
    /// runs assignors (or to script what a group leader assigns):
    /// `expect_name()`, `expect_protocol()` and `expect_assign()` with a `returning`
    /// closure giving the plan per member id. `Debug` prints `MockAssignor`.
    pub Assignor {}

    impl kafka_group::assignor::Assignor for Assignor {
        fn name(&self) -> &'static str;
        fn protocol(&self) -> kafka_group::assignor::RebalanceProtocol;
        fn user_data(
            &self,
            assigned: &std::collections::BTreeMap<String, Vec<i32>>,
            generation: i32,
        ) -> Option<bytes::Bytes>;
        fn assign(
            &self,
            members: &[kafka_group::assignor::MemberInfo],
            partitions: &std::collections::BTreeMap<String, i32>,
        ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<i32>>>;
    }
}

impl std::fmt::Debug for MockAssignor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockAssignor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_net::Client;
    use kafka_producer::Producer;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn mock_is_a_shareable_client() {
        assert_send_sync::<MockClient>();
        let _boxed: Box<dyn Client> = Box::new(MockClient::new());
    }

    #[test]
    fn mock_is_a_shareable_consumer() {
        assert_send_sync::<MockConsumer>();
        let _shared: Arc<dyn kafka_consumer::Consumer> = Arc::new(MockConsumer::new());
    }

    #[test]
    fn mock_is_a_shareable_producer() {
        assert_send_sync::<MockProducer>();
        let _boxed: Box<dyn Producer> = Box::new(MockProducer::new());
    }
}
