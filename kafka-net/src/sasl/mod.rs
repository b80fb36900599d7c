//! SASL authentication mechanisms as pure, synchronous state machines.
//!
//! Nothing here does I/O. The connection code sends Kafka's `SaslHandshake`
//! request with [`SaslConfig::mechanism`], builds an [`Authenticator`] with
//! [`authenticator`], then carries each client message in a
//! `SaslAuthenticate` request and feeds the server's `auth_bytes` back into
//! [`Authenticator::step`] until it returns `Ok(None)`.
//!
//! Supported mechanisms (Java client property `sasl.mechanism`):
//!
//! | [`SaslConfig`] variant | mechanism | specification |
//! |---|---|---|
//! | `Plain` | `PLAIN` | RFC 4616 |
//! | `ScramSha256` | `SCRAM-SHA-256` | RFC 5802, RFC 7677 |
//! | `ScramSha512` | `SCRAM-SHA-512` | RFC 5802 |
//! | `OAuthBearer` | `OAUTHBEARER` | RFC 7628, as Kafka uses it |
//!
//! SCRAM needs the `sasl-scram` feature (which brings SHA-2, HMAC and PBKDF2) and
//! OAUTHBEARER the `sasl-oauthbearer` feature; both are on by default. Without one, the
//! variant still exists, but [`SaslConfig::validate`] and [`authenticator`] return an
//! error naming the feature.
//!
//! Secrets (passwords, tokens, token extension values) never appear in any
//! `Debug` or `Display` output of this module.
//!
//! SCRAM derives its key with PBKDF2 inside [`Authenticator::step`]; with the
//! iteration counts Kafka brokers store (4096 to 16384) that takes a few
//! milliseconds, but a server may ask for up to a million (see below), so
//! callers on an async runtime may prefer `spawn_blocking` for that step.
//!
//! # SCRAM iteration bounds
//!
//! The server chooses the PBKDF2 iteration count. This client accepts
//! `4096..=1_000_000`:
//! - below 4096 is rejected, as Kafka's Java client does: RFC 7677 asks for at
//!   least 4096, and a lower count lets an impostor server that captured the
//!   client proof guess the password more cheaply;
//! - above 1_000_000 is rejected so that a hostile server cannot make the
//!   client spend unbounded CPU. Kafka brokers never store more than 16384
//!   iterations, so the cap leaves ample room (about one second of CPU for
//!   SCRAM-SHA-512 at the cap).

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "sasl-oauthbearer")]
mod oauthbearer;
mod plain;
#[cfg(feature = "sasl-scram")]
mod scram;

/// The mechanism names of the feature-gated mechanisms, known without them.
const SCRAM_SHA256: &str = "SCRAM-SHA-256";
const SCRAM_SHA512: &str = "SCRAM-SHA-512";
const OAUTHBEARER: &str = "OAUTHBEARER";

/// Credentials and mechanism chosen by the user (Java client properties
/// `sasl.mechanism` and `sasl.jaas.config`). There is no default: SASL is off
/// unless a config is given.
///
/// `Debug` never prints passwords or tokens; they show as `"***"`.
#[derive(Clone)]
#[non_exhaustive]
pub enum SaslConfig {
    /// `PLAIN` (RFC 4616): the password is sent as is, so use it only over TLS.
    Plain {
        /// Authentication identity.
        username: String,
        /// Password.
        password: String,
        /// Authorization identity to act as; `None` (the usual case) acts as
        /// `username`.
        authzid: Option<String>,
    },
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256 {
        /// User name, sent with `=` and `,` escaped; no SASLprep (as Kafka).
        username: String,
        /// Password; never sent, only used to derive the proof.
        password: String,
    },
    /// `SCRAM-SHA-512` (RFC 5802 with SHA-512).
    ScramSha512 {
        /// User name, sent with `=` and `,` escaped; no SASLprep (as Kafka).
        username: String,
        /// Password; never sent, only used to derive the proof.
        password: String,
    },
    /// `OAUTHBEARER` (RFC 7628): a bearer token from a user-supplied source,
    /// fetched anew for every authentication.
    OAuthBearer {
        /// Source of the token (Java client: `sasl.login.callback.handler.class`).
        provider: Arc<dyn TokenProvider>,
    },
}

