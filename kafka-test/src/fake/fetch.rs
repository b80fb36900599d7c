//! Fetch, with fetch sessions (KIP-227), long polling, and read_committed isolation
//! (up to the last stable offset, with the aborted transactions listed).

use super::handlers::s;
use super::Cluster;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::{ErrorCode, Uuid};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fetch sessions (KIP-227): session id 0 with epoch 0 opens one, epoch -1 closes or
/// skips one, a positive epoch continues one and must match.
enum SessionUse {
    None,
    New(i32),
    Incremental(i32),
    Error(ErrorCode),
}

/// Flips the last byte of every partition's records (fault injection).
pub(crate) fn corrupt_records(response: &mut FetchResponse) {
    for topic in &mut response.responses {
        for partition in &mut topic.partitions {
            if let Some(records) = partition.records.as_mut().filter(|r| !r.is_empty()) {
                let mut bytes = records.to_vec();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0xff;
                }
                *records = bytes.into();
            }
        }
    }
}

fn fetch_session(cluster: &Cluster, r: &FetchRequest) -> SessionUse {
    let mut state = cluster.state();
    match (r.session_id, r.session_epoch) {
        (0, -1) => SessionUse::None,
        (id, -1) => {
            state.fetch_sessions.remove(&id);
            SessionUse::None
        }
        (0, 0) => {
            state.next_session_id += 1;
            let id = state.next_session_id;
            state
                .fetch_sessions
                .insert(id, super::state::FetchSession::default());
            SessionUse::New(id)
        }
        (id, epoch) => match state.fetch_sessions.get(&id) {
            None => SessionUse::Error(ErrorCode::FetchSessionIdNotFound),
            Some(s) if s.epoch != epoch => SessionUse::Error(ErrorCode::InvalidFetchSessionEpoch),
            Some(_) => SessionUse::Incremental(id),
        },
    }
}

