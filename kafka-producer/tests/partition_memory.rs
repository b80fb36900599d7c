//! `partition_memory`: one partition's share of the buffered producer's buffer, against
//! the in-process fake cluster (its broker held back by a fault, so that nothing is
//! answered while the buffer fills).

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_net::{ClientConfig, KafkaClient};
use kafka_producer::{BufferedProducer, ProduceErrorKind, ProducerConfig, ProducerRecord};
use kafka_protocol::ApiKey;
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

async fn cluster(topic: &str, partitions: i32) -> (FakeCluster, KafkaClient) {
    let cluster = FakeCluster::start(FakeClusterConfig::default())
        .await
        .unwrap();
    cluster.create_topic(topic, partitions);
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    let client = KafkaClient::connect(&[cluster.bootstrap()], config)
        .await
        .unwrap();
    (cluster, client)
}

/// The broker's Produce answers (`times` of them) come 300 ms late, so that nothing
/// is answered while a test fills the buffer.
fn answer_late(cluster: &FakeCluster, times: Times) {
    cluster.inject(
        Fault::new(
            ApiKey::Produce,
            FaultAction::Delay(Duration::from_millis(300)),
        )
        .times(times),
    );
}

/// A 1 MiB buffer, requests and batches of 64 KiB, records that linger until their
/// batch is full.
fn config(topic: &str, partition_memory: Option<usize>) -> ProducerConfig {
    let mut c = ProducerConfig::default().with_topic(topic);
    c.buffer_memory = 1 << 20;
    c.max_request_size = 64 << 10;
    c.batch_size = 64 << 10;
    c.linger = Duration::from_secs(30);
    c.partition_memory = partition_memory;
    c.retry_backoff = Duration::from_millis(20);
    c.delivery_timeout = Duration::from_secs(30);
    c
}

fn record(partition: i32, i: usize) -> ProducerRecord {
    let mut value = format!("{i:08}").into_bytes();
    value.resize(1000, b'.');
    ProducerRecord::new(Bytes::from(value)).at_partition(partition)
}

/// Records of 1,000 bytes to `partition` with `try_send` until it fails; the delivery
/// futures of those queued, and the error.
async fn fill(
    p: &BufferedProducer,
    partition: i32,
) -> (
    Vec<kafka_producer::DeliveryFuture>,
    kafka_producer::ProduceError,
) {
    let mut sent = Vec::new();
    loop {
        match p.try_send(record(partition, sent.len())).await {
            Ok(d) => sent.push(d),
            Err(e) => return (sent, e),
        }
        assert!(sent.len() < 5_000, "partition {partition} never filled");
    }
}

#[tokio::test]
async fn a_partition_holds_at_most_its_share_and_the_others_go_on() {
    within(async {
        let (cluster, client) = cluster("share", 2).await;
        let p = BufferedProducer::new(client, config("share", Some(256 << 10))).unwrap();
        answer_late(&cluster, Times::Always);
        let (first, full) = fill(&p, 0).await;
        assert!(
            matches!(full.kind(), ProduceErrorKind::BufferFull(_)),
            "{full}"
        );
        // About 256 KiB of 1,000-byte records (each charged a little more, and the
        // room of the chunk they are written in), not the whole 1 MiB.
        assert!(
            (180..=262).contains(&first.len()),
            "{} records in partition 0",
            first.len()
        );
        let held = p.statistics().buffer_bytes;
        assert!(held <= 256 << 10, "{held} bytes held");
        // The other partition still takes records, up to its own share.
        let (second, _) = fill(&p, 1).await;
        assert!((180..=262).contains(&second.len()), "{}", second.len());
        // `send` to a partition at its share waits for its batches' answers (64 KiB
        // more records do not fit in what sealing its batches gave back)...
        let next = first.len();
        let sending = async {
            let mut more = Vec::new();
            for i in next..next + 64 {
                more.push(p.send(record(0, i)).await.unwrap());
            }
            more
        };
        tokio::pin!(sending);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut sending)
                .await
                .is_err(),
            "send went on past the partition's share"
        );
        // ...and goes on once they come.
        let more = sending.await;
        p.flush().await;
        for d in first.into_iter().chain(second).chain(more) {
            d.await.unwrap();
        }
        // All of partition 0's records, in order.
        let values: Vec<String> = cluster
            .records("share", 0)
            .iter()
            .map(|r| String::from_utf8_lossy(&r.value.as_ref().unwrap()[..8]).into_owned())
            .collect();
        let expected: Vec<String> = (0..values.len()).map(|i| format!("{i:08}")).collect();
        assert_eq!(values, expected);
        p.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_default_share_is_three_quarters_of_the_buffer() {
    within(async {
        let (cluster, client) = cluster("default-share", 1).await;
        let p = BufferedProducer::new(client, config("default-share", None)).unwrap();
        answer_late(&cluster, Times::Once);
        let (sent, _) = fill(&p, 0).await;
        let held = p.statistics().buffer_bytes;
        assert!(
            (700 << 10..=768 << 10).contains(&held),
            "{held} bytes held by {} records",
            sent.len()
        );
        p.flush().await;
        for d in sent {
            d.await.unwrap();
        }
        p.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_share_below_a_request_is_refused() {
    let (_cluster, client) = cluster("small-share", 1).await;
    let Err(error) = BufferedProducer::new(client, config("small-share", Some(1 << 10))) else {
        panic!("a 1 KiB share is refused");
    };
    assert!(error.to_string().contains("partition_memory"), "{error}");
}

#[tokio::test]
async fn a_send_given_up_while_it_waits_for_room_reports_nothing() {
    within(async {
        let (cluster, client) = cluster("given-up", 1).await;
        let p = BufferedProducer::new(client, config("given-up", Some(256 << 10))).unwrap();
        answer_late(&cluster, Times::Always);
        let (sent, _) = fill(&p, 0).await;
        // 64 records more than fit: the first that does not waits, and is given up.
        let calls = Arc::new(AtomicUsize::new(0));
        let queued = AtomicUsize::new(0);
        let giving_up = async {
            for i in 0..64 {
                let calls = calls.clone();
                p.send_with_callback(record(0, sent.len() + i), move |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
                queued.fetch_add(1, Ordering::SeqCst);
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(100), giving_up)
                .await
                .is_err(),
            "the records fit"
        );
        p.flush().await;
        for d in sent {
            d.await.unwrap();
        }
        p.close().await;
        // Each record queued was reported once; the one given up not at all (not as
        // `Closed` either).
        assert_eq!(calls.load(Ordering::SeqCst), queued.load(Ordering::SeqCst));
    })
    .await;
}
