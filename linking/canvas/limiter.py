"""How many requests each Canvas token may have in flight, shared by every thread and worker.

Canvas throttles per token with a leaky bucket that every request reserves 50 units of while it runs
(``canvas-contract.md``, "Throttling"): about 12 requests in flight fill it, whatever their real cost.
So the portal caps requests in flight per token, below 12, across all of its processes:

    with limiter.slot(bucket_key):     # waits for a slot; raises CanvasSlotTimeout after max_wait
        response = send(...)
    limiter.observe(bucket_key, remaining)   # X-Rate-Limit-Remaining of that response

The cap adapts to what Canvas says is left. A response's ``X-Rate-Limit-Remaining`` is the bucket's room
above its level, and that level holds the reservations of the token's other requests still in flight, so
the room the bucket has for reservations is ``remaining + 50 x (requests in flight now)``: the limiter
keeps that ("free"), grows it by the bucket's outflow as time passes, and lets ``n`` requests in flight
while ``n x 50 < free`` (:func:`effective_cap`). With nothing else in the bucket that is 11, the most
Canvas serves at once (the 12th reservation reaches the 600 mark); what a wrong pairing code (+200), an
expensive request or another user of the token leaves behind takes requests off, and at no room at all
callers wait until the bucket has drained enough for one. After a refusal (the throttle's 403) the room is
taken to be just what remained: the requests still in flight then are mostly refusals on their way back,
which hold nothing, and what the others free shows in their own answers. :class:`RedisLimiter` shares slots and
observations between processes; :class:`LocalLimiter` does the same within one process. ``bucket_key`` is
the client's hash of (base URL, token): a token never reaches Redis or a log.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from .errors import CanvasTransient

logger = logging.getLogger("linking.canvas")

# The most requests Canvas serves at once with its default throttle (600 / 50, less the one that reaches it).
DEFAULT_MAX_IN_FLIGHT = 11
UP_FRONT_UNITS = 50.0  # what Canvas reserves per request in flight
OUTFLOW_PER_SECOND = 10.0  # what Canvas's bucket drains per second


class CanvasSlotTimeout(CanvasTransient):
    """No request slot for the token came free within the limiter's ``max_wait``. Nothing was sent."""


class CanvasLimiter(Protocol):
    """What the client needs from a limiter (see the module docstring)."""

    def slot(self, bucket_key: str) -> AbstractContextManager[None]: ...

    def observe(self, bucket_key: str, remaining: float, *, refused: bool = False) -> None: ...


def effective_cap(free: float | None, max_in_flight: int, up_front: float = UP_FRONT_UNITS) -> int:
    """Requests that may be in flight when the bucket has about ``free`` units of room for reservations
    (None: nothing observed yet, the full cap). Canvas refuses a request whose reservation reaches the
    high-water mark, so ``n`` fit while ``n * up_front < free``; 0 means wait for the bucket to drain."""
    if free is None:
        return max_in_flight
    return max(0, min(max_in_flight, math.ceil(free / up_front) - 1))


