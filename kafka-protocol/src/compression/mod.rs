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

mod chunked;
#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

#[cfg(feature = "gzip")]
use gzip::{gzip_compress, gzip_decompress};
#[cfg(feature = "lz4")]
pub use lz4::decompress_lz4;
#[cfg(feature = "lz4")]
use lz4::{lz4_compress, lz4_compress_chunks};
#[cfg(feature = "snappy")]
use snappy::{snappy_compress, snappy_decompress};
#[cfg(feature = "zstd")]
use zstd::{zstd_compress, zstd_decompress};

pub(crate) use chunked::ChunkedOut;

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

/// Decodes the frames of `input` one after another with `frame` (which appends one
/// frame's output and returns what follows it); input with no frame is an error.
fn decode_frames(
    codec: &'static str,
    input: &[u8],
    mut frame: impl for<'a> FnMut(&'a [u8], &mut Vec<u8>) -> Result<&'a [u8], DecodeError>,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut frames = 0usize;
    while !rest.is_empty() {
        rest = frame(rest, &mut out).map_err(|e| e.within(format!("{codec} frame {frames}")))?;
        frames += 1;
    }
    if frames == 0 {
        return Err(decode_err(codec, "empty input"));
    }
    Ok(out)
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
            #[cfg(feature = "snappy")]
            Compression::Snappy => match parts {
                [one] => snappy_compress(one.as_ref(), out),
                _ => snappy_compress(&gather(parts), out),
            },
            _ => {
                // Room for what records usually compress to; the codec grows it.
                let len = parts_len(parts);
                out.reserve(if *self == Compression::None {
                    len
                } else {
                    len / 2 + 64
                });
                self.compress_into(parts, &mut out.writer())
            }
        }
    }

    /// Compresses `parts` as [`compress_parts`](Self::compress_parts) does, into
    /// chunks of one size (see [`ChunkedOut`]).
    pub(crate) fn compress_chunked<P: AsRef<[u8]>>(
        &self,
        parts: &[P],
    ) -> Result<Vec<Bytes>, EncodeError> {
        let mut out = ChunkedOut::new(parts_len(parts) / 2 + 64);
        match self {
            #[cfg(feature = "snappy")]
            Compression::Snappy => {
                let mut one = BytesMut::new();
                self.compress_parts(parts, &mut one)?;
                out.put(&one);
            }
            _ => self.compress_into(parts, &mut out)?,
        }
        Ok(out.finish())
    }

    /// Compresses a batch's chunks of records as
    /// [`compress_chunked`](Self::compress_chunked) does, taking them: LZ4 writes its
    /// output on in the chunks it has compressed (see [`ChunkedOut::recycle`]).
    pub(crate) fn compress_owned_chunks(
        &self,
        chunks: Vec<Bytes>,
    ) -> Result<Vec<Bytes>, EncodeError> {
        match self {
            #[cfg(feature = "lz4")]
            Compression::Lz4 => {
                let mut out = ChunkedOut::new(parts_len(&chunks) / 2 + 64);
                lz4_compress_chunks(chunks, &mut out)?;
                Ok(out.finish())
            }
            _ => self.compress_chunked(&chunks),
        }
    }

    /// Compresses `parts` onto `out` (every codec but snappy, which needs one
    /// contiguous output).
    fn compress_into<P: AsRef<[u8]>, W: std::io::Write>(
        &self,
        parts: &[P],
        out: &mut W,
    ) -> Result<(), EncodeError> {
        match self {
            Compression::None => {
                for part in parts {
                    out.write_all(part.as_ref())
                        .map_err(|e| encode_err("none", e))?;
                }
                Ok(())
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => gzip_compress(parts, out),
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

/// The total length of `parts`.
fn parts_len<P: AsRef<[u8]>>(parts: &[P]) -> usize {
    parts.iter().map(|p| p.as_ref().len()).sum()
}

/// `parts` in one buffer (for snappy, which compresses one contiguous block).
fn gather<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    let mut all = Vec::with_capacity(parts_len(parts));
    for part in parts {
        all.extend_from_slice(part.as_ref());
    }
    all
}

#[cfg(any(feature = "lz4", feature = "zstd"))]
fn le_u32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[cfg(feature = "lz4")]
    use super::lz4::*;
    #[cfg(feature = "snappy")]
    use super::snappy::*;
    #[cfg(feature = "zstd")]
    use super::zstd::*;
    use super::*;
    use proptest::prelude::*;
    #[cfg(feature = "lz4")]
    use twox_hash::XxHash32;

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
            // The same, held in chunks.
            let chunks = c.compress_chunked(&parts).unwrap();
            let back = c.decompress(&chunks.concat(), data.len()).unwrap();
            assert!(back == data[..], "{c}: chunked output did not decompress");
            if c != Compression::None {
                assert_eq!(chunks.concat(), out, "{c}: chunked output differs");
            }
        }
    }

    #[test]
    fn owned_chunks_compress_as_their_concatenation_and_lz4_writes_in_them() {
        // Words in a pseudo-random order: about a third of their size compressed, so
        // the output takes several chunks.
        let words = [
            "order", "customer", "item", "price", "berlin", "tokyo", "42", "eur",
        ];
        let mut seed = 1u32;
        let mut data = Vec::with_capacity(300_000);
        while data.len() < 300_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.extend_from_slice(words[(seed >> 24) as usize % words.len()].as_bytes());
            data.push(b' ');
        }
        data.truncate(300_000);
        // Chunks as a batch writer makes them: a small first one, then 64 KiB ones, one
        // over several LZ4 blocks, an empty one, and one shared with someone else.
        let cuts = [0usize, 16_384, 16_384, 81_920, 147_456, 280_000, 300_000];
        let shared = Bytes::copy_from_slice(&data[280_000..]);
        let chunks = || -> Vec<Bytes> {
            let mut c: Vec<Bytes> = cuts
                .windows(2)
                .take(cuts.len() - 2)
                .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
                .collect();
            c.push(shared.clone());
            c
        };
        for c in ALL {
            let input = chunks();
            let starts: Vec<usize> = input.iter().map(|b| b.as_ptr() as usize).collect();
            let want = c.compress_chunked(&input).unwrap().concat();
            let out = c.compress_owned_chunks(input).unwrap();
            assert!(out.concat() == want, "{c}: differs from compress_chunked");
            let back = c.decompress(&out.concat(), data.len()).unwrap();
            assert!(back == data[..], "{c}: did not decompress");
            if c == Compression::Lz4 {
                // The output's chunks are input chunks written over (the last one,
                // mostly empty, is cut to its size), never the one still shared.
                assert!(out.len() >= 3, "{} chunks", out.len());
                let reused = out
                    .iter()
                    .filter(|o| starts.contains(&(o.as_ptr() as usize)));
                assert!(reused.count() + 1 >= out.len(), "lz4 made new chunks");
                assert!(out.iter().all(|o| o.as_ptr() != shared.as_ptr()));
                assert!(shared == data[280_000..], "a shared chunk was written over");
            }
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
