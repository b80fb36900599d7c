//! The fake cluster's transaction coordinator through raw requests (kafka-net
//! connections): the transaction life cycle, markers, the last stable offset and
//! read_committed reads, transactional offsets, fencing, timeouts, the coordinator's
//! error codes per version, and fault injection on every transactional API.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_net::{BrokerMetrics, ClientConfig, Connection};
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    decode_record_sets, ControlRecord, DecodeOptions, Record, RecordBatch, RecordSet,
};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction, TransactionState};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Every test body runs under this timeout.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test finishes in time")
}

async fn cluster(brokers: i32) -> FakeCluster {
    let c = FakeCluster::start(FakeClusterConfig::default().with_brokers(brokers))
        .await
        .unwrap();
    c.create_topic("t", 2);
    c
}

async fn connection(c: &FakeCluster, node: i32) -> Connection {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    let addr = c.broker_addr(node).unwrap().to_string();
    Connection::connect(&addr, &config, Arc::new(BrokerMetrics::default()))
        .await
        .unwrap()
}

fn code(c: i16) -> ErrorCode {
    ErrorCode::from(c)
}

/// A transactional producer as the tests drive it.
#[derive(Debug, Clone)]
struct Producer {
    id: String,
    pid: i64,
    epoch: i16,
    seq: i32,
}

async fn init(conn: &Connection, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let r = InitProducerIdRequest {
        transactional_id: Some(id.to_string().into()),
        transaction_timeout_ms: timeout_ms,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    conn.send_version(&r, 4).await.unwrap()
}

async fn producer(conn: &Connection, id: &str, timeout_ms: i32) -> Producer {
    let r = init(conn, id, timeout_ms).await;
    assert_eq!(code(r.error_code), ErrorCode::None);
    Producer {
        id: id.into(),
        pid: r.producer_id,
        epoch: r.producer_epoch,
        seq: 0,
    }
}

async fn add(
    conn: &Connection,
    p: &Producer,
    parts: &[(&str, i32)],
    version: i16,
) -> Vec<ErrorCode> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, i) in parts {
        match topics.iter_mut().find(|x| x.name.as_str() == *t) {
            Some(x) => x.partitions.push(*i),
            None => topics.push(AddPartitionsToTxnTopic {
                name: t.to_string().into(),
                partitions: vec![*i],
                ..Default::default()
            }),
        }
    }
    let r = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: p.id.clone().into(),
        v3_and_below_producer_id: p.pid,
        v3_and_below_producer_epoch: p.epoch,
        v3_and_below_topics: topics,
        ..Default::default()
    };
    let resp = conn.send_version(&r, version).await.unwrap();
    resp.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| &t.results_by_partition)
        .map(|p| code(p.partition_error_code))
        .collect()
}

async fn end(conn: &Connection, p: &Producer, commit: bool, version: i16) -> ErrorCode {
    let r = EndTxnRequest {
        transactional_id: p.id.clone().into(),
        producer_id: p.pid,
        producer_epoch: p.epoch,
        committed: commit,
        ..Default::default()
    };
    code(conn.send_version(&r, version).await.unwrap().error_code)
}

fn batch(values: &[&str], p: Option<&Producer>) -> Bytes {
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Vec::new(),
        })
        .collect();
    let mut b = RecordBatch::new(0, records);
    if let Some(p) = p {
        b.producer_id = p.pid;
        b.producer_epoch = p.epoch;
        b.base_sequence = p.seq;
        b.is_transactional = true;
    }
    let mut out = BytesMut::new();
    b.encode(&mut out).unwrap();
    out.freeze()
}

