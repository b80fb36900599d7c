//! The server-side assignors of the consumer group protocol (KIP-848): `uniform` (the
//! default; balanced and sticky) and `range` (per topic, contiguous ranges in member id
//! order, so that co-partitioned topics land together).

use std::collections::{BTreeMap, BTreeSet};

/// A topic partition, by name.
pub(crate) type Tp = (String, i32);

/// The assignors served, the default first.
pub(crate) const ASSIGNORS: &[&str] = &["uniform", "range"];

/// One member as an assignor sees it.
#[derive(Debug, Clone)]
pub(crate) struct AssignorMember {
    pub id: String,
    pub topics: BTreeSet<String>,
}

/// The target assignment of `members` over `topics` (name to partition count) with the
/// assignor `name` (one of [`ASSIGNORS`]); `previous` is the last target, which
/// `uniform` keeps where balance allows. Every partition of a subscribed topic goes to
/// exactly one member subscribed to it; every member gets an entry.
pub(crate) fn assign(
    name: &str,
    members: &[AssignorMember],
    topics: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, BTreeSet<Tp>>,
) -> BTreeMap<String, BTreeSet<Tp>> {
    match name {
        "range" => range(members, topics),
        _ => uniform(members, topics, previous),
    }
}

fn range(
    members: &[AssignorMember],
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = members
        .iter()
        .map(|m| (m.id.clone(), BTreeSet::new()))
        .collect();
    for (topic, &count) in topics {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id.as_str())
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        subscribed.sort_unstable();
        let n = subscribed.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribed.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let parts = out.entry((*member).to_owned()).or_default();
            for p in next..next + take {
                parts.insert((topic.clone(), p));
            }
            next += take;
        }
    }
    out
}

