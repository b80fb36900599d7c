//! Our group member and librdkafka's (the `confluent-kafka` PyPI package, driven by
//! `tests/python/member.py`) in one consumer group, with the `range` and the
//! `cooperative-sticky` assignors, and with KIP-848's consumer protocol
//! (`group.protocol=consumer` on both sides, the broker's `uniform` assignor; "consumer"
//! below), against the in-process fake cluster and, when
//! `KAFKA_BOOTSTRAP` is set, against that cluster too (fresh topic and group names).
//!
//! On a topic of 6 partitions, 20 records each:
//!
//! 1. ours joins (and leads), then librdkafka joins: once the rebalance settles, the
//!    two assignments are disjoint, 3 and 3, and cover the 6 partitions (with
//!    cooperative-sticky, ours revoked only the 3 that moved);
//! 2. librdkafka consumes and commits offsets 0-4 of its partitions, ours 0-4 of its;
//! 3. librdkafka leaves: ours takes every partition and starts each former librdkafka
//!    partition at offset 5 (what librdkafka committed; nothing before it is re-read);
//! 4. ours commits 12 everywhere and leaves; a new librdkafka member starts every
//!    partition at 12;
//! 5. a new member of ours joins the group librdkafka now leads (so librdkafka's
//!    assignor reads our subscription): the assignments are again disjoint, 3 and 3,
//!    and complete (with cooperative-sticky, librdkafka revoked only what moved), and
//!    ours starts at what librdkafka committed.
//!
//! A step that does not happen within a minute fails with both members' logs: ours
//! (events and generation changes, with Unix times to line up with librdkafka's) and
//! the script's output. `INTEROP_DEBUG=cgrp` (any librdkafka `debug` value) adds
//! librdkafka's debug log; `PYTHON` names the interpreter (default `python3`).
//!
//! Against Tansu every JoinGroup round takes about 3 s, so the cooperative hand-over
//! to a joining member of ours (three or four rounds) takes 10-15 s there.

#![allow(clippy::unwrap_used)]

use kafka_consumer::offsets::OffsetCoordinator;
use kafka_consumer::{FetchOptions, FetcherConfig, Message, StartOffset};
use kafka_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use kafka_group::{GroupConfig, GroupConsumer, GroupEvent, GroupProtocol, Topics};
use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 6;
/// Records produced per partition before the hand-overs (offsets 0..20).
const RECORDS: i64 = 20;
/// The first librdkafka member consumes and commits offsets below this.
const PY_COMMITS: i64 = 5;
/// Our member commits offsets below this before it leaves.
const OURS_COMMITS: i64 = 12;
/// How long the assignments must stay disjoint and complete to count as settled.
const SETTLED_FOR: Duration = Duration::from_secs(3);
/// How long one step (a rebalance, a hand-over, consuming) may take.
const STEP: Duration = Duration::from_secs(60);

// ---- Where the group runs ---------------------------------------------------------

struct Target {
    bootstrap: String,
    _fake: Option<FakeCluster>,
}

async fn fake() -> Target {
    let fake = FakeCluster::start(FakeClusterConfig::default())
        .await
        .unwrap();
    Target {
        bootstrap: fake.bootstrap(),
        _fake: Some(fake),
    }
}

fn named() -> Option<Target> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").ok()?;
    Some(Target {
        bootstrap,
        _fake: None,
    })
}

async fn client(t: &Target) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(20);
    KafkaClient::connect(&[t.bootstrap.as_str()], config)
        .await
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn all() -> BTreeSet<i32> {
    (0..PARTITIONS).collect()
}

// ---- Our member ------------------------------------------------------------------

