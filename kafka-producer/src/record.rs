//! Records as producers take them, and what a delivery reports.

use bytes::Bytes;
use kafka_protocol::records::RecordHeader;
use kafka_protocol::StrBytes;

/// A record to send. The topic comes from the record or from the producer (not both);
/// the partition from the record or the producer's partitioner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerRecord {
    /// The topic, when the producer has no fixed topic.
    pub topic: Option<String>,
    /// An explicit partition; otherwise the partitioner picks one.
    pub partition: Option<i32>,
    /// The key (`None` is null).
    pub key: Option<Bytes>,
    /// The value (`None` is null, a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
    /// Create time in milliseconds since the epoch; now when not set.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with this value.
    pub fn new(value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sends it to `topic`.
    pub fn to(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(RecordHeader {
            key: StrBytes::from(key.into()),
            value: Some(value.into()),
        });
        self
    }

    /// Sends it to this partition.
    pub fn at_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create time.
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Bytes the record takes in a batch, at most (varint fields at their widest).
    pub fn size_estimate(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        21 + 10
            + self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + headers
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordMetadata {
    /// The topic (shared by the reports of all its records).
    pub topic: std::sync::Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown (acks=0).
    pub offset: i64,
    /// The record's timestamp (the broker's append time for LogAppendTime topics).
    pub timestamp: i64,
}

pub(crate) fn now_ms() -> i64 {
    // Seconds and milliseconds apart: 64-bit arithmetic, not `as_millis`' 128-bit.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            (d.as_secs() as i64)
                .saturating_mul(1000)
                .saturating_add(i64::from(d.subsec_millis()))
        })
}
