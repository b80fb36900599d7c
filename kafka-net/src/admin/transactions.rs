//! Transactions: DescribeTransactions (one request per transaction coordinator) and
//! ListTransactions (one request per broker, as each coordinates its own share).

use super::{by_node, check, spread, Admin, Results};
use crate::error::{Error, Result};
use crate::Client;
use kafka_protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest};
use kafka_protocol::{ApiKey, StrBytes};
use std::collections::BTreeMap;

/// FindCoordinator's key type of transactional ids.
const TRANSACTION: i8 = 1;

/// A transaction as its coordinator describes it (Kafka 3.0+).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionDescription {
    /// The coordinator's state (`Empty`, `Ongoing`, `PrepareCommit`,
    /// `CompleteAbort`, ...).
    pub state: String,
    /// The producer id and epoch.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// When the open transaction began (ms since the epoch), -1 when none is open.
    pub start_time_ms: i64,
    /// The partitions in the open transaction.
    pub partitions: Vec<(String, i32)>,
    /// The node id of the coordinator that answered.
    pub coordinator: i32,
}

/// A transactional id as ListTransactions lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// The coordinator's state of it.
    pub state: String,
    /// The node id of its coordinator.
    pub coordinator: i32,
}

impl Admin {
    /// Describes transactional ids, in one DescribeTransactions per coordinator; an
    /// unknown id is TRANSACTIONAL_ID_NOT_FOUND for it alone.
    pub async fn describe_transactions(
        &self,
        transactional_ids: Vec<String>,
    ) -> Results<String, TransactionDescription> {
        let api = ApiKey::DescribeTransactions;
        self.per_item(api, transactional_ids, |pending| async move {
            let (nodes, failed) = by_node(pending, |id| async move {
                self.client
                    .coordinator(TRANSACTION, &id)
                    .await
                    .map(|b| b.node_id)
                    .map_err(|e| e.with_resource(id.clone()))
            })
            .await;
            let mut out: Results<String, TransactionDescription> =
                failed.into_iter().map(|(k, e)| (k, Err(e))).collect();
            for (node, ids) in nodes {
                let answered = async {
                    let (conn, broker) = self.node(node).await?;
                    let version = Self::version(&conn, api)?;
                    let request = DescribeTransactionsRequest {
                        transactional_ids: ids.iter().cloned().map(StrBytes::from).collect(),
                        ..Default::default()
                    };
                    let response = conn.send_version(&request, version).await?;
                    let addr = broker.addr();
                    let mut answered = BTreeMap::new();
                    for t in response.transaction_states {
                        let id = t.transactional_id.to_string();
                        let r = check(t.error_code, None, api, &addr, || id.clone()).map(|()| {
                            TransactionDescription {
                                state: t.transaction_state.to_string(),
                                producer_id: t.producer_id,
                                producer_epoch: t.producer_epoch,
                                timeout_ms: t.transaction_timeout_ms,
                                start_time_ms: t.transaction_start_time_ms,
                                partitions: t
                                    .topics
                                    .iter()
                                    .flat_map(|d| {
                                        d.partitions.iter().map(|p| (d.topic.to_string(), *p))
                                    })
                                    .collect(),
                                coordinator: node,
                            }
                        });
                        if r.is_err() {
                            // NOT_COORDINATOR and the like: find it again next round.
                            self.client.invalidate_coordinator(TRANSACTION, &id);
                        }
                        answered.insert(id, r);
                    }
                    Ok::<_, Error>(answered)
                }
                .await;
                spread(&mut out, ids, answered);
            }
            Ok(out)
        })
        .await
    }

    /// Every transactional id the cluster's coordinators know, from one
    /// ListTransactions per broker; `states` filters by coordinator state (empty:
    /// all). Fails when a broker cannot answer, naming it.
    pub async fn list_transactions(&self, states: &[&str]) -> Result<Vec<TransactionListing>> {
        let api = ApiKey::ListTransactions;
        let nodes: Vec<i32> = self
            .client
            .refresh_metadata()
            .await?
            .brokers
            .keys()
            .copied()
            .collect();
        let mut out = Vec::new();
        for node in nodes {
            let (conn, broker) = self.node(node).await?;
            let version = Self::version(&conn, api)?;
            let request = ListTransactionsRequest {
                state_filters: states
                    .iter()
                    .map(|s| StrBytes::from(s.to_string()))
                    .collect(),
                duration_filter: -1,
                ..Default::default()
            };
            let response = conn.send_version(&request, version).await?;
            check(response.error_code, None, api, &broker.addr(), || {
                format!("broker {node}")
            })?;
            out.extend(
                response
                    .transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.to_string(),
                        producer_id: t.producer_id,
                        state: t.transaction_state.to_string(),
                        coordinator: node,
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }
}
