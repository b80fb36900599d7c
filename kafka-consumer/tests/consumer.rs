//! The simple consumer, the multiplexer and the offset tools against the in-process
//! fake cluster and, when `KAFKA_BOOTSTRAP` names one, against that cluster too (fault
//! tests need the fake and run only there). With `KAFKA_QUIRKS=tansu` the checks Tansu
//! cannot pass are skipped: it answers a ListOffsets by timestamp with the log start,
//! never answers OFFSET_OUT_OF_RANGE (a fetch past the end is empty), does not support
//! DeleteRecords and does not keep commit metadata.

#![allow(clippy::unwrap_used)]

use futures::{FutureExt, StreamExt};
use kafka_consumer::offsets::{EnvelopeConsumer, OffsetCoordinator, OffsetMaster};
use kafka_consumer::{
    ConsumeErrorKind, Consumer, ConsumerConfig, FetchOptions, Fetcher, FetcherConfig, Message, Mx,
    OffsetReset, SimpleConsumer, StartOffset,
};
use kafka_net::{Client, NewTopic};
use kafka_producer::{Producer, SimpleProducer, SimpleProducerConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::DeleteRecordsRequest;
use kafka_protocol::{ApiKey, ErrorCode, StrBytes};
use kafka_test::{Fault, FaultAction, Times};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{envs as clusters, fake, unique, within_limit, Env};

/// The fake (one broker), and the named cluster when there is one.
async fn envs() -> Vec<Env> {
    clusters(1).await
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    within_limit(Duration::from_secs(90), f).await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A new topic whose partitions all answer offset lookups.
async fn topic(env: &Env, prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    env.client
        .create_topics(vec![NewTopic::new(&name, partitions)])
        .await
        .unwrap();
    for p in 0..partitions {
        let mut tries = 0;
        while env.client.offset_latest(&name, p).await.is_err() {
            tries += 1;
            assert!(tries < 100, "{name}/{p} never got a leader");
            let _ = env.client.refresh_metadata().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    name
}

fn producer(env: &Env) -> SimpleProducer {
    let client: Arc<dyn Client> = Arc::new(env.client.clone());
    SimpleProducer::new(client, SimpleProducerConfig::default()).unwrap()
}

/// Produces `values` to a partition, one batch (one request) per value, with
/// timestamps `ts(i)`; returns the first offset.
async fn produce(
    env: &Env,
    topic: &str,
    partition: i32,
    values: &[String],
    ts: impl Fn(usize) -> i64,
) -> i64 {
    let p = producer(env);
    let mut first = None;
    for (i, v) in values.iter().enumerate() {
        let mut m = kafka_producer::Message::new(v.clone()).with_key(format!("k{i}"));
        m.timestamp = Some(ts(i));
        let base = p.produce(topic, partition, vec![m]).await.unwrap();
        first.get_or_insert(base);
    }
    first.unwrap_or(-1)
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn produce_now(env: &Env, topic: &str, partition: i32, values: &[String]) -> i64 {
    produce(env, topic, partition, values, |_| now_ms()).await
}

/// Fast settings for tests.
fn config(topic: &str, partition: i32) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(topic, partition);
    c.request_timeout = Duration::from_secs(10);
    c.max_wait = Duration::from_millis(100);
    c.retry_wait = Duration::from_millis(10);
    c.retry_err_wait = Duration::from_millis(50);
    c
}

fn consumer(env: &Env, config: ConsumerConfig) -> SimpleConsumer {
    SimpleConsumer::new(env.client.clone(), config).unwrap()
}

fn value(m: &Message) -> String {
    String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap()
}

async fn take(c: &dyn Consumer, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = c.consume().await.unwrap();
        out.push((m.offset, value(&m)));
    }
    out
}

fn expect_offsets(got: &[(i64, String)], from: i64, prefix: &str) {
    let want: Vec<(i64, String)> = (0..got.len() as i64)
        .map(|i| (from + i, format!("{prefix}{}", from + i)))
        .collect();
    assert_eq!(got, want.as_slice());
}

/// Commit metadata as read back (Tansu keeps none).
fn meta(env: &Env, m: &str) -> Option<String> {
    (!env.tansu).then(|| m.to_string())
}

async fn delete_records(env: &Env, topic: &str, partition: i32, before: i64) {
    let version = env.client.api_version(ApiKey::DeleteRecords).await.unwrap();
    let mut request = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: StrBytes::from(topic.to_string()),
            partitions: vec![DeleteRecordsPartition {
                partition_index: partition,
                offset: before,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    request.retain_version(version);
    let response = env.client.request(request).await.unwrap();
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "DeleteRecords failed");
    assert_eq!(p.low_watermark, before);
}

/// Kafka answers a partition with at most `max.partition.fetch.bytes` (or one larger
/// batch); Tansu ignores that limit and sends megabytes. Either way the fetcher hands a
/// partition's records over in parts of at most that many bytes of batches.
#[tokio::test]
async fn a_large_fetch_is_handed_over_in_parts_of_the_partition_limit() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "parts", 1).await;
            let p = producer(&env);
            let value = "v".repeat(1000);
            for batch in 0..100 {
                let records = (0..20)
                    .map(|i| kafka_producer::Message::new(format!("{:04}{value}", batch * 20 + i)))
                    .collect();
                p.produce(&t, 0, records).await.unwrap();
            }
            let limit = 64 << 10;
            let mut config = FetcherConfig::default();
            let mut fetch = FetchOptions::default();
            fetch.max_bytes = limit;
            fetch.max_wait = Duration::from_millis(100);
            config.fetch = fetch;
            let fetcher = Fetcher::new(env.client.clone(), config).unwrap();
            fetcher.assign(&t, 0, StartOffset::Earliest);
            let mut read = Vec::new();
            while read.len() < 2000 {
                let batch = fetcher.next_batch().await.unwrap().unwrap();
                let bytes: usize = batch
                    .records
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                    .sum();
                // Values are less than the batches that carry them.
                assert!(
                    bytes <= limit as usize,
                    "{}: a part of {bytes} bytes",
                    env.name
                );
                read.extend(batch.records.iter().map(|r| {
                    let v = r.value.clone().unwrap();
                    (r.offset, String::from_utf8(v[..4].to_vec()).unwrap())
                }));
            }
            let want: Vec<(i64, String)> = (0..2000).map(|i| (i, format!("{i:04}"))).collect();
            assert_eq!(read, want, "{}", env.name);
            fetcher.close();
        }
    })
    .await
}

