//! [`FakeCluster`]: Kafka brokers inside the test process, on loopback ports, speaking
//! the real wire protocol, with fault injection.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
//! use kafka_protocol::{ApiKey, ErrorCode};
//!
//! let cluster = FakeCluster::start(FakeClusterConfig::default().with_brokers(3)).await?;
//! cluster.create_topic("orders", 6);
//! // The next Produce anywhere fails once with NOT_ENOUGH_REPLICAS.
//! cluster.inject(Fault::new(ApiKey::Produce, FaultAction::Error(ErrorCode::NotEnoughReplicas)).times(Times::Once));
//! let bootstrap = cluster.bootstrap(); // "127.0.0.1:PORT,127.0.0.1:PORT,..."
//! # Ok(()) }
//! ```
//!
//! It has a group coordinator (classic protocol, committed offsets) and a transaction
//! coordinator with Kafka's semantics (KIP-98, KIP-360, KIP-447, KIP-588, KIP-890 part
//! 1): transactional producers, transaction markers, the last stable offset,
//! read_committed Fetch and ListOffsets, transactional offsets, fencing and timeouts.
//! Tests look at it with [`FakeCluster::transaction`],
//! [`FakeCluster::last_stable_offset`], [`FakeCluster::aborted_transactions`] and
//! [`FakeCluster::batches`], and drive it with [`FakeCluster::fence_transactional_id`],
//! [`FakeCluster::set_transaction_marker_delay`] and [`FakeCluster::move_coordinator`].

mod admin;
mod broker;
mod fetch;
mod group;
mod handlers;
mod list_offsets;
mod produce;
mod sasl;
mod state;
mod tls;
mod txn;

pub use group::GroupCoordinator;
pub use sasl::SaslUsers;
pub use tls::FakeTls;
pub use txn::{TransactionState, TransactionView};

use kafka_protocol::{ApiKey, ErrorCode, Uuid, VersionRange};
use state::{Partition, State, Topic};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many times a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next matching request only.
    Once,
    /// The next `n` matching requests.
    N(usize),
    /// Every matching request until cleared.
    Always,
}

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this error code (in every error field of the response).
    Error(ErrorCode),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Handle the request normally (counts as a match; useful to let the first n
    /// requests through before another fault).
    PassThrough,
    /// Handle a Fetch normally, then flip the last byte of each partition's records in
    /// the response, so that a record batch fails its CRC (a disk or network error
    /// the broker did not catch). Other requests are handled normally.
    CorruptRecords,
}

/// A fault: requests of `api` (to `broker`, or any broker) get `action`, `times` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The API key to intercept.
    pub api: ApiKey,
    /// Only requests to this node id; `None` for every broker.
    pub broker: Option<i32>,
    /// What happens.
    pub action: FaultAction,
    /// How often.
    pub times: Times,
}

impl Fault {
    /// A fault on every broker that fires once.
    pub fn new(api: ApiKey, action: FaultAction) -> Self {
        Fault {
            api,
            broker: None,
            action,
            times: Times::Once,
        }
    }

    /// Fires `times` times.
    pub fn times(mut self, times: Times) -> Self {
        self.times = times;
        self
    }

    /// Only on broker `node_id`.
    pub fn on_broker(mut self, node_id: i32) -> Self {
        self.broker = Some(node_id);
        self
    }
}

/// How the fake cluster starts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeClusterConfig {
    /// Number of brokers (node ids 0..n). Default 1.
    pub brokers: i32,
    /// Partitions of topics created by Metadata or Produce auto-creation, and by
    /// CreateTopics with -1. Default 1.
    pub default_partitions: i32,
    /// Create unknown topics when a Metadata request allows it (Kafka's
    /// `auto.create.topics.enable`). Default false.
    pub auto_create_topics: bool,
    /// SASL users; when set, every connection must authenticate first.
    pub sasl: Option<SaslUsers>,
    /// TLS for every listener.
    pub tls: Option<FakeTls>,
    /// The cluster id Metadata reports.
    pub cluster_id: String,
}

impl Default for FakeClusterConfig {
    fn default() -> Self {
        FakeClusterConfig {
            brokers: 1,
            default_partitions: 1,
            auto_create_topics: false,
            sasl: None,
            tls: None,
            cluster_id: "fake-cluster".into(),
        }
    }
}

impl FakeClusterConfig {
    /// `n` brokers.
    pub fn with_brokers(mut self, n: i32) -> Self {
        self.brokers = n;
        self
    }

