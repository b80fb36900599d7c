"""Where librdkafka (the confluent-kafka package) puts each key, for the partitioner
parity test (tests/partitioner_parity.rs).

usage: partitions.py BOOTSTRAP KEYS PARTITIONER=TOPIC...

For each PARTITIONER (librdkafka's `partitioner` property) it produces to TOPIC one
record with each key key-0 .. key-(KEYS-1), then one with an empty key and one with a
null key, and prints for every delivered record one line, from the delivery report:

    PARTITIONER KIND KEY PARTITION

KIND is `k` (KEY is the key, ASCII without spaces), `empty` or `null` (KEY is `-`).
Exits non-zero if any record fails.
"""
import sys

from confluent_kafka import Producer


def run(bootstrap, keys, partitioner, topic, out):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": partitioner,
        "linger.ms": 5,
        "acks": "all",
    })
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
            return
        key = msg.key()
        if key is None:
            kind, text = "null", "-"
        elif key == b"":
            kind, text = "empty", "-"
        else:
            kind, text = "k", key.decode()
        out.append(f"{partitioner} {kind} {text} {msg.partition()}")

    records = [f"key-{i}".encode() for i in range(keys)] + [b"", None]
    for key in records:
        while True:
            try:
                p.produce(topic, key=key, value=b"v", on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(60) != 0:
        raise SystemExit(f"{partitioner}: records still queued after flush")
    if errors:
        raise SystemExit(f"{partitioner}: {len(errors)} delivery errors, e.g. {errors[:3]}")
    if len([line for line in out if line.startswith(partitioner + " ")]) != len(records):
        raise SystemExit(f"{partitioner}: missing delivery reports")


def main():
    bootstrap, keys, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    out = []
    for spec in specs:
        partitioner, topic = spec.split("=", 1)
        run(bootstrap, keys, partitioner, topic, out)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
