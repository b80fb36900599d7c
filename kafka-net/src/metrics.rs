//! Counters per broker, updated by its connections and read as a snapshot.
//!
//! Everything here is a relaxed atomic: a request costs a few atomic additions (and
//! one to a fixed-size histogram of round-trip times), never a lock or an allocation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Live counters of one broker (shared by its connections).
#[derive(Debug, Default)]
pub struct BrokerMetrics {
    requests: AtomicU64,
    responses: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    connects: AtomicU64,
    in_flight: AtomicU64,
    latency_micros_total: AtomicU64,
    latency_micros_max: AtomicU64,
    /// `u64::MAX` minus the shortest round trip (0: none yet), so that `Default` works
    /// and `fetch_max` keeps the minimum.
    latency_micros_min_inverted: AtomicU64,
    histogram: Histogram,
}

/// A copy of a broker's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Requests sent.
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Bytes written, size prefixes included.
    pub bytes_out: u64,
    /// Bytes read, size prefixes included.
    pub bytes_in: u64,
    /// Requests that failed (I/O, timeout, malformed response).
    pub errors: u64,
    /// Of those, requests that timed out (`request.timeout.ms`).
    pub timeouts: u64,
    /// Connections opened to this broker.
    pub connects: u64,
    /// Connections opened after the first one to this broker.
    pub reconnects: u64,
    /// Requests waiting for their response now.
    pub in_flight: u64,
    /// Mean time from sending a request to decoding its response.
    pub latency_mean: Duration,
    /// Longest such time.
    pub latency_max: Duration,
    /// Shortest such time (zero before the first response).
    pub latency_min: Duration,
    /// Median such time, from a histogram with 1/8 of a power of two resolution
    /// (about ±6%), over every response since the client started.
    pub latency_p50: Duration,
    /// 99th percentile of such times, as `latency_p50`.
    pub latency_p99: Duration,
}

impl BrokerMetrics {
    pub(crate) fn sent(&self, bytes: usize, expects_response: bool) {
        self.requests.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
        if expects_response {
            self.in_flight.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// A request's answer arrived (`error` is `None`) or it failed.
    pub(crate) fn finished(&self, latency: Duration, error: Option<&crate::Error>) {
        self.in_flight.fetch_sub(1, Relaxed);
        match error {
            None => {
                self.responses.fetch_add(1, Relaxed);
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_micros_total.fetch_add(micros, Relaxed);
                self.latency_micros_max.fetch_max(micros, Relaxed);
                self.latency_micros_min_inverted
                    .fetch_max(u64::MAX - micros, Relaxed);
                self.histogram.record(micros);
            }
            Some(e) => {
                self.errors.fetch_add(1, Relaxed);
                if matches!(e.kind(), crate::ErrorKind::Timeout(_)) {
                    self.timeouts.fetch_add(1, Relaxed);
                }
            }
        }
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let responses = self.responses.load(Relaxed);
        let total = self.latency_micros_total.load(Relaxed);
        let connects = self.connects.load(Relaxed);
        let min_inverted = self.latency_micros_min_inverted.load(Relaxed);
        let [p50, p99] = self.histogram.percentiles([0.50, 0.99]);
        MetricsSnapshot {
            requests: self.requests.load(Relaxed),
            responses,
            bytes_out: self.bytes_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            connects,
            reconnects: connects.saturating_sub(1),
            in_flight: self.in_flight.load(Relaxed),
            latency_mean: Duration::from_micros(total.checked_div(responses).unwrap_or(0)),
            latency_max: Duration::from_micros(self.latency_micros_max.load(Relaxed)),
            latency_min: Duration::from_micros(if min_inverted == 0 {
                0
            } else {
                u64::MAX - min_inverted
            }),
            latency_p50: Duration::from_micros(p50),
            latency_p99: Duration::from_micros(p99),
        }
    }
}

/// Sub-buckets per power of two (3 bits: a bucket is 1/8 of its power of two wide).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below `SUB` get a bucket each; then `SUB` buckets per power of two up to
/// 2^36 µs (19 hours); larger values land in the last bucket.
const BUCKETS: usize = SUB + (36 - SUB_BITS as usize) * SUB;

/// A fixed-size log-linear histogram of microseconds (2 KiB), lock-free.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let power = 63 - v.leading_zeros();
        let sub = ((v >> (power - SUB_BITS)) as usize) & (SUB - 1);
        let i = SUB + (power - SUB_BITS) as usize * SUB + sub;
        i.min(BUCKETS - 1)
    }

    /// The middle of bucket `i`'s range.
    fn value(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = ((i - SUB) / SUB) as u32;
        let sub = ((i - SUB) % SUB) as u64;
        let low = (SUB as u64 + sub) << shift;
        low + ((1u64 << shift) >> 1)
    }

    fn record(&self, micros: u64) {
        self.buckets[Self::index(micros)].fetch_add(1, Relaxed);
    }

    /// The values at quantiles `qs` (0 when empty).
    fn percentiles<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        qs.map(|q| {
            if total == 0 {
                return 0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Self::value(i);
                }
            }
            Self::value(BUCKETS - 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_an_eighth_of_the_value() {
        for v in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            999,
            1_000,
            12_345,
            1 << 30,
            1 << 35,
        ] {
            let i = Histogram::index(v);
            let back = Histogram::value(i);
            let err = back.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 0.0625 + 1e-9, "{v} -> bucket {i} -> {back}");
            assert!(i < BUCKETS);
        }
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        // Buckets grow with the value.
        let mut last = 0;
        for v in 0..100_000u64 {
            let i = Histogram::index(v);
            assert!(i >= last);
            last = i;
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let m = BrokerMetrics::default();
        for micros in 1..=1000u64 {
            m.sent(10, true);
            m.finished(Duration::from_micros(micros), None);
        }
        let s = m.snapshot();
        assert_eq!(s.responses, 1000);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.latency_min, Duration::from_micros(1));
        assert_eq!(s.latency_max, Duration::from_micros(1000));
        let p50 = s.latency_p50.as_micros() as f64;
        let p99 = s.latency_p99.as_micros() as f64;
        assert!((p50 - 500.0).abs() <= 500.0 * 0.0625, "p50 {p50}");
        assert!((p99 - 990.0).abs() <= 990.0 * 0.0625, "p99 {p99}");
        m.sent(10, true);
        m.finished(
            Duration::from_secs(1),
            Some(&crate::Error::new(crate::ErrorKind::Timeout(
                Duration::from_secs(1),
            ))),
        );
        let s = m.snapshot();
        assert_eq!((s.errors, s.timeouts, s.responses), (1, 1, 1000));
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        let s = BrokerMetrics::default().snapshot();
        assert_eq!(s.latency_p50, Duration::ZERO);
        assert_eq!(s.latency_min, Duration::ZERO);
    }
}
