//! Tests against real broker processes of their own: a Tansu stopped and restarted
//! under a client, and TLS through Debian's `socat openssl-listen` in front of Tansu.
//! Each starts its own Tansu with `scripts/broker.sh` in its own state directory, so
//! they never disturb the shared broker of the other suites. They need Python, pip
//! and socat, so they are ignored by a plain `cargo test`; the test command runs them
//! (`--include-ignored`). The fake cluster's suite covers the same on the fake
//! (kafka-test/tests/fake_cluster.rs).

#![allow(clippy::unwrap_used)]

use kafka_net::{Client, ClientConfig, KafkaClient, NewTopic, TlsConfig};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker.sh");

/// A Tansu of this test's own, stopped on drop.
struct OwnBroker {
    state: PathBuf,
    envs: Vec<(String, String)>,
}

impl OwnBroker {
    fn new(name: &str, envs: &[(&str, String)]) -> Self {
        let state = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(format!("broker-{name}-{}", std::process::id()));
        OwnBroker {
            state,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn run(&self, cmd: &str) -> String {
        let out = Command::new("bash")
            .arg(SCRIPT)
            .arg(cmd)
            .env("BROKER_STATE_DIR", &self.state)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("runs scripts/broker.sh");
        assert!(
            out.status.success(),
            "broker.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .env("BROKER_STATE_DIR", &self.state)
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> kafka_net::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[tokio::test]
#[ignore = "starts Tansu processes: run by the test command with --include-ignored"]
async fn the_client_reconnects_after_the_broker_restarts() {
    let port = free_port();
    let broker = OwnBroker::new("restart", &[("BROKER_PORT", port.to_string())]);
    let addr = broker.run("start");
    let client = KafkaClient::connect(&[addr.as_str()], ClientConfig::default())
        .await
        .unwrap();
    client
        .create_topics(vec![NewTopic::new("before", 1)])
        .await
        .unwrap();

    broker.run("stop");
    let down = client
        .refresh_metadata()
        .await
        .expect_err("the broker is down");
    assert!(down.is_retriable(), "{down}");

    broker.run("start");
    // In-memory storage: the restarted broker is empty, but it answers.
    let m = eventually("metadata after restart", || client.refresh_metadata()).await;
    assert!(!m.brokers.is_empty());
    client
        .create_topics(vec![NewTopic::new("after", 2)])
        .await
        .unwrap();
    assert_eq!(client.partition_count("after").await.unwrap(), 2);
    let reconnects: u64 = client.broker_metrics().values().map(|s| s.reconnects).sum();
    assert!(reconnects >= 1, "the pool reconnected");
}

struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "starts Tansu and socat: run by the test command with --include-ignored"]
async fn tls_through_socat_in_front_of_the_broker() {
    let socat = which("socat").expect("socat is needed for the TLS test (apt-get install socat)");
    let tls_port = free_port();
    let broker = OwnBroker::new(
        "tls",
        &[("BROKER_ADVERTISED", format!("127.0.0.1:{tls_port}"))],
    );
    let plain = broker.run("start");

    let cert = rcgen::generate_simple_self_signed(vec!["kafka.test".to_string()]).unwrap();
    std::fs::create_dir_all(&broker.state).unwrap();
    let cert_path = broker.state.join("cert.pem");
    let key_path = broker.state.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let _socat = Socat(
        Command::new(socat)
            .arg(format!(
                "openssl-listen:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                cert_path.display(),
                key_path.display()
            ))
            .arg(format!("tcp:{plain}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts socat"),
    );

    let mut config = ClientConfig::default();
    config.tls = Some(
        TlsConfig::default()
            .with_ca_pem(cert.cert.pem())
            .with_server_name("kafka.test"),
    );
    let addr = format!("127.0.0.1:{tls_port}");
    let bootstrap = [addr.clone()];
    let client = eventually("connect over TLS", || {
        KafkaClient::connect(&bootstrap, config.clone())
    })
    .await;
    client
        .create_topics(vec![NewTopic::new("over-tls", 3)])
        .await
        .unwrap();
    assert_eq!(client.partition_count("over-tls").await.unwrap(), 3);
    assert_eq!(client.offset_latest("over-tls", 1).await.unwrap(), 0);

    // A client that does not trust the certificate fails with a TLS error.
    let mut untrusting = ClientConfig::default();
    let other = rcgen::generate_simple_self_signed(vec!["kafka.test".to_string()]).unwrap();
    untrusting.tls = Some(
        TlsConfig::default()
            .with_ca_pem(other.cert.pem())
            .with_server_name("kafka.test"),
    );
    let e = KafkaClient::connect(&[addr.as_str()], untrusting)
        .await
        .expect_err("untrusted");
    assert!(e.to_string().contains("TLS"), "{e}");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
