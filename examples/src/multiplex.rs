//! [`Mx`]: one simple consumer per partition, merged into one stream that ends when
//! every consumer has run out of data.
//!
//! Run with `cargo run --example multiplex`.

use crate::{show, Env, Result};
use kafka_consumer::{Consumer, ConsumerConfig, Mx, SimpleConsumer, StartOffset};
use kafka_producer::{Message, Producer, SimpleProducer, SimpleProducerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Partitions, one consumer each.
pub const PARTITIONS: i32 = 3;

/// Records written to each partition.
pub const PER_PARTITION: usize = 2;

/// Writes to every partition and reads them all through one [`Mx`]; returns the
/// (partition, offset) of every message, in the order they came.
pub async fn run(env: &Env) -> Result<Vec<(i32, i64)>> {
    let topic = env.create_topic("multiplex", PARTITIONS).await?;
    let producer = SimpleProducer::new(
        Arc::new(env.client().clone()),
        SimpleProducerConfig::default(),
    )?;
    for partition in 0..PARTITIONS {
        let records = (0..PER_PARTITION)
            .map(|i| Message::new(format!("partition {partition} message {i}")))
            .collect();
        producer.produce(&topic, partition, records).await?;
    }
    println!("wrote {PER_PARTITION} records to each of {PARTITIONS} partitions of {topic}");

    // One consumer per partition; each leaves the merge after 3 empty fetches.
    let mut consumers: Vec<Arc<dyn Consumer>> = Vec::new();
    for partition in 0..PARTITIONS {
        let mut config = ConsumerConfig::new(&topic, partition);
        config.start_offset = StartOffset::Earliest;
        config.retry_limit = Some(3);
        config.max_wait = Duration::from_millis(100);
        consumers.push(Arc::new(SimpleConsumer::new(env.client().clone(), config)?));
    }
    let mx = Mx::new(consumers);
    println!("merging {} consumers", mx.workers());

    // Messages of one partition keep their order; partitions interleave.
    let mut seen = Vec::new();
    while let Some(item) = mx.next().await {
        let m = item?;
        println!(
            "{}/{} offset {}: {}",
            m.topic,
            m.partition,
            m.offset,
            show(m.value.as_deref())
        );
        seen.push((m.partition, m.offset));
    }
    println!(
        "every consumer ran out of data: the merged stream ended after {} messages",
        seen.len()
    );
    Ok(seen)
}
