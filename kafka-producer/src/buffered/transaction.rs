//! Transactions of the buffered producer (KIP-98, with KIP-360 epoch bumps, KIP-447
//! group fencing and KIP-588 recovery): the state machine, and the calls to the
//! transaction coordinator (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn) and to the group coordinator (TxnOffsetCommit).
//!
//! The producer's sender adds a transaction's partitions itself: before the first
//! batch of a partition goes out in a transaction, one AddPartitionsToTxn carries
//! every new partition of the ready batches (as the Java client's sender does), and
//! the batches wait for its answer.
//!
//! Errors are sorted as the Java client sorts them: a newer producer with the same
//! transactional id fences this one ([`ProduceErrorKind::Fenced`], fatal); an error
//! that only spoils the open transaction (a record that failed for good, a group
//! member fenced by a rebalance, a timed-out transaction) makes it abortable
//! ([`ProduceErrorKind::TransactionAbortable`]): abort, and the producer goes on;
//! anything else is fatal ([`ProduceErrorKind::TransactionFatal`]). A transaction
//! open past `transaction_timeout` is aborted by the coordinator, which (Kafka's
//! transaction protocol before KIP-890's version 2) bumps the epoch and so fences
//! the producer: [`ProduceErrorKind::TransactionTimedOut`], fatal.

use super::{lock, BufferedProducer, Inner, Topic};
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
use std::fmt;
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

/// Where a transactional producer is. Each call names the states it is allowed in;
/// in any other it fails with [`ProduceErrorKind::TransactionState`] and changes
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionState {
    /// Created: only `init_transactions` is allowed.
    Uninitialized,
    /// Initialized, no transaction open: `begin_transaction` is allowed.
    Ready,
    /// A transaction is open: `send`, `send_offsets_to_transaction`,
    /// `commit_transaction` and `abort_transaction` are allowed.
    InTransaction,
    /// `commit_transaction` is running (sends are refused).
    Committing,
    /// `abort_transaction` is running (sends are refused).
    Aborting,
    /// The open transaction failed (see [`ProduceError::is_abortable`]): only
    /// `abort_transaction` is allowed, after which the producer is `Ready` again.
    AbortableError,
    /// Failed for good (fenced, or a fatal answer): every call fails; close it.
    FatalError,
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransactionState::Uninitialized => "uninitialized (init_transactions was not called)",
            TransactionState::Ready => "ready (no transaction is open: call begin_transaction)",
            TransactionState::InTransaction => "in a transaction",
            TransactionState::Committing => "committing a transaction",
            TransactionState::Aborting => "aborting a transaction",
            TransactionState::AbortableError => "in an abortable error (call abort_transaction)",
            TransactionState::FatalError => "failed for good (close it)",
        })
    }
}

/// The transactional configuration, and the lock that runs one transactional call at
/// a time.
pub(super) struct Transactions {
    pub(super) id: String,
    timeout_ms: i32,
    calls: tokio::sync::Mutex<()>,
}

impl Transactions {
    pub(super) fn new(id: String, timeout: Duration) -> Self {
        Transactions {
            id,
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            calls: tokio::sync::Mutex::new(()),
        }
    }
}

/// The transaction part of the producer's state (under its one mutex).
#[derive(Debug)]
pub(super) struct Phase {
    pub(super) state: TransactionState,
    /// Why the state is `AbortableError` or `FatalError`.
    error: Option<ProduceError>,
    started: Option<Instant>,
    /// Partitions added to the open transaction.
    pub(super) partitions: BTreeSet<(Topic, i32)>,
    /// Groups added to it (AddOffsetsToTxn).
    groups: BTreeSet<String>,
    /// A batch with a sequence number failed or was dropped: the abort must bump the
    /// epoch (KIP-360), for the broker's sequences have a gap.
    pub(super) bump: bool,
}

impl Default for Phase {
    fn default() -> Self {
        Phase {
            state: TransactionState::Uninitialized,
            error: None,
            started: None,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            bump: false,
        }
    }
}

impl Phase {
    /// Sends are allowed.
    pub(super) fn open(&self) -> bool {
        self.state == TransactionState::InTransaction
    }

    /// The error that spoiled the open transaction, if any.
    pub(super) fn failure(&self) -> Option<&ProduceError> {
        match self.state {
            TransactionState::AbortableError | TransactionState::FatalError => self.error.as_ref(),
            _ => None,
        }
    }

