//! The transactional producer's requests to its coordinators: InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn and EndTxn to the transaction coordinator,
//! TxnOffsetCommit to the group coordinator, each retried while the coordinator is
//! unknown, moving, loading or busy (CONCURRENT_TRANSACTIONS), and their errors
//! sorted into fenced, abortable and fatal.

use super::{abortable, broker, fatal, TransactionState, Transactions};
use crate::buffered::{lock, Inner, Topic};
use crate::error::{ProduceError, ProduceErrorKind};
use kafka_net::{ConsumerGroupMetadata, Purpose};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest,
    TxnOffsetCommitRequest,
};
use kafka_protocol::{ApiKey, ErrorCode, Request, StrBytes};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Coordinator key types of FindCoordinator.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// The highest AddPartitionsToTxn version a client sends: v4 and later are the
/// brokers' own batched verification requests (KIP-890).
const ADD_PARTITIONS_CLIENT_MAX: i16 = 3;

/// The highest EndTxn version sent: v5 (KIP-890 part 2, transaction version 2) bumps
/// the epoch at every commit and goes with Produce v12, which the protocol definitions
/// this client is generated from do not have; v4 keeps every broker on the classic
/// transaction protocol, which Kafka 4 still serves.
const END_TXN_MAX: i16 = 4;

/// How long to wait before retrying CONCURRENT_TRANSACTIONS (the previous
/// transaction's markers are still being written); the Java client's 20 ms.
const CONCURRENT_BACKOFF: Duration = Duration::from_millis(20);

/// An error answer of the transaction coordinator, sorted.
pub(super) fn classify(
    inner: &Inner,
    txn: &Transactions,
    code: ErrorCode,
    api: ApiKey,
) -> ProduceError {
    match code {
        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
            let timed_out = lock(&inner.state).txn.timed_out(txn.timeout_ms);
            if timed_out && api != ApiKey::InitProducerId {
                let ms = txn.timeout_ms.max(0) as u64;
                ProduceErrorKind::TransactionTimedOut(Duration::from_millis(ms)).into()
            } else {
                ProduceErrorKind::Fenced {
                    transactional_id: txn.id.clone(),
                    code,
                }
                .into()
            }
        }
        ErrorCode::TransactionAbortable
        | ErrorCode::UnknownProducerId
        | ErrorCode::TopicAuthorizationFailed
        | ErrorCode::GroupAuthorizationFailed
        | ErrorCode::UnknownMemberId
        | ErrorCode::IllegalGeneration
        | ErrorCode::FencedInstanceId
        | ErrorCode::RebalanceInProgress => abortable(broker(code, api)),
        _ => fatal(broker(code, api)),
    }
}

/// Sends a request to a coordinator (of `key`), retrying what can be retried until
/// `max_block`: an unknown or moved coordinator (found again), one still loading,
/// CONCURRENT_TRANSACTIONS, a lost connection. `code` reads the answer's error
/// (the first that is not OPERATION_NOT_ATTEMPTED); any other error is the
/// caller's to sort.
pub(super) async fn to_coordinator<R, B, C>(
    inner: &Inner,
    key_type: i8,
    key: &str,
    max_version: i16,
    build: B,
    code: C,
) -> Result<(R::Response, ErrorCode), ProduceError>
where
    R: Request,
    B: Fn(i16) -> R,
    C: Fn(&R::Response) -> ErrorCode,
{
    let client = &inner.client;
    let deadline = Instant::now() + inner.config.max_block;
    let mut last: Option<ProduceError>;
    loop {
        let attempt = async {
            let broker = client.coordinator(key_type, key).await?;
            let conn = client.connection(&broker, Purpose::Group).await?;
            let version = conn.versions().version_for(R::API_KEY)?.min(max_version);
            conn.send_version(&build(version), version).await
        }
        .await;
        let backoff = match attempt {
            Ok(response) => {
                let c = code(&response);
                match c {
                    ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                        client.invalidate_coordinator(key_type, key);
                        last = Some(broker(c, R::API_KEY));
                        inner.config.retry_backoff
                    }
                    ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                        last = Some(broker(c, R::API_KEY));
                        inner.config.retry_backoff
                    }
                    ErrorCode::ConcurrentTransactions => {
                        last = Some(broker(c, R::API_KEY));
                        CONCURRENT_BACKOFF
                    }
                    _ => return Ok((response, c)),
                }
            }
            Err(e) if e.is_retriable() => {
                client.invalidate_coordinator(key_type, key);
                last = Some(ProduceError::from(e));
                inner.config.retry_backoff
            }
            Err(e) => return Err(ProduceError::from(e)),
        };
        if Instant::now() + backoff >= deadline {
            let e = last.unwrap_or_else(|| ProduceErrorKind::Closed.into());
            tracing::warn!(error = %e, api = %R::API_KEY, "coordinator calls gave up after max_block");
            return Err(e);
        }
        tokio::time::sleep(backoff).await;
    }
}

