//! Client configuration. Each field names the Java client's property it matches and
//! its default.

use crate::error::{Error, ErrorKind, Result};
use crate::sasl::SaslConfig;
use crate::tls::TlsConfig;
use crate::versions::VersionTable;
use std::time::Duration;

/// How the client connects and talks to brokers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `client.id`: sent in every request header. Default `kafka-rs`.
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for any one response. Default 30 s.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect (and TLS handshake) timeout.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// `reconnect.backoff.ms`: first wait before reconnecting to a broker. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the backoff doubles (with ±20% jitter) up to this.
    /// Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// `metadata.max.age.ms`: metadata is refreshed at least this often. Default 5 min.
    pub metadata_max_age: Duration,
    /// Largest response frame accepted (librdkafka `receive.message.max.bytes`);
    /// anything larger closes that connection with an error. Default 100 MiB.
    pub max_response_size: usize,
    /// TLS (`security.protocol=SSL`/`SASL_SSL`), off by default. Needs the `tls`
    /// feature (on by default); without it a config that sets this fails `validate`.
    pub tls: Option<TlsConfig>,
    /// SASL (`sasl.mechanism`, `sasl.jaas.config`), off by default. SCRAM needs the
    /// `sasl-scram` feature and OAUTHBEARER `sasl-oauthbearer` (both on by default);
    /// without it a config that asks for the mechanism fails `validate`.
    pub sasl: Option<SaslConfig>,
    /// librdkafka `broker.version.fallback`: versions to assume for brokers older than
    /// 0.10 that do not answer ApiVersions. Default none (such brokers fail to connect).
    pub broker_version_fallback: Option<VersionTable>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: "kafka-rs".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            metadata_max_age: Duration::from_secs(300),
            max_response_size: 100 << 20,
            tls: None,
            sasl: None,
            broker_version_fallback: None,
        }
    }
}

impl ClientConfig {
    /// Checks the configuration; every constructor of a client calls this.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config(m.to_string())));
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be positive");
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be positive");
        }
        if self.reconnect_backoff > self.reconnect_backoff_max {
            return bad("reconnect_backoff must not exceed reconnect_backoff_max");
        }
        if self.max_response_size < 64 {
            return bad("max_response_size must be at least 64 bytes");
        }
        if self.client_id.len() > i16::MAX as usize {
            return bad("client_id is longer than 32767 bytes");
        }
        #[cfg(not(feature = "tls"))]
        if self.tls.is_some() {
            return Err(feature_off("tls", "TLS"));
        }
        if let Some(feature) = self.sasl.as_ref().and_then(SaslConfig::disabled_feature) {
            let mechanism = self.sasl.as_ref().map_or("SASL", SaslConfig::mechanism);
            return Err(feature_off(feature, mechanism));
        }
        Ok(())
    }
}

/// The error of a config that needs a cargo feature this build lacks.
pub(crate) fn feature_off(feature: &str, what: &str) -> Error {
    Error::new(ErrorKind::Config(format!(
        "{what} needs the `{feature}` feature of kafka-net, which is off in this build: \
         turn it on (it is on by default; kafka-producer, kafka-consumer and kafka-group \
         forward it)"
    )))
}
