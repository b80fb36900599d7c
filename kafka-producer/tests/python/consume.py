"""Reads back what kafka-producer wrote, with an independent client: librdkafka (the
confluent-kafka package), for the read-back test (tests/readback.rs).

usage: consume.py BOOTSTRAP TOPIC CODEC N

The producer wrote N records i = 0..N-1 to TOPIC: key `k-<i>`, value `v-<CODEC>-<i>`
followed by (i * 7919) % 8000 dashes (so batches span several of the producer's
chunks and several LZ4 blocks), headers [(`h1`, `<i>`), (`h2`, b"")], create time 1_700_000_000_000 + i. This consumes
every partition of TOPIC from the earliest offset (a fresh group id, no commits) and
checks every key, value, header (order and values) and timestamp type and value; that
each record comes back exactly once; that each partition's offsets are consecutive
from 0; and that each partition holds its records in the order they were sent.

On success it prints one line per record, `i PARTITION OFFSET`, in order of i, and
exits 0. On any mismatch it prints what differs (up to 20 lines) to stderr and exits 1.
"""
import sys
import time
import uuid

from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaException, TopicPartition

BASE_TS = 1_700_000_000_000
TIMEOUT_S = 60
# How long to keep polling after the N-th record, to catch duplicates and extras.
GRACE_S = 2.0
TS_TYPES = {0: "NOT_AVAILABLE", 1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}


def fail(problems, total=None):
    shown = problems[:20]
    more = len(problems) - len(shown)
    lines = "\n".join(f"  {p}" for p in shown)
    if more > 0:
        lines += f"\n  ... and {more} more"
    sys.stderr.write(f"consume.py: {total or len(problems)} mismatch(es):\n{lines}\n")
    sys.exit(1)


def expected(codec, i):
    return {
        "key": f"k-{i}".encode(),
        "value": (f"v-{codec}-{i}" + "-" * ((i * 7919) % 8000)).encode(),
        "headers": [("h1", str(i).encode()), ("h2", b"")],
        "timestamp": (TIMESTAMP_CREATE_TIME, BASE_TS + i),
    }


def index_of(key):
    """i from a key `k-<i>`, or None."""
    try:
        text = key.decode()
    except (AttributeError, UnicodeDecodeError):
        return None
    if not text.startswith("k-") or not text[2:].isdigit():
        return None
    return int(text[2:])


def show_ts(ts):
    kind, value = ts
    return f"({TS_TYPES.get(kind, kind)}, {value})"


def consume(bootstrap, topic, n):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"readback-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "check.crcs": True,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    try:
        meta = c.list_topics(topic, timeout=15)
        t = meta.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            fail([f"topic {topic} not found: {t.error if t is not None else 'absent'}"])
        partitions = sorted(t.partitions)
        # No committed offsets in a fresh group: auto.offset.reset=earliest applies.
        c.assign([TopicPartition(topic, p) for p in partitions])
        got, deadline, done_at = [], time.time() + TIMEOUT_S, None
        while time.time() < deadline:
            if done_at is not None and time.time() >= done_at:
                break
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                fail([f"consume error: {m.error()}"])
            got.append(m)
            if len(got) >= n and done_at is None:
                done_at = time.time() + GRACE_S
        return partitions, got
    except KafkaException as e:
        fail([f"librdkafka: {e}"])
    finally:
        c.close()


def check(codec, n, partitions, got):
    problems = []
    seen = {}
    by_partition = {p: [] for p in partitions}
    for m in got:
        where = f"{m.topic()}/{m.partition()}@{m.offset()}"
        i = index_of(m.key())
        if i is None or not 0 <= i < n:
            problems.append(f"{where}: unexpected key {m.key()!r}")
            continue
        if i in seen:
            problems.append(f"{where}: record {i} read twice (first at {seen[i]})")
            continue
        seen[i] = where
        by_partition.setdefault(m.partition(), []).append((m.offset(), i))
        want = expected(codec, i)
        if m.value() != want["value"]:
            problems.append(f"{where}: value {m.value()!r}, expected {want['value']!r}")
        headers = m.headers()
        if headers != want["headers"]:
            problems.append(f"{where}: headers {headers!r}, expected {want['headers']!r}")
        if m.timestamp() != want["timestamp"]:
            problems.append(f"{where}: timestamp {show_ts(m.timestamp())}, "
                            f"expected {show_ts(want['timestamp'])}")
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        problems.append(f"{len(missing)} of {n} records never read, e.g. {missing[:10]}")
    for p, records in sorted(by_partition.items()):
        offsets = [o for o, _ in records]
        if offsets != list(range(len(records))):
            gaps = [(a, b) for a, b in zip([-1] + offsets, offsets) if b != a + 1][:5]
            problems.append(f"partition {p}: offsets not consecutive from 0 "
                            f"({len(offsets)} records; breaks (prev, next): {gaps})")
        order = [i for _, i in records]
        if order != sorted(order):
            bad = [(a, b) for a, b in zip(order, order[1:]) if b < a][:5]
            problems.append(f"partition {p}: records out of send order, e.g. (i, next i) {bad}")
    if problems:
        fail(problems)
    return {i: (p, o) for p, records in by_partition.items() for o, i in records}


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    bootstrap, topic, codec, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    partitions, got = consume(bootstrap, topic, n)
    placed = check(codec, n, partitions, got)
    for i in range(n):
        p, o = placed[i]
        print(f"{i} {p} {o}")


if __name__ == "__main__":
    main()
