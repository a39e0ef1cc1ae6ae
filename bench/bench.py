#!/usr/bin/env python3
"""exaprobe versus ExaBGP's built-in healthcheck, side by side on one machine.

Both are driven the same way: this script plays ExaBGP on their stdin/stdout (it answers
`done` to every command and timestamps every line), samples their process trees in /proc, and
flips the same service. Then both run under a real ExaBGP 5.0 peered with GoBGP, and the time
until the route changes at the peer is measured. Prints tables; writes nothing unless --markdown.

Nothing here is a test: no figure is asserted. Everything runs on loopback.
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = Path(os.environ.get("EXAPROBE_DEPS_DIR", "/opt/exaprobe-deps"))
EXABGP = DEPS / "exabgp-5.0" / "bin" / "exabgp"
TIMERS = ["--rise", "2", "--fall", "2", "--interval", "1", "--fast-interval", "0.5"]


def target_dir():
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(json.loads(meta.stdout)["target_directory"])


BIN = target_dir() / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- /proc sampling ------------------------------------------------------------------------

def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def tree(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def own_cpu_seconds(pid):
    """CPU time of the process itself, every thread, in ns precision (schedstat), children apart."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def child_cpu_seconds(pid):
    """utime+stime of the process's reaped children (cutime+cstime): the checks it ran."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (13, 14)) / os.sysconf("SC_CLK_TCK")


def switches(pid):
    """Voluntary and involuntary context switches of every thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---- the floor ---------------------------------------------------------------------------------

FLOOR_C = Path(__file__).resolve().parent / "floor.c"


def build_floor(work):
    """bench/floor.c compiled into `work`; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    binary = work / "floor"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(FLOOR_C)], check=True)
    return binary


def run_floor(binary, spawns, pause_us, program="/bin/true", same=False):
    """The parent's CPU (ms) and context switches per spawn of one floor.c run; with `same`, the
    work an exec check asks of the kernel (`program` is then the `sh -c` script)."""
    argv = [str(binary), str(spawns), program, str(pause_us)] + (["same"] if same else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    count, cpu, switched = int(out[0]), float(out[1]), int(out[2])
    return cpu / count * 1000, switched / count


def floor(work, spawns, pause_s):
    """Parent CPU per posix_spawn + waitpid of /bin/true (bench/floor.c, getrusage of the parent),
    back to back and paced one spawn per `pause_s` like the checks. None without a C compiler."""
    binary = build_floor(work)
    if binary is None:
        return None
    hot = run_floor(binary, spawns, 0)
    paced = run_floor(binary, max(spawns // 10, 20), int(pause_s * 1e6))
    return hot, paced


# ---- a probe run with this script as ExaBGP --------------------------------------------------

class Run:
    """A probe process whose stdout lines are timestamped and answered with `done`."""

    def __init__(self, argv, env=None):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.lines = []  # (time since start, line)
        self.cond = threading.Condition()
        self.peak_rss = 0
        self.samples = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()
            try:
                self.proc.stdin.write(b"done\n")
                self.proc.stdin.flush()
            except OSError:
                return

    def _sample(self):
        while self.proc.poll() is None:
            value = rss_kib(self.proc.pid)
            self.samples.append(value)
            self.peak_rss = max(self.peak_rss, value)
            time.sleep(0.05)

    def wait_line(self, predicate, since, timeout=20):
        """Time of the first line after `since` matching predicate."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if t >= since and predicate(line):
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching line within {timeout}s")
                self.cond.wait(left)

    def count(self, predicate, since=0.0):
        with self.cond:
            return sum(1 for t, line in self.lines if t >= since and predicate(line))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def timers(extra):
    """TIMERS with the options in `extra` replacing theirs (exaprobe rejects repeats)."""
    extra = list(extra)
    keep = []
    for i in range(0, len(TIMERS), 2):
        if TIMERS[i] not in extra:
            keep += TIMERS[i:i + 2]
    return keep + extra


def exaprobe_exec(prefixes, command, extra=()):
    argv = [str(BIN / "exaprobe-exec"), "--name", "bench", "--prefix", prefixes[0], "--next-hop", "10.0.0.1",
            "--exabgp-api", "4", *timers(extra)]
    for p in prefixes[1:]:
        argv += ["--prefix", p]
    return argv + ["--shell", command]


