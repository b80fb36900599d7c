//! Record batches written a record at a time, as a producer's accumulator fills them
//! (the Java client's `MemoryRecordsBuilder`): each record goes straight into the
//! batch's wire form behind 61 bytes kept for the header, which is written when the
//! batch is sealed. A queued record then costs its wire bytes and nothing more, and an
//! uncompressed batch is sealed in place, without a copy.

use super::batch::put_record;
use super::{RecordBatch, RecordHeader};
use crate::compression::Compression;
use crate::error::{EncodeError, EncodeErrorKind};
use bytes::{Bytes, BytesMut};

/// Where the header's fields sit in a v2 batch (see the record-format page).
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const FIRST_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const COUNT_AT: usize = 57;

const TRANSACTIONAL_BIT: i16 = 0x10;

/// What a producer puts in a batch's header when it seals it. The default is a plain
/// batch: uncompressed, not transactional, no producer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSeal {
    /// Codec of the records section.
    pub compression: Compression,
    /// Part of a transaction.
    pub transactional: bool,
    /// Producer id (idempotence), else -1.
    pub producer_id: i64,
    /// Producer epoch, else -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, else -1.
    pub base_sequence: i32,
}

impl Default for BatchSeal {
    fn default() -> Self {
        BatchSeal {
            compression: Compression::None,
            transactional: false,
            producer_id: RecordBatch::NO_PRODUCER_ID,
            producer_epoch: RecordBatch::NO_PRODUCER_EPOCH,
            base_sequence: RecordBatch::NO_SEQUENCE,
        }
    }
}

/// A batch being filled: records are appended in their wire form (base offset 0,
/// create time); [`seal`](RecordBatchWriter::seal) writes the header and compresses.
#[derive(Debug)]
pub struct RecordBatchWriter {
    /// The header's room, then the records.
    buf: BytesMut,
    count: i32,
    first_timestamp: i64,
    max_timestamp: i64,
}

impl Default for RecordBatchWriter {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl RecordBatchWriter {
    /// An empty batch with room for `records_bytes` bytes of records.
    pub fn with_capacity(records_bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(RecordBatch::HEADER_LEN + records_bytes);
        buf.resize(RecordBatch::HEADER_LEN, 0);
        RecordBatchWriter {
            buf,
            count: 0,
            first_timestamp: RecordBatch::NO_TIMESTAMP,
            max_timestamp: RecordBatch::NO_TIMESTAMP,
        }
    }

    /// Appends a record created at `timestamp` (milliseconds since the epoch); its
    /// offset delta is its position. On error the batch is left as it was.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) -> Result<(), EncodeError> {
        if self.count == i32::MAX {
            return Err(
                EncodeError::new(EncodeErrorKind::TooLong(self.count as usize))
                    .within("records count"),
            );
        }
        let first = if self.count == 0 {
            timestamp
        } else {
            self.first_timestamp
        };
        let start = self.buf.len();
        if let Err(e) = put_record(
            &mut self.buf,
            timestamp.wrapping_sub(first),
            self.count,
            key,
            value,
            headers,
        ) {
            self.buf.truncate(start);
            return Err(e.within(format!("records[{}]", self.count)));
        }
        if self.count == 0 {
            self.first_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
        Ok(())
    }

    /// Records appended.
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the batch uncompressed, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the batch holds allocated.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The first record's timestamp, which the others' are deltas from.
    pub fn first_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_timestamp)
    }

    /// The finished batch: header, length and CRC-32C written, records compressed with
    /// `seal.compression`. An uncompressed batch is sealed in place (no copy).
    pub fn seal(self, seal: &BatchSeal) -> Result<Bytes, EncodeError> {
        let RecordBatchWriter {
            mut buf,
            count,
            first_timestamp,
            max_timestamp,
        } = self;
        if seal.compression != Compression::None {
            let records = &buf[RecordBatch::HEADER_LEN..];
            let mut out = BytesMut::with_capacity(RecordBatch::HEADER_LEN + records.len() / 2);
            out.resize(RecordBatch::HEADER_LEN, 0);
            seal.compression
                .compress(records, &mut out)
                .map_err(|e| e.within("records").within("record batch"))?;
            buf = out;
        }
        let mut attributes = i16::from(seal.compression.code());
        if seal.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        let h = &mut buf[..];
        h[..LENGTH_AT].copy_from_slice(&0i64.to_be_bytes());
        h[LEADER_EPOCH_AT..MAGIC_AT]
            .copy_from_slice(&RecordBatch::NO_PARTITION_LEADER_EPOCH.to_be_bytes());
        h[MAGIC_AT] = RecordBatch::MAGIC as u8;
        h[ATTRIBUTES_AT..LAST_OFFSET_DELTA_AT].copy_from_slice(&attributes.to_be_bytes());
        h[LAST_OFFSET_DELTA_AT..FIRST_TIMESTAMP_AT]
            .copy_from_slice(&(count - 1).max(0).to_be_bytes());
        h[FIRST_TIMESTAMP_AT..MAX_TIMESTAMP_AT].copy_from_slice(&first_timestamp.to_be_bytes());
        h[MAX_TIMESTAMP_AT..PRODUCER_ID_AT].copy_from_slice(&max_timestamp.to_be_bytes());
        h[COUNT_AT..RecordBatch::HEADER_LEN].copy_from_slice(&count.to_be_bytes());
        let length = buf.len() - LENGTH_AT - 4;
        let length = i32::try_from(length).map_err(|_| {
            EncodeError::new(EncodeErrorKind::TooLong(length)).within("record batch")
        })?;
        buf[LENGTH_AT..LEADER_EPOCH_AT].copy_from_slice(&length.to_be_bytes());
        stamp(
            &mut buf,
            seal.producer_id,
            seal.producer_epoch,
            seal.base_sequence,
        );
        Ok(buf.freeze())
    }

    /// A copy of a sealed batch with another producer id, epoch and base sequence (a
    /// batch retried after the producer's epoch was bumped), its CRC-32C written again.
    pub fn restamp(
        sealed: &[u8],
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Bytes, EncodeError> {
        if sealed.len() < RecordBatch::HEADER_LEN || sealed[MAGIC_AT] != RecordBatch::MAGIC as u8 {
            return Err(EncodeError::new(EncodeErrorKind::Invalid(format!(
                "not a sealed v2 record batch ({} bytes)",
                sealed.len()
            ))));
        }
        let mut buf = BytesMut::from(sealed);
        stamp(&mut buf, producer_id, producer_epoch, base_sequence);
        Ok(buf.freeze())
    }

    /// The producer fields of a sealed batch: id, epoch and base sequence.
    pub fn producer_of(sealed: &[u8]) -> Option<(i64, i16, i32)> {
        let at = |from: usize, to: usize| sealed.get(from..to);
        let id = i64::from_be_bytes(at(PRODUCER_ID_AT, PRODUCER_EPOCH_AT)?.try_into().ok()?);
        let epoch = i16::from_be_bytes(at(PRODUCER_EPOCH_AT, BASE_SEQUENCE_AT)?.try_into().ok()?);
        let seq = i32::from_be_bytes(at(BASE_SEQUENCE_AT, COUNT_AT)?.try_into().ok()?);
        Some((id, epoch, seq))
    }
}

