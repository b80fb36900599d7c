//! Partitioners: which partition of a topic a record goes to.
//!
//! Every keyed partitioner here is bit-compatible with the client it names, so that a
//! service migrated from that client keeps sending each key to the same partition
//! (and keeps per-key ordering across the migration). `tests/partitioner_parity.rs`
//! checks this against librdkafka itself.
//!
//! | Type | Matches | [`by_name`] |
//! |------|---------|-------------|
//! | [`Murmur2`] | Java `DefaultPartitioner` / `BuiltInPartitioner` (keyed records); librdkafka `murmur2`, `murmur2_random` | `murmur2`, `murmur2_random` |
//! | [`Crc32`] | librdkafka `consistent` | `consistent` |
//! | [`ConsistentRandom`] | librdkafka `consistent_random` (its default) | `consistent_random` |
//! | [`Fnv1a`] | sarama `NewHashPartitioner` (its default); librdkafka `fnv1a`, `fnv1a_random` | `sarama_hash`, `fnv1a`, `fnv1a_random` |
//! | [`ReferenceHash`] | sarama `NewReferenceHashPartitioner` | `sarama_reference_hash` |
//! | [`UniformSticky`] | Java client for null keys (KIP-794) | `uniform_sticky` |
//! | [`Random`] | librdkafka `random`; sarama `NewRandomPartitioner` | `random` |
//! | [`RoundRobin`] | sarama `NewRoundRobinPartitioner`; kafka-go `RoundRobin` | `round_robin` |
//! | [`LeastBytes`] | kafka-go `LeastBytes` | `least_bytes` |
//! | [`Manual`] | Java/sarama manual partitioning (the record names its partition) | — |
//!
//! What a hashing partitioner does with a null key is its [`Keyless`] strategy; each
//! type documents its default.

use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Picks a partition for a record.
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// `key` None = null key. `partitions` > 0. Returns 0..partitions.
    ///
    /// Implementations in this module return 0 (and never panic) when `partitions`
    /// is 0 or negative.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32;

    /// Told when a batch for (topic, partition) was closed/sent with `bytes` (sticky
    /// and least-bytes use it); default no-op.
    fn on_batch_complete(&self, _topic: &str, _partition: i32, _bytes: usize) {}
}

/// What a hashing partitioner does with a record whose key is null.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Keyless {
    /// Hash the null key as if it were empty, so every keyless record goes to the
    /// same partition: librdkafka's `consistent`, `murmur2` and `fnv1a`.
    HashEmpty,
    /// Ask another partitioner (random, sticky, ...). Batch reports are forwarded to it.
    Delegate(Arc<dyn Partitioner>),
}

impl Keyless {
    /// Keyless records go to a [`UniformSticky`] partitioner with the default batch size.
    pub fn uniform_sticky() -> Self {
        Keyless::Delegate(Arc::new(UniformSticky::default()))
    }

    /// Keyless records go to a uniformly random partition, chosen per record ([`Random`]).
    pub fn random() -> Self {
        Keyless::Delegate(Arc::new(Random))
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        if let Keyless::Delegate(p) = self {
            p.on_batch_complete(topic, partition, bytes);
        }
    }
}