    /// A record of the open transaction failed for good: the transaction can only be
    /// aborted (the first error is kept).
    pub(super) fn record_failed(&mut self, error: &ProduceError, had_sequence: bool) {
        self.bump |= had_sequence;
        if matches!(
            self.state,
            TransactionState::InTransaction | TransactionState::Committing
        ) {
            let error = if error.is_fatal() {
                self.state = TransactionState::FatalError;
                error.clone()
            } else {
                self.state = TransactionState::AbortableError;
                abortable(error.clone())
            };
            self.error = Some(error);
        }
    }

    fn fail(&mut self, error: &ProduceError) {
        if error.is_fatal() {
            self.state = TransactionState::FatalError;
        } else if self.state != TransactionState::FatalError {
            self.state = TransactionState::AbortableError;
        }
        self.error = Some(error.clone());
    }

    fn timed_out(&self, timeout_ms: i32) -> bool {
        self.started
            .is_some_and(|s| s.elapsed() >= Duration::from_millis(timeout_ms.max(0) as u64))
    }
}

fn abortable(e: ProduceError) -> ProduceError {
    if e.is_abortable() || e.is_fatal() {
        e
    } else {
        ProduceError::new(ProduceErrorKind::TransactionAbortable(Box::new(e)))
    }
}

fn fatal(e: ProduceError) -> ProduceError {
    if e.is_fatal() {
        e
    } else {
        ProduceError::new(ProduceErrorKind::TransactionFatal(Box::new(e)))
    }
}

fn broker(code: ErrorCode, api: ApiKey) -> ProduceError {
    ProduceError::new(ProduceErrorKind::Broker {
        code,
        message: Some(format!("answer to {api}")),
    })
}

impl BufferedProducer {
    fn transactions(&self, call: &'static str) -> Result<&Transactions, ProduceError> {
        self.inner
            .txn
            .as_ref()
            .ok_or_else(|| ProduceErrorKind::NotTransactional(call).into())
    }

