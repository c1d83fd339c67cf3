#!/usr/bin/env python3
"""What a node pays for the receiver as users run it: through
dist/otelcol-ebpf, side by side with the library alone (bench_host) and with
no receiver, and the Go demo server traced by us against the same server
instrumented with the OpenTelemetry Go SDK.

Servers: nginx (one worker, keep-alive, 17-byte static file) and the Go demo
server (examples/demo-server, no sleep), loaded by `wrk -t1 -c32` at
saturation, then by bench/loadgen.go at half the saturation rate measured
without the receiver (p99 from each request's scheduled time). Only the
server is traced (the receiver selects the benchmark's own copy of the
server binary by path: other work on the host is not traced, and the load
generator is not), as on a node whose clients run elsewhere.

Modes (each round runs every mode once, in a rotated order; a fresh
receiver per mode and round; medians over rounds):
  off       no receiver
  lib       bench_host: the library alone, spans only, batches discarded
  debug     otelcol-ebpf: traces pipeline ebpf -> debug (basic)
  otlp      otelcol-ebpf: traces ebpf -> batch -> otlp exporter -> the sink
  sampled   otlp, with traces.sampling.ratio 0.01 (errors and slow requests kept)
  metrics   otelcol-ebpf: metrics only, ebpf -> batch -> otlp -> the sink
  all       otelcol-ebpf: traces and metrics -> batch -> otlp -> the sink
  idle      otelcol-ebpf (otlp) with no process selected: the floor
  otlp-zstd, otlp-snappy, otlp-none (not run by default): otlp with the
            exporter's compression changed from its default, gzip
  sdk       (Go server only) the demo server with otelhttp, the SDK's batch
            span processor and OTLP/gRPC exporter -> the sink; no receiver
  relay     (Go server only) sdk, exporting to a relay collector (otlp
            receiver -> batch -> otlp exporter, gzip -> the sink) instead
            of the sink: the relay's CPU per span is what the collector
            itself costs to take a span in and export it, whoever made it
            (the floor of any receiver's "every span exported" pipeline)

The sink is one more otelcol-ebpf process for the whole run: an otlp
receiver and the nop exporter. Its CPU per span received is the cost of the
collector's own OTLP intake, the yardstick of our Go side.

CPU is split per thread from /proc/<pid>/task/*/stat: the library's worker
thread (`otel-ebpf-worker`: ring buffers, parsing, spans, OTLP encoding) and
every other thread of the collector (Go: the receiver's poll and pdata
decode, processors, exporters, GC, the runtime); BPF run time is
`run_time_ns` of the programs the receiver's process loaded
(kernel.bpf_stats_enabled=1 during the run). BPF runs inside the server's
syscalls: in the Go server's rows it is part of "server CPU added", not
counted again.

--profile MODE: instead of the rounds, one run of MODE (nginx) with the
pprof extension on: a CPU profile of the collector under wrk, printed as
where the Go side's time goes (the receiver's poll and decode, pdata, GC,
the batch processor, the exporter, the runtime); the library's worker
thread shows up as external code and is left out of the Go total.

usage: bench/collector.py [--rounds 5] [--duration 5] [--servers nginx,go]
                          [--modes off,lib,otlp,...] [--half-modes off,lib,otlp,...]
                          [--data-paths socket,syscall] [--out FILE] [--json FILE]
       bench/collector.py --profile otlp [--duration 10] [--out FILE]
Needs root, wrk, nginx, go, bpftool, and dist/otelcol-ebpf (make dist).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import benchlib as b

ROOT = b.ROOT
WORKER = "otel-ebpf-worke"  # the library's worker thread, as /proc cuts its name
SAMPLING = {"ratio": 0.01}

NGINX_MODES = ["off", "lib", "debug", "otlp", "sampled", "metrics", "all", "idle"]
GO_MODES = ["off", "otlp", "sdk", "relay"]
HALF_MODES = ["off", "lib", "otlp", "sampled", "metrics", "all"]
# Modes that start no receiver of ours (the relay is started once per run).
NO_RECEIVER = ("off", "sdk", "relay")


def pipelines(mode):
    """The collector's receivers/processors/exporters for a mode: (signals, exporter)."""
    if mode.startswith("otlp-"):
        return ["traces"], "otlp"
    return {
        "debug": (["traces"], "debug"),
        "otlp": (["traces"], "otlp"),
        "sampled": (["traces"], "otlp"),
        "metrics": (["metrics"], "otlp"),
        "all": (["traces", "metrics"], "otlp"),
        "idle": (["traces"], "otlp"),
    }[mode]


