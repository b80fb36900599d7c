//! The producers against the in-process fake cluster (the default) or the cluster
//! named by `KAFKA_BOOTSTRAP`; fault tests need the fake and run only there.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{
    produce_many, Acks, BufferedProducer, Envelope, Message, ProduceErrorKind, Producer,
    ProducerConfig, ProducerRecord, SimpleProducer, SimpleProducerConfig,
};
use kafka_protocol::compression::Compression;
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn fake(brokers: i32) -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap()
}

async fn client(cluster: &FakeCluster) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    KafkaClient::connect(&[cluster.bootstrap()], config)
        .await
        .unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

fn fast() -> ProducerConfig {
    let mut c = ProducerConfig::default();
    c.retry_backoff = Duration::from_millis(20);
    c.delivery_timeout = Duration::from_secs(20);
    c
}

/// (key, value) of a partition's log, in offset order, with offsets.
fn log(cluster: &FakeCluster, topic: &str, partition: i32) -> Vec<(i64, String)> {
    cluster
        .records(topic, partition)
        .into_iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn simple_producer_returns_base_offsets_and_retries() {
    within(async {
        let c = fake(1).await;
        c.create_topic("simple", 2);
        let client: Arc<dyn Client> = Arc::new(client(&c).await);
        let p = SimpleProducer::new(client.clone(), SimpleProducerConfig::default()).unwrap();
        assert_eq!(
            p.produce("simple", 1, vec![Message::new("a"), Message::new("b")])
                .await
                .unwrap(),
            0
        );
        c.inject(
            Fault::new(
                ApiKey::Produce,
                FaultAction::Error(ErrorCode::NotEnoughReplicas),
            )
            .times(Times::N(2)),
        );
        assert_eq!(
            p.produce("simple", 1, vec![Message::new("c")])
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            log(&c, "simple", 1),
            vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
        );
        // Out of retries: the error names the partition.
        c.inject(
            Fault::new(
                ApiKey::Produce,
                FaultAction::Error(ErrorCode::NotEnoughReplicas),
            )
            .times(Times::Always),
        );
        let e = p
            .produce("simple", 0, vec![Message::new("x")])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotEnoughReplicas));
        assert!(e.to_string().contains("simple/0"), "{e}");
        c.clear_faults();
        // acks=0: written, offset unknown.
        let mut cfg = SimpleProducerConfig::default();
        cfg.acks = 0;
        let fire = SimpleProducer::new(client, cfg).unwrap();
        assert_eq!(
            fire.produce("simple", 0, vec![Message::new("z")])
                .await
                .unwrap(),
            -1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(log(&c, "simple", 0), vec![(0, "z".into())]);
    })
    .await
}

#[tokio::test]
async fn produce_many_gathers_offsets_and_errors() {
    within(async {
        let c = fake(2).await;
        c.create_topic("many", 3);
        let client: Arc<dyn Client> = Arc::new(client(&c).await);
        let p = SimpleProducer::new(client, SimpleProducerConfig::default()).unwrap();
        let envelopes = vec![
            Envelope {
                topic: "many".into(),
                partition: 0,
                records: vec![Message::new("a")],
            },
            Envelope {
                topic: "many".into(),
                partition: 1,
                records: vec![Message::new("b"), Message::new("c")],
            },
            Envelope {
                topic: "many".into(),
                partition: 0,
                records: vec![Message::new("d")],
            },
            Envelope {
                topic: "nope".into(),
                partition: 0,
                records: vec![Message::new("e")],
            },
        ];
        let summary = produce_many(&p, envelopes).await;
        assert_eq!(summary.offsets.get(&("many".into(), 0)), Some(&0));
        assert_eq!(summary.offsets.get(&("many".into(), 1)), Some(&0));
        assert_eq!(log(&c, "many", 0), vec![(0, "a".into()), (1, "d".into())]);
        assert!(!summary.is_ok());
        assert!(summary.errors.contains_key(&("nope".into(), 0)));
    })
    .await
}

