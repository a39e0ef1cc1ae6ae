#!/usr/bin/env python3
"""Every probe beside the `exabgp healthcheck --cmd` an operator would otherwise run, against the
same local server in one run, plus the floor (a bare spawn-and-wait) and 30 probes' memory.

For each kind: the probe's own CPU per check and its children's, private memory (USS), PSS and
RSS (/proc/PID/smaps_rollup of the main process), and context switches per idle minute. The
healthcheck's --cmd is prefixed with `printf x >> COUNTER;` (a shell builtin: the shell is there
anyway) so its checks are counted; exaprobe's checks are counted by its schedule (one check every
interval, from the check's start), which the exec run cross-checks against a counter file.

Nothing here is a test: no figure is asserted. Every server listens on 127.0.0.1 only; ICMP goes
to 127.0.0.1. Prints tables; --markdown FILE also writes them.
"""

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (BIN, DEPS, EXABGP, NTP_CHECK_PY, NtpService, Run, Service, child_cpu_seconds,  # noqa: E402
                   floor, fmt, free_port, own_cpu_seconds, switches)

GRPC_VENV = DEPS / "grpc-health"

# The gRPC health server and client an operator would use without exaprobe-grpc (grpcio). The
# server's status is switched by signals (bench/events.py): SIGUSR1 NOT_SERVING, SIGUSR2 SERVING
# (blocked in every thread, taken by the main one with sigwaitinfo). Each Watch stream holds one
# of its threads.
GRPC_SERVER_PY = """import signal, sys, grpc
from concurrent import futures
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
while True:
    info = signal.sigwaitinfo({signal.SIGUSR1, signal.SIGUSR2})
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING if info.si_signo == signal.SIGUSR1
                 else health_pb2.HealthCheckResponse.SERVING)
"""
GRPC_CHECK_PY = """import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
"""


# ---- /proc ------------------------------------------------------------------------------------

def memory_kib(pid):
    """(USS, PSS, RSS) of one process in KiB, from smaps_rollup."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
    except (OSError, ValueError):
        return None
    return (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0), fields.get("Pss", 0), fields.get("Rss", 0))


def mib(kib):
    return f"{kib / 1024:.2f}" if kib is not None else "n/a"


# ---- local servers ----------------------------------------------------------------------------

class TcpService:
    """A TCP listener on loopback that accepts and closes, counting connections."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            connection, _ = self.socket.accept()
            connection.close()


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


