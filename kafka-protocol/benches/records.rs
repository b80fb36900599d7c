//! Record batch encode and decode throughput, per codec, and CRC-32C throughput.
//!
//! The batch is 1,000 records with short keys (`key-0` .. `key-999`) and 100-byte values
//! of text-like data. Throughput is counted in bytes of record data (keys plus values),
//! not in encoded bytes, so codecs compare on the same footing.
//!
//! Run: `cargo bench -p kafka-protocol --bench records -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::compression::Compression;
use kafka_protocol::records::{
    decode_record_sets, DecodeOptions, Record, RecordBatch, RecordBatchWriter,
};
use kafka_protocol::wire::Decoder;

const RECORDS: usize = 1000;
const VALUE_LEN: usize = 100;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Text-like values: words from a small vocabulary picked by a fixed pseudo-random
/// sequence, so compression ratios are realistic rather than trivial.
fn value(seed: &mut u64) -> Bytes {
    const WORDS: [&str; 16] = [
        "order",
        "user",
        "id",
        "amount",
        "currency",
        "EUR",
        "status",
        "shipped",
        "created",
        "2024-05-01T12:00:00Z",
        "sku",
        "warehouse",
        "north",
        "priority",
        "true",
        "false",
    ];
    let mut v = Vec::with_capacity(VALUE_LEN + 24);
    while v.len() < VALUE_LEN {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        v.extend_from_slice(WORDS[(*seed % 16) as usize].as_bytes());
        v.push(b' ');
    }
    v.truncate(VALUE_LEN);
    Bytes::from(v)
}

fn batch(compression: Compression) -> (RecordBatch, u64) {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(value(&mut seed)),
            headers: Vec::new(),
        })
        .collect();
    let data: usize = records
        .iter()
        .map(|r| r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len))
        .sum();
    let mut b = RecordBatch::new(0, records);
    b.compression = compression;
    (b, data as u64)
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for codec in CODECS {
        let (b, data) = batch(codec);
        group.throughput(Throughput::Bytes(data));
        let mut buf = BytesMut::with_capacity(b.encoded_len() * 2);
        group.bench_function(codec.name(), |bench| {
            bench.iter(|| {
                buf.clear();
                b.encode(&mut buf).unwrap();
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

/// The producer's path: records appended one at a time into a batch's wire form
/// (`RecordBatchWriter::append`), without keys, as the producer benchmark sends them:
/// 1,000 text-like values of 100 B, and 1,000 of 1 KiB.
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let small: Vec<Bytes> = (0..RECORDS).map(|_| value(&mut seed)).collect();
    let large: Vec<Bytes> = small
        .iter()
        .map(|v| {
            v.iter()
                .copied()
                .cycle()
                .take(1024)
                .collect::<Vec<u8>>()
                .into()
        })
        .collect();
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, values) in [
        ("1,000 records of 100 B", &small),
        ("1,000 records of 1 KiB", &large),
    ] {
        let room: usize = values.iter().map(|v| v.len() + 16).sum();
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let mut writer = RecordBatchWriter::with_capacity(room);
                for (i, v) in values.iter().enumerate() {
                    writer
                        .append(1_700_000_000_000 + i as i64, None, Some(v), &[])
                        .unwrap();
                }
                black_box(writer.len())
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let opts = DecodeOptions::default();
    for codec in CODECS {
        let (b, data) = batch(codec);
        let mut buf = BytesMut::new();
        b.encode(&mut buf).unwrap();
        let bytes = buf.freeze();
        eprintln!(
            "{}: {data} bytes of record data encode to {} bytes",
            codec.name(),
            bytes.len()
        );
        group.throughput(Throughput::Bytes(data));
        group.bench_function(codec.name(), |bench| {
            bench.iter(|| {
                let batch = RecordBatch::decode(&mut Decoder::new(&bytes), &opts).unwrap();
                black_box(batch.records.len())
            })
        });
    }
    // The same uncompressed batch without the CRC check, and through the entry point
    // a consumer uses for a fetched partition.
    let (b, data) = batch(Compression::None);
    let mut buf = BytesMut::new();
    b.encode(&mut buf).unwrap();
    let bytes = buf.freeze();
    group.throughput(Throughput::Bytes(data));
    let no_crc = DecodeOptions::default().with_verify_crc(false);
    group.bench_function("none, no CRC check", |bench| {
        bench.iter(|| {
            let batch = RecordBatch::decode(&mut Decoder::new(&bytes), &no_crc).unwrap();
            black_box(batch.records.len())
        })
    });
    group.bench_function("none, decode_record_sets", |bench| {
        bench.iter(|| black_box(decode_record_sets(&bytes, &opts).unwrap().sets.len()))
    });
    group.finish();
}

fn crc(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    let data = vec![0xA5u8; 1 << 20];
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("1 MiB", |bench| {
        bench.iter(|| black_box(crc32c::crc32c(&data)))
    });
    group.finish();
}

criterion_group!(benches, encode, append, decode, crc);
criterion_main!(benches);
