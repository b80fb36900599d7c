//! Compressed output held in chunks of one size, not in one buffer that grows by
//! doubling: what a producer keeps of a compressed batch until it is acknowledged.

use bytes::{Bytes, BytesMut};

/// The size of every chunk but the first (which may be smaller) and the last (which is
/// cut to what it holds when it is less than half full).
pub(crate) const OUT_CHUNK: usize = 64 * 1024;

/// A `Write` that keeps what it is given in chunks of [`OUT_CHUNK`] bytes: allocations
/// of one size that an allocator reuses for the next batch, where buffers of every
/// compressed size (and their doubling) left memory it could not.
pub(crate) struct ChunkedOut {
    chunks: Vec<Bytes>,
    current: BytesMut,
    /// The first chunk's size, when it is made.
    first: usize,
    /// Chunks of the input already compressed, emptied, to write into before any new
    /// one is made (see [`recycle`](Self::recycle)).
    spare: Vec<BytesMut>,
}

impl ChunkedOut {
    /// Output expected to be about `expected` bytes: the first chunk is no larger.
    /// Nothing is allocated until the first byte is written.
    pub(crate) fn new(expected: usize) -> Self {
        ChunkedOut {
            chunks: Vec::new(),
            current: BytesMut::new(),
            first: expected.clamp(1, OUT_CHUNK),
            spare: Vec::new(),
        }
    }

    /// Takes back a chunk of the input that has been compressed: the output goes on in
    /// it (when nothing else holds it), in the memory the records were written in,
    /// rather than in new memory next to it. The records' chunks were made by the
    /// thread that queued them and are compressed on another, whose allocations the
    /// allocator keeps apart; so a batch in flight held its records' memory until it
    /// was compressed and its output's besides (BENCHMARKS.md, issue 16).
    pub(crate) fn recycle(&mut self, chunk: Bytes) {
        if let Ok(mut chunk) = chunk.try_into_mut() {
            chunk.clear();
            if chunk.capacity() > 0 {
                self.spare.push(chunk);
            }
        }
    }

    /// The next chunk to write into: a spare one, else a new one.
    fn next_chunk(&mut self) -> BytesMut {
        match self.spare.pop() {
            Some(chunk) => chunk,
            None if self.chunks.is_empty() && self.current.capacity() == 0 => {
                BytesMut::with_capacity(self.first)
            }
            None => BytesMut::with_capacity(OUT_CHUNK),
        }
    }

    /// Appends `data`, starting chunks as they fill.
    pub(crate) fn put(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.current.capacity() - self.current.len();
            if room == 0 {
                let next = self.next_chunk();
                let full = std::mem::replace(&mut self.current, next);
                if !full.is_empty() {
                    self.chunks.push(full.freeze());
                }
                continue;
            }
            let n = room.min(data.len());
            self.current.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// The chunks, in order (none when nothing was written).
    pub(crate) fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            let last = if self.current.len() < self.current.capacity() / 2 {
                // Mostly empty: kept at its size.
                Bytes::copy_from_slice(&self.current)
            } else {
                self.current.freeze()
            };
            self.chunks.push(last);
        }
        self.chunks
    }
}

impl std::io::Write for ChunkedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.put(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_what_was_written_in_order_and_in_one_size() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = ChunkedOut::new(10_000);
        for piece in data.chunks(7_777) {
            out.put(piece);
        }
        let chunks = out.finish();
        assert_eq!(chunks.concat(), data);
        assert_eq!(chunks[0].len(), 10_000);
        let middle = &chunks[1..chunks.len() - 1];
        assert!(middle.iter().all(|c| c.len() == OUT_CHUNK));
        assert!(ChunkedOut::new(0).finish().is_empty());
    }
}
