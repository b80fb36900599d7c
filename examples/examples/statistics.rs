//! `cargo run --example statistics`, from anywhere in the workspace.
//!
//! The code is in `examples/src/statistics.rs` ([`kafka_examples::statistics`]),
//! where the test that keeps the examples working calls it too. It runs against the
//! cluster named by `KAFKA_BOOTSTRAP` (`host:port[,host:port]`), or an embedded fake
//! cluster when that is not set, and ends by itself.

#[tokio::main]
async fn main() -> kafka_examples::Result<()> {
    kafka_examples::run(kafka_examples::statistics::run).await?;
    Ok(())
}
