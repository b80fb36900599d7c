//! Primitive wire types: a [`Decoder`] that reads them with `nom` out of a [`Bytes`]
//! frame (strings and bytes come out as zero-copy slices of the frame), and `put_*`
//! functions with matching `*_len` size functions that write them into a [`BytesMut`].
//!
//! Every length prefix is checked against the input that is left before anything is
//! allocated, so a hostile prefix fails at once instead of reserving memory.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use crate::types::{StrBytes, Uuid};
use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete as num;

/// The nom error type of the primitive parsers.
type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// A cursor over a received frame. Cheap to create; slices it returns share the frame.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    frame: &'a Bytes,
    rest: &'a [u8],
}

fn eof(needed: usize, remaining: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnexpectedEof { needed, remaining })
}

macro_rules! fixed {
    ($(#[$doc:meta] $name:ident: $ty:ty = $parser:ident, $size:expr;)*) => {$(
        #[$doc]
        #[inline]
        pub fn $name(&mut self) -> Result<$ty, DecodeError> {
            match num::$parser::<_, NomErr<'a>>(self.rest) {
                Ok((rest, v)) => {
                    self.rest = rest;
                    Ok(v)
                }
                Err(_) => Err(eof($size, self.rest.len())),
            }
        }
    )*};
}

impl<'a> Decoder<'a> {
    /// A decoder over the whole of `frame`.
    pub fn new(frame: &'a Bytes) -> Self {
        Decoder {
            frame,
            rest: frame.as_ref(),
        }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// True when every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not yet read, as a slice.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// How far into the frame the cursor is.
    pub fn position(&self) -> usize {
        self.frame.len() - self.rest.len()
    }

    fixed! {
        /// An `int8`.
        i8: i8 = be_i8, 1;
        /// An `int16`.
        i16: i16 = be_i16, 2;
        /// A `uint16`.
        u16: u16 = be_u16, 2;
        /// An `int32`.
        i32: i32 = be_i32, 4;
        /// A `uint32`.
        u32: u32 = be_u32, 4;
        /// An `int64`.
        i64: i64 = be_i64, 8;
        /// A `float64`.
        f64: f64 = be_f64, 8;
    }

    /// A `bool` (any non-zero byte is true).
    #[inline]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    /// A `uuid`.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let raw = self.take_slice(16)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(raw);
        Ok(Uuid(out))
    }

