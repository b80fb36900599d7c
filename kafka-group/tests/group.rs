//! Group consumers against the in-process fake cluster (or `KAFKA_BOOTSTRAP`).

#![allow(clippy::unwrap_used)]

use kafka_consumer::{FetchOptions, FetcherConfig, StartOffset};
use kafka_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use kafka_group::{GroupConfig, GroupConsumer, GroupErrorKind, GroupEvent, Topics};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Target {
    bootstrap: String,
    _fake: Option<FakeCluster>,
}

async fn target() -> Target {
    target_unless_quirk(false).await
}

/// The named cluster, or the fake when none is named or when `tansu_differs` and the
/// named cluster is Tansu (whose behaviour the test checks differs from Kafka's).
async fn target_unless_quirk(tansu_differs: bool) -> Target {
    let tansu = std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu");
    match std::env::var("KAFKA_BOOTSTRAP")
        .ok()
        .filter(|_| !(tansu_differs && tansu))
    {
        Some(bootstrap) => Target {
            bootstrap,
            _fake: None,
        },
        None => {
            let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
                .await
                .unwrap();
            Target {
                bootstrap: fake.bootstrap(),
                _fake: Some(fake),
            }
        }
    }
}

async fn client(t: &Target) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(20);
    KafkaClient::connect(&[t.bootstrap.as_str()], config)
        .await
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A new topic of `partitions` partitions, its name made from `prefix`.
async fn new_topic(client: &KafkaClient, prefix: &str, partitions: i32) -> String {
    let topic = unique(prefix);
    client
        .create_topics(vec![NewTopic::new(&topic, partitions)])
        .await
        .unwrap();
    topic
}

fn producer(client: &KafkaClient, topic: &str) -> BufferedProducer {
    BufferedProducer::new(client.clone(), ProducerConfig::default().with_topic(topic)).unwrap()
}

/// Produces the numbers in `range` as values, number `i` to partition
/// `i % partitions`, and checks that every one was acknowledged.
async fn produce_numbers(
    producer: &BufferedProducer,
    range: std::ops::Range<i32>,
    partitions: i32,
) {
    let results = producer
        .send_all(range.map(|i| ProducerRecord::new(format!("{i}")).at_partition(i % partitions)))
        .await;
    assert!(results.iter().all(|r| r.is_ok()));
}

fn config(group: &str, assignor: Arc<dyn Assignor>) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.session_timeout = Duration::from_secs(3);
    c.heartbeat_interval = Duration::from_millis(300);
    c.max_poll_interval = Duration::from_secs(20);
    c.assignors = vec![assignor];
    c.start = StartOffset::Earliest;
    c.auto_commit_interval = Duration::from_millis(500);
    let mut fetcher = FetcherConfig::default();
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    fetcher.fetch = fetch;
    c.fetcher = fetcher;
    c
}

type Seen = Arc<Mutex<Vec<(i32, i64, String)>>>;

/// Consumes into `seen` until stopped; marks each message done.
fn spawn_member(member: GroupConsumer, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(m) = member.next().await {
            let Ok(m) = m else { continue };
            seen.lock().unwrap().push((
                m.partition,
                m.offset,
                String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into(),
            ));
            member.done(&m);
        }
    })
}

async fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn three_members_one_killed(assignor: fn() -> Arc<dyn Assignor>) {
    let t = target().await;
    let client = client(&t).await;
    let topic = new_topic(&client, "group", 12).await;
    let group = unique("g");
    let seen: Seen = Arc::default();
    let mut members = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            config(&group, assignor()),
        )
        .await
        .unwrap();
        tasks.push(spawn_member(m.clone(), seen.clone()));
        members.push(m);
    }
    let assigned = |ms: &[GroupConsumer]| ms.iter().map(|m| m.assignment().len()).sum::<usize>();
    wait_until(
        "the 12 partitions split over three members",
        Duration::from_secs(30),
        || assigned(&members) == 12 && members.iter().all(|m| m.assignment().len() == 4),
    )
    .await;
    // No partition owned twice.
    let owned: BTreeSet<_> = members.iter().flat_map(|m| m.assignment()).collect();
    assert_eq!(owned.len(), 12);

    let producer = producer(&client, &topic);
    let produce = |from: i32, to: i32| produce_numbers(&producer, from..to, 12);
    produce(0, 600).await;
    wait_until("the first 600 consumed", Duration::from_secs(30), || {
        seen.lock().unwrap().len() >= 600
    })
    .await;

    // One member dies without leaving; its partitions move within the session timeout.
    let victim = members.remove(0);
    let victim_parts: BTreeSet<_> = victim.assignment().into_iter().collect();
    victim.abort();
    tasks.remove(0).abort();
    let killed_at = Instant::now();
    produce(600, 1200).await;
    wait_until(
        "the survivors own all 12 partitions",
        Duration::from_secs(30),
        || members.iter().map(|m| m.assignment().len()).sum::<usize>() == 12,
    )
    .await;
    let moved_after = killed_at.elapsed();
    assert!(
        moved_after < Duration::from_secs(15),
        "partitions moved after {moved_after:?}"
    );
    wait_until("all 1200 consumed", Duration::from_secs(30), || {
        let s = seen.lock().unwrap();
        let distinct: BTreeSet<_> = s.iter().map(|(_, _, v)| v.clone()).collect();
        distinct.len() >= 1200
    })
    .await;
    // At least once; duplicates only on the victim's partitions (the rebalance window).
    let s = seen.lock().unwrap().clone();
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (p, o, _) in &s {
        *counts.entry((*p, *o)).or_default() += 1;
    }
    for ((p, o), n) in counts {
        if n > 1 {
            assert!(
                victim_parts.contains(&(topic.clone(), p)),
                "offset {o} of partition {p} consumed {n} times outside the rebalance window"
            );
        }
    }
    for m in &members {
        m.close().await.unwrap();
    }
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_three_members_one_killed_partitions_move() {
    tokio::time::timeout(
        Duration::from_secs(120),
        three_members_one_killed(|| Arc::new(RangeAssignor)),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_three_members_one_killed_partitions_move() {
    tokio::time::timeout(
        Duration::from_secs(120),
        three_members_one_killed(|| Arc::new(CooperativeStickyAssignor)),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_rebalance_keeps_unmoved_partitions_assigned() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let t = target().await;
        let client = client(&t).await;
        let topic = new_topic(&client, "coop", 6).await;
        let group = unique("gc");
        let a = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            config(&group, Arc::new(CooperativeStickyAssignor)),
        )
        .await
        .unwrap();
        let seen: Seen = Arc::default();
        let ta = spawn_member(a.clone(), seen.clone());
        wait_until("a owns all 6", Duration::from_secs(20), || {
            a.assignment().len() == 6
        })
        .await;
        let before: BTreeSet<_> = a.assignment().into_iter().collect();
        // Watch a's events while b joins: a must never lose a partition it keeps.
        let b = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            config(&group, Arc::new(CooperativeStickyAssignor)),
        )
        .await
        .unwrap();
        let tb = spawn_member(b.clone(), seen.clone());
        wait_until("3 and 3", Duration::from_secs(30), || {
            a.assignment().len() == 3 && b.assignment().len() == 3
        })
        .await;
        let kept: BTreeSet<_> = a.assignment().into_iter().collect();
        assert!(kept.is_subset(&before));
        let mut revoked = BTreeSet::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), a.event()).await {
            if let GroupEvent::Revoked(ps) | GroupEvent::Lost(ps) = e {
                revoked.extend(ps);
            }
        }
        assert!(
            revoked.is_disjoint(&kept),
            "cooperative: kept partitions were never revoked ({revoked:?} vs {kept:?})"
        );
        assert_eq!(revoked.len(), 3, "only the moved partitions were revoked");
        a.close().await.unwrap();
        b.close().await.unwrap();
        ta.abort();
        tb.abort();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_done_commits_the_contiguous_prefix() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = target().await;
        let client = client(&t).await;
        let topic = new_topic(&client, "ooo", 1).await;
        let producer = producer(&client, &topic);
        produce_numbers(&producer, 0..10, 1).await;
        let group = unique("go");
        let mut cfg = config(&group, Arc::new(RangeAssignor));
        cfg.auto_commit = false;
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            cfg.clone(),
        )
        .await
        .unwrap();
        let mut msgs = Vec::new();
        for _ in 0..10 {
            msgs.push(m.next().await.unwrap().unwrap());
        }
        // Done out of order: 0, 1, 2, 5, 6 — the prefix ends after 2.
        for i in [5, 0, 6, 2, 1] {
            m.done(&msgs[i]);
        }
        m.commit().await.unwrap();
        m.close().await.unwrap();
        // A new member of the group starts at offset 3.
        let again =
            GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), cfg)
                .await
                .unwrap();
        let first = again.next().await.unwrap().unwrap();
        assert_eq!(first.offset, 3);
        again.close().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_says_so() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = target().await;
        let client = client(&t).await;
        let topic = new_topic(&client, "slow", 2).await;
        let producer = producer(&client, &topic);
        produce_numbers(&producer, 0..4, 2).await;
        let mut cfg = config(&unique("gs"), Arc::new(RangeAssignor));
        cfg.max_poll_interval = Duration::from_secs(2);
        let m = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), cfg)
            .await
            .unwrap();
        m.next().await.unwrap().unwrap();
        // Now do not poll: the member leaves, with an error event saying why.
        let left = loop {
            match tokio::time::timeout(Duration::from_secs(10), m.event())
                .await
                .unwrap()
                .unwrap()
            {
                GroupEvent::Error(e) if matches!(e.kind(), GroupErrorKind::Left(_)) => break e,
                _ => {}
            }
        };
        assert!(left.to_string().contains("max_poll_interval"), "{left}");
        assert!(m.assignment().is_empty());
        // Polling again rejoins.
        let next = tokio::time::timeout(Duration::from_secs(20), m.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(next.offset >= 0);
        m.close().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_rejoining_within_the_session_keeps_its_partitions() {
    tokio::time::timeout(Duration::from_secs(90), async {
        // Tansu rebalances the group when a static member comes back (Kafka replaces
        // the member id without a rebalance): on Tansu this runs on the fake cluster.
        let t = target_unless_quirk(true).await;
        let client = client(&t).await;
        let topic = new_topic(&client, "static", 4).await;
        let group = unique("gst");
        let member = |id: &str| {
            let mut c = config(&group, Arc::new(RangeAssignor));
            c.instance_id = Some(id.to_string());
            c.session_timeout = Duration::from_secs(10);
            c
        };
        let a = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            member("a"),
        )
        .await
        .unwrap();
        let b = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            member("b"),
        )
        .await
        .unwrap();
        let seen: Seen = Arc::default();
        let ta = spawn_member(a.clone(), seen.clone());
        let tb = spawn_member(b.clone(), seen.clone());
        wait_until("2 and 2", Duration::from_secs(30), || {
            a.assignment().len() == 2 && b.assignment().len() == 2
        })
        .await;
        let a_parts = a.assignment();
        let generation = b.member().1;
        // a crashes and comes back with the same instance id before its session ends.
        a.abort();
        ta.abort();
        let a2 = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            member("a"),
        )
        .await
        .unwrap();
        let ta2 = spawn_member(a2.clone(), seen.clone());
        wait_until(
            "a is back with its partitions",
            Duration::from_secs(30),
            || a2.assignment() == a_parts,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(b.member().1, generation, "no rebalance for b");
        assert_eq!(b.assignment().len(), 2);
        a2.close().await.unwrap();
        b.close().await.unwrap();
        ta2.abort();
        tb.abort();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_picks_up_new_topics() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let t = target().await;
        let client = client(&t).await;
        let prefix = unique("pat");
        client
            .create_topics(vec![NewTopic::new(format!("{prefix}-a"), 1)])
            .await
            .unwrap();
        let pattern = regex::Regex::new(&format!("^{}-.*", regex::escape(&prefix))).unwrap();
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Pattern(pattern),
            config(&unique("gp"), Arc::new(RangeAssignor)),
        )
        .await
        .unwrap();
        let seen: Seen = Arc::default();
        let task = spawn_member(m.clone(), seen);
        wait_until("the first topic", Duration::from_secs(20), || {
            m.assignment().len() == 1
        })
        .await;
        client
            .create_topics(vec![NewTopic::new(format!("{prefix}-b"), 2)])
            .await
            .unwrap();
        wait_until(
            "the new topic joins the subscription",
            Duration::from_secs(30),
            || m.assignment().len() == 3,
        )
        .await;
        m.close().await.unwrap();
        task.abort();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_survives_a_coordinator_failover() {
    // Moving a coordinator needs the fake cluster.
    tokio::time::timeout(Duration::from_secs(60), async {
        let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
            .await
            .unwrap();
        let t = Target {
            bootstrap: fake.bootstrap(),
            _fake: None,
        };
        let client = client(&t).await;
        let topic = new_topic(&client, "failover", 2).await;
        let group = unique("gf");
        let mut cfg = config(&group, Arc::new(RangeAssignor));
        cfg.auto_commit = false;
        let m = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), cfg)
            .await
            .unwrap();
        let seen: Seen = Arc::default();
        let task = spawn_member(m.clone(), seen.clone());
        wait_until("assigned", Duration::from_secs(20), || {
            m.assignment().len() == 2
        })
        .await;
        let (member, generation) = m.member();
        let old = fake.coordinator(&group);
        assert!(fake.move_coordinator(&group, (old + 1) % 3));
        // Heartbeats go to the new coordinator after one NOT_COORDINATOR; the member
        // stays in its generation and can still commit there.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(m.member(), (member, generation));
        assert_eq!(m.assignment().len(), 2);
        let offsets = [((topic.clone(), 0), 0i64)].into_iter().collect();
        m.commit_offsets(&offsets).await.unwrap();
        assert_eq!(fake.groups().committed(&group, &topic, 0), Some(0));
        m.close().await.unwrap();
        task.abort();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_per_assigned_partition() {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = target().await;
        let client = client(&t).await;
        let topic = new_topic(&client, "streams", 3).await;
        let producer = producer(&client, &topic);
        produce_numbers(&producer, 0..90, 3).await;
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            config(&unique("gps"), Arc::new(RangeAssignor)),
        )
        .await
        .unwrap();
        wait_until("assigned", Duration::from_secs(20), || {
            m.assignment().len() == 3
        })
        .await;
        let readers = (0..3).map(|p| {
            let m = m.clone();
            let topic = topic.clone();
            async move {
                let got: Vec<i64> = m
                    .partition_stream(&topic, p)
                    .take(30)
                    .map(|r| {
                        let r = r.unwrap();
                        assert_eq!(r.partition, p);
                        r.offset
                    })
                    .collect()
                    .await;
                assert_eq!(got, (0..30).collect::<Vec<i64>>(), "partition {p} in order");
            }
        });
        futures::future::join_all(readers).await;
        m.close().await.unwrap();
    })
    .await
    .unwrap();
}

