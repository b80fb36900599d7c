//! The fetcher's and the partition reader's statistics: position, high watermark and
//! lag per partition, against the in-process fake cluster (and the cluster named by
//! `KAFKA_BOOTSTRAP`).

#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use kafka_consumer::{
    FetchOptions, FetchPartitionStats, Fetcher, FetcherConfig, FetcherStatistics, PartitionReader,
    StartOffset,
};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::time::Duration;

async fn client(bootstrap: &str) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    KafkaClient::connect(&[bootstrap], config).await.unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn config() -> FetcherConfig {
    let mut c = FetcherConfig::default();
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    c.fetch = fetch;
    c.retry_backoff = Duration::from_millis(20);
    c
}

/// A new topic with `per_partition[p]` records in partition p.
async fn topic_with(client: &KafkaClient, per_partition: &[i64]) -> String {
    let topic = unique("stats");
    client
        .create_topics(vec![NewTopic::new(&topic, per_partition.len() as i32)])
        .await
        .unwrap();
    let p = BufferedProducer::new(client.clone(), ProducerConfig::default()).unwrap();
    let records = per_partition.iter().enumerate().flat_map(|(p, n)| {
        let topic = topic.clone();
        (0..*n).map(move |i| {
            ProducerRecord::new(format!("{i}"))
                .to(&topic)
                .at_partition(p as i32)
        })
    });
    assert!(p.send_all(records).await.iter().all(|r| r.is_ok()));
    p.close().await;
    topic
}

fn partition<'a>(s: &'a FetcherStatistics, topic: &str, p: i32) -> &'a FetchPartitionStats {
    s.partitions
        .iter()
        .find(|x| x.topic == topic && x.partition == p)
        .unwrap()
}

async fn fetcher_reports_position_high_watermark_and_lag(bootstrap: &str) {
    let client = client(bootstrap).await;
    let topic = topic_with(&client, &[10, 4]).await;
    let fetcher = Fetcher::new(client, config()).unwrap();
    fetcher.assign(&topic, 0, StartOffset::Offset(3));
    fetcher.assign(&topic, 1, StartOffset::Earliest);
    let s = fetcher.statistics();
    let p0 = partition(&s, &topic, 0);
    assert_eq!((p0.position, p0.high_watermark, p0.lag), (3, -1, -1));
    assert_eq!(p0.committed_offset, -1);
    // Partition 0 from offset 3: 7 records; partition 1: 4.
    let mut got = 0;
    while got < 11 {
        got += fetcher.next_batch().await.unwrap().unwrap().records.len();
    }
    let s = fetcher.statistics();
    let p0 = partition(&s, &topic, 0);
    assert_eq!(
        (p0.position, p0.fetch_offset, p0.high_watermark, p0.lag),
        (10, 10, 10, 0),
        "{p0:?}"
    );
    assert_eq!(p0.fetched_records, 7);
    assert!(p0.fetched_bytes > 0);
    let p1 = partition(&s, &topic, 1);
    assert_eq!((p1.position, p1.high_watermark, p1.lag), (4, 4, 0));
    assert!(!p1.paused && !p1.failed);
    let fetches: u64 = s.client.brokers.values().map(|b| b.responses).sum();
    assert!(fetches > 0);

    // Moved back: 6 behind the end until fetched again.
    fetcher.seek(&topic, 0, 4);
    let p0 = fetcher.statistics().partitions[0].clone();
    assert_eq!((p0.position, p0.lag), (4, 6));

    let json = serde_json::to_value(&s).unwrap();
    for field in ["client_id", "time_ms", "age_us", "brokers", "partitions"] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    for field in [
        "topic",
        "partition",
        "fetch_offset",
        "position",
        "committed_offset",
        "high_watermark",
        "lag",
        "fetched_records",
        "fetched_bytes",
        "paused",
        "failed",
    ] {
        assert!(json["partitions"][0].get(field).is_some(), "no {field}");
    }
    fetcher.close();
}

#[tokio::test]
async fn fetcher_reports_position_high_watermark_and_lag_on_the_fake() {
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        fetcher_reports_position_high_watermark_and_lag(&cluster.bootstrap()).await;
    })
    .await;
}

#[tokio::test]
async fn fetcher_reports_position_high_watermark_and_lag_on_the_named_cluster() {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        return;
    };
    within(fetcher_reports_position_high_watermark_and_lag(&bootstrap)).await;
}

#[tokio::test]
async fn a_reader_reports_its_own_position_and_lag() {
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        let client = client(&cluster.bootstrap()).await;
        let topic = topic_with(&client, &[5]).await;
        let reader =
            PartitionReader::new(client, &topic, 0, StartOffset::Earliest, config()).unwrap();
        let first = reader.read_message().await.unwrap();
        assert_eq!(first.offset, 0);
        let s = reader.statistics();
        let p = &s.partitions[0];
        // One returned, four more fetched and held by the reader.
        assert_eq!((p.position, p.high_watermark, p.lag), (1, 5, 4), "{p:?}");
        assert_eq!(p.fetched_records, 5);
        reader.close();
    })
    .await;
}

#[tokio::test]
async fn statistics_every_advances_and_ends_when_the_fetcher_closes() {
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        let client = client(&cluster.bootstrap()).await;
        let topic = topic_with(&client, &[3]).await;
        let fetcher = Fetcher::new(client, config()).unwrap();
        let mut stream = fetcher.statistics_every(Duration::from_millis(20));
        let first = stream.next().await.unwrap();
        assert!(first.partitions.is_empty());
        fetcher.assign(&topic, 0, StartOffset::Earliest);
        let mut got = 0;
        while got < 3 {
            got += fetcher.next_batch().await.unwrap().unwrap().records.len();
        }
        let second = stream.next().await.unwrap();
        assert!(second.client.age_us > first.client.age_us);
        assert_eq!(second.partitions[0].fetched_records, 3);
        assert_eq!(second.partitions[0].lag, 0);
        let requests =
            |s: &FetcherStatistics| -> u64 { s.client.brokers.values().map(|b| b.requests).sum() };
        assert!(requests(&second) > requests(&first));
        fetcher.close();
        assert!(stream.next().await.is_none(), "the stream ends on close");
    })
    .await;
}