fn uniform(
    members: &[AssignorMember],
    topics: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, BTreeSet<Tp>>,
) -> BTreeMap<String, BTreeSet<Tp>> {
    let subscribers = |topic: &str| -> Vec<&str> {
        members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id.as_str())
            .collect()
    };
    let mut owner: BTreeMap<Tp, String> = BTreeMap::new();
    let mut count: BTreeMap<String, usize> = members.iter().map(|m| (m.id.clone(), 0)).collect();
    let mut unowned: Vec<Tp> = Vec::new();
    // Sticky: a partition stays with its previous owner while that owner subscribes.
    for (topic, &n) in topics {
        let candidates = subscribers(topic);
        if candidates.is_empty() {
            continue;
        }
        for p in 0..n {
            let tp = (topic.clone(), p);
            let kept = previous
                .iter()
                .find(|(_, parts)| parts.contains(&tp))
                .map(|(m, _)| m.as_str())
                .filter(|m| candidates.contains(m));
            match kept {
                Some(m) => {
                    *count.entry(m.to_owned()).or_default() += 1;
                    owner.insert(tp, m.to_owned());
                }
                None => unowned.push(tp),
            }
        }
    }
    // New partitions go to the least loaded subscriber (member id breaks ties).
    for tp in unowned {
        let candidates = subscribers(&tp.0);
        if let Some(m) = candidates.into_iter().min_by_key(|m| (count[*m], *m)) {
            *count.entry(m.to_owned()).or_default() += 1;
            owner.insert(tp, m.to_owned());
        }
    }
    // Balance: move a partition to a subscriber with two fewer while one exists. Each
    // move lowers the sum of squared counts, so this ends.
    loop {
        let mut moved = false;
        let partitions: Vec<Tp> = owner.keys().cloned().collect();
        for tp in partitions {
            let from = owner[&tp].clone();
            let candidates = subscribers(&tp.0);
            let Some(to) = candidates.into_iter().min_by_key(|m| (count[*m], *m)) else {
                continue;
            };
            if count[&from] > count[to] + 1 {
                *count.entry(from).or_default() -= 1;
                *count.entry(to.to_owned()).or_default() += 1;
                owner.insert(tp, to.to_owned());
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: BTreeMap<String, BTreeSet<Tp>> = members
        .iter()
        .map(|m| (m.id.clone(), BTreeSet::new()))
        .collect();
    for (tp, m) in owner {
        out.entry(m).or_default().insert(tp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> AssignorMember {
        AssignorMember {
            id: id.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    /// Every partition of a subscribed topic is assigned once, to a subscriber.
    fn check_complete_and_disjoint(
        members: &[AssignorMember],
        topics: &BTreeMap<String, i32>,
        plan: &BTreeMap<String, BTreeSet<Tp>>,
    ) {
        let mut seen = BTreeSet::new();
        for (m, parts) in plan {
            let sub = &members.iter().find(|x| &x.id == m).expect("member").topics;
            for tp in parts {
                assert!(sub.contains(&tp.0), "{m} got {tp:?} without subscribing");
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        for (t, &n) in topics {
            if members.iter().any(|m| m.topics.contains(t)) {
                for p in 0..n {
                    assert!(seen.contains(&(t.clone(), p)), "{t}/{p} unassigned");
                }
            }
        }
    }

    #[test]
    fn uniform_is_balanced_complete_and_sticky() {
        let t = topics(&[("a", 7), ("b", 5)]);
        let two = vec![member("m1", &["a", "b"]), member("m2", &["a", "b"])];
        let first = assign("uniform", &two, &t, &BTreeMap::new());
        check_complete_and_disjoint(&two, &t, &first);
        let sizes: Vec<usize> = first.values().map(BTreeSet::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 12);
        assert!(sizes.iter().all(|&s| s == 6), "{sizes:?}");
        // A third member takes 4, and nothing moves between the first two.
        let three = vec![
            member("m1", &["a", "b"]),
            member("m2", &["a", "b"]),
            member("m3", &["a", "b"]),
        ];
        let second = assign("uniform", &three, &t, &first);
        check_complete_and_disjoint(&three, &t, &second);
        assert!(second.values().all(|p| p.len() == 4), "{second:?}");
        for m in ["m1", "m2"] {
            assert!(
                second[m].is_subset(&first[m]),
                "{m} got a partition it did not own"
            );
        }
        // m2 leaves: its partitions spread over the others, who keep theirs.
        let rest = vec![member("m1", &["a", "b"]), member("m3", &["a", "b"])];
        let third = assign("uniform", &rest, &t, &second);
        check_complete_and_disjoint(&rest, &t, &third);
        assert!(third.values().all(|p| p.len() == 6));
        assert!(second["m1"].is_subset(&third["m1"]));
        assert!(second["m3"].is_subset(&third["m3"]));
    }

    #[test]
    fn uniform_with_different_subscriptions() {
        let t = topics(&[("a", 4), ("b", 4)]);
        let members = vec![
            member("m1", &["a"]),
            member("m2", &["a", "b"]),
            member("m3", &["b"]),
        ];
        let plan = assign("uniform", &members, &t, &BTreeMap::new());
        check_complete_and_disjoint(&members, &t, &plan);
        let max = plan.values().map(BTreeSet::len).max().unwrap_or(0);
        let min = plan.values().map(BTreeSet::len).min().unwrap_or(0);
        assert!(max - min <= 1, "{plan:?}");
        // A topic nobody subscribes to is not assigned.
        let only_a = vec![member("m1", &["a"])];
        let plan = assign("uniform", &only_a, &t, &BTreeMap::new());
        check_complete_and_disjoint(&only_a, &t, &plan);
        assert_eq!(plan["m1"].len(), 4);
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let t = topics(&[("a", 5), ("b", 5)]);
        let members = vec![member("y", &["a", "b"]), member("x", &["a", "b"])];
        let plan = assign("range", &members, &t, &BTreeMap::new());
        check_complete_and_disjoint(&members, &t, &plan);
        let parts = |m: &str, topic: &str| -> Vec<i32> {
            plan[m]
                .iter()
                .filter(|tp| tp.0 == topic)
                .map(|tp| tp.1)
                .collect()
        };
        assert_eq!(parts("x", "a"), vec![0, 1, 2]);
        assert_eq!(parts("y", "a"), vec![3, 4]);
        // Co-partitioned: the same partitions of both topics go together.
        assert_eq!(parts("x", "a"), parts("x", "b"));
        // More members than partitions: the last ones get nothing.
        let t = topics(&[("a", 1)]);
        let plan = assign("range", &members, &t, &BTreeMap::new());
        assert_eq!(plan["x"].len(), 1);
        assert!(plan["y"].is_empty());
    }
}
