//! What the client knows of the cluster (brokers, controller, topics, partitions,
//! leaders), and the pool of connections to its brokers.

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::Result;
use crate::metrics::BrokerMetrics;
use kafka_protocol::messages::MetadataResponse;
use kafka_protocol::{ErrorCode, Uuid};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerInfo {
    /// The broker's node id.
    pub node_id: i32,
    /// Host it advertises.
    pub host: String,
    /// Port it advertises.
    pub port: i32,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// A broker (for tests and scripted clients).
    pub fn new(node_id: i32, host: impl Into<String>, port: i32) -> Self {
        BrokerInfo {
            node_id,
            host: host.into(),
            port,
            rack: None,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition's index.
    pub partition: i32,
    /// Node id of its leader; -1 when it has none.
    pub leader: i32,
    /// The leader's epoch; -1 when unknown.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The partition's error in the metadata answer.
    pub error: ErrorCode,
}

impl PartitionInfo {
    /// The partitions of a topic in a Metadata answer, by index.
    pub(crate) fn all_of(
        partitions: &[kafka_protocol::messages::metadata_response::MetadataResponsePartition],
    ) -> Vec<PartitionInfo> {
        let mut out: Vec<PartitionInfo> = partitions
            .iter()
            .map(|p| PartitionInfo {
                partition: p.partition_index,
                leader: p.leader_id,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.clone(),
                isr: p.isr_nodes.clone(),
                error: ErrorCode::from(p.error_code),
            })
            .collect();
        out.sort_by_key(|p| p.partition);
        out
    }

    /// A partition led by `leader`, with it as the only replica (for tests and scripted
    /// clients).
    pub fn new(partition: i32, leader: i32) -> Self {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: 0,
            replicas: vec![leader],
            isr: vec![leader],
            error: ErrorCode::None,
        }
    }
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// The topic's id (nil before Kafka 2.8).
    pub id: Uuid,
    /// True for Kafka's internal topics.
    pub is_internal: bool,
    /// Partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// The topic's error in the metadata answer.
    pub error: ErrorCode,
}

impl TopicInfo {
    /// A topic with these partitions (for tests and scripted clients).
    pub fn new(name: impl Into<String>, partitions: Vec<PartitionInfo>) -> Self {
        TopicInfo {
            name: name.into(),
            id: Uuid::NIL,
            is_internal: false,
            partitions,
            error: ErrorCode::None,
        }
    }
}

/// A snapshot of the cluster's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterMetadata {
    /// The cluster's id, when the broker sends one.
    pub cluster_id: Option<String>,
    /// Node id of the controller; -1 when unknown.
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
}

impl ClusterMetadata {
    pub(crate) fn from_response(r: &MetadataResponse) -> Self {
        let brokers = r
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        node_id: b.node_id,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let topics = r
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.to_string();
                let partitions = PartitionInfo::all_of(&t.partitions);
                Some((
                    name.clone(),
                    TopicInfo {
                        name,
                        id: t.topic_id,
                        is_internal: t.is_internal,
                        partitions,
                        error: ErrorCode::from(t.error_code),
                    },
                ))
            })
            .collect();
        ClusterMetadata {
            cluster_id: r.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: r.controller_id,
            brokers,
            topics,
        }
    }

    /// The leader of a partition, when known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let t = self.topics.get(topic)?;
        let p = t.partitions.iter().find(|p| p.partition == partition)?;
        self.brokers.get(&p.leader)
    }

    /// How many partitions the topic has; `None` when it is unknown or has none.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topics
            .get(topic)
            .filter(|t| !t.partitions.is_empty())
            .map(|t| t.partitions.len() as i32)
    }

    /// The name of the topic with this id.
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .values()
            .find(|t| t.id == *id)
            .map(|t| t.name.as_str())
    }
}

/// What a connection is for; each purpose gets its own connection per broker so that a
/// long JoinGroup or Fetch never delays a metadata request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Purpose {
    /// Metadata and admin requests.
    Admin,
    /// Produce requests.
    Produce,
    /// Produce requests on one more connection (lane 1, 2, ...), for a producer that
    /// spreads its partitions over several connections to one broker: brokers handle
    /// one request at a time per connection.
    ProduceLane(u8),
    /// Fetch requests.
    Fetch,
    /// Fetch requests on one more connection (lane 1, 2, ...), for a consumer that keeps
    /// several Fetches in flight to one broker: brokers handle one request at a time
    /// per connection.
    FetchLane(u8),
    /// Group coordination and offsets.
    Group,
}

#[derive(Default)]
struct SlotState {
    conn: Option<Arc<Connection>>,
    failures: u32,
    next_attempt: Option<Instant>,
}

/// Connections by broker address and purpose, reopened on demand with exponential
/// backoff and jitter after failures.
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

pub(crate) struct Pool {
    config: ClientConfig,
    slots: Mutex<HashMap<(String, Purpose), Slot>>,
    metrics: Mutex<BTreeMap<String, Arc<BrokerMetrics>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    pub(crate) fn new(config: ClientConfig) -> Self {
        Pool {
            config,
            slots: Mutex::new(HashMap::new()),
            metrics: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn metrics_for(&self, addr: &str) -> Arc<BrokerMetrics> {
        lock(&self.metrics)
            .entry(addr.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn metrics(&self) -> BTreeMap<String, crate::metrics::MetricsSnapshot> {
        lock(&self.metrics)
            .iter()
            .map(|(a, m)| (a.clone(), m.snapshot()))
            .collect()
    }

    /// A live connection to `addr` for `purpose`, opening one if needed.
    pub(crate) async fn get(&self, addr: &str, purpose: Purpose) -> Result<Arc<Connection>> {
        let slot = lock(&self.slots)
            .entry((addr.to_string(), purpose))
            .or_default()
            .clone();
        let mut state = slot.lock().await;
        if let Some(conn) = &state.conn {
            if conn.is_usable() {
                return Ok(conn.clone());
            }
        }
        state.conn = None;
        if let Some(at) = state.next_attempt {
            tokio::time::sleep_until(at.into()).await;
        }
        match Connection::connect_boxed(addr, &self.config, self.metrics_for(addr)).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                state.conn = Some(conn.clone());
                state.failures = 0;
                state.next_attempt = None;
                Ok(conn)
            }
            Err(e) => {
                state.failures += 1;
                state.next_attempt = Some(Instant::now() + self.backoff(state.failures));
                Err(e)
            }
        }
    }

    /// `reconnect.backoff.ms` doubled per failure up to the maximum, with ±20% jitter.
    fn backoff(&self, failures: u32) -> std::time::Duration {
        let base = self.config.reconnect_backoff.as_secs_f64()
            * 2f64.powi(failures.saturating_sub(1).min(20) as i32);
        let capped = base.min(self.config.reconnect_backoff_max.as_secs_f64());
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        std::time::Duration::from_secs_f64(capped * jitter)
    }

    /// Closes every connection.
    pub(crate) fn close(&self) {
        lock(&self.slots).clear();
    }
}
