//! Producer configuration. Fields name the Java client's property they match and their
//! default; `validate` rejects impossible combinations before anything is sent.

use crate::error::{ProduceError, ProduceErrorKind};
use crate::partitioner::Partitioner;
use kafka_protocol::compression::Compression;
use std::sync::Arc;
use std::time::Duration;

/// `acks`: how many replicas must have a record before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: no answer at all; offsets are unknown and nothing is retried.
    None,
    /// `acks=1`: the leader has it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. The default, and required by
    /// idempotence.
    #[default]
    All,
}

impl Acks {
    /// The wire value.
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// How a producer batches, sends and retries.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `acks`. Default [`Acks::All`].
    pub acks: Acks,
    /// `compression.type`. Default none. Each codec needs the cargo feature of its name
    /// (all on by default); `validate` rejects one whose feature is off.
    pub compression: Compression,
    /// `linger.ms`: how long a batch waits for more records. Default 5 ms. Kept to
    /// within about a millisecond (tokio's timer tick): a batch may go up to 1 ms (and at
    /// most half the linger) before it, as the Java client's millisecond clock allows.
    pub linger: Duration,
    /// `batch.size`: bytes after which a partition's batch is sent. Default 1 MiB.
    pub batch_size: usize,
    /// `max.request.size`: the largest Produce request, and so the largest record.
    /// Default 1 MiB.
    pub max_request_size: usize,
    /// `max.in.flight.requests.per.connection`: Produce requests out to one broker
    /// at a time (per connection, see `connections_per_broker`), and so batches of
    /// one partition. Default 2 (the Java client's is 5; at most 5 with idempotence):
    /// a broker works on one request per connection at a time, so one answered and
    /// one waiting keep it busy, and batches wait in the buffer, where they grow,
    /// instead of on the socket. In the comparison (BENCHMARKS.md, issue 16), 2 with a
    /// 4 MiB buffer was as fast as 5 with 8 MiB and held 4 MiB less. Without
    /// idempotence a retried batch may land after the ones sent behind it, as in the
    /// Java client; 1 keeps order then.
    pub max_in_flight: usize,
    /// Connections to each broker that Produce requests spread over (no Java
    /// equivalent: the Java client, librdkafka and franz-go keep one). A broker handles
    /// one request per connection at a time (Kafka mutes a connection until it has
    /// answered), so with one connection the broker works on one Produce request of
    /// this producer at a time; with more, on several at once. Each partition keeps to
    /// one connection (by topic and partition), so its batches stay in order; a
    /// single partition uses one. rskafka opens one per partition. Default 2: on one
    /// broker, 2 made the 1 KiB cells with 8 partitions 20 to 50% faster and left the
    /// others level (BENCHMARKS.md, issue 16); 1 to 16.
    pub connections_per_broker: usize,
    /// `buffer.memory`: bytes of records queued or in flight; `send` waits and
    /// `try_send` fails when full. A record is charged its size estimate when queued
    /// (its widest wire size; records are held in their batch's wire form, not as the
    /// `ProducerRecord`) and the slot its delivery report takes (32 bytes), and a
    /// batch gives back what it does not hold once sealed (after compression, its
    /// compressed size). A batch's records are written in chunks of 16 or 64 KiB, each
    /// charged when it is added if the buffer can spare it (so at most 16 KiB per open
    /// batch is held uncharged). Default 4 MiB, an eighth of the Java client's 32 MiB.
    /// In the comparison (BENCHMARKS.md, issue 16), with records placed as sticky
    /// partitioners place keyless ones (runs of records per partition) and
    /// `max_in_flight` 2, 4 MiB held up to 20 MiB less than 16 MiB and was as fast
    /// with acks=1. Every partition written to holds an open batch, so with many
    /// partitions each batch gets a smaller share of the buffer: smaller batches,
    /// which Apache Kafka takes in its stride (the Java client's `batch.size` is
    /// 16 KiB), but which a broker whose cost is per batch does not. On Tansu (about
    /// 1.6 ms of CPU per idempotent batch), idempotent records over 8 partitions went
    /// up to half slower than with 16 MiB with runs of records per partition, and 2 to
    /// 4 times slower with every record to the next partition (as keys spread them);
    /// raise `buffer_memory` to 16 MiB for such a broker.
    pub buffer_memory: usize,
    /// Records queued or in flight at most (franz-go's `MaxBufferedRecords`,
    /// librdkafka's `queue.buffering.max.messages`); `send` waits and `try_send` fails
    /// when they are. Each record is charged at least `buffer_memory /
    /// max_buffered_records` of the buffer (rounded up, its report's slot included),
    /// so small records fill the buffer by their count and large ones by their bytes,
    /// under one bound. 0 (the default): the bytes alone. A bound for memory with
    /// small records: in the comparison (BENCHMARKS.md, issue 16), 16,384 with the
    /// default buffer held 100-byte records in 1 to 2 MiB less RSS, and cost up to a
    /// quarter of the msg/s on 8 partitions, where Tansu then got smaller batches.
    pub max_buffered_records: usize,
    /// The most of `buffer_memory` one partition's records may hold, queued and in
    /// flight (charged as `buffer_memory` charges them). A record that would take its
    /// partition past it waits in `send` until one of the partition's batches is
    /// answered (`try_send` fails with `BufferFull`), even when the buffer has room;
    /// a partition holding nothing takes any record. So one partition cannot take the
    /// whole buffer from the others: a partition whose leader is slow or gone leaves
    /// room for the rest, and one partition written faster than its broker takes in
    /// (where the buffer fills, whatever its size) holds less. No Java or librdkafka
    /// equivalent (their partitions share the buffer). `None` (the default): three
    /// quarters of `buffer_memory`; in the comparison (BENCHMARKS.md, issue 16), one
    /// partition then held 0.6 to 1.0 MB less and stayed ahead of librdkafka and
    /// rskafka, and many partitions were as before (a smaller buffer for all made the
    /// idempotent 8-partition cells up to a fifth slower). At least
    /// `max_request_size`.
    pub partition_memory: Option<usize>,
    /// `request.timeout.ms` (passed to the broker as the Produce timeout). Default 30 s.
    pub request_timeout: Duration,
    /// `delivery.timeout.ms`: a record not acknowledged by then fails. Default 120 s.
    pub delivery_timeout: Duration,
    /// `retries`. Default unlimited (bounded by `delivery_timeout`).
    pub retries: u32,
    /// `retry.backoff.ms`. Default 100 ms.
    pub retry_backoff: Duration,
    /// `enable.idempotence`: producer id, epoch and sequence numbers, so retries never
    /// duplicate or reorder. Default true (needs `acks=all`).
    pub idempotence: bool,
    /// Create unknown topics (with the broker's default partitions). Default false.
    pub auto_create_topics: bool,
    /// The topic of every record (kafka-go `Writer.Topic`); when set, records must not
    /// name one. Default none.
    pub topic: Option<String>,
    /// `partitioner.class` / librdkafka `partitioner`. Default murmur2 for keyed
    /// records (the Java client's, librdkafka `murmur2_random`) and uniform sticky for
    /// keyless ones (KIP-794).
    pub partitioner: Option<Arc<dyn Partitioner>>,
    /// `transactional.id`: makes the producer transactional (exactly-once with
    /// `init_transactions`, `begin_transaction`, `commit_transaction`); the id must
    /// stay the same across restarts of one logical producer, so that a restarted
    /// instance fences the old one and aborts what it left open. Needs idempotence.
    /// Default none.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long a transaction may stay open before the
    /// coordinator aborts it. At most the broker's `transaction.max.timeout.ms`
    /// (15 minutes by default). Default 60 s.
    pub transaction_timeout: Duration,
    /// `max.block.ms`, for the transactional calls: how long `init_transactions`,
    /// `commit_transaction`, `abort_transaction` and `send_offsets_to_transaction`
    /// retry an unavailable coordinator (and CONCURRENT_TRANSACTIONS) before failing.
    /// Default 60 s.
    pub max_block: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            compression: Compression::None,
            linger: Duration::from_millis(5),
            batch_size: 1 << 20,
            max_request_size: 1 << 20,
            max_in_flight: 2,
            connections_per_broker: 2,
            buffer_memory: 4 << 20,
            max_buffered_records: 0,
            partition_memory: None,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            idempotence: true,
            auto_create_topics: false,
            topic: None,
            partitioner: None,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            max_block: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ProduceError> {
        let bad = |m: &str| Err(ProduceError::new(ProduceErrorKind::Config(m.to_string())));
        if self.idempotence && self.acks != Acks::All {
            return bad("idempotence needs acks=all (set idempotence=false for acks 0 or 1)");
        }
        if self.idempotence && self.max_in_flight > 5 {
            return bad("idempotence allows at most 5 requests in flight per connection");
        }
        if !(1..=16).contains(&self.connections_per_broker) {
            return bad("connections_per_broker must be 1 to 16");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1");
        }
        if self.batch_size == 0 || self.max_request_size < 128 {
            return bad("batch_size must be positive and max_request_size at least 128 bytes");
        }
        if self
            .partition_memory
            .is_some_and(|n| n < self.max_request_size)
        {
            return bad("partition_memory must hold at least one max_request_size");
        }
        if self.buffer_memory < self.max_request_size {
            return bad("buffer_memory must hold at least one max_request_size");
        }
        if self.request_timeout.is_zero() || self.delivery_timeout.is_zero() {
            return bad("request_timeout and delivery_timeout must be positive");
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return bad("transactional_id must not be empty");
            }
            if !self.idempotence {
                return bad("transactional_id needs idempotence (and so acks=all)");
            }
            let ms = self.transaction_timeout.as_millis();
            if ms == 0 || ms > i32::MAX as u128 {
                return bad("transaction_timeout must be between 1 ms and i32::MAX ms");
            }
            if self.max_block.is_zero() {
                return bad("max_block must be positive");
            }
        }
        if matches!(&self.topic, Some(t) if t.is_empty()) {
            return bad("topic must not be empty");
        }
        if !self.compression.is_enabled() {
            let c = self.compression;
            return bad(&format!(
                "compression {c} needs the `{c}` feature of kafka-producer, which is off in this build"
            ));
        }
        Ok(())
    }

    /// Sets `acks`.
    pub fn with_acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        if acks != Acks::All {
            self.idempotence = false;
        }
        self
    }

    /// Sets the compression codec.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets `linger`.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sends every record to this topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Uses this partitioner.
    pub fn with_partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(partitioner);
        self
    }

    /// Makes the producer transactional with this `transactional.id` (turns
    /// idempotence on).
    pub fn with_transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self.idempotence = true;
        self.acks = Acks::All;
        self
    }

    /// Sets `transaction_timeout`.
    pub fn with_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Sets `connections_per_broker`.
    pub fn with_connections_per_broker(mut self, connections: usize) -> Self {
        self.connections_per_broker = connections;
        self
    }

    /// Turns idempotence on or off.
    pub fn with_idempotence(mut self, on: bool) -> Self {
        self.idempotence = on;
        self
    }
}