#[tokio::test]
async fn buffered_producer_batches_keeps_order_and_reports_deliveries() {
    within(async {
        let c = fake(3).await;
        c.create_topic("orders", 8);
        let p = BufferedProducer::new(client(&c).await, fast().with_topic("orders")).unwrap();
        let mut deliveries = Vec::new();
        for i in 0..2000 {
            let r = ProducerRecord::new(format!("v{i}"))
                .with_key(format!("k{}", i % 50))
                .with_header("n", i.to_string())
                .with_timestamp(1_700_000_000_000 + i);
            deliveries.push((i, p.send(r).await.unwrap()));
        }
        p.flush().await;
        let mut per_partition: std::collections::BTreeMap<i32, Vec<(i64, i64)>> =
            Default::default();
        for (i, d) in deliveries {
            let m = d.await.unwrap();
            assert_eq!(&*m.topic, "orders");
            assert_eq!(m.timestamp, 1_700_000_000_000 + i);
            per_partition
                .entry(m.partition)
                .or_default()
                .push((i, m.offset));
        }
        for (partition, sends) in &per_partition {
            // Offsets follow send order within a partition.
            let offsets: Vec<i64> = sends.iter().map(|(_, o)| *o).collect();
            assert_eq!(
                offsets,
                (0..sends.len() as i64).collect::<Vec<_>>(),
                "partition {partition}"
            );
            let stored = c.records("orders", *partition);
            assert_eq!(stored.len(), sends.len());
            for ((i, _), r) in sends.iter().zip(&stored) {
                assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
                assert_eq!(
                    r.headers[0].value.as_deref(),
                    Some(i.to_string().as_bytes())
                );
                assert_eq!(r.timestamp, 1_700_000_000_000 + i);
            }
        }
        assert!(per_partition.len() > 4, "keys spread over partitions");
        // Fewer requests than records: batching.
        assert!(
            c.request_count(ApiKey::Produce) < 200,
            "{} produce requests",
            c.request_count(ApiKey::Produce)
        );
        p.close().await;
    })
    .await
}

#[tokio::test]
async fn every_codec_round_trips() {
    within(async {
        let c = fake(1).await;
        let client = client(&c).await;
        for (i, codec) in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .enumerate()
        {
            let topic = format!("codec-{i}");
            c.create_topic(&topic, 1);
            let p = BufferedProducer::new(
                client.clone(),
                fast().with_topic(&topic).with_compression(codec),
            )
            .unwrap();
            let results = p
                .send_all((0..100).map(|n| {
                    ProducerRecord::new(format!("{codec:?}-{n}")).with_key(format!("k{n}"))
                }))
                .await;
            assert!(results.iter().all(|r| r.is_ok()));
            let stored = log(&c, &topic, 0);
            assert_eq!(stored.len(), 100);
            assert_eq!(stored[99].1, format!("{codec:?}-99"));
            p.close().await;
        }
    })
    .await
}

#[tokio::test]
async fn acknowledged_records_are_in_the_log_once_and_in_order_through_faults() {
    once_and_in_order_through_faults(Compression::None).await
}

/// Compressed requests are encoded off the sender task, several at once; they must
/// still go out in order.
#[tokio::test]
async fn compressed_records_are_in_the_log_once_and_in_order_through_faults() {
    once_and_in_order_through_faults(Compression::Lz4).await
}

async fn once_and_in_order_through_faults(compression: Compression) {
    within(async {
        let mut c = fake(3).await;
        c.create_topic("faults", 3);
        let mut config = fast().with_topic("faults").with_compression(compression);
        // Small batches, so that several of a partition are in flight at once.
        config.batch_size = 2000;
        let p = BufferedProducer::new(client(&c).await, config).unwrap();
        let send_range = |p: BufferedProducer, from: i64, to: i64| async move {
            let mut out = Vec::new();
            for i in from..to {
                let r = ProducerRecord::new(format!("{i}")).at_partition((i % 3) as i32);
                out.push(p.send(r).await.unwrap());
            }
            out
        };
        let mut deliveries = send_range(p.clone(), 0, 300).await;
        // Leader moved mid-stream.
        let leader = c.leader("faults", 0).unwrap();
        c.move_leader("faults", 0, (leader + 1) % 3);
        deliveries.extend(send_range(p.clone(), 300, 600).await);
        // Connections dropped, and NOT_ENOUGH_REPLICAS answers.
        c.inject(Fault::new(ApiKey::Produce, FaultAction::DropConnection).times(Times::N(3)));
        deliveries.extend(send_range(p.clone(), 600, 900).await);
        c.inject(
            Fault::new(
                ApiKey::Produce,
                FaultAction::Error(ErrorCode::NotEnoughReplicas),
            )
            .times(Times::N(5)),
        );
        deliveries.extend(send_range(p.clone(), 900, 1200).await);
        // A broker restarted.
        let victim = c.leader("faults", 1).unwrap();
        c.stop_broker(victim).await;
        let restart = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.restart_broker(victim).await.unwrap();
            c
        });
        deliveries.extend(send_range(p.clone(), 1200, 1500).await);
        let c = restart.await.unwrap();
        p.flush().await;
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        for d in deliveries {
            match d.await {
                Ok(m) => acked.push(m),
                Err(e) => errors.push(e.to_string()),
            }
        }
        assert_eq!(
            acked.len(),
            1500,
            "every record acknowledged in the end; errors: {:?}",
            &errors[..errors.len().min(5)]
        );
        for partition in 0..3 {
            let values: Vec<i64> = log(&c, "faults", partition)
                .into_iter()
                .map(|(_, v)| v.parse().unwrap())
                .collect();
            let expected: Vec<i64> = (0..1500).filter(|i| i % 3 == partition as i64).collect();
            assert_eq!(
                values, expected,
                "partition {partition}: exactly once, in order"
            );
        }
        p.close().await;
    })
    .await
}

