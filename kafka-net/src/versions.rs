//! Version negotiation: what a broker offers per API (from ApiVersions, or a fixed
//! table for brokers older than 0.10), and the version a request is sent in.

use crate::error::{Error, ErrorKind, Result};
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::{ApiKey, VersionRange};
use std::collections::BTreeMap;

/// The versions a broker offers, per API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTable {
    apis: BTreeMap<i16, VersionRange>,
}

impl VersionTable {
    /// A table from a broker's ApiVersions answer.
    pub fn from_response(r: &ApiVersionsResponse) -> Self {
        VersionTable {
            apis: r
                .api_keys
                .iter()
                .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
                .collect(),
        }
    }

    /// A table from explicit ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (ApiKey, VersionRange)>) -> Self {
        VersionTable {
            apis: ranges.into_iter().map(|(k, r)| (k.key(), r)).collect(),
        }
    }

    /// What Kafka 0.9.0 brokers serve (librdkafka's `broker.version.fallback=0.9.0`).
    pub fn kafka_0_9() -> Self {
        use ApiKey::*;
        let v = |a, b| VersionRange::new(a, b);
        Self::from_ranges([
            (Produce, v(0, 1)),
            (Fetch, v(0, 1)),
            (ListOffsets, v(0, 0)),
            (Metadata, v(0, 0)),
            (OffsetCommit, v(0, 2)),
            (OffsetFetch, v(0, 1)),
            (FindCoordinator, v(0, 0)),
            (JoinGroup, v(0, 0)),
            (Heartbeat, v(0, 0)),
            (LeaveGroup, v(0, 0)),
            (SyncGroup, v(0, 0)),
            (DescribeGroups, v(0, 0)),
            (ListGroups, v(0, 0)),
        ])
    }

    /// What Kafka 0.8.2 brokers serve (`broker.version.fallback=0.8.2`).
    pub fn kafka_0_8_2() -> Self {
        use ApiKey::*;
        let v = |a, b| VersionRange::new(a, b);
        Self::from_ranges([
            (Produce, v(0, 0)),
            (Fetch, v(0, 0)),
            (ListOffsets, v(0, 0)),
            (Metadata, v(0, 0)),
            (OffsetCommit, v(0, 1)),
            (OffsetFetch, v(0, 1)),
            (FindCoordinator, v(0, 0)),
        ])
    }

    /// The versions the broker offers for `api`, if any.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.apis.get(&api.key()).copied()
    }

    /// The highest version both this client and the broker support.
    pub fn version_for(&self, api: ApiKey) -> Result<i16> {
        let ours = api.versions();
        let theirs = self.broker_range(api);
        theirs
            .and_then(|t| t.intersect(&ours))
            .map(|r| r.max)
            .ok_or_else(|| {
                Error::new(ErrorKind::UnsupportedVersion {
                    api,
                    client: ours,
                    broker: theirs,
                })
            })
    }

    /// Caps an API at `max` (for tests and for working around broker bugs).
    pub fn cap(&mut self, api: ApiKey, max: i16) {
        if let Some(r) = self.apis.get_mut(&api.key()) {
            r.max = r.max.min(max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_shared_version() {
        let t = VersionTable::from_ranges([(ApiKey::Metadata, VersionRange::new(0, 99))]);
        assert_eq!(
            t.version_for(ApiKey::Metadata).unwrap(),
            ApiKey::Metadata.versions().max
        );
        let t = VersionTable::from_ranges([(ApiKey::Metadata, VersionRange::new(0, 4))]);
        assert_eq!(t.version_for(ApiKey::Metadata).unwrap(), 4);
    }

    #[test]
    fn no_shared_version_names_the_api_and_both_ranges() {
        let t = VersionTable::from_ranges([(ApiKey::Produce, VersionRange::new(20, 30))]);
        let e = t.version_for(ApiKey::Produce).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no version of Produce(0) is supported by both sides (client 0-11, broker 20-30)"
        );
        let e = t.version_for(ApiKey::Fetch).unwrap_err();
        assert!(e.to_string().contains("broker none"), "{e}");
    }
}
