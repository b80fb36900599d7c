//! The group consumer with KIP-848's consumer protocol (`GroupProtocol::Consumer`), on
//! the in-process fake cluster and, when `KAFKA_BOOTSTRAP` names a cluster that serves
//! ConsumerGroupHeartbeat, there too (tests that need the fake's fault injection run on
//! the fake only). Tansu serves no ConsumerGroupHeartbeat: there the named-cluster
//! variants say so and pass.

#![allow(clippy::unwrap_used)]

use kafka_consumer::{FetchOptions, FetcherConfig, StartOffset};
use kafka_group::{
    describe_consumer_group, GroupConfig, GroupConsumer, GroupErrorKind, GroupEvent, GroupProtocol,
    Topics,
};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Target {
    bootstrap: String,
    fake: Option<FakeCluster>,
}

async fn fake() -> Target {
    let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
        .await
        .unwrap();
    // A short session, so that a killed member's partitions move quickly.
    fake.groups()
        .set_consumer_group_timeouts(Duration::from_secs(3), Duration::from_millis(200));
    Target {
        bootstrap: fake.bootstrap(),
        fake: Some(fake),
    }
}

/// The named cluster when it serves ConsumerGroupHeartbeat.
async fn named() -> Option<Target> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").ok()?;
    let t = Target {
        bootstrap,
        fake: None,
    };
    match client(&t)
        .await
        .api_version(ApiKey::ConsumerGroupHeartbeat)
        .await
    {
        Ok(_) => Some(t),
        Err(e) => {
            eprintln!("the named broker does not serve ConsumerGroupHeartbeat ({e}): skipped");
            None
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

async fn new_topic(client: &KafkaClient, name: &str, partitions: i32) {
    client
        .create_topics(vec![NewTopic::new(name, partitions)])
        .await
        .unwrap();
}

fn config(group: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.group_protocol = GroupProtocol::Consumer;
    c.max_poll_interval = Duration::from_secs(20);
    c.start = StartOffset::Earliest;
    c.auto_commit_interval = Duration::from_millis(300);
    let mut fetcher = FetcherConfig::default();
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    fetcher.fetch = fetch;
    c.fetcher = fetcher;
    c
}

async fn produce(client: &KafkaClient, topic: &str, range: std::ops::Range<i32>, partitions: i32) {
    let producer =
        BufferedProducer::new(client.clone(), ProducerConfig::default().with_topic(topic)).unwrap();
    let results = producer
        .send_all(range.map(|i| ProducerRecord::new(format!("{i}")).at_partition(i % partitions)))
        .await;
    assert!(results.iter().all(|r| r.is_ok()));
    producer.close().await;
}

/// (member index, partition, offset, value) of every message read.
type Seen = Arc<Mutex<Vec<(usize, i32, i64, String)>>>;

fn spawn_member(i: usize, member: GroupConsumer, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(m) = member.next().await {
            let Ok(m) = m else { continue };
            seen.lock().unwrap().push((
                i,
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

async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test timed out");
}

fn disjoint_and_complete(members: &[&GroupConsumer], partitions: i32) -> bool {
    let mut all = BTreeSet::new();
    let mut n = 0;
    for m in members {
        for tp in m.assignment() {
            all.insert(tp);
            n += 1;
        }
    }
    n == partitions as usize && all.len() == n
}

/// Three members split 12 partitions; one is killed (its session ends), one closes:
/// each time the rest own everything, disjointly; every record is read, and none
/// twice except on a killed member's partitions (past its last commit).
async fn three_members_join_die_and_leave(t: Target) {
    let client = client(&t).await;
    let topic = unique("kip848");
    new_topic(&client, &topic, 12).await;
    let group = unique("g848");
    let seen: Seen = Arc::default();
    let mut members = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            config(&group),
        )
        .await
        .unwrap();
        tasks.push(spawn_member(i, m.clone(), seen.clone()));
        members.push(m);
    }
    wait_until("12 partitions split 4/4/4", Duration::from_secs(30), || {
        disjoint_and_complete(&members.iter().collect::<Vec<_>>(), 12)
            && members.iter().all(|m| m.assignment().len() == 4)
    })
    .await;
    // Member epochs: everybody reached the same epoch.
    let epochs: BTreeSet<i32> = members.iter().map(|m| m.member().1).collect();
    assert_eq!(epochs.len(), 1, "{epochs:?}");
    produce(&client, &topic, 0..600, 12).await;
    wait_until("600 read", Duration::from_secs(30), || {
        seen.lock().unwrap().len() >= 600
    })
    .await;
    // Wait for the auto-commits to cover what was read.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let victim = members.remove(0);
    let victim_parts: BTreeSet<_> = victim.assignment().into_iter().map(|tp| tp.1).collect();
    victim.abort();
    tasks.remove(0).abort();
    produce(&client, &topic, 600..1200, 12).await;
    wait_until("the survivors own all 12", Duration::from_secs(30), || {
        disjoint_and_complete(&members.iter().collect::<Vec<_>>(), 12)
    })
    .await;
    wait_until("1200 distinct read", Duration::from_secs(30), || {
        let s = seen.lock().unwrap();
        s.iter().map(|x| x.3.clone()).collect::<BTreeSet<_>>().len() >= 1200
    })
    .await;

    // A member closes (commits, leaves): the last one takes everything at once.
    let leaving = members.remove(0);
    leaving.close().await.unwrap();
    tasks.remove(0).abort();
    let last = &members[0];
    wait_until(
        "the last member owns all 12",
        Duration::from_secs(30),
        || last.assignment().len() == 12,
    )
    .await;
    produce(&client, &topic, 1200..1500, 12).await;
    wait_until("1500 distinct read", Duration::from_secs(30), || {
        let s = seen.lock().unwrap();
        s.iter().map(|x| x.3.clone()).collect::<BTreeSet<_>>().len() >= 1500
    })
    .await;
    let s = seen.lock().unwrap().clone();
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (_, p, o, _) in &s {
        *counts.entry((*p, *o)).or_default() += 1;
    }
    for ((p, o), n) in counts {
        assert!(
            n == 1 || victim_parts.contains(&p),
            "offset {o} of partition {p} read {n} times, not on the killed member's partitions"
        );
    }
    last.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_on_the_fake_cluster() {
    within(async { three_members_join_die_and_leave(fake().await).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_on_kafka_bootstrap() {
    let Some(t) = named().await else { return };
    within(three_members_join_die_and_leave(t)).await;
}

/// Out-of-order completion: the commit is the end of the contiguous done prefix, and
/// it is what the next member starts at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_done_commits_the_contiguous_prefix() {
    within(async {
        let t = fake().await;
        let client = client(&t).await;
        let topic = unique("kip848-ooo");
        new_topic(&client, &topic, 1).await;
        produce(&client, &topic, 0..10, 1).await;
        let group = unique("g848");
        let mut c = config(&group);
        c.auto_commit = false;
        let m = GroupConsumer::subscribe(
            client.clone(),
            Topics::Names(vec![topic.clone()]),
            c.clone(),
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        while got.len() < 10 {
            got.push(m.next().await.unwrap().unwrap());
        }
        // Done: 0, 1, 2, 4, 5 (3 is still being worked on).
        for i in [0, 1, 2, 4, 5] {
            m.done(&got[i]);
        }
        m.commit().await.unwrap();
        let fake = t.fake.as_ref().unwrap();
        assert_eq!(fake.groups().committed(&group, &topic, 0), Some(3));
        m.close().await.unwrap();
        let again = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), c)
            .await
            .unwrap();
        let first = again.next().await.unwrap().unwrap();
        assert_eq!(first.offset, 3);
        again.close().await.unwrap();
    })
    .await;
}

/// A pattern is sent to the broker, which assigns the matching topics, and a topic
/// created later once it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_picks_up_new_topics() {
    within(async {
        let t = fake().await;
        let client = client(&t).await;
        let prefix = unique("kip848re");
        new_topic(&client, &format!("{prefix}-a"), 2).await;
        new_topic(&client, &format!("other-{prefix}"), 2).await;
        let topics = Topics::pattern(&format!("{prefix}-.*")).unwrap();
        let m = GroupConsumer::subscribe(client.clone(), topics, config(&unique("g848")))
            .await
            .unwrap();
        wait_until(
            "the matching topic is assigned",
            Duration::from_secs(20),
            || m.assignment().len() == 2,
        )
        .await;
        new_topic(&client, &format!("{prefix}-b"), 3).await;
        wait_until(
            "the new topic is assigned too",
            Duration::from_secs(20),
            || m.assignment().len() == 5,
        )
        .await;
        assert!(m.assignment().iter().all(|(t, _)| t.starts_with(&prefix)));
        m.close().await.unwrap();
    })
    .await;
}

/// A static member that closes (epoch -2) and comes back within the session keeps its
/// partitions; the group does not rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_comes_back_to_its_partitions() {
    within(async {
        let t = fake().await;
        let client = client(&t).await;
        let topic = unique("kip848-static");
        new_topic(&client, &topic, 4).await;
        let group = unique("g848");
        let mut a = config(&group);
        a.instance_id = Some("instance-a".into());
        let mut b = config(&group);
        b.instance_id = Some("instance-b".into());
        let names = || Topics::Names(vec![topic.clone()]);
        let ma = GroupConsumer::subscribe(client.clone(), names(), a.clone())
            .await
            .unwrap();
        let mb = GroupConsumer::subscribe(client.clone(), names(), b)
            .await
            .unwrap();
        wait_until("split 2/2", Duration::from_secs(20), || {
            disjoint_and_complete(&[&ma, &mb], 4) && ma.assignment().len() == 2
        })
        .await;
        let before = ma.assignment();
        let fake = t.fake.as_ref().unwrap();
        let (epoch_before, _, _) = fake.groups().consumer_group(&group).unwrap();
        ma.close().await.unwrap();
        let ma = GroupConsumer::subscribe(client.clone(), names(), a)
            .await
            .unwrap();
        wait_until("a has its partitions back", Duration::from_secs(20), || {
            ma.assignment() == before
        })
        .await;
        let (epoch_after, _, _) = fake.groups().consumer_group(&group).unwrap();
        assert_eq!(epoch_before, epoch_after, "the group did not rebalance");
        assert_eq!(mb.assignment().len(), 2);
        ma.close().await.unwrap();
        mb.close().await.unwrap();
    })
    .await;
}

/// Fenced (FENCED_MEMBER_EPOCH on a heartbeat): the member loses its partitions
/// without committing, says so, rejoins, and goes on from the last commit; a commit
/// that meets STALE_MEMBER_EPOCH is retried with the new epoch; UNKNOWN_MEMBER_ID on a
/// commit is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_and_stale_epochs_lose_no_commit() {
    within(async {
        let t = fake().await;
        let fake = t.fake.as_ref().unwrap();
        let client = client(&t).await;
        let topic = unique("kip848-fence");
        new_topic(&client, &topic, 2).await;
        produce(&client, &topic, 0..20, 2).await;
        let group = unique("g848");
        let mut c = config(&group);
        c.auto_commit = false;
        let m = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), c)
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 20 {
            let msg = m.next().await.unwrap().unwrap();
            m.done(&msg);
            got.push(msg);
        }
        fake.inject(Fault::new(
            ApiKey::OffsetCommit,
            FaultAction::Error(ErrorCode::StaleMemberEpoch),
        ));
        m.commit().await.unwrap();
        assert_eq!(fake.groups().committed(&group, &topic, 0), Some(10));
        assert_eq!(fake.groups().committed(&group, &topic, 1), Some(10));

        fake.inject(Fault::new(
            ApiKey::OffsetCommit,
            FaultAction::Error(ErrorCode::UnknownMemberId),
        ));
        let e = m
            .commit_offsets(&BTreeMap::from([((topic.clone(), 0), 5)]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::UnknownMemberId), "{e}");
        assert!(e.to_string().contains(&format!("{topic}/0")), "{e}");
        assert_eq!(
            fake.groups().committed(&group, &topic, 0),
            Some(10),
            "nothing lost"
        );

        fake.inject(Fault::new(
            ApiKey::ConsumerGroupHeartbeat,
            FaultAction::Error(ErrorCode::FencedMemberEpoch),
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lost = false;
        while !lost {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, m.event()).await.unwrap() {
                Some(GroupEvent::Lost(p)) => lost = p.len() == 2,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
        wait_until("the partitions come back", Duration::from_secs(20), || {
            m.assignment().len() == 2
        })
        .await;
        produce(&client, &topic, 20..22, 2).await;
        let next = m.next().await.unwrap().unwrap();
        assert!(
            next.offset >= 10,
            "read from the commit on, got {}",
            next.offset
        );
        m.close().await.unwrap();
    })
    .await;
}

/// Bad input: a pattern that does not compile is refused at subscribe with the
/// pattern named; a broker without ConsumerGroupHeartbeat gets an error naming the
/// API and both sides' versions; the classic protocol stays the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    within(async {
        let e = Topics::pattern("orders-(").unwrap_err();
        assert!(matches!(e.kind(), GroupErrorKind::Config(_)));
        assert!(e.to_string().contains("orders-("), "{e}");
        assert_eq!(GroupConfig::new("g").group_protocol, GroupProtocol::Classic);

        let t = fake().await;
        t.fake
            .as_ref()
            .unwrap()
            .cap_version(ApiKey::ConsumerGroupHeartbeat, -1);
        let client = client(&t).await;
        let e = GroupConsumer::subscribe(client, Topics::Names(vec!["t".into()]), config("g"))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ConsumerGroupHeartbeat"), "{text}");
        assert!(text.contains("broker none"), "{text}");
        assert!(text.contains("group.protocol=consumer"), "{text}");

        // Asked for: the fall-back to the classic protocol.
        let fake = t.fake.as_ref().unwrap();
        let client = self::client(&t).await;
        let topic = unique("kip848-fallback");
        new_topic(&client, &topic, 2).await;
        let mut c = config(&unique("g848"));
        c.group_protocol = GroupProtocol::ConsumerOrClassic;
        let m = GroupConsumer::subscribe(client, Topics::Names(vec![topic]), c)
            .await
            .unwrap();
        wait_until(
            "the classic member is assigned",
            Duration::from_secs(20),
            || m.assignment().len() == 2,
        )
        .await;
        assert!(fake.request_count(ApiKey::JoinGroup) > 0);
        assert_eq!(fake.request_count(ApiKey::ConsumerGroupHeartbeat), 0);
        m.close().await.unwrap();
    })
    .await;
}