/// Without idempotence batches of a partition are pipelined as in the Java client,
/// and `max_in_flight = 1` keeps them in order through retried errors.
#[tokio::test]
async fn without_idempotence_one_in_flight_keeps_order_through_retries() {
    within(async {
        let c = fake(1).await;
        c.create_topic("plain", 2);
        for max_in_flight in [1, 5] {
            let mut config = fast().with_topic("plain").with_acks(Acks::Leader);
            config.max_in_flight = max_in_flight;
            config.linger = Duration::from_millis(1);
            config.batch_size = 500;
            let p = BufferedProducer::new(client(&c).await, config).unwrap();
            let before = log(&c, "plain", 0).len() as i64;
            c.inject(
                Fault::new(
                    ApiKey::Produce,
                    FaultAction::Error(ErrorCode::NotEnoughReplicas),
                )
                .times(Times::N(3)),
            );
            let mut deliveries = Vec::new();
            for i in 0..400 {
                let r = ProducerRecord::new(format!("{max_in_flight}-{i}")).at_partition(0);
                deliveries.push(p.send(r).await.unwrap());
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for d in deliveries {
                d.await.unwrap();
            }
            let values: Vec<String> = log(&c, "plain", 0)
                .into_iter()
                .skip(before as usize)
                .map(|(_, v)| v)
                .collect();
            let mut expected: Vec<String> =
                (0..400).map(|i| format!("{max_in_flight}-{i}")).collect();
            if max_in_flight == 1 {
                assert_eq!(values, expected, "in order with one batch in flight");
            } else {
                // Pipelined: each record once (errors mean nothing was written), in
                // any order.
                let mut sorted = values.clone();
                sorted.sort();
                expected.sort();
                assert_eq!(sorted, expected);
            }
            p.close().await;
        }
    })
    .await
}

#[tokio::test]
async fn bad_input_is_a_clear_error_and_loses_nothing_acknowledged() {
    within(async {
        let c = fake(1).await;
        c.create_topic("bad", 1);
        let client = client(&c).await;
        let p = BufferedProducer::new(client.clone(), fast().with_topic("bad")).unwrap();
        let ok = p
            .send(ProducerRecord::new("kept"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ok.offset, 0);
        // Oversized.
        let big = ProducerRecord::new(vec![0u8; 2 << 20]);
        let e = p.send(big).await.unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::RecordTooLarge { .. }),
            "{e}"
        );
        // Topic on both sides.
        let e = p
            .send(ProducerRecord::new("x").to("other"))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::AmbiguousTopic(_)),
            "{e}"
        );
        // No such partition.
        let e = p
            .send(ProducerRecord::new("x").at_partition(7))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::NoSuchPartition { .. }),
            "{e}"
        );
        // Unknown topic without auto-create; with it, created.
        let free = BufferedProducer::new(client.clone(), fast()).unwrap();
        let e = free
            .send(ProducerRecord::new("x").to("missing"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
        let mut auto = fast();
        auto.auto_create_topics = true;
        let creating = BufferedProducer::new(client.clone(), auto).unwrap();
        creating
            .send(ProducerRecord::new("x").to("created"))
            .await
            .unwrap()
            .await
            .unwrap();
        // Invalid config.
        let e = BufferedProducer::new(
            client.clone(),
            fast().with_acks(Acks::Leader).with_idempotence(true),
        )
        .unwrap_err();
        assert!(e.to_string().contains("idempotence needs acks=all"), "{e}");
        // After close.
        p.close().await;
        let e = p.send(ProducerRecord::new("late")).await.unwrap_err();
        assert!(matches!(e.kind(), ProduceErrorKind::Closed));
        assert_eq!(log(&c, "bad", 0), vec![(0, "kept".into())]);
    })
    .await
}

