"""Exactly-once with an independent client against a cluster: a transactional
producer commits one transaction and aborts another while another producer keeps one
open, a consume-transform-produce step commits its consumer offsets inside a
transaction (send_offsets_to_transaction), consumers check what each isolation level
sees, and a second producer with the same transactional id fences the first.

usage: transactions.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC [QUIRKS] [CLIENT]
  QUIRKS: "" (Kafka's semantics) or "tansu"
  CLIENT: confluent (librdkafka, the default) | kafka-python
Prints one line per check ("ok <what>" or "FAIL <what>: <detail>") and exits 1 when a
check that the quirks do not relax fails.
"""
import sys
import time
import uuid

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


class Message:
    """A consumed record, the same for both clients."""

    def __init__(self, partition, offset, key, value):
        self.partition, self.offset, self.key, self.value = partition, offset, key, value


class Confluent:
    """librdkafka through confluent-kafka."""

    name = "librdkafka"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def producer(self, txn_id):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": txn_id,
                      "transaction.timeout.ms": 60000, "linger.ms": 5})
        p.init_transactions(30)
        return p

    def send(self, p, topic, key, value, partition):
        p.produce(topic, key=key, value=value, partition=partition)

    def flush(self, p):
        p.flush(30)

    def commit(self, p):
        p.commit_transaction(30)

    def abort(self, p):
        p.abort_transaction(30)

    def fenced_error(self):
        from confluent_kafka import KafkaException
        return KafkaException

    def is_fenced(self, e):
        return e.args[0].fatal() or "fenced" in str(e).lower()

    def consumer(self, topics, isolation, group):
        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": isolation, "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500})
        c.subscribe(topics)
        return c

    def poll(self, c):
        m = c.poll(0.3)
        if m is None:
            return []
        if m.error():
            raise SystemExit(f"consume error: {m.error()}")
        return [Message(m.partition(), m.offset(), m.key(), m.value())]

    def send_offsets(self, p, c, topic, positions):
        from confluent_kafka import TopicPartition
        offsets = [TopicPartition(topic, part, off) for part, off in sorted(positions.items())]
        p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 30)

    def committed(self, c, topic, partitions):
        from confluent_kafka import TopicPartition
        parts = [TopicPartition(topic, part) for part in partitions]
        return {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}


class KafkaPython:
    """kafka-python."""

    name = "kafka-python"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def producer(self, txn_id):
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=txn_id,
                          transaction_timeout_ms=60000, linger_ms=5)
        p.init_transactions()
        return p

    def send(self, p, topic, key, value, partition):
        p.send(topic, key=key, value=value, partition=partition)

    def flush(self, p):
        p.flush(30)

    def commit(self, p):
        p.commit_transaction()

    def abort(self, p):
        p.abort_transaction()

    def fenced_error(self):
        from kafka.errors import KafkaError
        return KafkaError

    def is_fenced(self, e):
        from kafka.errors import InvalidProducerEpochError, ProducerFencedError
        return isinstance(e, (ProducerFencedError, InvalidProducerEpochError))

    def consumer(self, topics, isolation, group):
        from kafka import KafkaConsumer
        return KafkaConsumer(*topics, bootstrap_servers=self.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             isolation_level=isolation, session_timeout_ms=6000,
                             heartbeat_interval_ms=500)

    def poll(self, c):
        out = []
        for records in c.poll(timeout_ms=300).values():
            out.extend(Message(m.partition, m.offset, m.key, m.value) for m in records)
        return out

    def send_offsets(self, p, c, topic, positions):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata
        offsets = {TopicPartition(topic, part): OffsetAndMetadata(off, "", -1)
                   for part, off in positions.items()}
        p.send_offsets_to_transaction(offsets, c.group_metadata())

    def committed(self, c, topic, partitions):
        from kafka import TopicPartition
        return {part: c.committed(TopicPartition(topic, part)) for part in partitions}


def produce_all(client, p, topic, values):
    for i, v in enumerate(values):
        client.send(p, topic, f"k{i}".encode(), v.encode(), i % 2)


def consume(client, topics, isolation, want, timeout=30, group=None):
    c = client.consumer(topics, isolation, group or f"reader-{uuid.uuid4()}")
    got, deadline = [], time.time() + timeout
    while len(got) < want and time.time() < deadline:
        got.extend(client.poll(c))
    # Anything beyond `want` would be visible by now too.
    end = time.time() + 1.5
    while time.time() < end:
        got.extend(client.poll(c))
    return c, got


