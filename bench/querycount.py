"""Counts a worker's database queries for the benchmarks: ``celery worker --include bench.querycount``.

Every connection the process opens gets an execute wrapper that counts its queries; a thread writes the
process's total to Redis (``bench:queries:<pid>``) twice a second, and :func:`total` adds them up.
With ``BENCH_QUERY_SHAPES=1`` in the worker's environment it also tallies each query's shape (its SQL with
lists of placeholders and savepoint names folded, so one statement is one shape whatever its arguments)
in ``bench:shapes:<pid>``, which :func:`shapes` adds up: what repeats per row. Nothing else in the worker
changes, and a process that is not a Celery worker (a benchmark reading the totals) counts nothing.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import Counter
from pathlib import Path

from django.db.backends.signals import connection_created

KEY = "bench:queries:"
SHAPES_KEY = "bench:shapes:"
TALLY_SHAPES = os.environ.get("BENCH_QUERY_SHAPES") == "1"
_count = 0
_shapes: Counter[str] = Counter()
_lock = threading.Lock()

_PLACEHOLDERS = re.compile(r"%s(?:\s*,\s*%s)+")
_REPEATED_GROUPS = re.compile(r"(\([^()]*\))(?:\s*,\s*\1)+")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')


def shape(sql: str) -> str:
    """``sql`` with what varies between calls of one statement folded: IN lists, VALUES rows, savepoints."""
    folded = _PLACEHOLDERS.sub("%s, ...", sql)
    folded = _REPEATED_GROUPS.sub(r"\1, ...", folded)
    return _SAVEPOINT.sub('"s_x"', folded)


def _counting(execute, sql, params, many, context):
    global _count
    with _lock:
        _count += 1
        if TALLY_SHAPES:
            _shapes[shape(sql)] += 1
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs):
    if _counting not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counting)


def _publish(url: str) -> None:
    import time

    import redis

    connection = redis.Redis.from_url(url)
    while True:
        try:
            connection.set(f"{KEY}{os.getpid()}", _count)
            if TALLY_SHAPES:
                with _lock:
                    tally = dict(_shapes)
                if tally:
                    connection.hset(f"{SHAPES_KEY}{os.getpid()}", mapping=tally)
        except redis.RedisError:
            pass
        time.sleep(0.5)


def total(url: str) -> int:
    """Queries made so far by every counting process that reports to this Redis."""
    import redis

    connection = redis.Redis.from_url(url)
    values = [int(connection.get(key) or 0) for key in connection.scan_iter(match=KEY + "*")]
    connection.close()
    return sum(values)


def shapes(url: str) -> Counter[str]:
    """Queries made so far by shape, over every process that tallies them (``BENCH_QUERY_SHAPES=1``)."""
    import redis

    connection = redis.Redis.from_url(url)
    tally: Counter[str] = Counter()
    for key in connection.scan_iter(match=SHAPES_KEY + "*"):
        for sql, count in connection.hgetall(key).items():
            tally[sql.decode()] += int(count)
    connection.close()
    return tally


def _in_celery_worker() -> bool:
    # ``--include`` imports this module in the worker; a benchmark imports it too, to read the totals, and
    # must neither count its own queries nor report them as the worker's.
    program = Path(sys.argv[0])
    return "celery" in (program.name, program.parent.name) and "worker" in sys.argv[1:]


if _in_celery_worker():
    connection_created.connect(_wrap)
    threading.Thread(target=_publish, args=(os.environ["CELERY_BROKER_URL"],), daemon=True, name="querycount").start()