impl SaslConfig {
    /// `PLAIN` with no authorization identity.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Plain {
            username: username.into(),
            password: password.into(),
            authzid: None,
        }
    }

    /// `SCRAM-SHA-256`.
    pub fn scram_sha256(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::ScramSha256 {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `SCRAM-SHA-512`.
    pub fn scram_sha512(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::ScramSha512 {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `OAUTHBEARER` with the given token source.
    pub fn oauthbearer(provider: Arc<dyn TokenProvider>) -> Self {
        Self::OAuthBearer { provider }
    }

    /// The mechanism name sent in `SaslHandshake`: `"PLAIN"`, `"SCRAM-SHA-256"`,
    /// `"SCRAM-SHA-512"` or `"OAUTHBEARER"`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Plain { .. } => plain::MECHANISM,
            Self::ScramSha256 { .. } => SCRAM_SHA256,
            Self::ScramSha512 { .. } => SCRAM_SHA512,
            Self::OAuthBearer { .. } => OAUTHBEARER,
        }
    }

    /// The cargo feature this mechanism needs when it is off in this build.
    pub(crate) fn disabled_feature(&self) -> Option<&'static str> {
        match self {
            Self::ScramSha256 { .. } | Self::ScramSha512 { .. }
                if !cfg!(feature = "sasl-scram") =>
            {
                Some("sasl-scram")
            }
            Self::OAuthBearer { .. } if !cfg!(feature = "sasl-oauthbearer") => {
                Some("sasl-oauthbearer")
            }
            _ => None,
        }
    }

    /// Checks what can be checked without a server: non-empty user names and
    /// passwords, and no NUL characters where the mechanism forbids them.
    /// Call it when building the client; [`authenticator`] calls it too.
    /// OAUTHBEARER tokens are checked when fetched.
    pub fn validate(&self) -> Result<(), SaslError> {
        if let Some(feature) = self.disabled_feature() {
            return Err(SaslError::new(
                self.mechanism(),
                ErrorKind::FeatureOff(feature),
            ));
        }
        match self {
            Self::Plain {
                username,
                password,
                authzid,
            } => plain::validate(username, password, authzid.as_deref()),
            #[cfg(feature = "sasl-scram")]
            Self::ScramSha256 { username, password } => {
                scram::validate(scram::ScramHash::Sha256, username, password)
            }
            #[cfg(feature = "sasl-scram")]
            Self::ScramSha512 { username, password } => {
                scram::validate(scram::ScramHash::Sha512, username, password)
            }
            // OAUTHBEARER, and a mechanism whose feature is off (returned above).
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain {
                username,
                password: _,
                authzid,
            } => f
                .debug_struct("Plain")
                .field("username", username)
                .field("password", &Redacted)
                .field("authzid", authzid)
                .finish(),
            Self::ScramSha256 {
                username,
                password: _,
            } => f
                .debug_struct("ScramSha256")
                .field("username", username)
                .field("password", &Redacted)
                .finish(),
            Self::ScramSha512 {
                username,
                password: _,
            } => f
                .debug_struct("ScramSha512")
                .field("username", username)
                .field("password", &Redacted)
                .finish(),
            Self::OAuthBearer { provider: _ } => f
                .debug_struct("OAuthBearer")
                .field("provider", &format_args!("dyn TokenProvider"))
                .finish(),
        }
    }
}

/// Prints `***` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// User-supplied source of OAUTHBEARER tokens, called once per authentication
/// (so it should cache and refresh tokens itself).
///
/// Return [`SaslError::token_provider`] on failure.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// A currently valid token.
    async fn token(&self) -> Result<OAuthToken, SaslError>;
}

