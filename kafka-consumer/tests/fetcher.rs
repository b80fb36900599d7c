//! The many-partition fetcher and the partition reader against the in-process fake
//! cluster: every record once and in order, through leader moves, broker restarts,
//! evicted fetch sessions, out-of-range offsets and deleted topics.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures::StreamExt;
use kafka_consumer::{
    ConsumeErrorKind, FetchOptions, Fetcher, FetcherConfig, OffsetReset, PartitionReader,
    StartOffset,
};
use kafka_net::{Client, ClientConfig, KafkaClient};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

async fn fake(brokers: i32) -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap()
}

async fn client(c: &FakeCluster) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    KafkaClient::connect(&[c.bootstrap()], config)
        .await
        .unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

fn config() -> FetcherConfig {
    let mut c = FetcherConfig::default();
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    c.fetch = fetch;
    c.retry_backoff = Duration::from_millis(20);
    c
}

/// Produces `values` to a partition and waits for every acknowledgement.
async fn produce(
    client: &KafkaClient,
    topic: &str,
    partition: i32,
    values: impl IntoIterator<Item = String>,
) {
    let p = BufferedProducer::new(client.clone(), ProducerConfig::default()).unwrap();
    let results = p
        .send_all(
            values
                .into_iter()
                .map(|v| ProducerRecord::new(v).to(topic).at_partition(partition)),
        )
        .await;
    assert!(results.iter().all(|r| r.is_ok()));
    p.close().await;
}

/// Reads batches until `n` records came, per partition in arrival order.
async fn collect(fetcher: &Fetcher, n: usize) -> BTreeMap<(String, i32), Vec<(i64, String)>> {
    let mut out: BTreeMap<(String, i32), Vec<(i64, String)>> = BTreeMap::new();
    let mut got = 0;
    while got < n {
        let batch = fetcher.next_batch().await.unwrap().unwrap();
        for r in batch.records {
            out.entry((batch.topic.clone(), batch.partition))
                .or_default()
                .push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            got += 1;
        }
    }
    out
}

fn values(from: usize, to: usize, tag: &str) -> Vec<String> {
    (from..to).map(|i| format!("{tag}-{i}")).collect()
}

fn expect(from: usize, to: usize, tag: &str) -> Vec<(i64, String)> {
    (from..to)
        .map(|i| (i as i64, format!("{tag}-{i}")))
        .collect()
}

#[tokio::test]
async fn many_partitions_on_many_brokers_arrive_once_and_in_order() {
    many_partitions_with_lanes(FetcherConfig::default().fetches_per_broker).await
}

#[tokio::test]
async fn several_fetch_lanes_per_broker_read_the_same() {
    many_partitions_with_lanes(2).await;
    many_partitions_with_lanes(3).await;
}

async fn many_partitions_with_lanes(lanes: usize) {
    within(async {
        let c = fake(3).await;
        c.create_topic("many", 6);
        c.create_topic("other", 2);
        let client = client(&c).await;
        for p in 0..6 {
            produce(&client, "many", p, values(0, 50, &format!("m{p}"))).await;
        }
        produce(&client, "other", 1, values(0, 30, "o")).await;
        let mut config = config();
        config.fetches_per_broker = lanes;
        let fetcher = Fetcher::new(client.clone(), config).unwrap();
        for p in 0..6 {
            fetcher.assign("many", p, StartOffset::Earliest);
        }
        fetcher.assign("other", 1, StartOffset::Offset(10));
        let got = collect(&fetcher, 6 * 50 + 20).await;
        for p in 0..6 {
            assert_eq!(
                got[&("many".to_string(), p)],
                expect(0, 50, &format!("m{p}"))
            );
        }
        assert_eq!(got[&("other".to_string(), 1)], expect(10, 30, "o"));
        assert_eq!(fetcher.position("many", 3), Some(50));
        assert_eq!(fetcher.high_watermark("many", 3), 50);
        // New records after the first fetches arrive too (incremental session).
        produce(&client, "many", 4, values(50, 60, "m4")).await;
        let more = collect(&fetcher, 10).await;
        assert_eq!(more[&("many".to_string(), 4)], expect(50, 60, "m4"));
        // One Fetch per broker and lane per round, not one per partition.
        assert!(
            c.request_count(ApiKey::Fetch) < 400 * lanes,
            "{} fetches",
            c.request_count(ApiKey::Fetch)
        );
        fetcher.close();
        assert!(fetcher.next_batch().await.is_none());
    })
    .await
}

