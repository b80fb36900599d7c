//! One connection to one broker: a writer task and a reader task, many requests in
//! flight matched to their responses by correlation id.
//!
//! Dropping a request's future never desynchronizes the connection: the reader always
//! consumes whole frames and discards answers nobody waits for. A malformed or
//! oversized frame, a response to no request, an I/O error or a request timeout
//! poisons the connection: every waiting request fails with that error and the
//! connection is not used again (the broker pool opens a new one).

use crate::config::ClientConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::BrokerMetrics;
use crate::versions::VersionTable;
use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{
    decode_response, decode_response_kind, encode_produce_request_segments, encode_request,
    encode_request_kind, frame_size, peek_correlation_id, request_header,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse, RequestHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::{ApiKey, Request, RequestKind, ResponseKind, StrBytes};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::Instrument;

mod callback;
mod io;

use callback::{Callback, Waiter};
use io::{read_loop, write_loop};

/// A byte stream to a broker: plain TCP or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

enum Reply {
    Response(oneshot::Sender<Result<Bytes>>),
    Written(oneshot::Sender<Result<()>>),
    /// Called on the reader task with the answer (see [`Connection::enqueue_then`]).
    Callback(Callback),
}

struct Outgoing {
    correlation_id: i32,
    frame: Frame,
    reply: Reply,
}

/// A request frame: one buffer, or segments written one after another (a Produce
/// request whose batches are written from the producer's own buffers, not copied).
pub(crate) enum Frame {
    One(Bytes),
    Segments(Vec<Bytes>),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::One(b) => b.len(),
            Frame::Segments(s) => s.iter().map(Bytes::len).sum(),
        }
    }

    fn parts(&self) -> &[Bytes] {
        match self {
            Frame::One(b) => std::slice::from_ref(b),
            Frame::Segments(s) => s,
        }
    }
}

struct Shared {
    addr: String,
    pending: Mutex<HashMap<i32, Waiter>>,
    closed: Mutex<Option<Error>>,
    tasks: Mutex<Vec<AbortHandle>>,
    metrics: Arc<BrokerMetrics>,
    /// Whether the watchdog of callback requests' deadlines runs (started by the first).
    watchdog: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Marks the connection dead with `err` and fails every waiting request.
    fn poison(&self, err: Error) {
        {
            let mut closed = lock(&self.closed);
            if closed.is_some() {
                return;
            }
            tracing::debug!(broker = %self.addr, error = %err, "connection closed");
            *closed = Some(err.clone());
        }
        let pending: Vec<_> = lock(&self.pending).drain().collect();
        for (_, waiter) in pending {
            waiter.answer(Err(err.clone()));
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    fn closed_error(&self) -> Option<Error> {
        lock(&self.closed).clone()
    }

    /// The error the connection closed with, or that its tasks ended.
    fn closed_or_ended(&self) -> Error {
        self.closed_error().unwrap_or_else(|| {
            Error::new(ErrorKind::ConnectionClosed("connection task ended".into()))
        })
    }

    /// Decodes a request's answer and counts the request as finished. An answer that
    /// cannot be decoded means the broker and this client disagree about the protocol:
    /// the connection is not trusted further.
    fn settle<T>(
        &self,
        answer: Result<Bytes>,
        started: Instant,
        decode: impl FnOnce(&Bytes) -> std::result::Result<T, kafka_protocol::DecodeError>,
    ) -> Result<T> {
        let result = answer.and_then(|frame| {
            decode(&frame).map_err(|e| {
                let e = Error::from(e);
                self.poison(e.clone());
                e
            })
        });
        self.metrics
            .finished(started.elapsed(), result.as_ref().err());
        result
    }
}

/// A request handed to the writer, waiting for its answer.
struct Pending {
    api: ApiKey,
    rx: oneshot::Receiver<Result<Bytes>>,
    started: Instant,
    timeout: Duration,
    shared: Arc<Shared>,
    /// The request's span, from its encoding to its answer.
    span: tracing::Span,
}

impl Pending {
    /// Waits for the answer and decodes it.
    async fn finish<T>(
        self,
        decode: impl FnOnce(&Bytes) -> std::result::Result<T, kafka_protocol::DecodeError>,
    ) -> Result<T> {
        let Pending {
            api,
            rx,
            started,
            timeout,
            shared,
            span,
        } = self;
        async {
            let answer = match tokio::time::timeout(timeout, rx).await {
                Err(_) => {
                    // As the Java client does: a request that timed out closes the
                    // connection, so its late answer cannot be mistaken for another.
                    let e = Error::new(ErrorKind::Timeout(timeout));
                    shared.poison(e.clone());
                    Err(e)
                }
                Ok(Err(_)) => Err(shared.closed_or_ended()),
                Ok(Ok(r)) => r,
            };
            shared.settle(answer, started, decode)
        }
        .instrument(span)
        .await
        .map_err(|e| e.with_api(api).with_broker(shared.addr.clone()))
    }
}

/// A connection to one broker, with the versions negotiated on it.
pub struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    next_id: AtomicI32,
    versions: VersionTable,
    client_id: StrBytes,
    request_timeout: Duration,
    /// When SASL re-authentication is due (KIP-368: the broker's session lifetime);
    /// the pool replaces the connection before then.
    reauth_at: Option<Instant>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.poison(Error::new(ErrorKind::ConnectionClosed(
            "connection dropped".into(),
        )));
    }
}