    /// Auto-creates unknown topics asked for in Metadata.
    pub fn with_auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Requires SASL with these users.
    pub fn with_sasl(mut self, users: SaslUsers) -> Self {
        self.sasl = Some(users);
        self
    }

    /// Serves TLS.
    pub fn with_tls(mut self, tls: FakeTls) -> Self {
        self.tls = Some(tls);
        self
    }
}

struct ActiveFault {
    fault: Fault,
    remaining: Option<usize>,
}

/// Everything the brokers share.
pub(crate) struct Cluster {
    pub(crate) config: FakeClusterConfig,
    pub(crate) state: Mutex<State>,
    /// Wakes fetches waiting for data.
    pub(crate) data: tokio::sync::Notify,
    pub(crate) groups: Arc<GroupCoordinator>,
    /// Topic and broker configs of the admin APIs.
    pub(crate) admin: admin::AdminState,
    faults: Mutex<Vec<ActiveFault>>,
    /// Highest version served per API, below what the codec knows.
    caps: Mutex<HashMap<ApiKey, i16>>,
    /// Acts as a broker older than 0.10: no ApiVersions.
    pub(crate) no_api_versions: std::sync::atomic::AtomicBool,
    pub(crate) addrs: Mutex<BTreeMap<i32, SocketAddr>>,
    /// Requests handled, by API (for tests).
    pub(crate) counts: Mutex<BTreeMap<ApiKey, usize>>,
    /// Coordinators moved by a test, by group or transactional id.
    coordinators: Mutex<HashMap<String, i32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The fault to apply to a request of `api` to `node`, consuming one firing.
    pub(crate) fn take_fault(&self, node: i32, api: ApiKey) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let i = faults
            .iter()
            .position(|f| f.fault.api == api && f.fault.broker.is_none_or(|b| b == node))?;
        let action = faults[i].fault.action.clone();
        if let Some(left) = &mut faults[i].remaining {
            *left -= 1;
            if *left == 0 {
                faults.remove(i);
            }
        }
        Some(action)
    }

    /// The versions served for `api`, if it is served at all.
    pub(crate) fn served_versions(&self, api: ApiKey) -> Option<VersionRange> {
        if !handlers::SERVED.contains(&api) {
            return None;
        }
        let v = VersionRange::new(handlers::min_version(api), handlers::max_version(api));
        match lock(&self.caps).get(&api) {
            Some(&max) if max < v.min => None,
            Some(&max) => Some(VersionRange::new(v.min, max.min(v.max))),
            None => Some(v),
        }
    }

    pub(crate) fn count(&self, api: ApiKey) {
        *lock(&self.counts).entry(api).or_default() += 1;
    }

    pub(crate) fn broker_ids(&self) -> Vec<i32> {
        (0..self.config.brokers).collect()
    }

    pub(crate) fn addr_of(&self, node: i32) -> Option<SocketAddr> {
        lock(&self.addrs).get(&node).copied()
    }

    /// Creates a topic; false when it exists.
    pub(crate) fn create_topic(&self, name: &str, partitions: i32) -> bool {
        let brokers = self.config.brokers.max(1);
        let mut state = self.state();
        if state.topics.contains_key(name) {
            return false;
        }
        let seed = state.topics.len() as i32;
        let partitions = (0..partitions.max(1))
            .map(|p| {
                let leader = (p + seed) % brokers;
                Partition::new(leader, vec![leader])
            })
            .collect();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&rand::random::<u64>().to_be_bytes());
        id[8..].copy_from_slice(&rand::random::<u64>().to_be_bytes());
        state.topics.insert(
            name.to_string(),
            Topic {
                id: Uuid(id),
                partitions,
            },
        );
        true
    }

    /// The coordinator node of a group or transactional id.
    pub(crate) fn coordinator_for(&self, key: &str) -> i32 {
        if let Some(node) = lock(&self.coordinators).get(key) {
            return *node;
        }
        let hash = key
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        (hash % self.config.brokers.max(1) as u32) as i32
    }
}

/// A fake Kafka cluster running inside the test process. Dropping it stops every
/// broker.
pub struct FakeCluster {
    cluster: Arc<Cluster>,
    brokers: Vec<broker::BrokerHandle>,
}