def library_config(mode, server_path, data_path):
    """The receiver's configuration (the library's keys, as JSON or YAML)."""
    cfg = {"selection": {"include": {"exe_paths": [server_path if mode != "idle" else "/nonexistent/*"]}}}
    if mode == "lib":
        cfg["metrics"] = {"enabled": False}
    if mode == "sampled":
        cfg["traces"] = {"sampling": SAMPLING}
    if data_path:
        cfg["data_path"] = data_path
    return cfg


def telemetry(port):
    """The collector's own metrics on a port of our choosing (the default,
    8888, may be taken by other collectors on the host)."""
    return {"metrics": {"level": "normal", "readers": [
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": port}}}}]}}


def to_yaml(obj, indent=0):
    """Just enough YAML (JSON is YAML, but this keeps logs readable)."""
    return json.dumps(obj, indent=2)


class Otelcol:
    """An otelcol-ebpf process with a given configuration."""

    def __init__(self, work, name, config, env=None, binary=None):
        self.name = name
        conf = os.path.join(work, f"{name}.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(config))
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary or b.COLLECTOR, "--config", conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.pid = self.proc.pid
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"otelcol-ebpf ({name}) exited: see {self.log_path}")
            with open(self.log_path) as f:
                if "Everything is ready" in f.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"otelcol-ebpf ({name}) did not start within 60s: see {self.log_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Sink:
    """The OTLP sink: otlp receiver -> nop exporter. Counts what it accepted
    from its own telemetry."""

    def __init__(self, work, prefix=""):
        self.port, self.metrics_port = b.free_port(), b.free_port()
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{self.port}"}}}},
            "exporters": {"nop": {}},
            "service": {
                "telemetry": telemetry(self.metrics_port),
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "exporters": ["nop"]},
                    "metrics": {"receivers": ["otlp"], "exporters": ["nop"]},
                },
            },
        }
        binary = None
        if prefix:
            # The prefix applies to every thread from the start: nice or
            # chrt on a pid later would reach its main thread only.
            binary = os.path.join(work, "sink-wrapped")
            with open(binary, "w") as f:
                f.write(f"#!/bin/sh\nexec {prefix} {b.COLLECTOR} \"$@\"\n")
            os.chmod(binary, 0o755)
        self.col = Otelcol(work, "sink", config, binary=binary)
        self.pid = self.col.pid

    def accepted(self):
        """(spans, metric points) its otlp receiver accepted so far."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        spans = points = 0.0
        for line in text.splitlines():
            if line.startswith("otelcol_receiver_accepted_spans"):
                spans += float(line.rsplit(" ", 1)[1])
            elif line.startswith("otelcol_receiver_accepted_metric_points"):
                points += float(line.rsplit(" ", 1)[1])
        return spans, points


class Relay:
    """A stock pipeline between the SDK and the sink: otlp receiver -> batch
    -> otlp exporter (its default gzip) -> the sink. One for the whole run."""

    def __init__(self, work, sink):
        self.port = b.free_port()
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{self.port}"}}}},
            "processors": {"batch": {}},
            "exporters": {"otlp": {"endpoint": f"127.0.0.1:{sink.port}", "tls": {"insecure": True}}},
            "service": {
                "telemetry": telemetry(b.free_port()),
                "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}},
            },
        }
        self.col = Otelcol(work, "relay", config)
        self.pid = self.col.pid

    def reading(self):
        """Like Receiver.reading: all of the relay's CPU counts as Go."""
        return 0, 0, 0, b.cpu_ns(self.pid)


