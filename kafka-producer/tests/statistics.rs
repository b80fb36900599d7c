//! The buffered producer's statistics and request spans, against the in-process fake
//! cluster (and the cluster named by `KAFKA_BOOTSTRAP`, for the counters that do not
//! need fault injection).

#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use kafka_net::{ClientConfig, KafkaClient, NewTopic};
use kafka_producer::{BufferedProducer, ProducerConfig, ProducerRecord, ProducerStatistics};
use kafka_protocol::{ApiKey, ErrorCode};
use kafka_test::trace::TraceRecorder;
use kafka_test::{FakeCluster, FakeClusterConfig, Fault, FaultAction};
use std::time::Duration;

async fn fake() -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::default())
        .await
        .unwrap()
}

async fn client(bootstrap: &str) -> KafkaClient {
    let mut config = ClientConfig::default();
    config.request_timeout = Duration::from_secs(5);
    KafkaClient::connect(&[bootstrap], config).await.unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn config(topic: &str) -> ProducerConfig {
    let mut c = ProducerConfig::default().with_topic(topic);
    c.retry_backoff = Duration::from_millis(20);
    c.delivery_timeout = Duration::from_secs(20);
    c
}

fn partition<'a>(
    s: &'a ProducerStatistics,
    topic: &str,
    p: i32,
) -> &'a kafka_producer::ProducerPartitionStats {
    s.partitions
        .iter()
        .find(|x| x.topic == topic && x.partition == p)
        .unwrap()
}

/// Queue depth while records linger, batches and bytes once flushed, the brokers'
/// counters, and the JSON field names.
async fn counts_queue_batches_and_brokers(bootstrap: &str) {
    let client = client(bootstrap).await;
    let topic = unique("stats");
    kafka_net::Client::create_topics(&client, vec![NewTopic::new(&topic, 2)])
        .await
        .unwrap();
    let mut c = config(&topic);
    // Nothing leaves before the flush.
    c.linger = Duration::from_secs(30);
    let producer = BufferedProducer::new(client, c).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..100 {
        let record = ProducerRecord::new(format!("record {i}")).at_partition(i % 2);
        deliveries.push(producer.send(record).await.unwrap());
    }
    let before = producer.statistics();
    assert_eq!(before.queued_records, 100);
    assert_eq!(before.pending_records, 100);
    assert!(before.queued_bytes > 0);
    // Charged by what the batches hold: at least the records' bytes.
    assert!(before.buffer_bytes >= before.queued_bytes, "{before:?}");
    assert!(before.buffer_bytes <= before.buffer_max_bytes);
    assert_eq!(partition(&before, &topic, 0).queued_records, 50);
    assert_eq!(partition(&before, &topic, 1).queued_batches, 1);
    assert_eq!(before.delivered_records, 0);

    producer.flush().await;
    for d in deliveries {
        d.await.unwrap();
    }
    let after = producer.statistics();
    assert_eq!((after.queued_records, after.queued_bytes), (0, 0));
    assert_eq!(after.pending_records, 0);
    assert_eq!(after.in_flight_requests, 0);
    // Everything given back (the charge is released before the reports).
    assert_eq!(after.buffer_bytes, 0);
    assert_eq!(after.delivered_records, 100);
    assert_eq!(after.delivered_bytes, before.queued_bytes);
    for p in 0..2 {
        let s = partition(&after, &topic, p);
        assert_eq!(s.batches, 1, "{s:?}");
        assert_eq!(s.delivered_records, 50);
        assert_eq!(s.batch_records_max, 50);
        assert_eq!(s.batch_records_mean, 50.0);
        assert_eq!(s.batch_bytes_max, s.delivered_bytes);
        assert_eq!(
            (s.retries, s.failed_batches, s.in_flight_batches),
            (0, 0, 0)
        );
    }
    assert_eq!(after.batches, 2);
    assert!(!after.client.brokers.is_empty());
    let requests: u64 = after.client.brokers.values().map(|b| b.requests).sum();
    let bytes_out: u64 = after.client.brokers.values().map(|b| b.bytes_out).sum();
    let rtt: u64 = after.client.brokers.values().map(|b| b.rtt.count).sum();
    assert!(requests > 0 && bytes_out > 0 && rtt > 0, "{after:?}");
    let leader = after
        .client
        .brokers
        .values()
        .find(|b| b.node_id >= 0)
        .unwrap();
    assert!(leader.rtt.max_us >= leader.rtt.min_us);
    assert!(leader.rtt.p99_us >= leader.rtt.p50_us);

    let json = serde_json::to_value(&after).unwrap();
    for field in [
        "client_id",
        "time_ms",
        "age_us",
        "brokers",
        "pending_records",
        "queued_records",
        "queued_bytes",
        "in_flight_requests",
        "delivered_records",
        "delivered_bytes",
        "batches",
        "retries",
        "failed_batches",
        "failed_records",
        "partitions",
    ] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    let broker = json["brokers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    for field in [
        "node_id",
        "addr",
        "requests",
        "bytes_out",
        "responses",
        "bytes_in",
        "errors",
        "timeouts",
        "in_flight",
        "connects",
        "reconnects",
    ] {
        assert!(broker.get(field).is_some(), "no {field} in {broker}");
    }
    for field in ["count", "mean_us", "min_us", "max_us", "p50_us", "p99_us"] {
        assert!(broker["rtt"].get(field).is_some(), "no rtt.{field}");
    }
    let p = &json["partitions"][0];
    assert_eq!(p["topic"], topic.as_str());
    assert_eq!(p["delivered_records"], 50);
    assert_eq!(p["batch_records_mean"], 50.0);
    for field in [
        "queued_batches",
        "in_flight_batches",
        "batch_records_max",
        "batch_bytes_mean",
        "batch_bytes_max",
    ] {
        assert!(p.get(field).is_some(), "no partitions[0].{field}");
    }
    producer.close().await;
}