#[tokio::test]
async fn callbacks_report_each_record_once_in_order_and_a_panic_stops_nothing() {
    within(async {
        let c = fake(1).await;
        c.create_topic("callbacks", 2);
        let p = BufferedProducer::new(client(&c).await, fast().with_topic("callbacks")).unwrap();
        let reports: Arc<Mutex<Vec<(i64, i32, i64)>>> = Arc::default();
        for i in 0..200i64 {
            let reports = reports.clone();
            let record = ProducerRecord::new(format!("v{i}")).at_partition((i % 2) as i32);
            p.send_with_callback(record, move |report| {
                let m = report.unwrap();
                reports.lock().unwrap().push((i, m.partition, m.offset));
                assert!(i != 7, "a callback that panics");
            })
            .await
            .unwrap();
        }
        p.flush().await;
        let mut got = reports.lock().unwrap().clone();
        assert_eq!(got.len(), 200, "every record reported once");
        // Within a partition, in the order sent, at the offsets the log has.
        for partition in 0..2 {
            let mine: Vec<(i64, i64)> = got
                .iter()
                .filter(|(_, p, _)| *p == partition)
                .map(|(i, _, o)| (*i, *o))
                .collect();
            let want: Vec<(i64, i64)> = (0..100)
                .map(|n| (2 * n + i64::from(partition), n))
                .collect();
            assert_eq!(mine, want, "partition {partition}");
            assert_eq!(log(&c, "callbacks", partition).len(), 100);
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 200);

        // A failed record: its error goes to the callback.
        c.inject(Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::RecordListTooLarge),
        ));
        let (tx, rx) = tokio::sync::oneshot::channel();
        p.send_with_callback(ProducerRecord::new("refused").at_partition(0), move |r| {
            let _ = tx.send(r);
        })
        .await
        .unwrap();
        let e = rx.await.unwrap().unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::RecordListTooLarge), "{e}");

        // A record that cannot be queued is an error here; its callback is not called.
        let called = Arc::new(AtomicBool::new(false));
        let flag = called.clone();
        let too_big = ProducerRecord::new(vec![0u8; 2 << 20]).at_partition(0);
        let e = p
            .send_with_callback(too_big, move |_| flag.store(true, Ordering::SeqCst))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::RecordTooLarge { .. }),
            "{e}"
        );
        p.close().await;
        let flag = called.clone();
        let e = p
            .send_with_callback(ProducerRecord::new("late"), move |_| {
                flag.store(true, Ordering::SeqCst)
            })
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), ProduceErrorKind::Closed), "{e}");
        assert!(!called.load(Ordering::SeqCst));
    })
    .await
}

#[tokio::test]
async fn a_lone_record_waits_its_linger_less_at_most_a_timer_tick() {
    within(async {
        let c = fake(1).await;
        c.create_topic("linger", 1);
        let mut config = fast().with_topic("linger");
        config.linger = Duration::from_millis(300);
        let p = BufferedProducer::new(client(&c).await, config).unwrap();
        p.send(ProducerRecord::new("warm-up"))
            .await
            .unwrap()
            .await
            .unwrap();
        let sent = std::time::Instant::now();
        let delivery = p.send(ProducerRecord::new("lone")).await.unwrap();
        // Nothing else comes, so the batch waits for its linger (less one 1 ms tick of
        // tokio's timer, see ProducerConfig::linger), then goes.
        delivery.await.unwrap();
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_millis(299),
            "sent after {waited:?}"
        );
        assert_eq!(log(&c, "linger", 0).len(), 2);
    })
    .await
}

