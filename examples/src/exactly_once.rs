//! Exactly once: a worker reads a topic in a consumer group, transforms each record,
//! writes the result to another topic and commits the input offsets in the same
//! transaction (consume-transform-produce, as Kafka Streams and the Java client's
//! exactly-once examples do), so each input shows up in the output exactly once to a
//! read_committed reader, however the worker fails.
//!
//! To show it, the example runs the worker three times with the same transactional id
//! and group:
//! 1. the first commits a few transactions, then aborts one on purpose (its records
//!    and offsets are dropped) and stops;
//! 2. the second starts from the committed offsets, commits a few transactions, then
//!    dies in the middle of one (records sent, offsets sent, no commit);
//! 3. the third fences the second (`init_transactions` with the same transactional
//!    id aborts what it left open) and runs to the end of the input.
//!
//! Run with `cargo run --example exactly_once` (against `KAFKA_BOOTSTRAP`, or an
//! embedded fake cluster when it is not set).

use crate::{Env, Result};
use kafka_consumer::fetch::fetch_partition;
use kafka_consumer::{FetchOptions, Isolation, StartOffset};
use kafka_group::{GroupConfig, GroupConsumer, Topics};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use std::collections::BTreeMap;
use std::time::Duration;

/// Input records.
pub const RECORDS: usize = 90;
/// Partitions of the input and output topics.
pub const PARTITIONS: i32 = 3;
/// Records per transaction.
const PER_TRANSACTION: usize = 10;

/// What the example did, for its test.
#[derive(Debug, Clone)]
pub struct Report {
    /// The output values a read_committed reader sees, sorted.
    pub output: Vec<String>,
    /// Transactions committed, over the three workers.
    pub committed: usize,
    /// Transactions aborted on purpose or left open by the worker that died.
    pub aborted: usize,
}

/// How a worker ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Commit this many transactions, then abort the next one and stop.
    AbortAfter(usize),
    /// Commit this many transactions, then die inside the next one.
    DieAfter(usize),
    /// Run until the input is done.
    ToTheEnd,
}

/// The transformed value of an input value.
pub fn transform(input: &str) -> String {
    format!("{input} -> {}", input.len())
}

/// Runs the example; returns what a read_committed reader finds in the output.
pub async fn run(env: &Env) -> Result<Report> {
    let input = env.create_topic("eos-input", PARTITIONS).await?;
    let output = env.create_topic("eos-output", PARTITIONS).await?;
    let producer = BufferedProducer::new(
        env.client().clone(),
        ProducerConfig::default().with_topic(&input),
    )?;
    let values: Vec<String> = (0..RECORDS).map(|i| format!("record {i}")).collect();
    // Where each input partition ends: the workers are done when their committed
    // offsets reach it.
    let mut ends = BTreeMap::new();
    for r in producer
        .send_all(values.iter().map(|v| ProducerRecord::new(v.clone())))
        .await
    {
        let m = r?;
        ends.insert(m.partition, m.offset + 1);
    }
    producer.close().await;
    println!("wrote {RECORDS} records to {input}");

    let group = crate::unique("eos-group");
    let transactional_id = crate::unique("eos-worker");
    let mut report = Report {
        output: Vec::new(),
        committed: 0,
        aborted: 0,
    };
    let mut done = Progress {
        ends,
        committed: BTreeMap::new(),
    };
    for (n, plan) in [Plan::AbortAfter(2), Plan::DieAfter(2), Plan::ToTheEnd]
        .into_iter()
        .enumerate()
    {
        let ids = (group.as_str(), transactional_id.as_str());
        let (committed, aborted) = worker(env, &input, &output, ids, plan, &mut done).await?;
        println!(
            "worker {}: {committed} transactions committed, {aborted} aborted ({plan:?})",
            n + 1
        );
        report.committed += committed;

        report.aborted += aborted;
    }

    for p in 0..PARTITIONS {
        report.output.extend(read_committed(env, &output, p).await?);
    }
    report.output.sort();
    println!(
        "a read_committed reader finds {} records in {output} ({} inputs)",
        report.output.len(),
        RECORDS
    );
    Ok(report)
}

