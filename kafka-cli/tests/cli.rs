//! Runs the `kafka` binary against an in-process fake cluster (3 brokers) by
//! default, and against the cluster named by `KAFKA_BOOTSTRAP` when it is set
//! (Tansu with `KAFKA_QUIRKS=tansu`: it accepts invalid config values, so that check
//! runs on the fake only; and as it answers a partition's log end with its last
//! batch's base offset + 1, the tests produce one record per run, so one per batch).

#![allow(clippy::unwrap_used)]

use kafka_test::{FakeCluster, FakeClusterConfig};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

struct Target {
    bootstrap: String,
    tansu: bool,
    _fake: Option<FakeCluster>,
}

async fn target() -> Target {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) => Target {
            bootstrap,
            tansu: std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu"),
            _fake: None,
        },
        Err(_) => {
            let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
                .await
                .unwrap();
            Target {
                bootstrap: fake.bootstrap(),
                tansu: false,
                _fake: Some(fake),
            }
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `kafka ARGS` against `bootstrap` with `stdin`.
async fn kafka(bootstrap: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kafka {args:?} did not end"))
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn ok(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let r = kafka(bootstrap, args, stdin).await;
    assert_eq!(r.code, 0, "kafka {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// Produces each line with a run of its own (one record per batch).
async fn produce_each(bootstrap: &str, args: &[&str], lines: &[&str]) {
    for line in lines {
        ok(bootstrap, args, &format!("{line}\n")).await;
    }
}

async fn with_timeout<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn produce_then_consume_with_a_format_and_exit_at_the_end() {
    with_timeout(async {
        let t = target().await;
        let b = t.bootstrap.as_str();
        let topic = unique("cli");
        ok(b, &["topics", "create", &topic, "-p", "2"], "").await;
        let listed = ok(b, &["topics"], "").await;
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(&topic) && l.contains(" 2 ")),
            "{listed}"
        );
        let args = ["produce", &topic, "-K", ":", "-z", "gzip", "-p", "1"];
        produce_each(b, &args, &["k1:one", "k2:two", "k3:three"]).await;
        ok(b, &["produce", &topic, "-p", "0"], "plain\n").await;
        let out = ok(
            b,
            &[
                "consume",
                &topic,
                "-e",
                "-p",
                "1",
                "-f",
                "%t|%p|%o|%k|%s\\n",
            ],
            "",
        )
        .await;
        assert_eq!(
            out,
            format!("{topic}|1|0|k1|one\n{topic}|1|1|k2|two\n{topic}|1|2|k3|three\n")
        );
        let out = ok(
            b,
            &["consume", &topic, "-e", "-o", "-1", "-f", "%p:%s %K\\n"],
            "",
        )
        .await;
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, vec!["0:plain -1", "1:three 2"]);
        let out = ok(b, &["consume", &topic, "-c", "2", "-p", "1", "-o", "1"], "").await;
        assert_eq!(out, "two\nthree\n");
        // As a group: every record once, then the offsets are committed.
        let group = unique("clig");
        let out = ok(b, &["consume", &topic, "-e", "-g", &group], "").await;
        let mut values: Vec<&str> = out.lines().collect();
        values.sort_unstable();
        assert_eq!(values, vec!["one", "plain", "three", "two"]);
        let offsets = ok(b, &["offsets", "list", "-g", &group], "").await;
        assert!(
            offsets.contains(&format!("{topic}  1          3")),
            "{offsets}"
        );
    })
    .await;
}

#[tokio::test]
async fn groups_show_lag_and_offsets_reset_dry_run_then_execute() {
    with_timeout(async {
        let t = target().await;
        let b = t.bootstrap.as_str();
        let topic = unique("cli");
        ok(b, &["topics", "create", &topic, "-p", "1"], "").await;
        produce_each(b, &["produce", &topic], &["1", "2", "3", "4", "5"]).await;
        let group = unique("clig");
        let dry = ok(
            b,
            &[
                "offsets",
                "reset",
                "-g",
                &group,
                "-t",
                &topic,
                "--to-offset",
                "2",
            ],
            "",
        )
        .await;
        assert!(dry.contains(&format!("{topic}  0          2")), "{dry}");
        let r = kafka(b, &["groups", "describe", &group], "").await;
        // Tansu describes any group as an empty one.
        assert!(
            t.tansu || r.code != 0,
            "nothing committed by a dry run: {}",
            r.stdout
        );
        ok(
            b,
            &[
                "offsets",
                "reset",
                "-g",
                &group,
                "-t",
                &format!("{topic}:0"),
                "--to-offset",
                "2",
                "--execute",
            ],
            "",
        )
        .await;
        let table = ok(b, &["groups", "describe", &group], "").await;
        let row = table.lines().find(|l| l.starts_with(&topic)).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &cells[..5],
            &[topic.as_str(), "0", "2", "5", "3"],
            "{table}"
        );
        assert!(table.contains("TOTAL LAG 3"), "{table}");
        let groups = ok(b, &["groups"], "").await;
        assert_eq!(
            groups.lines().filter(|l| l.starts_with(&group)).count(),
            1,
            "{groups}"
        );
        ok(b, &["groups", "delete", &group], "").await;
    })
    .await;
}

