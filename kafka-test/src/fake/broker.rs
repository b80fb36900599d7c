//! One fake broker: a listener, and per connection a loop that reads a request,
//! applies faults, hands it to the handlers and writes the answer, in order, as a Kafka
//! broker does.

use super::handlers;
use super::sasl::SaslSession;
use super::{Cluster, FaultAction};
use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{decode_request, encode_response_kind, frame_size, peek_request};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::{ApiKey, ResponseKind};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request frame the fake accepts (Kafka's `socket.request.max.bytes`).
const MAX_REQUEST: usize = 100 << 20;

pub(crate) struct BrokerHandle {
    pub(crate) node: i32,
    pub(crate) addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl BrokerHandle {
    pub(crate) async fn start(
        cluster: Arc<Cluster>,
        node: i32,
        addr: Option<SocketAddr>,
    ) -> std::io::Result<Self> {
        let listener = match addr {
            Some(a) => TcpListener::bind(a).await?,
            None => TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        cluster
            .addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, addr);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, cluster, node, stopped));
        Ok(BrokerHandle {
            node,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    cluster: Arc<Cluster>,
    node: i32,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let cluster = cluster.clone();
                let stopped = stopped.clone();
                connections.push(tokio::spawn(async move {
                    match cluster.config.tls.as_ref().map(|t| t.acceptor()) {
                        None => serve(tcp, cluster, node, peer, stopped).await,
                        Some(Ok(acceptor)) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve(tls, cluster, node, peer, stopped).await;
                            }
                        }
                        Some(Err(e)) => tracing::warn!(error = %e, "fake broker TLS setup failed"),
                    }
                }));
                connections.retain(|c| !c.is_finished());
            }
            _ = stopped.changed() => break,
        }
    }
    // Stopping drops every connection, as a crashed broker would.
    for c in connections {
        c.abort();
    }
}

/// Reads one request frame; `None` at end of stream or on a bad size.
async fn read_frame(read: &mut (impl AsyncRead + Unpin)) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    read.read_exact(&mut prefix).await.ok()?;
    let size = frame_size(&prefix, MAX_REQUEST).ok()??;
    let mut buf = BytesMut::with_capacity(size.min(1 << 16));
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        if (&mut *read).take(want).read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
    Some(buf.freeze())
}

/// Per-connection state.
pub(crate) struct Conn {
    pub(crate) node: i32,
    pub(crate) sasl: Option<SaslSession>,
    /// The client id of the last request header (DescribeGroups shows members').
    pub(crate) client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub(crate) host: String,
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    cluster: Arc<Cluster>,
    node: i32,
    peer: std::net::SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let (mut read, mut write) = tokio::io::split(stream);
    let mut conn = Conn {
        node,
        client_id: String::new(),
        host: format!("/{}", peer.ip()),
        sasl: cluster
            .config
            .sasl
            .clone()
            .map(|users| SaslSession::new(Arc::new(users))),
    };
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut read) => f,
            _ = stopped.changed() => None,
        };
        let Some(frame) = frame else { return };
        let Some(answer) = handle_frame(&cluster, &mut conn, frame).await else {
            // Kafka closes the connection on requests it cannot parse or serve.
            return;
        };
        if let Some(bytes) = answer {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}

/// The answer frame to a request frame: `Some(None)` for no answer (acks=0), `None` to
/// close the connection.
async fn handle_frame(
    cluster: &Arc<Cluster>,
    conn: &mut Conn,
    frame: Bytes,
) -> Option<Option<Bytes>> {
    let (key, version, correlation_id) = peek_request(&frame).ok()?;
    let api = ApiKey::from_key(key)?;
    let served = cluster.served_versions(api);
    let no_api_versions = cluster
        .no_api_versions
        .load(std::sync::atomic::Ordering::Acquire);
    if api == ApiKey::ApiVersions {
        if no_api_versions {
            return None;
        }
        if !served.is_some_and(|v| v.contains(version)) {
            // Kafka answers an ApiVersions it cannot parse in v0, with its versions,
            // so that the client can retry with one it knows.
            let response =
                handlers::api_versions(cluster, kafka_protocol::ErrorCode::UnsupportedVersion);
            return encode(correlation_id, ApiKey::ApiVersions, 0, &response.into());
        }
    } else if !served.is_some_and(|v| v.contains(version)) {
        tracing::debug!(
            api = api.name(),
            version,
            "fake broker: version not served; closing"
        );
        return None;
    }
    let (header, request) = decode_request(&frame).ok()?;
    if let Some(id) = &header.client_id {
        if conn.client_id != id.as_str() {
            conn.client_id = id.to_string();
        }
    }
    // Until SASL is done, only the SASL exchange (and ApiVersions) is allowed.
    if let Some(sasl) = &conn.sasl {
        if !sasl.is_authenticated()
            && !matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            return None;
        }
    }
    let response = match cluster.take_fault(conn.node, api) {
        Some(FaultAction::DropConnection) => return None,
        Some(FaultAction::Error(code)) => {
            cluster.count(api);
            handlers::error_response(&request, code, version)
        }
        Some(FaultAction::Delay(d)) => {
            tokio::time::sleep(d).await;
            cluster.count(api);
            handlers::handle(cluster, conn, request, version).await
        }
        Some(FaultAction::CorruptRecords) => {
            cluster.count(api);
            let mut answer = handlers::handle(cluster, conn, request, version).await;
            if let handlers::Answer::Respond(response) = &mut answer {
                if let kafka_protocol::messages::ResponseKind::Fetch(fetch) = response.as_mut() {
                    super::fetch::corrupt_records(fetch);
                }
            }
            answer
        }
        Some(FaultAction::PassThrough) | None => {
            cluster.count(api);
            handlers::handle(cluster, conn, request, version).await
        }
    };
    match response {
        handlers::Answer::Respond(mut response) => {
            let response = response.as_mut();
            response.retain_version(version);
            encode(header.correlation_id, api, version, response)
        }
        handlers::Answer::NoResponse => Some(None),
        handlers::Answer::Close => None,
    }
}

fn encode(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Option<Option<Bytes>> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    match encode_response_kind(&mut out, &header, version, response) {
        Ok(()) => Some(Some(out.freeze())),
        Err(e) => {
            // A bug in the fake: say so loudly, and close as a broker would.
            tracing::error!(api = api.name(), version, error = %e, "fake broker cannot encode its answer");
            eprintln!(
                "fake broker cannot encode its {} v{version} answer: {e}",
                api.name()
            );
            None
        }
    }
}
