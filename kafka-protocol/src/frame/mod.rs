//! Whole frames: a size prefix, a request or response header of the version the API
//! and its version call for, and the body.
//!
//! Transports read the 4-byte size with [`frame_size`] (which enforces a maximum),
//! then hand the frame without its prefix to the `decode_*` functions here.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use crate::protocol::{Decode, Encode, Request, Response};
use crate::types::StrBytes;
use crate::wire::Decoder;
use bytes::{BufMut, Bytes, BytesMut};

/// The size of the frame whose 4-byte prefix starts `buf`, or `None` when fewer than 4
/// bytes are there. A negative size or one over `max_size` is an error, raised before
/// any buffer is reserved for the frame.
pub fn frame_size(buf: &[u8], max_size: usize) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if size < 0 {
        return Err(
            DecodeError::new(DecodeErrorKind::InvalidLength(i64::from(size))).within("frame size"),
        );
    }
    if size as usize > max_size {
        return Err(DecodeError::new(DecodeErrorKind::Invalid(format!(
            "frame of {size} bytes is over the maximum of {max_size}"
        )))
        .within("frame size"));
    }
    Ok(Some(size as usize))
}

/// The header a request of `api_key` and `version` is sent with.
pub fn request_header(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<StrBytes>,
) -> RequestHeader {
    RequestHeader {
        request_api_key: api_key.key(),
        request_api_version: version,
        correlation_id,
        client_id,
        ..Default::default()
    }
}

/// Writes a frame: a size placeholder, the header, the body, then the size. One pass
/// over the message (no length computed first); on an error `buf` is left as it was.
fn encode_frame(
    buf: &mut BytesMut,
    header: &impl Encode,
    header_version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    let written = header
        .encode(buf, header_version)
        .and_then(|()| body(buf))
        .and_then(|()| {
            let size = buf.len() - start - 4;
            i32::try_from(size).map_err(|_| {
                EncodeError::new(crate::error::EncodeErrorKind::TooLong(size)).within("frame")
            })
        });
    match written {
        Ok(size) => {
            buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// Appends a whole request frame (size, header, body) to `buf`. The header's API key
/// and version are taken from `header`, which [`request_header`] builds.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    header: &RequestHeader,
    request: &R,
) -> Result<(), EncodeError> {
    let version = header.request_api_version;
    let hv = R::API_KEY.request_header_version(version);
    encode_frame(buf, header, hv, |b| request.encode(b, version))
}

/// Appends a whole request frame for a request whose type is chosen at run time.
pub fn encode_request_kind(
    buf: &mut BytesMut,
    header: &RequestHeader,
    request: &RequestKind,
) -> Result<(), EncodeError> {
    let version = header.request_api_version;
    let hv = request.api_key().request_header_version(version);
    encode_frame(buf, header, hv, |b| request.encode(b, version))
}

/// Appends a whole response frame (size, header, body) to `buf`.
pub fn encode_response<R: Response>(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let hv = R::API_KEY.response_header_version(version);
    encode_frame(buf, &header, hv, |b| response.encode(b, version))
}

/// Appends a whole response frame for a response whose type is chosen at run time.
pub fn encode_response_kind(
    buf: &mut BytesMut,
    header: &ResponseHeader,
    version: i16,
    response: &ResponseKind,
) -> Result<(), EncodeError> {
    let hv = response.api_key().response_header_version(version);
    encode_frame(buf, header, hv, |b| response.encode(b, version))
}

/// The API key, version and correlation id at the start of a request frame (without
/// its size prefix), read without decoding the rest: what a broker needs to answer
/// even a request it cannot decode.
pub fn peek_request(frame: &[u8]) -> Result<(i16, i16, i32), DecodeError> {
    let Some(h) = frame.get(..8) else {
        return Err(DecodeError::new(DecodeErrorKind::UnexpectedEof {
            needed: 8,
            remaining: frame.len(),
        })
        .within("request header"));
    };
    Ok((
        i16::from_be_bytes([h[0], h[1]]),
        i16::from_be_bytes([h[2], h[3]]),
        i32::from_be_bytes([h[4], h[5], h[6], h[7]]),
    ))
}

fn finish<T>(d: &Decoder<'_>, value: T, what: &'static str) -> Result<T, DecodeError> {
    if d.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::new(DecodeErrorKind::TrailingBytes(d.remaining())).within(what))
    }
}

