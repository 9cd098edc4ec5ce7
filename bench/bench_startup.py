"""Start-up cost of the ``deepmemory`` command: CPU seconds per run, median of N.

Commands that do not run an agent must not import it (issue: the first hour). Each
command runs N times in a fresh process; the CPU time (user + system) of the child is
read from the OS, so a busy machine changes it little. The targets are absolute, on
the machine that runs the script:

    python bench/bench_startup.py            # 15 runs per command
    python bench/bench_startup.py --runs 31 --json bench/startup.json

The memory commands run against a SQLite database with a few files in a temporary
folder. ``python -c pass`` is measured too, as the floor every command pays, and
``import deepmemory.agent``, what every command paid before it loaded the agent stack
only where an agent runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEEPMEMORY = Path(sys.executable).parent / "deepmemory"

# (label, argv after the command, target median CPU seconds or None); argv starting
# with "-c" runs Python itself: the floor, and the agent stack every command used to load.
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", ["-c", "pass"], None),
    ("import the agent stack", ["-c", "import deepmemory.agent"], None),
    ("deepmemory --help", ["--help"], 0.3),
    ("deepmemory --version", ["--version"], 0.3),
    ("deepmemory memory ls", ["memory", "ls"], 0.5),
    ("deepmemory memory cat", ["memory", "cat", "preferences.txt"], 0.5),
    ("deepmemory threads ls", ["threads", "ls"], None),
    ("deepmemory chat --help", ["chat", "--help"], None),
]


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system) of one run of ``argv`` in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "memory.db"
        env = dict(os.environ, DEEPMEMORY_DB=str(db), HOME=folder, NO_COLOR="1")
        env.pop("DEEPMEMORY_CONFIG", None)
        for name, text in [("preferences.txt", "- Concise answers\n"), ("notes/a.md", "a\n")]:
            cpu_seconds([str(DEEPMEMORY), "memory", "write", name, text], env)

        results = []
        failed = False
        print(f"{'command':<26} {'median CPU s':>12} {'min':>7} {'max':>7} {'target':>7}")
        for label, rest, target in COMMANDS:
            program = sys.executable if rest[0] == "-c" else str(DEEPMEMORY)
            argv = [program, *rest]
            samples = [cpu_seconds(argv, env) for _ in range(args.runs)]
            median = statistics.median(samples)
            verdict = ""
            if target is not None:
                ok = median <= target
                failed |= not ok
                verdict = f"{'PASS' if ok else 'FAIL'} ≤ {target}"
            print(
                f"{label:<26} {median:>12.3f} {min(samples):>7.3f} {max(samples):>7.3f} {verdict}"
            )
            results.append({"command": label, "median": median, "samples": samples})
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