    /// The state of a transactional producer (`None` for one without
    /// `transactional_id`).
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner
            .txn
            .as_ref()
            .map(|_| lock(&self.inner.state).txn.state)
    }

    /// Checks the state and names the error a call gets in a wrong one.
    fn expect(&self, call: &'static str, allowed: &[TransactionState]) -> Result<(), ProduceError> {
        let state = lock(&self.inner.state);
        if allowed.contains(&state.txn.state) {
            return Ok(());
        }
        match (state.txn.state, &state.txn.error) {
            (TransactionState::FatalError, Some(e)) => Err(e.clone()),
            (s, _) => Err(ProduceErrorKind::TransactionState { call, state: s }.into()),
        }
    }

    /// `initTransactions`: gets the producer id and epoch of `transactional_id` from
    /// its coordinator, which fences any older producer with the same id and aborts
    /// (or completes) the transaction it left open. Allowed once, when
    /// `Uninitialized`; retries an unavailable coordinator for up to `max_block`.
    pub async fn init_transactions(&self) -> Result<(), ProduceError> {
        let txn = self.transactions("init_transactions")?;
        let _call = txn.calls.lock().await;
        self.expect("init_transactions", &[TransactionState::Uninitialized])?;
        match init_producer_id(&self.inner, txn, None).await {
            Ok(()) => {
                lock(&self.inner.state).txn.state = TransactionState::Ready;
                Ok(())
            }
            // A retriable failure leaves it uninitialized: the call may be repeated.
            Err(e) if e.is_retriable() || matches!(e.kind(), ProduceErrorKind::Client(_)) => Err(e),
            Err(e) => {
                let e = fatal(e);
                lock(&self.inner.state).txn.fail(&e);
                Err(e)
            }
        }
    }

    /// `beginTransaction`: opens a transaction; sends are allowed until it is
    /// committed or aborted. Allowed when `Ready`. Nothing goes to the broker until
    /// the first record or offsets.
    pub fn begin_transaction(&self) -> Result<(), ProduceError> {
        self.transactions("begin_transaction")?;
        let mut state = lock(&self.inner.state);
        if state.txn.state != TransactionState::Ready {
            let s = state.txn.state;
            if let (TransactionState::FatalError, Some(e)) = (s, &state.txn.error) {
                return Err(e.clone());
            }
            return Err(ProduceErrorKind::TransactionState {
                call: "begin_transaction",
                state: s,
            }
            .into());
        }
        state.txn.state = TransactionState::InTransaction;
        state.txn.started = Some(Instant::now());
        state.txn.error = None;
        Ok(())
    }

    /// `sendOffsetsToTransaction`: commits a consumer group's offsets (the next offset
    /// to read, per partition) as part of the open transaction, so they count only if
    /// it commits. `group` comes from the group consumer
    /// (`GroupConsumer::group_metadata`): with its generation and member id, the group
    /// coordinator refuses the commit of a member that lost its partitions in a
    /// rebalance (KIP-447), which makes the transaction abortable. Allowed in a
    /// transaction.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<(String, i32), i64>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), ProduceError> {
        let txn = self.transactions("send_offsets_to_transaction")?;
        let _call = txn.calls.lock().await;
        self.expect(
            "send_offsets_to_transaction",
            &[TransactionState::InTransaction],
        )?;
        if group.group_id.is_empty() {
            return Err(ProduceErrorKind::Config("the group id is empty".into()).into());
        }
        let result = send_offsets(&self.inner, txn, offsets, group).await;
        if let Err(e) = &result {
            lock(&self.inner.state).txn.fail(e);
        }
        result
    }

    /// `commitTransaction`: sends every record of the transaction and waits for their
    /// acknowledgement (as `flush`), then commits: the records become visible to
    /// read_committed consumers, and the offsets sent with it are committed. Allowed
    /// in a transaction. If a record failed, nothing is committed and the error is
    /// abortable; a fenced producer gets [`ProduceErrorKind::Fenced`]. A commit whose
    /// answer was lost may be called again: the coordinator answers the same.
    pub async fn commit_transaction(&self) -> Result<(), ProduceError> {
        let txn = self.transactions("commit_transaction")?;
        let _call = txn.calls.lock().await;
        {
            let mut state = lock(&self.inner.state);
            match state.txn.state {
                TransactionState::InTransaction | TransactionState::Committing => {
                    state.txn.state = TransactionState::Committing;
                }
                TransactionState::AbortableError | TransactionState::FatalError => {
                    if let Some(e) = &state.txn.error {
                        return Err(e.clone());
                    }
                }
                s => {
                    return Err(ProduceErrorKind::TransactionState {
                        call: "commit_transaction",
                        state: s,
                    }
                    .into())
                }
            }
        }
        self.flush().await;
        let started = {
            let state = lock(&self.inner.state);
            if let Some(e) = state.txn.failure() {
                return Err(e.clone());
            }
            !state.txn.partitions.is_empty() || !state.txn.groups.is_empty()
        };
        if started {
            if let Err(e) = end_txn(&self.inner, txn, true).await {
                lock(&self.inner.state).txn.fail(&e);
                return Err(e);
            }
        }
        finish_transaction(&self.inner);
        Ok(())
    }

    /// `abortTransaction`: drops the records not sent yet (their reports say
    /// [`ProduceErrorKind::TransactionAborted`]), waits for those in flight, then
    /// aborts: read_committed consumers never see its records, and its offsets are
    /// discarded. Allowed in a transaction or an abortable error; afterwards the
    /// producer is `Ready`. After a batch failed for good it also takes the next
    /// producer epoch (KIP-360), for the broker's sequence numbers have a gap.
    pub async fn abort_transaction(&self) -> Result<(), ProduceError> {
        let txn = self.transactions("abort_transaction")?;
        let _call = txn.calls.lock().await;
        self.expect(
            "abort_transaction",
            &[
                TransactionState::InTransaction,
                TransactionState::Committing,
                TransactionState::Aborting,
                TransactionState::AbortableError,
            ],
        )?;
        let dropped = {
            let mut state = lock(&self.inner.state);
            state.txn.state = TransactionState::Aborting;
            let mut dropped = Vec::new();
            for q in state.queues.values_mut() {
                dropped.extend(q.batches.drain(..));
                q.retry_at = None;
            }
            let records: usize = dropped.iter().map(|b| b.records.len()).sum();
            state.pending = state.pending.saturating_sub(records);
            state.txn.bump |= dropped.iter().any(|b| b.sequence.is_some());
            dropped
        };
        for batch in dropped {
            for delivery in batch.deliveries {
                delivery.report(Err(ProduceErrorKind::TransactionAborted.into()));
            }
        }
        self.inner.progress.notify_waiters();
        // The batches in flight: their answers decide nothing, but the next
        // transaction's sequences follow theirs.
        self.flush().await;
        let (started, bump, unmapped) = {
            let state = lock(&self.inner.state);
            let code = state.txn.error.as_ref().and_then(ProduceError::code);
            (
                !state.txn.partitions.is_empty() || !state.txn.groups.is_empty(),
                state.txn.bump,
                matches!(
                    code,
                    Some(ErrorCode::InvalidProducerIdMapping | ErrorCode::UnknownProducerId)
                ),
            )
        };
        // As the Java client: EndTxn(abort) first (an InitProducerId with a transaction
        // open would fence this producer), then, when the broker's sequences have a
        // gap, the next epoch (KIP-360). A coordinator that no longer knows the
        // producer id takes no EndTxn.
        let mut result = Ok(());
        if started && !unmapped {
            result = end_txn(&self.inner, txn, false).await;
        }
        if result.is_ok() && (bump || unmapped) {
            let current = lock(&self.inner.state).producer;
            result = init_producer_id(&self.inner, txn, current).await;
        }
        match result {
            Ok(()) => {
                finish_transaction(&self.inner);
                Ok(())
            }
            Err(e) => {
                let e = if e.is_retriable() { e } else { fatal(e) };
                let mut state = lock(&self.inner.state);
                if e.is_fatal() {
                    state.txn.fail(&e);
                } else {
                    // May be called again.
                    state.txn.state = TransactionState::AbortableError;
                }
                Err(e)
            }
        }
    }
}

