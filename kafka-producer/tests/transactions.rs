//! The transactional producer against the in-process fake cluster (the default) or the
//! cluster named by `KAFKA_BOOTSTRAP`, checked by an independent client: librdkafka
//! (confluent-kafka, driven by `tests/python/transactions.py`) reads what we commit
//! with `isolation.level=read_committed`, and our read_committed fetch reads what its
//! transactional producer commits.
//!
//! Tansu (`KAFKA_QUIRKS=tansu`, tansu 0.6.0 at 510f3e2, the broker of the test command)
//! takes the transactional APIs (InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) and writes the
//! commit and abort markers, but its Fetch lists no aborted transactions and answers
//! read_committed fetches up to the high watermark, so read_committed readers of any
//! client (librdkafka's too, checked by hand) see aborted records there. Against Tansu
//! the tests check what it does do (our calls succeed, markers take their offsets,
//! committed records are there once and in order); that read_committed skips aborted
//! records is checked on the fake cluster, and on any `KAFKA_BOOTSTRAP` that is not
//! Tansu. Fault injection (coordinator moves, CONCURRENT_TRANSACTIONS, dropped
//! connections, fencing) needs the fake and runs only there.

#![allow(clippy::unwrap_used)]

use kafka_consumer::fetch::fetch_partition;
use kafka_consumer::offsets::OffsetCoordinator;
use kafka_consumer::{FetchOptions, Isolation};
use kafka_net::{Client, ClientConfig, ConsumerGroupMetadata, KafkaClient, NewTopic};
use kafka_producer::{
    BufferedProducer, ProduceErrorKind, ProducerConfig, ProducerRecord, TransactionState,
};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::collections::BTreeMap;
use std::time::Duration;

/// The cluster of a test: the fake (kept alive here) or the named one.
struct Env {
    bootstrap: String,
    fake: Option<FakeCluster>,
    /// The named cluster is Tansu (see the module docs).
    tansu: bool,
}

impl Env {
    async fn new() -> Env {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.is_empty() => Env {
                bootstrap: b,
                fake: None,
                tansu: std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q.contains("tansu")),
            },
            _ => Env::fake(3).await,
        }
    }

    async fn fake(brokers: i32) -> Env {
        let f = FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
            .await
            .unwrap();
        Env {
            bootstrap: f.bootstrap(),
            fake: Some(f),
            tansu: false,
        }
    }

    /// Whether read_committed readers skip aborted records here.
    fn filters_aborted(&self) -> bool {
        !self.tansu
    }

    async fn client(&self) -> KafkaClient {
        let mut config = ClientConfig::default();
        config.request_timeout = Duration::from_secs(10);
        KafkaClient::connect(&[self.bootstrap.as_str()], config)
            .await
            .unwrap()
    }

    async fn topic(&self, name: &str, partitions: i32) -> String {
        let topic = unique(name);
        self.client()
            .await
            .create_topics(vec![NewTopic::new(&topic, partitions)])
            .await
            .unwrap();
        topic
    }

    async fn producer(&self, txn_id: &str, topic: &str) -> BufferedProducer {
        BufferedProducer::new(self.client().await, txn_config(txn_id, topic)).unwrap()
    }
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000)
        .unwrap_or(0)
}

fn txn_config(txn_id: &str, topic: &str) -> ProducerConfig {
    let mut c = ProducerConfig::default()
        .with_topic(topic)
        .with_transactional_id(txn_id);
    c.retry_backoff = Duration::from_millis(20);
    c.delivery_timeout = Duration::from_secs(20);
    c.max_block = Duration::from_secs(20);
    c
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test timed out")
}

/// Every record of a partition up to its high watermark, as (offset, value).
async fn read(
    client: &KafkaClient,
    topic: &str,
    partition: i32,
    isolation: Isolation,
) -> Vec<(i64, String)> {
    let mut options = FetchOptions::default();
    options.isolation = isolation;
    options.max_wait = Duration::from_millis(50);
    let mut offset = 0;
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let f = fetch_partition(client, topic, partition, offset, &options)
            .await
            .unwrap();
        for r in &f.records {
            let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
            out.push((r.offset, v));
        }
        offset = f.next_offset;
        if offset >= f.high_watermark {
            return out;
        }
    }
    panic!("{topic}/{partition}: no end in sight at offset {offset}");
}

