//! `OAUTHBEARER` (RFC 7628) as Kafka uses it: one client message
//! `n,,\x01auth=Bearer <token>\x01[<key>=<value>\x01]*\x01`, no authzid.
//!
//! Success is an empty server answer. Otherwise the server sends an error
//! JSON; RFC 7628 section 3.2.3 has the client answer with a single `\x01`,
//! after which the server fails the exchange. [`Authenticator::step`] models
//! that: the error JSON yields `Some(b"\x01")`, the next call the error.

use super::{server_text, Authenticator, ErrorKind, OAuthToken, SaslError};

pub(crate) const MECHANISM: &str = "OAUTHBEARER";
/// Separates the key-value pairs of the message.
const SEP: u8 = 0x01;

fn error(kind: ErrorKind) -> SaslError {
    SaslError::new(MECHANISM, kind)
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Kafka's rules: keys `[A-Za-z]+` other than `auth`, values `[\x21-\x7E \t\r\n]+`.
fn check_extension(key: &str, value: &str) -> Result<(), ErrorKind> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ErrorKind::InvalidToken(
            "extension key is not ASCII letters",
        ));
    }
    if key == "auth" {
        return Err(ErrorKind::InvalidToken("extension key `auth` is reserved"));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(ErrorKind::InvalidToken(
            "extension value has characters outside RFC 7628",
        ));
    }
    Ok(())
}

enum State {
    Start,
    Sent,
    /// The server sent this error; we answered `\x01`.
    Acknowledged(String),
    Done,
    Failed,
}

/// Sends the token; see the module documentation for the error path.
pub(crate) struct OAuthBearerAuthenticator {
    /// The whole client message (contains the token).
    message: Vec<u8>,
    state: State,
}

impl OAuthBearerAuthenticator {
    /// Checks the token and its extensions and builds the client message.
    pub(crate) fn new(token: &OAuthToken) -> Result<Self, SaslError> {
        if !is_b64token(&token.value) {
            return Err(error(ErrorKind::InvalidToken(
                "token is not an RFC 6750 b64token",
            )));
        }
        let mut message = Vec::with_capacity(32 + token.value.len());
        message.extend_from_slice(b"n,,");
        message.push(SEP);
        message.extend_from_slice(b"auth=Bearer ");
        message.extend_from_slice(token.value.as_bytes());
        message.push(SEP);
        for (key, value) in &token.extensions {
            check_extension(key, value).map_err(error)?;
            message.extend_from_slice(key.as_bytes());
            message.push(b'=');
            message.extend_from_slice(value.as_bytes());
            message.push(SEP);
        }
        message.push(SEP);
        Ok(Self {
            message,
            state: State::Start,
        })
    }
}

impl Authenticator for OAuthBearerAuthenticator {
    fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => {
                self.state = State::Sent;
                Ok(std::mem::take(&mut self.message))
            }
            _ => Err(error(ErrorKind::OutOfOrder("initial message already sent"))),
        }
    }

    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Sent if server.is_empty() => {
                self.state = State::Done;
                Ok(None)
            }
            State::Sent => {
                self.state = State::Acknowledged(server_text(server));
                Ok(Some(vec![SEP]))
            }
            State::Acknowledged(text) => Err(error(ErrorKind::TokenRejected(text))),
            State::Start => Err(error(ErrorKind::OutOfOrder("step before initial message"))),
            State::Done => Err(error(ErrorKind::OutOfOrder("exchange already complete"))),
            State::Failed => Err(error(ErrorKind::OutOfOrder("exchange already failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";

    #[test]
    fn oauthbearer_bytes_without_extensions() {
        let mut auth = OAuthBearerAuthenticator::new(&OAuthToken::new(JWT)).unwrap();
        let expected = format!("n,,\x01auth=Bearer {JWT}\x01\x01");
        assert_eq!(auth.initial().unwrap(), expected.as_bytes());
        assert_eq!(auth.step(b"").unwrap(), None);
        assert!(auth.step(b"").is_err());
    }

    #[test]
    fn oauthbearer_bytes_with_extensions() {
        let token = OAuthToken::new("abc-._~+/==")
            .with_extension("logicalCluster", "lkc-123")
            .with_extension("identityPoolId", "pool 9");
        let mut auth = OAuthBearerAuthenticator::new(&token).unwrap();
        assert_eq!(
            auth.initial().unwrap(),
            b"n,,\x01auth=Bearer abc-._~+/==\x01logicalCluster=lkc-123\x01identityPoolId=pool 9\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_server_error_is_acknowledged_then_returned() {
        let json = br#"{"status":"invalid_token","scope":"kafka","openid-configuration":"https://idp/.well-known"}"#;
        let mut auth = OAuthBearerAuthenticator::new(&OAuthToken::new(JWT)).unwrap();
        auth.initial().unwrap();
        assert_eq!(auth.step(json).unwrap(), Some(vec![0x01]));
        let err = auth.step(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "OAUTHBEARER: server rejected the token: {}",
                String::from_utf8_lossy(json)
            )
        );
        assert!(err.is_rejected());
        assert!(!err.to_string().contains(JWT));
        assert!(auth.step(b"").is_err(), "failed stays failed");
    }

    #[test]
    fn oauthbearer_rejects_invalid_tokens() {
        for value in ["", "a b", "tok\x01en", "=", "tok=en", "tök"] {
            let err = OAuthBearerAuthenticator::new(&OAuthToken::new(value))
                .err()
                .unwrap();
            assert_eq!(
                err.to_string(),
                "OAUTHBEARER: invalid token: token is not an RFC 6750 b64token",
                "{value:?}"
            );
        }
    }

    #[test]
    fn oauthbearer_rejects_invalid_extensions() {
        for (key, value) in [
            ("auth", "x"),
            ("", "x"),
            ("key1", "x"),
            ("k", ""),
            ("k", "a\x01b"),
            ("k", "é"),
        ] {
            let token = OAuthToken::new(JWT).with_extension(key, value);
            assert!(
                OAuthBearerAuthenticator::new(&token).is_err(),
                "{key:?}={value:?}"
            );
        }
        let token = OAuthToken::new(JWT).with_extension("k", "tab\there\r\n ~!");
        assert!(OAuthBearerAuthenticator::new(&token).is_ok());
    }

    #[test]
    fn oauthbearer_rejects_out_of_order_calls() {
        let mut auth = OAuthBearerAuthenticator::new(&OAuthToken::new(JWT)).unwrap();
        assert!(auth.step(b"").is_err());
        let mut auth = OAuthBearerAuthenticator::new(&OAuthToken::new(JWT)).unwrap();
        auth.initial().unwrap();
        assert!(auth.initial().is_err());
    }
}
