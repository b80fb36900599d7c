//! Property tests: every message in every version round-trips (random fields, tagged
//! fields and unknown tagged fields included), and its size is computed exactly.

#![allow(clippy::unwrap_used)]

use crate::error::{DecodeError, EncodeErrorKind};
use crate::messages::*;
use crate::protocol::{Decode, Encode, Message};
use crate::testing::{Fill, Rng};
use crate::wire::Decoder;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn encode_kind(len: usize, enc: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(len);
    enc(&mut buf);
    assert_eq!(buf.len(), len, "encoded_len must match what encode writes");
    buf.freeze()
}

fn check_request(api: ApiKey, version: i16, seed: u64) {
    let value = RequestKind::fill(api, &mut Rng::new(seed), version);
    let len = value.encoded_len(version).unwrap();
    let bytes = encode_kind(len, |b| value.encode(b, version).unwrap());
    let mut d = Decoder::new(&bytes);
    let back = RequestKind::decode(api, &mut d, version)
        .unwrap_or_else(|e| panic!("{api} v{version} seed {seed}: {e}"));
    assert!(
        d.is_empty(),
        "{api} v{version}: {} bytes left",
        d.remaining()
    );
    assert_eq!(back, value, "{api} v{version} seed {seed}");
    let again = encode_kind(len, |b| back.encode(b, version).unwrap());
    assert_eq!(again, bytes);
    check_truncations(&bytes, |d| RequestKind::decode(api, d, version).map(|_| ()));
}

fn check_response(api: ApiKey, version: i16, seed: u64) {
    let value = ResponseKind::fill(api, &mut Rng::new(seed), version);
    let len = value.encoded_len(version).unwrap();
    let bytes = encode_kind(len, |b| value.encode(b, version).unwrap());
    let mut d = Decoder::new(&bytes);
    let back = ResponseKind::decode(api, &mut d, version)
        .unwrap_or_else(|e| panic!("{api} v{version} seed {seed}: {e}"));
    assert!(d.is_empty());
    assert_eq!(back, value, "{api} v{version} seed {seed}");
    let again = encode_kind(len, |b| back.encode(b, version).unwrap());
    assert_eq!(again, bytes);
    check_truncations(&bytes, |d| {
        ResponseKind::decode(api, d, version).map(|_| ())
    });
}

/// Every strict prefix of a message fails cleanly (the message has no optional tail).
fn check_truncations(bytes: &Bytes, decode: impl Fn(&mut Decoder<'_>) -> Result<(), DecodeError>) {
    for cut in [0, 1, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut >= bytes.len() {
            continue;
        }
        let prefix = bytes.slice(..cut);
        let mut d = Decoder::new(&prefix);
        assert!(
            decode(&mut d).is_err(),
            "a {cut}-byte prefix of {} decoded",
            bytes.len()
        );
    }
}

fn check_message<M: Message + Fill>(seed: u64) {
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        let value = M::fill(&mut Rng::new(seed), version);
        let bytes = value.encode_to_bytes(version).unwrap();
        assert_eq!(bytes.len(), value.encoded_len(version).unwrap());
        let back = M::decode_bytes(&bytes, version).unwrap();
        assert_eq!(back, value, "{} v{version}", M::NAME);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_request_round_trips_in_every_version(seed in any::<u64>()) {
        for &api in ApiKey::ALL {
            let v = api.versions();
            for version in v.min..=v.max {
                check_request(api, version, seed);
            }
        }
    }

    #[test]
    fn every_response_round_trips_in_every_version(seed in any::<u64>()) {
        for &api in ApiKey::ALL {
            let v = api.versions();
            for version in v.min..=v.max {
                check_response(api, version, seed);
            }
        }
    }

    #[test]
    fn headers_and_data_schemas_round_trip(seed in any::<u64>()) {
        check_message::<RequestHeader>(seed);
        check_message::<ResponseHeader>(seed);
        check_message::<ConsumerProtocolSubscription>(seed);
        check_message::<ConsumerProtocolAssignment>(seed);
        check_message::<DefaultPrincipalData>(seed);
    }
}

#[test]
fn a_set_field_missing_from_the_version_is_an_error() {
    let req = ProduceRequest {
        transactional_id: Some("tx".into()),
        ..Default::default()
    };
    let err = req.encoded_len(2).unwrap_err();
    assert!(matches!(
        err.kind(),
        EncodeErrorKind::FieldNotInVersion { version: 2, .. }
    ));
    assert_eq!(
        err.to_string(),
        "encoding ProduceRequest v2.transactional_id: field has a non-default value but exists only in versions 3+, not in 2"
    );
    let mut buf = BytesMut::new();
    assert!(
        req.encode(&mut buf, 2).is_err(),
        "encode checks too, not only encoded_len"
    );
    // The default (null) is fine in every version.
    assert!(ProduceRequest::default().encoded_len(2).is_ok());
}

#[test]
fn a_null_where_the_version_allows_none_is_an_error() {
    // MetadataRequest topics are nullable from v1 only.
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let err = req.encoded_len(0).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            EncodeErrorKind::NullNotAllowed { version: 0, .. }
        ),
        "{err}"
    );
    assert!(req.encoded_len(1).is_ok());
}

