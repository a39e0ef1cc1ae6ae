#!/usr/bin/env python3
"""Reaction time to the service's own events (issue 27), under a real ExaBGP 5.0 peered with GoBGP.

Three events, each measured for exaprobe (events on), exaprobe --events off (pure polling) and
`exabgp healthcheck --cmd` with what an operator would otherwise run, all with the timers an
operator keeps: --interval 5 --fast-interval 1 --rise 3 --fall 3.
  grpc      a grpcio health server switched to NOT_SERVING (SIGUSR1 to the server script)
  redis     SENTINEL FAILOVER of a master and a replica watched by three Sentinels: the old
            master's DOWN and the new master's UP, timed from the first `+switch-master` the
            bench hears (it subscribes to the three Sentinels itself)
  postgres  pg_ctl stop -m fast, then pg_ctl start before the next run
Each time runs from the event to the DOWN MED (1000) or the withdraw seen in GoBGP's RIB, polled
every 20 ms (`gobgp global rib -j`); the probes are ExaBGP's processes, nothing plays ExaBGP.

Nothing here is a test: no figure is asserted. Every server listens on 127.0.0.1 only.
Prints a table; --markdown FILE appends it to FILE.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BIN, EXABGP, fmt, free_port  # noqa: E402
from probes import GRPC_CHECK_PY, GRPC_SERVER_PY, GRPC_VENV, report, wait_port  # noqa: E402

TIMERS = ["--interval", "5", "--fast-interval", "1", "--rise", "3", "--fall", "3"]
UP, DOWN = 100, 1000
PREFIXES = ["192.0.2.10/32", "192.0.2.11/32"]

# ---- ExaBGP and GoBGP --------------------------------------------------------------------------

class Bgp:
    """GoBGP and a real ExaBGP 5.0 running `processes` ({name: argv}), each through a script of
    its own (no quoting left to ExaBGP's configuration parser)."""

    def __init__(self, work, processes):
        self.work = work
        bgp, self.api = free_port(), free_port()
        (work / "gobgp.toml").write_text(
            f'[global.config]\n  as = 65001\n  router-id = "10.0.0.2"\n  port = {bgp}\n  local-address-list = ["127.0.0.1"]\n'
            '[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "127.0.0.2"\n    peer-as = 65000\n'
            '  [neighbors.transport.config]\n    passive-mode = true\n')
        blocks = []
        for name, argv in processes.items():
            script = work / f"run-{name}.sh"
            script.write_text("#!/bin/sh\nexec " + shlex.join(argv) + "\n")
            script.chmod(0o755)
            blocks.append(f"process {name} {{\n    run {script};\n    encoder text;\n}}\n")
        (work / "exabgp.conf").write_text(
            "".join(blocks)
            + f"neighbor 127.0.0.1 {{\n    router-id 10.0.0.1; local-address 127.0.0.2; local-as 65000; peer-as 65001;\n"
            f"    connect {bgp}; hold-time 9;\n    family {{ ipv4 unicast; }}\n"
            f"    api {{ processes [ {' '.join(processes)} ]; }}\n}}\n")
        self.gobgpd = subprocess.Popen(["gobgpd", "-f", str(work / "gobgp.toml"), "--api-hosts", f"127.0.0.1:{self.api}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        env = dict(os.environ, exabgp_api_cli="false", exabgp_log_destination="stderr", exabgp_daemon_drop="false")
        with open(work / "exabgp.log", "ab") as log:
            self.exabgp = subprocess.Popen([str(EXABGP), str(work / "exabgp.conf")], env=env, stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL, start_new_session=True)

    def meds(self):
        """{prefix: MED} of the routes in GoBGP's RIB (a withdrawn prefix is absent)."""
        out = subprocess.run(["gobgp", "-p", str(self.api), "global", "rib", "-j"], capture_output=True, text=True)
        try:
            rib = json.loads(out.stdout or "{}")
        except json.JSONDecodeError:
            return {}
        meds = {}
        for prefix, paths in rib.items() if isinstance(rib, dict) else []:
            if not isinstance(paths, list) or not paths or not isinstance(paths[0], dict):
                continue  # not a route (GoBGP between two states, or an error)
            for attr in paths[0].get("attrs", []):
                if attr.get("type") == 4:
                    meds[prefix] = attr.get("metric")
        return meds

    def wait(self, want, timeout=60):
        """Time GoBGP first shows `want` ({prefix: UP or DOWN}; DOWN = MED 1000 or withdrawn)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            meds = self.meds()
            now = time.monotonic()
            if all((meds.get(p) == UP) == (state == UP) for p, state in want.items()):
                return now
            time.sleep(0.02)
        raise TimeoutError(f"GoBGP never showed {want} (last: {self.meds()})")

    def wait_each(self, want, timeout=30):
        """{prefix: time GoBGP first showed its state in `want`}, every prefix watched at once."""
        seen, deadline = {}, time.monotonic() + timeout
        while len(seen) < len(want):
            if time.monotonic() > deadline:
                raise TimeoutError(f"GoBGP never showed {want} (seen: {seen}, last: {self.meds()})")
            meds = self.meds()
            now = time.monotonic()
            for prefix, state in want.items():
                if prefix not in seen and (meds.get(prefix) == UP) == (state == UP):
                    seen[prefix] = now
            time.sleep(0.02)
        return seen

    def stop(self):
        for child in (self.exabgp, self.gobgpd):
            with_group(child, signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                with_group(child, signal.SIGKILL)
                child.wait()


def with_group(child, sig):
    try:
        os.killpg(child.pid, sig)
    except OSError:
        pass


def phase(i, runs):
    """A pause before run i that spreads the events over the 5 s interval."""
    return 0.3 + 5.0 * i / max(runs, 1)


def probe(kind, name, prefix, args, events=True):
    return [str(BIN / f"exaprobe-{kind}"), "--name", name, "--prefix", prefix, "--next-hop", "10.0.0.1",
            "--exabgp-api", "4", *TIMERS, *([] if events else ["--events", "off"]), *args]


def healthcheck(prefix, command):
    return [str(EXABGP), "healthcheck", "--no-syslog", "--no-ip-setup", "--next-hop", "10.0.0.1", *TIMERS,
            "--ip", prefix, "--cmd", command]


def spawn(argv, **kwargs):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kwargs)


def toggled(work, label, argv, runs, fail, recover):
    """One checker under ExaBGP: `runs` times, the time from calling `fail` to DOWN at GoBGP,
    then `recover` and UP again; (the times, how many runs timed out)."""
    downs, failed = [], 0
    bgp = Bgp(work, {"probe": argv})
    try:
        bgp.wait({PREFIXES[0]: UP}, 120)
        for i in range(runs):
            time.sleep(phase(i, runs))
            t0 = time.monotonic()
            fail()
            try:
                downs.append(bgp.wait({PREFIXES[0]: DOWN}, 30) - t0)
            except TimeoutError as error:
                print(f"events: {label}, run {i + 1}: {error}", flush=True)
                failed += 1
            recover()
            bgp.wait({PREFIXES[0]: UP})
    except TimeoutError as error:  # the rest of this checker's runs are lost
        print(f"events: {label}: {error}", flush=True)
        failed += 1
    finally:
        bgp.stop()
    return downs, failed


# ---- gRPC --------------------------------------------------------------------------------------

def grpc_rows(work, runs):
    python = GRPC_VENV / "bin" / "python"
    if not python.exists():
        return None
    port = free_port()
    (work / "grpc_server.py").write_text(GRPC_SERVER_PY)
    (work / "grpc_check.py").write_text(GRPC_CHECK_PY)
    server = spawn([str(python), str(work / "grpc_server.py"), str(port)])
    try:
        if not wait_port(port):
            return None
        address = ["--address", f"127.0.0.1:{port}"]
        checkers = [("exaprobe-grpc", probe("grpc", "bench-grpc", PREFIXES[0], address)),
                    ("exaprobe-grpc --events off", probe("grpc", "bench-grpc", PREFIXES[0], address, events=False)),
                    ("healthcheck --cmd (python grpcio health client)",
                     healthcheck(PREFIXES[0], f"{python} {work / 'grpc_check.py'} 127.0.0.1:{port}"))]
        rows = []
        for label, argv in checkers:
            print(f"events: grpc, {label}", flush=True)
            downs, failed = toggled(work, label, argv, runs, lambda: server.send_signal(signal.SIGUSR1),
                                    lambda: server.send_signal(signal.SIGUSR2))
            rows.append(("gRPC server -> NOT_SERVING", label, "event -> DOWN at GoBGP", downs, failed))
        return rows
    finally:
        with_group(server, signal.SIGTERM)
        server.wait(10)


# ---- Redis Sentinel ----------------------------------------------------------------------------

def cli(port, *args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=10).stdout.strip()


class SwitchMaster:
    """Subscribed on every Sentinel to `+switch-master` and `-failover-abort-*`: the time each was heard."""

    def __init__(self, ports):
        self.heard = []  # (time, "switch" or the abort's channel)
        self.cond = threading.Condition()
        for port in ports:
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(b"PSUBSCRIBE +switch-master -failover-abort*\r\n")
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection):
        while True:
            chunk = connection.recv(4096)
            if not chunk:
                return
            if b"pmessage" not in chunk:
                continue
            # *4 $8 pmessage $N PATTERN $N CHANNEL $N DATA: the channel is the fifth line after "pmessage".
            channel = chunk.split(b"pmessage", 1)[1].split(b"\r\n")[4]
            what = "switch" if channel == b"+switch-master" else channel.decode(errors="replace")
            with self.cond:
                self.heard.append((time.monotonic(), what))
                self.cond.notify_all()

    def first_after(self, since, timeout=30):
        """Time of the first +switch-master after `since`; an abort after `since` raises Aborted."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                after = [(t, what) for t, what in self.heard if t >= since]
                switched = [t for t, what in after if what == "switch"]
                if switched:
                    return min(switched)
                if after:
                    raise Aborted(after[0][1])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no +switch-master")
                self.cond.wait(left)


class Aborted(Exception):
    """The Sentinel gave up a failover (-failover-abort-*)."""


class Sentinel:
    """A master, its replica and three Sentinels (quorum 2), redis-server on loopback."""

    NAME = "bench"

    def __init__(self, work):
        self.children = []
        self.nodes = [free_port(), free_port()]
        for index, port in enumerate(self.nodes):
            replica = ["--replicaof", "127.0.0.1", str(self.nodes[0])] if index else []
            self.children.append(spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(work), *replica]))
        for port in self.nodes:
            wait_port(port)
        self.sentinels = []
        for index in range(3):
            port = free_port()
            config = work / f"sentinel-{index}.conf"
            config.write_text(f"port {port}\nbind 127.0.0.1\ndir {work}\n"
                              f"sentinel monitor {self.NAME} 127.0.0.1 {self.nodes[0]} 2\n"
                              f"sentinel down-after-milliseconds {self.NAME} 1000\n"
                              f"sentinel failover-timeout {self.NAME} 5000\n")
            self.children.append(spawn(["redis-server", str(config), "--sentinel"]))
            self.sentinels.append(port)
        deadline = time.monotonic() + 60
        for port in self.sentinels:
            wait_port(port)
            while True:
                fields = cli(port, "SENTINEL", "MASTER", self.NAME).splitlines()
                known = dict(zip(fields[::2], fields[1::2]))
                if known.get("num-slaves") == "1" and known.get("num-other-sentinels") == "2":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the sentinels never knew the replica and each other")
                time.sleep(0.2)

    def master(self):
        """Index in `nodes` of the master as the first Sentinel knows it."""
        port = int(cli(self.sentinels[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.NAME).splitlines()[1])
        return self.nodes.index(port)

    def failover(self):
        """SENTINEL FAILOVER to the first Sentinel (the one the probes subscribe to first), retried
        until accepted (a demoted master becomes a suitable replica a moment after)."""
        deadline = time.monotonic() + 60
        while cli(self.sentinels[0], "SENTINEL", "FAILOVER", self.NAME) != "OK":
            if time.monotonic() > deadline:
                raise TimeoutError("SENTINEL FAILOVER never accepted")
            time.sleep(0.2)

    def stop(self):
        for child in self.children:
            with_group(child, signal.SIGTERM)
            child.wait(10)


def failover(cluster, switches, label, i):
    """(time SENTINEL FAILOVER was sent, time of the first +switch-master), the failover tried
    again (and said so) when a Sentinel aborts it."""
    for _ in range(3):
        t0 = time.monotonic()
        cluster.failover()
        try:
            return t0, switches.first_after(t0)
        except Aborted as abort:
            print(f"events: {label}, run {i + 1}: failover aborted ({abort}), tried again", flush=True)
            time.sleep(2)
    raise TimeoutError("three failovers aborted")


def redis_rows(work, runs):
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        return None
    cluster = Sentinel(work)
    try:
        switches = SwitchMaster(cluster.sentinels)

        sentinels = []
        for port in cluster.sentinels:
            sentinels += ["--sentinel", f"127.0.0.1:{port}"]

        def args(node):
            return ["--url", f"redis://127.0.0.1:{node}", *sentinels, "--master-name", cluster.NAME]

        def pair(events):
            return {f"node{i}": probe("redis", f"bench-redis{i}", PREFIXES[i], args(node), events)
                    for i, node in enumerate(cluster.nodes)}
        role = "redis-cli -h 127.0.0.1 -p {} role | head -1 | grep -q master"
        checkers = [("exaprobe-redis", pair(True)), ("exaprobe-redis --events off", pair(False)),
                    ("healthcheck --cmd (redis-cli role)",
                     {f"node{i}": healthcheck(PREFIXES[i], role.format(node)) for i, node in enumerate(cluster.nodes)})]
        rows = []
        for label, processes in checkers:
            print(f"events: redis, {label}", flush=True)
            downs, ups, switched, failed = [], [], [], 0
            bgp = Bgp(work, processes)
            try:
                for i in range(runs):
                    old = cluster.master()
                    new = 1 - old
                    bgp.wait({PREFIXES[old]: UP, PREFIXES[new]: DOWN}, 120)
                    time.sleep(phase(i, runs))
                    try:
                        t0, ts = failover(cluster, switches, label, i)
                        seen = bgp.wait_each({PREFIXES[old]: DOWN, PREFIXES[new]: UP}, 40)
                    except TimeoutError as error:
                        print(f"events: {label}, run {i + 1}: {error}", flush=True)
                        failed += 1
                        continue
                    switched.append(ts - t0)
                    downs.append(seen[PREFIXES[old]] - ts)
                    ups.append(seen[PREFIXES[new]] - ts)
            except TimeoutError as error:  # the rest of this checker's runs are lost
                print(f"events: {label}: {error}", flush=True)
                failed += 1
            finally:
                bgp.stop()
            rows.append(("Sentinel failover", label, "+switch-master -> old master DOWN at GoBGP", downs, failed))
            rows.append(("Sentinel failover", label, "+switch-master -> new master UP at GoBGP", ups, failed))
            rows.append(("Sentinel failover", label, "SENTINEL FAILOVER -> +switch-master", switched, failed))
        return rows
    finally:
        cluster.stop()


# ---- PostgreSQL --------------------------------------------------------------------------------

class Postgres:
    """A cluster in a temporary directory on a free loopback port, stopped and started with
    pg_ctl, run as the tests' system user when the bench runs as root (PostgreSQL refuses root)."""

    def __init__(self, work, bin_dir):
        self.bin, self.data, self.port, self.work = bin_dir, work / "pg", free_port(), work
        self.user = []
        if os.geteuid() == 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "exaprobe-test"],
                           stderr=subprocess.DEVNULL, check=False)
            os.chmod(work, 0o777)
            self.user = ["runuser", "-u", "exaprobe-test", "--"]
        subprocess.run(self.user + [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        self.start()

    def pg_ctl(self, *args):
        subprocess.run(self.user + [str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def start(self):
        options = (f"-p {self.port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB "
                   "-c dynamic_shared_memory_type=mmap")
        self.pg_ctl("-l", str(self.work / "pg.log"), "-o", options, "-w", "start")

    def stop(self):
        self.pg_ctl("-m", "fast", "-w", "stop")


def postgres_rows(work, runs):
    bin_dir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    if bin_dir is None:
        return None
    server = Postgres(work, bin_dir)
    try:
        dsn = ["--dsn", f"postgres://postgres@127.0.0.1:{server.port}/postgres"]
        isready = shutil.which("pg_isready") or str(bin_dir / "pg_isready")
        checkers = [("exaprobe-postgres", probe("postgres", "bench-pg", PREFIXES[0], dsn)),
                    ("exaprobe-postgres --events off", probe("postgres", "bench-pg", PREFIXES[0], dsn, events=False)),
                    ("healthcheck --cmd (pg_isready)", healthcheck(PREFIXES[0], f"{isready} -h 127.0.0.1 -p {server.port}"))]
        rows = []
        for label, argv in checkers:
            print(f"events: postgres, {label}", flush=True)
            downs, failed = toggled(work, label, argv, runs, server.stop, server.start)
            rows.append(("PostgreSQL pg_ctl stop -m fast", label, "pg_ctl started -> DOWN at GoBGP", downs, failed))
        return rows
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass


# ---- report ------------------------------------------------------------------------------------

def seconds(values):
    """median [min-max] in ms below a second, else in s."""
    if not values:
        return "n/a"
    values = sorted(values)
    med = statistics.median(values)
    if values[-1] < 1:
        return f"{med * 1000:.0f} ms [{values[0] * 1000:.0f}-{values[-1] * 1000:.0f}]"
    return f"{fmt(med)} s [{fmt(values[0])}-{fmt(values[-1])}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs a row instead of 10 (a smoke run)")
    parser.add_argument("--markdown", metavar="FILE", help="append the table as Markdown to FILE")
    parser.add_argument("--only", help="comma-separated events: grpc,redis,postgres")
    args = parser.parse_args()
    runs = 3 if args.quick else 10
    for tool in [BIN / "exaprobe-grpc", BIN / "exaprobe-redis", BIN / "exaprobe-postgres", EXABGP]:
        if not tool.exists():
            sys.exit(f"missing {tool}: cargo build --release and scripts/install-test-deps")
    if not shutil.which("gobgpd"):
        sys.exit("missing gobgpd and gobgp: scripts/install-test-deps")
    only = args.only.split(",") if args.only else ["grpc", "redis", "postgres"]
    load = os.getloadavg()
    rows, notes, started = [], [], time.strftime("%Y-%m-%d %H:%M")
    for name, measure in [("grpc", grpc_rows), ("redis", redis_rows), ("postgres", postgres_rows)]:
        if name not in only:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"exaprobe-bench-events-{name}-"))
        try:
            out = measure(work, runs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if out is None:
            notes.append(f"{name}: skipped (its server or tools are missing)")
            continue
        rows.extend(out)
    end = os.getloadavg()
    header = ("event", "checker", "time", "median [min-max]", "runs")
    table = [(event, checker, what, seconds(values), f"{len(values)}" + (f" ({failed} timed out)" if failed else ""))
             for event, checker, what, values, failed in rows]
    notes += [f"timers: {' '.join(TIMERS)} for every checker; {runs} runs a row; GoBGP's RIB polled every 20 ms "
              "(the times carry up to ~20 ms of polling and a gobgp spawn)",
              f"{started}, {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}, load average "
              f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start, {end[0]:.1f} {end[1]:.1f} {end[2]:.1f} at the end"]
    report(header, table, notes, args.markdown)

if __name__ == "__main__":
    main()
