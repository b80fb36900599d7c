//! SASL, server side, for the fake cluster: `PLAIN` (RFC 4616) and
//! `SCRAM-SHA-256`/`SCRAM-SHA-512` (RFC 5802, RFC 7677), answering as a Kafka broker
//! does, with its error messages.
//!
//! ```text
//! PLAIN          client: authzid NUL user NUL password          server: (empty)
//! SCRAM  client-first   n,[a=<authzid>],n=<user>,r=<client nonce>[,<ext>=<value>]*
//!        server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=4096
//!        client-final   c=<base64 GS2 header, biws for n,,>,r=<nonce>,p=<base64 ClientProof>
//!        server-final   v=<base64 ServerSignature>
//! ```
//!
//! The broker keeps, as Kafka does, the PLAIN password and, per SCRAM mechanism, only
//! the salt, iteration count, `StoredKey` and `ServerKey`. Secrets are compared in
//! constant time. Every input from the network is parsed without panicking; a
//! malformed message is an authentication failure.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use sha2::{Digest, Sha256, Sha512};

/// `PLAIN`.
const PLAIN: &str = "PLAIN";
/// `SCRAM-SHA-256`.
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// `SCRAM-SHA-512`.
const SCRAM_SHA_512: &str = "SCRAM-SHA-512";
/// PBKDF2 iterations of the stored SCRAM credentials (Kafka's default).
const ITERATIONS: u32 = 4096;
/// Length of a random SCRAM salt, in bytes.
const SALT_LEN: usize = 16;
/// Length of the server's part of the SCRAM nonce (alphanumeric characters).
const SERVER_NONCE_LEN: usize = 32;

// ---------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------

/// The users the fake cluster accepts, and the SASL mechanisms it enables.
///
/// Each user is stored as its `PLAIN` password and as `SCRAM-SHA-256` and
/// `SCRAM-SHA-512` credentials (random salt, 4096 iterations, `StoredKey`,
/// `ServerKey`), as a Kafka broker stores them. `Debug` shows the user names, never
/// the passwords or keys.
#[derive(Clone)]
pub struct SaslUsers {
    /// By user name.
    users: BTreeMap<String, User>,
    /// Advertised in SaslHandshake responses, in this order.
    mechanisms: Vec<String>,
}

/// One user's credentials.
#[derive(Clone)]
struct User {
    password: String,
    /// `None` only if the credential could not be derived (HMAC refused a key, which
    /// it does not do): SCRAM then fails for this user, never panics.
    sha256: Option<ScramCredential>,
    sha512: Option<ScramCredential>,
}

impl Default for SaslUsers {
    /// No users; `PLAIN`, `SCRAM-SHA-256` and `SCRAM-SHA-512` enabled.
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            mechanisms: [PLAIN, SCRAM_SHA_256, SCRAM_SHA_512]
                .iter()
                .map(|m| (*m).to_string())
                .collect(),
        }
    }
}

impl fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslUsers")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("mechanisms", &self.mechanisms)
            .finish()
    }
}

impl SaslUsers {
    /// No users; `PLAIN`, `SCRAM-SHA-256` and `SCRAM-SHA-512` enabled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user, accepted by every enabled mechanism. Derives its
    /// SCRAM credentials now (PBKDF2, 4096 iterations, for each hash).
    pub fn with_user(self, name: impl Into<String>, password: impl Into<String>) -> Self {
        let password = password.into();
        let sha256 = ScramCredential::new(ScramHash::Sha256, &password, &random_salt());
        let sha512 = ScramCredential::new(ScramHash::Sha512, &password, &random_salt());
        self.insert(name.into(), password, sha256, sha512)
    }

    /// Enables exactly these mechanisms, advertised in this order (default: `PLAIN`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512`). Names are case-sensitive, as in Kafka. A
    /// mechanism the fake does not implement (such as `OAUTHBEARER` or `GSSAPI`) is
    /// advertised and accepted by SaslHandshake, but every SaslAuthenticate for it
    /// fails.
    pub fn with_mechanisms(mut self, mechanisms: &[&str]) -> Self {
        self.mechanisms = Vec::with_capacity(mechanisms.len());
        for m in mechanisms {
            if !self.mechanisms.iter().any(|e| e == m) {
                self.mechanisms.push((*m).to_string());
            }
        }
        self
    }

    /// The enabled mechanisms, as SaslHandshake advertises them.
    pub fn mechanisms(&self) -> Vec<String> {
        self.mechanisms.clone()
    }

    fn insert(
        mut self,
        name: String,
        password: String,
        sha256: Option<ScramCredential>,
        sha512: Option<ScramCredential>,
    ) -> Self {
        self.users.insert(
            name,
            User {
                password,
                sha256,
                sha512,
            },
        );
        self
    }

    /// A user with SCRAM credentials derived from a given salt (test vectors).
    #[cfg(test)]
    fn with_user_and_salt(self, name: &str, password: &str, salt: &[u8]) -> Self {
        let sha256 = ScramCredential::new(ScramHash::Sha256, password, salt);
        let sha512 = ScramCredential::new(ScramHash::Sha512, password, salt);
        self.insert(name.into(), password.into(), sha256, sha512)
    }

    fn is_enabled(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }
}

fn random_salt() -> [u8; SALT_LEN] {
    rand::thread_rng().gen()
}

// ---------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------

