#!/usr/bin/env python3
"""exaprobe-icmp: CPU per check, memory, size, and the time from link loss to the withdraw line.

The probe runs inside a network namespace of this script's own, pinging across a veth pair into a
second one (both deleted at the end); it never sends a packet anywhere else. Checks are counted
by an nftables counter on the far side (echo requests / --count). The link-loss time is from
`ip link set down` to the probe's `withdraw` line on stdout (`--dry-run`), with
`--interval 1 --fall 2 --count 3 --timeout 1`, in two ways a link is lost: the probe's own side
set down (its default route goes with it: the next check fails at once) and the far side set
down (carrier lost, the route stays: the next checks wait for replies until their deadline).

Nothing here is a test: no figure is asserted. Needs root, ip and nft. Prints a table.
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import fmt, own_cpu_seconds, rss_kib, spread, target_dir  # noqa: E402

BIN = target_dir() / "release" / "exaprobe-icmp"
NEAR, FAR = f"exaprobe-bench-icmp-{os.getpid()}-n", f"exaprobe-bench-icmp-{os.getpid()}-f"


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def setup():
    for ns in (NEAR, FAR):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", NEAR, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", FAR)
    sh("ip", "-n", NEAR, "address", "add", "198.51.100.1/24", "dev", "veth0")
    sh("ip", "-n", FAR, "address", "add", "198.51.100.2/24", "dev", "veth1")
    link_up()
    nft = "table inet bench {\n chain input {\n  type filter hook input priority 0; policy accept;\n  icmp type echo-request counter\n }\n}\n"
    subprocess.run(["ip", "netns", "exec", FAR, "nft", "-f", "-"], input=nft, text=True, check=True)


def link_up():
    sh("ip", "-n", NEAR, "link", "set", "veth0", "up")
    sh("ip", "-n", FAR, "link", "set", "veth1", "up")
    sh("ip", "-n", NEAR, "route", "replace", "default", "via", "198.51.100.2")


def teardown():
    for ns in (NEAR, FAR):
        sh("ip", "netns", "del", ns, check=False)


def requests_seen():
    out = sh("ip", "netns", "exec", FAR, "nft", "list", "table", "inet", "bench")
    match = re.search(r"counter packets (\d+)", out)
    return int(match.group(1)) if match else 0


class Probe:
    """The probe in NEAR, its stdout lines timestamped by a reader thread."""

    def __init__(self, args):
        argv = ["ip", "netns", "exec", NEAR, str(BIN), "--prefix", "192.0.2.1/32", "--next-hop", "198.51.100.1",
                "--dry-run", "--withdraw-on-down", "--quiet", *args]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        self.lines = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self.changed:
                self.lines.append((time.monotonic(), line.strip()))
                self.changed.notify_all()

    def wait_line(self, word, since, timeout=30):
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for stamp, line in self.lines:
                    if stamp >= since and word in line:
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no '{word}' line within {timeout}s")
                self.changed.wait(left)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def resources(window):
    """CPU per check and RSS at 10 checks a second (count 3, one target)."""
    probe = Probe(["--target", "198.51.100.2", "--count", "3", "--interval", "0.1", "--fast-interval", "0.1",
                   "--timeout", "0.1"])
    try:
        probe.wait_line("announce", 0)
        pid = probe.process.pid
        cpu0, seen0 = own_cpu_seconds(pid), requests_seen()
        time.sleep(window)
        cpu, seen = own_cpu_seconds(pid) - cpu0, requests_seen() - seen0
        checks = seen // 3
        return (cpu / checks * 1000 if checks else None), checks, rss_kib(pid)
    finally:
        probe.stop()


def link_loss(side, runs):
    """Seconds from `ip link set down` (on `side`) to the withdraw line, per run."""
    args = ["--interval", "1", "--fall", "2", "--count", "3", "--timeout", "1"]
    args += ["--gateway"] if side == "near" else ["--target", "198.51.100.2"]
    times = []
    for _ in range(runs):
        link_up()
        probe = Probe(args)
        try:
            probe.wait_line("announce", 0)
            # Down at a random point of the check cycle, as a real link loss would be.
            time.sleep(random.uniform(1, 2))
            ns, device = (NEAR, "veth0") if side == "near" else (FAR, "veth1")
            down = time.monotonic()
            sh("ip", "-n", ns, "link", "set", device, "down")
            times.append(probe.wait_line("withdraw", down) - down)
        finally:
            probe.stop()
    link_up()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a shorter window")
    parser.add_argument("--markdown", metavar="FILE", help="also append the table as Markdown to FILE")
    args = parser.parse_args()
    runs, window = (3, 5) if args.quick else (7, 20)
    if os.geteuid() != 0:
        sys.exit("bench/icmp.py needs root (network namespaces)")
    if not BIN.exists():
        sys.exit(f"missing {BIN}: cargo build --release --bin exaprobe-icmp")
    rows = []
    try:
        setup()
        per_check, checks, rss = resources(window)
        rows.append(("icmp: CPU per check (3 requests, 1 target)", f"{fmt(per_check)} ms ({checks} checks)",
                     "interval 0.1 s, all threads, schedstat"))
        rows.append(("icmp: RSS", f"{rss / 1024:.1f} MiB", "after the window above"))
        rows.append(("icmp: binary size", f"{BIN.stat().st_size / 1e6:.1f} MB", "release profile, stripped"))
        near = link_loss("near", runs)
        rows.append(("icmp: own link down -> withdraw line", spread(near, " s"),
                     f"{runs} runs; --gateway, interval 1, fall 2, count 3, timeout 1; the route goes with the link"))
        far = link_loss("far", runs)
        rows.append(("icmp: far side down -> withdraw line", spread(far, " s"),
                     f"{runs} runs; --target, same timers; carrier lost, the checks wait for their deadline"))
    finally:
        teardown()
    header = ("measure", "exaprobe-icmp", "note")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(3)]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(f"(median [min-max]; {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release})")
    if args.markdown:
        with open(args.markdown, "a") as out:
            out.write("\n| " + " | ".join(header) + " |\n|---|---|---|\n")
            for row in rows:
                out.write("| " + " | ".join(str(c) for c in row) + " |\n")


if __name__ == "__main__":
    main()
