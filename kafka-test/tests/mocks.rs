//! The test doubles: `mock::MockClient` and `scripted::ScriptedClient` driving code
//! written against `&dyn Client`, `mock::MockProducer` driving code written against
//! `&dyn Producer`, and `mock::MockConsumer` as an `Arc<dyn Consumer>` inside a
//! `kafka_consumer::Mx`.

#![allow(clippy::unwrap_used)]

use kafka_consumer::{ConsumeError, ConsumeErrorKind, Consumer, Mx};
use kafka_net::{Client, ClientExt, Error, ErrorKind, MetricsSnapshot, NewTopic, Result};
use kafka_producer::{produce_many, Envelope, Message, ProduceError, ProduceErrorKind, Producer};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, StrBytes};
use kafka_test::mock::{MockClient, MockConsumer, MockProducer};
use kafka_test::scripted::{Call, ScriptedClient};
use mockall::predicate::eq;
use mockall::Sequence;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

// ---- Code under test -------------------------------------------------------------

/// Runs `op`, and once more when it fails with a retriable error.
async fn retry_once<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    match op().await {
        Err(e) if e.is_retriable() => op().await,
        done => done,
    }
}

/// The sum of the latest offsets of every partition of a topic.
async fn total_latest(client: &dyn Client, topic: &str) -> Result<i64> {
    let partitions = retry_once(|| client.partition_count(topic)).await?;
    let mut total = 0;
    for partition in 0..partitions {
        total += retry_once(|| client.offset_latest(topic, partition)).await?;
    }
    Ok(total)
}

// ---- Helpers ---------------------------------------------------------------------

async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("the test timed out")
}

fn broker(code: ErrorCode) -> Error {
    Error::new(ErrorKind::Broker {
        code,
        message: None,
    })
}

fn api_versions_answer(throttle_time_ms: i32) -> ResponseKind {
    ResponseKind::ApiVersions(ApiVersionsResponse {
        throttle_time_ms,
        ..Default::default()
    })
}

// ---- MockClient ------------------------------------------------------------------

#[tokio::test]
async fn mock_answers_expected_calls() {
    within(async {
        let mut mock = MockClient::new();
        mock.expect_partition_count()
            .with(eq("orders"))
            .times(1)
            .returning(|_| Ok(3));
        mock.expect_offset_latest()
            .withf(|topic, partition| topic == "orders" && (0..3).contains(partition))
            .times(3)
            .returning(|_, partition| Ok(10 * i64::from(partition + 1)));
        let client: Box<dyn Client> = Box::new(mock);
        assert_eq!(total_latest(client.as_ref(), "orders").await.unwrap(), 60);
    })
    .await;
}

#[tokio::test]
async fn mock_sequence_retries_once_after_a_retriable_error() {
    within(async {
        let mut seq = Sequence::new();
        let mut mock = MockClient::new();
        mock.expect_partition_count()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(broker(ErrorCode::NotLeaderOrFollower)));
        mock.expect_partition_count()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(1));
        mock.expect_offset_latest()
            .with(eq("orders"), eq(0))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(7));
        let client: Arc<dyn Client> = Arc::new(mock);
        assert_eq!(total_latest(client.as_ref(), "orders").await.unwrap(), 7);
    })
    .await;
}

#[tokio::test]
async fn mock_error_that_is_not_retriable_is_not_retried() {
    within(async {
        let mut mock = MockClient::new();
        mock.expect_partition_count()
            .times(1)
            .returning(|_| Err(broker(ErrorCode::TopicAuthorizationFailed)));
        mock.expect_offset_latest().never();
        let err = total_latest(&mock, "secret").await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::TopicAuthorizationFailed));
    })
    .await;
}

#[tokio::test]
async fn mock_send_answers_typed_requests_and_the_sync_methods() {
    within(async {
        let mut mock = MockClient::new();
        mock.expect_send()
            .withf(|request| request.api_key() == ApiKey::ApiVersions)
            .times(1)
            .returning(|_| Ok(api_versions_answer(5)));
        mock.expect_broker_metrics().returning(|| {
            BTreeMap::from([("127.0.0.1:9092".to_string(), MetricsSnapshot::default())])
        });
        mock.expect_close().times(1).returning(|| ());
        let client: Arc<dyn Client> = Arc::new(mock);
        let answer = client.request(ApiVersionsRequest::default()).await.unwrap();
        assert_eq!(answer.throttle_time_ms, 5);
        assert_eq!(client.broker_metrics().len(), 1);
        client.close().await;
    })
    .await;
}

