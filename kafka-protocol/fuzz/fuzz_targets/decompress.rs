//! Input: a codec selector byte, then the data. Selector modulo 6: 0-4 are
//! `Compression::from_code` (none, gzip, snappy, lz4, zstd); 5 is LZ4 with the legacy
//! (magic 0) frame-header checksum ignored (`decompress_lz4(.., true)`).
//!
//! Decompression is capped at 1 MiB and must respect the cap. The raw data must also
//! survive a compress/decompress round trip with the chosen codec.
#![no_main]

use bytes::BytesMut;
use kafka_protocol::compression::{decompress_lz4, Compression};
use libfuzzer_sys::fuzz_target;

const MAX_OUTPUT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let selector = selector % 6;
    let code = if selector == 5 { 3 } else { selector };
    let codec = Compression::from_code(code).expect("codes 0-4 exist");

    let out = if selector == 5 {
        decompress_lz4(input, MAX_OUTPUT, true)
    } else {
        codec.decompress(input, MAX_OUTPUT)
    };
    if let Ok(out) = out {
        assert!(out.len() <= MAX_OUTPUT, "{codec}: {} bytes out", out.len());
    }

    // Round trip the raw data; the limit is exactly its length.
    let mut compressed = BytesMut::new();
    if let Err(e) = codec.compress(input, &mut compressed) {
        panic!("{codec}: {} bytes do not compress: {e}", input.len());
    }
    let back = match codec.decompress(&compressed, input.len()) {
        Ok(b) => b,
        Err(e) => panic!(
            "{codec}: compressed {} bytes do not decompress: {e}",
            input.len()
        ),
    };
    assert_eq!(&back[..], input, "{codec}: round trip");
    if codec == Compression::Lz4 {
        let legacy = decompress_lz4(&compressed, input.len(), true).expect("lz4 legacy path");
        assert_eq!(
            &legacy[..],
            input,
            "lz4 (header checksum ignored): round trip"
        );
    }
});
