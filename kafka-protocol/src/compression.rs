//! The compression codecs of record batches and legacy message sets: gzip, snappy, LZ4
//! and zstd, each in the framing Kafka's clients write.
//!
//! Decompression is bounded: it never produces more than the `max_output` it is given
//! (an input that would is an error, so a small "decompression bomb" cannot exhaust
//! memory), and what it reserves up front is bounded by both `max_output` and a
//! multiple of the input that no honest stream of the codec can exceed. No input makes
//! it panic.
//!
//! | codec  | written as                                   | read as                                              |
//! |--------|----------------------------------------------|------------------------------------------------------|
//! | gzip   | one gzip member, default level               | one or more gzip members                             |
//! | snappy | one raw snappy block                         | raw snappy, or the xerial framing the Java client writes |
//! | lz4    | LZ4 frame, independent blocks of up to 64 KiB | LZ4 frames (any block size, linked or independent, checksums verified) |
//! | zstd   | one zstd frame (fastest level)               | one or more zstd frames, skippable frames skipped    |
//!
//! Each codec is behind the cargo feature of its name (`gzip`, `snappy`, `lz4`, `zstd`;
//! all on by default). A codec whose feature is off is still named, read from and
//! written to attributes, but compressing or decompressing with it is a
//! `CodecNotEnabled` error that names the feature ([`Compression::is_enabled`]).

// With a codec off, the helpers only it uses are unused.
#![cfg_attr(
    not(all(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    )),
    allow(dead_code, unused_imports)
)]

use crate::buffers;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use bytes::{BufMut, Bytes, BytesMut};
#[cfg(any(feature = "gzip", feature = "zstd"))]
use std::io::Read;
#[cfg(feature = "gzip")]
use std::io::Write;
#[cfg(feature = "lz4")]
use twox_hash::XxHash32;

/// A compression codec, as the low three bits of a batch's (or legacy message's)
/// attributes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (code 0).
    #[default]
    None,
    /// gzip (code 1).
    Gzip,
    /// snappy (code 2).
    Snappy,
    /// LZ4 frame (code 3).
    Lz4,
    /// zstd (code 4).
    Zstd,
}

fn decode_err(codec: &'static str, msg: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Compression(format!("{codec}: {msg}")))
}

fn encode_err(codec: &'static str, msg: impl std::fmt::Display) -> EncodeError {
    EncodeError::new(EncodeErrorKind::Compression(format!("{codec}: {msg}")))
}

fn too_large(codec: &'static str, max_output: usize) -> DecodeError {
    decode_err(
        codec,
        format_args!("output is larger than the limit of {max_output} bytes"),
    )
}

impl Compression {
    /// The attributes mask that holds the codec.
    pub const ATTRIBUTES_MASK: i16 = 0x07;

