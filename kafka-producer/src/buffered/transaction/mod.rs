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

mod coordinator;

pub(in crate::buffered) use coordinator::add_partitions;

use super::{lock, BufferedProducer, Inner, Topic};
use crate::error::{ProduceError, ProduceErrorKind};
use coordinator::{end_txn, init_producer_id, send_offsets};
use kafka_net::ConsumerGroupMetadata;
use kafka_protocol::{ApiKey, ErrorCode, StrBytes};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

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
    /// `id` as the requests carry it (shared, not copied per request).
    pub(super) wire_id: StrBytes,
    pub(super) timeout_ms: i32,
    calls: tokio::sync::Mutex<()>,
}

impl Transactions {
    pub(super) fn new(id: String, timeout: Duration) -> Self {
        Transactions {
            wire_id: StrBytes::from(id.clone()),
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
    pub(super) groups: BTreeSet<String>,
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
    /// The error of a call refused in this state: the fatal error that ended the
    /// producer, else the state.
    pub(super) fn refuse(&self, call: &'static str) -> ProduceError {
        match (self.state, &self.error) {
            (TransactionState::FatalError, Some(e)) => e.clone(),
            (state, _) => ProduceErrorKind::TransactionState { call, state }.into(),
        }
    }

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

    pub(super) fn timed_out(&self, timeout_ms: i32) -> bool {
        self.started
            .is_some_and(|s| s.elapsed() >= Duration::from_millis(timeout_ms.max(0) as u64))
    }
}

pub(super) fn abortable(e: ProduceError) -> ProduceError {
    if e.is_abortable() || e.is_fatal() {
        e
    } else {
        ProduceError::new(ProduceErrorKind::TransactionAbortable(Box::new(e)))
    }
}

pub(super) fn fatal(e: ProduceError) -> ProduceError {
    if e.is_fatal() {
        e
    } else {
        ProduceError::new(ProduceErrorKind::TransactionFatal(Box::new(e)))
    }
}

pub(super) fn broker(code: ErrorCode, api: ApiKey) -> ProduceError {
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
        Err(state.txn.refuse(call))
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
            return Err(state.txn.refuse("begin_transaction"));
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
            match (state.txn.state, &state.txn.error) {
                (TransactionState::InTransaction | TransactionState::Committing, _) => {
                    state.txn.state = TransactionState::Committing;
                }
                // The error that spoiled the transaction says more than the state.
                (TransactionState::AbortableError, Some(e)) => return Err(e.clone()),
                _ => return Err(state.txn.refuse("commit_transaction")),
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
            let records: usize = dropped.iter().map(|b| b.count).sum();
            state.pending = state.pending.saturating_sub(records);
            state.txn.bump |= dropped.iter().any(|b| b.sequence.is_some());
            dropped
        };
        for batch in dropped {
            for delivery in batch.deliveries {
                delivery
                    .0
                    .report(Err(ProduceErrorKind::TransactionAborted.into()));
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