/// Produces `values` in the producer's transaction to t/`partition`; the error and
/// base offset. The sequence advances on success.
async fn produce(
    conn: &Connection,
    p: &mut Producer,
    partition: i32,
    values: &[&str],
    version: i16,
) -> (ErrorCode, i64) {
    let r = ProduceRequest {
        transactional_id: Some(p.id.clone().into()),
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(batch(values, Some(p))),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = conn.send_version(&r, version).await.unwrap();
    let out = &resp.responses[0].partition_responses[0];
    if out.error_code == 0 {
        p.seq += values.len() as i32;
    }
    (code(out.error_code), out.base_offset)
}

async fn fetch(
    conn: &Connection,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> fetch_response::PartitionData {
    let r = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        isolation_level: isolation,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "t".into(),
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
    };
    let resp = conn.send_version(&r, 12).await.unwrap();
    resp.responses[0].partitions[0].clone()
}

/// The data records' values and the number of control batches in fetched records.
fn read(p: &fetch_response::PartitionData) -> (Vec<String>, usize) {
    let sets = decode_record_sets(p.records.as_ref().unwrap(), &DecodeOptions::default()).unwrap();
    let mut values = Vec::new();
    let mut markers = 0;
    for set in sets.sets {
        let RecordSet::Batch(b) = set else {
            panic!("a legacy set")
        };
        if b.is_control {
            markers += 1;
            continue;
        }
        for r in b.records {
            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    (values, markers)
}

async fn latest(conn: &Connection, partition: i32, isolation: i8) -> i64 {
    list_offsets(conn, partition, isolation, -1).await
}

async fn list_offsets(conn: &Connection, partition: i32, isolation: i8, timestamp: i64) -> i64 {
    let r = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: isolation,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp,
                current_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = conn.send_version(&r, 5).await.unwrap();
    resp.topics[0].partitions[0].offset
}

#[tokio::test]
async fn commit_and_abort_write_markers_and_read_committed_stops_at_the_lso() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let mut p = producer(&conn, "life", 60_000).await;
        assert_eq!(
            c.transaction("life").unwrap().state,
            TransactionState::Empty
        );
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        let view = c.transaction("life").unwrap();
        assert_eq!(view.state, TransactionState::Ongoing);
        assert_eq!(view.partitions, vec![("t".to_string(), 0)]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["a1", "a2"], 9).await,
            (ErrorCode::None, 0)
        );

        // Open: read_committed sees nothing, read_uncommitted everything.
        assert_eq!(c.last_stable_offset("t", 0), Some(0));
        let open = fetch(&conn, 0, 0, 1).await;
        assert_eq!((open.high_watermark, open.last_stable_offset), (2, 0));
        assert_eq!(read(&open), (vec![], 0));
        assert_eq!(read(&fetch(&conn, 0, 0, 0).await).0, vec!["a1", "a2"]);
        assert_eq!(latest(&conn, 0, 1).await, 0);
        assert_eq!(latest(&conn, 0, 0).await, 2);
        // By time (and max timestamp): only below the LSO for read_committed.
        assert_eq!(list_offsets(&conn, 0, 0, 1_600_000_000_000).await, 0);
        assert_eq!(list_offsets(&conn, 0, 1, 1_600_000_000_000).await, -1);
        assert_eq!(list_offsets(&conn, 0, 1, -3).await, -1);

        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(
            c.transaction("life").unwrap().state,
            TransactionState::CompleteCommit
        );
        let marker = c.batches("t", 0).pop().unwrap();
        assert!(marker.is_control && marker.is_transactional);
        assert_eq!(
            (marker.producer_id, marker.producer_epoch),
            (p.pid, p.epoch)
        );
        assert_eq!(
            ControlRecord::from_record(&marker.records[0]).unwrap(),
            ControlRecord::COMMIT
        );
        assert_eq!(c.last_stable_offset("t", 0), Some(3));
        let done = fetch(&conn, 0, 0, 1).await;
        assert_eq!(done.last_stable_offset, 3);
        assert_eq!(read(&done), (vec!["a1".into(), "a2".into()], 1));
        assert_eq!(done.aborted_transactions, Some(vec![]));
        // A retried EndTxn of the same outcome succeeds; the other outcome does not.
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(end(&conn, &p, false, 3).await, ErrorCode::InvalidTxnState);

        // An aborted transaction, then an open one with a plain batch after it.
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["b1"], 9).await,
            (ErrorCode::None, 3)
        );
        assert_eq!(end(&conn, &p, false, 3).await, ErrorCode::None);
        assert_eq!(c.aborted_transactions("t", 0), vec![(p.pid, 3, 4)]);
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["c1"], 9).await,
            (ErrorCode::None, 5)
        );
        let plain = ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(&["plain"], None)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        conn.send_version(&plain, 9).await.unwrap();
        let f = fetch(&conn, 0, 0, 1).await;
        assert_eq!((f.high_watermark, f.last_stable_offset), (7, 5));
        assert_eq!(read(&f), (vec!["a1".into(), "a2".into(), "b1".into()], 2));
        let aborted: Vec<(i64, i64)> = f
            .aborted_transactions
            .unwrap()
            .iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect();
        assert_eq!(aborted, vec![(p.pid, 3)]);
        // From after the abort, it is not listed.
        assert_eq!(
            fetch(&conn, 0, 5, 1).await.aborted_transactions,
            Some(vec![])
        );
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        let f = fetch(&conn, 0, 5, 1).await;
        assert_eq!(read(&f), (vec!["c1".into(), "plain".into()], 1));
        assert_eq!(f.last_stable_offset, 8);
    })
    .await;
}