/// Kafka's murmur2 hash exactly as the Java client computes it (`Utils.murmur2`):
/// seed `0x9747b28c`, m `0x5bd1e995`, r 24, little-endian 4-byte chunks. librdkafka's
/// `rd_murmur2` is the same function.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java: `int h = seed ^ length` (an array length fits in an int).
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The Java switch on `length % 4` falls through from case 3 to case 1.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// 32-bit FNV-1a (offset basis `0x811c9dc5`, prime `0x01000193`), as Go's
/// `hash/fnv.New32a` (sarama's default hasher) and librdkafka's `rd_fnv1a` compute it.
pub fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`).
fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

fn random_partition(partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    rand::thread_rng().gen_range(0..partitions)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is counters only; a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Java client's partitioner for keyed records (`DefaultPartitioner`, and
/// `BuiltInPartitioner` since 3.3): `toPositive(murmur2(key)) % partitions`. The same
/// as librdkafka's `murmur2` and `murmur2_random`.
///
/// An empty (non-null) key is hashed, as both clients do. A null key follows the
/// [`Keyless`] strategy; the default is [`UniformSticky`] (the Java client since
/// KIP-794). [`Keyless::HashEmpty`] matches librdkafka `murmur2`; librdkafka
/// `murmur2_random` sends null keys to a random partition, sticking to it for
/// `sticky.partitioning.linger.ms`, which the sticky default approximates.
#[derive(Debug, Clone)]
pub struct Murmur2 {
    keyless: Keyless,
}

impl Murmur2 {
    /// With the default keyless strategy ([`Keyless::uniform_sticky`]).
    pub fn new() -> Self {
        Self::with_keyless(Keyless::uniform_sticky())
    }

    /// With the given keyless strategy.
    pub fn with_keyless(keyless: Keyless) -> Self {
        Murmur2 { keyless }
    }
}

impl Default for Murmur2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Partitioner for Murmur2 {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        let key = match (key, &self.keyless) {
            (Some(k), _) => k,
            (None, Keyless::HashEmpty) => &[],
            (None, Keyless::Delegate(p)) => return p.partition(topic, None, partitions),
        };
        to_positive(murmur2(key)) % partitions
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        self.keyless.on_batch_complete(topic, partition, bytes);
    }
}

fn crc32_partition(key: &[u8], partitions: i32) -> i32 {
    // librdkafka: `rd_crc32(key, keylen) % partition_cnt`, an unsigned modulo.
    (crc32fast::hash(key) % partitions as u32) as i32
}

/// librdkafka's `consistent` partitioner: `crc32(key) % partitions` with the standard
/// CRC-32 (IEEE).
///
/// A null key follows the [`Keyless`] strategy; the default,
/// [`Keyless::HashEmpty`], is librdkafka's: it hashes as empty, and `crc32("")` is 0,
/// so every keyless record goes to partition 0.
#[derive(Debug, Clone)]
pub struct Crc32 {
    keyless: Keyless,
}

impl Crc32 {
    /// With the default keyless strategy ([`Keyless::HashEmpty`], as librdkafka).
    pub fn new() -> Self {
        Self::with_keyless(Keyless::HashEmpty)
    }

    /// With the given keyless strategy.
    pub fn with_keyless(keyless: Keyless) -> Self {
        Crc32 { keyless }
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Partitioner for Crc32 {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        match (key, &self.keyless) {
            (Some(k), _) => crc32_partition(k, partitions),
            (None, Keyless::HashEmpty) => crc32_partition(&[], partitions),
            (None, Keyless::Delegate(p)) => p.partition(topic, None, partitions),
        }
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        self.keyless.on_batch_complete(topic, partition, bytes);
    }
}

/// librdkafka's `consistent_random` partitioner (librdkafka's default):
/// `crc32(key) % partitions`, as [`Crc32`], except that null *and empty* keys go to
/// the keyless partitioner (librdkafka: `if (keylen == 0)` choose randomly).
///
/// The default keyless partitioner is [`UniformSticky`]; librdkafka picks a random
/// partition and sticks to it for `sticky.partitioning.linger.ms`.
#[derive(Debug, Clone)]
pub struct ConsistentRandom {
    keyless: Arc<dyn Partitioner>,
}

impl ConsistentRandom {
    /// With a [`UniformSticky`] keyless partitioner.
    pub fn new() -> Self {
        Self::with_keyless(Arc::new(UniformSticky::default()))
    }

    /// With the given partitioner for null and empty keys.
    pub fn with_keyless(keyless: Arc<dyn Partitioner>) -> Self {
        ConsistentRandom { keyless }
    }
}

impl Default for ConsistentRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl Partitioner for ConsistentRandom {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        match key {
            Some(k) if !k.is_empty() => crc32_partition(k, partitions),
            _ => self.keyless.partition(topic, key, partitions),
        }
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        self.keyless.on_batch_complete(topic, partition, bytes);
    }
}

/// sarama's default `NewHashPartitioner` (hasher `fnv.New32a`):
/// `p := int32(hash) % partitions; if p < 0 { p = -p }`. librdkafka's `fnv1a` and
/// `fnv1a_random` compute the same partition (`abs(int32(hash)) % partitions`; the two
/// agree for every hash, `i32::MIN` included).
///
/// An empty (non-null) key is hashed. A null key follows the [`Keyless`] strategy;
/// the default is [`Keyless::random`], as sarama. [`Keyless::HashEmpty`] matches
/// librdkafka `fnv1a`.
#[derive(Debug, Clone)]
pub struct Fnv1a {
    keyless: Keyless,
}

impl Fnv1a {
    /// With the default keyless strategy ([`Keyless::random`], as sarama).
    pub fn new() -> Self {
        Self::with_keyless(Keyless::random())
    }

    /// With the given keyless strategy.
    pub fn with_keyless(keyless: Keyless) -> Self {
        Fnv1a { keyless }
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

fn sarama_hash_partition(key: &[u8], partitions: i32) -> i32 {
    // Rust's `%` truncates toward zero like Go's, and `partitions > 0`, so neither the
    // remainder nor the negation can overflow.
    let p = (fnv1a(key) as i32) % partitions;
    if p < 0 {
        -p
    } else {
        p
    }
}

impl Partitioner for Fnv1a {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        match (key, &self.keyless) {
            (Some(k), _) => sarama_hash_partition(k, partitions),
            (None, Keyless::HashEmpty) => sarama_hash_partition(&[], partitions),
            (None, Keyless::Delegate(p)) => p.partition(topic, None, partitions),
        }
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        self.keyless.on_batch_complete(topic, partition, bytes);
    }
}

/// sarama's `NewReferenceHashPartitioner` (the hash partitioner with `referenceAbs`):
/// `(int32(fnv1a(key)) & 0x7fffffff) % partitions`. It differs from [`Fnv1a`] for keys
/// whose hash has the top bit set.
///
/// An empty (non-null) key is hashed. A null key follows the [`Keyless`] strategy;
/// the default is [`Keyless::random`], as sarama.
#[derive(Debug, Clone)]
pub struct ReferenceHash {
    keyless: Keyless,
}

impl ReferenceHash {
    /// With the default keyless strategy ([`Keyless::random`], as sarama).
    pub fn new() -> Self {
        Self::with_keyless(Keyless::random())
    }

    /// With the given keyless strategy.
    pub fn with_keyless(keyless: Keyless) -> Self {
        ReferenceHash { keyless }
    }
}

impl Default for ReferenceHash {
    fn default() -> Self {
        Self::new()
    }
}

fn reference_hash_partition(key: &[u8], partitions: i32) -> i32 {
    to_positive(fnv1a(key) as i32) % partitions
}

impl Partitioner for ReferenceHash {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        match (key, &self.keyless) {
            (Some(k), _) => reference_hash_partition(k, partitions),
            (None, Keyless::HashEmpty) => reference_hash_partition(&[], partitions),
            (None, Keyless::Delegate(p)) => p.partition(topic, None, partitions),
        }
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        self.keyless.on_batch_complete(topic, partition, bytes);
    }
}

/// A uniformly random partition for every record, keyed or not (librdkafka `random`,
/// sarama `NewRandomPartitioner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Random;

