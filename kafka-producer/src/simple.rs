//! The simple producer (optiopay's shape): one Produce request per call, with retries;
//! distributing wrappers that pick the partition; and the aggregate form that sends
//! many (topic, partition, records) envelopes at once (the Dart client's).

use crate::error::{ProduceError, ProduceErrorKind};
use crate::partitioner::Partitioner;
use crate::record::now_ms;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use kafka_net::{Client, ClientExt};
use kafka_protocol::compression::Compression;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::records::{Record, RecordBatch, RecordHeader};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A record for the simple producers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<RecordHeader>,
    /// Create time in milliseconds; now when not set.
    pub timestamp: Option<i64>,
}

impl Message {
    /// A message with this value.
    pub fn new(value: impl Into<Bytes>) -> Self {
        Message {
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Produces records to one partition per call and returns the offset of the first.
/// Object-safe, so it can be mocked and held as `Box<dyn Producer>`.
#[async_trait]
pub trait Producer: Send + Sync {
    /// Sends `records` to `topic`/`partition` in one request; the offset of the first
    /// record (-1 with acks=0).
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Message>,
    ) -> Result<i64, ProduceError>;
}

/// How the simple producer sends.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimpleProducerConfig {
    /// `acks` as its wire value: 0, 1 or -1 (all). Default -1.
    pub acks: i16,
    /// The broker's wait for replicas (`request.timeout.ms`). Default 30 s.
    pub request_timeout: Duration,
    /// Retries of a retriable error. Default 3.
    pub retry_limit: u32,
    /// Wait between retries. Default 200 ms.
    pub retry_wait: Duration,
    /// The batch codec. Default none.
    pub compression: Compression,
}

impl Default for SimpleProducerConfig {
    fn default() -> Self {
        SimpleProducerConfig {
            acks: -1,
            request_timeout: Duration::from_secs(30),
            retry_limit: 3,
            retry_wait: Duration::from_millis(200),
            compression: Compression::None,
        }
    }
}

/// The simple [`Producer`] over any [`Client`].
#[derive(Clone)]
pub struct SimpleProducer {
    client: Arc<dyn Client>,
    config: SimpleProducerConfig,
}

impl std::fmt::Debug for SimpleProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleProducer")
            .field("config", &self.config)
            .finish()
    }
}

/// Encodes a record batch into its own buffer.
pub(crate) fn encode_batch(batch: &RecordBatch) -> Result<Bytes, ProduceError> {
    let mut out = BytesMut::with_capacity(batch.encoded_len());
    batch.encode(&mut out).map_err(|e| {
        ProduceError::new(ProduceErrorKind::Config(format!(
            "cannot encode the batch: {e}"
        )))
    })?;
    Ok(out.freeze())
}

impl SimpleProducer {
    /// A producer over `client`.
    pub fn new(
        client: Arc<dyn Client>,
        config: SimpleProducerConfig,
    ) -> Result<Self, ProduceError> {
        if ![0, 1, -1].contains(&config.acks) {
            return Err(ProduceErrorKind::Config(format!(
                "acks must be 0, 1 or -1, not {}",
                config.acks
            ))
            .into());
        }
        Ok(SimpleProducer { client, config })
    }