async fn offset_fetch(conn: &Connection, group: &str, require_stable: bool) -> (ErrorCode, i64) {
    let r = OffsetFetchRequest {
        group_id: group.to_string().into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "t".into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        require_stable,
        ..Default::default()
    };
    let resp = conn.send_version(&r, 7).await.unwrap();
    let p = &resp.topics[0].partitions[0];
    (code(p.error_code), p.committed_offset)
}

fn txn_commit_req(p: &Producer, group: &str, offset: i64) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest {
        transactional_id: p.id.clone().into(),
        group_id: group.to_string().into(),
        producer_id: p.pid,
        producer_epoch: p.epoch,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("m".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn txn_commit(conn: &Connection, r: &TxnOffsetCommitRequest, version: i16) -> ErrorCode {
    let resp = conn.send_version(r, version).await.unwrap();
    code(resp.topics[0].partitions[0].error_code)
}

async fn add_offsets(conn: &Connection, p: &Producer, group: &str) -> ErrorCode {
    let r = AddOffsetsToTxnRequest {
        transactional_id: p.id.clone().into(),
        producer_id: p.pid,
        producer_epoch: p.epoch,
        group_id: group.to_string().into(),
        ..Default::default()
    };
    code(conn.send_version(&r, 3).await.unwrap().error_code)
}

#[tokio::test]
async fn transactional_offsets_are_visible_when_the_transaction_commits() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let p = producer(&conn, "offsets", 60_000).await;
        // Without AddOffsetsToTxn the group is not in the transaction (KIP-890).
        let r = txn_commit_req(&p, "g", 5);
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::InvalidTxnState);
        assert_eq!(
            txn_commit(&conn, &r, 4).await,
            ErrorCode::TransactionAbortable
        );

        assert_eq!(add_offsets(&conn, &p, "g").await, ErrorCode::None);
        assert_eq!(
            c.transaction("offsets").unwrap().groups,
            vec!["g".to_string()]
        );
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::None);
        assert!(c.groups().has_pending_txn_offsets("g"));
        assert_eq!(
            offset_fetch(&conn, "g", true).await,
            (ErrorCode::UnstableOffsetCommit, -1)
        );
        assert_eq!(offset_fetch(&conn, "g", false).await, (ErrorCode::None, -1));
        assert_eq!(c.groups().committed("g", "t", 0), None);
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(offset_fetch(&conn, "g", true).await, (ErrorCode::None, 5));

        // Aborted: discarded.
        assert_eq!(add_offsets(&conn, &p, "g").await, ErrorCode::None);
        assert_eq!(
            txn_commit(&conn, &txn_commit_req(&p, "g", 9), 3).await,
            ErrorCode::None
        );
        assert_eq!(end(&conn, &p, false, 3).await, ErrorCode::None);
        assert_eq!(offset_fetch(&conn, "g", true).await, (ErrorCode::None, 5));
        assert!(!c.groups().has_pending_txn_offsets("g"));

        // KIP-447: a member's generation, member id and instance id are checked.
        let join = JoinGroupRequest {
            group_id: "members".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 5_000,
            member_id: "".into(),
            group_instance_id: Some("instance".into()),
            protocol_type: "consumer".into(),
            protocols: vec![join_group_request::JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::new(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let joined = conn.send_version(&join, 5).await.unwrap();
        assert_eq!(code(joined.error_code), ErrorCode::None);
        assert_eq!(add_offsets(&conn, &p, "members").await, ErrorCode::None);
        let mut r = txn_commit_req(&p, "members", 1);
        r.member_id = joined.member_id.clone();
        r.group_instance_id = Some("instance".into());
        r.generation_id = joined.generation_id + 1;
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::IllegalGeneration);
        r.generation_id = joined.generation_id;
        r.member_id = "someone-else".into();
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::FencedInstanceId);
        r.group_instance_id = None;
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::UnknownMemberId);
        r.member_id = joined.member_id.clone();
        assert_eq!(txn_commit(&conn, &r, 3).await, ErrorCode::None);
        // The fenced producer's offsets are refused.
        let mut old = p.clone();
        old.epoch -= 1;
        let stale = txn_commit_req(&old, "members", 2);
        assert_eq!(
            txn_commit(&conn, &stale, 3).await,
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(c.groups().committed("members", "t", 0), Some(1));
    })
    .await;
}