#[test]
fn unknown_tagged_fields_in_a_non_flexible_version_are_an_error() {
    let mut req = MetadataRequest::default();
    req.unknown_tagged_fields
        .0
        .push((7, Bytes::from_static(b"x")));
    assert!(req.encoded_len(8).is_err());
    assert!(req.encoded_len(9).is_ok());
}

#[test]
fn versions_outside_the_range_are_rejected() {
    let err = ProduceRequest::default().encoded_len(12).unwrap_err();
    assert!(
        err.to_string()
            .contains("version 12 is not supported (valid versions 0-11)"),
        "{err}"
    );
    let empty = Bytes::new();
    let err = ProduceRequest::decode_bytes(&empty, -1).unwrap_err();
    assert!(err.to_string().contains("ProduceRequest"), "{err}");
}

#[test]
fn tagged_fields_are_written_only_when_set() {
    // FetchRequest v12+ has ClusterId (tag 0) and ReplicaState (tag 1), tagged.
    let plain = FetchRequest::default().encode_to_bytes(15).unwrap();
    let tagged = FetchRequest {
        cluster_id: Some("c".into()),
        ..Default::default()
    }
    .encode_to_bytes(15)
    .unwrap();
    assert!(tagged.len() > plain.len());
    let back = FetchRequest::decode_bytes(&tagged, 15).unwrap();
    assert_eq!(back.cluster_id.as_deref(), Some("c"));
}

#[test]
fn a_known_tag_sent_with_its_default_value_round_trips_and_yields_to_a_set_field() {
    // ApiVersionsResponse v3 with ZkMigrationReady (tag 3) sent explicitly as false.
    let mut wire = BytesMut::new();
    let plain = ApiVersionsResponse::default().encode_to_bytes(3).unwrap();
    wire.extend_from_slice(&plain[..plain.len() - 1]);
    wire.extend_from_slice(&[1, 3, 1, 0]); // one tagged field: tag 3, size 1, false
    let wire = wire.freeze();
    let decoded = ApiVersionsResponse::decode_bytes(&wire, 3).unwrap();
    assert!(!decoded.zk_migration_ready);
    assert_eq!(
        decoded.encode_to_bytes(3).unwrap(),
        wire,
        "re-encodes byte for byte"
    );

    let mut set = decoded.clone();
    set.zk_migration_ready = true;
    let bytes = set.encode_to_bytes(3).unwrap();
    assert_eq!(bytes.len(), set.encoded_len(3).unwrap());
    assert_eq!(
        &bytes[bytes.len() - 4..],
        &[1, 3, 1, 1],
        "the field replaces the raw copy"
    );
    assert!(
        ApiVersionsResponse::decode_bytes(&bytes, 3)
            .unwrap()
            .zk_migration_ready
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// A response filled for the newest version encodes in every version once
    /// `retain_version` has reset what that version lacks.
    #[test]
    fn retain_version_makes_any_value_encodable(seed in any::<u64>()) {
        for &api in ApiKey::ALL {
            let v = api.versions();
            let newest = ResponseKind::fill(api, &mut Rng::new(seed), v.max);
            let newest_req = RequestKind::fill(api, &mut Rng::new(seed), v.max);
            for version in v.min..=v.max {
                let mut r = newest.clone();
                r.retain_version(version);
                r.encoded_len(version).unwrap_or_else(|e| panic!("{api} v{version}: {e}"));
                let mut q = newest_req.clone();
                q.retain_version(version);
                q.encoded_len(version).unwrap_or_else(|e| panic!("{api} v{version}: {e}"));
            }
        }
    }
}
