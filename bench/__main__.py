"""``python -m bench``: every benchmark, one after another, then bench/RESULTS.md (what ``make bench`` runs).

    .venv/bin/python -m bench [--quick]

``--quick`` runs each at a small size (a minute or two in all), to see that they work; its figures are no
measurement. Each benchmark can also run alone: ``python -m bench.linking``, ``bench.web``, ``bench.growth``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

QUICK = {
    "linking": [
        "--families",
        "100",
        "--parents",
        "40",
        "--arrivals",
        "10",
        "--rate",
        "5",
        "--baseline",
        "5",
        "--probe-seconds",
        "3",
    ],
    "web": ["--users", "20", "--duration", "20s"],
    "growth": ["--imports", "100,200", "--requests", "1000,2000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to see that every benchmark runs")
    parser.add_argument("--only", choices=sorted(QUICK), action="append", help="run only these (repeatable)")
    args = parser.parse_args()
    for name in args.only or ("linking", "web", "growth"):
        print(f"== bench.{name}", flush=True)
        # Each in a process of its own: a benchmark sets up Django for its stack, and the next one's stack
        # drops and makes that database again.
        command = [sys.executable, "-m", f"bench.{name}", *(QUICK[name] if args.quick else [])]
        if subprocess.run(command, check=False).returncode:  # noqa: S603 - our own modules
            sys.exit(f"bench.{name} failed; its figures so far are in var/bench/")
    from bench import results

    print(results.main())


if __name__ == "__main__":
    main()
