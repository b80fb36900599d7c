//! `fake-kafka`: the in-process fake cluster as a small program, for tests in other
//! processes (other languages' clients, command-line tools).
//!
//! ```text
//! fake-kafka [--brokers N] [--topic NAME:PARTITIONS]... [--auto-create-topics]
//! ```
//!
//! Prints the bootstrap list (`127.0.0.1:PORT,...`) on the first line of stdout, then
//! serves until stdin closes or the process is killed.

use kafka_test::{FakeCluster, FakeClusterConfig};
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

fn usage(e: &str) -> ExitCode {
    eprintln!("fake-kafka: {e}\nusage: fake-kafka [--brokers N] [--topic NAME:PARTITIONS]... [--auto-create-topics]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = FakeClusterConfig::default();
    let mut topics = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--brokers" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => config = config.with_brokers(n),
                _ => return usage("--brokers needs a positive number"),
            },
            "--topic" => {
                let Some((name, parts)) = args.next().and_then(|t| {
                    let (n, p) = t.split_once(':')?;
                    Some((n.to_string(), p.parse::<i32>().ok()?))
                }) else {
                    return usage("--topic needs NAME:PARTITIONS");
                };
                topics.push((name, parts));
            }
            "--auto-create-topics" => config = config.with_auto_create_topics(true),
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let cluster = match FakeCluster::start(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-kafka: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, parts) in topics {
        cluster.create_topic(&name, parts);
    }
    println!("{}", cluster.bootstrap());
    // Serve until stdin closes (the parent went away) or a signal ends the process.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    ExitCode::SUCCESS
}
