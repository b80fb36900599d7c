//! The simple consumer: reads one partition from a given offset, one message per
//! `consume()`, until it runs out of data ([`ConsumeErrorKind::NoData`] after
//! `retry_limit` empty fetches in a row).
//!
//! Run with `cargo run --example consume_partition`.
//!
//! [`ConsumeErrorKind::NoData`]: kafka_consumer::ConsumeErrorKind::NoData

use crate::{show, Env, Result};
use kafka_consumer::{Consumer, ConsumerConfig, SimpleConsumer, StartOffset};
use kafka_producer::{Message, Producer, SimpleProducer, SimpleProducerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Records written.
pub const RECORDS: i64 = 5;

/// Records skipped: the consumer starts this far into what was written.
pub const SKIP: i64 = 2;

/// Writes [`RECORDS`] records and consumes them from the [`SKIP`]th on; returns the
/// offsets consumed.
pub async fn run(env: &Env) -> Result<Vec<i64>> {
    let topic = env.create_topic("consume-partition", 1).await?;
    let producer = SimpleProducer::new(
        Arc::new(env.client().clone()),
        SimpleProducerConfig::default(),
    )?;
    let records = (0..RECORDS)
        .map(|i| Message::new(format!("event {i}")))
        .collect();
    let first = producer.produce(&topic, 0, records).await?;
    println!("wrote {RECORDS} records to {topic}/0 from offset {first}");

    let mut config = ConsumerConfig::new(&topic, 0);
    config.start_offset = StartOffset::Offset(first + SKIP);
    // Give up after 3 empty fetches in a row instead of waiting for data forever...
    config.retry_limit = Some(3);
    // ...each of which the broker holds for at most 100 ms.
    config.max_wait = Duration::from_millis(100);
    let consumer = SimpleConsumer::new(env.client().clone(), config)?;
    println!("consuming {topic}/0 from offset {}", first + SKIP);

    let mut offsets = Vec::new();
    loop {
        match consumer.consume().await {
            Ok(m) => {
                println!("consumed offset {}: {}", m.offset, show(m.value.as_deref()));
                offsets.push(m.offset);
            }
            // Not a failure: the partition has nothing more for now.
            Err(e) if e.is_no_data() => {
                println!("stopped: {e}");
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    consumer.close().await;
    Ok(offsets)
}
