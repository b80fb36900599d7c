//! Connections against a misbehaving server: a few lines of tokio on loopback that
//! answer ApiVersions properly and then break the protocol in one way each. Every case
//! must end in a clear error: no panic, no hang, no unbounded memory.

#![allow(clippy::unwrap_used)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_net::{BrokerMetrics, ClientConfig, Connection, ErrorKind, VersionTable};
use kafka_protocol::frame::{decode_request, encode_response, frame_size};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest, MetadataResponse};
use kafka_protocol::{ApiKey, RequestKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with the first request after ApiVersions.
#[derive(Clone, Copy)]
enum Misbehave {
    Garbage,
    UnknownCorrelationId,
    Truncated,
    HugeLengthPrefix,
    NeverAnswer,
    CloseMidResponse,
    Echo,
}

async fn read_request(s: &mut TcpStream) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).await.ok()?;
    let n = frame_size(&prefix, 1 << 20).ok()??;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
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
}

async fn answer(s: &mut TcpStream, frame: &Bytes) {
    let (header, body) = decode_request(frame).expect("the client sends valid requests");
    let version = header.request_api_version;
    let mut out = BytesMut::new();
    match body {
        RequestKind::ApiVersions(_) => {
            encode_response(&mut out, header.correlation_id, version, &api_versions())
        }
        RequestKind::Metadata(m) => {
            let mut r = MetadataResponse::default();
            for t in m.topics.into_iter().flatten() {
                r.topics.push(
                    kafka_protocol::messages::metadata_response::MetadataResponseTopic {
                        name: t.name,
                        error_code: 3,
                        ..Default::default()
                    },
                );
            }
            encode_response(&mut out, header.correlation_id, version, &r)
        }
        // Produce with acks=0 gets no answer, as from Kafka.
        RequestKind::Produce(p) if p.acks == 0 => return,
        other => panic!("unexpected request {:?}", other.api_key()),
    }
    .expect("encodes");
    s.write_all(&out).await.expect("writes");
}

/// A server that answers ApiVersions, then misbehaves as told.
async fn server(mode: Misbehave) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let Some(first) = read_request(&mut s).await else {
            return;
        };
        answer(&mut s, &first).await;
        while let Some(req) = read_request(&mut s).await {
            let corr = &req[4..8];
            match mode {
                Misbehave::Echo => answer(&mut s, &req).await,
                Misbehave::Garbage => {
                    let mut out = BytesMut::new();
                    out.put_i32(12);
                    out.put_slice(corr);
                    out.put_slice(&[0xff; 8]);
                    s.write_all(&out).await.unwrap();
                }
                Misbehave::UnknownCorrelationId => {
                    let mut out = BytesMut::new();
                    out.put_i32(8);
                    out.put_i32(0x7777_7777);
                    out.put_i32(0);
                    s.write_all(&out).await.unwrap();
                }
                Misbehave::Truncated | Misbehave::CloseMidResponse => {
                    let mut out = BytesMut::new();
                    out.put_i32(100);
                    out.put_slice(corr);
                    out.put_slice(&[0; 6]);
                    s.write_all(&out).await.unwrap();
                    if matches!(mode, Misbehave::Truncated) {
                        // Truncated and then silent: the request timeout ends it.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    return;
                }
                Misbehave::HugeLengthPrefix => {
                    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1])
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                Misbehave::NeverAnswer => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
            }
        }
    });
    addr
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.request_timeout = Duration::from_millis(500);
    c.connect_timeout = Duration::from_secs(2);
    c
}

async fn connect(addr: &str) -> Connection {
    Connection::connect(addr, &config(), Arc::new(BrokerMetrics::default()))
        .await
        .expect("connects and negotiates")
}

