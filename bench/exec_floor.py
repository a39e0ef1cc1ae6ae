#!/usr/bin/env python3
"""The exec probe's own CPU per check against the floor, measured in turns in one run.

A paced spawn's cost moves with what the machine did during the pause (0.10-0.30 ms over a day
here), more than the probe's does, so one floor measurement beside one probe run gives a ratio
anywhere between 1 and 2.5. This alternates, for each round: the floor (bench/floor.c: posix_spawn
of /bin/true and waitpid, one per 50 ms), the same work in C (bench/floor.c `same`: what an
exec check asks of the kernel, see there), and exaprobe-exec at `--interval 0.05` running
`sh -c 'printf x >> COUNTER'` (the checks counted by the file). Reports every round, the medians
and the median of the rounds' ratios. Nothing is asserted.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import build_floor, fmt, run_floor  # noqa: E402
from probes import busy, file_size, probe_argv  # noqa: E402

PAUSE_S = 0.05


def spread(values):
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two short rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--markdown", metavar="FILE", help="append the table as Markdown to FILE")
    args = parser.parse_args()
    rounds, window = (2, 2) if args.quick else (args.rounds, 10)
    spawns = int(window / PAUSE_S)
    pause_us = int(PAUSE_S * 1e6)
    work = Path(tempfile.mkdtemp(prefix="exaprobe-bench-floor-"))
    try:
        binary = build_floor(work)
        if binary is None:
            print("exec_floor: no C compiler; skipped")
            return
        counter, same_counter = work / "checks", work / "same-checks"
        probe = probe_argv("exec", ["--shell", f"printf x >> {counter}"], PAUSE_S)
        floors, sames, probes, switched = [], [], [], []
        for i in range(rounds):
            floors.append(run_floor(binary, spawns, pause_us)[0])
            sames.append(run_floor(binary, spawns, pause_us, f"printf x >> {same_counter}", same=True)[0])
            counter.unlink(missing_ok=True)
            cpu, _, checks, _, switches_per_check = busy(probe, window, lambda elapsed: file_size(counter))
            probes.append(cpu)
            switched.append(switches_per_check)
            print(f"exec_floor: round {i + 1}: floor {fmt(floors[-1])} ms, same work in C {fmt(sames[-1])} ms, "
                  f"exaprobe-exec {fmt(cpu)} ms ({checks} checks, {fmt(switches_per_check)} switches)", flush=True)
        ratios = [p / f for p, f in zip(probes, floors)]
        same_ratios = [s / f for s, f in zip(sames, floors)]
        rows = [
            ("floor: posix_spawn + waitpid of /bin/true, paced", spread(floors), "1"),
            ("the same work as a check, in C (bench/floor.c same)", spread(sames), spread(same_ratios)),
            ("exaprobe-exec: own CPU per check", spread(probes), spread(ratios)),
        ]
        lines = ["| per check, the parent's CPU | median [min-max] ms | / floor, median of the rounds [min-max] |",
                 "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
        notes = [f"{rounds} rounds, each: {spawns} paced spawns of the floor, as many of the same work, "
                 f"then exaprobe-exec for {window} s; interval {PAUSE_S} s; exaprobe-exec "
                 f"{spread(switched)} context switches per check"]
        print("\n".join(lines + [""] + [f"- {note}" for note in notes]))
        if args.markdown:
            with open(args.markdown, "a") as out:
                out.write("\n## exec: own CPU against the floor, in turns (bench/exec_floor.py)\n\n")
                out.write("\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
