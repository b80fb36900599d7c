//! Tests of the consumer group coordinator, straight on its API.

use super::*;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, OffsetCommitRequest};

fn topics() -> TopicView {
    let mut t = TopicView::new();
    t.insert("a".into(), (Uuid([1; 16]), 4));
    t.insert("b".into(), (Uuid([2; 16]), 2));
    t
}

fn join(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.to_owned().into(),
        member_id: member.to_owned().into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec!["a".into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

fn beat(group: &str, member: &str, epoch: i32, owned: &[i32]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.to_owned().into(),
        member_id: member.to_owned().into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        topic_partitions: Some(vec![Owned {
            topic_id: Uuid([1; 16]),
            partitions: owned.to_vec(),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn parts(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut v: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|t| t.partitions.clone())
            .collect();
        v.sort_unstable();
        v
    })
}

#[tokio::test(start_paused = true)]
async fn revoke_before_assign_and_epochs() {
    let c = GroupCoordinator::new();
    let t = topics();
    let r = c.consumer_group_heartbeat(join("g", "m1"), 1, &t).await;
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(parts(&r), Some(vec![0, 1, 2, 3]));
    assert!(r.heartbeat_interval_ms > 0);
    // m2 joins: the target splits, but m1 still owns everything, so m2 gets nothing yet.
    let r2 = c.consumer_group_heartbeat(join("g", "m2"), 1, &t).await;
    assert_eq!(r2.member_epoch, 2);
    assert_eq!(parts(&r2), Some(vec![]));
    // m1 is asked to keep two (revoke two), at its old epoch.
    let r = c
        .consumer_group_heartbeat(beat("g", "m1", 1, &[0, 1, 2, 3]), 1, &t)
        .await;
    assert_eq!(r.member_epoch, 1);
    let kept = parts(&r).expect("assignment");
    assert_eq!(kept.len(), 2);
    // m2 still waits: m1 has not acknowledged the revocation.
    let r2 = c
        .consumer_group_heartbeat(beat("g", "m2", 2, &[]), 1, &t)
        .await;
    assert_eq!(parts(&r2).unwrap_or_default(), Vec::<i32>::new());
    // m1 acknowledges: its epoch moves to 2.
    let r = c
        .consumer_group_heartbeat(beat("g", "m1", 1, &kept), 1, &t)
        .await;
    assert_eq!(r.member_epoch, 2);
    // Now m2 gets the released partitions.
    let r2 = c
        .consumer_group_heartbeat(beat("g", "m2", 2, &[]), 1, &t)
        .await;
    let got = parts(&r2).expect("assignment");
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| !kept.contains(p)));
    let (ge, ae, members) = c.consumer_group("g").expect("group");
    assert_eq!((ge, ae), (2, 2));
    assert!(members.iter().all(|m| m.1 == 2));
    // A wrong epoch is fenced, an unknown member is unknown.
    let r = c
        .consumer_group_heartbeat(beat("g", "m1", 7, &kept), 1, &t)
        .await;
    assert_eq!(r.error_code, FENCED_MEMBER_EPOCH);
    let r = c
        .consumer_group_heartbeat(beat("g", "zz", 2, &[]), 1, &t)
        .await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    // m1 leaves: m2 gets everything at epoch 3.
    let mut leave = beat("g", "m1", -1, &[]);
    leave.topic_partitions = None;
    let r = c.consumer_group_heartbeat(leave, 1, &t).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, -1));
    let r2 = c
        .consumer_group_heartbeat(beat("g", "m2", 2, &got), 1, &t)
        .await;
    assert_eq!(r2.member_epoch, 3);
    assert_eq!(parts(&r2), Some(vec![0, 1, 2, 3]));
}

