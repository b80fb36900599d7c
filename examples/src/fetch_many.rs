//! The [`Fetcher`]: many partitions fetched together, one outstanding Fetch per
//! broker for all the partitions it leads, records handed out in batches.
//!
//! Run with `cargo run --example fetch_many`.

use crate::{Env, Result};
use kafka_consumer::{Fetcher, FetcherConfig, StartOffset};
use kafka_producer::{produce_many, Envelope, Message, SimpleProducer, SimpleProducerConfig};
use std::sync::Arc;

/// Partitions of the example's topic.
pub const PARTITIONS: i32 = 4;

/// Records written to each partition.
pub const PER_PARTITION: usize = 3;

/// Writes [`PER_PARTITION`] records to each of [`PARTITIONS`] partitions and fetches
/// them all with one fetcher; returns how many records were fetched.
pub async fn run(env: &Env) -> Result<usize> {
    let topic = env.create_topic("fetch-many", PARTITIONS).await?;
    let producer = SimpleProducer::new(
        Arc::new(env.client().clone()),
        SimpleProducerConfig::default(),
    )?;
    let envelopes = (0..PARTITIONS)
        .map(|partition| Envelope {
            topic: topic.clone(),
            partition,
            records: (0..PER_PARTITION)
                .map(|i| Message::new(format!("p{partition} r{i}")))
                .collect(),
        })
        .collect();
    let summary = produce_many(&producer, envelopes).await;
    if !summary.is_ok() {
        return Err(format!("produce failed: {:?}", summary.errors).into());
    }
    let expected = PARTITIONS as usize * PER_PARTITION;
    println!("wrote {PER_PARTITION} records to each of {PARTITIONS} partitions of {topic}");

    // Assign every partition; the fetcher starts fetching in the background.
    let fetcher = Fetcher::new(env.client().clone(), FetcherConfig::default())?;
    for partition in 0..PARTITIONS {
        fetcher.assign(&topic, partition, StartOffset::Earliest);
    }

    let mut fetched = 0;
    while fetched < expected {
        let batch = match fetcher.next_batch().await {
            Some(batch) => batch?,
            None => return Err("the fetcher closed".into()),
        };
        let (first, last) = match (batch.records.first(), batch.records.last()) {
            (Some(f), Some(l)) => (f.offset, l.offset),
            _ => continue,
        };
        println!(
            "batch {}/{}: {} records, offsets {first}..={last}, high watermark {}",
            batch.topic,
            batch.partition,
            batch.records.len(),
            batch.high_watermark
        );
        fetched += batch.records.len();
    }
    for partition in 0..PARTITIONS {
        let position = fetcher.position(&topic, partition).unwrap_or(-1);
        println!("{topic}/{partition}: position {position}");
    }
    fetcher.close();
    println!("fetched {fetched} records");
    Ok(fetched)
}