impl Connection {
    /// Opens a connection: TCP (and TLS), ApiVersions, then SASL when configured.
    pub async fn connect(
        addr: &str,
        config: &ClientConfig,
        metrics: Arc<BrokerMetrics>,
    ) -> Result<Connection> {
        let conn = Self::open(addr, config, metrics.clone()).await?;
        match conn.negotiate().await {
            Ok(table) => Self::finish(conn, table, config).await,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionClosed(_)) => {
                // Brokers older than 0.10 close the connection on ApiVersions.
                let Some(fallback) = config.broker_version_fallback.clone() else {
                    return Err(e);
                };
                tracing::debug!(
                    broker = addr,
                    "no ApiVersions; using the configured fallback versions"
                );
                let conn = Self::open(addr, config, metrics).await?;
                Self::finish(conn, fallback, config).await
            }
            Err(e) => Err(e),
        }
    }

    /// [`connect`](Self::connect) as a boxed future, made here: the futures of
    /// opening a connection (TCP, TLS, ApiVersions, SASL) are then compiled once, in
    /// this crate, and not again in every crate whose futures await a connection
    /// (a non-generic future polled from another crate is compiled into it).
    #[inline(never)]
    pub(crate) fn connect_boxed<'a>(
        addr: &'a str,
        config: &'a ClientConfig,
        metrics: Arc<BrokerMetrics>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Connection>> + Send + 'a>> {
        Box::pin(Self::connect(addr, config, metrics))
    }

    async fn finish(
        mut conn: Connection,
        table: VersionTable,
        config: &ClientConfig,
    ) -> Result<Connection> {
        conn.versions = table;
        if let Some(sasl) = &config.sasl {
            conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    async fn open(
        addr: &str,
        config: &ClientConfig,
        metrics: Arc<BrokerMetrics>,
    ) -> Result<Connection> {
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let stream: Box<dyn Stream> = match &config.tls {
                #[cfg(feature = "tls")]
                Some(tls) => {
                    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                    Box::new(tls.connect(host, tcp).await?)
                }
                #[cfg(not(feature = "tls"))]
                Some(_) => return Err(crate::config::feature_off("tls", "TLS")),
                None => Box::new(tcp),
            };
            Ok::<_, Error>(stream)
        };
        let stream = tokio::time::timeout(config.connect_timeout, connect)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout(config.connect_timeout)))?
            .map_err(|e| e.with_broker(addr))?;
        metrics.connected();
        Ok(Self::start(stream, addr, config, metrics))
    }

    /// Starts the reader and writer tasks over an established stream.
    pub(crate) fn start(
        stream: Box<dyn Stream>,
        addr: &str,
        config: &ClientConfig,
        metrics: Arc<BrokerMetrics>,
    ) -> Connection {
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            metrics,
            watchdog: std::sync::atomic::AtomicBool::new(false),
        });
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(1024);
        let span = tracing::debug_span!("broker", addr = %addr);
        let writer = tokio::spawn(write_loop(write, rx, shared.clone()).instrument(span.clone()));
        // The reader's buffer holds size prefixes and small answers; a large frame is
        // read past it, straight into the frame's own buffer. tokio zeroes it, so
        // each connection pays its size at once: 64 KiB held 120 KB more of a
        // producer's memory at rest than 8 KiB (BENCHMARKS.md, issue 16).
        let reader = tokio::spawn(
            read_loop(
                tokio::io::BufReader::with_capacity(8 * 1024, read),
                shared.clone(),
                config.max_response_size,
            )
            .instrument(span),
        );
        lock(&shared.tasks).extend([writer.abort_handle(), reader.abort_handle()]);
        Connection {
            shared,
            tx,
            next_id: AtomicI32::new(0),
            versions: VersionTable::default(),
            client_id: StrBytes::from(config.client_id.clone()),
            request_timeout: config.request_timeout,
            reauth_at: None,
        }
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// True once the connection has failed or closed; it is then never used again.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.closed).is_some()
    }

    /// True while the connection may take new requests: open, and its SASL session
    /// (when the broker limits it) not about to expire.
    pub fn is_usable(&self) -> bool {
        !self.is_closed() && self.reauth_at.is_none_or(|at| Instant::now() < at)
    }

    /// The versions the broker offers.
    pub fn versions(&self) -> &VersionTable {
        &self.versions
    }

    /// Sends a request in the highest version both sides support and waits for its
    /// response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.versions.version_for(R::API_KEY)?;
        self.send_version(request, version).await
    }

    fn frame(
        &self,
        api: ApiKey,
        version: i16,
        encode: impl FnOnce(
            &mut BytesMut,
            &RequestHeader,
        ) -> std::result::Result<(), kafka_protocol::EncodeError>,
    ) -> Result<(i32, Frame)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let header = request_header(api, version, id, Some(self.client_id.clone()));
        let mut buf = BytesMut::new();
        encode(&mut buf, &header)?;
        Ok((id, Frame::One(buf.freeze())))
    }

    /// A Produce request's frame in segments: its batches' bytes are not copied.
    fn produce_frame(
        &self,
        request: &ProduceRequest,
        records: &[Vec<Bytes>],
        version: i16,
    ) -> Result<(i32, Frame)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let header = request_header(ApiKey::Produce, version, id, Some(self.client_id.clone()));
        let segments = encode_produce_request_segments(&header, request, records)?;
        Ok((id, Frame::Segments(segments)))
    }

    fn check_open(&self) -> Result<()> {
        match self.shared.closed_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends a request in `version` and waits for its response.
    pub async fn send_version<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.roundtrip(
            R::API_KEY,
            version,
            |buf, header| encode_request(buf, header, request),
            |frame| decode_response::<R::Response>(frame, version).map(|(_, body)| body),
        )
        .await
    }

    /// Sends a request whose type is chosen at run time, in the highest version both
    /// sides support.
    pub async fn send_kind(&self, request: &RequestKind) -> Result<ResponseKind> {
        let api = request.api_key();
        let version = self
            .versions
            .version_for(api)
            .map_err(|e| e.with_broker(self.shared.addr.clone()))?;
        self.roundtrip(
            api,
            version,
            |buf, header| encode_request_kind(buf, header, request),
            |frame| decode_response_kind(frame, api, version).map(|(_, body)| body),
        )
        .await
    }

    async fn roundtrip<T>(
        &self,
        api: ApiKey,
        version: i16,
        encode: impl FnOnce(
            &mut BytesMut,
            &RequestHeader,
        ) -> std::result::Result<(), kafka_protocol::EncodeError>,
        decode: impl FnOnce(&Bytes) -> std::result::Result<T, kafka_protocol::DecodeError>,
    ) -> Result<T> {
        self.submit(api, version, encode)
            .await?
            .finish(decode)
            .await
    }

    /// Encodes a request and hands it to the writer; the answer is awaited with
    /// [`Pending::finish`].
    async fn submit(
        &self,
        api: ApiKey,
        version: i16,
        encode: impl FnOnce(
            &mut BytesMut,
            &RequestHeader,
        ) -> std::result::Result<(), kafka_protocol::EncodeError>,
    ) -> Result<Pending> {
        let fail = |e: Error| e.with_api(api).with_broker(self.shared.addr.clone());
        self.check_open().map_err(fail)?;
        let (id, frame) = self.frame(api, version, encode).map_err(fail)?;
        let span = request_span(api, version, id, &self.shared.addr);
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        self.hand_over(id, frame, Reply::Response(tx))
            .instrument(span.clone())
            .await
            .map_err(fail)?;
        Ok(Pending {
            api,
            rx,
            started,
            timeout: self.request_timeout,
            shared: self.shared.clone(),
            span,
        })
    }

    /// Hands a frame to the writer task and counts it.
    async fn hand_over(&self, correlation_id: i32, frame: Frame, reply: Reply) -> Result<()> {
        let len = frame.len();
        let expects_response = !matches!(reply, Reply::Written(_));
        let sent = self
            .tx
            .send(Outgoing {
                correlation_id,
                frame,
                reply,
            })
            .await;
        if let Err(mpsc::error::SendError(unsent)) = sent {
            if let Reply::Callback(callback) = unsent.reply {
                // Counted as sent and failed, so the callback's count balances.
                self.shared.metrics.sent(len, true);
                callback.call(Err(self.closed()));
            }
            return Err(self.closed());
        }
        self.shared.metrics.sent(len, expects_response);
        Ok(())
    }

    /// Sends a request and returns a future of its answer that does not borrow the
    /// connection. Requests enqueued by one task go out in the order of the calls, so
    /// a producer can keep several requests in flight and know their order on the
    /// wire.
    pub async fn enqueue<R>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static>
    where
        R: Request,
        R::Response: Send + 'static,
    {
        let pending = self
            .submit(R::API_KEY, version, |buf, header| {
                encode_request(buf, header, request)
            })
            .await?;
        Ok(pending.finish(move |frame| {
            decode_response::<R::Response>(frame, version).map(|(_, body)| body)
        }))
    }

    /// Sends a request that gets no response (Produce with acks=0); returns once it
    /// is written.
    pub async fn send_without_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let api = R::API_KEY;
        let fail = |e: Error| e.with_api(api).with_broker(self.shared.addr.clone());
        self.check_open().map_err(fail)?;
        let (id, frame) = self
            .frame(api, version, |buf, header| {
                encode_request(buf, header, request)
            })
            .map_err(fail)?;
        let (tx, rx) = oneshot::channel();
        async {
            self.hand_over(id, frame, Reply::Written(tx))
                .await
                .map_err(fail)?;
            match tokio::time::timeout(self.request_timeout, rx).await {
                Err(_) => Err(fail(Error::new(ErrorKind::Timeout(self.request_timeout)))),
                Ok(Err(_)) => Err(fail(self.closed())),
                Ok(Ok(r)) => r.map_err(fail),
            }
        }
        .instrument(request_span(api, version, id, &self.shared.addr))
        .await
    }

    fn closed(&self) -> Error {
        self.shared.closed_or_ended()
    }

    /// ApiVersions: the newest request first; a broker that rejects it answers in v0,
    /// so fall back to v0.
    async fn negotiate(&self) -> Result<VersionTable> {
        let ours = ApiKey::ApiVersions.versions().max;
        let request = ApiVersionsRequest {
            client_software_name: StrBytes::from_static("kafka-rs"),
            client_software_version: StrBytes::from_static(env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let first = self.send_version(&request, ours).await;
        let response: ApiVersionsResponse = match first {
            Ok(r) if r.error_code == 0 => r,
            Err(e) if !matches!(e.kind(), ErrorKind::Decode(_)) => return Err(e),
            _ => {
                tracing::debug!(broker = %self.shared.addr, "ApiVersions v{ours} rejected; retrying with v0");
                self.send_version(&ApiVersionsRequest::default(), 0).await?
            }
        };
        Error::check_code(response.error_code, None)
            .map_err(|e| e.with_api(ApiKey::ApiVersions))?;
        Ok(VersionTable::from_response(&response))
    }

    /// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done.
    async fn authenticate(&mut self, config: &crate::sasl::SaslConfig) -> Result<()> {
        let mechanism = config.mechanism();
        let sasl_err =
            |m: String| Error::new(ErrorKind::Sasl(m)).with_broker(self.shared.addr.clone());
        let handshake = self
            .send(&SaslHandshakeRequest {
                mechanism: StrBytes::from_static(mechanism),
            })
            .await?;
        if handshake.error_code != 0 {
            let code = kafka_protocol::ErrorCode::from(handshake.error_code);
            let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            let message = if code == kafka_protocol::ErrorCode::UnsupportedSaslMechanism {
                format!(
                    "the broker does not enable {mechanism} (enabled: {})",
                    enabled.join(", ")
                )
            } else {
                format!("SaslHandshake for {mechanism} failed")
            };
            return Err(broker_sasl_error(code, message).with_broker(self.shared.addr.clone()));
        }
        let mut auth = crate::sasl::authenticator(config)
            .await
            .map_err(|e| sasl_err(e.to_string()))?;
        let mut message = auth.initial().map_err(|e| sasl_err(e.to_string()))?;
        loop {
            let response = self
                .send(&SaslAuthenticateRequest {
                    auth_bytes: Bytes::from(message),
                    unknown_tagged_fields: Default::default(),
                })
                .await?;
            if response.error_code != 0 {
                let code = kafka_protocol::ErrorCode::from(response.error_code);
                let said = response
                    .error_message
                    .as_deref()
                    .map(sanitize)
                    .unwrap_or_default();
                return Err(broker_sasl_error(
                    code,
                    format!("{mechanism} authentication failed: {said}"),
                )
                .with_broker(self.shared.addr.clone()));
            }
            if response.session_lifetime_ms > 0 {
                // Replace the connection at 85% of the session, as librdkafka re-authenticates.
                let lifetime = Duration::from_millis(response.session_lifetime_ms as u64);
                self.reauth_at = Some(Instant::now() + lifetime.mul_f64(0.85));
            }
            // SCRAM derives its keys with PBKDF2 here: keep that off the async workers.
            let server = response.auth_bytes;
            let (back, step) = tokio::task::spawn_blocking(move || {
                let step = auth.step(&server);
                (auth, step)
            })
            .await
            .map_err(|e| sasl_err(format!("{mechanism} step failed: {e}")))?;
            auth = back;
            match step.map_err(|e| sasl_err(e.to_string()))? {
                Some(next) => message = next,
                None => return Ok(()),
            }
        }
    }
}

/// The span of one request, a child of the caller's span: `request{api, version,
/// correlation_id, broker}` (the connection's reader and writer run in
/// `broker{addr}`). A disabled span costs no allocation.
fn request_span(api: ApiKey, version: i16, correlation_id: i32, addr: &str) -> tracing::Span {
    tracing::debug_span!(
        "request",
        api = api.name(),
        version,
        correlation_id,
        broker = addr
    )
}

/// A SASL failure the broker reported with an error code, kept as its code.
fn broker_sasl_error(code: kafka_protocol::ErrorCode, message: String) -> Error {
    Error::new(ErrorKind::Broker {
        code,
        message: Some(message),
    })
}

/// Broker text shown in errors: control characters removed, at most 512 characters.
fn sanitize(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(512).collect()
}
