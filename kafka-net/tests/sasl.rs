//! SASL end to end: [`Connection`] against a small broker on loopback that really
//! checks credentials. It answers ApiVersions, SaslHandshake (only the mechanisms it
//! enables) and SaslAuthenticate as Kafka does: PLAIN against its user table, the
//! server side of SCRAM-SHA-256/512 (RFC 5802: its own nonce extension, salt, 4096
//! iterations, client proof checked against the stored key, server signature sent
//! back), and OAUTHBEARER against one accepted token (with RFC 7628's error JSON and
//! `%x01` acknowledgement when the token is refused). Before authentication succeeds
//! it closes the connection on any other request; after it, it answers Metadata, so
//! each successful test proves the connection is usable.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use kafka_net::sasl::{OAuthToken, SaslError, TokenProvider};
use kafka_net::{BrokerMetrics, ClientConfig, Connection, ErrorKind, SaslConfig};
use kafka_protocol::frame::{decode_request, encode_response, frame_size};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiVersionsResponse, MetadataRequest, MetadataResponse, SaslAuthenticateResponse,
    SaslHandshakeResponse,
};
use kafka_protocol::{ApiKey, RequestKind, Response};
use rand::Rng as _;
use sha2::{Digest, Sha256, Sha512};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// `UNSUPPORTED_SASL_MECHANISM`.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// `SASL_AUTHENTICATION_FAILED`.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// PBKDF2 iterations of the broker's SCRAM credentials (Kafka's default is 4096).
const ITERATIONS: u32 = 4096;
/// Every test body ends within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// SCRAM, server side (RFC 5802)
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn of(mechanism: &str) -> Option<Hash> {
        match mechanism {
            "SCRAM-SHA-256" => Some(Hash::Sha256),
            "SCRAM-SHA-512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Hash::Sha512 => {
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
    fn new(hash: Hash, password: &str) -> Self {
        let salt: [u8; 16] = rand::thread_rng().gen();
        let salted = hash.salted_password(password.as_bytes(), &salt, ITERATIONS);
        let client_key = hash.hmac(&salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations: ITERATIONS,
            stored_key: hash.h(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }
}

/// RFC 5802 `saslname` back to a user name.
fn unescape_username(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Parses `n,,n=<user>,r=<nonce>`: `(client-first-message-bare, user, client nonce)`.
fn parse_client_first(message: &str) -> Result<(&str, String, &str), &'static str> {
    let bare = message
        .strip_prefix("n,,")
        .ok_or("expected GS2 header n,, (no channel binding, no authzid)")?;
    let (user, nonce) = bare.split_once(',').ok_or("missing nonce")?;
    let user = user.strip_prefix("n=").ok_or("missing user name (n=)")?;
    let nonce = nonce.strip_prefix("r=").ok_or("missing nonce (r=)")?;
    if nonce.is_empty() || nonce.contains(',') {
        return Err("invalid client nonce");
    }
    let user = unescape_username(user).ok_or("invalid saslname")?;
    Ok((bare, user, nonce))
}

/// One SCRAM exchange after the client-first-message.
struct ScramExchange {
    hash: Hash,
    user: String,
    credential: ScramCredential,
    /// client nonce + server nonce.
    nonce: String,
    /// `client-first-message-bare "," server-first-message`.
    auth_prefix: String,
}

impl ScramExchange {
    /// The server-first-message for this client-first-message.
    fn start(
        hash: Hash,
        client_first: &[u8],
        users: &[User],
    ) -> Result<(ScramExchange, String), String> {
        let client_first =
            std::str::from_utf8(client_first).map_err(|_| "client-first is not UTF-8")?;
        let (bare, user, client_nonce) = parse_client_first(client_first)?;
        let Some(found) = users.iter().find(|u| u.name == user) else {
            return Err("Authentication failed: Invalid user credentials".into());
        };
        let credential = match hash {
            Hash::Sha256 => found.sha256.clone(),
            Hash::Sha512 => found.sha512.clone(),
        };
        let server_nonce: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let exchange = ScramExchange {
            hash,
            user,
            credential,
            nonce,
            auth_prefix: format!("{bare},{server_first}"),
        };
        Ok((exchange, server_first))
    }

    /// Verifies the client-final-message (unless `impostor`); the
    /// server-final-message on success.
    fn finish(&self, client_final: &[u8], impostor: bool) -> Result<String, String> {
        let client_final =
            std::str::from_utf8(client_final).map_err(|_| "client-final is not UTF-8")?;
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or("client-final has no proof (p=)")?;
        if without_proof != format!("c=biws,r={}", self.nonce) {
            return Err("client-final has the wrong channel binding or nonce".into());
        }
        let proof = BASE64.decode(proof).map_err(|_| "proof is not base64")?;
        let auth_message = format!("{},{without_proof}", self.auth_prefix);
        let client_signature = self
            .hash
            .hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(self.invalid_credentials());
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if self.hash.h(&client_key) != self.credential.stored_key && !impostor {
            return Err(self.invalid_credentials());
        }
        let server_signature = self
            .hash
            .hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }

    /// Kafka's message for a wrong SCRAM password.
    fn invalid_credentials(&self) -> String {
        let mechanism = match self.hash {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        };
        format!(
            "Authentication failed during authentication due to invalid credentials \
             with SASL mechanism {mechanism}"
        )
    }
}

// ---------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------

/// A user known to the broker, with its SCRAM credentials.
struct User {
    name: String,
    password: String,
    sha256: ScramCredential,
    sha512: ScramCredential,
}

/// What the broker enables and accepts.
struct Broker {
    mechanisms: Vec<&'static str>,
    users: Vec<User>,
    /// The one OAUTHBEARER token accepted.
    token: Option<String>,
    /// An impostor that does not know the SCRAM credentials: it accepts any proof
    /// and signs with its own (wrong) server key.
    impostor: bool,
    /// The session lifetime (KIP-368) PLAIN logins get; 0 for none.
    session_lifetime_ms: i64,
}

impl Broker {
    fn new(mechanisms: &[&'static str]) -> Self {
        Broker {
            mechanisms: mechanisms.to_vec(),
            users: Vec::new(),
            token: None,
            impostor: false,
            session_lifetime_ms: 0,
        }
    }

    fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push(User {
            name: name.into(),
            password: password.into(),
            sha256: ScramCredential::new(Hash::Sha256, password),
            sha512: ScramCredential::new(Hash::Sha512, password),
        });
        self
    }

    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// What the broker saw on its one connection.
#[derive(Debug, Default)]
struct Seen {
    handshake_versions: Vec<i16>,
    mechanisms_asked: Vec<String>,
    /// Every SaslAuthenticate `auth_bytes`, in order.
    auth_messages: Vec<Vec<u8>>,
    /// The authenticated user (or the OAUTHBEARER token), once authentication succeeded.
    principal: Option<String>,
    /// OAUTHBEARER extensions as received.
    extensions: Vec<(String, String)>,
    metadata_answered: usize,
    /// The request that made the broker close the connection before authentication.
    refused: Option<ApiKey>,
    /// The error the broker answered an authentication with.
    failure: Option<(i16, String)>,
}

enum Auth {
    /// No SaslHandshake yet.
    Start,
    /// SaslHandshake accepted this mechanism.
    Mechanism(&'static str),
    Scram(Box<ScramExchange>),
    /// OAUTHBEARER token refused with the error JSON; the client must acknowledge.
    OAuthRefused,
    Done,
}

async fn read_request(s: &mut TcpStream) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).await.ok()?;
    let n = frame_size(&prefix, 1 << 20).ok()??;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: ApiKey::ALL
            .iter()
            .map(|k| ApiVersion {
                api_key: k.key(),
                min_version: k.versions().min,
                max_version: k.versions().max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn respond<R: Response>(s: &mut TcpStream, correlation_id: i32, version: i16, body: &R) {
    let mut out = BytesMut::new();
    encode_response(&mut out, correlation_id, version, body).expect("encodes");
    s.write_all(&out).await.expect("writes");
}

fn authenticated(auth_bytes: impl Into<Bytes>) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        auth_bytes: auth_bytes.into(),
        ..Default::default()
    }
}

fn auth_failed(message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        error_code: SASL_AUTHENTICATION_FAILED,
        error_message: Some(message.to_string().into()),
        ..Default::default()
    }
}

/// Parses Kafka's OAUTHBEARER client message: the token and the extensions.
fn parse_oauthbearer(message: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let message = std::str::from_utf8(message).ok()?;
    let body = message.strip_prefix("n,,\x01")?.strip_suffix("\x01\x01")?;
    let mut token = None;
    let mut extensions = Vec::new();
    for pair in body.split('\x01') {
        let (key, value) = pair.split_once('=')?;
        if key == "auth" {
            token = Some(value.strip_prefix("Bearer ")?.to_string());
        } else {
            extensions.push((key.to_string(), value.to_string()));
        }
    }
    Some((token?, extensions))
}

/// Answers one SaslAuthenticate, and whether to go on (`false`: answer, then close).
fn authenticate(
    broker: &Broker,
    auth: &mut Auth,
    bytes: &[u8],
    seen: &mut Seen,
) -> (SaslAuthenticateResponse, bool) {
    let fail = |seen: &mut Seen, message: String| {
        seen.failure = Some((SASL_AUTHENTICATION_FAILED, message.clone()));
        (auth_failed(&message), false)
    };
    match std::mem::replace(auth, Auth::Done) {
        Auth::Mechanism("PLAIN") => {
            let mut parts = bytes.split(|&b| b == 0);
            let (Some(_authzid), Some(user), Some(password), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return fail(
                    seen,
                    "Authentication failed: malformed PLAIN message".into(),
                );
            };
            let ok = broker
                .users
                .iter()
                .any(|u| u.name.as_bytes() == user && u.password.as_bytes() == password);
            if !ok {
                return fail(
                    seen,
                    "Authentication failed: Invalid username or password".into(),
                );
            }
            seen.principal = Some(String::from_utf8_lossy(user).into_owned());
            (
                SaslAuthenticateResponse {
                    session_lifetime_ms: broker.session_lifetime_ms,
                    ..authenticated(Bytes::new())
                },
                true,
            )
        }
        Auth::Mechanism(m @ ("SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
            let hash = Hash::of(m).unwrap();
            match ScramExchange::start(hash, bytes, &broker.users) {
                Ok((exchange, server_first)) => {
                    *auth = Auth::Scram(Box::new(exchange));
                    (authenticated(server_first.into_bytes()), true)
                }
                Err(message) => fail(seen, message),
            }
        }
        Auth::Scram(exchange) => match exchange.finish(bytes, broker.impostor) {
            Ok(server_final) => {
                seen.principal = Some(exchange.user.clone());
                (authenticated(server_final.into_bytes()), true)
            }
            Err(message) => fail(seen, message),
        },
        Auth::Mechanism("OAUTHBEARER") => {
            let Some((token, extensions)) = parse_oauthbearer(bytes) else {
                return fail(seen, "Authentication failed: malformed OAUTHBEARER".into());
            };
            seen.extensions = extensions;
            if broker.token.as_deref() == Some(token.as_str()) {
                seen.principal = Some(token);
                (authenticated(Bytes::new()), true)
            } else {
                // RFC 7628 3.2.2: an error JSON that the client acknowledges.
                *auth = Auth::OAuthRefused;
                let json = r#"{"status":"invalid_token"}"#;
                (authenticated(json.as_bytes().to_vec()), true)
            }
        }
        Auth::OAuthRefused if bytes == b"\x01" => fail(
            seen,
            "Authentication failed: invalid_token (token not recognised)".into(),
        ),
        Auth::OAuthRefused => fail(seen, "expected the %x01 acknowledgement".into()),
        Auth::Start | Auth::Done | Auth::Mechanism(_) => {
            fail(seen, "SaslAuthenticate in the wrong state".into())
        }
    }
}

/// Serves one connection until the client closes it or the broker refuses it.
async fn serve(mut s: TcpStream, broker: &Broker) -> Seen {
    let mut seen = Seen::default();
    let mut auth = Auth::Start;
    while let Some(frame) = read_request(&mut s).await {
        let (header, body) = decode_request(&frame).expect("the client sends valid requests");
        let (id, version) = (header.correlation_id, header.request_api_version);
        match body {
            RequestKind::ApiVersions(_) => respond(&mut s, id, version, &api_versions()).await,
            RequestKind::SaslHandshake(h) if matches!(auth, Auth::Start) => {
                seen.handshake_versions.push(version);
                seen.mechanisms_asked.push(h.mechanism.to_string());
                let enabled = broker
                    .mechanisms
                    .iter()
                    .find(|m| **m == h.mechanism.as_str());
                let response = SaslHandshakeResponse {
                    error_code: if enabled.is_some() {
                        0
                    } else {
                        UNSUPPORTED_SASL_MECHANISM
                    },
                    mechanisms: broker.mechanisms.iter().map(|m| (*m).into()).collect(),
                };
                respond(&mut s, id, version, &response).await;
                match enabled {
                    Some(m) => auth = Auth::Mechanism(m),
                    None => return seen,
                }
            }
            RequestKind::SaslAuthenticate(a) if !matches!(auth, Auth::Start | Auth::Done) => {
                seen.auth_messages.push(a.auth_bytes.to_vec());
                let (response, go_on) = authenticate(broker, &mut auth, &a.auth_bytes, &mut seen);
                respond(&mut s, id, version, &response).await;
                if !go_on {
                    return seen;
                }
                if seen.principal.is_some() {
                    auth = Auth::Done;
                }
            }
            RequestKind::Metadata(_) if seen.principal.is_some() => {
                seen.metadata_answered += 1;
                respond(&mut s, id, version, &MetadataResponse::default()).await;
            }
            other => {
                // Anything else before authentication (or out of order): as Kafka,
                // close the connection without an answer.
                seen.refused = Some(other.api_key());
                return seen;
            }
        }
    }
    seen
}

/// Starts a broker that accepts one connection; the handle yields what it saw.
async fn start(broker: Broker) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve(s, &broker).await
    });
    (addr, handle)
}

// ---------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------

async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test ends in time")
}

