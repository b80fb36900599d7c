//! The stateless fetch: one Fetch request for one partition from an offset, and the
//! record extraction every consumer shares (record formats and codecs, control
//! batches hidden, aborted transactions skipped under read_committed).

use crate::error::{ConsumeError, ConsumeErrorKind};
use bytes::Bytes;
use kafka_net::{Client, KafkaClient};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::{
    decode_record_sets, ControlRecord, ControlRecordType, DecodeOptions, Record, RecordSet,
};
use kafka_protocol::{ApiKey, ErrorCode};
use std::collections::HashSet;
use std::time::Duration;

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Every record, committed or not (`read_uncommitted`, the default).
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions, up to the last stable offset.
    ReadCommitted,
}

impl Isolation {
    pub(crate) fn code(self) -> i8 {
        match self {
            Isolation::ReadUncommitted => 0,
            Isolation::ReadCommitted => 1,
        }
    }
}

/// How one fetch asks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// `fetch.max.wait.ms`: how long the broker may wait for `min_bytes`. Default 500 ms.
    pub max_wait: Duration,
    /// `fetch.min.bytes`. Default 1.
    pub min_bytes: i32,
    /// `max.partition.fetch.bytes`. Default 1 MiB.
    pub max_bytes: i32,
    /// `isolation.level`. Default read_uncommitted.
    pub isolation: Isolation,
    /// `check.crcs`: verify record batch checksums. Default true.
    pub verify_crc: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation: Isolation::ReadUncommitted,
            verify_crc: true,
        }
    }
}

/// What one fetch of one partition returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionFetch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records at or after the fetch offset, in order (control records and aborted
    /// transactions left out).
    pub records: Vec<Record>,
    /// Where to fetch next: after the last record or batch read.
    pub next_offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The partition's log start offset (-1 when the broker did not say).
    pub log_start_offset: i64,
}

/// Records from a partition's fetched bytes: decoded, before `fetch_offset` dropped
/// (batches can start earlier), control batches hidden, and under read_committed the
/// batches of aborted transactions skipped. Returns the records and the next offset.
pub fn extract_records(
    bytes: &Bytes,
    fetch_offset: i64,
    isolation: Isolation,
    aborted: &[AbortedTransaction],
    verify_crc: bool,
) -> Result<(Vec<Record>, i64), kafka_protocol::DecodeError> {
    let sets = decode_record_sets(bytes, &DecodeOptions::default().with_verify_crc(verify_crc))?;
    let mut next = fetch_offset;
    let mut out = Vec::new();
    let mut aborted: Vec<&AbortedTransaction> = aborted.iter().collect();
    aborted.sort_by_key(|a| a.first_offset);
    let mut pending = aborted.into_iter().peekable();
    let mut active: HashSet<i64> = HashSet::new();
    for set in sets.sets {
        match set {
            RecordSet::Batch(batch) => {
                let last = batch.last_offset();
                next = next.max(last + 1);
                if isolation == Isolation::ReadCommitted {
                    while let Some(a) = pending.next_if(|a| a.first_offset <= last) {
                        active.insert(a.producer_id);
                    }
                }
                if batch.is_control {
                    // An abort or commit marker ends the producer's transaction.
                    for r in &batch.records {
                        if let Ok(ControlRecord {
                            kind: ControlRecordType::Abort | ControlRecordType::Commit,
                            ..
                        }) = ControlRecord::from_record(r)
                        {
                            active.remove(&batch.producer_id);
                        }
                    }
                    continue;
                }
                if isolation == Isolation::ReadCommitted
                    && batch.is_transactional
                    && active.contains(&batch.producer_id)
                {
                    continue;
                }
                out.extend(
                    batch
                        .records
                        .into_iter()
                        .filter(|r| r.offset >= fetch_offset),
                );
            }
            RecordSet::Legacy(set) => {
                for m in set.messages {
                    next = next.max(m.offset + 1);
                    if m.offset >= fetch_offset {
                        out.push(m.into());
                    }
                }
            }
        }
    }
    Ok((out, next))
}

