//! Helpers the generated message code calls (hand-written, not generated).

use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use crate::protocol::Message;
use crate::types::UnknownTaggedFields;
use crate::wire::{put_uvarint, uvarint_len};
use bytes::{BufMut, Bytes, BytesMut};

/// Fails unless `version` is one the message has.
pub(crate) fn check_encode_version<M: Message>(version: i16) -> Result<(), EncodeError> {
    if M::VERSIONS.contains(version) {
        Ok(())
    } else {
        Err(EncodeError::new(EncodeErrorKind::UnsupportedVersion {
            version,
            min: M::VERSIONS.min,
            max: M::VERSIONS.max,
        })
        .within(M::NAME))
    }
}

/// Fails unless `version` is one the message has.
pub(crate) fn check_decode_version<M: Message>(version: i16) -> Result<(), DecodeError> {
    if M::VERSIONS.contains(version) {
        Ok(())
    } else {
        Err(DecodeError::new(DecodeErrorKind::UnsupportedVersion {
            version,
            min: M::VERSIONS.min,
            max: M::VERSIONS.max,
        })
        .within(M::NAME))
    }
}

/// Adds an array item's index to a decode error (out of line: the generated codecs
/// call it on every array of structs, and only on the error path).
#[cold]
#[inline(never)]
pub(crate) fn within_index(e: DecodeError, i: usize) -> DecodeError {
    e.within(format!("[{i}]"))
}

/// Adds the message and version to a decode error (out of line, as `within_index`).
#[cold]
#[inline(never)]
pub(crate) fn decode_within_message(e: DecodeError, name: &str, version: i16) -> DecodeError {
    e.within(format!("{name} v{version}"))
}

/// Adds the message and version to an encode error (out of line, as `within_index`).
#[cold]
#[inline(never)]
pub(crate) fn encode_within_message(e: EncodeError, name: &str, version: i16) -> EncodeError {
    e.within(format!("{name} v{version}"))
}

/// A set field that the chosen version cannot carry.
pub(crate) fn not_in_version(
    field: &'static str,
    version: i16,
    versions: &'static str,
) -> EncodeError {
    EncodeError::new(EncodeErrorKind::FieldNotInVersion { version, versions }).within(field)
}

/// A null where the chosen version allows none.
pub(crate) fn null_not_allowed(version: i16, nullable_versions: &'static str) -> EncodeError {
    EncodeError::new(EncodeErrorKind::NullNotAllowed {
        version,
        nullable_versions,
    })
}

/// Bytes the unknown tagged fields take (tag, size and data of each).
pub(crate) fn unknown_tagged_len(unknown: &UnknownTaggedFields) -> usize {
    unknown
        .0
        .iter()
        .map(|(tag, data)| {
            uvarint_len(u64::from(*tag)) + uvarint_len(data.len() as u64) + data.len()
        })
        .sum()
}

/// Writes one unknown tagged field back as it came.
pub(crate) fn put_unknown_tagged(buf: &mut BytesMut, tag: u32, data: &Bytes) {
    put_uvarint(buf, u64::from(tag));
    put_uvarint(buf, data.len() as u64);
    buf.put_slice(data);
}

/// How many raw entries carry `tag`, and the bytes they take: a known tag kept raw
/// because it arrived holding its default value.
pub(crate) fn raw_tagged_len(unknown: &UnknownTaggedFields, tag: u32) -> (usize, usize) {
    unknown
        .0
        .iter()
        .filter(|(t, _)| *t == tag)
        .fold((0, 0), |(count, len), (t, data)| {
            (
                count + 1,
                len + uvarint_len(u64::from(*t)) + uvarint_len(data.len() as u64) + data.len(),
            )
        })
}
