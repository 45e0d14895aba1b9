"""How many pairing codes an attacker can try, from the portal's guessing limits (docs/reliability.md).

    .venv/bin/python bench/guessing_bound.py [--live-codes 2000] [--worker-concurrency 4]

Reads the limits from the settings (so from the environment, as the portal would) and prints, for an
attacker with K parent accounts and K network addresses, the guesses per hour and over a code's
lifetime, and the chance that any of the live codes is found.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CODE_SPACE = 62**6  # six case-sensitive letters and digits (canvas-contract: Pairing codes)
LIFETIME_HOURS = 7 * 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-codes", type=int, default=2000, help="codes alive at once (a school's first week)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="redeems that may be past the pause check when it lands"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.conf import settings

    account, address = settings.CODE_GUESSES_PER_ACCOUNT, settings.CODE_GUESSES_PER_ADDRESS
    everyone = settings.CODE_GUESSES_GLOBAL + args.worker_concurrency
    print(f"limits: {account}/account, {address}/address, {settings.CODE_GUESSES_GLOBAL}/portal an hour")
    print(f"code space 62^6 = {CODE_SPACE:,}; lifetime {LIFETIME_HOURS} h; {args.live_codes:,} live codes")
    print()
    print("| K accounts and K addresses | guesses an hour | over 7 days | P(one given code) | P(any live code) |")
    print("|---:|---:|---:|---:|---:|")
    for k in (1, 10, 100, 1000):
        per_hour = min(k * account, k * address, everyone)
        lifetime = per_hour * LIFETIME_HOURS
        one = lifetime / CODE_SPACE
        print(f"| {k:,} | {per_hour:,} | {lifetime:,} | {one:.1e} | {min(1.0, one * args.live_codes):.1e} |")


if __name__ == "__main__":
    main()