    /// An unsigned varint of at most 32 bits (`UNSIGNED_VARINT`).
    #[inline]
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let (rest, v) = uvarint(self.rest, 5)?;
        self.rest = rest;
        u32::try_from(v).map_err(|_| DecodeError::new(DecodeErrorKind::VarintTooLong(5)))
    }

    /// An unsigned varint of at most 64 bits.
    #[inline]
    pub fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        let (rest, v) = uvarint(self.rest, 10)?;
        self.rest = rest;
        Ok(v)
    }

    /// A zigzag-encoded signed varint of at most 32 bits (`VARINT`).
    #[inline]
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let v = self.uvarint()?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zigzag-encoded signed varint of at most 64 bits (`VARLONG`).
    #[inline]
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let v = self.uvarlong()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// The next `n` bytes as a slice of the input.
    pub fn take_slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match nom::bytes::complete::take::<_, _, NomErr<'a>>(n)(self.rest) {
            Ok((rest, taken)) => {
                self.rest = rest;
                Ok(taken)
            }
            Err(_) => Err(eof(n, self.rest.len())),
        }
    }

    /// The next `n` bytes as a zero-copy slice of the frame.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let frame = self.frame;
        self.take_slice(n).map(|s| frame.slice_ref(s))
    }

    /// A decoder over the next `n` bytes, which this one skips.
    pub fn sub(&mut self, n: usize) -> Result<Decoder<'a>, DecodeError> {
        let frame = self.frame;
        self.take_slice(n).map(|rest| Decoder { frame, rest })
    }

    /// Everything left, as a zero-copy slice of the frame.
    pub fn take_rest(&mut self) -> Bytes {
        let n = self.rest.len();
        self.take(n).unwrap_or_default()
    }

    /// Checks that a length read from the wire fits in what is left.
    #[inline]
    pub fn check_len(&self, length: i64) -> Result<usize, DecodeError> {
        if length < 0 {
            return Err(DecodeError::new(DecodeErrorKind::InvalidLength(length)));
        }
        if length as u64 > self.rest.len() as u64 {
            return Err(DecodeError::new(DecodeErrorKind::LengthTooLarge {
                length,
                remaining: self.rest.len(),
            }));
        }
        Ok(length as usize)
    }

    /// A length prefix that may be null: `int16`/`int32` (-1 is null) or, in flexible
    /// versions, an unsigned varint holding length + 1 (0 is null).
    fn nullable_len(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let len: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if len == -1 {
            return Ok(None);
        }
        self.check_len(len).map(Some)
    }

    /// A `STRING` (or `COMPACT_STRING` when `flexible`).
    pub fn string(&mut self, flexible: bool) -> Result<StrBytes, DecodeError> {
        self.nullable_string(flexible)?
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))
    }

    /// A `NULLABLE_STRING` (or `COMPACT_NULLABLE_STRING` when `flexible`).
    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<StrBytes>, DecodeError> {
        match self.nullable_len(flexible, false)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n)?;
                StrBytes::from_utf8(raw)
                    .map(Some)
                    .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8))
            }
        }
    }

    /// `BYTES` (or `COMPACT_BYTES` when `flexible`).
    pub fn bytes(&mut self, flexible: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(flexible)?
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))
    }

    /// `NULLABLE_BYTES` (or `COMPACT_NULLABLE_BYTES` when `flexible`); also `RECORDS`.
    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.nullable_len(flexible, true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// An `ARRAY` length (or `COMPACT_ARRAY` when `flexible`) that must not be null.
    /// Every element takes at least one byte, so a length larger than what is left is
    /// rejected here, before anything is allocated.
    pub fn array_len(&mut self, flexible: bool) -> Result<usize, DecodeError> {
        self.nullable_array_len(flexible)?
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))
    }

    /// An array length that may be null.
    pub fn nullable_array_len(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        self.nullable_len(flexible, true)
    }

    /// Reads the tagged-field section of a flexible struct that knows no tags: every
    /// field is kept raw in `unknown`.
    pub fn unknown_tagged_fields(
        &mut self,
        unknown: &mut crate::types::UnknownTaggedFields,
    ) -> Result<(), DecodeError> {
        self.tagged_fields(unknown, |_, _| Ok(false))
    }

    /// Reads the tagged-field section of a flexible struct, calling `known` for each
    /// field with the tag and a decoder over exactly its bytes. `known` returns false
    /// for a tag it does not know; those are kept raw in `unknown`.
    pub fn tagged_fields(
        &mut self,
        unknown: &mut crate::types::UnknownTaggedFields,
        mut known: impl FnMut(u32, &mut Decoder<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint()?;
        // Each tagged field takes at least two bytes (tag and size).
        self.check_len(i64::from(count))?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()?;
            let n = self.check_len(i64::from(size))?;
            let mut field = self.sub(n)?;
            let snapshot = field.clone();
            if known(tag, &mut field).map_err(|e| e.within(format!("tag {tag}")))? {
                if !field.is_empty() {
                    return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(
                        field.remaining(),
                    ))
                    .within(format!("tag {tag}")));
                }
            } else {
                let frame = snapshot.frame;
                unknown.0.push((tag, frame.slice_ref(snapshot.rest)));
            }
        }
        Ok(())
    }
}

/// nom parser for a protobuf-style unsigned varint of at most `max_bytes` bytes.
fn uvarint(input: &[u8], max_bytes: usize) -> Result<(&[u8], u64), DecodeError> {
    let mut value: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(max_bytes) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((&input[i + 1..], value));
        }
    }
    if input.len() < max_bytes {
        Err(eof(input.len() + 1, input.len()))
    } else {
        Err(DecodeError::new(DecodeErrorKind::VarintTooLong(max_bytes)))
    }
}

/// Bytes an unsigned varint takes.
#[inline]
pub const fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A `VARINT`'s value as the unsigned varint it is written as (zigzag).
#[inline]
pub(crate) const fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

/// A `VARLONG`'s value as the unsigned varint it is written as (zigzag).
#[inline]
pub(crate) const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bytes a zigzag `VARINT` takes.
#[inline]
pub const fn varint_len(v: i32) -> usize {
    uvarint_len(zigzag32(v))
}

/// Bytes a zigzag `VARLONG` takes.
#[inline]
pub const fn varlong_len(v: i64) -> usize {
    uvarint_len(zigzag64(v))
}

/// Writes an unsigned varint.
#[inline]
pub fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a zigzag `VARINT`.
#[inline]
pub fn put_varint(buf: &mut BytesMut, v: i32) {
    put_uvarint(buf, zigzag32(v));
}

/// Writes a zigzag `VARLONG`.
#[inline]
pub fn put_varlong(buf: &mut BytesMut, v: i64) {
    put_uvarint(buf, zigzag64(v));
}

