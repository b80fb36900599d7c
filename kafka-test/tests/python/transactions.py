"""Exactly-once with librdkafka (confluent-kafka) against a cluster: a transactional
producer commits one transaction and aborts another, a consume-transform-produce step
commits its consumer offsets inside a transaction (send_offsets_to_transaction), and
consumers check what each isolation level sees.

usage: transactions.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC [QUIRKS]
  QUIRKS: "" (Kafka's semantics) or "tansu"
Prints one line per check ("ok <what>" or "FAIL <what>: <detail>") and exits 1 when a
check that the quirks do not relax fails.
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

COMMITTED = [f"committed-{i}" for i in range(10)]
ABORTED = [f"aborted-{i}" for i in range(7)]
OPEN = [f"open-{i}" for i in range(4)]
OUTPUT = [f"out-{v}" for v in COMMITTED]

failures = []


def check(what, ok, detail="", relaxed=False):
    if ok:
        print(f"ok {what}", flush=True)
    else:
        print(f"{'RELAXED' if relaxed else 'FAIL'} {what}: {detail}", flush=True)
        if not relaxed:
            failures.append(what)


def producer(bootstrap, txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 60000, "linger.ms": 5})
    p.init_transactions(30)
    return p


def produce_all(p, topic, values):
    for i, v in enumerate(values):
        p.produce(topic, key=f"k{i}".encode(), value=v.encode(), partition=i % 2)


def consume(bootstrap, topics, isolation, want, timeout=30, group=None, commit=False):
    conf = {"bootstrap.servers": bootstrap, "group.id": group or f"reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": isolation, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    c = Consumer(conf)
    c.subscribe(topics)
    got, deadline = [], time.time() + timeout
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.3)
        if m is None:
            continue
        if m.error():
            raise SystemExit(f"consume error: {m.error()}")
        got.append(m)
    # Anything beyond `want` would be visible by now too.
    end = time.time() + 1.5
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m)
    return c, got


def main():
    bootstrap, input_topic, output_topic = sys.argv[1], sys.argv[2], sys.argv[3]
    quirks = sys.argv[4] if len(sys.argv) > 4 else ""
    tansu = quirks == "tansu"
    txn_id = f"txn-{uuid.uuid4()}"

    # 1. One committed and one aborted transaction.
    p = producer(bootstrap, txn_id)
    p.begin_transaction()
    produce_all(p, input_topic, COMMITTED)
    p.commit_transaction(30)
    p.begin_transaction()
    produce_all(p, input_topic, ABORTED)
    p.flush(30)
    p.abort_transaction(30)
    print("ok producer committed one transaction and aborted one", flush=True)
    # Another producer leaves a transaction open while the consumers read.
    p_open = producer(bootstrap, f"open-{uuid.uuid4()}")
    p_open.begin_transaction()
    produce_all(p_open, input_topic, OPEN)
    p_open.flush(30)

    c, got = consume(bootstrap, [input_topic], "read_committed", len(COMMITTED))
    values = sorted(m.value().decode() for m in got)
    check("read_committed sees exactly the committed records (not the aborted or open ones)",
          values == sorted(COMMITTED), f"got {values}", relaxed=tansu)
    c.close()
    everything = COMMITTED + ABORTED + OPEN
    c, got = consume(bootstrap, [input_topic], "read_uncommitted", len(everything))
    values = sorted(m.value().decode() for m in got)
    check("read_uncommitted sees committed, aborted and open records",
          values == sorted(everything), f"got {values}")
    c.close()
    p_open.abort_transaction(30)

    # 2. Consume-transform-produce: read the committed input in a group, write the
    #    output and commit the group's offsets in one transaction.
    group = f"eos-{uuid.uuid4()}"
    c, got = consume(bootstrap, [input_topic], "read_committed", len(COMMITTED), group=group)
    check("the group reads the committed input",
          sorted(m.value().decode() for m in got) == sorted(COMMITTED),
          f"got {sorted(m.value().decode() for m in got)}", relaxed=tansu)
    got = [m for m in got if m.value().decode() in COMMITTED]
    positions = {}
    for m in got:
        positions[m.partition()] = max(positions.get(m.partition(), 0), m.offset() + 1)
    p.begin_transaction()
    for m in got:
        p.produce(output_topic, key=m.key(), value=b"out-" + m.value(), partition=m.partition())
    offsets = [TopicPartition(input_topic, part, off) for part, off in sorted(positions.items())]
    try:
        p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        sent = True
    except KafkaException as e:
        check("send_offsets_to_transaction and commit", False, str(e), relaxed=tansu)
        sent = False
        try:
            p.abort_transaction(30)
        except KafkaException:
            pass
    if sent:
        print("ok send_offsets_to_transaction and commit", flush=True)
        parts = [TopicPartition(input_topic, part) for part in sorted(positions)]
        committed = {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
        check("offsets sent in the transaction are committed", committed == positions,
              f"committed {committed}, expected {positions}", relaxed=tansu)
    c.close()
    c, got = consume(bootstrap, [output_topic], "read_committed", len(OUTPUT))
    values = sorted(m.value().decode() for m in got)
    check("the transaction's output is visible to read_committed",
          values == sorted(OUTPUT) or (tansu and not sent), f"got {values}")
    c.close()

    # 3. A second producer with the same transactional id fences the first.
    p2 = producer(bootstrap, txn_id)
    fenced = False
    try:
        p.begin_transaction()
        p.produce(input_topic, value=b"zombie", partition=0)
        p.commit_transaction(10)
    except KafkaException as e:
        fenced = e.args[0].fatal() or "fenced" in str(e).lower()
    check("a second producer with the same transactional.id fences the first", fenced,
          "the zombie committed", relaxed=tansu)
    p2.begin_transaction()
    p2.produce(input_topic, value=b"second", partition=0)
    p2.commit_transaction(30)
    print("ok the new producer commits", flush=True)

    if failures:
        raise SystemExit(f"{len(failures)} checks failed: {failures}")


if __name__ == "__main__":
    main()
