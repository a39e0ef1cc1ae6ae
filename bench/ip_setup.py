#!/usr/bin/env python3
"""IP set-up of many addresses (issue 24): `--ip NETWORK` adds each address of the network to
`lo` at start and removes it at exit. Measured inside a network namespace this script creates
and deletes (root only), for exaprobe-exec and, when installed, ExaBGP 5.0's healthcheck.

- set-up: from the start to the first announce (the probe announces once set-up is done),
  minus the same start with --no-ip-setup;
- removal: from SIGTERM to the exit (the addresses removed), all gone afterwards.

Usage: bench/ip_setup.py [--binary PATH] [--network CIDR] [--healthcheck] [--without-claims]
                         [--markdown FILE]
Not a test: nothing fails on a figure.
"""

import argparse
import os
import pathlib
import signal
import subprocess
import threading
import time

EXABGP = pathlib.Path("/opt/exaprobe-deps/exabgp-5.0/bin/exabgp")


def netns_run(ns, argv, **kwargs):
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)


def count(ns, prefix):
    out = subprocess.run(["ip", "-n", ns, "-o", "-4", "address", "show", "dev", "lo"],
                         capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[3].startswith(prefix))


def start_to_announce(ns, argv):
    """Seconds from the start to the first announce line; the running process. Every line is
    answered `done`, as ExaBGP 5.0 acknowledges (the healthcheck waits for it)."""
    began = time.monotonic()
    process = netns_run(ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL)
    announced = threading.Event()

    def answer():
        for line in process.stdout:
            if b"announce route" in line:
                announced.set()
            try:
                process.stdin.write(b"done\n")
                process.stdin.flush()
            except OSError:
                return
        announced.set()

    threading.Thread(target=answer, daemon=True).start()
    announced.wait()
    if process.poll() is not None:
        raise SystemExit(f"{argv[0]}: exited without announcing")
    return time.monotonic() - began, process


def stop(process):
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=600)
    return time.monotonic() - began


def measure(ns, argv, network, prefix):
    baseline, process = start_to_announce(ns, [*argv, "--no-ip-setup"])
    stop(process)
    total, process = start_to_announce(ns, argv)
    added = count(ns, prefix)
    removal = stop(process)
    return total - baseline, added, removal, count(ns, prefix)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "exaprobe-exec"))
    parser.add_argument("--network", default="10.2.0.0/19")
    parser.add_argument("--healthcheck", action="store_true", help="also ExaBGP 5.0's healthcheck")
    parser.add_argument("--markdown")
    parser.add_argument("--without-claims", action="store_true",
                        help="a binary from before --ip-claims-dir (for a before/after row)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/ip_setup.py: SKIPPED (network namespaces need root)")
        return
    prefix = args.network.split("/")[0].rsplit(".", 2)[0] + "."
    ns = f"exaprobe-bench-ip-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        common = ["--ip", args.network, "--rise", "1", "--no-syslog"]
        rows = []
        claims = [] if args.without_claims else ["--ip-claims-dir", f"/tmp/{ns}-claims"]
        ours = measure(ns, [args.binary, *common, "--exabgp-api", "4", "--no-ack", *claims,
                            "--cmd", "true"], args.network, prefix)
        rows.append(("exaprobe", ours))
        if args.healthcheck and EXABGP.exists():
            env = {"exabgp.daemon.user": "root"}
            theirs = measure(ns, ["env", *[f"{k}={v}" for k, v in env.items()], str(EXABGP),
                                  "healthcheck", *common, "--cmd", "true"], args.network, prefix)
            rows.append(("exabgp healthcheck", theirs))
        lines = [f"| IP set-up of {args.network} | set-up | addresses added | SIGTERM -> exit "
                 "(addresses removed) | left after exit |", "|---|---|---|---|---|"]
        for name, (setup, added, removal, left) in rows:
            lines.append(f"| {name} | {setup:.3f} s | {added} | {removal:.3f} s | {left} |")
        print("\n".join(lines))
        if args.markdown:
            with open(args.markdown, "a") as out:
                out.write("\n".join(lines) + "\n")
    finally:
        subprocess.run(["ip", "netns", "del", ns])
        subprocess.run(["rm", "-rf", f"/tmp/{ns}-claims"])


if __name__ == "__main__":
    main()
