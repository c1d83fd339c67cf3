#!/usr/bin/env python3
"""Seeds the fuzz corpora from the recorded fixtures, so fuzzing starts from
real traffic: http1_head gets every recorded message, http1_parser (and http2_parser) gets every HTTP/1 (HTTP/2) fixture in the target's chunk
framing ([flags][len][uncaptured][bytes]: flags bit0 = egress), protocols
gets the HTTP/1, HTTP/2, Redis and memcached ones behind their protocol and role bytes (the
h2c upgrade under HTTP/1, which hands it over to HTTP/2), pipeline and
event_decode get the recorded kernel events. Run from the repository root."""
import os
import re
import struct

FIX = "ebpf-core/tests/fixtures"


def http_seed(name, folder="http1"):
    req = open(f"{FIX}/{folder}/{name}.req.bin", "rb").read()
    resp = open(f"{FIX}/{folder}/{name}.resp.bin", "rb").read()
    out, pos = bytearray(), {">": 0, "<": 0}
    for line in open(f"{FIX}/{folder}/{name}.segments"):
        parts = line.split()
        if len(parts) < 2 or parts[0] not in "<>" or not parts[1].isdigit():
            continue
        d, n = parts[0], int(parts[1])
        src = req if d == ">" else resp
        chunk = src[pos[d]:pos[d] + n]
        pos[d] += n
        while chunk:
            piece, chunk = chunk[:255], chunk[255:]
            out += bytes([0 if d == ">" else 1, len(piece), 0]) + piece
    return bytes(out)


def main():
    os.makedirs("fuzz/corpus/http1_parser", exist_ok=True)
    os.makedirs("fuzz/corpus/http1_head", exist_ok=True)
    os.makedirs("fuzz/corpus/protocols", exist_ok=True)
    for f in sorted(os.listdir(f"{FIX}/http1")):
        if f.endswith(".bin"):  # one whole message: its head starts it
            open(f"fuzz/corpus/http1_head/{f[:-len('.bin')]}", "wb").write(open(f"{FIX}/http1/{f}", "rb").read())
        if f.endswith(".segments"):
            name = f[: -len(".segments")]
            open(f"fuzz/corpus/http1_parser/{name}", "wb").write(http_seed(name))
            # Protocol 0 of the registry (http1), role unknown.
            open(f"fuzz/corpus/protocols/http1_{name}", "wb").write(bytes([0, 0]) + http_seed(name))
    # The database parsers: their recordings in the same chunk framing; the
    # SQL text target: every query the client side of those recordings sent.
    os.makedirs("fuzz/corpus/sql_text", exist_ok=True)
    for folder, target in (("postgres", "postgres_parser"), ("mysql", "mysql_parser"), ("redis", "redis_parser"),
                           ("memcached", "memcached_parser")):
        os.makedirs(f"fuzz/corpus/{target}", exist_ok=True)
        for f in sorted(os.listdir(f"{FIX}/{folder}")):
            # A gzipped recording (redis-cli's 170 KB COMMAND DOCS) is too big to start from.
            if f.endswith(".segments") and os.path.exists(f"{FIX}/{folder}/{f[:-len('.segments')]}.resp.bin"):
                name = f[: -len(".segments")]
                open(f"fuzz/corpus/{target}/{name}", "wb").write(http_seed(name, folder))
                # Behind the registry (PROTOCOLS: http1, postgresql, mysql,
                # redis, memcached, http2): Redis is protocol 3, memcached 4; role unknown.
                index = {"redis": 3, "memcached": 4}.get(folder)
                if index is not None:
                    seed = bytes([index, 0]) + http_seed(name, folder)
                    open(f"fuzz/corpus/protocols/{folder}_{name}", "wb").write(seed)
    for folder in ("postgres", "mysql"):
        for f in sorted(os.listdir(f"{FIX}/{folder}/record")):
            if not f.endswith(".sql"):
                continue
            for i, stmt in enumerate(open(f"{FIX}/{folder}/record/{f}", "rb").read().split(b";\n")):
                open(f"fuzz/corpus/sql_text/{folder}_{i:03}", "wb").write(stmt)
    # The registry's order of protocols: the protocols target picks one by
    # its index there.
    registry = open("ebpf-core/src/protocol/registry.rs").read()
    table = registry[registry.index("pub static PROTOCOLS"):]
    order = re.findall(r'name: "(\w+)"', table[: table.index("];")])
    # http2_parser: a mode byte (0: from the start), then the chunks.
    os.makedirs("fuzz/corpus/http2_parser", exist_ok=True)
    for f in sorted(os.listdir(f"{FIX}/http2")):
        if f.endswith(".segments"):
            name = f[: -len(".segments")]
            open(f"fuzz/corpus/http2_parser/{name}", "wb").write(b"\x00" + http_seed(name, "http2"))
            # Role server; an upgrade starts as http1, which hands it over.
            protocol = order.index("http1" if name.endswith("upgrade") else "http2")
            open(f"fuzz/corpus/protocols/http2_{name}", "wb").write(bytes([protocol, 1]) + http_seed(name, "http2"))
    # The messaging decoders: each recorded connection (NAME.cN) in the same
    # framing, for their own targets and, behind their registry index and
    # the client role, for protocols.
    for folder, target in (("kafka", "kafka_parser"), ("mongodb", "mongodb_parser"), ("mqtt", "mqtt_parser")):
        os.makedirs(f"fuzz/corpus/{target}", exist_ok=True)
        for f in sorted(os.listdir(f"{FIX}/{folder}")):
            if f.endswith(".segments"):
                name = f[: -len(".segments")]
                seed = http_seed(name, folder)
                open(f"fuzz/corpus/{target}/{name}", "wb").write(seed)
                open(f"fuzz/corpus/protocols/{folder}_{name}", "wb").write(bytes([order.index(folder), 1]) + seed)
    events = open(f"{FIX}/events/python_curl.bin", "rb").read()
    for target in ("pipeline", "event_decode"):
        os.makedirs(f"fuzz/corpus/{target}", exist_ok=True)
    open("fuzz/corpus/pipeline/python_curl", "wb").write(events)
    off, i = 0, 0
    while off + 4 <= len(events):
        (n,) = struct.unpack_from("<I", events, off)
        open(f"fuzz/corpus/event_decode/record{i:03}", "wb").write(events[off + 4: off + 4 + n])
        off, i = off + 4 + n, i + 1


if __name__ == "__main__":
    main()