fn metadata(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic {
                name: Some(topic.to_string().into()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

async fn first_error(mode: Misbehave) -> kafka_net::Error {
    let addr = server(mode).await;
    let conn = connect(&addr).await;
    let result = tokio::time::timeout(Duration::from_secs(5), conn.send(&metadata("t")))
        .await
        .expect("never hangs");
    let err = result.expect_err("misbehaviour is an error");
    assert!(conn.is_closed(), "the connection is poisoned");
    // Later requests fail at once with the same cause.
    let again = conn.send(&metadata("t")).await.expect_err("poisoned");
    assert_eq!(again.kind().to_string(), err.kind().to_string());
    err
}

#[tokio::test]
async fn garbage_response_is_a_decode_error() {
    let e = first_error(Misbehave::Garbage).await;
    assert!(matches!(e.kind(), ErrorKind::Decode(_)), "{e}");
    assert!(e.to_string().contains("Metadata"), "{e}");
}

#[tokio::test]
async fn unknown_correlation_id_poisons_the_connection() {
    let e = first_error(Misbehave::UnknownCorrelationId).await;
    assert!(
        e.to_string()
            .contains("correlation id 2004318071 matches no request"),
        "{e}"
    );
}

#[tokio::test]
async fn truncated_frame_then_silence_times_out() {
    let e = first_error(Misbehave::Truncated).await;
    assert!(matches!(e.kind(), ErrorKind::Timeout(_)), "{e}");
}

#[tokio::test]
async fn two_gib_length_prefix_is_rejected_before_allocating() {
    let e = first_error(Misbehave::HugeLengthPrefix).await;
    assert!(e.to_string().contains("over the maximum"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let e = first_error(Misbehave::NeverAnswer).await;
    assert!(matches!(e.kind(), ErrorKind::Timeout(_)), "{e}");
}

#[tokio::test]
async fn a_server_that_closes_mid_response_is_reported() {
    let e = first_error(Misbehave::CloseMidResponse).await;
    assert!(
        e.to_string()
            .contains("in the middle of a 100-byte response"),
        "{e}"
    );
}

#[tokio::test]
async fn many_concurrent_requests_are_matched_to_their_answers() {
    let addr = server(Misbehave::Echo).await;
    let conn = connect(&addr).await;
    let requests = (0..1000).map(|i| {
        let conn = &conn;
        async move {
            let topic = format!("topic-{i}");
            let r = conn.send(&metadata(&topic)).await.expect("answered");
            assert_eq!(r.topics[0].name.as_deref(), Some(topic.as_str()));
        }
    });
    tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(requests))
        .await
        .expect("all answered");
}

#[tokio::test]
async fn a_dropped_request_future_leaves_the_connection_healthy() {
    let addr = server(Misbehave::Echo).await;
    let conn = connect(&addr).await;
    for i in 0..20 {
        // Start a request and drop it before its answer arrives.
        let request = metadata(&format!("dropped-{i}"));
        let _ = tokio::time::timeout(Duration::from_micros(1), conn.send(&request)).await;
    }
    let r = conn.send(&metadata("kept")).await.expect("still in sync");
    assert_eq!(r.topics[0].name.as_deref(), Some("kept"));
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn a_broker_older_than_0_10_uses_the_fallback_versions() {
    // The server closes every connection on ApiVersions, as 0.9 brokers do; on the
    // second connection it answers Metadata v0.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = read_request(&mut s).await;
        drop(s);
        let (mut s, _) = listener.accept().await.unwrap();
        while let Some(req) = read_request(&mut s).await {
            let (header, _) = decode_request(&req).unwrap();
            assert_eq!(header.request_api_key, ApiKey::Metadata.key());
            assert_eq!(header.request_api_version, 0);
            let mut out = BytesMut::new();
            encode_response(
                &mut out,
                header.correlation_id,
                0,
                &MetadataResponse::default(),
            )
            .unwrap();
            s.write_all(&out).await.unwrap();
        }
    });
    let mut cfg = config();
    cfg.broker_version_fallback = Some(VersionTable::kafka_0_9());
    let conn = Connection::connect(&addr, &cfg, Arc::new(BrokerMetrics::default()))
        .await
        .expect("connects with the fallback versions");
    conn.send(&MetadataRequest {
        topics: Some(Vec::new()),
        ..Default::default()
    })
    .await
    .expect("Metadata v0 answered");
    let e = conn
        .send(&kafka_protocol::messages::SaslHandshakeRequest::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no version of SaslHandshake(17)"),
        "{e}"
    );
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let e = Connection::connect(&addr, &config(), Arc::new(BrokerMetrics::default()))
        .await
        .expect_err("nothing listens");
    assert!(e.to_string().contains(&addr), "{e}");
    assert!(e.is_retriable());
}

#[tokio::test]
async fn produce_with_acks_zero_expects_no_answer() {
    let addr = server(Misbehave::Echo).await;
    let conn = connect(&addr).await;
    let produce = kafka_protocol::messages::ProduceRequest {
        acks: 0,
        timeout_ms: 1000,
        ..Default::default()
    };
    let version = conn.versions().version_for(ApiKey::Produce).unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        conn.send_without_response(&produce, version),
    )
    .await
    .expect("returns once written")
    .expect("written");
    // The next request's answer is matched to it, not to the produce.
    let r = conn
        .send(&metadata("after-acks-0"))
        .await
        .expect("answered");
    assert_eq!(r.topics[0].name.as_deref(), Some("after-acks-0"));
}

/// Sends `request` with `enqueue_then` and waits (at most 5 s) for the callback's one
/// call; counts the calls.
async fn callback_outcome(
    conn: &Connection,
    request: &MetadataRequest,
) -> (
    kafka_net::Result<MetadataResponse>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let counted = calls.clone();
    let mut tx = Some(tx);
    conn.enqueue_then(request, 12, move |answer| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(tx) = tx.take() {
            let _ = tx.send(answer);
        }
    })
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the callback is called, never left hanging")
        .expect("called with an outcome");
    (answer, calls)
}

#[tokio::test]
async fn a_callback_request_gets_its_answer_on_the_reader_task() {
    let addr = server(Misbehave::Echo).await;
    let conn = connect(&addr).await;
    let (answer, calls) = callback_outcome(&conn, &metadata("called-back")).await;
    let r = answer.expect("answered");
    assert_eq!(r.topics[0].name.as_deref(), Some("called-back"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_callback_request_times_out_through_the_watchdog() {
    let addr = server(Misbehave::NeverAnswer).await;
    let conn = connect(&addr).await;
    let started = std::time::Instant::now();
    let (answer, calls) = callback_outcome(&conn, &metadata("t")).await;
    let e = answer.expect_err("never answered");
    assert!(matches!(e.kind(), ErrorKind::Timeout(_)), "{e}");
    assert!(e.to_string().contains("Metadata"), "names the API: {e}");
    // request_timeout is 500 ms; the watchdog looks every 62.5 ms.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(conn.is_closed(), "a timeout poisons the connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_callback_request_on_a_broken_connection_is_called_with_the_error() {
    let e = first_error(Misbehave::Garbage).await;
    assert!(matches!(e.kind(), ErrorKind::Decode(_)), "{e}");
    // On a poisoned connection the callback is called at once, with the cause.
    let addr = server(Misbehave::Garbage).await;
    let conn = connect(&addr).await;
    let (first, _) = callback_outcome(&conn, &metadata("t")).await;
    assert!(matches!(
        first.expect_err("garbage").kind(),
        ErrorKind::Decode(_)
    ));
    let (again, calls) = callback_outcome(&conn, &metadata("t")).await;
    assert!(matches!(
        again.expect_err("poisoned").kind(),
        ErrorKind::Decode(_)
    ));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Dropping the connection with a callback request in flight calls it too.
    let addr = server(Misbehave::NeverAnswer).await;
    let conn = connect(&addr).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    conn.enqueue_then(
        &metadata("t"),
        12,
        move |answer: kafka_net::Result<MetadataResponse>| {
            let _ = tx.send(answer.is_err());
        },
    )
    .await;
    drop(conn);
    let failed = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("called when the connection goes")
        .expect("called");
    assert!(failed);
}
