//! Record data: record batches (magic 2, [`RecordBatch`]), legacy message sets (magic 0
//! and 1, [`MessageSet`]), control records, and [`decode_record_sets`] for the `records`
//! bytes of a Fetch or Produce partition, which may mix the formats and end with a
//! batch cut short.
//!
//! Decoding is zero-copy: keys, values and header values are slices of the input
//! [`Bytes`] (or, in a compressed batch, of its decompressed records). Every count and
//! length read from the input is checked against the bytes that are left before
//! anything is allocated, so hostile input costs at most a small multiple of its own
//! size (plus, for compressed data, [`DecodeOptions::max_decompressed_size`]).
//!
//! Encoding computes sizes up front and writes straight into a [`bytes::BytesMut`]; a
//! compressed batch serializes its records once into a scratch buffer and compresses
//! that into the output.

mod batch;
mod control;
mod legacy;
mod record;
mod writer;

pub use batch::RecordBatch;
pub use control::{ControlRecord, ControlRecordType, EndTransactionMarker};
pub use legacy::{Message, MessageSet};
pub use record::{Record, RecordHeader};
pub use writer::{BatchSeal, RecordBatchWriter, SealedBatch};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire::Decoder;
use bytes::Bytes;

/// Where a timestamp came from: bit 3 of a batch's (or a v1 message's) attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer when the record was created (bit clear).
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (bit set); every record of the
    /// batch then has the batch's `max_timestamp`.
    LogAppendTime,
}

impl TimestampType {
    /// The attributes bit that marks [`TimestampType::LogAppendTime`].
    pub const ATTRIBUTE_BIT: i16 = 0x08;

    /// The type the attributes name.
    pub const fn from_attributes(attributes: i16) -> Self {
        if attributes & Self::ATTRIBUTE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// The attributes bits of this type.
    pub const fn attribute_bits(self) -> i16 {
        match self {
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => Self::ATTRIBUTE_BIT,
        }
    }
}

/// Options for decoding record data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Check each batch's CRC-32C (and each legacy message's CRC-32). Default `true`.
    /// Turning it off saves a pass over the data when the bytes were already checked.
    pub verify_crc: bool,
    /// The most bytes decompressing one compressed batch (or one legacy wrapper
    /// message) may produce; more is an error. Default [`DEFAULT_MAX_DECOMPRESSED_SIZE`]
    /// (64 MiB), well above the broker's default `message.max.bytes` (1 MiB) at any
    /// realistic compression ratio. Bounds the memory a decompression bomb can take.
    pub max_decompressed_size: usize,
}

/// The default of [`DecodeOptions::max_decompressed_size`]: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 << 20;

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verify_crc: true,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }
}

impl DecodeOptions {
    /// Sets [`verify_crc`](DecodeOptions::verify_crc).
    #[must_use]
    pub fn with_verify_crc(mut self, verify_crc: bool) -> Self {
        self.verify_crc = verify_crc;
        self
    }

    /// Sets [`max_decompressed_size`](DecodeOptions::max_decompressed_size).
    #[must_use]
    pub fn with_max_decompressed_size(mut self, max: usize) -> Self {
        self.max_decompressed_size = max;
        self
    }
}

/// One unit of decoded record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSet {
    /// A record batch (magic 2).
    Batch(RecordBatch),
    /// A run of consecutive legacy messages (magic 0 or 1), compressed wrappers already
    /// replaced by their inner messages.
    Legacy(MessageSet),
}

/// What [`decode_record_sets`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSets {
    /// The complete batches and message runs, in order.
    pub sets: Vec<RecordSet>,
    /// True when the input ended inside a batch or message (a fetch response cut at
    /// its size limit); that partial one is not in `sets`.
    pub truncated: bool,
    /// Bytes of the input that the complete entries took; the partial tail, if any,
    /// starts here.
    pub bytes_read: usize,
}

