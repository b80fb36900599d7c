//! `SCRAM-SHA-256` and `SCRAM-SHA-512` (RFC 5802, RFC 7677), client side,
//! without channel binding (`c=biws`) and, as Kafka, without SASLprep.
//!
//! ```text
//! client-first   n,,n=<user>,r=<client nonce>
//! server-first   r=<client nonce + server nonce>,s=<base64 salt>,i=<iterations>
//! client-final   c=biws,r=<nonce>,p=<base64 ClientProof>
//! server-final   v=<base64 ServerSignature>   or   e=<error>
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::digest::{FixedOutput, KeyInit, MacMarker, OutputSizeUser, Update};
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use sha2::{Digest, Sha256, Sha512};

use super::{server_text, Authenticator, ErrorKind, SaslError};

/// Fewest PBKDF2 iterations accepted from the server (RFC 7677; Kafka's Java
/// client rejects fewer too).
pub(crate) const MIN_ITERATIONS: u32 = 4096;
/// Most PBKDF2 iterations accepted from the server, so that it cannot make us
/// burn unbounded CPU; Kafka brokers store at most 16384.
pub(crate) const MAX_ITERATIONS: u32 = 1_000_000;
/// Length of the client nonce (alphanumeric characters, about 190 bits).
const NONCE_LEN: usize = 32;
/// `c=` attribute: base64 of the GS2 header `n,,` (no channel binding).
const CHANNEL_BINDING: &str = "biws";

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub(crate) const fn mechanism(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// `(ClientProof, ServerKey)` for this exchange.
    fn derive(
        self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        auth_message: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), ErrorKind> {
        match self {
            Self::Sha256 => {
                derive::<Hmac<Sha256>, Sha256>(password, salt, iterations, auth_message)
            }
            Self::Sha512 => {
                derive::<Hmac<Sha512>, Sha512>(password, salt, iterations, auth_message)
            }
        }
    }

    /// Whether `signature` is HMAC(ServerKey, AuthMessage), compared in constant time.
    fn verify(
        self,
        server_key: &[u8],
        auth_message: &[u8],
        signature: &[u8],
    ) -> Result<bool, ErrorKind> {
        match self {
            Self::Sha256 => verify::<Hmac<Sha256>>(server_key, auth_message, signature),
            Self::Sha512 => verify::<Hmac<Sha512>>(server_key, auth_message, signature),
        }
    }
}

/// The HMAC types used here: what `pbkdf2` needs, from which `Mac` follows.
trait Prf: KeyInit + Update + FixedOutput + MacMarker + Clone + Sync {}
impl<T: KeyInit + Update + FixedOutput + MacMarker + Clone + Sync> Prf for T {}

fn new_mac<M: Prf>(key: &[u8]) -> Result<M, ErrorKind> {
    // HMAC accepts keys of any length, so this does not fail.
    <M as KeyInit>::new_from_slice(key).map_err(|_| ErrorKind::Internal("HMAC key rejected"))
}

fn hmac<M: Prf>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    let mut mac = new_mac::<M>(key)?;
    Mac::update(&mut mac, data);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn derive<M: Prf, D: Digest>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ErrorKind> {
    let mut salted_password = vec![0; <M as OutputSizeUser>::output_size()];
    pbkdf2::pbkdf2::<M>(password, salt, iterations, &mut salted_password)
        .map_err(|_| ErrorKind::Internal("PBKDF2 output length rejected"))?;
    let client_key = hmac::<M>(&salted_password, b"Client Key")?;
    let stored_key = D::digest(&client_key);
    let client_signature = hmac::<M>(&stored_key, auth_message)?;
    let proof = client_key
        .iter()
        .zip(&client_signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac::<M>(&salted_password, b"Server Key")?;
    Ok((proof, server_key))
}

fn verify<M: Prf>(
    server_key: &[u8],
    auth_message: &[u8],
    signature: &[u8],
) -> Result<bool, ErrorKind> {
    let mut mac = new_mac::<M>(server_key)?;
    Mac::update(&mut mac, auth_message);
    Ok(mac.verify_slice(signature).is_ok())
}

/// User name and password must be non-empty; RFC 5802 `saslname` excludes NUL.
pub(crate) fn validate(hash: ScramHash, username: &str, password: &str) -> Result<(), SaslError> {
    let invalid = |what| {
        Err(SaslError::new(
            hash.mechanism(),
            ErrorKind::InvalidConfig(what),
        ))
    };
    if username.is_empty() {
        return invalid("empty username");
    }
    if username.contains('\0') {
        return invalid("username contains NUL");
    }
    if password.is_empty() {
        return invalid("empty password");
    }
    Ok(())
}

/// RFC 5802 `saslname`: `=` becomes `=3D` and `,` becomes `=2C`.
fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

fn random_nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect()
}

