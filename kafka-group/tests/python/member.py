"""One librdkafka (confluent-kafka) member of a consumer group, driven by
tests/interop.rs.

usage: member.py BOOTSTRAP TOPIC GROUP STRATEGY STOP_AT SECONDS
  STRATEGY: librdkafka's partition.assignment.strategy (range, cooperative-sticky, ...),
            or "consumer": group.protocol=consumer (KIP-848, the broker assigns)
  STOP_AT:  consume only records with an offset below this (-1: no limit); records at
            or after it are neither counted nor committed
  SECONDS:  exit after this long; the member also exits when its stdin closes

It subscribes to TOPIC, consumes, and after every batch commits what it consumed
synchronously. It prints one JSON object per line on stdout:

  {"event": "assignment", "partitions": [..], "change": "assign"|"revoke"|"lost",
   "delta": [..]}                                         whenever the assignment changes
  {"event": "first", "partition": p, "offset": o}        first record seen per partition
  {"event": "committed", "partition": p, "offset": o}    after each successful commit
  {"event": "error", "error": "..."}                     consume or commit errors
  {"event": "closed"}                                    after close() (the member left)

Set INTEROP_DEBUG (e.g. to "cgrp,protocol") for librdkafka's debug log on stderr.
"""
import json
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def say(**fields):
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    bootstrap, topic, group, strategy, stop_at, seconds = sys.argv[1:7]
    stop_at, seconds = int(stop_at), float(seconds)

    stdin_closed = threading.Event()

    def watch_stdin():
        for _ in sys.stdin:
            pass
        stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": "interop-librdkafka",
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 30000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if strategy == "consumer":
        # KIP-848: the broker assigns and times the heartbeats; librdkafka refuses the
        # classic protocol's settings.
        for key in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
            del config[key]
        config["group.protocol"] = "consumer"
    if os.environ.get("INTEROP_DEBUG"):
        config["debug"] = os.environ["INTEROP_DEBUG"]
    c = Consumer(config)

    # librdkafka's only cooperative strategy; confluent-kafka does not expose
    # rd_kafka_rebalance_protocol().
    # (KIP-848's consumer protocol is incremental too.)
    cooperative = strategy in ("cooperative-sticky", "consumer")
    assigned = set()

    def report(change, partitions):
        delta = sorted(tp.partition for tp in partitions if tp.topic == topic)
        say(event="assignment", partitions=sorted(assigned), change=change, delta=delta)

    # With cooperative-sticky, confluent-kafka hands these callbacks the increments and,
    # since they do not assign themselves, calls incremental_assign/_unassign after them;
    # with an eager strategy it calls assign/unassign with the whole set.
    def on_assign(consumer, partitions):
        if cooperative:
            assigned.update(tp.partition for tp in partitions if tp.topic == topic)
        else:
            assigned.clear()
            assigned.update(tp.partition for tp in partitions if tp.topic == topic)
        report("assign", partitions)

    def on_revoke(consumer, partitions):
        if cooperative:
            assigned.difference_update(tp.partition for tp in partitions)
        else:
            assigned.clear()
        report("revoke", partitions)

    def on_lost(consumer, partitions):
        assigned.difference_update(tp.partition for tp in partitions)
        report("lost", partitions)

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    first = set()
    pending = {}  # partition -> next offset to commit
    deadline = time.time() + seconds
    while time.time() < deadline and not stdin_closed.is_set():
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error():
                say(event="error", error=str(m.error()))
                continue
            p, o = m.partition(), m.offset()
            if stop_at >= 0 and o >= stop_at:
                continue
            if p not in first:
                first.add(p)
                say(event="first", partition=p, offset=o)
            pending[p] = o + 1
        # Only partitions still assigned: a commit for a revoked one is refused.
        for p in [p for p in pending if p not in assigned]:
            del pending[p]
        if pending:
            offsets = [TopicPartition(topic, p, o) for p, o in sorted(pending.items())]
            try:
                result = c.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                say(event="error", error=f"commit: {e}")
                continue
            for tp in result or []:
                if tp.error:
                    say(event="error", error=f"commit {tp.partition}: {tp.error}")
                else:
                    say(event="committed", partition=tp.partition, offset=tp.offset)
                    if pending.get(tp.partition) == tp.offset:
                        del pending[tp.partition]
    c.close()
    say(event="closed")


if __name__ == "__main__":
    main()