impl Partitioner for Random {
    fn partition(&self, _topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
        random_partition(partitions)
    }
}

/// Partitions in turn, 0, 1, 2, ..., one counter for the partitioner (shared by all
/// topics), ignoring keys (sarama `NewRoundRobinPartitioner`, kafka-go `RoundRobin`).
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU64,
}

impl RoundRobin {
    /// Starting at partition 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for RoundRobin {
    fn partition(&self, _topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n % partitions as u64) as i32
    }
}

/// The partition that has been sent the fewest bytes so far, ties to the lowest index,
/// ignoring keys (kafka-go `LeastBytes`).
///
/// Bytes are counted per topic as batches are reported to
/// [`Partitioner::on_batch_complete`] (kafka-go counts each message as it is
/// assigned), so between two reports every record goes to the same partition.
#[derive(Debug, Default)]
pub struct LeastBytes {
    /// Bytes sent per topic, indexed by partition.
    sent: Mutex<HashMap<String, Vec<u64>>>,
}

impl LeastBytes {
    /// With no bytes counted yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for LeastBytes {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        let sent = lock(&self.sent);
        let Some(bytes) = sent.get(topic) else {
            return 0;
        };
        let mut best = (0, bytes.first().copied().unwrap_or(0));
        for p in 1..partitions {
            let b = bytes.get(p as usize).copied().unwrap_or(0);
            if b < best.1 {
                best = (p, b);
            }
        }
        best.0
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        let Ok(index) = usize::try_from(partition) else {
            return;
        };
        let mut sent = lock(&self.sent);
        let counts = match sent.get_mut(topic) {
            Some(c) => c,
            None => sent.entry(topic.to_owned()).or_default(),
        };
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] = counts[index].saturating_add(bytes as u64);
    }
}