#[tokio::test]
async fn leader_moves_restarts_and_evicted_sessions_skip_nothing() {
    within(async {
        let mut c = fake(3).await;
        c.create_topic("moving", 3);
        let client = client(&c).await;
        let fetcher = Fetcher::new(client.clone(), config()).unwrap();
        for p in 0..3 {
            fetcher.assign("moving", p, StartOffset::Earliest);
        }
        for p in 0..3 {
            produce(&client, "moving", p, values(0, 20, "a")).await;
        }
        let mut got = collect(&fetcher, 60).await;
        // Leader moved.
        let old = c.leader("moving", 0).unwrap();
        c.move_leader("moving", 0, (old + 1) % 3);
        let _ = client.refresh_metadata().await;
        produce(&client, "moving", 0, values(20, 40, "a")).await;
        for (k, v) in collect(&fetcher, 20).await {
            got.entry(k).or_default().extend(v);
        }
        // Fetch session evicted by the broker.
        c.inject(
            Fault::new(
                ApiKey::Fetch,
                FaultAction::Error(ErrorCode::FetchSessionIdNotFound),
            )
            .times(Times::N(2)),
        );
        produce(&client, "moving", 1, values(20, 40, "a")).await;
        for (k, v) in collect(&fetcher, 20).await {
            got.entry(k).or_default().extend(v);
        }
        // Broker restarted.
        let victim = c.leader("moving", 2).unwrap();
        c.stop_broker(victim).await;
        c.restart_broker(victim).await.unwrap();
        produce(&client, "moving", 2, values(20, 40, "a")).await;
        for (k, v) in collect(&fetcher, 20).await {
            got.entry(k).or_default().extend(v);
        }
        for p in 0..3 {
            assert_eq!(
                got[&("moving".to_string(), p)],
                expect(0, 40, "a"),
                "partition {p}"
            );
        }
    })
    .await
}

async fn out_of_range_with(policy: OffsetReset) -> (FakeCluster, Fetcher) {
    let c = fake(1).await;
    c.create_topic("range", 1);
    let client = client(&c).await;
    produce(&client, "range", 0, values(0, 10, "r")).await;
    let mut cfg = config();
    cfg.offset_reset = policy;
    let fetcher = Fetcher::new(client, cfg).unwrap();
    fetcher.assign("range", 0, StartOffset::Offset(500));
    (c, fetcher)
}

#[tokio::test]
async fn offset_out_of_range_follows_each_policy() {
    within(async {
        let (_c, f) = out_of_range_with(OffsetReset::Earliest).await;
        assert_eq!(
            collect(&f, 10).await[&("range".to_string(), 0)],
            expect(0, 10, "r")
        );

        let (c, f) = out_of_range_with(OffsetReset::Latest).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce(&client(&c).await, "range", 0, values(10, 12, "r")).await;
        assert_eq!(
            collect(&f, 2).await[&("range".to_string(), 0)],
            expect(10, 12, "r")
        );

        let (_c, f) = out_of_range_with(OffsetReset::Error).await;
        let e = f.next_batch().await.unwrap().unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ConsumeErrorKind::OffsetOutOfRange {
                    offset: 500,
                    low: 0,
                    high: 10
                }
            ),
            "{e}"
        );
        assert_eq!((e.topic(), e.partition()), (Some("range"), Some(0)));
        // A seek clears it.
        f.seek("range", 0, 7);
        assert_eq!(
            collect(&f, 3).await[&("range".to_string(), 0)],
            expect(7, 10, "r")
        );

        let asked = Arc::new(std::sync::Mutex::new(None));
        let seen = asked.clone();
        let (_c, f) = out_of_range_with(OffsetReset::Custom(Arc::new(move |t, p, o, log| {
            *seen.lock().unwrap() = Some((t.to_string(), p, o, log));
            Some(5)
        })))
        .await;
        assert_eq!(
            collect(&f, 5).await[&("range".to_string(), 0)],
            expect(5, 10, "r")
        );
        assert_eq!(
            *asked.lock().unwrap(),
            Some(("range".to_string(), 0, 500, (0, 10)))
        );
    })
    .await
}

#[tokio::test]
async fn a_deleted_topic_is_reported() {
    within(async {
        let c = fake(1).await;
        c.create_topic("doomed", 1);
        let client = client(&c).await;
        produce(&client, "doomed", 0, values(0, 3, "d")).await;
        let fetcher = Fetcher::new(client.clone(), config()).unwrap();
        fetcher.assign("doomed", 0, StartOffset::Earliest);
        collect(&fetcher, 3).await;
        client.delete_topics(vec!["doomed".into()]).await.unwrap();
        let e = loop {
            match fetcher.next_batch().await.unwrap() {
                Err(e) => break e,
                Ok(b) => assert!(b.records.is_empty()),
            }
        };
        assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
        assert_eq!(e.topic(), Some("doomed"));
    })
    .await
}