/// Writes the producer fields and then the CRC-32C over everything after it.
fn stamp(buf: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    buf[PRODUCER_ID_AT..PRODUCER_EPOCH_AT].copy_from_slice(&producer_id.to_be_bytes());
    buf[PRODUCER_EPOCH_AT..BASE_SEQUENCE_AT].copy_from_slice(&producer_epoch.to_be_bytes());
    buf[BASE_SEQUENCE_AT..COUNT_AT].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_FROM..]);
    buf[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{DecodeOptions, Record};
    use crate::types::StrBytes;
    use crate::wire::Decoder;

    fn records() -> Vec<Record> {
        (0..50)
            .map(|i| Record {
                offset: i,
                timestamp: 1_700_000_000_000 + (i * 7) % 13 - 3,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 10 != 9).then(|| Bytes::from(vec![i as u8; (i * 37) as usize])),
                headers: if i % 4 == 0 {
                    vec![RecordHeader {
                        key: StrBytes::from("h".to_string()),
                        value: Some(Bytes::from_static(b"v")),
                    }]
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    fn written(records: &[Record]) -> RecordBatchWriter {
        let mut w = RecordBatchWriter::with_capacity(16);
        for r in records {
            w.append(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )
            .unwrap();
        }
        w
    }

    fn decode(bytes: Bytes) -> RecordBatch {
        let mut d = Decoder::new(&bytes);
        RecordBatch::decode(&mut d, &DecodeOptions::default()).unwrap()
    }

    #[test]
    fn an_uncompressed_batch_is_byte_for_byte_what_record_batch_encodes() {
        for seal in [
            BatchSeal::default(),
            BatchSeal {
                transactional: true,
                producer_id: 42,
                producer_epoch: 3,
                base_sequence: 1000,
                ..BatchSeal::default()
            },
        ] {
            let rs = records();
            let w = written(&rs);
            assert_eq!(w.record_count(), 50);
            assert_eq!(w.first_timestamp(), Some(rs[0].timestamp));
            let mut expected = RecordBatch::new(0, rs);
            expected.is_transactional = seal.transactional;
            expected.producer_id = seal.producer_id;
            expected.producer_epoch = seal.producer_epoch;
            expected.base_sequence = seal.base_sequence;
            let mut buf = BytesMut::new();
            expected.encode(&mut buf).unwrap();
            assert_eq!(w.len(), buf.len());
            assert_eq!(w.seal(&seal).unwrap(), buf.freeze());
        }
    }

    #[test]
    fn compressed_batches_decode_to_the_records_appended() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let rs = records();
            let sealed = written(&rs)
                .seal(&BatchSeal {
                    compression,
                    ..BatchSeal::default()
                })
                .unwrap();
            let batch = decode(sealed);
            assert_eq!(batch.compression, compression);
            assert_eq!(batch.records, rs, "{compression:?}");
        }
    }

    #[test]
    fn restamping_changes_the_producer_fields_and_keeps_the_crc_right() {
        let rs = records();
        let sealed = written(&rs)
            .seal(&BatchSeal {
                compression: Compression::Lz4,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 10,
                ..BatchSeal::default()
            })
            .unwrap();
        assert_eq!(RecordBatchWriter::producer_of(&sealed), Some((7, 1, 10)));
        let again = RecordBatchWriter::restamp(&sealed, 7, 2, 0).unwrap();
        assert_eq!(RecordBatchWriter::producer_of(&again), Some((7, 2, 0)));
        let batch = decode(again);
        assert_eq!((batch.producer_epoch, batch.base_sequence), (2, 0));
        assert_eq!(batch.records, rs);
        assert!(RecordBatchWriter::restamp(&sealed[..20], 7, 2, 0).is_err());
    }

    #[test]
    fn an_empty_batch_seals_with_no_timestamps() {
        let w = RecordBatchWriter::default();
        assert!(w.is_empty());
        assert_eq!(w.first_timestamp(), None);
        let batch = decode(w.seal(&BatchSeal::default()).unwrap());
        assert!(batch.records.is_empty());
        assert_eq!(batch.first_timestamp, RecordBatch::NO_TIMESTAMP);
    }
}