#[tokio::test]
async fn configs_are_altered_and_bad_input_fails_with_readable_errors() {
    with_timeout(async {
        let t = target().await;
        let b = t.bootstrap.as_str();
        let topic = unique("cli");
        ok(
            b,
            &[
                "topics",
                "create",
                &topic,
                "-p",
                "1",
                "-c",
                "retention.ms=3600000",
            ],
            "",
        )
        .await;
        ok(
            b,
            &[
                "configs",
                "alter",
                "--topic",
                &topic,
                "--set",
                "cleanup.policy=compact",
            ],
            "",
        )
        .await;
        let configs = ok(b, &["configs", "describe", "--topic", &topic], "").await;
        assert!(
            configs
                .lines()
                .any(|l| l.starts_with("cleanup.policy") && l.contains("compact")),
            "{configs}"
        );
        assert!(
            configs
                .lines()
                .any(|l| l.starts_with("retention.ms") && l.contains("3600000")),
            "{configs}"
        );

        let missing = unique("missing");
        let r = kafka(b, &["consume", &missing, "-e"], "").await;
        assert_eq!(r.code, 1);
        assert!(
            r.stderr
                .contains(&format!("topic {missing} does not exist")),
            "{}",
            r.stderr
        );
        let r = kafka(b, &["produce", &missing], "x\n").await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains(&missing), "{}", r.stderr);
        let r = kafka(b, &["topics", "create", "bad name", &topic, "-p", "1"], "").await;
        assert_eq!(r.code, 1);
        assert!(
            r.stderr.contains("bad name") && r.stderr.contains(&topic),
            "{}",
            r.stderr
        );
        let r = kafka(b, &["consume", &topic, "-f", "%q"], "").await;
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("%q"), "{}", r.stderr);
        let r = kafka(b, &["produce", &topic, "-z", "brotli"], "").await;
        assert_eq!(r.code, 2);
        if !t.tansu {
            let r = kafka(
                b,
                &[
                    "configs",
                    "alter",
                    "--topic",
                    &topic,
                    "--set",
                    "retention.ms=soon",
                ],
                "",
            )
            .await;
            assert_eq!(r.code, 1);
            assert!(
                r.stderr.contains("INVALID_CONFIG") && r.stderr.contains(&topic),
                "{}",
                r.stderr
            );
            let r = kafka(b, &["topics", "add-partitions", &topic, "--total", "1"], "").await;
            assert_eq!(r.code, 1);
            assert!(r.stderr.contains("INVALID_PARTITIONS"), "{}", r.stderr);
        }
        let r = kafka("127.0.0.1:1", &["topics"], "").await;
        assert_eq!(r.code, 3);
        assert!(
            r.stderr.contains("cannot reach the cluster at 127.0.0.1:1"),
            "{}",
            r.stderr
        );
    })
    .await;
}