#[tokio::test]
async fn consumes_from_earliest_latest_offset_and_timestamp() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "start", 1).await;
            let base = now_ms() - 100_000;
            produce(&env, &t, 0, &values("v", 10), |i| base + 1000 * i as i64).await;

            let c = consumer(&env, config(&t, 0));
            let first = c.consume().await.unwrap();
            assert_eq!(
                (&*first.topic, first.partition, first.offset),
                (t.as_str(), 0, 0),
                "{}",
                env.name
            );
            assert_eq!(first.key.as_deref(), Some(&b"k0"[..]));
            assert_eq!(first.timestamp, base);
            expect_offsets(&take(&c, 9).await, 1, "v");

            let mut cfg = config(&t, 0);
            cfg.start_offset = StartOffset::Offset(4);
            expect_offsets(&take(&consumer(&env, cfg), 3).await, 4, "v");

            let mut starts = vec![StartOffset::Latest];
            if env.tansu {
                eprintln!("Tansu: ListOffsets by timestamp gives the log start; not checked");
            } else {
                let mut cfg = config(&t, 0);
                cfg.start_offset = StartOffset::Timestamp(base + 4500);
                expect_offsets(&take(&consumer(&env, cfg), 2).await, 5, "v");
                starts.push(StartOffset::Timestamp(now_ms() + 3_600_000));
            }

            // Latest, and a timestamp after every record: only what comes next.
            for start in starts {
                let mut cfg = config(&t, 0);
                cfg.start_offset = start;
                cfg.retry_limit = Some(2);
                let c = consumer(&env, cfg);
                let e = c.consume().await.unwrap_err();
                assert!(e.is_no_data(), "{start:?} on {}: {e}", env.name);
                let at = produce_now(&env, &t, 0, &["late".to_string()]).await;
                let m = c.consume().await.unwrap();
                assert_eq!(
                    (m.offset, value(&m)),
                    (at, "late".to_string()),
                    "{start:?} on {}",
                    env.name
                );
            }
        }
    })
    .await
}

