"""Time `clip-arena --version`, `--help` and `clip-arena COMMAND --help` as whole processes.

Each command line runs as the console script runs it (`from clip_arena.cli.main import main`) in a
fresh interpreter, from a temporary folder, with this checkout (or --root) first on PYTHONPATH.
Baseline in the same run: `python -c pass`, the floor that starting Python costs. Runs are
interleaved (one of each in turn), so a busy moment on the machine hits every row alike.

    python bench/bench_cli_help.py --runs 10
    python bench/bench_cli_help.py --root /tmp/old-checkout   # the same figures for another tree
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the `clip-arena` console script does.
CONSOLE_SCRIPT = "import sys; from clip_arena.cli.main import main; sys.exit(main())"
COMMANDS = [["--version"], ["--help"], ["serve", "--help"], ["embed", "--help"], ["finetune", "--help"],
            ["stats", "--help"], ["score", "--help"], ["users", "hash", "--help"]]


def timed(command: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command line (default 10)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to time (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    cwd = tempfile.mkdtemp(prefix="bench-cli-")
    imported = subprocess.run([sys.executable, "-c", "import clip_arena; print(clip_arena.__file__)"], env=env,
                              cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    if not imported.startswith(str(root)):
        raise SystemExit(f"clip_arena comes from {imported}, not from {root}")
    rows = {"python -c pass (baseline)": [sys.executable, "-c", "pass"]}
    rows |= {"clip-arena " + " ".join(argv): [sys.executable, "-c", CONSOLE_SCRIPT, *argv] for argv in COMMANDS}
    for command in rows.values():  # warm the file cache and the .pyc files; not counted
        timed(command, env, cwd)
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.runs):
        for name, command in rows.items():
            times[name].append(timed(command, env, cwd))
    base = statistics.median(times["python -c pass (baseline)"])
    print(f"{'command':34} {'min s':>7} {'median s':>9} {'x baseline':>11}")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"{name:34} {min(runs):7.3f} {median:9.3f} {median / base:11.1f}")
    print(f"({args.runs} runs each, interleaved; x baseline: median / the baseline's median; code from {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
