#!/usr/bin/env python3
"""Records the DNS fixtures of ebpf-core/tests/fixtures/dns (byte-exact messages
from a real resolver and real clients).

Run as root: `scripts/record-dns-fixtures.py OUTDIR`. It re-executes itself
in fresh network and mount namespaces, so the host's resolver is untouched:
loopback only, /etc/resolv.conf replaced there by one naming 127.0.0.1.
dnsmasq (Debian's) answers on 127.0.0.1:5353 for the zone flows.test (one
name with an A and an AAAA record, one with a CNAME to it; any other name
of the zone is NXDOMAIN). A relay on 127.0.0.1:53 (UDP and TCP) passes
every message through unchanged and writes it down. Clients: getent (glibc,
A and AAAA on one socket), dig over UDP and TCP, Python's getaddrinfo.

File format, one file per client run: records of
  direction (1 byte: 'Q' client -> resolver, 'R' resolver -> client),
  transport (1 byte: 'u' UDP datagram, 't' TCP bytes as one read() got them),
  length (2 bytes, big endian), then the bytes.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

ZONE_CONF = """\
no-resolv
no-hosts
local=/flows.test/
host-record=web.flows.test,10.77.0.5,fd00:77::5
cname=alias.flows.test,web.flows.test
"""


def relay(out, lock, stop):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(8)

    def write(direction, transport, data):
        with lock:
            out[0].append(struct.pack(">ccH", direction, transport, len(data)) + data)

    def serve_udp():
        while not stop.is_set():
            udp.settimeout(0.2)
            try:
                query, client = udp.recvfrom(65535)
            except socket.timeout:
                continue
            write(b"Q", b"u", query)
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.sendto(query, ("127.0.0.1", 5353))
            answer = up.recv(65535)
            up.close()
            write(b"R", b"u", answer)
            udp.sendto(answer, client)

    def serve_tcp():
        while not stop.is_set():
            tcp.settimeout(0.2)
            try:
                conn, _ = tcp.accept()
            except socket.timeout:
                continue
            up = socket.create_connection(("127.0.0.1", 5353))
            conn.settimeout(1.0)
            try:
                while True:
                    data = conn.recv(65535)
                    if not data:
                        break
                    write(b"Q", b"t", data)
                    up.sendall(data)
                    # One response per query: its length, then the rest.
                    head = up.recv(2)
                    need = struct.unpack(">H", head)[0]
                    body = b""
                    while len(body) < need:
                        body += up.recv(need - len(body))
                    write(b"R", b"t", head + body)
                    conn.sendall(head + body)
            except (socket.timeout, ConnectionError, struct.error):
                pass
            conn.close()
            up.close()

    threads = [threading.Thread(target=serve_udp, daemon=True), threading.Thread(target=serve_tcp, daemon=True)]
    for t in threads:
        t.start()
    return threads


CLIENTS = {
    "getent_ahosts": ["getent", "ahosts", "web.flows.test"],
    "getent_nxdomain": ["getent", "hosts", "missing.flows.test"],
    "dig_aaaa": ["dig", "+tries=1", "@127.0.0.1", "web.flows.test", "AAAA"],
    "dig_tcp_a": ["dig", "+tcp", "+tries=1", "@127.0.0.1", "web.flows.test", "A"],
    "dig_cname": ["dig", "+tries=1", "@127.0.0.1", "alias.flows.test", "A"],
    "python_getaddrinfo": [
        sys.executable,
        "-c",
        "import socket; print(socket.getaddrinfo('web.flows.test', 80, socket.AF_INET, socket.SOCK_STREAM))",
    ],
}


def inside(outdir):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/tmp/oe-dns-resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", "/tmp/oe-dns-resolv.conf", "/etc/resolv.conf"], check=True)
    with open("/tmp/oe-dns-zone.conf", "w") as f:
        f.write(ZONE_CONF)
    dnsmasq = subprocess.Popen(
        ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/tmp/oe-dns-zone.conf",
         "--listen-address=127.0.0.1", "--port=5353", "--bind-interfaces", "--user=root", "--pid-file"]
    )
    time.sleep(0.5)
    out, lock, stop = [[]], threading.Lock(), threading.Event()
    relay(out, lock, stop)
    time.sleep(0.2)
    for name, argv in CLIENTS.items():
        with lock:
            out[0] = []
        run = subprocess.run(argv, capture_output=True, text=True)
        print(f"{name}: rc={run.returncode} {run.stdout.strip()[:200]}")
        time.sleep(0.3)
        with lock:
            records = out[0]
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(b"".join(records))
    stop.set()
    dnsmasq.terminate()
    dnsmasq.wait()


def main():
    outdir = os.path.abspath(sys.argv[1])
    if os.environ.get("OE_DNS_INSIDE") == "1":
        inside(outdir)
        return
    os.makedirs(outdir, exist_ok=True)
    env = dict(os.environ, OE_DNS_INSIDE="1")
    subprocess.run(["unshare", "--net", "--mount", sys.executable, os.path.abspath(__file__), outdir], env=env,
                   check=True)


if __name__ == "__main__":
    main()
