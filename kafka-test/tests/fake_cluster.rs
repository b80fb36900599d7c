//! The fake cluster through a real client (kafka-net): topics, produce and fetch,
//! offsets, fetch sessions, and every fault kind seen by the client.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_net::{
    BrokerMetrics, Client, ClientConfig, Connection, ErrorKind, KafkaClient, NewTopic, VersionTable,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, MetadataRequest, ProduceRequest, ProduceResponse,
};
use kafka_protocol::records::{decode_record_sets, DecodeOptions, Record, RecordBatch, RecordSet};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, Times};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn cluster(brokers: i32) -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap()
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.request_timeout = Duration::from_secs(5);
    c
}

async fn client(c: &FakeCluster) -> KafkaClient {
    KafkaClient::connect(&[c.bootstrap()], config())
        .await
        .unwrap()
}

fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> Bytes {
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Vec::new(),
        })
        .collect();
    let mut b = RecordBatch::new(0, records);
    if let Some((id, epoch, seq)) = producer {
        b.producer_id = id;
        b.producer_epoch = epoch;
        b.base_sequence = seq;
    }
    let mut out = BytesMut::new();
    b.encode(&mut out).unwrap();
    out.freeze()
}

fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string().into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_code(r: &ProduceResponse) -> (ErrorCode, i64) {
    let p = &r.responses[0].partition_responses[0];
    (ErrorCode::from(p.error_code), p.base_offset)
}

fn fetch_request(topic: &str, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 50,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_string().into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                log_start_offset: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn values(r: &FetchResponse) -> Vec<(i64, String)> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref())
        .flat_map(|b| {
            decode_record_sets(b, &DecodeOptions::default())
                .unwrap()
                .sets
        })
        .flat_map(|s| match s {
            RecordSet::Batch(b) => b.records,
            RecordSet::Legacy(m) => m.messages.into_iter().map(Into::into).collect(),
        })
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

/// A connection to one broker, at the highest versions (Fetch by name needs < 13).
async fn connection(c: &FakeCluster, node: i32) -> Connection {
    let addr = c.broker_addr(node).unwrap().to_string();
    Connection::connect(&addr, &config(), Arc::new(BrokerMetrics::default()))
        .await
        .unwrap()
}