struct Ours {
    member: GroupConsumer,
    topic: String,
    seen: Arc<Mutex<Vec<Message>>>,
    events: Arc<Mutex<Vec<String>>>,
    /// Every partition revoked or lost so far.
    revoked: Arc<Mutex<BTreeSet<i32>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ours {
    async fn join(client: &KafkaClient, topic: &str, group: &str, assignor: &str) -> Ours {
        let assignor_name = assignor;
        let mut c = GroupConfig::new(group);
        c.session_timeout = Duration::from_secs(6);
        c.heartbeat_interval = Duration::from_millis(500);
        c.max_poll_interval = Duration::from_secs(30);
        let assignor: Arc<dyn Assignor> = match assignor {
            "range" => Arc::new(RangeAssignor),
            _ => Arc::new(CooperativeStickyAssignor),
        };
        c.assignors = vec![assignor];
        if strategy_is_kip848(assignor_name) {
            c.group_protocol = GroupProtocol::Consumer;
        }
        c.auto_commit = false;
        c.start = StartOffset::Earliest;
        let mut fetcher = FetcherConfig::default();
        let mut fetch = FetchOptions::default();
        fetch.max_wait = Duration::from_millis(100);
        fetcher.fetch = fetch;
        c.fetcher = fetcher;
        let member = GroupConsumer::subscribe(client.clone(), Topics::Names(vec![topic.into()]), c)
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<Message>>> = Arc::default();
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let revoked: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let started = Instant::now();
        let tasks = vec![
            tokio::spawn({
                let (member, seen) = (member.clone(), seen.clone());
                async move {
                    while let Some(m) = member.next().await {
                        match m {
                            Ok(m) => seen.lock().unwrap().push(m),
                            Err(e) => tracing::debug!(error = %e, "ours: next failed"),
                        }
                    }
                }
            }),
            tokio::spawn({
                let (member, events, revoked) = (member.clone(), events.clone(), revoked.clone());
                async move {
                    while let Some(e) = member.event().await {
                        if let GroupEvent::Revoked(ps) | GroupEvent::Lost(ps) = &e {
                            revoked.lock().unwrap().extend(parts(ps));
                        }
                        let e = match e {
                            GroupEvent::Assigned(ps) => format!("assigned {:?}", parts(&ps)),
                            GroupEvent::Revoked(ps) => format!("revoked {:?}", parts(&ps)),
                            GroupEvent::Lost(ps) => format!("lost {:?}", parts(&ps)),
                            GroupEvent::Error(e) => format!("error {e}"),
                            other => format!("{other:?}"),
                        };
                        let (id, generation) = member.member();
                        events
                            .lock()
                            .unwrap()
                            .push(format!("{} gen {generation} {id}: {e}", stamp(started)));
                    }
                }
            }),
            // Generation changes, which events alone do not show (an empty assignment
            // has none).
            tokio::spawn({
                let (member, events) = (member.clone(), events.clone());
                async move {
                    let mut last = (String::new(), 0);
                    loop {
                        let now = member.member();
                        if now != last {
                            events.lock().unwrap().push(format!(
                                "{} now member {:?} generation {}",
                                stamp(started),
                                now.0,
                                now.1
                            ));
                            last = now;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }),
        ];
        Ours {
            member,
            topic: topic.into(),
            seen,
            events,
            revoked,
            tasks,
        }
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.member
            .assignment()
            .into_iter()
            .filter(|(t, _)| *t == self.topic)
            .map(|(_, p)| p)
            .collect()
    }

    /// Offsets seen per partition, from message `from` of the log on.
    fn offsets(&self, from: usize) -> BTreeMap<i32, Vec<i64>> {
        let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for m in self.seen.lock().unwrap().iter().skip(from) {
            out.entry(m.partition).or_default().push(m.offset);
        }
        out
    }

    fn seen_count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Marks every message seen with an offset in `range` done (again: repeats are
    /// ignored) and commits.
    async fn commit_below(&self, range: std::ops::Range<i64>) {
        let seen = self.seen.lock().unwrap().clone();
        for m in seen.iter().filter(|m| range.contains(&m.offset)) {
            self.member.done(m);
        }
        if let Err(e) = self.member.commit().await {
            self.events
                .lock()
                .unwrap()
                .push(format!("commit failed: {e}"));
        }
    }

    fn log(&self) -> String {
        format!(
            "ours: assignment {:?}, member {:?}\n  {}",
            self.partitions(),
            self.member.member(),
            self.events.lock().unwrap().join("\n  ")
        )
    }

    async fn close(self) {
        let r = tokio::time::timeout(Duration::from_secs(20), self.member.close()).await;
        for t in &self.tasks {
            t.abort();
        }
        let log = self.log();
        assert!(matches!(r, Ok(Ok(()))), "closing our member: {r:?}\n{log}");
    }
}

/// Seconds since `started`, and the Unix time (as librdkafka's debug log prints it).
fn stamp(started: Instant) -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:>6.2}s ({:.3})",
        started.elapsed().as_secs_f64(),
        unix.as_secs_f64()
    )
}

fn parts(ps: &[(String, i32)]) -> Vec<i32> {
    ps.iter().map(|(_, p)| *p).collect()
}

// ---- The librdkafka member -------------------------------------------------------

#[derive(Default)]
struct PyState {
    /// The last assignment reported; `None` before the first.
    assignment: Option<BTreeSet<i32>>,
    first: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
    /// Every partition revoked or lost so far.
    revoked: BTreeSet<i32>,
    errors: Vec<String>,
    closed: bool,
    /// Its stdout ended (it exited).
    ended: bool,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

struct Py {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    state: Arc<Mutex<PyState>>,
    readers: Vec<JoinHandle<()>>,
}

impl Py {
    fn start(
        name: &'static str,
        t: &Target,
        topic: &str,
        group: &str,
        strategy: &str,
        stop_at: i64,
    ) -> Py {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/member.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args([&t.bootstrap, topic, group, strategy])
            .arg(stop_at.to_string())
            .arg("150")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let state: Arc<Mutex<PyState>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers = vec![
            tokio::spawn({
                let state = state.clone();
                async move {
                    let mut lines = BufReader::new(stdout).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut s = state.lock().unwrap();
                        apply(&mut s, &line);
                        s.stdout.push(line);
                    }
                    state.lock().unwrap().ended = true;
                }
            }),
            tokio::spawn({
                let state = state.clone();
                async move {
                    let mut lines = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        state.lock().unwrap().stderr.push(line);
                    }
                }
            }),
        ];
        Py {
            name,
            stdin: child.stdin.take(),
            child,
            state,
            readers,
        }
    }

    fn partitions(&self) -> Option<BTreeSet<i32>> {
        self.state.lock().unwrap().assignment.clone()
    }

    /// Panics when the script has exited before being asked to.
    fn alive(&self) {
        if self.state.lock().unwrap().ended {
            panic!("{} exited early\n{}", self.name, self.log());
        }
    }

    fn revoked(&self) -> BTreeSet<i32> {
        self.state.lock().unwrap().revoked.clone()
    }

    fn first(&self) -> BTreeMap<i32, i64> {
        self.state.lock().unwrap().first.clone()
    }

    fn committed(&self) -> BTreeMap<i32, i64> {
        self.state.lock().unwrap().committed.clone()
    }

    fn log(&self) -> String {
        let s = self.state.lock().unwrap();
        // Everything with INTEROP_DEBUG (librdkafka's debug log), else the end.
        let keep = if std::env::var_os("INTEROP_DEBUG").is_some() {
            usize::MAX
        } else {
            60
        };
        let tail = |v: &[String]| v[v.len().saturating_sub(keep)..].join("\n  ");
        format!(
            "{}: assignment {:?}, errors {:?}\n stdout:\n  {}\n stderr:\n  {}",
            self.name,
            s.assignment,
            s.errors,
            tail(&s.stdout),
            tail(&s.stderr)
        )
    }

    /// Closes its stdin: it closes its consumer (leaving the group) and exits.
    async fn stop(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        let log = self.log();
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()) && self.state.lock().unwrap().closed,
            "{} did not exit cleanly ({status:?})\n{log}",
            self.name
        );
    }
}

