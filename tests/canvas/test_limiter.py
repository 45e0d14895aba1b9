"""The limiter of Canvas requests in flight per token: across threads, processes and crashes, against the
simulator's throttle, and adapting to X-Rate-Limit-Remaining. Redis tests use DB 14 and a key prefix per test."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from canvas_sim.testing import free_port
from linking.canvas import (
    CanvasClient,
    CanvasSlotTimeout,
    CanvasThrottled,
    CanvasTransient,
    LocalLimiter,
    RedisLimiter,
    admin_client,
    canvas_client,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "0" * 64  # a bucket key as the client makes them (a SHA-256 hex digest)


@pytest.fixture
def limiter_url(redis_url) -> str:
    """Redis DB 14, away from the broker's DB."""
    return urlunsplit(urlsplit(redis_url)._replace(path="/14"))


@pytest.fixture
def prefix(limiter_url):
    """A key prefix of this test's own, deleted afterwards."""
    prefix = f"test-limiter:{uuid.uuid4().hex}:"
    yield prefix
    connection = redis.Redis.from_url(limiter_url)
    keys = list(connection.scan_iter(match=prefix + "*"))
    if keys:
        connection.delete(*keys)
    connection.close()


@pytest.fixture(params=["redis", "local"])
def make_limiter(request):
    """Limiters of either kind; every Redis one made in a test shares that test's prefix."""
    if request.param == "local":
        shared = {}

        def make(**options):
            # One process has one LocalLimiter; "another worker" is the same object here.
            return shared.setdefault("limiter", LocalLimiter(**options))

        return make
    url, prefix = request.getfixturevalue("limiter_url"), request.getfixturevalue("prefix")
    return lambda **options: RedisLimiter(url, prefix=prefix, **options)


def run_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )


# -- (1) never more than N holders, across threads and processes -------------------------------------

HAMMER = """
import random, sys, threading, time, redis
from linking.canvas.limiter import RedisLimiter
url, prefix, key, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
limiter = RedisLimiter(url, prefix=prefix, max_in_flight=n, max_wait=30)
r = redis.Redis.from_url(url)
while not r.exists(prefix + "go"):
    time.sleep(0.005)
def hammer():
    for _ in range(rounds):
        with limiter.slot(key):
            r.rpush(prefix + "seen", r.incr(prefix + "now"))
            time.sleep(random.uniform(0, 0.004))
            r.decr(prefix + "now")
threads = [threading.Thread(target=hammer) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print("done")
"""


def test_it_never_lets_more_than_n_holders_in_across_threads_and_processes(limiter_url, prefix):
    workers = [run_python(HAMMER, limiter_url, prefix, KEY, "3", "40") for _ in range(3)]
    limiter = RedisLimiter(limiter_url, prefix=prefix, max_in_flight=3, max_wait=30)
    r = redis.Redis.from_url(limiter_url)

    def hammer():
        for _ in range(40):
            with limiter.slot(KEY):
                r.rpush(prefix + "seen", r.incr(prefix + "now"))
                time.sleep(0.002)
                r.decr(prefix + "now")

    r.set(prefix + "go", 1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: hammer(), range(4)))
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]

    assert outputs == ["done\n"] * 3
    seen = [int(value) for value in r.lrange(prefix + "seen", 0, -1)]
    assert len(seen) == 4 * 40 * 4  # 3 processes and this one, 4 threads each, 40 rounds
    assert max(seen) == 3, "the semaphore must fill up (so the test can fail) and never overflow"
    assert limiter.in_flight(KEY) == 0


# -- (2) a crashed holder ------------------------------------------------------------------------------

