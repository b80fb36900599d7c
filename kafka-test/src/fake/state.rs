//! The fake cluster's data: topics, partition logs, idempotent producers, fetch
//! sessions. Guarded by one mutex in [`super::Cluster`]; nothing here awaits.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    decode_record_sets, DecodeOptions, EndTransactionMarker, Record, RecordBatch, RecordSet,
};
use kafka_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};

/// A batch in a partition's log, kept as the bytes a fetch returns.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub last_offset: i64,
    /// Timestamp of every record, with its offset (for ListOffsets by time).
    pub timestamps: Vec<(i64, i64)>,
    pub bytes: Bytes,
}

/// Idempotence state of one producer on one partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerState {
    pub epoch: i16,
    /// (first sequence, last sequence, base offset) of the last batches, newest last.
    pub recent: Vec<(i32, i32, i64)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub log: Vec<StoredBatch>,
    pub log_start: i64,
    pub next_offset: i64,
    pub producers: HashMap<i64, ProducerState>,
    /// Open transactions on this partition: producer id to the offset of its first
    /// batch in the transaction (the last stable offset is the smallest).
    pub open_txns: BTreeMap<i64, i64>,
    /// Aborted transactions (Kafka's transaction index), oldest first.
    pub aborted_txns: Vec<AbortedTxn>,
}

/// An aborted transaction on a partition: its producer, its first offset and the offset
/// of its abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub id: Uuid,
    pub partitions: Vec<Partition>,
}

/// An incremental fetch session (KIP-227).
#[derive(Debug, Clone, Default)]
pub(crate) struct FetchSession {
    pub epoch: i32,
    /// Partitions in the session with the fetch offset and max bytes last asked for.
    pub partitions: BTreeMap<(String, i32), (i64, i32)>,
    /// What the last response told the client (high watermark, last stable offset,
    /// log start), to send only partitions that changed.
    pub reported: HashMap<(String, i32), (i64, i64, i64)>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub topics: BTreeMap<String, Topic>,
    pub next_producer_id: i64,
    /// Epochs of idempotent (non-transactional) producers, for KIP-360 epoch bumps.
    pub producer_epochs: HashMap<i64, i16>,
    /// The transaction coordinator's state.
    pub txns: super::txn::Transactions,
    pub fetch_sessions: HashMap<i32, FetchSession>,
    pub next_session_id: i32,
}

/// Why a produce to a partition failed.
pub(crate) type ProduceError = ErrorCode;

