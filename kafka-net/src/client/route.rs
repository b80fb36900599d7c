//! Where a request goes ([`Client::send`]'s routing), what its answer says about the
//! cluster (a moved coordinator, a moved leader), and [`KafkaClient::request`], which
//! routes a typed request without [`RequestKind`].
//!
//! Routing reads a request through `&dyn Any`, downcast by its API key, so the typed
//! path never builds a `RequestKind` or a `ResponseKind`: those reach every message's
//! codec (and drop code), and a program that sends only typed requests through
//! `KafkaClient::request` links only the codecs of what it sends.

use super::*;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    ConsumerGroupHeartbeatRequest, DeleteRecordsRequest, DescribeGroupsRequest, EndTxnRequest,
    EndTxnResponse, FetchRequest, FetchResponse, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, InitProducerIdRequest, InitProducerIdResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListOffsetsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetFetchRequest,
    OffsetFetchResponse, OffsetForLeaderEpochRequest, ProduceRequest, ProduceResponse,
    SyncGroupRequest, SyncGroupResponse, TxnOffsetCommitRequest,
};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;

/// The broker a request belongs to.
pub(super) enum Route {
    /// The leader of a partition (partition requests, by their first partition).
    Leader {
        topic: String,
        partition: i32,
        purpose: Purpose,
    },
    /// A coordinator: its key type (group or transaction) and key.
    Coordinator(i8, String),
    /// The controller (topic and partition admin).
    Controller,
    /// Any broker that answers.
    Any,
}

/// A connection and, for a coordinator's, the coordinator's key type and key.
type Routed = (Arc<Connection>, Option<(i8, String)>);

impl KafkaClient {
    /// Sends a typed request, routed as [`Client::send`] routes it (a Produce with
    /// acks=0 returns an empty answer once written). The same as
    /// [`ClientExt::request`], which goes through [`RequestKind`] and
    /// [`ResponseKind`] and so links the codec of every message into the program;
    /// this encodes and decodes only `R` and its answer.
    pub async fn request<R>(&self, request: R) -> Result<R::Response>
    where
        R: Request + Send + Sync + 'static,
        R::Response: 'static,
    {
        self.check_open()?;
        let (conn, coordinator) = self.open_route(self.route_of(R::API_KEY, &request)).await?;
        let any: &(dyn Any + Send + Sync) = &request;
        if let Some(p) = any.downcast_ref::<ProduceRequest>() {
            if p.acks == 0 {
                produce_unanswered(&conn, p).await?;
                let empty: Box<dyn Any> = Box::new(ProduceResponse::default());
                return empty.downcast().map(|r| *r).map_err(|_| {
                    Error::new(ErrorKind::Malformed(
                        "a Produce answered by another type".into(),
                    ))
                });
            }
        }
        let version = conn
            .versions()
            .version_for(R::API_KEY)
            .map_err(|e| e.with_broker(conn.addr().to_string()))?;
        let response = conn.send_version(&request, version).await?;
        self.note_answer(coordinator, R::API_KEY, &response);
        Ok(response)
    }

