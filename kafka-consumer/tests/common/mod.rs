//! What the kafka-consumer suites that run on both clusters share: the clusters, a
//! client with test settings, unique names and a time limit.

#![allow(dead_code, clippy::unwrap_used)]

use kafka_net::{ClientConfig, KafkaClient};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A cluster to run against: the fake, or the one `KAFKA_BOOTSTRAP` names.
pub struct Env {
    pub name: &'static str,
    pub bootstrap: String,
    pub client: KafkaClient,
    /// The fake cluster, for fault injection; `None` for the named cluster.
    pub fake: Option<FakeCluster>,
    /// The named cluster is Tansu (`KAFKA_QUIRKS=tansu`).
    pub tansu: bool,
}

pub async fn connect(bootstrap: &str) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(10);
    config.reconnect_backoff_max = Duration::from_millis(200);
    KafkaClient::connect(&[bootstrap], config).await.unwrap()
}

/// A fake cluster of `brokers` brokers.
pub async fn fake(brokers: i32) -> Env {
    let cluster = FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap();
    let bootstrap = cluster.bootstrap();
    Env {
        name: "fake",
        client: connect(&bootstrap).await,
        bootstrap,
        fake: Some(cluster),
        tansu: false,
    }
}

/// The fake (with `brokers` brokers), and the named cluster when there is one.
pub async fn envs(brokers: i32) -> Vec<Env> {
    let mut out = vec![fake(brokers).await];
    if let Ok(b) = std::env::var("KAFKA_BOOTSTRAP") {
        out.push(Env {
            name: "KAFKA_BOOTSTRAP",
            client: connect(&b).await,
            bootstrap: b,
            fake: None,
            tansu: std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu"),
        });
    }
    out
}

/// Runs `f`, failing the test after `limit`.
pub async fn within_limit<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("test timed out")
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(
        "{prefix}-{}-{millis}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