impl Partition {
    pub(crate) fn new(leader: i32, replicas: Vec<i32>) -> Self {
        Partition {
            leader,
            leader_epoch: 0,
            replicas,
            log: Vec::new(),
            log_start: 0,
            next_offset: 0,
            producers: HashMap::new(),
            open_txns: BTreeMap::new(),
            aborted_txns: Vec::new(),
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, else
    /// the high watermark.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .copied()
            .min()
            .unwrap_or(self.next_offset)
            .min(self.next_offset)
    }

    /// Appends a transaction marker (a control batch) for `producer_id`, closing its
    /// open transaction here; an abort goes into the aborted-transaction index. A marker
    /// of a newer epoch fences the producer's older epoch on this partition.
    pub(crate) fn append_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) {
        let offset = self.next_offset;
        let marker = EndTransactionMarker {
            version: 0,
            coordinator_epoch,
        };
        let mut batch = RecordBatch::new(offset, vec![marker.into_record(commit, offset, now_ms)]);
        batch.is_control = true;
        batch.is_transactional = true;
        batch.producer_id = producer_id;
        batch.producer_epoch = epoch;
        batch.partition_leader_epoch = self.leader_epoch;
        let mut bytes = BytesMut::new();
        if let Err(e) = batch.encode(&mut bytes) {
            // A marker of one fixed-size record always encodes; say so if not.
            tracing::error!(error = %e, "fake broker cannot encode a transaction marker");
            return;
        }
        self.log.push(StoredBatch {
            last_offset: offset,
            timestamps: Vec::new(),
            bytes: bytes.freeze(),
        });
        self.next_offset = offset + 1;
        if let Some(first_offset) = self.open_txns.remove(&producer_id) {
            if !commit {
                self.aborted_txns.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                });
            }
        }
        let p = self.producers.entry(producer_id).or_default();
        if epoch > p.epoch {
            p.epoch = epoch;
            p.recent.clear();
        }
    }

    /// Aborted transactions that overlap the offsets `[from, to)`, as a read_committed
    /// Fetch lists them.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted_txns
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Appends the record data of a Produce request, assigning offsets; returns the
    /// base offset (of the first batch). `verify` is asked about each transactional
    /// batch of a producer with no open transaction here (KIP-890 part 1: is the
    /// partition in its transaction?).
    pub(crate) fn append(
        &mut self,
        records: &Bytes,
        verify: &mut dyn FnMut(&RecordBatch) -> Result<(), ErrorCode>,
    ) -> Result<i64, ProduceError> {
        let sets = decode_record_sets(records, &DecodeOptions::default())
            .map_err(|_| ErrorCode::CorruptMessage)?;
        if sets.truncated || sets.sets.is_empty() {
            return Err(ErrorCode::CorruptMessage);
        }
        // Check every batch before appending any, so a request is all or nothing.
        let mut batches = Vec::new();
        for set in sets.sets {
            match set {
                RecordSet::Batch(b) => batches.push(b),
                RecordSet::Legacy(messages) => {
                    // Legacy message sets are converted to a batch, as a broker with
                    // the v2 log format does.
                    let records: Vec<Record> =
                        messages.messages.into_iter().map(Record::from).collect();
                    batches.push(RecordBatch::new(0, records));
                }
            }
        }
        let mut first_offset = None;
        let mut plan = Vec::new();
        let mut producers = self.producers.clone();
        for b in &batches {
            if b.is_transactional && !self.open_txns.contains_key(&b.producer_id) {
                verify(b)?;
            }
            if b.producer_id >= 0 {
                match check_sequence(&mut producers, b) {
                    Ok(None) => {}
                    // A duplicate: answered with the offset it got the first time.
                    Ok(Some(offset)) => return Ok(offset),
                    Err(code) => return Err(code),
                }
            }
            plan.push(b);
        }
        for b in plan {
            let count = i64::from(b.last_offset_delta) + 1;
            let base = self.next_offset;
            let mut batch = b.clone();
            batch.base_offset = base;
            batch.partition_leader_epoch = self.leader_epoch;
            let ts: Vec<(i64, i64)> = batch
                .records
                .iter()
                .map(|r| (r.offset - b.base_offset + base, r.timestamp))
                .collect();
            for r in &mut batch.records {
                r.offset = r.offset - b.base_offset + base;
            }
            let mut bytes = BytesMut::new();
            if batch.encode(&mut bytes).is_err() {
                return Err(ErrorCode::CorruptMessage);
            }
            if b.producer_id >= 0 {
                let (first, last) = (
                    b.base_sequence,
                    b.base_sequence.wrapping_add(b.last_offset_delta),
                );
                let p = producers.entry(b.producer_id).or_default();
                if let Some(entry) = p
                    .recent
                    .iter_mut()
                    .find(|e| e.0 == first && e.1 == last && e.2 == -1)
                {
                    entry.2 = base;
                }
            }
            self.log.push(StoredBatch {
                last_offset: base + count - 1,
                timestamps: ts,
                bytes: bytes.freeze(),
            });
            self.next_offset = base + count;
            if b.is_transactional && b.producer_id >= 0 {
                self.open_txns.entry(b.producer_id).or_insert(base);
            }
            first_offset.get_or_insert(base);
        }
        self.producers = producers;
        Ok(first_offset.unwrap_or(self.next_offset))
    }

    /// Batches from `offset` on that end before `upto` (the high watermark, or the last
    /// stable offset for read_committed), at least one (even if larger than
    /// `max_bytes`, as KIP-74), then as many as fit; with the offset after the last
    /// batch returned (`offset` when none).
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, upto: i64) -> (Bytes, i64) {
        let mut out = BytesMut::new();
        let mut end = offset;
        for b in self
            .log
            .iter()
            .filter(|b| b.last_offset >= offset && b.last_offset < upto)
        {
            if !out.is_empty() && out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
            end = b.last_offset + 1;
        }
        (out.freeze(), end)
    }

    /// The first offset whose record timestamp is at or after `ts`, with its timestamp.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Option<(i64, i64)> {
        self.log
            .iter()
            .flat_map(|b| b.timestamps.iter().copied())
            .filter(|(o, _)| *o >= self.log_start)
            .find(|(_, t)| *t >= ts)
    }

    /// Deletes records before `offset` (DeleteRecords).
    pub(crate) fn delete_before(&mut self, offset: i64) -> Result<i64, ErrorCode> {
        let offset = if offset == -1 {
            self.next_offset
        } else {
            offset
        };
        if offset < 0 || offset > self.next_offset {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        if offset > self.log_start {
            self.log_start = offset;
            self.log.retain(|b| b.last_offset >= offset);
            self.aborted_txns.retain(|a| a.last_offset >= offset);
        }
        Ok(self.log_start)
    }
}

/// Kafka's idempotence checks for one batch: `Ok(None)` to append, `Ok(Some(offset))`
/// for a duplicate of a recent batch, or the error Kafka answers.
fn check_sequence(
    producers: &mut HashMap<i64, ProducerState>,
    b: &RecordBatch,
) -> Result<Option<i64>, ErrorCode> {
    let first = b.base_sequence;
    let last = first.wrapping_add(b.last_offset_delta);
    let p = producers.entry(b.producer_id).or_default();
    if b.producer_epoch < p.epoch {
        return Err(ErrorCode::InvalidProducerEpoch);
    }
    if b.producer_epoch > p.epoch {
        // A new epoch starts its sequences at 0.
        if first != 0 {
            return Err(ErrorCode::OutOfOrderSequenceNumber);
        }
        p.epoch = b.producer_epoch;
        p.recent.clear();
    } else if let Some(&(_, prev_last, _)) = p.recent.last() {
        if let Some(&(_, _, offset)) = p.recent.iter().find(|(f, l, _)| *f == first && *l == last) {
            return Ok(Some(offset));
        }
        if first != prev_last.wrapping_add(1) {
            return Err(ErrorCode::OutOfOrderSequenceNumber);
        }
    } else if first != 0 {
        // Kafka knows no state for this producer here.
        return Err(ErrorCode::UnknownProducerId);
    }
    p.recent.push((first, last, -1));
    if p.recent.len() > 5 {
        p.recent.remove(0);
    }
    Ok(None)
}
