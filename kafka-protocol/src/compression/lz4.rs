//! LZ4 frames: independent blocks of up to 64 KiB written; any frame read (linked or
//! independent blocks, checksums verified), bounded.

use super::*;
use twox_hash::XxHash32;

pub(super) const LZ4_MAGIC: u32 = 0x184D_2204;
pub(super) const LZ4_SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
pub(super) const LZ4_FLG_VERSION: u8 = 0x40;
pub(super) const LZ4_FLG_INDEPENDENT: u8 = 0x20;
pub(super) const LZ4_FLG_BLOCK_CHECKSUM: u8 = 0x10;
pub(super) const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
pub(super) const LZ4_FLG_CONTENT_CHECKSUM: u8 = 0x04;
pub(super) const LZ4_FLG_DICT_ID: u8 = 0x01;
/// The block size Kafka's clients write: 64 KiB.
pub(super) const LZ4_BLOCK: usize = 64 * 1024;
/// BD byte for 64 KiB blocks.
pub(super) const LZ4_BD_64K: u8 = 4 << 4;
/// Bit of a block size word that marks an uncompressed block.
pub(super) const LZ4_UNCOMPRESSED: u32 = 0x8000_0000;
/// How far back a linked block may refer.
pub(super) const LZ4_WINDOW: usize = 64 * 1024;
/// No LZ4 block can expand more than this (each extra length byte yields 255).
pub(super) const LZ4_MAX_RATIO: usize = 255;

pub(super) fn lz4_header_checksum(descriptor: &[u8]) -> u8 {
    (XxHash32::oneshot(0, descriptor) >> 8) as u8
}

pub(super) fn lz4_compress<P: AsRef<[u8]>, W: std::io::Write>(
    parts: &[P],
    out: &mut W,
) -> Result<(), EncodeError> {
    let mut frame = Lz4Frame::new();
    // A frame's blocks may be shorter than its maximum block size, so each part's
    // blocks are compressed where they lie.
    for chunk in parts.iter().flat_map(|p| p.as_ref().chunks(LZ4_BLOCK)) {
        frame.compress(chunk)?;
        frame.write_block(out, chunk)?;
    }
    frame.finish(out)
}

/// Compresses a batch's chunks of records into chunks, giving each input chunk to
/// `out` to write on in once its blocks are written (see [`ChunkedOut::recycle`]):
/// the output mostly lands in the memory of records already compressed.
pub(super) fn lz4_compress_chunks(
    chunks: Vec<Bytes>,
    out: &mut ChunkedOut,
) -> Result<(), EncodeError> {
    let mut frame = Lz4Frame::new();
    for chunk in chunks {
        if chunk.is_empty() {
            continue;
        }
        let mut at = 0;
        loop {
            let end = (at + LZ4_BLOCK).min(chunk.len());
            frame.compress(&chunk[at..end])?;
            if end < chunk.len() {
                frame.write_block(out, &chunk[at..end])?;
                at = end;
                continue;
            }
            // The chunk's last block: compressed, it is written from the scratch
            // buffer, and the chunk can take output already.
            if frame.compressed.is_some() {
                out.recycle(chunk);
                frame.write_block(out, &[])?;
            } else {
                frame.write_block(out, &chunk[at..end])?;
                out.recycle(chunk);
            }
            break;
        }
    }
    frame.finish(out)
}

/// An LZ4 frame being written: independent blocks of up to 64 KiB, compressed one at
/// a time into one scratch buffer (one size for every block of every batch).
struct Lz4Frame {
    block: Vec<u8>,
    /// The length of the block in `block` (none when the last block did not shrink).
    compressed: Option<usize>,
    /// Whether the frame's header is written (before its first block).
    started: bool,
}

impl Lz4Frame {
    fn new() -> Self {
        Lz4Frame {
            block: vec![0u8; lz4_flex::block::get_maximum_output_size(LZ4_BLOCK)],
            compressed: None,
            started: false,
        }
    }

    /// Compresses `data` (at most one block) into the scratch buffer.
    fn compress(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let n = lz4_flex::block::compress_into(data, &mut self.block)
            .map_err(|e| encode_err("lz4", e))?;
        self.compressed = (n < data.len()).then_some(n);
        Ok(())
    }

    /// Writes the block last compressed: from the scratch buffer, or `data` as it is
    /// when it did not shrink.
    fn write_block<W: std::io::Write>(
        &mut self,
        out: &mut W,
        data: &[u8],
    ) -> Result<(), EncodeError> {
        self.start(out)?;
        match self.compressed {
            Some(n) => {
                write(out, &(n as u32).to_le_bytes())?;
                write(out, &self.block[..n])
            }
            None => {
                write(out, &(data.len() as u32 | LZ4_UNCOMPRESSED).to_le_bytes())?;
                write(out, data)
            }
        }
    }

    fn start<W: std::io::Write>(&mut self, out: &mut W) -> Result<(), EncodeError> {
        if !self.started {
            self.started = true;
            let flg = LZ4_FLG_VERSION | LZ4_FLG_INDEPENDENT;
            write(out, &LZ4_MAGIC.to_le_bytes())?;
            write(
                out,
                &[flg, LZ4_BD_64K, lz4_header_checksum(&[flg, LZ4_BD_64K])],
            )?;
        }
        Ok(())
    }

    /// Ends the frame (its header first, for a frame with no block).
    fn finish<W: std::io::Write>(mut self, out: &mut W) -> Result<(), EncodeError> {
        self.start(out)?;
        write(out, &0u32.to_le_bytes())
    }
}

fn write<W: std::io::Write>(out: &mut W, bytes: &[u8]) -> Result<(), EncodeError> {
    out.write_all(bytes).map_err(|e| encode_err("lz4", e))
}

/// Decompresses LZ4 frames (one or more, concatenated; skippable frames are skipped).
///
/// `ignore_header_checksum` skips the check of each frame descriptor's checksum byte:
/// Kafka's first LZ4 writer computed it over the magic number too, so legacy (magic 0)
/// messages carry a wrong one that the Java client does not check either. Block and
/// content checksums are still verified when the frame has them.
pub fn decompress_lz4(
    input: &[u8],
    max_output: usize,
    ignore_header_checksum: bool,
) -> Result<Bytes, DecodeError> {
    let out = decode_frames("lz4", input, |rest, out| {
        lz4_frame(rest, out, max_output, ignore_header_checksum)
    })?;
    Ok(buffers::into_bytes(out))
}

pub(super) fn split<'a>(
    input: &'a [u8],
    n: usize,
    what: &str,
) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if input.len() < n {
        return Err(decode_err(
            "lz4",
            format_args!("truncated {what}: needed {n} bytes, {} left", input.len()),
        ));
    }
    Ok(input.split_at(n))
}

/// Decodes one LZ4 frame from the start of `input` onto `out`, returning what follows it.
pub(super) fn lz4_frame<'a>(
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
pub(super) fn lz4_blocks_bound(
    mut blocks: &[u8],
    block_max: usize,
    block_checksums: bool,
) -> usize {
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