/// ConsumerGroupDescribe shows the members, their epochs and their (disjoint, complete)
/// assignments once the group is stable; a group that is not one is GROUP_ID_NOT_FOUND.
async fn describe_shows_the_group(t: Target) {
    let client = client(&t).await;
    let topic = unique("kip848-describe");
    new_topic(&client, &topic, 4).await;
    let group = unique("g848");
    let mut c = config(&group);
    c.remote_assignor = Some("range".into());
    let names = || Topics::Names(vec![topic.clone()]);
    let a = GroupConsumer::subscribe(client.clone(), names(), c.clone())
        .await
        .unwrap();
    let b = GroupConsumer::subscribe(client.clone(), names(), c)
        .await
        .unwrap();
    wait_until("split 2/2", Duration::from_secs(30), || {
        disjoint_and_complete(&[&a, &b], 4) && a.assignment().len() == 2
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let d = loop {
        let d = describe_consumer_group(&client, &group).await.unwrap();
        if d.state == "Stable" {
            break d;
        }
        assert!(Instant::now() < deadline, "never stable: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(d.assignor, "range");
    assert_eq!(d.members.len(), 2);
    let mut all: Vec<(String, i32)> = Vec::new();
    for m in &d.members {
        assert_eq!(m.member_epoch, d.assignment_epoch);
        assert_eq!(m.assignment, m.target_assignment);
        assert_eq!(m.subscribed_topics, vec![topic.clone()]);
        let ours = if m.member_id == a.member().0 { &a } else { &b };
        assert_eq!(m.assignment, ours.assignment());
        all.extend(m.assignment.iter().cloned());
    }
    all.sort();
    assert_eq!(all, (0..4).map(|p| (topic.clone(), p)).collect::<Vec<_>>());
    let e = describe_consumer_group(&client, &unique("no-such-group"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GroupIdNotFound), "{e}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_on_the_fake_cluster() {
    within(async { describe_shows_the_group(fake().await).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_on_kafka_bootstrap() {
    let Some(t) = named().await else { return };
    within(describe_shows_the_group(t)).await;
}

/// A member that stops asking for messages leaves (epoch -1) and says so; its
/// partitions go to the other member; asking again rejoins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_rejoins() {
    within(async {
        let t = fake().await;
        let client = client(&t).await;
        let topic = unique("kip848-poll");
        new_topic(&client, &topic, 4).await;
        let group = unique("g848");
        let names = || Topics::Names(vec![topic.clone()]);
        let mut slow = config(&group);
        slow.max_poll_interval = Duration::from_secs(1);
        let a = GroupConsumer::subscribe(client.clone(), names(), slow)
            .await
            .unwrap();
        let b = GroupConsumer::subscribe(client.clone(), names(), config(&group))
            .await
            .unwrap();
        let seen: Seen = Arc::default();
        let task = spawn_member(1, b.clone(), seen.clone());
        // `a` asks once, then stops.
        let _ = tokio::time::timeout(Duration::from_millis(300), a.next()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, a.event()).await.unwrap() {
                Some(GroupEvent::Error(e)) if matches!(e.kind(), GroupErrorKind::Left(_)) => break,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
        wait_until("b owns all 4", Duration::from_secs(20), || {
            b.assignment().len() == 4
        })
        .await;
        assert!(a.assignment().is_empty());
        // Asking again rejoins.
        let a2 = a.clone();
        let poller = tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_millis(200), a2.next()).await;
            }
        });
        wait_until("a is back", Duration::from_secs(20), || {
            !a.assignment().is_empty() && disjoint_and_complete(&[&a, &b], 4)
        })
        .await;
        poller.abort();
        task.abort();
        a.close().await.unwrap();
        b.close().await.unwrap();
    })
    .await;
}

/// The coordinator moves: heartbeats find the new one after NOT_COORDINATOR; the member
/// keeps its epoch and partitions and commits there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_survives_a_coordinator_failover() {
    within(async {
        let t = fake().await;
        let fake = t.fake.as_ref().unwrap();
        let client = client(&t).await;
        let topic = unique("kip848-failover");
        new_topic(&client, &topic, 2).await;
        let group = unique("g848");
        let mut c = config(&group);
        c.auto_commit = false;
        let m = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.clone()]), c)
            .await
            .unwrap();
        wait_until("assigned", Duration::from_secs(20), || {
            m.assignment().len() == 2
        })
        .await;
        let before = m.member();
        let old = fake.coordinator(&group);
        assert!(fake.move_coordinator(&group, (old + 1) % 3));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(m.member(), before);
        assert_eq!(m.assignment().len(), 2);
        let offsets = [((topic.clone(), 1), 0i64)].into_iter().collect();
        m.commit_offsets(&offsets).await.unwrap();
        assert_eq!(fake.groups().committed(&group, &topic, 1), Some(0));
        m.close().await.unwrap();
        let (_, _, members) = fake.groups().consumer_group(&group).unwrap();
        assert!(members.is_empty(), "left: {members:?}");
    })
    .await;
}