def healthcheck(prefixes, command, extra=()):
    argv = [str(EXABGP), "healthcheck", "--no-syslog", "--no-ip-setup", "--next-hop", "10.0.0.1",
            *timers(extra), "--cmd", command]
    for p in prefixes:
        argv += ["--ip", p]
    return argv


def http_probe(prefixes, url, extra=()):
    return [str(BIN / "exaprobe-http"), "--name", "bench", "--prefix", prefixes[0], "--next-hop", "10.0.0.1",
            "--exabgp-api", "4", *timers(extra), "--url", url]


def ntp_probe(prefixes, server, extra=()):
    return [str(BIN / "exaprobe-ntp"), "--name", "bench", "--prefix", prefixes[0], "--next-hop", "10.0.0.1",
            "--exabgp-api", "4", *timers(extra), "--server", server]


# What an operator writes for `exabgp healthcheck --cmd` without exaprobe-ntp: one NTP request,
# the reply's origin, leap indicator and stratum checked (argv: HOST PORT).
NTP_CHECK_PY = """import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
sent = os.urandom(8)
s.send(bytes([0x23]) + bytes(39) + sent)
reply = s.recv(512)
sys.exit(0 if len(reply) >= 48 and reply[24:32] == sent and reply[0] >> 6 != 3 and 0 < reply[1] < 16 else 1)
"""


# ---- local services -------------------------------------------------------------------------

class NtpService:
    """An NTP server on loopback answering as a synchronised stratum 2 server on the host's
    clock, counting the requests it answers."""

    def __init__(self):
        self.requests = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            request, client = self.socket.recvfrom(512)
            if len(request) < 48:
                continue
            self.requests += 1
            now = struct.pack(">Q", int((time.time() + 2_208_988_800) * 2**32))
            header = bytes([0x24, 2, 0, 0xEC]) + struct.pack(">II", 0x10, 0x10) + bytes([192, 0, 2, 1])
            self.socket.sendto(header + now + request[40:48] + now + now, client)


class Service:
    """An HTTP server on loopback whose /health answers 200 while `healthy`, else 503."""

    def __init__(self):
        self.healthy = True
        self.requests = 0
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                service.requests += 1
                code = 200 if service.healthy else 503
                body = b"ok\n" if service.healthy else b"down\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients hanging up (curl --max-time, probe shutdown) are not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# ---- measurements ----------------------------------------------------------------------------

def spread(values, unit=""):
    values = sorted(values)
    if not values:
        return "n/a"
    med = statistics.median(values)
    return f"{fmt(med)}{unit} [{fmt(values[0])}-{fmt(values[-1])}]"


def fmt(x):
    if isinstance(x, float):
        return f"{x:.3g}" if x < 100 else f"{x:.0f}"
    return str(x)


def measure_reaction(make_argv, flag, runs):
    """Start with the service up; time to first announce; then flip down and up."""
    first, down, up = [], [], []
    for _ in range(runs):
        flag.touch()
        run = Run(make_argv())
        try:
            t = run.wait_line(lambda l: "announce" in l and "med 100" in l, 0)
            first.append(t - run.start)
            time.sleep(0.3 + 0.7 * (len(down) / max(runs, 1)))  # vary the phase against the interval
            t0 = time.monotonic()
            flag.unlink()
            t = run.wait_line(lambda l: "med 1000" in l, t0)
            down.append(t - t0)
            t0 = time.monotonic()
            flag.touch()
            t = run.wait_line(lambda l: "med 100 " in l + " ", t0)
            up.append(t - t0)
        finally:
            run.stop()
    return first, down, up


def file_size(path):
    return path.stat().st_size if path.exists() else 0


