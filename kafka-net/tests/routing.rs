//! The client's reactions to broker error codes, against a scripted one-broker cluster
//! (a few lines of tokio; Tansu cannot be made to answer these codes on demand):
//! NOT_COORDINATOR forgets the cached coordinator, NOT_LEADER_OR_FOLLOWER refreshes
//! metadata, and requests are routed by what they carry.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_net::{Client, ClientConfig, KafkaClient};
use kafka_protocol::frame::{decode_request, encode_response_kind, frame_size};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, ErrorCode, Request, RequestKind, ResponseKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Requests the scripted broker saw, by API.
type Seen = Arc<Mutex<BTreeMap<ApiKey, usize>>>;

async fn read_request(s: &mut TcpStream) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).await.ok()?;
    let n = frame_size(&prefix, 1 << 20).ok()??;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

fn answer(request: RequestKind, port: u16, seen: &Seen) -> ResponseKind {
    let count = {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(request.api_key()).or_default();
        *n += 1;
        *n
    };
    match request {
        RequestKind::ApiVersions(_) => ApiVersionsResponse {
            api_keys: ApiKey::ALL
                .iter()
                .map(|k| ApiVersion {
                    api_key: k.key(),
                    min_version: k.versions().min,
                    max_version: k.versions().max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestKind::Metadata(_) => MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: i32::from(port),
                ..Default::default()
            }],
            controller_id: 0,
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![MetadataResponsePartition {
                    partition_index: 0,
                    leader_id: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
        .into(),
        RequestKind::FindCoordinator(r) => {
            if r.coordinator_keys.is_empty() {
                // Versions 0-3: one key, answered at the top level.
                FindCoordinatorResponse {
                    node_id: 0,
                    host: "127.0.0.1".into(),
                    port: i32::from(port),
                    ..Default::default()
                }
            } else {
                FindCoordinatorResponse {
                    coordinators: r
                        .coordinator_keys
                        .iter()
                        .map(|k| find_coordinator_response::Coordinator {
                            key: k.clone(),
                            node_id: 0,
                            host: "127.0.0.1".into(),
                            port: i32::from(port),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            }
            .into()
        }
        // The first heartbeat says the coordinator moved.
        RequestKind::Heartbeat(_) => HeartbeatResponse {
            error_code: if count == 1 {
                ErrorCode::NotCoordinator.code()
            } else {
                0
            },
            ..Default::default()
        }
        .into(),
        // The first produce says the leader moved.
        RequestKind::Produce(r) => ProduceResponse {
            responses: r
                .topic_data
                .iter()
                .map(|t| TopicProduceResponse {
                    name: t.name.clone(),
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| PartitionProduceResponse {
                            index: p.index,
                            error_code: if count == 1 {
                                ErrorCode::NotLeaderOrFollower.code()
                            } else {
                                0
                            },
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        other => panic!("unscripted {:?}", other.api_key()),
    }
}

async fn cluster() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                while let Some(frame) = read_request(&mut s).await {
                    let (header, body) = decode_request(&frame).unwrap();
                    if matches!(&body, RequestKind::Produce(p) if p.acks == 0) {
                        // As Kafka: no answer to acks=0.
                        *seen.lock().unwrap().entry(ApiKey::Produce).or_default() += 1;
                        continue;
                    }
                    let response = answer(body, port, &seen);
                    let mut out = BytesMut::new();
                    let rh = ResponseHeader {
                        correlation_id: header.correlation_id,
                        ..Default::default()
                    };
                    encode_response_kind(&mut out, &rh, header.request_api_version, &response)
                        .unwrap();
                    s.write_all(&out).await.unwrap();
                }
            });
        }
    });
    (format!("127.0.0.1:{port}"), seen)
}

fn count(seen: &Seen, api: ApiKey) -> usize {
    seen.lock().unwrap().get(&api).copied().unwrap_or(0)
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen");
}

/// The two ways a request is sent: `Client::send` (any request, as a `RequestKind`)
/// and the typed `KafkaClient::request`. Both route and react to answers alike.
#[derive(Debug, Clone, Copy)]
enum Path {
    Kind,
    Typed,
}

async fn send_via<R>(client: &KafkaClient, path: Path, request: R) -> R::Response
where
    R: Request + Into<RequestKind> + Send + Sync + 'static,
    R::Response: TryFrom<ResponseKind, Error = ResponseKind> + 'static,
{
    match path {
        Path::Kind => R::Response::try_from(client.send(request.into()).await.unwrap()).unwrap(),
        Path::Typed => client.request(request).await.unwrap(),
    }
}

/// A Produce of no records to partition 0 of topic `t`.
fn produce(acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::new()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn not_coordinator_forgets_the_cached_coordinator() {
    for path in [Path::Kind, Path::Typed] {
        let (addr, seen) = cluster().await;
        let client = KafkaClient::connect(&[addr.as_str()], ClientConfig::default())
            .await
            .unwrap();
        let heartbeat = || HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            ..Default::default()
        };
        let first = send_via(&client, path, heartbeat()).await;
        assert_eq!(ErrorCode::from(first.error_code), ErrorCode::NotCoordinator);
        assert_eq!(count(&seen, ApiKey::FindCoordinator), 1, "{path:?}");
        let second = send_via(&client, path, heartbeat()).await;
        assert_eq!(second.error_code, 0);
        assert_eq!(
            count(&seen, ApiKey::FindCoordinator),
            2,
            "{path:?}: looked the coordinator up again"
        );
        send_via(&client, path, heartbeat()).await;
        assert_eq!(
            count(&seen, ApiKey::FindCoordinator),
            2,
            "{path:?}: and cached it"
        );
    }
}

#[tokio::test]
async fn not_leader_or_follower_refreshes_metadata() {
    for path in [Path::Kind, Path::Typed] {
        not_leader_or_follower_refreshes_metadata_via(path).await;
    }
}

async fn not_leader_or_follower_refreshes_metadata_via(path: Path) {
    let (addr, seen) = cluster().await;
    let client = KafkaClient::connect(&[addr.as_str()], ClientConfig::default())
        .await
        .unwrap();
    let before = count(&seen, ApiKey::Metadata);
    let produce = produce(1);
    send_via(&client, path, produce.clone()).await;
    eventually("a metadata refresh", || {
        count(&seen, ApiKey::Metadata) > before
    })
    .await;
    let after = count(&seen, ApiKey::Metadata);
    send_via(&client, path, produce).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        count(&seen, ApiKey::Metadata),
        after,
        "no refresh without an error"
    );
    // Produce went over the produce connection, metadata over the admin one.
    assert!(
        client
            .broker_metrics()
            .values()
            .map(|m| m.reconnects)
            .sum::<u64>()
            >= 1
    );
}

#[tokio::test]
async fn a_produce_with_acks_zero_is_done_once_written() {
    for path in [Path::Kind, Path::Typed] {
        let (addr, seen) = cluster().await;
        let client = KafkaClient::connect(&[addr.as_str()], ClientConfig::default())
            .await
            .unwrap();
        let answer =
            tokio::time::timeout(Duration::from_secs(5), send_via(&client, path, produce(0)))
                .await
                .expect("done once written");
        assert_eq!(answer, ProduceResponse::default(), "{path:?}");
        eventually("the broker to read it", || {
            count(&seen, ApiKey::Produce) == 1
        })
        .await;
        // The connection goes on: the next request is answered as its own.
        let heartbeat = HeartbeatRequest {
            group_id: "g".into(),
            ..Default::default()
        };
        let first = send_via(&client, path, heartbeat).await;
        assert_eq!(ErrorCode::from(first.error_code), ErrorCode::NotCoordinator);
    }
}

#[tokio::test]
async fn invalid_config_and_bootstrap_are_errors_at_connect() {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::ZERO;
    let e = KafkaClient::connect(&["127.0.0.1:1"], config)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("request_timeout"), "{e}");
    let none: [&str; 0] = [];
    let e = KafkaClient::connect(&none, ClientConfig::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no bootstrap address"), "{e}");
}