class _Waiting:
    """A deadline, and short waits with jitter before it, so waiters across workers do not poll in step."""

    def __init__(self, max_wait: float) -> None:
        self.deadline = time.monotonic() + max_wait

    def next_wait(self) -> float | None:
        """Seconds to wait before looking again (at most about 0.1); None once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        return min(left, random.uniform(0.05, 0.15))


def _timeout(max_wait: float, cap: int) -> CanvasSlotTimeout:
    logger.warning("canvas limiter: no request slot within %g s (cap %d in flight per token)", max_wait, cap)
    return CanvasSlotTimeout(
        may_have_happened=False,
        messages=[f"no Canvas request slot came free within {max_wait:g} s (cap {cap} in flight per token)"],
    )


def _validate(max_in_flight: int, max_wait: float) -> None:
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be a positive int, got {max_in_flight!r}")
    if max_wait <= 0:
        raise ValueError(f"max_wait must be > 0, got {max_wait!r}")


# -- one process ------------------------------------------------------------------------------------


class LocalLimiter:
    """Slots per token for the threads of one process (when there is no Redis to share them)."""

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_wait: float = 30.0,
        up_front: float = UP_FRONT_UNITS,
        outflow_per_second: float = OUTFLOW_PER_SECOND,
    ) -> None:
        _validate(max_in_flight, max_wait)
        self.max_in_flight = max_in_flight
        self.max_wait = max_wait
        self.outflow_per_second = outflow_per_second
        self.up_front = up_front
        self._lock = threading.Condition()
        self._holders: dict[str, int] = {}
        self._seen: dict[str, tuple[float, float]] = {}  # key -> (free room, monotonic time)

    def __repr__(self) -> str:
        return f"<LocalLimiter max_in_flight={self.max_in_flight}>"

    def _estimate(self, bucket_key: str) -> float | None:
        seen = self._seen.get(bucket_key)
        if seen is None:
            return None
        free, at = seen
        return free + self.outflow_per_second * (time.monotonic() - at)

    def cap(self, bucket_key: str) -> int:
        """How many requests with this token may be in flight now."""
        with self._lock:
            return effective_cap(self._estimate(bucket_key), self.max_in_flight, self.up_front)

    def in_flight(self, bucket_key: str) -> int:
        with self._lock:
            return self._holders.get(bucket_key, 0)

    @contextmanager
    def slot(self, bucket_key: str) -> Iterator[None]:
        waiting = _Waiting(self.max_wait)
        with self._lock:
            while self._holders.get(bucket_key, 0) >= (
                cap := effective_cap(self._estimate(bucket_key), self.max_in_flight, self.up_front)
            ):
                wait = waiting.next_wait()
                if wait is None:
                    raise _timeout(self.max_wait, cap)
                # A release notifies; the timeout also lets a shrunken cap grow back as the bucket drains.
                self._lock.wait(wait)
            self._holders[bucket_key] = self._holders.get(bucket_key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._holders[bucket_key] - 1
                if left:
                    self._holders[bucket_key] = left
                else:
                    del self._holders[bucket_key]
                self._lock.notify_all()

    def observe(self, bucket_key: str, remaining: float, *, refused: bool = False) -> None:
        with self._lock:
            free = float(remaining) if refused else float(remaining) + self.up_front * self._holders.get(bucket_key, 0)
            self._seen[bucket_key] = (free, time.monotonic())
            if len(self._seen) > 1024:  # forget buckets that drained long ago
                now = time.monotonic()
                for key, (_, at) in list(self._seen.items()):
                    if now - at > 600:
                        del self._seen[key]
            self._lock.notify_all()


# -- every process, through Redis ---------------------------------------------------------------------

# The estimate and the cap, on Redis's clock so that workers on several hosts agree.
# KEYS[2] = hash {free, at_ms}. ARGV[3] = outflow per second, ARGV[4] = max, ARGV[5] = up-front units.
_CAP_LUA = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function cap_now(state_key, now, outflow, max_cap, up_front)
  local seen = redis.call('HMGET', state_key, 'free', 'at_ms')
  if not seen[1] then return max_cap, false end
  local estimate = tonumber(seen[1]) + outflow * math.max(0, now - tonumber(seen[2])) / 1000
  local cap = math.max(0, math.min(max_cap, math.ceil(estimate / up_front) - 1))
  return cap, tostring(estimate)
end
"""

# KEYS[1] = holders (sorted set: holder id -> acquired at, ms). ARGV[1] = holder id, ARGV[2] = lease ms.
# Returns {acquired 0/1, cap, in flight}.
_ACQUIRE = (
    _CAP_LUA
    + """
local now = now_ms()
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease)
local cap = cap_now(KEYS[2], now, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
local held = redis.call('ZCARD', KEYS[1])
if held < cap then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return {1, cap, held + 1}
end
return {0, cap, held}
"""
)

# Returns {cap, in flight, estimate or false}.
_INSPECT = (
    _CAP_LUA
    + """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local cap, estimate = cap_now(KEYS[2], now, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return {cap, redis.call('ZCARD', KEYS[1]), estimate}
"""
)

