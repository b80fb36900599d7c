//! Keeps the examples working: runs every example's code (the functions the
//! `examples/*.rs` mains call) against the embedded fake cluster, each within a
//! timeout, and checks what it reports. When `KAFKA_BOOTSTRAP` names a cluster,
//! `every_example_on_the_named_cluster` runs them all against it too (with
//! `KAFKA_QUIRKS=tansu`, the time range's records are not checked).

use kafka_examples::{
    consume_partition, exactly_once, fetch_many, multiplex, produce, quickstart, statistics,
    store_offsets, time_range, Env, Result,
};
use std::future::Future;
use std::time::Duration;

/// Runs an example on a new fake cluster within 60 s.
async fn on_fake<T>(example: impl AsyncFnOnce(&Env) -> Result<T>) -> T {
    let env = Env::fake().await.expect("the fake cluster starts");
    let result = timed(example(&env)).await;
    env.close().await;
    result.expect("the example succeeds")
}

async fn timed<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the example finishes within 60 s")
}

fn expected_quickstart() -> Vec<String> {
    (0..quickstart::RECORDS)
        .map(|i| format!("hello {i}"))
        .collect()
}

fn expected_time_range() -> Vec<String> {
    (time_range::FROM_MINUTE..time_range::TO_MINUTE)
        .map(|i| format!("minute {i}"))
        .collect()
}

fn expected_consumed(first: i64) -> Vec<i64> {
    (first + consume_partition::SKIP..first + consume_partition::RECORDS).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_reads_back_what_it_wrote() {
    assert_eq!(on_fake(quickstart::run).await, expected_quickstart());
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_writes_with_every_producer() {
    // 2 from the simple producer, 3 distributed, the buffered producer's, and one per
    // partition from produce_many. (produce_many's single records come last in every
    // partition, so Tansu, which answers ListOffsets(latest) with the last batch's
    // base offset + 1, counts right too.)
    assert_eq!(
        on_fake(produce::run).await,
        5 + i64::from(produce::PARTITIONS + produce::WITH_CALLBACKS)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_partition_reads_from_its_offset_until_no_data() {
    // A new topic starts at offset 0.
    assert_eq!(on_fake(consume_partition::run).await, expected_consumed(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_many_fetches_every_partition() {
    let expected = fetch_many::PARTITIONS as usize * fetch_many::PER_PARTITION;
    assert_eq!(on_fake(fetch_many::run).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn multiplex_merges_every_partition_in_order() {
    let seen = on_fake(multiplex::run).await;
    for p in 0..multiplex::PARTITIONS {
        let offsets: Vec<i64> = seen
            .iter()
            .filter(|(partition, _)| *partition == p)
            .map(|(_, offset)| *offset)
            .collect();
        assert_eq!(
            offsets,
            (0..multiplex::PER_PARTITION as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    assert_eq!(
        seen.len(),
        multiplex::PARTITIONS as usize * multiplex::PER_PARTITION
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn time_range_reads_only_the_range() {
    assert_eq!(on_fake(time_range::run).await, expected_time_range());
}

/// Each input once in the output, to a read_committed reader, after a worker aborted
/// a transaction and another died inside one. With `tansu`, whose read_committed
/// fetches include aborted records, only that every input is there.
fn check_exactly_once(report: &exactly_once::Report, tansu: bool) {
    let mut expected: Vec<String> = (0..exactly_once::RECORDS)
        .map(|i| exactly_once::transform(&format!("record {i}")))
        .collect();
    expected.sort();
    assert!(report.aborted >= 2, "{report:?}");
    if tansu {
        let mut seen = report.output.clone();
        seen.dedup();
        assert_eq!(seen, expected);
    } else {
        assert_eq!(report.output, expected, "each input exactly once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_writes_each_input_once_through_an_abort_and_a_restart() {
    check_exactly_once(&on_fake(exactly_once::run).await, false);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_offsets_commits_every_message() {
    assert_eq!(on_fake(store_offsets::run).await, store_offsets::RECORDS);
}

fn check_statistics(json: &serde_json::Value) {
    assert_eq!(json["delivered_records"], statistics::RECORDS);
    assert_eq!(json["queued_records"], 0);
    assert_eq!(
        json["partitions"].as_array().map(Vec::len),
        Some(statistics::PARTITIONS as usize)
    );
    assert!(json["brokers"].as_object().is_some_and(|b| !b.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_prints_a_snapshot_with_every_record_delivered() {
    check_statistics(&on_fake(statistics::run).await);
}

/// The same examples against the cluster `KAFKA_BOOTSTRAP` names (as `cargo run
/// --example` would run them), one after the other on one connection.
#[tokio::test(flavor = "multi_thread")]
async fn every_example_on_the_named_cluster() {
    let Ok(bootstrap) = std::env::var(kafka_examples::BOOTSTRAP_VAR) else {
        eprintln!("KAFKA_BOOTSTRAP is not set: no named cluster to run the examples on");
        return;
    };
    let env = Env::named(&bootstrap)
        .await
        .expect("the named cluster answers");
    let result = timed(async {
        assert_eq!(quickstart::run(&env).await?, expected_quickstart());
        assert_eq!(
            produce::run(&env).await?,
            5 + i64::from(produce::PARTITIONS + produce::WITH_CALLBACKS)
        );
        assert_eq!(consume_partition::run(&env).await?, expected_consumed(0));
        assert_eq!(
            fetch_many::run(&env).await?,
            fetch_many::PARTITIONS as usize * fetch_many::PER_PARTITION
        );
        assert_eq!(
            multiplex::run(&env).await?.len(),
            multiplex::PARTITIONS as usize * multiplex::PER_PARTITION
        );
        let in_range = time_range::run(&env).await?;
        // Tansu answers offset lookups by time differently from Kafka (see README.md).
        if !std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu") {
            assert_eq!(in_range, expected_time_range());
        }
        assert_eq!(store_offsets::run(&env).await?, store_offsets::RECORDS);
        let tansu = std::env::var("KAFKA_QUIRKS").is_ok_and(|q| q == "tansu");
        check_exactly_once(&exactly_once::run(&env).await?, tansu);
        check_statistics(&statistics::run(&env).await?);
        Ok(())
    })
    .await;
    env.close().await;
    result.expect("every example succeeds on the named cluster");
}
