//! The embedded `consumer` protocol: what a member puts in JoinGroup's protocol metadata
//! ([`Subscription`]) and what the leader hands each member in SyncGroup
//! ([`Assignment`]).
//!
//! Both are encoded as the Java client's `ConsumerProtocol` encodes them: an `int16`
//! version followed by `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` in
//! that version (versions 0-3, never flexible).
//!
//! | Version | Subscription adds |
//! |---------|-------------------|
//! | 0 | topics, user data |
//! | 1 | owned partitions |
//! | 2 | generation |
//! | 3 | rack |
//!
//! The assignment has the same fields in every version. Current Java clients and
//! librdkafka send version 3; the cooperative-sticky assignor needs owned partitions
//! and the generation, so version 2 at least.
//!
//! Decoding follows Java too: a version newer than 3 is read as version 3 (newer
//! versions may only append fields), and bytes after the last known field are ignored
//! in every version. A negative version is an error.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::wire::Decoder;
use kafka_protocol::{Decode, DecodeError, DecodeErrorKind, Encode, EncodeError, StrBytes};
use std::collections::BTreeMap;

/// The highest version of the consumer protocol this crate knows (and encodes by
/// default), as in the Java client 3.x and librdkafka 2.x.
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// The protocol type a consumer group uses in JoinGroup (`"consumer"`).
pub const PROTOCOL_TYPE: &str = "consumer";