// ---- ScriptedClient --------------------------------------------------------------

#[tokio::test]
async fn scripted_fails_next_then_succeeds() {
    within(async {
        let client = ScriptedClient::new().with_topic("orders", 2);
        client.set_offsets("orders", 0, 0, 10);
        client.set_offsets("orders", 1, 3, 32);
        client.fail_next(ApiKey::Metadata, broker(ErrorCode::LeaderNotAvailable));
        client.fail_next(ApiKey::ListOffsets, broker(ErrorCode::NotLeaderOrFollower));
        assert_eq!(total_latest(&client, "orders").await.unwrap(), 42);
        let orders = || "orders".to_string();
        assert_eq!(
            client.calls(),
            [
                Call::PartitionCount { topic: orders() },
                Call::PartitionCount { topic: orders() },
                Call::OffsetLatest {
                    topic: orders(),
                    partition: 0
                },
                Call::OffsetLatest {
                    topic: orders(),
                    partition: 0
                },
                Call::OffsetLatest {
                    topic: orders(),
                    partition: 1
                },
            ]
        );
        assert_eq!(client.offset_earliest("orders", 1).await.unwrap(), 3);
    })
    .await;
}

#[tokio::test]
async fn scripted_fail_always_until_cleared() {
    within(async {
        let client = ScriptedClient::new().with_topic("orders", 1);
        client.append("orders", 0, 1_000);
        client.fail_always(ApiKey::ListOffsets, broker(ErrorCode::NotLeaderOrFollower));
        let err = total_latest(&client, "orders").await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(err.api(), Some(ApiKey::ListOffsets));
        let list_offsets = |c: &[Call]| {
            c.iter()
                .filter(|c| c.api() == Some(ApiKey::ListOffsets))
                .count()
        };
        assert_eq!(list_offsets(&client.calls()), 2, "one try and one retry");

        client.clear_failures(ApiKey::ListOffsets);
        client.clear_calls();
        assert_eq!(total_latest(&client, "orders").await.unwrap(), 1);
        assert_eq!(list_offsets(&client.calls()), 1);
    })
    .await;
}

#[tokio::test]
async fn scripted_topics_are_created_grown_and_deleted() {
    within(async {
        let client = ScriptedClient::new();
        let admin: &dyn Client = &client;
        admin
            .create_topics(vec![NewTopic::new("orders", 3), NewTopic::new("audit", -1)])
            .await
            .unwrap();
        assert_eq!(admin.partition_count("orders").await.unwrap(), 3);
        assert_eq!(admin.partition_count("audit").await.unwrap(), 1);

        // The valid topic of a request is created; the first error is reported.
        let err = admin
            .create_topics(vec![NewTopic::new("orders", 1), NewTopic::new("users", 2)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::TopicAlreadyExists));
        assert_eq!(err.api(), Some(ApiKey::CreateTopics));
        let err = admin
            .create_topics(vec![NewTopic::new("bad name", 1)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidTopicException));
        let topics = client.topics();
        assert_eq!(
            topics.keys().collect::<Vec<_>>(),
            ["audit", "orders", "users"]
        );

        admin.create_partitions("orders", 5).await.unwrap();
        assert_eq!(admin.partition_count("orders").await.unwrap(), 5);
        assert_eq!(admin.offset_latest("orders", 4).await.unwrap(), 0);
        let err = admin.create_partitions("orders", 5).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidPartitions));

        admin.delete_topics(vec!["orders".into()]).await.unwrap();
        let err = admin.partition_count("orders").await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownTopicOrPartition));
        let err = admin.offset_latest("orders", 0).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownTopicOrPartition));
        let err = admin
            .delete_topics(vec!["orders".into(), "audit".into()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownTopicOrPartition));
        assert_eq!(client.topics().keys().collect::<Vec<_>>(), ["users"]);
    })
    .await;
}

