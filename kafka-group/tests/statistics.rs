//! The group consumer's statistics (state, generation or member epoch, member id,
//! assignment, rebalances; positions, committed offsets and lag) and its rebalance
//! spans, against the in-process fake cluster (and the cluster named by
//! `KAFKA_BOOTSTRAP`).

#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use kafka_consumer::{FetchOptions, FetcherConfig, StartOffset};
use kafka_group::assignor::RangeAssignor;
use kafka_group::{GroupConfig, GroupConsumer, GroupEvent, GroupProtocol, GroupState, Topics};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_test::trace::TraceRecorder;
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::sync::Arc;
use std::time::Duration;

async fn client(bootstrap: &str) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(20);
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

/// A new topic with `per_partition` records in each of `partitions` partitions.
async fn topic_with(client: &KafkaClient, partitions: i32, per_partition: i32) -> String {
    let topic = unique("stats");
    client
        .create_topics(vec![NewTopic::new(&topic, partitions)])
        .await
        .unwrap();
    let p = BufferedProducer::new(client.clone(), ProducerConfig::default().with_topic(&topic))
        .unwrap();
    let records = (0..partitions * per_partition)
        .map(|i| ProducerRecord::new(format!("{i}")).at_partition(i % partitions));
    assert!(p.send_all(records).await.iter().all(|r| r.is_ok()));
    p.close().await;
    topic
}

fn config(group: &str, protocol: GroupProtocol) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.session_timeout = Duration::from_secs(3);
    c.heartbeat_interval = Duration::from_millis(200);
    c.assignors = vec![Arc::new(RangeAssignor)];
    c.start = StartOffset::Earliest;
    c.auto_commit = false;
    c.group_protocol = protocol;
    let mut fetcher = FetcherConfig::default();
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    fetcher.fetch = fetch;
    c.fetcher = fetcher;
    c
}

/// Waits for the member's first assignment.
async fn assigned(member: &GroupConsumer) -> Vec<(String, i32)> {
    loop {
        match member.event().await.unwrap() {
            GroupEvent::Assigned(list) => return list,
            GroupEvent::Error(e) => panic!("{e}"),
            _ => {}
        }
    }
}

