#!/usr/bin/env python3
"""A stdlib HTTP/1.1 server for the otel-ebpf demos and integration tests.

    python3 server.py [HOST] [PORT]        (defaults: 127.0.0.1 8081)

Answers 200 "Hello, <path>!" to every GET/POST/..., and 404 or 500 for
/status/404 and /status/500. HTTP/1.1 with keep-alive: every response has a
Content-Length. Request bodies are read (Content-Length or chunked) so the
connection stays in sync. Knows nothing about OpenTelemetry.
"""

import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "python-demo/1.0"

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                self.rfile.read(size)
                self.rfile.readline()  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _answer(self):
        self._read_body()
        path = urlsplit(self.path).path
        code = 200
        body = f"Hello, {path}!\n"
        if path in ("/status/404", "/status/500"):
            code = int(path.rsplit("/", 1)[1])
            body = f"{code}\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8081
    host = host.strip("[]")
    Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    httpd = Server((host, port), Handler)
    print(f"python-server: listening on {host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
