//! Which offset of a partition may be committed when messages are processed out of
//! order (sarama-consumer's `Done`, and its `InOrderDone` mode).
//!
//! The consumer calls [`OffsetTracker::delivered`] for each message it hands out and the
//! application calls [`OffsetTracker::done`] when it has finished with one, in any
//! order. [`OffsetTracker::committable`] is the offset to commit: everything delivered
//! before it is done. Memory is one entry per delivered-but-not-done offset.

use std::collections::BTreeSet;

/// Tracks delivered and done offsets of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetTracker {
    /// One past the highest offset delivered (or done, in in-order mode), or the start.
    next: i64,
    /// Delivered and not yet done, in order.
    outstanding: BTreeSet<i64>,
    in_order: bool,
    /// Some `done` changed something since the start (or the last reset).
    progressed: bool,
}

impl OffsetTracker {
    /// A tracker whose position is `start` (the committed offset, or where a seek
    /// landed): nothing before it will be delivered.
    ///
    /// With `in_order`, [`done`](Self::done) of an offset means done with it and with
    /// everything delivered before it, and it may be called for offsets that were never
    /// passed to [`delivered`](Self::delivered) (sarama-consumer's `InOrderDone`, for
    /// callers that fetch by themselves).
    pub fn new(start: i64, in_order: bool) -> Self {
        OffsetTracker {
            next: start,
            outstanding: BTreeSet::new(),
            in_order,
            progressed: false,
        }
    }

    /// Whether `done` is cumulative.
    pub fn is_in_order(&self) -> bool {
        self.in_order
    }

    /// Records that the message at `offset` was handed out. Offsets of a partition are
    /// delivered in increasing order, possibly with gaps (compaction, transaction
    /// markers); a gap counts as done. An offset below the position (before the start,
    /// or not above one already delivered, e.g. the head of a compressed batch that
    /// precedes the fetch offset) is ignored; returns whether the offset was recorded.
    pub fn delivered(&mut self, offset: i64) -> bool {
        if offset < self.next {
            return false;
        }
        self.outstanding.insert(offset);
        self.next = offset.saturating_add(1);
        true
    }

    /// Records that the application is done with the message at `offset`. Out of order
    /// mode: only that offset, and only when it is outstanding (a second `done`, or one
    /// for an offset never delivered, is ignored). In-order mode: every delivered offset
    /// up to and including `offset`, and the position moves past `offset` even when it
    /// was not delivered. Returns whether anything changed.
    pub fn done(&mut self, offset: i64) -> bool {
        let changed = self.done_inner(offset);
        self.progressed |= changed;
        changed
    }

    fn done_inner(&mut self, offset: i64) -> bool {
        if !self.in_order {
            return self.outstanding.remove(&offset);
        }
        let mut changed = false;
        if self
            .outstanding
            .first()
            .is_some_and(|&first| first <= offset)
        {
            self.outstanding = match offset.checked_add(1) {
                Some(after) => self.outstanding.split_off(&after),
                None => BTreeSet::new(),
            };
            changed = true;
        }
        if offset >= self.next {
            self.next = offset.saturating_add(1);
            changed = true;
        }
        changed
    }

    /// The offset to commit: the first delivered offset not yet done, or, when
    /// everything delivered is done, one past the last delivered (the start if nothing
    /// was). Never decreases except through [`reset`](Self::reset).
    pub fn committable(&self) -> i64 {
        self.outstanding.first().copied().unwrap_or(self.next)
    }

    /// True once anything was done since the start (or the last reset): before that
    /// there is nothing to commit, and a commit of the start would overwrite offsets
    /// committed some other way (by a transactional producer).
    pub fn has_progressed(&self) -> bool {
        self.progressed
    }

