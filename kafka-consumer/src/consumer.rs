//! optiopay's simple consumer: the [`Consumer`] trait (one message per call), and
//! [`SimpleConsumer`], which reads one partition with stateless fetches.
//!
//! ```no_run
//! # async fn run(client: kafka_net::KafkaClient) -> Result<(), kafka_consumer::ConsumeError> {
//! use kafka_consumer::{Consumer, ConsumerConfig, SimpleConsumer, StartOffset};
//!
//! let mut config = ConsumerConfig::default();
//! config.topic = "orders".into();
//! config.partition = 3;
//! config.start_offset = StartOffset::Latest;
//! let consumer = SimpleConsumer::new(client, config)?;
//! loop {
//!     let m = consumer.consume().await?;
//!     println!("{}/{} @ {}", m.topic, m.partition, m.offset);
//! }
//! # }
//! ```

use crate::error::{ConsumeError, ConsumeErrorKind};
use crate::fetch::{fetch_partition, FetchOptions, Isolation, PartitionFetch};
use crate::{OffsetReset, StartOffset};
use async_trait::async_trait;
use bytes::Bytes;
use kafka_net::{Client, KafkaClient};
use kafka_protocol::records::{Record, RecordHeader};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// One record of a partition, as consumers hand it out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic (shared by every message of the partition, not copied per record).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<RecordHeader>,
    /// The record's timestamp in milliseconds since the epoch (-1 when the record
    /// format has none).
    pub timestamp: i64,
}

impl Message {
    /// The message for a record of `topic`/`partition` (also for mocks and tests).
    pub fn from_record(topic: impl Into<Arc<str>>, partition: i32, record: Record) -> Self {
        Message {
            topic: topic.into(),
            partition,
            offset: record.offset,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp,
        }
    }
}

/// Hands out messages one at a time (optiopay's `Consumer`). Object-safe, so it can
/// be mocked and held as `Arc<dyn Consumer>` (as [`crate::Mx`] holds them).
#[async_trait]
pub trait Consumer: Send + Sync {
    /// The next message. Implementations are cancel-safe: dropping the future before
    /// it completes loses no message.
    async fn consume(&self) -> Result<Message, ConsumeError>;
}

/// How a [`SimpleConsumer`] reads its partition. Fields follow optiopay's
/// `ConsumerConf`, with the Java client's property names where there is one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// The topic to read. Required (default empty, which [`SimpleConsumer::new`]
    /// rejects).
    pub topic: String,
    /// The partition to read. Default 0.
    pub partition: i32,
    /// Where to start, resolved on the first `consume()`. Default
    /// [`StartOffset::Earliest`]. A timestamp after every record starts at the end.
    pub start_offset: StartOffset,
    /// `request.timeout.ms`: the longest one fetch or offset lookup may take before it
    /// counts as a (retriable) timeout; must exceed `max_wait`. Default 30 s.
    pub request_timeout: Duration,
    /// Empty fetches in a row after which `consume()` fails with
    /// [`ConsumeErrorKind::NoData`] (optiopay's `RetryLimit`); the next call starts
    /// counting again. Default `None`: wait for data forever.
    pub retry_limit: Option<u32>,
    /// Pause after an empty fetch (optiopay's `RetryWait`). Default 50 ms.
    pub retry_wait: Duration,
    /// Retriable errors in a row (leader moved, broker down, timeouts) retried before
    /// `consume()` returns the last one (optiopay's `RetryErrLimit`). Default 10.
    pub retry_err_limit: u32,
    /// Pause after a retriable error, once metadata was refreshed
    /// (`retry.backoff.ms`, optiopay's `RetryErrWait`). Default 500 ms.
    pub retry_err_wait: Duration,
    /// `fetch.min.bytes`. Default 1.
    pub min_fetch_bytes: i32,
    /// `max.partition.fetch.bytes` (the broker returns at least one batch even when it
    /// is larger). Default 1 MiB.
    pub max_fetch_bytes: i32,
    /// `fetch.max.wait.ms`: how long the broker may wait for `min_fetch_bytes`.
    /// Default 500 ms.
    pub max_wait: Duration,
    /// `isolation.level`. Default read_uncommitted.
    pub isolation: Isolation,
    /// `auto.offset.reset`: what to do when the position is outside the log. Default
    /// [`OffsetReset::Earliest`].
    pub offset_reset: OffsetReset,
    /// Skip records whose timestamp is older than this when they are handed out
    /// (sarama-consumer's `NoOlderThan`); records without a timestamp are never
    /// skipped. Default `None`: skip nothing.
    pub max_message_age: Option<Duration>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            topic: String::new(),
            partition: 0,
            start_offset: StartOffset::Earliest,
            request_timeout: Duration::from_secs(30),
            retry_limit: None,
            retry_wait: Duration::from_millis(50),
            retry_err_limit: 10,
            retry_err_wait: Duration::from_millis(500),
            min_fetch_bytes: 1,
            max_fetch_bytes: 1 << 20,
            max_wait: Duration::from_millis(500),
            isolation: Isolation::ReadUncommitted,
            offset_reset: OffsetReset::Earliest,
            max_message_age: None,
        }
    }
}