#[tokio::test]
async fn scripted_send_answers_by_api_key() {
    within(async {
        let client = ScriptedClient::new();
        client.respond_with(ApiKey::ApiVersions, |request| match request {
            RequestKind::ApiVersions(r) if r.client_software_name.is_empty() => {
                Err(Error::new(ErrorKind::Broker {
                    code: ErrorCode::InvalidRequest,
                    message: Some("name the client".into()),
                }))
            }
            _ => Ok(api_versions_answer(0)),
        });
        client.fail_next(
            ApiKey::ApiVersions,
            Error::new(ErrorKind::Timeout(Duration::from_secs(1))),
        );
        let named = || ApiVersionsRequest {
            client_software_name: StrBytes::from("app".to_string()),
            ..Default::default()
        };

        let err = client.request(named()).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Timeout(_)));
        assert_eq!(err.api(), Some(ApiKey::ApiVersions));
        let answer = client.request(named()).await.unwrap();
        assert_eq!(answer.error_code, 0);
        let err = client
            .request(ApiVersionsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidRequest));
        assert!(client.send_to(1, named().into()).await.is_ok());

        // No answer scripted: a non-retriable error, not a hang or a retry loop.
        let err = client
            .send(MetadataRequest::default().into())
            .await
            .unwrap_err();
        assert!(!err.is_retriable());
        assert_eq!(err.api(), Some(ApiKey::Metadata));

        let calls = client.calls();
        assert_eq!(calls.len(), 5);
        assert_eq!(calls[0], Call::Send(named().into()));
        assert_eq!(
            calls[3],
            Call::SendTo {
                node_id: 1,
                request: named().into()
            }
        );
    })
    .await;
}

#[tokio::test]
async fn scripted_offsets_for_times_misses_and_errors() {
    within(async {
        let client = ScriptedClient::new().with_topic("events", 1);
        assert_eq!(client.append("events", 0, 100), 0);
        assert_eq!(client.append("events", 0, 200), 1);
        assert_eq!(client.offsets("events", 0), Some((0, 2)));
        assert_eq!(
            client.offsets_for_times("events", 0, 201).await.unwrap(),
            None
        );
        client.set_timestamp_index("events", 0, [(10, 500)]);
        assert_eq!(client.offsets("events", 0), Some((0, 11)));
        assert_eq!(
            client.offsets_for_times("events", 0, 501).await.unwrap(),
            None
        );
        let err = client.offsets_for_times("events", 1, 0).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownTopicOrPartition));
        assert!(client.offsets_for_times("events", 0, -1).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn scripted_offsets_for_times_finds_the_first_record_at_or_after() {
    within(async {
        let client = ScriptedClient::new().with_topic("events", 1);
        client.set_timestamp_index("events", 0, [(0, 100), (1, 300), (2, 200)]);
        let found = client
            .offsets_for_times("events", 0, 150)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.offset, found.timestamp), (1, 300));
        client.set_offsets("events", 0, 2, 3);
        let found = client
            .offsets_for_times("events", 0, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.offset, found.timestamp), (2, 200));
    })
    .await;
}

#[tokio::test]
async fn scripted_clones_share_state_across_tasks_until_closed() {
    within(async {
        let client = ScriptedClient::new().with_topic("events", 4);
        let shared: Arc<dyn Client> = Arc::new(client.clone());
        let tasks: Vec<_> = (0..4)
            .map(|partition| {
                let script = client.clone();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    for ts in 0..25 {
                        script.append("events", partition, ts);
                    }
                    shared.offset_latest("events", partition).await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 25);
        }
        assert_eq!(total_latest(shared.as_ref(), "events").await.unwrap(), 100);

        let mut metrics = BTreeMap::new();
        metrics.insert("127.0.0.1:9092".to_string(), MetricsSnapshot::default());
        client.set_broker_metrics(metrics.clone());
        assert_eq!(shared.broker_metrics(), metrics);

        shared.close().await;
        assert!(client.is_closed());
        let err = client.partition_count("events").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Closed));
        assert_eq!(
            client.calls().last(),
            Some(&Call::PartitionCount {
                topic: "events".into()
            })
        );
    })
    .await;
}

#[tokio::test]
async fn scripted_metadata_is_the_snapshot_set() {
    within(async {
        let client = ScriptedClient::new().with_topic("orders", 3);
        // Without a snapshot set, metadata is built from the topics.
        let built = client.metadata().await.unwrap();
        assert_eq!(built.topics["orders"].partitions.len(), 3);
        assert_eq!(client.partition_count("orders").await.unwrap(), 3);

        let mut metadata = kafka_net::ClusterMetadata::default();
        metadata.cluster_id = Some("scripted".into());
        metadata.controller_id = 1;
        client.set_metadata(metadata.clone());
        assert_eq!(*client.metadata().await.unwrap(), metadata);
        client.fail_next(ApiKey::Metadata, broker(ErrorCode::LeaderNotAvailable));
        assert!(client.refresh_metadata().await.unwrap_err().is_retriable());
        assert_eq!(*client.refresh_metadata().await.unwrap(), metadata);
    })
    .await;
}

