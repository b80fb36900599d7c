//! Each compression codec is behind the cargo feature of its name. With the feature
//! on, a batch compressed with the codec round-trips; with it off, writing such a
//! batch and reading one are errors that name the feature, never a panic.
//!
//! `cargo test -p kafka-protocol --test features` checks the default (every codec on);
//! scripts/test.sh also runs it with `--no-default-features`, so both sides of every
//! gate are exercised (and scripts/features.sh builds each codec alone).

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{decompress_lz4, Compression};
use kafka_protocol::records::{decode_record_sets, DecodeOptions, Record, RecordBatch, RecordSet};
use kafka_protocol::{DecodeErrorKind, EncodeErrorKind};

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Byte offset of a v2 batch's attributes: base offset, length, leader epoch, magic,
/// CRC.
const ATTRIBUTES_AT: usize = 8 + 4 + 4 + 1 + 4;

fn batch(compression: Compression) -> RecordBatch {
    let records = (0..3)
        .map(|i| Record {
            offset: i,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}").repeat(20))),
            headers: Vec::new(),
        })
        .collect();
    let mut b = RecordBatch::new(0, records);
    b.compression = compression;
    b
}

fn enabled_by_feature(c: Compression) -> bool {
    match c {
        Compression::None => true,
        Compression::Gzip => cfg!(feature = "gzip"),
        Compression::Snappy => cfg!(feature = "snappy"),
        Compression::Lz4 => cfg!(feature = "lz4"),
        Compression::Zstd => cfg!(feature = "zstd"),
    }
}

fn names_the_feature(message: &str, c: Compression) {
    let feature = format!("`{}` feature", c.name());
    assert!(message.contains(&feature), "{c}: {message}");
}

#[test]
fn is_enabled_follows_the_features() {
    assert!(Compression::None.is_enabled());
    for c in CODECS {
        assert_eq!(c.is_enabled(), enabled_by_feature(c), "{c}");
    }
}

#[test]
fn an_enabled_codec_round_trips_and_a_disabled_one_fails_to_write() {
    for c in CODECS {
        let b = batch(c);
        let mut out = BytesMut::new();
        let written = b.encode(&mut out);
        if c.is_enabled() {
            written.unwrap_or_else(|e| panic!("{c}: {e}"));
            let sets = decode_record_sets(&out.freeze(), &DecodeOptions::default())
                .unwrap_or_else(|e| panic!("{c}: {e}"));
            let [RecordSet::Batch(back)] = &sets.sets[..] else {
                panic!("{c}: {sets:?}");
            };
            assert_eq!(back.compression, c);
            assert_eq!(back.records, b.records);
        } else {
            let e = written.expect_err("a disabled codec must not encode");
            assert_eq!(e.kind(), &EncodeErrorKind::CodecNotEnabled(c));
            names_the_feature(&e.to_string(), c);
        }
    }
}

#[test]
fn a_disabled_codec_fails_to_read() {
    // An uncompressed batch relabelled with each codec (the CRC is not checked, so the
    // codec is the first thing to fail): with the codec on, decompression of bytes that
    // are not that codec's fails; with it off, the error names the feature.
    let mut plain = BytesMut::new();
    batch(Compression::None)
        .encode(&mut plain)
        .expect("an uncompressed batch encodes");
    let options = DecodeOptions::default().with_verify_crc(false);
    for c in CODECS {
        let mut relabelled = plain.to_vec();
        relabelled[ATTRIBUTES_AT + 1] |= c.code();
        let e = decode_record_sets(&Bytes::from(relabelled), &options)
            .expect_err("records that are not compressed cannot decompress");
        if c.is_enabled() {
            assert!(
                !matches!(e.kind(), DecodeErrorKind::CodecNotEnabled(_)),
                "{c}: {e}"
            );
        } else {
            assert_eq!(e.kind(), &DecodeErrorKind::CodecNotEnabled(c));
            names_the_feature(&e.to_string(), c);
        }
        let direct = c.decompress(b"not compressed", 1 << 20);
        assert_eq!(
            matches!(direct, Err(ref e) if e.kind() == &DecodeErrorKind::CodecNotEnabled(c)),
            !c.is_enabled(),
            "{c}: {direct:?}"
        );
    }
    let legacy = decompress_lz4(b"not lz4", 1 << 20, true);
    assert_eq!(
        matches!(legacy, Err(ref e) if e.kind() == &DecodeErrorKind::CodecNotEnabled(Compression::Lz4)),
        !Compression::Lz4.is_enabled()
    );
}
