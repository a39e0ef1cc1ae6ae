#!/usr/bin/env python3
"""Delivery under a slow ExaBGP, measured on the release exaprobe-exec (issue 12).

This script plays ExaBGP: it reads the probe's commands and answers `done`, or stops reading
(a stalled pipe), or never answers. It prints one table:

- RSS while the command pipe is stalled for a while and the check flips every 50 ms;
- time from the pipe draining to ExaBGP holding the current state;
- exit time after SIGTERM: ExaBGP reading and acknowledging, never acknowledging, pipe full.

Usage: bench/delivery.py [--binary PATH] [--stall SECONDS] [--markdown FILE]
Not a test: nothing fails on a figure.
"""

import argparse
import fcntl
import os
import select
import signal
import subprocess
import tempfile
import threading
import time

F_SETPIPE_SZ = 1031


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Probe:
    """exaprobe-exec checking a flag file, with this script as its ExaBGP."""

    def __init__(self, binary, prefixes, extra=()):
        self.dir = tempfile.TemporaryDirectory(prefix="exaprobe-bench-")
        self.flag = os.path.join(self.dir.name, "healthy")
        args = [binary]
        for i in range(prefixes):
            args += ["--prefix", f"192.0.2.{i % 250}/32" if i < 250 else f"198.51.100.{i - 250}/32"]
        args += ["--interval", "0.05", "--fast-interval", "0.05", "--rise", "1", "--fall", "1",
                 "--withdraw-on-down", "--exabgp-api", "4", *extra, "--", "test", "-f", self.flag]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        fcntl.fcntl(self.process.stdout.fileno(), F_SETPIPE_SZ, 4096)
        self.buffer = b""

    def flip_for(self, seconds):
        end = time.monotonic() + seconds
        peak = 0
        while time.monotonic() < end:
            if os.path.exists(self.flag):
                os.unlink(self.flag)
            else:
                open(self.flag, "w").close()
            peak = max(peak, rss_kib(self.process.pid))
            time.sleep(0.05)
        return peak

    def read_lines(self, quiet, ack=True):
        """Read (and ACK) until no line comes for `quiet` s; returns [(time, line)]."""
        lines = []
        fd = self.process.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], quiet)
            if not ready:
                return lines
            chunk = os.read(fd, 65536)
            if not chunk:
                return lines
            self.buffer += chunk
            *complete, self.buffer = self.buffer.split(b"\n")
            now = time.monotonic()
            for line in complete:
                lines.append((now, line.decode()))
                if ack:
                    self.process.stdin.write(b"done\n")
            if ack:
                self.process.stdin.flush()

    def terminate_time(self):
        asked = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        return time.monotonic() - asked

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.dir.cleanup()


def stalled(binary, seconds):
    probe = Probe(binary, 20)
    try:
        probe.read_lines(0.5)
        base = rss_kib(probe.process.pid)
        peak = probe.flip_for(seconds)
        if os.path.exists(probe.flag):
            os.unlink(probe.flag)
        time.sleep(0.2)
        drained = time.monotonic()
        lines = probe.read_lines(1.0)
        last = {}
        for _, line in lines:
            words = line.split()
            last[words[2]] = words[0]
        converged = (lines[-1][0] - drained) if lines else float("nan")
        correct = all(verb == "withdraw" for verb in last.values()) and len(last) == 20
        return base, peak, converged, len(lines), correct
    finally:
        probe.close()


def exit_times(binary):
    results = {}
    probe = Probe(binary, 20)
    try:
        open(probe.flag, "w").close()
        probe.read_lines(0.5)
        thread = threading.Thread(target=probe.read_lines, args=(1.0,))
        thread.start()
        results["ExaBGP reading and acknowledging"] = probe.terminate_time()
        thread.join()
    finally:
        probe.close()
    probe = Probe(binary, 20)
    try:
        open(probe.flag, "w").close()
        probe.read_lines(0.5)
        thread = threading.Thread(target=probe.read_lines, args=(1.0, False))
        thread.start()
        results["ExaBGP reading, never acknowledging"] = probe.terminate_time()
        thread.join()
    finally:
        probe.close()
    probe = Probe(binary, 200)
    try:
        probe.flip_for(1.0)
        results["command pipe full (ExaBGP not reading)"] = probe.terminate_time()
    finally:
        probe.close()
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "exaprobe-exec"))
    parser.add_argument("--stall", type=float, default=60.0)
    parser.add_argument("--markdown")
    options = parser.parse_args()
    base, peak, converged, count, correct = stalled(options.binary, options.stall)
    rows = [
        ("RSS before the stall", f"{base / 1024:.1f} MiB"),
        (f"peak RSS, pipe stalled {options.stall:.0f} s, check flipping every 50 ms",
         f"{peak / 1024:.1f} MiB"),
        ("pipe drained to current state (20 prefixes)",
         f"{converged * 1000:.1f} ms, {count} commands, {'correct' if correct else 'WRONG'}"),
    ]
    for situation, seconds in exit_times(options.binary).items():
        rows.append((f"exit after SIGTERM, {situation}", f"{seconds * 1000:.0f} ms"))
    width = max(len(name) for name, _ in rows)
    print(f"{'delivery (issue 12)':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if options.markdown:
        with open(options.markdown, "a") as out:
            out.write("\n| delivery | value |\n|---|---|\n")
            for name, value in rows:
                out.write(f"| {name} | {value} |\n")


if __name__ == "__main__":
    main()
