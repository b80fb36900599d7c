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

mod buffered;
mod config;
mod error;
pub mod partitioner;
mod record;
mod simple;

pub use buffered::{BufferedProducer, DeliveryFuture, DeliveryReport};
pub use config::{Acks, ProducerConfig};
pub use error::{ProduceError, ProduceErrorKind};
pub use record::{ProducerRecord, RecordMetadata};
pub use simple::{
    produce_many, DistributingProducer, Envelope, Message, ProduceSummary, Producer,
    SimpleProducer, SimpleProducerConfig,
};

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
