//! Input: the `records` bytes of a Fetch or Produce partition (record batches and legacy
//! message sets in any mix).
//!
//! Decoded once with CRC checks off (so mutations get past the checksums) and once
//! with them on. Every decoded batch must re-encode and decode again to an equal batch;
//! every legacy message run, re-encoded uncompressed, must decode to equal messages.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::Compression;
use kafka_protocol::records::{decode_record_sets, DecodeOptions, RecordSet};
use libfuzzer_sys::fuzz_target;

fn round_trip(set: &RecordSet) {
    let mut buf = BytesMut::new();
    match set {
        RecordSet::Batch(b) => {
            if let Err(e) = b.encode(&mut buf) {
                panic!("decoded batch does not re-encode: {e}\n{b:?}");
            }
            let bytes = buf.freeze();
            let again = match decode_record_sets(&bytes, &DecodeOptions::default()) {
                Ok(s) => s,
                Err(e) => panic!("re-encoded batch does not decode: {e}\n{b:?}"),
            };
            assert!(!again.truncated, "re-encoded batch is truncated");
            assert_eq!(again.bytes_read, bytes.len());
            let [RecordSet::Batch(b2)] = &again.sets[..] else {
                panic!("re-encoded batch decodes to {:?}", again.sets);
            };
            assert_eq!(b2.records, b.records, "records round trip");
            assert_eq!(b2, b, "batch round trip");
        }
        RecordSet::Legacy(s) => {
            if let Err(e) = s.encode(&mut buf, Compression::None) {
                panic!("decoded message set does not re-encode: {e}\n{s:?}");
            }
            let bytes = buf.freeze();
            let again = match decode_record_sets(&bytes, &DecodeOptions::default()) {
                Ok(s) => s,
                Err(e) => panic!("re-encoded message set does not decode: {e}\n{s:?}"),
            };
            assert!(!again.truncated, "re-encoded message set is truncated");
            match &again.sets[..] {
                [] => assert!(s.messages.is_empty()),
                [RecordSet::Legacy(s2)] => assert_eq!(s2, s, "message set round trip"),
                other => panic!("re-encoded message set decodes to {other:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let unchecked = decode_record_sets(&bytes, &DecodeOptions::default().with_verify_crc(false));
    let checked = decode_record_sets(&bytes, &DecodeOptions::default());
    if let Ok(sets) = &unchecked {
        assert!(sets.bytes_read <= bytes.len());
        for set in &sets.sets {
            round_trip(set);
        }
    }
    if let Ok(sets) = &checked {
        // Whatever passes the checksums decodes the same without them.
        assert_eq!(unchecked.as_ref().ok(), Some(sets), "CRC check changed the result");
    }
});
