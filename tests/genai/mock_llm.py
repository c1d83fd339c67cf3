#!/usr/bin/env python3
"""A local mock of four LLM API families, for the GenAI end-to-end tests.

One stdlib server (http.server + ssl, a thread per connection, HTTP/1.1
keep-alive) answering, by path:

  OpenAI      POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses
  Anthropic   POST /v1/messages
  Gemini      POST /v1beta/models/{model}:generateContent
              POST /v1beta/models/{model}:streamGenerateContent?alt=sse
  Ollama      POST /api/chat, /api/generate (NDJSON streams, stream defaults to true), /api/embed
  gateway     POST /gateway/chat (OpenAI-shaped; the "user-defined provider" of the tests)

Response bodies have the shapes the providers document (ids, model, usage
field names, finish/stop reasons, SSE event sequences, NDJSON). Nothing is
constant: token counts are derived from the request so different requests
give different counts, deterministically:

  input tokens   = whitespace words of all prompt text + 3      (semconv total, cached included)
  cached tokens  = words // 2 when the prompt has >= 24 words, else 0 (not for embeddings)
  natural output = X-Mock-Output-Tokens header, else 8 + (input * 7 + len(model)) % 25
  output tokens  = min(max tokens requested, natural); the finish reason says
                   "length" (in the provider's words) when the maximum cut it

The completion text starts with a unique word (the ledger's
`completion_marker`) so a test can look for it in exported bytes.

Behaviours chosen per request:
  stream         from the body (`stream`; Gemini by the `:streamGenerateContent`
                 method; Ollama chat/generate default to true)
  gzip           `Content-Encoding: gzip` when the request sends
                 `Accept-Encoding: gzip` AND the model ends in `-gzip` or the
                 request has `X-Mock-Gzip: 1` (streams: gzip flushed per event)
  chunked        every stream; non-stream responses with `X-Mock-Chunked: 1`
  slow streams   --first-delay before the head of a stream, --event-delay
                 between events, so the first chunk arrives measurably before
                 the last
  429            model `rate-limited`: the provider's documented error body
  size           X-Mock-Output-Tokens: 12000 gives a completion over 64 KiB

Options: --tls (self-signed certificate made with the openssl CLI in a temp
dir, removed at exit), --port 0 (the chosen port is printed alone on stdout's
first line once listening), --ledger FILE (one JSON line appended per request
once its response is sent: what the mock answered, the tests' ground truth).
"""

import argparse
import gzip
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

FIRST_DELAY = 0.06
EVENT_DELAY = 0.02
NON_STREAM_DELAY = 0.01

VOCAB = (
    "ocean copper lantern meadow quartz harbor violet timber orbit saddle "
    "falcon pebble cinder marble thistle canyon willow ember prairie lagoon "
    "granite velvet summit walnut glacier harvest beacon juniper tundra mosaic"
).split()

TEXT_KEYS = {"content", "text", "prompt", "input", "system", "instructions"}
ALNUM = string.ascii_letters + string.digits

# Ollama's final objects carry nanosecond timings; fixed, plausible values.
OLLAMA_LOAD_NS = 1_334_875


def rand_id(n, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def now_rfc3339():
    t = time.time()
    base = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((t % 1) * 1e9):09d}Z"


def collect_text(obj, in_text=False, out=None):
    """Every prompt string of a request body: strings under the keys that
    hold prompt text (content, text, prompt, input, system, instructions),
    at any depth (message lists, content parts, Gemini parts)."""
    if out is None:
        out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            collect_text(v, k in TEXT_KEYS, out)
    elif isinstance(obj, list):
        for v in obj:
            collect_text(v, in_text, out)
    elif isinstance(obj, str) and in_text:
        out.append(obj)
    return out


def completion_text(n_words, marker, seed):
    words = [marker] + [VOCAB[(i * 7 + seed) % len(VOCAB)] for i in range(max(0, n_words - 1))]
    return " ".join(words)


