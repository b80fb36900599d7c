"""Independent clients against the fake cluster: librdkafka (confluent-kafka) and
kafka-python produce, then consume in a consumer group and commit.

usage: interop.py CLIENT BOOTSTRAP TOPIC
  CLIENT: confluent | kafka-python
Exits 0 when every produced record came back exactly once, in order per partition,
and the group's committed offsets are the partition ends.
"""
import sys
import time
import uuid

N = 60


def expected():
    return [(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(N)]


def check(got, committed, ends):
    by_key = sorted(got, key=lambda kv: int(kv[0].decode().split("-")[1]))
    if by_key != expected():
        missing = set(expected()) - set(got)
        raise SystemExit(f"consumed {len(got)} records, {len(missing)} missing, e.g. {sorted(missing)[:3]}")
    if len(got) != len(set(got)):
        raise SystemExit("duplicates consumed")
    if committed != ends:
        raise SystemExit(f"committed {committed} != partition ends {ends}")


def confluent(bootstrap, topic):
    from confluent_kafka import Consumer, Producer, TopicPartition

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 20, "compression.type": "lz4"})
    errors = []
    for k, v in expected():
        p.produce(topic, key=k, value=v, headers=[("h", b"1")],
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    if p.flush(30) != 0 or errors:
        raise SystemExit(f"produce failed: {errors[:3]}")
    group = f"interop-{uuid.uuid4()}"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    got, deadline = [], time.time() + 60
    while len(got) < N and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise SystemExit(f"consume error: {m.error()}")
        if m.headers() != [("h", b"1")]:
            raise SystemExit(f"headers lost: {m.headers()}")
        got.append((m.key(), m.value()))
    c.commit(asynchronous=False)
    parts = [TopicPartition(topic, p) for p in range(3)]
    committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in range(3)}
    c.close()
    check(got, committed, ends)


def kafka_python(bootstrap, topic):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type="gzip")
    futures = [p.send(topic, key=k, value=v, headers=[("h", b"1")]) for k, v in expected()]
    for f in futures:
        f.get(timeout=30)
    p.close()
    group = f"interop-py-{uuid.uuid4()}"
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    got, deadline = [], time.time() + 60
    while len(got) < N and time.time() < deadline:
        for records in c.poll(timeout_ms=500).values():
            for m in records:
                got.append((m.key, m.value))
    c.commit()
    parts = [TopicPartition(topic, p) for p in range(3)]
    committed = {tp.partition: c.committed(tp) for tp in parts}
    ends = {tp.partition: off for tp, off in c.end_offsets(parts).items()}
    c.close()
    check(got, committed, ends)


if __name__ == "__main__":
    client, bootstrap, topic = sys.argv[1:4]
    {"confluent": confluent, "kafka-python": kafka_python}[client](bootstrap, topic)
    print(f"{client}: ok")
