"""confluent-kafka's AdminClient (librdkafka), and one librdkafka group member, driven
by tests/admin.rs to check that what our Admin does is seen the same way by an
independent client, and the other way round.

usage: admin.py BOOTSTRAP

Reads one JSON command per line on stdin and answers each with one JSON line on
stdout: {"ok": RESULT} or {"error": "..."} (the librdkafka error, with its code name
in "code" when there is one). Commands ("op" and its fields):

  create_topic      topic, partitions, configs {name: value}
  describe_topic    topic                       -> {"partitions": n, "replicas": [[..]..]}
  configs           topic                       -> {name: value} of the topic's configs
  alter_config      topic, name, value          (incremental SET)
  group_offsets     group                       -> {"topic/partition": offset}
  alter_offsets     group, topic, offsets {partition: offset}
  describe_group    group                       -> {"state", "members": [{"client_id",
                                                    "host", "assignment": ["t/p"..]}]}
  delete_group      group
  list_offsets      topic, partition, spec ("earliest"|"latest") -> offset
  cluster                                       -> {"cluster_id", "controller", "brokers"}
  join              group, topic, below, client_id: a member that consumes and commits
                    the records below offset `below` of what it is assigned, answers
                    {"assignment": ["t/p"..]} once it has, and stays in the group
                    (polling) until "leave"
  leave             closes the member
"""
import json
import sys
import threading
import time

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka import Consumer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

TIMEOUT = 20


def wait(futures):
    """The result of each future of a dict of futures."""
    return {k: f.result(timeout=TIMEOUT) for k, f in futures.items()}


class Member:
    def __init__(self, bootstrap, group, topic, below, client_id):
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": client_id,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 500,
            }
        )
        self.consumer.subscribe([topic])
        self.below = below
        self.stop = threading.Event()
        self.done = threading.Event()
        self.assignment = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            m = self.consumer.poll(0.2)
            if m is not None and not m.error() and m.offset() < self.below:
                self.consumer.commit(message=m, asynchronous=False)
            assigned = self.consumer.assignment()
            if assigned and not self.done.is_set():
                # Done once past `below` everywhere (what is below was committed, by
                # this member or by the one that had the partition before).
                positions = self.consumer.position(assigned)
                if all(tp.offset >= self.below for tp in positions):
                    self.assignment = sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)
                    self.done.set()
        self.consumer.close()


def main():
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    member = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "create_topic":
                t = NewTopic(cmd["topic"], cmd["partitions"], config=cmd.get("configs", {}))
                wait(admin.create_topics([t]))
                out = None
            elif op == "describe_topic":
                md = admin.list_topics(topic=cmd["topic"], timeout=TIMEOUT).topics[cmd["topic"]]
                if md.error is not None:
                    raise KafkaException(md.error)
                parts = sorted(md.partitions.values(), key=lambda p: p.id)
                out = {"partitions": len(parts), "replicas": [p.replicas for p in parts]}
            elif op == "configs":
                res = ConfigResource(ConfigResource.Type.TOPIC, cmd["topic"])
                (entries,) = wait(admin.describe_configs([res])).values()
                out = {k: e.value for k, e in entries.items()}
            elif op == "alter_config":
                res = ConfigResource(
                    ConfigResource.Type.TOPIC,
                    cmd["topic"],
                    incremental_configs=[
                        ConfigEntry(cmd["name"], cmd["value"], incremental_operation=AlterConfigOpType.SET)
                    ],
                )
                wait(admin.incremental_alter_configs([res]))
                out = None
            elif op == "group_offsets":
                req = ConsumerGroupTopicPartitions(cmd["group"])
                (r,) = wait(admin.list_consumer_group_offsets([req])).values()
                out = {
                    f"{tp.topic}/{tp.partition}": tp.offset
                    for tp in r.topic_partitions
                    if tp.offset >= 0
                }
            elif op == "alter_offsets":
                tps = [TopicPartition(cmd["topic"], int(p), o) for p, o in cmd["offsets"].items()]
                req = ConsumerGroupTopicPartitions(cmd["group"], tps)
                (r,) = wait(admin.alter_consumer_group_offsets([req])).values()
                errors = [str(tp.error) for tp in r.topic_partitions if tp.error]
                if errors:
                    raise RuntimeError("; ".join(errors))
                out = None
            elif op == "describe_group":
                (g,) = wait(admin.describe_consumer_groups([cmd["group"]])).values()
                out = {
                    "state": str(g.state).split(".")[-1],
                    "members": [
                        {
                            "client_id": m.client_id,
                            "host": m.host,
                            "assignment": sorted(
                                f"{tp.topic}/{tp.partition}" for tp in m.assignment.topic_partitions
                            ),
                        }
                        for m in g.members
                    ],
                }
            elif op == "delete_group":
                wait(admin.delete_consumer_groups([cmd["group"]]))
                out = None
            elif op == "list_offsets":
                spec = OffsetSpec.earliest() if cmd["spec"] == "earliest" else OffsetSpec.latest()
                (r,) = wait(admin.list_offsets({TopicPartition(cmd["topic"], cmd["partition"]): spec})).values()
                out = r.offset
            elif op == "cluster":
                c = admin.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
                out = {
                    "cluster_id": c.cluster_id,
                    "controller": c.controller.id if c.controller else -1,
                    "brokers": sorted(n.id for n in c.nodes),
                }
            elif op == "join":
                member = Member(bootstrap, cmd["group"], cmd["topic"], cmd["below"], cmd["client_id"])
                if not member.done.wait(60):
                    raise RuntimeError("the member did not consume its partitions in 60 s")
                out = {"assignment": member.assignment}
            elif op == "leave":
                if member is not None:
                    member.stop.set()
                    member.thread.join(30)
                    member = None
                out = None
            else:
                raise RuntimeError(f"unknown op {op}")
            answer = {"ok": out}
        except KafkaException as e:
            err = e.args[0]
            answer = {"error": str(err), "code": err.name() if hasattr(err, "name") else None}
        except Exception as e:  # noqa: BLE001 - every failure goes back to the test
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer, sort_keys=True) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