impl RecordSets {
    /// True when nothing complete was found.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// Bytes before the magic byte in both formats: offset (8), length (4), then the
/// partition leader epoch (v2) or the CRC (v0/v1).
pub const MAGIC_OFFSET: usize = 16;

/// Offset and length: the part of every entry before its length-counted body.
const LOG_OVERHEAD: usize = 12;

/// The magic byte of the entry at the start of `bytes`, or `None` when fewer than 17
/// bytes are there.
pub fn peek_magic(bytes: &[u8]) -> Option<i8> {
    bytes.get(MAGIC_OFFSET).map(|&b| b as i8)
}

/// Decodes the `records` bytes of a Fetch or Produce partition: record batches and legacy
/// messages in any mix (each entry's magic byte, at offset 16, says which).
///
/// A tail too short to hold its entry, as a fetch response cut at `max_bytes` ends, is
/// not an error: decoding stops before it and [`RecordSets::truncated`] is set. Any
/// entry that is complete but malformed is an error naming its byte position and base
/// offset.
pub fn decode_record_sets(
    bytes: &Bytes,
    options: &DecodeOptions,
) -> Result<RecordSets, DecodeError> {
    let mut d = Decoder::new(bytes);
    let mut out = RecordSets::default();
    while !d.is_empty() {
        let position = d.position();
        let Some(header) = EntryHeader::peek(d.rest(), position)? else {
            out.truncated = true;
            break;
        };
        let mut entry = d.sub(header.total)?;
        if header.magic == 2 {
            let batch =
                RecordBatch::decode(&mut entry, options).map_err(|e| e.within(header.context()))?;
            out.sets.push(RecordSet::Batch(batch));
        } else {
            if !matches!(out.sets.last(), Some(RecordSet::Legacy(_))) {
                out.sets.push(RecordSet::Legacy(MessageSet::default()));
            }
            let Some(RecordSet::Legacy(set)) = out.sets.last_mut() else {
                unreachable!("a legacy set was just pushed")
            };
            set.decode_entry(&mut entry, options)
                .map_err(|e| e.within(header.context()))?;
        }
        out.bytes_read = d.position();
    }
    Ok(out)
}

/// The offset after the last record of the last complete entry (batch or legacy
/// message) in `records` bytes, read from the entries' headers alone: nothing is
/// decompressed, decoded or checked. `None` when no entry is complete, or when an
/// entry's header is malformed (before any complete entry).
///
/// A consumer uses it to send its next Fetch before decoding the previous answer;
/// [`decode_record_sets`] then finds any error in the entries.
pub fn next_offset_after(records: &[u8]) -> Option<i64> {
    entry_ends(records).last().map(|(_, next)| next)
}

/// The leading whole entries of `records` that fit in `limit` bytes (at least the
/// first entry, however long): their length in bytes and the offset after their last
/// record, read from the headers alone as [`next_offset_after`] does. `None` when no
/// entry is complete. A consumer uses it to hand over a large fetch a part at a time,
/// so that only a part is ever decoded (and decompressed) at once.
pub fn leading_entries(records: &[u8], limit: usize) -> Option<(usize, i64)> {
    let mut ends = entry_ends(records);
    let first = ends.next()?;
    Some(
        ends.take_while(|(end, _)| *end <= limit)
            .last()
            .unwrap_or(first),
    )
}

/// The complete entries of `records`, by their headers: for each, the byte position
/// just after it and the offset after its last record. Stops at the first entry that
/// is incomplete or whose header is malformed.
fn entry_ends(records: &[u8]) -> impl Iterator<Item = (usize, i64)> + '_ {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        let rest = records.get(position..)?;
        let header = EntryHeader::peek(rest, position).ok()??;
        let last = if header.magic == 2 {
            // Batch header: ... magic (16), crc (17..21), attributes (21..23),
            // last offset delta (23..27).
            let delta = rest.get(23..27)?;
            let delta = i32::from_be_bytes([delta[0], delta[1], delta[2], delta[3]]);
            // Saturating: a hostile base offset may sit next to i64::MAX.
            header.offset.saturating_add(i64::from(delta))
        } else {
            // A legacy entry (a wrapper's offset is that of its last inner message).
            header.offset
        };
        position += header.total;
        Some((position, last.saturating_add(1)))
    })
}

/// The offset, length and magic that start every entry of either format.
struct EntryHeader {
    magic: i8,
    offset: i64,
    /// The whole entry: offset, length and body.
    total: usize,
    position: usize,
}