impl ConsumerConfig {
    /// A configuration for `topic`/`partition`, the rest default.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        ConsumerConfig {
            topic: topic.into(),
            partition,
            ..Default::default()
        }
    }

    /// Checks the configuration; [`SimpleConsumer::new`] calls this.
    pub fn validate(&self) -> Result<(), ConsumeError> {
        let bad = |m: String| Err(ConsumeError::new(ConsumeErrorKind::Config(m)));
        if self.topic.is_empty() {
            return bad("topic must be set".into());
        }
        if self.partition < 0 {
            return bad(format!("partition {} is negative", self.partition));
        }
        validate_start(self.start_offset)?;
        if self.request_timeout <= self.max_wait {
            return bad("request_timeout must exceed max_wait".into());
        }
        if self.retry_limit == Some(0) {
            return bad("retry_limit must be at least 1 (or None for no limit)".into());
        }
        if self.min_fetch_bytes < 0 {
            return bad("min_fetch_bytes must not be negative".into());
        }
        if self.max_fetch_bytes <= 0 {
            return bad("max_fetch_bytes must be positive".into());
        }
        if self.max_wait.as_millis() > i32::MAX as u128 {
            return bad("max_wait is too long".into());
        }
        if self.max_message_age.is_some_and(|a| a.is_zero()) {
            return bad("max_message_age must be positive (or None)".into());
        }
        Ok(())
    }
}

fn validate_start(start: StartOffset) -> Result<(), ConsumeError> {
    match start {
        StartOffset::Offset(o) if o < 0 => Err(ConsumeError::new(ConsumeErrorKind::Config(
            format!("start offset {o} is negative; use StartOffset::Earliest or Latest"),
        ))),
        StartOffset::Timestamp(t) if t < 0 => Err(ConsumeError::new(ConsumeErrorKind::Config(
            format!("start timestamp {t} is negative"),
        ))),
        _ => Ok(()),
    }
}

/// What one `consume()` keeps between calls. Only changed between await points, so a
/// dropped `consume()` leaves it consistent.
#[derive(Debug)]
struct State {
    /// Where to start when `next` is unknown.
    start: StartOffset,
    /// The offset to fetch next; `None` until the start is resolved.
    next: Option<i64>,
    /// Fetched records not handed out yet.
    buffer: VecDeque<Record>,
}