fn values(read: &[(i64, String)]) -> Vec<&str> {
    read.iter().map(|(_, v)| v.as_str()).collect()
}

/// Sends values to partition 0 in the open transaction and waits for their acks.
async fn send_values(p: &BufferedProducer, vals: &[&str]) -> Vec<i64> {
    let mut futures = Vec::new();
    for v in vals {
        futures.push(
            p.send(ProducerRecord::new(v.to_string()).at_partition(0))
                .await
                .unwrap(),
        );
    }
    let mut offsets = Vec::new();
    for f in futures {
        offsets.push(f.await.unwrap().offset);
    }
    offsets
}

async fn python(args: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/transactions.py");
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::process::Command::new(interpreter)
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "transactions.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "transactions.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What a librdkafka reader saw, as (partition, offset, value).
async fn librdkafka_read(
    env: &Env,
    topic: &str,
    isolation: &str,
    partitions: i32,
) -> Vec<(i32, i64, String)> {
    let n = partitions.to_string();
    let v = python(&["read", &env.bootstrap, topic, isolation, &n]).await;
    let mut out: Vec<(i32, i64, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap() as i32,
                r[1].as_i64().unwrap(),
                r[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A committed transaction, an aborted one, a committed one: each reader sees what it
/// should, and each transaction's marker takes one offset.
#[tokio::test]
async fn committed_transactions_are_read_and_aborted_ones_are_not() {
    within(async {
        let env = Env::new().await;
        let topic = env.topic("txn-read", 1).await;
        let p = env.producer(&unique("txn"), &topic).await;
        assert_eq!(p.transaction_state(), Some(TransactionState::Uninitialized));
        p.init_transactions().await.unwrap();
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));

        p.begin_transaction().unwrap();
        assert_eq!(p.transaction_state(), Some(TransactionState::InTransaction));
        assert_eq!(send_values(&p, &["c0", "c1", "c2"]).await, vec![0, 1, 2]);
        p.commit_transaction().await.unwrap();
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));

        p.begin_transaction().unwrap();
        // The commit marker took offset 3.
        assert_eq!(send_values(&p, &["a0", "a1", "a2"]).await, vec![4, 5, 6]);
        p.abort_transaction().await.unwrap();

        p.begin_transaction().unwrap();
        assert_eq!(send_values(&p, &["d0", "d1"]).await, vec![8, 9]);
        p.commit_transaction().await.unwrap();
        p.close().await;

        let client = env.client().await;
        let all = read(&client, &topic, 0, Isolation::ReadUncommitted).await;
        assert_eq!(
            all,
            [
                (0, "c0"),
                (1, "c1"),
                (2, "c2"),
                (4, "a0"),
                (5, "a1"),
                (6, "a2"),
                (8, "d0"),
                (9, "d1")
            ]
            .map(|(o, v)| (o, v.to_string()))
            .to_vec(),
            "read_uncommitted: every record, markers at 3 and 7"
        );
        let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
        let theirs = librdkafka_read(&env, &topic, "read_committed", 1).await;
        let theirs: Vec<(i64, String)> = theirs.into_iter().map(|(_, o, v)| (o, v)).collect();
        if env.filters_aborted() {
            assert_eq!(values(&committed), ["c0", "c1", "c2", "d0", "d1"]);
            assert_eq!(
                theirs, committed,
                "librdkafka read_committed reads what ours does"
            );
        } else {
            // Tansu: read_committed sees the aborted records too (module docs).
            assert_eq!(theirs, all);
        }
    })
    .await
}

/// Our read_committed fetch skips the aborted transaction librdkafka's transactional
/// producer wrote, and reads its committed ones.
#[tokio::test]
async fn librdkafka_transactions_are_read_committed_by_ours() {
    within(async {
        let env = Env::new().await;
        let topic = env.topic("txn-theirs", 1).await;
        python(&["produce", &env.bootstrap, &topic, &unique("their-txn")]).await;
        let client = env.client().await;
        let all = read(&client, &topic, 0, Isolation::ReadUncommitted).await;
        assert_eq!(
            values(&all),
            ["c0", "c1", "c2", "a0", "a1", "a2", "d0", "d1"]
        );
        let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
        if env.filters_aborted() {
            assert_eq!(values(&committed), ["c0", "c1", "c2", "d0", "d1"]);
        } else {
            assert_eq!(committed, all, "Tansu lists no aborted transactions");
        }
    })
    .await
}

