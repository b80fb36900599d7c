//! `kafka`: a command-line client for Kafka clusters (produce, consume, topics,
//! groups and their lag, configs, offset resets) and an embedded fake cluster for
//! local work.
//!
//! Exit codes: 0 done; 1 the cluster refused something (every failed item is
//! printed on stderr); 2 bad usage; 3 the cluster could not be reached.

mod admin;
mod consume;
mod format;
mod produce;
mod progress;

use clap::{Args, Parser, Subcommand};
use kafka_net::{Admin, ClientConfig, KafkaClient};
use std::process::ExitCode;

/// Exit code when the cluster refused something.
pub(crate) const FAILED: u8 = 1;
/// Exit code of bad usage.
pub(crate) const USAGE: u8 = 2;
/// Exit code when the cluster cannot be reached.
pub(crate) const UNREACHABLE: u8 = 3;

/// A Kafka command-line client.
#[derive(Parser, Debug)]
#[command(
    name = "kafka",
    version,
    about = "A Kafka command-line client: produce, consume, topics, groups, configs, offsets",
    after_help = "Exit codes: 0 done; 1 the cluster refused something (each failure is printed); 2 bad usage; 3 the cluster could not be reached."
)]
struct Cli {
    /// Bootstrap brokers, `host:port[,host:port]`.
    #[arg(
        short,
        long,
        global = true,
        env = "KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// The client id sent to the brokers.
    #[arg(long, global = true, default_value = "kafka-cli")]
    client_id: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produce lines of stdin (or `key<SEP>value` lines) to a topic.
    Produce(produce::ProduceArgs),
    /// Consume a topic to stdout, from an offset, a time, or as a group member.
    Consume(consume::ConsumeArgs),
    /// List, describe, create and delete topics; add partitions.
    Topics(admin::TopicsArgs),
    /// List, describe (a lag table) and delete consumer groups.
    Groups(admin::GroupsArgs),
    /// Describe and alter topic and broker configs.
    Configs(admin::ConfigsArgs),
    /// List or reset a group's committed offsets.
    Offsets(admin::OffsetsArgs),
    /// Start the embedded fake cluster and print its bootstrap address.
    Fake(FakeArgs),
}

/// Options of `kafka fake`.
#[derive(Args, Debug)]
struct FakeArgs {
    /// Number of brokers.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// A topic to create, `NAME:PARTITIONS` (repeatable).
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    topics: Vec<String>,
    /// Create topics on first use (Kafka's `auto.create.topics.enable`).
    #[arg(long)]
    auto_create_topics: bool,
    /// Stop when stdin closes (for scripts that start it in the background), besides
    /// Ctrl-C.
    #[arg(long)]
    exit_on_stdin_close: bool,
}

/// A failure of a command: its message and exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code,
        }
    }

    /// A failure of the cluster: unreachable or refused.
    pub(crate) fn cluster(e: &kafka_net::Error) -> Failure {
        let code = if matches!(
            e.kind(),
            kafka_net::ErrorKind::Io(_)
                | kafka_net::ErrorKind::Unavailable(_)
                | kafka_net::ErrorKind::ConnectionClosed(_)
                | kafka_net::ErrorKind::Timeout(_)
        ) {
            UNREACHABLE
        } else {
            FAILED
        };
        Failure::new(code, e.to_string())
    }
}

pub(crate) type Outcome = Result<(), Failure>;

/// Connects to the cluster.
pub(crate) async fn connect(cli: &Globals) -> Result<KafkaClient, Failure> {
    let mut config = ClientConfig::default();
    config.client_id = cli.client_id.clone();
    KafkaClient::connect(&[cli.bootstrap.as_str()], config)
        .await
        .map_err(|e| {
            Failure::new(
                UNREACHABLE,
                format!("cannot reach the cluster at {}: {e}", cli.bootstrap),
            )
        })
}

/// The options every verb shares.
pub(crate) struct Globals {
    pub bootstrap: String,
    pub client_id: String,
}

impl Globals {
    pub(crate) async fn admin(&self) -> Result<Admin, Failure> {
        Ok(Admin::new(connect(self).await?))
    }
}

async fn fake(args: FakeArgs) -> Outcome {
    use kafka_test::{FakeCluster, FakeClusterConfig};
    if args.brokers < 1 {
        return Err(Failure::new(USAGE, "--brokers needs at least 1"));
    }
    let mut topics = Vec::new();
    for t in &args.topics {
        let parsed = t
            .split_once(':')
            .and_then(|(n, p)| Some((n.to_string(), p.parse::<i32>().ok().filter(|p| *p > 0)?)));
        match parsed {
            Some(t) => topics.push(t),
            None => {
                return Err(Failure::new(
                    USAGE,
                    format!("--topic {t}: give NAME:PARTITIONS"),
                ))
            }
        }
    }
    let config = FakeClusterConfig::default()
        .with_brokers(args.brokers)
        .with_auto_create_topics(args.auto_create_topics);
    let cluster = FakeCluster::start(config)
        .await
        .map_err(|e| Failure::new(FAILED, format!("cannot start the fake cluster: {e}")))?;
    for (name, partitions) in topics {
        cluster.create_topic(&name, partitions);
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", cluster.bootstrap());
        let _ = out.flush();
    }
    eprintln!(
        "fake cluster of {} broker(s) at {}; Ctrl-C stops it",
        args.brokers,
        cluster.bootstrap()
    );
    let stdin_closed = async {
        if args.exit_on_stdin_close {
            use tokio::io::AsyncReadExt;
            let mut sink = [0u8; 1024];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = stdin_closed => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kafka: cannot start: {e}");
            return ExitCode::from(FAILED);
        }
    };
    let globals = Globals {
        bootstrap: cli.bootstrap,
        client_id: cli.client_id,
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Produce(a) => produce::run(&globals, a).await,
            Command::Consume(a) => consume::run(&globals, a).await,
            Command::Topics(a) => admin::topics(&globals, a).await,
            Command::Groups(a) => admin::groups(&globals, a).await,
            Command::Configs(a) => admin::configs(&globals, a).await,
            Command::Offsets(a) => admin::offsets(&globals, a).await,
            Command::Fake(a) => fake(a).await,
        }
    });
    // Background tasks (metadata refresh, fetches) end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("kafka: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
