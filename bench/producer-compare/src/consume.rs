//! Consumers: each reads a pre-filled topic from the beginning to the end offsets the
//! parent found after filling it (`Case::ends`, one per partition), counting messages
//! and value bytes. The timed part starts after the client is connected (and has the
//! topic's metadata) and before partitions are assigned, so it includes resolving the
//! start offsets and the first fetch; it ends when the last record of every partition
//! has been handed to the application.
//!
//! - `ours`: one `kafka_consumer::Fetcher` over all partitions (`StartOffset::Earliest`,
//!   default `FetcherConfig`), `next_batch` in a loop.
//! - `ours-lanes2`: the same with `fetches_per_broker = 2` (two Fetches in flight per
//!   broker, each on its own connection and session, for half of the partitions each).
//! - `ours-reader`: one `PartitionReader` per partition, each on its own `KafkaClient`
//!   (kafka-go style: a reader per partition with its own connection), `read_message`
//!   per message, one tokio task per reader.
//! - `rdkafka`: a `BaseConsumer` with `assign` at `Offset::Beginning` (a fresh
//!   `group.id`, nothing committed), `poll` per message; librdkafka's defaults.
//! - `rskafka`: per partition a task that calls `PartitionClient::fetch_records` (up to
//!   1 MiB, 500 ms max wait) in a loop from `OffsetAt::Earliest`.

use super::*;

/// The counting every consumer does, per partition.
struct Tally {
    ends: Vec<i64>,
    done: Vec<bool>,
    remaining: usize,
    messages: u64,
    value_bytes: u64,
    first: Option<Duration>,
}

impl Tally {
    fn new(ends: &[i64]) -> Self {
        let done: Vec<bool> = ends.iter().map(|&e| e <= 0).collect();
        Tally {
            remaining: done.iter().filter(|d| !**d).count(),
            ends: ends.to_vec(),
            done,
            messages: 0,
            value_bytes: 0,
            first: None,
        }
    }

    fn record(&mut self, start: Instant, partition: i32, offset: i64, value_len: usize) {
        if self.first.is_none() {
            self.first = Some(start.elapsed());
        }
        self.messages += 1;
        self.value_bytes += value_len as u64;
        let p = partition as usize;
        if offset + 1 >= self.ends[p] && !self.done[p] {
            self.done[p] = true;
            self.remaining -= 1;
        }
    }

    fn finished(&self) -> bool {
        self.remaining == 0
    }

    fn outcome(self, elapsed: Duration) -> Outcome {
        let expected: i64 = self.ends.iter().sum();
        Outcome {
            delivered: self.messages,
            errors: (expected - self.messages as i64).unsigned_abs(),
            elapsed,
            latencies: Latencies::default(),
            value_bytes: self.value_bytes,
            first: self.first,
        }
    }
}

const DEADLINE: Duration = Duration::from_secs(120);

pub mod ours {
    use super::*;
    use kafka_consumer::{Fetcher, FetcherConfig, PartitionReader, StartOffset};
    use kafka_net::{ClientConfig, KafkaClient};

