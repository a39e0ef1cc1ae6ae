#!/usr/bin/env python3
"""Required probes (--require): from a required state file changing to DOWN to the requiring
probe's withdraw line, with the requiring probe at --interval 5 (the interval must not matter).

The required file is written as exaprobe writes it (temporary file, rename) with this script as
its writer (its pid and process start time), so it counts as fresh. The requiring probe is an
exaprobe-exec (`true`) in --dry-run, its commands read from its stdout as they come.
Prints a table; nothing fails on a figure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def start_time():
    with open("/proc/self/stat") as stat:
        rest = stat.read().rsplit(")", 1)[1].split()
    return int(rest[19])


def write_state(path, health):
    document = {
        "version": 1,
        "probe": "dns",
        "pid": os.getpid(),
        "start_time": start_time(),
        "health": health,
        "health_reason": None if health == "UP" else "bench",
        "depends_on": [],
    }
    temporary = path + ".tmp"
    with open(temporary, "w") as out:
        json.dump(document, out)
    os.rename(temporary, path)


def read_until(probe, word, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = probe.stdout.readline()
        if not line:
            raise SystemExit("the probe exited")
        if line.startswith(word):
            return line
    raise SystemExit(f"no {word} line within {deadline} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/exaprobe-exec")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--markdown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        required = os.path.join(directory, "dns.json")
        write_state(required, "UP")
        probe = subprocess.Popen(
            [args.binary, "--prefix", "192.0.2.1/32", "--require", required, "--interval", "5",
             "--rise", "1", "--fall", "1", "--withdraw-on-down", "--dry-run", "--", "true"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            bufsize=1,
        )
        try:
            read_until(probe, "announce")
            took = []
            for _ in range(args.runs):
                started = time.perf_counter()
                write_state(required, "DOWN")
                read_until(probe, "withdraw")
                took.append((time.perf_counter() - started) * 1000)
                write_state(required, "UP")
                read_until(probe, "announce")
        finally:
            probe.terminate()
            probe.wait(timeout=5)
    took.sort()
    rows = [
        ("required file -> DOWN, to the withdraw line (--interval 5)", statistics.median(took),
         took[int(len(took) * 0.9) - 1], took[-1]),
    ]
    header = "| measurement | median ms | p90 ms | max ms |"
    lines = [header, "|---|---|---|---|"]
    lines += [f"| {name} | {median:.2f} | {p90:.2f} | {worst:.2f} |" for name, median, p90, worst in rows]
    print(f"\nRequired probes ({args.runs} runs)\n")
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "a") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