/// The outcome of one SaslAuthenticate round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslStep {
    /// The exchange goes on: answer with these `auth_bytes` and expect another
    /// SaslAuthenticate (the SCRAM server-first-message).
    Continue(Vec<u8>),
    /// Authenticated.
    Done {
        /// The `auth_bytes` of the successful answer: empty for `PLAIN`, the SCRAM
        /// server-final-message `v=<ServerSignature>`.
        reply: Vec<u8>,
        /// The authenticated user name.
        principal: String,
    },
    /// Authentication failed: answer `SASL_AUTHENTICATION_FAILED` with this error
    /// message (Kafka's text where Kafka has one; for SCRAM always Kafka's
    /// `Authentication failed during authentication due to invalid credentials with
    /// SASL mechanism SCRAM-SHA-256`), then close the connection as Kafka does.
    Failed(String),
}

/// One connection's SASL state machine: a SaslHandshake, then SaslAuthenticate
/// rounds until [`SaslStep::Done`] or [`SaslStep::Failed`].
///
/// After `Done`, a new SaslHandshake starts a re-authentication (KIP-368): it must
/// name the same mechanism and end with the same principal, and the connection stays
/// authenticated while it runs. Any failure leaves the session unauthenticated.
pub struct SaslSession {
    users: Arc<SaslUsers>,
    state: State,
    /// The mechanism SaslHandshake accepted last.
    mechanism: String,
    /// The mechanism and principal of the last successful authentication.
    authenticated: Option<(String, String)>,
    /// Replaces the random server nonce (test vectors).
    #[cfg(test)]
    server_nonce: Option<String>,
}

enum State {
    /// No exchange under way.
    Idle,
    /// SaslHandshake accepted this mechanism; no SaslAuthenticate yet.
    Mechanism(Mechanism),
    /// The server-first-message was sent; waiting for the client-final-message.
    ScramFinal(Box<ScramExchange>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramHash),
    /// Enabled, but not implemented by the fake.
    Other,
}

impl fmt::Debug for SaslSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Idle => "Idle".to_string(),
            State::Mechanism(m) => format!("Mechanism({m:?})"),
            State::ScramFinal(e) => format!("ScramFinal({})", e.hash.mechanism()),
        };
        f.debug_struct("SaslSession")
            .field("state", &state)
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl SaslSession {
    /// A session for a new connection, not authenticated.
    pub fn new(users: Arc<SaslUsers>) -> Self {
        Self {
            users,
            state: State::Idle,
            mechanism: String::new(),
            authenticated: None,
            #[cfg(test)]
            server_nonce: None,
        }
    }

    /// SaslHandshake: `Ok` if `mechanism` is enabled, starting a new exchange;
    /// otherwise `Err` with the enabled mechanisms, and the broker answers
    /// `UNSUPPORTED_SASL_MECHANISM` with them. During a re-authentication only the
    /// mechanism of the first authentication is accepted (`Err` lists only it).
    pub fn handshake(&mut self, mechanism: &str) -> Result<(), Vec<String>> {
        self.state = State::Idle;
        if let Some((previous, _)) = &self.authenticated {
            if previous != mechanism {
                return Err(vec![previous.clone()]);
            }
        }
        if !self.users.is_enabled(mechanism) {
            return Err(self.users.mechanisms());
        }
        let m = match mechanism {
            PLAIN => Mechanism::Plain,
            SCRAM_SHA_256 => Mechanism::Scram(ScramHash::Sha256),
            SCRAM_SHA_512 => Mechanism::Scram(ScramHash::Sha512),
            _ => Mechanism::Other,
        };
        self.state = State::Mechanism(m);
        self.mechanism = mechanism.to_string();
        Ok(())
    }

    /// One SaslAuthenticate round with the client's `auth_bytes`.
    pub fn authenticate(&mut self, client_bytes: &[u8]) -> SaslStep {
        let step = match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => Err(Failure::Message(
                "Unexpected SaslAuthenticate request: no SaslHandshake before it".into(),
            )),
            State::Mechanism(Mechanism::Plain) => {
                plain(&self.users, client_bytes).map(|principal| SaslStep::Done {
                    reply: Vec::new(),
                    principal,
                })
            }
            State::Mechanism(Mechanism::Scram(hash)) => {
                let server_nonce = self.server_nonce();
                ScramExchange::start(hash, &self.users, client_bytes, server_nonce).map(
                    |(exchange, server_first)| {
                        self.state = State::ScramFinal(Box::new(exchange));
                        SaslStep::Continue(server_first.into_bytes())
                    },
                )
            }
            State::ScramFinal(exchange) => {
                exchange
                    .finish(client_bytes)
                    .map(|server_final| SaslStep::Done {
                        reply: server_final.into_bytes(),
                        principal: exchange.user.clone(),
                    })
            }
            State::Mechanism(Mechanism::Other) => Err(Failure::Message(format!(
                "SASL mechanism {} is not implemented by the fake cluster",
                self.mechanism
            ))),
        };
        match step {
            Ok(SaslStep::Done { reply, principal }) => self.done(reply, principal),
            Ok(step) => step,
            Err(failure) => self.fail(failure),
        }
    }

    /// Whether an authentication succeeded on this session and none failed since.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }

    fn done(&mut self, reply: Vec<u8>, principal: String) -> SaslStep {
        if let Some((_, previous)) = &self.authenticated {
            if *previous != principal {
                let message = format!(
                    "Cannot change principals during re-authentication from User.{previous}: \
                     User.{principal}"
                );
                self.authenticated = None;
                return SaslStep::Failed(message);
            }
        }
        self.authenticated = Some((self.mechanism.clone(), principal.clone()));
        SaslStep::Done { reply, principal }
    }

    fn fail(&mut self, failure: Failure) -> SaslStep {
        self.state = State::Idle;
        self.authenticated = None;
        let message = match failure {
            Failure::Message(m) => m,
            Failure::Scram(hash, reason) => {
                tracing::debug!(mechanism = hash.mechanism(), reason, "SCRAM failed");
                invalid_credentials(hash.mechanism())
            }
        };
        SaslStep::Failed(message)
    }

    #[cfg(test)]
    fn server_nonce(&self) -> String {
        self.server_nonce
            .clone()
            .unwrap_or_else(random_server_nonce)
    }

    #[cfg(not(test))]
    fn server_nonce(&self) -> String {
        random_server_nonce()
    }

    /// Uses `nonce` as the server nonce of SCRAM exchanges (test vectors).
    #[cfg(test)]
    fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.into());
        self
    }
}