    fn request(&self, topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
        ProduceRequest {
            acks: self.config.acks,
            timeout_ms: self
                .config
                .request_timeout
                .as_millis()
                .min(i32::MAX as u128) as i32,
            topic_data: vec![TopicProduceData {
                name: topic.to_string().into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

#[async_trait]
impl Producer for SimpleProducer {
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Message>,
    ) -> Result<i64, ProduceError> {
        let at = |e: ProduceError| e.at(topic, partition);
        if records.is_empty() {
            return Err(at(
                ProduceErrorKind::Config("no records to produce".into()).into()
            ));
        }
        let now = now_ms();
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, m)| Record {
                offset: i as i64,
                timestamp: m.timestamp.unwrap_or(now),
                key: m.key,
                value: m.value,
                headers: m.headers,
            })
            .collect();
        let mut batch = RecordBatch::new(0, records);
        batch.compression = self.config.compression;
        let bytes = encode_batch(&batch).map_err(at)?;
        let request = self.request(topic, partition, bytes);
        let mut attempt = 0;
        loop {
            let result: Result<(), ProduceError> = match self.client.request(request.clone()).await
            {
                Err(e) => Err(ProduceError::from(e)),
                Ok(_) if self.config.acks == 0 => return Ok(-1),
                Ok(response) => {
                    let p = response
                        .responses
                        .iter()
                        .flat_map(|t| &t.partition_responses)
                        .find(|p| p.index == partition);
                    match p {
                        None => Err(ProduceErrorKind::Config(
                            "the broker answered for another partition".into(),
                        )
                        .into()),
                        Some(p) => {
                            match ProduceError::from_code(p.error_code, p.error_message.as_deref())
                            {
                                None => return Ok(p.base_offset),
                                Some(e) => Err(e),
                            }
                        }
                    }
                }
            };
            let err = at(result
                .err()
                .unwrap_or_else(|| ProduceErrorKind::Closed.into()));
            if !err.is_retriable() || attempt >= self.config.retry_limit {
                return Err(err);
            }
            attempt += 1;
            tracing::debug!(topic, partition, attempt, error = %err, "retrying produce");
            let _ = self.client.refresh_metadata().await;
            tokio::time::sleep(self.config.retry_wait).await;
        }
    }
}

/// Picks the partition of each call's records, then produces through a [`Producer`]
/// (optiopay's `DistributingProducer`): by key hash, at random, or round robin,
/// according to the partitioner given.
pub struct DistributingProducer<P> {
    producer: P,
    client: Arc<dyn Client>,
    partitioner: Arc<dyn Partitioner>,
}

impl<P: Producer> DistributingProducer<P> {
    /// Distributes over `producer`, asking `client` for partition counts.
    pub fn new(producer: P, client: Arc<dyn Client>, partitioner: Arc<dyn Partitioner>) -> Self {
        DistributingProducer {
            producer,
            client,
            partitioner,
        }
    }

    /// Sends `records` to the partition the partitioner picks for the first record's
    /// key; returns the partition and the offset of the first record.
    pub async fn distribute(
        &self,
        topic: &str,
        records: Vec<Message>,
    ) -> Result<(i32, i64), ProduceError> {
        let partitions = self
            .client
            .partition_count(topic)
            .await
            .map_err(|e| ProduceError::from(e).at(topic, -1))?;
        let key = records.first().and_then(|m| m.key.clone());
        let partition = self
            .partitioner
            .partition(topic, key.as_deref(), partitions);
        let bytes = records
            .iter()
            .map(|m| m.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        let offset = self.producer.produce(topic, partition, records).await?;
        self.partitioner.on_batch_complete(topic, partition, bytes);
        Ok((partition, offset))
    }
}

/// One (topic, partition, records) to send with [`produce_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The records.
    pub records: Vec<Message>,
}

/// What [`produce_many`] did: the first offset of each (topic, partition) that
/// succeeded, and the error of each that failed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProduceSummary {
    /// Offset of the first record, per topic and partition.
    pub offsets: BTreeMap<(String, i32), i64>,
    /// Errors, per topic and partition.
    pub errors: BTreeMap<(String, i32), ProduceError>,
}

impl ProduceSummary {
    /// True when every envelope succeeded.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Sends many envelopes in parallel (the Dart client's `produce`) and gathers one
/// summary. Envelopes for the same partition are sent one after another, in order.
pub async fn produce_many(producer: &dyn Producer, envelopes: Vec<Envelope>) -> ProduceSummary {
    let mut by_partition: BTreeMap<(String, i32), Vec<Vec<Message>>> = BTreeMap::new();
    for e in envelopes {
        by_partition
            .entry((e.topic, e.partition))
            .or_default()
            .push(e.records);
    }
    let results = futures::future::join_all(by_partition.into_iter().map(
        |((topic, partition), batches)| async move {
            let mut first = None;
            for records in batches {
                match producer.produce(&topic, partition, records).await {
                    Ok(offset) => {
                        first.get_or_insert(offset);
                    }
                    Err(e) => return ((topic, partition), Err(e)),
                }
            }
            ((topic, partition), Ok(first.unwrap_or(-1)))
        },
    ))
    .await;
    let mut summary = ProduceSummary::default();
    for (key, result) in results {
        match result {
            Ok(offset) => {
                summary.offsets.insert(key, offset);
            }
            Err(e) => {
                summary.errors.insert(key, e);
            }
        }
    }
    summary
}
