//! The traits every generated message implements, and version ranges.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::messages::ApiKey;
use crate::wire::Decoder;
use bytes::{Bytes, BytesMut};
use std::fmt;

/// An inclusive range of versions, as Kafka's `validVersions` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl VersionRange {
    /// The range `min..=max`.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// True when `version` is in the range.
    pub const fn contains(&self, version: i16) -> bool {
        version >= self.min && version <= self.max
    }

    /// The overlap of two ranges, or `None` when they share no version.
    pub fn intersect(&self, other: &VersionRange) -> Option<VersionRange> {
        let min = self.min.max(other.min);
        let max = self.max.min(other.max);
        (min <= max).then_some(VersionRange { min, max })
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// Writes a value in a chosen version. Sizes are computed up front with
/// [`encoded_len`](Encode::encoded_len) so a buffer is reserved once.
pub trait Encode {
    /// The exact number of bytes [`encode`](Encode::encode) writes in `version`.
    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError>;

    /// Appends the value in `version` to `buf`.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;

    /// Encodes into a new buffer of exactly the right size.
    fn encode_to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(version)?);
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }
}

/// Reads a value of a chosen version.
pub trait Decode: Sized {
    /// Reads the value from `decoder`, leaving it after the value.
    fn decode(decoder: &mut Decoder<'_>, version: i16) -> Result<Self, DecodeError>;

    /// Reads the value from the whole of `bytes`; bytes left over are an error.
    fn decode_bytes(bytes: &Bytes, version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let value = Self::decode(&mut d, version)?;
        if !d.is_empty() {
            return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(
                d.remaining(),
            )));
        }
        Ok(value)
    }
}

/// A top-level message of the protocol (a request, a response, a header or a data
/// schema such as the consumer protocol's subscription).
pub trait Message: Encode + Decode + Default + Clone + fmt::Debug + PartialEq {
    /// Kafka's name of the message, e.g. `ProduceRequest`.
    const NAME: &'static str;
    /// The versions the message has.
    const VERSIONS: VersionRange;
    /// The first flexible version (compact encodings and tagged fields), if any.
    const FIRST_FLEXIBLE: Option<i16>;
}

/// A request, tied to its API key and response type.
pub trait Request: Message {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The response the broker answers with.
    type Response: Response;
}

/// A response, tied to its API key.
pub trait Response: Message {
    /// The API this response belongs to.
    const API_KEY: ApiKey;
}