/// Offsets sent in a transaction are committed when it commits, and not when it
/// aborts.
#[tokio::test]
async fn offsets_sent_in_a_transaction_count_only_when_it_commits() {
    within(async {
        let env = Env::new().await;
        let topic = env.topic("txn-offsets", 1).await;
        let group = unique("txn-group");
        let p = env.producer(&unique("txn"), &topic).await;
        p.init_transactions().await.unwrap();
        let meta = ConsumerGroupMetadata::new(&group);
        let offsets = |o: i64| BTreeMap::from([((topic.clone(), 0), o)]);
        let coordinator = OffsetCoordinator::new(env.client().await, &group);

        p.begin_transaction().unwrap();
        send_values(&p, &["x"]).await;
        p.send_offsets_to_transaction(&offsets(10), &meta)
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        assert_eq!(
            coordinator.fetch(&topic, 0).await.unwrap().map(|o| o.0),
            Some(10)
        );

        p.begin_transaction().unwrap();
        p.send_offsets_to_transaction(&offsets(20), &meta)
            .await
            .unwrap();
        p.abort_transaction().await.unwrap();
        assert_eq!(
            coordinator.fetch(&topic, 0).await.unwrap().map(|o| o.0),
            Some(10),
            "the aborted transaction's offsets are discarded"
        );
        p.close().await;
    })
    .await
}

/// A second producer with the same transactional id fences the first: its open
/// transaction is aborted, and its next call fails as fenced, for good.
#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    within(async {
        let env = Env::new().await;
        let topic = env.topic("txn-fence", 1).await;
        let id = unique("txn");
        let mut config = txn_config(&id, &topic);
        if env.tansu {
            // Tansu closes the connection instead of answering PRODUCER_FENCED, which
            // the producer retries for max_block.
            config.max_block = Duration::from_secs(2);
        }
        let old = BufferedProducer::new(env.client().await, config).unwrap();
        old.init_transactions().await.unwrap();
        old.begin_transaction().unwrap();
        send_values(&old, &["zombie"]).await;

        let new = env.producer(&id, &topic).await;
        new.init_transactions().await.unwrap();
        new.begin_transaction().unwrap();
        send_values(&new, &["alive"]).await;
        new.commit_transaction().await.unwrap();

        let e = old.commit_transaction().await.unwrap_err();
        if env.tansu {
            // Tansu drops the connection rather than answer (module docs): the commit
            // fails, and may be tried again (which fails the same way).
            assert!(old.commit_transaction().await.is_err());
        } else {
            assert!(e.is_fenced() && e.is_fatal(), "{e}");
            assert_eq!(old.transaction_state(), Some(TransactionState::FatalError));
            let again = old.begin_transaction().unwrap_err();
            assert!(again.is_fatal(), "{again}");
        }
        let client = env.client().await;
        if env.filters_aborted() {
            let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
            assert_eq!(values(&committed), ["alive"]);
        }
        new.close().await;
    })
    .await
}

