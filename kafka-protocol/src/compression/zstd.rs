//! zstd: one frame written at the fastest level; frames and skippable frames read,
//! bounded.

use super::*;
use std::io::Read;

pub(super) const ZSTD_MAGIC: u32 = 0xFD2F_B528;
pub(super) const ZSTD_SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// The largest block a zstd frame may hold; the window is never clamped below it.
pub(super) const ZSTD_BLOCK_MAX: u64 = 128 * 1024;

pub(super) fn zstd_compress<P: AsRef<[u8]>, W: std::io::Write>(
    parts: &[P],
    out: &mut W,
) -> Result<(), EncodeError> {
    let source = PartsReader { parts, at: 0 };
    ruzstd::encoding::compress(source, out, ruzstd::encoding::CompressionLevel::Fastest);
    Ok(())
}

/// Reads `parts` one after another.
pub(super) struct PartsReader<'a, P> {
    parts: &'a [P],
    /// How far into the first part reading has come.
    at: usize,
}

impl<P: AsRef<[u8]>> Read for PartsReader<'_, P> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((first, rest)) = self.parts.split_first() {
            let left = &first.as_ref()[self.at..];
            if left.is_empty() {
                (self.parts, self.at) = (rest, 0);
                continue;
            }
            let n = left.len().min(buf.len());
            buf[..n].copy_from_slice(&left[..n]);
            self.at += n;
            return Ok(n);
        }
        Ok(0)
    }
}

pub(super) fn zstd_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
    let out = decode_frames("zstd", input, |rest, out| zstd_frame(rest, out, max_output))?;
    Ok(Bytes::from(out))
}

/// Decodes one zstd frame from the start of `input` onto `out`, returning what follows.
///
/// The decoder reserves the frame's whole window up front, and the window descriptor
/// is hostile input. Since the output can never exceed `max_output`, no back
/// reference can reach further than that, so a larger window is lowered to the power
/// of two that covers `max_output` before the frame is handed over.
pub(super) fn zstd_frame<'a>(
    input: &'a [u8],
    out: &mut Vec<u8>,
    max_output: usize,
) -> Result<&'a [u8], DecodeError> {
    let too_short = || decode_err("zstd", "truncated frame header");
    let magic = le_u32(input.get(..4).ok_or_else(too_short)?);
    if ZSTD_SKIPPABLE_MAGIC.contains(&magic) {
        let len = le_u32(input.get(4..8).ok_or_else(too_short)?) as usize;
        return input
            .get(8..)
            .and_then(|r| r.get(len..))
            .ok_or_else(|| decode_err("zstd", "truncated skippable frame"));
    }
    if magic != ZSTD_MAGIC {
        return Err(decode_err("zstd", format_args!("bad magic {magic:#010x}")));
    }
    let mut header = [0u8; 6];
    let fhd = *input.get(4).ok_or_else(too_short)?;
    let single_segment = fhd & 0x20 != 0;
    let allowed = max_output.saturating_sub(out.len());
    // Frame content size, when the frame says it: more than is allowed fails at once.
    let dict_len = [0usize, 1, 2, 4][(fhd & 3) as usize];
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let fcs_at = 5 + usize::from(!single_segment) + dict_len;
    if fcs_len > 0 {
        let raw = input.get(fcs_at..fcs_at + fcs_len).ok_or_else(too_short)?;
        let mut w = [0u8; 8];
        w[..fcs_len].copy_from_slice(raw);
        let mut size = u64::from_le_bytes(w);
        if fcs_len == 2 {
            size += 256;
        }
        if size > allowed as u64 {
            return Err(too_large("zstd", max_output));
        }
    }
    let header_len = if single_segment { 5 } else { 6 };
    header[..header_len].copy_from_slice(input.get(..header_len).ok_or_else(too_short)?);
    if !single_segment {
        let wd = header[5];
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        let window = base + (base / 8) * u64::from(wd & 7);
        let cap = (max_output as u64).max(ZSTD_BLOCK_MAX);
        if window > cap {
            let cap_log = 64 - (cap - 1).leading_zeros();
            header[5] = ((cap_log.max(10) - 10) as u8) << 3;
        }
    }
    let mut source = (&header[..header_len]).chain(&input[header_len..]);
    let remaining = {
        let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut source)
            .map_err(|e| decode_err("zstd", e))?;
        let limit = (allowed as u64).saturating_add(1);
        let start = out.len();
        (&mut dec)
            .take(limit)
            .read_to_end(out)
            .map_err(|e| decode_err("zstd", e))?;
        if out.len() - start > allowed {
            return Err(too_large("zstd", max_output));
        }
        let frame = &dec.decoder;
        if !frame.is_finished() {
            return Err(decode_err("zstd", "frame did not finish"));
        }
        if let (Some(stored), Some(computed)) = (
            frame.get_checksum_from_data(),
            frame.get_calculated_checksum(),
        ) {
            if stored != computed {
                return Err(decode_err("zstd", "content checksum mismatch"));
            }
        }
        source.get_ref().1.len()
    };
    Ok(&input[input.len() - remaining..])
}
