//! Errors of the codec: [`DecodeError`] for bytes that cannot be read, [`EncodeError`]
//! for values that cannot be written in the chosen version.
//!
//! Both carry a context path (outermost first when displayed) naming what was being
//! decoded or encoded: the message and version, then the field, record or batch.

use std::borrow::Cow;
use std::fmt;

/// An error's kind and the path of what was being decoded or encoded (innermost
/// first, as it is added on the way out).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contexted<K> {
    kind: K,
    context: Vec<Cow<'static, str>>,
}

/// The constructor and accessors [`DecodeError`] and [`EncodeError`] share.
macro_rules! contexted_error {
    ($error:ident, $kind:ty, $doing:literal, $done:literal) => {
        impl $error {
            /// An error of this kind with no context yet.
            #[cold]
            pub fn new(kind: $kind) -> Self {
                $error(Box::new(Contexted {
                    kind,
                    context: Vec::new(),
                }))
            }

            #[doc = concat!("Why ", $doing, " failed.")]
            pub fn kind(&self) -> &$kind {
                &self.0.kind
            }

            #[doc = concat!("The path of what was being ", $done, ", outermost first.")]
            pub fn context(&self) -> impl Iterator<Item = &str> {
                self.0.context.iter().rev().map(|c| c.as_ref())
            }

            /// Adds an outer context (a field, record or message name) to the error.
            #[must_use]
            #[inline]
            pub fn within(self, what: impl Into<Cow<'static, str>>) -> Self {
                self.within_cow(what.into())
            }

            #[cold]
            #[inline(never)]
            fn within_cow(mut self, what: Cow<'static, str>) -> Self {
                self.0.context.push(what);
                self
            }
        }
    };
}

/// Why decoding failed, without the context of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before a value was complete.
    #[error("needed {needed} more bytes but only {remaining} are left")]
    UnexpectedEof {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix (of a string, bytes, array, record or frame) is larger than the
    /// input that is left, so it cannot be honest.
    #[error("length prefix {length} is larger than the {remaining} bytes left")]
    LengthTooLarge {
        /// The length read from the wire.
        length: i64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix is negative where no null is allowed.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A null was read where the version does not allow one.
    #[error("null is not allowed here in this version")]
    UnexpectedNull,
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A varint runs past its maximum width.
    #[error("varint is longer than {0} bytes")]
    VarintTooLong(usize),
    /// The message does not exist in this version.
    #[error("version {version} is not supported (valid versions {min}-{max})")]
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
        /// Lowest valid version.
        min: i16,
        /// Highest valid version.
        max: i16,
    },
    /// An API key this codec does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A checksum did not match.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The checksum stored in the input.
        stored: u32,
        /// The checksum computed over the input.
        computed: u32,
    },
    /// Bytes were left over after a value that must fill its input.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// Decompression failed or produced more than the allowed size.
    #[error("decompression failed: {0}")]
    Compression(String),
    /// The batch uses a codec whose cargo feature is off in this build.
    #[error("{0} compression is not enabled: turn on the `{0}` feature of kafka-protocol (or of kafka-producer, kafka-consumer or kafka-group, which forward it)")]
    CodecNotEnabled(crate::compression::Compression),
    /// A value is out of its valid range.
    #[error("{0}")]
    Invalid(String),
}

/// An error decoding bytes from the wire, with the path of what was being decoded.
///
/// Boxed, so that a `Result` carrying it is small: each `?` of the generated codecs
/// moves a pointer, not the whole error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(Box<Contexted<DecodeErrorKind>>);

contexted_error!(DecodeError, DecodeErrorKind, "decoding", "decoded");

impl DecodeError {
    /// True when the error is only that the input ended early: more bytes may make it
    /// decodable (a truncated frame or record batch).
    pub fn is_truncated(&self) -> bool {
        matches!(
            self.0.kind,
            DecodeErrorKind::UnexpectedEof { .. } | DecodeErrorKind::LengthTooLarge { .. }
        )
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        DecodeError::new(kind)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decoding ")?;
        write_path(f, &self.0.context)?;
        write!(f, ": {}", self.0.kind)
    }
}

impl std::error::Error for DecodeError {}

/// Why encoding failed, without the context of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// The message does not exist in this version.
    #[error("version {version} is not supported (valid versions {min}-{max})")]
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
        /// Lowest valid version.
        min: i16,
        /// Highest valid version.
        max: i16,
    },
    /// A field holds a non-default value but does not exist in this version: writing
    /// would silently lose it.
    #[error(
        "field has a non-default value but exists only in versions {versions}, not in {version}"
    )]
    FieldNotInVersion {
        /// The version asked for.
        version: i16,
        /// The versions the field exists in, as Kafka writes them (`3+`, `0-4`).
        versions: &'static str,
    },
    /// A field is null but the version does not allow null there.
    #[error("null is not allowed in version {version} (nullable in {nullable_versions})")]
    NullNotAllowed {
        /// The version asked for.
        version: i16,
        /// The versions in which the field may be null.
        nullable_versions: &'static str,
    },
    /// A string, bytes or array is longer than its length prefix can say.
    #[error("length {0} does not fit the length prefix")]
    TooLong(usize),
    /// Compression failed.
    #[error("compression failed: {0}")]
    Compression(String),
    /// The batch uses a codec whose cargo feature is off in this build.
    #[error("{0} compression is not enabled: turn on the `{0}` feature of kafka-protocol (or of kafka-producer, kafka-consumer or kafka-group, which forward it)")]
    CodecNotEnabled(crate::compression::Compression),
    /// A value is out of its valid range.
    #[error("{0}")]
    Invalid(String),
}

/// An error encoding a value, with the path of what was being encoded.
///
/// Boxed, as [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(Box<Contexted<EncodeErrorKind>>);

contexted_error!(EncodeError, EncodeErrorKind, "encoding", "encoded");

impl From<EncodeErrorKind> for EncodeError {
    fn from(kind: EncodeErrorKind) -> Self {
        EncodeError::new(kind)
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("encoding ")?;
        write_path(f, &self.0.context)?;
        write!(f, ": {}", self.0.kind)
    }
}

impl std::error::Error for EncodeError {}

fn write_path(f: &mut fmt::Formatter<'_>, context: &[Cow<'static, str>]) -> fmt::Result {
    if context.is_empty() {
        return f.write_str("input");
    }
    for (i, part) in context.iter().rev().enumerate() {
        if i > 0 && !part.starts_with('[') {
            f.write_str(".")?;
        }
        f.write_str(part)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_path_outermost_first() {
        let e = DecodeError::new(DecodeErrorKind::UnexpectedEof {
            needed: 4,
            remaining: 1,
        })
        .within("error_code")
        .within("[2]")
        .within("partitions")
        .within("ProduceResponse v9");
        assert_eq!(
            e.to_string(),
            "decoding ProduceResponse v9.partitions[2].error_code: needed 4 more bytes but only 1 are left"
        );
        assert!(e.is_truncated());
    }
}