/// Writes a `uuid`.
#[inline]
pub fn put_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(&v.0);
}

/// Writes a `bool`.
#[inline]
pub fn put_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

fn too_long(n: usize) -> EncodeError {
    EncodeError::new(EncodeErrorKind::TooLong(n))
}

/// Size of a length prefix for a string (`int16`), bytes or array (`int32`), or its
/// compact form (`len + 1` as an unsigned varint); `None` is null.
#[inline]
pub fn len_prefix_len(len: Option<usize>, flexible: bool, wide: bool) -> usize {
    match (flexible, wide) {
        (true, _) => uvarint_len(len.map_or(0, |n| n as u64 + 1)),
        (false, false) => 2,
        (false, true) => 4,
    }
}

/// Writes a length prefix as [`len_prefix_len`] sizes it.
#[inline]
pub fn put_len_prefix(
    buf: &mut BytesMut,
    len: Option<usize>,
    flexible: bool,
    wide: bool,
) -> Result<(), EncodeError> {
    match (flexible, wide, len) {
        (true, _, None) => buf.put_u8(0),
        (true, _, Some(n)) => {
            let n = u32::try_from(n)
                .ok()
                .filter(|&n| n < u32::MAX)
                .ok_or_else(|| too_long(n))?;
            put_uvarint(buf, u64::from(n) + 1);
        }
        (false, false, None) => buf.put_i16(-1),
        (false, false, Some(n)) => buf.put_i16(i16::try_from(n).map_err(|_| too_long(n))?),
        (false, true, None) => buf.put_i32(-1),
        (false, true, Some(n)) => buf.put_i32(i32::try_from(n).map_err(|_| too_long(n))?),
    }
    Ok(())
}

/// Size of a string or nullable string.
#[inline]
pub fn string_len(s: Option<&str>, flexible: bool) -> usize {
    len_prefix_len(s.map(str::len), flexible, false) + s.map_or(0, str::len)
}

/// Writes a string, or null for `None`.
#[inline]
pub fn put_string(buf: &mut BytesMut, s: Option<&str>, flexible: bool) -> Result<(), EncodeError> {
    put_len_prefix(buf, s.map(str::len), flexible, false)?;
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Size of bytes or nullable bytes (also `RECORDS`).
#[inline]
pub fn bytes_len(b: Option<&[u8]>, flexible: bool) -> usize {
    len_prefix_len(b.map(<[u8]>::len), flexible, true) + b.map_or(0, <[u8]>::len)
}

/// Writes bytes, or null for `None`.
#[inline]
pub fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>, flexible: bool) -> Result<(), EncodeError> {
    put_len_prefix(buf, b.map(<[u8]>::len), flexible, true)?;
    if let Some(b) = b {
        buf.put_slice(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = BytesMut::new();
            put_varlong(&mut buf, v);
            assert_eq!(buf.len(), varlong_len(v));
            let frame = buf.freeze();
            let mut d = Decoder::new(&frame);
            assert_eq!(d.varlong().unwrap(), v);
            assert!(d.is_empty());
        }
        for v in [0i32, 1, -1, i32::MAX, i32::MIN] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            let frame = buf.freeze();
            assert_eq!(Decoder::new(&frame).varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let frame = Bytes::from_static(&[0xff; 11]);
        let err = Decoder::new(&frame).varlong().unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::VarintTooLong(10));
        let err = Decoder::new(&frame).uvarint().unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::VarintTooLong(5));
    }

    #[test]
    fn hostile_length_prefix_fails_before_allocating() {
        // An array of 2^31 - 1 elements announced in a 6-byte input.
        let frame = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let err = Decoder::new(&frame).array_len(false).unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::LengthTooLarge {
                length: 2147483647,
                remaining: 2
            }
        ));
        let frame = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(Decoder::new(&frame).bytes(false).is_err());
    }

    #[test]
    fn strings_are_slices_of_the_frame() {
        let frame = Bytes::from_static(b"\x00\x05hello\x06world");
        let mut d = Decoder::new(&frame);
        let a = d.string(false).unwrap();
        let b = d.string(true).unwrap();
        assert_eq!(a, "hello");
        assert_eq!(b, "world");
        assert_eq!(a.as_bytes().as_ptr(), frame[2..].as_ptr());
    }

    #[test]
    fn null_is_rejected_where_not_nullable() {
        let frame = Bytes::from_static(&[0xff, 0xff]);
        assert_eq!(Decoder::new(&frame).nullable_string(false).unwrap(), None);
        let err = Decoder::new(&frame).string(false).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::UnexpectedNull);
    }
}
