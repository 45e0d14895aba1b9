from __future__ import annotations

import redis

from linking.models import LinkRequest
from tests.linking.conftest import wait_for
from tests.reliability.conftest import submit, wait_until_finished
from tests.reliability.counting import tally
from tests.reliability.test_redis_restart import redis_server  # noqa: F401


def test_blip(families, workers, sim, redis_server):
    workers.use_broker(redis_server.url)
    pairs = [(families.parent(), families.student()) for _ in range(6)]
    pairs += [(families.parent(in_canvas=True), families.student()) for _ in range(6)]
    codes = [families.code_for(student) for _, student in pairs]
    sim.configure(latency_ms=400)
    worker = workers.start(CANVAS_TIMEOUT_READ="5")
    requests = [r for (p, _), c in zip(pairs, codes) for r in submit(p, c)]
    ids = [r.pk for r in requests]
    wait_for(lambda: LinkRequest.objects.filter(pk__in=ids, state="linking").count() >= 4)
    client = redis.Redis.from_url(redis_server.url)
    print("killed clients", client.client_kill_filter(_type="normal", skipme=True))
    wait_until_finished(requests, timeout=60)
    for r in LinkRequest.objects.filter(pk__in=ids):
        print(r.state, r.failure, r.attempts)
    print(tally("blip", sim, requests))
    import collections
    recv = collections.Counter(l.split("[")[1].split("]")[0] for l in worker.lines(r"link_request_process\[.*received"))
    print("received twice:", [k for k, v in recv.items() if v > 1])
    print("\n".join(worker.lines(r"Restoring|Unrecoverable|lost|Connected")))