def collector_config(mode, server_path, sink, data_path, metrics_port, pprof_port=None):
    signals, exporter = pipelines(mode)
    lib = library_config(mode, server_path, data_path)
    exporters = {"debug": {"verbosity": "basic"}} if exporter == "debug" else {
        "otlp": {"endpoint": f"127.0.0.1:{sink.port}", "tls": {"insecure": True}}}
    if mode.startswith("otlp-"):
        exporters["otlp"]["compression"] = mode.split("-", 1)[1]
    processors = ["batch"] if exporter == "otlp" else []
    config = {
        "receivers": {"ebpf": lib},
        "processors": {"batch": {}},
        "exporters": exporters,
        "service": {
            "telemetry": telemetry(metrics_port),
            "pipelines": {s: {"receivers": ["ebpf"], "processors": processors, "exporters": [exporter]}
                          for s in signals},
        },
    }
    if pprof_port:
        config["extensions"] = {"pprof": {"endpoint": f"127.0.0.1:{pprof_port}"}}
        config["service"]["extensions"] = ["pprof"]
    return config


class Receiver:
    """The receiver of one mode and round: bench_host or otelcol-ebpf."""

    def __init__(self, mode, work, server_path, sink, args, data_path, binary=None, env=None):
        self.mode, self.host, self.col = mode, None, None
        if mode == "lib":
            self.host = b.Host(args.duration * 4 + 120, json.dumps(library_config(mode, server_path, data_path)))
            self.pid = self.host.pid
        else:
            config = collector_config(mode, server_path, sink, data_path, b.free_port())
            self.col = Otelcol(work, f"otelcol-{mode}", config, env={**args.collector_env, **(env or {})},
                              binary=binary)
            self.pid = self.col.pid

    def reading(self):
        """(BPF ns, BPF runs, worker ns, process ns) so far."""
        bpf_ns, runs = b.bpf_run_ns(self.pid)
        return bpf_ns, runs, b.thread_cpu_ns(self.pid, WORKER), b.cpu_ns(self.pid)

    def settle(self, limit):
        """Waits (at most `limit` s) until start-up work is over (under 5% of
        a CPU over 0.25 s): scanning processes and libraries for TLS, the
        collector's own start."""
        t0 = time.time()
        time.sleep(0.25)
        while time.time() - t0 < limit:
            c0 = b.cpu_ns(self.pid)
            time.sleep(0.25)
            if b.cpu_ns(self.pid) - c0 < 0.05 * 0.25e9:
                break

    def stop(self):
        if self.host:
            self.host.kill()
        if self.col:
            self.col.stop()