/// The attributes of a server-first-message that the client uses.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

/// `[m=...,]r=<nonce>,s=<salt>,i=<count>[,<ext>=...]*`; a mandatory extension
/// (`m=`) is rejected, optional extensions after `i=` are ignored.
fn parse_server_first(message: &str) -> Result<ServerFirst<'_>, ErrorKind> {
    let mut attributes = message.split(',');
    let mut next = |name: &'static str, missing: &'static str| {
        let attribute = attributes.next().unwrap_or("");
        if name == "r=" && attribute.starts_with("m=") {
            return Err(ErrorKind::UnsupportedExtension);
        }
        attribute
            .strip_prefix(name)
            .ok_or(ErrorKind::Malformed(missing))
    };
    let nonce = next("r=", "missing nonce (r=)")?;
    let salt = next("s=", "missing salt (s=)")?;
    let iterations = next("i=", "missing iteration count (i=)")?;
    for extension in attributes {
        let bytes = extension.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
            return Err(ErrorKind::Malformed(
                "invalid attribute after iteration count",
            ));
        }
    }

    // printable = %x21-2B / %x2D-7E; commas are already split off.
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ErrorKind::Malformed("invalid nonce (r=)"));
    }
    let salt = BASE64
        .decode(salt)
        .map_err(|_| ErrorKind::Malformed("invalid base64 salt (s=)"))?;
    if salt.is_empty() {
        return Err(ErrorKind::Malformed("empty salt (s=)"));
    }
    // `u32::from_str` would accept a leading `+`.
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorKind::Malformed("invalid iteration count (i=)"));
    }
    let iterations = match iterations.parse::<u32>() {
        Ok(i) => i,
        Err(_) => return Err(ErrorKind::Iterations(u32::MAX)),
    };
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(ErrorKind::Iterations(iterations));
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

enum State {
    Start,
    SentClientFirst,
    SentClientFinal {
        server_key: Vec<u8>,
        auth_message: Vec<u8>,
    },
    Done,
    Failed,
}

/// One SCRAM exchange. Holds the password, so it has no `Debug`.
pub(crate) struct ScramAuthenticator {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    /// `n=<saslname>,r=<client nonce>`.
    client_first_bare: String,
    state: State,
}

impl ScramAuthenticator {
    /// Expects arguments already checked by [`validate`]; picks a random nonce.
    pub(crate) fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        Self::with_nonce(hash, username, password, random_nonce())
    }

    /// With a fixed client nonce, for test vectors.
    pub(crate) fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: String,
    ) -> Self {
        let client_first_bare = format!("n={},r={}", escape_username(username), nonce);
        Self {
            hash,
            password: password.to_owned(),
            client_nonce: nonce,
            client_first_bare,
            state: State::Start,
        }
    }

    fn error(&self, kind: ErrorKind) -> SaslError {
        SaslError::new(self.hash.mechanism(), kind)
    }

    /// Answers the server-first-message; returns the client-final-message and
    /// what is needed to check the server-final-message.
    fn client_final(&self, server_first: &[u8]) -> Result<(Vec<u8>, State), ErrorKind> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ErrorKind::Malformed("server-first-message is not UTF-8"))?;
        let parsed = parse_server_first(server_first)?;
        // The server must add its own part to our nonce.
        if parsed.nonce.len() <= self.client_nonce.len()
            || !parsed.nonce.starts_with(&self.client_nonce)
        {
            return Err(ErrorKind::NonceMismatch);
        }
        let without_proof = format!("c={CHANNEL_BINDING},r={}", parsed.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let (proof, server_key) = self.hash.derive(
            self.password.as_bytes(),
            &parsed.salt,
            parsed.iterations,
            auth_message.as_bytes(),
        )?;
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof));
        let state = State::SentClientFinal {
            server_key,
            auth_message: auth_message.into_bytes(),
        };
        Ok((client_final.into_bytes(), state))
    }

    /// Checks the server-final-message: `v=` must carry the server signature.
    fn check_server_final(
        &self,
        server_final: &[u8],
        server_key: &[u8],
        auth_message: &[u8],
    ) -> Result<(), ErrorKind> {
        // Optional extensions may follow the first attribute.
        let first = server_final.split(|&b| b == b',').next().unwrap_or(&[]);
        if let Some(error) = first.strip_prefix(b"e=") {
            return Err(ErrorKind::ServerError(server_text(error)));
        }
        let Some(signature) = first.strip_prefix(b"v=") else {
            return Err(ErrorKind::Malformed(
                "server-final-message has neither v= nor e=",
            ));
        };
        let signature = BASE64
            .decode(signature)
            .map_err(|_| ErrorKind::Malformed("invalid base64 server signature (v=)"))?;
        if self.hash.verify(server_key, auth_message, &signature)? {
            Ok(())
        } else {
            Err(ErrorKind::ServerSignatureMismatch)
        }
    }
}