/// Applies one line of the script's output.
fn apply(s: &mut PyState, line: &str) {
    let Some(Json::Obj(o)) = Json::parse(line) else {
        return;
    };
    let int = |k: &str| match o.get(k) {
        Some(Json::Num(n)) => Some(*n as i64),
        _ => None,
    };
    match o.get("event") {
        Some(Json::Str(e)) if e == "assignment" => {
            let ints = |k: &str| -> Option<BTreeSet<i32>> {
                match o.get(k) {
                    Some(Json::Arr(ps)) => Some(
                        ps.iter()
                            .filter_map(|p| match p {
                                Json::Num(n) => Some(*n as i32),
                                _ => None,
                            })
                            .collect(),
                    ),
                    _ => None,
                }
            };
            if let Some(ps) = ints("partitions") {
                s.assignment = Some(ps);
            }
            if matches!(o.get("change"), Some(Json::Str(c)) if c != "assign") {
                s.revoked.extend(ints("delta").unwrap_or_default());
            }
        }
        Some(Json::Str(e)) if e == "first" => {
            if let (Some(p), Some(off)) = (int("partition"), int("offset")) {
                s.first.insert(p as i32, off);
            }
        }
        Some(Json::Str(e)) if e == "committed" => {
            if let (Some(p), Some(off)) = (int("partition"), int("offset")) {
                s.committed.insert(p as i32, off);
            }
        }
        Some(Json::Str(e)) if e == "error" => s.errors.push(line.into()),
        Some(Json::Str(e)) if e == "closed" => s.closed = true,
        _ => {}
    }
}

