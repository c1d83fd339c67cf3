#!/usr/bin/env python3
"""Loss: the highest request rate at which the receiver, with its default
configuration (8 MiB ring buffer), drops nothing; and, above it, whether
its drop counters account for what is missing.

nginx (one worker, keep-alive, 17-byte static file) is loaded at fixed
rates by bench/loadgen.go (--conns keep-alive connections, --duration
seconds per step). Each step runs a fresh target/release/examples/bench_host
with BENCH_HOST_PORT set, which counts the SERVER spans (nginx's) and CLIENT
spans (loadgen's) with server.port = nginx's port, and prints the receiver's
counters once stopped (stop flushes everything pending). A step is lossless
when both span counts equal the responses loadgen received and no loss
counter moved. Rates: --rates, then a bisection between the highest lossless
and the lowest lossy rate down to --resolution.

Then, at --stall-rate, steps where the receiver is stopped (SIGSTOP) for
each of --stalls seconds: the kernel must drop events, and the counters
must account for every missing span.

usage: bench/loss.py [--rates 2000,5000,...] [--duration 10] [--conns 64]
                     [--resolution 1000] [--confirm 2] [--stalls 1,2,4]
                     [--stall-rate 5000] [--json FILE]
Needs root, nginx, go; builds bench_host with cargo.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import benchlib as b

LOSS_COUNTERS = ("events_lost", "stream_gaps", "requests_lost", "batches_dropped", "spans_dropped",
                 "decode_errors")


def step(rate, args, port, loadgen, stall=0.0):
    """One rate for --duration seconds against a fresh receiver. `stall`:
    the receiver is stopped (SIGSTOP) that many seconds from a third of the
    way in, as a consumer starved of CPU would be: the ring buffer fills and
    the kernel drops events, which the counters must account for."""
    host = b.Host(args.duration + 3 + int(stall + 0.999), args.config, port=port)
    try:
        time.sleep(0.5)
        gen_proc = subprocess.Popen([loadgen, "rate", "-addr", f"127.0.0.1:{port}", "-rate", str(rate),
                                     "-duration", f"{args.duration}s", "-conns", str(args.conns)],
                                    stdout=subprocess.PIPE, text=True)
        if stall:
            time.sleep(args.duration / 3)
            os.kill(host.pid, signal.SIGSTOP)
            time.sleep(stall)
            os.kill(host.pid, signal.SIGCONT)
        out, _ = gen_proc.communicate()
        if gen_proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out}")
        gen = json.loads(out.strip().splitlines()[-1])
        final = host.wait(timeout=args.duration + 120)
    finally:
        host.kill()
    if final is None:
        raise RuntimeError("bench_host printed no final counters")
    ok = gen["ok"]
    rec = {
        "rate": rate, "stall_s": stall, "achieved": gen["achieved_rate"], "ok": ok, "errors": gen["errors"],
        "not_sent": gen["not_sent"], "p50_us": gen["p50_us"], "p99_us": gen["p99_us"],
        "server_spans": final["server_spans"], "client_spans": final["client_spans"],
        "missing_server": ok - final["server_spans"], "missing_client": ok - final["client_spans"],
        **{k: final.get(k, 0) for k in LOSS_COUNTERS + ("events_read", "parse_errors")},
    }
    rec["lossless"] = (rec["missing_server"] == 0 and rec["missing_client"] == 0
                       and all(rec[k] == 0 for k in LOSS_COUNTERS))
    # Saturated: the client (or nginx, or the machine) could not keep the rate.
    rec["saturated"] = gen["not_sent"] > 0 or gen["achieved_rate"] < 0.97 * rate
    b.log(f"  {rate:>6}/s{f' stall {stall}s' if stall else ''}: ok {ok} (achieved {gen['achieved_rate']:.0f}/s, p99 {gen['p99_us'] / 1000:.1f} ms) "
          f"server spans {rec['server_spans']} client spans {rec['client_spans']} "
          f"missing {rec['missing_server']}/{rec['missing_client']} "
          f"events_lost {rec['events_lost']} gaps {rec['stream_gaps']} requests_lost {rec['requests_lost']} "
          f"batches_dropped {rec['batches_dropped']} -> {'lossless' if rec['lossless'] else 'LOSS'}"
          f"{' (saturated)' if rec['saturated'] else ''}")
    return rec


def table(steps):
    lines = ["| target req/s | receiver stopped s | achieved req/s | responses | SERVER spans | CLIENT spans | "
             "missing S/C | events_lost | stream_gaps | requests_lost | batches_dropped | client p99 ms | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in steps:
        lines.append(f"| {s['rate']} | {s['stall_s'] or ''} | {s['achieved']:.0f} | {s['ok']} | {s['server_spans']} | "
                     f"{s['client_spans']} | {s['missing_server']}/{s['missing_client']} | {s['events_lost']} | "
                     f"{s['stream_gaps']} | {s['requests_lost']} | {s['batches_dropped']} | "
                     f"{s['p99_us'] / 1000:.1f} | {'lossless' if s['lossless'] else 'loss'}"
                     f"{' (saturated)' if s['saturated'] else ''} |")
    return lines


def accounting(s):
    """Do the counters explain the missing spans? Here every span is two data
    events (nginx: one read, one writev; loadgen: one write, one read), so a
    span lost whole costs 2 events and one cut by a hole (its request seen,
    its response lost: `requests_lost`) 1."""
    missing = s["missing_server"] + s["missing_client"]
    stall = f", receiver stopped {s['stall_s']}s" if s["stall_s"] else ""
    expected = 2 * (missing - s["requests_lost"]) + s["requests_lost"]
    verdict = "exact" if expected == s["events_lost"] else f"off by {s['events_lost'] - expected}"
    return (f"- {s['rate']}/s{stall}: {missing} spans missing (SERVER {s['missing_server']}, CLIENT "
            f"{s['missing_client']}); counted: requests_lost {s['requests_lost']}, events_lost {s['events_lost']}, "
            f"stream_gaps {s['stream_gaps']}. requests_lost alone {'matches' if s['requests_lost'] == missing else 'does NOT match'} "
            f"the missing spans; in events, 2 × (missing − requests_lost) + requests_lost = {expected} against "
            f"events_lost {s['events_lost']} ({verdict})"
            f"{'' if s['events_lost'] or not missing else '; NOTHING counted the loss'}")


def render(steps, best, worst, args):
    cmd = "bench/loss.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{cmd}` (config `{args.config}`, {args.duration}s per step, "
             f"{args.conns} keep-alive connections)", ""]
    ramp = sorted((s for s in steps if not s["stall_s"]), key=lambda s: s["rate"])
    lines += table(ramp)
    lines.append("")
    sat = [s for s in ramp if s["saturated"] and s["lossless"]]
    if worst is None and sat:
        lines.append(f"- no loss up to saturation: at a target of {sat[-1]['rate']}/s the machine delivered "
                     f"{sat[-1]['achieved']:.0f} req/s, all traced; the highest unsaturated lossless rate was "
                     f"{best} req/s")
    else:
        lines.append(f"- highest lossless rate: {best if best else 'none'} req/s"
                     f"{'' if worst is None else f'; lowest lossy rate: {worst} req/s'}")
    lines += [accounting(s) for s in ramp if not s["lossless"]]
    stalls = [s for s in steps if s["stall_s"]]
    if stalls:
        lines += ["", f"Receiver stopped (SIGSTOP) mid-step at {args.stall_rate}/s, as a starved consumer:", ""]
        lines += table(stalls)
        lines.append("")
        lines += [accounting(s) for s in stalls if not s["lossless"]]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="2000,5000,10000,15000,20000,25000,30000,35000,40000")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=1000)
    ap.add_argument("--confirm", type=int, default=2, help="repeat the highest lossless rate this many times")
    ap.add_argument("--config", default="{}")
    ap.add_argument("--stalls", default="1,2,4",
                    help="after the ramp, steps at --stall-rate with the receiver stopped this many seconds")
    ap.add_argument("--stall-rate", type=int, default=5000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("loss.py: needs root (eBPF)")
    b.raise_nofile()
    b.build_host(args.no_build)
    work = tempfile.mkdtemp(prefix="oe-loss-")
    steps = []
    b.log(f"machine: {b.machine()}")
    try:
        loadgen = b.build_loadgen(work)
        port = b.free_port()
        nginx = b.start_nginx(work, port, connections=4096)
        try:
            best, worst = 0, None
            for rate in (int(r) for r in args.rates.split(",")):
                s = step(rate, args, port, loadgen)
                steps.append(s)
                if s["lossless"] and not s["saturated"]:
                    best = rate
                elif not s["lossless"]:
                    worst = rate
                    break
                else:
                    break  # saturated without loss: the machine's limit, not the receiver's
            while worst is not None and worst - best > args.resolution:
                mid = (best + worst) // 2 // 100 * 100
                s = step(mid, args, port, loadgen)
                steps.append(s)
                if s["lossless"]:
                    best = mid
                else:
                    worst = mid
            # Noise: the highest lossless rate must hold again.
            for _ in range(args.confirm if best else 0):
                s = step(best, args, port, loadgen)
                steps.append(s)
                if not s["lossless"]:
                    b.log(f"  {best}/s did not hold on a repeat")
            for stall in (float(x) for x in args.stalls.split(",") if x):
                steps.append(step(args.stall_rate, args, port, loadgen, stall=stall))
        finally:
            nginx.terminate()
            nginx.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(steps, f, indent=1)
    print(render(steps, best, worst, args))


if __name__ == "__main__":
    main()