impl Authenticator for ScramAuthenticator {
    fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => {
                self.state = State::SentClientFirst;
                Ok(format!("n,,{}", self.client_first_bare).into_bytes())
            }
            _ => Err(self.error(ErrorKind::OutOfOrder("initial message already sent"))),
        }
    }

    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        // Any error leaves the state `Failed`.
        match std::mem::replace(&mut self.state, State::Failed) {
            State::SentClientFirst => {
                let (client_final, state) = self.client_final(server).map_err(|k| self.error(k))?;
                self.state = state;
                Ok(Some(client_final))
            }
            State::SentClientFinal {
                server_key,
                auth_message,
            } => {
                self.check_server_final(server, &server_key, &auth_message)
                    .map_err(|k| self.error(k))?;
                self.state = State::Done;
                Ok(None)
            }
            State::Start => Err(self.error(ErrorKind::OutOfOrder("step before initial message"))),
            State::Done => Err(self.error(ErrorKind::OutOfOrder("exchange already complete"))),
            State::Failed => Err(self.error(ErrorKind::OutOfOrder("exchange already failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3. The server signature is the RFC's
    /// `6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=` (recomputed with Python's
    /// hashlib/hmac; other SCRAM implementations pin the same value).
    const RFC7677_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677() -> ScramAuthenticator {
        ScramAuthenticator::with_nonce(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE.into())
    }

    /// An authenticator that has sent its client-final-message for the RFC 7677 vector.
    fn rfc7677_after_client_final() -> ScramAuthenticator {
        let mut auth = rfc7677();
        auth.initial().unwrap();
        auth.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap().unwrap();
        auth
    }

    fn server_first_error(server_first: &str) -> String {
        let mut auth = rfc7677();
        auth.initial().unwrap();
        auth.step(server_first.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let mut auth = rfc7677();
        assert_eq!(auth.initial().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = auth.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            RFC7677_CLIENT_FINAL
        );
        assert_eq!(auth.step(RFC7677_SERVER_FINAL.as_bytes()).unwrap(), None);
        let err = auth.step(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-256: called out of order: exchange already complete"
        );
    }

    #[test]
    fn sha512_python_vector() {
        // Derived with Python 3's hashlib and hmac (independent of this code):
        //   salt = bytes(range(1, 17)); i = 4096; password = b"pencil"
        //   sp = hashlib.pbkdf2_hmac("sha512", password, salt, i)
        //   ck = hmac.new(sp, b"Client Key", "sha512").digest()
        //   cs = hmac.new(hashlib.sha512(ck).digest(), auth_message, "sha512").digest()
        //   p  = base64(ck XOR cs)
        //   v  = base64(hmac.new(hmac.new(sp, b"Server Key", "sha512").digest(),
        //                        auth_message, "sha512").digest())
        // with auth_message = client-first-bare + "," + server-first + "," + "c=biws,r=" + nonce.
        let mut auth = ScramAuthenticator::with_nonce(
            ScramHash::Sha512,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(auth.initial().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqOK9b@x#Q2zL7vW-pd3YtH5sRn,s=AQIDBAUGBwgJCgsMDQ4PEA==,i=4096";
        let client_final = auth.step(server_first.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqOK9b@x#Q2zL7vW-pd3YtH5sRn,\
             p=fAIiUc38r1x/RfZ2fbdEtu0wdf8lLvM/UaSeXDBXSckS+giO23JchcaFox4pWS9312ulFEoePORv5Vh9DKbr5w=="
        );
        let server_final = "v=XJkkCn6i3Jf7DWOFYNXW8KlXrbV58oMPTHojja3xUhIDvwBBDBzPFJMMclcsvP9jrmn1Bw9VoE6mD8CAIPIGpg==";
        assert_eq!(auth.step(server_final.as_bytes()).unwrap(), None);
    }

    /// A minimal SCRAM server: checks the proof the way a server does
    /// (recover ClientKey from the proof, compare its hash with StoredKey) and
    /// signs with ServerKey.
    fn round_trip_against_test_server<M: Prf, D: Digest>(hash: ScramHash) {
        let (username, password) = ("al=ice,x", "correct horse");
        let (salt, iterations) = (b"some salt".as_slice(), 4096);
        let mut salted = vec![0; <M as OutputSizeUser>::output_size()];
        pbkdf2::pbkdf2::<M>(password.as_bytes(), salt, iterations, &mut salted).unwrap();
        let stored_key = D::digest(hmac::<M>(&salted, b"Client Key").unwrap()).to_vec();
        let server_key = hmac::<M>(&salted, b"Server Key").unwrap();

        let mut auth = ScramAuthenticator::new(hash, username, password);
        let client_first = String::from_utf8(auth.initial().unwrap()).unwrap();
        let bare = client_first.strip_prefix("n,,").unwrap();
        let (name, nonce) = bare.split_once(",r=").unwrap();
        assert_eq!(name, "n=al=3Dice=2Cx");

        let server_first = format!(
            "r={nonce}srvNONCE,s={},i={iterations},x=ignored",
            BASE64.encode(salt)
        );
        let client_final =
            String::from_utf8(auth.step(server_first.as_bytes()).unwrap().unwrap()).unwrap();
        let (without_proof, proof) = client_final.split_once(",p=").unwrap();
        assert_eq!(without_proof, format!("c=biws,r={nonce}srvNONCE"));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = hmac::<M>(&stored_key, auth_message.as_bytes()).unwrap();
        let client_key: Vec<u8> = BASE64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            D::digest(&client_key).to_vec(),
            stored_key,
            "server rejects the proof"
        );

        let signature = hmac::<M>(&server_key, auth_message.as_bytes()).unwrap();
        let server_final = format!("v={},future=ext", BASE64.encode(signature));
        assert_eq!(auth.step(server_final.as_bytes()).unwrap(), None);
    }

    #[test]
    fn sha256_round_trip_with_random_nonce() {
        round_trip_against_test_server::<Hmac<Sha256>, Sha256>(ScramHash::Sha256);
    }

    #[test]
    fn sha512_round_trip_with_random_nonce() {
        round_trip_against_test_server::<Hmac<Sha512>, Sha512>(ScramHash::Sha512);
    }

    #[test]
    fn wrong_server_signature_rejected() {
        for server_final in [
            // Same length, different bytes (first and last base64 digit changed).
            "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=",
            // A plausible-looking but wrong signature.
            "v=6rriTRBi23WpRR/wtup+mMhK1tVnHD7ZMaE3W9k8rqU=",
            // Wrong length.
            "v=AAAA",
            "v=",
        ] {
            let mut auth = rfc7677_after_client_final();
            let err = auth.step(server_final.as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                "SCRAM-SHA-256: server signature does not match",
                "{server_final}"
            );
            assert!(!err.is_rejected());
            assert!(
                auth.step(RFC7677_SERVER_FINAL.as_bytes()).is_err(),
                "failed stays failed"
            );
        }
        let mut auth = rfc7677_after_client_final();
        let err = auth.step(b"v=not*base64").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-256: malformed server message: invalid base64 server signature (v=)"
        );
        let mut auth = rfc7677_after_client_final();
        assert!(auth.step(b"x=something").is_err());
        let mut auth = rfc7677_after_client_final();
        assert!(auth.step(b"").is_err());
    }

    #[test]
    fn server_nonce_must_extend_ours() {
        let expected = "SCRAM-SHA-256: server nonce does not extend the client nonce";
        // Different prefix.
        assert_eq!(
            server_first_error("r=XOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            expected
        );
        // Truncated.
        assert_eq!(
            server_first_error("r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            expected
        );
        // Exactly ours: the server added nothing.
        assert_eq!(
            server_first_error("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            expected
        );
    }

    #[test]
    fn server_error_is_surfaced() {
        let mut auth = rfc7677_after_client_final();
        let err = auth.step(b"e=invalid-proof").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-256: server error: invalid-proof"
        );
        assert_eq!(err.mechanism(), "SCRAM-SHA-256");
        assert!(err.is_rejected());

        let mut auth = rfc7677_after_client_final();
        let err = auth.step(b"e=unknown-user,ext=1").unwrap_err();
        assert_eq!(err.to_string(), "SCRAM-SHA-256: server error: unknown-user");
    }

    #[test]
    fn username_escaping() {
        assert_eq!(escape_username("user"), "user");
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
        assert_eq!(escape_username("=,=2C"), "=3D=2C=3D2C");
        let mut auth =
            ScramAuthenticator::with_nonce(ScramHash::Sha512, "a=b,c", "pw", "NONCE".into());
        assert_eq!(auth.initial().unwrap(), b"n,,n=a=3Db=2Cc,r=NONCE");
    }

    #[test]
    fn random_nonce_is_printable_and_fresh() {
        let a = random_nonce();
        let b = random_nonce();
        assert!(a.len() >= 24);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_server_first_rejected() {
        let cases = [
            (
                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "malformed server message: missing nonce (r=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
                "malformed server message: missing salt (s=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
                "malformed server message: missing iteration count (i=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
                "malformed server message: invalid iteration count (i=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096",
                "malformed server message: invalid iteration count (i=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=*,i=4096",
                "malformed server message: invalid base64 salt (s=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
                "malformed server message: empty salt (s=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqO x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "malformed server message: invalid nonce (r=)",
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
                "malformed server message: invalid attribute after iteration count",
            ),
            (
                "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "server requires an unsupported extension (m=)",
            ),
            ("", "malformed server message: missing nonce (r=)"),
        ];
        for (server_first, expected) in cases {
            assert_eq!(
                server_first_error(server_first),
                format!("SCRAM-SHA-256: {expected}"),
                "{server_first}"
            );
        }
        let mut auth = rfc7677();
        auth.initial().unwrap();
        let err = auth.step(b"r=\xff,s=AA==,i=4096").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-256: malformed server message: server-first-message is not UTF-8"
        );
    }

    #[test]
    fn iteration_count_bounds() {
        let with = |i: &str| format!("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
        assert_eq!(
            server_first_error(&with("4095")),
            "SCRAM-SHA-256: iteration count 4095 outside the accepted range 4096..=1000000"
        );
        assert!(server_first_error(&with("1000001")).contains("iteration count 1000001 outside"));
        assert!(server_first_error(&with("0")).contains("iteration count 0 outside"));
        assert!(server_first_error(&with("99999999999")).contains("iteration count"));
        assert!(parse_server_first(&with("4096")).is_ok());
        assert!(parse_server_first(&with("1000000")).is_ok());
    }

    #[test]
    fn out_of_order_calls_rejected() {
        let mut auth = rfc7677();
        let err = auth.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-256: called out of order: step before initial message"
        );
        let mut auth = rfc7677();
        auth.initial().unwrap();
        assert!(auth.initial().is_err());
    }

    #[test]
    fn errors_never_contain_the_password() {
        let mut auth = ScramAuthenticator::with_nonce(
            ScramHash::Sha256,
            "user",
            "pencil",
            RFC7677_NONCE.into(),
        );
        auth.initial().unwrap();
        auth.step(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        let err = auth.step(b"v=AAAA").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("pencil"));
    }

    #[test]
    fn validation() {
        assert!(validate(ScramHash::Sha256, "user", "pencil").is_ok());
        assert!(validate(ScramHash::Sha256, "", "pencil").is_err());
        assert!(validate(ScramHash::Sha256, "us\0er", "pencil").is_err());
        let err = validate(ScramHash::Sha512, "user", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCRAM-SHA-512: invalid configuration: empty password"
        );
    }
}