/// Back to `Ready` after a commit or abort.
fn finish_transaction(inner: &Inner) {
    let mut state = lock(&inner.state);
    state.txn.state = TransactionState::Ready;
    state.txn.error = None;
    state.txn.started = None;
    state.txn.partitions.clear();
    state.txn.groups.clear();
    state.txn.bump = false;
}

/// An error answer of the transaction coordinator, sorted.
fn classify(inner: &Inner, txn: &Transactions, code: ErrorCode, api: ApiKey) -> ProduceError {
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
async fn to_coordinator<R, B, C>(
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
async fn init_producer_id(
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
                transactional_id: Some(StrBytes::from(txn.id.clone())),
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
    super::set_producer(&mut state, (response.producer_id, response.producer_epoch));
    Ok(())
}

/// AddPartitionsToTxn for partitions about to get their first batch in the open
/// transaction (called by the sender); on success they are in the transaction.
pub(super) async fn add_partitions(
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
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        topics.entry(t).or_default().push(*p);
    }
    let topics: Vec<AddPartitionsToTxnTopic> = topics
        .into_iter()
        .map(|(t, ps)| AddPartitionsToTxnTopic {
            name: StrBytes::from(t.to_string()),
            partitions: ps,
            ..Default::default()
        })
        .collect();
    let (_, code) = to_coordinator(
        inner,
        TRANSACTION,
        &txn.id,
        ADD_PARTITIONS_CLIENT_MAX,
        |_| AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: StrBytes::from(txn.id.clone()),
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
async fn send_offsets(
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
                transactional_id: StrBytes::from(txn.id.clone()),
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
    let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics
            .entry(t)
            .or_default()
            .push(TxnOffsetCommitRequestPartition {
                partition_index: *p,
                committed_offset: *o,
                committed_leader_epoch: -1,
                committed_metadata: Some(StrBytes::from(String::new())),
                ..Default::default()
            });
    }
    let topics: Vec<TxnOffsetCommitRequestTopic> = topics
        .into_iter()
        .map(|(t, ps)| TxnOffsetCommitRequestTopic {
            name: StrBytes::from(t.to_string()),
            partitions: ps,
            ..Default::default()
        })
        .collect();
    let (_, code) = to_coordinator(
        inner,
        GROUP,
        &group.group_id,
        i16::MAX,
        |_| TxnOffsetCommitRequest {
            transactional_id: StrBytes::from(txn.id.clone()),
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
async fn end_txn(inner: &Inner, txn: &Transactions, commit: bool) -> Result<(), ProduceError> {
    let Some((id, epoch)) = lock(&inner.state).producer else {
        return Err(ProduceErrorKind::Closed.into());
    };
    let (_, code) = to_coordinator(
        inner,
        TRANSACTION,
        &txn.id,
        END_TXN_MAX,
        |_| EndTxnRequest {
            transactional_id: StrBytes::from(txn.id.clone()),
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