class Servers:
    """The real servers the probes and the --cmd tools check, started on free loopback ports."""

    def __init__(self, work):
        self.work = work
        self.children = []
        self.http = Service()
        self.tcp = TcpService()
        self.ntp = NtpService()
        self.unbound = self._unbound()
        self.redis = self._redis()
        self.postgres = self._postgres()
        self.grpc = self._grpc()

    def _spawn(self, argv, **kwargs):
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, **kwargs)
        self.children.append(child)
        return child

    def _unbound(self):
        unbound = shutil.which("unbound") or "/usr/sbin/unbound"
        if not Path(unbound).exists():
            return None
        port, conf = free_port(), self.work / "unbound.conf"
        conf.write_text("\n".join([
            "server:", f"interface: 127.0.0.1@{port}", f"port: {port}", "do-daemonize: no", 'username: ""',
            'chroot: ""', f'directory: "{self.work}"', f'pidfile: "{self.work}/unbound.pid"', "use-syslog: no",
            "do-ip6: no", "access-control: 127.0.0.0/8 allow", 'module-config: "iterator"',
            'local-zone: "test." nodefault', 'local-zone: "local.test." static',
            'local-data: "www.local.test. IN A 192.0.2.1"', "forward-zone:", 'name: "."', "forward-addr: 127.0.0.1@1", ""]))
        self._spawn([unbound, "-d", "-c", str(conf)])
        return port if wait_port(port) else None

    def _redis(self):
        if not shutil.which("redis-server"):
            return None
        port = free_port()
        self._spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(self.work)])
        return port if wait_port(port) else None

    def _postgres(self):
        bin_dir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
        if bin_dir is None:
            return None
        data, port = self.work / "pg", free_port()
        user = []
        if os.geteuid() == 0:  # postgres refuses root: the tests' system user runs it
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "exaprobe-test"],
                           stderr=subprocess.DEVNULL, check=False)
            os.chmod(self.work, 0o777)
            user = ["runuser", "-u", "exaprobe-test", "--"]
        subprocess.run(user + [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        self._spawn(user + [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(self.work),
                            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB",
                            "-c", "dynamic_shared_memory_type=mmap"])
        if not wait_port(port):
            return None
        time.sleep(0.5)  # accepting connections before it accepts logins; the probe waits for UP anyway
        return port

    def _grpc(self):
        python = GRPC_VENV / "bin" / "python"
        if not python.exists():
            return None
        port, script = free_port(), self.work / "grpc_server.py"
        script.write_text(GRPC_SERVER_PY)
        self._spawn([str(python), str(script), str(port)])
        return port if wait_port(port) else None

    def stop(self):
        for child in self.children:
            try:
                os.killpg(child.pid, 15)
            except OSError:
                pass
            child.wait(10)


# ---- the kinds --------------------------------------------------------------------------------

def kinds(servers, work, counter):
    """(kind, probe argv after the common options, the --cmd it replaces, what that is) for each
    kind whose server and tools are here."""
    grpc_check = work / "grpc_check.py"
    grpc_check.write_text(GRPC_CHECK_PY)
    ntp_check = work / "ntp_check.py"
    ntp_check.write_text(NTP_CHECK_PY)
    url = f"http://127.0.0.1:{servers.http.port}/health"
    out = [("exec", ["--shell", f"printf x >> {counter}"], f"printf x >> {counter}", "sh -c (the same command)"),
           ("http", ["--url", url], f"curl -sf --max-time 2 {url}", "curl"),
           ("tcp", ["--address", f"127.0.0.1:{servers.tcp.port}"],
            f"nc -z -w 2 127.0.0.1 {servers.tcp.port}" if shutil.which("nc")
            else f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{servers.tcp.port}'",
            "nc -z" if shutil.which("nc") else "bash /dev/tcp")]
    if servers.unbound:
        out.append(("dns", ["--server", f"127.0.0.1:{servers.unbound}", "--query", "www.local.test", "--type", "A"],
                    f"dig +short +time=2 +tries=1 -p {servers.unbound} @127.0.0.1 www.local.test A | grep -q .", "dig"))
    if servers.redis:
        out.append(("redis", ["--url", f"redis://127.0.0.1:{servers.redis}"],
                    f"redis-cli -h 127.0.0.1 -p {servers.redis} ping | grep -q PONG", "redis-cli ping"))
    if servers.postgres:
        out.append(("postgres", ["--dsn", f"postgres://postgres@127.0.0.1:{servers.postgres}/postgres"],
                    f"psql -h 127.0.0.1 -p {servers.postgres} -U postgres -d postgres -tAc 'select 1' -o /dev/null",
                    "psql -c 'select 1'"))
    if servers.grpc:
        out.append(("grpc", ["--address", f"127.0.0.1:{servers.grpc}"],
                    f"{GRPC_VENV / 'bin' / 'python'} {grpc_check} 127.0.0.1:{servers.grpc}", "python grpcio health client"))
    if shutil.which("ping"):
        out.append(("icmp", ["--target", "127.0.0.1", "--count", "3", "--timeout", "0.08"], "ping -c 3 -i 0.01 -W 1 -q 127.0.0.1",
                    "ping -c 3"))
    out.append(("ntp", ["--server", f"127.0.0.1:{servers.ntp.port}"], f"python3 {ntp_check} 127.0.0.1 {servers.ntp.port}",
                "python3 (one request; origin, leap, stratum)"))
    return out


def probe_argv(kind, args, interval, name="bench"):
    return [str(BIN / f"exaprobe-{kind}"), "--name", name, "--prefix", "192.0.2.10/32", "--next-hop", "10.0.0.1",
            "--exabgp-api", "4", "--rise", "1", "--fall", "2", "--interval", str(interval), "--fast-interval",
            str(interval), *args]


def healthcheck_argv(command, counter, interval):
    return [str(EXABGP), "healthcheck", "--no-syslog", "--no-ip-setup", "--next-hop", "10.0.0.1", "--rise", "1",
            "--fall", "2", "--interval", str(interval), "--fast-interval", str(interval), "--ip", "192.0.2.10/32",
            "--cmd", command if str(counter) in command else f"printf x >> {counter}; {command}"]


def file_size(path):
    return path.stat().st_size if path.exists() else 0


def busy(argv, window, count):
    """Run until UP, then `window` s: own CPU, child CPU (ms per check), checks, memory at the end,
    the main process's context switches per check. `count(elapsed)` says how many checks have
    run, `elapsed` s into the window."""
    run = Run(argv)
    try:
        run.wait_line(lambda l: "med 100" in l, 0, timeout=60)
        pid = run.proc.pid
        own0, child0, checks0, t0 = own_cpu_seconds(pid), child_cpu_seconds(pid), count(0), time.monotonic()
        switched0 = switches(pid)
        time.sleep(window)
        own, child = own_cpu_seconds(pid) - own0, child_cpu_seconds(pid) - child0
        checks = count(time.monotonic() - t0) - checks0
        switched = switches(pid) - switched0
        memory = memory_kib(pid)
        per = (lambda s: s / checks * 1000 if checks else None)
        return per(own), per(child), checks, memory, switched / checks if checks else None
    finally:
        run.stop()


@contextlib.contextmanager
def all_up(argvs):
    """Every process in `argvs` running at once, each UP; stopped on leaving."""
    runs = [Run(argv) for argv in argvs]
    try:
        for run in runs:
            run.wait_line(lambda l: "med 100" in l, 0, timeout=120)
        yield [run.proc.pid for run in runs]
    finally:
        for run in runs:
            run.stop()


def idle_switches(argvs, seconds):
    """Context switches per minute of each process (all threads), all idle at once, once UP;
    and the memory of each at the end."""
    with all_up(argvs) as pids:
        time.sleep(1)
        before = [switches(pid) for pid in pids]
        time.sleep(seconds)
        after = [switches(pid) for pid in pids]
        return [(a - b) * 60 / seconds for a, b in zip(after, before)], [memory_kib(pid) for pid in pids]


def pss_sum(argvs, settle):
    """Sums of PSS, USS and RSS over processes all running at once (their children apart), and
    each one's memory."""
    with all_up(argvs) as pids:
        time.sleep(settle)
        memory = [memory_kib(pid) for pid in pids]
        known = [m for m in memory if m]
        return sum(m[1] for m in known), sum(m[0] for m in known), sum(m[2] for m in known), memory


def report(header, rows, notes, markdown):
    """Print the table and its notes; append them as Markdown to the file `markdown` if given."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print()
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    for note in notes:
        print(note)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
        with open(markdown, "a") as out:
            out.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke run)")
    parser.add_argument("--markdown", metavar="FILE", help="append the tables as Markdown to FILE")
    parser.add_argument("--only", help="comma-separated kinds")
    args = parser.parse_args()
    window, idle, interval, mixed = (2, 6, 0.1, 8) if args.quick else (15, 60, 0.1, 30)
    if args.quick and not args.only:
        args.only = "exec,http,tcp,dns"
    work = Path(tempfile.mkdtemp(prefix="exaprobe-bench-probes-"))
    counter = work / "checks"
    servers = Servers(work)
    try:
        load = os.getloadavg()
        floors = floor(work, 200 if args.quick else 2000, 0.05)
        table = []
        chosen = kinds(servers, work, counter)
        if args.only:
            chosen = [k for k in chosen if k[0] in args.only.split(",")]
        for kind, probe_args, command, what in chosen:
            print(f"probes: {kind}", flush=True)
            counter.unlink(missing_ok=True)
            # exaprobe checks once per interval from each check's start; exec counts for real.
            scheduled = (lambda elapsed: file_size(counter)) if kind == "exec" else (lambda elapsed: round(elapsed / interval))
            ours = busy(probe_argv(kind, probe_args, interval), window, scheduled)
            counter.unlink(missing_ok=True)
            theirs = busy(healthcheck_argv(command, counter, interval), window, lambda elapsed: file_size(counter))
            table.append((kind, what, ours, theirs))
        print(f"probes: idle context switches ({idle} s, all at once)", flush=True)
        counter.unlink(missing_ok=True)
        idle_runs, idle_memory = idle_switches(
            [probe_argv(k, a, 5, name=f"idle-{k}") for k, a, _, _ in chosen]
            + [healthcheck_argv(c, counter, 5) for _, _, c, _ in chosen], idle)
        n = len(chosen)

        # 30 probes of mixed kinds, then 30 healthchecks with the matching commands.
        print(f"probes: {mixed} of mixed kinds, then {mixed} healthchecks", flush=True)
        mix = [chosen[i % n] for i in range(mixed)]
        ours_sum = pss_sum([probe_argv(k, a, 5, name=f"mix{i}") for i, (k, a, _, _) in enumerate(mix)], 3)
        theirs_sum = pss_sum([healthcheck_argv(c, counter, 5) for _, _, c, _ in mix], 3)
        # What one more probe of a kind costs: its USS while others of its kind run.
        shared_uss = {}
        for (kind, _, _, _), memory in zip(mix, ours_sum[3]):
            if memory:
                shared_uss.setdefault(kind, []).append(memory[0])

        header = ("kind", "--cmd", "own CPU/check exaprobe", "own CPU/check healthcheck", "child CPU/check exaprobe",
                  "child CPU/check healthcheck", "USS / PSS / RSS exaprobe (MiB)", "USS / PSS / RSS healthcheck (MiB)",
                  "switches/idle min exaprobe", "switches/idle min healthcheck")
        rows = []
        for i, (kind, what, ours, theirs) in enumerate(table):
            om, tm = idle_memory[i], idle_memory[n + i]
            rows.append((kind, what, f"{fmt(ours[0])} ms", f"{fmt(theirs[0])} ms", f"{fmt(ours[1])} ms",
                         f"{fmt(theirs[1])} ms",
                         " / ".join(mib(x) for x in om) if om else "n/a",
                         " / ".join(mib(x) for x in tm) if tm else "n/a",
                         fmt(idle_runs[i]), fmt(idle_runs[n + i])))
        if floors:
            (hot, hot_sw), (paced, paced_sw) = floors
            rows.append(("floor", "posix_spawn+waitpid /bin/true (bench/floor.c)",
                         f"{fmt(hot)} ms back to back; {fmt(paced)} ms paced 50 ms", "", "", "", "", "", "", ""))
        machine = (f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}, load average "
                   f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start")
        checks = ", ".join(f"{k}: {o[2]}/{t[2]}" for k, _, o, t in table)
        notes = [f"interval {interval} s, {window} s windows; checks (exaprobe/healthcheck): {checks}",
                 f"idle: interval 5 s, {idle} s window, scaled to a minute; memory of the idle main processes",
                 f"{mixed} probes of mixed kinds ({', '.join(k for k, _, _, _ in chosen)}, in turn), all running: "
                 f"PSS sum {mib(ours_sum[0])} MiB (USS {mib(ours_sum[1])}, RSS {mib(ours_sum[2])}); "
                 f"{mixed} healthchecks with the matching --cmd: PSS sum {mib(theirs_sum[0])} MiB "
                 f"(USS {mib(theirs_sum[1])}, RSS {mib(theirs_sum[2])}); ratio {ours_sum[0] / theirs_sum[0]:.3f}",
                 "USS of each probe in that run (the binary's pages shared with its siblings): "
                 + ", ".join(f"{k} {mib(sum(v) / len(v))}" for k, v in shared_uss.items()) + " MiB",
                 machine]
        if floors:
            notes.insert(0, f"floor: {fmt(floors[0][0])} ms ({fmt(floors[0][1])} switches) per spawn back to back, "
                            f"{fmt(floors[1][0])} ms ({fmt(floors[1][1])} switches) paced one per 50 ms; "
                            "parent CPU from getrusage(RUSAGE_SELF)")
        report(header, rows, notes, args.markdown)
    finally:
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
