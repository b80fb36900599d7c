//! [`Admin`]: the cluster's administration API (topics, configs, consumer groups and
//! their offsets and lag, records and offsets, the cluster), on the connections and
//! metadata of a [`KafkaClient`].
//!
//! Every call batches its items per broker (or per group coordinator) as the
//! protocol allows, sends each request in the highest version both sides speak,
//! retries what is retriable (transport errors, `NOT_CONTROLLER`, `NOT_COORDINATOR`,
//! `NOT_LEADER_OR_FOLLOWER`, ...) up to [`AdminConfig::retries`] times, and answers
//! per item: one unknown topic does not fail the others. Each item's error names the
//! API, the broker and the item ([`Error::resource`]).
//!
//! ```no_run
//! use kafka_net::admin::{Admin, OffsetSpec};
//! use kafka_net::{ClientConfig, KafkaClient, NewTopic};
//! # async fn run() -> kafka_net::Result<()> {
//! let client = KafkaClient::connect(&["127.0.0.1:9092"], ClientConfig::default()).await?;
//! let admin = Admin::new(client);
//! for (topic, result) in admin.create_topics(vec![NewTopic::new("orders", 6)], false).await {
//!     println!("{topic}: {:?}", result.map(|_| "created"));
//! }
//! for p in admin.group_lag("billing").await?.partitions {
//!     println!("{}/{} lag {:?}", p.topic, p.partition, p.lag);
//! }
//! # Ok(()) }
//! ```

mod acls;
mod cluster;
mod configs;
mod groups;
mod lag;
mod offsets;
mod producers;
mod records;
mod topics;
mod transactions;

pub use acls::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
};
pub use cluster::{ClusterDescription, Election};
pub use configs::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};
pub use groups::{GroupDescription, GroupListing, MemberDescription};
pub use lag::{lag_of, GroupLag, PartitionLag};
pub use offsets::ResetTo;
pub use producers::ProducerState;
pub use records::{ListedOffset, OffsetSpec};
pub(crate) use topics::delete_topics_request;
pub use topics::{CreatedTopic, TopicDescription, TopicListing};
pub use transactions::{TransactionDescription, TransactionListing};

use crate::client::{Client, KafkaClient};
use crate::cluster::{BrokerInfo, Purpose};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use kafka_protocol::ApiKey;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A topic partition: (topic, partition).
pub type TopicPartition = (String, i32);

/// Per-item answers of a call, by item.
pub type Results<K, T> = BTreeMap<K, Result<T>>;

/// How the [`Admin`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminConfig {
    /// How long the broker may take to carry out an operation (the `timeout_ms` of
    /// CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords, ElectLeaders).
    /// Default 30 s (the Java AdminClient takes it from each call's `timeoutMs`, whose
    /// default is `default.api.timeout.ms`, 60000; each request itself is bounded by
    /// the client's `request_timeout`, `request.timeout.ms`).
    pub operation_timeout: Duration,
    /// How many times an item that failed with a retriable error is sent again
    /// (`retries`). Default 5 (the Java AdminClient's default is `Integer.MAX_VALUE`,
    /// bounded by `default.api.timeout.ms`, 60000).
    pub retries: u32,
    /// Wait before a retry, doubled each time. Default 100 ms (`retry.backoff.ms`,
    /// 100).
    pub retry_backoff: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            operation_timeout: Duration::from_secs(30),
            retries: 5,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl AdminConfig {
    /// Sets [`operation_timeout`](Self::operation_timeout).
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Sets [`retries`](Self::retries).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`retry_backoff`](Self::retry_backoff).
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }
}

/// The administration API of a cluster. Cheap to clone; shares the client's
/// connections and metadata.
#[derive(Debug, Clone)]
pub struct Admin {
    client: KafkaClient,
    config: AdminConfig,
}

impl Admin {
    /// An admin with the default [`AdminConfig`].
    pub fn new(client: KafkaClient) -> Admin {
        Admin::with_config(client, AdminConfig::default())
    }

    /// An admin with this config.
    pub fn with_config(client: KafkaClient, config: AdminConfig) -> Admin {
        Admin { client, config }
    }

    /// The client underneath.
    pub fn client(&self) -> &KafkaClient {
        &self.client
    }

    fn timeout_ms(&self) -> i32 {
        self.config
            .operation_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }

    /// A connection to a broker by node id.
    async fn node(&self, node_id: i32) -> Result<(Arc<Connection>, BrokerInfo)> {
        let find = |m: &crate::cluster::ClusterMetadata| m.brokers.get(&node_id).cloned();
        let broker = match self.client.metadata().await.ok().as_deref().and_then(find) {
            Some(b) => b,
            None => find(&*self.client.refresh_metadata().await?).ok_or_else(|| {
                Error::new(ErrorKind::Unavailable(format!(
                    "broker {node_id} is not in the cluster metadata"
                )))
            })?,
        };
        let conn = self.client.connection(&broker, Purpose::Admin).await?;
        Ok((conn, broker))
    }