def measure_resources(make_argv, flag, count, seconds):
    """Fast checks for `seconds` once UP: CPU per check (the probe's own, its checks'), peak and
    steady RSS. `count()` says how many checks have run so far."""
    flag.touch()
    run = Run(make_argv())
    try:
        run.wait_line(lambda l: "med 100" in l, 0)
        pid = run.proc.pid
        own0, child0 = own_cpu_seconds(pid), child_cpu_seconds(pid)
        checks0 = count()
        time.sleep(seconds)
        own, child = own_cpu_seconds(pid) - own0, child_cpu_seconds(pid) - child0
        checks = count() - checks0
        steady = statistics.median(run.samples[len(run.samples) // 2:]) if run.samples else 0
        return own, child, checks, run.peak_rss, steady
    finally:
        run.stop()


def measure_idle(make_argv, flag, seconds):
    flag.touch()
    run = Run(make_argv())
    try:
        run.wait_line(lambda l: "med 100" in l, 0)
        before = switches(run.proc.pid)
        time.sleep(seconds)
        after = switches(run.proc.pid)
        lines = run.count(lambda l: True)
        return (after - before) * 60 / seconds, lines
    finally:
        run.stop()


def measure_many(make_argv, count):
    """Announce `count` prefixes (each ACKed), then withdraw them all on SIGTERM."""
    run = Run(make_argv())
    try:
        deadline = time.monotonic() + 120
        while run.count(lambda l: "announce" in l) < count:
            if time.monotonic() > deadline:
                raise TimeoutError("announces")
            time.sleep(0.01)
        announced = max(t for t, l in run.lines if "announce" in l) - run.start
        t0 = time.monotonic()
        os.killpg(run.proc.pid, signal.SIGTERM)
        while run.count(lambda l: "withdraw" in l, t0) < count and run.proc.poll() is None:
            time.sleep(0.01)
        run.proc.wait(10)
        withdrawn_lines = run.count(lambda l: "withdraw" in l, t0)
        withdrawn = (max((t for t, l in run.lines if "withdraw" in l), default=t0) - t0) if withdrawn_lines else None
        return announced, withdrawn, withdrawn_lines
    finally:
        run.stop(signal.SIGKILL)


def startup(argv, runs):
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.monotonic() - t0)
    return times


# ---- under a real ExaBGP and GoBGP -------------------------------------------------------------

def real_exabgp(process_argv, flag, runs):
    """Time from the service failing to the DOWN MED at GoBGP, under ExaBGP 5.0."""
    if not shutil.which("gobgpd"):
        return None
    results = []
    with tempfile.TemporaryDirectory(prefix="exaprobe-bench-") as tmp:
        tmp = Path(tmp)
        bgp, api = free_port(), free_port()
        (tmp / "gobgp.toml").write_text(
            f'[global.config]\n  as = 65001\n  router-id = "10.0.0.2"\n  port = {bgp}\n  local-address-list = ["127.0.0.1"]\n'
            '[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "127.0.0.2"\n    peer-as = 65000\n'
            '  [neighbors.transport.config]\n    passive-mode = true\n')
        run_line = " ".join(f'"{a}"' if " " in a or ";" in a else a for a in process_argv)
        (tmp / "exabgp.conf").write_text(
            f"process probe {{\n    run {run_line};\n    encoder text;\n}}\n"
            f"neighbor 127.0.0.1 {{\n    router-id 10.0.0.1; local-address 127.0.0.2; local-as 65000; peer-as 65001;\n"
            f"    connect {bgp}; hold-time 9;\n    family {{ ipv4 unicast; }}\n    api {{ processes [ probe ]; }}\n}}\n")
        gobgpd = subprocess.Popen(["gobgpd", "-f", str(tmp / "gobgp.toml"), "--api-hosts", f"127.0.0.1:{api}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        flag.touch()
        env = dict(os.environ, exabgp_api_cli="false", exabgp_log_destination="stderr", exabgp_daemon_drop="false")
        exabgp = subprocess.Popen([str(EXABGP), str(tmp / "exabgp.conf")], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def med():
            out = subprocess.run(["gobgp", "-p", str(api), "global", "rib", "-j"], capture_output=True, text=True)
            try:
                paths = json.loads(out.stdout or "{}").get("192.0.2.10/32", [])
            except json.JSONDecodeError:
                return None
            for attr in paths[0]["attrs"] if paths else []:
                if attr.get("type") == 4:
                    return attr.get("metric")
            return None

        def wait_med(value, timeout=30):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if med() == value:
                    return time.monotonic()
                time.sleep(0.02)
            raise TimeoutError(f"MED {value} at GoBGP")

        try:
            wait_med(100, 60)
            for i in range(runs):
                time.sleep(0.3 + 0.6 * i / max(runs, 1))
                t0 = time.monotonic()
                flag.unlink()
                results.append(wait_med(1000) - t0)
                flag.touch()
                wait_med(100)
        finally:
            os.killpg(exabgp.pid, signal.SIGTERM)
            exabgp.wait(10)
            gobgpd.terminate()
            gobgpd.wait(5)
    return results


# ---- report ------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter windows (a smoke run)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    args = parser.parse_args()
    runs, window, idle, prefixes_n, real_runs = (2, 3, 12, 200, 1) if args.quick else (5, 20, 30, 1000, 3)
    for tool in [BIN / "exaprobe-exec", BIN / "exaprobe-http", BIN / "exaprobe-ntp", EXABGP]:
        if not tool.exists():
            sys.exit(f"missing {tool}: run cargo build --release --bins and scripts/install-test-deps")
    if not shutil.which("curl"):
        sys.exit("missing curl (Debian package curl)")

    work = Path(tempfile.mkdtemp(prefix="exaprobe-bench-"))
    flag, counter = work / "healthy", work / "checks"
    exec_cmd = f"test -f {flag} && printf x >> {counter}"
    service = Service()
    url = f"http://127.0.0.1:{service.port}/health"
    curl_cmd = f"curl -sf --max-time 2 {url}"
    version = subprocess.run([str(EXABGP), "version"], capture_output=True, text=True).stdout.strip().splitlines()[:1]
    rows = []  # (measure, exaprobe, healthcheck, ratio, unit-note)

    def add(measure, ours, theirs, unit="", ratio=None):
        rows.append((measure, ours, theirs, ratio if ratio is not None else "", unit))

    def ratio(a, b):
        return f"{a / b:.2f}" if a is not None and b else "n/a"

    print(f"exaprobe bench: {runs} runs per timing, {window} s load windows, {idle} s idle windows", flush=True)
    pairs = {
        "exec": (lambda extra=(): exaprobe_exec(["192.0.2.10/32"], exec_cmd, extra),
                 lambda extra=(): healthcheck(["192.0.2.10/32"], exec_cmd, extra)),
    }

    # Reaction times (stdout), exec.
    ours = measure_reaction(pairs["exec"][0], flag, runs)
    theirs = measure_reaction(lambda: healthcheck(["192.0.2.10/32"], exec_cmd), flag, runs)
    for name, a, b in zip(["first announce after start", "service fails -> DOWN MED line", "service recovers -> UP MED line"],
                          ours, theirs):
        add(f"exec: {name}", spread(a, " s"), spread(b, " s"), "timers: rise 2, fall 2, interval 1 s, fast 0.5 s",
            ratio(statistics.median(a), statistics.median(b)))

    # CPU per check, memory: fast checks.
    fast = ["--interval", "0.05", "--fast-interval", "0.05"]
    o_own, o_child, o_checks, o_peak, o_steady = measure_resources(lambda: pairs["exec"][0](fast), flag, lambda: file_size(counter), window)
    t_own, t_child, t_checks, t_peak, t_steady = measure_resources(lambda: pairs["exec"][1](fast), flag, lambda: file_size(counter), window)

    def per_check(seconds, checks):
        return seconds / checks * 1000 if checks else None
    o_pc, t_pc = per_check(o_own + o_child, o_checks), per_check(t_own + t_child, t_checks)
    add("exec: CPU per check (incl. the check's own sh)", f"{fmt(o_pc)} ms ({o_checks} checks)",
        f"{fmt(t_pc)} ms ({t_checks} checks)", "interval 0.05 s; the probe and its checks", ratio(o_pc, t_pc))
    o_pc, t_pc = per_check(o_own, o_checks), per_check(t_own, t_checks)
    add("exec: the probe's own CPU per check", f"{fmt(o_pc)} ms", f"{fmt(t_pc)} ms",
        "all threads, schedstat; the checks apart", ratio(o_pc, t_pc))
    floors = floor(work, runs * 400, 0.05)
    if floors:
        (hot, hot_sw), (paced, paced_sw) = floors
        add("floor: posix_spawn + waitpid of /bin/true, the parent's CPU", f"{fmt(paced)} ms paced, {fmt(hot)} ms back to back",
            "", "bench/floor.c, getrusage; paced = one spawn per 50 ms, as the checks above",
            f"exec/floor {o_pc / paced:.2f} paced, {o_pc / hot:.2f} back to back" if o_pc else "")
    o_pc, t_pc = per_check(o_child, o_checks), per_check(t_child, t_checks)
    add("exec: the check's child CPU per check", f"{fmt(o_pc)} ms", f"{fmt(t_pc)} ms",
        "the same sh -c command; cutime+cstime", ratio(o_pc, t_pc))
    add("exec: peak RSS of the process tree", f"{o_peak / 1024:.1f} MiB", f"{t_peak / 1024:.1f} MiB", "", ratio(o_peak, t_peak))
    add("exec: steady RSS of the process tree", f"{o_steady / 1024:.1f} MiB", f"{t_steady / 1024:.1f} MiB", "", ratio(o_steady, t_steady))

    # HTTP versus curl.
    service.healthy = True
    o_own, o_child, o_checks, o_peak, o_steady = measure_resources(
        lambda: http_probe(["192.0.2.10/32"], url, fast), flag, lambda: service.requests, window)
    o_cpu = o_own + o_child
    t_own, t_child, t_checks, t_peak, t_steady = measure_resources(
        lambda: healthcheck(["192.0.2.10/32"], curl_cmd, fast), flag, lambda: service.requests, window)
    t_cpu = t_own + t_child
    o_pc = o_cpu / o_checks * 1000 if o_checks else None
    t_pc = t_cpu / t_checks * 1000 if t_checks else None
    add("http: CPU per check (vs --cmd curl)", f"{fmt(o_pc)} ms ({o_checks} checks)", f"{fmt(t_pc)} ms ({t_checks} checks)",
        "interval 0.05 s", ratio(o_pc, t_pc))
    add("http: peak RSS of the process tree", f"{o_peak / 1024:.1f} MiB", f"{t_peak / 1024:.1f} MiB", "", ratio(o_peak, t_peak))
    add("http: steady RSS of the process tree", f"{o_steady / 1024:.1f} MiB", f"{t_steady / 1024:.1f} MiB", "", ratio(o_steady, t_steady))

    # HTTP reaction (service returns 503).
    def http_reaction(make):
        downs = []
        for i in range(runs):
            service.healthy = True
            run = Run(make())
            try:
                run.wait_line(lambda l: "med 100" in l, 0)
                time.sleep(0.3 + 0.7 * i / max(runs, 1))
                t0 = time.monotonic()
                service.healthy = False
                downs.append(run.wait_line(lambda l: "med 1000" in l, t0) - t0)
            finally:
                run.stop()
                service.healthy = True
        return downs
    a = http_reaction(lambda: http_probe(["192.0.2.10/32"], url))
    b = http_reaction(lambda: healthcheck(["192.0.2.10/32"], curl_cmd))
    add("http: service answers 503 -> DOWN MED line", spread(a, " s"), spread(b, " s"), "same timers",
        ratio(statistics.median(a), statistics.median(b)))

    # NTP versus a Python check (one request, origin, leap and stratum checked).
    ntp = NtpService()
    ntp_check = work / "ntp_check.py"
    ntp_check.write_text(NTP_CHECK_PY)
    ntp_cmd = f"python3 {ntp_check} 127.0.0.1 {ntp.port}"
    o_own, o_child, o_checks, o_peak, o_steady = measure_resources(
        lambda: ntp_probe(["192.0.2.10/32"], f"127.0.0.1:{ntp.port}", fast), flag, lambda: ntp.requests, window)
    t_own, t_child, t_checks, t_peak, t_steady = measure_resources(
        lambda: healthcheck(["192.0.2.10/32"], ntp_cmd, fast), flag, lambda: ntp.requests, window)
    o_pc, t_pc = per_check(o_own + o_child, o_checks), per_check(t_own + t_child, t_checks)
    add("ntp: CPU per check (vs --cmd python3)", f"{fmt(o_pc)} ms ({o_checks} checks)", f"{fmt(t_pc)} ms ({t_checks} checks)",
        "interval 0.05 s; the probe and its checks", ratio(o_pc, t_pc))
    add("ntp: peak RSS of the process tree", f"{o_peak / 1024:.1f} MiB", f"{t_peak / 1024:.1f} MiB", "", ratio(o_peak, t_peak))
    add("ntp: steady RSS of the process tree", f"{o_steady / 1024:.1f} MiB", f"{t_steady / 1024:.1f} MiB", "", ratio(o_steady, t_steady))
    add("ntp: size on disk", f"{(BIN / 'exaprobe-ntp').stat().st_size / 1e6:.1f} MB", "", "the stripped release binary")

    # Idle wakeups (default 5 s interval, stable UP; exaprobe sends nothing, healthcheck re-sends
    # every interval unless --debounce).
    o_sw, o_lines = measure_idle(lambda: exaprobe_exec(["192.0.2.10/32"], exec_cmd, ["--interval", "5"]), flag, idle)
    t_sw, t_lines = measure_idle(lambda: healthcheck(["192.0.2.10/32"], exec_cmd, ["--interval", "5"]), flag, idle)
    d_sw, _ = measure_idle(lambda: healthcheck(["192.0.2.10/32"], exec_cmd, ["--interval", "5", "--debounce"]), flag, idle)
    add("exec: context switches per idle minute, all threads", fmt(o_sw), fmt(t_sw), "interval 5 s, stable UP",
        ratio(o_sw, t_sw))
    add("exec: the same, healthcheck with --debounce", fmt(o_sw), fmt(d_sw), "interval 5 s, stable UP",
        ratio(o_sw, d_sw))
    add(f"exec: commands written in the first {idle} s (stable UP)", str(o_lines), str(t_lines),
        "healthcheck re-sends every interval unless --debounce")

    # Many prefixes.
    many = [f"198.18.{i // 250}.{i % 250 + 1}/32" for i in range(prefixes_n)]
    config = work / "many.toml"
    config.write_text("prefix = [" + ", ".join(f'"{p}"' for p in many) + "]\n")
    o_ann, o_wd, o_wdn = measure_many(lambda: [str(BIN / "exaprobe-exec"), "--config", str(config), "--next-hop", "10.0.0.1",
                                               "--exabgp-api", "4", *TIMERS, "--shell", exec_cmd], prefixes_n)
    t_ann, t_wd, t_wdn = measure_many(lambda: healthcheck(many, exec_cmd), prefixes_n)
    add(f"{prefixes_n} prefixes: start -> last announce ACKed", f"{o_ann:.2f} s", f"{t_ann:.2f} s", "rise 2 x fast 0.5 s included",
        ratio(o_ann, t_ann))
    add(f"{prefixes_n} prefixes: SIGTERM -> withdraws written",
        f"{o_wdn} in {fmt(o_wd)} s" if o_wd is not None else f"{o_wdn}", f"{t_wdn} in {fmt(t_wd)} s" if t_wd is not None else f"{t_wdn}",
        "each ACKed")

    # Start-up and size.
    o_start = startup([str(BIN / "exaprobe-exec"), "--version"], runs * 4)
    t_start = startup([str(EXABGP), "healthcheck", "--help"], runs * 4)
    add("start-up (--version / --help)", spread([x * 1000 for x in o_start], " ms"), spread([x * 1000 for x in t_start], " ms"),
        "", ratio(statistics.median(o_start), statistics.median(t_start)))
    exabgp_pkg = next((DEPS / "exabgp-5.0" / "lib").glob("python*/site-packages/exabgp"), None)
    pkg_size = sum(f.stat().st_size for f in exabgp_pkg.rglob("*") if f.is_file()) if exabgp_pkg else 0
    add("size on disk", f"{(BIN / 'exaprobe-exec').stat().st_size / 1e6:.1f} MB exec, {(BIN / 'exaprobe-http').stat().st_size / 1e6:.1f} MB http",
        f"{pkg_size / 1e6:.1f} MB exabgp package + Python", "")

    # Under a real ExaBGP.
    o_real = real_exabgp(exaprobe_exec(["192.0.2.10/32"], exec_cmd), flag, real_runs)
    t_real = real_exabgp(healthcheck(["192.0.2.10/32"], exec_cmd), flag, real_runs)
    if o_real is not None:
        add("real ExaBGP 5.0 + GoBGP: fails -> DOWN MED at the peer", spread(o_real, " s"), spread(t_real, " s"),
            "same timers", ratio(statistics.median(o_real), statistics.median(t_real)))

    header = ("measure", "exaprobe", "exabgp healthcheck", "ratio", "note")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    print()
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    machine = f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
    print(f"\n{time.strftime('%Y-%m-%d')}, {machine}, {' / '.join(version)}; values: median [min-max] over the runs")
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write("| " + " | ".join(header) + " |\n|" + "---|" * 5 + "\n")
            for row in rows:
                out.write("| " + " | ".join(str(c) for c in row) + " |\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