#[tokio::test]
async fn topics_produce_fetch_and_offsets() {
    let c = cluster(3).await;
    let client = client(&c).await;
    client
        .create_topics(vec![NewTopic::new("t", 4)])
        .await
        .unwrap();
    assert_eq!(client.partition_count("t").await.unwrap(), 4);
    let e = client
        .create_topics(vec![NewTopic::new("t", 1)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
    client.create_partitions("t", 6).await.unwrap();
    assert_eq!(client.partition_count("t").await.unwrap(), 6);

    let r = client
        .request(produce_request("t", 2, batch(&["a", "b"], None)))
        .await
        .unwrap();
    assert_eq!(produce_code(&r), (ErrorCode::None, 0));
    let r = client
        .request(produce_request("t", 2, batch(&["c"], None)))
        .await
        .unwrap();
    assert_eq!(produce_code(&r), (ErrorCode::None, 2));
    assert_eq!(client.offset_earliest("t", 2).await.unwrap(), 0);
    assert_eq!(client.offset_latest("t", 2).await.unwrap(), 3);
    // By timestamp: the fake answers what Kafka answers (Tansu does not).
    let found = client
        .offsets_for_times("t", 2, 1_700_000_000_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.offset, found.timestamp), (1, 1_700_000_000_001));
    assert_eq!(
        client
            .offsets_for_times("t", 2, 1_800_000_000_000)
            .await
            .unwrap(),
        None
    );

    let leader = c.leader("t", 2).unwrap();
    let conn = connection(&c, leader).await;
    let fetched = conn
        .send_version(&fetch_request("t", 2, 1), 12)
        .await
        .unwrap();
    assert_eq!(
        values(&fetched),
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 3);
    assert_eq!(c.records("t", 2).len(), 3);

    client.delete_topics(vec!["t".into()]).await.unwrap();
    assert!(!client
        .refresh_metadata()
        .await
        .unwrap()
        .topics
        .contains_key("t"));
}

#[tokio::test]
async fn fetch_waits_for_min_bytes_until_data_or_max_wait() {
    let c = cluster(1).await;
    c.create_topic("w", 1);
    let conn = Arc::new(connection(&c, 0).await);
    let mut waiting = fetch_request("w", 0, 0);
    waiting.max_wait_ms = 5_000;
    let started = Instant::now();
    let fetch = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.send_version(&waiting, 12).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let producer = connection(&c, 0).await;
    producer
        .send(&produce_request("w", 0, batch(&["late"], None)))
        .await
        .unwrap();
    let r = fetch.await.unwrap();
    assert_eq!(values(&r), vec![(0, "late".into())]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered when data arrived"
    );

    let mut empty = fetch_request("w", 0, 1);
    empty.max_wait_ms = 300;
    let started = Instant::now();
    let r = conn.send_version(&empty, 12).await.unwrap();
    assert!(values(&r).is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited max_wait"
    );
}

#[tokio::test]
async fn fetch_sessions_are_incremental_and_checked() {
    let c = cluster(1).await;
    c.create_topic("s", 2);
    let conn = connection(&c, 0).await;
    conn.send(&produce_request("s", 0, batch(&["x"], None)))
        .await
        .unwrap();
    let mut full = fetch_request("s", 0, 0);
    full.topics[0].partitions.push(FetchPartition {
        partition: 1,
        fetch_offset: 0,
        partition_max_bytes: 1 << 20,
        log_start_offset: -1,
        ..Default::default()
    });
    full.session_id = 0;
    full.session_epoch = 0;
    let r = conn.send_version(&full, 12).await.unwrap();
    assert!(r.session_id > 0, "a session was opened");
    assert_eq!(r.responses[0].partitions.len(), 2);
    // Incremental: the client moved partition 0 on to offset 1; nothing new on either
    // partition, so nothing in the answer.
    let mut next = fetch_request("s", 0, 1);
    next.session_id = r.session_id;
    next.session_epoch = 1;
    next.max_wait_ms = 10;
    let r2 = conn.send_version(&next, 12).await.unwrap();
    assert_eq!(r2.error_code, 0);
    let listed: usize = r2.responses.iter().map(|t| t.partitions.len()).sum();
    assert_eq!(listed, 0, "unchanged partitions are left out: {r2:?}");
    // New data on partition 1 shows up alone.
    conn.send(&produce_request("s", 1, batch(&["y"], None)))
        .await
        .unwrap();
    next.session_epoch = 2;
    let r3 = conn.send_version(&next, 12).await.unwrap();
    assert_eq!(values(&r3), vec![(0, "y".into())]);
    // Forgetting a partition, then a wrong epoch and an unknown session.
    next.session_epoch = 3;
    next.forgotten_topics_data = vec![ForgottenTopic {
        topic: "s".into(),
        partitions: vec![1],
        ..Default::default()
    }];
    conn.send_version(&next, 12).await.unwrap();
    next.session_epoch = 99;
    let bad = conn.send_version(&next, 12).await.unwrap();
    assert_eq!(
        ErrorCode::from(bad.error_code),
        ErrorCode::InvalidFetchSessionEpoch
    );
    next.session_id = 12345;
    let gone = conn.send_version(&next, 12).await.unwrap();
    assert_eq!(
        ErrorCode::from(gone.error_code),
        ErrorCode::FetchSessionIdNotFound
    );
}

#[tokio::test]
async fn idempotent_sequences_are_checked_as_kafka_does() {
    let c = cluster(1).await;
    c.create_topic("i", 1);
    let conn = connection(&c, 0).await;
    let init = conn
        .send(&kafka_protocol::messages::InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        })
        .await
        .unwrap();
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    assert!(pid >= 0);
    let send = |values: &'static [&'static str], seq: i32| {
        produce_request("i", 0, batch(values, Some((pid, epoch, seq))))
    };
    assert_eq!(
        produce_code(&conn.send(&send(&["a", "b"], 0)).await.unwrap()),
        (ErrorCode::None, 0)
    );
    // The same batch again (a retry): the first answer's offset, nothing appended.
    assert_eq!(
        produce_code(&conn.send(&send(&["a", "b"], 0)).await.unwrap()),
        (ErrorCode::None, 0)
    );
    // A gap in the sequence.
    assert_eq!(
        produce_code(&conn.send(&send(&["d"], 5)).await.unwrap()).0,
        ErrorCode::OutOfOrderSequenceNumber
    );
    assert_eq!(
        produce_code(&conn.send(&send(&["c"], 2)).await.unwrap()),
        (ErrorCode::None, 2)
    );
    assert_eq!(c.offsets("i", 0), Some((0, 3)));
    // An unknown producer starting mid-sequence.
    let stranger = produce_request("i", 0, batch(&["z"], Some((pid + 1000, 0, 7))));
    assert_eq!(
        produce_code(&conn.send(&stranger).await.unwrap()).0,
        ErrorCode::UnknownProducerId
    );
}