/// Each call in a wrong state, and each transactional call without a transactional
/// id, is a typed error that changes nothing.
#[tokio::test]
async fn calls_in_the_wrong_state_are_typed_errors() {
    within(async {
        let env = Env::fake(1).await;
        let topic = env.topic("txn-bad", 1).await;
        let client = env.client().await;

        let plain =
            BufferedProducer::new(client.clone(), ProducerConfig::default().with_topic(&topic))
                .unwrap();
        let e = plain.init_transactions().await.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ProduceErrorKind::NotTransactional("init_transactions")
            ),
            "{e}"
        );
        assert!(e.to_string().contains("transactional_id"), "{e}");
        assert!(plain.begin_transaction().is_err());
        assert_eq!(plain.transaction_state(), None);

        let mut bad = txn_config("t", &topic);
        bad.idempotence = false;
        assert!(BufferedProducer::new(client.clone(), bad).is_err());

        let p = env.producer(&unique("txn"), &topic).await;
        let state_error =
            |e: kafka_producer::ProduceError, call: &str, state: TransactionState| match e.kind() {
                ProduceErrorKind::TransactionState { call: c, state: s } => {
                    assert_eq!((*c, *s), (call, state), "{e}")
                }
                _ => panic!("expected a state error for {call}, got {e}"),
            };
        let send = p.send(ProducerRecord::new("early")).await.unwrap_err();
        state_error(send, "send", TransactionState::Uninitialized);
        state_error(
            p.begin_transaction().unwrap_err(),
            "begin_transaction",
            TransactionState::Uninitialized,
        );
        state_error(
            p.commit_transaction().await.unwrap_err(),
            "commit_transaction",
            TransactionState::Uninitialized,
        );
        p.init_transactions().await.unwrap();
        state_error(
            p.init_transactions().await.unwrap_err(),
            "init_transactions",
            TransactionState::Ready,
        );
        let outside = p.send(ProducerRecord::new("outside")).await.unwrap_err();
        state_error(outside, "send", TransactionState::Ready);
        state_error(
            p.abort_transaction().await.unwrap_err(),
            "abort_transaction",
            TransactionState::Ready,
        );
        p.begin_transaction().unwrap();
        state_error(
            p.begin_transaction().unwrap_err(),
            "begin_transaction",
            TransactionState::InTransaction,
        );
        // An empty transaction commits without a word to the coordinator.
        p.commit_transaction().await.unwrap();
        assert_eq!(env.fake.as_ref().unwrap().request_count(ApiKey::EndTxn), 0);
        let sent = p.send(ProducerRecord::new("after")).await.unwrap_err();
        state_error(sent, "send", TransactionState::Ready);
        assert!(env.fake.as_ref().unwrap().records(&topic, 0).is_empty());
        p.close().await;
    })
    .await
}

/// A record that fails for good spoils its transaction: commit says abortable, the
/// abort (with an epoch bump, for the sequences have a gap) works, and the next
/// transaction commits.
#[tokio::test]
async fn a_failed_record_makes_the_transaction_abortable_and_the_next_one_commits() {
    within(async {
        let env = Env::fake(1).await;
        let fake = env.fake.as_ref().unwrap();
        let topic = env.topic("txn-abortable", 1).await;
        let p = env.producer(&unique("txn"), &topic).await;
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        fake.inject(Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::InvalidRecord),
        ));
        let d = p
            .send(ProducerRecord::new("bad").at_partition(0))
            .await
            .unwrap();
        assert!(d.await.is_err());
        assert_eq!(
            p.transaction_state(),
            Some(TransactionState::AbortableError)
        );
        let e = p.commit_transaction().await.unwrap_err();
        assert!(e.is_abortable() && !e.is_fatal(), "{e}");
        p.abort_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_values(&p, &["good"]).await;
        p.commit_transaction().await.unwrap();
        let client = env.client().await;
        let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
        assert_eq!(values(&committed), ["good"]);
        p.close().await;
    })
    .await
}

/// CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, a coordinator that moves and a dropped
/// connection on EndTxn: the transaction still commits once.
#[tokio::test]
async fn transactions_commit_through_coordinator_faults() {
    within(async {
        let env = Env::fake(3).await;
        let fake = env.fake.as_ref().unwrap();
        let topic = env.topic("txn-faults", 1).await;
        let id = unique("txn");
        let p = env.producer(&id, &topic).await;
        fake.inject(
            Fault::new(
                ApiKey::InitProducerId,
                FaultAction::Error(ErrorCode::CoordinatorLoadInProgress),
            )
            .times(Times::N(2)),
        );
        p.init_transactions().await.unwrap();
        for round in 0..3 {
            p.begin_transaction().unwrap();
            fake.inject(
                Fault::new(
                    ApiKey::AddPartitionsToTxn,
                    FaultAction::Error(ErrorCode::ConcurrentTransactions),
                )
                .times(Times::N(3)),
            );
            send_values(&p, &[&format!("r{round}-0"), &format!("r{round}-1")]).await;
            let now = fake.coordinator(&id);
            fake.move_coordinator(&id, (now + 1) % 3);
            fake.inject(Fault::new(ApiKey::EndTxn, FaultAction::DropConnection));
            fake.inject(
                Fault::new(
                    ApiKey::EndTxn,
                    FaultAction::Error(ErrorCode::ConcurrentTransactions),
                )
                .times(Times::N(2)),
            );
            p.commit_transaction().await.unwrap();
            fake.clear_faults();
        }
        let client = env.client().await;
        let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
        assert_eq!(
            values(&committed),
            ["r0-0", "r0-1", "r1-0", "r1-1", "r2-0", "r2-1"]
        );
        p.close().await;
    })
    .await
}