    /// The default `FetcherConfig`, with experiment overrides from the environment:
    /// BENCH_OURS_SESSIONS=0 (no incremental fetch sessions), BENCH_OURS_CRC=0 (no
    /// checksum verification).
    fn config() -> FetcherConfig {
        let mut config = FetcherConfig::default();
        let off = |name: &str| std::env::var(name).is_ok_and(|v| v == "0");
        if off("BENCH_OURS_SESSIONS") {
            config.sessions = false;
        }
        if off("BENCH_OURS_CRC") {
            config.fetch.verify_crc = false;
        }
        if let Some(n) = std::env::var("BENCH_OURS_MAX_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.max_bytes = n;
        }
        if let Some(n) = std::env::var("BENCH_OURS_PREFETCH")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.prefetch_bytes = n;
        }
        config
    }

    async fn client(broker: &str, topic: &str) -> Result<KafkaClient, BoxError> {
        let client = KafkaClient::connect(&[broker], ClientConfig::default()).await?;
        // Metadata for the topic and the leader known before the clock starts.
        client.leader(topic, 0).await?;
        Ok(client)
    }

    /// `ours`: the default configuration; `ours-lanes2`: two Fetches in flight per
    /// broker (`fetches_per_broker = 2`).
    pub fn fetcher(
        broker: &str,
        topic: &str,
        case: &Case,
        lanes: Option<usize>,
    ) -> Result<Outcome, BoxError> {
        let rt = runtime();
        rt.block_on(async {
            let client = client(broker, topic).await?;
            let mut tally = Tally::new(&case.ends);
            let start = Instant::now();
            let mut config = config();
            if let Some(lanes) = lanes {
                config.fetches_per_broker = lanes;
            }
            let fetcher = Fetcher::new(client, config)?;
            for p in 0..case.partitions {
                fetcher.assign(topic, p, StartOffset::Earliest);
            }
            while !tally.finished() {
                if start.elapsed() > DEADLINE {
                    return Err("ours: not everything read within 120 s".into());
                }
                let batch = fetcher.next_batch().await.ok_or("fetcher closed")??;
                for r in &batch.records {
                    tally.record(
                        start,
                        batch.partition,
                        r.offset,
                        r.value.as_ref().map_or(0, |v| v.len()),
                    );
                }
            }
            let elapsed = start.elapsed();
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                for (broker, m) in kafka_net::Client::broker_metrics(fetcher.client()) {
                    eprintln!(
                        "ours: {broker}: {} requests, {:.1} MB in, mean latency {:?}, max {:?}",
                        m.requests,
                        m.bytes_in as f64 / 1e6,
                        m.latency_mean,
                        m.latency_max
                    );
                }
            }
            fetcher.close();
            Ok(tally.outcome(elapsed))
        })
    }

    pub fn reader(broker: &str, topic: &str, case: &Case) -> Result<Outcome, BoxError> {
        let rt = runtime();
        rt.block_on(async {
            let first = client(broker, topic).await?;
            let mut clients = vec![first.clone()];
            for _ in 1..case.partitions {
                clients.push(first.fork().await?);
            }
            let start = Instant::now();
            let mut tasks = Vec::new();
            for (p, client) in clients.into_iter().enumerate() {
                let p = p as i32;
                let end = case.ends[p as usize];
                let topic = topic.to_string();
                tasks.push(tokio::spawn(async move {
                    let reader =
                        PartitionReader::new(client, topic, p, StartOffset::Earliest, config())?;
                    let mut tally = Tally::new(&[end]);
                    while !tally.finished() {
                        if start.elapsed() > DEADLINE {
                            return Err::<_, BoxError>(
                                "ours-reader: not everything read within 120 s".into(),
                            );
                        }
                        let m = reader.read_message().await?;
                        tally.record(start, 0, m.offset, m.value.as_ref().map_or(0, |v| v.len()));
                    }
                    reader.close();
                    Ok(tally)
                }));
            }
            let mut total = Tally::new(&case.ends);
            for t in tasks {
                let t = t.await??;
                total.messages += t.messages;
                total.value_bytes += t.value_bytes;
                total.first = match (total.first, t.first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(total.outcome(start.elapsed()))
        })
    }
}

pub mod rdk {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientContext, Offset, TopicPartitionList};

    /// Prints librdkafka's log lines (seen with BENCH_RDKAFKA_CONSUMER=debug=fetch).
    struct Ctx;

    impl ClientContext for Ctx {
        fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
            eprintln!("rdkafka {level:?} {fac}: {message}");
        }
    }

    impl rdkafka::consumer::ConsumerContext for Ctx {}

    pub fn run(
        broker: &str,
        topic: &str,
        case: &Case,
        nobackoff: bool,
    ) -> Result<Outcome, BoxError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker)
            .set("group.id", format!("{topic}-rdkafka"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        // `rdkafka-nobackoff`: librdkafka 2.x postpones a partition's next fetch by
        // `fetch.queue.backoff.ms` (1000 ms) whenever its fetch queue is over
        // `queued.min.messages` (100,000); Tansu fills a Fetch response with several MB
        // of one partition whatever `max.partition.fetch.bytes` says (tens of thousands
        // of 100 B messages, more with lz4), so one or two responses trip it.
        if nobackoff {
            config.set("fetch.queue.backoff.ms", "0");
        }
        // Extra settings for experiments: BENCH_RDKAFKA_CONSUMER="key=value,key=value".
        if let Ok(extra) = std::env::var("BENCH_RDKAFKA_CONSUMER") {
            for kv in extra.split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or("BENCH_RDKAFKA_CONSUMER: key=value")?;
                config.set(k, v);
                if k == "debug" {
                    config.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
                }
            }
        }
        let consumer: BaseConsumer<Ctx> = config.create_with_context(Ctx)?;
        // Connection and metadata before the clock starts.
        consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let mut tally = Tally::new(&case.ends);
        let start = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for p in 0..case.partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        while !tally.finished() {
            if start.elapsed() > DEADLINE {
                return Err("rdkafka: not everything read within 120 s".into());
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => tally.record(
                    start,
                    m.partition(),
                    m.offset(),
                    m.payload().map_or(0, |v| v.len()),
                ),
                Some(Err(e)) => return Err(format!("rdkafka poll: {e}").into()),
                None => {}
            }
        }
        Ok(tally.outcome(start.elapsed()))
    }
}

pub mod rsk {
    use super::*;
    use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
    use rskafka::client::ClientBuilder;
    use std::sync::Arc;

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
            let start = Instant::now();
            let mut tasks = Vec::new();
            for (p, pc) in partitions.into_iter().enumerate() {
                let end = case.ends[p];
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::new(&[end]);
                    let mut offset = pc.get_offset(OffsetAt::Earliest).await?;
                    while !tally.finished() {
                        if start.elapsed() > DEADLINE {
                            return Err::<_, BoxError>(
                                "rskafka: not everything read within 120 s".into(),
                            );
                        }
                        let (records, _hw) = pc.fetch_records(offset, 1..1 << 20, 500).await?;
                        for r in records {
                            offset = r.offset + 1;
                            tally.record(
                                start,
                                0,
                                r.offset,
                                r.record.value.as_ref().map_or(0, |v| v.len()),
                            );
                        }
                    }
                    Ok(tally)
                }));
            }
            let mut total = Tally::new(&case.ends);
            for t in tasks {
                let t = t.await??;
                total.messages += t.messages;
                total.value_bytes += t.value_bytes;
                total.first = match (total.first, t.first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(total.outcome(start.elapsed()))
        })
    }
}
