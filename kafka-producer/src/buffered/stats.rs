//! The buffered producer's statistics: per partition, what is queued and in flight,
//! the batches delivered (their count and sizes), retries and failures; counted once
//! per batch under the lock the producer already takes, never per record.

use super::*;
use kafka_net::stats::{ClientStatistics, Every};
use serde::Serialize;

/// Counters of one partition's batches, kept in its queue.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PartitionCounters {
    batches: u64,
    records: u64,
    bytes: u64,
    batch_records_max: u64,
    batch_bytes_max: u64,
    retries: u64,
    failed_batches: u64,
    failed_records: u64,
}

/// How a batch ended.
pub(super) enum Outcome {
    /// Acknowledged (or written, with acks=0), with its records' estimated size.
    Delivered { bytes: usize },
    /// Failed for good.
    Failed,
}

impl PartitionCounters {
    pub(super) fn finished(&mut self, records: usize, outcome: Outcome) {
        let records = records as u64;
        match outcome {
            Outcome::Delivered { bytes } => {
                let bytes = bytes as u64;
                self.batches += 1;
                self.records += records;
                self.bytes += bytes;
                self.batch_records_max = self.batch_records_max.max(records);
                self.batch_bytes_max = self.batch_bytes_max.max(bytes);
            }
            Outcome::Failed => {
                self.failed_batches += 1;
                self.failed_records += records;
            }
        }
    }

    pub(super) fn retried(&mut self) {
        self.retries += 1;
    }
}

/// One partition of a [`BufferedProducer`] (librdkafka's `topics.*.partitions.*`
/// entries of a producer). Sizes are the records' estimated sizes before encoding
/// and compression (what `batch_size` and `buffer_memory` count).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProducerPartitionStats {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records waiting to be sent, retries included (librdkafka `msgq_cnt`).
    pub queued_records: u64,
    /// Their bytes (librdkafka `msgq_bytes`).
    pub queued_bytes: u64,
    /// Batches waiting to be sent.
    pub queued_batches: u64,
    /// Batches sent and not answered yet (librdkafka counts `msgs_inflight`).
    pub in_flight_batches: u64,
    /// Batches delivered (librdkafka's topic `batchcnt` counts them per window).
    pub batches: u64,
    /// Records delivered (librdkafka `txmsgs`).
    pub delivered_records: u64,
    /// Their bytes (librdkafka `txbytes`, which counts them encoded).
    pub delivered_bytes: u64,
    /// Mean records per delivered batch (librdkafka topic `batchcnt.avg`); 0 before
    /// the first.
    pub batch_records_mean: f64,
    /// Most records in one delivered batch (librdkafka topic `batchcnt.max`).
    pub batch_records_max: u64,
    /// Mean bytes per delivered batch (librdkafka topic `batchsize.avg`).
    pub batch_bytes_mean: f64,
    /// Most bytes in one delivered batch (librdkafka topic `batchsize.max`).
    pub batch_bytes_max: u64,
    /// Times a batch was put back to be sent again after a retriable error
    /// (librdkafka's broker `txretries`, per partition).
    pub retries: u64,
    /// Batches that failed for good: not retriable, out of retries or past
    /// `delivery_timeout` (librdkafka counts failed messages in `txerrs` per broker).
    pub failed_batches: u64,
    /// Records of those batches, each reported failed.
    pub failed_records: u64,
}

/// A [`BufferedProducer`]'s snapshot: its client's brokers, its partitions and totals
/// over them (librdkafka's statistics JSON for a producer).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProducerStatistics {
    /// The client and its brokers (`client_id`, `time_ms`, `age_us`, `brokers`).
    #[serde(flatten)]
    pub client: ClientStatistics,
    /// Records queued or in flight, not yet reported (librdkafka `msg_cnt`).
    pub pending_records: u64,
    /// Records waiting to be sent, over all partitions.
    pub queued_records: u64,
    /// Their bytes (librdkafka `msg_size` counts queued and in flight).
    pub queued_bytes: u64,
    /// Bytes of `buffer_memory` in use: batches queued and in flight, charged by what
    /// they hold (librdkafka `msg_size`).
    pub buffer_bytes: u64,
    /// `buffer_memory` (librdkafka `msg_size_max`).
    pub buffer_max_bytes: u64,
    /// Produce requests made and not answered yet, over all brokers: sent, and (with
    /// compression) being compressed or waiting for a slot of `max_in_flight`.
    pub in_flight_requests: u64,
    /// Records delivered, over all partitions (librdkafka `txmsgs`).
    pub delivered_records: u64,
    /// Their bytes (librdkafka `txmsg_bytes`).
    pub delivered_bytes: u64,
    /// Batches delivered, over all partitions.
    pub batches: u64,
    /// Batch retries, over all partitions.
    pub retries: u64,
    /// Batches failed for good, over all partitions.
    pub failed_batches: u64,
    /// Records failed, over all partitions.
    pub failed_records: u64,
    /// Every partition the producer has queued records for, by topic then partition.
    pub partitions: Vec<ProducerPartitionStats>,
}

fn mean(total: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        total as f64 / n as f64
    }
}

impl BufferedProducer {
    /// A snapshot of the producer: its client's brokers, each partition's queue,
    /// batches, retries and failures, and totals (see [`kafka_net::stats`]). Takes
    /// the producer's lock once, for a time proportional to the queued batches.
    pub fn statistics(&self) -> ProducerStatistics {
        statistics(&self.inner)
    }

    /// [`statistics`](Self::statistics) every `interval` (librdkafka
    /// `statistics.interval.ms`), as a stream that ends once the producer is closed
    /// or dropped (see [`kafka_net::stats::every`]).
    pub fn statistics_every(&self, interval: Duration) -> Every<ProducerStatistics> {
        kafka_net::stats::every_while_open(
            interval,
            &self.inner,
            |inner| !inner.closed.load(Ordering::Acquire),
            statistics,
        )
    }
}

fn statistics(inner: &Inner) -> ProducerStatistics {
    let mut out = ProducerStatistics {
        client: inner.client.statistics(),
        ..Default::default()
    };
    let state = lock(&inner.state);
    out.pending_records = state.pending as u64;
    out.in_flight_requests = state.requests as u64;
    out.buffer_max_bytes = inner.config.buffer_memory as u64;
    out.buffer_bytes =
        (inner.config.buffer_memory as u64).saturating_sub(inner.memory.available_permits() as u64);
    for ((topic, partition), q) in &state.queues {
        let c = q.counters;
        let p = ProducerPartitionStats {
            topic: topic.to_string(),
            partition: *partition,
            queued_records: q.batches.iter().map(|b| b.count as u64).sum(),
            queued_bytes: q.batches.iter().map(|b| b.bytes as u64).sum(),
            queued_batches: q.batches.len() as u64,
            in_flight_batches: q.in_flight.len() as u64,
            batches: c.batches,
            delivered_records: c.records,
            delivered_bytes: c.bytes,
            batch_records_mean: mean(c.records, c.batches),
            batch_records_max: c.batch_records_max,
            batch_bytes_mean: mean(c.bytes, c.batches),
            batch_bytes_max: c.batch_bytes_max,
            retries: c.retries,
            failed_batches: c.failed_batches,
            failed_records: c.failed_records,
        };
        out.queued_records += p.queued_records;
        out.queued_bytes += p.queued_bytes;
        out.delivered_records += p.delivered_records;
        out.delivered_bytes += p.delivered_bytes;
        out.batches += p.batches;
        out.retries += p.retries;
        out.failed_batches += p.failed_batches;
        out.failed_records += p.failed_records;
        out.partitions.push(p);
    }
    out
}