#[tokio::test]
async fn a_second_init_producer_id_aborts_and_fences_the_first() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let mut first = producer(&conn, "zombie", 60_000).await;
        assert_eq!(
            add(&conn, &first, &[("t", 0), ("t", 1)], 3).await,
            vec![ErrorCode::None; 2]
        );
        assert_eq!(
            produce(&conn, &mut first, 0, &["z"], 9).await.0,
            ErrorCode::None
        );
        // Kafka aborts the open transaction first and asks the new producer to retry.
        let r = init(&conn, "zombie", 60_000).await;
        assert_eq!(code(r.error_code), ErrorCode::ConcurrentTransactions);
        let abort = c.batches("t", 0).pop().unwrap();
        assert!(abort.is_control);
        assert_eq!(
            ControlRecord::from_record(&abort.records[0]).unwrap(),
            ControlRecord::ABORT
        );
        assert_eq!(abort.producer_epoch, first.epoch + 1);
        assert_eq!(
            c.batches("t", 1).len(),
            1,
            "a marker in every partition of the transaction"
        );
        let second = producer(&conn, "zombie", 60_000).await;
        assert_eq!((second.pid, second.epoch), (first.pid, first.epoch + 2));
        assert_eq!(c.last_stable_offset("t", 0), Some(2));

        // The first producer is fenced everywhere, with each version's code.
        assert_eq!(
            add(&conn, &first, &[("t", 0)], 3).await,
            vec![ErrorCode::ProducerFenced]
        );
        assert_eq!(
            add(&conn, &first, &[("t", 0)], 1).await,
            vec![ErrorCode::InvalidProducerEpoch]
        );
        assert_eq!(end(&conn, &first, true, 3).await, ErrorCode::ProducerFenced);
        assert_eq!(
            end(&conn, &first, true, 1).await,
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            produce(&conn, &mut first, 0, &["z2"], 9).await.0,
            ErrorCode::InvalidProducerEpoch
        );

        // The helper does what a second producer does; the old epoch is then fenced.
        let mut second = second;
        assert_eq!(
            add(&conn, &second, &[("t", 1)], 3).await,
            vec![ErrorCode::None]
        );
        let (pid, epoch) = c.fence_transactional_id("zombie").unwrap();
        assert_eq!((pid, epoch), (second.pid, second.epoch + 2));
        assert_eq!(
            c.transaction("zombie").unwrap().state,
            TransactionState::Empty
        );
        assert_eq!(
            end(&conn, &second, false, 3).await,
            ErrorCode::ProducerFenced
        );
        assert_eq!(
            produce(&conn, &mut second, 1, &["late"], 9).await.0,
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(c.fence_transactional_id("unknown"), None);
    })
    .await;
}

