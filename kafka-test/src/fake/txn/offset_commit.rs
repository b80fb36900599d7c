//! TxnOffsetCommit, on the group coordinator: the transaction must hold the group
//! (AddOffsetsToTxn; KIP-890 verification), then the group checks the member (KIP-447)
//! and keeps the offsets pending until the transaction's marker.

use super::{errors, verification_error};
use crate::fake::Cluster;
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ErrorCode;
use std::sync::Arc;

pub(crate) async fn txn_offset_commit(
    cluster: &Arc<Cluster>,
    node: i32,
    r: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let code = if r.group_id.is_empty() {
        ErrorCode::InvalidGroupId
    } else if cluster.coordinator_for(&r.group_id) != node {
        ErrorCode::NotCoordinator
    } else if r.transactional_id.is_empty() {
        ErrorCode::InvalidRequest
    } else {
        let code = cluster.state().txns.verify(
            &r.transactional_id,
            r.producer_id,
            r.producer_epoch,
            None,
            Some(&r.group_id),
        );
        verification_error(code, version, 4)
    };
    if code != ErrorCode::None {
        return errors::txn_offset_commit(&r, code);
    }
    cluster.groups.txn_offset_commit(r, version).await
}