/// Why an exchange failed.
enum Failure {
    /// Answered as is.
    Message(String),
    /// Answered with Kafka's generic SCRAM message; the reason is only logged.
    Scram(ScramHash, &'static str),
}

/// Kafka's message for any SCRAM failure (a `SaslException` on the broker).
fn invalid_credentials(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {mechanism}"
    )
}

fn random_server_nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(SERVER_NONCE_LEN)
        .map(char::from)
        .collect()
}

// ---------------------------------------------------------------------------------
// PLAIN
// ---------------------------------------------------------------------------------

/// Checks `authzid NUL user NUL password` as Kafka's `PlainSaslServer` does, with its
/// messages; the user name on success.
fn plain(users: &SaslUsers, message: &[u8]) -> Result<String, Failure> {
    let fail = |m: &str| Err(Failure::Message(m.to_string()));
    let tokens: Vec<&[u8]> = message.split(|&b| b == 0).collect();
    let [authzid, user, password] = tokens.as_slice() else {
        return Err(Failure::Message(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        )));
    };
    if user.is_empty() {
        return fail("Authentication failed: username not specified");
    }
    if password.is_empty() {
        return fail("Authentication failed: password not specified");
    }
    let found = std::str::from_utf8(user)
        .ok()
        .and_then(|u| users.users.get_key_value(u));
    // Compare digests so that neither the content nor the length of the password
    // shows in the time taken; an unknown user costs the same comparison.
    let expected = found.map_or(&[][..], |(_, u)| u.password.as_bytes());
    let matches = ct_eq(&Sha256::digest(expected), &Sha256::digest(password));
    let Some((name, _)) = found.filter(|_| matches) else {
        return fail("Authentication failed: Invalid username or password");
    };
    if !authzid.is_empty() && authzid != user {
        return fail(
            "Authentication failed: Client requested an authorization id that is different \
             from username",
        );
    }
    Ok(name.clone())
}

// ---------------------------------------------------------------------------------
// SCRAM
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    const fn mechanism(self) -> &'static str {
        match self {
            Self::Sha256 => SCRAM_SHA_256,
            Self::Sha512 => SCRAM_SHA_512,
        }
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `None` only if HMAC refused the key, which it never does (any length works).
    fn hmac(self, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
            mac.update(data);
            Some(mac.finalize().into_bytes().to_vec())
        }
        match self {
            Self::Sha256 => run::<Hmac<Sha256>>(key, data),
            Self::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Self::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// What a broker stores for a SCRAM user: never the password itself.
#[derive(Clone)]
struct ScramCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramCredential {
    fn new(hash: ScramHash, password: &str, salt: &[u8]) -> Option<Self> {
        let salted = hash.salted_password(password.as_bytes(), salt, ITERATIONS);
        let client_key = hash.hmac(&salted, b"Client Key")?;
        Some(Self {
            salt: salt.to_vec(),
            iterations: ITERATIONS,
            stored_key: hash.h(&client_key),
            server_key: hash.hmac(&salted, b"Server Key")?,
        })
    }
}

/// RFC 5802 `saslname` back to a user name: `=2C` is `,` and `=3D` is `=`; any other
/// `=` is invalid.
fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i)?);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// RFC 5802 `printable` (a nonce): `%x21-2B / %x2D-7E`, i.e. visible ASCII but `,`.
fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A parsed client-first-message.
struct ClientFirst<'a> {
    /// `n,,` or `n,a=<authzid>,`.
    gs2_header: &'a str,
    /// The authzid, unescaped; empty if none.
    authzid: String,
    /// `client-first-message-bare`.
    bare: &'a str,
    user: String,
    nonce: &'a str,
    /// Whether the client asks for delegation-token authentication (`tokenauth=true`).
    token_auth: bool,
}

/// Parses `gs2-header client-first-message-bare` as Kafka accepts it: no channel
/// binding (`n`), an optional authzid, no `m=` attribute, optional extensions.
fn parse_client_first(message: &str) -> Option<ClientFirst<'_>> {
    let after_flag = message.strip_prefix("n,")?;
    let comma = after_flag.find(',')?;
    let authzid = match after_flag.get(..comma)? {
        "" => String::new(),
        a => unescape_saslname(a.strip_prefix("a=")?).filter(|a| !a.is_empty())?,
    };
    let gs2_header = message.get(..2 + comma + 1)?;
    let bare = after_flag.get(comma + 1..)?;
    let mut attributes = bare.split(',');
    let user = unescape_saslname(attributes.next()?.strip_prefix("n=")?)?;
    let nonce = attributes.next()?.strip_prefix("r=")?;
    if user.is_empty() || !is_printable(nonce) {
        return None;
    }
    let mut token_auth = false;
    for extension in attributes {
        let (key, value) = extension.split_once('=')?;
        if key.is_empty() {
            return None;
        }
        if key == "tokenauth" {
            token_auth = value.eq_ignore_ascii_case("true");
        }
    }
    Some(ClientFirst {
        gs2_header,
        authzid,
        bare,
        user,
        nonce,
        token_auth,
    })
}