#[tokio::test]
async fn a_transaction_older_than_its_timeout_is_aborted() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let mut p = producer(&conn, "slow", 300).await;
        assert_eq!(
            c.transaction("slow").unwrap().timeout,
            Duration::from_millis(300)
        );
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["x"], 9).await.0,
            ErrorCode::None
        );
        assert_eq!(c.last_stable_offset("t", 0), Some(0));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let view = c.transaction("slow").unwrap();
        assert_eq!(view.state, TransactionState::CompleteAbort);
        assert_eq!(view.producer_epoch, p.epoch + 1);
        assert_eq!(c.last_stable_offset("t", 0), Some(2));
        assert_eq!(c.aborted_transactions("t", 0), vec![(p.pid, 0, 1)]);
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::ProducerFenced);
        assert_eq!(
            produce(&conn, &mut p, 0, &["y"], 9).await.0,
            ErrorCode::InvalidProducerEpoch
        );
        // Invalid timeouts are refused.
        for bad in [0, -1, 900_001] {
            let r = init(&conn, "bad-timeout", bad).await;
            assert_eq!(
                code(r.error_code),
                ErrorCode::InvalidTransactionTimeout,
                "{bad}"
            );
        }
        assert_eq!(
            code(init(&conn, "max-timeout", 900_000).await.error_code),
            ErrorCode::None
        );
    })
    .await;
}

#[tokio::test]
async fn requests_during_marker_writes_get_concurrent_transactions() {
    within(async {
        let c = cluster(1).await;
        c.set_transaction_marker_delay(Duration::from_millis(300));
        let conn = connection(&c, 0).await;
        let mut p = producer(&conn, "busy", 60_000).await;
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["x"], 9).await.0,
            ErrorCode::None
        );
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(
            c.transaction("busy").unwrap().state,
            TransactionState::PrepareCommit
        );
        assert_eq!(c.last_stable_offset("t", 0), Some(0), "no marker yet");
        assert_eq!(
            add(&conn, &p, &[("t", 1)], 3).await,
            vec![ErrorCode::ConcurrentTransactions]
        );
        assert_eq!(
            end(&conn, &p, true, 3).await,
            ErrorCode::ConcurrentTransactions
        );
        assert_eq!(end(&conn, &p, false, 3).await, ErrorCode::InvalidTxnState);
        assert_eq!(
            code(init(&conn, "busy", 60_000).await.error_code),
            ErrorCode::ConcurrentTransactions
        );
        // A producer verifying a new partition meanwhile is asked to retry.
        assert_eq!(
            produce(&conn, &mut p, 1, &["y"], 9).await.0,
            ErrorCode::NotEnoughReplicas
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            c.transaction("busy").unwrap().state,
            TransactionState::CompleteCommit
        );
        assert_eq!(c.last_stable_offset("t", 0), Some(2));
    })
    .await;
}

#[tokio::test]
async fn the_coordinator_moves_and_the_old_one_answers_not_coordinator() {
    within(async {
        let c = cluster(2).await;
        let home = c.coordinator("moving");
        let other = 1 - home;
        let old = connection(&c, home).await;
        let p = producer(&old, "moving", 60_000).await;
        assert!(c.move_coordinator("moving", other));
        let r = init(&old, "moving", 60_000).await;
        assert_eq!(code(r.error_code), ErrorCode::NotCoordinator);
        assert_eq!(
            add(&old, &p, &[("t", 0)], 3).await,
            vec![ErrorCode::NotCoordinator]
        );
        assert_eq!(end(&old, &p, true, 3).await, ErrorCode::NotCoordinator);
        let new = connection(&c, other).await;
        let found = new
            .send_version(
                &FindCoordinatorRequest {
                    key: "moving".into(),
                    key_type: 1,
                    ..Default::default()
                },
                3,
            )
            .await
            .unwrap();
        assert_eq!(found.node_id, other);
        // The state carried over: the epoch goes on from the first producer's.
        let again = producer(&new, "moving", 60_000).await;
        assert_eq!((again.pid, again.epoch), (p.pid, p.epoch + 1));
    })
    .await;
}

