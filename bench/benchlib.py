"""Shared pieces of bench/memory.py and bench/loss.py: nginx, the receiver
hosts (target/release/examples/bench_host, dist/otelcol-ebpf), the load
generator (bench/loadgen.go), and readings from /proc and bpftool."""
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.environ.get("OE_BENCH_HOST", os.path.join(ROOT, "target/release/examples/bench_host"))
COLLECTOR = os.environ.get("OE_BENCH_COLLECTOR", os.path.join(ROOT, "dist/otelcol-ebpf"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def raise_nofile(n=200000):
    """Children (nginx, loadgen) inherit it: 10,000 connections need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def build_host(skip=False):
    if skip or "OE_BENCH_HOST" in os.environ:
        return
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ebpf-core", "--example", "bench_host"],
                   cwd=ROOT, check=True)


def build_loadgen(work):
    out = os.path.join(work, "loadgen")
    subprocess.run(["go", "build", "-o", out, os.path.join(ROOT, "bench/loadgen.go")], cwd=ROOT, check=True)
    return out


def start_nginx(work, port, connections=30000, binary="nginx"):
    """One worker, keep-alive without limits, a 17-byte static file.
    `binary`: another copy of nginx, so that a receiver can select this
    instance by its executable's path."""
    # mkdtemp makes the directory 0700: nginx's worker (nobody) would answer
    # 403 Forbidden instead of serving the file.
    os.chmod(work, 0o755)
    os.makedirs(os.path.join(work, "www"), exist_ok=True)
    with open(os.path.join(work, "www", "index.html"), "w") as f:
        f.write("hello from nginx\n")
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
worker_rlimit_nofile {connections * 2};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 3600s;
  server {{ listen 127.0.0.1:{port} backlog=4096; root {work}/www; }}
}}
""")
    p = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def start_demo(work, port, name="demo-server"):
    """examples/demo-server built into `work/name`, answering at once
    (-sleep 0). Returns the process and the binary's path."""
    binary = os.path.join(work, name)
    subprocess.run(["go", "build", "-o", binary, "."], cwd=os.path.join(ROOT, "examples/demo-server"), check=True)
    p = subprocess.Popen([binary, "-addr", f"127.0.0.1:{port}", "-sleep", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, binary


def bpf_run_ns(pid=None):
    """Total run time (ns) and run count of our programs: with `pid`, the
    programs that process loaded (it holds their fds), so that receivers
    other work runs on the same host are not counted; else every program
    named oe_*. Needs kernel.bpf_stats_enabled=1."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout
    mine = {int(i["prog_id"]) for i in _fdinfo(pid, "bpf-prog") if "prog_id" in i} if pid else None
    ns = cnt = 0
    for prog in json.loads(out or "[]"):
        if (prog.get("id") in mine) if mine is not None else prog.get("name", "").startswith("oe_"):
            ns += prog.get("run_time_ns", 0)
            cnt += prog.get("run_cnt", 0)
    return ns, cnt


TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def _stat_cpu(path):
    """(comm, utime + stime in ns) of a /proc stat file."""
    with open(path) as f:
        text = f.read()
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return comm, (int(fields[11]) + int(fields[12])) * TICK_NS


def cpu_ns(pid):
    """CPU time (user + system) of a process, its exited threads included."""
    return _stat_cpu(f"/proc/{pid}/stat")[1]


def thread_cpu_ns(pid, prefix):
    """CPU time of the process's live threads whose name starts with `prefix`
    (Linux cuts thread names to 15 bytes)."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm, ns = _stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue
        if comm.startswith(prefix):
            total += ns
    return total


def parse_latency(text, label):
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def run_wrk(port, duration, connections):
    """wrk -t1 as fast as the server answers: (req/s, requests, p50 µs, p99 µs)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rps, total, parse_latency(out, "50%"), parse_latency(out, "99%")


def run_rate(loadgen, port, rate, duration, connections):
    """bench/loadgen.go at a fixed rate: its JSON summary (latencies in µs
    from each request's scheduled time)."""
    out = subprocess.run([loadgen, "rate", "-addr", f"127.0.0.1:{port}", "-rate", f"{rate:.0f}",
                          "-duration", f"{duration}s", "-conns", str(connections)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Host:
    """target/release/examples/bench_host: the library alone, polling and
    discarding batches. Its periodic JSON reports are kept in .latest."""

    kind = "lib"

    def __init__(self, seconds, config="{}", port=None, report_ms=None):
        env = dict(os.environ)
        if port:
            env["BENCH_HOST_PORT"] = str(port)
        if report_ms:
            env["BENCH_HOST_REPORT_MS"] = str(report_ms)
        self.proc = subprocess.Popen([HOST, str(seconds), config], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.pid = self.proc.pid
        line = self.proc.stderr.readline()
        if "started" not in line:
            raise RuntimeError(f"bench_host failed: {line}{self.proc.stderr.read()}")
        self.latest = None
        self.final = None
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.latest = rec
            if rec.get("final"):
                self.final = rec

    def wait(self, timeout=120):
        self.proc.wait(timeout)
        end = time.time() + 5
        while self.final is None and time.time() < end:
            time.sleep(0.05)
        return self.final

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


COLLECTOR_CONFIG = """
receivers:
  ebpf: {}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [debug]
    metrics:
      receivers: [ebpf]
      exporters: [debug]
"""


class Collector:
    """dist/otelcol-ebpf with the receiver's defaults, traces and metrics to
    the debug exporter (counts only)."""

    kind = "collector"

    def __init__(self, work, env=None):
        conf = os.path.join(work, "otelcol.yaml")
        with open(conf, "w") as f:
            f.write(COLLECTOR_CONFIG)
        self.log = open(os.path.join(work, "otelcol.log"), "w")
        self.proc = subprocess.Popen([COLLECTOR, "--config", conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.pid = self.proc.pid
        # Started once its maps exist and it logs that it is ready.
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"otelcol-ebpf exited: see {self.log.name}")
            with open(self.log.name) as f:
                if "Everything is ready" in f.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"otelcol-ebpf did not start within 60s: see {self.log.name}")

    latest = None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def mem(pid):
    """VmRSS, RssAnon, RssFile, RssShmem and VmHWM (peak RSS) in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def _fdinfo(pid, kind):
    """fdinfo of the process's fds that are `anon_inode:<kind>`."""
    out = []
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) != f"anon_inode:{kind}":
                continue
            info = {}
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
            out.append(info)
        except OSError:
            continue
    return out


def bpf_maps(pid):
    """The BPF maps a process created: those it holds fds of, and those its
    programs use (a map userspace never touches may have no fd left). Each
    with name, type, sizes and memlock, the kernel's accounting of the map's
    memory (`bytes_memlock` of `bpftool map show`)."""
    ids = {int(i["map_id"]) for i in _fdinfo(pid, "bpf-map") if "map_id" in i}
    prog_ids = {int(i["prog_id"]) for i in _fdinfo(pid, "bpf-prog") if "prog_id" in i}
    if prog_ids:
        progs = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout
                           or "[]")
        for p in progs:
            if p.get("id") in prog_ids:
                ids.update(p.get("map_ids", []))
    maps = []
    out = subprocess.run(["bpftool", "map", "show", "-j"], capture_output=True, text=True).stdout
    for m in json.loads(out or "[]"):
        if m.get("id") in ids:
            maps.append({
                "id": m["id"], "name": m.get("name", "?"), "type_name": m.get("type", "?"),
                "key": m.get("bytes_key", 0), "value": m.get("bytes_value", 0),
                "max_entries": m.get("max_entries", 0), "flags": m.get("flags", 0),
                "memlock": m.get("bytes_memlock", 0),
            })
    return sorted(maps, key=lambda m: -m["memlock"])


class Sampler:
    """Samples RSS of a pid every `every` seconds in the background; .peak is
    the highest VmRSS seen since the last reset()."""

    def __init__(self, pid, every=0.5):
        self.pid, self.every, self.peak, self.stop_ = pid, every, 0, False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop_:
            try:
                self.peak = max(self.peak, mem(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            time.sleep(self.every)

    def reset(self):
        self.peak = 0

    def stop(self):
        self.stop_ = True


def machine():
    cpus = os.cpu_count()
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) // (1 << 20)
    load = os.getloadavg()
    return (f"{cpus} vCPU, {total} GiB, kernel {os.uname().release}, "
            f"load average before {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}")