    /// Delivered offsets not yet done.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Forgets everything and starts again at `offset` (after a seek, or when the
    /// partition is assigned again).
    pub fn reset(&mut self, offset: i64) {
        self.outstanding.clear();
        self.next = offset;
        self.progressed = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    #[test]
    fn nothing_is_committable_as_progress_until_something_is_done() {
        let mut t = OffsetTracker::new(0, false);
        t.delivered(0);
        t.delivered(1);
        assert!(!t.has_progressed(), "delivered but not done");
        assert!(!t.done(7), "an offset never delivered");
        assert!(!t.has_progressed());
        assert!(t.done(1));
        assert!(t.has_progressed());
        assert_eq!(t.committable(), 0);
        t.reset(5);
        assert!(!t.has_progressed());
    }

    #[test]
    fn nothing_delivered_commits_the_start() {
        let t = OffsetTracker::new(42, false);
        assert_eq!(t.committable(), 42);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn out_of_order_done_commits_the_contiguous_prefix() {
        let mut t = OffsetTracker::new(10, false);
        for o in 10..15 {
            assert!(t.delivered(o));
        }
        assert_eq!(t.committable(), 10);
        assert!(t.done(12));
        assert!(t.done(11));
        assert_eq!(t.committable(), 10);
        assert!(t.done(10));
        assert_eq!(t.committable(), 13);
        assert!(!t.done(10), "a second done is ignored");
        assert!(!t.done(99), "never delivered");
        assert!(t.done(14));
        assert_eq!(t.committable(), 13);
        assert!(t.done(13));
        assert_eq!(t.committable(), 15);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn gaps_between_delivered_offsets_count_as_done() {
        let mut t = OffsetTracker::new(0, false);
        t.delivered(5);
        t.delivered(9);
        assert_eq!(t.committable(), 5);
        t.done(5);
        assert_eq!(t.committable(), 9);
        t.done(9);
        assert_eq!(t.committable(), 10);
    }

    #[test]
    fn offsets_below_the_position_are_ignored() {
        let mut t = OffsetTracker::new(100, false);
        assert!(!t.delivered(98), "head of a batch before the fetch offset");
        assert!(t.delivered(100));
        assert!(!t.delivered(100), "delivered twice");
        assert!(!t.done(98));
        assert_eq!(t.committable(), 100);
        t.done(100);
        assert_eq!(t.committable(), 101);
    }

    #[test]
    fn in_order_done_covers_everything_before() {
        let mut t = OffsetTracker::new(0, true);
        assert!(t.is_in_order());
        for o in 0..10 {
            t.delivered(o);
        }
        assert!(t.done(6));
        assert_eq!(t.committable(), 7);
        assert_eq!(t.outstanding(), 3);
        assert!(!t.done(3), "already covered");
        assert_eq!(t.committable(), 7);
        assert!(t.done(9));
        assert_eq!(t.committable(), 10);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn in_order_done_without_deliveries_moves_the_position() {
        let mut t = OffsetTracker::new(5, true);
        assert!(t.done(20));
        assert_eq!(t.committable(), 21);
        assert!(!t.delivered(20), "now behind the position");
        assert!(t.done(i64::MAX));
        assert_eq!(t.committable(), i64::MAX);
    }

    #[test]
    fn reset_forgets_outstanding_offsets() {
        let mut t = OffsetTracker::new(0, false);
        t.delivered(0);
        t.delivered(1);
        t.reset(500);
        assert_eq!(t.committable(), 500);
        assert_eq!(t.outstanding(), 0);
        assert!(!t.done(0));
        t.delivered(500);
        t.done(500);
        assert_eq!(t.committable(), 501);
        t.reset(3);
        assert_eq!(t.committable(), 3, "a reset may go backwards");
    }

    /// The committable offset by brute force: the first delivered offset not done, or
    /// one past the last delivered.
    fn reference(start: i64, delivered: &[i64], done: &[bool]) -> i64 {
        delivered
            .iter()
            .zip(done)
            .find(|(_, &d)| !d)
            .map(|(&o, _)| o)
            .unwrap_or_else(|| delivered.last().map_or(start, |&o| o + 1))
    }

    #[test]
    fn random_permutations_of_done_match_a_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let start = rng.gen_range(0..1000i64);
            let n = rng.gen_range(0..200usize);
            let mut offsets = Vec::with_capacity(n);
            let mut next = start;
            for _ in 0..n {
                next += rng.gen_range(1..4); // gaps now and then
                offsets.push(next - 1);
            }
            let mut t = OffsetTracker::new(start, false);
            let mut done = vec![false; n];
            // Interleave deliveries and dones: deliver a prefix, finish a random
            // subset of what was delivered, repeat.
            let mut delivered = 0;
            let mut pending: Vec<usize> = Vec::new();
            let mut last = t.committable();
            while delivered < n || !pending.is_empty() {
                if delivered < n && (pending.is_empty() || rng.gen_bool(0.5)) {
                    assert!(t.delivered(offsets[delivered]));
                    pending.push(delivered);
                    delivered += 1;
                } else {
                    pending.shuffle(&mut rng);
                    let i = pending.pop().unwrap();
                    assert!(t.done(offsets[i]));
                    done[i] = true;
                }
                let want = reference(start, &offsets[..delivered], &done[..delivered]);
                assert_eq!(t.committable(), want);
                assert!(t.committable() >= last, "committable never goes back");
                last = t.committable();
                assert_eq!(t.outstanding(), pending.len(), "memory = outstanding");
            }
            assert_eq!(t.committable(), offsets.last().map_or(start, |&o| o + 1));
        }
    }

    #[test]
    fn random_in_order_dones_match_a_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let n = rng.gen_range(1..100i64);
            let mut t = OffsetTracker::new(0, true);
            let mut done_upto = -1i64;
            let mut delivered = 0i64;
            while done_upto < n - 1 {
                if delivered < n && rng.gen_bool(0.6) {
                    t.delivered(delivered);
                    delivered += 1;
                } else if delivered > 0 {
                    // Finish some prefix of what was delivered, possibly one already
                    // covered.
                    let o = rng.gen_range(0..delivered);
                    t.done(o);
                    done_upto = done_upto.max(o);
                }
                let want = if done_upto + 1 < delivered {
                    done_upto + 1
                } else {
                    delivered
                };
                assert_eq!(t.committable(), want);
                assert_eq!(t.outstanding() as i64, delivered - (done_upto + 1));
            }
        }
    }
}