/// A member's subscription: the metadata of one protocol (assignor) in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topics the member wants to consume. Encoded sorted and without duplicates, as
    /// Java does.
    pub topics: Vec<String>,
    /// Assignor-specific data (the sticky assignors' previous assignment, sarama's
    /// stable data); `None` is null on the wire.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (topic → partitions); versions 1+. Encoded
    /// sorted by topic then partition.
    pub owned_partitions: BTreeMap<String, Vec<i32>>,
    /// The generation the owned partitions were assigned in, -1 when unknown (the
    /// default, and what versions 0 and 1 decode to); versions 2+.
    pub generation: i32,
    /// The member's rack (`client.rack`); versions 3+. An empty rack decodes as `None`,
    /// as in Java.
    pub rack: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: BTreeMap::new(),
            generation: -1,
            rack: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` with nothing else set.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Subscription::default()
        }
    }

    /// Encodes the subscription in `version` (a version prefix, then the struct). Fields
    /// the version lacks are dropped: owned partitions before 1, the generation before
    /// 2, the rack before 3. A version above 3 is written as 3 and one below 0 as 0.
    ///
    /// # Panics
    ///
    /// When a string is longer than 32767 bytes (Kafka topic names have at most 249
    /// characters) or the user data longer than `i32::MAX` bytes; see
    /// [`try_encode`](Self::try_encode).
    pub fn encode(&self, version: i16) -> Bytes {
        match self.try_encode(version) {
            Ok(bytes) => bytes,
            Err(e) => panic!("consumer protocol subscription cannot be encoded: {e}"),
        }
    }

    /// [`encode`](Self::encode), with an error instead of a panic for strings or
    /// user data too long for the wire.
    pub fn try_encode(&self, version: i16) -> Result<Bytes, EncodeError> {
        let version = clamp_version(version);
        let mut topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        topics.sort_unstable();
        topics.dedup();
        let mut data = ConsumerProtocolSubscription {
            topics: topics
                .into_iter()
                .map(|t| StrBytes::from(t.to_owned()))
                .collect(),
            user_data: self.user_data.clone(),
            owned_partitions: self
                .owned_partitions
                .iter()
                .filter(|(_, partitions)| !partitions.is_empty())
                .map(|(topic, partitions)| {
                    let mut partitions = partitions.clone();
                    partitions.sort_unstable();
                    partitions.dedup();
                    OwnedTopic {
                        topic: StrBytes::from(topic),
                        partitions,
                    }
                })
                .collect(),
            generation_id: self.generation,
            rack_id: self.rack.as_ref().map(StrBytes::from),
        };
        data.retain_version(version);
        prefixed(version, &data)
    }

    /// Decodes a subscription: the version prefix, then the struct in that version
    /// (in version 3 when the prefix is newer). Bytes after the struct are ignored.
    pub fn decode(bytes: &Bytes) -> Result<Subscription, DecodeError> {
        let mut d = Decoder::new(bytes);
        let version =
            read_version(&mut d).map_err(|e| e.within("consumer protocol subscription"))?;
        let data = ConsumerProtocolSubscription::decode(&mut d, version)?;
        Ok(Subscription {
            topics: data.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            user_data: data.user_data,
            owned_partitions: group(
                data.owned_partitions
                    .into_iter()
                    .map(|tp| (tp.topic, tp.partitions)),
            ),
            generation: data.generation_id,
            rack: data
                .rack_id
                .filter(|r| !r.is_empty())
                .map(|r| r.as_str().to_owned()),
        })
    }
}

/// What the leader assigns one member: the SyncGroup assignment of the `consumer`
/// protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Assigned partitions, topic → partitions. Topics with no partitions are not
    /// encoded.
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Assignor-specific data; `None` is null on the wire.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// Encodes the assignment in `version` (a version prefix, then the struct; the
    /// fields are the same in every version). A version above 3 is written as 3 and one
    /// below 0 as 0.
    ///
    /// # Panics
    ///
    /// When a topic name is longer than 32767 bytes or the user data longer than
    /// `i32::MAX` bytes; see [`try_encode`](Self::try_encode).
    pub fn encode(&self, version: i16) -> Bytes {
        match self.try_encode(version) {
            Ok(bytes) => bytes,
            Err(e) => panic!("consumer protocol assignment cannot be encoded: {e}"),
        }
    }

    /// [`encode`](Self::encode), with an error instead of a panic.
    pub fn try_encode(&self, version: i16) -> Result<Bytes, EncodeError> {
        let version = clamp_version(version);
        let mut data = ConsumerProtocolAssignment {
            assigned_partitions: self
                .partitions
                .iter()
                .filter(|(_, partitions)| !partitions.is_empty())
                .map(|(topic, partitions)| AssignedTopic {
                    topic: StrBytes::from(topic),
                    partitions: partitions.clone(),
                })
                .collect(),
            user_data: self.user_data.clone(),
        };
        data.retain_version(version);
        prefixed(version, &data)
    }

    /// Decodes an assignment: the version prefix, then the struct in that version (in
    /// version 3 when the prefix is newer). Bytes after the struct are ignored. A
    /// topic listed twice has its partitions merged.
    pub fn decode(bytes: &Bytes) -> Result<Assignment, DecodeError> {
        let mut d = Decoder::new(bytes);
        let version = read_version(&mut d).map_err(|e| e.within("consumer protocol assignment"))?;
        let data = ConsumerProtocolAssignment::decode(&mut d, version)?;
        Ok(Assignment {
            partitions: group(
                data.assigned_partitions
                    .into_iter()
                    .map(|tp| (tp.topic, tp.partitions)),
            ),
            user_data: data.user_data,
        })
    }
}

fn clamp_version(version: i16) -> i16 {
    version.clamp(0, CONSUMER_PROTOCOL_VERSION)
}

fn prefixed<M: Encode>(version: i16, data: &M) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(2 + data.encoded_len(version)?);
    buf.put_i16(version);
    data.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads the version prefix; newer versions are read as the newest known one.
fn read_version(d: &mut Decoder<'_>) -> Result<i16, DecodeError> {
    let version = d.i16().map_err(|e| e.within("version"))?;
    if version < 0 {
        return Err(DecodeError::new(DecodeErrorKind::UnsupportedVersion {
            version,
            min: 0,
            max: CONSUMER_PROTOCOL_VERSION,
        }));
    }
    Ok(version.min(CONSUMER_PROTOCOL_VERSION))
}

fn group(items: impl Iterator<Item = (StrBytes, Vec<i32>)>) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partitions) in items {
        out.entry(topic.as_str().to_owned())
            .or_default()
            .extend(partitions);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand::{Rng, SeedableRng};

    fn full() -> Subscription {
        Subscription {
            topics: vec!["t0".into(), "t1".into()],
            user_data: Some(Bytes::from_static(b"\x01\x02\x03")),
            owned_partitions: BTreeMap::from([
                ("t0".to_owned(), vec![0, 2]),
                ("t1".to_owned(), vec![1]),
            ]),
            generation: 7,
            rack: Some("rack-a".into()),
        }
    }

    /// `full()` as `version` can carry it.
    fn full_in(version: i16) -> Subscription {
        let mut s = full();
        if version < 1 {
            s.owned_partitions.clear();
        }
        if version < 2 {
            s.generation = -1;
        }
        if version < 3 {
            s.rack = None;
        }
        s
    }

    fn put_str(b: &mut Vec<u8>, s: &str) {
        b.extend_from_slice(&(s.len() as i16).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }

    fn put_i32(b: &mut Vec<u8>, v: i32) {
        b.extend_from_slice(&v.to_be_bytes());
    }

    /// The documented layout of `full()` in `version`, written by hand.
    fn full_by_hand(version: i16) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        put_i32(&mut b, 2);
        put_str(&mut b, "t0");
        put_str(&mut b, "t1");
        put_i32(&mut b, 3);
        b.extend_from_slice(&[1, 2, 3]);
        if version >= 1 {
            put_i32(&mut b, 2);
            put_str(&mut b, "t0");
            put_i32(&mut b, 2);
            put_i32(&mut b, 0);
            put_i32(&mut b, 2);
            put_str(&mut b, "t1");
            put_i32(&mut b, 1);
            put_i32(&mut b, 1);
        }
        if version >= 2 {
            put_i32(&mut b, 7);
        }
        if version >= 3 {
            put_str(&mut b, "rack-a");
        }
        b
    }

    #[test]
    fn subscription_round_trips_in_every_version() {
        for version in 0..=3 {
            let bytes = full().encode(version);
            assert_eq!(&bytes[..2], &version.to_be_bytes());
            assert_eq!(
                Subscription::decode(&bytes).unwrap(),
                full_in(version),
                "v{version}"
            );
        }
        for version in 0..=3 {
            let empty = Subscription::default();
            assert_eq!(Subscription::decode(&empty.encode(version)).unwrap(), empty);
        }
    }

    #[test]
    fn subscription_matches_the_documented_layout() {
        for version in 0..=3 {
            let hand = Bytes::from(full_by_hand(version));
            assert_eq!(full().encode(version), hand, "encode v{version}");
            assert_eq!(
                Subscription::decode(&hand).unwrap(),
                full_in(version),
                "decode v{version}"
            );
        }
    }

    #[test]
    fn subscription_v0_by_hand_with_null_user_data() {
        let mut b = 0i16.to_be_bytes().to_vec();
        put_i32(&mut b, 1);
        put_str(&mut b, "orders");
        put_i32(&mut b, -1);
        let s = Subscription::decode(&Bytes::from(b.clone())).unwrap();
        assert_eq!(s, Subscription::new(["orders"]));
        assert_eq!(s.encode(0), Bytes::from(b));
    }

    #[test]
    fn subscription_v3_null_and_empty_rack() {
        let mut s = Subscription::new(["a"]);
        let bytes = s.encode(3);
        // Null rack: int16 -1 at the end.
        assert_eq!(&bytes[bytes.len() - 2..], &[0xff, 0xff]);
        assert_eq!(Subscription::decode(&bytes).unwrap().rack, None);
        s.rack = Some(String::new());
        let bytes = s.encode(3);
        assert_eq!(&bytes[bytes.len() - 2..], &[0, 0]);
        assert_eq!(Subscription::decode(&bytes).unwrap().rack, None);
    }

    #[test]
    fn subscription_encodes_sorted_like_java() {
        let s = Subscription {
            topics: vec!["b".into(), "a".into(), "b".into()],
            owned_partitions: BTreeMap::from([
                ("b".to_owned(), vec![3, 1, 3]),
                ("a".to_owned(), vec![]),
            ]),
            ..Subscription::default()
        };
        let back = Subscription::decode(&s.encode(1)).unwrap();
        assert_eq!(back.topics, vec!["a", "b"]);
        assert_eq!(
            back.owned_partitions,
            BTreeMap::from([("b".to_owned(), vec![1, 3])])
        );
    }

    #[test]
    fn versions_out_of_range_are_clamped_when_encoding() {
        assert_eq!(full().encode(9), full().encode(3));
        assert_eq!(full().encode(-4), full().encode(0));
        let a = Assignment::default();
        assert_eq!(a.encode(5), a.encode(3));
    }

    #[test]
    fn newer_versions_decode_as_v3_ignoring_appended_fields() {
        for version in [4i16, 5, 100, i16::MAX] {
            let mut b = full_by_hand(3);
            b[..2].copy_from_slice(&version.to_be_bytes());
            // A field a future version might append.
            put_i32(&mut b, 42);
            put_str(&mut b, "future");
            assert_eq!(
                Subscription::decode(&Bytes::from(b)).unwrap(),
                full(),
                "v{version}"
            );

            let mut b = version.to_be_bytes().to_vec();
            b.extend_from_slice(&assignment().encode(3)[2..]);
            b.extend_from_slice(&[0xde, 0xad]);
            assert_eq!(Assignment::decode(&Bytes::from(b)).unwrap(), assignment());
        }
    }

    #[test]
    fn trailing_bytes_are_ignored_in_known_versions_too() {
        let mut b = full_by_hand(1);
        b.extend_from_slice(&[0, 0, 0, 9]);
        assert_eq!(Subscription::decode(&Bytes::from(b)).unwrap(), full_in(1));
    }

    fn assignment() -> Assignment {
        Assignment {
            partitions: BTreeMap::from([("t0".to_owned(), vec![0, 1]), ("t1".to_owned(), vec![2])]),
            user_data: Some(Bytes::from_static(b"ud")),
        }
    }

    #[test]
    fn assignment_round_trips_in_every_version() {
        for version in 0..=3 {
            let bytes = assignment().encode(version);
            assert_eq!(&bytes[..2], &version.to_be_bytes());
            assert_eq!(Assignment::decode(&bytes).unwrap(), assignment());
            let empty = Assignment::default();
            assert_eq!(Assignment::decode(&empty.encode(version)).unwrap(), empty);
        }
    }

    #[test]
    fn assignment_matches_the_documented_layout() {
        for version in 0..=3i16 {
            let mut b = version.to_be_bytes().to_vec();
            put_i32(&mut b, 2);
            put_str(&mut b, "t0");
            put_i32(&mut b, 2);
            put_i32(&mut b, 0);
            put_i32(&mut b, 1);
            put_str(&mut b, "t1");
            put_i32(&mut b, 1);
            put_i32(&mut b, 2);
            put_i32(&mut b, 2);
            b.extend_from_slice(b"ud");
            let b = Bytes::from(b);
            assert_eq!(assignment().encode(version), b);
            assert_eq!(Assignment::decode(&b).unwrap(), assignment());
        }
    }

    #[test]
    fn assignment_merges_a_topic_listed_twice() {
        let mut b = 0i16.to_be_bytes().to_vec();
        put_i32(&mut b, 2);
        for p in [4, 1] {
            put_str(&mut b, "t");
            put_i32(&mut b, 1);
            put_i32(&mut b, p);
        }
        put_i32(&mut b, -1);
        let a = Assignment::decode(&Bytes::from(b)).unwrap();
        assert_eq!(a.partitions, BTreeMap::from([("t".to_owned(), vec![4, 1])]));
        assert_eq!(a.user_data, None);
    }

    #[test]
    fn empty_truncated_and_garbage_bytes_are_errors() {
        let cases: Vec<&[u8]> = vec![
            &[],
            &[0],
            &[0xff, 0xff],                                                 // version -1
            &[0x80, 0x00, 0, 0, 0, 0],                                     // version -32768
            &[0, 0],                                                       // no topics array
            &[0, 0, 0xff, 0xff, 0xff, 0xff],                               // null topics array
            &[0, 0, 0, 0, 0, 5],                                           // 5 topics, no bytes
            &[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a'],                   // huge array
            &[0, 0, 0, 0, 0, 1, 0, 2, 0xc3, 0x28, 0xff, 0xff, 0xff, 0xff], // bad UTF-8
            &[0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // v1 without owned partitions
        ];
        for case in cases {
            let bytes = Bytes::copy_from_slice(case);
            assert!(Subscription::decode(&bytes).is_err(), "{case:?}");
        }
        for case in [&[][..], &[0], &[0xff, 0xfe], &[0, 0], &[0, 0, 0, 0, 0, 1]] {
            assert!(
                Assignment::decode(&Bytes::copy_from_slice(case)).is_err(),
                "{case:?}"
            );
        }
        let err = Subscription::decode(&Bytes::from_static(&[0xff, 0xff])).unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::UnsupportedVersion { version: -1, .. }
        ));
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let valid = [full().encode(3), assignment().encode(3)];
        for i in 0..20_000 {
            let bytes = if i % 2 == 0 {
                let len = rng.gen_range(0..64);
                Bytes::from((0..len).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>())
            } else {
                let mut b = valid[i % 4 / 2].to_vec();
                let at = rng.gen_range(0..b.len());
                b[at] = rng.gen();
                b.truncate(rng.gen_range(0..=b.len()));
                Bytes::from(b)
            };
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }
    }
}
