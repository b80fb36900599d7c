//! Encodes a Metadata request frame, decodes it back as a broker would, and reads a
//! record batch: the codec on its own, with no network.
//!
//! Run with `cargo run -p kafka-protocol --example codec`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::Compression;
use kafka_protocol::frame::{decode_request, encode_request, frame_size, request_header};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::records::{decode_record_sets, DecodeOptions, Record, RecordBatch, RecordSet};
use kafka_protocol::{ApiKey, RequestKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A request frame: size prefix, header v2 (Metadata v12 is flexible), body.
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("orders".into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let header = request_header(ApiKey::Metadata, 12, 1, Some("example".into()));
    let mut buf = BytesMut::new();
    encode_request(&mut buf, &header, &request)?;
    println!("Metadata v12 request: {} bytes on the wire", buf.len());

    // What a broker (or a proxy) does with it: read the size, then the frame.
    let size = frame_size(&buf, 100 << 20)?.ok_or("incomplete")?;
    let frame: Bytes = buf.freeze().slice(4..4 + size);
    let (header, body) = decode_request(&frame)?;
    if let RequestKind::Metadata(m) = &body {
        let topics: Vec<_> = m
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.as_deref())
            .collect();
        println!(
            "decoded {} v{} asking for {topics:?}",
            body.api_key(),
            header.request_api_version
        );
    }

    // A record batch, compressed with zstd, and read back.
    let records = (0..3)
        .map(|i| Record {
            offset: i,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Vec::new(),
        })
        .collect();
    let mut batch = RecordBatch::new(0, records);
    batch.compression = Compression::Zstd;
    let mut out = BytesMut::new();
    batch.encode(&mut out)?;
    let sets = decode_record_sets(&out.freeze(), &DecodeOptions::default())?;
    for set in &sets.sets {
        if let RecordSet::Batch(b) = set {
            for r in &b.records {
                println!("offset {} value {:?}", r.offset, r.value);
            }
        }
    }
    Ok(())
}
