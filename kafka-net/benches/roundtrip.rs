//! `Connection` on loopback against an in-process server, next to a raw-socket lower
//! bound that talks to the same server.
//!
//! - `roundtrip/*`: one request at a time, ApiVersions v3 and Metadata (one topic),
//!   through `Connection::send` (encode, writer task, reader task, correlation, decode)
//!   and through a plain `TcpStream` that writes the same pre-encoded request frame and
//!   reads the answer frame (size prefix and body) without decoding it.
//! - `pipelined/*`: 1,000 concurrent Metadata requests on one connection
//!   (`join_all` over `Connection::send`), and the raw lower bound: write 1,000
//!   pre-encoded frames while reading 1,000 answers.
//!
//! The server answers every request from a pre-encoded response frame (one per API and
//! version) with the correlation id patched in, in order, batching the answers to
//! whatever requests one read brought in, so that it costs little next to the client.
//! Everything runs on one multi-thread tokio runtime with 2 workers; the timed loops
//! run in a spawned task, as application code would.
//!
//! Run: `cargo bench -p kafka-net --bench roundtrip -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use bytes::{Buf, Bytes, BytesMut};
use criterion::{black_box, Criterion, Throughput};
use kafka_net::{BrokerMetrics, ClientConfig, Connection};
use kafka_protocol::frame::{
    encode_request, encode_response, frame_size, peek_request, request_header,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::{ApiKey, Request, StrBytes, Uuid};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// Requests in flight at once in the pipelined benchmarks.
const PIPELINE: usize = 1000;
const TOPIC: &str = "bench-topic";
const MAX_FRAME: usize = 1 << 20;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------
// Server

/// Every API at this crate's versions, except ApiVersions capped at v3, so that
/// `Connection::send(&ApiVersionsRequest)` picks v3.
fn api_versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: ApiKey::ALL
            .iter()
            .map(|k| ApiVersion {
                api_key: k.key(),
                min_version: k.versions().min,
                max_version: if *k == ApiKey::ApiVersions {
                    3
                } else {
                    k.versions().max
                },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// One broker, one topic with one partition led by it.
fn metadata_response() -> MetadataResponse {
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 0,
            host: StrBytes::from_static("127.0.0.1"),
            port: 9092,
            ..Default::default()
        }],
        cluster_id: Some(StrBytes::from_static("bench-cluster")),
        controller_id: 0,
        topics: vec![MetadataResponseTopic {
            name: Some(StrBytes::from_static(TOPIC)),
            topic_id: Uuid([7; 16]),
            partitions: vec![MetadataResponsePartition {
                partition_index: 0,
                leader_id: 0,
                leader_epoch: 1,
                replica_nodes: vec![0],
                isr_nodes: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The whole response frame (size prefix included) for `key` in `version`, with
/// correlation id 0 to be patched.
fn response_template(key: i16, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    match ApiKey::try_from(key).unwrap() {
        ApiKey::ApiVersions => encode_response(&mut out, 0, version, &api_versions_response()),
        ApiKey::Metadata => encode_response(&mut out, 0, version, &metadata_response()),
        other => panic!("the bench server does not answer {other:?}"),
    }
    .unwrap();
    out.freeze()
}

/// Answers every request in order from pre-encoded frames; one write per read.
async fn serve_connection(stream: TcpStream) {
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut templates: HashMap<(i16, i16), Bytes> = HashMap::new();
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some(size) = frame_size(&input, MAX_FRAME).unwrap() {
            if input.len() < 4 + size {
                break;
            }
            let (key, version, correlation_id) = peek_request(&input[4..4 + size]).unwrap();
            let template = templates
                .entry((key, version))
                .or_insert_with(|| response_template(key, version));
            let at = output.len();
            output.extend_from_slice(template);
            output[at + 4..at + 8].copy_from_slice(&correlation_id.to_be_bytes());
            input.advance(4 + size);
        }
        if !output.is_empty() {
            if wr.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        match rd.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Binds 127.0.0.1 port 0 and serves every connection; returns the address.
async fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream));
        }
    });
    addr
}

// ---------------------------------------------------------------------------------
// Clients

fn metadata_request() -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(StrBytes::from_static(TOPIC)),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: StrBytes::from_static("kafka-rs"),
        client_software_version: StrBytes::from_static("0.1.0"),
        ..Default::default()
    }
}

/// The frame `Connection` would send for `request` (same client id and version).
fn request_frame<R: Request>(request: &R, version: i16, client_id: &str) -> Bytes {
    let header = request_header(
        R::API_KEY,
        version,
        1,
        Some(StrBytes::from(client_id.to_string())),
    );
    let mut out = BytesMut::new();
    encode_request(&mut out, &header, request).unwrap();
    out.freeze()
}