#[tokio::test]
async fn an_error_fault_is_seen_by_the_client_then_clears() {
    let c = cluster(1).await;
    c.create_topic("f", 1);
    let client = client(&c).await;
    c.inject(
        Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::NotEnoughReplicas),
        )
        .times(Times::N(2)),
    );
    for _ in 0..2 {
        let r = client
            .request(produce_request("f", 0, batch(&["v"], None)))
            .await
            .unwrap();
        assert_eq!(produce_code(&r).0, ErrorCode::NotEnoughReplicas);
    }
    let r = client
        .request(produce_request("f", 0, batch(&["v"], None)))
        .await
        .unwrap();
    assert_eq!(produce_code(&r), (ErrorCode::None, 0));
    assert_eq!(
        c.records("f", 0).len(),
        1,
        "failed produces appended nothing"
    );
}

#[tokio::test]
async fn a_delay_fault_makes_the_client_time_out() {
    let c = cluster(1).await;
    c.create_topic("d", 1);
    let conn = connection(&c, 0).await;
    c.inject(Fault::new(
        ApiKey::Metadata,
        FaultAction::Delay(Duration::from_secs(10)),
    ));
    let mut short = config();
    short.request_timeout = Duration::from_millis(300);
    let conn2 = Connection::connect(&c.bootstrap(), &short, Arc::new(BrokerMetrics::default()))
        .await
        .unwrap();
    let e = conn2.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Timeout(_)), "{e}");
    // The fault fired once: other connections are answered at once.
    conn.send(&MetadataRequest::default()).await.unwrap();
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_and_the_client_reconnects() {
    let c = cluster(1).await;
    let client = client(&c).await;
    c.inject(Fault::new(ApiKey::Metadata, FaultAction::DropConnection));
    let e = client.refresh_metadata().await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(
        !client.refresh_metadata().await.unwrap().brokers.is_empty(),
        "reconnected"
    );
}

#[tokio::test]
async fn pass_through_lets_requests_by_then_the_next_fault_fires() {
    let c = cluster(1).await;
    c.create_topic("p", 1);
    let client = client(&c).await;
    c.inject(Fault::new(ApiKey::ListOffsets, FaultAction::PassThrough));
    c.inject(Fault::new(
        ApiKey::ListOffsets,
        FaultAction::Error(ErrorCode::LeaderNotAvailable),
    ));
    assert_eq!(client.offset_latest("p", 0).await.unwrap(), 0);
    let e = client.offset_latest("p", 0).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::LeaderNotAvailable));
    assert_eq!(client.offset_latest("p", 0).await.unwrap(), 0);
}

#[tokio::test]
async fn a_moved_leader_answers_not_leader_and_the_client_follows() {
    let c = cluster(2).await;
    c.create_topic("m", 1);
    let client = client(&c).await;
    let old = c.leader("m", 0).unwrap();
    let new = 1 - old;
    client
        .request(produce_request("m", 0, batch(&["before"], None)))
        .await
        .unwrap();
    assert!(c.move_leader("m", 0, new));
    let r = client
        .request(produce_request("m", 0, batch(&["stale"], None)))
        .await
        .unwrap();
    assert_eq!(produce_code(&r).0, ErrorCode::NotLeaderOrFollower);
    // The client refreshes metadata after that answer and then goes to the new leader.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client
            .request(produce_request("m", 0, batch(&["after"], None)))
            .await
            .unwrap();
        if produce_code(&r).0 == ErrorCode::None {
            break;
        }
        assert!(Instant::now() < deadline, "never reached the new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.leader("m", 0).await.unwrap().node_id, new);
}

#[tokio::test]
async fn a_stopped_broker_refuses_and_a_restarted_one_serves_again() {
    let mut c = cluster(2).await;
    c.create_topic("r", 1);
    let client = client(&c).await;
    let leader = c.leader("r", 0).unwrap();
    assert_eq!(client.offset_latest("r", 0).await.unwrap(), 0);
    c.stop_broker(leader).await;
    let e = client.offset_latest("r", 0).await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    c.restart_broker(leader).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.offset_latest("r", 0).await.is_err() {
        assert!(Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn capped_versions_are_negotiated_down() {
    let c = cluster(1).await;
    c.cap_version(ApiKey::Metadata, 4);
    let conn = connection(&c, 0).await;
    assert_eq!(conn.versions().version_for(ApiKey::Metadata).unwrap(), 4);
    conn.send(&MetadataRequest {
        topics: None,
        ..Default::default()
    })
    .await
    .unwrap();
    c.cap_version(ApiKey::DeleteRecords, -1);
    let conn = connection(&c, 0).await;
    let e = conn
        .versions()
        .version_for(ApiKey::DeleteRecords)
        .unwrap_err();
    assert!(e.to_string().contains("broker none"), "{e}");
}

#[tokio::test]
async fn a_broker_older_than_0_10_needs_the_fallback_versions() {
    let c = cluster(1).await;
    c.emulate_pre_api_versions_broker();
    let addr = c.broker_addr(0).unwrap().to_string();
    let e = Connection::connect(&addr, &config(), Arc::new(BrokerMetrics::default()))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::ConnectionClosed(_)), "{e}");
    let mut cfg = config();
    cfg.broker_version_fallback = Some(VersionTable::kafka_0_9());
    let conn = Connection::connect(&addr, &cfg, Arc::new(BrokerMetrics::default()))
        .await
        .unwrap();
    let r = conn
        .send(&MetadataRequest {
            topics: Some(Vec::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.brokers.len(), 1);
}

#[tokio::test]
async fn bad_input_gets_what_kafka_gives_never_a_panic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = cluster(1).await;
    let addr = c.broker_addr(0).unwrap();
    // Garbage, an unknown API key, a version not served, a hostile size: each closes
    // the connection, as Kafka does.
    let frames: [&[u8]; 4] = [
        &[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef],
        &[0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0],
        &[0, 0, 0, 10, 0, 3, 0x7f, 0, 0, 0, 0, 1, 0, 0],
        &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0],
    ];
    for frame in frames {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(frame).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "connection closed without an answer");
    }
    // An ApiVersions in a version the fake does not know: answered in v0 with
    // UNSUPPORTED_VERSION and the versions it serves.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0x7f, 0, 0, 0, 0, 9, 0xff, 0xff])
        .await
        .unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).await.unwrap();
    let (header, r) = kafka_protocol::frame::decode_response::<
        kafka_protocol::messages::ApiVersionsResponse,
    >(&Bytes::from(body), 0)
    .unwrap();
    assert_eq!(header.correlation_id, 9);
    assert_eq!(ErrorCode::from(r.error_code), ErrorCode::UnsupportedVersion);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce.key()));
    // The cluster still serves.
    let client = client(&c).await;
    client.metadata().await.unwrap();
}