/// One SCRAM exchange after the server-first-message.
struct ScramExchange {
    hash: ScramHash,
    user: String,
    credential: ScramCredential,
    /// The `c=` attribute the client-final-message must carry: base64 of the GS2
    /// header (`biws` for `n,,`).
    channel_binding: String,
    /// Client nonce followed by server nonce.
    nonce: String,
    /// `client-first-message-bare "," server-first-message`.
    auth_prefix: String,
}

impl ScramExchange {
    /// Checks the client-first-message; the exchange and the server-first-message.
    fn start(
        hash: ScramHash,
        users: &SaslUsers,
        client_first: &[u8],
        server_nonce: String,
    ) -> Result<(ScramExchange, String), Failure> {
        let fail = |reason| Err(Failure::Scram(hash, reason));
        let Ok(client_first) = std::str::from_utf8(client_first) else {
            return fail("client-first-message is not UTF-8");
        };
        let Some(first) = parse_client_first(client_first) else {
            return fail("malformed client-first-message");
        };
        if !first.authzid.is_empty() && first.authzid != first.user {
            return Err(Failure::Message(
                "Authentication failed: Client requested an authorization id that is \
                 different from username"
                    .into(),
            ));
        }
        if first.token_auth {
            return fail("delegation tokens are not supported by the fake cluster");
        }
        let credential = users.users.get(&first.user).and_then(|u| match hash {
            ScramHash::Sha256 => u.sha256.clone(),
            ScramHash::Sha512 => u.sha512.clone(),
        });
        let Some(credential) = credential else {
            return fail("unknown user");
        };
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let exchange = ScramExchange {
            hash,
            user: first.user,
            credential,
            channel_binding: BASE64.encode(first.gs2_header),
            nonce,
            auth_prefix: format!("{},{server_first}", first.bare),
        };
        Ok((exchange, server_first))
    }

