//! Tests of the group coordinator on its own: the state machine, offsets and
//! listings.

use super::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::Encode;
use std::future::Future;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 5_000;

/// Every test body runs under this timeout.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out")
}

fn coordinator() -> Arc<GroupCoordinator> {
    GroupCoordinator::with_initial_delay(Duration::from_millis(50))
}

/// Fails the test if `msg` does not encode in `version`.
fn encodes<T: Encode>(msg: &T, version: i16) {
    msg.encode_to_bytes(version).expect("response encodes");
}

fn code(error: ErrorCode) -> i16 {
    error.code()
}

/// One member's JoinGroup parameters.
#[derive(Clone)]
struct Joiner {
    group: &'static str,
    member_id: String,
    instance_id: Option<&'static str>,
    session_ms: i32,
    rebalance_ms: i32,
    protocol_type: &'static str,
    protocols: Vec<(&'static str, &'static [u8])>,
}

impl Joiner {
    fn new(group: &'static str) -> Self {
        Joiner {
            group,
            member_id: String::new(),
            instance_id: None,
            session_ms: SESSION_MS,
            rebalance_ms: REBALANCE_MS,
            protocol_type: "consumer",
            protocols: vec![("range", b"range-meta")],
        }
    }

    fn request(&self, version: i16) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: self.group.into(),
            session_timeout_ms: self.session_ms,
            rebalance_timeout_ms: if version >= 1 { self.rebalance_ms } else { -1 },
            member_id: self.member_id.clone().into(),
            group_instance_id: self.instance_id.map(StrBytes::from),
            protocol_type: self.protocol_type.into(),
            protocols: self
                .protocols
                .iter()
                .map(|(name, metadata)| JoinGroupRequestProtocol {
                    name: (*name).into(),
                    metadata: Bytes::from_static(metadata),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

async fn join(c: &Arc<GroupCoordinator>, j: &Joiner, version: i16) -> JoinGroupResponse {
    let resp = c
        .join_group_with_client(j.request(version), version, "client", "/127.0.0.1")
        .await;
    encodes(&resp, version);
    resp
}

/// JoinGroup v4+ as the Java client does it: the MEMBER_ID_REQUIRED round trip, then
/// the join with the given id. Updates `j.member_id`.
async fn join_new(c: &Arc<GroupCoordinator>, j: &mut Joiner, version: i16) -> JoinGroupResponse {
    let first = join(c, j, version).await;
    assert_eq!(first.error_code, code(ErrorCode::MemberIdRequired));
    j.member_id = first.member_id.to_string();
    let resp = join(c, j, version).await;
    assert_eq!(resp.error_code, NONE, "{resp:?}");
    assert_eq!(resp.member_id.as_str(), j.member_id);
    resp
}

async fn sync(
    c: &Arc<GroupCoordinator>,
    j: &Joiner,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
    version: i16,
) -> SyncGroupResponse {
    let req = SyncGroupRequest {
        group_id: j.group.into(),
        generation_id: generation,
        member_id: j.member_id.clone().into(),
        group_instance_id: if version >= 3 {
            j.instance_id.map(StrBytes::from)
        } else {
            None
        },
        assignments: assignments
            .iter()
            .map(|(member, assignment)| SyncGroupRequestAssignment {
                member_id: member.to_string().into(),
                assignment: Bytes::from_static(assignment),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = c.sync_group(req, version).await;
    encodes(&resp, version);
    resp
}

async fn heartbeat(c: &Arc<GroupCoordinator>, j: &Joiner, generation: i32, version: i16) -> i16 {
    let req = HeartbeatRequest {
        group_id: j.group.into(),
        generation_id: generation,
        member_id: j.member_id.clone().into(),
        group_instance_id: if version >= 3 {
            j.instance_id.map(StrBytes::from)
        } else {
            None
        },
        ..Default::default()
    };
    let resp = c.heartbeat(req, version).await;
    encodes(&resp, version);
    resp.error_code
}

async fn leave(c: &Arc<GroupCoordinator>, j: &Joiner, version: i16) -> LeaveGroupResponse {
    let mut req = LeaveGroupRequest {
        group_id: j.group.into(),
        ..Default::default()
    };
    if version >= 3 {
        req.members = vec![MemberIdentity {
            member_id: j.member_id.clone().into(),
            group_instance_id: j.instance_id.map(StrBytes::from),
            ..Default::default()
        }];
    } else {
        req.member_id = j.member_id.clone().into();
    }
    let resp = c.leave_group(req, version).await;
    encodes(&resp, version);
    resp
}

/// Two members A (leader) and B join a new group and sync; returns them and the
/// generation.
async fn stable_pair(c: &Arc<GroupCoordinator>, group: &'static str) -> (Joiner, Joiner, i32) {
    let (mut a, mut b) = (Joiner::new(group), Joiner::new(group));
    // B joins while A's first rebalance is still waiting out the initial delay.
    let (ra, rb) = tokio::join!(join_new(c, &mut a, 5), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        join_new(c, &mut b, 5).await
    });
    assert_eq!(ra.leader.as_str(), a.member_id);
    assert_eq!(ra.generation_id, rb.generation_id);
    let generation = rb.generation_id;
    let assignments = [
        (a.member_id.as_str(), &b"to-a"[..]),
        (b.member_id.as_str(), &b"to-b"[..]),
    ];
    let (sa, sb) = tokio::join!(
        sync(c, &a, generation, &assignments, 5),
        sync(c, &b, generation, &[], 5),
    );
    assert_eq!((sa.error_code, sb.error_code), (NONE, NONE));
    assert_eq!(
        c.group_state(group),
        Some(("Stable".to_owned(), generation))
    );
    (a, b, generation)
}

fn commit_req(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&'static str, i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.to_owned().into(),
        generation_id_or_member_epoch: generation,
        member_id: member.to_owned().into(),
        topics: offsets
            .iter()
            .map(|(topic, partition, offset)| OffsetCommitRequestTopic {
                name: (*topic).into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: *partition,
                    committed_offset: *offset,
                    committed_metadata: Some("meta".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn commit(c: &Arc<GroupCoordinator>, req: OffsetCommitRequest, version: i16) -> Vec<i16> {
    let resp = c.offset_commit(req, version).await;
    encodes(&resp, version);
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

#[tokio::test]
async fn single_member_join_sync_heartbeat() {
    within(async {
        let c = coordinator();
        let mut a = Joiner::new("g1");
        // v3: no MEMBER_ID_REQUIRED round trip.
        let resp = join(&c, &a, 3).await;
        assert_eq!(resp.error_code, NONE);
        assert_eq!(resp.generation_id, 1);
        assert!(resp.member_id.starts_with("client-"), "{}", resp.member_id);
        assert_eq!(resp.leader, resp.member_id);
        assert_eq!(resp.protocol_name.as_deref(), Some("range"));
        assert_eq!(resp.members.len(), 1);
        assert_eq!(resp.members[0].metadata, Bytes::from_static(b"range-meta"));
        a.member_id = resp.member_id.to_string();
        assert_eq!(
            c.group_state("g1"),
            Some(("CompletingRebalance".to_owned(), 1))
        );

        let s = sync(&c, &a, 1, &[(&a.member_id.clone(), b"assigned")], 3).await;
        assert_eq!(s.error_code, NONE);
        assert_eq!(s.assignment, Bytes::from_static(b"assigned"));
        assert_eq!(c.group_state("g1"), Some(("Stable".to_owned(), 1)));
        // A second SyncGroup in Stable returns the same assignment (v5: with protocol).
        let s = sync(&c, &a, 1, &[], 5).await;
        assert_eq!(s.assignment, Bytes::from_static(b"assigned"));
        assert_eq!(s.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(s.protocol_name.as_deref(), Some("range"));

        assert_eq!(heartbeat(&c, &a, 1, 4).await, NONE);
        assert_eq!(
            heartbeat(&c, &a, 0, 4).await,
            code(ErrorCode::IllegalGeneration)
        );
        let mut stranger = a.clone();
        stranger.member_id = "nobody".into();
        assert_eq!(heartbeat(&c, &stranger, 1, 4).await, UNKNOWN_MEMBER_ID);
        assert_eq!(
            sync(&c, &stranger, 1, &[], 4).await.error_code,
            UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            sync(&c, &a, 7, &[], 4).await.error_code,
            code(ErrorCode::IllegalGeneration)
        );
        let mut elsewhere = a.clone();
        elsewhere.group = "no-such-group";
        assert_eq!(heartbeat(&c, &elsewhere, 1, 0).await, UNKNOWN_MEMBER_ID);
        // A follower-less leader rejoining in Stable starts a new generation.
        let resp = join(&c, &a, 3).await;
        assert_eq!((resp.error_code, resp.generation_id), (NONE, 2));
    })
    .await;
}

#[tokio::test]
async fn member_id_required_flow() {
    within(async {
        let c = coordinator();
        let j = Joiner::new("g2");
        for version in [4, 7, 9] {
            let resp = c
                .join_group_with_client(j.request(version), version, "my-client", "/10.0.0.1")
                .await;
            encodes(&resp, version);
            assert_eq!(resp.error_code, code(ErrorCode::MemberIdRequired));
            assert_eq!(resp.generation_id, -1);
            assert!(
                resp.member_id.starts_with("my-client-"),
                "{}",
                resp.member_id
            );
            // 36 characters of UUID after the prefix.
            assert_eq!(resp.member_id.len(), "my-client-".len() + 36);
            assert!(resp.members.is_empty());
            if version >= 7 {
                assert_eq!(resp.protocol_name, None);
            }
        }
        assert_eq!(c.group_state("g2"), Some(("Empty".to_owned(), 0)));

        let mut j = Joiner::new("g2");
        let resp = join_new(&c, &mut j, 7).await;
        assert_eq!(resp.generation_id, 1);
        assert_eq!(resp.leader.as_str(), j.member_id);
        assert_eq!(resp.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(c.group_members("g2"), vec![j.member_id.clone()]);
        // A made-up member id is refused.
        let mut bogus = Joiner::new("g2");
        bogus.member_id = "made-up".into();
        assert_eq!(join(&c, &bogus, 7).await.error_code, UNKNOWN_MEMBER_ID);
        bogus.group = "unknown-group";
        assert_eq!(join(&c, &bogus, 7).await.error_code, UNKNOWN_MEMBER_ID);
    })
    .await;
}

#[tokio::test]
async fn two_members_one_leader_assignments_by_sync() {
    within(async {
        let c = coordinator();
        let mut a = Joiner::new("g3");
        a.protocols = vec![("roundrobin", b"rr-a"), ("range", b"range-a")];
        let mut b = Joiner::new("g3");
        b.protocols = vec![("range", b"range-b")];
        let (ra, rb) = tokio::join!(join_new(&c, &mut a, 6), join_new(&c, &mut b, 6));
        assert_eq!(ra.generation_id, rb.generation_id);
        assert_eq!(ra.generation_id, 1);
        assert_eq!(ra.leader, rb.leader);
        // Only "range" is supported by both.
        assert_eq!(ra.protocol_name.as_deref(), Some("range"));
        assert_eq!(rb.protocol_name.as_deref(), Some("range"));
        let (leader, follower, leader_resp, follower_resp) = if ra.leader.as_str() == a.member_id {
            (&a, &b, &ra, &rb)
        } else {
            (&b, &a, &rb, &ra)
        };
        assert_eq!(leader_resp.members.len(), 2);
        assert!(follower_resp.members.is_empty());
        let metadata: Vec<&[u8]> = leader_resp
            .members
            .iter()
            .map(|m| m.metadata.as_ref())
            .collect();
        assert!(metadata.contains(&&b"range-a"[..]) && metadata.contains(&&b"range-b"[..]));

        // The follower's SyncGroup waits for the leader's.
        let follower_sync = {
            let (c, f) = (c.clone(), follower.clone());
            tokio::spawn(async move { sync(&c, &f, 1, &[], 4).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!follower_sync.is_finished());
        let assignments = [
            (a.member_id.as_str(), &b"for-a"[..]),
            (b.member_id.as_str(), &b"for-b"[..]),
        ];
        let ls = sync(&c, leader, 1, &assignments, 4).await;
        let fs = follower_sync.await.unwrap();
        assert_eq!((ls.error_code, fs.error_code), (NONE, NONE));
        let expect = |j: &Joiner| {
            if j.member_id == a.member_id {
                &b"for-a"[..]
            } else {
                &b"for-b"[..]
            }
        };
        assert_eq!(ls.assignment.as_ref(), expect(leader));
        assert_eq!(fs.assignment.as_ref(), expect(follower));
        assert_eq!(c.group_state("g3"), Some(("Stable".to_owned(), 1)));

        // A different protocol type, or no protocol in common, is refused.
        let mut other = Joiner::new("g3");
        other.protocol_type = "connect";
        assert_eq!(
            join(&c, &other, 3).await.error_code,
            code(ErrorCode::InconsistentGroupProtocol)
        );
        other.protocol_type = "consumer";
        other.protocols = vec![("sticky", b"")];
        assert_eq!(
            join(&c, &other, 3).await.error_code,
            code(ErrorCode::InconsistentGroupProtocol)
        );
        // SyncGroup v5 naming another protocol is refused.
        let mut req = SyncGroupRequest {
            group_id: "g3".into(),
            generation_id: 1,
            member_id: a.member_id.clone().into(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("roundrobin".into()),
            ..Default::default()
        };
        let resp = c.sync_group(req.clone(), 5).await;
        assert_eq!(resp.error_code, code(ErrorCode::InconsistentGroupProtocol));
        req.protocol_name = Some("range".into());
        assert_eq!(c.sync_group(req, 5).await.error_code, NONE);
    })
    .await;
}

#[tokio::test]
async fn third_member_triggers_rebalance() {
    within(async {
        let c = coordinator();
        let (a, b, generation) = stable_pair(&c, "g4").await;
        let mut third = Joiner::new("g4");
        let first = join(&c, &third, 5).await;
        assert_eq!(first.error_code, code(ErrorCode::MemberIdRequired));
        third.member_id = first.member_id.to_string();
        let third_join = {
            let (c, t) = (c.clone(), third.clone());
            tokio::spawn(async move { join(&c, &t, 5).await })
        };
        // Existing members learn of the rebalance from their heartbeats...
        let mut seen = (false, false);
        while !(seen.0 && seen.1) {
            seen.0 |= heartbeat(&c, &a, generation, 4).await == REBALANCE_IN_PROGRESS;
            seen.1 |= heartbeat(&c, &b, generation, 4).await == REBALANCE_IN_PROGRESS;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            c.group_state("g4"),
            Some(("PreparingRebalance".to_owned(), generation))
        );
        // ... a SyncGroup of the old generation is told the same ...
        assert_eq!(
            sync(&c, &a, generation, &[], 4).await.error_code,
            REBALANCE_IN_PROGRESS
        );
        // ... and rejoin with their member ids.
        let (ra, rb) = tokio::join!(join(&c, &a, 5), join(&c, &b, 5));
        let rc = third_join.await.unwrap();
        for r in [&ra, &rb, &rc] {
            assert_eq!(r.error_code, NONE);
            assert_eq!(r.generation_id, generation + 1);
        }
        assert_eq!(
            ra.leader.as_str(),
            a.member_id,
            "the leader stays the leader"
        );
        assert_eq!(ra.members.len(), 3);
        assert_eq!(c.group_members("g4").len(), 3);
        let g = generation + 1;
        let assignments = [(third.member_id.as_str(), &b"t"[..])];
        let (s1, s2, s3) = tokio::join!(
            sync(&c, &a, g, &assignments, 4),
            sync(&c, &b, g, &[], 4),
            sync(&c, &third, g, &[], 4),
        );
        assert_eq!(
            (s1.error_code, s2.error_code, s3.error_code),
            (NONE, NONE, NONE)
        );
        assert_eq!(s3.assignment, Bytes::from_static(b"t"));
        assert!(
            s2.assignment.is_empty(),
            "members the leader left out get an empty assignment"
        );
        assert_eq!(c.group_state("g4"), Some(("Stable".to_owned(), g)));
    })
    .await;
}

#[tokio::test]
async fn leave_triggers_rebalance() {
    within(async {
        let c = coordinator();
        let (a, b, generation) = stable_pair(&c, "g5").await;
        let resp = leave(&c, &b, 3).await;
        assert_eq!(resp.error_code, NONE);
        assert_eq!(resp.members.len(), 1);
        assert_eq!(resp.members[0].error_code, NONE);
        assert_eq!(
            heartbeat(&c, &a, generation, 4).await,
            REBALANCE_IN_PROGRESS
        );
        assert_eq!(heartbeat(&c, &b, generation, 4).await, UNKNOWN_MEMBER_ID);
        let ra = join(&c, &a, 5).await;
        assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 1));
        assert_eq!(ra.members.len(), 1);
        // v0-2: the member's error is the top-level error.
        assert_eq!(leave(&c, &b, 1).await.error_code, UNKNOWN_MEMBER_ID);
        let mut nowhere = b.clone();
        nowhere.group = "no-such-group";
        let resp = leave(&c, &nowhere, 4).await;
        assert_eq!(
            (resp.error_code, resp.members[0].error_code),
            (NONE, UNKNOWN_MEMBER_ID)
        );
        // The last member leaving (v0) empties the group with a new generation.
        assert_eq!(leave(&c, &a, 0).await.error_code, NONE);
        assert_eq!(
            c.group_state("g5"),
            Some(("Empty".to_owned(), generation + 2))
        );
        // A pending member (MEMBER_ID_REQUIRED) may leave too.
        let mut p = Joiner::new("g5");
        p.member_id = join(&c, &p, 4).await.member_id.to_string();
        assert_eq!(leave(&c, &p, 4).await.members[0].error_code, NONE);
    })
    .await;
}

#[tokio::test]
async fn session_expiry_removes_a_silent_member() {
    within(async {
        let c = coordinator();
        let (mut a, mut b) = (Joiner::new("g6"), Joiner::new("g6"));
        a.session_ms = 300;
        b.session_ms = 300;
        let (ra, _) = tokio::join!(join_new(&c, &mut a, 5), join_new(&c, &mut b, 5));
        let generation = ra.generation_id;
        let (s1, s2) = tokio::join!(
            sync(&c, &a, generation, &[], 3),
            sync(&c, &b, generation, &[], 3)
        );
        assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

        // A heartbeats, B is silent: B's session ends and A is told to rejoin.
        let started = Instant::now();
        loop {
            let error = heartbeat(&c, &a, generation, 4).await;
            if error == REBALANCE_IN_PROGRESS {
                break;
            }
            assert_eq!(error, NONE);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(200));
        let ra = join(&c, &a, 5).await;
        assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 1));
        assert_eq!(ra.leader.as_str(), a.member_id);
        assert_eq!(ra.members.len(), 1);
        assert_eq!(sync(&c, &a, generation + 1, &[], 3).await.error_code, NONE);
        assert_eq!(
            c.group_state("g6"),
            Some(("Stable".to_owned(), generation + 1))
        );
        assert_eq!(c.group_members("g6"), vec![a.member_id.clone()]);
        assert_eq!(heartbeat(&c, &b, generation, 4).await, UNKNOWN_MEMBER_ID);

        // A dynamic member that does not rejoin within the rebalance timeout is removed
        // when the join phase ends (A's session is long now, its rebalance timeout short).
        a.session_ms = 10_000;
        a.rebalance_ms = 300;
        let ra = join(&c, &a, 5).await; // the leader rejoining starts a new generation
        assert_eq!((ra.error_code, ra.generation_id), (NONE, generation + 2));
        assert_eq!(sync(&c, &a, generation + 2, &[], 3).await.error_code, NONE);
        b.member_id.clear();
        b.rebalance_ms = 300;
        b.session_ms = 10_000;
        let started = Instant::now();
        let rb = join_new(&c, &mut b, 5).await; // A does not rejoin
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(rb.generation_id, generation + 3);
        assert_eq!(rb.leader.as_str(), b.member_id);
        assert_eq!(c.group_members("g6"), vec![b.member_id.clone()]);
    })
    .await;
}

#[tokio::test]
async fn static_member_rejoin_keeps_generation_and_fences_old_id() {
    within(async {
        let c = coordinator();
        let (mut a, mut b) = (Joiner::new("g7"), Joiner::new("g7"));
        a.instance_id = Some("instance-a");
        b.instance_id = Some("instance-b");
        // Static members get no MEMBER_ID_REQUIRED; their ids start with the instance id.
        let (ra, rb) = tokio::join!(join(&c, &a, 5), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            join(&c, &b, 5).await
        });
        assert_eq!((ra.error_code, rb.error_code), (NONE, NONE));
        assert!(ra.member_id.starts_with("instance-a-"));
        a.member_id = ra.member_id.to_string();
        b.member_id = rb.member_id.to_string();
        assert_eq!(ra.leader.as_str(), a.member_id);
        assert_eq!(
            ra.members[0].group_instance_id.as_deref(),
            Some("instance-a")
        );
        let generation = ra.generation_id;
        let assignments = [
            (a.member_id.as_str(), &b"for-a"[..]),
            (b.member_id.as_str(), &b"for-b"[..]),
        ];
        let (s1, s2) = tokio::join!(
            sync(&c, &a, generation, &assignments, 5),
            sync(&c, &b, generation, &[], 5)
        );
        assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

        // B restarts: same instance id, no member id, same metadata.
        let old_b = b.clone();
        b.member_id.clear();
        let rb = join(&c, &b, 5).await;
        assert_eq!(rb.error_code, NONE);
        assert_eq!(rb.generation_id, generation, "no rebalance");
        assert_ne!(rb.member_id.as_str(), old_b.member_id);
        assert_eq!(rb.leader.as_str(), a.member_id);
        assert!(rb.members.is_empty());
        b.member_id = rb.member_id.to_string();
        assert_eq!(c.group_state("g7"), Some(("Stable".to_owned(), generation)));
        assert_eq!(
            heartbeat(&c, &old_b, generation, 4).await,
            FENCED_INSTANCE_ID
        );
        assert_eq!(
            sync(&c, &old_b, generation, &[], 4).await.error_code,
            FENCED_INSTANCE_ID
        );
        assert_eq!(heartbeat(&c, &b, generation, 4).await, NONE);
        assert_eq!(heartbeat(&c, &a, generation, 4).await, NONE);
        let s = sync(&c, &b, generation, &[], 5).await;
        assert_eq!((s.error_code, s.assignment.as_ref()), (NONE, &b"for-b"[..]));
        let mut old_b_v0 = old_b.clone();
        old_b_v0.instance_id = None;
        assert_eq!(
            heartbeat(&c, &old_b_v0, generation, 0).await,
            UNKNOWN_MEMBER_ID
        );

        // The leader restarts with v9: it is told it leads but skips the assignment.
        let old_a = a.clone();
        a.member_id.clear();
        let ra = join(&c, &a, 9).await;
        assert_eq!((ra.error_code, ra.generation_id), (NONE, generation));
        assert!(ra.skip_assignment);
        assert_eq!(ra.leader, ra.member_id);
        assert_eq!(ra.members.len(), 2);
        a.member_id = ra.member_id.to_string();
        // Before v9, a restarted leader sees the old leader id and does not assign.
        let mut again = a.clone();
        again.member_id.clear();
        let r = join(&c, &again, 5).await;
        assert_eq!((r.error_code, r.generation_id), (NONE, generation));
        assert_eq!(r.leader.as_str(), a.member_id);
        assert_ne!(r.member_id.as_str(), a.member_id);
        assert_eq!(
            heartbeat(&c, &old_a, generation, 4).await,
            FENCED_INSTANCE_ID
        );
        assert_eq!(heartbeat(&c, &a, generation, 4).await, FENCED_INSTANCE_ID);
        a.member_id = r.member_id.to_string();
        assert_eq!(c.group_state("g7"), Some(("Stable".to_owned(), generation)));

        // A replacement whose new metadata leaves the selected protocol as it is does
        // not rebalance either ...
        let mut changed = b.clone();
        changed.member_id.clear();
        changed.protocols = vec![("roundrobin", b"rr"), ("range", b"range-2")];
        let r = join(&c, &changed, 5).await;
        assert_eq!((r.error_code, r.generation_id), (NONE, generation));
        b.member_id = r.member_id.to_string();
        // ... but a follower rejoining with its member id and new metadata does.
        let mut changed = b.clone();
        changed.protocols = vec![("range", b"range-3")];
        let c2 = c.clone();
        let rejoin = tokio::spawn(async move { join(&c2, &changed, 5).await });
        while heartbeat(&c, &a, generation, 4).await != REBALANCE_IN_PROGRESS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ra = join(&c, &a, 5).await;
        let rb = rejoin.await.unwrap();
        assert_eq!(
            ra.members
                .iter()
                .map(|m| m.metadata.as_ref())
                .collect::<Vec<_>>(),
            vec![&b"range-meta"[..], b"range-3"]
        );
        assert_eq!(
            (ra.generation_id, rb.generation_id),
            (generation + 1, generation + 1)
        );

        // A static member leaving by instance id alone (admin removal).
        let req = LeaveGroupRequest {
            group_id: "g7".into(),
            members: vec![MemberIdentity {
                group_instance_id: Some("instance-b".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = c.leave_group(req, 4).await;
        assert_eq!(resp.members[0].error_code, NONE);
        assert_eq!(c.group_members("g7"), vec![a.member_id.clone()]);
    })
    .await;
}

#[tokio::test]
async fn absent_static_member_stays_through_a_rebalance() {
    within(async {
        let c = coordinator();
        let (mut a, mut b) = (Joiner::new("g8"), Joiner::new("g8"));
        a.instance_id = Some("a");
        b.instance_id = Some("b");
        a.rebalance_ms = 300;
        b.rebalance_ms = 300;
        let (ra, rb) = tokio::join!(join(&c, &a, 5), join(&c, &b, 5));
        a.member_id = ra.member_id.to_string();
        b.member_id = rb.member_id.to_string();
        let generation = ra.generation_id;
        let (leader, follower) = if ra.leader.as_str() == a.member_id {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let (s1, s2) = tokio::join!(
            sync(&c, leader, generation, &[], 5),
            sync(&c, follower, generation, &[], 5)
        );
        assert_eq!((s1.error_code, s2.error_code), (NONE, NONE));

        // A new dynamic member joins; only A rejoins; B (static, silent) is kept.
        let mut d = Joiner::new("g8");
        d.rebalance_ms = 300;
        let (rd, ra) = tokio::join!(join_new(&c, &mut d, 5), async {
            while heartbeat(&c, &a, generation, 4).await != REBALANCE_IN_PROGRESS {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            join(&c, &a, 5).await
        });
        assert_eq!(
            (rd.generation_id, ra.generation_id),
            (generation + 1, generation + 1)
        );
        let members = c.group_members("g8");
        assert_eq!(members.len(), 3, "{members:?}");
        assert!(members.contains(&b.member_id));
    })
    .await;
}

#[tokio::test]
async fn offsets_commit_fetch_round_trip() {
    within(async {
        let c = coordinator();
        // Generation -1 creates a simple group.
        let errors = commit(
            &c,
            commit_req("simple", "", -1, &[("t", 0, 42), ("t", 1, 7), ("u", 0, 3)]),
            2,
        )
        .await;
        assert_eq!(errors, vec![NONE; 3]);
        assert_eq!(c.committed("simple", "t", 0), Some(42));
        assert_eq!(c.committed("simple", "t", 2), None);
        assert_eq!(c.group_state("simple"), Some(("Empty".to_owned(), 0)));
        // v0 has no generation at all.
        assert_eq!(
            commit(&c, commit_req("simple", "", -1, &[("t", 0, 43)]), 0).await,
            vec![NONE]
        );
        assert_eq!(c.committed("simple", "t", 0), Some(43));
        // v6+ keeps the leader epoch.
        let mut req = commit_req("simple", "", -1, &[("t", 1, 8)]);
        req.topics[0].partitions[0].committed_leader_epoch = 5;
        assert_eq!(commit(&c, req, 8).await, vec![NONE]);
        // An unknown group with a generation: ILLEGAL_GENERATION.
        assert_eq!(
            commit(&c, commit_req("nope", "m", 3, &[("t", 0, 1)]), 2).await,
            vec![ILLEGAL_GENERATION]
        );
        let mut req = commit_req("simple", "", -1, &[("t", 0, 1)]);
        req.topics[0].partitions[0].committed_metadata = Some("x".repeat(5000).into());
        assert_eq!(
            commit(&c, req, 2).await,
            vec![code(ErrorCode::OffsetMetadataTooLarge)]
        );

        // v1: named partitions, one never committed.
        let req = OffsetFetchRequest {
            group_id: "simple".into(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0, 9],
                ..Default::default()
            }]),
            ..Default::default()
        };
        let resp = c.offset_fetch(req, 1).await;
        encodes(&resp, 1);
        let parts = &resp.topics[0].partitions;
        assert_eq!(
            (parts[0].committed_offset, parts[0].metadata.as_deref()),
            (43, Some("meta"))
        );
        assert_eq!((parts[1].committed_offset, parts[1].error_code), (-1, NONE));
        // v5: all topics (null), with leader epochs.
        let req = OffsetFetchRequest {
            group_id: "simple".into(),
            topics: None,
            ..Default::default()
        };
        let resp = c.offset_fetch(req, 5).await;
        encodes(&resp, 5);
        let all: Vec<(String, i32, i64, i32)> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                    )
                })
            })
            .collect();
        assert_eq!(
            all,
            vec![
                ("t".into(), 0, 43, -1),
                ("t".into(), 1, 8, 5),
                ("u".into(), 0, 3, -1)
            ]
        );
        // v8: several groups, one unknown.
        let req = OffsetFetchRequest {
            groups: vec![
                OffsetFetchRequestGroup {
                    group_id: "simple".into(),
                    topics: Some(vec![OffsetFetchRequestTopics {
                        name: "u".into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                OffsetFetchRequestGroup {
                    group_id: "unknown".into(),
                    topics: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let resp = c.offset_fetch(req, 8).await;
        encodes(&resp, 8);
        assert_eq!(resp.groups.len(), 2);
        assert_eq!(resp.groups[0].topics[0].partitions[0].committed_offset, 3);
        assert!(resp.groups[1].topics.is_empty());
        assert_eq!(resp.groups[1].error_code, NONE);

        // A managed group: members of the current generation commit.
        let (a, _b, generation) = stable_pair(&c, "managed").await;
        assert_eq!(
            commit(
                &c,
                commit_req("managed", &a.member_id, generation, &[("t", 0, 100)]),
                7
            )
            .await,
            vec![NONE]
        );
        assert_eq!(c.committed("managed", "t", 0), Some(100));
        assert_eq!(
            commit(
                &c,
                commit_req("managed", &a.member_id, generation - 1, &[("t", 0, 1)]),
                7
            )
            .await,
            vec![ILLEGAL_GENERATION]
        );
        assert_eq!(
            commit(&c, commit_req("managed", "", -1, &[("t", 0, 1)]), 7).await,
            vec![UNKNOWN_MEMBER_ID]
        );
        assert_eq!(
            commit(
                &c,
                commit_req("managed", "stranger", generation, &[("t", 0, 1)]),
                7
            )
            .await,
            vec![UNKNOWN_MEMBER_ID]
        );
        assert_eq!(c.committed("managed", "t", 0), Some(100));

        // With a partition check, unknown partitions are refused.
        c.set_partition_check(|topic, partition| topic == "t" && partition < 2);
        assert_eq!(
            commit(
                &c,
                commit_req("simple", "", -1, &[("t", 1, 9), ("t", 5, 9), ("zz", 0, 9)]),
                2
            )
            .await,
            vec![NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION]
        );
    })
    .await;
}

#[tokio::test]
async fn describe_and_list_groups() {
    within(async {
        let c = coordinator();
        let (a, _b, generation) = stable_pair(&c, "described").await;
        commit(&c, commit_req("offsets-only", "", -1, &[("t", 0, 1)]), 2).await;
        let req = DescribeGroupsRequest {
            groups: vec!["described".into(), "missing".into()],
            include_authorized_operations: true,
            ..Default::default()
        };
        for version in 0..=5 {
            let resp = c.describe_groups(req.clone(), version).await;
            encodes(&resp, version);
        }
        let resp = c.describe_groups(req, 5).await;
        let d = &resp.groups[0];
        assert_eq!(d.group_state.as_str(), "Stable");
        assert_eq!(d.protocol_type.as_str(), "consumer");
        assert_eq!(d.protocol_data.as_str(), "range");
        assert_eq!(d.members.len(), 2);
        let m = d
            .members
            .iter()
            .find(|m| m.member_id.as_str() == a.member_id)
            .unwrap();
        assert_eq!(m.client_id.as_str(), "client");
        assert_eq!(m.client_host.as_str(), "/127.0.0.1");
        assert_eq!(m.member_metadata, Bytes::from_static(b"range-meta"));
        assert_eq!(m.member_assignment, Bytes::from_static(b"to-a"));
        assert_eq!(d.authorized_operations, GROUP_AUTHORIZED_OPERATIONS);
        assert_eq!(resp.groups[1].group_state.as_str(), "Dead");
        assert!(resp.groups[1].members.is_empty());
        assert_eq!(
            c.group_state("described"),
            Some(("Stable".to_owned(), generation))
        );

        for version in 0..=5 {
            let resp = c.list_groups(ListGroupsRequest::default(), version).await;
            encodes(&resp, version);
            let ids: Vec<&str> = resp.groups.iter().map(|g| g.group_id.as_str()).collect();
            assert_eq!(ids, vec!["described", "offsets-only"]);
            assert_eq!(resp.groups[0].protocol_type.as_str(), "consumer");
            assert_eq!(resp.groups[1].protocol_type.as_str(), "");
            if version >= 4 {
                assert_eq!(resp.groups[0].group_state.as_str(), "Stable");
                assert_eq!(resp.groups[1].group_state.as_str(), "Empty");
            }
        }
        let req = ListGroupsRequest {
            states_filter: vec!["stable".into()],
            ..Default::default()
        };
        let resp = c.list_groups(req, 4).await;
        assert_eq!(resp.groups.len(), 1);
        assert_eq!(resp.groups[0].group_id.as_str(), "described");
        let req = ListGroupsRequest {
            types_filter: vec!["consumer".into()],
            ..Default::default()
        };
        assert!(c.list_groups(req, 5).await.groups.is_empty());
        let req = ListGroupsRequest {
            types_filter: vec!["Classic".into()],
            ..Default::default()
        };
        let resp = c.list_groups(req, 5).await;
        assert_eq!(resp.groups.len(), 2);
        assert_eq!(resp.groups[0].group_type.as_str(), "classic");
    })
    .await;
}

#[tokio::test]
async fn every_version_round_trip_encodes() {
    within(async {
        let c = GroupCoordinator::with_initial_delay(Duration::from_millis(10));
        const GROUPS: [&str; 10] = ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"];
        for (version, group) in (0i16..=9).zip(GROUPS) {
            let mut j = Joiner::new(group);
            if version >= 5 && version % 2 == 1 {
                j.instance_id = Some("static");
            }
            let resp = if version >= 4 && j.instance_id.is_none() {
                join_new(&c, &mut j, version).await
            } else {
                let resp = join(&c, &j, version).await;
                j.member_id = resp.member_id.to_string();
                resp
            };
            assert_eq!(
                (resp.error_code, resp.generation_id),
                (NONE, 1),
                "JoinGroup v{version}"
            );
            let (sync_v, hb_v, leave_v) = (version.min(5), version.min(4), version.min(5));
            let s = sync(&c, &j, 1, &[(&j.member_id.clone(), b"x")], sync_v).await;
            assert_eq!(s.error_code, NONE, "SyncGroup v{sync_v}");
            assert_eq!(heartbeat(&c, &j, 1, hb_v).await, NONE, "Heartbeat v{hb_v}");
            // v0 commits carry no generation nor member id.
            let req = if version == 0 {
                commit_req(group, "", -1, &[("t", 0, 5)])
            } else {
                commit_req(group, &j.member_id, 1, &[("t", 0, 5)])
            };
            let errors = commit(&c, req, version).await;
            // Refused while the group has members.
            let expected = if version == 0 {
                UNKNOWN_MEMBER_ID
            } else {
                NONE
            };
            assert_eq!(errors, vec![expected], "OffsetCommit v{version}");
            let resp = leave(&c, &j, leave_v).await;
            assert_eq!(resp.error_code, NONE, "LeaveGroup v{leave_v}");
            assert_eq!(c.group_state(group), Some(("Empty".to_owned(), 2)));
        }
    })
    .await;
}
