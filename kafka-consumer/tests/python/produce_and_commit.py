"""librdkafka (the `confluent-kafka` package) as the independent client that judges our
consumer: it writes the records our readers must read back exactly, and commits and
reads group offsets that must agree with ours. Used by `tests/interop.rs`.

usage:
  produce_and_commit.py produce   BOOTSTRAP PREFIX
      For each codec in CODECS, produces N records to the 3-partition topic
      PREFIX-CODEC (created beforehand) with `compression.type=CODEC`: record i has
      key `k-i`, value `v-CODEC-i`, headers [("h1", str(i)), ("h2", b"")], timestamp
      BASE_TIMESTAMP + i and partition i % 3. Prints
      {"topics": {TOPIC: {"codec": CODEC, "delivered": [[partition, offset, timestamp], ...]}}}
      where entry i is librdkafka's delivery report of record i.
  produce_and_commit.py commit    BOOTSTRAP TOPIC GROUP PARTITION:OFFSET[:METADATA]...
      Commits the offsets for GROUP without subscribing (a simple consumer), and
      prints {"committed": [[partition, offset], ...]}.
  produce_and_commit.py committed BOOTSTRAP TOPIC GROUP [PARTITIONS]
      Prints GROUP's committed offsets of partitions 0..PARTITIONS (default 3) as
      {"offsets": {"P": {"offset": O, "metadata": M}}}; O is -1001 (OFFSET_INVALID)
      when nothing is committed.
Exits non-zero, with the reason on stderr, when librdkafka reports an error.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 100
PARTITIONS = 3
BASE_TIMESTAMP = 1_700_000_000_000
TIMEOUT = 30


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def produce(bootstrap, prefix):
    summary = {"topics": {}}
    for codec in CODECS:
        topic = f"{prefix}-{codec}"
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "enable.idempotence": True,
            "acks": "all",
            # All of a partition's records in one batch, so a codec compresses many.
            "linger.ms": 100,
            "message.timeout.ms": TIMEOUT * 1000,
        })
        delivered = [None] * N
        errors = []

        def report(err, msg, i):
            if err is not None:
                errors.append(f"record {i}: {err}")
            else:
                delivered[i] = [msg.partition(), msg.offset(), msg.timestamp()[1]]

        for i in range(N):
            producer.produce(
                topic,
                key=f"k-{i}".encode(),
                value=f"v-{codec}-{i}".encode(),
                headers=[("h1", str(i).encode()), ("h2", b"")],
                timestamp=BASE_TIMESTAMP + i,
                partition=i % PARTITIONS,
                on_delivery=lambda err, msg, i=i: report(err, msg, i),
            )
        left = producer.flush(TIMEOUT)
        if left or errors:
            fail(f"{topic}: {left} records undelivered, errors: {errors[:5]}")
        if any(d is None for d in delivered):
            fail(f"{topic}: delivery reports missing")
        summary["topics"][topic] = {"codec": codec, "delivered": delivered}
    print(json.dumps(summary))


def consumer(bootstrap, group):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
    })


def commit(bootstrap, topic, group, specs):
    offsets = []
    for spec in specs:
        partition, offset, *metadata = spec.split(":", 2)
        offsets.append(TopicPartition(topic, int(partition), int(offset),
                                      metadata=metadata[0] if metadata else None))
    c = consumer(bootstrap, group)
    try:
        result = c.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
        fail(f"commit failed: {e}")
    bad = [tp for tp in result if tp.error is not None]
    if bad:
        fail(f"commit failed for {bad}")
    c.close()
    print(json.dumps({"committed": [[tp.partition, tp.offset] for tp in result]}))


def committed(bootstrap, topic, group, partitions):
    c = consumer(bootstrap, group)
    result = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=TIMEOUT)
    bad = [tp for tp in result if tp.error is not None]
    if bad:
        fail(f"committed() failed for {bad}")
    c.close()
    print(json.dumps({"offsets": {
        str(tp.partition): {"offset": tp.offset, "metadata": tp.metadata} for tp in result
    }}))


def main(argv):
    if len(argv) < 3:
        fail(__doc__)
    mode, bootstrap, topic, rest = argv[0], argv[1], argv[2], argv[3:]
    if mode == "produce" and not rest:
        produce(bootstrap, topic)
    elif mode == "commit" and len(rest) >= 2:
        commit(bootstrap, topic, rest[0], rest[1:])
    elif mode == "committed" and len(rest) in (1, 2):
        committed(bootstrap, topic, rest[0], int(rest[1]) if len(rest) == 2 else PARTITIONS)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
