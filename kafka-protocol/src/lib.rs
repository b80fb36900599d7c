//! The Kafka wire protocol, with no async runtime: every request and response of every
//! version (generated from Kafka's message definitions), request and response headers
//! and frames, the protocol's error codes, record batches (v2) and legacy message sets
//! (v0/v1), and their compression codecs.
//!
//! Decoding reads out of a [`bytes::Bytes`] frame with `nom`; strings, keys, values and
//! header values come out as zero-copy slices of it. Encoding computes sizes first and
//! writes into a [`bytes::BytesMut`].

mod buffers;
pub mod compression;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod messages;
pub mod protocol;
pub mod records;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod testing;
pub mod types;
pub mod wire;

pub use error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};

pub use error_code::ErrorCode;
pub use messages::{ApiKey, RequestKind, ResponseKind};
pub use protocol::{Decode, Encode, Message, Request, Response, VersionRange};
pub use types::{StrBytes, UnknownTaggedFields, Uuid};

/// The crate README's code runs as a doctest, so its example cannot rot (the
/// workspace README's is doctested by kafka-examples, which has every crate it uses).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