/// Decodes a request frame (without its size prefix): the header, whose version
/// follows from the API key and version it starts with, then the body.
pub fn decode_request(frame: &Bytes) -> Result<(RequestHeader, RequestKind), DecodeError> {
    let (key, version, _) = peek_request(frame)?;
    let api_key = ApiKey::try_from(key).map_err(|e| e.within("request header"))?;
    let mut d = Decoder::new(frame);
    let header = RequestHeader::decode(&mut d, api_key.request_header_version(version))?;
    let body = RequestKind::decode(api_key, &mut d, version)?;
    finish(&d, (header, body), "request")
}

/// Decodes a response frame (without its size prefix) to a request of type `R` that
/// was sent in `version`.
pub fn decode_response<R: Response>(
    frame: &Bytes,
    version: i16,
) -> Result<(ResponseHeader, R), DecodeError> {
    let mut d = Decoder::new(frame);
    let header = ResponseHeader::decode(&mut d, R::API_KEY.response_header_version(version))?;
    let body = R::decode(&mut d, version)?;
    finish(&d, (header, body), R::NAME)
}

/// Decodes any response frame (without its size prefix), given the API key and version
/// of the request it answers.
pub fn decode_response_kind(
    frame: &Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseKind), DecodeError> {
    let mut d = Decoder::new(frame);
    let header = ResponseHeader::decode(&mut d, api_key.response_header_version(version))?;
    let body = ResponseKind::decode(api_key, &mut d, version)?;
    finish(&d, (header, body), "response")
}

/// The correlation id at the start of a response frame (without its size prefix).
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame.get(..4) {
        Some(h) => Ok(i32::from_be_bytes([h[0], h[1], h[2], h[3]])),
        None => Err(DecodeError::new(DecodeErrorKind::UnexpectedEof {
            needed: 4,
            remaining: frame.len(),
        })
        .within("response header")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn api_versions_response_header_is_always_v0() {
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
        assert_eq!(ApiKey::Metadata.response_header_version(8), 0);
        assert_eq!(ApiKey::Metadata.request_header_version(8), 1);
    }

    #[test]
    fn request_frame_round_trips() {
        let mut buf = BytesMut::new();
        let header = request_header(ApiKey::Metadata, 12, 7, Some("client".into()));
        encode_request(&mut buf, &header, &MetadataRequest::default()).unwrap();
        let size = frame_size(&buf, 1 << 20).unwrap().unwrap();
        assert_eq!(size + 4, buf.len());
        let frame = buf.freeze().slice(4..);
        let (h, body) = decode_request(&frame).unwrap();
        assert_eq!(h, header);
        assert_eq!(body, RequestKind::Metadata(MetadataRequest::default()));
    }

    #[test]
    fn a_request_that_cannot_be_encoded_leaves_the_buffer_as_it_was() {
        let mut buf = BytesMut::from(&b"earlier frames"[..]);
        // A topic id in version 9 (ids came in 10): found after the size, header and
        // part of the body were written.
        let request = MetadataRequest {
            topics: Some(vec![
                crate::messages::metadata_request::MetadataRequestTopic {
                    topic_id: crate::types::Uuid([7; 16]),
                    name: Some("t".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let header = request_header(ApiKey::Metadata, 9, 1, None);
        let e = encode_request(&mut buf, &header, &request).unwrap_err();
        assert!(e.to_string().contains("topic_id"), "{e}");
        assert_eq!(&buf[..], b"earlier frames");
        // The size written is the frame's, after whatever was in the buffer.
        encode_request(&mut buf, &header, &MetadataRequest::default()).unwrap();
        let size = frame_size(&buf[14..], 1 << 20).unwrap().unwrap();
        assert_eq!(size + 4 + 14, buf.len());
    }

    #[test]
    fn response_frame_round_trips() {
        let mut buf = BytesMut::new();
        let resp = ApiVersionsResponse {
            error_code: 35,
            ..Default::default()
        };
        encode_response(&mut buf, 9, 3, &resp).unwrap();
        let frame = buf.freeze().slice(4..);
        let (h, r) = decode_response::<ApiVersionsResponse>(&frame, 3).unwrap();
        assert_eq!(h.correlation_id, 9);
        assert_eq!(r, resp);
        let _ = ApiVersionsRequest::default();
    }

    #[test]
    fn hostile_frame_sizes_are_rejected() {
        assert!(frame_size(&[0x80, 0, 0, 0], 100).is_err());
        assert!(frame_size(&[0x7f, 0xff, 0xff, 0xff], 100 << 20).is_err());
        assert_eq!(frame_size(&[0, 0], 100).unwrap(), None);
    }

    #[test]
    fn unknown_api_key_is_named() {
        let frame = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
        let err = decode_request(&frame).unwrap_err();
        assert!(err.to_string().contains("unknown API key 32512"), "{err}");
    }
}

mod segments;
pub use segments::{encode_produce_request_segments, SEGMENT_MIN};
