//! A Produce request frame in segments: the frame's own fields are written into small
//! buffers and each partition's records are referenced, not copied, so a producer can
//! keep a batch's bytes for retries and put the same bytes on the wire (the Java
//! client's gathering write of its batches' buffers).

use super::*;
use crate::error::EncodeErrorKind;
use crate::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::messages::support::put_unknown_tagged;
use crate::messages::ProduceRequest;
use crate::types::UnknownTaggedFields;
use crate::wire::{len_prefix_len, put_len_prefix, put_string, put_uvarint};

/// Parts of records shorter than this are copied into the segment before them (a
/// segment of their own would cost more to write than the copy).
pub const SEGMENT_MIN: usize = 4096;

/// A Produce request frame as segments whose concatenation is the frame
/// [`encode_request`] would write for `request` with each partition's `records` set to
/// the concatenation of its entry in `records`: one entry per partition, in the
/// request's order (topic by topic), an empty one for null records. The partitions'
/// own `records` fields are not read. Parts of at least [`SEGMENT_MIN`] bytes are
/// segments of their own (the same `Bytes`, not a copy).
pub fn encode_produce_request_segments(
    header: &RequestHeader,
    request: &ProduceRequest,
    records: &[Vec<Bytes>],
) -> Result<Vec<Bytes>, EncodeError> {
    let version = header.request_api_version;
    let partitions: usize = request
        .topic_data
        .iter()
        .map(|t| t.partition_data.len())
        .sum();
    if records.len() != partitions {
        return Err(EncodeError::new(EncodeErrorKind::Invalid(format!(
            "{} records entries for {partitions} partitions",
            records.len()
        ))));
    }
    let flexible = version >= 9;
    // The size with null records (which also checks the version and every field
    // against it, as `encode_request` does), then each partition's records instead.
    let mut body_len = request.clone_without_records().encoded_len(version)?;
    for parts in records {
        if !parts.is_empty() {
            let n: usize = parts.iter().map(Bytes::len).sum();
            body_len = body_len + len_prefix_len(Some(n), flexible, true) + n
                - len_prefix_len(None, flexible, true);
        }
    }
    let hv = ApiKey::Produce.request_header_version(version);
    let size = header.encoded_len(hv)? + body_len;
    let size_i32 = i32::try_from(size)
        .map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(size)).within("frame"))?;
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
    let mut records = records.iter();
    for topic in &request.topic_data {
        put_string(&mut head, Some(topic.name.as_str()), flexible).map_err(within)?;
        put_len_prefix(&mut head, Some(topic.partition_data.len()), flexible, true)
            .map_err(within)?;
        for partition in &topic.partition_data {
            head.put_i32(partition.index);
            let parts = records.next().map_or(&[][..], Vec::as_slice);
            if parts.is_empty() {
                put_len_prefix(&mut head, None, flexible, true).map_err(within)?;
            } else {
                let n = parts.iter().map(Bytes::len).sum();
                put_len_prefix(&mut head, Some(n), flexible, true).map_err(within)?;
                for part in parts {
                    if part.len() >= SEGMENT_MIN {
                        if !head.is_empty() {
                            segments.push(head.split().freeze());
                        }
                        segments.push(part.clone());
                    } else {
                        head.extend_from_slice(part);
                    }
                }
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

impl ProduceRequest {
    /// A copy with every partition's records null (the records are not cloned).
    fn clone_without_records(&self) -> ProduceRequest {
        let mut copy = ProduceRequest {
            transactional_id: self.transactional_id.clone(),
            acks: self.acks,
            timeout_ms: self.timeout_ms,
            topic_data: Vec::with_capacity(self.topic_data.len()),
            unknown_tagged_fields: self.unknown_tagged_fields.clone(),
        };
        for t in &self.topic_data {
            copy.topic_data.push(TopicProduceData {
                name: t.name.clone(),
                partition_data: t
                    .partition_data
                    .iter()
                    .map(|p| PartitionProduceData {
                        index: p.index,
                        records: None,
                        unknown_tagged_fields: p.unknown_tagged_fields.clone(),
                    })
                    .collect(),
                unknown_tagged_fields: t.unknown_tagged_fields.clone(),
            });
        }
        copy
    }
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

    /// Each partition's records split into parts as a sealed batch is (a small part,
    /// then large ones), the request's own fields left as they are.
    fn parts_of(r: &ProduceRequest) -> Vec<Vec<Bytes>> {
        r.topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .map(|p| match &p.records {
                None => Vec::new(),
                Some(b) if b.len() > 2 * SEGMENT_MIN => {
                    let mid = b.len() / 2;
                    vec![b.slice(..61), b.slice(61..mid), b.slice(mid..)]
                }
                Some(b) => vec![b.clone()],
            })
            .collect()
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
            let parts = parts_of(&r);
            let segments = encode_produce_request_segments(&header, &r, &parts).unwrap();
            assert_eq!(segments.concat(), whole.to_vec(), "v{version}");
            // The large parts are the caller's own bytes, not copies.
            for part in parts.iter().flatten().filter(|p| p.len() >= SEGMENT_MIN) {
                assert!(
                    segments.iter().any(|s| s.as_ptr() == part.as_ptr()),
                    "v{version}"
                );
            }
        }
    }

    #[test]
    fn what_encode_request_refuses_is_refused() {
        let mut r = request(false);
        r.transactional_id = Some(StrBytes::from("txn".to_string()));
        let parts = parts_of(&r);
        let header = request_header(ApiKey::Produce, 2, 1, None);
        assert!(encode_produce_request_segments(&header, &r, &parts).is_err());
        let header = request_header(ApiKey::Produce, 99, 1, None);
        assert!(encode_produce_request_segments(&header, &r, &parts).is_err());
        let header = request_header(ApiKey::Produce, 9, 1, None);
        assert!(encode_produce_request_segments(&header, &r, &parts[1..]).is_err());
    }
}