fn config(sasl: Option<SaslConfig>) -> ClientConfig {
    let mut c = ClientConfig::default();
    c.request_timeout = Duration::from_secs(10);
    c.connect_timeout = Duration::from_secs(5);
    c.sasl = sasl;
    c
}

async fn connect(addr: &str, sasl: SaslConfig) -> kafka_net::Result<Connection> {
    Connection::connect(
        addr,
        &config(Some(sasl)),
        Arc::new(BrokerMetrics::default()),
    )
    .await
}

fn all_topics() -> MetadataRequest {
    MetadataRequest {
        topics: None,
        ..Default::default()
    }
}

/// Connects with `sasl`, sends Metadata, closes; what the broker saw.
async fn authenticates(broker: Broker, sasl: SaslConfig) -> Seen {
    let (addr, server) = start(broker).await;
    let conn = connect(&addr, sasl).await.expect("authenticates");
    conn.send(&all_topics())
        .await
        .expect("the authenticated connection is usable");
    assert!(!conn.is_closed());
    drop(conn);
    let seen = server.await.unwrap();
    assert_eq!(seen.metadata_answered, 1, "{seen:?}");
    assert_eq!(seen.handshake_versions, [1], "SaslHandshake v1");
    assert_eq!(seen.refused, None, "{seen:?}");
    seen
}

