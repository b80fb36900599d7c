//! snappy: one raw block written; raw snappy or the xerial framing of the Java client read, bounded.

use super::*;

/// The header of the xerial snappy framing (`SnappyOutputStream` of snappy-java).
pub(super) const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic, version and compatible version.
pub(super) const XERIAL_HEADER_LEN: usize = 16;
/// No raw snappy stream can expand more than this: the densest element, a copy with a
/// two-byte offset, takes three bytes and yields at most 64.
pub(super) const SNAPPY_MAX_RATIO: usize = 22;

pub(super) fn snappy_compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    let max = snap::raw::max_compress_len(input.len());
    if max == 0 && !input.is_empty() {
        return Err(encode_err("snappy", "input is too large"));
    }
    let start = out.len();
    out.resize(start + max, 0);
    let n = snap::raw::Encoder::new()
        .compress(input, &mut out[start..])
        .map_err(|e| encode_err("snappy", e));
    match n {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Decompresses one raw snappy block, appending to `out`, which may not grow past
/// `max_output`.
pub(super) fn snappy_raw_into(
    input: &[u8],
    out: &mut Vec<u8>,
    max_output: usize,
) -> Result<(), DecodeError> {
    let n = snap::raw::decompress_len(input).map_err(|e| decode_err("snappy", e))?;
    if n > max_output.saturating_sub(out.len()) {
        return Err(too_large("snappy", max_output));
    }
    if n > input.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(decode_err(
            "snappy",
            format_args!("{} bytes cannot decompress to {n}", input.len()),
        ));
    }
    if out.capacity() == 0 {
        *out = buffers::take(n);
    }
    let start = out.len();
    out.resize(start + n, 0);
    match snap::raw::Decoder::new().decompress(input, &mut out[start..]) {
        Ok(written) if written == n => Ok(()),
        Ok(written) => Err(decode_err(
            "snappy",
            format_args!("block wrote {written} bytes but announced {n}"),
        )),
        Err(e) => Err(decode_err("snappy", e)),
    }
}

pub(super) fn snappy_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
        // Xerial framing: magic, version and compatible version (two big-endian int32),
        // then blocks of a big-endian int32 length and a raw snappy block.
        let mut rest = &input[XERIAL_HEADER_LEN..];
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(decode_err("snappy", "truncated xerial block length"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > tail.len() {
                return Err(decode_err(
                    "snappy",
                    format_args!("xerial block of {len} bytes but {} are left", tail.len()),
                ));
            }
            let (block, tail) = tail.split_at(len);
            snappy_raw_into(block, &mut out, max_output)?;
            rest = tail;
        }
    } else {
        snappy_raw_into(input, &mut out, max_output)?;
    }
    Ok(buffers::into_bytes(out))
}
