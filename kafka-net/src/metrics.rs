//! Counters per broker, updated by its connections and read as a snapshot.

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
    connects: AtomicU64,
    in_flight: AtomicU64,
    latency_micros_total: AtomicU64,
    latency_micros_max: AtomicU64,
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
    /// Connections opened after the first one to this broker.
    pub reconnects: u64,
    /// Requests waiting for their response now.
    pub in_flight: u64,
    /// Mean time from sending a request to decoding its response.
    pub latency_mean: Duration,
    /// Longest such time.
    pub latency_max: Duration,
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

    pub(crate) fn finished(&self, latency: Duration, ok: bool) {
        self.in_flight.fetch_sub(1, Relaxed);
        if ok {
            self.responses.fetch_add(1, Relaxed);
            let micros = latency.as_micros() as u64;
            self.latency_micros_total.fetch_add(micros, Relaxed);
            self.latency_micros_max.fetch_max(micros, Relaxed);
        } else {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let responses = self.responses.load(Relaxed);
        let total = self.latency_micros_total.load(Relaxed);
        MetricsSnapshot {
            requests: self.requests.load(Relaxed),
            responses,
            bytes_out: self.bytes_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            errors: self.errors.load(Relaxed),
            reconnects: self.connects.load(Relaxed).saturating_sub(1),
            in_flight: self.in_flight.load(Relaxed),
            latency_mean: Duration::from_micros(total.checked_div(responses).unwrap_or(0)),
            latency_max: Duration::from_micros(self.latency_micros_max.load(Relaxed)),
        }
    }
}
