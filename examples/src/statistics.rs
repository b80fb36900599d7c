//! Statistics: a buffered producer writes a few records, then its snapshot (its
//! brokers' requests, bytes and round-trip times, each partition's queue, batches
//! and retries) is printed as JSON, once on demand and once from the periodic stream
//! (librdkafka's `statistics.interval.ms`).
//!
//! Run with `cargo run --example statistics`.

use crate::{Env, Result};
use futures::StreamExt;
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use std::time::Duration;

/// Records the example writes.
pub const RECORDS: usize = 20;

/// Partitions of the example's topic.
pub const PARTITIONS: i32 = 2;

/// Writes [`RECORDS`] records and prints the producer's statistics as JSON; returns
/// the snapshot taken after the flush, as JSON.
pub async fn run(env: &Env) -> Result<serde_json::Value> {
    let topic = env.create_topic("statistics", PARTITIONS).await?;
    let producer = BufferedProducer::new(
        env.client().clone(),
        ProducerConfig::default().with_topic(&topic),
    )?;

    // A snapshot every 100 ms; the stream ends when the producer closes.
    let mut every = producer.statistics_every(Duration::from_millis(100));

    for i in 0..RECORDS {
        let partition = i as i32 % PARTITIONS;
        producer
            .send(ProducerRecord::new(format!("record {i}")).at_partition(partition))
            .await?;
    }
    producer.flush().await;

    // On demand: the whole snapshot as JSON, as librdkafka's stats callback gets it.
    let snapshot = serde_json::to_value(producer.statistics())?;
    println!("{}", serde_json::to_string_pretty(&snapshot)?);

    // The periodic stream: print a line per broker from the next snapshot.
    if let Some(next) = every.next().await {
        for (addr, b) in &next.client.brokers {
            println!(
                "broker {} ({addr}): {} requests, {} bytes out, rtt p50 {} µs p99 {} µs",
                b.node_id, b.requests, b.bytes_out, b.rtt.p50_us, b.rtt.p99_us
            );
        }
    }
    producer.close().await;
    Ok(snapshot)
}