impl EntryHeader {
    /// The header of the entry at the start of `rest` (byte `position` of the input);
    /// `None` when `rest` is too short to hold the entry.
    fn peek(rest: &[u8], position: usize) -> Result<Option<EntryHeader>, DecodeError> {
        let (Some(magic), Some(len)) = (peek_magic(rest), rest.get(8..12)) else {
            return Ok(None);
        };
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&rest[..8]);
        let offset = i64::from_be_bytes(offset);
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let mut header = EntryHeader {
            magic,
            offset,
            total: 0,
            position,
        };
        let min = match magic {
            2 => RecordBatch::MIN_BATCH_LENGTH,
            0 | 1 => Message::min_size(magic),
            _ => {
                return Err(DecodeError::new(DecodeErrorKind::Invalid(format!(
                    "unknown magic {magic}"
                )))
                .within(header.context()));
            }
        };
        if len < min as i32 {
            return Err(DecodeError::new(DecodeErrorKind::Invalid(format!(
                "length {len} is below the minimum {min}"
            )))
            .within(header.context()));
        }
        header.total = LOG_OVERHEAD + len as usize;
        Ok((header.total <= rest.len()).then_some(header))
    }

    fn context(&self) -> String {
        let (position, offset) = (self.position, self.offset);
        match self.magic {
            2 => format!("record batch at byte {position} (base offset {offset})"),
            _ => format!("message at byte {position} (offset {offset})"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use bytes::BytesMut;

    fn batch(base: i64, n: usize, compression: Compression) -> RecordBatch {
        let records = (0..n)
            .map(|i| Record {
                offset: base + i as i64,
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![i as u8; 50])),
                headers: Vec::new(),
            })
            .collect();
        let mut b = RecordBatch::new(base, records);
        b.compression = compression;
        b
    }

    fn legacy(base: i64, n: usize, magic: i8) -> MessageSet {
        MessageSet {
            messages: (0..n)
                .map(|i| Message {
                    offset: base + i as i64,
                    magic,
                    timestamp: if magic == 0 { -1 } else { 1000 + i as i64 },
                    key: None,
                    value: Some(Bytes::from(format!("legacy {i}"))),
                    ..Message::default()
                })
                .collect(),
        }
    }

    #[test]
    fn mixed_magics_decode_in_order() {
        let mut buf = BytesMut::new();
        legacy(0, 2, 0).encode(&mut buf, Compression::None).unwrap();
        legacy(2, 3, 1).encode(&mut buf, Compression::Gzip).unwrap();
        batch(5, 4, Compression::None).encode(&mut buf).unwrap();
        legacy(9, 1, 1).encode(&mut buf, Compression::None).unwrap();
        batch(10, 3, Compression::Lz4).encode(&mut buf).unwrap();
        let bytes = buf.freeze();
        let sets = decode_record_sets(&bytes, &DecodeOptions::default()).unwrap();
        assert!(!sets.truncated);
        assert_eq!(sets.bytes_read, bytes.len());
        assert_eq!(sets.sets.len(), 4);
        let mut offsets = Vec::new();
        for set in &sets.sets {
            match set {
                RecordSet::Batch(b) => offsets.extend(b.records.iter().map(|r| r.offset)),
                RecordSet::Legacy(s) => offsets.extend(s.messages.iter().map(|m| m.offset)),
            }
        }
        assert_eq!(offsets, (0..13).collect::<Vec<i64>>());
        let RecordSet::Legacy(first) = &sets.sets[0] else {
            panic!()
        };
        assert_eq!(
            first.messages.len(),
            5,
            "consecutive legacy entries form one run"
        );
    }

    #[test]
    fn truncated_tail_is_reported_not_an_error() {
        let mut buf = BytesMut::new();
        batch(0, 3, Compression::None).encode(&mut buf).unwrap();
        let first_len = buf.len();
        batch(3, 3, Compression::Snappy).encode(&mut buf).unwrap();
        let second_end = buf.len();
        legacy(6, 2, 1).encode(&mut buf, Compression::None).unwrap();
        let message_len = (buf.len() - second_end) / 2;
        let boundaries = [
            0,
            first_len,
            second_end,
            second_end + message_len,
            buf.len(),
        ];
        let bytes = buf.freeze();
        for cut in 0..=bytes.len() {
            let part = bytes.slice(..cut);
            let sets = decode_record_sets(&part, &DecodeOptions::default()).unwrap();
            let expected_read = *boundaries.iter().filter(|&&b| b <= cut).max().unwrap();
            assert_eq!(sets.bytes_read, expected_read, "{cut}");
            assert_eq!(sets.truncated, expected_read != cut, "{cut}");
            if cut < first_len {
                assert!(sets.is_empty());
            } else {
                assert!(!sets.is_empty());
            }
        }
    }

    #[test]
    fn next_offset_after_agrees_with_decoding_at_every_cut() {
        let mut buf = BytesMut::new();
        legacy(0, 2, 0).encode(&mut buf, Compression::None).unwrap();
        legacy(2, 3, 1).encode(&mut buf, Compression::Gzip).unwrap();
        batch(5, 4, Compression::Lz4).encode(&mut buf).unwrap();
        legacy(9, 1, 1).encode(&mut buf, Compression::None).unwrap();
        batch(10, 3, Compression::None).encode(&mut buf).unwrap();
        let bytes = buf.freeze();
        for cut in 0..=bytes.len() {
            let part = bytes.slice(..cut);
            let sets = decode_record_sets(&part, &DecodeOptions::default()).unwrap();
            let decoded = sets
                .sets
                .iter()
                .flat_map(|set| match set {
                    RecordSet::Batch(b) => vec![b.last_offset()],
                    RecordSet::Legacy(s) => s.messages.iter().map(|m| m.offset).collect(),
                })
                .max()
                .map(|last| last + 1);
            assert_eq!(next_offset_after(&part), decoded, "cut at {cut}");
        }
        assert_eq!(next_offset_after(&bytes), Some(13));
        // A malformed header stops the scan; what came before still counts.
        let mut bad = BytesMut::from(&bytes[..]);
        let second = bytes.len() - batch(10, 3, Compression::None).encoded_len();
        bad[second + 16] = 7;
        assert_eq!(next_offset_after(&bad), Some(10));
    }

    #[test]
    fn leading_entries_takes_whole_entries_within_the_limit_and_at_least_one() {
        let mut buf = BytesMut::new();
        let mut ends = Vec::new();
        // A compressed legacy set is one entry (its wrapper).
        legacy(0, 2, 1).encode(&mut buf, Compression::Gzip).unwrap();
        ends.push((buf.len(), 2));
        batch(2, 4, Compression::Lz4).encode(&mut buf).unwrap();
        ends.push((buf.len(), 6));
        batch(6, 3, Compression::None).encode(&mut buf).unwrap();
        ends.push((buf.len(), 9));
        let bytes = buf.freeze();
        // Whatever the limit: the first entry at least, then every entry that fits.
        for limit in 0..=bytes.len() + 1 {
            let expected = ends
                .iter()
                .rev()
                .find(|(end, _)| *end <= limit)
                .unwrap_or(&ends[0]);
            assert_eq!(leading_entries(&bytes, limit), Some(*expected), "{limit}");
        }
        // An incomplete tail is never part of it.
        let cut = bytes.slice(..bytes.len() - 1);
        assert_eq!(leading_entries(&cut, usize::MAX), Some(ends[1]));
        assert_eq!(leading_entries(&bytes[..ends[0].0 - 1], usize::MAX), None);
        assert_eq!(leading_entries(&[], 10), None);
        // A base offset next to i64::MAX (found by fuzzing) saturates, it does not
        // overflow.
        let mut buf = BytesMut::new();
        batch(0, 3, Compression::None).encode(&mut buf).unwrap();
        buf[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
        assert_eq!(next_offset_after(&buf), Some(i64::MAX));
        assert_eq!(leading_entries(&buf, 0), Some((buf.len(), i64::MAX)));
    }

    #[test]
    fn a_corrupt_complete_batch_is_an_error_with_its_position() {
        let mut buf = BytesMut::new();
        batch(0, 2, Compression::None).encode(&mut buf).unwrap();
        let second = buf.len();
        batch(2, 2, Compression::None).encode(&mut buf).unwrap();
        // The last byte of the last record's value (the byte after it is the header count).
        let at = buf.len() - 2;
        buf[at] ^= 0xff;
        let bytes = buf.freeze();
        let err = decode_record_sets(&bytes, &DecodeOptions::default()).unwrap_err();
        assert!(
            matches!(err.kind(), DecodeErrorKind::CrcMismatch { .. }),
            "{err}"
        );
        let path: Vec<&str> = err.context().collect();
        assert_eq!(
            path[0],
            format!("record batch at byte {second} (base offset 2)")
        );
        // Without the CRC check the damage goes unnoticed (it is in a value).
        let sets =
            decode_record_sets(&bytes, &DecodeOptions::default().with_verify_crc(false)).unwrap();
        assert_eq!(sets.sets.len(), 2);
    }

    #[test]
    fn unknown_magic_and_short_lengths_are_errors() {
        let mut buf = BytesMut::new();
        batch(0, 1, Compression::None).encode(&mut buf).unwrap();
        let mut bad = buf.clone();
        bad[16] = 3;
        assert!(decode_record_sets(&bad.freeze(), &DecodeOptions::default()).is_err());
        let mut bad = buf.clone();
        bad[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(decode_record_sets(&bad.freeze(), &DecodeOptions::default()).is_err());
        let mut bad = buf;
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decode_record_sets(&bad.freeze(), &DecodeOptions::default()).is_err());
    }

    #[test]
    fn hostile_length_only_means_truncated() {
        let mut buf = BytesMut::new();
        batch(0, 1, Compression::None).encode(&mut buf).unwrap();
        buf[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        let sets = decode_record_sets(&buf.freeze(), &DecodeOptions::default()).unwrap();
        assert!(sets.truncated && sets.is_empty());
    }

    #[test]
    fn empty_input_is_empty() {
        let sets = decode_record_sets(&Bytes::new(), &DecodeOptions::default()).unwrap();
        assert!(sets.is_empty() && !sets.truncated);
    }
}