    /// Where a request of `api` goes.
    pub(super) fn route_of(&self, api: ApiKey, request: &dyn Any) -> Route {
        use ApiKey as A;
        fn is<T: 'static>(request: &dyn Any) -> Option<&T> {
            request.downcast_ref()
        }
        let leader = |topic: &str, partition: i32, purpose: Purpose| Route::Leader {
            topic: topic.to_string(),
            partition,
            purpose,
        };
        let group = |g: &StrBytes| Route::Coordinator(GROUP, g.to_string());
        let txn = |t: &StrBytes| Route::Coordinator(TRANSACTION, t.to_string());
        let route = match api {
            A::Produce => is::<ProduceRequest>(request).and_then(|r| {
                let t = r.topic_data.first()?;
                let p = t.partition_data.first()?;
                Some(leader(&t.name, p.index, Purpose::Produce))
            }),
            A::Fetch => is::<FetchRequest>(request).and_then(|r| {
                let t = r.topics.first()?;
                let p = t.partitions.first()?;
                if t.topic.is_empty() {
                    let metadata = self.cached_metadata()?;
                    let name = metadata.topic_name(&t.topic_id)?;
                    Some(leader(name, p.partition, Purpose::Fetch))
                } else {
                    Some(leader(&t.topic, p.partition, Purpose::Fetch))
                }
            }),
            A::ListOffsets => is::<ListOffsetsRequest>(request).and_then(|r| {
                let t = r.topics.first()?;
                let p = t.partitions.first()?;
                Some(leader(&t.name, p.partition_index, Purpose::Admin))
            }),
            A::DeleteRecords => is::<DeleteRecordsRequest>(request).and_then(|r| {
                let t = r.topics.first()?;
                let p = t.partitions.first()?;
                Some(leader(&t.name, p.partition_index, Purpose::Admin))
            }),
            A::OffsetForLeaderEpoch => is::<OffsetForLeaderEpochRequest>(request).and_then(|r| {
                let t = r.topics.first()?;
                let p = t.partitions.first()?;
                Some(leader(&t.topic, p.partition, Purpose::Admin))
            }),
            A::JoinGroup => is::<JoinGroupRequest>(request).map(|r| group(&r.group_id)),
            A::SyncGroup => is::<SyncGroupRequest>(request).map(|r| group(&r.group_id)),
            A::Heartbeat => is::<HeartbeatRequest>(request).map(|r| group(&r.group_id)),
            A::LeaveGroup => is::<LeaveGroupRequest>(request).map(|r| group(&r.group_id)),
            A::OffsetCommit => is::<OffsetCommitRequest>(request).map(|r| group(&r.group_id)),
            A::OffsetDelete => is::<OffsetDeleteRequest>(request).map(|r| group(&r.group_id)),
            A::TxnOffsetCommit => is::<TxnOffsetCommitRequest>(request).map(|r| group(&r.group_id)),
            A::ConsumerGroupHeartbeat => {
                is::<ConsumerGroupHeartbeatRequest>(request).map(|r| group(&r.group_id))
            }
            A::OffsetFetch => is::<OffsetFetchRequest>(request).map(|r| match r.groups.first() {
                Some(g) => group(&g.group_id),
                None => group(&r.group_id),
            }),
            A::DescribeGroups => {
                is::<DescribeGroupsRequest>(request).and_then(|r| r.groups.first().map(group))
            }
            A::InitProducerId => is::<InitProducerIdRequest>(request)
                .and_then(|r| r.transactional_id.as_ref().map(txn)),
            A::AddOffsetsToTxn => {
                is::<AddOffsetsToTxnRequest>(request).map(|r| txn(&r.transactional_id))
            }
            A::EndTxn => is::<EndTxnRequest>(request).map(|r| txn(&r.transactional_id)),
            A::AddPartitionsToTxn => {
                is::<AddPartitionsToTxnRequest>(request).map(|r| match r.transactions.first() {
                    Some(t) => txn(&t.transactional_id),
                    None => txn(&r.v3_and_below_transactional_id),
                })
            }
            A::CreateTopics
            | A::DeleteTopics
            | A::CreatePartitions
            | A::ElectLeaders
            | A::AlterPartitionReassignments
            | A::ListPartitionReassignments => Some(Route::Controller),
            _ => None,
        };
        route.unwrap_or(Route::Any)
    }

    /// The connection a route leads to. Boxed and made here, so that the futures of
    /// finding a leader or a coordinator are compiled once, in this crate, and not
    /// again into each crate that sends typed requests.
    #[inline(never)]
    pub(super) fn open_route(
        &self,
        route: Route,
    ) -> Pin<Box<dyn Future<Output = Result<Routed>> + Send + '_>> {
        Box::pin(async move {
            match route {
                Route::Leader {
                    topic,
                    partition,
                    purpose,
                } => {
                    let leader = self.leader(&topic, partition).await?;
                    Ok((self.connection(&leader, purpose).await?, None))
                }
                Route::Coordinator(key_type, key) => {
                    let broker = self.coordinator(key_type, &key).await?;
                    let conn = self.connection(&broker, Purpose::Group).await?;
                    Ok((conn, Some((key_type, key))))
                }
                Route::Controller => Ok((self.controller().await?, None)),
                Route::Any => Ok((self.any_broker(Purpose::Admin).await?, None)),
            }
        })
    }

    /// Forgets a coordinator that says it no longer is one, and refreshes metadata
    /// after a partition error that means it is stale.
    pub(super) fn note_answer(
        &self,
        coordinator: Option<(i8, String)>,
        api: ApiKey,
        response: &dyn Any,
    ) {
        if let Some((key_type, key)) = coordinator {
            if let Some(code) = coordinator_error(api, response) {
                if matches!(
                    ErrorCode::from(code),
                    ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
                ) {
                    self.invalidate_coordinator(key_type, &key);
                }
            }
        }
        if let Some(code) = partition_error(api, response) {
            self.note_partition_error(code);
        }
    }
}

/// Writes a Produce with acks=0, which the broker does not answer.
pub(super) async fn produce_unanswered(conn: &Connection, request: &ProduceRequest) -> Result<()> {
    let version = conn.versions().version_for(ApiKey::Produce)?;
    conn.send_without_response(request, version).await
}

/// The top-level error code of group and transaction coordinator answers.
fn coordinator_error(api: ApiKey, response: &dyn Any) -> Option<i16> {
    use ApiKey as A;
    fn is<T: 'static>(response: &dyn Any) -> Option<&T> {
        response.downcast_ref()
    }
    match api {
        A::JoinGroup => is::<JoinGroupResponse>(response).map(|r| r.error_code),
        A::SyncGroup => is::<SyncGroupResponse>(response).map(|r| r.error_code),
        A::Heartbeat => is::<HeartbeatResponse>(response).map(|r| r.error_code),
        A::LeaveGroup => is::<LeaveGroupResponse>(response).map(|r| r.error_code),
        A::OffsetFetch => is::<OffsetFetchResponse>(response)
            .map(|r| r.groups.first().map_or(r.error_code, |g| g.error_code)),
        A::OffsetCommit => is::<OffsetCommitResponse>(response).and_then(|r| {
            r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.error_code)
        }),
        A::FindCoordinator => is::<FindCoordinatorResponse>(response).map(|r| r.error_code),
        A::EndTxn => is::<EndTxnResponse>(response).map(|r| r.error_code),
        A::AddOffsetsToTxn => is::<AddOffsetsToTxnResponse>(response).map(|r| r.error_code),
        A::InitProducerId => is::<InitProducerIdResponse>(response).map(|r| r.error_code),
        _ => None,
    }
}

/// The first partition error code of partition answers.
fn partition_error(api: ApiKey, response: &dyn Any) -> Option<i16> {
    use ApiKey as A;
    fn first(codes: impl Iterator<Item = i16>) -> Option<i16> {
        codes.into_iter().find(|c| *c != 0)
    }
    match api {
        A::Produce => response.downcast_ref::<ProduceResponse>().and_then(|r| {
            first(
                r.responses
                    .iter()
                    .flat_map(|t| &t.partition_responses)
                    .map(|p| p.error_code),
            )
        }),
        A::Fetch => response.downcast_ref::<FetchResponse>().and_then(|r| {
            first(
                r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        }),
        A::ListOffsets => response
            .downcast_ref::<ListOffsetsResponse>()
            .and_then(|r| {
                first(
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                )
            }),
        _ => None,
    }
}