fn v4_txn(p: &Producer, verify_only: bool, parts: &[(&str, i32)]) -> AddPartitionsToTxnTransaction {
    AddPartitionsToTxnTransaction {
        transactional_id: p.id.clone().into(),
        producer_id: p.pid,
        producer_epoch: p.epoch,
        verify_only,
        topics: parts
            .iter()
            .map(|(t, i)| AddPartitionsToTxnTopic {
                name: t.to_string().into(),
                partitions: vec![*i],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn add_partitions_v4_batches_transactions_and_verifies_only() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let a = producer(&conn, "a", 60_000).await;
        let b = producer(&conn, "b", 60_000).await;
        let r = AddPartitionsToTxnRequest {
            transactions: vec![
                v4_txn(&a, false, &[("t", 0)]),
                v4_txn(&b, true, &[("t", 0)]),
            ],
            ..Default::default()
        };
        let resp = conn.send_version(&r, 4).await.unwrap();
        let codes: Vec<(String, ErrorCode)> = resp
            .results_by_transaction
            .iter()
            .map(|t| {
                (
                    t.transactional_id.to_string(),
                    code(t.topic_results[0].results_by_partition[0].partition_error_code),
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("a".into(), ErrorCode::None),
                ("b".into(), ErrorCode::TransactionAbortable)
            ]
        );
        assert_eq!(
            c.transaction("b").unwrap().state,
            TransactionState::Empty,
            "verify only"
        );
        let verify = |p: &Producer, parts: &[(&str, i32)]| AddPartitionsToTxnRequest {
            transactions: vec![v4_txn(p, true, parts)],
            ..Default::default()
        };
        let one = |resp: AddPartitionsToTxnResponse| -> Vec<ErrorCode> {
            resp.results_by_transaction[0]
                .topic_results
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| code(p.partition_error_code))
                .collect()
        };
        let resp = conn
            .send_version(&verify(&a, &[("t", 0), ("t", 1)]), 4)
            .await
            .unwrap();
        assert_eq!(
            one(resp),
            vec![ErrorCode::None, ErrorCode::TransactionAbortable]
        );
        let mut stale = a.clone();
        stale.epoch += 1;
        let resp = conn
            .send_version(&verify(&stale, &[("t", 0)]), 4)
            .await
            .unwrap();
        assert_eq!(one(resp), vec![ErrorCode::ProducerFenced]);
        let mut other = a.clone();
        other.pid += 100;
        let resp = conn
            .send_version(&verify(&other, &[("t", 0)]), 5)
            .await
            .unwrap();
        assert_eq!(one(resp), vec![ErrorCode::InvalidProducerIdMapping]);

        // v0-3: an unknown partition fails the request; the others are not attempted.
        assert_eq!(
            add(&conn, &b, &[("t", 0), ("t", 7), ("nope", 0)], 3).await,
            vec![
                ErrorCode::OperationNotAttempted,
                ErrorCode::UnknownTopicOrPartition,
                ErrorCode::UnknownTopicOrPartition
            ]
        );
        assert_eq!(c.transaction("b").unwrap().state, TransactionState::Empty);
        let unknown = Producer {
            id: "never-initialized".into(),
            ..a.clone()
        };
        assert_eq!(
            add(&conn, &unknown, &[("t", 0)], 3).await,
            vec![ErrorCode::InvalidProducerIdMapping]
        );
        assert_eq!(
            end(&conn, &b, true, 3).await,
            ErrorCode::InvalidTxnState,
            "nothing open"
        );
    })
    .await;
}

#[tokio::test]
async fn produce_checks_the_transaction_per_version() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let mut p = producer(&conn, "strict", 60_000).await;
        // A partition not added to the transaction.
        assert_eq!(
            produce(&conn, &mut p, 0, &["x"], 10).await.0,
            ErrorCode::InvalidTxnState
        );
        assert_eq!(
            produce(&conn, &mut p, 0, &["x"], 11).await.0,
            ErrorCode::TransactionAbortable
        );
        // Transactional records need the request's transactional id.
        let r = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(&["x"], Some(&p))),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = conn.send_version(&r, 9).await.unwrap();
        assert_eq!(
            code(resp.responses[0].partition_responses[0].error_code),
            ErrorCode::TransactionalIdAuthorizationFailed
        );
        assert_eq!(c.offsets("t", 0), Some((0, 0)), "nothing appended");
        // Once added, sequences work as for idempotent producers, across transactions.
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["a", "b"], 9).await,
            (ErrorCode::None, 0)
        );
        let mut gap = p.clone();
        gap.seq += 5;
        assert_eq!(
            produce(&conn, &mut gap, 0, &["c"], 9).await.0,
            ErrorCode::OutOfOrderSequenceNumber
        );
        assert_eq!(end(&conn, &p, true, 3).await, ErrorCode::None);
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
        assert_eq!(
            produce(&conn, &mut p, 0, &["d"], 9).await,
            (ErrorCode::None, 3)
        );
    })
    .await;
}