/// One member takes both partitions, reads and commits everything; the snapshot
/// shows its group, partitions and brokers, periodically too, until it closes.
async fn member_reports_group_and_partitions(bootstrap: &str, protocol: GroupProtocol) {
    let client = client(bootstrap).await;
    let topic = topic_with(&client, 2, 5).await;
    let group = unique("stats-group");
    let member = GroupConsumer::subscribe(
        client,
        Topics::Names(vec![topic.clone()]),
        config(&group, protocol),
    )
    .await
    .unwrap();
    let mut periodic = member.statistics_every(Duration::from_millis(50));
    let first = periodic.next().await.unwrap();
    assert_eq!(first.group.group_id, group);

    assert_eq!(assigned(&member).await.len(), 2);
    for _ in 0..10 {
        let m = member.next().await.unwrap().unwrap();
        member.done(&m);
    }
    member.commit().await.unwrap();

    let s = member.statistics();
    let g = &s.group;
    assert_eq!(g.state, GroupState::Stable, "{g:?}");
    assert_eq!(g.generation, member.member().1);
    // Tansu counts classic generations from 0, Kafka and the fake from 1.
    let tansu = std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu");
    assert!(g.generation >= if tansu { 0 } else { 1 }, "{g:?}");
    assert!(!g.member_id.is_empty());
    assert_eq!(g.assignment_size, 2);
    assert!(g.rebalances >= 1);
    assert!(g.rebalance_age_ms >= 0);
    match protocol {
        GroupProtocol::Consumer => assert_eq!(g.protocol, "consumer"),
        _ => {
            assert_eq!(g.protocol, "classic");
            assert_eq!(g.assignor.as_deref(), Some("range"));
        }
    }
    assert_eq!(s.partitions.len(), 2);
    for p in &s.partitions {
        assert_eq!(p.topic, topic);
        assert_eq!(
            (p.committed_offset, p.position, p.high_watermark, p.lag),
            (5, 5, 5, 0),
            "{p:?}"
        );
    }
    assert!(s.coordination.brokers.values().any(|b| b.responses > 0));
    assert!(s.client.brokers.values().any(|b| b.responses > 0));

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["group"]["state"], "stable");
    for field in [
        "group_id",
        "instance_id",
        "member_id",
        "state",
        "state_age_ms",
        "generation",
        "protocol",
        "assignor",
        "assignment_size",
        "rebalances",
        "rebalance_age_ms",
    ] {
        assert!(json["group"].get(field).is_some(), "no group.{field}");
    }
    for field in ["client_id", "brokers", "coordination", "partitions"] {
        assert!(json.get(field).is_some(), "no {field}");
    }
    assert_eq!(json["partitions"][0]["committed_offset"], 5);

    let later = periodic.next().await.unwrap();
    assert!(later.client.age_us > first.client.age_us);
    assert!(later.group.rebalances >= 1);
    let requests = |s: &kafka_group::GroupConsumerStatistics| -> u64 {
        s.coordination.brokers.values().map(|b| b.requests).sum()
    };
    // Heartbeats and the commit, at least.
    assert!(requests(&later) > requests(&first));
    member.close().await.unwrap();
    assert_eq!(member.statistics().group.state, GroupState::Closed);
    assert!(periodic.next().await.is_none(), "the stream ends on close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_member_reports_its_group_and_partitions() {
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        member_reports_group_and_partitions(&cluster.bootstrap(), GroupProtocol::Classic).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kip_848_member_reports_its_group_and_partitions() {
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        member_reports_group_and_partitions(&cluster.bootstrap(), GroupProtocol::Consumer).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_member_reports_its_group_on_the_named_cluster() {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        return;
    };
    within(member_reports_group_and_partitions(
        &bootstrap,
        GroupProtocol::Classic,
    ))
    .await;
}

/// A join is traced: a `rebalance` span with the group, member id and generation, the
/// JoinGroup and SyncGroup `request` spans inside it, and the assignment as an event
/// in it. (A current-thread runtime: the recorder is this thread's subscriber.)
#[tokio::test(flavor = "current_thread")]
async fn a_group_join_is_traced_in_a_rebalance_span() {
    let recorder = TraceRecorder::new();
    let _guard = recorder.set_default();
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        let client = client(&cluster.bootstrap()).await;
        let topic = topic_with(&client, 2, 1).await;
        let group = unique("traced-group");
        let member = GroupConsumer::subscribe(
            client,
            Topics::Names(vec![topic.clone()]),
            config(&group, GroupProtocol::Classic),
        )
        .await
        .unwrap();
        assigned(&member).await;
        let (member_id, generation) = member.member();
        member.close().await.unwrap();

        let rebalances = recorder.spans_named("rebalance");
        let rebalance = rebalances
            .iter()
            .find(|s| s.field("group_id") == Some(group.as_str()))
            .unwrap_or_else(|| panic!("no rebalance span in {rebalances:?}"));
        assert_eq!(rebalance.field("member_id"), Some(member_id.as_str()));
        assert_eq!(
            rebalance.field("generation"),
            Some(generation.to_string().as_str())
        );
        assert_eq!(rebalance.field("protocol"), Some("classic"));

        let requests = recorder.spans_named("request");
        for api in ["JoinGroup", "SyncGroup"] {
            let request = requests
                .iter()
                .find(|s| s.field("api") == Some(api))
                .unwrap_or_else(|| panic!("no {api} request span"));
            assert!(
                recorder
                    .ancestors(request)
                    .iter()
                    .any(|a| a.id == rebalance.id),
                "{api} is not inside the rebalance span"
            );
        }
        let events = recorder.events();
        let assigned = events
            .iter()
            .find(|e| e.message() == Some("partitions assigned"))
            .unwrap_or_else(|| panic!("no assignment event in {events:?}"));
        assert_eq!(assigned.span, Some(rebalance.id));
        assert_eq!(assigned.field("count"), Some("2"));
        assert!(assigned.field("partitions").unwrap().contains(&topic));
    })
    .await;
}

/// With KIP-848, each assignment received is reconciled in a `rebalance` span whose
/// generation is the member epoch, and the assignment is an event in it.
#[tokio::test(flavor = "current_thread")]
async fn a_kip_848_reconciliation_is_traced_in_a_rebalance_span() {
    let recorder = TraceRecorder::new();
    let _guard = recorder.set_default();
    within(async {
        let cluster = FakeCluster::start(FakeClusterConfig::default())
            .await
            .unwrap();
        let client = client(&cluster.bootstrap()).await;
        let topic = topic_with(&client, 2, 1).await;
        let group = unique("traced-848");
        let member = GroupConsumer::subscribe(
            client,
            Topics::Names(vec![topic.clone()]),
            config(&group, GroupProtocol::Consumer),
        )
        .await
        .unwrap();
        assigned(&member).await;
        let (member_id, _) = member.member();
        member.close().await.unwrap();

        let spans = recorder.spans_named("rebalance");
        let events = recorder.events();
        let assigned = events
            .iter()
            .find(|e| e.message() == Some("partitions assigned"))
            .unwrap_or_else(|| panic!("no assignment event in {events:?}"));
        let rebalance = spans
            .iter()
            .find(|s| Some(s.id) == assigned.span)
            .unwrap_or_else(|| panic!("the assignment is in no rebalance span: {spans:?}"));
        assert_eq!(rebalance.field("group_id"), Some(group.as_str()));
        assert_eq!(rebalance.field("member_id"), Some(member_id.as_str()));
        assert_eq!(rebalance.field("protocol"), Some("consumer"));
        assert!(
            rebalance
                .field("generation")
                .unwrap()
                .parse::<i32>()
                .unwrap()
                >= 1
        );
        assert_eq!(assigned.field("count"), Some("2"));
    })
    .await;
}
