//! Record batches (magic 2): a fixed 61-byte header, CRC-32C over everything after the
//! CRC field, then the records, each with varint (zigzag) lengths and deltas against the
//! batch's base offset and first timestamp.

use super::record::{decode_records, RecordContext};
use super::{DecodeOptions, Record, TimestampType};
use crate::compression::Compression;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use crate::wire::{varint_len, Decoder};
use bytes::{BufMut, BytesMut};

/// A record batch, the unit of record data since Kafka 0.11 (magic 2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordBatch {
    /// Offset of the first record (records may skip offsets after compaction).
    pub base_offset: i64,
    /// Epoch of the partition leader that appended the batch; -1 from producers.
    pub partition_leader_epoch: i32,
    /// Codec of the records section.
    pub compression: Compression,
    /// Where the timestamps come from.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub is_transactional: bool,
    /// Holds control records (transaction markers) instead of data.
    pub is_control: bool,
    /// `first_timestamp` holds the delete horizon set by compaction (attributes bit 6).
    pub has_delete_horizon: bool,
    /// Offset of the last record (or of the last one before compaction) minus
    /// `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the record timestamp deltas are taken from (Kafka's `baseTimestamp`).
    pub first_timestamp: i64,
    /// Largest timestamp in the batch (the append time for `LogAppendTime`).
    pub max_timestamp: i64,
    /// Producer id of an idempotent or transactional producer, else -1.
    pub producer_id: i64,
    /// Producer epoch, else -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record for an idempotent producer, else -1.
    pub base_sequence: i32,
    /// The records.
    pub records: Vec<Record>,
}

/// Where the CRC-32C sits in a batch, and where the bytes it covers start.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;

/// The largest compression scratch buffer a thread keeps for its next batch.
const SCRATCH_KEEP: usize = 4 << 20;

thread_local! {
    /// Serialized records waiting to be compressed (see `encode_inner`).
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

pub(super) fn invalid(msg: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Invalid(msg))
}

pub(super) fn encode_invalid(msg: String) -> EncodeError {
    EncodeError::new(EncodeErrorKind::Invalid(msg))
}

impl Default for RecordBatch {
    fn default() -> Self {
        RecordBatch::new(0, Vec::new())
    }
}

impl RecordBatch {
    /// The magic byte of the format.
    pub const MAGIC: i8 = 2;
    /// Bytes of the header, from the base offset through the records count.
    pub const HEADER_LEN: usize = 61;
    /// The smallest valid `batchLength` (the header after the offset and length).
    pub const MIN_BATCH_LENGTH: usize = Self::HEADER_LEN - 12;
    /// `producer_id` of a producer that is neither idempotent nor transactional.
    pub const NO_PRODUCER_ID: i64 = -1;
    /// `producer_epoch` without a producer id.
    pub const NO_PRODUCER_EPOCH: i16 = -1;
    /// `base_sequence` without a producer id.
    pub const NO_SEQUENCE: i32 = -1;
    /// `partition_leader_epoch` as producers send it.
    pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
    /// A timestamp that is not set.
    pub const NO_TIMESTAMP: i64 = -1;

    /// A plain batch of `records` as a producer without idempotence writes it:
    /// uncompressed, create time, no producer id. `last_offset_delta`, `first_timestamp`
    /// and `max_timestamp` are taken from the records (-1 timestamps when empty).
    pub fn new(base_offset: i64, records: Vec<Record>) -> Self {
        let last_offset_delta = records
            .last()
            .map_or(0, |r| r.offset.wrapping_sub(base_offset) as i32);
        let first_timestamp = records.first().map_or(Self::NO_TIMESTAMP, |r| r.timestamp);
        let max_timestamp = records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(Self::NO_TIMESTAMP);
        RecordBatch {
            base_offset,
            partition_leader_epoch: Self::NO_PARTITION_LEADER_EPOCH,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            has_delete_horizon: false,
            last_offset_delta,
            first_timestamp,
            max_timestamp,
            producer_id: Self::NO_PRODUCER_ID,
            producer_epoch: Self::NO_PRODUCER_EPOCH,
            base_sequence: Self::NO_SEQUENCE,
            records,
        }
    }