#[tokio::test]
async fn init_producer_id_recovers_with_kip_360_and_keeps_idempotent_producers() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let p = producer(&conn, "recover", 60_000).await;
        let with = |pid: i64, epoch: i16| InitProducerIdRequest {
            transactional_id: Some("recover".into()),
            transaction_timeout_ms: 60_000,
            producer_id: pid,
            producer_epoch: epoch,
            ..Default::default()
        };
        // The current id and epoch: bumped.
        let r = conn.send_version(&with(p.pid, p.epoch), 4).await.unwrap();
        assert_eq!(
            (code(r.error_code), r.producer_id, r.producer_epoch),
            (ErrorCode::None, p.pid, p.epoch + 1)
        );
        // A retry of that call (the previous epoch): the same answer, no bump.
        let r = conn.send_version(&with(p.pid, p.epoch), 4).await.unwrap();
        assert_eq!((r.producer_id, r.producer_epoch), (p.pid, p.epoch + 1));
        // Another producer id: fenced, INVALID_PRODUCER_EPOCH before v4.
        let r = conn.send_version(&with(p.pid + 50, 0), 4).await.unwrap();
        assert_eq!(code(r.error_code), ErrorCode::ProducerFenced);
        let r = conn.send_version(&with(p.pid + 50, 0), 3).await.unwrap();
        assert_eq!(code(r.error_code), ErrorCode::InvalidProducerEpoch);
        let r = conn.send_version(&with(p.pid, -1), 4).await.unwrap();
        assert_eq!(code(r.error_code), ErrorCode::InvalidRequest);

        // Idempotent producers (no transactional id) are as before.
        let plain = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let r = conn.send_version(&plain, 4).await.unwrap();
        assert_eq!((code(r.error_code), r.producer_epoch), (ErrorCode::None, 0));
        assert_ne!(r.producer_id, p.pid);
        let bump = InitProducerIdRequest {
            producer_id: r.producer_id,
            producer_epoch: 0,
            ..plain.clone()
        };
        let b = conn.send_version(&bump, 4).await.unwrap();
        assert_eq!((b.producer_id, b.producer_epoch), (r.producer_id, 1));
    })
    .await;
}