#[tokio::test(start_paused = true)]
async fn offset_commit_uses_member_epoch() {
    let c = GroupCoordinator::new();
    let t = topics();
    let r = c.consumer_group_heartbeat(join("g", "m1"), 1, &t).await;
    let commit = |epoch: i32, member: &str| OffsetCommitRequest {
        group_id: "g".into(),
        generation_id_or_member_epoch: epoch,
        member_id: member.to_owned().into(),
        topics: vec![
            kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic {
                name: "a".into(),
                partitions: vec![
                    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 5,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let code = |r: &OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    let ok = c.offset_commit(commit(r.member_epoch, "m1"), 9).await;
    assert_eq!(code(&ok), NONE);
    assert_eq!(c.committed("g", "a", 0), Some(5));
    let stale = c.offset_commit(commit(r.member_epoch + 1, "m1"), 9).await;
    assert_eq!(code(&stale), STALE_MEMBER_EPOCH);
    let unknown = c.offset_commit(commit(1, "nobody"), 9).await;
    assert_eq!(code(&unknown), UNKNOWN_MEMBER_ID);
    let admin = c.offset_commit(commit(-1, ""), 9).await;
    assert_eq!(code(&admin), UNKNOWN_MEMBER_ID, "only to an empty group");
}

#[tokio::test(start_paused = true)]
async fn static_member_rejoins_without_rebalance() {
    let c = GroupCoordinator::new();
    let t = topics();
    let mut j = join("g", "m1");
    j.instance_id = Some("i1".into());
    let r = c.consumer_group_heartbeat(j, 1, &t).await;
    assert_eq!(r.member_epoch, 1);
    // While m1 is there, its instance id is taken.
    let mut j2 = join("g", "m9");
    j2.instance_id = Some("i1".into());
    let r9 = c.consumer_group_heartbeat(j2.clone(), 1, &t).await;
    assert_eq!(r9.error_code, ErrorCode::UnreleasedInstanceId.code());
    let mut leave = beat("g", "m1", -2, &[]);
    leave.instance_id = Some("i1".into());
    let r = c.consumer_group_heartbeat(leave, 1, &t).await;
    assert_eq!(r.member_epoch, -2);
    let r9 = c.consumer_group_heartbeat(j2, 1, &t).await;
    assert_eq!(r9.error_code, NONE);
    assert_eq!(r9.member_epoch, 1, "the epoch is kept");
    assert_eq!(parts(&r9), Some(vec![0, 1, 2, 3]));
    let (ge, _, _) = c.consumer_group("g").expect("group");
    assert_eq!(ge, 1, "no rebalance");
}

#[tokio::test(start_paused = true)]
async fn bad_requests_are_refused() {
    let c = GroupCoordinator::new();
    let t = topics();
    let mut j = join("g", "m1");
    j.subscribed_topic_names = None;
    j.subscribed_topic_regex = Some("a(".into());
    let r = c.consumer_group_heartbeat(j, 1, &t).await;
    assert_eq!(r.error_code, ErrorCode::InvalidRegularExpression.code());
    assert!(r.error_message.as_deref().unwrap_or("").contains("a("));
    let mut j = join("g", "m1");
    j.server_assignor = Some("sticky".into());
    let r = c.consumer_group_heartbeat(j, 1, &t).await;
    assert_eq!(r.error_code, ErrorCode::UnsupportedAssignor.code());
    let mut j = join("g", "m1");
    j.subscribed_topic_names = None;
    let r = c.consumer_group_heartbeat(j, 1, &t).await;
    assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
}

#[tokio::test(start_paused = true)]
async fn regex_subscription_and_session_expiry() {
    let c = GroupCoordinator::new();
    c.set_consumer_group_timeouts(Duration::from_secs(1), Duration::from_millis(100));
    let t = topics();
    let mut j = join("g", "m1");
    j.subscribed_topic_names = None;
    j.subscribed_topic_regex = Some("a|b".into());
    let r = c.consumer_group_heartbeat(j, 1, &t).await;
    let n: usize = r
        .assignment
        .as_ref()
        .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
        .unwrap_or(0);
    assert_eq!(n, 6, "a and b, whole names only");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, _, members) = c.consumer_group("g").expect("group");
    assert!(members.is_empty(), "the session expired");
}

#[tokio::test(start_paused = true)]
async fn list_groups_names_the_group_type() {
    use kafka_protocol::messages::ListGroupsRequest;
    let c = GroupCoordinator::new();
    c.consumer_group_heartbeat(join("g", "m1"), 1, &topics())
        .await;
    let r = c
        .list_groups(
            ListGroupsRequest {
                types_filter: vec!["consumer".into()],
                ..Default::default()
            },
            5,
        )
        .await;
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_type.as_str(), "consumer");
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    let r = c
        .list_groups(
            ListGroupsRequest {
                types_filter: vec!["classic".into()],
                ..Default::default()
            },
            5,
        )
        .await;
    assert!(r.groups.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let c = GroupCoordinator::new();
    let t = topics();
    let mut j = join("g", "m1");
    j.rebalance_timeout_ms = 1_000;
    c.consumer_group_heartbeat(j, 1, &t).await;
    c.consumer_group_heartbeat(join("g", "m2"), 1, &t).await;
    // m1 is told to revoke two, and never says it did.
    let r = c
        .consumer_group_heartbeat(beat("g", "m1", 1, &[0, 1, 2, 3]), 1, &t)
        .await;
    assert_eq!(parts(&r).map(|p| p.len()), Some(2));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = c
        .consumer_group_heartbeat(beat("g", "m1", 1, &[0, 1, 2, 3]), 1, &t)
        .await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID, "fenced");
    let r2 = c
        .consumer_group_heartbeat(beat("g", "m2", 2, &[]), 1, &t)
        .await;
    assert_eq!(parts(&r2), Some(vec![0, 1, 2, 3]));
}
