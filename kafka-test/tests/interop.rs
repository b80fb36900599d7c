//! The fake cluster judged by independent clients: librdkafka (the `confluent-kafka`
//! PyPI package) and `kafka-python` produce to it and consume from it in a consumer
//! group (`tests/python/interop.py`). The test command installs both packages.

#![allow(clippy::unwrap_used)]

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
