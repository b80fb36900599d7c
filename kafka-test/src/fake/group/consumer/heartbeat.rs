//! ConsumerGroupHeartbeat: join (epoch 0), heartbeat and reconcile (the member's
//! epoch), leave (-1), static leave (-2).

use super::*;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;

const INVALID_REQUEST: i16 = ErrorCode::InvalidRequest.code();
const GROUP_ID_NOT_FOUND: i16 = ErrorCode::GroupIdNotFound.code();
const UNRELEASED_INSTANCE_ID: i16 = ErrorCode::UnreleasedInstanceId.code();
const UNSUPPORTED_ASSIGNOR: i16 = ErrorCode::UnsupportedAssignor.code();
const INVALID_REGULAR_EXPRESSION: i16 = ErrorCode::InvalidRegularExpression.code();

/// What a heartbeat is answered.
struct Answer {
    error: i16,
    message: Option<String>,
    member_id: Option<String>,
    epoch: i32,
    assignment: Option<BTreeSet<Tp>>,
}

fn fail(error: i16, message: impl Into<String>) -> Answer {
    Answer {
        error,
        message: Some(message.into()),
        member_id: None,
        epoch: 0,
        assignment: None,
    }
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat (KIP-848), given the cluster's topics now.
    pub async fn consumer_group_heartbeat(
        self: &Arc<Self>,
        req: ConsumerGroupHeartbeatRequest,
        version: i16,
        topics: &TopicView,
    ) -> ConsumerGroupHeartbeatResponse {
        let settings = self.consumer_settings();
        let a = self.do_consumer_heartbeat(&req, topics, settings);
        let by_name: BTreeMap<&str, Uuid> = topics
            .iter()
            .map(|(n, (id, _))| (n.as_str(), *id))
            .collect();
        let assignment = a.assignment.map(|parts| {
            let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &parts {
                grouped.entry(t.as_str()).or_default().push(*p);
            }
            Assignment {
                topic_partitions: grouped
                    .into_iter()
                    .filter_map(|(t, partitions)| {
                        Some(TopicPartitions {
                            topic_id: *by_name.get(t)?,
                            partitions,
                            ..Default::default()
                        })
                    })
                    .collect(),
                ..Default::default()
            }
        });
        let mut resp = ConsumerGroupHeartbeatResponse {
            error_code: a.error,
            error_message: a.message.map(StrBytes::from),
            member_id: a.member_id.map(StrBytes::from),
            member_epoch: a.epoch,
            heartbeat_interval_ms: if a.error == NONE {
                settings.heartbeat_interval.as_millis() as i32
            } else {
                0
            },
            assignment,
            ..Default::default()
        };
        resp.retain_version(version);
        resp
    }

    fn do_consumer_heartbeat(
        &self,
        req: &ConsumerGroupHeartbeatRequest,
        topics: &TopicView,
        settings: Settings,
    ) -> Answer {
        let group_id = req.group_id.to_string();
        let epoch = req.member_epoch;
        let instance_id = req.instance_id.as_deref().map(str::to_owned);
        if group_id.is_empty() {
            return fail(INVALID_REQUEST, "GroupId can't be empty");
        }
        if epoch == 0
            && req.subscribed_topic_names.is_none()
            && req.subscribed_topic_regex.is_none()
        {
            return fail(
                INVALID_REQUEST,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in the first request",
            );
        }
        if epoch == 0 && req.rebalance_timeout_ms <= 0 {
            return fail(
                INVALID_REQUEST,
                "RebalanceTimeoutMs must be set in the first request",
            );
        }
        if let Some(re) = &req.subscribed_topic_regex {
            if let Err(e) = regex::Regex::new(&anchored(re)) {
                return fail(
                    INVALID_REGULAR_EXPRESSION,
                    format!("SubscribedTopicRegex {re:?} does not compile: {e}"),
                );
            }
        }
        if let Some(a) = &req.server_assignor {
            if !assignors::ASSIGNORS.contains(&a.as_str()) {
                return fail(
                    UNSUPPORTED_ASSIGNOR,
                    format!(
                        "ServerAssignor {a} is not one of {:?}",
                        assignors::ASSIGNORS
                    ),
                );
            }
        }
        let now = Instant::now();
        let mut groups = self.lock();
        let g = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id.clone()));
        if g.consumer.is_none() {
            if !g.members.is_empty() || g.state != State::Empty {
                return fail(
                    GROUP_ID_NOT_FOUND,
                    format!(
                        "group {group_id} is a classic group with members, not a consumer group"
                    ),
                );
            }
            g.consumer = Some(ConsumerGroup::default());
        }
        let Some(cg) = g.consumer.as_mut() else {
            return fail(GROUP_ID_NOT_FOUND, "not a consumer group");
        };
        let member_id = req.member_id.to_string();
        // Leaving.
        if epoch < 0 {
            let Some(m) = cg.members.get_mut(&member_id) else {
                return fail(
                    UNKNOWN_MEMBER_ID,
                    format!("member {member_id} is not in the group"),
                );
            };
            if epoch == -2 && m.instance_id.is_some() {
                // A static member steps out and keeps its assignment for a while.
                m.previous_epoch = m.epoch;
                m.epoch = -2;
                m.session_deadline = now + settings.session_timeout;
                debug!(group_id = %group_id, member_id = %member_id, "static member left temporarily");
            } else {
                debug!(group_id = %group_id, member_id = %member_id, "member left");
                cg.remove(&member_id);
                cg.maybe_assign(topics, true);
            }
            return Answer {
                error: NONE,
                message: None,
                member_id: Some(member_id),
                epoch,
                assignment: None,
            };
        }
        let owned: Option<BTreeSet<Tp>> = req.topic_partitions.as_ref().map(|tps| {
            let by_id: HashMap<Uuid, &str> = topics
                .iter()
                .map(|(n, (id, _))| (*id, n.as_str()))
                .collect();
            tps.iter()
                .filter_map(|t| by_id.get(&t.topic_id).map(|n| (n, &t.partitions)))
                .flat_map(|(n, ps)| ps.iter().map(move |p| ((*n).to_owned(), *p)))
                .collect()
        });
        let mut changed = false;
        let member_id = if epoch == 0 {
            match self.consumer_join(cg, &member_id, instance_id.as_deref(), now, settings) {
                Ok((id, spawn, joined)) => {
                    changed = joined;
                    if let Some(uid) = spawn {
                        self.spawn_consumer_member_timer(
                            &group_id,
                            &id,
                            uid,
                            now + settings.session_timeout,
                        );
                    }
                    id
                }
                Err(a) => return a,
            }
        } else {
            let Some(m) = cg.members.get(&member_id) else {
                return fail(
                    UNKNOWN_MEMBER_ID,
                    format!("member {member_id} is not in the group"),
                );
            };
            let previous_ok = epoch == m.previous_epoch
                && owned.as_ref().is_some_and(|o| o.is_subset(&m.assigned));
            if epoch != m.epoch && !previous_ok {
                return fail(
                    FENCED_MEMBER_EPOCH,
                    format!(
                        "member {member_id} sent epoch {epoch}, its epoch is {}",
                        m.epoch
                    ),
                );
            }
            member_id
        };
        let Some(m) = cg.members.get_mut(&member_id) else {
            return fail(
                UNKNOWN_MEMBER_ID,
                format!("member {member_id} is not in the group"),
            );
        };
        m.session_deadline = now + settings.session_timeout;
        if let Some(names) = &req.subscribed_topic_names {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            names.dedup();
            changed |= names != m.names;
            m.names = names;
        }
        if let Some(re) = &req.subscribed_topic_regex {
            let re = (!re.is_empty()).then(|| re.to_string());
            changed |= re != m.regex;
            m.regex = re;
        }
        if let Some(a) = &req.server_assignor {
            let a = Some(a.to_string());
            changed |= a != m.assignor;
            m.assignor = a;
        }
        if let Some(rack) = &req.rack_id {
            m.rack = Some(rack.to_string());
        }
        if req.rebalance_timeout_ms > 0 {
            m.rebalance_timeout = millis(req.rebalance_timeout_ms);
        }
        if changed {
            cg.group_epoch += 1;
        }
        cg.maybe_assign(topics, changed);
        let was_revoking = cg.members.get(&member_id).and_then(|m| m.revoke_deadline);
        cg.reconcile(&member_id, owned.as_ref(), now);
        let Some(m) = cg.members.get_mut(&member_id) else {
            return fail(
                UNKNOWN_MEMBER_ID,
                format!("member {member_id} is not in the group"),
            );
        };
        if let (None, Some(at)) = (was_revoking, m.revoke_deadline) {
            self.spawn_revoke_timer(&group_id, &member_id, m.uid, at);
        }
        let full = epoch == 0
            || (req.rebalance_timeout_ms != -1
                && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
                && req.topic_partitions.is_some());
        let send = full || m.last_sent.as_ref() != Some(&m.assigned);
        if send {
            m.last_sent = Some(m.assigned.clone());
        }
        debug!(
            group_id = %group_id,
            member_id = %member_id,
            epoch = m.epoch,
            state = m.state.name(),
            assigned = m.assigned.len(),
            "consumer group heartbeat"
        );
        Answer {
            error: NONE,
            message: None,
            member_id: Some(member_id),
            epoch: m.epoch,
            assignment: send.then(|| m.assigned.clone()),
        }
    }

    /// A join (epoch 0): a new member, a known member rejoining (after being fenced, it
    /// starts over), or a static member taking over its instance's place. Returns the
    /// member id, the uid its timer follows, and whether the group changed (the
    /// caller bumps the group epoch).
    fn consumer_join(
        &self,
        cg: &mut ConsumerGroup,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        settings: Settings,
    ) -> Result<(String, Option<u64>, bool), Answer> {
        let id = if member_id.is_empty() {
            random_uuid()
        } else {
            member_id.to_owned()
        };
        let uid = self.next_id();
        let fresh = |id: &str| CgMember {
            id: id.to_owned(),
            uid,
            instance_id: instance_id.map(str::to_owned),
            rack: None,
            rebalance_timeout: Duration::from_secs(300),
            names: Vec::new(),
            regex: None,
            assignor: None,
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            assigned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            last_sent: None,
            session_deadline: now + settings.session_timeout,
            revoke_deadline: None,
        };
        if let Some(instance) = instance_id {
            let holder = cg
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance) && m.id != id)
                .map(|m| (m.id.clone(), m.epoch));
            if let Some((old, old_epoch)) = holder {
                if old_epoch != -2 {
                    return Err(fail(
                        UNRELEASED_INSTANCE_ID,
                        format!("instance {instance} is still held by member {old}"),
                    ));
                }
                // The static member comes back: it takes over the epoch and assignment.
                let Some(mut m) = cg.members.remove(&old) else {
                    return Err(fail(UNKNOWN_MEMBER_ID, "static member vanished"));
                };
                m.epoch = m.previous_epoch.max(0);
                m.id = id.clone();
                m.uid = uid;
                m.last_sent = None;
                m.session_deadline = now + settings.session_timeout;
                if let Some(t) = cg.target.remove(&old) {
                    cg.target.insert(id.clone(), t);
                }
                cg.members.insert(id.clone(), m);
                debug!(member_id = %id, replaced = %old, "static member rejoined");
                return Ok((id, Some(uid), false));
            }
        }
        if cg.members.contains_key(&id) {
            // A member that rejoins with epoch 0 starts over.
            cg.members.remove(&id);
            cg.target.remove(&id);
        }
        cg.members.insert(id.clone(), fresh(&id));
        Ok((id, Some(uid), true))
    }
}