#[tokio::test]
async fn no_data_after_retry_limit_then_continues() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "nodata", 1).await;
            produce_now(&env, &t, 0, &values("v", 3)).await;
            let mut cfg = config(&t, 0);
            cfg.retry_limit = Some(3);
            cfg.retry_wait = Duration::from_millis(20);
            let c = consumer(&env, cfg);
            expect_offsets(&take(&c, 3).await, 0, "v");
            let started = std::time::Instant::now();
            let e = c.consume().await.unwrap_err();
            assert!(matches!(e.kind(), ConsumeErrorKind::NoData(3)), "{e}");
            assert_eq!((e.topic(), e.partition()), (Some(t.as_str()), Some(0)));
            assert!(
                started.elapsed() >= Duration::from_millis(40),
                "{:?}",
                started.elapsed()
            );
            // The position is kept; the count starts again.
            assert!(c.consume().await.unwrap_err().is_no_data());
            produce_now(&env, &t, 0, &["v3".to_string()]).await;
            expect_offsets(&take(&c, 1).await, 3, "v");
        }
    })
    .await
}

#[tokio::test]
async fn every_offset_reset_policy() {
    within(async {
        for env in envs().await {
            if env.tansu {
                eprintln!("Tansu never answers OFFSET_OUT_OF_RANGE: reset policies not checked");
                continue;
            }
            let t = topic(&env, "reset", 1).await;
            produce_now(&env, &t, 0, &values("v", 10)).await;
            let beyond = |reset: OffsetReset| {
                let mut cfg = config(&t, 0);
                cfg.start_offset = StartOffset::Offset(100);
                cfg.offset_reset = reset;
                cfg.retry_limit = Some(2);
                cfg
            };

            // Earliest: back to the log start.
            let c = consumer(&env, beyond(OffsetReset::Earliest));
            expect_offsets(&take(&c, 2).await, 0, "v");

            // Latest: to the end, then what comes next.
            let c = consumer(&env, beyond(OffsetReset::Latest));
            assert!(c.consume().await.unwrap_err().is_no_data(), "{}", env.name);
            produce_now(&env, &t, 0, &["v10".to_string()]).await;
            expect_offsets(&take(&c, 1).await, 10, "v");

            // Error: every call fails until the consumer is moved.
            let c = consumer(&env, beyond(OffsetReset::Error));
            for _ in 0..2 {
                let e = c.consume().await.unwrap_err();
                match e.kind() {
                    ConsumeErrorKind::OffsetOutOfRange { offset, low, high } => {
                        assert_eq!((*offset, *low, *high), (100, 0, 11), "{}", env.name)
                    }
                    other => panic!("{other:?}"),
                }
                assert_eq!(e.partition(), Some(0));
            }
            c.seek(StartOffset::Offset(7)).await.unwrap();
            expect_offsets(&take(&c, 1).await, 7, "v");

            // Custom: the function picks the offset, or fails.
            let calls = Arc::new(Mutex::new(Vec::new()));
            let seen = calls.clone();
            let c = consumer(
                &env,
                beyond(OffsetReset::Custom(Arc::new(
                    move |topic, partition, offset, (low, high)| {
                        seen.lock().unwrap().push((
                            topic.to_string(),
                            partition,
                            offset,
                            low,
                            high,
                        ));
                        Some(low + 3)
                    },
                ))),
            );
            expect_offsets(&take(&c, 2).await, 3, "v");
            assert_eq!(*calls.lock().unwrap(), vec![(t.clone(), 0, 100, 0, 11)]);
            let c = consumer(
                &env,
                beyond(OffsetReset::Custom(Arc::new(|_, _, _, _| None))),
            );
            assert!(matches!(
                c.consume().await.unwrap_err().kind(),
                ConsumeErrorKind::OffsetOutOfRange { offset: 100, .. }
            ));

            // Below the log start after DeleteRecords.
            delete_records(&env, &t, 0, 5).await;
            let mut cfg = config(&t, 0);
            cfg.start_offset = StartOffset::Offset(2);
            expect_offsets(&take(&consumer(&env, cfg.clone()), 2).await, 5, "v");
            cfg.offset_reset = OffsetReset::Error;
            let e = consumer(&env, cfg).consume().await.unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    ConsumeErrorKind::OffsetOutOfRange {
                        offset: 2,
                        low: 5,
                        ..
                    }
                ),
                "{e}"
            );
            // Earliest start after the deletion.
            expect_offsets(&take(&consumer(&env, config(&t, 0)), 1).await, 5, "v");
        }
    })
    .await
}