pub(crate) async fn fetch(
    cluster: &Arc<Cluster>,
    node: i32,
    r: FetchRequest,
    version: i16,
) -> FetchResponse {
    use fetch_response::{FetchableTopicResponse, PartitionData};
    let session = if version >= 7 {
        fetch_session(cluster, &r)
    } else {
        SessionUse::None
    };
    let session_id = match session {
        SessionUse::Error(code) => {
            return FetchResponse {
                error_code: code.code(),
                ..Default::default()
            }
        }
        SessionUse::New(id) | SessionUse::Incremental(id) => id,
        SessionUse::None => 0,
    };
    // Topic names for topics given by id (v13+).
    let name_of = |t: &fetch_request::FetchTopic| -> Option<String> {
        if !t.topic.is_empty() {
            return Some(t.topic.to_string());
        }
        let state = cluster.state();
        state
            .topics
            .iter()
            .find(|(_, x)| x.id == t.topic_id)
            .map(|(n, _)| n.clone())
    };
    // The partitions to answer: the request's, or for a session, the session's.
    let mut wanted: Vec<(String, Uuid, i32, i64, i32)> = Vec::new();
    let mut unknown_ids: Vec<Uuid> = Vec::new();
    for t in &r.topics {
        match name_of(t) {
            Some(name) => {
                for p in &t.partitions {
                    wanted.push((
                        name.clone(),
                        t.topic_id,
                        p.partition,
                        p.fetch_offset,
                        p.partition_max_bytes,
                    ));
                }
            }
            None => unknown_ids.push(t.topic_id),
        }
    }
    let incremental = matches!(session, SessionUse::Incremental(_));
    if session_id != 0 {
        let mut state = cluster.state();
        let topic_ids: std::collections::HashMap<String, Uuid> = state
            .topics
            .iter()
            .map(|(n, t)| (n.clone(), t.id))
            .collect();
        if let Some(sess) = state.fetch_sessions.get_mut(&session_id) {
            for (name, _, p, offset, max) in &wanted {
                sess.partitions.insert((name.clone(), *p), (*offset, *max));
            }
            for f in &r.forgotten_topics_data {
                let name = if f.topic.is_empty() {
                    topic_ids
                        .iter()
                        .find(|(_, id)| **id == f.topic_id)
                        .map(|(n, _)| n.clone())
                } else {
                    Some(f.topic.to_string())
                };
                if let Some(name) = name {
                    for p in &f.partitions {
                        sess.partitions.remove(&(name.clone(), *p));
                        sess.reported.remove(&(name.clone(), *p));
                    }
                }
            }
            if incremental {
                wanted = sess
                    .partitions
                    .iter()
                    .map(|((n, p), (o, m))| {
                        (
                            n.clone(),
                            topic_ids.get(n).copied().unwrap_or(Uuid::NIL),
                            *p,
                            *o,
                            *m,
                        )
                    })
                    .collect();
            }
            sess.epoch += 1;
        }
    }
    let read_committed = r.isolation_level == 1;
    let deadline = Instant::now() + Duration::from_millis(r.max_wait_ms.max(0) as u64);
    let max_bytes = if r.max_bytes <= 0 {
        usize::MAX
    } else {
        r.max_bytes as usize
    };
    loop {
        let notified = cluster.data.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut total = 0usize;
        let mut by_topic: Vec<FetchableTopicResponse> = Vec::new();
        let mut any_error = false;
        {
            let mut state = cluster.state();
            for (name, id, partition, offset, partition_max) in &wanted {
                let mut data = PartitionData {
                    partition_index: *partition,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    preferred_read_replica: -1,
                    ..Default::default()
                };
                match state
                    .topics
                    .get(name.as_str())
                    .and_then(|t| t.partitions.get(*partition as usize))
                {
                    None => data.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                    Some(p) if p.leader != node => {
                        data.error_code = ErrorCode::NotLeaderOrFollower.code()
                    }
                    Some(p) if *offset < p.log_start || *offset > p.next_offset => {
                        data.error_code = ErrorCode::OffsetOutOfRange.code();
                        data.high_watermark = p.next_offset;
                        data.log_start_offset = p.log_start;
                    }
                    Some(p) => {
                        let lso = p.last_stable_offset();
                        data.high_watermark = p.next_offset;
                        data.last_stable_offset = lso;
                        data.log_start_offset = p.log_start;
                        // read_committed reads up to the last stable offset.
                        let upto = if read_committed { lso } else { p.next_offset };
                        let budget = (*partition_max as usize).min(max_bytes.saturating_sub(total));
                        let (bytes, end) = if budget == 0 && total > 0 {
                            (Bytes::new(), *offset)
                        } else {
                            p.read(*offset, budget.max(1), upto)
                        };
                        total += bytes.len();
                        data.records = Some(bytes);
                        if read_committed {
                            data.aborted_transactions = Some(
                                p.aborted_between(*offset, end)
                                    .into_iter()
                                    .map(|a| fetch_response::AbortedTransaction {
                                        producer_id: a.producer_id,
                                        first_offset: a.first_offset,
                                        ..Default::default()
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
                any_error |= data.error_code != 0;
                // An incremental answer leaves out partitions with nothing new.
                let key = (name.clone(), *partition);
                let report = (
                    data.high_watermark,
                    data.last_stable_offset,
                    data.log_start_offset,
                );
                let has_data = data.records.as_ref().is_some_and(|b| !b.is_empty());
                if incremental {
                    let sess = state.fetch_sessions.get_mut(&session_id);
                    let unchanged = sess
                        .as_ref()
                        .is_some_and(|s| s.reported.get(&key) == Some(&report));
                    if unchanged && !has_data && data.error_code == 0 {
                        continue;
                    }
                }
                if let Some(sess) = state.fetch_sessions.get_mut(&session_id) {
                    sess.reported.insert(key, report);
                }
                match by_topic.iter_mut().find(|t| t.topic.as_str() == name) {
                    Some(t) => t.partitions.push(data),
                    None => by_topic.push(FetchableTopicResponse {
                        topic: s(name.clone()),
                        topic_id: *id,
                        partitions: vec![data],
                        ..Default::default()
                    }),
                }
            }
        }
        for id in &unknown_ids {
            by_topic.push(FetchableTopicResponse {
                topic_id: *id,
                partitions: vec![PartitionData {
                    error_code: ErrorCode::UnknownTopicId.code(),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let now = Instant::now();
        if total >= r.min_bytes.max(0) as usize
            || any_error
            || !unknown_ids.is_empty()
            || now >= deadline
        {
            return FetchResponse {
                session_id,
                responses: by_topic,
                ..Default::default()
            };
        }
        let _ = tokio::time::timeout(deadline - now, notified).await;
    }
}