/// Connects with `sasl`, which the broker must refuse; the error and what it saw.
async fn refused(broker: Broker, sasl: SaslConfig) -> (kafka_net::Error, Seen) {
    let (addr, server) = start(broker).await;
    let err = connect(&addr, sasl.clone())
        .await
        .expect_err("the broker refuses");
    let seen = server.await.unwrap();
    assert_eq!(seen.principal, None, "{seen:?}");
    assert_eq!(seen.metadata_answered, 0);
    // Refusals the broker reports with a code keep it (SASL_AUTHENTICATION_FAILED,
    // UNSUPPORTED_SASL_MECHANISM); refusals the client decides (a server signature that
    // does not match) are SASL errors.
    assert!(
        matches!(err.kind(), ErrorKind::Sasl(_)) || err.code().is_some_and(|c| !c.is_ok()),
        "{err:?}"
    );
    assert!(
        !err.is_retriable(),
        "bad credentials are not retriable: {err}"
    );
    assert!(err.to_string().contains(sasl.mechanism()), "{err}");
    (err, seen)
}

const ALL: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];
const PASSWORD: &str = "alice-s3cret=,pw";
const WRONG: &str = "alice-wrong-pw";

fn alice() -> Broker {
    Broker::new(ALL)
        .user("bob", "bob-pw")
        .user("alice", PASSWORD)
}

