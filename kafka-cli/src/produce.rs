//! `kafka produce`: lines of stdin to a topic.

use crate::progress::Progress;
use crate::{Failure, Globals, Outcome, FAILED, USAGE};
use clap::Args;
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_protocol::compression::Compression;
use std::io::BufRead;

/// Options of `kafka produce`.
#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// The topic.
    topic: String,
    /// Split each line at the first SEP into key and value (kcat's -K).
    #[arg(short = 'K', long, value_name = "SEP")]
    key_delimiter: Option<String>,
    /// Send every record to this partition.
    #[arg(short, long)]
    partition: Option<i32>,
    /// How keys pick a partition: murmur2 (Java's), consistent_random (librdkafka's),
    /// consistent, random, round_robin, fnv1a, uniform_sticky, ...
    #[arg(long, default_value = "murmur2")]
    partitioner: String,
    /// Compression: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, default_value = "none")]
    compression: String,
}

fn compression(name: &str) -> Result<Compression, Failure> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(Failure::new(
                USAGE,
                format!("--compression {other}: give none, gzip, snappy, lz4 or zstd"),
            ))
        }
    })
}

pub(crate) async fn run(g: &Globals, a: ProduceArgs) -> Outcome {
    let compression = compression(&a.compression)?;
    let partitioner = kafka_producer::partitioner::by_name(&a.partitioner).ok_or_else(|| {
        Failure::new(
            USAGE,
            format!("--partitioner {}: unknown partitioner", a.partitioner),
        )
    })?;
    if a.key_delimiter.as_deref() == Some("") {
        return Err(Failure::new(USAGE, "--key-delimiter must not be empty"));
    }
    let admin = g.admin().await?;
    let described = admin.describe_topics(&[&a.topic]).await;
    let partitions = match described.get(&a.topic) {
        Some(Ok(d)) => d.partitions.len() as i32,
        Some(Err(e)) if e.code() == Some(kafka_protocol::ErrorCode::UnknownTopicOrPartition) => {
            return Err(Failure::new(
                FAILED,
                format!("topic {} does not exist", a.topic),
            ))
        }
        Some(Err(e)) => return Err(Failure::cluster(e)),
        None => {
            return Err(Failure::new(
                FAILED,
                format!("topic {} was not described", a.topic),
            ))
        }
    };
    if let Some(p) = a.partition {
        if !(0..partitions).contains(&p) {
            return Err(Failure::new(
                FAILED,
                format!(
                    "topic {} has {partitions} partition(s), no partition {p}",
                    a.topic
                ),
            ));
        }
    }
    let config = ProducerConfig::default()
        .with_topic(&a.topic)
        .with_compression(compression)
        .with_partitioner(partitioner);
    let producer = BufferedProducer::new(admin.client().clone(), config)
        .map_err(|e| Failure::new(USAGE, e.to_string()))?;
    let mut progress = Progress::new("produced");
    let mut pending = Vec::new();
    let mut failed = 0u64;
    let mut first_error = None;
    let stdin = std::io::stdin();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| Failure::new(FAILED, format!("stdin line {}: {e}", n + 1)))?;
        let mut record = match &a.key_delimiter {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => ProducerRecord::new(v.to_string()).with_key(k.to_string()),
                None => {
                    return Err(Failure::new(
                        FAILED,
                        format!("stdin line {}: no key delimiter {sep:?}", n + 1),
                    ))
                }
            },
            None => ProducerRecord::new(line),
        };
        if let Some(p) = a.partition {
            record = record.at_partition(p);
        }
        let size = record.size_estimate();
        let delivery = producer
            .send(record)
            .await
            .map_err(|e| Failure::new(FAILED, format!("stdin line {}: {e}", n + 1)))?;
        pending.push(delivery);
        progress.add(size);
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                if let Err(e) = d.await {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
    }
    for d in pending {
        if let Err(e) = d.await {
            failed += 1;
            first_error.get_or_insert(e.to_string());
        }
    }
    producer.close().await;
    progress.finish(&format!("to {}", a.topic));
    match first_error {
        None => Ok(()),
        Some(e) => Err(Failure::new(
            FAILED,
            format!(
                "{failed} of {} records were not delivered; the first: {e}",
                progress.count()
            ),
        )),
    }
}
