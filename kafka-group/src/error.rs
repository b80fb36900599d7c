//! The group consumer's error.

use kafka_protocol::ErrorCode;
use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GroupErrorKind {
    /// The transport or cluster failed.
    #[error(transparent)]
    Client(#[from] kafka_net::Error),
    /// Fetching failed.
    #[error(transparent)]
    Consume(#[from] kafka_consumer::ConsumeError),
    /// The coordinator answered with this code.
    #[error("coordinator error {0}")]
    Broker(ErrorCode),
    /// A member's subscription or assignment could not be read.
    #[error("malformed group protocol data: {0}")]
    Protocol(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The member left the group, and why (e.g. the poll interval was exceeded).
    #[error("left the group: {0}")]
    Left(String),
    /// The consumer was closed.
    #[error("the group consumer is closed")]
    Closed,
}

/// An error of the group consumer, with what it was doing.
#[derive(Debug, Clone)]
pub struct GroupError {
    kind: Box<GroupErrorKind>,
    context: Vec<String>,
}

impl GroupError {
    /// An error of this kind.
    pub fn new(kind: GroupErrorKind) -> Self {
        GroupError {
            kind: Box::new(kind),
            context: Vec::new(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &GroupErrorKind {
        &self.kind
    }

    /// The coordinator's error code, when it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self.kind.as_ref() {
            GroupErrorKind::Broker(c) => Some(*c),
            GroupErrorKind::Client(e) => e.code(),
            GroupErrorKind::Consume(e) => e.code(),
            _ => None,
        }
    }

    /// True when trying again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self.kind.as_ref() {
            GroupErrorKind::Client(e) => e.is_retriable(),
            GroupErrorKind::Consume(e) => e.is_retriable(),
            GroupErrorKind::Broker(c) => {
                c.is_retriable() || matches!(c, ErrorCode::RebalanceInProgress)
            }
            _ => false,
        }
    }

    /// Adds what was being done.
    #[must_use]
    pub fn context(mut self, what: &str) -> Self {
        self.context.push(what.to_string());
        self
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.context.iter().rev() {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for GroupError {}

impl From<GroupErrorKind> for GroupError {
    fn from(kind: GroupErrorKind) -> Self {
        GroupError::new(kind)
    }
}

impl From<kafka_net::Error> for GroupError {
    fn from(e: kafka_net::Error) -> Self {
        GroupError::new(GroupErrorKind::Client(e))
    }
}

impl From<kafka_consumer::ConsumeError> for GroupError {
    fn from(e: kafka_consumer::ConsumeError) -> Self {
        GroupError::new(GroupErrorKind::Consume(e))
    }
}