/// An OAUTHBEARER token and its SASL extensions (Java client:
/// `OAuthBearerToken` and `SaslExtensions`).
///
/// `Debug` prints neither the token nor the extension values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The bearer token (for example a JWT), in RFC 6750 `b64token` syntax.
    pub value: String,
    /// SASL extensions sent with the token as `key=value`, in this order.
    /// Keys are ASCII letters and not `auth`; values are printable ASCII,
    /// space, tab, CR or LF (as Kafka checks them).
    pub extensions: Vec<(String, String)>,
}

impl OAuthToken {
    /// A token without extensions.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            extensions: Vec::new(),
        }
    }

    /// Adds a SASL extension.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Extensions<'a>(&'a [(String, String)]);
        impl fmt::Debug for Extensions<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(k, _)| (k, Redacted)))
                    .finish()
            }
        }
        f.debug_struct("OAuthToken")
            .field("value", &Redacted)
            .field("extensions", &Extensions(&self.extensions))
            .finish()
    }
}

/// One authentication exchange: the client's messages and the server's answers.
///
/// Calls out of order (`step` before `initial`, anything after completion or
/// after an error) return an error; an authenticator is used once.
pub trait Authenticator: Send {
    /// The first client message.
    fn initial(&mut self) -> Result<Vec<u8>, SaslError>;
    /// Given the server's answer, the next client message, or `None` when the
    /// exchange is complete (after verifying the server, for SCRAM).
    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError>;
}

/// Builds the authenticator for a config, after [`SaslConfig::validate`].
/// For OAUTHBEARER it fetches and checks the token first, hence async.
pub async fn authenticator(config: &SaslConfig) -> Result<Box<dyn Authenticator>, SaslError> {
    config.validate()?;
    Ok(match config {
        SaslConfig::Plain {
            username,
            password,
            authzid,
        } => Box::new(plain::PlainAuthenticator::new(
            username,
            password,
            authzid.as_deref(),
        )),
        #[cfg(feature = "sasl-scram")]
        SaslConfig::ScramSha256 { username, password } => Box::new(scram::ScramAuthenticator::new(
            scram::ScramHash::Sha256,
            username,
            password,
        )),
        #[cfg(feature = "sasl-scram")]
        SaslConfig::ScramSha512 { username, password } => Box::new(scram::ScramAuthenticator::new(
            scram::ScramHash::Sha512,
            username,
            password,
        )),
        #[cfg(feature = "sasl-oauthbearer")]
        SaslConfig::OAuthBearer { provider } => {
            let token = provider.token().await?;
            Box::new(oauthbearer::OAuthBearerAuthenticator::new(&token)?)
        }
        // `validate` above rejected a mechanism whose feature is off.
        #[allow(unreachable_patterns)]
        other => {
            return Err(SaslError::new(
                other.mechanism(),
                ErrorKind::FeatureOff(other.disabled_feature().unwrap_or("sasl")),
            ))
        }
    })
}

/// A SASL failure: which mechanism, and what went wrong.
///
/// `Display` reads like `SCRAM-SHA-256: server signature does not match` and
/// never contains secrets. Text that came from the server is shortened and
/// stripped of control characters.
#[derive(Debug)]
pub struct SaslError {
    mechanism: &'static str,
    kind: ErrorKind,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.mechanism, self.kind)
    }
}

impl std::error::Error for SaslError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind is already in `Display`; only its cause is a source.
        std::error::Error::source(&self.kind)
    }
}

impl SaslError {
    pub(crate) fn new(mechanism: &'static str, kind: ErrorKind) -> Self {
        Self { mechanism, kind }
    }

    /// For [`TokenProvider`] implementations: the token could not be obtained.
    /// `source` becomes this error's [`source`](std::error::Error::source);
    /// it must not contain secrets.
    pub fn token_provider(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(OAUTHBEARER, ErrorKind::TokenProvider(source.into()))
    }