#[tokio::test]
async fn a_fixed_topic_sees_its_new_partitions_once_the_metadata_is_refreshed() {
    within(async {
        let c = fake(1).await;
        c.create_topic("grows", 1);
        let client = client(&c).await;
        let p = BufferedProducer::new(client.clone(), fast().with_topic("grows")).unwrap();
        p.send(ProducerRecord::new("a").at_partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        let e = p
            .send(ProducerRecord::new("b").at_partition(1))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::NoSuchPartition { .. }),
            "{e}"
        );
        // The producer keeps the topic's partition count between records; new
        // metadata replaces it.
        kafka_net::Client::create_partitions(&client, "grows", 2)
            .await
            .unwrap();
        kafka_net::Client::refresh_metadata(&client).await.unwrap();
        let m = p
            .send(ProducerRecord::new("b").at_partition(1))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((m.partition, m.offset), (1, 0));
    })
    .await;
}

#[tokio::test]
async fn each_record_charges_the_buffer_its_report_slot_too() {
    within(async {
        // Records with no key or value: their wire bytes are fewer than what their
        // reports take, so a buffer that counted only the records would hold about
        // twice as many.
        let record = ProducerRecord::new(Bytes::new());
        let (estimate, slot) = (record.size_estimate(), 32);
        let fit = records_that_fit(record, 0).await;
        let most = (64 << 10) / (estimate + slot);
        assert!(
            fit <= most && fit > most / 2,
            "{fit} records fit, at most {most} expected"
        );
    })
    .await;
}

/// Queues copies of `record` with `try_send` until it fails, which must be for a full
/// buffer, and before `most` are queued; the deliveries of those queued.
async fn fill_until_full(
    p: &BufferedProducer,
    record: &ProducerRecord,
    most: usize,
) -> Vec<kafka_producer::DeliveryFuture> {
    let mut sent = Vec::new();
    let full = loop {
        match p.try_send(record.clone()).await {
            Ok(d) => sent.push(d),
            Err(e) => break e,
        }
        assert!(sent.len() < most, "the buffer never filled");
    };
    assert!(
        matches!(full.kind(), ProduceErrorKind::BufferFull(_)),
        "{full}"
    );
    sent
}

/// Copies of `record` queued in a 64 KiB buffer until `try_send` fails, with a linger
/// that sends none meanwhile; how many fit. All are delivered after.
async fn records_that_fit(record: ProducerRecord, max_buffered_records: usize) -> usize {
    let c = fake(1).await;
    c.create_topic("fit", 1);
    let mut config = fast().with_topic("fit");
    config.buffer_memory = 64 << 10;
    config.max_request_size = 64 << 10;
    config.linger = Duration::from_secs(30);
    config.max_buffered_records = max_buffered_records;
    let p = BufferedProducer::new(client(&c).await, config).unwrap();
    let sent = fill_until_full(&p, &record, 10_000).await;
    let fit = sent.len();
    p.flush().await;
    for d in sent {
        d.await.unwrap();
    }
    assert_eq!(p.statistics().buffer_bytes, 0);
    fit
}

#[tokio::test]
async fn max_buffered_records_bounds_the_count_of_small_records() {
    within(async {
        // Each record is charged at least 64 KiB / 100 (656 bytes): at most 99 fit,
        // and the buffer is nearly full of them.
        let record = ProducerRecord::new(Bytes::from_static(b"ten bytes!"));
        let bounded = records_that_fit(record.clone(), 100).await;
        assert!((90..=100).contains(&bounded), "{bounded} records fit");
        // Without the bound the same buffer holds several times as many.
        let unbounded = records_that_fit(record, 0).await;
        assert!(unbounded > 5 * bounded, "{unbounded} against {bounded}");
    })
    .await;
}

