//! End-to-end producer comparison: `kafka-producer` (ours), librdkafka (the `rdkafka`
//! crate) and `rskafka`, one after another against the same broker; and with
//! `--only consume` the same for consumers (`kafka-consumer`'s `Fetcher` and
//! `PartitionReader`, librdkafka's `BaseConsumer`, rskafka's `fetch_records`), each
//! reading the same pre-filled topic (see `consume.rs`).
//!
//! The parent process starts (or is given) a broker, creates a fresh topic per run and
//! re-invokes this binary as a child per (client, case): `--client NAME --case ...`.
//! The child prints one JSON line with its result. A child per run keeps CPU time
//! (`getrusage(RUSAGE_SELF)` deltas around the timed part) and peak RSS (`ru_maxrss`,
//! which only grows) from leaking between clients and cases; clients never run
//! concurrently.
//!
//! ```text
//! cargo run --release -- [--quick] [--broker HOST:PORT [--broker-pid PID]]
//!     [--clients ours,ours-batch,rdkafka,rskafka] [--repeat N] [--json FILE]
//!     [--only throughput|latency|consume|transactions] [--rate MSG_PER_S] [--secs S]
//!     [--consumers ours,ours-lanes2,ours-reader,rdkafka,rdkafka-nobackoff,rskafka]
//!     [--filler rdkafka|ours|rskafka] [--filter 'LABEL SUBSTRING']
//! ```
//!
//! Consume cells: 100 B and 1 KiB values, no compression and lz4, 1 and 8 partitions;
//! 2,000,000 messages per 100 B cell, 500,000 per 1 KiB cell (a twentieth with
//! `--quick`). Per cell one topic is filled once by the filler (a producer child, records
//! round robin over the partitions, acks=1, the cell's compression), its end offsets are
//! found, one untimed warm-up read is done, then every consumer reads it `--repeat`
//! times, in rounds that start with a different consumer each time; the best run is
//! shown. Experiment hooks (environment): `BENCH_CHILD_WRAP` (e.g. `perf record -g -o
//! target/perf-{client}.data --`), `BENCH_VERBOSE` (ours prints its request and batch counts and the peak of its
//! buffer in use, sampled every millisecond),
//! `BENCH_RDKAFKA_CONSUMER` (extra librdkafka settings), `BENCH_OURS_SESSIONS=0`,
//! `BENCH_SCALE=N` (N times the messages per throughput cell), `BENCH_KEEP_BROKER=1`
//! (reuse the broker left running),
//! `BENCH_OURS_CRC=0`, `BENCH_OURS_MAX_BYTES=N` (the Fetcher's `max_bytes`),
//! `BENCH_OURS_PREFETCH=N` (its `prefetch_bytes`), `BENCH_OURS_CONNECTIONS=N` (the
//! producer's `connections_per_broker`), `BENCH_OURS_IN_FLIGHT=N` (its `max_in_flight`),
//! `BENCH_OURS_BUFFER=N` (its `buffer_memory`), `BENCH_OURS_MAX_RECORDS=N` (its
//! `max_buffered_records`), `BENCH_OURS_PARTITION_MEMORY=N` (its
//! `partition_memory`),
//! `BENCH_OURS_MAX_REQUEST=N` (its `max_request_size` and `batch_size`),
//! `BENCH_OURS_BATCH=N` (its `batch_size` alone),
//! `BENCH_OURS_FUTURES=1` (ours' throughput driver reaps a `DeliveryFuture` per record
//! instead of counting in a delivery callback).
//!
//! Cases: 100 B and 1 KiB values (no keys, text-like so lz4 has work), acks=1 and
//! acks=all with idempotence, no compression and lz4, 1 and 8 partitions, `linger.ms` 5.
//! Throughput cases give every client the same records in the same partitions: runs
//! of up to 1,000 records (512 KiB), one partition after the other, as sticky
//! partitioners place keyless records (`BENCH_ASSIGN=record`: round robin per record
//! for ours and librdkafka, as before session 23); latency cases round robin per record; 500,000 messages per 100 B
//! run and 100,000 per 1 KiB run (a tenth with `--quick`). Latency: 100 B values at
//! 20,000 msg/s for 5 s (1 s with `--quick`). With `--repeat N` the best run of N is
//! shown (highest msg/s; lowest p99).
//!
//! How each client is driven:
//! - ours: `BufferedProducer::send_with_callback` per record (explicit partition),
//!   with a callback that counts, as librdkafka's delivery callback does
//!   (`BENCH_OURS_FUTURES=1`: `send` per record, delivery futures reaped from the front
//!   as they finish). ours-batch (throughput only, not run by default): `send_batch`
//!   per group of records, the groups the rskafka driver cuts. In the latency case the records are sent
//!   from a plain thread that sleeps 1 ms between rounds, as librdkafka's are (a tokio
//!   interval would send them in step with the producer's own timer ticks), queued with
//!   `try_send_with_callback` (no `block_on`, as librdkafka's `produce` is a plain call)
//!   and a callback timing each record, as librdkafka's delivery callback does.
//! - librdkafka: `ThreadedProducer` with a delivery callback (its poll thread), retrying
//!   `send` on QUEUE_FULL; otherwise librdkafka's defaults.
//! - rskafka: no accumulator or acks setting (it always sends acks=-1 and has no
//!   idempotence): batches of up to 1,000 records / 512 KiB cut here (after 5 ms in the
//!   latency case), at most max(5, partitions) `PartitionClient::produce` calls in
//!   flight.
//!
//! Without `--broker`, `scripts/broker.sh restart` is run with
//! `BROKER_STATE_DIR=bench/producer-compare/target/bench-broker` (a fresh Tansu broker
//! with in-memory storage for each invocation; `BENCH_KEEP_BROKER=1`: `start`, which
//! reuses one already running) and the broker is left running (`scripts/broker.sh stop`
//! with the same `BROKER_STATE_DIR` stops it).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod consume;
mod transactions;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Records are batched for this long by every client (`linger.ms`).
const LINGER: Duration = Duration::from_millis(5);
/// rskafka has no accumulator: the benchmark cuts batches of at most this many value
/// bytes (and 1,000 records) itself.
const RSKAFKA_BATCH_BYTES: usize = 512 * 1024;
/// A child that takes longer than this is killed and reported as failed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Mode {
    /// Send `messages` as fast as the client takes them, then wait for every ack.
    Throughput,
    /// Send at `rate` msg/s for `secs` on a timer, recording each ack's latency.
    Latency,
    /// Read a pre-filled topic from the beginning to `ends` (see `consume.rs`).
    Consume,
    /// Send `messages` in transactions of `commit_every` records (see
    /// `transactions.rs`).
    Transactions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AcksMode {
    /// acks=1, no idempotence.
    Leader,
    /// acks=all with idempotence.
    AllIdempotent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Comp {
    None,
    Lz4,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Case {
    mode: Mode,
    size: usize,
    acks: AcksMode,
    compression: Comp,
    partitions: i32,
    /// Throughput: messages to send.
    messages: u64,
    /// Latency: offered rate (msg/s) and duration.
    rate: u64,
    secs: f64,
    /// Consume: the end offset of every partition (what the fill left there).
    #[serde(default)]
    ends: Vec<i64>,
    /// Transactions: records per transaction.
    #[serde(default)]
    commit_every: u64,
}

impl Case {
    /// Records the throughput drivers send to one partition before moving to the next:
    /// the groups the rskafka driver cuts into batches (up to 1,000 records or 512 KiB).
    fn group_len(&self) -> u64 {
        (RSKAFKA_BATCH_BYTES / self.size).clamp(1, 1000) as u64
    }

    /// The partition of record `i` in a throughput case, the same for every client:
    /// runs of `group_len` records, one partition after the other, as a sticky
    /// partitioner places keyless records (the Java client's and librdkafka's default)
    /// and as rskafka's driver cuts its batches. `BENCH_ASSIGN=record`: round robin per
    /// record for ours and librdkafka, as before session 23 (the rskafka driver still
    /// sends per-partition groups: it has no accumulator to spread them).
    fn partition_of(&self, i: u64) -> i32 {
        static PER_RECORD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let per_record =
            *PER_RECORD.get_or_init(|| std::env::var("BENCH_ASSIGN").is_ok_and(|v| v == "record"));
        let slot = if per_record { i } else { i / self.group_len() };
        (slot % self.partitions as u64) as i32
    }

    fn total(&self) -> u64 {
        match self.mode {
            Mode::Throughput | Mode::Consume | Mode::Transactions => self.messages,
            Mode::Latency => (self.rate as f64 * self.secs) as u64,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--mode".into(),
            format!("{:?}", self.mode).to_lowercase(),
            "--size".into(),
            self.size.to_string(),
            "--acks".into(),
            match self.acks {
                AcksMode::Leader => "1".into(),
                AcksMode::AllIdempotent => "all".into(),
            },
            "--compression".into(),
            format!("{:?}", self.compression).to_lowercase(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--messages".into(),
            self.messages.to_string(),
            "--rate".into(),
            self.rate.to_string(),
            "--secs".into(),
            self.secs.to_string(),
            "--commit-every".into(),
            self.commit_every.to_string(),
        ];
        if !self.ends.is_empty() {
            args.push("--ends".into());
            args.push(
                self.ends
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        args
    }
}

/// What a child reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunResult {
    client: String,
    case: Case,
    /// Messages acknowledged without error.
    delivered: u64,
    errors: u64,
    /// Wall time of the timed part (first send to last ack).
    elapsed_s: f64,
    /// User plus system CPU of the whole child process during the timed part.
    cpu_s: f64,
    /// Peak resident set of the child process (KiB).
    max_rss_kib: i64,
    /// Ack latency percentiles (latency mode), microseconds.
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    max_us: Option<u64>,
    /// CPU the broker process used during the child's life (filled in by the parent
    /// when it knows the broker's pid).
    #[serde(default)]
    broker_cpu_s: Option<f64>,
    /// Consume: value bytes read, and when the first record arrived (ms after the
    /// clock started).
    #[serde(default)]
    value_bytes: Option<u64>,
    #[serde(default)]
    first_ms: Option<f64>,
}

impl RunResult {
    fn msgs_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed_s
    }
    fn mb_per_s(&self) -> f64 {
        match self.value_bytes {
            Some(b) => b as f64 / self.elapsed_s / 1e6,
            None => self.msgs_per_s() * self.case.size as f64 / 1e6,
        }
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu_s / (self.delivered as f64 / 1e6)
    }
    fn broker_cpu_per_million(&self) -> Option<f64> {
        self.broker_cpu_s.map(|c| c / (self.delivered as f64 / 1e6))
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    }
}

fn cpu_seconds(ru: &libc::rusage) -> f64 {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User plus system CPU seconds of another process, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// Text-like values (words from a small vocabulary), so lz4 has something to do but
/// does not shrink them to nothing; 256 distinct values, cycled.
fn make_values(size: usize) -> Vec<bytes::Bytes> {
    const WORDS: &[&str] = &[
        "order",
        "customer",
        "item",
        "price",
        "quantity",
        "shipped",
        "pending",
        "status",
        "warehouse",
        "berlin",
        "paris",
        "tokyo",
        "id",
        "total",
        "currency",
        "eur",
        "usd",
        "true",
        "false",
        "null",
        "timestamp",
        "region",
        "north",
        "south",
        "sku",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..256)
        .map(|_| {
            let mut v = Vec::with_capacity(size + 16);
            while v.len() < size {
                let r = next();
                v.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
                v.push(b' ');
                if r % 3 == 0 {
                    v.extend_from_slice(((r >> 20) % 100_000).to_string().as_bytes());
                    v.push(b',');
                }
            }
            v.truncate(size);
            bytes::Bytes::from(v)
        })
        .collect()
}

#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn record(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }
    fn percentiles(mut self) -> (Option<u64>, Option<u64>, Option<u64>) {
        if self.0.is_empty() {
            return (None, None, None);
        }
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize];
        (Some(at(0.50)), Some(at(0.99)), self.0.last().copied())
    }
}

/// How many messages are due `elapsed` into a run at `rate` msg/s.
fn due(elapsed: Duration, rate: u64, total: u64) -> u64 {
    ((elapsed.as_secs_f64() * rate as f64) as u64).min(total)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Counters and timing every client fills in.
struct Outcome {
    delivered: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Latencies,
    /// Consume only: value bytes read and time to the first record.
    value_bytes: u64,
    first: Option<Duration>,
}

// ---------------------------------------------------------------------------
// Ours: kafka-producer's BufferedProducer over kafka-net.

mod ours {
    use super::*;
    use kafka_net::{ClientConfig, KafkaClient};
    use kafka_producer::{
        Acks, BufferedProducer, DeliveryFuture, ProduceErrorKind, ProducerConfig, ProducerRecord,
    };
    use kafka_protocol::compression::Compression;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    async fn producer(
        broker: &str,
        topic: &str,
        case: &Case,
    ) -> Result<BufferedProducer, BoxError> {
        let client = KafkaClient::connect(&[broker], ClientConfig::default()).await?;
        let mut config = ProducerConfig::default()
            .with_topic(topic)
            .with_linger(LINGER)
            .with_compression(match case.compression {
                Comp::None => Compression::None,
                Comp::Lz4 => Compression::Lz4,
            });
        config = match case.acks {
            AcksMode::Leader => config.with_acks(Acks::Leader).with_idempotence(false),
            AcksMode::AllIdempotent => config.with_acks(Acks::All).with_idempotence(true),
        };
        if let Some(n) = std::env::var("BENCH_OURS_MAX_REQUEST")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.max_request_size = n;
            config.batch_size = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.batch_size = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.buffer_memory = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_MAX_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.max_buffered_records = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_IN_FLIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.max_in_flight = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_PARTITION_MEMORY")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.partition_memory = Some(n);
        }
        if let Some(n) = std::env::var("BENCH_OURS_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config = config.with_connections_per_broker(n);
        }
        let producer = BufferedProducer::new(client, config)?;
        // Warm up: connection, metadata, producer id.
        producer
            .send(ProducerRecord::new("warm-up").at_partition(0))
            .await?
            .await?;
        Ok(producer)
    }

    /// `batched`: the throughput case with `send_batch`, in groups of records as the
    /// rskafka driver cuts them (client `ours-batch`).
    pub fn run(broker: &str, topic: &str, case: &Case, batched: bool) -> Result<Outcome, BoxError> {
        let rt = runtime();
        rt.block_on(async {
            let producer = producer(broker, topic, case).await?;
            let before = producer.statistics();
            let peak = Arc::new(AtomicU64::new(0));
            let sampler = std::env::var_os("BENCH_VERBOSE").map(|_| {
                let (p, peak) = (producer.clone(), peak.clone());
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(p.statistics().buffer_bytes, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
            });
            let outcome = match case.mode {
                Mode::Throughput if batched => throughput_batched(&producer, case).await?,
                Mode::Throughput | Mode::Consume | Mode::Transactions => {
                    throughput(&producer, case).await?
                }
                Mode::Latency => latency(&producer, case).await?,
            };
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                // Requests and batches of the timed part, from the producer's statistics.
                let after = producer.statistics();
                let requests = |s: &kafka_producer::ProducerStatistics| -> u64 {
                    s.client.brokers.values().map(|b| b.requests).sum()
                };
                let (r, b) = (
                    requests(&after) - requests(&before),
                    after.batches - before.batches,
                );
                eprintln!(
                    "ours: {r} requests, {b} batches, {:.0} records per batch, {:.1} batches per request, peak buffer {} kB",
                    outcome.delivered as f64 / b.max(1) as f64,
                    b as f64 / r.max(1) as f64,
                    peak.load(Ordering::Relaxed) / 1000
                );
            }
            if let Some(s) = sampler {
                s.abort();
            }
            producer.close().await;
            Ok(outcome)
        })
    }

    /// `send_batch` per group of records (the rskafka driver's groups: up to 1,000
    /// records or 512 KiB), one counting callback for all.
    async fn throughput_batched(
        producer: &BufferedProducer,
        case: &Case,
    ) -> Result<Outcome, BoxError> {
        let values = make_values(case.size);
        let per_group = case.group_len();
        let delivered = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < case.messages {
            let n = per_group.min(case.messages - sent);
            let records = (sent..sent + n)
                .map(|i| {
                    ProducerRecord::new(values[i as usize % values.len()].clone())
                        .at_partition(case.partition_of(i))
                })
                .collect();
            let (d, f) = (delivered.clone(), failed.clone());
            producer
                .send_batch(records, move |r| {
                    let counter = if r.is_ok() { &d } else { &f };
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .await?;
            sent += n;
        }
        producer.flush().await;
        Ok(Outcome {
            delivered: delivered.load(Ordering::Relaxed),
            errors: failed.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
            latencies: Latencies::default(),
            value_bytes: 0,
            first: None,
        })
    }

    async fn throughput(producer: &BufferedProducer, case: &Case) -> Result<Outcome, BoxError> {
        let values = make_values(case.size);
        let (mut delivered, mut errors) = (0u64, 0u64);
        let mut count = |r: Result<_, _>| match r {
            Ok(_) => delivered += 1,
            Err(_) => errors += 1,
        };
        // Deliveries complete roughly in send order: reap finished ones from the front
        // after every send (one poll with a no-op waker), so at most the records in
        // flight are held.
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
        let mut cx = Context::from_waker(Waker::noop());
        let start = Instant::now();
        if std::env::var_os("BENCH_OURS_FUTURES").is_none() {
            // A delivery callback per record that only counts, as the rdkafka driver's
            // delivery callback does: a closure with no captures, so no allocation.
            static DELIVERED: AtomicU64 = AtomicU64::new(0);
            static FAILED: AtomicU64 = AtomicU64::new(0);
            for i in 0..case.messages {
                let record = ProducerRecord::new(values[i as usize % values.len()].clone())
                    .at_partition(case.partition_of(i));
                producer
                    .send_with_callback(record, |r| {
                        let counter = if r.is_ok() { &DELIVERED } else { &FAILED };
                        counter.fetch_add(1, Ordering::Relaxed);
                    })
                    .await?;
            }
            producer.flush().await;
            return Ok(Outcome {
                delivered: DELIVERED.load(Ordering::Relaxed),
                errors: FAILED.load(Ordering::Relaxed),
                elapsed: start.elapsed(),
                latencies: Latencies::default(),
                value_bytes: 0,
                first: None,
            });
        }
        for i in 0..case.messages {
            let record = ProducerRecord::new(values[i as usize % values.len()].clone())
                .at_partition(case.partition_of(i));
            pending.push_back(producer.send(record).await?);
            while let Some(front) = pending.front_mut() {
                match Pin::new(front).poll(&mut cx) {
                    Poll::Ready(r) => {
                        count(r);
                        pending.pop_front();
                    }
                    Poll::Pending => break,
                }
            }
        }
        producer.flush().await;
        for f in pending {
            count(f.await);
        }
        Ok(Outcome {
            delivered,
            errors,
            elapsed: start.elapsed(),
            latencies: Latencies::default(),
            value_bytes: 0,
            first: None,
        })
    }

    /// Sends from a plain thread that sleeps 1 ms between rounds, as the librdkafka
    /// driver does (so both see records arrive the same way, not in step with tokio's
    /// timer ticks), with a delivery callback per record that times it, as librdkafka's
    /// delivery callback does.
    async fn latency(producer: &BufferedProducer, case: &Case) -> Result<Outcome, BoxError> {
        let values = make_values(case.size);
        let total = case.total();
        let (rate, partitions) = (case.rate, case.partitions as u64);
        let sending = producer.clone();
        let latencies = Arc::new(Mutex::new(Latencies::default()));
        let errors = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let (l, e, d) = (latencies.clone(), errors.clone(), delivered.clone());
        let sender = std::thread::spawn(move || -> Result<(), String> {
            let mut sent = 0u64;
            while sent < total {
                let now_due = due(start.elapsed(), rate, total);
                while sent < now_due {
                    let at = Instant::now();
                    // Queued without waiting (`try_send_with_callback`), as librdkafka's
                    // `produce` is called; a full buffer (not seen at this rate) is
                    // waited out as the rdkafka driver waits out QUEUE_FULL.
                    let queued = loop {
                        let record =
                            ProducerRecord::new(values[sent as usize % values.len()].clone())
                                .at_partition((sent % partitions) as i32);
                        let (l, e, d) = (l.clone(), e.clone(), d.clone());
                        let report = move |r: kafka_producer::DeliveryReport| match r {
                            Ok(_) => {
                                d.fetch_add(1, Ordering::Relaxed);
                                l.lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .record(at.elapsed());
                            }
                            Err(_) => {
                                e.fetch_add(1, Ordering::Relaxed);
                            }
                        };
                        match sending.try_send_with_callback(record, report) {
                            Err(e) if matches!(e.kind(), ProduceErrorKind::BufferFull(_)) => {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            other => break other,
                        }
                    };
                    queued.map_err(|e| e.to_string())?;
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        });
        tokio::task::spawn_blocking(move || sender.join())
            .await?
            .map_err(|_| "the sending thread panicked")?
            .map_err(|e| format!("send: {e}"))?;
        producer.flush().await;
        let elapsed = start.elapsed();
        let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(Outcome {
            delivered: delivered.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            elapsed,
            latencies,
            value_bytes: 0,
            first: None,
        })
    }
}

// ---------------------------------------------------------------------------
// librdkafka through the rdkafka crate: ThreadedProducer with a delivery callback, the
// way librdkafka is meant to be driven at high rates.

mod rdk {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{
        BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
    };
    use rdkafka::ClientContext;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    struct Ctx {
        start: Instant,
        delivered: AtomicU64,
        errors: AtomicU64,
        record_latency: bool,
        latencies: Mutex<Latencies>,
    }

    impl ClientContext for Ctx {}

    impl ProducerContext for Ctx {
        /// Nanoseconds after `start` at which the message was sent.
        type DeliveryOpaque = usize;

        fn delivery(&self, result: &DeliveryResult<'_>, sent_at: usize) {
            match result {
                Ok(_) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    if self.record_latency {
                        let now = self.start.elapsed().as_nanos() as u64;
                        let took = Duration::from_nanos(now.saturating_sub(sent_at as u64));
                        self.latencies
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record(took);
                    }
                }
                Err(_) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn send_one(
        producer: &ThreadedProducer<Ctx>,
        topic: &str,
        value: &[u8],
        partition: i32,
        start: Instant,
    ) {
        let mut record = BaseRecord::with_opaque_to(topic, start.elapsed().as_nanos() as usize)
            .payload(value)
            .partition(partition);
        loop {
            match producer.send::<[u8], [u8]>(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => panic!("rdkafka send: {e}"),
            }
        }
    }

    pub fn run(broker: &str, topic: &str, case: &Case) -> Result<Outcome, BoxError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker)
            .set("linger.ms", LINGER.as_millis().to_string())
            .set(
                "compression.codec",
                match case.compression {
                    Comp::None => "none",
                    Comp::Lz4 => "lz4",
                },
            );
        match case.acks {
            AcksMode::Leader => config.set("acks", "1").set("enable.idempotence", "false"),
            AcksMode::AllIdempotent => config.set("acks", "all").set("enable.idempotence", "true"),
        };
        let ctx = Ctx {
            start: Instant::now(),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            record_latency: case.mode == Mode::Latency,
            latencies: Mutex::new(Latencies::default()),
        };
        let producer: ThreadedProducer<Ctx> = config.create_with_context(ctx)?;
        // Warm up: connection, metadata, producer id.
        send_one(&producer, topic, b"warm-up", 0, producer.context().start);
        producer.flush(Duration::from_secs(30))?;
        let ctx = producer.context();
        if ctx.errors.load(Ordering::Relaxed) > 0 {
            return Err("rdkafka: the warm-up message failed".into());
        }
        ctx.delivered.store(0, Ordering::Relaxed);
        ctx.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clear();
        let values = make_values(case.size);
        let start = Instant::now();
        let total = case.total();
        let mut sent = 0u64;
        match case.mode {
            Mode::Throughput | Mode::Consume | Mode::Transactions => {
                while sent < total {
                    send_one(
                        &producer,
                        topic,
                        &values[sent as usize % values.len()],
                        case.partition_of(sent),
                        ctx.start,
                    );
                    sent += 1;
                }
            }
            Mode::Latency => {
                while sent < total {
                    let now_due = due(start.elapsed(), case.rate, total);
                    while sent < now_due {
                        send_one(
                            &producer,
                            topic,
                            &values[sent as usize % values.len()],
                            (sent % case.partitions as u64) as i32,
                            ctx.start,
                        );
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        // Wait for the last acks by counting them, not with `flush`: rdkafka 0.37's
        // `flush` also polls the queue the ThreadedProducer's thread polls, and when that
        // thread takes the last delivery report, `flush` sleeps out its whole 100 ms
        // poll interval, which would add ~100 ms to every run.
        let deadline = Instant::now() + Duration::from_secs(120);
        while ctx.delivered.load(Ordering::Relaxed) + ctx.errors.load(Ordering::Relaxed) < total {
            if Instant::now() > deadline {
                return Err("rdkafka: acks did not arrive within 120 s".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let elapsed = start.elapsed();
        let latencies =
            std::mem::take(&mut *ctx.latencies.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(Outcome {
            delivered: ctx.delivered.load(Ordering::Relaxed),
            errors: ctx.errors.load(Ordering::Relaxed),
            elapsed,
            latencies,
            value_bytes: 0,
            first: None,
        })
    }
}

// ---------------------------------------------------------------------------
// rskafka: PartitionClient::produce with batches the benchmark cuts itself.

mod rsk {
    use super::*;
    use futures::stream::{FuturesUnordered, StreamExt};
    use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
    use rskafka::client::ClientBuilder;
    use rskafka::record::Record;
    use std::sync::Arc;

    fn record(value: &[u8]) -> Record {
        Record {
            key: None,
            value: Some(value.to_vec()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        }
    }

    pub fn run(broker: &str, topic: &str, case: &Case) -> Result<Outcome, BoxError> {
        let rt = runtime();
        rt.block_on(async {
            let client = ClientBuilder::new(vec![broker.to_string()]).build().await?;
            let mut partitions = Vec::new();
            for p in 0..case.partitions {
                partitions.push(Arc::new(
                    client
                        .partition_client(topic, p, UnknownTopicHandling::Retry)
                        .await?,
                ));
            }
            let compression = match case.compression {
                Comp::None => Compression::NoCompression,
                Comp::Lz4 => Compression::Lz4,
            };
            // Warm up.
            partitions[0]
                .produce(vec![record(b"warm-up")], compression)
                .await?;
            match case.mode {
                Mode::Throughput | Mode::Consume | Mode::Transactions => {
                    throughput(&partitions, compression, case).await
                }
                Mode::Latency => latency(&partitions, compression, case).await,
            }
        })
    }

    /// Requests in flight at once: at least one per partition, at least 5 (the other
    /// clients' usual per-connection limit).
    fn max_in_flight(case: &Case) -> usize {
        (case.partitions as usize).max(5)
    }

    async fn produce(
        client: Arc<PartitionClient>,
        records: Vec<Record>,
        compression: Compression,
        sent_at: Vec<Instant>,
    ) -> (
        Result<Vec<i64>, rskafka::client::error::Error>,
        usize,
        Vec<Instant>,
    ) {
        let n = records.len();
        (client.produce(records, compression).await, n, sent_at)
    }

    async fn throughput(
        partitions: &[Arc<PartitionClient>],
        compression: Compression,
        case: &Case,
    ) -> Result<Outcome, BoxError> {
        let values = make_values(case.size);
        let per_batch = case.group_len();
        let limit = max_in_flight(case);
        let (mut delivered, mut errors) = (0u64, 0u64);
        let mut in_flight = FuturesUnordered::new();
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < case.messages || !in_flight.is_empty() {
            if sent < case.messages && in_flight.len() < limit {
                let n = per_batch.min(case.messages - sent);
                let records: Vec<Record> = (sent..sent + n)
                    .map(|i| record(&values[i as usize % values.len()]))
                    .collect();
                let client = partitions[case.partition_of(sent) as usize].clone();
                in_flight.push(produce(client, records, compression, Vec::new()));
                sent += n;
                continue;
            }
            if let Some((r, n, _)) = in_flight.next().await {
                match r {
                    Ok(_) => delivered += n as u64,
                    Err(_) => errors += n as u64,
                }
            }
        }
        Ok(Outcome {
            delivered,
            errors,
            elapsed: start.elapsed(),
            latencies: Latencies::default(),
            value_bytes: 0,
            first: None,
        })
    }

    async fn latency(
        partitions: &[Arc<PartitionClient>],
        compression: Compression,
        case: &Case,
    ) -> Result<Outcome, BoxError> {
        let values = make_values(case.size);
        let total = case.total();
        let per_batch = case.group_len() as usize;
        let limit = max_in_flight(case);
        let mut latencies = Latencies::default();
        let (mut delivered, mut errors) = (0u64, 0u64);
        // Per partition: the open batch and when each record in it was sent.
        let mut open: Vec<(Vec<Record>, Vec<Instant>)> = (0..partitions.len())
            .map(|_| (Vec::new(), Vec::new()))
            .collect();
        let mut in_flight = FuturesUnordered::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let start = Instant::now();
        let mut sent = 0u64;
        loop {
            // Cut batches that are full or have lingered, while there is room.
            for (p, (records, times)) in open.iter_mut().enumerate() {
                let ready = records.len() >= per_batch
                    || times.first().is_some_and(|t| t.elapsed() >= LINGER)
                    || (sent == total && !records.is_empty());
                if ready && in_flight.len() < limit {
                    in_flight.push(produce(
                        partitions[p].clone(),
                        std::mem::take(records),
                        compression,
                        std::mem::take(times),
                    ));
                }
            }
            let idle = open.iter().all(|(r, _)| r.is_empty());
            if sent == total && idle && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                _ = tick.tick() => {
                    let now_due = due(start.elapsed(), case.rate, total);
                    while sent < now_due {
                        let p = (sent % partitions.len() as u64) as usize;
                        open[p].0.push(record(&values[sent as usize % values.len()]));
                        open[p].1.push(Instant::now());
                        sent += 1;
                    }
                }
                Some((r, n, times)) = in_flight.next(), if !in_flight.is_empty() => {
                    match r {
                        Ok(_) => {
                            delivered += n as u64;
                            for t in times {
                                latencies.record(t.elapsed());
                            }
                        }
                        Err(_) => errors += n as u64,
                    }
                }
            }
        }
        Ok(Outcome {
            delivered,
            errors,
            elapsed: start.elapsed(),
            latencies,
            value_bytes: 0,
            first: None,
        })
    }
}

// ---------------------------------------------------------------------------
// Child: one client, one case.

fn child(args: &Args) -> Result<(), BoxError> {
    let client = args.client.clone().ok_or("--client")?;
    let broker = args.broker.clone().ok_or("--broker")?;
    let topic = args.topic.clone().ok_or("--topic")?;
    let case = args.case.clone();
    let before = rusage();
    let outcome = match (case.mode, client.as_str()) {
        (Mode::Consume, "ours") => consume::ours::fetcher(&broker, &topic, &case, None)?,
        (Mode::Consume, "ours-lanes2") => consume::ours::fetcher(&broker, &topic, &case, Some(2))?,
        (Mode::Consume, "ours-reader") => consume::ours::reader(&broker, &topic, &case)?,
        (Mode::Consume, "rdkafka") => consume::rdk::run(&broker, &topic, &case, false)?,
        (Mode::Consume, "rdkafka-nobackoff") => consume::rdk::run(&broker, &topic, &case, true)?,
        (Mode::Consume, "rskafka") => consume::rsk::run(&broker, &topic, &case)?,
        (Mode::Transactions, "ours") => transactions::ours(&broker, &topic, &case)?,
        (Mode::Transactions, "rdkafka") => transactions::rdkafka(&broker, &topic, &case)?,
        (_, "ours") => ours::run(&broker, &topic, &case, false)?,
        (Mode::Throughput, "ours-batch") => ours::run(&broker, &topic, &case, true)?,
        (_, "rdkafka") => rdk::run(&broker, &topic, &case)?,
        (_, "rskafka") => rsk::run(&broker, &topic, &case)?,
        (_, other) => return Err(format!("unknown client {other}").into()),
    };
    let after = rusage();
    let (p50, p99, max) = outcome.latencies.percentiles();
    let consumed = case.mode == Mode::Consume;
    let result = RunResult {
        client,
        case,
        delivered: outcome.delivered,
        errors: outcome.errors,
        elapsed_s: outcome.elapsed.as_secs_f64(),
        cpu_s: cpu_seconds(&after) - cpu_seconds(&before),
        max_rss_kib: after.ru_maxrss,
        p50_us: p50,
        p99_us: p99,
        max_us: max,
        broker_cpu_s: None,
        value_bytes: consumed.then_some(outcome.value_bytes),
        first_ms: outcome.first.map(|d| d.as_secs_f64() * 1e3),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

// ---------------------------------------------------------------------------
// Parent: broker, topics, children, table.

struct Args {
    quick: bool,
    broker: Option<String>,
    clients: Vec<String>,
    /// Consume cases: the consumers, and the producer that fills the topic.
    consumers: Vec<String>,
    filler: String,
    /// Only the cases whose table label contains this (e.g. "1 KiB | none | 8").
    filter: Option<String>,
    repeat: usize,
    json: Option<String>,
    /// The broker's pid, to report its CPU (known when this program started it).
    broker_pid: Option<u32>,
    /// Only throughput or only latency cases.
    only: Option<Mode>,
    /// Latency cases: offered rate and duration (default 20,000 msg/s for 5 s, 1 s with
    /// `--quick`).
    rate: Option<u64>,
    secs: Option<f64>,
    // Child only.
    client: Option<String>,
    topic: Option<String>,
    case: Case,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        quick: false,
        broker: None,
        clients: vec!["ours".into(), "rdkafka".into(), "rskafka".into()],
        consumers: vec![
            "ours".into(),
            "ours-lanes2".into(),
            "ours-reader".into(),
            "rdkafka".into(),
            "rdkafka-nobackoff".into(),
            "rskafka".into(),
        ],
        filler: "rdkafka".into(),
        filter: None,
        repeat: 1,
        json: None,
        broker_pid: None,
        only: None,
        rate: None,
        secs: None,
        client: None,
        topic: None,
        case: Case {
            mode: Mode::Throughput,
            size: 100,
            acks: AcksMode::Leader,
            compression: Comp::None,
            partitions: 1,
            messages: 0,
            rate: 0,
            secs: 0.0,
            ends: Vec::new(),
            commit_every: 0,
        },
    };
    // A child gets `--client`; `--rate` and `--secs` then describe its case.
    let is_child = std::env::args().any(|a| a == "--client");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => a.quick = true,
            "--broker" => a.broker = Some(value()?),
            "--clients" => a.clients = value()?.split(',').map(str::to_string).collect(),
            "--consumers" => a.consumers = value()?.split(',').map(str::to_string).collect(),
            "--filler" => a.filler = value()?,
            "--filter" => a.filter = Some(value()?),
            "--ends" => {
                a.case.ends = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--repeat" => a.repeat = value()?.parse()?,
            "--json" => a.json = Some(value()?),
            "--broker-pid" => a.broker_pid = Some(value()?.parse()?),
            "--only" => {
                a.only = Some(match value()?.as_str() {
                    "throughput" => Mode::Throughput,
                    "latency" => Mode::Latency,
                    "consume" => Mode::Consume,
                    "transactions" => Mode::Transactions,
                    m => {
                        return Err(format!(
                            "--only throughput|latency|consume|transactions, not {m}"
                        )
                        .into())
                    }
                })
            }
            "--rate" if !is_child => a.rate = Some(value()?.parse()?),
            "--secs" if !is_child => a.secs = Some(value()?.parse()?),
            "--client" => a.client = Some(value()?),
            "--topic" => a.topic = Some(value()?),
            "--mode" => {
                a.case.mode = match value()?.as_str() {
                    "throughput" => Mode::Throughput,
                    "latency" => Mode::Latency,
                    "consume" => Mode::Consume,
                    "transactions" => Mode::Transactions,
                    m => return Err(format!("unknown mode {m}").into()),
                }
            }
            "--size" => a.case.size = value()?.parse()?,
            "--acks" => {
                a.case.acks = match value()?.as_str() {
                    "1" => AcksMode::Leader,
                    "all" => AcksMode::AllIdempotent,
                    m => return Err(format!("--acks 1|all, not {m}").into()),
                }
            }
            "--compression" => {
                a.case.compression = match value()?.as_str() {
                    "none" => Comp::None,
                    "lz4" => Comp::Lz4,
                    m => return Err(format!("--compression none|lz4, not {m}").into()),
                }
            }
            "--partitions" => a.case.partitions = value()?.parse()?,
            "--messages" => a.case.messages = value()?.parse()?,
            "--rate" => a.case.rate = value()?.parse()?,
            "--secs" => a.case.secs = value()?.parse()?,
            "--commit-every" => a.case.commit_every = value()?.parse()?,
            "-h" | "--help" => {
                eprintln!("usage: producer-compare [--quick] [--broker HOST:PORT] [--clients ours,rdkafka,rskafka] [--repeat N] [--json FILE] [--only throughput|latency|consume|transactions] [--rate MSG_PER_S] [--secs S] [--consumers ours,ours-lanes2,ours-reader,rdkafka,rdkafka-nobackoff,rskafka] [--filler rdkafka|ours|rskafka]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// Starts a fresh broker (stopping the one left running from the same state dir) and
/// returns its address and pid. Fresh for each invocation: a Tansu process that has
/// served several full runs charged more CPU per idempotent batch, and more to the
/// client with the smaller batches (issue 16: ours fell from 3.0M to 1.8M msg/s at
/// 100 B, idempotent, 8 partitions, Tansu's CPU per million for its records 0.30 to
/// 0.60, while librdkafka's stayed). `BENCH_KEEP_BROKER=1` reuses a running one.
fn start_broker() -> Result<(String, Option<u32>), BoxError> {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let script = format!("{crate_dir}/../../scripts/broker.sh");
    let command = if std::env::var_os("BENCH_KEEP_BROKER").is_some() {
        "start"
    } else {
        "restart"
    };
    let out = Command::new("bash")
        .arg(&script)
        .arg(command)
        .env(
            "BROKER_STATE_DIR",
            format!("{crate_dir}/target/bench-broker"),
        )
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{script} start failed").into());
    }
    let addr = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .ok_or("broker.sh printed no address")?
        .trim()
        .to_string();
    let pid = std::fs::read_to_string(format!("{crate_dir}/target/bench-broker/pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    Ok((addr, pid))
}

fn cases(args: &Args) -> Vec<Case> {
    let quick = args.quick;
    let mut out = Vec::new();
    // BENCH_SCALE=N: N times the messages per throughput cell (longer, steadier runs
    // for experiments; the tables in BENCHMARKS.md use 1).
    let scale: u64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    for size in [100usize, 1024] {
        for acks in [AcksMode::Leader, AcksMode::AllIdempotent] {
            for compression in [Comp::None, Comp::Lz4] {
                for partitions in [1, 8] {
                    let messages = match (quick, size) {
                        (false, 100) => 500_000,
                        (false, _) => 100_000,
                        (true, 100) => 20_000,
                        (true, _) => 5_000,
                    } * scale;
                    out.push(Case {
                        mode: Mode::Throughput,
                        size,
                        acks,
                        compression,
                        partitions,
                        messages,
                        rate: 0,
                        secs: 0.0,
                        ends: Vec::new(),
                        commit_every: 0,
                    });
                }
            }
        }
    }
    // Consume: 2,000,000 100 B or 500,000 1 KiB messages (a twentieth with --quick),
    // read back; runs of about a second, so that start-up (20 to 40 ms to the first
    // record) is a small part.
    for size in [100usize, 1024] {
        for compression in [Comp::None, Comp::Lz4] {
            for partitions in [1, 8] {
                let messages = match (quick, size) {
                    (false, 100) => 2_000_000,
                    (false, _) => 500_000,
                    (true, 100) => 100_000,
                    (true, _) => 25_000,
                };
                out.push(Case {
                    mode: Mode::Consume,
                    size,
                    acks: AcksMode::Leader,
                    compression,
                    partitions,
                    messages,
                    rate: 0,
                    secs: 0.0,
                    ends: Vec::new(),
                    commit_every: 0,
                });
            }
        }
    }
    for acks in [AcksMode::Leader, AcksMode::AllIdempotent] {
        out.push(Case {
            mode: Mode::Latency,
            size: 100,
            acks,
            compression: Comp::None,
            partitions: 1,
            messages: 0,
            rate: args.rate.unwrap_or(20_000),
            secs: args.secs.unwrap_or(if quick { 1.0 } else { 5.0 }),
            ends: Vec::new(),
            commit_every: 0,
        });
    }
    out.extend(transactions::cases(quick));
    // Without --only: the producer cases (throughput and latency); consume only when
    // asked for.
    out.retain(|c| match args.only {
        None => !matches!(c.mode, Mode::Consume | Mode::Transactions),
        Some(m) => m == c.mode,
    });
    if let Some(f) = &args.filter {
        out.retain(|c| {
            let l = if c.mode == Mode::Consume {
                consume_label(c)
            } else {
                label(c)
            };
            l.contains(f.as_str())
        });
    }
    out
}

fn run_child(
    exe: &std::path::Path,
    client: &str,
    broker: &str,
    topic: &str,
    case: &Case,
) -> Result<RunResult, BoxError> {
    // BENCH_CHILD_WRAP="perf record -g -o target/perf-{client}.data --" runs every
    // child under that command ({client} replaced by the client's name).
    let wrap: Vec<String> = match std::env::var("BENCH_CHILD_WRAP") {
        Ok(w) => w
            .split_whitespace()
            .map(|a| a.replace("{client}", client))
            .collect(),
        _ => Vec::new(),
    };
    let mut command = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = command
        .args(["--client", client, "--broker", broker, "--topic", topic])
        .args(case.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > CHILD_TIMEOUT {
            child.kill()?;
            child.wait()?;
            return Err(format!("{client} timed out after {CHILD_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("{client} exited with {}", out.status).into());
    }
    let line = String::from_utf8(out.stdout)?;
    let line = line.lines().last().ok_or("child printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn label(case: &Case) -> String {
    let txn = format!("txn/{}", case.commit_every);
    let acks = match case.acks {
        _ if case.mode == Mode::Transactions => txn.as_str(),
        AcksMode::Leader => "1",
        AcksMode::AllIdempotent => "all+idem",
    };
    let size = if case.size == 1024 {
        "1 KiB".to_string()
    } else {
        format!("{} B", case.size)
    };
    format!(
        "{size} | {acks} | {} | {}",
        format!("{:?}", case.compression).to_lowercase(),
        case.partitions
    )
}

fn parent(args: &Args) -> Result<(), BoxError> {
    let (broker, broker_pid) = match &args.broker {
        Some(b) => (b.clone(), args.broker_pid),
        None => start_broker()?,
    };
    eprintln!("broker {broker} (pid {broker_pid:?})");
    let exe = std::env::current_exe()?;
    let rt = runtime();
    let admin = rt.block_on(kafka_net::KafkaClient::connect(
        &[broker.as_str()],
        kafka_net::ClientConfig::default(),
    ))?;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut results: Vec<(Case, Vec<Option<RunResult>>)> = Vec::new();
    let mut all = Vec::new();
    let mut n = 0;
    for case in cases(args) {
        if case.mode == Mode::Consume {
            n += 1;
            let topic = format!("bench-{run_id}-{n}-consume");
            rt.block_on(kafka_net::Client::create_topics(
                &admin,
                vec![kafka_net::NewTopic::new(&topic, case.partitions)],
            ))?;
            let cell = consume_cell(args, &rt, &admin, &exe, &broker, broker_pid, &topic, case);
            let _ = rt.block_on(kafka_net::Client::delete_topics(&admin, vec![topic]));
            let (case, row, runs) = cell?;
            all.extend(runs);
            results.push((case, row));
            continue;
        }
        let mut row = Vec::new();
        for client in &args.clients {
            // rskafka always sends acks=-1 and has no idempotent (or transactional)
            // producer.
            if client == "rskafka"
                && (case.acks == AcksMode::AllIdempotent || case.mode == Mode::Transactions)
            {
                row.push(None);
                continue;
            }
            // `send_batch` is measured for throughput only.
            if client == "ours-batch" && case.mode != Mode::Throughput {
                row.push(None);
                continue;
            }
            let mut best: Option<RunResult> = None;
            for _ in 0..args.repeat {
                n += 1;
                let topic = format!("bench-{run_id}-{n}-{client}");
                rt.block_on(kafka_net::Client::create_topics(
                    &admin,
                    vec![kafka_net::NewTopic::new(&topic, case.partitions)],
                ))?;
                let broker_cpu = broker_pid.and_then(process_cpu);
                let r = run_child(&exe, client, &broker, &topic, &case).map(|mut r| {
                    let after = broker_pid.and_then(process_cpu);
                    r.broker_cpu_s = broker_cpu.zip(after).map(|(b, a)| a - b);
                    r
                });
                // Tansu keeps everything in memory: drop the data between runs.
                let _ = rt.block_on(kafka_net::Client::delete_topics(
                    &admin,
                    vec![topic.clone()],
                ));
                let r = r?;
                eprintln!(
                    "{:<8} {} : {:>9.0} msg/s  cpu {:.2}s  broker cpu {:.2}s  rss {} MiB  errors {}{}",
                    client,
                    label(&case),
                    r.msgs_per_s(),
                    r.cpu_s,
                    r.broker_cpu_s.unwrap_or(f64::NAN),
                    r.max_rss_kib / 1024,
                    r.errors,
                    r.p99_us.map(|p| format!("  p50 {}us p99 {p}us", r.p50_us.unwrap_or(0))).unwrap_or_default()
                );
                if r.errors > 0 {
                    return Err(format!("{client}: {} messages failed", r.errors).into());
                }
                all.push(r.clone());
                // Best of the repeats: highest throughput, or lowest p99 latency.
                let better = match (&best, case.mode) {
                    (None, _) => true,
                    (Some(b), Mode::Throughput | Mode::Consume | Mode::Transactions) => {
                        r.msgs_per_s() > b.msgs_per_s()
                    }
                    (Some(b), Mode::Latency) => r.p99_us < b.p99_us,
                };
                if better {
                    best = Some(r);
                }
            }
            row.push(best);
        }
        results.push((case, row));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    print_tables(&args.clients, &results);
    print_consume_table(&args.consumers, &results);
    transactions::print_table(&args.clients, &results);
    Ok(())
}

/// A consume cell's case (with its end offsets), the best run per consumer, every run.
type ConsumeCell = (Case, Vec<Option<RunResult>>, Vec<RunResult>);

/// One consume cell: fills `topic` with the filler producer, finds the partitions' end
/// offsets, then runs every consumer `repeat` times over the same data.
#[allow(clippy::too_many_arguments)]
fn consume_cell(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    admin: &kafka_net::KafkaClient,
    exe: &std::path::Path,
    broker: &str,
    broker_pid: Option<u32>,
    topic: &str,
    mut case: Case,
) -> Result<ConsumeCell, BoxError> {
    let fill_case = Case {
        mode: Mode::Throughput,
        acks: AcksMode::Leader,
        ..case.clone()
    };
    let fill = run_child(exe, &args.filler, broker, topic, &fill_case)?;
    if fill.errors > 0 {
        return Err(format!("fill: {} messages failed", fill.errors).into());
    }
    // The end of every partition. Tansu 0.6.0's ListOffsets(latest) answers the base
    // offset of the partition's last batch, not the offset after its last record, so
    // read on from there (stateless fetches) until nothing more comes.
    let mut ends = Vec::new();
    let mut listed = Vec::new();
    let mut hws = Vec::new();
    let opts = kafka_consumer::FetchOptions::default();
    for p in 0..case.partitions {
        let latest = rt.block_on(kafka_net::Client::offset_latest(admin, topic, p))?;
        let mut end = latest;
        let mut hw = -1;
        loop {
            let f = rt.block_on(kafka_consumer::fetch::fetch_partition(
                admin, topic, p, end, &opts,
            ))?;
            hw = hw.max(f.high_watermark);
            if f.records.is_empty() || f.next_offset <= end {
                break;
            }
            end = f.next_offset;
        }
        listed.push(latest);
        hws.push(hw);
        ends.push(end);
    }
    if listed != ends {
        eprintln!("note: ListOffsets(latest) said {listed:?}, fetch high watermark {hws:?}, the records end at {ends:?}");
    }
    let expected: i64 = ends.iter().sum();
    if expected != fill.delivered as i64 + 1 {
        return Err(format!(
            "the topic holds {expected} records, not {} (fill + warm-up)",
            fill.delivered + 1
        )
        .into());
    }
    eprintln!(
        "fill     {} : {} messages by {} at {:.0} msg/s, ends {:?}",
        consume_label(&case),
        fill.delivered,
        args.filler,
        fill.msgs_per_s(),
        ends
    );
    case.ends = ends;
    // The first read of freshly written data is slower on Tansu than later reads (up to
    // 1.5x here, whoever reads), so one untimed read by the first consumer goes first.
    // Then the repeats run in rounds, each round starting with the next consumer, so no
    // client is always first.
    if let Some(first) = args.consumers.first() {
        let r = run_child(exe, first, broker, topic, &case)?;
        eprintln!(
            "warm-up     {} : {first} at {:.0} msg/s (not counted)",
            consume_label(&case),
            r.msgs_per_s()
        );
    }
    let n = args.consumers.len();
    let mut best: Vec<Option<RunResult>> = vec![None; n];
    let mut runs = Vec::new();
    for round in 0..args.repeat {
        for i in 0..n {
            let at = (i + round) % n;
            let client = &args.consumers[at];
            let broker_cpu = broker_pid.and_then(process_cpu);
            let mut r = run_child(exe, client, broker, topic, &case)?;
            let after = broker_pid.and_then(process_cpu);
            r.broker_cpu_s = broker_cpu.zip(after).map(|(b, a)| a - b);
            eprintln!(
                "{:<11} {} : {:>9.0} msg/s {:>6.1} MB/s  cpu {:.2}s  broker cpu {:.2}s  rss {} MiB  first {:.1} ms  missing {}",
                client,
                consume_label(&case),
                r.msgs_per_s(),
                r.mb_per_s(),
                r.cpu_s,
                r.broker_cpu_s.unwrap_or(f64::NAN),
                r.max_rss_kib / 1024,
                r.first_ms.unwrap_or(f64::NAN),
                r.errors
            );
            if r.errors > 0 {
                return Err(format!(
                    "{client}: read {} messages, not {}",
                    r.delivered,
                    case.ends.iter().sum::<i64>()
                )
                .into());
            }
            runs.push(r.clone());
            if best[at]
                .as_ref()
                .is_none_or(|b| r.msgs_per_s() > b.msgs_per_s())
            {
                best[at] = Some(r);
            }
        }
    }
    let row = best;
    Ok((case, row, runs))
}

fn consume_label(case: &Case) -> String {
    let size = if case.size == 1024 {
        "1 KiB".to_string()
    } else {
        format!("{} B", case.size)
    };
    format!(
        "{size} | {} | {} | {}",
        format!("{:?}", case.compression).to_lowercase(),
        case.partitions,
        case.messages
    )
}

fn print_consume_table(consumers: &[String], results: &[(Case, Vec<Option<RunResult>>)]) {
    if !results.iter().any(|(c, _)| c.mode == Mode::Consume) {
        return;
    }
    println!(
        "\nConsume (read a pre-filled topic from the beginning): msg/s and MB/s of values; \
         CPU = client process user+sys s per million messages; RSS = client peak MiB; \
         broker CPU s per million in client order ({}).\n",
        consumers.join(" / ")
    );
    let mut head = "| value | compr. | parts | messages |".to_string();
    let mut rule = "|---|---|---:|---:|".to_string();
    for c in consumers {
        head += &format!(" {c} msg/s | MB/s | CPU | RSS |");
        rule += "---:|---:|---:|---:|";
    }
    head += " broker CPU |";
    rule += "---:|";
    println!("{head}\n{rule}");
    for (case, row) in results.iter().filter(|(c, _)| c.mode == Mode::Consume) {
        let mut line = format!("| {} |", consume_label(case));
        for r in row {
            match r {
                Some(r) => {
                    line += &format!(
                        " {:.0}k | {:.1} | {:.2} | {} |",
                        r.msgs_per_s() / 1e3,
                        r.mb_per_s(),
                        r.cpu_per_million(),
                        r.max_rss_kib / 1024
                    )
                }
                None => line += " n/a | n/a | n/a | n/a |",
            }
        }
        let broker: Vec<String> = row
            .iter()
            .map(|r| {
                r.as_ref()
                    .and_then(RunResult::broker_cpu_per_million)
                    .map_or("n/a".to_string(), |c| format!("{c:.2}"))
            })
            .collect();
        line += &format!(" {} |", broker.join(" / "));
        println!("{line}");
    }
}

fn print_tables(clients: &[String], results: &[(Case, Vec<Option<RunResult>>)]) {
    if results
        .iter()
        .all(|(c, _)| matches!(c.mode, Mode::Consume | Mode::Transactions))
    {
        return;
    }
    let na = "n/a";
    let broker_cpu = |row: &[Option<RunResult>]| {
        row.iter()
            .map(
                |r| match r.as_ref().and_then(RunResult::broker_cpu_per_million) {
                    Some(c) => format!("{c:.2}"),
                    None => na.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "Throughput: msg/s and MB/s of values; CPU = client process user+sys s per million \
         messages; RSS = client peak MiB; broker CPU s per million in client order ({}).\n",
        clients.join(" / ")
    );
    let mut head = "| value | acks | compr. | parts |".to_string();
    let mut rule = "|---|---|---|---:|".to_string();
    for c in clients {
        head += &format!(" {c} msg/s | MB/s | CPU | RSS |");
        rule += "---:|---:|---:|---:|";
    }
    head += " broker CPU |";
    rule += "---:|";
    println!("{head}\n{rule}");
    for (case, row) in results.iter().filter(|(c, _)| c.mode == Mode::Throughput) {
        let mut line = format!("| {} |", label(case));
        for r in row {
            match r {
                Some(r) => {
                    line += &format!(
                        " {:.0}k | {:.1} | {:.2} | {:.1} |",
                        r.msgs_per_s() / 1e3,
                        r.mb_per_s(),
                        r.cpu_per_million(),
                        r.max_rss_kib as f64 / 1024.0
                    )
                }
                None => line += &format!(" {na} | {na} | {na} | {na} |"),
            }
        }
        line += &format!(" {} |", broker_cpu(row));
        println!("{line}");
    }
    println!(
        "\nAck latency (send call to delivery report) at a fixed offered rate, sent on a 1 ms \
         timer; CPU = client s per million messages at that rate:\n"
    );
    let mut head = "| value | acks | compr. | parts | rate |".to_string();
    let mut rule = "|---|---|---|---:|---:|".to_string();
    for c in clients {
        head += &format!(" {c} p50 ms | p99 ms | CPU | RSS |");
        rule += "---:|---:|---:|---:|";
    }
    head += " broker CPU |";
    rule += "---:|";
    println!("{head}\n{rule}");
    for (case, row) in results.iter().filter(|(c, _)| c.mode == Mode::Latency) {
        let mut line = format!("| {} | {}/s, {} s |", label(case), case.rate, case.secs);
        for r in row {
            match r {
                Some(r) => {
                    line += &format!(
                        " {:.2} | {:.2} | {:.2} | {:.1} |",
                        r.p50_us.unwrap_or(0) as f64 / 1e3,
                        r.p99_us.unwrap_or(0) as f64 / 1e3,
                        r.cpu_per_million(),
                        r.max_rss_kib as f64 / 1024.0
                    )
                }
                None => line += &format!(" {na} | {na} | {na} | {na} |"),
            }
        }
        line += &format!(" {} |", broker_cpu(row));
        println!("{line}");
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("producer-compare: {e}");
            std::process::exit(2);
        }
    };
    let result = if args.client.is_some() {
        child(&args)
    } else {
        parent(&args)
    };
    if let Err(e) = result {
        eprintln!("producer-compare: {e}");
        std::process::exit(1);
    }
}
