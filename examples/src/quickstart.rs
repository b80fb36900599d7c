//! The quickstart: writes a few records with the [`BufferedProducer`] and reads them
//! back with a [`PartitionReader`].
//!
//! Run with `cargo run --example quickstart` (against `KAFKA_BOOTSTRAP`, or an
//! embedded fake cluster when it is not set).

use crate::{show, Env, Result};
use kafka_consumer::{FetcherConfig, PartitionReader, StartOffset};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};

/// How many records the quickstart writes.
pub const RECORDS: usize = 5;

/// Writes [`RECORDS`] records to a new topic and reads them back; returns the values
/// read, in order.
pub async fn run(env: &Env) -> Result<Vec<String>> {
    let topic = env.create_topic("quickstart", 1).await?;
    println!("created topic {topic} (1 partition)");

    // The buffered producer batches records per partition and sends them in the
    // background; `send` hands back a future of the record's delivery.
    let config = ProducerConfig::default().with_topic(&topic);
    let producer = BufferedProducer::new(env.client().clone(), config)?;
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let record = ProducerRecord::new(format!("hello {i}")).with_key(format!("key-{i}"));
        deliveries.push(producer.send(record).await?);
    }
    let mut first_offset = None;
    for delivery in deliveries {
        let meta = delivery.await?;
        println!(
            "wrote {}/{} offset {}",
            meta.topic, meta.partition, meta.offset
        );
        first_offset.get_or_insert(meta.offset);
    }
    // Flushes whatever is still buffered and stops the producer's tasks.
    producer.close().await;

    // A partition reader fetches in the background from where it is told to start
    // and hands out one message per `read_message`.
    let start = StartOffset::Offset(first_offset.unwrap_or(0));
    let reader = PartitionReader::new(
        env.client().clone(),
        &topic,
        0,
        start,
        FetcherConfig::default(),
    )?;
    let mut values = Vec::new();
    for _ in 0..RECORDS {
        let m = reader.read_message().await?;
        println!(
            "read  {}/{} offset {}: key {} value {}",
            m.topic,
            m.partition,
            m.offset,
            show(m.key.as_deref()),
            show(m.value.as_deref())
        );
        values.push(String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned());
    }
    let stats = reader.stats();
    println!(
        "reader: {} messages, {} bytes, next offset {}",
        stats.messages, stats.bytes, stats.offset
    );
    reader.close();
    Ok(values)
}