/// Reads one partition (optiopay's consumer): fetches from the partition's leader
/// with [`fetch_partition`], buffers the records and hands them out one per
/// [`Consumer::consume`] call.
///
/// - The start offset is resolved on the first `consume()`.
/// - An empty fetch is retried after `retry_wait`; after `retry_limit` of them in a
///   row the call fails with [`ConsumeErrorKind::NoData`] (the position is kept).
/// - OFFSET_OUT_OF_RANGE applies `offset_reset`.
/// - Retriable errors refresh metadata and are retried after `retry_err_wait`, up to
///   `retry_err_limit` times in a row.
/// - Cancel-safe: state lives behind a tokio mutex and a record leaves the buffer
///   only when it is returned. Concurrent calls are served one after the other.
#[derive(Debug)]
pub struct SimpleConsumer {
    client: KafkaClient,
    config: ConsumerConfig,
    topic: Arc<str>,
    options: FetchOptions,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

impl SimpleConsumer {
    /// A consumer of `config.topic`/`config.partition`; fails on an invalid config.
    /// Nothing is sent before the first `consume()`.
    pub fn new(client: KafkaClient, config: ConsumerConfig) -> Result<Self, ConsumeError> {
        config.validate()?;
        let options = FetchOptions {
            max_wait: config.max_wait,
            min_bytes: config.min_fetch_bytes,
            max_bytes: config.max_fetch_bytes,
            isolation: config.isolation,
            ..Default::default()
        };
        Ok(SimpleConsumer {
            client,
            topic: Arc::from(config.topic.as_str()),
            options,
            state: Mutex::new(State {
                start: config.start_offset,
                next: None,
                buffer: VecDeque::new(),
            }),
            config,
            closed: watch::Sender::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Moves the consumer: buffered records are dropped and the next `consume()`
    /// starts at `start` (resolved then). Waits for a `consume()` in progress.
    pub async fn seek(&self, start: StartOffset) -> Result<(), ConsumeError> {
        validate_start(start)?;
        let mut state = self.state.lock().await;
        state.start = start;
        state.next = None;
        state.buffer.clear();
        Ok(())
    }

    /// Closes the consumer: a `consume()` in progress and every later one fail with
    /// [`ConsumeErrorKind::Closed`]. The client is shared and stays open.
    pub async fn close(&self) {
        self.closed.send_replace(true);
    }

    fn error(&self, kind: ConsumeErrorKind) -> ConsumeError {
        ConsumeError::new(kind).at(&self.topic, self.config.partition)
    }

    /// `f`, failing with a retriable timeout after `request_timeout`.
    async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, ConsumeError>>,
    ) -> Result<T, ConsumeError> {
        match tokio::time::timeout(self.config.request_timeout, f).await {
            Ok(r) => r.map_err(|e| e.at(&self.topic, self.config.partition)),
            Err(_) => Err(self.error(ConsumeErrorKind::Client(kafka_net::Error::new(
                kafka_net::ErrorKind::Timeout(self.config.request_timeout),
            )))),
        }
    }

    async fn earliest(&self) -> Result<i64, ConsumeError> {
        self.timed(async {
            Ok(self
                .client
                .offset_earliest(&self.topic, self.config.partition)
                .await?)
        })
        .await
    }

    async fn latest(&self) -> Result<i64, ConsumeError> {
        self.timed(async {
            Ok(self
                .client
                .offset_latest(&self.topic, self.config.partition)
                .await?)
        })
        .await
    }

    async fn resolve(&self, start: StartOffset) -> Result<i64, ConsumeError> {
        match start {
            StartOffset::Earliest => self.earliest().await,
            StartOffset::Latest => self.latest().await,
            StartOffset::Offset(o) => Ok(o),
            StartOffset::Timestamp(t) => {
                let found = self
                    .timed(async {
                        Ok(self
                            .client
                            .offsets_for_times(&self.topic, self.config.partition, t)
                            .await?)
                    })
                    .await?;
                match found {
                    Some(found) => Ok(found.offset),
                    None => self.latest().await,
                }
            }
        }
    }

    /// Where to go after OFFSET_OUT_OF_RANGE at `offset`; `None` to fail.
    async fn reset(&self, offset: i64, low: i64, high: i64) -> Result<Option<i64>, ConsumeError> {
        match &self.config.offset_reset {
            OffsetReset::Earliest => self.earliest().await.map(Some),
            OffsetReset::Latest => self.latest().await.map(Some),
            OffsetReset::Error => Ok(None),
            OffsetReset::Custom(f) => {
                Ok(f(&self.topic, self.config.partition, offset, (low, high)))
            }
        }
    }

    async fn fetch(&self, offset: i64) -> Result<PartitionFetch, ConsumeError> {
        self.timed(fetch_partition(
            &self.client,
            &self.topic,
            self.config.partition,
            offset,
            &self.options,
        ))
        .await
    }

    fn too_old(&self, record: &Record, now: i64) -> bool {
        match self.config.max_message_age {
            Some(age) if record.timestamp >= 0 => {
                let age = age.as_millis().min(i64::MAX as u128) as i64;
                record.timestamp < now.saturating_sub(age)
            }
            _ => false,
        }
    }

    async fn consume_open(&self) -> Result<Message, ConsumeError> {
        let mut state = self.state.lock().await;
        let mut empty = 0u32;
        let mut errors = 0u32;
        loop {
            let now = now_ms();
            while let Some(record) = state.buffer.pop_front() {
                if self.too_old(&record, now) {
                    continue;
                }
                return Ok(Message::from_record(
                    self.topic.clone(),
                    self.config.partition,
                    record,
                ));
            }
            let step = match state.next {
                None => self.resolve(state.start).await.map(|o| {
                    tracing::debug!(topic = %self.topic, partition = self.config.partition, offset = o, "start offset resolved");
                    state.next = Some(o);
                }),
                Some(offset) => match self.fetch(offset).await {
                    Ok(fetch) => {
                        errors = 0;
                        state.next = Some(fetch.next_offset.max(offset));
                        if fetch.records.is_empty() {
                            empty += 1;
                            if let Some(limit) = self.config.retry_limit.filter(|l| empty >= *l) {
                                return Err(self.error(ConsumeErrorKind::NoData(limit)));
                            }
                            // Past control batches or aborted transactions: go on at once.
                            if fetch.next_offset <= offset {
                                drop(state);
                                tokio::time::sleep(self.config.retry_wait).await;
                                state = self.state.lock().await;
                            }
                        } else {
                            empty = 0;
                            state.buffer.extend(fetch.records);
                        }
                        Ok(())
                    }
                    Err(e) => match *e.kind() {
                        ConsumeErrorKind::OffsetOutOfRange { offset, low, high } => match self.reset(offset, low, high).await {
                            Ok(Some(to)) => {
                                tracing::info!(topic = %self.topic, partition = self.config.partition, offset, low, high, to, "offset out of range, reset");
                                state.next = Some(to);
                                state.buffer.clear();
                                Ok(())
                            }
                            Ok(None) => return Err(e),
                            Err(lookup) => Err(lookup),
                        },
                        _ => Err(e),
                    },
                },
            };
            let Err(e) = step else { continue };
            if !e.is_retriable() || errors >= self.config.retry_err_limit {
                return Err(e);
            }
            errors += 1;
            tracing::debug!(topic = %self.topic, partition = self.config.partition, error = %e, attempt = errors, "retrying");
            let _ =
                tokio::time::timeout(self.config.request_timeout, self.client.refresh_metadata())
                    .await;
            drop(state);
            tokio::time::sleep(self.config.retry_err_wait).await;
            state = self.state.lock().await;
        }
    }
}

#[async_trait]
impl Consumer for SimpleConsumer {
    async fn consume(&self) -> Result<Message, ConsumeError> {
        let mut closed = self.closed.subscribe();
        if *closed.borrow_and_update() {
            return Err(self.error(ConsumeErrorKind::Closed));
        }
        tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => Err(self.error(ConsumeErrorKind::Closed)),
            r = self.consume_open() => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        assert!(ConsumerConfig::default().validate().is_err(), "no topic");
        let ok = ConsumerConfig::new("t", 0);
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.retry_limit = Some(0);
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.max_wait = c.request_timeout;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.start_offset = StartOffset::Offset(-1);
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.max_message_age = Some(Duration::ZERO);
        assert!(c.validate().is_err());
        let mut c = ok;
        c.partition = -1;
        assert!(matches!(
            c.validate().map_err(|e| e.kind().clone()),
            Err(ConsumeErrorKind::Config(_))
        ));
    }

    #[test]
    fn message_from_record() {
        let r = Record {
            offset: 7,
            timestamp: 9,
            key: Some(Bytes::from_static(b"k")),
            value: None,
            headers: Vec::new(),
        };
        let m = Message::from_record("t", 2, r);
        assert_eq!(
            (&*m.topic, m.partition, m.offset, m.timestamp),
            ("t", 2, 7, 9)
        );
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn consumer_is_object_safe() {
        fn takes(_: Option<Arc<dyn Consumer>>) {}
        takes(None);
    }
}