/// InitProducerId for the transactional id: a fresh producer id and epoch, or
/// (`current`, KIP-360) the next epoch of ours.
pub(super) async fn init_producer_id(
    inner: &Inner,
    txn: &Transactions,
    current: Option<(i64, i16)>,
) -> Result<(), ProduceError> {
    let (id, epoch) = current.unwrap_or((-1, -1));
    let (response, code) = to_coordinator(
        inner,
        TRANSACTION,
        &txn.id,
        i16::MAX,
        |version| {
            if current.is_some() && version < 3 {
                tracing::warn!("the coordinator is older than InitProducerId v3: no epoch bump");
            }
            InitProducerIdRequest {
                transactional_id: Some(txn.wire_id.clone()),
                transaction_timeout_ms: txn.timeout_ms,
                producer_id: id,
                producer_epoch: epoch,
                ..Default::default()
            }
        },
        |r| ErrorCode::from(r.error_code),
    )
    .await?;
    if !code.is_ok() {
        return Err(match code {
            ErrorCode::InvalidTransactionTimeout => fatal(
                ProduceErrorKind::Config(format!(
                    "the broker refused transaction_timeout of {} ms (INVALID_TRANSACTION_TIMEOUT: above its transaction.max.timeout.ms?)",
                    txn.timeout_ms
                ))
                .into(),
            ),
            c => classify(inner, txn, c, ApiKey::InitProducerId),
        });
    }
    let mut state = lock(&inner.state);
    crate::buffered::sender::set_producer(
        &mut state,
        (response.producer_id, response.producer_epoch),
    );
    Ok(())
}

/// AddPartitionsToTxn for partitions about to get their first batch in the open
/// transaction (called by the sender); on success they are in the transaction.
pub(in crate::buffered) async fn add_partitions(
    inner: &Inner,
    partitions: &BTreeSet<(Topic, i32)>,
) -> Result<(), ProduceError> {
    let Some(txn) = &inner.txn else {
        return Ok(());
    };
    let Some((id, epoch)) = lock(&inner.state).producer else {
        return Err(ProduceErrorKind::TransactionState {
            call: "send",
            state: TransactionState::Uninitialized,
        }
        .into());
    };
    let topics: Vec<AddPartitionsToTxnTopic> = by_topic(partitions.iter().map(|(t, p)| (&**t, *p)))
        .map(|(name, partitions)| AddPartitionsToTxnTopic {
            name,
            partitions,
            ..Default::default()
        })
        .collect();
    let (_, code) = to_coordinator(
        inner,
        TRANSACTION,
        &txn.id,
        ADD_PARTITIONS_CLIENT_MAX,
        |_| AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: txn.wire_id.clone(),
            v3_and_below_producer_id: id,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: topics.clone(),
            ..Default::default()
        },
        |r| {
            let codes = r
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| ErrorCode::from(p.partition_error_code));
            let mut first = ErrorCode::from(r.error_code);
            for c in codes {
                if first.is_ok() || first == ErrorCode::OperationNotAttempted {
                    first = c;
                }
            }
            first
        },
    )
    .await?;
    if code.is_ok() {
        let mut state = lock(&inner.state);
        state.txn.partitions.extend(partitions.iter().cloned());
        return Ok(());
    }
    Err(match code {
        // The topic is not there (yet): the batches may be retried.
        ErrorCode::UnknownTopicOrPartition => broker(code, ApiKey::AddPartitionsToTxn),
        c => classify(inner, txn, c, ApiKey::AddPartitionsToTxn),
    })
}

