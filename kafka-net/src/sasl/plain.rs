//! `PLAIN` (RFC 4616): one message `authzid NUL authcid NUL passwd`.

use super::{Authenticator, ErrorKind, SaslError};

pub(crate) const MECHANISM: &str = "PLAIN";

fn error(kind: ErrorKind) -> SaslError {
    SaslError::new(MECHANISM, kind)
}

/// RFC 4616: authcid and passwd are non-empty, and no part contains NUL.
pub(crate) fn validate(
    username: &str,
    password: &str,
    authzid: Option<&str>,
) -> Result<(), SaslError> {
    let invalid = |what| Err(error(ErrorKind::InvalidConfig(what)));
    if username.is_empty() {
        return invalid("empty username");
    }
    if password.is_empty() {
        return invalid("empty password");
    }
    if username.contains('\0') {
        return invalid("username contains NUL");
    }
    if password.contains('\0') {
        return invalid("password contains NUL");
    }
    if authzid.is_some_and(|a| a.contains('\0')) {
        return invalid("authzid contains NUL");
    }
    Ok(())
}

enum State {
    Start,
    Sent,
    Done,
    Failed,
}

/// Sends the credentials, then expects the server's empty answer.
pub(crate) struct PlainAuthenticator {
    /// The whole client message, built up front.
    message: Vec<u8>,
    state: State,
}

impl PlainAuthenticator {
    /// Expects arguments already checked by [`validate`].
    pub(crate) fn new(username: &str, password: &str, authzid: Option<&str>) -> Self {
        let authzid = authzid.unwrap_or("");
        let mut message = Vec::with_capacity(authzid.len() + username.len() + password.len() + 2);
        message.extend_from_slice(authzid.as_bytes());
        message.push(0);
        message.extend_from_slice(username.as_bytes());
        message.push(0);
        message.extend_from_slice(password.as_bytes());
        Self {
            message,
            state: State::Start,
        }
    }
}

impl Authenticator for PlainAuthenticator {
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
            State::Sent => Err(error(ErrorKind::Malformed("non-empty answer to PLAIN"))),
            State::Start => Err(error(ErrorKind::OutOfOrder("step before initial message"))),
            State::Done => Err(error(ErrorKind::OutOfOrder("exchange already complete"))),
            State::Failed => Err(error(ErrorKind::OutOfOrder("exchange already failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes_without_authzid() {
        let mut auth = PlainAuthenticator::new("alice", "pa55word", None);
        assert_eq!(auth.initial().unwrap(), b"\0alice\0pa55word");
        assert_eq!(auth.step(b"").unwrap(), None);
    }

    #[test]
    fn plain_bytes_with_authzid() {
        let mut auth = PlainAuthenticator::new("alice", "pa55word", Some("bob"));
        assert_eq!(auth.initial().unwrap(), b"bob\0alice\0pa55word");
        assert_eq!(auth.step(b"").unwrap(), None);
    }

    #[test]
    fn plain_utf8_is_sent_as_is() {
        let mut auth = PlainAuthenticator::new("jörg", "пароль", None);
        assert_eq!(auth.initial().unwrap(), "\0jörg\0пароль".as_bytes());
    }

    #[test]
    fn plain_rejects_non_empty_answer() {
        let mut auth = PlainAuthenticator::new("alice", "pw", None);
        auth.initial().unwrap();
        let err = auth.step(b"surprise").unwrap_err();
        assert_eq!(
            err.to_string(),
            "PLAIN: malformed server message: non-empty answer to PLAIN"
        );
        assert!(auth.step(b"").is_err(), "a failed exchange stays failed");
    }

    #[test]
    fn plain_rejects_out_of_order_calls() {
        let mut auth = PlainAuthenticator::new("alice", "pw", None);
        assert!(auth.step(b"").is_err());
        let mut auth = PlainAuthenticator::new("alice", "pw", None);
        auth.initial().unwrap();
        assert!(auth.initial().is_err());
        let mut auth = PlainAuthenticator::new("alice", "pw", None);
        auth.initial().unwrap();
        auth.step(b"").unwrap();
        let err = auth.step(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "PLAIN: called out of order: exchange already complete"
        );
    }

    #[test]
    fn plain_validation() {
        assert!(validate("alice", "pw", None).is_ok());
        assert!(validate("alice", "pw", Some("")).is_ok());
        assert!(validate("", "pw", None).is_err());
        assert!(validate("alice", "", None).is_err());
        assert!(validate("al\0ice", "pw", None).is_err());
        assert!(validate("alice", "p\0w", None).is_err());
        assert!(validate("alice", "pw", Some("b\0b")).is_err());
    }
}
