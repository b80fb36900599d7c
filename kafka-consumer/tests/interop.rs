//! Our consumer judged by an independent client: librdkafka (the `confluent-kafka` PyPI
//! package, run by `tests/python/produce_and_commit.py`) produces records with every
//! codec, and [`PartitionReader`] and [`Fetcher`] must read back exactly what it wrote
//! (keys, values, headers in order including an empty one, timestamps, the offsets its
//! delivery reports gave); group offsets committed by either client must be read by
//! the other. Runs against the in-process fake cluster and, when `KAFKA_BOOTSTRAP`
//! names one, against that cluster too. With `KAFKA_QUIRKS=tansu` commit metadata is
//! expected to be lost (Tansu keeps none). The test command installs confluent-kafka.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_consumer::offsets::OffsetCoordinator;
use kafka_consumer::{FetchOptions, Fetcher, FetcherConfig, PartitionReader, StartOffset};
use kafka_net::{Client, NewTopic};
use kafka_protocol::compression::Compression;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::{decode_record_sets, DecodeOptions, Record, RecordSet};
use kafka_protocol::ApiKey;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// What the script writes: `compression.type` values and the codec each must give.
const CODECS: [(&str, Compression); 5] = [
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];
/// Records per topic, partitions per topic and the first timestamp, as in the script.
const N: usize = 100;
const PARTITIONS: i32 = 3;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// librdkafka's OFFSET_INVALID: nothing committed.
const OFFSET_INVALID: i64 = -1001;

mod common;
use common::{envs as clusters, unique, within_limit, Env};

/// The fake (three brokers, so partitions have different leaders), and the named
/// cluster when there is one.
async fn envs() -> Vec<Env> {
    clusters(3).await
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    within_limit(Duration::from_secs(240), f).await
}

/// Creates a topic and waits until every partition answers offset lookups.
async fn create_topic(env: &Env, name: &str) {
    env.client
        .create_topics(vec![NewTopic::new(name, PARTITIONS)])
        .await
        .unwrap();
    for p in 0..PARTITIONS {
        let mut tries = 0;
        while env.client.offset_latest(name, p).await.is_err() {
            tries += 1;
            assert!(tries < 100, "{name}/{p} never got a leader");
            let _ = env.client.refresh_metadata().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs the script with `args`, fails the test unless it succeeds, and returns the
/// JSON it printed last.
async fn python(env: &Env, mode: &str, topic: &str, args: &[String]) -> Json {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/produce_and_commit.py"
    );
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(interpreter)
        .arg(script)
        .arg(mode)
        .arg(&env.bootstrap)
        .arg(topic)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the script finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: `{mode} {topic} {args:?}` failed:\n{stdout}\n{}",
        env.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .last()
        .expect("the script printed its summary");
    Json::parse(line)
}

/// Fast fetch settings.
fn fetcher_config() -> FetcherConfig {
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(100);
    let mut c = FetcherConfig::default();
    c.fetch = fetch;
    c.retry_backoff = Duration::from_millis(20);
    c
}

/// One record as read, in a form that prints every byte when it differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Bytes>)>,
    timestamp: i64,
}

impl From<Record> for Rec {
    fn from(r: Record) -> Self {
        Rec {
            offset: r.offset,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|h| (h.key.as_str().to_string(), h.value))
                .collect(),
            timestamp: r.timestamp,
        }
    }
}

impl From<kafka_consumer::Message> for Rec {
    fn from(m: kafka_consumer::Message) -> Self {
        Rec::from(Record {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: m.headers,
        })
    }
}

/// Record `i` of the codec's topic as the script wrote it, at `offset`.
fn written(codec: &str, i: usize, offset: i64) -> Rec {
    Rec {
        offset,
        key: Some(Bytes::from(format!("k-{i}"))),
        value: Some(Bytes::from(format!("v-{codec}-{i}"))),
        headers: vec![
            ("h1".into(), Some(Bytes::from(i.to_string()))),
            ("h2".into(), Some(Bytes::new())),
        ],
        timestamp: BASE_TIMESTAMP + i as i64,
    }
}

/// What librdkafka's delivery reports said of one topic: record i went to
/// (partition, offset) with timestamp.
struct Delivered {
    codec: &'static str,
    compression: Compression,
    reports: Vec<(i32, i64, i64)>,
}

impl Delivered {
    /// The records of a partition as written, in offset order.
    fn partition(&self, partition: i32) -> Vec<Rec> {
        let mut out: Vec<Rec> = (0..N)
            .filter(|i| (i % PARTITIONS as usize) as i32 == partition)
            .map(|i| written(self.codec, i, self.reports[i].1))
            .collect();
        out.sort_by_key(|r| r.offset);
        out
    }
}

