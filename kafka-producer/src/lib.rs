//! Kafka producers, from the simple to the batching and idempotent:
//!
//! - [`Producer`] / [`SimpleProducer`]: `produce(topic, partition, records)`, one
//!   request per call, with acks, timeout and retries (optiopay's shape);
//!   [`DistributingProducer`] picks the partition; [`produce_many`] sends many
//!   (topic, partition, records) envelopes in parallel and gathers one summary.
//! - [`BufferedProducer`]: `send(record)` returns a future of its delivery, or
//!   `send_with_callback(record, callback)` reports it to a callback (the Java
//!   client's `send(record, callback)`, franz-go's promise, with less overhead per
//!   record than a future); records
//!   are batched per partition (`linger`, `batch_size`), each broker gets one Produce
//!   request for all its ready partitions (up to `max_in_flight`), memory is bounded
//!   (`send` waits, `try_send` fails), retries keep order, and idempotence (on by
//!   default) keeps retries from duplicating.
//! - Transactions (exactly-once): with `transactional_id` set, the
//!   [`BufferedProducer`] has the Java client's `init_transactions`,
//!   `begin_transaction`, `send_offsets_to_transaction` (with the group member's
//!   [`ConsumerGroupMetadata`], KIP-447), `commit_transaction` and
//!   `abort_transaction`; [`TransactionState`] documents which call is allowed when,
//!   and errors say whether the producer is fenced, the transaction abortable, or the
//!   producer failed for good ([`ProduceError::is_fenced`],
//!   [`ProduceError::is_abortable`], [`ProduceError::is_fatal`]).
//! - [`partitioner`]: murmur2 (Java), CRC32 (librdkafka `consistent`), FNV-1a
//!   (sarama), round robin, random, least bytes, uniform sticky.
//!
//! ```no_run
//! use kafka_net::{ClientConfig, KafkaClient};
//! use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = KafkaClient::connect(&["127.0.0.1:9092"], ClientConfig::default()).await?;
//! let producer = BufferedProducer::new(client, ProducerConfig::default().with_topic("orders"))?;
//! let delivery = producer.send(ProducerRecord::new("hello").with_key("k")).await?;
//! let meta = delivery.await?;
//! println!("written at {}/{}", meta.partition, meta.offset);
//! producer.close().await;
//! # Ok(()) }
//! ```
//!
//! A transaction: the records are visible to read_committed consumers once it
//! commits, and not at all if it aborts.
//!
//! ```no_run
//! use kafka_net::{ClientConfig, KafkaClient};
//! use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = KafkaClient::connect(&["127.0.0.1:9092"], ClientConfig::default()).await?;
//! let config = ProducerConfig::default()
//!     .with_topic("orders")
//!     .with_transactional_id("order-writer-1");
//! let producer = BufferedProducer::new(client, config)?;
//! producer.init_transactions().await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("a")).await?;
//! producer.send(ProducerRecord::new("b")).await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(e) if e.is_abortable() => producer.abort_transaction().await?,
//!     Err(e) => return Err(e.into()), // fenced or fatal: close and start over
//! }
//! producer.close().await;
//! # Ok(()) }
//! ```

mod buffered;
mod config;
mod error;
pub mod partitioner;
mod record;
mod simple;

pub use buffered::{
    BufferedProducer, DeliveryFuture, DeliveryReport, ProducerPartitionStats, ProducerStatistics,
    TransactionState,
};
pub use config::{Acks, ProducerConfig};
pub use error::{ProduceError, ProduceErrorKind};
pub use kafka_net::ConsumerGroupMetadata;
pub use record::{ProducerRecord, RecordMetadata};
pub use simple::{
    produce_many, DistributingProducer, Envelope, Message, ProduceSummary, Producer,
    SimpleProducer, SimpleProducerConfig,
};

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