#[tokio::test]
async fn max_message_age_skips_old_records() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "age", 1).await;
            let old = now_ms() - 3_600_000;
            produce(&env, &t, 0, &values("v", 3), |_| old).await;
            produce_now(&env, &t, 0, &["v3".into(), "v4".into()]).await;
            produce(&env, &t, 0, &["v5".into()], |_| old).await;
            produce_now(&env, &t, 0, &["v6".into()]).await;
            let mut cfg = config(&t, 0);
            cfg.max_message_age = Some(Duration::from_secs(600));
            cfg.retry_limit = Some(2);
            let c = consumer(&env, cfg);
            let got = take(&c, 3).await;
            assert_eq!(
                got,
                vec![(3, "v3".into()), (4, "v4".into()), (6, "v6".into())],
                "{}",
                env.name
            );
            assert!(c.consume().await.unwrap_err().is_no_data());
        }
    })
    .await
}

#[tokio::test]
async fn leader_moved_and_broker_restarted_mid_consumption() {
    within(async {
        let mut env = fake(2).await;
        let t = topic(&env, "moves", 1).await;
        produce_now(&env, &t, 0, &values("v", 60)).await;
        let mut cfg = config(&t, 0);
        cfg.max_fetch_bytes = 1; // one batch (one record) per fetch
        cfg.retry_err_limit = 100;
        let c = Arc::new(consumer(&env, cfg));
        let mut got = take(&*c, 20).await;

        let cluster = env.fake.as_mut().unwrap();
        let first = cluster.leader(&t, 0).unwrap();
        let other = 1 - first;
        assert!(cluster.move_leader(&t, 0, other));
        got.extend(take(&*c, 20).await);

        // The leader goes down; the consumer retries until it is back.
        cluster.stop_broker(other).await;
        let reader = {
            let c = c.clone();
            tokio::spawn(async move { take(&*c, 20).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!reader.is_finished());
        cluster.restart_broker(other).await.unwrap();
        got.extend(reader.await.unwrap());
        expect_offsets(&got, 0, "v");

        // And the end: nothing twice.
        let mut cfg = config(&t, 0);
        cfg.start_offset = StartOffset::Offset(59);
        cfg.retry_limit = Some(2);
        let tail = consumer(&env, cfg);
        expect_offsets(&take(&tail, 1).await, 59, "v");
        assert!(tail.consume().await.unwrap_err().is_no_data());
    })
    .await
}

#[tokio::test]
async fn retriable_errors_are_retried_up_to_the_limit() {
    within(async {
        let env = fake(1).await;
        let cluster = env.fake.as_ref().unwrap();
        let t = topic(&env, "faults", 1).await;
        produce_now(&env, &t, 0, &values("v", 3)).await;
        let mut cfg = config(&t, 0);
        cfg.retry_err_limit = 3;
        cfg.retry_err_wait = Duration::from_millis(10);
        let c = consumer(&env, cfg);
        cluster.inject(
            Fault::new(
                ApiKey::Fetch,
                FaultAction::Error(ErrorCode::NotLeaderOrFollower),
            )
            .times(Times::N(3)),
        );
        expect_offsets(&take(&c, 1).await, 0, "v");
        cluster.inject(Fault::new(ApiKey::Fetch, FaultAction::DropConnection).times(Times::N(2)));
        expect_offsets(&take(&c, 2).await, 1, "v");
        cluster.inject(
            Fault::new(
                ApiKey::Fetch,
                FaultAction::Error(ErrorCode::NotLeaderOrFollower),
            )
            .times(Times::Always),
        );
        let e = c.consume().await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotLeaderOrFollower));
        assert!(e.is_retriable());
        cluster.clear_faults();
        // Not retriable: returned at once.
        cluster.inject(Fault::new(
            ApiKey::Fetch,
            FaultAction::Error(ErrorCode::TopicAuthorizationFailed),
        ));
        let e = c.consume().await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TopicAuthorizationFailed));
    })
    .await
}

