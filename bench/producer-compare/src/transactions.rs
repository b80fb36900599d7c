//! Transactional throughput (`--only transactions`): ours and librdkafka's
//! transactional producers write `messages` records in transactions of
//! `commit_every` records each (begin, send them all, commit, which waits for every
//! ack and the EndTxn answer), one transaction after the other. rskafka has no
//! transactions: its column says n/a.
//!
//! Cells: 100 B values, no compression, 1 and 8 partitions (round robin), commits
//! every 100 and every 10,000 records; 200,000 records per run (a tenth with
//! `--quick`). The elapsed time runs from the first `begin` to the last commit's
//! answer.

use super::*;

/// The transaction cells.
pub fn cases(quick: bool) -> Vec<Case> {
    let mut out = Vec::new();
    for commit_every in [100u64, 10_000] {
        for partitions in [1, 8] {
            out.push(Case {
                mode: Mode::Transactions,
                size: 100,
                acks: AcksMode::AllIdempotent,
                compression: Comp::None,
                partitions,
                messages: if quick { 20_000 } else { 200_000 },
                rate: 0,
                secs: 0.0,
                ends: Vec::new(),
                commit_every,
            });
        }
    }
    out
}

fn transactional_id(topic: &str) -> String {
    format!("{topic}-txn")
}

/// Ours: `BufferedProducer` with `transactional_id`; each transaction's delivery
/// futures are dropped (the commit fails if any record did).
pub fn ours(broker: &str, topic: &str, case: &Case) -> Result<Outcome, BoxError> {
    use kafka_net::{ClientConfig, KafkaClient};
    use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
    runtime().block_on(async {
        let client = KafkaClient::connect(&[broker], ClientConfig::default()).await?;
        let config = ProducerConfig::default()
            .with_topic(topic)
            .with_linger(LINGER)
            .with_transactional_id(transactional_id(topic));
        let producer = BufferedProducer::new(client, config)?;
        producer.init_transactions().await?;
        // Warm up: connections, metadata, the partitions' first AddPartitionsToTxn.
        producer.begin_transaction()?;
        for p in 0..case.partitions {
            drop(
                producer
                    .send(ProducerRecord::new("warm-up").at_partition(p))
                    .await?,
            );
        }
        producer.commit_transaction().await?;
        let values = make_values(case.size);
        let (mut delivered, mut errors) = (0, 0);
        let start = Instant::now();
        let mut i = 0u64;
        while i < case.messages {
            producer.begin_transaction()?;
            let n = case.commit_every.min(case.messages - i);
            for _ in 0..n {
                let record = ProducerRecord::new(values[i as usize % values.len()].clone())
                    .at_partition((i % case.partitions as u64) as i32);
                drop(producer.send(record).await?);
                i += 1;
            }
            match producer.commit_transaction().await {
                Ok(()) => delivered += n,
                Err(e) => {
                    eprintln!("ours: commit failed: {e}");
                    errors += n;
                    producer.abort_transaction().await?;
                }
            }
        }
        let elapsed = start.elapsed();
        producer.close().await;
        Ok(Outcome {
            delivered,
            errors,
            elapsed,
            latencies: Latencies::default(),
            value_bytes: 0,
            first: None,
        })
    })
}

/// librdkafka: a `BaseProducer` with `transactional.id`; `commit_transaction` flushes
/// and polls (delivery reports are not asked for).
pub fn rdkafka(broker: &str, topic: &str, case: &Case) -> Result<Outcome, BoxError> {
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let timeout = Duration::from_secs(60);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("linger.ms", LINGER.as_millis().to_string())
        .set("transactional.id", transactional_id(topic))
        .set("compression.codec", "none")
        .create()?;
    producer.init_transactions(timeout)?;
    let send = |value: &[u8], partition: i32| loop {
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(value)
            .partition(partition);
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    };
    producer.begin_transaction()?;
    for p in 0..case.partitions {
        send(b"warm-up", p)?;
    }
    producer.commit_transaction(timeout)?;
    let values = make_values(case.size);
    let (mut delivered, mut errors) = (0, 0);
    let start = Instant::now();
    let mut i = 0u64;
    while i < case.messages {
        producer.begin_transaction()?;
        let n = case.commit_every.min(case.messages - i);
        for _ in 0..n {
            send(
                &values[i as usize % values.len()],
                (i % case.partitions as u64) as i32,
            )?;
            i += 1;
            if i.is_multiple_of(1000) {
                producer.poll(Duration::ZERO);
            }
        }
        match producer.commit_transaction(timeout) {
            Ok(()) => delivered += n,
            Err(e) => {
                eprintln!("rdkafka: commit failed: {e}");
                errors += n;
                producer.abort_transaction(timeout)?;
            }
        }
    }
    Ok(Outcome {
        delivered,
        errors,
        elapsed: start.elapsed(),
        latencies: Latencies::default(),
        value_bytes: 0,
        first: None,
    })
}

/// The transactions table (all clients of the run; rskafka n/a).
pub fn print_table(clients: &[String], results: &[(Case, Vec<Option<RunResult>>)]) {
    let rows: Vec<_> = results
        .iter()
        .filter(|(c, _)| c.mode == Mode::Transactions)
        .collect();
    if rows.is_empty() {
        return;
    }
    println!(
        "\nTransactions: msg/s committed; CPU = client user+sys s per million messages; RSS = \
         client peak MiB; broker CPU s per million in client order ({}). rskafka has no \
         transactions.\n",
        clients.join(" / ")
    );
    let mut head = "| value | commit every | compr. | parts |".to_string();
    let mut rule = "|---|---:|---|---:|".to_string();
    for c in clients {
        head += &format!(" {c} msg/s | CPU | RSS |");
        rule += "---:|---:|---:|";
    }
    head += " broker CPU |";
    rule += "---:|";
    println!("{head}\n{rule}");
    let na = "n/a";
    for (case, row) in rows {
        let mut line = format!(
            "| {} B | {} | none | {} |",
            case.size, case.commit_every, case.partitions
        );
        let mut broker = Vec::new();
        for r in row {
            match r {
                Some(r) => {
                    line += &format!(
                        " {:.0}k | {:.2} | {} |",
                        r.msgs_per_s() / 1e3,
                        r.cpu_per_million(),
                        r.max_rss_kib / 1024
                    );
                    broker.push(
                        r.broker_cpu_per_million()
                            .map_or(na.to_string(), |c| format!("{c:.1}")),
                    );
                }
                None => {
                    line += &format!(" {na} | {na} | {na} |");
                    broker.push(na.to_string());
                }
            }
        }
        line += &format!(" {} |", broker.join(" / "));
        println!("{line}");
    }
}
