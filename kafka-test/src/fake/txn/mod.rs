//! The fake cluster's transaction coordinator (KIP-98), with Kafka's semantics:
//!
//! - Per transactional id: a producer id and epoch, a state (`Empty`, `Ongoing`,
//!   `PrepareCommit`/`PrepareAbort`, `CompleteCommit`/`CompleteAbort`), the partitions
//!   and groups (AddOffsetsToTxn) in the transaction, its timeout and start time.
//! - InitProducerId allocates a producer id or bumps the epoch; an `Ongoing` transaction
//!   is first aborted with a fencing epoch (the answer is then `CONCURRENT_TRANSACTIONS`
//!   and the client retries, as Kafka); KIP-360 recovery with the producer id and epoch
//!   of the request (v3+); an exhausted epoch gets a new producer id.
//! - EndTxn moves to `PrepareCommit`/`PrepareAbort`, answers, then writes a control
//!   batch into every partition of the transaction and completes the group's pending
//!   transactional offsets (at once, or after [`marker
//!   delay`](crate::FakeCluster::set_transaction_marker_delay)).
//! - An `Ongoing` transaction older than its timeout is aborted by the coordinator with
//!   a bumped epoch (checked on every request and by a ticker every 50 ms).
//! - Produce verifies the first transactional batch of a producer on a partition with
//!   the coordinator (KIP-890 part 1).
//!
//! The state lives in [`State`](super::state::State) under the cluster's one mutex;
//! the group coordinator is never called with it held.

mod add_partitions;
mod describe;
mod end_txn;
mod errors;
mod init_producer_id;
mod offset_commit;

pub(crate) use add_partitions::{add_offsets_to_txn, add_partitions_to_txn};
pub(crate) use describe::{describe_producers, describe_transactions, list_transactions};
pub(crate) use end_txn::{end_txn, expire, fence, spawn_ticker};
pub(crate) use errors::error_response;
pub(crate) use init_producer_id::init_producer_id;
pub(crate) use offset_commit::txn_offset_commit;

use kafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kafka's `transaction.max.timeout.ms` default: 15 minutes.
pub(crate) const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;
/// Partitions of Kafka's `__consumer_offsets` (`offsets.topic.num.partitions`), to name
/// the partition a group's offsets go to in DescribeTransactions.
const OFFSETS_TOPIC_PARTITIONS: u32 = 50;
/// The coordinator epoch written into markers (the fake never loses its coordinator
/// state, so it stays 0).
pub(crate) const COORDINATOR_EPOCH: i32 = 0;

/// The state of a transactional id, as Kafka names it (DescribeTransactions and
/// ListTransactions report [`name`](Self::name)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionState {
    /// Initialized, no transaction open.
    Empty,
    /// A transaction is open (partitions or offsets were added).
    Ongoing,
    /// EndTxn(commit) was accepted; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence was accepted; markers are being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

impl TransactionState {
    /// Kafka's name of the state (`"Ongoing"`, `"CompleteCommit"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
        }
    }

    const ALL: [TransactionState; 6] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
    ];

    fn is_prepare(self) -> bool {
        matches!(
            self,
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        )
    }
}

/// What the coordinator knows of one transactional id (see
/// [`FakeCluster::transaction`](crate::FakeCluster::transaction)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionView {
    /// The state.
    pub state: TransactionState,
    /// The current producer id.
    pub producer_id: i64,
    /// The current producer epoch.
    pub producer_epoch: i16,
    /// The transaction timeout the producer asked for.
    pub timeout: Duration,
    /// Partitions in the open (or completing) transaction, sorted.
    pub partitions: Vec<(String, i32)>,
    /// Groups whose offsets are in the transaction (AddOffsetsToTxn), sorted.
    pub groups: Vec<String>,
}

/// One transactional id (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone)]
pub(crate) struct TxnMeta {
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), else -1.
    pub previous_producer_id: i64,
    /// -1 until the first InitProducerId completes.
    pub epoch: i16,
    /// The epoch before the last bump by a recovering producer (KIP-360), else -1.
    pub last_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// Wall-clock start of the last transaction (ms), -1 before the first.
    pub start_ms: i64,
    /// When the open transaction started, for its timeout.
    pub started: Option<Instant>,
}

impl TxnMeta {
    fn new(producer_id: i64, timeout_ms: i32) -> Self {
        TxnMeta {
            producer_id,
            previous_producer_id: -1,
            epoch: -1,
            last_epoch: -1,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            started: None,
        }
    }

