//! The fetcher's statistics: per assigned partition, where fetching and consuming
//! stand, the high watermark and the lag (librdkafka's `topics.*.partitions.*` of a
//! consumer), with its client's brokers.

use super::*;
use kafka_net::stats::{ClientStatistics, Every};
use serde::Serialize;

/// One assigned partition of a consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FetchPartitionStats {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to fetch; -1 until the start offset is resolved (librdkafka
    /// `fetch_offset`).
    pub fetch_offset: i64,
    /// The offset after the last record handed to the application, where it would
    /// resume; -1 when not known yet (librdkafka `app_offset`).
    pub position: i64,
    /// The committed offset; -1 when none is known (a [`Fetcher`] commits nothing:
    /// the group consumer fills this in) (librdkafka `committed_offset`).
    pub committed_offset: i64,
    /// The partition's high watermark as of the last fetch; -1 before one (librdkafka
    /// `hi_offset`).
    pub high_watermark: i64,
    /// `high_watermark` minus `position`, never negative; -1 while either is unknown
    /// (librdkafka `consumer_lag`).
    pub lag: i64,
    /// Records decoded from fetches and handed over (librdkafka `rxmsgs`).
    pub fetched_records: u64,
    /// Bytes of record batches decoded (librdkafka `rxbytes`).
    pub fetched_bytes: u64,
    /// Fetching is paused by the application.
    pub paused: bool,
    /// Fetching stopped at data that failed to decode, until a seek moves past it.
    pub failed: bool,
}

/// A [`Fetcher`]'s (or [`PartitionReader`](crate::PartitionReader)'s) snapshot: its
/// client's brokers and its assigned partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FetcherStatistics {
    /// The client and its brokers (`client_id`, `time_ms`, `age_us`, `brokers`).
    #[serde(flatten)]
    pub client: ClientStatistics,
    /// The assigned partitions, by topic then partition.
    pub partitions: Vec<FetchPartitionStats>,
}

/// The lag from a high watermark and a position, -1 when either is unknown.
pub(crate) fn lag(high_watermark: i64, position: i64) -> i64 {
    if high_watermark < 0 || position < 0 {
        -1
    } else {
        (high_watermark - position).max(0)
    }
}

fn statistics(inner: &Inner) -> FetcherStatistics {
    let client = inner.client.statistics();
    let partitions = lock(&inner.partitions)
        .iter()
        .map(|((topic, partition), p)| {
            let position = p.consumed.or(p.position).unwrap_or(-1);
            FetchPartitionStats {
                topic: topic.clone(),
                partition: *partition,
                fetch_offset: p.position.unwrap_or(-1),
                position,
                committed_offset: -1,
                high_watermark: p.high_watermark,
                lag: lag(p.high_watermark, position),
                fetched_records: p.fetched_records,
                fetched_bytes: p.fetched_bytes,
                paused: p.paused,
                failed: p.failed,
            }
        })
        .collect();
    FetcherStatistics { client, partitions }
}

impl Fetcher {
    /// A snapshot of the fetcher: its client's brokers, and each assigned partition's
    /// offsets, high watermark and lag (see [`kafka_net::stats`]).
    pub fn statistics(&self) -> FetcherStatistics {
        statistics(&self.inner)
    }

    /// [`statistics`](Self::statistics) every `interval` (librdkafka
    /// `statistics.interval.ms`), as a stream that ends once the fetcher is closed or
    /// dropped (see [`kafka_net::stats::every`]).
    pub fn statistics_every(&self, interval: Duration) -> Every<FetcherStatistics> {
        kafka_net::stats::every_while_open(
            interval,
            &self.inner,
            |inner| !inner.closed.load(Ordering::Acquire),
            statistics,
        )
    }
}