/// Reads the produce summary, checking librdkafka's own reports: each record in the
/// partition asked for, with its timestamp, and offsets consecutive from 0.
fn delivered(summary: &Json, prefix: &str) -> BTreeMap<String, Delivered> {
    let mut out = BTreeMap::new();
    for (codec, compression) in CODECS {
        let topic = format!("{prefix}-{codec}");
        let t = summary.get("topics").get(&topic);
        assert_eq!(t.get("codec").str(), Some(codec));
        let reports: Vec<(i32, i64, i64)> = t
            .get("delivered")
            .array()
            .iter()
            .map(|d| (d.at(0).int() as i32, d.at(1).int(), d.at(2).int()))
            .collect();
        assert_eq!(reports.len(), N, "{topic}: delivery reports");
        for (i, &(p, _, ts)) in reports.iter().enumerate() {
            assert_eq!(p, (i % PARTITIONS as usize) as i32, "{topic}: record {i}");
            assert_eq!(ts, BASE_TIMESTAMP + i as i64, "{topic}: record {i}");
        }
        for p in 0..PARTITIONS {
            let mut offsets: Vec<i64> = reports.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
            offsets.sort_unstable();
            let want: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(offsets, want, "{topic}/{p}: librdkafka's offsets");
        }
        out.insert(
            topic,
            Delivered {
                codec,
                compression,
                reports,
            },
        );
    }
    out
}

/// Compares what a reader read of a partition with what was written; every
/// difference goes into `diffs`.
fn compare(diffs: &mut Vec<String>, at: &str, got: &[Rec], want: &[Rec]) {
    if let Some(first) = got.first() {
        for (j, r) in got.iter().enumerate() {
            if r.offset != first.offset + j as i64 {
                diffs.push(format!(
                    "{at}: offsets not consecutive: {} after {}",
                    r.offset,
                    got[j - 1].offset
                ));
                break;
            }
        }
    }
    if got.len() != want.len() {
        diffs.push(format!(
            "{at}: {} records read, {} written",
            got.len(),
            want.len()
        ));
    }
    for (g, w) in got.iter().zip(want) {
        if g != w {
            diffs.push(format!("{at}: read {g:?}\n    written {w:?}"));
        }
    }
}