    /// Kafka's first checks of a request from the producer: `INVALID_PRODUCER_ID_MAPPING`
    /// for another producer id, `PRODUCER_FENCED` for another epoch.
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
        if self.producer_id != producer_id {
            Err(ErrorCode::InvalidProducerIdMapping)
        } else if self.epoch != epoch {
            Err(ErrorCode::ProducerFenced)
        } else {
            Ok(())
        }
    }

    pub(crate) fn view(&self) -> TransactionView {
        TransactionView {
            state: self.state,
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            timeout: Duration::from_millis(self.timeout_ms.max(0) as u64),
            partitions: self.partitions.iter().cloned().collect(),
            groups: self.groups.iter().cloned().collect(),
        }
    }

    /// The partitions as DescribeTransactions lists them: each group's offsets as its
    /// partition of `__consumer_offsets`.
    fn described_partitions(&self) -> BTreeMap<String, Vec<i32>> {
        let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &self.partitions {
            out.entry(t.clone()).or_default().push(*p);
        }
        for g in &self.groups {
            out.entry("__consumer_offsets".into())
                .or_default()
                .push(offsets_partition(g));
        }
        out
    }
}

/// The partition of `__consumer_offsets` a group maps to (Java's `abs(hashCode) % 50`).
fn offsets_partition(group: &str) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash.unsigned_abs() % OFFSETS_TOPIC_PARTITIONS) as i32
}

/// The coordinator's state: every transactional id.
#[derive(Debug)]
pub(crate) struct Transactions {
    pub ids: BTreeMap<String, TxnMeta>,
    /// How long after EndTxn the markers are written (0: before EndTxn answers).
    pub marker_delay: Duration,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions {
            ids: BTreeMap::new(),
            marker_delay: Duration::ZERO,
        }
    }
}

impl Transactions {
    /// Adds partitions and groups to the transaction of `id` (AddPartitionsToTxn,
    /// AddOffsetsToTxn), opening one if none is: Kafka's
    /// `handleAddPartitionsToTransaction`.
    pub(crate) fn add(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<(), ErrorCode> {
        let meta = self
            .ids
            .get_mut(id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        meta.check_producer(producer_id, epoch)?;
        if meta.state.is_prepare() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        if meta.state != TransactionState::Ongoing {
            meta.state = TransactionState::Ongoing;
            meta.partitions.clear();
            meta.groups.clear();
            meta.start_ms = now_ms();
            meta.started = Some(Instant::now());
        }
        meta.partitions.extend(partitions.iter().cloned());
        if let Some(g) = group {
            meta.groups.insert(g.to_string());
        }
        Ok(())
    }

    /// Whether `partition` (or, with `group`, the group's offsets) is in the transaction:
    /// Kafka's `handleVerifyPartitionsInTransaction` (KIP-890). `TRANSACTION_ABORTABLE`
    /// when it is not; the broker that asked maps the codes for its client.
    pub(crate) fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: Option<(&str, i32)>,
        group: Option<&str>,
    ) -> ErrorCode {
        let Some(meta) = self.ids.get(id) else {
            return ErrorCode::InvalidProducerIdMapping;
        };
        if let Err(code) = meta.check_producer(producer_id, epoch) {
            return code;
        }
        if meta.state.is_prepare() {
            return ErrorCode::ConcurrentTransactions;
        }
        let included = partition.is_none_or(|(t, p)| meta.partitions.contains(&(t.to_string(), p)))
            && group.is_none_or(|g| meta.groups.contains(g));
        if included {
            ErrorCode::None
        } else {
            ErrorCode::TransactionAbortable
        }
    }

    /// The transactional id whose current producer is `producer_id`.
    pub(crate) fn id_of_producer(&self, producer_id: i64) -> Option<&str> {
        self.ids
            .iter()
            .find(|(_, m)| m.producer_id == producer_id)
            .map(|(id, _)| id.as_str())
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The code an old client gets for `PRODUCER_FENCED` (KIP-588 added it in the
/// versions given by `since`): `INVALID_PRODUCER_EPOCH` before.
pub(crate) fn fenced_for_version(code: ErrorCode, version: i16, since: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < since {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

/// What a verification error becomes for the client of a Produce or TxnOffsetCommit
/// (Kafka's `AddPartitionsToTxnManager`): `PRODUCER_FENCED` is `INVALID_PRODUCER_EPOCH`,
/// and `TRANSACTION_ABORTABLE` is `INVALID_TXN_STATE` for versions before
/// `abortable_since` (Produce v11, TxnOffsetCommit v4).
pub(crate) fn verification_error(code: ErrorCode, version: i16, abortable_since: i16) -> ErrorCode {
    match code {
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        ErrorCode::TransactionAbortable if version < abortable_since => ErrorCode::InvalidTxnState,
        other => other,
    }
}