    /// Verifies the client-final-message: channel binding, nonce and proof; the
    /// server-final-message.
    fn finish(&self, client_final: &[u8]) -> Result<String, Failure> {
        let fail = |reason| Err(Failure::Scram(self.hash, reason));
        let Ok(client_final) = std::str::from_utf8(client_final) else {
            return fail("client-final-message is not UTF-8");
        };
        let Some((without_proof, proof)) = client_final.rsplit_once(",p=") else {
            return fail("client-final-message has no proof");
        };
        let mut attributes = without_proof.split(',');
        let channel_binding = attributes.next().and_then(|a| a.strip_prefix("c="));
        if !channel_binding.is_some_and(|c| ct_eq(c.as_bytes(), self.channel_binding.as_bytes())) {
            return fail("wrong channel binding");
        }
        let nonce = attributes.next().and_then(|a| a.strip_prefix("r="));
        if !nonce.is_some_and(|n| ct_eq(n.as_bytes(), self.nonce.as_bytes())) {
            return fail("wrong nonce");
        }
        if attributes.any(|a| a.split_once('=').is_none_or(|(k, _)| k.is_empty())) {
            return fail("malformed extension in client-final-message");
        }
        let Ok(proof) = BASE64.decode(proof) else {
            return fail("proof is not base64");
        };
        let auth_message = format!("{},{without_proof}", self.auth_prefix);
        let credential = &self.credential;
        let Some(client_signature) = self
            .hash
            .hmac(&credential.stored_key, auth_message.as_bytes())
        else {
            return fail("HMAC refused the stored key");
        };
        if proof.len() != client_signature.len() {
            return fail("proof has the wrong length");
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !ct_eq(&self.hash.h(&client_key), &credential.stored_key) {
            return fail("wrong proof");
        }
        let Some(server_signature) = self
            .hash
            .hmac(&credential.server_key, auth_message.as_bytes())
        else {
            return fail("HMAC refused the server key");
        };
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}

/// Whether `a == b`, in time that depends only on the lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;
    use std::sync::LazyLock;

    /// PBKDF2 runs when a user is added: share one table between tests.
    static USERS: LazyLock<Arc<SaslUsers>> = LazyLock::new(|| {
        Arc::new(
            SaslUsers::new()
                .with_user("alice", "alice-secret")
                .with_user("bob", "bob-secret")
                .with_user("a,b=c", "escaped-secret"),
        )
    });

    impl SaslSession {
        fn principal(&self) -> Option<&str> {
            self.authenticated.as_ref().map(|(_, p)| p.as_str())
        }
    }

    fn session() -> SaslSession {
        SaslSession::new(USERS.clone())
    }

    fn failed(step: SaslStep) -> String {
        match step {
            SaslStep::Failed(message) => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn scram_failure(mechanism: &str) -> String {
        format!(
            "Authentication failed during authentication due to invalid credentials with \
             SASL mechanism {mechanism}"
        )
    }

    fn hash_of(mechanism: &str) -> ScramHash {
        match mechanism {
            SCRAM_SHA_256 => ScramHash::Sha256,
            SCRAM_SHA_512 => ScramHash::Sha512,
            _ => panic!("not SCRAM: {mechanism}"),
        }
    }

    /// The client side of one SCRAM exchange, RFC 5802.
    struct Client {
        hash: ScramHash,
        gs2_header: String,
        client_first_bare: String,
        password: String,
    }

    impl Client {
        fn new(mechanism: &str, saslname: &str, password: &str, nonce: &str) -> Self {
            Self::with_gs2_header(mechanism, "n,,", saslname, password, nonce)
        }

        fn with_gs2_header(
            mechanism: &str,
            gs2_header: &str,
            saslname: &str,
            password: &str,
            nonce: &str,
        ) -> Self {
            Self {
                hash: hash_of(mechanism),
                gs2_header: gs2_header.into(),
                client_first_bare: format!("n={saslname},r={nonce}"),
                password: password.into(),
            }
        }

        fn first(&self) -> Vec<u8> {
            format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
        }

        /// `(client-final-message, expected server-final-message)`.
        fn last(&self, server_first: &[u8]) -> (Vec<u8>, Vec<u8>) {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut parts = server_first.split(',');
            let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
            let salt = BASE64
                .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
                .unwrap();
            let iterations: u32 = parts
                .next()
                .unwrap()
                .strip_prefix("i=")
                .unwrap()
                .parse()
                .unwrap();
            let h = self.hash;
            let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
            let client_key = h.hmac(&salted, b"Client Key").unwrap();
            let without_proof = format!("c={},r={nonce}", BASE64.encode(&self.gs2_header));
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let signature = h.hmac(&h.h(&client_key), auth_message.as_bytes()).unwrap();
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(k, s)| k ^ s)
                .collect();
            let server_key = h.hmac(&salted, b"Server Key").unwrap();
            let server_signature = h.hmac(&server_key, auth_message.as_bytes()).unwrap();
            (
                format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
                format!("v={}", BASE64.encode(server_signature)).into_bytes(),
            )
        }
    }

    /// Handshake and client-first; the server-first-message.
    fn scram_first(s: &mut SaslSession, mechanism: &str, client: &Client) -> Vec<u8> {
        s.handshake(mechanism).unwrap();
        match s.authenticate(&client.first()) {
            SaslStep::Continue(server_first) => server_first,
            other => panic!("expected the server-first-message, got {other:?}"),
        }
    }

    #[test]
    fn default_mechanisms_and_configuration() {
        let users = SaslUsers::new();
        assert_eq!(
            users.mechanisms(),
            ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        );
        assert_eq!(SaslUsers::default().mechanisms(), users.mechanisms());
        let users = users.with_mechanisms(&["SCRAM-SHA-512", "PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(users.mechanisms(), ["SCRAM-SHA-512", "PLAIN"]);
        assert!(SaslUsers::new()
            .with_mechanisms(&[])
            .mechanisms()
            .is_empty());
    }

    #[test]
    fn debug_shows_no_secrets() {
        let debug = format!("{:?}", *USERS);
        assert!(
            debug.contains("alice") && debug.contains("SCRAM-SHA-256"),
            "{debug}"
        );
        assert!(!debug.contains("secret"), "{debug}");
        let mut s = session();
        s.handshake("PLAIN").unwrap();
        s.authenticate(b"\0alice\0alice-secret");
        let debug = format!("{s:?}");
        assert!(
            debug.contains("alice") && !debug.contains("secret"),
            "{debug}"
        );
    }

    #[test]
    fn handshake_accepts_only_enabled_mechanisms() {
        let users = Arc::new(SaslUsers::new().with_mechanisms(&["SCRAM-SHA-256"]));
        let mut s = SaslSession::new(users);
        assert_eq!(s.handshake("PLAIN"), Err(vec!["SCRAM-SHA-256".to_string()]));
        assert_eq!(
            s.handshake("scram-sha-256"),
            Err(vec!["SCRAM-SHA-256".to_string()])
        );
        assert_eq!(s.handshake(""), Err(vec!["SCRAM-SHA-256".to_string()]));
        assert_eq!(s.handshake("SCRAM-SHA-256"), Ok(()));
        assert!(!s.is_authenticated());
    }

    #[test]
    fn plain_accepts_known_users() {
        for (message, principal) in [
            (&b"\0alice\0alice-secret"[..], "alice"),
            (b"bob\0bob\0bob-secret", "bob"),
            (b"\0a,b=c\0escaped-secret", "a,b=c"),
        ] {
            let mut s = session();
            s.handshake("PLAIN").unwrap();
            assert!(!s.is_authenticated());
            assert_eq!(
                s.authenticate(message),
                SaslStep::Done {
                    reply: Vec::new(),
                    principal: principal.into()
                }
            );
            assert!(s.is_authenticated());
            assert_eq!(s.principal(), Some(principal));
        }
    }

    #[test]
    fn plain_failures_use_kafka_messages() {
        let cases: [(&[u8], &str); 10] = [
            (b"", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"),
            (
                b"alice",
                "Invalid SASL/PLAIN response: expected 3 tokens, got 1",
            ),
            (
                b"\0alice",
                "Invalid SASL/PLAIN response: expected 3 tokens, got 2",
            ),
            (
                b"\0alice\0alice-secret\0",
                "Invalid SASL/PLAIN response: expected 3 tokens, got 4",
            ),
            (
                b"\0\0alice-secret",
                "Authentication failed: username not specified",
            ),
            (
                b"\0alice\0",
                "Authentication failed: password not specified",
            ),
            (
                b"\0alice\0bob-secret",
                "Authentication failed: Invalid username or password",
            ),
            (
                b"\0alice\0alice-secreT",
                "Authentication failed: Invalid username or password",
            ),
            (
                b"\0carol\0alice-secret",
                "Authentication failed: Invalid username or password",
            ),
            (
                b"bob\0alice\0alice-secret",
                "Authentication failed: Client requested an authorization id that is \
                 different from username",
            ),
        ];
        for (message, expected) in cases {
            let mut s = session();
            s.handshake("PLAIN").unwrap();
            assert_eq!(failed(s.authenticate(message)), expected, "{message:?}");
            assert!(!s.is_authenticated());
        }
        let mut s = session();
        s.handshake("PLAIN").unwrap();
        let message = failed(s.authenticate(b"\0\xff\xfe\0alice-secret"));
        assert_eq!(
            message,
            "Authentication failed: Invalid username or password"
        );
    }

    /// RFC 7677 section 3, with the RFC's salt and server nonce.
    #[test]
    fn scram_sha_256_rfc7677_vector() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let users = Arc::new(SaslUsers::new().with_user_and_salt("user", "pencil", &salt));
        let mut s = SaslSession::new(users).with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        s.handshake("SCRAM-SHA-256").unwrap();
        assert_eq!(
            s.authenticate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
            SaslStep::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        assert!(!s.is_authenticated());
        assert_eq!(
            s.authenticate(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            ),
            SaslStep::Done {
                reply: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                principal: "user".into()
            }
        );
        assert!(s.is_authenticated());
    }

    #[test]
    fn scram_round_trips() {
        for mechanism in [SCRAM_SHA_256, SCRAM_SHA_512] {
            for (saslname, user, password) in [
                ("alice", "alice", "alice-secret"),
                ("a=2Cb=3Dc", "a,b=c", "escaped-secret"),
            ] {
                let client = Client::new(mechanism, saslname, password, "fyko+d2lbbFgONRv9qkxdawL");
                let mut s = session();
                let server_first = scram_first(&mut s, mechanism, &client);
                let server_first_text = std::str::from_utf8(&server_first).unwrap();
                assert!(server_first_text.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
                assert!(server_first_text.ends_with(",i=4096"));
                let (client_final, server_final) = client.last(&server_first);
                assert_eq!(
                    s.authenticate(&client_final),
                    SaslStep::Done {
                        reply: server_final,
                        principal: user.into()
                    },
                    "{mechanism} {user}"
                );
                assert!(s.is_authenticated());
                assert_eq!(s.principal(), Some(user));
            }
        }
    }

    #[test]
    fn scram_server_nonce_and_salt_are_fresh() {
        let client = Client::new(SCRAM_SHA_256, "alice", "alice-secret", "abc");
        let a = scram_first(&mut session(), SCRAM_SHA_256, &client);
        let b = scram_first(&mut session(), SCRAM_SHA_256, &client);
        assert_ne!(a, b, "the server nonce must differ between exchanges");
        let users = SaslUsers::new()
            .with_user("x", "same")
            .with_user("y", "same");
        let (x, y) = (&users.users["x"], &users.users["y"]);
        let (x, y) = (x.sha256.as_ref().unwrap(), y.sha256.as_ref().unwrap());
        assert_ne!(x.salt, y.salt);
        assert_ne!(x.stored_key, y.stored_key);
        assert_eq!(x.iterations, 4096);
    }

    #[test]
    fn scram_wrong_password_fails_like_kafka() {
        for mechanism in [SCRAM_SHA_256, SCRAM_SHA_512] {
            let client = Client::new(mechanism, "alice", "bob-secret", "nonce");
            let mut s = session();
            let server_first = scram_first(&mut s, mechanism, &client);
            let (client_final, _) = client.last(&server_first);
            assert_eq!(
                failed(s.authenticate(&client_final)),
                scram_failure(mechanism)
            );
            assert!(!s.is_authenticated());
        }
    }

    #[test]
    fn scram_unknown_user_and_bad_client_first_fail_like_kafka() {
        for mechanism in [SCRAM_SHA_256, SCRAM_SHA_512] {
            for message in [
                &b"n,,n=carol,r=nonce"[..],
                b"n,,n=a,b=c,r=nonce", // unescaped comma
                b"n,,n=a=2Xb,r=nonce", // invalid escape
                b"n,,n=,r=nonce",
                b"n,,n=alice,r=",
                b"n,,n=alice",
                b"n,,r=nonce,n=alice",
                b"y,,n=alice,r=nonce", // channel binding flags Kafka refuses
                b"p=tls-unique,,n=alice,r=nonce",
                b"n,,m=ext,n=alice,r=nonce",
                b"n,a=,n=alice,r=nonce",
                b"n,x=alice,n=alice,r=nonce",
                b"n,,n=alice,r=nonce,=x",
                b"n,,n=alice,r=nonce,tokenauth=true", // no delegation tokens
                b"n,,n=alice,r=non\x7fce",
                b"n,,n=al\xffice,r=nonce",
                b"",
            ] {
                let mut s = session();
                s.handshake(mechanism).unwrap();
                assert_eq!(
                    failed(s.authenticate(message)),
                    scram_failure(mechanism),
                    "{}",
                    String::from_utf8_lossy(message)
                );
                assert!(!s.is_authenticated());
            }
        }
    }

    #[test]
    fn scram_extensions_are_accepted() {
        let mut s = session();
        s.handshake(SCRAM_SHA_256).unwrap();
        let step = s.authenticate(b"n,,n=alice,r=nonce,tokenauth=false,ext=1");
        assert!(matches!(step, SaslStep::Continue(_)), "{step:?}");
    }

    #[test]
    fn scram_authzid() {
        // Same as the user: accepted, and the channel binding covers the GS2 header.
        let client = Client::with_gs2_header(
            SCRAM_SHA_256,
            "n,a=alice,",
            "alice",
            "alice-secret",
            "nonce",
        );
        let mut s = session();
        let server_first = scram_first(&mut s, SCRAM_SHA_256, &client);
        let (client_final, server_final) = client.last(&server_first);
        assert!(client_final.starts_with(b"c=bixhPWFsaWNlLA==,"));
        assert_eq!(
            s.authenticate(&client_final),
            SaslStep::Done {
                reply: server_final,
                principal: "alice".into()
            }
        );
        // A `biws` channel binding no longer matches.
        let mut s = session();
        let server_first = scram_first(&mut s, SCRAM_SHA_256, &client);
        let (client_final, _) = client.last(&server_first);
        let forged = String::from_utf8(client_final)
            .unwrap()
            .replace("c=bixhPWFsaWNlLA==", "c=biws");
        assert_eq!(
            failed(s.authenticate(forged.as_bytes())),
            scram_failure(SCRAM_SHA_256)
        );
        // Different from the user: Kafka's own message.
        let mut s = session();
        s.handshake(SCRAM_SHA_256).unwrap();
        assert_eq!(
            failed(s.authenticate(b"n,a=bob,n=alice,r=nonce")),
            "Authentication failed: Client requested an authorization id that is different \
             from username"
        );
    }

    /// The server nonce of a server-first-message `r=<client><server>,...`.
    fn server_nonce_of(server_first: &[u8], client_nonce: &str) -> String {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap();
        nonce.strip_prefix(client_nonce).unwrap().to_string()
    }

    #[test]
    fn scram_client_final_is_checked() {
        let client = Client::new(SCRAM_SHA_512, "alice", "alice-secret", "nonce");
        let server_first = scram_first(&mut session(), SCRAM_SHA_512, &client);
        let server_nonce = server_nonce_of(&server_first, "nonce");
        let (good, server_final) = client.last(&server_first);
        let good = String::from_utf8(good).unwrap();
        let (without_proof, proof) = good.rsplit_once(",p=").unwrap();
        let nonce = without_proof.strip_prefix("c=biws,r=").unwrap();
        let mut flipped = BASE64.decode(proof).unwrap();
        flipped[0] ^= 1;
        let cases = [
            format!("c=eSws,r={nonce},p={proof}"), // claims channel binding support
            format!("r={nonce},p={proof}"),        // no channel binding
            format!("c=biws,r=nonce,p={proof}"),   // only the client nonce
            format!("c=biws,r={nonce}x,p={proof}"), // longer nonce
            format!("c=biws,p={proof}"),           // no nonce
            format!("c=biws,r={nonce}"),           // no proof
            format!("c=biws,r={nonce},p="),        // empty proof
            format!("c=biws,r={nonce},p=!!!!"),    // not base64
            format!("c=biws,r={nonce},p={}", BASE64.encode(&flipped)),
            format!("c=biws,r={nonce},p={}", BASE64.encode(&flipped[1..])), // too short
            format!("c=biws,r={nonce},noequals,p={proof}"),                 // malformed extension
            format!("c=biws,r={nonce},ext=1,p={proof}"), // not covered by the proof
        ];
        for case in cases {
            let mut s = session().with_server_nonce(&server_nonce);
            assert_eq!(scram_first(&mut s, SCRAM_SHA_512, &client), server_first);
            assert_eq!(
                failed(s.authenticate(case.as_bytes())),
                scram_failure(SCRAM_SHA_512),
                "{case}"
            );
            assert!(!s.is_authenticated());
        }
        // The same exchange with the unchanged message succeeds.
        let mut s = session().with_server_nonce(&server_nonce);
        scram_first(&mut s, SCRAM_SHA_512, &client);
        assert_eq!(
            s.authenticate(good.as_bytes()),
            SaslStep::Done {
                reply: server_final,
                principal: "alice".into()
            }
        );
    }

    #[test]
    fn out_of_order_rounds_fail() {
        let mut s = session();
        assert!(!failed(s.authenticate(b"\0alice\0alice-secret")).is_empty());
        s.handshake("PLAIN").unwrap();
        assert!(matches!(
            s.authenticate(b"\0alice\0alice-secret"),
            SaslStep::Done { .. }
        ));
        // A second SaslAuthenticate without a new SaslHandshake.
        assert!(!failed(s.authenticate(b"\0alice\0alice-secret")).is_empty());
        assert!(!s.is_authenticated());
        // A failed exchange cannot be continued.
        let mut s = session();
        s.handshake(SCRAM_SHA_256).unwrap();
        failed(s.authenticate(b"n,,n=carol,r=nonce"));
        failed(s.authenticate(b"c=biws,r=nonce,p=AAAA"));
    }

    #[test]
    fn enabled_but_unimplemented_mechanism() {
        let users = Arc::new(SaslUsers::new().with_mechanisms(&["OAUTHBEARER", "PLAIN"]));
        let mut s = SaslSession::new(users);
        assert_eq!(s.handshake("OAUTHBEARER"), Ok(()));
        let message = failed(s.authenticate(b"n,,\x01auth=Bearer token\x01\x01"));
        assert!(message.contains("OAUTHBEARER"), "{message}");
        assert!(!s.is_authenticated());
    }

    #[test]
    fn reauthentication() {
        let mut s = session();
        s.handshake("PLAIN").unwrap();
        s.authenticate(b"\0alice\0alice-secret");
        // Same mechanism and principal: still authenticated throughout.
        s.handshake("PLAIN").unwrap();
        assert!(s.is_authenticated());
        assert!(matches!(
            s.authenticate(b"\0alice\0alice-secret"),
            SaslStep::Done { .. }
        ));
        assert!(s.is_authenticated());
        // Another mechanism is refused, listing the one in use.
        assert_eq!(s.handshake(SCRAM_SHA_256), Err(vec!["PLAIN".to_string()]));
        assert!(s.is_authenticated());
        // Another principal fails and ends the authentication.
        s.handshake("PLAIN").unwrap();
        let message = failed(s.authenticate(b"\0bob\0bob-secret"));
        assert!(message.starts_with("Cannot change principals"), "{message}");
        assert!(!s.is_authenticated());
        assert_eq!(s.principal(), None);
    }

    #[test]
    fn failures_never_contain_passwords() {
        let mut s = session();
        s.handshake("PLAIN").unwrap();
        let message = failed(s.authenticate(b"\0alice\0wrong-secret"));
        assert!(!message.contains("secret"));
        let client = Client::new(SCRAM_SHA_256, "alice", "wrong-secret", "nonce");
        let mut s = session();
        let server_first = scram_first(&mut s, SCRAM_SHA_256, &client);
        let message = failed(s.authenticate(&client.last(&server_first).0));
        assert!(!message.contains("secret"));
    }

    fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
        let len = rng.gen_range(0..64);
        match rng.gen_range(0..3) {
            // Arbitrary bytes.
            0 => (0..len).map(|_| rng.gen()).collect(),
            // Bytes from the alphabet of the messages, to reach deeper into the parsers.
            1 => (0..len)
                .map(|_| {
                    *b"nrcpsiav=,\0abiwsAZ09+/=2C3D\x01"
                        .get(rng.gen_range(0..28))
                        .unwrap()
                })
                .collect(),
            // Long inputs.
            _ => vec![rng.gen(); rng.gen_range(0..100_000)],
        }
    }

    fn mutate(rng: &mut StdRng, message: &[u8]) -> Vec<u8> {
        let mut out = message.to_vec();
        match rng.gen_range(0..4) {
            0 if !out.is_empty() => {
                let i = rng.gen_range(0..out.len());
                out[i] ^= rng.gen_range(1..=255);
            }
            1 => out.truncate(rng.gen_range(0..out.len().max(1))),
            2 => {
                let i = rng.gen_range(0..=out.len());
                out.insert(i, *b",=\0\xff".get(rng.gen_range(0..4)).unwrap());
            }
            _ => {
                let i = rng.gen_range(0..=out.len());
                out.splice(i..i, random_bytes(rng));
            }
        }
        out
    }

    /// Random and mutated inputs in every state: no panic, and a mutated
    /// client-final-message never authenticates.
    #[test]
    fn garbage_never_panics_or_authenticates() {
        let mut rng = StdRng::seed_from_u64(0x5a51);
        let mechanisms = [
            "PLAIN",
            SCRAM_SHA_256,
            SCRAM_SHA_512,
            "OAUTHBEARER",
            "",
            "\u{0}\u{ff}",
        ];
        for _ in 0..2000 {
            let mut s = session();
            let mechanism = mechanisms[rng.gen_range(0..mechanisms.len())];
            let _ = s.handshake(mechanism);
            for _ in 0..rng.gen_range(1..4) {
                let step = s.authenticate(&random_bytes(&mut rng));
                assert!(
                    !matches!(step, SaslStep::Done { .. }),
                    "{mechanism}: {step:?}"
                );
            }
        }
        for mechanism in [SCRAM_SHA_256, SCRAM_SHA_512] {
            let client = Client::new(mechanism, "alice", "alice-secret", "nonce");
            let mut s = session();
            let server_first = scram_first(&mut s, mechanism, &client);
            let (good, _) = client.last(&server_first);
            let server_nonce = server_nonce_of(&server_first, "nonce");
            // A fresh exchange with the same server nonce, so `good` passes.
            let mut s = session().with_server_nonce(&server_nonce);
            scram_first(&mut s, mechanism, &client);
            assert!(matches!(s.authenticate(&good), SaslStep::Done { .. }));
            for _ in 0..300 {
                let mut s = session().with_server_nonce(&server_nonce);
                scram_first(&mut s, mechanism, &client);
                let bad = mutate(&mut rng, &good);
                if bad != good {
                    let step = s.authenticate(&bad);
                    assert!(matches!(step, SaslStep::Failed(_)), "{step:?}");
                }
                let first = mutate(&mut rng, &client.first());
                let mut s = session();
                s.handshake(mechanism).unwrap();
                let _ = s.authenticate(&first);
                let _ = s.authenticate(&mutate(&mut rng, &good));
            }
        }
        for _ in 0..500 {
            let mut s = session();
            s.handshake("PLAIN").unwrap();
            let step = s.authenticate(&mutate(&mut rng, b"\0alice\0alice-secret"));
            assert!(
                !matches!(&step, SaslStep::Done { principal, .. } if principal != "alice"),
                "{step:?}"
            );
        }
    }
}