/// One Fetch of one partition from `offset`, keeping no state (no fetch session),
/// sent to the partition's leader.
pub async fn fetch_partition(
    client: &KafkaClient,
    topic: &str,
    partition: i32,
    offset: i64,
    options: &FetchOptions,
) -> Result<PartitionFetch, ConsumeError> {
    let at = |e: ConsumeError| e.at(topic, partition);
    let version = client
        .api_version(ApiKey::Fetch)
        .await
        .map_err(|e| at(e.into()))?;
    let mut fetch_topic = FetchTopic {
        partitions: vec![FetchPartition {
            partition,
            fetch_offset: offset,
            partition_max_bytes: options.max_bytes,
            log_start_offset: -1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            ..Default::default()
        }],
        ..Default::default()
    };
    if version >= 13 {
        let metadata = client.metadata().await.map_err(|e| at(e.into()))?;
        let info = match metadata.topics.get(topic) {
            Some(t) => t.clone(),
            None => client
                .refresh_metadata()
                .await
                .map_err(|e| at(e.into()))?
                .topics
                .get(topic)
                .cloned()
                .ok_or_else(|| {
                    at(ConsumeErrorKind::Broker(ErrorCode::UnknownTopicOrPartition).into())
                })?,
        };
        fetch_topic.topic_id = info.id;
    } else {
        fetch_topic.topic = topic.to_string().into();
    }
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: options.max_wait.as_millis().min(i32::MAX as u128) as i32,
        min_bytes: options.min_bytes,
        max_bytes: options.max_bytes,
        isolation_level: options.isolation.code(),
        session_id: 0,
        session_epoch: -1,
        topics: vec![fetch_topic],
        ..Default::default()
    };
    let response = client.request(request).await.map_err(|e| at(e.into()))?;
    if let Some(code) = Some(ErrorCode::from(response.error_code)).filter(|c| !c.is_ok()) {
        return Err(at(ConsumeErrorKind::Broker(code).into()));
    }
    let p = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| at(ConsumeErrorKind::Broker(ErrorCode::UnknownTopicOrPartition).into()))?;
    let code = ErrorCode::from(p.error_code);
    if code == ErrorCode::OffsetOutOfRange {
        return Err(at(ConsumeErrorKind::OffsetOutOfRange {
            offset,
            low: p.log_start_offset,
            high: p.high_watermark,
        }
        .into()));
    }
    if !code.is_ok() {
        if matches!(
            code,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::FencedLeaderEpoch
        ) {
            let _ = client.refresh_metadata().await;
        }
        return Err(at(ConsumeErrorKind::Broker(code).into()));
    }
    let bytes = p.records.clone().unwrap_or_default();
    let aborted = p.aborted_transactions.clone().unwrap_or_default();
    let (records, next_offset) = extract_records(
        &bytes,
        offset,
        options.isolation,
        &aborted,
        options.verify_crc,
    )
    .map_err(|source| at(ConsumeErrorKind::Corrupt { offset, source }.into()))?;
    Ok(PartitionFetch {
        topic: topic.to_string(),
        partition,
        records,
        next_offset,
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{EndTransactionMarker, RecordBatch};

    fn record(offset: i64) -> Record {
        Record {
            offset,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(offset.to_string())),
            headers: Vec::new(),
        }
    }

    fn batch(
        base: i64,
        records: Vec<Record>,
        producer: i64,
        transactional: bool,
        control: bool,
    ) -> RecordBatch {
        let mut b = RecordBatch::new(base, records);
        b.base_offset = base;
        b.producer_id = producer;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.is_transactional = transactional;
        b.is_control = control;
        b
    }

    /// Producer 7 aborts offsets 0-1 (marker at 2); producer 8 commits 3-4 (marker at
    /// 5); offset 6 is outside any transaction.
    fn log() -> Bytes {
        let marker = |commit, offset| {
            EndTransactionMarker {
                version: 0,
                coordinator_epoch: 0,
            }
            .into_record(commit, offset, 1)
        };
        let mut out = BytesMut::new();
        for b in [
            batch(0, vec![record(0), record(1)], 7, true, false),
            batch(2, vec![marker(false, 2)], 7, true, true),
            batch(3, vec![record(3), record(4)], 8, true, false),
            batch(5, vec![marker(true, 5)], 8, true, true),
            batch(6, vec![record(6)], -1, false, false),
        ] {
            b.encode(&mut out).unwrap();
        }
        out.freeze()
    }

    fn offsets(records: &[Record]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn read_committed_skips_aborted_transactions_and_hides_markers() {
        let aborted = [AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
            ..Default::default()
        }];
        let (records, next) =
            extract_records(&log(), 0, Isolation::ReadCommitted, &aborted, true).unwrap();
        assert_eq!((offsets(&records), next), (vec![3, 4, 6], 7));
        let (records, next) =
            extract_records(&log(), 0, Isolation::ReadUncommitted, &aborted, true).unwrap();
        assert_eq!((offsets(&records), next), (vec![0, 1, 3, 4, 6], 7));
    }

    #[test]
    fn records_before_the_fetch_offset_are_dropped() {
        let (records, next) =
            extract_records(&log(), 4, Isolation::ReadUncommitted, &[], true).unwrap();
        assert_eq!((offsets(&records), next), (vec![4, 6], 7));
    }
}
