//! Statistics snapshots, in the sense of librdkafka's `statistics.interval.ms`: plain
//! structs that serialize (with `serde`) to JSON shaped like librdkafka's, with
//! integers in named units (`*_us` microseconds, `*_ms` milliseconds since the Unix
//! epoch) rather than durations.
//!
//! Every handle has a `statistics()` method that takes a snapshot on demand
//! ([`KafkaClient::statistics`](crate::KafkaClient::statistics) for the brokers; the
//! producer, fetcher and group consumer add their partitions and group), and a
//! `statistics_every(interval)` method that delivers one periodically as a
//! [`Stream`] made by [`every`]. The stream ends when the handle is closed or dropped;
//! dropping the stream stops it (nothing runs in the background).
//!
//! ```no_run
//! # async fn run(client: kafka_net::KafkaClient) {
//! use futures::StreamExt;
//! use std::time::Duration;
//! let mut stats = client.statistics_every(Duration::from_secs(5));
//! while let Some(snapshot) = stats.next().await {
//!     for (addr, b) in &snapshot.brokers {
//!         println!("{addr}: {} requests, p99 {} µs", b.requests, b.rtt.p99_us);
//!     }
//! }
//! # }
//! ```

use crate::metrics::MetricsSnapshot;
use futures::Stream;
use serde::Serialize;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Milliseconds since the Unix epoch now (librdkafka's `time` is in seconds).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Round-trip times of a broker's requests (librdkafka's broker `rtt` window), from
/// sending a request to decoding its response, over every response since the client
/// started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RttStats {
    /// Responses measured (librdkafka `cnt`).
    pub count: u64,
    /// Mean, in microseconds (librdkafka `avg`).
    pub mean_us: u64,
    /// Shortest, in microseconds; 0 before the first response (librdkafka `min`).
    pub min_us: u64,
    /// Longest, in microseconds (librdkafka `max`).
    pub max_us: u64,
    /// Median, in microseconds, from a fixed-size histogram (about ±6%)
    /// (librdkafka `p50`).
    pub p50_us: u64,
    /// 99th percentile, in microseconds, as `p50_us` (librdkafka `p99`).
    pub p99_us: u64,
}

/// One broker's counters (librdkafka's `brokers` entries). Counters count from the
/// client's start, over all its connections to the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BrokerStats {
    /// The broker's node id, -1 when the address is not in the cluster metadata (a
    /// bootstrap address) (librdkafka `nodeid`).
    pub node_id: i32,
    /// `host:port` (librdkafka `nodename`).
    pub addr: String,
    /// Requests sent (librdkafka `tx`).
    pub requests: u64,
    /// Bytes sent, size prefixes included (librdkafka `txbytes`).
    pub bytes_out: u64,
    /// Responses received and decoded (librdkafka `rx`).
    pub responses: u64,
    /// Bytes received, size prefixes included (librdkafka `rxbytes`).
    pub bytes_in: u64,
    /// Requests that failed: I/O error, timeout, closed connection, malformed response
    /// (librdkafka `txerrs` + `rxerrs`). Error codes inside a decoded response are
    /// not counted here.
    pub errors: u64,
    /// Of those, requests that timed out (librdkafka `req_timeouts`).
    pub timeouts: u64,
    /// Requests waiting for their response now (librdkafka `waitresp_cnt`).
    pub in_flight: u64,
    /// Connections opened (librdkafka `connects`).
    pub connects: u64,
    /// Connections opened after the first (librdkafka has `connects` only). The
    /// client keeps a connection per purpose (admin, produce, fetch, group), so this
    /// counts those too, not only replacements of failed connections.
    pub reconnects: u64,
    /// Round-trip times (librdkafka `rtt`).
    pub rtt: RttStats,
}

impl BrokerStats {
    /// A broker's stats from its counters.
    pub fn new(node_id: i32, addr: impl Into<String>, m: &MetricsSnapshot) -> Self {
        BrokerStats {
            node_id,
            addr: addr.into(),
            requests: m.requests,
            bytes_out: m.bytes_out,
            responses: m.responses,
            bytes_in: m.bytes_in,
            errors: m.errors,
            timeouts: m.timeouts,
            in_flight: m.in_flight,
            connects: m.connects,
            reconnects: m.reconnects,
            rtt: RttStats {
                count: m.responses,
                mean_us: micros(m.latency_mean),
                min_us: micros(m.latency_min),
                max_us: micros(m.latency_max),
                p50_us: micros(m.latency_p50),
                p99_us: micros(m.latency_p99),
            },
        }
    }
}