impl std::fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCluster")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl FakeCluster {
    /// Starts the brokers, each on a free loopback port.
    pub async fn start(config: FakeClusterConfig) -> std::io::Result<FakeCluster> {
        if config.brokers < 1 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a cluster needs at least one broker",
            ));
        }
        let cluster = Arc::new(Cluster {
            config,
            state: Mutex::new(State::default()),
            data: tokio::sync::Notify::new(),
            groups: GroupCoordinator::new(),
            admin: admin::AdminState::default(),
            faults: Mutex::new(Vec::new()),
            caps: Mutex::new(HashMap::new()),
            no_api_versions: std::sync::atomic::AtomicBool::new(false),
            addrs: Mutex::new(BTreeMap::new()),
            counts: Mutex::new(BTreeMap::new()),
            coordinators: Mutex::new(HashMap::new()),
        });
        txn::spawn_ticker(&cluster);
        let mut brokers = Vec::new();
        for node in cluster.broker_ids() {
            brokers.push(broker::BrokerHandle::start(cluster.clone(), node, None).await?);
        }
        Ok(FakeCluster { cluster, brokers })
    }

    /// `host:port` of every broker, comma separated (a bootstrap list).
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(|b| b.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port` of one broker.
    pub fn broker_addr(&self, node_id: i32) -> Option<SocketAddr> {
        self.cluster.addr_of(node_id)
    }

    /// Creates a topic; false when it already exists.
    pub fn create_topic(&self, name: &str, partitions: i32) -> bool {
        self.cluster.create_topic(name, partitions)
    }

    /// The leader of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let state = self.cluster.state();
        Some(
            state
                .topics
                .get(topic)?
                .partitions
                .get(partition as usize)?
                .leader,
        )
    }

    /// Moves a partition's leadership to another broker (its epoch goes up); requests
    /// to the old leader get NOT_LEADER_OR_FOLLOWER. False if there is no such
    /// partition or broker.
    pub fn move_leader(&self, topic: &str, partition: i32, new_leader: i32) -> bool {
        if !(0..self.cluster.config.brokers).contains(&new_leader) {
            return false;
        }
        let mut state = self.cluster.state();
        let Some(p) = state
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(partition as usize))
        else {
            return false;
        };
        p.leader = new_leader;
        p.leader_epoch += 1;
        if !p.replicas.contains(&new_leader) {
            p.replicas.push(new_leader);
        }
        true
    }

    /// The broker coordinating a group (or transactional id).
    pub fn coordinator(&self, key: &str) -> i32 {
        self.cluster.coordinator_for(key)
    }

    /// Moves a group's (or transactional id's) coordinator to another broker, as a
    /// coordinator failover does: the old one answers NOT_COORDINATOR, FindCoordinator
    /// names the new one, and the group's state and offsets carry over (as Kafka loads
    /// them from its offsets topic). False if there is no such broker.
    pub fn move_coordinator(&self, key: &str, node_id: i32) -> bool {
        if !(0..self.cluster.config.brokers).contains(&node_id) {
            return false;
        }
        lock(&self.cluster.coordinators).insert(key.to_string(), node_id);
        true
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        let remaining = match fault.times {
            Times::Once => Some(1),
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        if remaining != Some(0) {
            lock(&self.cluster.faults).push(ActiveFault { fault, remaining });
        }
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.cluster.faults).clear();
    }

    /// Serves `api` only up to `max` (below its minimum: not at all).
    pub fn cap_version(&self, api: ApiKey, max: i16) {
        lock(&self.cluster.caps).insert(api, max);
    }

    /// Acts as a broker older than Kafka 0.10: ApiVersions closes the connection, and
    /// the other APIs are served only in the versions Kafka 0.9 had.
    pub fn emulate_pre_api_versions_broker(&self) {
        self.cluster
            .no_api_versions
            .store(true, std::sync::atomic::Ordering::Release);
        let mut caps = lock(&self.cluster.caps);
        for api in ApiKey::ALL {
            let max = match api {
                ApiKey::Produce | ApiKey::Fetch | ApiKey::OffsetFetch => 1,
                ApiKey::OffsetCommit => 2,
                ApiKey::ListOffsets
                | ApiKey::Metadata
                | ApiKey::FindCoordinator
                | ApiKey::JoinGroup
                | ApiKey::Heartbeat
                | ApiKey::LeaveGroup
                | ApiKey::SyncGroup
                | ApiKey::DescribeGroups
                | ApiKey::ListGroups => 0,
                _ => -1,
            };
            caps.insert(*api, max);
        }
    }

    /// Stops a broker: its listener closes and its connections drop. Its partitions
    /// keep it as leader (as a crashed broker) until moved.
    pub async fn stop_broker(&mut self, node_id: i32) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.node == node_id) {
            b.stop().await;
        }
    }

    /// Restarts a stopped broker on the same port.
    pub async fn restart_broker(&mut self, node_id: i32) -> std::io::Result<()> {
        let cluster = self.cluster.clone();
        if let Some(b) = self.brokers.iter_mut().find(|b| b.node == node_id) {
            b.stop().await;
            let addr = b.addr;
            *b = broker::BrokerHandle::start(cluster, node_id, Some(addr)).await?;
        }
        Ok(())
    }

    /// The group coordinator, to inspect groups and committed offsets.
    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.cluster.groups
    }

    /// How many requests of `api` the brokers handled.
    pub fn request_count(&self, api: ApiKey) -> usize {
        lock(&self.cluster.counts).get(&api).copied().unwrap_or(0)
    }

    /// The offsets of a partition: (log start, high watermark).
    pub fn offsets(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let state = self.cluster.state();
        let p = state
            .topics
            .get(topic)?
            .partitions
            .get(partition as usize)?;
        Some((p.log_start, p.next_offset))
    }

    /// The records of a partition, decoded (for assertions); the records of control
    /// batches (transaction markers) are left out (see [`batches`](Self::batches)).
    pub fn records(&self, topic: &str, partition: i32) -> Vec<kafka_protocol::records::Record> {
        use kafka_protocol::records::{decode_record_sets, DecodeOptions, RecordSet};
        let state = self.cluster.state();
        let Some(p) = state
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
        else {
            return Vec::new();
        };
        p.log
            .iter()
            .filter_map(|b| decode_record_sets(&b.bytes, &DecodeOptions::default()).ok())
            .flat_map(|s| s.sets)
            .flat_map(|s| match s {
                RecordSet::Batch(b) if b.is_control => Vec::new(),
                RecordSet::Batch(b) => b.records,
                RecordSet::Legacy(m) => m.messages.into_iter().map(Into::into).collect(),
            })
            .collect()
    }

    /// The record batches of a partition, decoded, control batches (transaction
    /// markers) included (for assertions).
    pub fn batches(
        &self,
        topic: &str,
        partition: i32,
    ) -> Vec<kafka_protocol::records::RecordBatch> {
        use kafka_protocol::records::{decode_record_sets, DecodeOptions, RecordSet};
        let state = self.cluster.state();
        let Some(p) = state
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
        else {
            return Vec::new();
        };
        p.log
            .iter()
            .filter_map(|b| decode_record_sets(&b.bytes, &DecodeOptions::default()).ok())
            .flat_map(|s| s.sets)
            .filter_map(|s| match s {
                RecordSet::Batch(b) => Some(b),
                RecordSet::Legacy(_) => None,
            })
            .collect()
    }

    /// The transaction coordinator's state of a transactional id: its state, producer
    /// id and epoch, timeout, and the partitions and groups in its open transaction.
    /// None for an id no InitProducerId named.
    pub fn transaction(&self, transactional_id: &str) -> Option<TransactionView> {
        txn::expire(&self.cluster);
        let state = self.cluster.state();
        state.txns.ids.get(transactional_id).map(|m| m.view())
    }

    /// Fences the producer of a transactional id as a second producer with the same id
    /// would with InitProducerId: an open transaction is aborted (markers written, with
    /// a bumped epoch), then the epoch is bumped again. Returns the new producer id and
    /// epoch (which the caller may use as the "second producer"), or None for an
    /// unknown id.
    pub fn fence_transactional_id(&self, transactional_id: &str) -> Option<(i64, i16)> {
        txn::fence(&self.cluster, transactional_id)
    }

    /// The last stable offset of a partition: the first offset of its oldest open
    /// transaction, else the high watermark.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        txn::expire(&self.cluster);
        let state = self.cluster.state();
        Some(
            state
                .topics
                .get(topic)?
                .partitions
                .get(partition as usize)?
                .last_stable_offset(),
        )
    }

    /// The aborted transactions of a partition (Kafka's transaction index): (producer
    /// id, first offset, offset of the abort marker), oldest first.
    pub fn aborted_transactions(&self, topic: &str, partition: i32) -> Vec<(i64, i64, i64)> {
        let state = self.cluster.state();
        state
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .map(|p| {
                p.aborted_txns
                    .iter()
                    .map(|a| (a.producer_id, a.first_offset, a.last_offset))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes the coordinator write transaction markers `delay` after it accepted an
    /// EndTxn (or aborted a transaction itself), instead of before answering; meanwhile
    /// the transaction is `PrepareCommit`/`PrepareAbort` and requests for it get
    /// `CONCURRENT_TRANSACTIONS`, as while a Kafka coordinator writes its markers.
    /// Default zero.
    pub fn set_transaction_marker_delay(&self, delay: Duration) {
        self.cluster.state().txns.marker_delay = delay;
    }
}