def main():
    bootstrap, input_topic, output_topic = sys.argv[1], sys.argv[2], sys.argv[3]
    quirks = sys.argv[4] if len(sys.argv) > 4 else ""
    client = {"confluent": Confluent, "kafka-python": KafkaPython}[
        sys.argv[5] if len(sys.argv) > 5 else "confluent"](bootstrap)
    tansu = quirks == "tansu"
    txn_id = f"txn-{uuid.uuid4()}"
    print(f"client {client.name}", flush=True)

    # 1. One committed and one aborted transaction; another producer keeps one open.
    p = client.producer(txn_id)
    p.begin_transaction()
    produce_all(client, p, input_topic, COMMITTED)
    client.commit(p)
    p.begin_transaction()
    produce_all(client, p, input_topic, ABORTED)
    client.flush(p)
    client.abort(p)
    print("ok producer committed one transaction and aborted one", flush=True)
    p_open = client.producer(f"open-{uuid.uuid4()}")
    p_open.begin_transaction()
    produce_all(client, p_open, input_topic, OPEN)
    client.flush(p_open)

    c, got = consume(client, [input_topic], "read_committed", len(COMMITTED))
    values = sorted(m.value.decode() for m in got)
    check("read_committed sees exactly the committed records (not the aborted or open ones)",
          values == sorted(COMMITTED), f"got {values}", relaxed=tansu)
    c.close()
    everything = COMMITTED + ABORTED + OPEN
    c, got = consume(client, [input_topic], "read_uncommitted", len(everything))
    values = sorted(m.value.decode() for m in got)
    check("read_uncommitted sees committed, aborted and open records",
          values == sorted(everything), f"got {values}")
    c.close()
    client.abort(p_open)

    # 2. Consume-transform-produce: read the committed input in a group, write the
    #    output and commit the group's offsets in one transaction.
    group = f"eos-{uuid.uuid4()}"
    c, got = consume(client, [input_topic], "read_committed", len(COMMITTED), group=group)
    check("the group reads the committed input",
          sorted(m.value.decode() for m in got) == sorted(COMMITTED),
          f"got {sorted(m.value.decode() for m in got)}", relaxed=tansu)
    got = [m for m in got if m.value.decode() in COMMITTED]
    positions = {}
    for m in got:
        positions[m.partition] = max(positions.get(m.partition, 0), m.offset + 1)
    p.begin_transaction()
    for m in got:
        client.send(p, output_topic, m.key, b"out-" + m.value, m.partition)
    try:
        client.send_offsets(p, c, input_topic, positions)
        client.commit(p)
        sent = True
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        check("send_offsets_to_transaction and commit", False, repr(e), relaxed=tansu)
        sent = False
        try:
            client.abort(p)
        except Exception:  # noqa: BLE001
            pass
    if sent:
        print("ok send_offsets_to_transaction and commit", flush=True)
        committed = client.committed(c, input_topic, sorted(positions))
        check("offsets sent in the transaction are committed", committed == positions,
              f"committed {committed}, expected {positions}", relaxed=tansu)
    c.close()
    c, got = consume(client, [output_topic], "read_committed", len(OUTPUT))
    values = sorted(m.value.decode() for m in got)
    check("the transaction's output is visible to read_committed",
          values == sorted(OUTPUT) or (tansu and not sent), f"got {values}")
    c.close()

    # 3. A second producer with the same transactional id fences the first, whose open
    #    transaction the coordinator aborts.
    p.begin_transaction()
    client.send(p, input_topic, None, b"zombie", 0)
    client.flush(p)
    p2 = client.producer(txn_id)
    fenced = False
    try:
        client.send(p, input_topic, None, b"zombie-2", 0)
        client.commit(p)
    except client.fenced_error() as e:
        fenced = client.is_fenced(e)
        print(f"the first producer failed with {e!r}", flush=True)
    check("a second producer with the same transactional id fences the first", fenced,
          "the zombie committed", relaxed=tansu)
    p2.begin_transaction()
    client.send(p2, input_topic, None, b"second", 0)
    client.commit(p2)
    print("ok the new producer commits", flush=True)
    want = sorted(COMMITTED + ["second"])
    c, got = consume(client, [input_topic], "read_committed", len(want))
    values = sorted(m.value.decode() for m in got)
    check("read_committed sees the new producer's record and not the fenced one's",
          values == want, f"got {values}", relaxed=tansu)
    c.close()

    if failures:
        raise SystemExit(f"{len(failures)} checks failed: {failures}")


if __name__ == "__main__":
    main()