#[tokio::test]
async fn a_full_buffer_makes_try_send_fail_and_send_wait() {
    within(async {
        let c = fake(1).await;
        c.create_topic("full", 1);
        let mut config = fast().with_topic("full");
        config.buffer_memory = 1 << 20;
        config.max_request_size = 1 << 20;
        config.linger = Duration::from_secs(30);
        config.batch_size = 8 << 20;
        let p = BufferedProducer::new(client(&c).await, config).unwrap();
        // Hold the broker back so nothing drains.
        c.inject(
            Fault::new(
                ApiKey::Produce,
                FaultAction::Delay(Duration::from_millis(500)),
            )
            .times(Times::Always),
        );
        let value = Bytes::from(vec![7u8; 100 << 10]);
        let sent = fill_until_full(&p, &ProducerRecord::new(value.clone()), 50).await;
        // send waits for room, then succeeds once the batch drains.
        let waited = tokio::spawn({
            let p = p.clone();
            let value = value.clone();
            async move {
                p.send(ProducerRecord::new(value))
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        });
        p.flush().await;
        waited.await.unwrap();
        for d in sent {
            d.await.unwrap();
        }
        c.clear_faults();
        p.close().await;
    })
    .await
}

#[tokio::test]
async fn against_the_named_cluster_when_there_is_one() {
    // The producer against a real broker (KAFKA_BOOTSTRAP), or the fake.
    within(async {
        let (bootstrap, _fake) = match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) => (b, None),
            Err(_) => {
                let f = fake(1).await;
                (f.bootstrap(), Some(f))
            }
        };
        let client = KafkaClient::connect(&[bootstrap.as_str()], ClientConfig::default())
            .await
            .unwrap();
        let topic = format!("producer-{}", std::process::id());
        client
            .create_topics(vec![NewTopic::new(&topic, 2)])
            .await
            .unwrap();
        let p = BufferedProducer::new(client.clone(), fast().with_topic(&topic)).unwrap();
        let results = p
            .send_all(
                (0..500)
                    .map(|i| ProducerRecord::new(format!("{i}")).with_key(format!("{}", i % 7))),
            )
            .await;
        let mut offsets: std::collections::BTreeMap<i32, Vec<i64>> = Default::default();
        for r in results {
            let m = r.unwrap();
            offsets.entry(m.partition).or_default().push(m.offset);
        }
        for (partition, o) in offsets {
            assert_eq!(
                o,
                (0..o.len() as i64).collect::<Vec<_>>(),
                "partition {partition}"
            );
        }
        p.close().await;
    })
    .await
}

/// `try_send_with_callback` from a plain thread: no runtime, no waiting; every record
/// reported once, in the partition's order; a topic whose partition count is not cached
/// and a full buffer are errors at once, with the callback never called.
#[tokio::test]
async fn try_send_with_callback_queues_from_a_plain_thread_without_waiting() {
    within(async {
        let c = fake(1).await;
        let client = client(&c).await;
        // Created after the client read the metadata: not in its cache yet.
        c.create_topic("plain", 2);
        let p = BufferedProducer::new(client.clone(), fast().with_topic("plain")).unwrap();
        let called = Arc::new(AtomicBool::new(false));
        let flag = called.clone();
        let unknown = p
            .try_send_with_callback(ProducerRecord::new("x"), move |_| {
                flag.store(true, Ordering::SeqCst)
            })
            .unwrap_err();
        assert!(
            matches!(unknown.kind(), ProduceErrorKind::WouldBlock(_)),
            "{unknown}"
        );
        assert!(unknown.to_string().contains("plain"), "{unknown}");
        assert_eq!(client.partition_count("plain").await.unwrap(), 2);

        let reports = Arc::new(Mutex::new(Vec::new()));
        let sending = p.clone();
        let sink = reports.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                let sink = sink.clone();
                let record = ProducerRecord::new(format!("{i}")).at_partition(i % 2);
                sending
                    .try_send_with_callback(record, move |r| {
                        let m = r.unwrap();
                        sink.lock().unwrap().push((i, m.partition, m.offset));
                    })
                    .unwrap();
            }
        })
        .join()
        .unwrap();
        p.flush().await;
        let reports = reports.lock().unwrap().clone();
        assert_eq!(reports.len(), 200, "each record reported once");
        for partition in 0..2 {
            let offsets: Vec<(i32, i64)> = reports
                .iter()
                .filter(|r| r.1 == partition)
                .map(|r| (r.0, r.2))
                .collect();
            let expected: Vec<(i32, i64)> =
                (0..100).map(|k| (2 * k + partition, k as i64)).collect();
            assert_eq!(offsets, expected, "partition {partition}: in order");
            let values: Vec<String> = log(&c, "plain", partition)
                .into_iter()
                .map(|r| r.1)
                .collect();
            let expected: Vec<String> =
                (0..100).map(|k| format!("{}", 2 * k + partition)).collect();
            assert_eq!(values, expected);
        }

        // A full buffer: an error at once; the callback is not called.
        let mut config = fast().with_topic("plain");
        config.buffer_memory = 1 << 20;
        config.max_request_size = 1 << 20;
        config.linger = Duration::from_secs(30);
        config.batch_size = 8 << 20;
        let small = BufferedProducer::new(client.clone(), config).unwrap();
        let value = Bytes::from(vec![7u8; 100 << 10]);
        let full = (0..50)
            .find_map(|_| {
                let flag = called.clone();
                small
                    .try_send_with_callback(
                        ProducerRecord::new(value.clone()).at_partition(0),
                        move |_| flag.store(true, Ordering::SeqCst),
                    )
                    .err()
            })
            .expect("the buffer fills");
        assert!(
            matches!(full.kind(), ProduceErrorKind::BufferFull(_)),
            "{full}"
        );
        small.close().await;
        p.close().await;
        // Only the queued records' callbacks ran (they flag `called`; the refused ones
        // were dropped uncalled): the first refused one above did not.
        assert!(
            called.load(Ordering::SeqCst),
            "the queued 100 KiB records were reported"
        );
    })
    .await
}

