//! The crate's error: an opaque [`Error`] with a public [`ErrorKind`], the broker and
//! API it concerns, and whether retrying can help.

use kafka_protocol::{ApiKey, DecodeError, EncodeError, ErrorCode, VersionRange};
use std::fmt;
use std::sync::Arc;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connecting, reading or writing failed.
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    /// The broker did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection closed (by the broker, or after an earlier error poisoned it).
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// The broker sent something that is not a valid frame or message; the connection
    /// it came on is closed.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A response could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Client and broker share no version of an API.
    #[error("no version of {api} is supported by both sides (client {client}, broker {})", .broker.map_or("none".to_string(), |b| b.to_string()))]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The versions this client speaks.
        client: VersionRange,
        /// The versions the broker offers, if any.
        broker: Option<VersionRange>,
    },
    /// The broker answered with an error code.
    #[error("broker error {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The code.
        code: ErrorCode,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// TLS setup or handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// SASL authentication failed.
    #[error("SASL: {0}")]
    Sasl(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument of a call is invalid (an admin call refuses the item and sends
    /// nothing for it).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No broker could be reached, or the cluster lacks what was asked for.
    #[error("{0}")]
    Unavailable(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// An error of the transport or the cluster, with context.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    broker: Option<String>,
    api: Option<ApiKey>,
    resource: Option<String>,
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of this kind.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            broker: None,
            api: None,
            resource: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The broker (`host:port`, or `node N host:port`) the error concerns, if any.
    pub fn broker(&self) -> Option<&str> {
        self.broker.as_deref()
    }

    /// The API of the request that failed, if any.
    pub fn api(&self) -> Option<ApiKey> {
        self.api
    }

    /// What the error concerns (`topic orders`, `group billing`, `orders/3`), if named.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Names what the error concerns (a topic, partition, group or config resource).
    #[must_use]
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        if self.resource.is_none() {
            self.resource = Some(resource.into());
        }
        self
    }

    /// The broker's error code, when the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.kind {
            ErrorKind::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the same request may succeed if retried (after a reconnect or a
    /// metadata refresh).
    pub fn is_retriable(&self) -> bool {
        match &self.kind {
            ErrorKind::Io(_) | ErrorKind::Timeout(_) | ErrorKind::ConnectionClosed(_) => true,
            ErrorKind::Unavailable(_) => true,
            ErrorKind::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// Names the broker the error concerns.
    #[must_use]
    pub fn with_broker(mut self, broker: impl Into<String>) -> Self {
        if self.broker.is_none() {
            self.broker = Some(broker.into());
        }
        self
    }

    /// Names the API of the failed request.
    #[must_use]
    pub fn with_api(mut self, api: ApiKey) -> Self {
        if self.api.is_none() {
            self.api = Some(api);
        }
        self
    }

    /// An error for a broker error code, or `Ok` for `NONE`.
    pub fn check_code(code: i16, message: Option<&str>) -> Result<()> {
        let code = ErrorCode::from(code);
        if code.is_ok() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Broker {
                code,
                message: message.map(str::to_string),
            }))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(api) = self.api {
            write!(f, "{api} ")?;
        }
        if let Some(b) = &self.broker {
            write!(f, "to {b}")?;
        }
        if let Some(r) = &self.resource {
            if self.broker.is_some() {
                f.write_str(" ")?;
            }
            write!(f, "for {r}")?;
        }
        if self.api.is_some() || self.broker.is_some() || self.resource.is_some() {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e.as_ref()),
            ErrorKind::Decode(e) => Some(e),
            ErrorKind::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io(Arc::new(e)))
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::new(ErrorKind::Decode(e))
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::new(ErrorKind::Encode(e))
    }
}
