#!/usr/bin/env python3
"""Memory of the receiver: RSS of the process that embeds it, idle, with
10,000 open keep-alive connections, and after 1,000,000 short connections
(target: back within 10% of the level before); and the BPF maps it creates
(target: at most 64 MiB with the defaults).

For each host (`lib`: target/release/examples/bench_host, the library
alone; `collector`: dist/otelcol-ebpf, when built), with the receiver's
default configuration and nginx (one worker) as the server:

  1. idle: RSS and BPF maps after --settle seconds;
  2. short: --short connections, one request each (`Connection: close`),
     --conns at a time, by bench/loadgen.go; RSS right after, and --after
     seconds later, against the level just before;
  3. hold: --hold connections to nginx, one request each, kept open; RSS,
     maps and the receiver's connection gauge; then closed.
  (--order hold,short swaps 2 and 3.)

usage: bench/memory.py [--hosts lib,collector] [--hold 10000] [--short 1000000]
                       [--settle 10] [--after 60] [--conns 32] [--order short,hold]
                       [--short-rounds 1] [--collector-env GOMEMLIMIT=64MiB] [--json FILE]
Needs root, nginx, go, bpftool; builds bench_host with cargo.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib as b

MIB = 1 << 20


def snapshot(host, label):
    m = b.mem(host.pid)
    rec = {"label": label, "t": time.time(), **m}
    if host.latest:
        rec["connections"] = host.latest.get("connections")
        rec["processes"] = host.latest.get("processes")
        rec["events_lost"] = host.latest.get("events_lost")
    b.log(f"  {host.kind} {label}: RSS {m['VmRSS'] / 1024:.1f} MiB (anon {m['RssAnon'] / 1024:.1f}, "
          f"file {m['RssFile'] / 1024:.1f}, shmem {m['RssShmem'] / 1024:.1f}), "
          f"connections {rec.get('connections')}")
    return rec


def maps_total(maps):
    return sum(m["memlock"] for m in maps)


def hold_phase(host, res, args, port, loadgen):
    """--hold idle keep-alive connections, one request made on each."""
    hold = subprocess.Popen([loadgen, "hold", "-addr", f"127.0.0.1:{port}", "-conns", str(args.hold)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = hold.stdout.readline().strip()
    b.log(f"  loadgen: {line}")
    res["hold_line"] = line
    time.sleep(args.settle)
    res["samples"].append(snapshot(host, f"holding {args.hold:,} keep-alive connections"))
    res["maps_hold"] = b.bpf_maps(host.pid)
    hold.stdin.close()
    res["hold"] = json.loads(hold.stdout.read().strip().splitlines()[-1])
    hold.wait()
    time.sleep(args.settle)
    res["samples"].append(snapshot(host, f"{args.settle}s after closing them"))


def short_phase(host, res, args, port, loadgen, sampler):
    """--short connections of one request each, --short-rounds times; RSS
    against the level before the first round."""
    for rnd in range(1, args.short_rounds + 1):
        tag = f" (round {rnd})" if args.short_rounds > 1 else ""
        before = snapshot(host, f"before {args.short:,} short connections{tag}")
        res["samples"].append(before)
        res.setdefault("short_before", before["VmRSS"])
        sampler.reset()
        t0 = time.time()
        out = subprocess.run([loadgen, "short", "-addr", f"127.0.0.1:{port}", "-count", str(args.short),
                              "-conns", str(args.conns)], capture_output=True, text=True, check=True).stdout
        res.setdefault("short_rounds", []).append(json.loads(out.strip().splitlines()[-1]))
        res["short"] = res["short_rounds"][-1]
        res["short_peak_rss"] = max(res.get("short_peak_rss", 0), sampler.peak)
        b.log(f"  loadgen: {res['short']} in {time.time() - t0:.0f}s, peak RSS {sampler.peak / 1024:.1f} MiB")
        res["samples"].append(snapshot(host, f"right after them{tag}"))
        res["maps_after_short"] = b.bpf_maps(host.pid)
        waited = 0
        for mark in sorted({10, args.after // 2, args.after} | set(args.marks)):
            time.sleep(mark - waited)
            waited = mark
            res["samples"].append(snapshot(host, f"{mark}s after them{tag}"))
    after = res["samples"][-1]
    res["ratio_after_before"] = after["VmRSS"] / res["short_before"]


def run_host(kind, args, work, port, loadgen):
    env = dict(kv.split("=", 1) for kv in args.collector_env)
    host = b.Host(100000, "{}", report_ms=500) if kind == "lib" else b.Collector(work, env)
    sampler = b.Sampler(host.pid)
    res = {"host": kind, "samples": []}
    try:
        time.sleep(args.settle)
        res["samples"].append(snapshot(host, "idle"))
        res["maps_idle"] = b.bpf_maps(host.pid)
        for phase in args.order.split(","):
            if phase == "hold":
                hold_phase(host, res, args, port, loadgen)
            else:
                short_phase(host, res, args, port, loadgen, sampler)
        res["VmHWM"] = b.mem(host.pid)["VmHWM"]
    finally:
        sampler.stop()
        host.kill()
    return res


def render(results, args):
    cmd = "bench/memory.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{cmd}`", ""]
    lines.append("| host | phase | RSS MiB | anon MiB | tracked connections |")
    lines.append("|---|---|---|---|---|")
    for r in results:
        for s in r["samples"]:
            conns = s.get("connections")
            lines.append(f"| {r['host']} | {s['label']} | {s['VmRSS'] / 1024:.1f} | {s['RssAnon'] / 1024:.1f} | "
                         f"{'' if conns is None else conns} |")
        if "short_peak_rss" in r:
            lines.append(f"| {r['host']} | peak during short connections | {r['short_peak_rss'] / 1024:.1f} | | |")
        lines.append(f"| {r['host']} | peak over the run (VmHWM) | {r['VmHWM'] / 1024:.1f} | | |")
    lines.append("")
    for r in results:
        if "short_rounds" not in r:
            continue
        ok = r["ratio_after_before"] <= 1.10
        total = sum(x["ok"] for x in r["short_rounds"])
        errors = sum(x["errors"] for x in r["short_rounds"])
        rate = sum(x["rate"] for x in r["short_rounds"]) / len(r["short_rounds"])
        lines.append(f"- {r['host']}: {args.after}s after {total:,} short connections ({errors} errors, "
                     f"{rate:.0f}/s), RSS is {r['ratio_after_before']:.3f}× the level before them "
                     f"({r['short_before'] / 1024:.1f} MiB): {'met' if ok else 'NOT met'} (≤ 1.10)")
    lines.append("")
    r = results[0]
    phases = [("idle", "maps_idle"), (f"with {args.hold:,} connections", "maps_hold"),
              ("after the short connections", "maps_after_short")]
    phases = [(label, key) for label, key in phases if key in r]
    lines.append(f"BPF maps ({r['host']} host, default config), memlock in KiB:")
    lines.append("")
    lines.append("| map | type | key B | value B | max entries | " + " | ".join(label for label, _ in phases) + " |")
    lines.append("|---|---|---|---|---|" + "---|" * len(phases))
    by_phase = [{m["id"]: m for m in r[key]} for _, key in phases]
    for m in r["maps_idle"]:
        cells = " | ".join(f"{p.get(m['id'], {}).get('memlock', 0) / 1024:.0f}" for p in by_phase)
        lines.append(f"| {m.get('name', '?')} | {m['type_name']} | {m['key']} | {m['value']} | "
                     f"{m['max_entries']} | {cells} |")
    for label, key in phases:
        tot = maps_total(r[key])
        lines.append(f"- total {label}: {tot / MIB:.1f} MiB in {len(r[key])} maps: "
                     f"{'met' if tot <= 64 * MIB else 'NOT met'} (≤ 64 MiB)")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="lib,collector")
    ap.add_argument("--hold", type=int, default=10000)
    ap.add_argument("--short", type=int, default=1000000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--settle", type=int, default=10)
    ap.add_argument("--after", type=int, default=60)
    ap.add_argument("--order", default="short,hold", help="phases after idle: short,hold or hold,short")
    ap.add_argument("--short-rounds", type=int, default=1, help="repeat the short connections (growth per round)")
    ap.add_argument("--marks", type=int, nargs="*", default=[],
                    help="more seconds after the short connections to sample RSS at (up to --after)")
    ap.add_argument("--collector-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment of the collector host, e.g. GOMEMLIMIT=64MiB (repeatable)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("memory.py: needs root (eBPF)")
    b.raise_nofile()
    b.build_host(args.no_build)
    hosts = args.hosts.split(",")
    if "collector" in hosts and not os.path.exists(b.COLLECTOR):
        b.log(f"memory.py: {b.COLLECTOR} not built (make dist): collector skipped")
        hosts.remove("collector")
    work = tempfile.mkdtemp(prefix="oe-mem-")
    results = []
    b.log(f"machine: {b.machine()}")
    try:
        loadgen = b.build_loadgen(work)
        port = b.free_port()
        nginx = b.start_nginx(work, port, connections=args.hold * 2 + 1000)
        try:
            for kind in hosts:
                b.log(f"{kind}:")
                results.append(run_host(kind, args, work, port, loadgen))
        finally:
            nginx.terminate()
            nginx.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(render(results, args))


if __name__ == "__main__":
    main()