/// How far the committed transactions got, against where the input ends.
struct Progress {
    ends: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
}

impl Progress {
    fn finished(&self) -> bool {
        self.ends
            .iter()
            .all(|(p, end)| self.committed.get(p).is_some_and(|c| c >= end))
    }
}

/// One worker: a transactional producer (initialized first, so that it fences the
/// previous worker before the group hands out offsets its open transaction holds),
/// and a read_committed group member that commits nothing itself.
async fn worker(
    env: &Env,
    input: &str,
    output: &str,
    (group, transactional_id): (&str, &str),
    plan: Plan,
    progress: &mut Progress,
) -> Result<(usize, usize)> {
    let producer = BufferedProducer::new(
        env.client().clone(),
        ProducerConfig::default()
            .with_topic(output)
            .with_transactional_id(transactional_id),
    )?;
    producer.init_transactions().await?;

    let mut config = GroupConfig::new(group);
    config.auto_commit = false;
    config.start = StartOffset::Earliest;
    config.fetcher.fetch.isolation = Isolation::ReadCommitted;
    // Short timeouts, so that the restarted worker's group settles in seconds.
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(500);
    config.max_poll_interval = Duration::from_secs(30);
    let consumer = GroupConsumer::subscribe(
        env.client().clone(),
        Topics::Names(vec![input.into()]),
        config,
    )
    .await?;

    let (mut committed, mut aborted) = (0, 0);
    while !progress.finished() {
        let batch = next_batch(&consumer).await?;
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction()?;
        let mut offsets = BTreeMap::new();
        for m in &batch {
            let value = String::from_utf8_lossy(m.value.as_deref().unwrap_or_default());
            let record = ProducerRecord::new(transform(&value)).at_partition(m.partition);
            // The delivery is checked by the commit, which fails if any record did.
            drop(producer.send(record).await?);
            offsets.insert((m.topic.to_string(), m.partition), m.offset + 1);
        }
        producer
            .send_offsets_to_transaction(&offsets, &consumer.group_metadata())
            .await?;
        match plan {
            Plan::AbortAfter(n) if committed == n => {
                producer.abort_transaction().await?;
                aborted += 1;
                break;
            }
            Plan::DieAfter(n) if committed == n => {
                // Records and offsets are at the brokers; the transaction stays open
                // until the next worker's init_transactions aborts it.
                producer.flush().await;
                aborted += 1;
                break;
            }
            _ => {
                producer.commit_transaction().await?;
                committed += 1;
                for ((_, p), o) in offsets {
                    progress.committed.insert(p, o);
                }
            }
        }
    }
    consumer.close().await?;
    if plan != Plan::DieAfter(committed) {
        producer.close().await;
    }
    Ok((committed, aborted))
}

/// Up to [`PER_TRANSACTION`] messages, fewer when no more come for 200 ms.
async fn next_batch(consumer: &GroupConsumer) -> Result<Vec<kafka_consumer::Message>> {
    let mut batch = Vec::new();
    while batch.len() < PER_TRANSACTION {
        match tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
            Ok(Some(m)) => batch.push(m?),
            Ok(None) => return Err("the group consumer stopped".into()),
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// The values of a partition a read_committed reader sees.
async fn read_committed(env: &Env, topic: &str, partition: i32) -> Result<Vec<String>> {
    let mut options = FetchOptions::default();
    options.isolation = Isolation::ReadCommitted;
    options.max_wait = Duration::from_millis(50);
    let (mut offset, mut out) = (0, Vec::new());
    loop {
        let f = fetch_partition(env.client(), topic, partition, offset, &options).await?;
        out.extend(
            f.records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()),
        );
        if f.next_offset >= f.high_watermark || f.next_offset == offset {
            return Ok(out);
        }
        offset = f.next_offset;
    }
}