def pieces_of(text, max_events=24):
    """The text split into stream deltas, at most about `max_events`."""
    words = text.split(" ")
    per = max(2, -(-len(words) // max_events))
    out = []
    for i in range(0, len(words), per):
        chunk = " ".join(words[i : i + per])
        if i + per < len(words):
            chunk += " "
        out.append(chunk)
    return out or [""]


class Plan:
    """What the mock decided to answer for one request."""

    def __init__(self, handler, provider, operation, model, body, stream):
        self.provider = provider
        self.operation = operation
        self.model = model
        self.body = body if isinstance(body, dict) else {}
        self.stream = stream
        texts = collect_text(self.body)
        self.words = sum(len(t.split()) for t in texts)
        self.input = self.words + 3
        self.cached = self.words // 2 if self.words >= 24 and operation != "embeddings" else 0
        seed = int(hashlib.sha1((model or "").encode()).hexdigest()[:6], 16)
        override = handler.headers.get("X-Mock-Output-Tokens")
        natural = int(override) if override else 8 + (self.input * 7 + len(model or "")) % 25
        maximum = self.max_tokens()
        if maximum is not None and maximum < natural:
            self.output, self.truncated = max(1, maximum), True
        else:
            self.output, self.truncated = natural, False
        self.marker = f"cmplmark{rand_id(20, string.ascii_lowercase + string.digits)}"
        self.text = completion_text(self.output, self.marker, seed)
        accept = handler.headers.get("Accept-Encoding", "")
        wants_gzip = (model or "").endswith("-gzip") or handler.headers.get("X-Mock-Gzip") == "1"
        self.gzip = "gzip" in accept.lower() and wants_gzip
        self.chunked = stream or handler.headers.get("X-Mock-Chunked") == "1"
        self.rate_limited = model == "rate-limited"
        # Filled in while answering, for the ledger.
        self.status = 200
        self.response_model = None
        self.response_id = None
        self.finish_reasons = []
        self.error_type = None
        self.error_code = None
        self.usage_reported = True
        self.aborted = None
        self.first_at = None
        self.events = 0
        self.body_bytes = 0

    def max_tokens(self):
        b = self.body
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if isinstance(b.get(key), int):
                return b[key]
        gc = b.get("generationConfig") or b.get("generation_config") or {}
        if isinstance(gc.get("maxOutputTokens"), int):
            return gc["maxOutputTokens"]
        opts = b.get("options") or {}
        if isinstance(opts.get("num_predict"), int) and opts["num_predict"] >= 0:
            return opts["num_predict"]
        return None


class Ledger:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.seq = 0

    def write(self, entry):
        if not self.path:
            return
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, **entry}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
                f.flush()


class Stream:
    """A chunked response body written one event per chunk (and per write)."""

    def __init__(self, handler, plan, content_type, headers):
        self.h = handler
        self.plan = plan
        self.first_at = None
        self.delay = handler.server.event_delay
        time.sleep(handler.server.first_delay)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        if plan.gzip:
            handler.send_header("Content-Encoding", "gzip")
        for k, v in headers:
            handler.send_header(k, v)
        handler.end_headers()
        self.comp = zlib.compressobj(6, zlib.DEFLATED, 31) if plan.gzip else None

    def send(self, data):
        if self.first_at is not None:
            time.sleep(self.delay)
        if self.comp:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if self.first_at is None:
            self.first_at = self.plan.first_at = time.monotonic()
        self.plan.events += 1
        self.plan.body_bytes += len(data)

    def close(self):
        if self.comp:
            tail = self.comp.flush()
            if tail:
                self.h.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
                self.plan.body_bytes += len(tail)
        self.h.wfile.write(b"0\r\n\r\n")


def sse(data, event=None):
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"
    timeout = 120

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock-llm: %s %s\n" % (self.address_string(), fmt % args))

    # --- request ---------------------------------------------------------

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in ("/", "/health"):
            return self.send_plain(200, "application/json", b'{"status":"ok"}')
        if path in ("/api/tags", "/v1/models"):
            return self.send_plain(200, "application/json", b'{"models":[],"data":[],"object":"list"}')
        self.send_plain(404, "application/json", b'{"error":"not found"}')

    def do_POST(self):
        self.started = time.monotonic()
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        plan = None
        try:
            if body is None or not isinstance(body, dict):
                self.send_plain(400, "application/json", b'{"error":{"message":"invalid JSON body","type":"invalid_request_error"}}')
                return self.ledger_other(path, 400)
            m = re.fullmatch(r"/(?:v1|v1beta|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)", path)
            if path == "/v1/chat/completions":
                plan = Plan(self, "openai", "chat", body.get("model"), body, body.get("stream") is True)
                self.openai_chat(plan, "chat.completion")
            elif path == "/gateway/chat":
                plan = Plan(self, "my-gateway", "chat", body.get("model"), body, body.get("stream") is True)
                self.openai_chat(plan, "chat.completion", gateway=True)
            elif path == "/v1/completions":
                plan = Plan(self, "openai", "text_completion", body.get("model"), body, body.get("stream") is True)
                self.openai_completion(plan)
            elif path == "/v1/embeddings":
                plan = Plan(self, "openai", "embeddings", body.get("model"), body, False)
                self.openai_embeddings(plan)
            elif path == "/v1/responses":
                plan = Plan(self, "openai", "chat", body.get("model"), body, body.get("stream") is True)
                self.openai_responses(plan)
            elif path == "/v1/messages":
                plan = Plan(self, "anthropic", "chat", body.get("model"), body, body.get("stream") is True)
                self.anthropic_messages(plan)
            elif m:
                stream = m.group(2) == "streamGenerateContent"
                plan = Plan(self, "gcp.gemini", "generate_content", m.group(1), body, stream)
                plan.sse = query.get("alt", [""])[0] == "sse"
                self.gemini(plan)
            elif path == "/api/chat":
                plan = Plan(self, "ollama", "chat", body.get("model"), body, body.get("stream", True) is not False)
                self.ollama(plan, chat=True)
            elif path == "/api/generate":
                plan = Plan(self, "ollama", "text_completion", body.get("model"), body, body.get("stream", True) is not False)
                self.ollama(plan, chat=False)
            elif path in ("/api/embed", "/api/embeddings"):
                plan = Plan(self, "ollama", "embeddings", body.get("model"), body, False)
                self.ollama_embed(plan, legacy=path == "/api/embeddings")
            else:
                self.send_plain(404, "application/json", b'{"error":{"message":"unknown path","type":"invalid_request_error"}}')
                return self.ledger_other(path, 404)
        except OSError as e:  # the client went away mid-response (BrokenPipe, reset, TLS EOF)
            self.close_connection = True
            if plan is not None:
                plan.aborted = f"{type(e).__name__}: {e}"
        if plan is not None:
            self.ledger_plan(path, plan)

    # --- ledger ----------------------------------------------------------

    def ledger_base(self, path):
        return {
            "client_port": self.client_address[1],
            "path": path,
            "time": time.time(),
            "duration_s": time.monotonic() - self.started,
        }

    def ledger_other(self, path, status):
        self.server.ledger.write({**self.ledger_base(path), "provider": None, "status": status})

    def ledger_plan(self, path, p):
        ok = p.status < 400
        entry = self.ledger_base(path)
        first = p.first_at
        entry.update(
            provider=p.provider,
            operation=p.operation,
            request_model=p.model,
            response_model=p.response_model,
            response_id=p.response_id,
            input_tokens=p.input if ok and p.usage_reported else None,
            output_tokens=(p.output if p.operation != "embeddings" else None) if ok and p.usage_reported else None,
            cached_tokens=p.cached if ok and p.usage_reported else 0,
            stream=p.stream,
            status=p.status,
            finish_reasons=p.finish_reasons,
            error_type=p.error_type,
            error_code=p.error_code,
            gzip=p.gzip,
            chunked=p.chunked,
            body_bytes=p.body_bytes,
            events=p.events,
            first_chunk_s=(first - self.started) if first is not None else None,
            completion_marker=p.marker if ok and p.operation != "embeddings" else None,
            completion_chars=len(p.text) if ok and p.operation != "embeddings" else 0,
            aborted=p.aborted,
        )
        self.server.ledger.write(entry)

    # --- response writing ------------------------------------------------

    def send_plain(self, status, ctype, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, plan, status, obj, headers=()):
        """A non-stream answer: gzip and chunked as the plan says."""
        time.sleep(NON_STREAM_DELAY)
        plan.status = status
        body = json.dumps(obj).encode()
        if plan.gzip:
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if plan.gzip:
            self.send_header("Content-Encoding", "gzip")
        for k, v in headers:
            self.send_header(k, v)
        if plan.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            # Three uneven chunks, each its own write.
            cuts = [0, len(body) // 5, len(body) * 3 // 5, len(body)]
            for a, b in zip(cuts, cuts[1:]):
                if b > a:
                    self.wfile.write(b"%x\r\n%s\r\n" % (b - a, body[a:b]))
                    plan.events += 1
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            plan.events = 1
        plan.body_bytes = len(body)

    def rate_limit(self, plan):
        """The provider's documented 429."""
        if plan.provider in ("openai", "my-gateway"):
            plan.error_type, plan.error_code = "tokens", "rate_limit_exceeded"
            obj = {
                "error": {
                    "message": f"Rate limit reached for {plan.model} in organization org-mock on tokens per min (TPM): "
                    "Limit 30000, Used 29877, Requested 1024. Please try again in 2.046s. "
                    "Visit https://platform.openai.com/account/rate-limits to learn more.",
                    "type": "tokens",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
            headers = [("retry-after", "3"), ("x-request-id", "req_" + rand_id(32, "0123456789abcdef"))]
        elif plan.provider == "anthropic":
            plan.error_type = "rate_limit_error"
            obj = {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
                },
                "request_id": "req_011C" + rand_id(20),
            }
            headers = [("retry-after", "3"), ("request-id", obj["request_id"])]
        elif plan.provider == "gcp.gemini":
            plan.error_type, plan.error_code = "RESOURCE_EXHAUSTED", "429"
            obj = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}
            headers = []
        else:  # ollama: a bare message, no type: error.type falls back to the status code
            obj = {"error": "server busy, please try again.  maximum pending requests exceeded"}
            headers = []
        # Errors are never gzipped or chunked: plain JSON as the providers send it.
        plan.gzip = plan.chunked = False
        self.send_json(plan, 429, obj, headers)

    # --- OpenAI ----------------------------------------------------------

    @staticmethod
    def openai_model(model):
        if model and not re.search(r"-\d{4}-\d{2}-\d{2}$", model):
            return f"{model}-2024-07-18"
        return model

    def openai_usage(self, p):
        return {
            "prompt_tokens": p.input,
            "completion_tokens": p.output,
            "total_tokens": p.input + p.output,
            "prompt_tokens_details": {"cached_tokens": p.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def openai_chat(self, p, obj_type, gateway=False):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model + "-gw" if gateway else self.openai_model(p.model)
        p.response_id = "chatcmpl-" + rand_id(29)
        finish = "length" if p.truncated else "stop"
        p.finish_reasons = [finish]
        created = int(time.time())
        fingerprint = "fp_" + rand_id(10, "0123456789abcdef")
        headers = [("x-request-id", "req_" + rand_id(32, "0123456789abcdef")), ("openai-processing-ms", "42")]
        if not p.stream:
            return self.send_json(
                p,
                200,
                {
                    "id": p.response_id,
                    "object": obj_type,
                    "created": created,
                    "model": p.response_model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": p.text, "refusal": None, "annotations": []},
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": self.openai_usage(p),
                    "service_tier": "default",
                    "system_fingerprint": fingerprint,
                },
                headers,
            )
        include_usage = bool((p.body.get("stream_options") or {}).get("include_usage"))
        p.usage_reported = include_usage
        base = {
            "id": p.response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": p.response_model,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta, finish_reason=None):
            return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]})

        s = Stream(self, p, "text/event-stream; charset=utf-8", headers)
        s.send(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in pieces_of(p.text):
            s.send(chunk({"content": piece}))
        s.send(chunk({}, finish))
        if include_usage:
            s.send(sse({**base, "choices": [], "usage": self.openai_usage(p)}))
        s.send(b"data: [DONE]\n\n")
        s.close()

    def openai_completion(self, p):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model
        p.response_id = "cmpl-" + rand_id(29)
        finish = "length" if p.truncated else "stop"
        p.finish_reasons = [finish]
        created = int(time.time())
        usage = {"prompt_tokens": p.input, "completion_tokens": p.output, "total_tokens": p.input + p.output}
        if not p.stream:
            return self.send_json(
                p,
                200,
                {
                    "id": p.response_id,
                    "object": "text_completion",
                    "created": created,
                    "model": p.response_model,
                    "choices": [{"text": p.text, "index": 0, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                },
            )
        include_usage = bool((p.body.get("stream_options") or {}).get("include_usage"))
        p.usage_reported = include_usage
        base = {"id": p.response_id, "object": "text_completion", "created": created, "model": p.response_model}
        s = Stream(self, p, "text/event-stream; charset=utf-8", [])
        pieces = pieces_of(p.text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            s.send(sse({**base, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish if last else None}]}))
        if include_usage:
            s.send(sse({**base, "choices": [], "usage": usage}))
        s.send(b"data: [DONE]\n\n")
        s.close()

    def openai_embeddings(self, p):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model
        inputs = p.body.get("input")
        n = len(inputs) if isinstance(inputs, list) and inputs and isinstance(inputs[0], str) else 1
        data = [
            {"object": "embedding", "index": i, "embedding": [round(((i + 1) * (j + 3) % 17) / 17 - 0.5, 6) for j in range(8)]}
            for i in range(n)
        ]
        self.send_json(
            p,
            200,
            {"object": "list", "data": data, "model": p.response_model, "usage": {"prompt_tokens": p.input, "total_tokens": p.input}},
        )

    def openai_responses(self, p):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = self.openai_model(p.model)
        p.response_id = "resp_" + rand_id(48, "0123456789abcdef")
        msg_id = "msg_" + rand_id(48, "0123456789abcdef")
        incomplete = p.truncated

        def response(status, with_output):
            out = {
                "id": p.response_id,
                "object": "response",
                "created_at": int(time.time()),
                "status": status,
                "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if incomplete and status != "in_progress" else None,
                "instructions": p.body.get("instructions"),
                "max_output_tokens": p.body.get("max_output_tokens"),
                "model": p.response_model,
                "output": [],
                "parallel_tool_calls": True,
                "previous_response_id": None,
                "store": True,
                "temperature": 1.0,
                "text": {"format": {"type": "text"}},
                "tool_choice": "auto",
                "tools": [],
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": None,
                "metadata": {},
            }
            if with_output:
                out["output"] = [
                    {
                        "type": "message",
                        "id": msg_id,
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": p.text, "annotations": []}],
                    }
                ]
                out["usage"] = {
                    "input_tokens": p.input,
                    "input_tokens_details": {"cached_tokens": p.cached},
                    "output_tokens": p.output,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": p.input + p.output,
                }
            return out

        final_status = "incomplete" if incomplete else "completed"
        p.finish_reasons = ["length" if incomplete else "stop"]
        if not p.stream:
            return self.send_json(p, 200, response(final_status, True))
        s = Stream(self, p, "text/event-stream; charset=utf-8", [])
        seq = 0

        def ev(kind, **data):
            nonlocal seq
            s.send(sse({"type": kind, "sequence_number": seq, **data}, kind))
            seq += 1

        ev("response.created", response=response("in_progress", False))
        ev("response.in_progress", response=response("in_progress", False))
        ev("response.output_item.added", output_index=0, item={"id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
        ev("response.content_part.added", item_id=msg_id, output_index=0, content_index=0, part={"type": "output_text", "text": "", "annotations": []})
        for piece in pieces_of(p.text):
            ev("response.output_text.delta", item_id=msg_id, output_index=0, content_index=0, delta=piece)
        ev("response.output_text.done", item_id=msg_id, output_index=0, content_index=0, text=p.text)
        ev("response." + final_status, response=response(final_status, True))
        s.close()

    # --- Anthropic -------------------------------------------------------

    def anthropic_messages(self, p):
        if p.rate_limited:
            return self.rate_limit(p)
        model = p.model or ""
        if model.endswith("-latest"):
            p.response_model = model[: -len("-latest")] + "-20241022"
        elif re.search(r"-\d{8}$", model):
            p.response_model = model
        else:
            p.response_model = model + "-20250929"
        p.response_id = "msg_01" + rand_id(22)
        stop = "max_tokens" if p.truncated else "end_turn"
        p.finish_reasons = [stop]
        headers = [("request-id", "req_011C" + rand_id(20)), ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")]
        # Anthropic's input_tokens excludes cache reads; the semconv total (the ledger's) includes them.
        usage = {
            "input_tokens": p.input - p.cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": p.cached,
            "output_tokens": p.output,
            "service_tier": "standard",
        }
        if not p.stream:
            return self.send_json(
                p,
                200,
                {
                    "id": p.response_id,
                    "type": "message",
                    "role": "assistant",
                    "model": p.response_model,
                    "content": [{"type": "text", "text": p.text}],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers,
            )
        s = Stream(self, p, "text/event-stream; charset=utf-8", headers)

        def ev(kind, **data):
            s.send(sse({"type": kind, **data}, kind))

        ev(
            "message_start",
            message={
                "id": p.response_id,
                "type": "message",
                "role": "assistant",
                "model": p.response_model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1},
            },
        )
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""})
        ev("ping")
        for piece in pieces_of(p.text):
            ev("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        ev("content_block_stop", index=0)
        ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None}, usage={"output_tokens": p.output})
        ev("message_stop")
        s.close()

    # --- Gemini ----------------------------------------------------------

    def gemini(self, p):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model if re.search(r"-\d{3}$", p.model) else p.model + "-001"
        p.response_id = rand_id(22, ALNUM + "-_")
        finish = "MAX_TOKENS" if p.truncated else "STOP"
        p.finish_reasons = [finish]

        def usage(final):
            u = {
                "promptTokenCount": p.input,
                "totalTokenCount": p.input + (p.output if final else 0),
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p.input}],
            }
            if final:
                u["candidatesTokenCount"] = p.output
            if p.cached:
                u["cachedContentTokenCount"] = p.cached
                u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": p.cached}]
            return u

        def response(text, final):
            cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            if final:
                cand["finishReason"] = finish
            return {"candidates": [cand], "usageMetadata": usage(final), "modelVersion": p.response_model, "responseId": p.response_id}

        if not p.stream:
            return self.send_json(p, 200, response(p.text, True))
        if getattr(p, "sse", False):
            s = Stream(self, p, "text/event-stream", [])
            pieces = pieces_of(p.text)
            for i, piece in enumerate(pieces):
                s.send(b"data: " + json.dumps(response(piece, i == len(pieces) - 1)).encode() + b"\r\n\r\n")
            s.close()
        else:
            # Without alt=sse: one JSON array streamed element by element.
            s = Stream(self, p, "application/json; charset=UTF-8", [])
            pieces = pieces_of(p.text)
            for i, piece in enumerate(pieces):
                s.send((b"[" if i == 0 else b",\r\n") + json.dumps(response(piece, i == len(pieces) - 1)).encode())
            s.send(b"]")
            s.close()

    # --- Ollama ----------------------------------------------------------

    def ollama_final_timings(self, p):
        return {
            "total_duration": 4_883_583_458 + p.output * 1000,
            "load_duration": OLLAMA_LOAD_NS,
            "prompt_eval_count": p.input,
            "prompt_eval_duration": 342_546_000,
            "eval_count": p.output,
            "eval_duration": 4_535_599_000,
        }

    def ollama(self, p, chat):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model
        reason = "length" if p.truncated else "stop"
        p.finish_reasons = [reason]

        def obj(text, done):
            o = {"model": p.response_model, "created_at": now_rfc3339()}
            if chat:
                o["message"] = {"role": "assistant", "content": text}
            else:
                o["response"] = text
            o["done"] = done
            if done:
                o["done_reason"] = reason
                if not chat:
                    o["context"] = [128006, 882, 128007, 271] + [1000 + i for i in range(p.output % 16)]
                o.update(self.ollama_final_timings(p))
            return o

        if not p.stream:
            return self.send_json(p, 200, obj(p.text, True))
        s = Stream(self, p, "application/x-ndjson", [])
        for piece in pieces_of(p.text):
            s.send(json.dumps(obj(piece, False)).encode() + b"\n")
        s.send(json.dumps(obj("", True)).encode() + b"\n")
        s.close()

    def ollama_embed(self, p, legacy):
        if p.rate_limited:
            return self.rate_limit(p)
        p.response_model = p.model
        vec = [round(((j + 3) * 7 % 13) / 13 - 0.5, 6) for j in range(8)]
        if legacy:
            return self.send_json(p, 200, {"embedding": vec})
        inputs = p.body.get("input")
        n = len(inputs) if isinstance(inputs, list) else 1
        self.send_json(
            p,
            200,
            {
                "model": p.response_model,
                "embeddings": [vec for _ in range(n)],
                "total_duration": 14_143_917,
                "load_duration": OLLAMA_LOAD_NS,
                "prompt_eval_count": p.input,
            },
        )


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, ctx, ledger, first_delay, event_delay, verbose):
        self.ctx = ctx
        self.ledger = ledger
        self.first_delay = first_delay
        self.event_delay = event_delay
        self.verbose = verbose
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # As API servers do: no Nagle delay between a response's head and body writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx is not None:
            # The handshake happens in the connection's own thread (finish_request).
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.ctx is not None:
            request.settimeout(30)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                if self.verbose:
                    sys.stderr.write(f"mock-llm: TLS handshake with {client_address} failed: {e}\n")
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return cert, key


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port, printed on stdout's first line")
    ap.add_argument("--tls", action="store_true", help="HTTPS with a self-signed certificate made at start")
    ap.add_argument("--cert", help="use this certificate (PEM) instead of making one")
    ap.add_argument("--key", help="the private key of --cert")
    ap.add_argument("--ledger", help="append one JSON line per request answered to this file")
    ap.add_argument("--first-delay", type=float, default=FIRST_DELAY, help="seconds before a stream's head")
    ap.add_argument("--event-delay", type=float, default=EVENT_DELAY, help="seconds between stream events")
    ap.add_argument("--verbose", action="store_true", help="log requests on stderr")
    args = ap.parse_args()

    tmp = None
    ctx = None
    if args.tls:
        if args.cert:
            cert, key = args.cert, args.key or args.cert
        else:
            tmp = tempfile.mkdtemp(prefix="mock-llm-cert-")
            cert, key = make_cert(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd = Server((args.host, args.port), ctx, Ledger(args.ledger), args.first_delay, args.event_delay, args.verbose)
        port = httpd.server_address[1]
        print(port, flush=True)
        sys.stderr.write(f"mock-llm: listening on {args.host}:{port} ({'https' if ctx else 'http'})\n")
        sys.stderr.flush()
        httpd.serve_forever(poll_interval=0.2)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