# The room for reservations: what remained, plus what the token's other requests in flight hold (the
# observing request's slot is already released). KEYS as above. ARGV[1] = remaining, ARGV[2] = lease ms,
# ARGV[3] = up-front units (0 after a refusal: see observe), ARGV[4] = outflow per second, ARGV[5] = the
# room at which the cap is full again.
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local free = tonumber(ARGV[1]) + tonumber(ARGV[3]) * redis.call('ZCARD', KEYS[1])
redis.call('HSET', KEYS[2], 'free', tostring(free), 'at_ms', now)
-- Kept until the bucket has certainly drained back to the full cap; then Redis forgets it.
local ttl = math.floor(1000 * (math.max(0, tonumber(ARGV[5]) - free) / tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""


# Frees a slot and wakes one waiter: a token in the wake list, which a waiter's BLPOP takes (a token left
# when nobody waits only costs the next waiter one look; the list keeps no more than the cap's worth).
# KEYS as above. ARGV[1] = holder id, ARGV[2] = max in flight, ARGV[3] = lease ms.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], 1)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
return 1
"""


class RedisLimiter:
    """Slots per token shared by every process that uses the same Redis (and key prefix).

    A slot is a member of a sorted set per token, scored with the time it was taken; a Lua script drops
    members older than ``lease_seconds`` (holders that crashed without releasing) and adds the caller only
    while fewer than the cap hold one, so check and take are one atomic step. A release wakes one waiter
    through a list it blocks on (``BLPOP``); waiters also look again every 0.1 s or so, jittered, for a cap
    that grows as the bucket drains. The room for reservations the last response showed (its
    ``X-Rate-Limit-Remaining`` plus the token's other requests in flight then) is kept beside it with Redis's
    time, so every worker computes the same cap. When Redis cannot be reached the process falls back to its own
    :class:`LocalLimiter` (and logs a warning): Canvas calls go on, capped per process.
    """

    def __init__(
        self,
        url: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        lease_seconds: float = 120.0,
        max_wait: float = 30.0,
        up_front: float = UP_FRONT_UNITS,
        outflow_per_second: float = OUTFLOW_PER_SECOND,
        prefix: str = "canvas:limiter:",
    ) -> None:
        import redis  # only processes that share a limiter need the client library

        _validate(max_in_flight, max_wait)
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        self.max_in_flight = max_in_flight
        self.lease_ms = int(lease_seconds * 1000)
        self.max_wait = max_wait
        self.outflow_per_second = outflow_per_second
        self.prefix = prefix
        self.up_front = up_front
        self._redis_errors = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._inspect = self._redis.register_script(_INSPECT)
        self._observe = self._redis.register_script(_OBSERVE)
        self._release = self._redis.register_script(_RELEASE)
        self._fallback = LocalLimiter(
            max_in_flight=max_in_flight, max_wait=max_wait, up_front=up_front, outflow_per_second=outflow_per_second
        )
        self._warned_at = 0.0
        self._down_until = 0.0

    def __repr__(self) -> str:
        # The URL may carry a Redis password: leave it out.
        return f"<RedisLimiter max_in_flight={self.max_in_flight} prefix={self.prefix!r}>"

    def _keys(self, bucket_key: str) -> list[str]:
        # The braces keep both keys in one Redis Cluster slot, as a script needs.
        prefix = f"{self.prefix}{{{bucket_key}}}"
        return [f"{prefix}:holders", f"{prefix}:free", f"{prefix}:wake"]

    def _args(self, holder: str) -> list:
        return [holder, self.lease_ms, self.outflow_per_second, self.max_in_flight, self.up_front]

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        # Do not pay a connect timeout on every request while Redis is away; try it again in a while.
        self._down_until = now + 10
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning("canvas limiter: Redis unavailable (%s); capping per process instead", type(exc).__name__)

    def inspect(self, bucket_key: str) -> tuple[int, int, float | None]:
        """(cap now, requests in flight, estimated room for reservations or None), across all workers."""
        cap, held, estimate = self._inspect(keys=self._keys(bucket_key), args=self._args(""))
        return int(cap), int(held), (float(estimate) if estimate else None)

    def cap(self, bucket_key: str) -> int:
        """How many requests with this token may be in flight now, across all workers."""
        return self.inspect(bucket_key)[0]

    def in_flight(self, bucket_key: str) -> int:
        return self.inspect(bucket_key)[1]

    @contextmanager
    def slot(self, bucket_key: str) -> Iterator[None]:
        keys = self._keys(bucket_key)
        holder = f"{os.getpid()}:{uuid.uuid4().hex}"
        args = self._args(holder)
        waiting = _Waiting(self.max_wait)
        while True:
            try:
                redis_is_up = time.monotonic() >= self._down_until
                if redis_is_up:
                    acquired, cap, _ = self._acquire(keys=keys, args=args)
            except self._redis_errors as exc:
                self._warn(exc)
                redis_is_up = False
            if not redis_is_up:
                with self._fallback.slot(bucket_key):
                    yield
                return
            if acquired:
                break
            wait = waiting.next_wait()
            if wait is None:
                raise _timeout(self.max_wait, int(cap))
            try:
                # Woken at once by a release (a token in the wake list), else it looks again as the bucket drains.
                self._redis.blpop([keys[2]], timeout=wait)
            except self._redis_errors as exc:
                self._warn(exc)
        try:
            yield
        finally:
            try:
                self._release(keys=keys, args=[holder, self.max_in_flight, self.lease_ms])
            except self._redis_errors as exc:  # the lease frees the slot in the end
                self._warn(exc)

    def observe(self, bucket_key: str, remaining: float, *, refused: bool = False) -> None:
        self._fallback.observe(bucket_key, remaining, refused=refused)
        if time.monotonic() < self._down_until:
            return
        full = (self.max_in_flight + 1) * self.up_front
        try:
            self._observe(
                keys=self._keys(bucket_key),
                args=[float(remaining), self.lease_ms, 0 if refused else self.up_front, self.outflow_per_second, full],
            )
        except self._redis_errors as exc:
            self._warn(exc)


# -- the process-wide limiter -----------------------------------------------------------------------------

_limiters: dict[tuple, LocalLimiter | RedisLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter(url: str, *, max_in_flight: int, max_wait: float = 30.0) -> LocalLimiter | RedisLimiter:
    """The limiter this process shares between all its clients: Redis-backed for a ``redis://`` or
    ``rediss://`` URL, otherwise (empty URL) local to the process."""
    config = (url, max_in_flight, max_wait)
    with _limiters_lock:
        limiter = _limiters.get(config)
        if limiter is None:
            if url:
                if not url.startswith(("redis://", "rediss://", "unix://")):
                    raise ValueError("the Canvas limiter URL must be redis://, rediss:// or unix://")
                limiter = RedisLimiter(url, max_in_flight=max_in_flight, max_wait=max_wait)
            else:
                limiter = LocalLimiter(max_in_flight=max_in_flight, max_wait=max_wait)
            _limiters[config] = limiter
        return limiter


def _forget_limiters_in_child() -> None:
    # A forked worker must not inherit the parent's slot counts (or its Redis sockets).
    global _limiters_lock
    _limiters.clear()
    _limiters_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_limiters_in_child)
