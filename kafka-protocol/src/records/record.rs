//! One record of a batch (magic 2) on the wire: its length, attributes, timestamp
//! and offset deltas, key, value and headers, with varint (zigzag) lengths.

use super::batch::{encode_invalid, invalid};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use crate::messages::support::within_index;
use crate::types::StrBytes;
use crate::wire::{varint_len, varlong_len, zigzag32, zigzag64, Decoder};
use bytes::{Bytes, BytesMut};

/// A header of a record: a UTF-8 key and an optional value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// The header's key.
    pub key: StrBytes,
    /// The header's value; `None` is null.
    pub value: Option<Bytes>,
}

/// One record of a batch, with its offset and timestamp made absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Record {
    /// The record's offset in its partition (base offset plus offset delta).
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch (first timestamp plus
    /// timestamp delta; in a [`TimestampType::LogAppendTime`](super::TimestampType::LogAppendTime) batch, the batch's
    /// `max_timestamp`, as the Java client reports it).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone in a compacted topic).
    pub value: Option<Bytes>,
    /// The headers, in order; empty (and unallocated) when there are none.
    pub headers: Vec<RecordHeader>,
}

/// Bytes the smallest record takes: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count, each one byte.
const MIN_RECORD_LEN: usize = 7;
/// Bytes the smallest header takes: key length and value length.
const MIN_HEADER_LEN: usize = 2;

/// What the records of a batch take from its header.
pub(super) struct RecordContext {
    pub(super) base_offset: i64,
    pub(super) first_timestamp: i64,
    /// `Some(max_timestamp)` in a log-append-time batch.
    pub(super) log_append_time: Option<i64>,
}

/// Reads exactly `count` records that must fill `d`.
pub(super) fn decode_records(
    d: &mut Decoder<'_>,
    count: usize,
    ctx: &RecordContext,
) -> Result<Vec<Record>, DecodeError> {
    let records = decode_counted(
        d,
        count,
        (MIN_RECORD_LEN, "records count", "records"),
        |d| Record::decode(d, ctx),
    )?;
    if !d.is_empty() {
        return Err(invalid(format!(
            "{} bytes follow the {count} records the batch counts",
            d.remaining()
        ))
        .within("records"));
    }
    Ok(records)
}

/// Reads a varint length: negative is null, anything else must fit what is left.
#[inline]
fn nullable_len(d: &mut Decoder<'_>) -> Result<Option<usize>, DecodeError> {
    let len = d.varint()?;
    if len < 0 {
        return Ok(None);
    }
    d.check_len(i64::from(len)).map(Some)
}

#[inline]
fn nullable_bytes(d: &mut Decoder<'_>) -> Result<Option<Bytes>, DecodeError> {
    match nullable_len(d)? {
        None => Ok(None),
        Some(n) => d.take(n).map(Some),
    }
}

#[inline(always)]
fn nullable_bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

/// Bytes of one record after its length prefix.
#[inline(always)]
pub(super) fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    let mut n = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_bytes_len(key)
        + nullable_bytes_len(value)
        + varint_len(headers.len() as i32);
    for h in headers {
        n += varint_len(h.key.len() as i32) + h.key.len() + nullable_bytes_len(h.value.as_deref());
    }
    n
}

/// Writes one record (length prefix and body) with these deltas.
#[inline]
pub(super) fn put_record(
    buf: &mut BytesMut,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> Result<(), EncodeError> {
    let body = record_body_len(timestamp_delta, offset_delta, key, value, headers);
    // Every length inside is at most the body's, so this one check covers them.
    let body = i32::try_from(body).map_err(|_| EncodeError::new(EncodeErrorKind::TooLong(body)))?;
    let start = buf.len();
    let total = varint_len(body) + body as usize;
    // The record is written into room made for all of it at once: one capacity check,
    // not one per field.
    buf.resize(start + total, 0);
    let mut out = RecordOut {
        buf: &mut buf[start..],
        pos: 0,
    };
    out.varint(body);
    out.byte(0); // attributes, unused
    out.varlong(timestamp_delta);
    out.varint(offset_delta);
    out.nullable_bytes(key);
    out.nullable_bytes(value);
    out.varint(headers.len() as i32);
    for h in headers {
        out.varint(h.key.len() as i32);
        out.bytes(h.key.as_bytes());
        out.nullable_bytes(h.value.as_deref());
    }
    debug_assert_eq!(out.pos, total);
    Ok(())
}

/// A record being written into the room made for it (see `put_record`).
struct RecordOut<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl RecordOut<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    #[inline(always)]
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    fn varint(&mut self, v: i32) {
        self.uvarint(zigzag32(v));
    }

    #[inline(always)]
    fn varlong(&mut self, v: i64) {
        self.uvarint(zigzag64(v));
    }

    #[inline(always)]
    fn nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.byte(1), // -1, zigzag
            Some(b) => {
                self.varint(b.len() as i32);
                self.bytes(b);
            }
        }
    }
}

