#!/usr/bin/env python3
"""Many idle TCP connections for tests/tests/faults.rs.

    conns.py serve PORT WORKERS STATUS_DIR
        Listens on 127.0.0.1:PORT and forks WORKERS processes that share the
        listening socket. Each accepts connections (at most what its
        RLIMIT_NOFILE allows), reads and discards what arrives, never
        answers, and closes a connection when its peer does; it keeps the
        number it holds in STATUS_DIR/open.<worker> (rewritten within 0.2 s
        of a change). Prints "listening"; everything stops at stdin EOF.

    conns.py connect PORT N SOURCE_IP SEND
        Opens N connections to 127.0.0.1:PORT from SOURCE_IP (e.g.
        127.0.0.2: each loopback address has its own ephemeral ports), at
        most 2,000 handshakes in flight, and sends on each, as SEND says,
        a request head ("http": "GET /hold/I HTTP/1.1") or one byte that
        is no protocol ("byte": the receiver tracks a connection from its
        first bytes on, and parses none). Prints "ready N" when all are connected and
        sent (or "failed K ..." and exits 1), then holds them until a line
        arrives on stdin, closes them all, prints "closed" and waits for
        stdin EOF.

A process can hold only RLIMIT_NOFILE descriptors and raising the hard
limit needs CAP_SYS_RESOURCE, which containers often lack: large counts are
spread over several client processes and server workers.
"""

import errno
import os
import resource
import select
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24


def nofile():
    """Raises the soft RLIMIT_NOFILE to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def write_status(path, n):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    os.rename(tmp, path)


def worker(ls, k, status_dir):
    cap = nofile() - 64
    status = os.path.join(status_dir, f"open.{k}")
    write_status(status, 0)
    ep = select.epoll()
    ep.register(ls.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    ep.register(sys.stdin.fileno(), select.EPOLLIN | select.EPOLLHUP)
    conns = {}
    accepting = True
    written, last_write = 0, 0.0
    while True:
        for fd, ev in ep.poll(0.2, 4096):
            if fd == ls.fileno():
                while len(conns) < cap:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    c.setblocking(False)
                    conns[c.fileno()] = c
                    ep.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                if len(conns) >= cap and accepting:
                    ep.unregister(ls.fileno())
                    accepting = False
            elif fd == sys.stdin.fileno():
                if not os.read(fd, 4096):
                    return
            else:
                c = conns.get(fd)
                if c is None:
                    continue
                try:
                    data = c.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    ep.unregister(fd)
                    del conns[fd]
                    c.close()
                    if not accepting and len(conns) < cap:
                        ep.register(ls.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
                        accepting = True
        now = time.monotonic()
        if len(conns) != written and now - last_write >= 0.2:
            write_status(status, len(conns))
            written, last_write = len(conns), now


def serve(port, workers, status_dir):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(65535)
    ls.setblocking(False)
    pids = []
    for k in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                worker(ls, k, status_dir)
            finally:
                os._exit(0)
        pids.append(pid)
    ls.close()
    print("listening", flush=True)
    for pid in pids:
        os.waitpid(pid, 0)


def connect(port, n, source_ip, send):
    nofile()
    ep = select.epoll()
    pending = {}
    held = []
    failed = []
    next_i = 0
    in_flight_max = 2000
    while next_i < n or pending:
        while next_i < n and len(pending) < in_flight_max:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                failed.append(str(e))
                break
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((source_ip, 0))
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc not in (0, errno.EINPROGRESS):
                failed.append(os.strerror(rc))
                s.close()
            else:
                pending[s.fileno()] = (s, next_i)
                ep.register(s.fileno(), select.EPOLLOUT)
            next_i += 1
        if failed:
            break
        for fd, ev in ep.poll(5.0, 4096):
            s, i = pending.pop(fd)
            ep.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                failed.append(os.strerror(err))
                s.close()
                continue
            if send == "http":
                s.send(f"GET /hold/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            else:
                s.send(b"\x00")
            held.append(s)
    if failed:
        print(f"failed {len(failed)} {failed[:3]} after {len(held)}", flush=True)
        sys.exit(1)
    print(f"ready {len(held)}", flush=True)
    sys.stdin.readline()
    for s in held:
        s.close()
    print("closed", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "connect":
        connect(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
