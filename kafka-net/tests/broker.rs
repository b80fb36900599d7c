//! The integration suite: against an in-process fake cluster (kafka-test) by default,
//! and against the cluster named by `KAFKA_BOOTSTRAP` (`host:port[,host:port]`) when
//! it is set, e.g. Apache Kafka, or the local Tansu that the test command starts.
//!
//! Tansu answers ListOffsets "latest" with the last batch's base offset + 1 and
//! by-timestamp lookups with 0. These tests write one record per batch (so base
//! offset + 1 is the log end under both readings) and check by-timestamp lookups
//! strictly except when `KAFKA_QUIRKS=tansu`; the fake cluster checks them strictly.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
use kafka_protocol::records::{decode_record_sets, DecodeOptions, Record, RecordBatch, RecordSet};
use kafka_protocol::ErrorCode;
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::time::Duration;

/// The cluster a test runs against.
struct Target {
    bootstrap: String,
    /// Tansu, with its known quirks.
    tansu: bool,
    /// The fake cluster, when no cluster is named; stops when the test ends.
    _fake: Option<FakeCluster>,
}

async fn target() -> Target {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) => Target {
            bootstrap,
            tansu: std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu"),
            _fake: None,
        },
        Err(_) => {
            let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
                .await
                .unwrap();
            Target {
                bootstrap: fake.bootstrap(),
                tansu: false,
                _fake: Some(fake),
            }
        }
    }
}

async fn client(t: &Target) -> KafkaClient {
    KafkaClient::connect(&[t.bootstrap.as_str()], ClientConfig::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", t.bootstrap))
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn with_timeout<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

async fn topic(c: &KafkaClient, partitions: i32) -> String {
    let name = unique("net");
    c.create_topics(vec![NewTopic::new(&name, partitions)])
        .await
        .expect("create topic");
    name
}

/// Produces one record per batch (and per request), returning the base offsets.
async fn produce(c: &KafkaClient, topic: &str, partition: i32, values: &[(&str, i64)]) -> Vec<i64> {
    let mut offsets = Vec::new();
    for (value, ts) in values {
        let mut batch = RecordBatch::new(
            0,
            vec![Record {
                offset: 0,
                timestamp: *ts,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                headers: Vec::new(),
            }],
        );
        batch.first_timestamp = *ts;
        batch.max_timestamp = *ts;
        let mut records = BytesMut::new();
        batch.encode(&mut records).unwrap();
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.to_string().into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records.freeze()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = c.request(request).await.expect("produce");
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(ErrorCode::from(p.error_code), ErrorCode::None);
        offsets.push(p.base_offset);
    }
    offsets
}

#[tokio::test]
async fn metadata_lists_the_brokers_and_a_new_topic() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let m = c.metadata().await.unwrap();
        assert!(!m.brokers.is_empty());
        let t = topic(&c, 3).await;
        assert_eq!(c.partition_count(&t).await.unwrap(), 3);
        let leader = c.leader(&t, 2).await.unwrap();
        assert!(
            m.brokers.contains_key(&leader.node_id)
                || c.metadata()
                    .await
                    .unwrap()
                    .brokers
                    .contains_key(&leader.node_id)
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
async fn topics_are_created_grown_and_deleted() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let t = topic(&c, 1).await;
        let again = c
            .create_topics(vec![NewTopic::new(&t, 1)])
            .await
            .unwrap_err();
        assert_eq!(again.code(), Some(ErrorCode::TopicAlreadyExists), "{again}");
        match c.create_partitions(&t, 4).await {
            Ok(()) => assert_eq!(c.partition_count(&t).await.unwrap(), 4),
            // Tansu does not implement CreatePartitions; real Kafka must.
            Err(e) if cluster.tansu => eprintln!("create_partitions on Tansu: {e}"),
            Err(e) => panic!("create_partitions: {e}"),
        }
        c.delete_topics(vec![t.clone()]).await.unwrap();
        let m = c.refresh_metadata().await.unwrap();
        assert!(!m.topics.contains_key(&t), "deleted topic still listed");
    })
    .await
}

#[tokio::test]
async fn produce_then_fetch_through_send_and_list_offsets() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let t = topic(&c, 1).await;
        assert_eq!(c.offset_earliest(&t, 0).await.unwrap(), 0);
        assert_eq!(c.offset_latest(&t, 0).await.unwrap(), 0);
        let values = [
            ("a", 1_700_000_000_000),
            ("b", 1_700_000_001_000),
            ("c", 1_700_000_002_000),
        ];
        let offsets = produce(&c, &t, 0, &values).await;
        assert_eq!(offsets, vec![0, 1, 2]);
        assert_eq!(c.offset_earliest(&t, 0).await.unwrap(), 0);
        assert_eq!(c.offset_latest(&t, 0).await.unwrap(), 3);

        // Before every record: the first offset, under Tansu and Kafka alike.
        let first = c.offsets_for_times(&t, 0, 1_600_000_000_000).await.unwrap();
        assert_eq!(first.map(|f| f.offset), Some(0));
        if !cluster.tansu {
            let mid = c.offsets_for_times(&t, 0, 1_700_000_000_500).await.unwrap();
            assert_eq!(mid.map(|f| f.offset), Some(1));
            let after = c.offsets_for_times(&t, 0, 1_800_000_000_000).await.unwrap();
            assert_eq!(after, None);
        }

        let fetch = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: t.clone().into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    log_start_offset: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        // Fetch v13+ names topics by id instead of by name.
        let mut fetch = fetch;
        if c.api_version(kafka_protocol::ApiKey::Fetch).await.unwrap() >= 13 {
            let m = c.metadata().await.unwrap();
            fetch.topics[0].topic_id = m.topics[&t].id;
            fetch.topics[0].topic = Default::default();
        }
        let response = c.request(fetch).await.expect("fetch");
        let p = &response.responses[0].partitions[0];
        assert_eq!(ErrorCode::from(p.error_code), ErrorCode::None);
        assert_eq!(p.high_watermark, 3);
        let sets =
            decode_record_sets(p.records.as_ref().unwrap(), &DecodeOptions::default()).unwrap();
        let got: Vec<(i64, Bytes)> = sets
            .sets
            .iter()
            .flat_map(|s| match s {
                RecordSet::Batch(b) => b.records.clone(),
                RecordSet::Legacy(_) => panic!("v2 batches expected"),
            })
            .map(|r| (r.offset, r.value.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Bytes::from("a")),
                (1, Bytes::from("b")),
                (2, Bytes::from("c"))
            ]
        );
    })
    .await
}

