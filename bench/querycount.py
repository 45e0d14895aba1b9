"""Counts a worker's database queries for the benchmarks: ``celery worker --include bench.querycount``.

Every connection the process opens gets an execute wrapper that counts its queries; a thread writes the
process's total to Redis (``bench:queries:<pid>``) twice a second, and :func:`total` adds them up.
Nothing else in the worker changes.
"""

from __future__ import annotations

import os
import threading

from django.db.backends.signals import connection_created

KEY = "bench:queries:"
_count = 0
_lock = threading.Lock()


def _counting(execute, sql, params, many, context):
    global _count
    with _lock:
        _count += 1
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


connection_created.connect(_wrap)
threading.Thread(target=_publish, args=(os.environ["CELERY_BROKER_URL"],), daemon=True, name="querycount").start()
