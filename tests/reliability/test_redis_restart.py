"""Redis restarts empty while requests wait in its queue: their messages are gone, the rows are not, and
the outbox (``outbox_requeue``) queues them again from the database; every request ends linked."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from canvas_sim.testing import free_port
from linking import tasks
from linking.models import LinkRequest
from portal.celery import app
from tests.conftest import is_reachable, missing
from tests.reliability.conftest import submit, wait_until_finished
from tests.reliability.counting import assert_nothing_lost_or_duplicated, tally
from tests.workers import wait_for

# A short claim timeout stands for the 11 minutes after which production calls a dead worker's claim stale.
CLAIM_TIMEOUT = 3
WORKER_ENV = {"CANVAS_TIMEOUT_READ": "5", "WORKER_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT)}
OUTBOX_REQUEUED = r"outbox: queued again \{'link_requests': (\d+)"


class RedisServer:
    """A private ``redis-server`` on loopback with no persistence: a restart starts it empty."""

    def __init__(self, binary: str, log_dir):
        self.binary = binary
        self.port = free_port()
        self.log = log_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: is_reachable("127.0.0.1", self.port), timeout=10, message="redis-server to listen")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(services, tmp_path):
    # /usr/sbin is not on every PATH; Debian's package puts the binary in /usr/bin.
    binary = shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")
    if not binary:
        missing("needs the redis-server binary to restart a private Redis")
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.kill()


def test_requests_whose_queue_redis_lost_are_queued_again_from_the_database(families, workers, sim, redis_server):
    workers.use_broker(redis_server.url)
    pairs = [(families.parent(), families.student()) for _ in range(10)]
    pairs += [(families.parent(in_canvas=True), families.student()) for _ in range(10)]
    codes = [families.code_for(student) for _, student in pairs]
    # Slow enough that most requests still wait in Redis when it goes.
    sim.configure(latency_ms=300)
    worker = workers.start(**WORKER_ENV)
    requests = [request for (parent, _), code in zip(pairs, codes, strict=True) for request in submit(parent, code)]
    ids = [request.pk for request in requests]
    wait_for(
        lambda: LinkRequest.objects.filter(pk__in=ids, state=LinkRequest.State.LINKED).count() >= 3,
        message="a few requests to be linked",
    )

    redis_server.kill()
    redis_server.start()
    linking = LinkRequest.objects.filter(pk__in=ids, state=LinkRequest.State.LINKING)
    # The worker reconnects to the new Redis and finishes what it held, or it exits (Celery can fail
    # with "Unrecoverable error" while it hands back the tasks it held); a supervisor then starts it
    # again, as here, and the dead worker's claims go stale.
    wait_for(
        lambda: len(worker.lines(r"Connected to redis://")) >= 2 or worker.process.poll() is not None,
        timeout=60,
        message="the worker to reconnect or exit",
    )
    survived = worker.process.poll() is None
    if survived:
        wait_for(lambda: not linking.exists(), message="the requests in flight to finish")
    else:
        worker = workers.start("restarted", **WORKER_ENV)
        wait_for(
            lambda: not linking.filter(claimed_at__gt=timezone.now() - timedelta(seconds=CLAIM_TIMEOUT)).exists(),
            message="the dead worker's claims to go stale",
        )
    assert redis.Redis.from_url(redis_server.url).llen(workers.queue) == 0
    waiting = LinkRequest.objects.filter(pk__in=ids, state=LinkRequest.State.WAITING)
    lost = waiting.count() + linking.count()
    assert waiting.exists(), "the worker took every message before Redis went: slow the simulator down"

    # The outbox calls a message lost once its row has waited LOST_MESSAGE (eight and a half minutes as
    # shipped, longer than the workers' here); the rows are dated back by that much to stand for the wait.
    waiting.update(updated_at=timezone.now() - tasks.LOST_MESSAGE)
    sim.reset()
    app.send_task("linking.tasks.outbox_requeue")  # what beat sends every minute
    [requeued] = wait_for(lambda: worker.lines(OUTBOX_REQUEUED), message="the outbox to run")
    assert re.search(OUTBOX_REQUEUED, requeued)[1] == str(lost)
    wait_until_finished(requests)

    result = tally("Redis restarted empty, losing the queue", sim, requests)
    assert_nothing_lost_or_duplicated(result)
    print(f"Redis lost the messages of {lost} of {len(requests)} requests; the outbox queued them again")
    print("the worker reconnected" if survived else "the worker exited and was started again")
