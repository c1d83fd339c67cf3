#!/usr/bin/env python3
"""Overhead of the receiver on real servers under wrk, measured side by side.

For each server (nginx serving a small static file with keep-alive; the Go
demo server with no sleep), runs interleaved rounds of three modes — no
receiver, receiver (traces), receiver with every signal — and reports medians:
throughput ratio, p50/p99 latency ratio, and the receiver's CPU per 1,000
requests, split into kernel-side BPF run time (kernel.bpf_stats_enabled) and
userspace CPU of the host process (/proc/<pid>/stat).

usage: bench/overhead.py [--rounds 5] [--duration 5] [--connections 32] [--out BENCHMARKS.md]
Needs root, wrk, nginx, go; builds what it needs with cargo/go.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, start_nginx, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "target/release/examples/bench_host")
MODES = {
    "off": None,
    # Spans only: no metrics aggregation, no OpenSSL uprobes.
    "traces": '{"metrics": {"enabled": false}, "tls": {"enabled": false}}',
    # The defaults: spans, RED metrics, HTTPS uprobes.
    "all": "{}",
}


def start_demo(work, port):
    binary = os.path.join(work, "demo-server")
    subprocess.run(["go", "build", "-o", binary, "."], cwd=os.path.join(ROOT, "examples/demo-server"), check=True)
    p = subprocess.Popen([binary, "-addr", f"127.0.0.1:{port}", "-sleep", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def bpf_run_ns():
    """Total run time (ns) and run count of our programs (named oe_*)."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout
    ns = cnt = 0
    for prog in json.loads(out or "[]"):
        if prog.get("name", "").startswith("oe_"):
            ns += prog.get("run_time_ns", 0)
            cnt += prog.get("run_cnt", 0)
    return ns, cnt


def cpu_ns(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1e9 / os.sysconf("SC_CLK_TCK")


def parse_latency(text, label):
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def run_wrk(port, duration, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rps, total, parse_latency(out, "50%"), parse_latency(out, "99%")


def one_run(mode, port, args):
    host = None
    if MODES[mode] is not None:
        host = subprocess.Popen([HOST, str(args.duration + 30), MODES[mode]],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = host.stderr.readline()
        if "started" not in line:
            raise RuntimeError(f"bench_host failed: {line}{host.stderr.read()}")
    bpf0 = bpf_run_ns()
    cpu0 = cpu_ns(host.pid) if host else 0
    rps, total, p50, p99 = run_wrk(port, args.duration, args.connections)
    bpf1 = bpf_run_ns()
    cpu1 = cpu_ns(host.pid) if host else 0
    stats = {}
    if host:
        host.send_signal(signal.SIGKILL)
        host.wait()
    return {
        "rps": rps, "requests": total, "p50_us": p50, "p99_us": p99,
        "bpf_ns": bpf1[0] - bpf0[0], "bpf_runs": bpf1[1] - bpf0[1],
        "user_ns": cpu1 - cpu0, **stats,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--servers", default="nginx,go")
    ap.add_argument("--out")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("overhead.py: needs root (eBPF)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ebpf-core", "--example", "bench_host"],
                   cwd=ROOT, check=True)
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    work = tempfile.mkdtemp(prefix="oe-bench-")
    results = {}
    try:
        for server in args.servers.split(","):
            port = free_port()
            proc = start_nginx(work, port, connections=1024) if server == "nginx" else start_demo(work, port)
            try:
                run_wrk(port, 2, args.connections)  # warm-up
                runs = {m: [] for m in MODES}
                for r in range(args.rounds):
                    # Rotate the order each round so drift hits every mode alike.
                    order = list(MODES)[r % 3:] + list(MODES)[:r % 3]
                    for mode in order:
                        runs[mode].append(one_run(mode, port, args))
                        print(f"{server} round {r + 1} {mode}: {runs[mode][-1]['rps']:.0f} req/s", file=sys.stderr)
                results[server] = runs
            finally:
                proc.terminate()
                proc.wait()
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])
        shutil.rmtree(work, ignore_errors=True)
    report = render(results, args)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def render(results, args):
    cmd = "bench/overhead.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{cmd}` ({args.rounds} interleaved rounds of {args.duration}s, wrk -t1 -c{args.connections}, medians)", ""]
    lines.append("| server | mode | req/s | throughput ratio | p50 µs | p50 ratio | p99 µs | p99 ratio | "
                 "BPF ns/req | BPF runs/req | ns/BPF run | user CPU ns/req | total CPU µs/req |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for server, runs in results.items():
        base = runs["off"]
        for mode, rs in runs.items():
            reqs = sum(r["requests"] for r in rs)
            bpf_ns = sum(r["bpf_ns"] for r in rs) / reqs
            bpf_runs = sum(r["bpf_runs"] for r in rs) / reqs
            per_run = sum(r["bpf_ns"] for r in rs) / max(1, sum(r["bpf_runs"] for r in rs))
            user = sum(r["user_ns"] for r in rs) / reqs
            lines.append(
                f"| {server} | {mode} | {med(rs, 'rps'):.0f} | {med(rs, 'rps') / med(base, 'rps'):.3f} | "
                f"{med(rs, 'p50_us'):.0f} | {med(rs, 'p50_us') / med(base, 'p50_us'):.2f} | "
                f"{med(rs, 'p99_us'):.0f} | {med(rs, 'p99_us') / med(base, 'p99_us'):.2f} | "
                f"{bpf_ns:.0f} | {bpf_runs:.1f} | {per_run:.0f} | {user:.0f} | {(bpf_ns + user) / 1000:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
