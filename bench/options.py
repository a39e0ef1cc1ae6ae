#!/usr/bin/env python3
"""What the runner's options add to an exec check's own CPU, in turns in one run.

exaprobe-exec runs `sh -c 'printf x >> COUNTER'` at `--interval 0.05` (checks counted by the
file), once plain and once with each option an operator commonly adds: the disable file (absent),
the state file, the metrics endpoint and textfile, syslog, JSON logs, a transition hook, a
required probe's state file. Each round runs every configuration for the window; the report
gives the median over the rounds of the own CPU per check and the context switches per check of
the main thread, and each configuration against plain in the same round. Nothing is asserted.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import fmt, free_port  # noqa: E402
from probes import busy, file_size, probe_argv  # noqa: E402

INTERVAL = 0.05


def configurations(work):
    """Name -> the options added to the plain exec probe."""
    # In a directory of its own: the counter the checks append to would wake the watcher.
    (work / "required").mkdir()
    required = work / "required" / "dep.json"
    # A required probe's state file that says UP, its writer this process (pid and start time,
    # field 22 of /proc/self/stat, as a reader checks them).
    start_time = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    required.write_text(json.dumps({
        "version": 1, "probe": "dep", "kind": "exec", "exaprobe_version": "0", "pid": os.getpid(),
        "start_time": start_time, "updated": "2026-01-01T00:00:00Z", "state": "UP",
        "since": "2026-01-01T00:00:00Z", "flap_held": False, "health": "UP", "health_reason": None,
        "required": [], "depends_on": [], "last_check": None, "last_event": None,
        "consecutive": {"successes": 1, "failures": 0}, "prefixes": {},
        "counters": {"checks": {}, "transitions": 0, "exabgp_commands": {}, "events": {}},
    }))
    (work / "textfile").mkdir()
    return {
        "plain": [],
        "--disable FILE (absent)": ["--disable", str(work / "disable")],
        "--state-file FILE": ["--state-file", str(work / "state.json")],
        "--metrics-listen": ["--metrics-listen", f"127.0.0.1:{free_port()}"],
        "--metrics-textfile DIR": ["--metrics-textfile", str(work / "textfile")],
        "--syslog": ["--syslog"],
        "--log-format json": ["--log-format", "json"],
        "--execute true (a hook)": ["--execute", "true"],
        "--require FILE": ["--require", str(required)],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", metavar="FILE", help="append the table as Markdown to FILE")
    args = parser.parse_args()
    rounds, window = (1, 2) if args.quick else (args.rounds, 6)
    work = Path(tempfile.mkdtemp(prefix="exaprobe-bench-options-"))
    try:
        configs = configurations(work)
        counter = work / "checks"
        results = {name: [] for name in configs}
        for i in range(rounds):
            for name, extra in configs.items():
                counter.unlink(missing_ok=True)
                argv = probe_argv("exec", [*extra, "--shell", f"printf x >> {counter}"], INTERVAL)
                cpu, _, checks, _, switched = busy(argv, window, lambda elapsed: file_size(counter))
                results[name].append((cpu, switched))
                print(f"options: round {i + 1}: {name}: {fmt(cpu)} ms, {fmt(switched)} switches "
                      f"({checks} checks)", flush=True)
        plain = [cpu for cpu, _ in results["plain"]]
        lines = ["| exaprobe-exec with | own CPU per check, median ms | / plain, median of the rounds "
                 "| context switches per check |", "|---|---|---|---|"]
        for name, runs in results.items():
            cpus = [cpu for cpu, _ in runs]
            ratio = statistics.median(c / p for c, p in zip(cpus, plain))
            switched = statistics.median(s for _, s in runs)
            lines.append(f"| {name} | {fmt(statistics.median(cpus))} | {fmt(ratio)} | {fmt(switched)} |")
        note = (f"- {rounds} rounds of {window} s per configuration, interval {INTERVAL} s, "
                f"`sh -c 'printf x >> COUNTER'`")
        print("\n".join(lines + ["", note]))
        if args.markdown:
            with open(args.markdown, "a") as out:
                out.write("\n## exec: what the options add (bench/options.py)\n\n")
                out.write("\n".join(lines + ["", note]) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