class Server:
    """A server under test: its process, port and the binary the receiver selects."""

    def __init__(self, kind, work, sink):
        self.kind = kind
        self.port = b.free_port()
        if kind == "nginx":
            # A copy of its own: the receiver selects this path only.
            self.path = os.path.join(work, "nginx-bench")
            shutil.copy(shutil.which("nginx"), self.path)
            self.proc = b.start_nginx(work, self.port, connections=1024, binary=self.path)
            self.pids = lambda: [self.proc.pid] + children(self.proc.pid)
        else:
            self.proc, self.path = b.start_demo(work, self.port, name="demo-server-bench")
            self.pids = lambda: [self.proc.pid]
        # The SDK-instrumented server, by mode: exporting to the sink
        # (sdk) or through the relay (relay): {mode: (process, port)}.
        self.sdk, self.relay = {}, None
        if kind == "go":
            sdk_bin = os.path.join(work, "sdk-server")
            subprocess.run(["go", "build", "-o", sdk_bin, "."], cwd=os.path.join(ROOT, "bench/sdk-server"), check=True)
            self.relay = Relay(work, sink)
            for mode, target in (("sdk", sink.port), ("relay", self.relay.port)):
                port = b.free_port()
                self.sdk[mode] = (subprocess.Popen([sdk_bin, "-addr", f"127.0.0.1:{port}", "-otlp", f"127.0.0.1:{target}"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
                b.wait_port(port)

    def port_for(self, mode):
        return self.sdk[mode][1] if mode in self.sdk else self.port

    def cpu_ns(self, mode):
        """CPU of the server's processes (nginx: master and worker)."""
        if mode in self.sdk:
            return b.cpu_ns(self.sdk[mode][0].pid)
        return sum(b.cpu_ns(p) for p in self.pids())

    def stop(self):
        for p in [self.proc] + [p for p, _ in self.sdk.values()]:
            p.terminate()
            p.wait()
        if self.relay:
            self.relay.col.stop()


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def measure(server, mode, recv, sink, fn):
    """Runs fn() (a load generator) and returns the CPU and counts around it."""
    r0 = recv.reading() if recv else (0, 0, 0, 0)
    s0, sink0 = server.cpu_ns(mode), b.cpu_ns(sink.pid)
    out = fn()
    r1 = recv.reading() if recv else (0, 0, 0, 0)
    s1 = server.cpu_ns(mode)
    return out, {
        "bpf_ns": r1[0] - r0[0], "bpf_runs": r1[1] - r0[1], "rust_ns": r1[2] - r0[2],
        "go_ns": (r1[3] - r0[3]) - (r1[2] - r0[2]), "go0": r0[3], "server_ns": s1 - s0, "sink0": sink0,
    }


def one_round(server, label, work, sink, rate, args):
    """Saturation then (for --half-modes) half load, on one fresh receiver."""
    mode, data_path, variant = label
    recv = server.relay if mode == "relay" else None
    if mode not in NO_RECEIVER:
        recv = Receiver(mode, work, server.path, sink, args, data_path, *args.collectors.get(variant, (None, {})))
    port = server.port_for(mode)
    try:
        if recv and mode != "relay":
            recv.settle(args.settle)
        spans0 = sink.accepted()
        (rps, total, p50, p99), cpu = measure(server, mode, recv, sink,
                                               lambda: b.run_wrk(port, args.duration, args.connections))
        sat = {"rps": rps, "requests": total, "p50_us": p50, "p99_us": p99, **cpu}
        half = None
        if rate and mode in args.half_modes:
            gen, cpu = measure(server, mode, recv, sink,
                               lambda: b.run_rate(args.loadgen, port, rate, args.duration, args.connections))
            half = {"target": rate, "achieved": gen["achieved_rate"], "requests": gen["ok"],
                    "p50_us": gen["p50_us"], "p99_us": gen["p99_us"], "p999_us": gen["p999_us"],
                    "saturated": gen["not_sent"] > 0 or gen["errors"] > 0 or gen["achieved_rate"] < 0.97 * rate,
                    **cpu}
    finally:
        if recv and mode != "relay":
            recv.stop()
    if mode in ("sdk", "relay"):
        time.sleep(6)  # the SDK's batch span processor exports every 5 s
    if mode == "relay":
        time.sleep(1)  # and the relay's batch processor after it
        # The relay works on the spans after the load ends: its CPU counts
        # until the sink has them.
        sat["go_ns"] = recv.reading()[3] - sat["go0"]
    spans1 = sink.accepted()
    sink_ns = b.cpu_ns(sink.pid) - sat["sink0"]
    # The sink's figures cover both runs (batches leave late); so do the
    # spans per request they give.
    sat["sink_ns"], sat["sink_spans"], sat["sink_points"] = sink_ns, spans1[0] - spans0[0], spans1[1] - spans0[1]
    sat["all_requests"] = sat["requests"] + (half["requests"] if half else 0)
    return sat, half


# Where a profile sample's time goes, by the first rule its stack matches
# (frames listed leaf first); the order decides between overlapping ones.
PROFILE_CATEGORIES = [
    ("library worker thread (Rust, not Go)", lambda st: st[-1] == "runtime._ExternalCode"),
    ("GC: background mark workers", lambda st: any("gcBgMarkWorker" in f for f in st)),
    ("GC: assists and sweeping by allocating goroutines",
     lambda st: any(f.startswith(("runtime.gcAssist", "runtime.sweepone", "runtime.(*mspan).sweep")) for f in st)),
    ("receiver: decode into pdata (otlpdecode; UnmarshalProto for metrics)",
     lambda st: any("ebpfReceiver" in f for f in st) and any(("UnmarshalProto" in f or "otlpdecode" in f)
                                                             for f in st)),
    ("receiver: poll, cgo calls, batch free",
     lambda st: any("ebpfReceiver).pollLoop" in f for f in st) and not any("consume" in f for f in st)),
    ("exporter: gzip compression", lambda st: any(f.startswith("compress/") for f in st)),
    ("exporter: proto marshal", lambda st: any("exporter" in f for f in st) and any("MarshalProto" in f for f in st)),
    ("exporter: gRPC, queue, retries", lambda st: any(("exporter" in f or "grpc" in f) for f in st)),
    ("batch processor", lambda st: any("batchprocessor" in f for f in st)),
    ("debug exporter", lambda st: any("debugexporter" in f for f in st)),
    ("receiver: obsreport, consumer hand-over", lambda st: any("ebpfReceiver" in f for f in st)),
    ("runtime: scheduler, sysmon, timers, netpoller",
     lambda st: any(f.startswith(("runtime.schedule", "runtime.findRunnable", "runtime.sysmon", "runtime.mstart",
                                  "runtime.park_m", "runtime.netpoll", "runtime.goexit0", "runtime.mcall"))
                    for f in st)),
    ("other", lambda st: True),
]


def profile_breakdown(pprof_file):
    """Samples of a Go CPU profile, by PROFILE_CATEGORIES: {category: seconds}."""
    text = subprocess.run(["go", "tool", "pprof", "-symbolize=none", "-traces", pprof_file],
                          capture_output=True, text=True, check=True).stdout
    out = {name: 0.0 for name, _ in PROFILE_CATEGORIES}
    for block in text.split("-----------+-------------------------------------------------------")[1:]:
        lines = [l for l in block.strip().splitlines() if l.strip()]
        if not lines:
            continue
        first = lines[0].split()
        value = first[0]
        secs = float(value[:-2]) / 1000 if value.endswith("ms") else float(value.rstrip("s"))
        stack = [first[1]] + [l.strip() for l in lines[1:]]
        for name, rule in PROFILE_CATEGORIES:
            if rule(stack):
                out[name] += secs
                break
    return out


def profile(args):
    """One run of args.profile with the pprof extension: the Go side's CPU by category."""
    work = tempfile.mkdtemp(prefix="oe-bench-prof-")
    os.chmod(work, 0o755)
    sink = Sink(work)
    server = Server("nginx", work, sink)
    pport = b.free_port()
    col = Otelcol(work, "otelcol-profile",
                  collector_config(args.profile, server.path, sink, None, b.free_port(), pport),
                  env=args.collector_env)
    try:
        time.sleep(args.settle)
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 4}s",
                                f"http://127.0.0.1:{server.port}/"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        c0, w0 = b.cpu_ns(col.pid), b.thread_cpu_ns(col.pid, WORKER)
        data = urllib.request.urlopen(f"http://127.0.0.1:{pport}/debug/pprof/profile?seconds={args.duration}",
                                      timeout=args.duration + 60).read()
        c1, w1 = b.cpu_ns(col.pid), b.thread_cpu_ns(col.pid, WORKER)
        requests = int(wrk.communicate()[0].split(" requests in")[0].split()[-1])
        path = args.pprof_file or os.path.join(work, "cpu.pprof")
        with open(path, "wb") as f:
            f.write(data)
        cats = profile_breakdown(path)
    finally:
        col.stop()
        server.stop()
        sink.col.stop()
    go_total = sum(v for k, v in cats.items() if not k.startswith("library"))
    rate = requests / (args.duration + 4)
    lines = [f"Command: `bench/collector.py {' '.join(sys.argv[1:])}` (nginx, wrk -t1 -c{args.connections}, "
             f"{rate:.0f} req/s; Go CPU from /proc over the profile: "
             f"{((c1 - c0) - (w1 - w0)) / 1e9 / args.duration * 100:.0f}% of a CPU)", "",
             "| where | share of the Go side | µs per request |", "|---|---|---|"]
    for name, secs in sorted(cats.items(), key=lambda kv: -kv[1]):
        if secs and not name.startswith("library"):
            lines.append(f"| {name} | {secs / go_total * 100:.0f}% | {secs / args.duration / rate * 1e6:.2f} |")
    lines.append(f"| (library worker thread, sampled as external code) | | "
                 f"{cats[PROFILE_CATEGORIES[0][0]] / args.duration / rate * 1e6:.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    shutil.rmtree(work, ignore_errors=True)


def med(runs, key):
    vals = [r[key] for r in runs if r is not None]
    return statistics.median(vals) if vals else float("nan")


def per_req(runs, key):
    """Median over runs of key / requests: a per-request figure in ns."""
    vals = [r[key] / r["requests"] for r in runs if r and r["requests"]]
    return statistics.median(vals) if vals else float("nan")


def spread(runs, key):
    vals = sorted(r[key] / r["requests"] for r in runs if r and r["requests"])
    return f"{vals[0] / 1000:.2f}–{vals[-1] / 1000:.2f}" if vals else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--servers", default="nginx,go")
    ap.add_argument("--modes", help="nginx modes (default: " + ",".join(NGINX_MODES) + ")")
    ap.add_argument("--go-modes", default=",".join(GO_MODES))
    ap.add_argument("--half-modes", default=",".join(HALF_MODES),
                    help="modes that also run at half load (off always does)")
    ap.add_argument("--load", type=float, default=0.5)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--data-paths", default="",
                    help="comma-separated data_path values to run each receiver mode with (default: the library's)")
    ap.add_argument("--collectors", default="",
                    help="NAME=PATH[+K=V...],...: run each collector mode with each of these otelcol-ebpf "
                         "binaries, each with its own environment (A/B: base=dist/old,gogc400=dist/otelcol-ebpf+GOGC=400)")
    ap.add_argument("--collector-env", action="append", default=[], metavar="K=V",
                    help="environment of the traced collector (GOGC=200); repeatable")
    ap.add_argument("--profile", metavar="MODE", help="profile the Go side in MODE instead of the rounds")
    ap.add_argument("--pprof-file", help="with --profile: keep the CPU profile there (go tool pprof)")
    ap.add_argument("--sink-prefix", default="",
                    help="command prefix for the sink ('chrt --idle 0', 'nice -n 19'): it stands for a backend on "
                         "another host, and its intake (~4 µs a span) otherwise competes with the server here")
    ap.add_argument("--out")
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("collector.py: needs root (eBPF)")
    if not os.path.exists(b.COLLECTOR):
        sys.exit(f"collector.py: {b.COLLECTOR} is missing: run `make dist`")
    args.half_modes = set(args.half_modes.split(",")) | {"off"}
    if args.profile:
        args.collector_env = dict(kv.split("=", 1) for kv in args.collector_env)
        return profile(args)
    specs, args.collectors = args.collectors, {}
    for spec in filter(None, specs.split(",")):
        vname, _, rest = spec.partition("=")
        path, *env = rest.split("+")
        args.collectors[vname] = (path or None, dict(kv.split("=", 1) for kv in env))
    args.collector_env = dict(kv.split("=", 1) for kv in args.collector_env)
    variants = list(args.collectors) or [None]
    b.build_host()
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    work = tempfile.mkdtemp(prefix="oe-bench-col-")
    os.chmod(work, 0o755)
    args.loadgen = b.build_loadgen(work)
    data_paths = [d for d in args.data_paths.split(",") if d] or [None]
    results = {}
    sink = Sink(work, args.sink_prefix)
    try:
        for kind in args.servers.split(","):
            base = (args.modes.split(",") if args.modes else NGINX_MODES) if kind == "nginx" else \
                args.go_modes.split(",")
            modes = ["off"] + [m for m in base if m != "off"]
            labels = [(m, None, None) for m in modes if m in NO_RECEIVER] + \
                [(m, d, v) for d in data_paths for m in modes if m not in NO_RECEIVER
                 for v in (variants if m != "lib" else [None])]
            server = Server(kind, work, sink)
            try:
                b.run_wrk(server.port, 2, args.connections)  # warm-up
                calib = statistics.median(b.run_wrk(server.port, args.duration, args.connections)[0]
                                          for _ in range(3))
                rate = calib * args.load
                b.log(f"{kind}: {calib:.0f} req/s without the receiver; half load at {rate:.0f} req/s")
                runs = {label: [] for label in labels}
                for r in range(args.rounds):
                    k = r % len(labels)
                    for label in labels[k:] + labels[:k]:
                        sat, half = one_round(server, label, work, sink, rate, args)
                        runs[label].append((sat, half))
                        b.log(f"{kind} round {r + 1} {name(label)}: {sat['rps']:.0f} req/s, "
                              f"BPF {sat['bpf_ns'] / sat['requests']:.0f} Rust {sat['rust_ns'] / sat['requests']:.0f} "
                              f"Go {sat['go_ns'] / sat['requests']:.0f} ns/req, sink {sat['sink_spans']:.0f} spans"
                              + (f"; half load p99 {half['p99_us']:.0f} µs" if half else ""))
                results[kind] = {"calibration": calib, "rate": rate, "runs": runs}
            finally:
                server.stop()
    finally:
        sink.col.stop()
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])
        shutil.rmtree(work, ignore_errors=True)
    report = render(results, args)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {**v, "runs": {name(l): r for l, r in v["runs"].items()}} for k, v in results.items()}, f,
                      indent=1)


