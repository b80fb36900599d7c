//! Offsets without group membership:
//!
//! - [`OffsetCoordinator`]: commits and fetches a group's offsets as a "simple
//!   consumer" (generation -1, no member id), which Kafka accepts while the group has
//!   no members.
//! - [`OffsetMaster`] (the Dart client's): earliest and latest offsets, one partition
//!   or many at once (one ListOffsets per leader).
//! - [`EnvelopeConsumer`] (the Dart client's consumer): each message comes in an
//!   [`Envelope`] that must be committed, acknowledged or cancelled before the next
//!   one is handed out.

use crate::consumer::{Consumer, Message};
use crate::error::{ConsumeError, ConsumeErrorKind};
use kafka_net::{Client, KafkaClient};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest};
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, StrBytes};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// FindCoordinator key type of groups.
const GROUP: i8 = 0;

fn broker(code: i16, topic: &str, partition: i32) -> Result<(), ConsumeError> {
    let code = ErrorCode::from(code);
    if code.is_ok() {
        Ok(())
    } else {
        Err(ConsumeError::new(ConsumeErrorKind::Broker(code)).at(topic, partition))
    }
}

fn missing(topic: &str, partition: i32) -> ConsumeError {
    ConsumeError::new(ConsumeErrorKind::Broker(ErrorCode::UnknownTopicOrPartition))
        .at(topic, partition)
}

/// Commits and fetches one group's offsets without joining the group (optiopay's
/// `OffsetCoordinator`). Retriable answers (NOT_COORDINATOR,
/// COORDINATOR_LOAD_IN_PROGRESS, ...) are retried: by default 5 times, 200 ms apart.
#[derive(Debug, Clone)]
pub struct OffsetCoordinator {
    client: KafkaClient,
    group: String,
    retry_limit: u32,
    retry_wait: Duration,
}

impl OffsetCoordinator {
    /// The offsets of `group`.
    pub fn new(client: KafkaClient, group: impl Into<String>) -> Self {
        OffsetCoordinator {
            client,
            group: group.into(),
            retry_limit: 5,
            retry_wait: Duration::from_millis(200),
        }
    }