    /// The attributes field these flags make.
    pub fn attributes(&self) -> i16 {
        let mut a = i16::from(self.compression.code()) | self.timestamp_type.attribute_bits();
        if self.is_transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if self.is_control {
            a |= CONTROL_BIT;
        }
        if self.has_delete_horizon {
            a |= DELETE_HORIZON_BIT;
        }
        a
    }

    /// Offset of the last record the batch accounts for: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Bytes the records section takes before compression.
    fn records_len(&self) -> usize {
        self.records
            .iter()
            .map(|r| {
                let body = r.body_len(self.base_offset, self.first_timestamp);
                varint_len(body as i32) + body
            })
            .sum()
    }

    /// Bytes [`encode`](RecordBatch::encode) writes: exact for an uncompressed batch;
    /// for a compressed one, the size before compression (what is reserved).
    pub fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.records_len()
    }

    /// Appends the batch to `buf`, compressing the records section with `compression`,
    /// and fills in the batch length and CRC-32C. On error `buf` is left as it was.
    ///
    /// Record offsets must be within `i32` of `base_offset`; timestamps are written as
    /// deltas from `first_timestamp`.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = buf.len();
        let result = self.encode_inner(buf, start);
        if result.is_err() {
            buf.truncate(start);
        }
        result.map_err(|e| e.within(format!("record batch (base offset {})", self.base_offset)))
    }

    fn encode_inner(&self, buf: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        let count = i32::try_from(self.records.len())
            .map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(self.records.len())))?;
        let records_len = self.records_len();
        if self.compression == Compression::None {
            buf.reserve(Self::HEADER_LEN + records_len);
        } else {
            buf.reserve(Self::HEADER_LEN + records_len / 2);
        }
        buf.put_i64(self.base_offset);
        buf.put_i32(0); // batch length, filled in below
        buf.put_i32(self.partition_leader_epoch);
        buf.put_i8(Self::MAGIC);
        buf.put_u32(0); // CRC, filled in below
        buf.put_i16(self.attributes());
        buf.put_i32(self.last_offset_delta);
        buf.put_i64(self.first_timestamp);
        buf.put_i64(self.max_timestamp);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(count);
        if self.compression == Compression::None {
            self.put_records(buf)?;
        } else {
            // The records are serialized into a per-thread scratch buffer, kept between
            // batches (up to SCRATCH_KEEP bytes) so that each batch does not start on
            // fresh pages.
            let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            scratch.clear();
            scratch.reserve(records_len);
            let result = self.put_records(&mut scratch).and_then(|()| {
                self.compression
                    .compress(&scratch, buf)
                    .map_err(|e| e.within("records"))
            });
            if scratch.capacity() <= SCRATCH_KEEP {
                SCRATCH.with(|s| *s.borrow_mut() = scratch);
            }
            result?;
        }
        let batch_length = buf.len() - start - 12;
        let batch_length = i32::try_from(batch_length)
            .map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(batch_length)))?;
        buf[start + 8..start + 12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&buf[start + CRC_FROM..]);
        buf[start + CRC_AT..start + CRC_FROM].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    fn put_records(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        for (i, r) in self.records.iter().enumerate() {
            r.put(buf, self.base_offset, self.first_timestamp)
                .map_err(|e| e.within(format!("[{i}]")).within("records"))?;
        }
        Ok(())
    }

    /// Reads one batch (base offset, length and all it counts) from `decoder`.
    ///
    /// The magic must be 2. The CRC-32C is checked unless `options` turn it off; a
    /// compressed records section is decompressed (at most
    /// `options.max_decompressed_size` bytes) and the records are slices of it. The
    /// records count must match the records there exactly.
    pub fn decode(decoder: &mut Decoder<'_>, options: &DecodeOptions) -> Result<Self, DecodeError> {
        let base_offset = decoder.i64().map_err(|e| e.within("base_offset"))?;
        let batch_length = decoder.i32().map_err(|e| e.within("batch_length"))?;
        if (batch_length as i64) < Self::MIN_BATCH_LENGTH as i64 {
            return Err(invalid(format!(
                "batch length {batch_length} is below the minimum {}",
                Self::MIN_BATCH_LENGTH
            ))
            .within("batch_length"));
        }
        let n = decoder
            .check_len(i64::from(batch_length))
            .map_err(|e| e.within("batch_length"))?;
        let mut d = decoder.sub(n)?;
        let partition_leader_epoch = d.i32()?;
        let magic = d.i8()?;
        if magic != Self::MAGIC {
            return Err(invalid(format!("magic {magic} is not a record batch")).within("magic"));
        }
        let stored = d.u32()?;
        if options.verify_crc {
            let computed = crc32c::crc32c(d.rest());
            if computed != stored {
                return Err(
                    DecodeError::new(DecodeErrorKind::CrcMismatch { stored, computed })
                        .within("crc"),
                );
            }
        }
        let attributes = d.i16()?;
        let compression =
            Compression::from_attributes(attributes).map_err(|e| e.within("attributes"))?;
        let timestamp_type = TimestampType::from_attributes(attributes);
        let last_offset_delta = d.i32()?;
        let first_timestamp = d.i64()?;
        let max_timestamp = d.i64()?;
        let producer_id = d.i64()?;
        let producer_epoch = d.i16()?;
        let base_sequence = d.i32()?;
        let count = d.i32()?;
        let count = usize::try_from(count).map_err(|_| {
            invalid(format!("negative records count {count}")).within("records_count")
        })?;
        let ctx = RecordContext {
            base_offset,
            first_timestamp,
            log_append_time: (timestamp_type == TimestampType::LogAppendTime)
                .then_some(max_timestamp),
        };
        let records = if compression == Compression::None {
            decode_records(&mut d, count, &ctx)?
        } else {
            let data = compression
                .decompress(d.rest(), options.max_decompressed_size)
                .map_err(|e| e.within("records"))?;
            let mut rd = Decoder::new(&data);
            decode_records(&mut rd, count, &ctx)?
        };
        Ok(RecordBatch {
            base_offset,
            partition_leader_epoch,
            compression,
            timestamp_type,
            is_transactional: attributes & TRANSACTIONAL_BIT != 0,
            is_control: attributes & CONTROL_BIT != 0,
            has_delete_horizon: attributes & DELETE_HORIZON_BIT != 0,
            last_offset_delta,
            first_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            records,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::record::RecordHeader;
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn encode(b: &RecordBatch) -> Bytes {
        let mut buf = BytesMut::new();
        b.encode(&mut buf).unwrap();
        buf.freeze()
    }

    fn decode(bytes: &Bytes) -> Result<RecordBatch, DecodeError> {
        let mut d = Decoder::new(bytes);
        let b = RecordBatch::decode(&mut d, &DecodeOptions::default())?;
        assert!(d.is_empty());
        Ok(b)
    }

    /// CRC-32C bit by bit, independent of the crc32c crate.
    fn crc32c_reference(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_reference(b"123456789"), 0xE306_9283);
    }

    /// One batch with one record (key "k", value "hello", one header "h" = "v"), laid
    /// out field by field from the format's description.
    fn hand_built() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&100i64.to_be_bytes()); // baseOffset
        b.extend_from_slice(&0i32.to_be_bytes()); // batchLength, patched below
        b.extend_from_slice(&7i32.to_be_bytes()); // partitionLeaderEpoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
        b.extend_from_slice(&0x0010i16.to_be_bytes()); // attributes: transactional
        b.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
        b.extend_from_slice(&1000i64.to_be_bytes()); // baseTimestamp
        b.extend_from_slice(&1005i64.to_be_bytes()); // maxTimestamp
        b.extend_from_slice(&42i64.to_be_bytes()); // producerId
        b.extend_from_slice(&3i16.to_be_bytes()); // producerEpoch
        b.extend_from_slice(&9i32.to_be_bytes()); // baseSequence
        b.extend_from_slice(&1i32.to_be_bytes()); // recordsCount
        let record: &[u8] = &[
            0x00, // attributes
            0x0a, // timestampDelta 5 (zigzag)
            0x02, // offsetDelta 1
            0x02, b'k', // key
            0x0a, b'h', b'e', b'l', b'l', b'o', // value
            0x02, // 1 header
            0x02, b'h', 0x02, b'v', // header key, value
        ];
        b.push((record.len() as u8) << 1); // length (zigzag)
        b.extend_from_slice(record);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c_reference(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn hand_built_batch_matches_the_encoder_byte_for_byte() {
        let bytes = Bytes::from(hand_built());
        let batch = decode(&bytes).unwrap();
        assert_eq!(batch.base_offset, 100);
        assert_eq!(batch.partition_leader_epoch, 7);
        assert!(batch.is_transactional && !batch.is_control);
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (42, 3, 9)
        );
        assert_eq!(batch.last_offset(), 101);
        let r = &batch.records[0];
        assert_eq!((r.offset, r.timestamp), (101, 1005));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            r.headers,
            vec![RecordHeader {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v"))
            }]
        );
        // Zero-copy: the value is a slice of the input.
        let value = r.value.as_ref().unwrap();
        assert!(bytes.as_ptr_range().contains(&value.as_ptr()));
        assert_eq!(encode(&batch), bytes);
        assert_eq!(batch.encoded_len(), bytes.len());
    }

    #[test]
    fn crc_mismatch_is_detected_and_can_be_ignored() {
        let mut raw = hand_built();
        let last = raw.len() - 1;
        raw[last] = b'w';
        let bytes = Bytes::from(raw);
        let err = decode(&bytes).unwrap_err();
        assert!(matches!(err.kind(), DecodeErrorKind::CrcMismatch { .. }));
        assert_eq!(err.context().collect::<Vec<_>>(), ["crc"]);
        let opts = DecodeOptions::default().with_verify_crc(false);
        let b = RecordBatch::decode(&mut Decoder::new(&bytes), &opts).unwrap();
        assert_eq!(b.records[0].headers[0].value.as_deref(), Some(&b"w"[..]));
    }

    #[test]
    fn log_append_time_gives_every_record_the_max_timestamp() {
        let mut raw = hand_built();
        raw[21..23].copy_from_slice(&0x0008i16.to_be_bytes());
        let crc = crc32c::crc32c(&raw[21..]);
        raw[17..21].copy_from_slice(&crc.to_be_bytes());
        let b = decode(&Bytes::from(raw)).unwrap();
        assert_eq!(b.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(b.records[0].timestamp, 1005);
    }

    fn patch_crc(raw: &mut [u8]) {
        let crc = crc32c::crc32c(&raw[21..]);
        raw[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn records_count_must_match_the_records() {
        for (count, what) in [
            (2i32, "records"),
            (0, "records"),
            (-1, "records_count"),
            (i32::MAX, "records_count"),
        ] {
            let mut raw = hand_built();
            raw[57..61].copy_from_slice(&count.to_be_bytes());
            patch_crc(&mut raw);
            let err = decode(&Bytes::from(raw)).unwrap_err();
            assert_eq!(err.context().next(), Some(what), "{count}: {err}");
        }
    }

    #[test]
    fn hostile_lengths_inside_a_record_are_errors_naming_the_field() {
        // Offsets into hand_built(): record length at 61, key length at 65, value
        // length at 67, header count at 73, header key length at 74.
        let cases: [(usize, u8, &str); 6] = [
            (61, 0x7e, "records[0].length"),
            (65, 0x7e, "records[0].key"),
            (67, 0x7e, "records[0].value"),
            (73, 0x7e, "records[0].headers_count"),
            (73, 0x01, "records[0].headers_count"),
            (74, 0x01, "records[0].headers[0].key"),
        ];
        for (at, byte, path) in cases {
            let mut raw = hand_built();
            raw[at] = byte;
            patch_crc(&mut raw);
            let err = decode(&Bytes::from(raw)).unwrap_err();
            let got = err.to_string();
            assert!(got.contains(path), "{at}: {got}");
        }
    }

    #[test]
    fn bad_header_key_utf8_is_an_error() {
        let mut raw = hand_built();
        raw[75] = 0xff;
        patch_crc(&mut raw);
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::InvalidUtf8);
    }

    #[test]
    fn negative_key_length_is_null_as_in_the_java_client() {
        let b = RecordBatch::new(
            0,
            vec![Record {
                key: None,
                value: None,
                ..Record::default()
            }],
        );
        let bytes = encode(&b);
        // Length 6, attributes, deltas 0, key -1, value -1, no headers.
        assert_eq!(&bytes[61..], &[0x0c, 0, 0, 0, 1, 1, 0]);
        assert_eq!(decode(&bytes).unwrap(), b);
        let mut raw = bytes.to_vec();
        raw[65] = 0x03; // key length -2
        patch_crc(&mut raw);
        assert_eq!(decode(&Bytes::from(raw)).unwrap(), b);
    }

    #[test]
    fn compressed_batches_slice_the_decompressed_data() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let records = (0..100)
                .map(|i| Record {
                    offset: i,
                    timestamp: 5,
                    key: None,
                    value: Some(Bytes::from(vec![b'x'; 100])),
                    headers: vec![],
                })
                .collect();
            let mut b = RecordBatch::new(0, records);
            b.compression = c;
            let bytes = encode(&b);
            assert!(bytes.len() < 2000, "{c}: {}", bytes.len());
            let back = decode(&bytes).unwrap();
            assert_eq!(back, b);
            // Values of one batch share the one decompressed buffer.
            let v0 = back.records[0].value.as_ref().unwrap().as_ptr() as usize;
            let v1 = back.records[1].value.as_ref().unwrap().as_ptr() as usize;
            assert!(v1 > v0 && v1 - v0 < 200);
            // A decompression limit below the records section is an error.
            let opts = DecodeOptions::default().with_max_decompressed_size(5000);
            let err = RecordBatch::decode(&mut Decoder::new(&bytes), &opts).unwrap_err();
            assert!(
                matches!(err.kind(), DecodeErrorKind::Compression(_)),
                "{err}"
            );
        }
    }

    #[test]
    fn offsets_too_far_from_the_base_fail_to_encode_and_leave_the_buffer() {
        let b = RecordBatch::new(
            0,
            vec![Record {
                offset: 1 << 40,
                ..Record::default()
            }],
        );
        let mut buf = BytesMut::from(&b"keep"[..]);
        let err = b.encode(&mut buf).unwrap_err();
        assert!(err.to_string().contains("records[0]"), "{err}");
        assert_eq!(&buf[..], b"keep");
    }

    #[test]
    fn control_flag_round_trips() {
        let mut b = RecordBatch::new(
            5,
            vec![Record {
                offset: 5,
                ..Record::default()
            }],
        );
        b.is_control = true;
        b.has_delete_horizon = true;
        let back = decode(&encode(&b)).unwrap();
        assert!(back.is_control && back.has_delete_horizon && !back.is_transactional);
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from))
    }

    fn arb_batch() -> impl Strategy<Value = RecordBatch> {
        let record = (
            0i64..1000,
            -1_000_000i64..1_000_000,
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(("[a-zé]{0,8}", arb_bytes()), 0..3),
        );
        (
            any::<i64>().prop_map(|o| o >> 2),
            proptest::collection::vec(record, 0..20),
            0u8..5,
            any::<(bool, bool, bool, bool)>(),
            any::<(i32, i64, i16, i32)>(),
        )
            .prop_map(|(base, recs, codec, flags, producer)| {
                let mut offset = base;
                let records = recs
                    .into_iter()
                    .map(|(gap, ts, key, value, headers)| {
                        offset += gap;
                        Record {
                            offset,
                            timestamp: 1_700_000_000_000 + ts,
                            key,
                            value,
                            headers: headers
                                .into_iter()
                                .map(|(k, v)| RecordHeader {
                                    key: k.into(),
                                    value: v,
                                })
                                .collect(),
                        }
                    })
                    .collect();
                let mut b = RecordBatch::new(base, records);
                b.compression = Compression::from_code(codec).unwrap();
                b.is_transactional = flags.0;
                b.is_control = flags.1;
                b.has_delete_horizon = flags.2;
                if flags.3 {
                    b.timestamp_type = TimestampType::LogAppendTime;
                    for r in &mut b.records {
                        r.timestamp = b.max_timestamp;
                    }
                }
                (
                    b.partition_leader_epoch,
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                ) = producer;
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn batches_round_trip(b in arb_batch()) {
            let bytes = encode(&b);
            if b.compression == Compression::None {
                prop_assert_eq!(bytes.len(), b.encoded_len());
            }
            prop_assert_eq!(decode(&bytes).unwrap(), b);
        }

        #[test]
        fn damaged_batches_never_panic(
            b in arb_batch(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            verify in any::<bool>(),
        ) {
            let mut raw = encode(&b).to_vec();
            for (at, x) in flips {
                let i = at.index(raw.len());
                raw[i] ^= x;
            }
            let bytes = Bytes::from(raw);
            let opts = DecodeOptions::default().with_verify_crc(verify).with_max_decompressed_size(1 << 16);
            let _ = RecordBatch::decode(&mut Decoder::new(&bytes), &opts);
            let _ = super::super::decode_record_sets(&bytes, &opts);
        }
    }
}