#[tokio::test]
async fn counts_queue_batches_and_brokers_on_the_fake() {
    within(async {
        let cluster = fake().await;
        counts_queue_batches_and_brokers(&cluster.bootstrap()).await;
    })
    .await;
}

#[tokio::test]
async fn counts_queue_batches_and_brokers_on_the_named_cluster() {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        return;
    };
    within(counts_queue_batches_and_brokers(&bootstrap)).await;
}

#[tokio::test]
async fn retries_and_failures_are_counted_per_partition() {
    within(async {
        let cluster = fake().await;
        cluster.create_topic("faulty", 1);
        let producer =
            BufferedProducer::new(client(&cluster.bootstrap()).await, config("faulty")).unwrap();
        cluster.inject(Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::NotLeaderOrFollower),
        ));
        producer
            .send(ProducerRecord::new("retried"))
            .await
            .unwrap()
            .await
            .unwrap();
        let s = producer.statistics();
        let p = partition(&s, "faulty", 0);
        assert_eq!((p.retries, p.failed_batches), (1, 0), "{p:?}");
        assert_eq!((p.batches, p.delivered_records), (1, 1));

        cluster.inject(Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::InvalidRecord),
        ));
        let failed = producer
            .send(ProducerRecord::new("refused"))
            .await
            .unwrap()
            .await;
        assert!(failed.is_err());
        let s = producer.statistics();
        let p = partition(&s, "faulty", 0);
        assert_eq!((p.failed_batches, p.failed_records), (1, 1), "{p:?}");
        assert_eq!(
            (s.retries, s.failed_records, s.delivered_records),
            (1, 1, 1)
        );
        // A retried and a failed batch give their room back.
        assert_eq!(s.buffer_bytes, 0);
        producer.close().await;
    })
    .await;
}

