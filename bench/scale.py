#!/usr/bin/env python3
"""Thousands of prefixes: does the runner keep its timing? (issue 24)

Runs the release exaprobe-exec with N host prefixes under a fake ExaBGP played by this script
(it answers `done` to every line at once and timestamps it), with a check that records when it
runs. Measures, per N: start -> every announce ACKed, the longest gap between two checks while
the commands flow (the schedule is 1 s), a flip to DOWN -> every withdraw ACKed, and SIGTERM ->
exit, with the withdraws written by then. Prints a table; asserts nothing.

    python3 bench/scale.py [N ...]        (default: 8192 65536)
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def target_dir():
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(json.loads(meta.stdout)["target_directory"])


BIN = target_dir() / "release" / "exaprobe-exec"


def run(n, work):
    # A network deaggregated into host routes (as `--ip 10.0.0.0/19 --deaggregate-networks` of the
    # healthcheck drop-in), not added to lo: n must be a power of two.
    length = 32 - (n.bit_length() - 1)
    checks = work / f"checks-{n}"
    failing = work / f"failing-{n}"
    checks.write_text("")
    command = f"date +%s.%N >> {checks}; test ! -e {failing}"
    argv = [str(BIN), "--ip", f"10.0.0.0/{length}", "--deaggregate-networks", "--no-ip-setup",
            "--next-hop", "10.0.0.1", "--exabgp-api", "4",
            "--rise", "1", "--fall", "1", "--interval", "1", "--fast-interval", "1",
            "--withdraw-on-down", "--shell", command]
    started = time.monotonic()
    probe = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    lines = []  # (time, line)
    done = threading.Event()

    def answer():
        for raw in probe.stdout:
            lines.append((time.monotonic(), raw.decode().strip()))
            try:
                probe.stdin.write(b"done\n")
                probe.stdin.flush()
            except (BrokenPipeError, ValueError):
                break
        done.set()

    threading.Thread(target=answer, daemon=True).start()

    def wait_count(verb, count, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            seen = sum(1 for _, line in lines if line.startswith(verb))
            if seen >= count:
                return time.monotonic()
            time.sleep(0.01)
        return None

    announced = wait_count("announce", n, 300)
    flip = time.monotonic()
    failing.write_text("")
    withdrawn = wait_count("withdraw", n, 300)
    time.sleep(1.5)
    before = len(lines)
    term = time.monotonic()
    probe.send_signal(signal.SIGTERM)
    try:
        probe.wait(10)
        exited = time.monotonic()
    except subprocess.TimeoutExpired:
        probe.kill()
        exited = None
    done.wait(5)
    stamps = [float(x) for x in checks.read_text().split()]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "n": n,
        "announce": None if announced is None else announced - started,
        "withdraw": None if withdrawn is None else withdrawn - flip,
        "gap": max(gaps) if gaps else None,
        "checks": len(stamps),
        "exit": None if exited is None else exited - term,
        "after_term": len(lines) - before,
    }


def fmt(value, unit="s"):
    return "-" if value is None else f"{value:.2f} {unit}"


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [8192, 65536]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(n, Path(tmp)) for n in sizes]
    print("| prefixes | start -> all announced | DOWN -> all withdrawn | longest gap between checks "
          "(interval 1 s) | SIGTERM -> exit | lines written after SIGTERM |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {fmt(r['announce'])} | {fmt(r['withdraw'])} | {fmt(r['gap'])} "
              f"({r['checks']} checks) | {fmt(r['exit'])} | {r['after_term']} |")


if __name__ == "__main__":
    main()