/// With `connections_per_broker` the producer opens that many produce connections and
/// spreads its partitions over them; each partition stays on one, so its records are in
/// the log once and in order, through dropped connections too.
#[tokio::test]
async fn partitions_spread_over_several_connections_keep_their_order() {
    within(async {
        let c = fake(1).await;
        c.create_topic("lanes", 6);
        let client = client(&c).await;
        let bad = BufferedProducer::new(client.clone(), fast().with_connections_per_broker(0));
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("connections_per_broker"));
        let bad = BufferedProducer::new(client.clone(), fast().with_connections_per_broker(17));
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("connections_per_broker"));

        let before: u64 = client.broker_metrics().values().map(|m| m.connects).sum();
        let mut config = fast().with_topic("lanes").with_connections_per_broker(3);
        // Small batches, so that several of a partition are in flight at once.
        config.batch_size = 1000;
        let p = BufferedProducer::new(client.clone(), config).unwrap();
        let mut deliveries = Vec::new();
        for i in 0..1200 {
            if i == 600 {
                p.flush().await;
                let opened: u64 = client
                    .broker_metrics()
                    .values()
                    .map(|m| m.connects)
                    .sum::<u64>()
                    - before;
                assert_eq!(opened, 3, "one connection per lane");
                c.inject(
                    Fault::new(ApiKey::Produce, FaultAction::DropConnection).times(Times::N(2)),
                );
            }
            let r = ProducerRecord::new(format!("{i}")).at_partition(i % 6);
            deliveries.push(p.send(r).await.unwrap());
        }
        p.flush().await;
        for d in deliveries {
            d.await.unwrap();
        }
        let opened: u64 = client
            .broker_metrics()
            .values()
            .map(|m| m.connects)
            .sum::<u64>()
            - before;
        assert!(opened >= 4, "the dropped ones opened again: {opened}");
        for partition in 0..6 {
            let values: Vec<i32> = log(&c, "lanes", partition)
                .into_iter()
                .map(|(_, v)| v.parse().unwrap())
                .collect();
            let expected: Vec<i32> = (0..1200).filter(|i| i % 6 == partition).collect();
            assert_eq!(values, expected, "partition {partition}: once, in order");
        }
        p.close().await;
    })
    .await
}

