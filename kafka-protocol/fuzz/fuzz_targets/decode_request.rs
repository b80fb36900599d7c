//! Input: a request frame without its size prefix (its header names the API key and
//! version).
//!
//! A frame that decodes must re-encode, and the re-encoded frame must decode to an
//! equal value (bytes may differ: non-minimal varints and the like are legal input).
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{decode_request, encode_request_kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let Ok((header, body)) = decode_request(&frame) else {
        return;
    };
    let api_key = body.api_key();
    let version = header.request_api_version;
    assert_eq!(api_key.key(), header.request_api_key);

    let mut buf = BytesMut::new();
    if let Err(e) = encode_request_kind(&mut buf, &header, &body) {
        panic!("{api_key} v{version}: decoded request does not re-encode: {e}\n{body:?}");
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    assert_eq!(
        size as usize,
        buf.len() - 4,
        "{api_key} v{version}: size prefix"
    );
    let again = buf.freeze().slice(4..);
    let (header2, body2) = match decode_request(&again) {
        Ok(v) => v,
        Err(e) => panic!("{api_key} v{version}: re-encoded request does not decode: {e}\n{body:?}"),
    };
    assert_eq!(header2, header, "{api_key} v{version}: header round trip");
    if body2 != body {
        // Float fields holding NaN compare unequal to themselves; the bytes they
        // encode to must still be the same.
        let mut buf2 = BytesMut::new();
        encode_request_kind(&mut buf2, &header2, &body2).expect("a decoded request re-encodes");
        assert_eq!(
            &buf2[4..],
            &again[..],
            "{api_key} v{version}: body round trip\nfirst:  {body:?}\nsecond: {body2:?}"
        );
    }
});
