//! Kafka consumers, short of group membership (that is `kafka-group`):
//!
//! - [`fetch`]: the stateless fetch of one partition, and the record extraction every
//!   consumer shares (every record format and codec, control batches hidden, aborted
//!   transactions skipped under read_committed).
//! - [`Fetcher`]: many partitions, one outstanding Fetch per broker covering all its
//!   partitions (or several lanes per broker, by choice), prefetch bounded in bytes,
//!   incremental fetch sessions (KIP-227).
//! - [`PartitionReader`]: one partition, kafka-go's `Reader`: cancellable
//!   `read_message`, `set_offset`, `set_offset_at`, lag, stats, a `Stream`, batches.
//! - [`Consumer`]: optiopay's simple consumer trait, and [`Mx`], which merges many
//!   consumers into one stream.
//! - [`offsets`]: offsets without membership: an offset coordinator for a group,
//!   earliest and latest offsets, and the envelope consumer whose messages must be
//!   committed, acknowledged or cancelled.

mod consumer;
mod error;
pub mod fetch;
mod fetcher;
mod mx;
pub mod offsets;
mod reader;

pub use consumer::{Consumer, ConsumerConfig, Message, SimpleConsumer};
pub use error::{ConsumeError, ConsumeErrorKind};
pub use fetch::{FetchOptions, Isolation};
pub use fetcher::{
    FetchPartitionStats, FetchedBatch, Fetcher, FetcherConfig, FetcherStatistics, OffsetReset,
    StartOffset,
};
pub use mx::Mx;
pub use reader::{PartitionReader, ReaderStats};

/// The README's examples, compiled (and run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
