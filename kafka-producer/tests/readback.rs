//! Read-back: what `BufferedProducer` writes, an independent client reads correctly.
//!
//! For each codec (none, gzip, snappy, lz4, zstd) the producer writes 200 records, each
//! with a key, a value (up to 8 KB), two headers (one empty) and an explicit create time, to a
//! 3-partition topic; then librdkafka (the confluent-kafka package, driven by
//! `tests/python/consume.py`) consumes the topic from the earliest offset and checks
//! every field, that each record comes back once, and that each partition's offsets
//! are consecutive from 0 and in send order. The script prints where it found each
//! record, and that must match the producer's delivery reports.
//!
//! The `*_on_fake` tests run against the in-process fake cluster (kafka-test); the
//! `*_on_named_cluster` tests run against the cluster named by `KAFKA_BOOTSTRAP` and
//! pass without doing anything when it is not set. `retries_in_the_way_on_fake` drops
//! connections and answers NOT_ENOUGH_REPLICAS on Produce, and librdkafka must still
//! read every record exactly once, in order.
//!
//! The test command installs confluent-kafka; `PYTHON` names the interpreter (default
//! `python3`).

#![allow(clippy::unwrap_used)]

use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord, RecordMetadata};
use kafka_protocol::compression::Compression;
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// Records per topic.
const N: usize = 200;
/// Partitions per topic.
const PARTITIONS: i32 = 3;
/// Create time of record 0; record i has `BASE_TS + i`.
const BASE_TS: i64 = 1_700_000_000_000;
/// The producer sends the records in this many flushed chunks, so each partition
/// gets several batches.
const CHUNKS: usize = 4;

/// Where a record landed: (partition, offset), by record index.
type Placement = BTreeMap<usize, (i32, i64)>;

fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// Record i's value: its name, then dashes, up to 8 KB (so a batch spans several of
/// the producer's chunks and, compressed with LZ4, several blocks).
fn value(codec: Compression, i: usize) -> String {
    let pad = "-".repeat((i * 7919) % 8000);
    format!("v-{}-{i}{pad}", codec_name(codec))
}

fn record(codec: Compression, i: usize) -> ProducerRecord {
    ProducerRecord::new(value(codec, i))
        .with_key(format!("k-{i}"))
        .with_header("h1", i.to_string())
        .with_header("h2", bytes::Bytes::new())
        .with_timestamp(BASE_TS + i as i64)
}

async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("the test timed out")
}

async fn connect(bootstrap: &str) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(10);
    KafkaClient::connect(&[bootstrap], config)
        .await
        .unwrap_or_else(|e| panic!("connect to {bootstrap}: {e}"))
}

async fn fake() -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
        .await
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Writes the N records of `codec` to `topic` with a `BufferedProducer` (idempotent,
/// the default) and returns its delivery reports.
async fn produce(client: KafkaClient, topic: &str, codec: Compression) -> Placement {
    let mut config = ProducerConfig::default()
        .with_topic(topic)
        .with_compression(codec);
    config.retry_backoff = Duration::from_millis(20);
    config.delivery_timeout = Duration::from_secs(30);
    let producer = BufferedProducer::new(client, config).unwrap();
    let mut deliveries = Vec::with_capacity(N);
    for chunk in 0..CHUNKS {
        for i in chunk * N / CHUNKS..(chunk + 1) * N / CHUNKS {
            deliveries.push(producer.send(record(codec, i)).await.unwrap());
        }
        producer.flush().await;
    }
    let mut placed = Placement::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let meta: RecordMetadata = delivery
            .await
            .unwrap_or_else(|e| panic!("record {i} to {topic} not delivered: {e}"));
        assert_eq!(&*meta.topic, topic);
        placed.insert(i, (meta.partition, meta.offset));
    }
    producer.close().await;
    placed
}