#[tokio::test]
async fn consume_is_cancel_safe_and_close_ends_it() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "cancel", 1).await;
            produce_now(&env, &t, 0, &values("v", 30)).await;
            let mut cfg = config(&t, 0);
            cfg.max_fetch_bytes = 1;
            let c = Arc::new(consumer(&env, cfg));
            let mut got = Vec::new();
            let mut dropped = 0;
            let mut wait = 0u64;
            for i in 0.. {
                let m = if i % 2 == 0 {
                    // Polled once, then dropped: with the buffer empty, mid-fetch.
                    c.consume().now_or_never()
                } else {
                    // Time limits from 0 to 20 ms.
                    wait = (wait + 3) % 21;
                    tokio::time::timeout(Duration::from_millis(wait), c.consume())
                        .await
                        .ok()
                };
                match m {
                    Some(m) => {
                        let m = m.unwrap();
                        got.push((m.offset, value(&m)));
                    }
                    None => dropped += 1,
                }
                if got.len() == 30 {
                    break;
                }
            }
            assert!(dropped > 0, "{}", env.name);
            expect_offsets(&got, 0, "v");

            // close ends a waiting consume() and every later one.
            let waiting = {
                let c = c.clone();
                tokio::spawn(async move { c.consume().await })
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.close().await;
            let e = waiting.await.unwrap().unwrap_err();
            assert!(matches!(e.kind(), ConsumeErrorKind::Closed), "{e}");
            assert!(matches!(
                c.consume().await.unwrap_err().kind(),
                ConsumeErrorKind::Closed
            ));
        }
    })
    .await
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    within(async {
        let env = fake(1).await;
        let mut cfg = config("x", 0);
        cfg.max_fetch_bytes = 0;
        let e = SimpleConsumer::new(env.client.clone(), cfg).unwrap_err();
        assert!(matches!(e.kind(), ConsumeErrorKind::Config(_)));
        assert!(SimpleConsumer::new(env.client.clone(), ConsumerConfig::default()).is_err());
    })
    .await
}

#[tokio::test]
async fn mx_merges_partition_consumers_until_they_run_dry() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "mx", 3).await;
            for p in 0..3 {
                produce_now(&env, &t, p, &values(&format!("p{p}-"), 10)).await;
            }
            let consumers: Vec<Arc<dyn Consumer>> = (0..3)
                .map(|p| {
                    let mut cfg = config(&t, p);
                    cfg.retry_limit = Some(2);
                    Arc::new(consumer(&env, cfg)) as Arc<dyn Consumer>
                })
                .collect();
            let mut mx = Mx::new(consumers);
            assert_eq!(mx.workers(), 3);
            let mut per: Vec<Vec<(i64, String)>> = vec![Vec::new(); 3];
            while let Some(m) = StreamExt::next(&mut mx).await {
                let m = m.unwrap();
                per[m.partition as usize].push((m.offset, value(&m)));
            }
            for (p, got) in per.iter().enumerate() {
                expect_offsets(got, 0, &format!("p{p}-"));
                assert_eq!(got.len(), 10, "{}", env.name);
            }
            assert_eq!(mx.workers(), 0);
            assert!(matches!(
                mx.consume().await.unwrap_err().kind(),
                ConsumeErrorKind::Closed
            ));

            // Without a retry limit the workers run until closed.
            let consumers: Vec<Arc<dyn Consumer>> = (0..3)
                .map(|p| Arc::new(consumer(&env, config(&t, p))) as Arc<dyn Consumer>)
                .collect();
            let mx = Mx::new(consumers);
            let mut n = 0;
            while n < 30 {
                mx.consume().await.unwrap();
                n += 1;
            }
            assert_eq!(mx.workers(), 3);
            mx.close().await;
            assert_eq!(mx.workers(), 0);
            assert!(mx.next().await.is_none());
        }
    })
    .await
}