/// The Java client's behaviour for null keys since KIP-794 (Kafka 3.3): every record
/// of a topic goes to one partition until batches of at least `batch_size` bytes in
/// total (`batch.size`, default 16384) have been reported for it, then to another.
///
/// Differences from the Java client: the next partition is chosen uniformly at random
/// among the others, where Java weights the choice by the partitions' queue sizes
/// (`partitioner.adaptive.partitioning.enable`) and skips unavailable ones. Keys are
/// ignored; put it behind a hashing partitioner's [`Keyless`] for keyed records.
#[derive(Debug)]
pub struct UniformSticky {
    batch_size: usize,
    topics: Mutex<HashMap<String, StickyState>>,
}

#[derive(Debug)]
struct StickyState {
    current: i32,
    /// Bytes reported for `current` since it was chosen.
    bytes: usize,
    /// The partition count last seen, to choose the next partition.
    partitions: i32,
}

/// `batch.size`'s default in the Java client.
const DEFAULT_BATCH_SIZE: usize = 16_384;

impl UniformSticky {
    /// Switching partition after `batch_size` bytes (`batch.size`; the Java default is
    /// 16384). 0 switches after every reported batch.
    pub fn new(batch_size: usize) -> Self {
        UniformSticky {
            batch_size,
            topics: Mutex::new(HashMap::new()),
        }
    }

    /// The bytes after which the partition changes.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl Default for UniformSticky {
    /// Switching after 16384 bytes, `batch.size`'s default.
    fn default() -> Self {
        Self::new(DEFAULT_BATCH_SIZE)
    }
}

/// A random partition in `0..partitions` other than `previous` when there is another.
fn random_other(previous: i32, partitions: i32) -> i32 {
    if partitions <= 1 {
        return 0;
    }
    if !(0..partitions).contains(&previous) {
        return random_partition(partitions);
    }
    let p = rand::thread_rng().gen_range(0..partitions - 1);
    if p >= previous {
        p + 1
    } else {
        p
    }
}

impl Partitioner for UniformSticky {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        let mut topics = lock(&self.topics);
        if let Some(s) = topics.get_mut(topic) {
            s.partitions = partitions;
            if s.current >= partitions {
                // The topic shrank (or metadata is stale): start over.
                s.current = random_partition(partitions);
                s.bytes = 0;
            }
            return s.current;
        }
        let current = random_partition(partitions);
        topics.insert(
            topic.to_owned(),
            StickyState {
                current,
                bytes: 0,
                partitions,
            },
        );
        current
    }

    fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
        let mut topics = lock(&self.topics);
        let Some(s) = topics.get_mut(topic) else {
            return;
        };
        if s.current != partition {
            return;
        }
        s.bytes = s.bytes.saturating_add(bytes);
        if s.bytes >= self.batch_size {
            s.current = random_other(s.current, s.partitions);
            s.bytes = 0;
        }
    }
}