    /// The mechanism that failed, as in [`SaslConfig::mechanism`].
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// Whether the server answered that the credentials are not valid (SCRAM
    /// `e=` or an OAUTHBEARER error), as opposed to a protocol violation, a
    /// local configuration problem or a failed token provider.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ServerError(_) | ErrorKind::TokenRejected(_)
        )
    }
}

/// What went wrong; private so that it can grow.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(
    not(all(feature = "sasl-scram", feature = "sasl-oauthbearer")),
    allow(dead_code)
)]
pub(crate) enum ErrorKind {
    #[error(
        "needs the `{0}` feature of kafka-net, which is off in this build (it is on by default)"
    )]
    FeatureOff(&'static str),
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("token provider failed")]
    TokenProvider(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("called out of order: {0}")]
    OutOfOrder(&'static str),
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    #[error("server requires an unsupported extension (m=)")]
    UnsupportedExtension,
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    #[cfg(feature = "sasl-scram")]
    #[error("iteration count {0} outside the accepted range {min}..={max}", min = scram::MIN_ITERATIONS, max = scram::MAX_ITERATIONS)]
    Iterations(u32),
    #[error("server signature does not match")]
    ServerSignatureMismatch,
    #[error("server error: {0}")]
    ServerError(String),
    #[error("server rejected the token: {0}")]
    TokenRejected(String),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Longest server text kept in an error, in characters.
const MAX_SERVER_TEXT: usize = 512;

/// Server-supplied text made safe for an error message: lossy UTF-8, control
/// characters replaced, at most [`MAX_SERVER_TEXT`] characters.
#[cfg_attr(
    not(any(feature = "sasl-scram", feature = "sasl-oauthbearer")),
    allow(dead_code)
)]
fn server_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX_SERVER_TEXT)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(MAX_SERVER_TEXT).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::time::Duration;

    struct StaticToken(OAuthToken);

    #[async_trait::async_trait]
    impl TokenProvider for StaticToken {
        async fn token(&self) -> Result<OAuthToken, SaslError> {
            Ok(self.0.clone())
        }
    }

    struct FailingProvider;

    #[async_trait::async_trait]
    impl TokenProvider for FailingProvider {
        async fn token(&self) -> Result<OAuthToken, SaslError> {
            Err(SaslError::token_provider("identity provider unreachable"))
        }
    }

    fn timeout<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(10), f)
    }

    #[test]
    fn mechanism_names() {
        let provider: Arc<dyn TokenProvider> = Arc::new(StaticToken(OAuthToken::new("t")));
        assert_eq!(SaslConfig::plain("u", "p").mechanism(), "PLAIN");
        assert_eq!(
            SaslConfig::scram_sha256("u", "p").mechanism(),
            "SCRAM-SHA-256"
        );
        assert_eq!(
            SaslConfig::scram_sha512("u", "p").mechanism(),
            "SCRAM-SHA-512"
        );
        assert_eq!(SaslConfig::oauthbearer(provider).mechanism(), "OAUTHBEARER");
    }

    #[test]
    fn debug_redacts_every_secret() {
        let secret = "hunter2-SECRET";
        let configs = [
            SaslConfig::Plain {
                username: "alice".into(),
                password: secret.into(),
                authzid: Some("bob".into()),
            },
            SaslConfig::scram_sha256("alice", secret),
            SaslConfig::scram_sha512("alice", secret),
            SaslConfig::oauthbearer(Arc::new(StaticToken(
                OAuthToken::new(secret).with_extension("logicalCluster", secret),
            ))),
        ];
        for config in &configs {
            let debug = format!("{config:?}");
            assert!(!debug.contains(secret), "{debug}");
            assert!(
                debug.contains("***") || debug.contains("TokenProvider"),
                "{debug}"
            );
            let pretty = format!("{config:#?}");
            assert!(!pretty.contains(secret), "{pretty}");
        }
        assert_eq!(
            format!("{:?}", configs[0]),
            r#"Plain { username: "alice", password: "***", authzid: Some("bob") }"#
        );

        let token = OAuthToken::new(secret).with_extension("logicalCluster", secret);
        let debug = format!("{token:?}");
        assert_eq!(
            debug,
            r#"OAuthToken { value: "***", extensions: [("logicalCluster", "***")] }"#
        );
    }

    #[tokio::test]
    async fn errors_never_contain_secrets() {
        let secret = "hunter2-SECRET";
        // Invalid token and config errors name the problem, not the value.
        let bad_token = OAuthToken::new(format!("{secret}\u{1}"));
        let provider: Arc<dyn TokenProvider> = Arc::new(StaticToken(bad_token));
        let err = timeout(authenticator(&SaslConfig::oauthbearer(provider)))
            .await
            .unwrap()
            .err()
            .unwrap();
        assert!(!format!("{err} {err:?}").contains(secret));

        let config = SaslConfig::plain("alice", format!("{secret}\0"));
        let err = config.validate().unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
        assert_eq!(
            err.to_string(),
            "PLAIN: invalid configuration: password contains NUL"
        );
    }

    #[test]
    fn validate_rejects_empty_credentials() {
        for config in [
            SaslConfig::plain("", "p"),
            SaslConfig::plain("u", ""),
            SaslConfig::scram_sha256("", "p"),
            SaslConfig::scram_sha512("u\0", "p"),
        ] {
            assert!(config.validate().is_err(), "{config:?}");
        }
        assert!(SaslConfig::scram_sha512("u", "").validate().is_err());
        assert!(SaslConfig::plain("u", "p").validate().is_ok());
    }

    #[tokio::test]
    async fn authenticator_dispatches_on_mechanism() {
        let mut plain = timeout(authenticator(&SaslConfig::plain("u", "p")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(plain.initial().unwrap(), b"\0u\0p");

        let mut scram = timeout(authenticator(&SaslConfig::scram_sha512("u", "p")))
            .await
            .unwrap()
            .unwrap();
        assert!(scram.initial().unwrap().starts_with(b"n,,n=u,r="));

        let provider: Arc<dyn TokenProvider> =
            Arc::new(StaticToken(OAuthToken::new("abc").with_extension("k", "v")));
        let mut oauth = timeout(authenticator(&SaslConfig::oauthbearer(provider)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            oauth.initial().unwrap(),
            b"n,,\x01auth=Bearer abc\x01k=v\x01\x01"
        );

        let err = timeout(authenticator(&SaslConfig::plain("", "p")))
            .await
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(err.mechanism(), "PLAIN");
    }

    #[tokio::test]
    async fn token_provider_error_is_the_source() {
        let config = SaslConfig::oauthbearer(Arc::new(FailingProvider));
        let err = timeout(authenticator(&config))
            .await
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "OAUTHBEARER: token provider failed");
        assert_eq!(err.mechanism(), "OAUTHBEARER");
        assert!(!err.is_rejected());
        let source = err.source().unwrap();
        assert_eq!(source.to_string(), "identity provider unreachable");
    }

    #[test]
    fn authenticator_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let config = SaslConfig::plain("u", "p");
        let future = authenticator(&config);
        assert_send(&future);
    }

    #[test]
    fn server_text_is_sanitized_and_bounded() {
        assert_eq!(server_text(b"invalid-proof"), "invalid-proof");
        assert_eq!(server_text(b"a\nb\x1b[31m"), "a\u{FFFD}b\u{FFFD}[31m");
        assert_eq!(server_text(b"\xff"), "\u{FFFD}");
        let long = vec![b'x'; MAX_SERVER_TEXT + 10];
        let text = server_text(&long);
        assert_eq!(text.chars().count(), MAX_SERVER_TEXT + 1);
        assert!(text.ends_with('…'));
        assert_eq!(
            server_text(&long[..MAX_SERVER_TEXT]).chars().count(),
            MAX_SERVER_TEXT
        );
    }
}