// ---- MockProducer ----------------------------------------------------------------

fn envelope(topic: &str, partition: i32, values: &[&'static str]) -> Envelope {
    Envelope {
        topic: topic.into(),
        partition,
        records: values.iter().map(|v| Message::new(*v)).collect(),
    }
}

fn values(records: &[Message]) -> Vec<&[u8]> {
    records
        .iter()
        .map(|m| m.value.as_deref().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn mock_producer_answers_as_a_boxed_producer() {
    within(async {
        let mut mock = MockProducer::new();
        mock.expect_produce()
            .withf(|topic, partition, records| {
                topic == "orders" && *partition == 2 && values(records) == [b"a", b"b"]
            })
            .times(1)
            .returning(|_, _, _| Ok(41));
        mock.expect_produce()
            .withf(|topic, _, _| topic == "audit")
            .times(1)
            .returning(|topic, partition, _| {
                Err(ProduceError::new(ProduceErrorKind::Broker {
                    code: ErrorCode::TopicAuthorizationFailed,
                    message: None,
                })
                .at(topic, partition))
            });
        let producer: Box<dyn Producer> = Box::new(mock);
        let offset = producer
            .produce("orders", 2, vec![Message::new("a"), Message::new("b")])
            .await
            .unwrap();
        assert_eq!(offset, 41);
        let err = producer
            .produce("audit", 0, vec![Message::new("x").with_key("k")])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::TopicAuthorizationFailed));
        assert!(!err.is_retriable());
        assert_eq!((err.topic(), err.partition()), (Some("audit"), Some(0)));
    })
    .await;
}

#[tokio::test]
async fn mock_producer_drives_produce_many() {
    within(async {
        // orders/0 gets two envelopes, one after the other and in order; orders/1 fails
        // with a retriable error, which produce_many reports without retrying.
        let mut seq = Sequence::new();
        let mut mock = MockProducer::new();
        mock.expect_produce()
            .withf(|t, p, r| t == "orders" && *p == 0 && values(r) == [b"a"])
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(10));
        mock.expect_produce()
            .withf(|t, p, r| t == "orders" && *p == 0 && values(r) == [b"c", b"d"])
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(11));
        mock.expect_produce()
            .withf(|t, p, _| t == "orders" && *p == 1)
            .times(1)
            .returning(|t, p, _| {
                Err(
                    ProduceError::from_code(ErrorCode::NotEnoughReplicas.code(), None)
                        .unwrap()
                        .at(t, p),
                )
            });
        let producer: Box<dyn Producer> = Box::new(mock);
        let summary = produce_many(
            producer.as_ref(),
            vec![
                envelope("orders", 0, &["a"]),
                envelope("orders", 1, &["b"]),
                envelope("orders", 0, &["c", "d"]),
            ],
        )
        .await;
        assert!(!summary.is_ok());
        assert_eq!(
            summary.offsets,
            BTreeMap::from([(("orders".to_string(), 0), 10)])
        );
        let err = &summary.errors[&("orders".to_string(), 1)];
        assert_eq!(err.code(), Some(ErrorCode::NotEnoughReplicas));
        assert!(err.is_retriable());
    })
    .await;
}

// ---- MockConsumer ----------------------------------------------------------------

fn consumed(partition: i32, offset: i64) -> kafka_consumer::Message {
    kafka_consumer::Message::from_record(
        "events",
        partition,
        kafka_protocol::records::Record {
            offset,
            value: Some(format!("{partition}@{offset}").into()),
            ..Default::default()
        },
    )
}

/// A mock that hands out `offsets` of `partition` in order, then `end` forever.
fn scripted_consumer(
    partition: i32,
    offsets: &[i64],
    end: fn() -> ConsumeErrorKind,
) -> MockConsumer {
    let mut seq = Sequence::new();
    let mut mock = MockConsumer::new();
    for &offset in offsets {
        mock.expect_consume()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move || Ok(consumed(partition, offset)));
    }
    mock.expect_consume()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move || Err(ConsumeError::new(end()).at("events", partition)));
    mock
}

