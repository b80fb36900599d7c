//! gzip: one member written at the default level; one or more read, bounded.

use super::*;
use std::io::{Read, Write};

/// Reads all of `reader` into one buffer, failing once it yields more than `max_output`
/// bytes. `hint` sizes the first reservation (it is capped by `max_output`).
pub(super) fn read_bounded(
    reader: impl Read,
    max_output: usize,
    hint: usize,
    codec: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = buffers::take(hint.min(max_output));
    let limit = (max_output as u64).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| decode_err(codec, e))?;
    if out.len() > max_output {
        return Err(too_large(codec, max_output));
    }
    Ok(out)
}

pub(super) fn gzip_compress<P: AsRef<[u8]>, W: Write>(
    parts: &[P],
    out: &mut W,
) -> Result<(), EncodeError> {
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    for part in parts {
        enc.write_all(part.as_ref())
            .map_err(|e| encode_err("gzip", e))?;
    }
    enc.finish().map_err(|e| encode_err("gzip", e))?;
    Ok(())
}

pub(super) fn gzip_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
    if input.is_empty() {
        return Err(decode_err("gzip", "empty input"));
    }
    let dec = flate2::read::MultiGzDecoder::new(input);
    read_bounded(dec, max_output, input.len().saturating_mul(4), "gzip").map(buffers::into_bytes)
}
