//! Input: API key selector (2 bytes, big-endian, taken modulo `ApiKey::ALL.len()`),
//! version selector (2 bytes, big-endian, taken modulo the API's version count and
//! added to its lowest version), then a response frame without its size prefix.
//!
//! A frame that decodes must re-encode, and the re-encoded frame must decode to an
//! equal value (bytes may differ: non-minimal varints and the like are legal input).
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{decode_response_kind, encode_response_kind};
use kafka_protocol::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, frame)) = data.split_first_chunk::<4>() else {
        return;
    };
    let key_sel = u16::from_be_bytes([selector[0], selector[1]]) as usize;
    let ver_sel = u16::from_be_bytes([selector[2], selector[3]]);
    let api_key = ApiKey::ALL[key_sel % ApiKey::ALL.len()];
    let range = api_key.versions();
    let count = (range.max - range.min + 1) as u16;
    let version = range.min + (ver_sel % count) as i16;

    let frame = Bytes::copy_from_slice(frame);
    let Ok((header, body)) = decode_response_kind(&frame, api_key, version) else {
        return;
    };
    assert_eq!(body.api_key(), api_key);

    let mut buf = BytesMut::new();
    if let Err(e) = encode_response_kind(&mut buf, &header, version, &body) {
        panic!("{api_key} v{version}: decoded response does not re-encode: {e}\n{body:?}");
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    assert_eq!(
        size as usize,
        buf.len() - 4,
        "{api_key} v{version}: size prefix"
    );
    let again = buf.freeze().slice(4..);
    let (header2, body2) = match decode_response_kind(&again, api_key, version) {
        Ok(v) => v,
        Err(e) => {
            panic!("{api_key} v{version}: re-encoded response does not decode: {e}\n{body:?}")
        }
    };
    assert_eq!(header2, header, "{api_key} v{version}: header round trip");
    if body2 != body {
        // Float fields holding NaN compare unequal to themselves; the bytes they
        // encode to must still be the same.
        let mut buf2 = BytesMut::new();
        encode_response_kind(&mut buf2, &header2, version, &body2)
            .expect("a decoded response re-encodes");
        assert_eq!(
            &buf2[4..],
            &again[..],
            "{api_key} v{version}: body round trip\nfirst:  {body:?}\nsecond: {body2:?}"
        );
    }
});
