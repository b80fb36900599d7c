//! The producers' error: what failed, for which topic and partition, and whether
//! retrying can help.

use crate::buffered::TransactionState;
use kafka_protocol::ErrorCode;
use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceErrorKind {
    /// The transport or cluster failed (connection, timeout, metadata).
    #[error(transparent)]
    Client(#[from] kafka_net::Error),
    /// The broker refused the records with this code.
    #[error("broker error {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// A record is larger than the largest request the producer may send.
    #[error("record of {size} bytes is larger than max_request_size ({max} bytes)")]
    RecordTooLarge {
        /// The record's encoded size estimate.
        size: usize,
        /// `max_request_size`.
        max: usize,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Neither or both of the producer's topic and the record's topic are set (the
    /// kafka-go rule: one must name it).
    #[error("{0}")]
    AmbiguousTopic(String),
    /// The partition does not exist.
    #[error("partition {partition} does not exist (the topic has {partitions})")]
    NoSuchPartition {
        /// The partition asked for.
        partition: i32,
        /// How many the topic has.
        partitions: i32,
    },
    /// The record waited longer than `delivery_timeout` without being acknowledged.
    #[error("not delivered within the delivery timeout of {0:?}")]
    DeliveryTimeout(std::time::Duration),
    /// The producer's buffer is full (`try_send`): its bytes, or its records when
    /// `max_buffered_records` is set, or the record's partition's share of it
    /// (`partition_memory`).
    #[error("the producer's buffer of {0} bytes is full (or holds max_buffered_records records, or the record's partition holds its partition_memory)")]
    BufferFull(usize),
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
    /// A call that does not wait (`try_send_with_callback`) would have had to: the
    /// topic's partition count is not in the cached metadata yet.
    #[error("not queued without waiting: {0}")]
    WouldBlock(String),
    /// A transactional call on a producer configured without `transactional_id`.
    #[error("{0} needs a transactional producer: set ProducerConfig::transactional_id (transactional.id)")]
    NotTransactional(&'static str),
    /// The call is not allowed in the state the transactional producer is in (a send
    /// outside a transaction, a commit with none open, a second `init_transactions`).
    #[error("{call} is not allowed while the producer is {state}")]
    TransactionState {
        /// The call refused.
        call: &'static str,
        /// The state it was refused in.
        state: TransactionState,
    },
    /// A newer producer with the same transactional id took over (the broker answered
    /// PRODUCER_FENCED or INVALID_PRODUCER_EPOCH to the coordinator): this producer can
    /// only be closed. Fatal.
    #[error(
        "fenced: another producer with transactional id {transactional_id:?} took over ({code})"
    )]
    Fenced {
        /// The transactional id.
        transactional_id: String,
        /// The code the broker answered.
        code: ErrorCode,
    },
    /// The transaction cannot commit: abort it (`abort_transaction`), and the producer
    /// goes on with the next one.
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(Box<ProduceError>),
    /// The transactional producer failed for good: it refuses every call but `close`.
    #[error("the transactional producer failed for good: {0}")]
    TransactionFatal(Box<ProduceError>),
    /// The transaction was open longer than `transaction_timeout`
    /// (`transaction.timeout.ms`): the coordinator aborted it and, as Kafka does,
    /// bumped the producer's epoch, which fences this producer. Fatal: close it; a new
    /// producer with the same transactional id (its `init_transactions`) goes on.
    #[error("the transaction was open longer than its timeout of {0:?}: the coordinator aborted it and fenced this producer (close it and start a new one)")]
    TransactionTimedOut(std::time::Duration),
    /// The record was dropped unsent because its transaction was aborted.
    #[error("the record's transaction was aborted before it was sent")]
    TransactionAborted,
}

/// An error producing records, with the topic and partition it concerns.
#[derive(Debug, Clone)]
pub struct ProduceError {
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ProduceErrorKind,
    topic: Option<String>,
    partition: Option<i32>,
}

impl ProduceError {
    /// An error of this kind.
    pub fn new(kind: ProduceErrorKind) -> Self {
        ProduceError {
            inner: Box::new(Inner {
                kind,
                topic: None,
                partition: None,
            }),
        }
    }

    /// A broker error code as an error, `None` for `NONE`.
    pub fn from_code(code: i16, message: Option<&str>) -> Option<Self> {
        let code = ErrorCode::from(code);
        (!code.is_ok()).then(|| {
            ProduceError::new(ProduceErrorKind::Broker {
                code,
                message: message.map(str::to_string),
            })
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ProduceErrorKind {
        &self.inner.kind
    }

    /// The topic, when the error concerns one.
    pub fn topic(&self) -> Option<&str> {
        self.inner.topic.as_deref()
    }

    /// The partition, when the error concerns one.
    pub fn partition(&self) -> Option<i32> {
        self.inner.partition
    }

    /// The broker's error code, if the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.inner.kind {
            ProduceErrorKind::Broker { code, .. } => Some(*code),
            ProduceErrorKind::Client(e) => e.code(),
            ProduceErrorKind::Fenced { code, .. } => Some(*code),
            ProduceErrorKind::TransactionAbortable(e) | ProduceErrorKind::TransactionFatal(e) => {
                e.code()
            }
            _ => None,
        }
    }

    /// True for fencing: another producer with the same transactional id took over,
    /// and this one must be closed.
    pub fn is_fenced(&self) -> bool {
        match &self.inner.kind {
            ProduceErrorKind::Fenced { .. } => true,
            ProduceErrorKind::TransactionFatal(e) => e.is_fenced(),
            _ => false,
        }
    }

    /// True when the transaction must be aborted, after which the producer goes on
    /// (a record failed for good, a rebalance fenced the group member).
    pub fn is_abortable(&self) -> bool {
        matches!(self.inner.kind, ProduceErrorKind::TransactionAbortable(_))
    }

    /// True when the transactional producer cannot go on (fenced, timed out, a fatal
    /// broker answer, a broker without the APIs): close it; a new producer with the
    /// same transactional id starts over.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.inner.kind,
            ProduceErrorKind::Fenced { .. }
                | ProduceErrorKind::TransactionFatal(_)
                | ProduceErrorKind::TransactionTimedOut(_)
        )
    }

    /// True when sending the same records again may succeed.
    pub fn is_retriable(&self) -> bool {
        match &self.inner.kind {
            ProduceErrorKind::Client(e) => e.is_retriable(),
            ProduceErrorKind::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// Names the topic and partition.
    #[must_use]
    pub fn at(mut self, topic: &str, partition: i32) -> Self {
        self.inner.topic.get_or_insert_with(|| topic.to_string());
        self.inner.partition.get_or_insert(partition);
        self
    }
}

impl fmt::Display for ProduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.topic, self.inner.partition) {
            (Some(t), Some(p)) => write!(f, "producing to {t}/{p}: ")?,
            (Some(t), None) => write!(f, "producing to {t}: ")?,
            _ => {}
        }
        write!(f, "{}", self.inner.kind)
    }
}

impl std::error::Error for ProduceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ProduceErrorKind::Client(e) => Some(e),
            ProduceErrorKind::TransactionAbortable(e) | ProduceErrorKind::TransactionFatal(e) => {
                Some(e.as_ref())
            }
            _ => None,
        }
    }
}

impl From<ProduceErrorKind> for ProduceError {
    fn from(kind: ProduceErrorKind) -> Self {
        ProduceError::new(kind)
    }
}

impl From<kafka_net::Error> for ProduceError {
    fn from(e: kafka_net::Error) -> Self {
        ProduceError::new(ProduceErrorKind::Client(e))
    }
}
