//! A Produce request frame in segments: the frame's own fields are written into small
//! buffers and each partition's records are referenced, not copied, so a producer can
//! keep a batch's bytes for retries and put the same bytes on the wire (the Java
//! client's gathering write of its batches' buffers).

use super::*;
use crate::messages::support::put_unknown_tagged;
use crate::messages::ProduceRequest;
use crate::types::UnknownTaggedFields;
use crate::wire::{put_bytes, put_len_prefix, put_string, put_uvarint};

/// Records shorter than this are copied into the segment before them (a segment of
/// their own would cost more to write than the copy).
pub const SEGMENT_MIN: usize = 4096;

/// The frame [`encode_request`] writes for `request`, as segments whose concatenation
/// is that frame, byte for byte: records of at least [`SEGMENT_MIN`] bytes are segments
/// of their own (the same `Bytes`, not a copy), everything else is in the segments
/// between them.
pub fn encode_produce_request_segments(
    header: &RequestHeader,
    request: &ProduceRequest,
) -> Result<Vec<Bytes>, EncodeError> {
    let version = header.request_api_version;
    // Checks the version and every field against it, as `encode_request` does.
    let body_len = request.encoded_len(version)?;
    let hv = ApiKey::Produce.request_header_version(version);
    let size = header.encoded_len(hv)? + body_len;
    let size_i32 = i32::try_from(size).map_err(|_| {
        EncodeError::new(crate::error::EncodeErrorKind::TooLong(size)).within("frame")
    })?;
    let flexible = version >= 9;
    let mut segments = Vec::new();
    let mut head = BytesMut::with_capacity(256);
    head.put_i32(size_i32);
    header.encode(&mut head, hv)?;
    let within = |e: EncodeError| e.within(format!("ProduceRequest v{version}"));
    if version >= 3 {
        put_string(&mut head, request.transactional_id.as_deref(), flexible).map_err(within)?;
    }
    head.put_i16(request.acks);
    head.put_i32(request.timeout_ms);
    put_len_prefix(&mut head, Some(request.topic_data.len()), flexible, true).map_err(within)?;
    for topic in &request.topic_data {
        put_string(&mut head, Some(topic.name.as_str()), flexible).map_err(within)?;
        put_len_prefix(&mut head, Some(topic.partition_data.len()), flexible, true)
            .map_err(within)?;
        for partition in &topic.partition_data {
            head.put_i32(partition.index);
            match &partition.records {
                Some(records) if records.len() >= SEGMENT_MIN => {
                    put_len_prefix(&mut head, Some(records.len()), flexible, true)
                        .map_err(within)?;
                    segments.push(head.split().freeze());
                    segments.push(records.clone());
                }
                records => put_bytes(&mut head, records.as_deref(), flexible).map_err(within)?,
            }
            put_tagged(&mut head, &partition.unknown_tagged_fields, flexible);
        }
        put_tagged(&mut head, &topic.unknown_tagged_fields, flexible);
    }
    put_tagged(&mut head, &request.unknown_tagged_fields, flexible);
    if !head.is_empty() {
        segments.push(head.freeze());
    }
    Ok(segments)
}

/// Unknown tagged fields (flexible versions; `encoded_len` has refused them in the
/// others).
fn put_tagged(buf: &mut BytesMut, fields: &UnknownTaggedFields, flexible: bool) {
    if flexible {
        put_uvarint(buf, fields.len() as u64);
        for (tag, data) in fields.0.iter() {
            put_unknown_tagged(buf, *tag, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::produce_request::{PartitionProduceData, TopicProduceData};

    fn request(tagged: bool) -> ProduceRequest {
        let records = |n: usize| Some(Bytes::from(vec![n as u8; n]));
        let mut r = ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![
                TopicProduceData {
                    name: StrBytes::from("a".to_string()),
                    partition_data: vec![
                        PartitionProduceData {
                            index: 0,
                            records: records(SEGMENT_MIN),
                            ..Default::default()
                        },
                        PartitionProduceData {
                            index: 1,
                            records: records(10),
                            ..Default::default()
                        },
                        PartitionProduceData {
                            index: 2,
                            records: None,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                TopicProduceData {
                    name: StrBytes::from("b".to_string()),
                    partition_data: vec![PartitionProduceData {
                        index: 7,
                        records: records(70_000),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        if tagged {
            r.unknown_tagged_fields
                .0
                .push((9, Bytes::from_static(b"x")));
            r.topic_data[0].partition_data[0]
                .unknown_tagged_fields
                .0
                .push((3, Bytes::from_static(b"yz")));
        }
        r
    }

    #[test]
    fn the_segments_make_the_frame_encode_request_writes_in_every_version() {
        for version in 0..=11 {
            let mut r = request(version >= 9);
            if version >= 3 {
                r.transactional_id = Some(StrBytes::from("txn".to_string()));
            }
            let header = request_header(ApiKey::Produce, version, 42, Some("c".to_string().into()));
            let mut whole = BytesMut::new();
            encode_request(&mut whole, &header, &r).unwrap();
            let segments = encode_produce_request_segments(&header, &r).unwrap();
            assert_eq!(segments.concat(), whole.to_vec(), "v{version}");
            // The large records are the request's own bytes, not copies.
            let big = r.topic_data[1].partition_data[0].records.as_ref().unwrap();
            assert!(
                segments.iter().any(|s| s.as_ptr() == big.as_ptr()),
                "v{version}"
            );
            // head, records, the fields between, records, and (flexible) the tags after.
            let expected = if version >= 9 { 5 } else { 4 };
            assert_eq!(segments.len(), expected, "v{version}");
        }
    }

    #[test]
    fn what_encode_request_refuses_is_refused() {
        let mut r = request(false);
        r.transactional_id = Some(StrBytes::from("txn".to_string()));
        let header = request_header(ApiKey::Produce, 2, 1, None);
        assert!(encode_produce_request_segments(&header, &r).is_err());
        let header = request_header(ApiKey::Produce, 99, 1, None);
        assert!(encode_produce_request_segments(&header, &r).is_err());
    }
}
