//! The member's side of KIP-848 reconciliation, as the Java client does it: the
//! coordinator sends the partitions the member may own now; what the member owns
//! beyond them is revoked first (committed, fetching stopped, `Revoked` reported), and
//! only then are the new ones assigned, after which the member heartbeats at once to
//! acknowledge.

use std::collections::BTreeSet;

/// A topic partition, by name.
pub(crate) type Tp = (String, i32);

/// What the member must do to go from `owned` to `target`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Revoke these first.
    pub revoke: BTreeSet<Tp>,
    /// Then assign these.
    pub assign: BTreeSet<Tp>,
}

impl Plan {
    /// Whether anything changes.
    pub fn is_empty(&self) -> bool {
        self.revoke.is_empty() && self.assign.is_empty()
    }
}

/// The revocations and assignments that take `owned` to `target`.
pub(crate) fn plan(owned: &BTreeSet<Tp>, target: &BTreeSet<Tp>) -> Plan {
    Plan {
        revoke: owned.difference(target).cloned().collect(),
        assign: target.difference(owned).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[(&str, i32)]) -> BTreeSet<Tp> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    #[test]
    fn revokes_what_is_gone_and_assigns_what_is_new() {
        let owned = set(&[("a", 0), ("a", 1), ("b", 0)]);
        let target = set(&[("a", 1), ("b", 0), ("b", 1)]);
        let p = plan(&owned, &target);
        assert_eq!(p.revoke, set(&[("a", 0)]));
        assert_eq!(p.assign, set(&[("b", 1)]));
        assert!(!p.is_empty());
    }

    #[test]
    fn the_same_assignment_changes_nothing() {
        let owned = set(&[("a", 0), ("a", 1)]);
        assert!(plan(&owned, &owned.clone()).is_empty());
        // A revocation-only step (the coordinator keeps new partitions back until
        // others release them) revokes and assigns nothing.
        let p = plan(&owned, &set(&[("a", 1)]));
        assert_eq!(p.revoke, set(&[("a", 0)]));
        assert!(p.assign.is_empty());
        // Everything taken away.
        let p = plan(&owned, &BTreeSet::new());
        assert_eq!(p.revoke, owned);
    }
}