/// AddOffsetsToTxn (once per group per transaction), then TxnOffsetCommit to the
/// group coordinator.
pub(super) async fn send_offsets(
    inner: &Inner,
    txn: &Transactions,
    offsets: &BTreeMap<(String, i32), i64>,
    group: &ConsumerGroupMetadata,
) -> Result<(), ProduceError> {
    let Some((id, epoch)) = lock(&inner.state).producer else {
        return Err(ProduceErrorKind::Closed.into());
    };
    let added = lock(&inner.state).txn.groups.contains(&group.group_id);
    if !added {
        let (_, code) = to_coordinator(
            inner,
            TRANSACTION,
            &txn.id,
            i16::MAX,
            |_| AddOffsetsToTxnRequest {
                transactional_id: txn.wire_id.clone(),
                producer_id: id,
                producer_epoch: epoch,
                group_id: StrBytes::from(group.group_id.clone()),
                ..Default::default()
            },
            |r| ErrorCode::from(r.error_code),
        )
        .await?;
        if !code.is_ok() {
            return Err(classify(inner, txn, code, ApiKey::AddOffsetsToTxn));
        }
        lock(&inner.state).txn.groups.insert(group.group_id.clone());
    }
    if offsets.is_empty() {
        return Ok(());
    }
    let partitions = offsets.iter().map(|((t, p), o)| {
        let partition = TxnOffsetCommitRequestPartition {
            partition_index: *p,
            committed_offset: *o,
            committed_leader_epoch: -1,
            committed_metadata: Some(StrBytes::from(String::new())),
            ..Default::default()
        };
        (t.as_str(), partition)
    });
    let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic(partitions)
        .map(|(name, partitions)| TxnOffsetCommitRequestTopic {
            name,
            partitions,
            ..Default::default()
        })
        .collect();
    let (_, code) = to_coordinator(
        inner,
        GROUP,
        &group.group_id,
        i16::MAX,
        |_| TxnOffsetCommitRequest {
            transactional_id: txn.wire_id.clone(),
            group_id: StrBytes::from(group.group_id.clone()),
            producer_id: id,
            producer_epoch: epoch,
            generation_id: group.generation_id,
            member_id: StrBytes::from(group.member_id.clone()),
            group_instance_id: group.group_instance_id.clone().map(StrBytes::from),
            topics: topics.clone(),
            ..Default::default()
        },
        |r| {
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| ErrorCode::from(p.error_code))
                .find(|c| !c.is_ok())
                .unwrap_or(ErrorCode::None)
        },
    )
    .await?;
    if code.is_ok() {
        return Ok(());
    }
    Err(classify(inner, txn, code, ApiKey::TxnOffsetCommit))
}

/// EndTxn: commits or aborts the open transaction at the coordinator.
pub(super) async fn end_txn(
    inner: &Inner,
    txn: &Transactions,
    commit: bool,
) -> Result<(), ProduceError> {
    let Some((id, epoch)) = lock(&inner.state).producer else {
        return Err(ProduceErrorKind::Closed.into());
    };
    let (_, code) = to_coordinator(
        inner,
        TRANSACTION,
        &txn.id,
        END_TXN_MAX,
        |_| EndTxnRequest {
            transactional_id: txn.wire_id.clone(),
            producer_id: id,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        },
        |r| ErrorCode::from(r.error_code),
    )
    .await?;
    if code.is_ok() {
        return Ok(());
    }
    Err(classify(inner, txn, code, ApiKey::EndTxn))
}

/// Items grouped by topic, in topic order, as the requests list them.
fn by_topic<'a, T: 'a>(
    items: impl IntoIterator<Item = (&'a str, T)>,
) -> impl Iterator<Item = (StrBytes, Vec<T>)> + 'a {
    let mut topics: BTreeMap<&'a str, Vec<T>> = BTreeMap::new();
    for (topic, item) in items {
        topics.entry(topic).or_default().push(item);
    }
    topics
        .into_iter()
        .map(|(topic, items)| (StrBytes::from(topic.to_string()), items))
}
