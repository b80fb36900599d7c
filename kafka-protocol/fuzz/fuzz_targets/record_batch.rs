//! Input: the `records` bytes of a Fetch or Produce partition (record batches and legacy
//! message sets in any mix).
//!
//! Decoded once with CRC checks off (so mutations get past the checksums) and once
//! with them on. Every decoded batch must re-encode and decode again to an equal batch;
//! every legacy message run, re-encoded uncompressed, must decode to equal messages.
//! The header-only scans (`next_offset_after`, `leading_entries`) must agree with the
//! decoder, and the records decoded in two parts, split where `leading_entries` says
//! (as the consumer does), must be those decoded whole.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::Compression;
use kafka_protocol::records::{
    decode_record_sets, leading_entries, next_offset_after, DecodeOptions, Message, RecordBatch,
    RecordSet,
};
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

/// The batches and the legacy messages of decoded sets, each in order (a split may cut
/// a run of legacy messages into two sets).
fn flatten(sets: &[RecordSet]) -> (Vec<&RecordBatch>, Vec<&Message>) {
    let mut batches = Vec::new();
    let mut messages = Vec::new();
    for set in sets {
        match set {
            RecordSet::Batch(b) => batches.push(b),
            RecordSet::Legacy(s) => messages.extend(&s.messages),
        }
    }
    (batches, messages)
}

fn scans_agree(bytes: &Bytes) {
    let whole = leading_entries(bytes, usize::MAX);
    assert_eq!(whole.map(|(_, next)| next), next_offset_after(bytes));
    for limit in [0, 1, bytes.len() / 3, bytes.len() / 2, usize::MAX] {
        let Some((len, next)) = leading_entries(bytes, limit) else {
            assert!(whole.is_none(), "a limit made the first entry vanish");
            continue;
        };
        assert!(len > 0 && len <= bytes.len(), "part of {len} bytes");
        assert!(len <= limit || leading_entries(bytes, 0) == Some((len, next)));
        let options = DecodeOptions::default().with_verify_crc(false);
        let Ok(all) = decode_record_sets(bytes, &options) else {
            continue;
        };
        // What decodes whole decodes in parts.
        let first = decode_record_sets(&bytes.slice(..len), &options).expect("first part");
        let rest = decode_record_sets(&bytes.slice(len..), &options).expect("rest");
        assert_eq!(first.bytes_read, len, "the part is whole entries");
        let mut parts = first.sets.clone();
        parts.extend(rest.sets.iter().cloned());
        assert_eq!(flatten(&parts), flatten(&all.sets), "split at {len}");
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let unchecked = decode_record_sets(&bytes, &DecodeOptions::default().with_verify_crc(false));
    let checked = decode_record_sets(&bytes, &DecodeOptions::default());
    scans_agree(&bytes);
    if let Ok(sets) = &unchecked {
        assert!(sets.bytes_read <= bytes.len());
        // The header scan finds the same whole entries as the decoder.
        let scanned = leading_entries(&bytes, usize::MAX).map_or(0, |(len, _)| len);
        assert_eq!(scanned, sets.bytes_read, "header scan vs decoder");
        for set in &sets.sets {
            round_trip(set);
        }
    }
    if let Ok(sets) = &checked {
        // Whatever passes the checksums decodes the same without them.
        assert_eq!(
            unchecked.as_ref().ok(),
            Some(sets),
            "CRC check changed the result"
        );
    }
});