HOLD_AND_HANG = """
import sys, time
from linking.canvas.limiter import RedisLimiter
limiter = RedisLimiter(sys.argv[1], prefix=sys.argv[2], max_in_flight=1, lease_seconds=1.5)
with limiter.slot(sys.argv[3]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_crashed_holders_slot_expires_after_the_lease(limiter_url, prefix):
    worker = run_python(HOLD_AND_HANG, limiter_url, prefix, KEY)
    assert worker.stdout.readline() == "held\n"
    worker.send_signal(signal.SIGKILL)  # no finally runs: the slot stays taken
    worker.wait(timeout=10)
    limiter = RedisLimiter(limiter_url, prefix=prefix, max_in_flight=1, lease_seconds=1.5, max_wait=0.3)

    with pytest.raises(CanvasSlotTimeout) as caught, limiter.slot(KEY):
        pass
    assert caught.value.may_have_happened is False

    time.sleep(1.5)
    with limiter.slot(KEY):
        assert limiter.in_flight(KEY) == 1
    assert limiter.in_flight(KEY) == 0


# -- (3) against the simulator's throttle ----------------------------------------------------------------


def many_calls(clients: list[CanvasClient], count: int) -> list:
    def call(index):
        try:
            return clients[index % len(clients)].get_user("self")
        except CanvasThrottled as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def test_workers_sharing_the_redis_limiter_are_never_throttled(
    canvas_sim, make_client, limiter_url, prefix, canvas_log
):
    canvas_sim.configure(latency_ms=300)  # requests stay in flight: 40 at once would fill the bucket thrice
    student = canvas_sim.make_user(student=True)
    # Three workers: each its own limiter object and Redis connections, as separate processes have.
    workers = [make_client(student["token"], limiter=RedisLimiter(limiter_url, prefix=prefix)) for _ in range(3)]

    canvas_sim.stats_reset()
    results = many_calls(workers, 40)

    assert [user["id"] for user in results] == [student["id"]] * 40
    assert canvas_log.throttled() == []
    # Eleven at once, the most Canvas serves: the limiter keeps the bucket full, not half empty.
    assert 10 <= canvas_sim.stats()["peak_in_flight"]["user"] <= 11
    assert len(canvas_log.attempts()) == 40
    assert workers[0].limiter.in_flight(workers[0]._bucket_key) == 0


def test_the_same_load_without_the_limiter_is_throttled(canvas_sim, make_client, canvas_log):
    canvas_sim.configure(latency_ms=300)
    student = canvas_sim.make_user(student=True)
    workers = [make_client(student["token"]) for _ in range(3)]

    many_calls(workers, 40)

    assert canvas_log.throttled(), "without the limiter this load must overfill the bucket"


WORKER_PROCESS = """
import json, logging, sys
from concurrent.futures import ThreadPoolExecutor
from linking.canvas import CanvasClient, RedisLimiter
base_url, token, url, prefix = sys.argv[1:5]
outcomes = []
class Count(logging.Handler):
    def emit(self, record):
        outcomes.append(getattr(record, "canvas_outcome", None))
logger = logging.getLogger("linking.canvas")
logger.setLevel(logging.DEBUG)
logger.addHandler(Count())
client = CanvasClient(base_url=base_url, token=token, limiter=RedisLimiter(url, prefix=prefix), backoff_base=0.02)
with ThreadPoolExecutor(max_workers=14) as pool:
    users = list(pool.map(lambda _: client.get_user("self")["id"], range(14)))