/// A transaction open past its timeout is aborted by the coordinator, which fences
/// the producer (Kafka bumps its epoch): the commit says so, typed and fatal, every
/// later call fails at once, and a new producer with the same id goes on.
#[tokio::test]
async fn a_transaction_past_its_timeout_fails_typed_and_a_new_producer_goes_on() {
    within(async {
        let env = Env::fake(1).await;
        let topic = env.topic("txn-timeout", 1).await;
        let id = unique("txn");
        let config = txn_config(&id, &topic).with_transaction_timeout(Duration::from_millis(300));
        let p = BufferedProducer::new(env.client().await, config.clone()).unwrap();
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        send_values(&p, &["late"]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let e = p.commit_transaction().await.unwrap_err();
        assert!(
            matches!(e.kind(), ProduceErrorKind::TransactionTimedOut(_)) && e.is_fatal(),
            "{e}"
        );
        assert!(e.to_string().contains("timeout"), "{e}");
        assert!(p.abort_transaction().await.unwrap_err().is_fatal());
        assert!(p.begin_transaction().unwrap_err().is_fatal());
        p.close().await;

        let next = BufferedProducer::new(env.client().await, config).unwrap();
        next.init_transactions().await.unwrap();
        next.begin_transaction().unwrap();
        send_values(&next, &["on time"]).await;
        next.commit_transaction().await.unwrap();
        let client = env.client().await;
        let committed = read(&client, &topic, 0, Isolation::ReadCommitted).await;
        assert_eq!(values(&committed), ["on time"]);
        next.close().await;
    })
    .await
}

/// The Admin API describes and lists the transaction while it is open, and after it
/// committed; a broker without the APIs (Tansu) gets an error naming the API.
#[tokio::test]
async fn admin_describes_and_lists_open_transactions() {
    within(async {
        let env = Env::new().await;
        let topic = env.topic("txn-admin", 2).await;
        let id = unique("txn");
        let p = env.producer(&id, &topic).await;
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        send_values(&p, &["open"]).await;
        let admin = kafka_net::admin::Admin::new(env.client().await);
        let described = admin.describe_transactions(vec![id.clone()]).await;
        let listed = admin.list_transactions(&[]).await;
        if env.tansu {
            // Tansu serves neither DescribeTransactions nor ListTransactions.
            let e = described[&id].as_ref().unwrap_err();
            assert!(e.to_string().contains("DescribeTransactions"), "{e}");
            assert!(listed.is_err());
        } else {
            let d = described[&id].as_ref().unwrap();
            assert_eq!(d.state, "Ongoing");
            assert_eq!(d.partitions, vec![(topic.clone(), 0)]);
            assert!(d.start_time_ms > 0 && d.timeout_ms == 60_000, "{d:?}");
            let listed = listed.unwrap();
            assert!(listed
                .iter()
                .any(|t| t.transactional_id == id && t.state == "Ongoing"));
            p.commit_transaction().await.unwrap();
            let after = admin
                .describe_transactions(vec![id.clone(), "no-such-id".into()])
                .await;
            assert_eq!(after[&id].as_ref().unwrap().state, "CompleteCommit");
            let unknown = after["no-such-id"].as_ref().unwrap_err();
            assert_eq!(
                unknown.code(),
                Some(ErrorCode::TransactionalIdNotFound),
                "{unknown}"
            );
        }
        p.close().await;
    })
    .await
}
