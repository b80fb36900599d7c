//! The Kafka broker transport on tokio, and the [`Client`] handle users open first.
//!
//! - [`Connection`]: one connection to one broker, many requests in flight matched by
//!   correlation id, version negotiation (ApiVersions, with a fixed table for brokers
//!   older than 0.10), TLS ([`TlsConfig`]) and SASL ([`SaslConfig`]).
//! - [`KafkaClient`]: bootstrap, a metadata cache refreshed on an interval and on
//!   demand, group and transaction coordinators, offsets, topic admin, and any request
//!   routed to the broker it belongs to, over separate connections per purpose.
//! - [`stats`]: statistics snapshots (librdkafka's `statistics.interval.ms`) and
//!   their periodic delivery.
//!
//! ```no_run
//! use kafka_net::{Client, ClientConfig, KafkaClient};
//! # async fn run() -> kafka_net::Result<()> {
//! let client = KafkaClient::connect(&["127.0.0.1:9092"], ClientConfig::default()).await?;
//! let partitions = client.partition_count("orders").await?;
//! let end = client.offset_latest("orders", 0).await?;
//! println!("orders has {partitions} partitions; partition 0 ends at {end}");
//! client.close().await;
//! # Ok(()) }
//! ```

pub mod admin;
mod client;
mod cluster;
mod config;
mod connection;
mod error;
mod group_metadata;
mod metrics;
pub mod sasl;
pub mod stats;
mod tls;
mod versions;

pub use admin::{Admin, AdminConfig};
pub use client::{Client, ClientExt, KafkaClient, NewTopic, TimestampOffset};
pub use cluster::{BrokerInfo, ClusterMetadata, PartitionInfo, Purpose, TopicInfo};
pub use config::ClientConfig;
pub use connection::Connection;
pub use error::{Error, ErrorKind, Result};
pub use group_metadata::ConsumerGroupMetadata;
pub use metrics::{BrokerMetrics, MetricsSnapshot};
pub use sasl::SaslConfig;
pub use tls::TlsConfig;
pub use versions::VersionTable;

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