    /// The codec's code (0-4).
    pub const fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this code, or `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec named by the low three bits of `attributes`; codes 5-7 are an error.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        let code = (attributes & Self::ATTRIBUTES_MASK) as u8;
        Self::from_code(code).ok_or_else(|| {
            DecodeError::new(DecodeErrorKind::Invalid(format!(
                "unknown compression code {code}"
            )))
        })
    }

    /// The name Kafka's `compression.type` uses: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with the codec: `None` always,
    /// each other codec when the cargo feature of its name (`gzip`, `snappy`, `lz4`,
    /// `zstd`; all on by default) is on. Without it, [`compress`](Self::compress) and
    /// [`decompress`](Self::decompress) return a `CodecNotEnabled` error naming the
    /// feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// Compresses `input` and appends the result to `out` (for `None`, appends `input`).
    pub fn compress(&self, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
        self.compress_parts(&[input], out)
    }

    /// Compresses `parts` as one input, one after another, and appends the result to
    /// `out`, without gathering them into one buffer first (snappy, which compresses
    /// one contiguous block, excepted). LZ4 starts a new block at each part.
    pub(crate) fn compress_parts<P: AsRef<[u8]>>(
        &self,
        parts: &[P],
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self {
            Compression::None => {
                for part in parts {
                    out.extend_from_slice(part.as_ref());
                }
                Ok(())
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => gzip_compress(parts, out),
            #[cfg(feature = "snappy")]
            Compression::Snappy => match parts {
                [one] => snappy_compress(one.as_ref(), out),
                _ => {
                    let mut all = Vec::with_capacity(parts_len(parts));
                    for part in parts {
                        all.extend_from_slice(part.as_ref());
                    }
                    snappy_compress(&all, out)
                }
            },
            #[cfg(feature = "lz4")]
            Compression::Lz4 => lz4_compress(parts, out),
            #[cfg(feature = "zstd")]
            Compression::Zstd => zstd_compress(parts, out),
            #[allow(unreachable_patterns)]
            codec => Err(EncodeError::new(EncodeErrorKind::CodecNotEnabled(*codec))),
        }
    }

    /// Decompresses `input`. Output larger than `max_output` bytes is an error, and so
    /// is any malformed input; neither panics.
    ///
    /// LZ4 frames must carry a correct header checksum here; see [`decompress_lz4`] for
    /// the legacy (magic 0) frames that do not.
    pub fn decompress(&self, input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
        match self {
            Compression::None => {
                if input.len() > max_output {
                    return Err(too_large("none", max_output));
                }
                Ok(Bytes::copy_from_slice(input))
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => gzip_decompress(input, max_output),
            #[cfg(feature = "snappy")]
            Compression::Snappy => snappy_decompress(input, max_output),
            Compression::Lz4 => decompress_lz4(input, max_output, false),
            #[cfg(feature = "zstd")]
            Compression::Zstd => zstd_decompress(input, max_output),
            #[allow(unreachable_patterns)]
            codec => Err(DecodeError::new(DecodeErrorKind::CodecNotEnabled(*codec))),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads all of `reader` into one buffer, failing once it yields more than `max_output`
/// bytes. `hint` sizes the first reservation (it is capped by `max_output`).
#[cfg(feature = "gzip")]
fn read_bounded(
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

// ---------------------------------------------------------------------------------
// gzip

/// The total length of `parts`.
fn parts_len<P: AsRef<[u8]>>(parts: &[P]) -> usize {
    parts.iter().map(|p| p.as_ref().len()).sum()
}

#[cfg(feature = "gzip")]
fn gzip_compress<P: AsRef<[u8]>>(parts: &[P], out: &mut BytesMut) -> Result<(), EncodeError> {
    out.reserve(parts_len(parts) / 2 + 64);
    let mut enc = flate2::write::GzEncoder::new(out.writer(), flate2::Compression::default());
    for part in parts {
        enc.write_all(part.as_ref())
            .map_err(|e| encode_err("gzip", e))?;
    }
    enc.finish().map_err(|e| encode_err("gzip", e))?;
    Ok(())
}

#[cfg(feature = "gzip")]
fn gzip_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
    if input.is_empty() {
        return Err(decode_err("gzip", "empty input"));
    }
    let dec = flate2::read::MultiGzDecoder::new(input);
    read_bounded(dec, max_output, input.len().saturating_mul(4), "gzip").map(buffers::into_bytes)
}

// ---------------------------------------------------------------------------------
// snappy

/// The header of the xerial snappy framing (`SnappyOutputStream` of snappy-java).
#[cfg(feature = "snappy")]
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic, version and compatible version.
#[cfg(feature = "snappy")]
const XERIAL_HEADER_LEN: usize = 16;
/// No raw snappy stream can expand more than this: the densest element, a copy with a
/// two-byte offset, takes three bytes and yields at most 64.
#[cfg(feature = "snappy")]
const SNAPPY_MAX_RATIO: usize = 22;

#[cfg(feature = "snappy")]
fn snappy_compress(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
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
#[cfg(feature = "snappy")]
fn snappy_raw_into(input: &[u8], out: &mut Vec<u8>, max_output: usize) -> Result<(), DecodeError> {
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

#[cfg(feature = "snappy")]
fn snappy_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
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

// ---------------------------------------------------------------------------------
// LZ4 frame

#[cfg(feature = "lz4")]
const LZ4_MAGIC: u32 = 0x184D_2204;
#[cfg(feature = "lz4")]
const LZ4_SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
#[cfg(feature = "lz4")]
const LZ4_FLG_VERSION: u8 = 0x40;
#[cfg(feature = "lz4")]
const LZ4_FLG_INDEPENDENT: u8 = 0x20;
#[cfg(feature = "lz4")]
const LZ4_FLG_BLOCK_CHECKSUM: u8 = 0x10;
#[cfg(feature = "lz4")]
const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
#[cfg(feature = "lz4")]
const LZ4_FLG_CONTENT_CHECKSUM: u8 = 0x04;
#[cfg(feature = "lz4")]
const LZ4_FLG_DICT_ID: u8 = 0x01;
/// The block size Kafka's clients write: 64 KiB.
#[cfg(feature = "lz4")]
const LZ4_BLOCK: usize = 64 * 1024;
/// BD byte for 64 KiB blocks.
#[cfg(feature = "lz4")]
const LZ4_BD_64K: u8 = 4 << 4;
/// Bit of a block size word that marks an uncompressed block.
#[cfg(feature = "lz4")]
const LZ4_UNCOMPRESSED: u32 = 0x8000_0000;
/// How far back a linked block may refer.
#[cfg(feature = "lz4")]
const LZ4_WINDOW: usize = 64 * 1024;
/// No LZ4 block can expand more than this (each extra length byte yields 255).
#[cfg(feature = "lz4")]
const LZ4_MAX_RATIO: usize = 255;

#[cfg(feature = "lz4")]
fn lz4_header_checksum(descriptor: &[u8]) -> u8 {
    (XxHash32::oneshot(0, descriptor) >> 8) as u8
}

#[cfg(feature = "lz4")]
fn lz4_compress<P: AsRef<[u8]>>(parts: &[P], out: &mut BytesMut) -> Result<(), EncodeError> {
    let flg = LZ4_FLG_VERSION | LZ4_FLG_INDEPENDENT;
    // Room for what records usually compress to; a block that needs more grows it.
    out.reserve(7 + parts_len(parts) / 2 + 4);
    out.put_u32_le(LZ4_MAGIC);
    out.put_u8(flg);
    out.put_u8(LZ4_BD_64K);
    out.put_u8(lz4_header_checksum(&[flg, LZ4_BD_64K]));
    // A frame's blocks may be shorter than its maximum block size, so each part's
    // blocks are compressed where they lie.
    for chunk in parts.iter().flat_map(|p| p.as_ref().chunks(LZ4_BLOCK)) {
        let start = out.len();
        let max = lz4_flex::block::get_maximum_output_size(chunk.len());
        out.resize(start + 4 + max, 0);
        let n = lz4_flex::block::compress_into(chunk, &mut out[start + 4..]);
        match n {
            Ok(n) if n < chunk.len() => {
                out.truncate(start + 4 + n);
                out[start..start + 4].copy_from_slice(&(n as u32).to_le_bytes());
            }
            Ok(_) => {
                // Incompressible: store the block as it is.
                out.truncate(start);
                out.put_u32_le(chunk.len() as u32 | LZ4_UNCOMPRESSED);
                out.put_slice(chunk);
            }
            Err(e) => {
                out.truncate(start);
                return Err(encode_err("lz4", e));
            }
        }
    }
    out.put_u32_le(0);
    Ok(())
}

/// Decompresses LZ4 frames (one or more, concatenated; skippable frames are skipped).
///
/// `ignore_header_checksum` skips the check of each frame descriptor's checksum byte:
/// Kafka's first LZ4 writer computed it over the magic number too, so legacy (magic 0)
/// messages carry a wrong one that the Java client does not check either. Block and
/// content checksums are still verified when the frame has them.
#[cfg(feature = "lz4")]
pub fn decompress_lz4(
    input: &[u8],
    max_output: usize,
    ignore_header_checksum: bool,
) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut frames = 0usize;
    while !rest.is_empty() {
        rest = lz4_frame(rest, &mut out, max_output, ignore_header_checksum)
            .map_err(|e| e.within(format!("lz4 frame {frames}")))?;
        frames += 1;
    }
    if frames == 0 {
        return Err(decode_err("lz4", "empty input"));
    }
    Ok(buffers::into_bytes(out))
}

/// Without the `lz4` feature: always the `CodecNotEnabled` error naming it.
#[cfg(not(feature = "lz4"))]
pub fn decompress_lz4(
    input: &[u8],
    max_output: usize,
    ignore_header_checksum: bool,
) -> Result<Bytes, DecodeError> {
    let _ = (input, max_output, ignore_header_checksum);
    Err(DecodeError::new(DecodeErrorKind::CodecNotEnabled(
        Compression::Lz4,
    )))
}

#[cfg(feature = "lz4")]
fn split<'a>(input: &'a [u8], n: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if input.len() < n {
        return Err(decode_err(
            "lz4",
            format_args!("truncated {what}: needed {n} bytes, {} left", input.len()),
        ));
    }
    Ok(input.split_at(n))
}

#[cfg(any(feature = "lz4", feature = "zstd"))]
fn le_u32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

/// Decodes one LZ4 frame from the start of `input` onto `out`, returning what follows it.
#[cfg(feature = "lz4")]
fn lz4_frame<'a>(
    input: &'a [u8],
    out: &mut Vec<u8>,
    max_output: usize,
    ignore_header_checksum: bool,
) -> Result<&'a [u8], DecodeError> {
    let (magic, rest) = split(input, 4, "magic")?;
    let magic = le_u32(magic);
    if LZ4_SKIPPABLE_MAGIC.contains(&magic) {
        let (len, rest) = split(rest, 4, "skippable frame")?;
        let (_, rest) = split(rest, le_u32(len) as usize, "skippable frame")?;
        return Ok(rest);
    }
    if magic != LZ4_MAGIC {
        return Err(decode_err("lz4", format_args!("bad magic {magic:#010x}")));
    }
    let (fixed, _) = split(rest, 2, "frame descriptor")?;
    let (flg, bd) = (fixed[0], fixed[1]);
    if flg & 0xC0 != LZ4_FLG_VERSION {
        return Err(decode_err(
            "lz4",
            format_args!("unsupported version in FLG {flg:#04x}"),
        ));
    }
    if flg & 0x02 != 0 || bd & 0x8F != 0 {
        return Err(decode_err(
            "lz4",
            "reserved bits set in the frame descriptor",
        ));
    }
    if flg & LZ4_FLG_DICT_ID != 0 {
        return Err(decode_err("lz4", "dictionaries are not supported"));
    }
    let block_max = match bd >> 4 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        other => {
            return Err(decode_err(
                "lz4",
                format_args!("unsupported block size {other}"),
            ))
        }
    };
    let descriptor_len = 2 + if flg & LZ4_FLG_CONTENT_SIZE != 0 {
        8
    } else {
        0
    };
    let (descriptor, rest) = split(rest, descriptor_len, "frame descriptor")?;
    let (hc, mut rest) = split(rest, 1, "header checksum")?;
    if !ignore_header_checksum && hc[0] != lz4_header_checksum(descriptor) {
        return Err(decode_err("lz4", "header checksum mismatch"));
    }
    let content_size = (flg & LZ4_FLG_CONTENT_SIZE != 0).then(|| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&descriptor[2..10]);
        u64::from_le_bytes(w)
    });
    if let Some(size) = content_size {
        if size > max_output.saturating_sub(out.len()) as u64 {
            return Err(too_large("lz4", max_output));
        }
    }
    let linked = flg & LZ4_FLG_INDEPENDENT == 0;
    let block_checksums = flg & LZ4_FLG_BLOCK_CHECKSUM != 0;
    // Reserve the frame's output once, so that the blocks do not reallocate and copy
    // it as it grows: the announced size, but never more than the blocks present can
    // produce (a few hostile bytes may announce any size up to `max_output`).
    let bound = lz4_blocks_bound(rest, block_max, block_checksums);
    let expected = content_size.map_or(bound, |size| bound.min(size as usize));
    let expected = expected.min(max_output.saturating_sub(out.len()));
    if out.capacity() == 0 {
        *out = buffers::take(expected);
    } else {
        out.reserve(expected);
    }
    let frame_start = out.len();
    loop {
        let (word, tail) = split(rest, 4, "block size")?;
        rest = tail;
        let word = le_u32(word);
        if word == 0 {
            break;
        }
        let size = (word & !LZ4_UNCOMPRESSED) as usize;
        if size > block_max {
            return Err(decode_err(
                "lz4",
                format_args!("block of {size} bytes exceeds the frame's maximum {block_max}"),
            ));
        }
        let (block, tail) = split(rest, size, "block")?;
        rest = tail;
        if block_checksums {
            let (sum, tail) = split(rest, 4, "block checksum")?;
            rest = tail;
            if XxHash32::oneshot(0, block) != le_u32(sum) {
                return Err(decode_err("lz4", "block checksum mismatch"));
            }
        }
        let allowed = max_output.saturating_sub(out.len());
        if word & LZ4_UNCOMPRESSED != 0 {
            if size > allowed {
                return Err(too_large("lz4", max_output));
            }
            out.extend_from_slice(block);
            continue;
        }
        let possible = block_max.min(size.saturating_mul(LZ4_MAX_RATIO).saturating_add(16));
        let room = possible.min(allowed);
        let start = out.len();
        out.resize(start + room, 0);
        let result = if linked && start > frame_start {
            let (prev, dst) = out.split_at_mut(start);
            let dict = &prev[start.saturating_sub(LZ4_WINDOW).max(frame_start)..];
            lz4_flex::block::decompress_into_with_dict(block, dst, dict)
        } else {
            lz4_flex::block::decompress_into(block, &mut out[start..])
        };
        match result {
            Ok(n) => out.truncate(start + n),
            Err(_) if room < possible => return Err(too_large("lz4", max_output)),
            Err(e) => return Err(decode_err("lz4", e)),
        }
    }
    if let Some(size) = content_size {
        let actual = (out.len() - frame_start) as u64;
        if actual != size {
            return Err(decode_err(
                "lz4",
                format_args!("frame announced {size} bytes but held {actual}"),
            ));
        }
    }
    if flg & LZ4_FLG_CONTENT_CHECKSUM != 0 {
        let (sum, tail) = split(rest, 4, "content checksum")?;
        rest = tail;
        if XxHash32::oneshot(0, &out[frame_start..]) != le_u32(sum) {
            return Err(decode_err("lz4", "content checksum mismatch"));
        }
    }
    Ok(rest)
}

/// The most the blocks at the start of `blocks` (up to the end mark) decompress to:
/// read from their size words alone; stops early at a truncated block (decoding then
/// reports it).
#[cfg(feature = "lz4")]
fn lz4_blocks_bound(mut blocks: &[u8], block_max: usize, block_checksums: bool) -> usize {
    let mut bound = 0usize;
    while let Some(word) = blocks.get(..4).map(le_u32) {
        if word == 0 {
            break;
        }
        // Only the bytes present count: a hostile size word may claim up to 2 GiB.
        let size = ((word & !LZ4_UNCOMPRESSED) as usize).min(blocks.len() - 4);
        bound = bound.saturating_add(if word & LZ4_UNCOMPRESSED != 0 {
            block_max.min(size)
        } else {
            block_max.min(size.saturating_mul(LZ4_MAX_RATIO).saturating_add(16))
        });
        let skip = 4 + size + if block_checksums { 4 } else { 0 };
        match blocks.get(skip..) {
            Some(rest) => blocks = rest,
            None => break,
        }
    }
    bound
}

// ---------------------------------------------------------------------------------
// zstd

#[cfg(feature = "zstd")]
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
#[cfg(feature = "zstd")]
const ZSTD_SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// The largest block a zstd frame may hold; the window is never clamped below it.
#[cfg(feature = "zstd")]
const ZSTD_BLOCK_MAX: u64 = 128 * 1024;

#[cfg(feature = "zstd")]
fn zstd_compress<P: AsRef<[u8]>>(parts: &[P], out: &mut BytesMut) -> Result<(), EncodeError> {
    out.reserve(parts_len(parts) / 2 + 64);
    let source = PartsReader { parts, at: 0 };
    ruzstd::encoding::compress(
        source,
        out.writer(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    Ok(())
}

/// Reads `parts` one after another.
#[cfg(feature = "zstd")]
struct PartsReader<'a, P> {
    parts: &'a [P],
    /// How far into the first part reading has come.
    at: usize,
}

#[cfg(feature = "zstd")]
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

#[cfg(feature = "zstd")]
fn zstd_decompress(input: &[u8], max_output: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut frames = 0usize;
    while !rest.is_empty() {
        rest = zstd_frame(rest, &mut out, max_output)
            .map_err(|e| e.within(format!("zstd frame {frames}")))?;
        frames += 1;
    }
    if frames == 0 {
        return Err(decode_err("zstd", "empty input"));
    }
    Ok(Bytes::from(out))
}

/// Decodes one zstd frame from the start of `input` onto `out`, returning what follows.
///
/// The decoder reserves the frame's whole window up front, and the window descriptor
/// is hostile input. Since the output can never exceed `max_output`, no back
/// reference can reach further than that, so a larger window is lowered to the power
/// of two that covers `max_output` before the frame is handed over.
#[cfg(feature = "zstd")]
fn zstd_frame<'a>(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    fn compress(c: Compression, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        c.compress(input, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn codes_match_the_attributes_bits() {
        for c in ALL {
            assert_eq!(Compression::from_code(c.code()), Some(c));
            assert_eq!(
                Compression::from_attributes(0x78 | i16::from(c.code())).unwrap(),
                c
            );
        }
        for code in 5..8 {
            assert!(Compression::from_attributes(code).is_err());
        }
    }

    #[test]
    fn every_codec_round_trips_small_and_large() {
        for c in ALL {
            for n in [0usize, 1, 100, 65_536, 65_537, 300_000] {
                let data = sample(n);
                let packed = compress(c, &data);
                let back = c.decompress(&packed, n).unwrap();
                assert_eq!(back.as_ref(), &data[..], "{c} {n}");
            }
        }
    }

    #[test]
    fn parts_compress_as_their_concatenation() {
        let data = sample(300_000);
        // Empty parts, parts shorter than an LZ4 block, and parts over several blocks.
        let cuts = [0usize, 0, 10, 16_384, 16_384, 100_000, 230_001, 300_000];
        let parts: Vec<&[u8]> = cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect();
        for c in ALL {
            let mut out = BytesMut::new();
            c.compress_parts(&parts, &mut out).unwrap();
            let back = c.decompress(&out, data.len()).unwrap();
            assert!(
                back == data[..],
                "{c}: parts did not decompress to their concatenation"
            );
        }
    }

    #[test]
    fn output_over_the_limit_is_an_error() {
        let data = vec![0u8; 1 << 20];
        for c in ALL {
            let packed = compress(c, &data);
            let err = c.decompress(&packed, (1 << 20) - 1).unwrap_err();
            assert!(
                matches!(err.kind(), DecodeErrorKind::Compression(m) if m.contains("limit")),
                "{c}: {err}"
            );
            assert_eq!(c.decompress(&packed, 1 << 20).unwrap().len(), 1 << 20);
        }
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        // 64 MiB of zeros compresses to a few kilobytes in every codec but snappy.
        let data = vec![0u8; 64 << 20];
        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let packed = compress(c, &data);
            assert!(packed.len() < 1 << 20, "{c}: {}", packed.len());
            assert!(c.decompress(&packed, 1 << 20).is_err());
        }
    }

    #[test]
    fn snappy_reads_the_xerial_framing() {
        let data = sample(200_000);
        let mut framed = Vec::from(&XERIAL_MAGIC[..]);
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for chunk in data.chunks(32 * 1024) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        let back = Compression::Snappy.decompress(&framed, data.len()).unwrap();
        assert_eq!(back.as_ref(), &data[..]);
        assert!(Compression::Snappy
            .decompress(&framed, data.len() - 1)
            .is_err());
        // A truncated block length is an error, not a panic.
        assert!(Compression::Snappy
            .decompress(&framed[..18], data.len())
            .is_err());
    }

    #[test]
    fn snappy_claiming_a_huge_length_fails_before_allocating() {
        // Varint length 2^31 in a 5-byte stream.
        let hostile = [0x80, 0x80, 0x80, 0x80, 0x08];
        assert!(Compression::Snappy
            .decompress(&hostile, usize::MAX)
            .is_err());
    }

    #[test]
    fn lz4_frame_header_is_standard() {
        let packed = compress(Compression::Lz4, b"hello hello hello hello");
        // Magic, FLG (version 01, independent blocks), BD (64 KiB).
        assert_eq!(&packed[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
        // Header checksum as the LZ4 frame format defines it (matches lz4 and the Java
        // client: 0x82 for this descriptor).
        assert_eq!(packed[6], 0x82);
        assert_eq!(&packed[packed.len() - 4..], &[0, 0, 0, 0]);
    }

    #[test]
    fn an_announced_lz4_size_reserves_no_more_than_the_blocks_can_hold() {
        // A frame announcing 60 MiB of content, with one 5-byte stored block (found by
        // fuzzing: it made the decoder reserve the whole announced size).
        let flg = LZ4_FLG_VERSION | LZ4_FLG_INDEPENDENT | LZ4_FLG_CONTENT_SIZE;
        let mut descriptor = vec![flg, LZ4_BD_64K];
        descriptor.extend_from_slice(&(60u64 << 20).to_le_bytes());
        let mut frame = LZ4_MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&descriptor);
        frame.push(lz4_header_checksum(&descriptor));
        frame.extend_from_slice(&(5 | LZ4_UNCOMPRESSED).to_le_bytes());
        frame.extend_from_slice(b"hello");
        frame.extend_from_slice(&0u32.to_le_bytes());
        let mut out = Vec::new();
        let e = lz4_frame(&frame, &mut out, 64 << 20, false).unwrap_err();
        assert!(e.to_string().contains("announced"), "{e}");
        assert!(out.capacity() < 1024, "reserved {} bytes", out.capacity());
        // No announced size, and a block whose size word claims 2 GiB (also found by
        // fuzzing): only the bytes present count.
        let descriptor = [LZ4_FLG_VERSION | LZ4_FLG_INDEPENDENT, LZ4_BD_64K];
        let mut frame = LZ4_MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&descriptor);
        frame.push(lz4_header_checksum(&descriptor));
        frame.extend_from_slice(&(0x7fff_ffff | LZ4_UNCOMPRESSED).to_le_bytes());
        frame.extend_from_slice(b"hello");
        let mut out = Vec::new();
        assert!(lz4_frame(&frame, &mut out, 64 << 20, false).is_err());
        assert!(out.capacity() < 1024, "reserved {} bytes", out.capacity());
    }

    #[test]
    fn lz4_legacy_header_checksum_is_ignored_only_on_request() {
        let data = sample(1000);
        let mut packed = compress(Compression::Lz4, &data);
        // The broken checksum Kafka's first writer computed: over the magic as well.
        packed[6] = lz4_header_checksum(&packed[..6]);
        assert_ne!(packed[6], 0x82);
        assert!(Compression::Lz4.decompress(&packed, 1 << 20).is_err());
        let back = decompress_lz4(&packed, 1 << 20, true).unwrap();
        assert_eq!(back.as_ref(), &data[..]);
    }

    #[test]
    fn lz4_checks_block_and_content_checksums_and_sizes() {
        // A frame with content size, block checksums and content checksum, built by hand.
        let data = sample(5000);
        let flg = LZ4_FLG_VERSION
            | LZ4_FLG_INDEPENDENT
            | LZ4_FLG_BLOCK_CHECKSUM
            | LZ4_FLG_CONTENT_SIZE
            | LZ4_FLG_CONTENT_CHECKSUM;
        let mut descriptor = vec![flg, LZ4_BD_64K];
        descriptor.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let mut frame = LZ4_MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&descriptor);
        frame.push(lz4_header_checksum(&descriptor));
        let block = lz4_flex::block::compress(&data);
        frame.extend_from_slice(&(block.len() as u32).to_le_bytes());
        frame.extend_from_slice(&block);
        frame.extend_from_slice(&XxHash32::oneshot(0, &block).to_le_bytes());
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(&XxHash32::oneshot(0, &data).to_le_bytes());
        let back = Compression::Lz4.decompress(&frame, data.len()).unwrap();
        assert_eq!(back.as_ref(), &data[..]);
        // Content size larger than the limit fails before decoding.
        assert!(Compression::Lz4.decompress(&frame, data.len() - 1).is_err());
        // Any flipped bit of the checksums fails.
        let n = frame.len();
        for at in [n - 1, n - 9] {
            let mut bad = frame.clone();
            bad[at] ^= 1;
            assert!(Compression::Lz4.decompress(&bad, 1 << 20).is_err(), "{at}");
        }
    }

    #[test]
    fn lz4_reads_linked_blocks() {
        // Two blocks, the second referring back into the first.
        let data: Vec<u8> = sample(1000).repeat(2);
        let (a, b) = data.split_at(1000);
        let block_a = lz4_flex::block::compress(a);
        let block_b = lz4_flex::block::compress_with_dict(b, a);
        let flg = LZ4_FLG_VERSION;
        let mut frame = LZ4_MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&[flg, LZ4_BD_64K, lz4_header_checksum(&[flg, LZ4_BD_64K])]);
        for block in [&block_a, &block_b] {
            frame.extend_from_slice(&(block.len() as u32).to_le_bytes());
            frame.extend_from_slice(block);
        }
        frame.extend_from_slice(&0u32.to_le_bytes());
        let back = Compression::Lz4.decompress(&frame, 1 << 20).unwrap();
        assert_eq!(back.as_ref(), &data[..]);
    }

    #[test]
    fn zstd_reads_concatenated_and_skippable_frames() {
        let a = sample(3000);
        let b = sample(7000);
        let mut input = compress(Compression::Zstd, &a);
        input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&compress(Compression::Zstd, &b));
        let back = Compression::Zstd.decompress(&input, 10_000).unwrap();
        assert_eq!(&back[..3000], &a[..]);
        assert_eq!(&back[3000..], &b[..]);
        assert!(Compression::Zstd.decompress(&input, 9_999).is_err());
    }

    #[test]
    fn zstd_hostile_window_is_lowered_not_reserved() {
        // A frame claiming a 2 TiB window (exponent 31) with one raw block of 3 bytes.
        let mut frame = ZSTD_MAGIC.to_le_bytes().to_vec();
        frame.push(0x00); // no content size, not single segment, no checksum
        frame.push(31 << 3);
        // Block header: last block, raw, size 3.
        let bh: u32 = 1 | (3 << 3);
        frame.extend_from_slice(&bh.to_le_bytes()[..3]);
        frame.extend_from_slice(b"abc");
        let back = Compression::Zstd.decompress(&frame, 1 << 20).unwrap();
        assert_eq!(back.as_ref(), b"abc");
    }

    #[test]
    fn empty_and_garbage_inputs_are_errors() {
        for c in ALL {
            if c != Compression::None {
                assert!(c.decompress(&[], 100).is_err(), "{c}");
            }
            assert!(
                c.decompress(b"\x00\x01\x02\x03garbage!", 100).is_err() || c == Compression::None
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), pick in 0usize..5) {
            let c = ALL[pick];
            let packed = compress(c, &data);
            let back = c.decompress(&packed, data.len()).unwrap();
            prop_assert_eq!(back.as_ref(), &data[..]);
        }

        #[test]
        fn corrupted_input_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            pick in 1usize..5,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let c = ALL[pick];
            let mut packed = compress(c, &data);
            for (at, x) in flips {
                let i = at.index(packed.len());
                packed[i] ^= x;
            }
            let n = cut.index(packed.len() + 1);
            let _ = c.decompress(&packed[..n], 1 << 16);
            let _ = decompress_lz4(&packed[..n], 1 << 16, true);
        }

        #[test]
        fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), pick in 1usize..5) {
            let _ = ALL[pick].decompress(&data, 1 << 16);
        }
    }
}
