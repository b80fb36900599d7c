//! Recycled output buffers for decompression.
//!
//! A decompressed batch is handed out as [`Bytes`] that its records slice (no copy), and
//! it is freed when the last record is dropped. Large buffers freed that way go back to
//! the allocator and, for the next batch, come back as fresh pages that the kernel
//! must fault in and zero one by one (in a profile of a consumer reading lz4 batches,
//! that was a third of its CPU). So a buffer of [`MIN_POOLED`] bytes or more is given
//! to [`Bytes`] with an owner that puts it back here when it is dropped, and the next
//! decompression takes it again. The pool holds at most [`POOL_BYTES`] of capacity;
//! anything beyond is freed as usual.

// Only the gzip, snappy and lz4 decoders take buffers from here.
#![cfg_attr(
    not(any(feature = "gzip", feature = "snappy", feature = "lz4")),
    allow(dead_code)
)]

use bytes::Bytes;
use std::sync::Mutex;

/// Smaller buffers are not worth recycling.
const MIN_POOLED: usize = 64 * 1024;
/// Larger buffers are freed, not kept.
const MAX_POOLED: usize = 16 << 20;
/// The most capacity the pool keeps: a consumer that decodes a part of a fetch at a
/// time (about 1 MiB of compressed batches) has a few such buffers in use at once.
const POOL_BYTES: usize = 16 << 20;

struct Pool {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: Vec::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// An empty buffer with room for `capacity` bytes: a recycled one when one of a fitting
/// size (up to four times as large) is in the pool, else a new one.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if capacity >= MIN_POOLED {
        let mut pool = pool();
        let fits =
            |b: &Vec<u8>| b.capacity() >= capacity && b.capacity() <= capacity.saturating_mul(4);
        if let Some(i) = pool.buffers.iter().rposition(fits) {
            let buffer = pool.buffers.swap_remove(i);
            pool.bytes -= buffer.capacity();
            return buffer;
        }
    }
    Vec::with_capacity(capacity)
}

/// `buffer` as [`Bytes`]; a large one returns to the pool once every slice of it is
/// dropped.
pub(crate) fn into_bytes(buffer: Vec<u8>) -> Bytes {
    if (MIN_POOLED..=MAX_POOLED).contains(&buffer.capacity()) {
        Bytes::from_owner(Recycled(buffer))
    } else {
        Bytes::from(buffer)
    }
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.0);
        let mut pool = pool();
        if pool.bytes + buffer.capacity() <= POOL_BYTES {
            buffer.clear();
            pool.bytes += buffer.capacity();
            pool.buffers.push(buffer);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_large_buffer_is_taken_again_and_small_ones_are_not_kept() {
        let mut b = take(1 << 20);
        b.extend_from_slice(&[7u8; 1000]);
        let ptr = b.as_ptr();
        let bytes = into_bytes(b);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        // Other tests may use the pool at the same time; look for this buffer.
        let mut again = Vec::new();
        for _ in 0..64 {
            let b = take(1 << 20);
            let found = b.as_ptr() == ptr;
            again.push(b);
            if found {
                assert!(again.last().unwrap().is_empty());
                return;
            }
        }
        panic!("the buffer did not come back");
    }

    #[test]
    fn small_and_huge_buffers_are_plain_bytes() {
        let small = into_bytes(vec![1u8; 10]);
        assert_eq!(&small[..], &[1u8; 10]);
        assert!(take(100).capacity() >= 100);
    }
}
