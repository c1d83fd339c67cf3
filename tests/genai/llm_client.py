#!/usr/bin/env python3
"""A client of the LLM mock (tests/genai/mock_llm.py) for the GenAI tests.

One process, one keep-alive connection (http.client, over ssl with
certificate verification off when --tls), doing a list of calls in order:

  llm_client.py --port P [--host 127.0.0.1] [--tls] [--marker M] --calls FILE|JSON

A call is {"path": "/v1/chat/completions", "body": {...}, "headers": {...},
"method": "POST", "label": "...", "new_connection": false}; every "@MARKER@"
in the calls is replaced by --marker before parsing, so prompts can hold a
secret the test then looks for in exported bytes. Bodies are sent as JSON
with Content-Length; responses are read incrementally (read1), gunzipped
when Content-Encoding says gzip, and parsed: SSE into events, NDJSON into
objects, otherwise JSON.

Prints one JSON line per call: label, status, local_port, content_type,
content_encoding, transfer_encoding, wire_bytes, body_bytes, reads (how many
reads returned data), first_chunk_s and total_s (from sending the request),
and the response (parsed body, or the list of events / objects).
"""

import argparse
import http.client
import json
import os
import ssl
import sys
import time
import zlib


def parse_sse(text):
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        ev = {"event": None, "data": None}
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                ev["event"] = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        raw = "\n".join(data)
        try:
            ev["data"] = json.loads(raw)
        except ValueError:
            ev["data"] = raw
        events.append(ev)
    return events


def parse_body(ctype, text):
    if "text/event-stream" in ctype:
        return parse_sse(text)
    if "ndjson" in ctype:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    try:
        return json.loads(text)
    except ValueError:
        return text


class Client:
    def __init__(self, host, port, tls):
        self.host, self.port, self.tls = host, port, tls
        self.conn = None

    def connect(self):
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=60, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.conn.connect()

    def call(self, call):
        if self.conn is None or call.get("new_connection"):
            if self.conn is not None:
                self.conn.close()
            self.connect()
        body = call.get("body")
        data = call["raw"].encode() if "raw" in call else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", "User-Agent": "llm-client/1.0"}
        headers.update(call.get("headers") or {})
        local_port = self.conn.sock.getsockname()[1]
        t0 = time.monotonic()
        self.conn.request(call.get("method", "POST"), call["path"], body=data, headers=headers)
        resp = self.conn.getresponse()
        first = None
        reads = 0
        wire = bytearray()
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            if first is None:
                first = time.monotonic() - t0
            reads += 1
            wire += chunk
        # read1 leaves a Content-Length response open at its end: read() closes it,
        # so the connection is ready for the next request.
        wire += resp.read()
        total = time.monotonic() - t0
        encoding = resp.getheader("Content-Encoding") or ""
        raw = bytes(wire)
        if "gzip" in encoding.lower():
            raw = zlib.decompressobj(31).decompress(raw)
        ctype = resp.getheader("Content-Type") or ""
        text = raw.decode("utf-8", errors="replace")
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return {
            "label": call.get("label"),
            "path": call["path"],
            "status": resp.status,
            "local_port": local_port,
            "content_type": ctype,
            "content_encoding": encoding,
            "transfer_encoding": resp.getheader("Transfer-Encoding") or "",
            "wire_bytes": len(wire),
            "body_bytes": len(raw),
            "reads": reads,
            "first_chunk_s": first,
            "total_s": total,
            "response": parse_body(ctype, text),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--marker", default="", help='replaces every "@MARKER@" in the calls')
    ap.add_argument("--calls", required=True, help="a JSON list of calls, or a file holding one")
    args = ap.parse_args()

    text = args.calls
    if not text.lstrip().startswith("[") and os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    calls = json.loads(text.replace("@MARKER@", args.marker))
    client = Client(args.host, args.port, args.tls)
    failed = False
    for i, call in enumerate(calls):
        try:
            out = client.call(call)
        except Exception as e:  # report and go on: the test sees which call failed
            out = {"label": call.get("label"), "path": call.get("path"), "status": 0, "error": f"{type(e).__name__}: {e}"}
            failed = True
            client.conn = None
        out["index"] = i
        print(json.dumps(out), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