#[tokio::test]
async fn every_verb_has_help() {
    with_timeout(async {
        for verb in [
            &["--help"][..],
            &["produce", "--help"],
            &["consume", "--help"],
            &["topics", "--help"],
            &["topics", "create", "--help"],
            &["groups", "--help"],
            &["groups", "describe", "--help"],
            &["configs", "--help"],
            &["configs", "alter", "--help"],
            &["offsets", "--help"],
            &["offsets", "reset", "--help"],
            &["fake", "--help"],
        ] {
            let out = ok("127.0.0.1:1", verb, "").await;
            assert!(out.contains("Usage:"), "{verb:?}: {out}");
        }
        let r = kafka("127.0.0.1:1", &["consume"], "").await;
        assert_eq!(r.code, 2, "a missing argument is bad usage");
    })
    .await;
}

#[tokio::test]
async fn the_fake_verb_serves_a_cluster_until_stdin_closes() {
    with_timeout(async {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafka"))
            .args([
                "fake",
                "--brokers",
                "2",
                "--topic",
                "seeded:3",
                "--exit-on-stdin-close",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let bootstrap = lines.next_line().await.unwrap().unwrap();
        assert_eq!(bootstrap.split(',').count(), 2, "{bootstrap}");
        let listed = ok(&bootstrap, &["topics", "describe", "seeded"], "").await;
        assert_eq!(
            listed.lines().filter(|l| l.starts_with("seeded")).count(),
            3,
            "{listed}"
        );
        ok(&bootstrap, &["produce", "seeded", "-p", "2"], "hello\n").await;
        let out = ok(
            &bootstrap,
            &["consume", "seeded", "-e", "-f", "%p %s\\n"],
            "",
        )
        .await;
        assert_eq!(out, "2 hello\n");
        drop(child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("kafka fake stops when stdin closes")
            .unwrap();
        assert!(status.success());
    })
    .await;
}

#[tokio::test]
async fn the_lag_table_names_the_members_of_an_active_group() {
    use kafka_group::{GroupConfig, GroupConsumer, Topics};
    with_timeout(async {
        // Tansu's DescribeGroups lists no members: this runs on the fake there.
        let fake = FakeCluster::start(FakeClusterConfig::default().with_brokers(3))
            .await
            .unwrap();
        let b = fake.bootstrap();
        ok(&b, &["topics", "create", "lagged", "-p", "2"], "").await;
        ok(&b, &["produce", "lagged", "-p", "0"], "a\nb\nc\n").await;
        let mut config = kafka_net::ClientConfig::default();
        config.client_id = "table-member".into();
        let client = kafka_net::KafkaClient::connect(&[b.as_str()], config)
            .await
            .unwrap();
        let mut gc = GroupConfig::new("active");
        gc.auto_commit = false;
        let member = GroupConsumer::subscribe(client, Topics::Names(vec!["lagged".into()]), gc)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while member.assignment().len() != 2 {
            assert!(std::time::Instant::now() < deadline, "never assigned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let offsets = std::collections::BTreeMap::from([(("lagged".to_string(), 0), 1)]);
        member.commit_offsets(&offsets).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let table = loop {
            let table = ok(&b, &["groups", "describe", "active"], "").await;
            if table.lines().filter(|l| l.contains("table-member")).count() == 2 {
                break table;
            }
            assert!(std::time::Instant::now() < deadline, "{table}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            table.starts_with("GROUP active (Stable, 1 member(s)"),
            "{table}"
        );
        let row = table.lines().find(|l| l.starts_with("lagged  0")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[..5], &["lagged", "0", "1", "3", "2"], "{table}");
        assert_eq!(cells[5], member.member().0, "{table}");
        assert_eq!(cells[6], "/127.0.0.1");
        let r = kafka(
            &b,
            &[
                "offsets",
                "reset",
                "-g",
                "active",
                "-t",
                "lagged",
                "--to-earliest",
                "--execute",
            ],
            "",
        )
        .await;
        assert_eq!(r.code, 1);
        assert!(
            r.stderr.contains("active") && r.stderr.contains("Stable"),
            "{}",
            r.stderr
        );
        member.close().await.unwrap();
    })
    .await;
}