#[tokio::test]
async fn tls_and_sasl_scram_on_the_fake_cluster() {
    use kafka_net::{SaslConfig, TlsConfig};
    use kafka_test::{FakeTls, SaslUsers};
    let cert = rcgen::generate_simple_self_signed(vec!["fake.kafka".to_string()]).unwrap();
    let config = FakeClusterConfig::default()
        .with_brokers(2)
        .with_tls(FakeTls::new(cert.cert.pem(), cert.key_pair.serialize_pem()))
        .with_sasl(SaslUsers::new().with_user("alice", "alice-secret"));
    let c = FakeCluster::start(config).await.unwrap();
    c.create_topic("secure", 2);
    let tls = TlsConfig::default()
        .with_ca_pem(cert.cert.pem())
        .with_server_name("fake.kafka");
    for (sasl, ok) in [
        (SaslConfig::scram_sha512("alice", "alice-secret"), true),
        (SaslConfig::plain("alice", "alice-secret"), true),
        (SaslConfig::scram_sha256("alice", "wrong"), false),
    ] {
        let mut cfg = config_with_timeout();
        cfg.tls = Some(tls.clone());
        cfg.sasl = Some(sasl);
        let result = KafkaClient::connect(&[c.bootstrap()], cfg).await;
        match (result, ok) {
            (Ok(client), true) => assert_eq!(client.partition_count("secure").await.unwrap(), 2),
            (Err(e), false) => {
                assert_eq!(e.code(), Some(ErrorCode::SaslAuthenticationFailed), "{e}")
            }
            (Ok(_), false) => panic!("a wrong password was accepted"),
            (Err(e), true) => panic!("refused: {e}"),
        }
    }
    // Without TLS the listener does not talk.
    let plain = KafkaClient::connect(&[c.bootstrap()], config_with_timeout()).await;
    assert!(plain.is_err());
}

fn config_with_timeout() -> ClientConfig {
    let mut c = config();
    c.request_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c
}

#[tokio::test]
async fn acks_zero_produce_is_stored_without_an_answer() {
    let c = cluster(1).await;
    c.create_topic("z", 1);
    let conn = connection(&c, 0).await;
    let mut request = produce_request("z", 0, batch(&["fire", "forget"], None));
    request.acks = 0;
    let version = conn.versions().version_for(ApiKey::Produce).unwrap();
    conn.send_without_response(&request, version).await.unwrap();
    // The next answer on the connection is the metadata's, not a produce answer.
    conn.send(&MetadataRequest::default()).await.unwrap();
    assert_eq!(c.offsets("z", 0), Some((0, 2)));
}

#[tokio::test]
async fn the_fake_kafka_program_serves_other_processes() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-kafka"))
        .args(["--brokers", "2", "--topic", "from-cli:3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let bootstrap = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(bootstrap.split(',').count(), 2);
    let client = KafkaClient::connect(&[bootstrap], config()).await.unwrap();
    assert_eq!(client.partition_count("from-cli").await.unwrap(), 3);
    // Closing its stdin ends it.
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
