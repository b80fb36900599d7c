//! DeleteGroups, a part of the group coordinator (a child module of `group.rs`, for
//! its state): an empty group is removed with its committed offsets; one with
//! members answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use super::{GroupCoordinator, State};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ErrorCode;

impl GroupCoordinator {
    /// DeleteGroups of the groups `is_mine` says this broker coordinates (the others
    /// answer NOT_COORDINATOR).
    pub(crate) fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        is_mine: impl Fn(&str) -> bool,
    ) -> DeleteGroupsResponse {
        let mut groups = self.lock();
        let results = req
            .groups_names
            .iter()
            .map(|id| {
                let code = if id.is_empty() {
                    ErrorCode::InvalidGroupId
                } else if !is_mine(id) {
                    ErrorCode::NotCoordinator
                } else {
                    match groups.get(id.as_str()) {
                        None => ErrorCode::GroupIdNotFound,
                        Some(g) if !g.members.is_empty() || g.state != State::Empty => {
                            ErrorCode::NonEmptyGroup
                        }
                        Some(_) => {
                            groups.remove(id.as_str());
                            ErrorCode::None
                        }
                    }
                };
                DeletableGroupResult {
                    group_id: id.clone(),
                    error_code: code.code(),
                    ..Default::default()
                }
            })
            .collect();
        DeleteGroupsResponse {
            results,
            ..Default::default()
        }
    }
}
