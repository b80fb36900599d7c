//! Golden tests from real traffic: frames captured between independent clients
//! (librdkafka through confluent-kafka, and kafka-python) and a real broker (Tansu)
//! decode and re-encode byte for byte, and the record batches librdkafka wrote with
//! each codec decode to the records it was given. See `tests/golden/README.md`.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::Compression;
use kafka_protocol::frame::{
    decode_request, decode_response_kind, encode_request_kind, encode_response_kind,
};
use kafka_protocol::messages::{FetchResponse, ProduceRequest};
use kafka_protocol::records::{decode_record_sets, DecodeOptions, RecordSet};
use kafka_protocol::{ApiKey, RequestKind, ResponseKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};

struct Frame {
    request: bool,
    conn: u32,
    bytes: Bytes,
}

fn read_capture(name: &str) -> Vec<Frame> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw = Bytes::from(raw);
    let mut frames = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let dir = raw[at];
        let conn = u32::from_be_bytes(raw[at + 1..at + 5].try_into().unwrap());
        let len = u32::from_be_bytes(raw[at + 5..at + 9].try_into().unwrap()) as usize;
        let bytes = raw.slice(at + 9..at + 9 + len);
        assert!(dir == b'>' || dir == b'<', "bad direction byte at {at}");
        frames.push(Frame {
            request: dir == b'>',
            conn,
            bytes,
        });
        at += 9 + len;
    }
    frames
}

/// A decoded capture: requests and responses paired, each checked to re-encode exactly.
struct Decoded {
    versions: BTreeMap<ApiKey, BTreeSet<i16>>,
    requests: Vec<(i16, RequestKind)>,
    responses: Vec<(i16, ResponseKind)>,
}

fn with_prefix(frame: &Bytes) -> BytesMut {
    let mut expected = BytesMut::new();
    expected.extend_from_slice(&(frame.len() as i32).to_be_bytes());
    expected.extend_from_slice(frame);
    expected
}

fn decode_capture(name: &str) -> Decoded {
    let mut pending: HashMap<(u32, i32), (ApiKey, i16)> = HashMap::new();
    let mut out = Decoded {
        versions: BTreeMap::new(),
        requests: Vec::new(),
        responses: Vec::new(),
    };
    for (i, f) in read_capture(name).into_iter().enumerate() {
        if f.request {
            let (header, body) =
                decode_request(&f.bytes).unwrap_or_else(|e| panic!("{name} frame {i}: {e}"));
            let api = body.api_key();
            let version = header.request_api_version;
            let mut again = BytesMut::new();
            encode_request_kind(&mut again, &header, &body).unwrap();
            assert_eq!(
                again,
                with_prefix(&f.bytes),
                "{name} frame {i}: {api} v{version} request re-encodes differently"
            );
            pending.insert((f.conn, header.correlation_id), (api, version));
            out.versions.entry(api).or_default().insert(version);
            out.requests.push((version, body));
        } else {
            let corr = kafka_protocol::frame::peek_correlation_id(&f.bytes).unwrap();
            let (api, version) = pending
                .remove(&(f.conn, corr))
                .unwrap_or_else(|| panic!("{name} frame {i}: response to no request"));
            let (header, body) = decode_response_kind(&f.bytes, api, version)
                .unwrap_or_else(|e| panic!("{name} frame {i}: {api} v{version} response: {e}"));
            let mut again = BytesMut::new();
            encode_response_kind(&mut again, &header, version, &body).unwrap();
            assert_eq!(
                again,
                with_prefix(&f.bytes),
                "{name} frame {i}: {api} v{version} response re-encodes differently"
            );
            out.responses.push((version, body));
        }
    }
    out
}

const REQUIRED: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
];

fn codec(name: &str) -> Compression {
    match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => panic!("unknown codec {other}"),
    }
}

/// Checks every record in `records` against what the capture script produced, and
/// collects (codec, index) of each.
fn check_records(records: &Bytes, seen: &mut BTreeSet<(String, i64)>) {
    let sets = decode_record_sets(records, &DecodeOptions::default()).unwrap();
    assert!(!sets.truncated, "captured record data is complete");
    for set in sets.sets {
        let RecordSet::Batch(batch) = set else {
            panic!("librdkafka writes record batches v2");
        };
        for r in &batch.records {
            let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
            let (name, i) = key.strip_prefix("key-").unwrap().rsplit_once('-').unwrap();
            let i: i64 = i.parse().unwrap();
            assert_eq!(batch.compression, codec(name), "batch codec of {key}");
            assert_eq!(
                r.value.as_deref().unwrap(),
                format!("value-{name}-{i}").as_bytes()
            );
            assert_eq!(r.timestamp, 1_700_000_000_000 + i, "timestamp of {key}");
            assert_eq!(r.headers.len(), 1);
            assert_eq!(r.headers[0].key, "h");
            assert_eq!(r.headers[0].value.as_deref().unwrap(), name.as_bytes());
            seen.insert((name.to_string(), i));
        }
    }
}

fn all_records(codecs: &[&str]) -> BTreeSet<(String, i64)> {
    codecs
        .iter()
        .flat_map(|c| (0..20).map(move |i| (c.to_string(), i)))
        .collect()
}

/// (codec, index) of records seen.
type Seen = BTreeSet<(String, i64)>;

fn produced_and_fetched(d: &Decoded) -> (Seen, Seen) {
    let mut produced = BTreeSet::new();
    for (_, req) in &d.requests {
        if let RequestKind::Produce(ProduceRequest { topic_data, .. }) = req {
            for t in topic_data {
                for p in &t.partition_data {
                    check_records(p.records.as_ref().unwrap(), &mut produced);
                }
            }
        }
    }
    let mut fetched = BTreeSet::new();
    for (_, resp) in &d.responses {
        if let ResponseKind::Fetch(FetchResponse { responses, .. }) = resp {
            for t in responses {
                for p in &t.partitions {
                    if let Some(records) = &p.records {
                        check_records(records, &mut fetched);
                    }
                }
            }
        }
    }
    (produced, fetched)
}

#[test]
fn librdkafka_traffic_round_trips_byte_for_byte() {
    let d = decode_capture("librdkafka-tansu.kcap");
    for api in REQUIRED {
        assert!(d.versions.contains_key(api), "capture lacks {api}");
    }
    assert!(d.requests.len() > 50 && d.responses.len() == d.requests.len());
}

#[test]
fn kafka_python_traffic_round_trips_byte_for_byte() {
    let d = decode_capture("kafka-python-tansu.kcap");
    for api in REQUIRED {
        assert!(d.versions.contains_key(api), "capture lacks {api}");
    }
}

#[test]
fn librdkafka_batches_decode_to_the_records_written_with_each_codec() {
    let d = decode_capture("librdkafka-tansu.kcap");
    let (produced, fetched) = produced_and_fetched(&d);
    let expected = all_records(&["none", "gzip", "snappy", "lz4", "zstd"]);
    assert_eq!(produced, expected, "records librdkafka produced");
    assert_eq!(fetched, expected, "records the broker returned in fetches");
}

#[test]
fn kafka_python_batches_decode_to_the_records_written() {
    let d = decode_capture("kafka-python-tansu.kcap");
    let (produced, fetched) = produced_and_fetched(&d);
    let expected = all_records(&["none", "gzip"]);
    assert_eq!(produced, expected);
    assert_eq!(fetched, expected);
}