#[tokio::test]
async fn offsets_commit_fetch_and_lookup() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "offsets", 2).await;
            let group = unique("group");
            let oc = OffsetCoordinator::new(env.client.clone(), &group);
            assert_eq!(oc.fetch(&t, 0).await.unwrap(), None, "{}", env.name);
            oc.commit(&t, 0, 42, Some("meta")).await.unwrap();
            oc.commit(&t, 1, 7, None).await.unwrap();
            assert_eq!(
                oc.fetch(&t, 0).await.unwrap(),
                Some((42, meta(&env, "meta")))
            );
            assert_eq!(oc.fetch(&t, 1).await.unwrap(), Some((7, None)));
            oc.commit(&t, 0, 43, None).await.unwrap();
            assert_eq!(oc.fetch(&t, 0).await.unwrap(), Some((43, None)));
            // Per-partition errors are reported (Tansu keeps no metadata, so has no
            // size limit).
            if !env.tansu {
                let e = oc
                    .commit(&t, 0, 44, Some(&"x".repeat(5000)))
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), Some(ErrorCode::OffsetMetadataTooLarge), "{e}");
                assert_eq!((e.topic(), e.partition()), (Some(t.as_str()), Some(0)));
            }

            produce_now(&env, &t, 0, &values("v", 5)).await;
            produce_now(&env, &t, 1, &values("v", 3)).await;
            let start = if env.tansu {
                0 // no DeleteRecords
            } else {
                delete_records(&env, &t, 0, 2).await;
                2
            };
            let om = OffsetMaster::new(env.client.clone());
            assert_eq!(om.earliest(&t, 0).await.unwrap(), start);
            assert_eq!(om.latest(&t, 1).await.unwrap(), 3);
            let parts = [(t.as_str(), 0), (t.as_str(), 1)];
            let earliest = om.earliest_many(parts).await.unwrap();
            let latest = om.latest_many(parts).await.unwrap();
            assert_eq!(
                earliest.values().copied().collect::<Vec<_>>(),
                vec![start, 0]
            );
            assert_eq!(latest.values().copied().collect::<Vec<_>>(), vec![5, 3]);
            let e = om.latest("no-such-topic-here", 0).await.unwrap_err();
            assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition), "{e}");
        }
    })
    .await
}

#[tokio::test]
async fn envelope_consumer_commits_acks_and_cancels() {
    within(async {
        for env in envs().await {
            let t = topic(&env, "envelope", 1).await;
            produce_now(&env, &t, 0, &values("v", 6)).await;
            let group = unique("envelopes");
            let oc = OffsetCoordinator::new(env.client.clone(), &group);
            let ec = Arc::new(EnvelopeConsumer::new(
                Arc::new(consumer(&env, config(&t, 0))),
                oc.clone(),
            ));

            let e0 = ec.next().await.unwrap().unwrap();
            assert_eq!((e0.offset, value(&e0)), (0, "v0".to_string()));
            e0.commit("m0").await.unwrap();
            assert_eq!(
                oc.fetch(&t, 0).await.unwrap(),
                Some((1, meta(&env, "m0"))),
                "{}",
                env.name
            );

            // next() waits while an envelope is unresolved.
            let e1 = ec.next().await.unwrap().unwrap();
            assert_eq!(e1.message().offset, 1);
            let waiting = {
                let ec = ec.clone();
                tokio::spawn(async move { ec.next().await })
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!waiting.is_finished());
            e1.ack();
            let e2 = waiting.await.unwrap().unwrap().unwrap();
            assert_eq!(e2.offset, 2);
            assert_eq!(oc.fetch(&t, 0).await.unwrap(), Some((1, meta(&env, "m0"))));

            // Dropping an envelope acknowledges it.
            drop(e2);
            let e3 = ec.next().await.unwrap().unwrap();
            assert_eq!(e3.offset, 3);
            e3.commit("m3").await.unwrap();
            assert_eq!(oc.fetch(&t, 0).await.unwrap(), Some((4, meta(&env, "m3"))));

            // Cancel ends it.
            let e4 = ec.next().await.unwrap().unwrap();
            e4.cancel();
            assert!(ec.next().await.is_none());
            assert!(ec.is_cancelled());
            assert_eq!(oc.fetch(&t, 0).await.unwrap(), Some((4, meta(&env, "m3"))));
        }
    })
    .await
}
