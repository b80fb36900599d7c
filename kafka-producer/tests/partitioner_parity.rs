//! Partitioner parity with librdkafka: `tests/python/partitions.py` produces keyed,
//! empty-key and null-key records through librdkafka (the `confluent-kafka` PyPI
//! package, which the test command installs) to the in-process fake cluster with
//! several `partitioner` settings, and prints where each record was delivered. Every
//! deterministic placement must be the one our partitioners choose, and the fake's own
//! log must agree with the delivery reports.

#![allow(clippy::unwrap_used)]

use kafka_producer::partitioner::{
    by_name, ConsistentRandom, Crc32, Fnv1a, Keyless, Murmur2, Partitioner,
};
use kafka_test::{FakeCluster, FakeClusterConfig};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 37;
const KEYS: usize = 10_000;

/// librdkafka's `partitioner` values under test.
const LIBRDKAFKA: &[&str] = &[
    "murmur2_random",
    "consistent_random",
    "fnv1a_random",
    "murmur2",
    "consistent",
    "fnv1a",
];

/// What the partitioners of this crate say for one librdkafka partitioner, or `None`
/// where librdkafka chooses at random (so there is nothing to compare).
struct Ours {
    /// The concrete types, each documented as matching this librdkafka partitioner.
    types: Vec<Arc<dyn Partitioner>>,
    /// The same by name.
    named: Arc<dyn Partitioner>,
    /// Whether librdkafka's choice is deterministic for an empty and a null key.
    empty_deterministic: bool,
    null_deterministic: bool,
}

fn ours(name: &str) -> Ours {
    let named = by_name(name).unwrap();
    let (types, empty_deterministic, null_deterministic): (Vec<Arc<dyn Partitioner>>, _, _) =
        match name {
            "murmur2_random" => (vec![Arc::new(Murmur2::new())], true, false),
            "murmur2" => (
                vec![Arc::new(Murmur2::with_keyless(Keyless::HashEmpty))],
                true,
                true,
            ),
            "consistent_random" => (vec![Arc::new(ConsistentRandom::new())], false, false),
            "consistent" => (vec![Arc::new(Crc32::new())], true, true),
            "fnv1a_random" => (vec![Arc::new(Fnv1a::new())], true, false),
            "fnv1a" => (
                vec![Arc::new(Fnv1a::with_keyless(Keyless::HashEmpty))],
                true,
                true,
            ),
            _ => unreachable!("{name}"),
        };
    Ours {
        types,
        named,
        empty_deterministic,
        null_deterministic,
    }
}

fn topic(partitioner: &str) -> String {
    format!("parity-{partitioner}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioners_match_librdkafka() {
    let cluster = FakeCluster::start(FakeClusterConfig::default())
        .await
        .unwrap();
    for p in LIBRDKAFKA {
        assert!(cluster.create_topic(&topic(p), PARTITIONS));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/partitions.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = tokio::process::Command::new(python)
        .arg(script)
        .arg(cluster.bootstrap())
        .arg(KEYS.to_string())
        .args(LIBRDKAFKA.iter().map(|p| format!("{p}={}", topic(p))))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the partitions script finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "librdkafka against the fake cluster failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();

    // (partitioner, kind) -> records compared.
    let mut compared: HashMap<(&str, &str), usize> = HashMap::new();
    // partitioner -> key -> partition, as librdkafka reported it.
    let mut reported: HashMap<&str, HashMap<&str, i32>> = HashMap::new();
    let mut mismatches = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, kind, key, partition] = fields[..] else {
            panic!("unexpected line {line:?}");
        };
        let partition: i32 = partition.parse().unwrap();
        assert!((0..PARTITIONS).contains(&partition), "{line}");
        let ours = ours(name);
        let key: Option<&[u8]> = match kind {
            "k" => {
                reported.entry(name).or_default().insert(key, partition);
                Some(key.as_bytes())
            }
            "empty" if ours.empty_deterministic => Some(b""),
            "null" if ours.null_deterministic => None,
            "empty" | "null" => continue, // librdkafka chose at random
            _ => panic!("unexpected kind in {line:?}"),
        };
        for p in ours.types.iter().chain([&ours.named]) {
            let got = p.partition(&topic(name), key, PARTITIONS);
            if got != partition {
                mismatches.push(format!("{line}: {p:?} chose {got}"));
            }
        }
        *compared.entry((name, kind)).or_default() += 1;
    }
    assert!(
        mismatches.is_empty(),
        "{} placements differ from librdkafka, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );

    for name in LIBRDKAFKA {
        let ours = ours(name);
        assert_eq!(
            compared.get(&(*name, "k")),
            Some(&KEYS),
            "{name}: keyed records compared"
        );
        let deterministic = [
            ("empty", ours.empty_deterministic),
            ("null", ours.null_deterministic),
        ];
        for (kind, expected) in deterministic {
            let n = compared.get(&(*name, kind)).copied().unwrap_or(0);
            assert_eq!(
                n,
                usize::from(expected),
                "{name}: {kind}-key records compared"
            );
        }
        // The fake's log holds every keyed record where the delivery report says.
        let reports = &reported[name];
        let mut stored = 0;
        for partition in 0..PARTITIONS {
            for record in cluster.records(&topic(name), partition) {
                let Some(key) = record.key else { continue };
                let key = std::str::from_utf8(&key).unwrap();
                if key.is_empty() {
                    continue;
                }
                assert_eq!(reports.get(key), Some(&partition), "{name}: {key}");
                stored += 1;
            }
        }
        assert_eq!(stored, KEYS, "{name}: keyed records in the fake's log");
        eprintln!(
            "{name}: {KEYS} keys match librdkafka; empty key {}, null key {}",
            if ours.empty_deterministic {
                "matches"
            } else {
                "random"
            },
            if ours.null_deterministic {
                "matches"
            } else {
                "random"
            },
        );
    }
}