    /// A connection to the controller (any broker when the metadata names none, as
    /// KRaft clusters answer admin requests on every broker).
    async fn controller(&self) -> Result<(Arc<Connection>, BrokerInfo)> {
        let m = self.client.metadata().await?;
        let id = if m.brokers.contains_key(&m.controller_id) {
            m.controller_id
        } else {
            *m.brokers
                .keys()
                .next()
                .ok_or_else(|| Error::new(ErrorKind::Unavailable("no broker is known".into())))?
        };
        self.node(id).await
    }

    /// The node id of a group's coordinator.
    async fn coordinator(&self, group: &str) -> Result<i32> {
        Ok(self.client.coordinator(0, group).await?.node_id)
    }

    /// The version of `api` to send on `conn`; an error naming the broker when it
    /// does not serve the API.
    fn version(conn: &Connection, api: ApiKey) -> Result<i16> {
        conn.versions()
            .version_for(api)
            .map_err(|e| e.with_api(api).with_broker(conn.addr().to_string()))
    }

    /// Sends one round of `items` with `round`, then again the items that failed with
    /// a retriable error (a whole-round error applies to every item of the round),
    /// after a backoff and a metadata refresh, up to [`AdminConfig::retries`] times.
    /// Items `round` does not answer get a malformed-answer error.
    async fn per_item<K, T, F, Fut>(
        &self,
        api: ApiKey,
        items: Vec<K>,
        mut round: F,
    ) -> Results<K, T>
    where
        K: Ord + Clone + std::fmt::Debug,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Results<K, T>>>,
    {
        let mut done: Results<K, T> = BTreeMap::new();
        let mut pending = items;
        pending.sort();
        pending.dedup();
        let mut backoff = self.config.retry_backoff;
        for attempt in 0..=self.config.retries {
            if pending.is_empty() {
                break;
            }
            let last = attempt == self.config.retries;
            let answered = match round(pending.clone()).await {
                Ok(answered) => answered,
                Err(e) => pending
                    .iter()
                    .map(|k| (k.clone(), Err(e.clone())))
                    .collect(),
            };
            let mut again = Vec::new();
            let mut answered = answered;
            for k in std::mem::take(&mut pending) {
                match answered.remove(&k) {
                    Some(Err(e)) if retriable(&e) && !last => {
                        tracing::debug!(?k, error = %e, "admin item failed; retrying");
                        again.push(k);
                    }
                    Some(r) => {
                        done.insert(k, r);
                    }
                    None => {
                        let e = Error::new(ErrorKind::Malformed(format!(
                            "the answer to {api} says nothing of {k:?}"
                        )))
                        .with_api(api);
                        done.insert(k, Err(e));
                    }
                }
            }
            if !again.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                let _ = self.client.refresh_metadata().await;
            }
            pending = again;
        }
        done
    }
}

/// Whether an item is sent again after this error: retriable errors except an
/// unknown topic or partition, which an admin call reports at once (as the Java
/// AdminClient does) instead of waiting for it to appear.
fn retriable(e: &Error) -> bool {
    e.is_retriable()
        && !matches!(
            e.code(),
            Some(kafka_protocol::ErrorCode::UnknownTopicOrPartition)
                | Some(kafka_protocol::ErrorCode::UnknownTopicId)
        )
}

/// An error for a broker error code, naming the API, broker and item; `Ok` for NONE.
fn check(
    code: i16,
    message: Option<&str>,
    api: ApiKey,
    broker: &str,
    resource: impl FnOnce() -> String,
) -> Result<()> {
    Error::check_code(code, message).map_err(|e| {
        e.with_api(api)
            .with_broker(broker.to_string())
            .with_resource(resource())
    })
}

/// An error of bad input to an admin call (nothing is sent for the item).
fn invalid(api: ApiKey, resource: impl Into<String>, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument(message.into()))
        .with_api(api)
        .with_resource(resource)
}

/// Puts the answers of one broker's request into `out`; when the request as a whole
/// failed, its error goes to every item it carried.
fn spread<K: Ord, T>(out: &mut Results<K, T>, items: Vec<K>, answered: Result<Results<K, T>>) {
    match answered {
        Ok(mut a) => out.append(&mut a),
        Err(e) => out.extend(items.into_iter().map(|k| (k, Err(e.clone())))),
    }
}

/// Groups `items` by the node `node_of` names; the items it fails for come back with
/// their error.
async fn by_node<K, F, Fut>(
    items: Vec<K>,
    mut node_of: F,
) -> (BTreeMap<i32, Vec<K>>, Vec<(K, Error)>)
where
    K: Ord + Clone,
    F: FnMut(K) -> Fut,
    Fut: Future<Output = Result<i32>>,
{
    let mut nodes: BTreeMap<i32, Vec<K>> = BTreeMap::new();
    let mut failed = Vec::new();
    for k in items {
        match node_of(k.clone()).await {
            Ok(n) => nodes.entry(n).or_default().push(k),
            Err(e) => failed.push((k, e)),
        }
    }
    (nodes, failed)
}
