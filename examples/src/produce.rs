//! The simple producers: [`SimpleProducer`] (one request to the partition you name),
//! [`DistributingProducer`] (the partition picked from the key) and [`produce_many`]
//! (many partitions at once, one summary); and the batching [`BufferedProducer`] with
//! a delivery callback per record (the quickstart shows it with delivery futures).
//!
//! Run with `cargo run --example produce`.

use crate::{Env, Result};
use kafka_net::Client;
use kafka_producer::partitioner::Murmur2;
use kafka_producer::{
    produce_many, BufferedProducer, DistributingProducer, Envelope, Message, Producer,
    ProducerConfig, ProducerRecord, SimpleProducer, SimpleProducerConfig,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Partitions of the example's topic.
pub const PARTITIONS: i32 = 3;

/// Records the buffered producer sends with callbacks.
pub const WITH_CALLBACKS: i32 = 3;

/// Produces to a new topic in the four ways; returns how many records the topic
/// holds afterwards (the sum of its partitions' end offsets).
pub async fn run(env: &Env) -> Result<i64> {
    let topic = env.create_topic("produce", PARTITIONS).await?;
    println!("created topic {topic} ({PARTITIONS} partitions)");

    // The simple producers work over any `Client` (so a mock can stand in for tests).
    let client: Arc<dyn Client> = Arc::new(env.client().clone());
    let producer = SimpleProducer::new(client.clone(), SimpleProducerConfig::default())?;

    // 1. One Produce request to partition 0; the answer is the first record's offset.
    let records = vec![Message::new("first"), Message::new("second")];
    let offset = producer.produce(&topic, 0, records).await?;
    println!("SimpleProducer: 2 records to {topic}/0 from offset {offset}");

    // 2. The partition picked by the key's murmur2 hash, as the Java client picks it:
    //    the same key always lands on the same partition.
    let distributing =
        DistributingProducer::new(producer.clone(), client, Arc::new(Murmur2::new()));
    for user in ["alice", "bob", "carol"] {
        let records = vec![Message::new(format!("{user} logged in")).with_key(user)];
        let (partition, offset) = distributing.distribute(&topic, records).await?;
        println!("DistributingProducer: key {user:?} -> {topic}/{partition} offset {offset}");
    }

    // 3. The batching producer, reporting each record to a callback (the Java client's
    //    `send(record, callback)`). The callback runs on the producer's task: keep it
    //    short.
    let config = ProducerConfig::default().with_topic(&topic);
    let buffered = BufferedProducer::new(env.client().clone(), config)?;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    for n in 0..WITH_CALLBACKS {
        let acknowledged = acknowledged.clone();
        let record = ProducerRecord::new(format!("buffered record {n}")).with_key("dave");
        buffered
            .send_with_callback(record, move |report| match report {
                Ok(meta) => {
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                    println!(
                        "BufferedProducer callback: record {n} at {}/{} offset {}",
                        meta.topic, meta.partition, meta.offset
                    );
                }
                Err(e) => eprintln!("BufferedProducer callback: record {n} failed: {e}"),
            })
            .await?;
    }
    // close() sends what is queued and waits for every report.
    buffered.close().await;
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    if acknowledged != WITH_CALLBACKS as usize {
        return Err(format!("{acknowledged} of {WITH_CALLBACKS} records acknowledged").into());
    }

    // 4. One envelope per partition, sent in parallel; the summary has the first
    //    offset of every partition that succeeded and the error of every one that did not.
    let envelopes = (0..PARTITIONS)
        .map(|partition| Envelope {
            topic: topic.clone(),
            partition,
            records: vec![Message::new(format!(
                "bulk record for partition {partition}"
            ))],
        })
        .collect();
    let summary = produce_many(&producer, envelopes).await;
    for ((topic, partition), offset) in &summary.offsets {
        println!("produce_many: {topic}/{partition} offset {offset}");
    }
    if !summary.is_ok() {
        return Err(format!("produce_many failed: {:?}", summary.errors).into());
    }

    // What the topic holds now.
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let end = env.client().offset_latest(&topic, partition).await?;
        println!("{topic}/{partition} ends at offset {end}");
        total += end;
    }
    println!("{total} records in all");
    Ok(total)
}