/// The codecs of a partition's batches as stored (one raw Fetch of everything from
/// offset 0), to show the records really went through the codec under test.
async fn stored_codecs(env: &Env, topic: &str, partition: i32) -> Vec<(Compression, usize)> {
    let version = env.client.api_version(ApiKey::Fetch).await.unwrap();
    let mut fetch_topic = FetchTopic {
        partitions: vec![FetchPartition {
            partition,
            fetch_offset: 0,
            partition_max_bytes: 1 << 20,
            log_start_offset: -1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            ..Default::default()
        }],
        ..Default::default()
    };
    if version >= 13 {
        fetch_topic.topic_id = env.client.metadata().await.unwrap().topics[topic].id;
    } else {
        fetch_topic.topic = topic.to_string().into();
    }
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![fetch_topic],
        ..Default::default()
    };
    let response = env.client.request(request).await.unwrap();
    let p = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .unwrap();
    assert_eq!(p.error_code, 0, "{topic}/{partition}: raw fetch");
    let bytes = p.records.clone().unwrap_or_default();
    decode_record_sets(&bytes, &DecodeOptions::default())
        .unwrap()
        .sets
        .into_iter()
        .map(|set| match set {
            RecordSet::Batch(b) => (b.compression, b.records.len()),
            RecordSet::Legacy(m) => panic!("{topic}/{partition}: legacy messages {m:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_librdkafka_produces_is_read_back_exactly() {
    within(async {
        for env in envs().await {
            let prefix = unique("interop-codec");
            for (codec, _) in CODECS {
                create_topic(&env, &format!("{prefix}-{codec}")).await;
            }
            let summary = python(&env, "produce", &prefix, &[]).await;
            let topics = delivered(&summary, &prefix);
            let mut diffs = Vec::new();

            // The codec under test is the one the batches are stored with.
            for (topic, d) in &topics {
                for p in 0..PARTITIONS {
                    let codecs = stored_codecs(&env, topic, p).await;
                    if codecs.iter().any(|(c, _)| *c != d.compression) {
                        diffs.push(format!(
                            "{}: {topic}/{p}: batches stored as {codecs:?}",
                            env.name
                        ));
                    }
                }
            }

            // PartitionReader: each partition from the earliest offset.
            for (topic, d) in &topics {
                for p in 0..PARTITIONS {
                    let want = d.partition(p);
                    let reader = PartitionReader::new(
                        env.client.clone(),
                        topic.clone(),
                        p,
                        StartOffset::Earliest,
                        fetcher_config(),
                    )
                    .unwrap();
                    let mut got = Vec::new();
                    for _ in 0..want.len() {
                        got.push(Rec::from(reader.read_message().await.unwrap()));
                    }
                    let at = format!("{}: PartitionReader {topic}/{p}", env.name);
                    compare(&mut diffs, &at, &got, &want);
                    let lag = reader.read_lag().await.unwrap();
                    if lag != 0 {
                        diffs.push(format!("{at}: {lag} records after the last written"));
                    }
                    reader.close();
                }
            }

            // Fetcher: every partition of every topic at once.
            let fetcher = Fetcher::new(env.client.clone(), fetcher_config()).unwrap();
            for topic in topics.keys() {
                for p in 0..PARTITIONS {
                    fetcher.assign(topic, p, StartOffset::Earliest);
                }
            }
            let mut got: BTreeMap<(String, i32), (Vec<Rec>, i64)> = BTreeMap::new();
            let mut n = 0;
            while n < topics.len() * N {
                let batch = fetcher.next_batch().await.unwrap().unwrap();
                n += batch.records.len();
                let entry = got
                    .entry((batch.topic.clone(), batch.partition))
                    .or_default();
                entry.0.extend(batch.records.into_iter().map(Rec::from));
                entry.1 = batch.high_watermark;
            }
            fetcher.close();
            for (topic, d) in &topics {
                for p in 0..PARTITIONS {
                    let want = d.partition(p);
                    let (records, high_watermark) =
                        got.remove(&(topic.clone(), p)).unwrap_or_default();
                    let at = format!("{}: Fetcher {topic}/{p}", env.name);
                    compare(&mut diffs, &at, &records, &want);
                    if high_watermark != want.len() as i64 {
                        diffs.push(format!("{at}: high watermark {high_watermark}"));
                    }
                }
            }

            assert!(
                diffs.is_empty(),
                "{} differences:\n{}",
                diffs.len(),
                diffs.join("\n")
            );
            eprintln!(
                "{}: {} topics ({}) read back exactly by PartitionReader and Fetcher",
                env.name,
                topics.len(),
                CODECS.map(|c| c.0).join(", ")
            );
        }
    })
    .await;
}

/// Commit metadata as read back (Tansu keeps none).
fn meta(env: &Env, m: &str) -> Option<String> {
    (!env.tansu).then(|| m.to_string())
}

/// Commit metadata from confluent-kafka-python without the NUL it sends: it passes
/// librdkafka `metadata_size = strlen(metadata) + 1` (`c_parts_from_py`), so "m" is
/// committed as the 2 bytes "m\0", and any other client reads them so. librdkafka's
/// own `committed()` hides the NUL, reading the metadata as a C string.
fn without_nul(m: String) -> String {
    m.strip_suffix('\0').map(str::to_string).unwrap_or(m)
}

/// The group's offsets as librdkafka's `committed()` reads them: partition ->
/// (offset, metadata; empty metadata as `None`).
async fn librdkafka_committed(
    env: &Env,
    topic: &str,
    group: &str,
) -> BTreeMap<i32, (i64, Option<String>)> {
    let out = python(env, "committed", topic, &[group.to_string()]).await;
    let Json::Obj(offsets) = out.get("offsets") else {
        panic!("offsets: {out:?}");
    };
    offsets
        .iter()
        .map(|(p, o)| {
            let metadata = o.get("metadata").str().filter(|m| !m.is_empty());
            (
                p.parse().unwrap(),
                (o.get("offset").int(), metadata.map(str::to_string)),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_shared_with_librdkafka() {
    within(async {
        for env in envs().await {
            let topic = unique("interop-offsets");
            create_topic(&env, &topic).await;
            let group = unique("interop-group");
            let ours = OffsetCoordinator::new(env.client.clone(), &group);

            // Ours -> librdkafka; partition 2 has nothing committed.
            ours.commit(&topic, 0, 10, Some("ours-0")).await.unwrap();
            ours.commit(&topic, 1, 20, Some("ours-1")).await.unwrap();
            let theirs = librdkafka_committed(&env, &topic, &group).await;
            let want = BTreeMap::from([
                (0, (10, meta(&env, "ours-0"))),
                (1, (20, meta(&env, "ours-1"))),
                (2, (OFFSET_INVALID, None)),
            ]);
            assert_eq!(theirs, want, "{}: librdkafka reads our commits", env.name);

            // librdkafka -> ours: it overwrites partition 1 and commits partition 2.
            let specs = ["1:21:theirs-1", "2:32:theirs-2"].map(String::from);
            let mut args = vec![group.clone()];
            args.extend(specs);
            let done = python(&env, "commit", &topic, &args).await;
            assert_eq!(done.get("committed").array().len(), 2);
            for (p, want) in [
                (0, Some((10, meta(&env, "ours-0")))),
                (1, Some((21, meta(&env, "theirs-1")))),
                (2, Some((32, meta(&env, "theirs-2")))),
            ] {
                let got = ours.fetch(&topic, p).await.unwrap();
                assert_eq!(
                    got.map(|(o, m)| (o, m.map(without_nul))),
                    want,
                    "{}: we read librdkafka's commit of {p}",
                    env.name
                );
            }

            // And back: our overwrite of its commit is what it reads.
            ours.commit(&topic, 2, 33, Some("ours-2")).await.unwrap();
            let theirs = librdkafka_committed(&env, &topic, &group).await;
            assert_eq!(
                theirs.get(&2),
                Some(&(33, meta(&env, "ours-2"))),
                "{}",
                env.name
            );

            // A group nobody committed for: nothing, on both sides.
            let empty = unique("interop-empty");
            let theirs = librdkafka_committed(&env, &topic, &empty).await;
            assert!(
                theirs.values().all(|(o, _)| *o == OFFSET_INVALID),
                "{theirs:?}"
            );
            let nobody = OffsetCoordinator::new(env.client.clone(), &empty);
            assert_eq!(nobody.fetch(&topic, 0).await.unwrap(), None);
            eprintln!("{}: offsets shared both ways with librdkafka", env.name);
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Just enough JSON to read the script's summaries (no JSON crate is a dependency).

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters in {text}");
        v
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Arr(items) => items,
            _ => panic!("not an array: {self:?}"),
        }
    }

    fn at(&self, i: usize) -> &Json {
        &self.array()[i]
    }

    fn int(&self) -> i64 {
        match self {
            Json::Num(n) => n.parse().unwrap(),
            _ => panic!("not a number: {self:?}"),
        }
    }

    /// The string; `None` for null.
    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            Json::Null => None,
            _ => panic!("not a string: {self:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn next(&mut self) -> u8 {
        let b = self.s[self.i];
        self.i += 1;
        b
    }

    fn expect(&mut self, word: &str) {
        assert!(
            self.s[self.i..].starts_with(word.as_bytes()),
            "{word} expected"
        );
        self.i += word.len();
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(fields);
                }
                loop {
                    self.ws();
                    let key = self.string();
                    self.ws();
                    self.expect(":");
                    fields.push((key, self.value()));
                    self.ws();
                    match self.next() {
                        b',' => {}
                        b'}' => return Json::Obj(fields),
                        b => panic!("unexpected {:?} in an object", b as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    match self.next() {
                        b',' => {}
                        b']' => return Json::Arr(items),
                        b => panic!("unexpected {:?} in an array", b as char),
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b'n' => {
                self.expect("null");
                Json::Null
            }
            b't' => {
                self.expect("true");
                Json::Bool(true)
            }
            b'f' => {
                self.expect("false");
                Json::Bool(false)
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b.is_ascii_digit() || b"-+.eE".contains(b))
                {
                    self.i += 1;
                }
                assert!(self.i > start, "a value expected at {start}");
                Json::Num(String::from_utf8(self.s[start..self.i].to_vec()).unwrap())
            }
        }
    }

    fn string(&mut self) -> String {
        self.expect("\"");
        let mut out = String::new();
        loop {
            match self.next() {
                b'"' => return out,
                b'\\' => match self.next() {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'u' => {
                        let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                        self.i += 4;
                        let c = u32::from_str_radix(hex, 16).unwrap();
                        out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                    b => out.push(b as char),
                },
                b => {
                    // Multi-byte UTF-8 passes through byte by byte.
                    let start = self.i - 1;
                    let mut end = self.i;
                    if b >= 0x80 {
                        while self.s.get(end).is_some_and(|c| (c & 0xC0) == 0x80) {
                            end += 1;
                        }
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                    self.i = end;
                }
            }
        }
    }
}