impl Record {
    /// Bytes of the record after its length prefix.
    #[inline(always)]
    pub(super) fn body_len(&self, base_offset: i64, first_timestamp: i64) -> usize {
        record_body_len(
            self.timestamp.wrapping_sub(first_timestamp),
            self.offset.wrapping_sub(base_offset) as i32,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }

    /// Writes the record (length prefix and body) with deltas against a batch's base
    /// offset and first timestamp.
    #[inline]
    pub(super) fn put(
        &self,
        buf: &mut BytesMut,
        base_offset: i64,
        first_timestamp: i64,
    ) -> Result<(), EncodeError> {
        let offset_delta = i32::try_from(self.offset.wrapping_sub(base_offset)).map_err(|_| {
            encode_invalid(format!(
                "offset {} is not within i32 of the base offset {base_offset}",
                self.offset
            ))
        })?;
        put_record(
            buf,
            self.timestamp.wrapping_sub(first_timestamp),
            offset_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }

    #[inline]
    fn decode(d: &mut Decoder<'_>, ctx: &RecordContext) -> Result<Self, DecodeError> {
        let len = d.varint().map_err(|e| e.within("length"))?;
        let len = d
            .check_len(i64::from(len))
            .map_err(|e| e.within("length"))?;
        let mut r = d.sub(len)?;
        let _attributes = r.i8().map_err(|e| e.within("attributes"))?;
        let timestamp_delta = r.varlong().map_err(|e| e.within("timestamp_delta"))?;
        let offset_delta = r.varint().map_err(|e| e.within("offset_delta"))?;
        let key = nullable_bytes(&mut r).map_err(|e| e.within("key"))?;
        let value = nullable_bytes(&mut r).map_err(|e| e.within("value"))?;
        let header_count = r.varint().map_err(|e| e.within("headers_count"))?;
        let headers = if header_count == 0 {
            Vec::new()
        } else {
            decode_headers(&mut r, header_count)?
        };
        if !r.is_empty() {
            return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(
                r.remaining(),
            )));
        }
        Ok(Record {
            offset: ctx.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: match ctx.log_append_time {
                Some(t) => t,
                None => ctx.first_timestamp.wrapping_add(timestamp_delta),
            },
            key,
            value,
            headers,
        })
    }
}

fn decode_headers(r: &mut Decoder<'_>, count: i32) -> Result<Vec<RecordHeader>, DecodeError> {
    let count = usize::try_from(count)
        .map_err(|_| invalid(format!("negative header count {count}")).within("headers_count"))?;
    decode_counted(
        r,
        count,
        (MIN_HEADER_LEN, "header count", "headers"),
        decode_header,
    )
}

/// Reads `count` items of at least `min_len` bytes each, after checking that so many
/// can fit in what is left (so a hostile count allocates nothing). Errors name the
/// count (`what`, within `{list}_count`) or the item (`[i]`, within `list`).
fn decode_counted<T>(
    d: &mut Decoder<'_>,
    count: usize,
    (min_len, what, list): (usize, &str, &'static str),
    mut decode_one: impl FnMut(&mut Decoder<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    if count > d.remaining() / min_len {
        return Err(invalid(format!(
            "{what} {count} cannot fit in {} bytes",
            d.remaining()
        ))
        .within(format!("{list}_count")));
    }
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let item = decode_one(d).map_err(|e| within_index(e, i).within(list))?;
        items.push(item);
    }
    Ok(items)
}

fn decode_header(r: &mut Decoder<'_>) -> Result<RecordHeader, DecodeError> {
    let key_len = r.varint().map_err(|e| e.within("key"))?;
    if key_len < 0 {
        return Err(
            DecodeError::new(DecodeErrorKind::InvalidLength(i64::from(key_len))).within("key"),
        );
    }
    let key_len = r
        .check_len(i64::from(key_len))
        .map_err(|e| e.within("key"))?;
    let key = r.take(key_len)?;
    let key = StrBytes::from_utf8(key)
        .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8).within("key"))?;
    let value = nullable_bytes(r).map_err(|e| e.within("value"))?;
    Ok(RecordHeader { key, value })
}
