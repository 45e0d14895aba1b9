"""The retry policy against real faults: throttling, 500s, hangs after the work was done, refusals."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from canvas_sim.testing import free_port
from linking.canvas import (
    CanvasClient,
    CanvasInvalidPairingCode,
    CanvasNotAuthorized,
    CanvasThrottled,
    CanvasTransient,
)

# -- throttling ----------------------------------------------------------------------------------


def test_it_rides_out_the_throttle_when_too_many_requests_are_in_flight(canvas_sim, make_client, student, canvas_log):
    canvas_sim.configure(latency_ms=300)  # requests stay in flight, so 20 at once overfill the bucket
    client = make_client(student["token"], backoff_base=0.25, backoff_cap=2.0)

    with ThreadPoolExecutor(max_workers=20) as pool:
        users = list(pool.map(lambda _: client.get_user("self"), range(20)))

    assert [user["id"] for user in users] == [student["id"]] * 20
    assert canvas_log.throttled(), "expected Canvas to throttle at least one request"


def test_it_retries_a_throttled_post_because_canvas_did_not_process_it(canvas_sim, make_client, student, canvas_log):
    canvas_sim.configure(latency_ms=300)
    client = make_client(student["token"], backoff_base=0.25, backoff_cap=2.0)

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda _: client.create_pairing_code("self"), range(16)))

    assert len({code.code for code in codes}) == 16
    assert [r for r in canvas_log.throttled() if r.canvas_method == "POST"]


def test_it_gives_up_on_the_throttle_after_its_retries(canvas_sim, make_client, student, canvas_log):
    canvas_sim.configure(throttle_up_front=1000)  # every request now overfills the bucket on its own

    with pytest.raises(CanvasThrottled) as caught:
        make_client(student["token"], max_throttle_retries=2).get_user("self")

    assert caught.value.status == 403
    assert caught.value.messages == ("403 Forbidden (Rate Limit Exceeded)",)
    assert len(canvas_log.attempts()) == 3


def test_it_does_not_retry_a_permission_403(canvas_sim, make_client, parent, student, canvas_log):
    canvas_sim.configure(unauthorized_status=403)

    with pytest.raises(CanvasNotAuthorized):
        make_client(parent["token"]).list_observees(student["id"])

    assert len(canvas_log.attempts()) == 1


def test_it_slows_down_when_the_rate_limit_runs_low(canvas_sim, make_client, student, canvas_log):
    canvas_sim.configure(throttle_hwm=60, throttle_up_front=1)  # X-Rate-Limit-Remaining stays near 60
    client = make_client(student["token"], low_remaining=100, max_pace_seconds=0.3)
    client.get_user("self")

    started = time.monotonic()
    client.get_user("self")

    assert time.monotonic() - started >= 0.25
    assert any(record.getMessage().startswith("canvas pacing") for record in canvas_log.records)


# -- 500s ----------------------------------------------------------------------------------------


def test_it_retries_idempotent_calls_through_500s(canvas_sim, make_client, student, canvas_log):
    canvas_sim.configure(error_rate=0.5)
    client = make_client(max_retries=12)

    users = [client.get_user(student["id"]) for _ in range(10)]

    assert [user["id"] for user in users] == [student["id"]] * 10
    assert any(record.canvas_status == 500 for record in canvas_log.attempts())


def test_it_never_retries_a_post_after_a_500(canvas_sim, admin, canvas_log):
    canvas_sim.configure(error_rate=1.0)
    email = f"{canvas_sim.unique('p')}@example.test"

    with pytest.raises(CanvasTransient) as caught:
        admin.create_observer(name="Five Hundred", email=email)

    assert caught.value.status == 500
    assert caught.value.may_have_happened is True
    assert len(canvas_log.attempts(method="POST")) == 1
    canvas_sim.configure(error_rate=0.0)
    assert admin.find_user_by_email(email) is None


def test_it_gives_up_on_a_put_after_its_retries(canvas_sim, make_client, parent, student, canvas_log):
    canvas_sim.configure(error_rate=1.0)

    with pytest.raises(CanvasTransient) as caught:
        make_client(max_retries=2).link(parent["id"], student["id"])

    assert caught.value.status == 500
    assert len(canvas_log.attempts(method="PUT")) == 3


# -- hangs: Canvas did the work, the answer never came -------------------------------------------


@pytest.fixture
def impatient(make_client):
    """A client that waits half a second for an answer, retrying idempotent calls once."""
    return make_client(timeout=(1.0, 0.5), max_retries=1)


def test_it_retries_a_hanging_get_then_raises_transient(canvas_sim, impatient, student, canvas_log):
    canvas_sim.configure(hang_rate=1.0, hang_seconds=2)

    started = time.monotonic()
    with pytest.raises(CanvasTransient) as caught:
        impatient.get_user(student["id"])

    assert time.monotonic() - started < 1.9
    assert caught.value.status is None
    assert "ReadTimeout" in caught.value.messages[0]
    assert len(canvas_log.attempts(method="GET")) == 2


def test_a_hanging_pairing_code_link_raises_once_and_the_link_did_happen(
    canvas_sim, impatient, admin, make_client, parent, student, canvas_log
):
    code = make_client(student["token"]).create_pairing_code("self")
    canvas_sim.configure(hang_rate=1.0, hang_seconds=2)

    with pytest.raises(CanvasTransient) as caught:
        impatient.link_with_pairing_code(parent["id"], code.code)

    assert caught.value.may_have_happened is True
    assert len(canvas_log.attempts(method="POST", contains="/observees")) == 1
    canvas_sim.configure(hang_rate=0.0)
    assert admin.show_observee(parent["id"], student["id"])["id"] == student["id"]
    with pytest.raises(CanvasInvalidPairingCode):  # a blind retry would have told the parent "bad code"
        admin.link_with_pairing_code(parent["id"], code.code)


def test_a_hanging_user_creation_raises_once_and_the_user_exists(canvas_sim, impatient, admin, canvas_log):
    email = f"{canvas_sim.unique('p')}@example.test"
    canvas_sim.configure(hang_rate=1.0, hang_seconds=2)

    with pytest.raises(CanvasTransient):
        impatient.create_observer(name="Slow Parent", email=email)

    assert len(canvas_log.attempts(method="POST")) == 1
    canvas_sim.configure(hang_rate=0.0)
    assert admin.find_user_by_email(email) is not None


def test_a_hanging_admin_link_is_retried_harmlessly(canvas_sim, impatient, admin, parent, student, canvas_log):
    canvas_sim.configure(hang_rate=1.0, hang_seconds=2)

    with pytest.raises(CanvasTransient):
        impatient.link(parent["id"], student["id"])

    assert len(canvas_log.attempts(method="PUT")) == 2
    canvas_sim.configure(hang_rate=0.0)
    assert [p["id"] for p in admin.list_observers(student["id"])] == [parent["id"]]


# -- refused connections: nothing was sent ------------------------------------------------------


def test_it_retries_even_a_post_when_the_connection_was_refused(canvas_log):
    client = CanvasClient(
        base_url=f"http://127.0.0.1:{free_port()}", token="any", max_retries=2, backoff_base=0.01, backoff_cap=0.05
    )

    with pytest.raises(CanvasTransient) as caught:
        client.create_pairing_code(1)

    assert caught.value.may_have_happened is False
    assert len(canvas_log.attempts(method="POST")) == 3
