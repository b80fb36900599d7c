//! Record batches written a record at a time, as a producer's accumulator fills them
//! (the Java client's `MemoryRecordsBuilder`): each record goes straight into the
//! batch's wire form behind 61 bytes kept for the header, which is written when the
//! batch is sealed. A queued record then costs its wire bytes and nothing more, and an
//! uncompressed batch is sealed in place, without a copy.

use super::record::put_record;
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
/// create time) into chunks that are never moved or copied as the batch grows;
/// [`seal`](RecordBatchWriter::seal) writes the header and compresses.
#[derive(Debug)]
pub struct RecordBatchWriter {
    /// Full chunks of records.
    chunks: Vec<Bytes>,
    /// The chunk being written.
    current: BytesMut,
    /// Bytes of records in `chunks` and `current`.
    len: usize,
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
    /// An empty batch whose first chunk has room for `records_bytes` bytes of records.
    pub fn with_capacity(records_bytes: usize) -> Self {
        RecordBatchWriter {
            chunks: Vec::new(),
            current: BytesMut::with_capacity(records_bytes),
            len: 0,
            count: 0,
            first_timestamp: RecordBatch::NO_TIMESTAMP,
            max_timestamp: RecordBatch::NO_TIMESTAMP,
        }
    }

    /// Bytes the current chunk has left: a record at most this long is written without
    /// allocating (a longer one grows the chunk; [`add_chunk`](Self::add_chunk) first
    /// to avoid that).
    pub fn room(&self) -> usize {
        self.current.capacity() - self.current.len()
    }

    /// Starts a new chunk with room for `capacity` bytes; the records so far stay where
    /// they are.
    pub fn add_chunk(&mut self, capacity: usize) {
        if !self.current.is_empty() {
            self.chunks.push(self.current.split().freeze());
        }
        self.current = BytesMut::with_capacity(capacity);
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
        let start = self.current.len();
        if let Err(e) = put_record(
            &mut self.current,
            timestamp.wrapping_sub(first),
            self.count,
            key,
            value,
            headers,
        ) {
            self.current.truncate(start);
            return Err(e.within(format!("records[{}]", self.count)));
        }
        self.len += self.current.len() - start;
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
        RecordBatch::HEADER_LEN + self.len
    }

    /// Bytes the batch holds allocated.
    pub fn capacity(&self) -> usize {
        self.len - self.current.len() + self.current.capacity()
    }

    /// The first record's timestamp, which the others' are deltas from.
    pub fn first_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_timestamp)
    }

    /// The finished batch: header, length and CRC-32C written, records compressed with
    /// `seal.compression`. Uncompressed, the records stay in their chunks (no copy);
    /// compressed, they are in chunks of 64 KiB (LZ4: the records' own chunks written over;
    /// the last one cut to its size).
    pub fn seal(self, seal: &BatchSeal) -> Result<SealedBatch, EncodeError> {
        let RecordBatchWriter {
            mut chunks,
            current,
            len: _,
            count,
            first_timestamp,
            max_timestamp,
        } = self;
        if !current.is_empty() {
            chunks.push(current.freeze());
        }
        if seal.compression != Compression::None {
            // Compressed chunk after chunk (not gathered first), into chunks of one
            // size (see `ChunkedOut`), as a batch in flight keeps them; LZ4 writes on
            // in the chunks of records it has compressed.
            chunks = seal
                .compression
                .compress_owned_chunks(chunks)
                .map_err(|e| e.within("records").within("record batch"))?;
        }
        let body: usize = chunks.iter().map(Bytes::len).sum();
        let length = RecordBatch::HEADER_LEN - LENGTH_AT - 4 + body;
        let length = i32::try_from(length).map_err(|_| {
            EncodeError::new(EncodeErrorKind::TooLong(length)).within("record batch")
        })?;
        let mut attributes = i16::from(seal.compression.code());
        if seal.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        let mut h = [0u8; RecordBatch::HEADER_LEN];
        h[LENGTH_AT..LEADER_EPOCH_AT].copy_from_slice(&length.to_be_bytes());
        h[LEADER_EPOCH_AT..MAGIC_AT]
            .copy_from_slice(&RecordBatch::NO_PARTITION_LEADER_EPOCH.to_be_bytes());
        h[MAGIC_AT] = RecordBatch::MAGIC as u8;
        h[ATTRIBUTES_AT..LAST_OFFSET_DELTA_AT].copy_from_slice(&attributes.to_be_bytes());
        h[LAST_OFFSET_DELTA_AT..FIRST_TIMESTAMP_AT]
            .copy_from_slice(&(count - 1).max(0).to_be_bytes());
        h[FIRST_TIMESTAMP_AT..MAX_TIMESTAMP_AT].copy_from_slice(&first_timestamp.to_be_bytes());
        h[MAX_TIMESTAMP_AT..PRODUCER_ID_AT].copy_from_slice(&max_timestamp.to_be_bytes());
        h[COUNT_AT..].copy_from_slice(&count.to_be_bytes());
        let mut sealed = SealedBatch { header: h, chunks };
        sealed.stamp(seal.producer_id, seal.producer_epoch, seal.base_sequence);
        Ok(sealed)
    }
}

/// A sealed batch: its 61-byte header and its records, in the chunks they were written
/// in (or, compressed, in chunks of 64 KiB). Cloning it shares the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBatch {
    header: [u8; RecordBatch::HEADER_LEN],
    chunks: Vec<Bytes>,
}

