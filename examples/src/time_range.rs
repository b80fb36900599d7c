//! The records between two timestamps: [`PartitionReader::set_offset_at`] moves the
//! reader to the first record at or after the start time, and an offset lookup by
//! time says where the range ends.
//!
//! Run with `cargo run --example time_range`.

use crate::{now_ms, show, Env, Result};
use kafka_consumer::{FetcherConfig, PartitionReader, StartOffset};
use kafka_net::Client;
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};

const MINUTE: i64 = 60_000;

/// Records written, one per minute of the last [`RECORDS`] minutes.
pub const RECORDS: i64 = 10;

/// The range read: from this minute (included)...
pub const FROM_MINUTE: i64 = 3;

/// ...to this one (excluded).
pub const TO_MINUTE: i64 = 7;

/// Writes [`RECORDS`] records stamped a minute apart, then reads those stamped from
/// [`FROM_MINUTE`] to [`TO_MINUTE`]; returns the values read.
pub async fn run(env: &Env) -> Result<Vec<String>> {
    let topic = env.create_topic("time-range", 1).await?;

    // Record i is stamped `base + i minutes` (its create time, set by the producer).
    let base = now_ms() - RECORDS * MINUTE;
    let producer = BufferedProducer::new(
        env.client().clone(),
        ProducerConfig::default().with_topic(&topic),
    )?;
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let record = ProducerRecord::new(format!("minute {i}")).with_timestamp(base + i * MINUTE);
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close().await;
    println!("wrote {RECORDS} records to {topic}/0, stamped a minute apart from {base} ms");

    let (from, to) = (base + FROM_MINUTE * MINUTE, base + TO_MINUTE * MINUTE);
    let reader = PartitionReader::new(
        env.client().clone(),
        &topic,
        0,
        StartOffset::Earliest,
        FetcherConfig::default(),
    )?;
    // The first record at or after `from`...
    let start = reader.set_offset_at(from).await?;
    // ...up to the first record at or after `to` (or the end when there is none).
    let end = match env.client().offsets_for_times(&topic, 0, to).await? {
        Some(found) => found.offset,
        None => env.client().offset_latest(&topic, 0).await?,
    };
    println!("timestamps {from}..{to} are offsets {start}..{end}");

    let mut values = Vec::new();
    while reader.offset() < end {
        let m = reader.read_message().await?;
        println!(
            "offset {} at {} ms (minute {}): {}",
            m.offset,
            m.timestamp,
            (m.timestamp - base) / MINUTE,
            show(m.value.as_deref())
        );
        values.push(String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned());
    }
    if values.is_empty() {
        println!("no records in the range");
    }
    reader.close();
    Ok(values)
}