#[tokio::test]
async fn describe_and_list_transactions_and_producers() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let mut p = producer(&conn, "shown", 45_000).await;
        let _idle = producer(&conn, "idle", 45_000).await;
        assert_eq!(add(&conn, &p, &[("t", 1)], 3).await, vec![ErrorCode::None]);
        assert_eq!(add_offsets(&conn, &p, "grp").await, ErrorCode::None);
        assert_eq!(
            produce(&conn, &mut p, 1, &["q"], 9).await.0,
            ErrorCode::None
        );
        let d = conn
            .send_version(
                &DescribeTransactionsRequest {
                    transactional_ids: vec!["shown".into(), "missing".into()],
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        let s = &d.transaction_states[0];
        assert_eq!(
            (
                s.transaction_state.as_str(),
                s.producer_id,
                s.producer_epoch,
                s.transaction_timeout_ms
            ),
            ("Ongoing", p.pid, p.epoch, 45_000)
        );
        assert!(s.transaction_start_time_ms > 0);
        let topics: Vec<&str> = s.topics.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(topics, vec!["__consumer_offsets", "t"]);
        assert_eq!(
            code(d.transaction_states[1].error_code),
            ErrorCode::TransactionalIdNotFound
        );

        let list = |states: Vec<&str>| ListTransactionsRequest {
            state_filters: states.into_iter().map(|s| s.to_string().into()).collect(),
            duration_filter: -1,
            ..Default::default()
        };
        let l = conn.send_version(&list(vec![]), 1).await.unwrap();
        let ids: Vec<&str> = l
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.as_str())
            .collect();
        assert_eq!(ids, vec!["idle", "shown"]);
        let l = conn
            .send_version(&list(vec!["Ongoing", "Bogus"]), 1)
            .await
            .unwrap();
        let ids: Vec<&str> = l
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.as_str())
            .collect();
        assert_eq!(ids, vec!["shown"]);
        let unknown: Vec<&str> = l.unknown_state_filters.iter().map(|s| s.as_str()).collect();
        assert_eq!(unknown, vec!["Bogus"]);

        let dp = conn
            .send_version(
                &DescribeProducersRequest {
                    topics: vec![describe_producers_request::TopicRequest {
                        name: "t".into(),
                        partition_indexes: vec![1, 9],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        let parts = &dp.topics[0].partitions;
        let active = &parts[0].active_producers[0];
        assert_eq!(
            (
                active.producer_id,
                active.producer_epoch,
                active.last_sequence,
                active.current_txn_start_offset
            ),
            (p.pid, i32::from(p.epoch), 0, 0)
        );
        assert_eq!(
            code(parts[1].error_code),
            ErrorCode::UnknownTopicOrPartition
        );
    })
    .await;
}

#[tokio::test]
async fn injected_errors_answer_every_transactional_api() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let p = producer(&conn, "faulty", 60_000).await;
        let injected = ErrorCode::CoordinatorLoadInProgress;
        for api in [
            ApiKey::InitProducerId,
            ApiKey::AddPartitionsToTxn,
            ApiKey::AddOffsetsToTxn,
            ApiKey::EndTxn,
            ApiKey::TxnOffsetCommit,
            ApiKey::DescribeTransactions,
            ApiKey::ListTransactions,
            ApiKey::DescribeProducers,
        ] {
            c.inject(Fault::new(api, FaultAction::Error(injected)));
        }
        assert_eq!(
            code(init(&conn, "faulty", 60_000).await.error_code),
            injected
        );
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![injected]);
        assert_eq!(add_offsets(&conn, &p, "g").await, injected);
        assert_eq!(end(&conn, &p, true, 3).await, injected);
        assert_eq!(
            txn_commit(&conn, &txn_commit_req(&p, "g", 1), 3).await,
            injected
        );
        let d = conn
            .send_version(
                &DescribeTransactionsRequest {
                    transactional_ids: vec!["faulty".into()],
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        assert_eq!(code(d.transaction_states[0].error_code), injected);
        let l = conn
            .send_version(&ListTransactionsRequest::default(), 0)
            .await
            .unwrap();
        assert_eq!(code(l.error_code), injected);
        let dp = conn
            .send_version(
                &DescribeProducersRequest {
                    topics: vec![describe_producers_request::TopicRequest {
                        name: "t".into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        assert_eq!(code(dp.topics[0].partitions[0].error_code), injected);
        // AddPartitionsToTxn v4+ carries the code per partition and at the top.
        c.inject(Fault::new(
            ApiKey::AddPartitionsToTxn,
            FaultAction::Error(injected),
        ));
        let r = AddPartitionsToTxnRequest {
            transactions: vec![v4_txn(&p, true, &[("t", 0)])],
            ..Default::default()
        };
        let resp = conn.send_version(&r, 4).await.unwrap();
        assert_eq!(code(resp.error_code), injected);
        assert_eq!(
            code(
                resp.results_by_transaction[0].topic_results[0].results_by_partition[0]
                    .partition_error_code
            ),
            injected
        );
        // Faults are used up: the coordinator answers again.
        assert_eq!(add(&conn, &p, &[("t", 0)], 3).await, vec![ErrorCode::None]);
    })
    .await;
}

#[tokio::test]
async fn end_txn_is_served_up_to_v4() {
    within(async {
        let c = cluster(1).await;
        let conn = connection(&c, 0).await;
        let versions = conn
            .send_version(&ApiVersionsRequest::default(), 3)
            .await
            .unwrap();
        let max = |key: ApiKey| {
            versions
                .api_keys
                .iter()
                .find(|k| k.api_key == key.key())
                .map(|k| k.max_version)
        };
        assert_eq!(
            max(ApiKey::EndTxn),
            Some(4),
            "KIP-890 part 2 is not implemented"
        );
        assert_eq!(max(ApiKey::AddPartitionsToTxn), Some(5));
        assert_eq!(max(ApiKey::TxnOffsetCommit), Some(4));
        assert_eq!(max(ApiKey::ListTransactions), Some(1));
    })
    .await;
}
