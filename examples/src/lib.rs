//! Runnable examples of the workspace's crates, one module per example, each run by
//! `cargo run --example NAME` from the repository root:
//!
//! | example | shows |
//! | --- | --- |
//! | [`quickstart`] | the buffered producer writes, a partition reader reads back |
//! | [`produce`] | the simple producer, the distributing producer, `produce_many` |
//! | [`consume_partition`] | the simple consumer from an offset until it runs out of data |
//! | [`fetch_many`] | one fetcher over many partitions |
//! | [`multiplex`] | many consumers merged into one stream with `Mx` |
//! | [`time_range`] | the records between two timestamps |
//! | [`store_offsets`] | a group's offsets committed and fetched, the envelope consumer |
//! | [`exactly_once`] | consume-transform-produce in transactions, through an abort and a restart |
//! | [`statistics`] | a producer's statistics snapshot as JSON, on demand and periodically |
//!
//! Every example runs against the cluster named by `KAFKA_BOOTSTRAP`
//! (`host:port[,host:port]`) or, when none is named, against an embedded
//! [`kafka_test::FakeCluster`]; each creates its own topics (and deletes them again on
//! a named cluster) and ends by itself. `tests/examples_run.rs` runs the same
//! functions.

pub mod consume_partition;
pub mod exactly_once;
pub mod fetch_many;
pub mod multiplex;
pub mod produce;
pub mod quickstart;
pub mod statistics;
pub mod store_offsets;
pub mod time_range;

use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The examples' error: any error, so that `?` works on every crate's.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The examples' result.
pub type Result<T> = std::result::Result<T, Error>;

/// The variable naming the cluster to run against.
pub const BOOTSTRAP_VAR: &str = "KAFKA_BOOTSTRAP";

/// The longest an example may take before [`run`] gives up on it.
pub const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Brokers of the embedded fake cluster.
const FAKE_BROKERS: i32 = 3;

/// Where an example runs: a connected client, and the embedded fake cluster when no
/// cluster was named.
#[derive(Debug)]
pub struct Env {
    client: KafkaClient,
    bootstrap: String,
    /// Kept alive for as long as the example runs; dropping it stops the brokers.
    fake: Option<FakeCluster>,
    /// Topics created, deleted again on a named cluster.
    topics: Mutex<Vec<String>>,
}

impl Env {
    /// The cluster named by `KAFKA_BOOTSTRAP`, else a new embedded fake cluster.
    pub async fn from_env() -> Result<Env> {
        match std::env::var(BOOTSTRAP_VAR) {
            Ok(b) if !b.trim().is_empty() => Env::named(&b).await,
            _ => Env::fake().await,
        }
    }

    /// A new embedded fake cluster of three brokers on loopback.
    pub async fn fake() -> Result<Env> {
        let fake =
            FakeCluster::start(FakeClusterConfig::default().with_brokers(FAKE_BROKERS)).await?;
        let bootstrap = fake.bootstrap();
        let client = connect(&bootstrap).await?;
        Ok(Env {
            client,
            bootstrap,
            fake: Some(fake),
            topics: Mutex::new(Vec::new()),
        })
    }

    /// The cluster at `bootstrap` (`host:port[,host:port]`).
    pub async fn named(bootstrap: &str) -> Result<Env> {
        let client = connect(bootstrap).await?;
        Ok(Env {
            client,
            bootstrap: bootstrap.to_string(),
            fake: None,
            topics: Mutex::new(Vec::new()),
        })
    }

    /// The connected client (cheap to clone: clones share connections).
    pub fn client(&self) -> &KafkaClient {
        &self.client
    }

    /// True when running against the embedded fake cluster.
    pub fn is_fake(&self) -> bool {
        self.fake.is_some()
    }

    /// Where the example runs, for printing.
    pub fn describe(&self) -> String {
        if self.is_fake() {
            format!(
                "an embedded fake cluster ({FAKE_BROKERS} brokers at {}; \
                 set {BOOTSTRAP_VAR} to use a real one)",
                self.bootstrap
            )
        } else {
            format!("the cluster at {BOOTSTRAP_VAR}={}", self.bootstrap)
        }
    }

    /// Creates a topic named after `prefix` (made unique, so examples can run again
    /// and side by side) with `partitions` partitions and the broker's default
    /// replication, and waits until every partition has a leader.
    pub async fn create_topic(&self, prefix: &str, partitions: i32) -> Result<String> {
        let name = unique(&format!("examples-{prefix}"));
        self.client
            .create_topics(vec![NewTopic::new(&name, partitions)])
            .await?;
        lock(&self.topics).push(name.clone());
        for p in 0..partitions {
            let mut tries = 0;
            while let Err(e) = self.client.offset_latest(&name, p).await {
                tries += 1;
                if tries >= 100 {
                    return Err(format!("{name}/{p} has no leader: {e}").into());
                }
                let _ = self.client.refresh_metadata().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(name)
    }

    /// Deletes the topics created on a named cluster, closes the client and stops
    /// the fake cluster.
    pub async fn close(self) {
        let topics = std::mem::take(&mut *lock(&self.topics));
        if !self.is_fake() && !topics.is_empty() {
            if let Err(e) = self.client.delete_topics(topics.clone()).await {
                eprintln!("could not delete the example's topics {topics:?}: {e}");
            }
        }
        self.client.close().await;
    }
}

/// Runs one example the way every `examples/*.rs` main does: against
/// [`Env::from_env`], printing where, within [`EXAMPLE_TIMEOUT`], closing the
/// environment afterwards whatever happened.
pub async fn run<T>(example: impl AsyncFnOnce(&Env) -> Result<T>) -> Result<T> {
    let env = Env::from_env().await?;
    println!("running against {}", env.describe());
    let result = within(example(&env)).await;
    env.close().await;
    result
}

/// `f`, failing when it takes longer than [`EXAMPLE_TIMEOUT`].
pub async fn within<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(EXAMPLE_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(format!("the example took longer than {EXAMPLE_TIMEOUT:?}").into()),
    }
}

/// A key or value for printing: text when it is UTF-8, else its length.
pub fn show(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("<{} bytes>", b.len()),
        },
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// `prefix` made unique: process id, time and a counter.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn connect(bootstrap: &str) -> Result<KafkaClient> {
    let mut config = ClientConfig::default();
    config.client_id = "kafka-examples".into();
    config.request_timeout = Duration::from_secs(10);
    Ok(KafkaClient::connect(&[bootstrap], config).await?)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The workspace README's examples (the codec, a producer and a consumer), doctested
/// here, where every crate they use is a dependency.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct WorkspaceReadmeDoctests;
