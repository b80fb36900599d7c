#!/usr/bin/env python3
"""Writes the seed corpora under kafka-protocol/fuzz/seeds/<target>/ from the golden
captures in kafka-protocol/tests/golden/*.kcap (see the README there for the format).

    python3 kafka-protocol/fuzz/make_seeds.py

- decode_request:  the smallest request frame of each (API key, version).
- decode_response: the smallest response frame of each (API key, version), prefixed
                   with the 4 selector bytes the target maps back to that API/version.
- record_batch:    every record batch (found by its magic byte and CRC-32C) of each
                   codec, smallest first, one per codec; plus hand-built legacy
                   message sets (magic 0 and 1, plain and gzip-wrapped).
- decompress:      the records section of each compressed batch, prefixed with its
                   codec byte; plus small gzip/none inputs.

Seeds are deterministic; re-running overwrites them. Only the standard library is used.
"""
import gzip
import hashlib
import os
import re
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
GOLDEN = os.path.join(CRATE, "tests", "golden")
MESSAGES = os.path.join(CRATE, "src", "messages", "mod.rs")
OUT = os.path.join(HERE, "seeds")
# Frames larger than this are skipped (keeps the committed seeds to a few KB).
MAX_FRAME = 700


def api_table():
    """ApiKey variants: name -> key, and name -> (min, max) version."""
    src = open(MESSAGES, encoding="utf-8").read()
    enum = src[src.index("pub enum ApiKey {"):]
    enum = enum[: enum.index("\n}")]
    keys = {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+) = (\d+),$", enum, re.M)}
    versions = {
        m[1]: (int(m[2]), int(m[3]))
        for m in re.finditer(r"ApiKey::(\w+) => VersionRange::new\((-?\d+), (-?\d+)\)", src)
    }
    return keys, versions


def read_kcap(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        direction = data[pos : pos + 1]
        conn, n = struct.unpack_from(">II", data, pos + 1)
        yield direction, conn, data[pos + 9 : pos + 9 + n]
        pos += 9 + n


def frames():
    """(kind, api_key, version, frame) for every frame of every capture."""
    out = []
    for name in sorted(os.listdir(GOLDEN)):
        if not name.endswith(".kcap"):
            continue
        pending = {}
        for direction, conn, frame in read_kcap(os.path.join(GOLDEN, name)):
            if direction == b">":
                key, version, corr = struct.unpack_from(">hhi", frame)
                pending[(conn, corr)] = (key, version)
                out.append(("request", key, version, frame))
            else:
                (corr,) = struct.unpack_from(">i", frame)
                key, version = pending.pop((conn, corr))
                out.append(("response", key, version, frame))
    return out


def crc32c(data, _table=[]):
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            _table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record_batches(frame):
    """Every complete magic-2 batch in `frame` whose CRC-32C checks."""
    found = []
    p = 0
    while p + 61 <= len(frame):
        if frame[p + 16] == 2:
            (length,) = struct.unpack_from(">i", frame, p + 8)
            end = p + 12 + length
            if 49 <= length and end <= len(frame):
                (crc,) = struct.unpack_from(">I", frame, p + 17)
                if crc32c(frame[p + 21 : end]) == crc:
                    found.append(frame[p:end])
                    p = end
                    continue
        p += 1
    return found


def legacy_message(offset, magic, value, key=None, attributes=0, timestamp=1700000000000):
    def nbytes(b):
        return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b

    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    body += nbytes(key) + nbytes(value)
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(message)) + message


def gzip_bytes(data):
    return gzip.compress(data, mtime=0)


def write(target, name, data, written):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    written.append(len(data))


def main():
    keys, versions = api_table()
    order = sorted(keys, key=keys.get)  # ApiKey::ALL is in key order
    index = {keys[n]: i for i, n in enumerate(order)}
    mins = {keys[n]: versions[n][0] for n in keys}

    for target in ("decode_request", "decode_response", "record_batch", "decompress"):
        d = os.path.join(OUT, target)
        if os.path.isdir(d):
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))
    written = []

    all_frames = frames()
    smallest = {}
    for kind, key, version, frame in all_frames:
        if len(frame) > MAX_FRAME:
            continue
        k = (kind, key, version)
        if k not in smallest or len(frame) < len(smallest[k]):
            smallest[k] = frame
    for (kind, key, version), frame in sorted(smallest.items()):
        name = f"{key:02}-v{version}"
        if kind == "request":
            write("decode_request", name, frame, written)
        else:
            selector = struct.pack(">HH", index[key], version - mins[key])
            write("decode_response", name, selector + frame, written)

    # Record batches, one per codec (the smallest), and their compressed sections.
    by_codec = {}
    for _, _, _, frame in all_frames:
        for batch in record_batches(frame):
            (attributes,) = struct.unpack_from(">h", batch, 21)
            codec = attributes & 7
            if codec not in by_codec or len(batch) < len(by_codec[codec]):
                by_codec[codec] = batch
    codec_names = ["none", "gzip", "snappy", "lz4", "zstd"]
    for codec, batch in sorted(by_codec.items()):
        write("record_batch", f"batch-{codec_names[codec]}", batch, written)
        if codec != 0:
            write("decompress", codec_names[codec], bytes([codec]) + batch[61:], written)

    # Legacy message sets: v0 and v1 plain, and a v1 gzip wrapper of two v1 messages
    # (inner offsets relative, as the Java client writes them).
    write("record_batch", "legacy-v0", legacy_message(0, 0, b"v0-a") + legacy_message(1, 0, None, b"k"), written)
    write("record_batch", "legacy-v1", legacy_message(5, 1, b"v1-a", b"k1"), written)
    inner = legacy_message(0, 1, b"inner-0") + legacy_message(1, 1, b"inner-1")
    write("record_batch", "legacy-v1-gzip", legacy_message(11, 1, gzip_bytes(inner), attributes=1), written)
    write("record_batch", "mixed", legacy_message(0, 1, b"x") + by_codec.get(0, b""), written)

    text = b"key-value-key-value-header-h-none " * 4
    write("decompress", "none", bytes([0]) + text, written)
    write("decompress", "gzip-text", bytes([1]) + gzip_bytes(text), written)
    write("decompress", "empty", b"", written)

    print(f"wrote {len(written)} seeds, {sum(written)} bytes, under {os.path.relpath(OUT)}")


if __name__ == "__main__":
    sys.exit(main())