/// For records that name their partition: the producer sends such a record to the
/// partition it carries and never asks the partitioner. Records without a partition
/// must not be sent with this partitioner; if asked anyway it answers partition 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manual;

impl Partitioner for Manual {
    fn partition(&self, _topic: &str, _key: Option<&[u8]>, _partitions: i32) -> i32 {
        0
    }
}

/// A partitioner by its name in librdkafka's `partitioner` property (`random`,
/// `consistent`, `consistent_random`, `murmur2`, `murmur2_random`, `fnv1a`,
/// `fnv1a_random`) or one of `sarama_hash`, `sarama_reference_hash`, `round_robin`,
/// `least_bytes`, `uniform_sticky`. `None` for any other name.
///
/// The librdkafka names without `_random` hash a null key as empty, as librdkafka
/// does; those with `_random` send null keys (and, for `consistent_random`, empty
/// keys) to a [`UniformSticky`] partitioner, approximating librdkafka's sticky random
/// choice. The sarama names send null keys to a random partition, as sarama does.
pub fn by_name(name: &str) -> Option<Arc<dyn Partitioner>> {
    let p: Arc<dyn Partitioner> = match name {
        "random" => Arc::new(Random),
        "consistent" => Arc::new(Crc32::with_keyless(Keyless::HashEmpty)),
        "consistent_random" => Arc::new(ConsistentRandom::new()),
        "murmur2" => Arc::new(Murmur2::with_keyless(Keyless::HashEmpty)),
        "murmur2_random" => Arc::new(Murmur2::with_keyless(Keyless::uniform_sticky())),
        "fnv1a" => Arc::new(Fnv1a::with_keyless(Keyless::HashEmpty)),
        "fnv1a_random" => Arc::new(Fnv1a::with_keyless(Keyless::uniform_sticky())),
        "sarama_hash" => Arc::new(Fnv1a::with_keyless(Keyless::random())),
        "sarama_reference_hash" => Arc::new(ReferenceHash::with_keyless(Keyless::random())),
        "round_robin" => Arc::new(RoundRobin::new()),
        "least_bytes" => Arc::new(LeastBytes::new()),
        "uniform_sticky" => Arc::new(UniformSticky::default()),
        _ => return None,
    };
    Some(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashSet;

    /// Always the last partition, to see when a keyless strategy is used.
    #[derive(Debug, Default)]
    struct Last {
        reports: Mutex<Vec<(String, i32, usize)>>,
    }

    impl Partitioner for Last {
        fn partition(&self, _topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
            partitions - 1
        }
        fn on_batch_complete(&self, topic: &str, partition: i32, bytes: usize) {
            lock(&self.reports).push((topic.to_owned(), partition, bytes));
        }
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for &(data, hash) in cases {
            assert_eq!(murmur2(data), hash, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn murmur2_partition_is_to_positive_modulo() {
        // toPositive clears the sign bit: -790332482 & 0x7fffffff = 1357151166.
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
        let p = Murmur2::new();
        for n in [1, 3, 7, 37, 50] {
            assert_eq!(p.partition("t", Some(b"foobar"), n), 1_357_151_166 % n);
        }
        // An empty key is a key: it is hashed.
        let empty = to_positive(murmur2(b"")) % 37;
        assert_eq!(p.partition("t", Some(b""), 37), empty);
    }

    #[test]
    fn hashing_partitioners_use_their_keyless_strategy_for_null_keys() {
        let last = Arc::new(Last::default());
        let keyless = Keyless::Delegate(last.clone());
        let all: Vec<Box<dyn Partitioner>> = vec![
            Box::new(Murmur2::with_keyless(keyless.clone())),
            Box::new(Crc32::with_keyless(keyless.clone())),
            Box::new(ConsistentRandom::with_keyless(last.clone())),
            Box::new(Fnv1a::with_keyless(keyless.clone())),
            Box::new(ReferenceHash::with_keyless(keyless)),
        ];
        for (i, p) in all.iter().enumerate() {
            assert_eq!(p.partition("t", None, 5), 4);
            p.on_batch_complete("t", 4, 100 + i);
        }
        let reports = lock(&last.reports).clone();
        assert_eq!(
            reports.len(),
            5,
            "batch reports reach the keyless partitioner"
        );
        assert_eq!(reports[0], ("t".to_owned(), 4, 100));
    }

    #[test]
    fn hash_empty_hashes_null_like_an_empty_key() {
        let n = 37;
        let m = Murmur2::with_keyless(Keyless::HashEmpty);
        assert_eq!(m.partition("t", None, n), to_positive(murmur2(b"")) % n);
        assert_eq!(m.partition("t", None, n), m.partition("t", Some(b""), n));
        // crc32("") = 0: librdkafka `consistent` puts every null key on partition 0.
        let c = Crc32::new();
        assert_eq!(c.partition("t", None, n), 0);
        assert_eq!(c.partition("t", Some(b""), n), 0);
        let f = Fnv1a::with_keyless(Keyless::HashEmpty);
        assert_eq!(f.partition("t", None, 50), 35);
        let r = ReferenceHash::with_keyless(Keyless::HashEmpty);
        assert_eq!(r.partition("t", None, 50), 13);
    }

    #[test]
    fn crc32_is_standard_crc32_modulo() {
        // The CRC-32 check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        let p = Crc32::new();
        assert_eq!(
            p.partition("t", Some(b"123456789"), 37),
            (0xcbf4_3926_u32 % 37) as i32
        );
        // The top bit set must not make the partition negative (unsigned modulo).
        assert_eq!(
            p.partition("t", Some(b"123456789"), 7),
            (0xcbf4_3926_u32 % 7) as i32
        );
    }

    #[test]
    fn consistent_random_sends_null_and_empty_keys_to_the_keyless_partitioner() {
        let p = ConsistentRandom::with_keyless(Arc::new(Last::default()));
        assert_eq!(p.partition("t", None, 9), 8);
        assert_eq!(p.partition("t", Some(b""), 9), 8);
        assert_eq!(
            p.partition("t", Some(b"123456789"), 9),
            (0xcbf4_3926_u32 % 9) as i32
        );
    }

    // FNV-1a 32 and sarama's two hash partitioners, derived with this Python (Go's `%`
    // truncates toward zero, like Rust's):
    //
    //     def fnv1a32(b):
    //         h = 0x811c9dc5
    //         for c in b:
    //             h = ((h ^ c) * 0x01000193) & 0xffffffff
    //         return h
    //     def i32(u): return u - (1 << 32) if u >= 1 << 31 else u
    //     def go_rem(a, n): r = abs(a) % n; return -r if a < 0 else r
    //     def sarama_hash(u, n): p = go_rem(i32(u), n); return -p if p < 0 else p
    //     def sarama_ref(u, n): return go_rem(i32(u) & 0x7fffffff, n)
    //
    // key       fnv1a32     int32         hash n=3,7,50   reference n=3,7,50
    // ""        0x811c9dc5  -2128831035   0, 2, 35        2, 0, 13
    // "a"       0xe40c292c   -468965076   0, 6, 26        2, 3, 22
    // "foobar"  0xbf9cf968  -1080231576   0, 4, 26        2, 5, 22
    // "key-0"   0x58e035d9   1491088857   0, 6, 7         0, 6, 7
    // "hello"   0x4f9f2cab   1335831723   0, 2, 23        0, 2, 23
    // "kafka"   0x0d33c4e1    221496545   2, 4, 45        2, 4, 45
    /// (key, fnv1a32, sarama hash partition for n = 3, 7, 50, reference hash ditto).
    type FnvCase = (&'static [u8], u32, [i32; 3], [i32; 3]);
    const FNV_CASES: &[FnvCase] = &[
        (b"", 0x811c_9dc5, [0, 2, 35], [2, 0, 13]),
        (b"a", 0xe40c_292c, [0, 6, 26], [2, 3, 22]),
        (b"foobar", 0xbf9c_f968, [0, 4, 26], [2, 5, 22]),
        (b"key-0", 0x58e0_35d9, [0, 6, 7], [0, 6, 7]),
        (b"hello", 0x4f9f_2cab, [0, 2, 23], [0, 2, 23]),
        (b"kafka", 0x0d33_c4e1, [2, 4, 45], [2, 4, 45]),
    ];

    #[test]
    fn fnv1a_known_values() {
        for &(key, hash, _, _) in FNV_CASES {
            assert_eq!(fnv1a(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn sarama_hash_and_reference_hash_known_partitions() {
        let hash = Fnv1a::new();
        let reference = ReferenceHash::new();
        for &(key, _, by_hash, by_reference) in FNV_CASES {
            for (i, n) in [3, 7, 50].into_iter().enumerate() {
                let k = String::from_utf8_lossy(key);
                assert_eq!(hash.partition("t", Some(key), n), by_hash[i], "{k} n={n}");
                assert_eq!(
                    reference.partition("t", Some(key), n),
                    by_reference[i],
                    "{k} n={n}"
                );
            }
        }
    }

    #[test]
    fn sarama_hash_at_i32_min_matches_librdkafka_abs() {
        // int32 hash i32::MIN: sarama -(MIN % n); librdkafka (uint32)(-MIN) % n = 2^31 % n.
        for n in [1, 3, 7, 37, 50, i32::MAX] {
            let p = i32::MIN % n;
            let sarama = if p < 0 { -p } else { p };
            assert_eq!(sarama as u32, (1_u32 << 31) % n as u32);
        }
    }

    #[test]
    fn random_stays_in_range_and_reaches_every_partition() {
        let seen: HashSet<i32> = (0..2000)
            .map(|_| Random.partition("t", Some(b"k"), 7))
            .collect();
        assert_eq!(seen, (0..7).collect());
        assert_eq!(Random.partition("t", None, 1), 0);
    }

    #[test]
    fn round_robin_cycles() {
        let p = RoundRobin::new();
        let got: Vec<i32> = (0..7).map(|_| p.partition("t", None, 3)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
        // One counter across topics.
        assert_eq!(p.partition("other", None, 3), 1);
    }

    #[test]
    fn least_bytes_picks_the_fewest_bytes_lowest_index_on_ties() {
        let p = LeastBytes::new();
        assert_eq!(p.partition("t", None, 3), 0);
        p.on_batch_complete("t", 0, 100);
        assert_eq!(p.partition("t", None, 3), 1);
        p.on_batch_complete("t", 1, 50);
        assert_eq!(p.partition("t", None, 3), 2);
        p.on_batch_complete("t", 2, 50);
        assert_eq!(p.partition("t", None, 3), 1, "tie between 1 and 2");
        // A partition never reported has sent nothing.
        assert_eq!(p.partition("t", None, 4), 3);
        // Topics are counted apart.
        assert_eq!(p.partition("u", None, 3), 0);
        // Out-of-range reports are ignored.
        p.on_batch_complete("t", -1, 1);
    }

    #[test]
    fn uniform_sticky_switches_after_batch_size_bytes() {
        let p = UniformSticky::new(1000);
        let first = p.partition("t", None, 10);
        for _ in 0..100 {
            assert_eq!(p.partition("t", Some(b"ignored"), 10), first);
        }
        // Reports for other partitions or topics do not count.
        p.on_batch_complete("t", (first + 1) % 10, 5000);
        p.on_batch_complete("u", first, 5000);
        assert_eq!(p.partition("t", None, 10), first);
        // Small batches add up.
        p.on_batch_complete("t", first, 600);
        assert_eq!(p.partition("t", None, 10), first);
        p.on_batch_complete("t", first, 400);
        let second = p.partition("t", None, 10);
        assert_ne!(second, first, "moves to another partition");
        assert_eq!(p.partition("t", None, 10), second);
        // And keeps moving, over every partition in time.
        let mut seen = HashSet::from([first, second]);
        for _ in 0..500 {
            let cur = p.partition("t", None, 10);
            p.on_batch_complete("t", cur, 1000);
            assert_ne!(p.partition("t", None, 10), cur);
            seen.insert(cur);
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn uniform_sticky_single_partition_and_shrinking_topics() {
        let p = UniformSticky::new(1);
        assert_eq!(p.partition("t", None, 1), 0);
        p.on_batch_complete("t", 0, 10);
        assert_eq!(p.partition("t", None, 1), 0);
        let q = UniformSticky::default();
        assert_eq!(q.batch_size(), 16_384);
        for _ in 0..50 {
            let _ = q.partition("s", None, 100);
            assert!(q.partition("s", None, 2) < 2);
            q.on_batch_complete("s", q.partition("s", None, 2), 20_000);
        }
    }

    #[test]
    fn manual_answers_zero() {
        assert_eq!(Manual.partition("t", Some(b"k"), 12), 0);
    }

    #[test]
    fn no_partitions_never_panics() {
        let all: Vec<Arc<dyn Partitioner>> = [
            "random",
            "consistent",
            "consistent_random",
            "murmur2",
            "murmur2_random",
            "fnv1a",
            "fnv1a_random",
            "sarama_hash",
            "sarama_reference_hash",
            "round_robin",
            "least_bytes",
            "uniform_sticky",
        ]
        .iter()
        .map(|n| by_name(n).unwrap())
        .collect();
        for p in &all {
            for n in [0, -3] {
                assert_eq!(p.partition("t", Some(b"k"), n), 0);
                assert_eq!(p.partition("t", None, n), 0);
            }
            for _ in 0..20 {
                let k = p.partition("t", Some(b"k"), 5);
                let n = p.partition("t", None, 5);
                assert!((0..5).contains(&k) && (0..5).contains(&n), "{p:?}");
                p.on_batch_complete("t", n, 100_000);
            }
        }
    }

    #[test]
    fn by_name_knows_librdkafka_and_sarama_names() {
        assert!(by_name("nope").is_none());
        assert!(
            by_name("Murmur2").is_none(),
            "names are exact, as librdkafka's"
        );
        let k = Some(&b"foobar"[..]);
        assert_eq!(
            by_name("murmur2").unwrap().partition("t", k, 50),
            1_357_151_166 % 50
        );
        assert_eq!(
            by_name("murmur2_random").unwrap().partition("t", k, 50),
            1_357_151_166 % 50
        );
        assert_eq!(by_name("sarama_hash").unwrap().partition("t", k, 50), 26);
        assert_eq!(by_name("fnv1a_random").unwrap().partition("t", k, 7), 4);
        assert_eq!(
            by_name("sarama_reference_hash")
                .unwrap()
                .partition("t", k, 7),
            5
        );
        // Null keys: hashed as empty without `_random`.
        assert_eq!(by_name("consistent").unwrap().partition("t", None, 50), 0);
        assert_eq!(by_name("fnv1a").unwrap().partition("t", None, 50), 35);
        assert_eq!(
            by_name("murmur2").unwrap().partition("t", None, 50),
            to_positive(murmur2(b"")) % 50
        );
    }

    #[test]
    fn partitioners_are_shareable_trait_objects() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Arc<dyn Partitioner>>();
        let p: Arc<dyn Partitioner> = Arc::new(Murmur2::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || p.partition("t", Some(b"x"), 10))
            })
            .collect();
        let got: HashSet<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got.len(), 1);
    }
}