/// A client's snapshot: who it is and its brokers (the top level of librdkafka's
/// statistics JSON). The producer's, fetcher's and group consumer's snapshots embed
/// one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientStatistics {
    /// `client.id` (librdkafka `client_id`).
    pub client_id: String,
    /// When the snapshot was taken, in milliseconds since the Unix epoch (librdkafka
    /// `time`, which is in seconds).
    pub time_ms: i64,
    /// Microseconds since the client connected (librdkafka `age`).
    pub age_us: u64,
    /// Every broker the client has talked to, by address (librdkafka `brokers`, by
    /// name).
    pub brokers: BTreeMap<String, BrokerStats>,
}

impl ClientStatistics {
    pub(crate) fn new(
        client_id: &str,
        age: Duration,
        metrics: BTreeMap<String, MetricsSnapshot>,
        node_of: impl Fn(&str) -> Option<i32>,
    ) -> Self {
        let brokers = metrics
            .into_iter()
            .map(|(addr, m)| {
                let node = node_of(&addr).unwrap_or(-1);
                let stats = BrokerStats::new(node, addr.clone(), &m);
                (addr, stats)
            })
            .collect();
        ClientStatistics {
            client_id: client_id.to_string(),
            time_ms: now_ms(),
            age_us: micros(age),
            brokers,
        }
    }
}

/// A snapshot every `interval`: the stream of the handles' `statistics_every` methods.
/// It ends when `snapshot` returns `None` (the handle was closed or dropped).
pub struct Every<T> {
    interval: tokio::time::Interval,
    snapshot: Box<dyn FnMut() -> Option<T> + Send>,
    done: bool,
}

impl<T> std::fmt::Debug for Every<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Every")
            .field("period", &self.interval.period())
            .field("done", &self.done)
            .finish()
    }
}

/// Calls `snapshot` every `interval` (at least 1 ms; the first call one interval from
/// now; a late consumer delays the next, never bunches them) and yields what it
/// returns, until it returns `None`. This is librdkafka's `statistics.interval.ms`
/// with a stream in place of the `stats_cb` callback: nothing runs in the background,
/// so dropping the stream stops it. Call it inside a Tokio runtime.
pub fn every<T>(
    interval: Duration,
    snapshot: impl FnMut() -> Option<T> + Send + 'static,
) -> Every<T> {
    let period = interval.max(Duration::from_millis(1));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Every {
        interval,
        snapshot: Box::new(snapshot),
        done: false,
    }
}

/// [`every`] for a handle's shared state `inner`, held weakly: a snapshot of it each
/// interval while it lives and `is_open` says so; the stream ends after that.
pub fn every_while_open<I, T: 'static>(
    interval: Duration,
    inner: &std::sync::Arc<I>,
    is_open: fn(&I) -> bool,
    snapshot: fn(&I) -> T,
) -> Every<T>
where
    I: Send + Sync + 'static,
{
    let inner = std::sync::Arc::downgrade(inner);
    every(interval, move || {
        let inner = inner.upgrade()?;
        is_open(&inner).then(|| snapshot(&inner))
    })
}

impl<T> Stream for Every<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.interval.poll_tick(cx).is_pending() {
            return Poll::Pending;
        }
        match (self.snapshot)() {
            Some(s) => Poll::Ready(Some(s)),
            None => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn every_ticks_until_the_snapshot_ends() {
        let mut n = 0;
        let start = tokio::time::Instant::now();
        let stream = every(Duration::from_millis(100), move || {
            n += 1;
            (n <= 3).then_some(n)
        });
        let got: Vec<i32> = stream.collect().await;
        assert_eq!(got, vec![1, 2, 3]);
        // Three ticks and the fourth that ended it, 100 ms apart, the first after 100 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[test]
    fn broker_stats_serialize_in_plain_integers() {
        let m = MetricsSnapshot {
            requests: 3,
            responses: 2,
            latency_mean: Duration::from_millis(2),
            ..Default::default()
        };
        let json = serde_json::to_value(BrokerStats::new(1, "h:9092", &m)).unwrap_or_default();
        assert_eq!(json["node_id"], 1);
        assert_eq!(json["requests"], 3);
        assert_eq!(json["rtt"]["mean_us"], 2000);
        assert_eq!(json["rtt"]["count"], 2);
    }
}
