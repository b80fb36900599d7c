//! Offsets stored in Kafka without joining a group: [`OffsetCoordinator`] commits and
//! fetches a group's offsets, and the [`EnvelopeConsumer`] hands out messages that
//! must each be committed (or acknowledged, or cancelled) before the next comes.
//!
//! Run with `cargo run --example store_offsets`.

use crate::{show, unique, Env, Result};
use kafka_consumer::offsets::{EnvelopeConsumer, OffsetCoordinator};
use kafka_consumer::{Consumer, ConsumerConfig, SimpleConsumer, StartOffset};
use kafka_producer::{Message, Producer, SimpleProducer, SimpleProducerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Records written.
pub const RECORDS: i64 = 6;

/// Records marked processed by the first commit.
pub const FIRST_COMMIT: i64 = 3;

/// Writes [`RECORDS`] records, commits [`FIRST_COMMIT`] of them by hand, then resumes
/// from the committed offset with an envelope consumer that commits each message;
/// returns the offset committed in the end.
pub async fn run(env: &Env) -> Result<i64> {
    let topic = env.create_topic("store-offsets", 1).await?;
    let producer = SimpleProducer::new(
        Arc::new(env.client().clone()),
        SimpleProducerConfig::default(),
    )?;
    let records = (0..RECORDS)
        .map(|i| Message::new(format!("task {i}")))
        .collect();
    let first = producer.produce(&topic, 0, records).await?;
    println!("wrote {RECORDS} records to {topic}/0 from offset {first}");

    let group = unique("examples-group");
    let coordinator = OffsetCoordinator::new(env.client().clone(), &group);
    println!(
        "group {group}: committed offset before: {:?}",
        coordinator.fetch(&topic, 0).await?
    );

    // A committed offset is the next one to read: the last processed plus one.
    let done = first + FIRST_COMMIT;
    coordinator
        .commit(&topic, 0, done, Some("first batch done"))
        .await?;
    let (resume, metadata) = coordinator
        .fetch(&topic, 0)
        .await?
        .ok_or("the commit was not stored")?;
    println!("committed offset {resume} with metadata {metadata:?}");

    // Resume where the group left off. Each envelope is committed before the next
    // message is handed out, so a crash loses at most one message's work.
    let mut config = ConsumerConfig::new(&topic, 0);
    config.start_offset = StartOffset::Offset(resume);
    config.retry_limit = Some(3);
    config.max_wait = Duration::from_millis(100);
    let consumer: Arc<dyn Consumer> = Arc::new(SimpleConsumer::new(env.client().clone(), config)?);
    let envelopes = EnvelopeConsumer::new(consumer, coordinator.clone());
    while let Some(next) = envelopes.next().await {
        match next {
            Ok(envelope) => {
                println!(
                    "processing offset {}: {}",
                    envelope.offset,
                    show(envelope.value.as_deref())
                );
                let note = format!("processed up to {}", envelope.offset);
                envelope.commit(&note).await?;
            }
            // Out of data: end the envelope consumer (its `next()` gives `None`).
            Err(e) if e.is_no_data() => envelopes.cancel(),
            Err(e) => return Err(e.into()),
        }
    }

    let (committed, metadata) = coordinator
        .fetch(&topic, 0)
        .await?
        .ok_or("nothing committed")?;
    println!("committed offset now {committed} with metadata {metadata:?}");
    Ok(committed)
}