/// No message the broker received contains `secret`.
fn assert_no_secret(seen: &Seen, secret: &str) {
    for m in &seen.auth_messages {
        assert!(
            !String::from_utf8_lossy(m).contains(secret),
            "the password went over the wire"
        );
    }
}

// ---------------------------------------------------------------------------------
// PLAIN
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn plain_with_the_right_password_authenticates() {
    within(async {
        let seen = authenticates(alice(), SaslConfig::plain("alice", PASSWORD)).await;
        assert_eq!(seen.mechanisms_asked, ["PLAIN"]);
        assert_eq!(seen.principal.as_deref(), Some("alice"));
        assert_eq!(
            seen.auth_messages,
            [format!("\0alice\0{PASSWORD}").into_bytes()]
        );
    })
    .await;
}

#[tokio::test]
async fn plain_with_a_wrong_password_is_refused() {
    within(async {
        let (err, seen) = refused(alice(), SaslConfig::plain("alice", WRONG)).await;
        let text = err.to_string();
        assert!(text.contains("Invalid username or password"), "{text}");
        assert!(!text.contains(WRONG), "{text}");
        assert_eq!(seen.failure.unwrap().0, SASL_AUTHENTICATION_FAILED);
    })
    .await;
}

#[tokio::test]
async fn plain_with_an_unknown_user_is_refused() {
    within(async {
        let (err, _) = refused(alice(), SaslConfig::plain("mallory", PASSWORD)).await;
        assert!(
            err.to_string().contains("PLAIN authentication failed"),
            "{err}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------
// SCRAM
// ---------------------------------------------------------------------------------

async fn scram_good(sasl: SaslConfig) {
    let mechanism = sasl.mechanism();
    let seen = authenticates(alice(), sasl).await;
    assert_eq!(seen.mechanisms_asked, [mechanism]);
    assert_eq!(seen.principal.as_deref(), Some("alice"));
    // client-first and client-final; the server-final was checked by the client.
    assert_eq!(seen.auth_messages.len(), 2, "{seen:?}");
    assert!(seen.auth_messages[0].starts_with(b"n,,n=alice,r="));
    assert!(seen.auth_messages[1].starts_with(b"c=biws,r="));
    assert_no_secret(&seen, PASSWORD);
}

async fn scram_bad(sasl: SaslConfig) {
    let mechanism = sasl.mechanism();
    let (err, seen) = refused(alice(), sasl).await;
    let text = err.to_string();
    assert!(text.contains("invalid credentials"), "{text}");
    assert!(!text.contains(WRONG), "{text}");
    // The broker got as far as the proof and found it wrong.
    assert_eq!(seen.auth_messages.len(), 2, "{seen:?}");
    assert_no_secret(&seen, WRONG);
    let (code, message) = seen.failure.unwrap();
    assert_eq!(code, SASL_AUTHENTICATION_FAILED);
    assert!(message.contains(mechanism), "{message}");
}

#[tokio::test]
async fn scram_sha256_with_the_right_password_authenticates() {
    within(scram_good(SaslConfig::scram_sha256("alice", PASSWORD))).await;
}

#[tokio::test]
async fn scram_sha256_with_a_wrong_password_is_refused() {
    within(scram_bad(SaslConfig::scram_sha256("alice", WRONG))).await;
}

#[tokio::test]
async fn scram_sha512_with_the_right_password_authenticates() {
    within(scram_good(SaslConfig::scram_sha512("alice", PASSWORD))).await;
}

#[tokio::test]
async fn scram_sha512_with_a_wrong_password_is_refused() {
    within(scram_bad(SaslConfig::scram_sha512("alice", WRONG))).await;
}

#[tokio::test]
async fn scram_user_names_are_escaped_and_unescaped() {
    within(async {
        let broker = Broker::new(&["SCRAM-SHA-256"]).user("a=b,c", "pw");
        let seen = authenticates(broker, SaslConfig::scram_sha256("a=b,c", "pw")).await;
        assert_eq!(seen.principal.as_deref(), Some("a=b,c"));
        assert!(seen.auth_messages[0].starts_with(b"n,,n=a=3Db=2Cc,r="));
    })
    .await;
}

#[tokio::test]
async fn scram_with_an_unknown_user_is_refused_at_the_first_message() {
    within(async {
        let (err, seen) = refused(alice(), SaslConfig::scram_sha512("mallory", PASSWORD)).await;
        assert!(
            err.to_string().contains("Invalid user credentials"),
            "{err}"
        );
        assert_eq!(seen.auth_messages.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn scram_rejects_a_server_that_does_not_know_the_password() {
    within(async {
        // The impostor stores other credentials for alice, so its server signature
        // cannot match: the client must not accept the connection.
        let mut broker = Broker::new(&["SCRAM-SHA-256"]).user("alice", "not-the-password");
        broker.impostor = true;
        let (addr, server) = start(broker).await;
        let err = connect(&addr, SaslConfig::scram_sha256("alice", PASSWORD))
            .await
            .expect_err("the server signature is wrong");
        // Refusals the broker reports with a code keep it (SASL_AUTHENTICATION_FAILED,
        // UNSUPPORTED_SASL_MECHANISM); refusals the client decides (a server signature that
        // does not match) are SASL errors.
        assert!(
            matches!(err.kind(), ErrorKind::Sasl(_)) || err.code().is_some_and(|c| !c.is_ok()),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("SCRAM-SHA-256: server signature does not match"),
            "{err}"
        );
        assert!(!err.is_retriable());
        let seen = server.await.unwrap();
        assert_eq!(
            seen.metadata_answered, 0,
            "nothing was sent after the failure"
        );
        assert_eq!(seen.refused, None);
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Handshake and refusal before authentication
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_unsupported_mechanism_names_the_enabled_ones() {
    within(async {
        let broker = Broker::new(&["SCRAM-SHA-512", "OAUTHBEARER"]).user("alice", PASSWORD);
        let (err, seen) = refused(broker, SaslConfig::plain("alice", PASSWORD)).await;
        let text = err.to_string();
        assert!(text.contains("PLAIN"), "{text}");
        assert!(text.contains("SCRAM-SHA-512"), "{text}");
        assert!(text.contains("OAUTHBEARER"), "{text}");
        assert_eq!(seen.mechanisms_asked, ["PLAIN"]);
        assert!(seen.auth_messages.is_empty(), "no credentials were sent");
    })
    .await;
}

#[tokio::test]
async fn the_broker_refuses_requests_before_authentication() {
    within(async {
        let (addr, server) = start(alice()).await;
        // No SASL configured: the connection opens (ApiVersions needs no
        // authentication) but the first real request closes it.
        let conn = Connection::connect(&addr, &config(None), Arc::new(BrokerMetrics::default()))
            .await
            .expect("ApiVersions is answered before authentication");
        let err = conn
            .send(&all_topics())
            .await
            .expect_err("the broker closes the connection");
        assert!(conn.is_closed());
        assert!(err.is_retriable(), "a closed connection: {err}");
        let seen = server.await.unwrap();
        assert_eq!(seen.refused, Some(ApiKey::Metadata));
        assert_eq!(seen.metadata_answered, 0);
    })
    .await;
}

// ---------------------------------------------------------------------------------
// OAUTHBEARER
// ---------------------------------------------------------------------------------

/// A user-supplied token source that counts its calls.
struct Tokens {
    token: OAuthToken,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenProvider for Tokens {
    async fn token(&self) -> Result<OAuthToken, SaslError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.token.clone())
    }
}

struct Unreachable;

#[async_trait::async_trait]
impl TokenProvider for Unreachable {
    async fn token(&self) -> Result<OAuthToken, SaslError> {
        Err(SaslError::token_provider("identity provider unreachable"))
    }
}

const JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.c2ln";

#[tokio::test]
async fn oauthbearer_sends_the_provided_token() {
    within(async {
        let provider = Arc::new(Tokens {
            token: OAuthToken::new(JWT).with_extension("logicalCluster", "lkc-123"),
            calls: AtomicUsize::new(0),
        });
        let broker = Broker::new(ALL).token(JWT);
        let seen = authenticates(broker, SaslConfig::oauthbearer(provider.clone())).await;
        assert_eq!(seen.mechanisms_asked, ["OAUTHBEARER"]);
        assert_eq!(seen.principal.as_deref(), Some(JWT), "the token received");
        assert_eq!(
            seen.extensions,
            [("logicalCluster".to_string(), "lkc-123".to_string())]
        );
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn oauthbearer_with_a_refused_token_acknowledges_then_fails() {
    within(async {
        let provider = Arc::new(Tokens {
            token: OAuthToken::new("expired-token"),
            calls: AtomicUsize::new(0),
        });
        let broker = Broker::new(ALL).token(JWT);
        let (err, seen) = refused(broker, SaslConfig::oauthbearer(provider)).await;
        assert!(err.to_string().contains("invalid_token"), "{err}");
        assert!(!err.to_string().contains("expired-token"), "{err}");
        // The token, then the RFC 7628 %x01 acknowledgement of the error JSON.
        assert_eq!(seen.auth_messages.len(), 2, "{seen:?}");
        assert_eq!(seen.auth_messages[1], b"\x01");
    })
    .await;
}

#[tokio::test]
async fn oauthbearer_token_provider_failure_is_reported() {
    within(async {
        let (err, seen) = refused(
            Broker::new(ALL),
            SaslConfig::oauthbearer(Arc::new(Unreachable)),
        )
        .await;
        assert!(err.to_string().contains("token provider failed"), "{err}");
        assert!(seen.auth_messages.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn debug_output_never_contains_a_secret() {
    within(async {
        let secret = "hunter2-SECRET";
        let configs = [
            SaslConfig::plain("alice", secret),
            SaslConfig::Plain {
                username: "alice".into(),
                password: secret.into(),
                authzid: Some("bob".into()),
            },
            SaslConfig::scram_sha256("alice", secret),
            SaslConfig::scram_sha512("alice", secret),
            SaslConfig::oauthbearer(Arc::new(Tokens {
                token: OAuthToken::new(secret).with_extension("logicalCluster", secret),
                calls: AtomicUsize::new(0),
            })),
        ];
        for sasl in configs {
            for text in [
                format!("{sasl:?}"),
                format!("{sasl:#?}"),
                format!("{:?}", config(Some(sasl.clone()))),
                format!("{:#?}", config(Some(sasl.clone()))),
            ] {
                assert!(!text.contains(secret), "{text}");
                assert!(text.contains(sasl.mechanism_variant()), "{text}");
            }
        }
    })
    .await;
}

/// The variant name `Debug` prints, to check the config is printed at all.
trait VariantName {
    fn mechanism_variant(&self) -> &'static str;
}

impl VariantName for SaslConfig {
    fn mechanism_variant(&self) -> &'static str {
        match self.mechanism() {
            "PLAIN" => "Plain",
            "SCRAM-SHA-256" => "ScramSha256",
            "SCRAM-SHA-512" => "ScramSha512",
            _ => "OAuthBearer",
        }
    }
}

#[tokio::test]
async fn a_bad_password_error_names_the_mechanism_and_is_final() {
    within(async {
        for sasl in [
            SaslConfig::plain("alice", WRONG),
            SaslConfig::scram_sha256("alice", WRONG),
            SaslConfig::scram_sha512("alice", WRONG),
        ] {
            let (err, _) = refused(alice(), sasl.clone()).await;
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(text.contains(sasl.mechanism()), "{text}");
                assert!(!text.contains(WRONG), "{text}");
                assert!(!text.contains(PASSWORD), "{text}");
            }
            assert!(!err.is_retriable());
            assert!(err.broker().is_some(), "names the broker: {err}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_connection_is_replaced_before_its_sasl_session_expires() {
    within(async {
        let mut broker = alice();
        broker.session_lifetime_ms = 400;
        let (addr, _server) = start(broker).await;
        let conn = connect(&addr, SaslConfig::plain("alice", PASSWORD))
            .await
            .unwrap();
        assert!(conn.is_usable());
        // At 85% of the lifetime the pool stops handing the connection out.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!conn.is_usable(), "due for re-authentication");
        assert!(!conn.is_closed(), "requests in flight may still finish");
    })
    .await;
}
