"""An independent transactional client for tests/transactions.rs: librdkafka (the
confluent-kafka package) writes transactions and reads with either isolation level.

usage:
  transactions.py produce BOOTSTRAP TOPIC TRANSACTIONAL_ID
      On partition 0 of TOPIC: a committed transaction of values c0..c2, an aborted
      one of a0..a2 (flushed first, so the records are in the log), a committed one
      of d0..d1. Prints {"ok": true}.
  transactions.py read BOOTSTRAP TOPIC ISOLATION PARTITIONS
      Reads every partition of TOPIC from the earliest offset with
      isolation.level=ISOLATION (read_committed or read_uncommitted) until each is at
      its high watermark and nothing arrived for 2 s. Prints a JSON list of
      [partition, offset, value].
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT_S = 60


def produce(bootstrap, topic, txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    p.init_transactions(30)
    for values, commit in (
        (["c0", "c1", "c2"], True),
        (["a0", "a1", "a2"], False),
        (["d0", "d1"], True),
    ):
        p.begin_transaction()
        for v in values:
            p.produce(topic, value=v.encode(), partition=0)
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)
    print(json.dumps({"ok": True}))


def read(bootstrap, topic, isolation, partitions):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "read-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + TIMEOUT_S
    quiet_since = time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append([m.partition(), m.offset(), m.value().decode()])
            quiet_since = time.time()
            continue
        if time.time() - quiet_since < 2.0:
            continue
        done = True
        for p in range(partitions):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            pos = c.position([TopicPartition(topic, p)])[0].offset
            if pos < 0 and high > 0 or 0 <= pos < high:
                done = False
        if done:
            break
    c.close()
    print(json.dumps(out))


def main():
    mode = sys.argv[1]
    if mode == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "read":
        read(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
