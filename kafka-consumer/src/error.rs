//! The consumers' error: what failed, for which topic and partition (and offset), and
//! whether retrying can help.

use kafka_protocol::ErrorCode;
use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeErrorKind {
    /// The transport or cluster failed.
    #[error(transparent)]
    Client(#[from] kafka_net::Error),
    /// The broker answered with this code for the partition.
    #[error("broker error {0}")]
    Broker(ErrorCode),
    /// The fetched record data could not be decoded (a bad CRC, a malformed batch).
    #[error("corrupt record data at offset {offset}: {source}")]
    Corrupt {
        /// The offset being fetched.
        offset: i64,
        /// Why.
        source: kafka_protocol::DecodeError,
    },
    /// The fetch offset is outside the partition's log and the policy is to fail.
    #[error("offset {offset} is out of range (log {low}..{high})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// Log start.
        low: i64,
        /// Log end.
        high: i64,
    },
    /// `retry_limit` fetches in a row returned nothing (optiopay's `ErrNoData`).
    #[error("no data after {0} empty fetches")]
    NoData(u32),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
}

/// An error consuming, with the topic and partition it concerns.
#[derive(Debug, Clone)]
pub struct ConsumeError {
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ConsumeErrorKind,
    topic: Option<String>,
    partition: Option<i32>,
}

impl ConsumeError {
    /// An error of this kind.
    pub fn new(kind: ConsumeErrorKind) -> Self {
        ConsumeError {
            inner: Box::new(Inner {
                kind,
                topic: None,
                partition: None,
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ConsumeErrorKind {
        &self.inner.kind
    }

    /// The topic, if the error concerns one.
    pub fn topic(&self) -> Option<&str> {
        self.inner.topic.as_deref()
    }

    /// The partition, if the error concerns one.
    pub fn partition(&self) -> Option<i32> {
        self.inner.partition
    }

    /// The broker's error code, if it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.inner.kind {
            ConsumeErrorKind::Broker(c) => Some(*c),
            ConsumeErrorKind::Client(e) => e.code(),
            _ => None,
        }
    }

    /// True when trying again may succeed.
    pub fn is_retriable(&self) -> bool {
        match &self.inner.kind {
            ConsumeErrorKind::Client(e) => e.is_retriable(),
            ConsumeErrorKind::Broker(c) => c.is_retriable(),
            _ => false,
        }
    }

    /// True for [`ConsumeErrorKind::NoData`].
    pub fn is_no_data(&self) -> bool {
        matches!(self.inner.kind, ConsumeErrorKind::NoData(_))
    }

    /// Names the topic and partition.
    #[must_use]
    pub fn at(mut self, topic: &str, partition: i32) -> Self {
        self.inner.topic.get_or_insert_with(|| topic.to_string());
        self.inner.partition.get_or_insert(partition);
        self
    }
}

impl fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.topic, self.inner.partition) {
            (Some(t), Some(p)) => write!(f, "consuming {t}/{p}: ")?,
            (Some(t), None) => write!(f, "consuming {t}: ")?,
            _ => {}
        }
        write!(f, "{}", self.inner.kind)
    }
}

impl std::error::Error for ConsumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ConsumeErrorKind::Client(e) => Some(e),
            ConsumeErrorKind::Corrupt { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConsumeErrorKind> for ConsumeError {
    fn from(kind: ConsumeErrorKind) -> Self {
        ConsumeError::new(kind)
    }
}

impl From<kafka_net::Error> for ConsumeError {
    fn from(e: kafka_net::Error) -> Self {
        ConsumeError::new(ConsumeErrorKind::Client(e))
    }
}