print(json.dumps({"users": users, "outcomes": outcomes}))
"""


def test_three_worker_processes_with_one_token_are_never_throttled(canvas_sim, limiter_url, prefix):
    canvas_sim.configure(latency_ms=300)
    student = canvas_sim.make_user(student=True)

    workers = [run_python(WORKER_PROCESS, canvas_sim.base_url, student["token"], limiter_url, prefix) for _ in range(3)]
    reports = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]

    assert [report["users"] for report in reports] == [[student["id"]] * 14] * 3
    assert [outcome for report in reports for outcome in report["outcomes"]] == ["ok"] * 42


def test_it_releases_the_slot_when_the_request_fails(canvas_sim, make_client, make_limiter):
    limiter = make_limiter(max_in_flight=1, max_wait=1)
    refused = CanvasClient(
        base_url=f"http://127.0.0.1:{free_port()}", token="t0ken", limiter=limiter, max_retries=1, backoff_base=0.01
    )
    with pytest.raises(CanvasTransient):
        refused.get_user("self")
    assert limiter.in_flight(refused._bucket_key) == 0

    canvas_sim.configure(throttle_up_front=1000)  # every request is throttled
    student = canvas_sim.make_user(student=True)
    throttled = make_client(student["token"], limiter=limiter, max_throttle_retries=1)
    with pytest.raises(CanvasThrottled):
        throttled.get_user("self")
    assert limiter.in_flight(throttled._bucket_key) == 0


# -- (4) adaptation --------------------------------------------------------------------------------------


def test_the_cap_drops_when_the_bucket_has_little_room_and_recovers(canvas_sim, make_client, make_limiter):
    limiter = make_limiter(max_in_flight=8, max_wait=0.3)
    another_worker = make_limiter(max_in_flight=8, max_wait=0.3)
    student = canvas_sim.make_user(student=True)
    client = make_client(student["token"], limiter=limiter)
    key = client._bucket_key
    assert limiter.cap(key) == 8

    canvas_sim.configure(throttle_hwm=160, throttle_up_front=1)  # X-Rate-Limit-Remaining stays near 160
    client.get_user("self")

    # Room for three reservations of 50 below the mark, not four: 4 x 50 would reach it.
    assert limiter.cap(key) == another_worker.cap(key) == 3
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(another_worker.slot(key))
        with pytest.raises(CanvasSlotTimeout), limiter.slot(key):
            pass

    canvas_sim.reset()
    client.get_user("self")  # remaining is back near 600

    assert limiter.cap(key) == another_worker.cap(key) == 8


def test_the_requests_still_in_flight_are_not_taken_for_a_full_bucket(make_limiter):
    limiter = make_limiter(max_in_flight=11, max_wait=0.3)
    with contextlib.ExitStack() as held:
        for _ in range(10):
            held.enter_context(limiter.slot(KEY))
        # Ten others hold 500 of the 600 units while this answer says 100 remain: the bucket is empty of
        # anything else, and eleven in flight is still right.
        limiter.observe(KEY, 100)
    assert limiter.cap(KEY) == 11

    limiter.observe(KEY, 90)  # nothing else in flight: 90 units left are room for one
    assert limiter.cap(KEY) == 1


def test_after_a_refusal_it_counts_only_what_remained(make_limiter):
    limiter = make_limiter(max_in_flight=11, max_wait=0.3)
    with contextlib.ExitStack() as held:
        for _ in range(10):
            held.enter_context(limiter.slot(KEY))
        # The throttle said no: the others in flight are refusals on their way back too, holding nothing.
        limiter.observe(KEY, 90, refused=True)
    assert limiter.cap(KEY) == 1


def test_the_cap_is_nought_while_the_bucket_is_full_and_grows_back_as_it_drains(make_limiter):
    limiter = make_limiter(max_in_flight=8, outflow_per_second=400)  # drains fast, so the test need not wait

    limiter.observe(KEY, -50)  # over the mark (a wrong pairing code costs 200): wait for room
    caps = [limiter.cap(KEY)]
    deadline = time.monotonic() + 5
    while caps[-1] < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
        caps.append(limiter.cap(KEY))

    assert caps[0] == 0
    assert caps[-1] == 8
    assert caps == sorted(caps) and len(set(caps)) > 3  # it came back a request at a time


# -- (5) without Redis ---------------------------------------------------------------------------------


def test_the_local_limiter_caps_threads_without_redis():
    limiter = LocalLimiter(max_in_flight=3)
    lock = threading.Lock()
    now, peak = 0, 0

    def hold(_):
        nonlocal now, peak
        with limiter.slot(KEY):
            with lock:
                now += 1
                peak = max(peak, now)
            time.sleep(0.01)
            with lock:
                now -= 1

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(hold, range(60)))

    assert peak == 3
    assert limiter.in_flight(KEY) == 0


def test_the_local_limiter_gives_up_after_its_max_wait():
    limiter = LocalLimiter(max_in_flight=1, max_wait=0.2)
    started = time.monotonic()

    with limiter.slot(KEY), pytest.raises(CanvasSlotTimeout), limiter.slot(KEY):
        pass

    assert 0.2 <= time.monotonic() - started < 1


def test_the_redis_limiter_falls_back_to_the_process_when_redis_is_down(caplog):
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/14", max_in_flight=1, max_wait=0.2)

    with limiter.slot(KEY), pytest.raises(CanvasSlotTimeout), limiter.slot(KEY):
        pass
    limiter.observe(KEY, 10)

    assert "Redis unavailable" in caplog.text


# -- wiring ----------------------------------------------------------------------------------------------


def test_the_factories_share_the_limiter_from_settings(settings, limiter_url):
    settings.CANVAS_ADMIN_TOKEN = "admin-t0ken"
    settings.CANVAS_MAX_IN_FLIGHT = 5
    settings.CANVAS_LIMITER_URL = limiter_url

    limiter = admin_client().limiter
    assert isinstance(limiter, RedisLimiter)
    assert limiter.max_in_flight == 5
    assert canvas_client("student-t0ken").limiter is limiter
    assert "t0ken" not in repr(limiter)

    settings.CANVAS_LIMITER_URL = ""
    assert isinstance(admin_client().limiter, LocalLimiter)