    /// Retries retriable errors `limit` times, `wait` apart (`retry.backoff.ms`).
    #[must_use]
    pub fn with_retries(mut self, limit: u32, wait: Duration) -> Self {
        self.retry_limit = limit;
        self.retry_wait = wait;
        self
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    async fn retrying<T, F, Fut>(&self, f: F) -> Result<T, ConsumeError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ConsumeError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if e.is_retriable() && attempt < self.retry_limit => {
                    attempt += 1;
                    if matches!(
                        e.code(),
                        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable)
                    ) {
                        self.client.invalidate_coordinator(GROUP, &self.group);
                    }
                    tracing::debug!(group_id = %self.group, error = %e, attempt, "retrying");
                    tokio::time::sleep(self.retry_wait).await;
                }
                r => return r,
            }
        }
    }

    /// Commits `offset` (the next offset to read: the last one processed plus one)
    /// for `topic`/`partition`, with optional metadata. Sent as OffsetCommit with
    /// generation -1 and no member id.
    pub async fn commit(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        metadata: Option<&str>,
    ) -> Result<(), ConsumeError> {
        self.retrying(|| self.commit_once(topic, partition, offset, metadata))
            .await
    }

    async fn commit_once(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        metadata: Option<&str>,
    ) -> Result<(), ConsumeError> {
        let at = |e: ConsumeError| e.at(topic, partition);
        let version = self
            .client
            .api_version(ApiKey::OffsetCommit)
            .await
            .map_err(|e| at(e.into()))?;
        let mut request = OffsetCommitRequest {
            group_id: StrBytes::from(self.group.clone()),
            generation_id_or_member_epoch: -1,
            member_id: StrBytes::default(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: StrBytes::from(topic.to_string()),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: partition,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: metadata.map(|m| StrBytes::from(m.to_string())),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        request.retain_version(version);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| at(e.into()))?;
        let p = response
            .topics
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| missing(topic, partition))?;
        broker(p.error_code, topic, partition)
    }

    /// The committed offset of `topic`/`partition` and its metadata (`None` when
    /// empty); `None` when nothing is committed.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<(i64, Option<String>)>, ConsumeError> {
        self.retrying(|| self.fetch_once(topic, partition)).await
    }

    async fn fetch_once(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<(i64, Option<String>)>, ConsumeError> {
        let at = |e: ConsumeError| e.at(topic, partition);
        let version = self
            .client
            .api_version(ApiKey::OffsetFetch)
            .await
            .map_err(|e| at(e.into()))?;
        let group_id = StrBytes::from(self.group.clone());
        let name = StrBytes::from(topic.to_string());
        let mut request = if version >= 8 {
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id,
                    member_id: None,
                    member_epoch: -1,
                    topics: Some(vec![OffsetFetchRequestTopics {
                        name,
                        partition_indexes: vec![partition],
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }
        } else {
            OffsetFetchRequest {
                group_id,
                topics: Some(vec![OffsetFetchRequestTopic {
                    name,
                    partition_indexes: vec![partition],
                    ..Default::default()
                }]),
                ..Default::default()
            }
        };
        request.retain_version(version);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| at(e.into()))?;
        let (offset, metadata, code) = if version >= 8 {
            let g = response
                .groups
                .first()
                .ok_or_else(|| missing(topic, partition))?;
            broker(g.error_code, topic, partition)?;
            let p = g
                .topics
                .iter()
                .filter(|t| t.name.as_str() == topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| missing(topic, partition))?;
            (p.committed_offset, p.metadata.clone(), p.error_code)
        } else {
            broker(response.error_code, topic, partition)?;
            let p = response
                .topics
                .iter()
                .filter(|t| t.name.as_str() == topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| missing(topic, partition))?;
            (p.committed_offset, p.metadata.clone(), p.error_code)
        };
        broker(code, topic, partition)?;
        if offset < 0 {
            return Ok(None);
        }
        let metadata = metadata.map(|m| m.to_string()).filter(|m| !m.is_empty());
        Ok(Some((offset, metadata)))
    }
}

/// Earliest and latest offsets of partitions (the Dart client's `OffsetMaster`).
/// Lookups for many partitions send one ListOffsets per leader; retriable partition
/// errors refresh metadata and are retried (by default 5 times, 200 ms apart).
#[derive(Debug, Clone)]
pub struct OffsetMaster {
    client: KafkaClient,
    retry_limit: u32,
    retry_wait: Duration,
}

/// ListOffsets timestamps.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

impl OffsetMaster {
    /// Offsets through `client`.
    pub fn new(client: KafkaClient) -> Self {
        OffsetMaster {
            client,
            retry_limit: 5,
            retry_wait: Duration::from_millis(200),
        }
    }

    /// Retries retriable errors `limit` times, `wait` apart.
    #[must_use]
    pub fn with_retries(mut self, limit: u32, wait: Duration) -> Self {
        self.retry_limit = limit;
        self.retry_wait = wait;
        self
    }

    /// The earliest offset (log start) of a partition.
    pub async fn earliest(&self, topic: &str, partition: i32) -> Result<i64, ConsumeError> {
        self.one(topic, partition, EARLIEST).await
    }

    /// The latest offset (log end: the offset the next record gets) of a partition.
    pub async fn latest(&self, topic: &str, partition: i32) -> Result<i64, ConsumeError> {
        self.one(topic, partition, LATEST).await
    }

    /// The earliest offsets of many partitions, keyed by (topic, partition).
    pub async fn earliest_many<I, T>(
        &self,
        partitions: I,
    ) -> Result<BTreeMap<(String, i32), i64>, ConsumeError>
    where
        I: IntoIterator<Item = (T, i32)>,
        T: AsRef<str>,
    {
        self.many(partitions, EARLIEST).await
    }

    /// The latest offsets of many partitions, keyed by (topic, partition).
    pub async fn latest_many<I, T>(
        &self,
        partitions: I,
    ) -> Result<BTreeMap<(String, i32), i64>, ConsumeError>
    where
        I: IntoIterator<Item = (T, i32)>,
        T: AsRef<str>,
    {
        self.many(partitions, LATEST).await
    }

    async fn one(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ConsumeError> {
        let found = self.many([(topic, partition)], timestamp).await?;
        found
            .get(&(topic.to_string(), partition))
            .copied()
            .ok_or_else(|| missing(topic, partition))
    }

    async fn many<I, T>(
        &self,
        partitions: I,
        timestamp: i64,
    ) -> Result<BTreeMap<(String, i32), i64>, ConsumeError>
    where
        I: IntoIterator<Item = (T, i32)>,
        T: AsRef<str>,
    {
        let mut pending: BTreeSet<(String, i32)> = partitions
            .into_iter()
            .map(|(t, p)| (t.as_ref().to_string(), p))
            .collect();
        let mut found = BTreeMap::new();
        let mut attempt = 0;
        loop {
            let mut last: Option<ConsumeError> = None;
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            for (topic, partition) in &pending {
                match self.client.leader(topic, *partition).await {
                    Ok(b) => by_leader
                        .entry(b.node_id)
                        .or_default()
                        .push((topic.clone(), *partition)),
                    Err(e) if e.is_retriable() => {
                        last = Some(ConsumeError::from(e).at(topic, *partition));
                    }
                    Err(e) => return Err(ConsumeError::from(e).at(topic, *partition)),
                }
            }
            let answers =
                futures::future::join_all(by_leader.into_iter().map(|(node, parts)| async move {
                    (self.list(node, &parts, timestamp).await, parts)
                }))
                .await;
            for (answer, parts) in answers {
                match answer {
                    Ok(results) => {
                        for ((topic, partition), result) in parts.into_iter().zip(results) {
                            match result {
                                Ok(offset) => {
                                    pending.remove(&(topic.clone(), partition));
                                    found.insert((topic, partition), offset);
                                }
                                Err(e) if e.is_retriable() => last = Some(e),
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if pending.is_empty() {
                return Ok(found);
            }
            let e = last.unwrap_or_else(|| {
                let (topic, partition) = pending.first().cloned().unwrap_or_default();
                missing(&topic, partition)
            });
            if attempt >= self.retry_limit {
                return Err(e);
            }
            attempt += 1;
            tracing::debug!(error = %e, attempt, "retrying offset lookup");
            let _ = self.client.refresh_metadata().await;
            tokio::time::sleep(self.retry_wait).await;
        }
    }

    /// One ListOffsets to `node` for `parts`; a result per partition, in order.
    async fn list(
        &self,
        node: i32,
        parts: &[(String, i32)],
        timestamp: i64,
    ) -> Result<Vec<Result<i64, ConsumeError>>, ConsumeError> {
        let version = self.client.api_version(ApiKey::ListOffsets).await?;
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for (topic, partition) in parts {
            let entry = ListOffsetsPartition {
                partition_index: *partition,
                current_leader_epoch: -1,
                timestamp,
                max_num_offsets: 1,
                ..Default::default()
            };
            match topics.iter_mut().find(|t| t.name.as_str() == topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(ListOffsetsTopic {
                    name: StrBytes::from(topic.clone()),
                    partitions: vec![entry],
                    ..Default::default()
                }),
            }
        }
        let mut request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics,
            ..Default::default()
        };
        request.retain_version(version);
        let response = match self
            .client
            .send_to(node, RequestKind::ListOffsets(request))
            .await?
        {
            ResponseKind::ListOffsets(r) => r,
            _ => {
                return Err(kafka_net::Error::new(kafka_net::ErrorKind::Malformed(
                    "answer of the wrong type to ListOffsets".into(),
                ))
                .into())
            }
        };
        Ok(parts
            .iter()
            .map(|(topic, partition)| {
                let p = response
                    .topics
                    .iter()
                    .filter(|t| t.name.as_str() == topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == *partition)
                    .ok_or_else(|| missing(topic, *partition))?;
                broker(p.error_code, topic, *partition)?;
                let offset = if version == 0 {
                    p.old_style_offsets.first().copied().unwrap_or(-1)
                } else {
                    p.offset
                };
                Ok(offset)
            })
            .collect())
    }
}

/// Hands out a consumer's messages in [`Envelope`]s, one at a time (the Dart
/// client's consumer): the next message comes only once the previous envelope is
/// resolved by [`Envelope::commit`], [`Envelope::ack`] or [`Envelope::cancel`]
/// (dropping it counts as `ack`). [`EnvelopeConsumer::next`] called while an envelope
/// is unresolved waits for it (as the Dart client does), so holding an envelope
/// while awaiting `next()` in the same task never returns.
pub struct EnvelopeConsumer {
    consumer: Arc<dyn Consumer>,
    coordinator: Arc<OffsetCoordinator>,
    shared: Arc<Shared>,
}

/// What the consumer and its envelopes share.
#[derive(Debug)]
struct Shared {
    /// One permit: held by the unresolved envelope (or a `next()` in progress).
    gate: Arc<Semaphore>,
    /// Set by cancel.
    cancelled: watch::Sender<bool>,
}

impl Shared {
    fn cancel(&self) {
        self.cancelled.send_replace(true);
        self.gate.close();
    }
}

impl std::fmt::Debug for EnvelopeConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeConsumer")
            .field("group", &self.coordinator.group)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl EnvelopeConsumer {
    /// Envelopes of `consumer`'s messages, committed through `coordinator`.
    pub fn new(consumer: Arc<dyn Consumer>, coordinator: OffsetCoordinator) -> Self {
        EnvelopeConsumer {
            consumer,
            coordinator: Arc::new(coordinator),
            shared: Arc::new(Shared {
                gate: Arc::new(Semaphore::new(1)),
                cancelled: watch::Sender::new(false),
            }),
        }
    }

    /// The next message in an envelope, once the previous envelope is resolved.
    /// `None` after [`Envelope::cancel`] or [`EnvelopeConsumer::cancel`], and when the
    /// consumer is closed ([`ConsumeErrorKind::Closed`]); other errors of the
    /// consumer (`NoData` included) are returned and consuming may go on.
    /// Cancel-safe when the consumer is.
    pub async fn next(&self) -> Option<Result<Envelope, ConsumeError>> {
        let permit = self.shared.gate.clone().acquire_owned().await.ok()?;
        let mut cancelled = self.shared.cancelled.subscribe();
        let consumed = tokio::select! {
            biased;
            _ = cancelled.wait_for(|c| *c) => return None,
            r = self.consumer.consume() => r,
        };
        match consumed {
            Ok(message) => Some(Ok(Envelope {
                message,
                permit: Some(permit),
                shared: self.shared.clone(),
                coordinator: self.coordinator.clone(),
            })),
            Err(e) if matches!(e.kind(), ConsumeErrorKind::Closed) => {
                self.shared.cancel();
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Ends the consumer: `next()` returns `None` from now on (one waiting returns
    /// `None` at once). An unresolved envelope can still be committed.
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.shared.cancelled.borrow()
    }
}

/// A message from an [`EnvelopeConsumer`], to be resolved with exactly one of
/// [`commit`](Envelope::commit), [`ack`](Envelope::ack) or
/// [`cancel`](Envelope::cancel); dropping it is `ack`. Derefs to the [`Message`].
#[derive(Debug)]
pub struct Envelope {
    message: Message,
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
    coordinator: Arc<OffsetCoordinator>,
}

impl Envelope {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Commits the message's offset plus one with `metadata`, then lets the next
    /// message through. The envelope is resolved whether the commit succeeds or not
    /// (a failed commit is returned; the offset can be committed again through the
    /// [`OffsetCoordinator`]).
    pub async fn commit(mut self, metadata: &str) -> Result<(), ConsumeError> {
        let m = &self.message;
        let result = self
            .coordinator
            .commit(&m.topic, m.partition, m.offset + 1, Some(metadata))
            .await;
        self.permit.take();
        result
    }

    /// Lets the next message through without committing.
    pub fn ack(mut self) {
        self.permit.take();
    }

    /// Ends the consumer: its `next()` returns `None` from now on.
    pub fn cancel(mut self) {
        self.shared.cancel();
        self.permit.take();
    }
}

impl std::ops::Deref for Envelope {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}
