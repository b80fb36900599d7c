//! [`PartitionReader`]: one partition, as kafka-go's `Reader`: a cancellable
//! `read_message`, `set_offset`, `set_offset_at`, lag, stats, a `Stream` of messages
//! and batch reads (the Dart `batchConsume`).

use crate::consumer::Message;
use crate::error::{ConsumeError, ConsumeErrorKind};
use crate::fetcher::{Fetcher, FetcherConfig, StartOffset};
use futures::Stream;
use kafka_net::{Client, KafkaClient};
use kafka_protocol::records::Record;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Counters of a reader (kafka-go `ReaderStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderStats {
    /// Messages returned.
    pub messages: u64,
    /// Key and value bytes returned.
    pub bytes: u64,
    /// Errors returned.
    pub errors: u64,
    /// The next offset to be returned.
    pub offset: i64,
    /// High watermark minus `offset`, as of the last fetch (-1 before one).
    pub lag: i64,
}

/// Reads one partition.
pub struct PartitionReader {
    fetcher: Fetcher,
    topic: String,
    topic_arc: std::sync::Arc<str>,
    partition: i32,
    buffer: tokio::sync::Mutex<VecDeque<Record>>,
    next_offset: AtomicI64,
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset())
            .finish()
    }
}

impl PartitionReader {
    /// A reader of `topic`/`partition` from `start`.
    pub fn new(
        client: KafkaClient,
        topic: impl Into<String>,
        partition: i32,
        start: StartOffset,
        config: FetcherConfig,
    ) -> Result<Self, ConsumeError> {
        let topic = topic.into();
        let fetcher = Fetcher::new(client, config)?;
        fetcher.assign(&topic, partition, start);
        Ok(PartitionReader {
            fetcher,
            topic_arc: std::sync::Arc::from(topic.as_str()),
            topic,
            partition,
            buffer: tokio::sync::Mutex::new(VecDeque::new()),
            next_offset: AtomicI64::new(match start {
                StartOffset::Offset(o) => o,
                _ => -1,
            }),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    fn message(&self, r: Record) -> Message {
        Message::from_record(self.topic_arc.clone(), self.partition, r)
    }

    fn returned(&self, r: &Record) {
        self.next_offset.store(r.offset + 1, Ordering::Release);
        self.messages.fetch_add(1, Ordering::Relaxed);
        let n = r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Fills `buffer` from the fetcher when it is empty. Cancel-safe.
    async fn fill(&self, buffer: &mut VecDeque<Record>) -> Result<(), ConsumeError> {
        while buffer.is_empty() {
            match self.fetcher.next_batch().await {
                None => return Err(ConsumeErrorKind::Closed.into()),
                Some(Err(e)) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                Some(Ok(batch)) => buffer.extend(batch.records),
            }
        }
        Ok(())
    }

    /// The next message, waiting for one. Cancel-safe: dropping the future loses
    /// nothing, the next call returns the same message.
    pub async fn read_message(&self) -> Result<Message, ConsumeError> {
        let mut buffer = self.buffer.lock().await;
        self.fill(&mut buffer).await?;
        let r = buffer
            .pop_front()
            .ok_or_else(|| ConsumeError::new(ConsumeErrorKind::Closed))?;
        self.returned(&r);
        Ok(self.message(r))
    }

    /// Up to `max` messages: waits up to `wait` for the first, then takes what is
    /// buffered (the Dart `batchConsume`). Empty when nothing came in time.
    pub async fn read_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, ConsumeError> {
        let mut buffer = self.buffer.lock().await;
        match tokio::time::timeout(wait, self.fill(&mut buffer)).await {
            Err(_) => return Ok(Vec::new()),
            Ok(r) => r?,
        }
        let n = max.min(buffer.len());
        let records: Vec<Record> = buffer.drain(..n).collect();
        Ok(records
            .into_iter()
            .map(|r| {
                self.returned(&r);
                self.message(r)
            })
            .collect())
    }

    /// Moves to `offset`: the next message is the one at `offset`.
    pub async fn set_offset(&self, offset: i64) {
        let mut buffer = self.buffer.lock().await;
        buffer.clear();
        self.fetcher.seek(&self.topic, self.partition, offset);
        self.next_offset.store(offset, Ordering::Release);
    }

    /// Moves to the first message at or after `timestamp_ms` (ListOffsets by time),
    /// or to the end when every message is older. Returns the offset moved to.
    pub async fn set_offset_at(&self, timestamp_ms: i64) -> Result<i64, ConsumeError> {
        let client = self.fetcher.client();
        let at = |e: kafka_net::Error| ConsumeError::from(e).at(&self.topic, self.partition);
        let offset = match client
            .offsets_for_times(&self.topic, self.partition, timestamp_ms)
            .await
            .map_err(at)?
        {
            Some(found) => found.offset,
            None => client
                .offset_latest(&self.topic, self.partition)
                .await
                .map_err(at)?,
        };
        self.set_offset(offset).await;
        Ok(offset)
    }

    /// The offset of the next message to be returned (-1 until the start is known).
    pub fn offset(&self) -> i64 {
        let own = self.next_offset.load(Ordering::Acquire);
        if own >= 0 {
            own
        } else {
            self.fetcher
                .position(&self.topic, self.partition)
                .unwrap_or(-1)
        }
    }

    /// Messages behind the end of the partition, as of the last fetch (kafka-go
    /// `Lag`); -1 before the first fetch.
    pub fn lag(&self) -> i64 {
        let hw = self.fetcher.high_watermark(&self.topic, self.partition);
        let offset = self.offset();
        if hw < 0 || offset < 0 {
            -1
        } else {
            (hw - offset).max(0)
        }
    }

    /// Messages behind the end of the partition, asking the broker now (kafka-go
    /// `ReadLag`).
    pub async fn read_lag(&self) -> Result<i64, ConsumeError> {
        let end = self
            .fetcher
            .client()
            .offset_latest(&self.topic, self.partition)
            .await
            .map_err(|e| ConsumeError::from(e).at(&self.topic, self.partition))?;
        let offset = self.offset();
        Ok(if offset < 0 {
            end
        } else {
            (end - offset).max(0)
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            offset: self.offset(),
            lag: self.lag(),
        }
    }

    /// A snapshot of the reader's fetcher (see [`Fetcher::statistics`]), with the
    /// partition's `position` and `lag` as the reader counts them (records it holds
    /// but has not returned are not consumed yet).
    pub fn statistics(&self) -> crate::FetcherStatistics {
        let mut s = self.fetcher.statistics();
        let offset = self.offset();
        for p in s.partitions.iter_mut() {
            p.position = offset;
            p.lag = crate::fetcher::lag(p.high_watermark, offset);
        }
        s
    }

    /// The messages as a stream; it ends when the reader is closed.
    pub fn stream(&self) -> impl Stream<Item = Result<Message, ConsumeError>> + '_ {
        futures::stream::unfold(self, |reader| async move {
            match reader.read_message().await {
                Err(e) if matches!(e.kind(), ConsumeErrorKind::Closed) => None,
                r => Some((r, reader)),
            }
        })
    }

    /// Stops fetching; later reads fail with [`ConsumeErrorKind::Closed`].
    pub fn close(&self) {
        self.fetcher.close();
    }
}