/// A raw client: no correlation, no decoding; a reused read buffer.
struct Raw {
    stream: BufReader<TcpStream>,
    body: Vec<u8>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream: BufReader::with_capacity(64 * 1024, stream),
            body: Vec::with_capacity(64 * 1024),
        }
    }

    /// Reads one answer frame (size prefix and body); returns its body length.
    async fn read_answer(
        reader: &mut (impl tokio::io::AsyncRead + Unpin),
        body: &mut Vec<u8>,
    ) -> usize {
        let mut prefix = [0u8; 4];
        reader.read_exact(&mut prefix).await.unwrap();
        let size = frame_size(&prefix, MAX_FRAME).unwrap().unwrap();
        body.resize(size, 0);
        reader.read_exact(body).await.unwrap();
        size
    }

    async fn roundtrip(&mut self, frame: &[u8]) -> usize {
        self.stream.get_mut().write_all(frame).await.unwrap();
        Self::read_answer(&mut self.stream, &mut self.body).await
    }

    /// Writes `frames` (many request frames back to back) while reading `count`
    /// answers.
    async fn pipelined(&mut self, frames: &[u8], count: usize) -> usize {
        let (rd, mut wr) = self.stream.get_mut().split();
        let mut rd = BufReader::with_capacity(64 * 1024, rd);
        let body = &mut self.body;
        let write = async move { wr.write_all(frames).await.unwrap() };
        let read = async move {
            let mut total = 0;
            for _ in 0..count {
                total += Self::read_answer(&mut rd, body).await;
            }
            total
        };
        tokio::join!(write, read).1
    }
}

/// Everything the benchmarks share: the runtime, the server, one `Connection`, one raw
/// client, and the request frames the raw client sends.
struct Setup {
    rt: Runtime,
    conn: Arc<Connection>,
    raw: Arc<Mutex<Raw>>,
    api_versions_version: i16,
    metadata_version: i16,
    api_versions_frame: Bytes,
    metadata_frame: Bytes,
}

fn setup() -> Setup {
    let rt = runtime();
    let config = ClientConfig::default();
    let (conn, raw) = rt.block_on(async {
        let addr = start_server().await;
        let conn = Connection::connect(&addr, &config, Arc::new(BrokerMetrics::default()))
            .await
            .unwrap();
        (conn, Raw::connect(&addr).await)
    });
    let api_versions_version = conn.versions().version_for(ApiKey::ApiVersions).unwrap();
    let metadata_version = conn.versions().version_for(ApiKey::Metadata).unwrap();
    assert_eq!(api_versions_version, 3);
    let api_versions_frame = request_frame(
        &api_versions_request(),
        api_versions_version,
        &config.client_id,
    );
    let metadata_frame = request_frame(&metadata_request(), metadata_version, &config.client_id);
    Setup {
        rt,
        conn: Arc::new(conn),
        raw: Arc::new(Mutex::new(raw)),
        api_versions_version,
        metadata_version,
        api_versions_frame,
        metadata_frame,
    }
}

/// Runs `body(iters)` in a task on the runtime's workers and returns the time it
/// measured.
fn on_runtime<F, Fut>(rt: &Runtime, iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Duration> + Send + 'static,
{
    rt.block_on(rt.spawn(body(iters))).unwrap()
}

// ---------------------------------------------------------------------------------
// Benchmarks

fn roundtrip(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("roundtrip");

    let name = format!("ApiVersions v{}", s.api_versions_version);
    group.bench_function(format!("{name}/connection"), |b| {
        b.iter_custom(|iters| {
            let conn = s.conn.clone();
            on_runtime(&s.rt, iters, |iters| async move {
                let request = api_versions_request();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(conn.send(&request).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("{name}/raw"), |b| {
        b.iter_custom(|iters| {
            let (raw, frame) = (s.raw.clone(), s.api_versions_frame.clone());
            on_runtime(&s.rt, iters, |iters| async move {
                let mut raw = raw.lock().await;
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(raw.roundtrip(&frame).await);
                }
                start.elapsed()
            })
        })
    });

    let name = format!("Metadata v{} 1 topic", s.metadata_version);
    group.bench_function(format!("{name}/connection"), |b| {
        b.iter_custom(|iters| {
            let conn = s.conn.clone();
            on_runtime(&s.rt, iters, |iters| async move {
                let request = metadata_request();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(conn.send(&request).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("{name}/raw"), |b| {
        b.iter_custom(|iters| {
            let (raw, frame) = (s.raw.clone(), s.metadata_frame.clone());
            on_runtime(&s.rt, iters, |iters| async move {
                let mut raw = raw.lock().await;
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(raw.roundtrip(&frame).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("pipelined");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    group.sample_size(20);
    let name = format!("Metadata v{} x{PIPELINE}", s.metadata_version);
    group.bench_function(format!("{name}/connection"), |b| {
        b.iter_custom(|iters| {
            let conn = s.conn.clone();
            on_runtime(&s.rt, iters, |iters| async move {
                let request = metadata_request();
                let start = Instant::now();
                for _ in 0..iters {
                    let answers =
                        futures::future::join_all((0..PIPELINE).map(|_| conn.send(&request))).await;
                    for answer in answers {
                        black_box(answer.unwrap());
                    }
                }
                start.elapsed()
            })
        })
    });
    let frames: Bytes = s.metadata_frame.repeat(PIPELINE).into();
    group.bench_function(format!("{name}/raw"), |b| {
        b.iter_custom(|iters| {
            let (raw, frames) = (s.raw.clone(), frames.clone());
            on_runtime(&s.rt, iters, |iters| async move {
                let mut raw = raw.lock().await;
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(raw.pipelined(&frames, PIPELINE).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    roundtrip(&mut criterion);
    criterion.final_summary();
}