#[tokio::test]
async fn a_thousand_concurrent_requests_on_one_connection() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let m = c.metadata().await.unwrap();
        let broker = m.brokers.values().next().unwrap().clone();
        let conn = c
            .connection(&broker, kafka_net::Purpose::Admin)
            .await
            .unwrap();
        let requests = (0..1000).map(|i| {
            let conn = conn.clone();
            async move {
                let name = format!("no-such-topic-{i}");
                let request = MetadataRequest {
                    topics: Some(vec![
                        kafka_protocol::messages::metadata_request::MetadataRequestTopic {
                            name: Some(name.clone().into()),
                            ..Default::default()
                        },
                    ]),
                    allow_auto_topic_creation: false,
                    ..Default::default()
                };
                let r = conn.send(&request).await.expect("answered");
                assert_eq!(r.topics.len(), 1);
                assert_eq!(
                    r.topics[0].name.as_deref(),
                    Some(name.as_str()),
                    "answer matched to its request"
                );
            }
        });
        futures::future::join_all(requests).await;
        let snapshot = c.broker_metrics();
        let s = snapshot
            .get(&broker.addr())
            .expect("metrics for the broker");
        assert!(
            s.requests >= 1000 && s.responses >= 1000 && s.in_flight == 0,
            "{s:?}"
        );
    })
    .await
}

#[tokio::test]
async fn a_dropped_request_leaves_the_client_usable() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        for _ in 0..10 {
            let _ = tokio::time::timeout(Duration::from_micros(50), c.refresh_metadata()).await;
        }
        assert!(!c.refresh_metadata().await.unwrap().brokers.is_empty());
    })
    .await
}

#[tokio::test]
async fn concurrent_refreshes_share_one_metadata_request() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let before: u64 = c.broker_metrics().values().map(|s| s.requests).sum();
        let refreshes = (0..20).map(|_| c.refresh_metadata());
        for r in futures::future::join_all(refreshes).await {
            r.unwrap();
        }
        let after: u64 = c.broker_metrics().values().map(|s| s.requests).sum();
        assert!(
            after - before < 20,
            "{} metadata requests for 20 callers",
            after - before
        );
    })
    .await
}

#[tokio::test]
async fn group_coordinator_is_found_and_cached() {
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let group = unique("group");
        let a = c.coordinator(0, &group).await.unwrap();
        let b = c.coordinator(0, &group).await.unwrap();
        assert_eq!(a, b);
    })
    .await
}

#[tokio::test]
async fn statistics_name_brokers_by_node_and_stream_until_close() {
    use futures::StreamExt;
    with_timeout(async {
        let cluster = target().await;
        let c = client(&cluster).await;
        let mut stream = c.statistics_every(Duration::from_millis(20));
        let first = stream.next().await.unwrap();
        c.refresh_metadata().await.unwrap();
        let metadata = c.metadata().await.unwrap();
        let s = c.statistics();
        assert_eq!(s.client_id, "kafka-rs");
        assert!(s.time_ms > 1_600_000_000_000);
        let mut named = 0;
        for (addr, b) in &s.brokers {
            assert_eq!(&b.addr, addr);
            if let Some(info) = metadata.brokers.values().find(|i| &i.addr() == addr) {
                assert_eq!(b.node_id, info.node_id);
                named += 1;
            }
            assert!(b.requests >= b.responses + b.errors);
            assert!(b.rtt.p50_us <= b.rtt.p99_us.max(b.rtt.max_us));
            assert_eq!(b.rtt.count, b.responses);
        }
        assert!(named >= 1, "{s:?}");
        let requests = |s: &kafka_net::stats::ClientStatistics| -> u64 {
            s.brokers.values().map(|b| b.requests).sum()
        };
        let second = stream.next().await.unwrap();
        assert!(requests(&second) > requests(&first));
        let json = serde_json::to_value(&second).unwrap();
        for field in ["client_id", "time_ms", "age_us", "brokers"] {
            assert!(json.get(field).is_some(), "no {field} in {json}");
        }
        c.close().await;
        assert!(stream.next().await.is_none(), "the stream ends on close");
    })
    .await
}