#[tokio::test]
async fn mock_consumers_merged_by_mx() {
    within(async {
        // Partition 0 ends with NoData, partition 1 forwards one error and ends with
        // Closed; both ends only take the consumer out of the merge.
        let first = scripted_consumer(0, &[0, 1, 2], || ConsumeErrorKind::NoData(3));
        let mut seq = Sequence::new();
        let mut second = MockConsumer::new();
        second
            .expect_consume()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Ok(consumed(1, 10)));
        second
            .expect_consume()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| {
                Err(
                    ConsumeError::new(ConsumeErrorKind::Broker(ErrorCode::NotLeaderOrFollower))
                        .at("events", 1),
                )
            });
        second
            .expect_consume()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Ok(consumed(1, 11)));
        second
            .expect_consume()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Err(ConsumeError::new(ConsumeErrorKind::Closed)));
        let consumers: Vec<Arc<dyn Consumer>> = vec![Arc::new(first), Arc::new(second)];
        let mx = Mx::new(consumers);

        let mut got: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        let mut errors = Vec::new();
        while let Some(item) = mx.next().await {
            match item {
                Ok(m) => {
                    assert_eq!(
                        m.value.as_deref(),
                        Some(format!("{}@{}", m.partition, m.offset).as_bytes())
                    );
                    got.entry(m.partition).or_default().push(m.offset);
                }
                Err(e) => errors.push(e),
            }
        }
        // Each consumer's messages in its order; the broker error forwarded once, with
        // its context; NoData and Closed not forwarded.
        assert_eq!(got, BTreeMap::from([(0, vec![0, 1, 2]), (1, vec![10, 11])]));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code(), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(
            (errors[0].topic(), errors[0].partition()),
            (Some("events"), Some(1))
        );
        assert!(errors[0].is_retriable());
        assert_eq!(mx.workers(), 0);
        // Once every consumer has left, the Mx (itself a Consumer) reports Closed.
        let err = mx.consume().await.unwrap_err();
        assert!(matches!(err.kind(), ConsumeErrorKind::Closed));
    })
    .await;
}

#[tokio::test]
async fn mock_consumer_without_an_end_is_stopped_by_close() {
    within(async {
        // A consumer that always has a message: the merge runs until closed.
        let next = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let mut endless = MockConsumer::new();
        let counter = Arc::clone(&next);
        endless.expect_consume().returning(move || {
            let offset = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(consumed(3, offset))
        });
        let mx = Mx::new(vec![Arc::new(endless) as Arc<dyn Consumer>]);
        for expected in 0..5 {
            let m = mx.next().await.unwrap().unwrap();
            assert_eq!((m.partition, m.offset), (3, expected), "in order");
        }
        assert_eq!(mx.workers(), 1);
        mx.close().await;
        assert_eq!(mx.workers(), 0);
        // At most what was already in the channel is left; then the stream ends.
        let mut rest = 0;
        while let Some(item) = mx.next().await {
            assert_eq!(item.unwrap().offset, 5 + rest);
            rest += 1;
        }
        assert!(rest <= 1, "the channel holds one message per consumer");
    })
    .await;
}

#[test]
fn mock_assignor_scripts_what_a_leader_assigns() {
    use kafka_group::assignor::{Assignor, MemberInfo, RebalanceProtocol};
    use kafka_group::protocol::Subscription;
    use kafka_test::mock::MockAssignor;
    use std::collections::BTreeMap;
    let mut a = MockAssignor::new();
    a.expect_name().return_const("scripted");
    a.expect_protocol().return_const(RebalanceProtocol::Eager);
    a.expect_assign().times(1).returning(|members, partitions| {
        // Everything to the first member.
        let all: BTreeMap<String, Vec<i32>> = partitions
            .iter()
            .map(|(t, n)| (t.clone(), (0..*n).collect()))
            .collect();
        members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    m.member_id.clone(),
                    if i == 0 { all.clone() } else { BTreeMap::new() },
                )
            })
            .collect()
    });
    let boxed: Box<dyn Assignor> = Box::new(a);
    assert_eq!(boxed.name(), "scripted");
    assert_eq!(format!("{boxed:?}"), "MockAssignor");
    let members = vec![
        MemberInfo {
            member_id: "m1".into(),
            group_instance_id: None,
            subscription: Subscription::new(["t"]),
        },
        MemberInfo {
            member_id: "m2".into(),
            group_instance_id: None,
            subscription: Subscription::new(["t"]),
        },
    ];
    let plan = boxed.assign(&members, &[("t".to_string(), 3)].into_iter().collect());
    assert_eq!(plan["m1"]["t"], vec![0, 1, 2]);
    assert!(plan["m2"].is_empty());
}