def name(label):
    mode, dp, variant = label
    return mode + (f"@{dp}" if dp else "") + (f":{variant}" if variant else "")


def render(results, args):
    cmd = "bench/collector.py " + " ".join(sys.argv[1:])
    out = [f"Command: `{cmd}` ({args.rounds} interleaved rounds of {args.duration}s, wrk -t1 -c{args.connections}, "
           f"medians; per-request CPU: median of the rounds' ratios, range in brackets)", ""]
    out.append("| server | mode | req/s | throughput ratio | p99 ratio | BPF µs/req | Rust worker µs/req | "
               "Go µs/req | total µs/req (range) | spans/req | Go µs/span | sink µs/span | server CPU µs/req |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, res in results.items():
        runs = res["runs"]
        sats = {label: [s for s, _ in rs] for label, rs in runs.items()}
        base = sats[("off", None, None)]
        for label, rs in sats.items():
            for r in rs:
                r["total_ns"] = r["bpf_ns"] + r["rust_ns"] + r["go_ns"]
                r["spans_per_req"] = r["sink_spans"] / r["all_requests"] if r["all_requests"] else 0
            go_span = statistics.median(r["go_ns"] / r["requests"] / r["spans_per_req"] for r in rs
                                        if r["spans_per_req"]) if any(r["spans_per_req"] for r in rs) else float("nan")
            sink_span = statistics.median(r["sink_ns"] / r["sink_spans"] for r in rs if r["sink_spans"]) \
                if any(r["sink_spans"] for r in rs) else float("nan")
            out.append(
                f"| {kind} | {name(label)} | {med(rs, 'rps'):.0f} | {med(rs, 'rps') / med(base, 'rps'):.3f} | "
                f"{med(rs, 'p99_us') / med(base, 'p99_us'):.2f} | "
                f"{per_req(rs, 'bpf_ns') / 1000:.2f} | {per_req(rs, 'rust_ns') / 1000:.2f} | "
                f"{per_req(rs, 'go_ns') / 1000:.2f} | {per_req(rs, 'total_ns') / 1000:.2f} "
                f"({spread(rs, 'total_ns')}) | {med(rs, 'spans_per_req'):.3f} | {go_span / 1000:.2f} | "
                f"{sink_span / 1000:.2f} | {per_req(rs, 'server_ns') / 1000:.2f} |")
    out.append("")
    out.append(f"Half load: {args.load:g}× the saturation rate without the receiver (bench/loadgen.go rate, "
               f"{args.connections} connections, {args.duration}s; latency from each request's scheduled time). "
               f"Target: p99 ratio ≤ 1.10.")
    out.append("")
    out.append("| server | mode | rate req/s | p50 µs | p99 µs | p99 ratio | p99.9 µs | receiver CPU µs/req | "
               "saturated runs |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for kind, res in results.items():
        halves = {label: [h for _, h in rs if h] for label, rs in res["runs"].items()}
        base = halves.get(("off", None, None)) or []
        for label, hs in halves.items():
            if not hs:
                continue
            for h in hs:
                h["total_ns"] = h["bpf_ns"] + h["rust_ns"] + h["go_ns"]
            out.append(
                f"| {kind} | {name(label)} | {res['rate']:.0f} | {med(hs, 'p50_us'):.0f} | {med(hs, 'p99_us'):.0f} | "
                f"{med(hs, 'p99_us') / med(base, 'p99_us'):.2f} | {med(hs, 'p999_us'):.0f} | "
                f"{per_req(hs, 'total_ns') / 1000:.2f} | {sum(h['saturated'] for h in hs)}/{len(hs)} |")
    if "go" in results:
        out.append("")
        out.append("Go demo server, per request: the server's own CPU above the plain server's (BPF included: "
                   "it runs in the server's syscalls), the collector that traces it (otelcol-ebpf, user space; "
                   "in the relay row, the relay collector that forwards the SDK's spans), "
                   "and the sink collector that receives the spans. Target: ours ≤ 1/10 of the SDK's.")
        out.append("")
        out.append("| mode | req/s | throughput ratio | server CPU added µs/req | otelcol-ebpf (relay) µs/req | "
                   "sink µs/req | total µs/req | total without the sink |")
        out.append("|---|---|---|---|---|---|---|---|")
        sats = {label: [s for s, _ in rs] for label, rs in results["go"]["runs"].items()}
        base = sats[("off", None, None)]
        base_server = per_req(base, "server_ns")
        for label, rs in sats.items():
            if label[0] == "off":
                continue
            added = per_req(rs, "server_ns") - base_server
            col = per_req(rs, "rust_ns") + per_req(rs, "go_ns")
            snk = statistics.median(r["sink_ns"] / r["all_requests"] for r in rs)
            out.append(f"| {name(label)} | {med(rs, 'rps'):.0f} | {med(rs, 'rps') / med(base, 'rps'):.3f} | "
                       f"{added / 1000:.2f} | {col / 1000:.2f} | {snk / 1000:.2f} | {(added + col + snk) / 1000:.2f} | "
                       f"{(added + col) / 1000:.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
