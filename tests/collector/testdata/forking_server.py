"""A forking HTTP/1.1 server for the selection tests.

    python3 forking_server.py PORT

The parent accepts; every connection is handled by a forked child
(socketserver.ForkingMixIn), which answers each GET with its own pid
("pid <n>"), so the test knows which process served which request. A child
that served a path under /quick/ exits as soon as its connection closes;
others linger a few seconds, like long-lived prefork workers.
"""

import http.server
import os
import socketserver
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    linger = False

    def do_GET(self):
        self.linger = not self.path.startswith("/quick/")
        body = f"pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle(self):
        super().handle()
        if self.linger:
            time.sleep(3)

    def log_message(self, *args):
        pass


class ForkingHTTPServer(socketserver.ForkingMixIn, http.server.HTTPServer):
    pass


if __name__ == "__main__":
    server = ForkingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"forking_server: pid {os.getpid()} listening on {sys.argv[1]}", flush=True)
    server.serve_forever()