/// A record is counted before it is reported: its callback, run as its batch is
/// answered, sees it among the delivered (or failed) records, and so does a caller
/// that awaited its report.
#[tokio::test]
async fn a_record_is_counted_before_it_is_reported() {
    within(async {
        let cluster = fake().await;
        cluster.create_topic("counted", 1);
        let producer =
            BufferedProducer::new(client(&cluster.bootstrap()).await, config("counted")).unwrap();
        let seen = |producer: &BufferedProducer| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let inside = producer.clone();
            let callback = move |report: kafka_producer::DeliveryReport| {
                let s = inside.statistics();
                let _ = tx.send((report.is_ok(), s.delivered_records, s.failed_records));
            };
            (callback, rx)
        };
        let (callback, rx) = seen(&producer);
        producer
            .send_with_callback(ProducerRecord::new("delivered"), callback)
            .await
            .unwrap();
        assert_eq!(rx.await.unwrap(), (true, 1, 0));

        cluster.inject(Fault::new(
            ApiKey::Produce,
            FaultAction::Error(ErrorCode::InvalidRecord),
        ));
        let (callback, rx) = seen(&producer);
        producer
            .send_with_callback(ProducerRecord::new("refused"), callback)
            .await
            .unwrap();
        assert_eq!(rx.await.unwrap(), (false, 1, 1));
        producer.close().await;
    })
    .await;
}

#[tokio::test]
async fn statistics_every_advances_and_ends_when_the_producer_closes() {
    within(async {
        let cluster = fake().await;
        cluster.create_topic("periodic", 1);
        let producer =
            BufferedProducer::new(client(&cluster.bootstrap()).await, config("periodic")).unwrap();
        let mut stream = producer.statistics_every(Duration::from_millis(20));
        let first = stream.next().await.unwrap();
        producer
            .send(ProducerRecord::new("one"))
            .await
            .unwrap()
            .await
            .unwrap();
        let second = stream.next().await.unwrap();
        assert!(second.client.time_ms >= first.client.time_ms);
        assert!(second.client.age_us > first.client.age_us);
        assert_eq!(second.delivered_records, first.delivered_records + 1);
        let requests =
            |s: &ProducerStatistics| -> u64 { s.client.brokers.values().map(|b| b.requests).sum() };
        assert!(requests(&second) > requests(&first));
        producer.close().await;
        assert!(stream.next().await.is_none(), "the stream ends on close");
    })
    .await;
}

/// Every Produce request gets a `request` span with its API, version, correlation id
/// and broker. (A current-thread runtime: the recorder is this thread's subscriber.)
#[tokio::test(flavor = "current_thread")]
async fn a_produce_is_traced_in_a_request_span() {
    let recorder = TraceRecorder::new();
    let _guard = recorder.set_default();
    within(async {
        let cluster = fake().await;
        cluster.create_topic("traced", 1);
        let client = client(&cluster.bootstrap()).await;
        let producer = BufferedProducer::new(client, config("traced")).unwrap();
        producer
            .send(ProducerRecord::new("traced"))
            .await
            .unwrap()
            .await
            .unwrap();
        producer.close().await;
        let addr = cluster.broker_addr(0).unwrap().to_string();
        let spans = recorder.spans_named("request");
        let produce = spans
            .iter()
            .find(|s| s.field("api") == Some("Produce"))
            .unwrap_or_else(|| panic!("no Produce request span in {spans:?}"));
        assert_eq!(produce.field("broker"), Some(addr.as_str()));
        assert!(produce.field("version").unwrap().parse::<i16>().unwrap() >= 3);
        assert!(produce
            .field("correlation_id")
            .unwrap()
            .parse::<i32>()
            .is_ok());
        // The Produce connection was opened for it: ApiVersions first.
        assert!(spans
            .iter()
            .any(|s| s.field("api") == Some("ApiVersions") && s.id < produce.id));
    })
    .await;
}
