#!/usr/bin/env python3
"""Keeps from an event recording (config `record_events`) only the connections
to or from one TCP port, and the exits of their processes, so real traffic can
be committed as a small, deterministic fixture.

usage: filter-recording.py IN OUT PORT
Layouts: ebpf-probes/include/events.h (header 32 bytes; conn_open adds
local_addr[16], peer_addr[16], local_port u16, peer_port u16 at 64 and 66)."""
import struct
import sys

OPEN, DATA, CLOSE, EXIT = 1, 2, 3, 4


def records(buf):
    off = 0
    while off + 4 <= len(buf):
        (n,) = struct.unpack_from("<I", buf, off)
        yield buf[off + 4 : off + 4 + n]
        off += 4 + n


def main():
    src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    buf = open(src, "rb").read()
    conns, tgids, kept = set(), set(), []
    for r in records(buf):
        _ts, tgid, _tid, kind, _pad, conn_id = struct.unpack_from("<QIIIIQ", r, 0)
        if kind == OPEN:
            lport, pport = struct.unpack_from("<HH", r, 64)
            if port in (lport, pport):
                conns.add(conn_id)
                tgids.add(tgid)
        if (kind in (OPEN, DATA, CLOSE) and conn_id in conns) or (kind == EXIT and tgid in tgids):
            kept.append(r)
    with open(dst, "wb") as f:
        for r in kept:
            f.write(struct.pack("<I", len(r)) + r)
    print(f"kept {len(kept)} records, {len(conns)} connections")


if __name__ == "__main__":
    main()