/// Just enough JSON for the script's lines (the crate has no JSON dependency).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn parse(text: &str) -> Option<Json> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut o = BTreeMap::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Obj(o));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value()? else {
                        return None;
                    };
                    self.eat(b':')?;
                    o.insert(k, self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Obj(o));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Arr(a));
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match *self.s.get(self.i)? {
                        b'"' => {
                            self.i += 1;
                            return Some(Json::Str(out));
                        }
                        b'\\' => {
                            let c = *self.s.get(self.i + 1)?;
                            self.i += 2;
                            match c {
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'b' => out.push('\u{8}'),
                                b'f' => out.push('\u{c}'),
                                b'u' => {
                                    let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?)
                                        .ok()?;
                                    self.i += 4;
                                    let code = u32::from_str_radix(hex, 16).ok()?;
                                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                }
                                c => out.push(c as char),
                            }
                        }
                        _ => {
                            let start = self.i;
                            while self
                                .s
                                .get(self.i)
                                .is_some_and(|c| *c != b'"' && *c != b'\\')
                            {
                                self.i += 1;
                            }
                            out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
                        }
                    }
                }
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
                {
                    self.i += 1;
                }
                match std::str::from_utf8(&self.s[start..self.i]).ok()? {
                    "null" => Some(Json::Null),
                    "true" => Some(Json::Bool(true)),
                    "false" => Some(Json::Bool(false)),
                    n => n.parse().ok().map(Json::Num),
                }
            }
        }
    }
}

// ---- Steps -----------------------------------------------------------------------