/// `send_batch`: many records in one call, each reported once to the shared callback,
/// in each partition's order; a bad record refuses the whole call with nothing queued;
/// more than the buffer holds goes in groups, waiting for room.
#[tokio::test]
async fn send_batch_queues_many_records_and_reports_each_once() {
    within(async {
        let c = fake(1).await;
        c.create_topic("many", 3);
        let client = client(&c).await;
        let p = BufferedProducer::new(client.clone(), fast().with_topic("many")).unwrap();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let records = (0..999)
            .map(|i| ProducerRecord::new(format!("{i}")).at_partition(i % 3))
            .collect();
        p.send_batch(records, move |r| {
            let m = r.unwrap();
            sink.lock().unwrap().push((m.partition, m.offset));
        })
        .await
        .unwrap();
        p.flush().await;
        let mut reports = reports.lock().unwrap().clone();
        assert_eq!(reports.len(), 999, "each record reported once");
        reports.sort();
        reports.dedup();
        assert_eq!(reports.len(), 999);
        for partition in 0..3 {
            let values: Vec<i32> = log(&c, "many", partition)
                .into_iter()
                .map(|(_, v)| v.parse().unwrap())
                .collect();
            let expected: Vec<i32> = (0..999).filter(|i| i % 3 == partition).collect();
            assert_eq!(values, expected, "partition {partition}: once, in order");
        }

        // A record for a partition the topic lacks: the call fails, nothing is queued.
        let called = Arc::new(AtomicBool::new(false));
        let flag = called.clone();
        let records = vec![
            ProducerRecord::new("ok").at_partition(0),
            ProducerRecord::new("bad").at_partition(7),
        ];
        let e = p
            .send_batch(records, move |_| flag.store(true, Ordering::SeqCst))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::NoSuchPartition { .. }),
            "{e}"
        );
        assert_eq!(p.pending(), 0, "nothing queued");
        p.flush().await;
        assert_eq!(log(&c, "many", 0).len(), 333);
        assert!(!called.load(Ordering::SeqCst));
        p.close().await;

        // 5 MB through a 1 MiB buffer: in groups, each waiting for room.
        let mut config = fast().with_topic("many");
        config.buffer_memory = 1 << 20;
        config.max_request_size = 1 << 20;
        let small = BufferedProducer::new(client, config).unwrap();
        let value = Bytes::from(vec![b'x'; 50 << 10]);
        let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = delivered.clone();
        let records = (0..100)
            .map(|i| ProducerRecord::new(value.clone()).at_partition(i % 3))
            .collect();
        small
            .send_batch(records, move |r| {
                r.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
        small.close().await;
        assert_eq!(delivered.load(Ordering::SeqCst), 100);
    })
    .await
}

/// The runtime a producer runs on shuts down while its requests are being encoded (on
/// the encoder threads, outside the runtime, when compressed) and answered slowly:
/// every record's callback is still called exactly once, acknowledged or `Closed`,
/// and nothing panics. (The answers' callbacks once held the producer, which holds the
/// client and so the callbacks: the records queued were never reported.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_shut_down_mid_flight_reports_every_record_once() {
    let c = fake(1).await;
    c.inject(
        Fault::new(
            ApiKey::Produce,
            FaultAction::Delay(Duration::from_millis(200)),
        )
        .times(Times::Always),
    );
    for (topic, compression) in [
        ("shutdown", Compression::None),
        ("shutdown-lz4", Compression::Lz4),
    ] {
        c.create_topic(topic, 4);
        let reports = produce_then_shut_down(c.bootstrap(), topic, compression);
        for _ in 0..100 {
            if !reports.iter().any(|r| r.load(Ordering::Relaxed) == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for a second report of any record, had there been one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let count = |f: fn(u32) -> bool| {
            reports
                .iter()
                .filter(|r| f(r.load(Ordering::Relaxed)))
                .count()
        };
        assert_eq!(
            count(|n| n == 0),
            0,
            "{compression:?}: records never reported"
        );
        assert_eq!(
            count(|n| n > 1),
            0,
            "{compression:?}: records reported twice"
        );
    }
    c.clear_faults();
}

/// Queues 20,000 records with callbacks on a runtime of its own, on a plain thread,
/// and shuts that runtime down with them queued and in flight; the count of reports
/// of each record.
fn produce_then_shut_down(
    bootstrap: String,
    topic: &'static str,
    compression: Compression,
) -> Arc<Vec<std::sync::atomic::AtomicU32>> {
    const RECORDS: usize = 20_000;
    let reports: Arc<Vec<std::sync::atomic::AtomicU32>> =
        Arc::new((0..RECORDS).map(|_| Default::default()).collect());
    let counted = reports.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = KafkaClient::connect(&[bootstrap], ClientConfig::default())
                .await
                .unwrap();
            let mut config = fast().with_topic(topic).with_compression(compression);
            config.linger = Duration::from_millis(1);
            let p = BufferedProducer::new(client, config).unwrap();
            for i in 0..RECORDS {
                let counted = counted.clone();
                let value = format!("record {i} of a runtime that goes away").repeat(8);
                p.send_with_callback(
                    ProducerRecord::new(value).at_partition((i % 4) as i32),
                    move |_| {
                        counted[i].fetch_add(1, Ordering::Relaxed);
                    },
                )
                .await
                .unwrap();
            }
        });
        rt.shutdown_background();
    })
    .join()
    .unwrap();
    reports
}