/// Waits until the admin describes `group` as stable with `members` members that
/// hold `partitions` partitions between them.
async fn wait_stable(admin: &kafka_net::Admin, group: &str, members: usize, partitions: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = admin.describe_groups(&[group]).await.remove(group).unwrap();
        if let Ok(d) = &d {
            let held: usize = d.members.iter().map(|m| m.assignment.len()).sum();
            if d.state == "Stable" && d.members.len() == members && held == partitions {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "group {group} never stable: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two members of a group (eager range, cooperative sticky, or static), 8 records
/// per partition, each member done with its first 3 and committed: the admin's lag
/// names each partition's owner and says 5; the members' own lags agree; offsets
/// cannot be reset nor the group deleted while it has members, and can after.
///
/// Tansu's DescribeGroups shows an active group as `Empty` with no members (so no
/// owners, and no refusal of a reset): on Tansu this runs on the fake cluster.
async fn group_lag_names_owners(assignor: Arc<dyn Assignor>, instance_ids: bool) {
    use kafka_net::admin::ResetTo;
    let t = target_unless_quirk(true).await;
    let client = client(&t).await;
    let admin = kafka_net::Admin::new(client.clone());
    let topic = new_topic(&client, "lag", 4).await;
    produce_numbers(&producer(&client, &topic), 0..32, 4).await;
    let group = unique("glag");
    let member = |id: &str| {
        let mut c = config(&group, assignor.clone());
        c.auto_commit = false;
        if instance_ids {
            c.instance_id = Some(id.to_string());
        }
        c
    };
    let names = Topics::Names(vec![topic.clone()]);
    let a = GroupConsumer::subscribe(client.clone(), names.clone(), member("a"))
        .await
        .unwrap();
    let b = GroupConsumer::subscribe(client.clone(), names, member("b"))
        .await
        .unwrap();
    wait_until("2 and 2", Duration::from_secs(30), || {
        a.assignment().len() == 2 && b.assignment().len() == 2
    })
    .await;
    // Each member is done with offsets 0..3 of its partitions, and commits.
    for m in [&a, &b] {
        let mut done: BTreeMap<i32, i64> = BTreeMap::new();
        while done.values().filter(|&&o| o >= 2).count() < 2 {
            let msg = tokio::time::timeout(Duration::from_secs(10), m.next())
                .await
                .expect("a message")
                .unwrap()
                .unwrap();
            if msg.offset <= 2 {
                m.done(&msg);
                done.insert(msg.partition, msg.offset);
            }
        }
        m.commit().await.unwrap();
    }
    wait_stable(&admin, &group, 2, 4).await;
    let lag = admin.group_lag(&group).await.unwrap();
    assert_eq!(lag.state, "Stable");
    assert_eq!(lag.protocol, assignor.name());
    assert_eq!(lag.partitions.len(), 4, "{lag:?}");
    for p in &lag.partitions {
        assert_eq!(
            (p.committed, p.log_end, p.lag),
            (Some(3), Some(8), Some(5)),
            "{p:?}"
        );
        let owner = p.member.as_ref().expect("an owner");
        let consumer = if a.assignment().contains(&(p.topic.clone(), p.partition)) {
            &a
        } else {
            &b
        };
        assert_eq!(owner.member_id, consumer.member().0);
        assert!(
            !owner.client_id.is_empty() && !owner.host.is_empty(),
            "{owner:?}"
        );
        assert_eq!(owner.instance_id.is_some(), instance_ids);
    }
    assert_eq!(lag.total_lag(), 20);
    // The members' own lags, from their fetch positions: each fetched to the end.
    wait_until(
        "members fetched to the end",
        Duration::from_secs(10),
        || {
            a.lags()
                .iter()
                .chain(b.lags().iter())
                .all(|(_, l)| l.is_some())
        },
    )
    .await;
    assert_eq!(a.lags().len(), 2);

    // Active group: refused, nothing changed.
    let all: Vec<(String, i32)> = (0..4).map(|p| (topic.clone(), p)).collect();
    let e = admin
        .reset_group_offsets(&group, all.clone(), ResetTo::Earliest, true)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&group) && e.to_string().contains("Stable"),
        "{e}"
    );
    assert_eq!(admin.list_group_offsets(&group).await.unwrap()[&all[0]], 3);
    let r = admin.delete_groups(&[&group]).await;
    assert_eq!(
        r[&group].as_ref().unwrap_err().code(),
        Some(kafka_protocol::ErrorCode::NonEmptyGroup)
    );
    if t._fake.is_some() {
        let r = admin
            .delete_group_offsets(&group, vec![all[0].clone()])
            .await;
        let e = r[&all[0]].as_ref().unwrap_err();
        assert_eq!(
            e.code(),
            Some(kafka_protocol::ErrorCode::GroupSubscribedToTopic),
            "{e}"
        );
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    // Empty now: the reset goes through.
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        match admin
            .reset_group_offsets(&group, all.clone(), ResetTo::Earliest, true)
            .await
        {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("reset after the members left: {e}"),
        }
    };
    assert!(r.values().all(|o| *o.as_ref().unwrap() == 0), "{r:?}");
    let lag = admin.group_lag(&group).await.unwrap();
    assert!(lag
        .partitions
        .iter()
        .all(|p| p.lag == Some(8) && p.member.is_none()));
}

#[tokio::test]
async fn admin_group_lag_of_an_eager_group() {
    tokio::time::timeout(
        Duration::from_secs(90),
        group_lag_names_owners(Arc::new(RangeAssignor), false),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn admin_group_lag_of_a_cooperative_group() {
    tokio::time::timeout(
        Duration::from_secs(90),
        group_lag_names_owners(Arc::new(CooperativeStickyAssignor), false),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn admin_group_lag_of_static_members() {
    tokio::time::timeout(
        Duration::from_secs(90),
        group_lag_names_owners(Arc::new(RangeAssignor), true),
    )
    .await
    .unwrap();
}
