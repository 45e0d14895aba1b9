"""Canvas's request throttle (``app/middleware/request_throttle.rb``): a leaky bucket per token.

Each request reserves ``up_front`` units while it is in flight and is refused when the bucket is
full *after* its own reservation, so about ``hwm / up_front`` requests in flight fill it. When the
request ends its reservation is replaced by its real cost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class ThrottleSettings:
    hwm: float = 600.0
    outflow: float = 10.0
    maximum: float = 800.0
    up_front: float = 50.0
    enabled: bool = True


class _Bucket:
    __slots__ = ("level", "touched")

    def __init__(self) -> None:
        self.level = 0.0
        self.touched = time.monotonic()


class Throttle:
    def __init__(self, settings: ThrottleSettings):
        self.settings = settings
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _leak(self, bucket: _Bucket) -> None:
        now = time.monotonic()
        bucket.level = max(0.0, bucket.level - (now - bucket.touched) * self.settings.outflow)
        bucket.touched = now

    def reserve(self, key: str) -> bool:
        """Reserve the up-front cost; False means this request is throttled."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            self._leak(bucket)
            bucket.level = min(self.settings.maximum, bucket.level + self.settings.up_front)
            return not self.settings.enabled or bucket.level < self.settings.hwm

    def settle(self, key: str, cost: float) -> float:
        """Replace the reservation with the real cost; returns what remains below the high-water mark."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            self._leak(bucket)
            bucket.level = min(self.settings.maximum, max(0.0, bucket.level - self.settings.up_front + cost))
            return self.settings.hwm - bucket.level

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