/// librdkafka's reading of `topic`: runs `consume.py` and returns where it found each
/// record; panics with the script's report when anything differs.
async fn read_back(bootstrap: &str, topic: &str, codec: Compression) -> Placement {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/consume.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(&python)
        .arg(script)
        .arg(bootstrap)
        .arg(topic)
        .arg(codec_name(codec))
        .arg(N.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{python} runs: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("consume.py finishes within 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "librdkafka read {topic} ({}) differently from what was produced:\n{}",
        codec_name(codec),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 3, "consume.py printed {line:?}");
            (
                f[0].parse().unwrap(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect()
}

/// Produces `codec`'s records to `topic` on `bootstrap` and has librdkafka read them.
async fn produce_and_read_back(bootstrap: &str, topic: &str, codec: Compression) {
    let produced = produce(connect(bootstrap).await, topic, codec).await;
    let read = read_back(bootstrap, topic, codec).await;
    assert_eq!(read.len(), N);
    let differ: Vec<_> = produced
        .iter()
        .filter(|(i, at)| read.get(i) != Some(at))
        .map(|(i, at)| format!("record {i}: delivered at {at:?}, read at {:?}", read.get(i)))
        .take(10)
        .collect();
    assert!(
        differ.is_empty(),
        "delivery reports and librdkafka disagree:\n{}",
        differ.join("\n")
    );
}

async fn on_fake(codec: Compression) {
    within(Duration::from_secs(150), async {
        let cluster = fake().await;
        let topic = format!("readback-{}", codec_name(codec));
        assert!(cluster.create_topic(&topic, PARTITIONS));
        produce_and_read_back(&cluster.bootstrap(), &topic, codec).await;
        let stored: usize = (0..PARTITIONS)
            .map(|p| cluster.records(&topic, p).len())
            .sum();
        assert_eq!(stored, N, "the fake stored each record once");
    })
    .await
}

async fn on_named_cluster(codec: Compression) {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        eprintln!("KAFKA_BOOTSTRAP is not set: no named cluster to read back from");
        return;
    };
    within(Duration::from_secs(150), async {
        let topic = unique(&format!("readback-{}", codec_name(codec)));
        let admin = connect(&bootstrap).await;
        admin
            .create_topics(vec![NewTopic::new(&topic, PARTITIONS)])
            .await
            .unwrap_or_else(|e| panic!("create {topic} on {bootstrap}: {e}"));
        admin.close().await;
        produce_and_read_back(&bootstrap, &topic, codec).await;
    })
    .await
}

macro_rules! readback_tests {
    ($($codec:ident => $fake:ident, $named:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $fake() {
            on_fake(Compression::$codec).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $named() {
            on_named_cluster(Compression::$codec).await;
        }
    )*};
}

readback_tests! {
    None => uncompressed_on_fake, uncompressed_on_named_cluster;
    Gzip => gzip_on_fake, gzip_on_named_cluster;
    Snappy => snappy_on_fake, snappy_on_named_cluster;
    Lz4 => lz4_on_fake, lz4_on_named_cluster;
    Zstd => zstd_on_fake, zstd_on_named_cluster;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_in_the_way_on_fake() {
    within(Duration::from_secs(150), async {
        let cluster = fake().await;
        let topic = "readback-retries";
        assert!(cluster.create_topic(topic, PARTITIONS));
        // Faults fire in the order injected: two NOT_ENOUGH_REPLICAS answers, then
        // three Produce requests whose connection closes without an answer.
        cluster.inject(
            Fault::new(
                ApiKey::Produce,
                FaultAction::Error(ErrorCode::NotEnoughReplicas),
            )
            .times(Times::N(2)),
        );
        cluster.inject(Fault::new(ApiKey::Produce, FaultAction::DropConnection).times(Times::N(3)));
        let client = connect(&cluster.bootstrap()).await;
        let produced = produce(client.clone(), topic, Compression::Lz4).await;
        // The drops fired (so the errors before them did): the client saw requests fail.
        let failed: u64 = client.broker_metrics().values().map(|m| m.errors).sum();
        assert!(
            failed >= 3,
            "the dropped connections failed {failed} requests"
        );
        let stored: usize = (0..PARTITIONS)
            .map(|p| cluster.records(topic, p).len())
            .sum();
        assert_eq!(stored, N, "the fake stored each record once");
        let read = read_back(&cluster.bootstrap(), topic, Compression::Lz4).await;
        assert_eq!(read, produced, "delivery reports and librdkafka disagree");
    })
    .await
}
