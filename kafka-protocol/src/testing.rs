//! Test-only random values for every message field type (`Fill`), used by the
//! round-trip property tests.

use crate::types::{StrBytes, UnknownTaggedFields, Uuid};
use bytes::Bytes;

/// A small deterministic generator (SplitMix64), seeded by proptest.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    pub(crate) fn option<T>(&mut self, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        if self.below(4) == 0 {
            None
        } else {
            Some(f(self))
        }
    }

    fn raw(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Unknown tagged fields with ascending tags from `first`, as a newer peer sends.
    pub(crate) fn unknown_tagged_fields(&mut self, first: u32) -> UnknownTaggedFields {
        let n = 1 + self.below(2) as u32;
        let mut tag = first + self.below(3) as u32;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push((tag, Bytes::from(self.raw(4))));
            tag += 1 + self.below(200) as u32;
        }
        UnknownTaggedFields(out)
    }
}

/// A random value of a field type for a version.
pub(crate) trait Fill {
    fn fill(r: &mut Rng, version: i16) -> Self;
}

macro_rules! fill_int {
    ($($t:ty),*) => {$(
        impl Fill for $t {
            fn fill(r: &mut Rng, _: i16) -> Self {
                // Edge values a third of the time.
                match r.below(6) {
                    0 => <$t>::MIN,
                    1 => <$t>::MAX,
                    _ => r.next() as $t,
                }
            }
        }
    )*};
}
fill_int!(i8, i16, u16, i32, u32, i64);

impl Fill for bool {
    fn fill(r: &mut Rng, _: i16) -> Self {
        r.bool()
    }
}

impl Fill for f64 {
    fn fill(r: &mut Rng, _: i16) -> Self {
        (r.next() as i32) as f64 / 7.0
    }
}

impl Fill for Uuid {
    fn fill(r: &mut Rng, _: i16) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&r.next().to_be_bytes());
        b[8..].copy_from_slice(&r.next().to_be_bytes());
        Uuid(b)
    }
}

impl Fill for StrBytes {
    fn fill(r: &mut Rng, _: i16) -> Self {
        const CHARS: &[char] = &['a', 'Z', '0', '-', '.', '_', 'é', '✓'];
        let n = r.below(9) as usize;
        let s: String = (0..n)
            .map(|_| CHARS[r.below(CHARS.len() as u64) as usize])
            .collect();
        StrBytes::from(s)
    }
}

impl Fill for Bytes {
    fn fill(r: &mut Rng, _: i16) -> Self {
        Bytes::from(r.raw(12))
    }
}

impl<T: Fill> Fill for Vec<T> {
    fn fill(r: &mut Rng, version: i16) -> Self {
        let n = r.below(4) as usize;
        (0..n).map(|_| T::fill(r, version)).collect()
    }
}