#[tokio::test]
async fn the_reader_reads_seeks_and_reports_lag() {
    within(async {
        let c = fake(2).await;
        c.create_topic("read", 2);
        let client = client(&c).await;
        let p = BufferedProducer::new(client.clone(), ProducerConfig::default()).unwrap();
        let records = (0..20).map(|i| {
            ProducerRecord::new(format!("v{i}"))
                .to("read")
                .at_partition(1)
                .with_key(format!("k{i}"))
                .with_header("h", Bytes::from(vec![i as u8]))
                .with_timestamp(1_700_000_000_000 + i * 1000)
        });
        assert!(p.send_all(records).await.iter().all(|r| r.is_ok()));
        let reader =
            PartitionReader::new(client.clone(), "read", 1, StartOffset::Earliest, config())
                .unwrap();
        let m = reader.read_message().await.unwrap();
        assert_eq!(
            (m.offset, m.key.as_deref(), m.value.as_deref()),
            (0, Some(&b"k0"[..]), Some(&b"v0"[..]))
        );
        assert_eq!(m.headers[0].value.as_deref(), Some(&[0u8][..]));
        assert_eq!(m.timestamp, 1_700_000_000_000);
        assert_eq!(reader.offset(), 1);
        assert_eq!(reader.lag(), 19);
        assert_eq!(reader.read_lag().await.unwrap(), 19);
        // A read cancelled while waiting loses nothing.
        let batch = reader.read_batch(5, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            batch.iter().map(|m| m.offset).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        reader.set_offset(15).await;
        let next: Vec<i64> = reader
            .stream()
            .take(3)
            .map(|m| m.unwrap().offset)
            .collect()
            .await;
        assert_eq!(next, vec![15, 16, 17]);
        let at = reader.set_offset_at(1_700_000_010_500).await.unwrap();
        assert_eq!(at, 11);
        assert_eq!(reader.read_message().await.unwrap().offset, 11);
        // Nothing new: a read times out cleanly and the next one still works.
        reader.set_offset(20).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), reader.read_message())
                .await
                .is_err()
        );
        p.send(ProducerRecord::new("late").to("read").at_partition(1))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(
            reader.read_message().await.unwrap().value.as_deref(),
            Some(&b"late"[..])
        );
        let stats = reader.stats();
        assert!(stats.messages >= 10 && stats.offset == 21, "{stats:?}");
        reader.close();
        assert!(matches!(
            reader.read_message().await.unwrap_err().kind(),
            ConsumeErrorKind::Closed
        ));
    })
    .await
}

#[tokio::test]
async fn a_corrupt_fetch_stops_the_partition_at_its_offset_until_a_seek() {
    within(async {
        let c = fake(1).await;
        c.create_topic("bad", 2);
        let client = client(&c).await;
        produce(&client, "bad", 0, values(0, 10, "b")).await;
        produce(&client, "bad", 1, values(0, 10, "g")).await;
        let mut config = config();
        config.fetches_per_broker = 1;
        c.inject(Fault::new(ApiKey::Fetch, FaultAction::CorruptRecords));
        let fetcher = Fetcher::new(client.clone(), config).unwrap();
        fetcher.assign("bad", 0, StartOffset::Earliest);
        let e = fetcher.next_batch().await.unwrap().unwrap_err();
        assert!(
            matches!(e.kind(), ConsumeErrorKind::Corrupt { offset: 0, .. }),
            "{e}"
        );
        assert_eq!(e.topic(), Some("bad"));
        assert_eq!(e.partition(), Some(0));
        assert!(e.to_string().contains("CRC"), "{e}");
        // The partition stays stopped: another partition is read, this one not.
        fetcher.assign("bad", 1, StartOffset::Earliest);
        let got = collect(&fetcher, 10).await;
        assert_eq!(got.keys().collect::<Vec<_>>(), [&("bad".to_string(), 1)]);
        assert_eq!(fetcher.position("bad", 0), Some(0));
        // Moved (to the same offset, the data now being fine), it reads again.
        fetcher.seek("bad", 0, 0);
        let got = collect(&fetcher, 10).await;
        assert_eq!(got[&("bad".to_string(), 0)], expect(0, 10, "b"));
    })
    .await
}

#[tokio::test]
async fn a_bad_crc_is_an_error_naming_the_offset_or_skipped_when_checks_are_off() {
    use bytes::BytesMut;
    use kafka_consumer::fetch::{extract_records, Isolation};
    use kafka_protocol::records::{Record, RecordBatch};
    let mut batch = RecordBatch::new(
        40,
        vec![Record {
            offset: 40,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: Vec::new(),
        }],
    );
    batch.base_offset = 40;
    let mut buf = BytesMut::new();
    batch.encode(&mut buf).unwrap();
    // Change the value's byte (just before the headers count): the CRC no longer matches.
    let value_at = buf.len() - 2;
    buf[value_at] = b'y';
    let bytes = buf.freeze();
    let e = extract_records(&bytes, 40, Isolation::ReadUncommitted, &[], true).unwrap_err();
    assert!(e.to_string().contains("CRC"), "{e}");
    let (records, next) =
        extract_records(&bytes, 40, Isolation::ReadUncommitted, &[], false).unwrap();
    assert_eq!((records.len(), next), (1, 41));
    assert_eq!(records[0].value.as_deref(), Some(&b"y"[..]));
}