impl SealedBatch {
    /// The batch's parts in order: the header, then the records' chunks. Written one
    /// after another they are the batch.
    pub fn parts(&self) -> impl Iterator<Item = Bytes> + '_ {
        std::iter::once(Bytes::copy_from_slice(&self.header)).chain(self.chunks.iter().cloned())
    }

    /// Bytes of the whole batch.
    pub fn len(&self) -> usize {
        RecordBatch::HEADER_LEN + self.chunks.iter().map(Bytes::len).sum::<usize>()
    }

    /// Never: a batch has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The batch in one buffer (a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        for part in self.parts() {
            out.extend_from_slice(&part);
        }
        out.freeze()
    }

    /// Producer id, epoch and base sequence in the header.
    pub fn producer(&self) -> (i64, i16, i32) {
        let h = &self.header;
        let at = |from: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[from..from + 8]);
            b
        };
        let id = i64::from_be_bytes(at(PRODUCER_ID_AT));
        let epoch = i16::from_be_bytes([h[PRODUCER_EPOCH_AT], h[PRODUCER_EPOCH_AT + 1]]);
        let seq = i32::from_be_bytes([
            h[BASE_SEQUENCE_AT],
            h[BASE_SEQUENCE_AT + 1],
            h[BASE_SEQUENCE_AT + 2],
            h[BASE_SEQUENCE_AT + 3],
        ]);
        (id, epoch, seq)
    }

    /// The same batch with another producer id, epoch and base sequence (a batch
    /// retried after the producer's epoch was bumped): a new header and CRC-32C, the
    /// records shared, not copied (read once more for the CRC).
    pub fn restamp(&self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        let mut again = self.clone();
        again.stamp(producer_id, producer_epoch, base_sequence);
        again
    }

    /// Writes the producer fields, then the CRC-32C of everything after it.
    fn stamp(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        let h = &mut self.header;
        h[PRODUCER_ID_AT..PRODUCER_EPOCH_AT].copy_from_slice(&producer_id.to_be_bytes());
        h[PRODUCER_EPOCH_AT..BASE_SEQUENCE_AT].copy_from_slice(&producer_epoch.to_be_bytes());
        h[BASE_SEQUENCE_AT..COUNT_AT].copy_from_slice(&base_sequence.to_be_bytes());
        // One pass on from the header's CRC: `crc32c_combine` (keeping the records'
        // CRC for a restamp) cost more per batch than reading the records again, and
        // a restamp is rare.
        let crc = self
            .chunks
            .iter()
            .fold(crc32c::crc32c(&h[CRC_FROM..]), |crc, c| {
                crc32c::crc32c_append(crc, c)
            });
        h[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    }
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

    /// The records written with a new chunk every `chunk_every` records (0: never).
    fn written(records: &[Record], chunk_every: usize) -> RecordBatchWriter {
        let mut w = RecordBatchWriter::with_capacity(16);
        for (i, r) in records.iter().enumerate() {
            if chunk_every > 0 && i % chunk_every == 0 {
                w.add_chunk(100);
            }
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
        for (seal, chunk_every) in [
            (BatchSeal::default(), 0),
            (
                BatchSeal {
                    transactional: true,
                    producer_id: 42,
                    producer_epoch: 3,
                    base_sequence: 1000,
                    ..BatchSeal::default()
                },
                7,
            ),
        ] {
            let rs = records();
            let w = written(&rs, chunk_every);
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
            let sealed = w.seal(&seal).unwrap();
            assert_eq!(sealed.len(), buf.len());
            assert_eq!(sealed.to_bytes(), buf.freeze());
            if chunk_every > 0 {
                assert!(sealed.parts().count() > 2, "several chunks");
            }
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
            for chunk_every in [0, 9] {
                let rs = records();
                let sealed = written(&rs, chunk_every)
                    .seal(&BatchSeal {
                        compression,
                        ..BatchSeal::default()
                    })
                    .unwrap();
                let batch = decode(sealed.to_bytes());
                assert_eq!(batch.compression, compression);
                assert_eq!(batch.records, rs, "{compression:?}");
            }
        }
    }

    #[test]
    fn restamping_changes_the_producer_fields_and_keeps_the_crc_right() {
        for compression in [Compression::None, Compression::Lz4] {
            let rs = records();
            let sealed = written(&rs, 5)
                .seal(&BatchSeal {
                    compression,
                    producer_id: 7,
                    producer_epoch: 1,
                    base_sequence: 10,
                    ..BatchSeal::default()
                })
                .unwrap();
            assert_eq!(sealed.producer(), (7, 1, 10));
            let again = sealed.restamp(7, 2, 0);
            assert_eq!(again.producer(), (7, 2, 0));
            // Decoding checks the CRC-32C.
            let batch = decode(again.to_bytes());
            assert_eq!((batch.producer_epoch, batch.base_sequence), (2, 0));
            assert_eq!(batch.records, rs);
        }
    }

    #[test]
    fn an_empty_batch_seals_with_no_timestamps() {
        let w = RecordBatchWriter::default();
        assert!(w.is_empty());
        assert_eq!(w.first_timestamp(), None);
        let batch = decode(w.seal(&BatchSeal::default()).unwrap().to_bytes());
        assert!(batch.records.is_empty());
        assert_eq!(batch.first_timestamp, RecordBatch::NO_TIMESTAMP);
    }
}