async fn wait_until(what: &str, f: impl Fn() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + STEP;
    while !f() {
        if Instant::now() >= deadline {
            panic!("{what} did not happen within {STEP:?}\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the two assignments are disjoint, cover every partition and stay so for
/// [`SETTLED_FOR`]; returns them.
async fn settled(ours: &Ours, py: &Py) -> (BTreeSet<i32>, BTreeSet<i32>) {
    let deadline = Instant::now() + STEP;
    let mut since: Option<(Instant, BTreeSet<i32>, BTreeSet<i32>)> = None;
    let mut overlaps = Vec::new();
    loop {
        let a = ours.partitions();
        // `None` until librdkafka has been through its first rebalance.
        py.alive();
        let reported = py.partitions();
        let p = reported.clone().unwrap_or_default();
        let overlap: BTreeSet<_> = a.intersection(&p).copied().collect();
        if !overlap.is_empty() && overlaps.last() != Some(&overlap) {
            overlaps.push(overlap.clone());
        }
        let complete = a.union(&p).copied().collect::<BTreeSet<_>>() == all();
        if reported.is_some() && complete && overlap.is_empty() {
            match &since {
                Some((at, sa, sp)) if *sa == a && *sp == p => {
                    if at.elapsed() >= SETTLED_FOR {
                        return (a, p);
                    }
                }
                _ => since = Some((Instant::now(), a.clone(), p.clone())),
            }
        } else {
            since = None;
        }
        if Instant::now() >= deadline {
            panic!(
                "the assignments did not settle: ours {a:?}, {} {p:?}; overlaps seen {overlaps:?}\n{}\n{}",
                py.name,
                ours.log(),
                py.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn produce(client: &KafkaClient, topic: &str, offsets: std::ops::Range<i64>) {
    let producer =
        BufferedProducer::new(client.clone(), ProducerConfig::default().with_topic(topic)).unwrap();
    let records = (0..PARTITIONS).flat_map(|p| {
        offsets
            .clone()
            .map(move |o| ProducerRecord::new(format!("{p}:{o}")).at_partition(p))
    });
    let results = producer.send_all(records).await;
    assert!(results.iter().all(|r| r.is_ok()), "produce: {results:?}");
    producer.close().await;
}

/// The committed offsets of every partition, as a third party reads them.
async fn committed(client: &KafkaClient, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let coordinator = OffsetCoordinator::new(client.clone(), group);
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        if let Some((o, _)) = coordinator.fetch(topic, p).await.unwrap() {
            out.insert(p, o);
        }
    }
    out
}

async fn interop(t: Target, strategy: &'static str) {
    let client = client(&t).await;
    let topic = unique(&format!("interop-{strategy}"));
    client
        .create_topics(vec![NewTopic::new(&topic, PARTITIONS)])
        .await
        .unwrap();
    let group = unique(&format!("interop-{strategy}"));

    // 1. Ours first (the leader), then librdkafka.
    let ours = Ours::join(&client, &topic, &group, strategy).await;
    wait_until(
        "ours owns every partition",
        || ours.partitions() == all(),
        || ours.log(),
    )
    .await;
    let py = Py::start("librdkafka-1", &t, &topic, &group, strategy, PY_COMMITS);
    let (mine, theirs) = settled(&ours, &py).await;
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "ours {mine:?}, librdkafka {theirs:?}"
    );
    eprintln!("{strategy}: settled with ours {mine:?}, librdkafka {theirs:?}");
    assert_eq!(mine.len(), 3, "6 partitions split 3/3\n{}", ours.log());
    if strategy != "range" {
        // Ours led (or, with KIP-848, the broker's sticky assignor): it gave up only
        // what moved, and kept the rest throughout.
        let revoked = ours.revoked.lock().unwrap().clone();
        assert_eq!(revoked, theirs, "ours revoked {revoked:?}\n{}", ours.log());
    }

    // 2. Both consume and commit offsets below PY_COMMITS of their own partitions.
    produce(&client, &topic, 0..RECORDS).await;
    wait_until(
        "librdkafka commits its partitions",
        || {
            py.alive();
            let c = py.committed();
            theirs.iter().all(|p| c.get(p) == Some(&PY_COMMITS))
        },
        || format!("{}\n{}", py.log(), ours.log()),
    )
    .await;
    wait_until(
        "ours consumes its partitions",
        || {
            let seen = ours.offsets(0);
            mine.iter()
                .all(|p| seen.get(p).is_some_and(|o| o.contains(&(PY_COMMITS - 1))))
        },
        || ours.log(),
    )
    .await;
    ours.commit_below(0..PY_COMMITS).await;
    let first_commits = committed(&client, &group, &topic).await;
    assert_eq!(
        first_commits,
        all()
            .into_iter()
            .map(|p| (p, PY_COMMITS))
            .collect::<BTreeMap<_, _>>(),
        "each member committed its own partitions\n{}\n{}",
        ours.log(),
        py.log()
    );
    // Neither read the other's partitions while the group was settled.
    let seen_before = ours.offsets(0);
    assert!(
        theirs.iter().all(|p| !seen_before.contains_key(p)),
        "ours read librdkafka's partitions: {seen_before:?}"
    );
    assert!(
        py.first().keys().all(|p| theirs.contains(p)),
        "librdkafka read ours: {:?}",
        py.first()
    );

    // 3. librdkafka leaves; ours takes its partitions at librdkafka's commits.
    let before_takeover = ours.seen_count();
    py.stop().await;
    wait_until(
        "ours owns every partition again",
        || ours.partitions() == all(),
        || ours.log(),
    )
    .await;
    wait_until(
        "ours consumes the partitions it took over",
        || {
            let seen = ours.offsets(before_takeover);
            theirs
                .iter()
                .all(|p| seen.get(p).is_some_and(|o| o.contains(&(RECORDS - 1))))
        },
        || ours.log(),
    )
    .await;
    let taken = ours.offsets(before_takeover);
    for p in &theirs {
        let first = taken[p].iter().min().copied();
        assert_eq!(
            first,
            Some(PY_COMMITS),
            "partition {p}: ours started at {first:?}, librdkafka committed {PY_COMMITS}; offsets read {:?}\n{}",
            taken[p],
            ours.log()
        );
    }

    // 4. Ours commits OURS_COMMITS everywhere and leaves; a new librdkafka member
    // starts there.
    let deadline = Instant::now() + STEP;
    let target: BTreeMap<i32, i64> = all().into_iter().map(|p| (p, OURS_COMMITS)).collect();
    loop {
        ours.commit_below(PY_COMMITS..OURS_COMMITS).await;
        let now = committed(&client, &group, &topic).await;
        if now == target {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ours committed {now:?}\n{}",
            ours.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ours.close().await;
    let py = Py::start("librdkafka-2", &t, &topic, &group, strategy, -1);
    wait_until(
        "librdkafka reads every partition",
        || {
            py.alive();
            py.first().len() == PARTITIONS as usize
        },
        || py.log(),
    )
    .await;
    assert_eq!(
        py.first(),
        target,
        "librdkafka's first offsets\n{}",
        py.log()
    );
    wait_until(
        "librdkafka commits every partition to the end",
        || {
            py.alive();
            let c = py.committed();
            all().iter().all(|p| c.get(p) == Some(&RECORDS))
        },
        || py.log(),
    )
    .await;

    // 5. Ours joins the group librdkafka leads: librdkafka assigns from our
    // subscription, and ours starts at librdkafka's commits.
    let ours = Ours::join(&client, &topic, &group, strategy).await;
    let joined = Instant::now();
    wait_until(
        "librdkafka gives ours partitions",
        || {
            py.alive();
            !ours.partitions().is_empty()
        },
        || format!("{}\n{}", ours.log(), py.log()),
    )
    .await;
    eprintln!(
        "{strategy}: ours got partitions {:?} after joining",
        joined.elapsed()
    );
    let (mine, theirs) = settled(&ours, &py).await;
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "ours {mine:?}, librdkafka {theirs:?}"
    );
    produce(&client, &topic, RECORDS..RECORDS + 5).await;
    wait_until(
        "ours consumes the new records",
        || {
            let seen = ours.offsets(0);
            mine.iter()
                .all(|p| seen.get(p).is_some_and(|o| o.contains(&(RECORDS + 4))))
        },
        || ours.log(),
    )
    .await;
    let seen = ours.offsets(0);
    for p in &mine {
        assert_eq!(
            seen[p].iter().min(),
            Some(&RECORDS),
            "partition {p}: ours read {:?} after librdkafka committed {RECORDS}",
            seen[p]
        );
    }
    wait_until(
        "librdkafka commits the new records of its partitions",
        || {
            py.alive();
            let c = py.committed();
            theirs.iter().all(|p| c.get(p) == Some(&(RECORDS + 5)))
        },
        || py.log(),
    )
    .await;
    eprintln!("{strategy}: librdkafka leading: ours {mine:?}, librdkafka {theirs:?}");
    assert_eq!(mine.len(), 3, "6 partitions split 3/3\n{}", py.log());
    if strategy != "range" {
        // librdkafka led (or, with KIP-848, the broker's sticky assignor): it gave up
        // only what moved.
        assert_eq!(py.revoked(), mine, "librdkafka revoked\n{}", py.log());
    }
    eprintln!("{}\n{}", ours.log(), py.log());
    py.stop().await;
    ours.close().await;
}

/// "consumer" names KIP-848's protocol rather than an assignor.
fn strategy_is_kip848(strategy: &str) -> bool {
    strategy == "consumer"
}

async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(240), test)
        .await
        .expect("the interop test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_with_librdkafka_on_the_fake_cluster() {
    within(async { interop(fake().await, "range").await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_with_librdkafka_on_the_fake_cluster() {
    within(async { interop(fake().await, "cooperative-sticky").await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_with_librdkafka_on_kafka_bootstrap() {
    let Some(t) = named() else {
        eprintln!("KAFKA_BOOTSTRAP is not set: skipped");
        return;
    };
    within(interop(t, "range")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_with_librdkafka_on_kafka_bootstrap() {
    let Some(t) = named() else {
        eprintln!("KAFKA_BOOTSTRAP is not set: skipped");
        return;
    };
    within(interop(t, "cooperative-sticky")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_protocol_with_librdkafka_on_the_fake_cluster() {
    within(async { interop(fake().await, "consumer").await }).await;
}

/// Runs where the named broker serves ConsumerGroupHeartbeat (Kafka 4.0+); Tansu does
/// not (its ApiVersions has no key 68), so there the test says so and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_protocol_with_librdkafka_on_kafka_bootstrap() {
    let Some(t) = named() else {
        eprintln!("KAFKA_BOOTSTRAP is not set: skipped");
        return;
    };
    let c = client(&t).await;
    if let Err(e) = c
        .api_version(kafka_protocol::ApiKey::ConsumerGroupHeartbeat)
        .await
    {
        eprintln!("the broker does not serve KIP-848's ConsumerGroupHeartbeat ({e}): skipped");
        return;
    }
    within(interop(t, "consumer")).await;
}

#[test]
fn json_lines_parse() {
    let line = r#"{"change": "assign", "delta": [0, 1], "event": "assignment", "partitions": [0, 1, 2], "protocol": "COOPERATIVE", "x": {"y": null, "z": [true, false, -1.5e0, "a\"\u00e9"]}}"#;
    let Some(Json::Obj(o)) = Json::parse(line) else {
        panic!("not an object")
    };
    assert_eq!(o["event"], Json::Str("assignment".into()));
    assert_eq!(
        o["partitions"],
        Json::Arr(vec![Json::Num(0.0), Json::Num(1.0), Json::Num(2.0)])
    );
    let mut s = PyState::default();
    apply(&mut s, line);
    apply(
        &mut s,
        r#"{"event": "first", "offset": 12, "partition": 4}"#,
    );
    apply(
        &mut s,
        r#"{"event": "committed", "offset": 13, "partition": 4}"#,
    );
    apply(&mut s, "not json");
    assert_eq!(s.assignment, Some([0, 1, 2].into()));
    assert_eq!(s.first, BTreeMap::from([(4, 12)]));
    assert_eq!(s.committed, BTreeMap::from([(4, 13)]));
    assert!(s.revoked.is_empty());
    apply(
        &mut s,
        r#"{"change": "revoke", "delta": [1], "event": "assignment", "partitions": [0, 2]}"#,
    );
    assert_eq!(s.revoked, [1].into());
    assert_eq!(s.assignment, Some([0, 2].into()));
    assert_eq!(Json::parse("[1,"), None);
}
