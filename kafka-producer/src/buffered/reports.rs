//! A batch's report slots: each record's report (future or callback) and create time,
//! kept until the batch is answered.

use super::{Delivery, REPORT_BYTES};

/// Slots in a block: 16 KiB of them, the size of a batch's smallest record chunk.
const SLOTS: usize = 16 * 1024 / REPORT_BYTES;

/// Report slots in blocks of one size, not in one vector sized from the last batch's
/// count and grown by doubling: batches of every count then hold allocations the
/// allocator reuses from batch to batch (vectors of every size left memory it could
/// not reuse: at 100-byte records on 8 partitions, 0.1 to 0.2 MB more peak RSS), and a
/// batch that outgrows its estimate moves nothing.
pub(super) struct Reports {
    blocks: Vec<Vec<(Delivery, i64)>>,
}

impl Reports {
    /// Slots for a batch expected to hold about `expected` records: its first block
    /// holds no more (a batch of a few records sets aside a few slots).
    pub(super) fn new(expected: usize) -> Self {
        Reports {
            blocks: vec![Vec::with_capacity(expected.clamp(1, SLOTS))],
        }
    }

    /// Adds a record's report and create time.
    pub(super) fn push(&mut self, slot: (Delivery, i64)) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < block.capacity() => block.push(slot),
            _ => {
                let mut block = Vec::with_capacity(SLOTS);
                block.push(slot);
                self.blocks.push(block);
            }
        }
    }

    /// The slots set aside, used or not (what the batch is charged for them).
    pub(super) fn capacity(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }
}

impl IntoIterator for Reports {
    type Item = (Delivery, i64);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<(Delivery, i64)>>>;

    /// The slots in the order their records were added.
    fn into_iter(self) -> Self::IntoIter {
        self.blocks.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn slot(i: i64) -> ((Delivery, i64), oneshot::Receiver<crate::DeliveryReport>) {
        let (tx, rx) = oneshot::channel();
        ((Delivery::Future(tx), i), rx)
    }

    #[test]
    fn slots_come_back_in_order_across_blocks_of_one_size() {
        for expected in [0, 1, 3, SLOTS, 10 * SLOTS] {
            let mut reports = Reports::new(expected);
            let mut receivers = Vec::new();
            let n = 2 * SLOTS + 7;
            for i in 0..n as i64 {
                let (s, rx) = slot(i);
                reports.push(s);
                receivers.push(rx);
            }
            let first = expected.clamp(1, SLOTS);
            // The first block as expected, then whole blocks: at most one block unused.
            assert_eq!(reports.blocks[0].capacity(), first);
            assert!(reports.blocks[1..].iter().all(|b| b.capacity() == SLOTS));
            assert!(reports.capacity() >= n && reports.capacity() < n + SLOTS);
            let created: Vec<i64> = reports.into_iter().map(|(_, c)| c).collect();
            assert_eq!(
                created,
                (0..n as i64).collect::<Vec<_>>(),
                "expected {expected}"
            );
        }
    }
}
