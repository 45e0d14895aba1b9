import json
import threading

import pytest
from django.db import transaction

from linking.audit.services import audit_event_record
from linking.canvas import CanvasClient, CanvasNotFound, record_canvas_calls


@pytest.fixture
def client(canvas_sim) -> CanvasClient:
    return CanvasClient(base_url=canvas_sim.base_url, token=canvas_sim.admin_token, timeout=(2.0, 5.0))


def test_it_records_each_call_without_the_token(canvas_sim, client):
    with record_canvas_calls() as calls:
        client.get_user("self")
    assert calls == [{"method": "GET", "path": "/api/v1/users/self", "status": 200, "outcome": "ok"}]
    assert canvas_sim.admin_token not in json.dumps(calls)


def test_it_records_a_call_that_failed(client):
    with record_canvas_calls() as calls, pytest.raises(CanvasNotFound):
        client.get_user(987654321)
    assert calls == [{"method": "GET", "path": "/api/v1/users/987654321", "status": 404, "outcome": "CanvasNotFound"}]


def test_nested_recorders_both_get_the_calls_made_inside_them(client):
    with record_canvas_calls() as outer:
        client.get_user("self")
        with record_canvas_calls() as inner:
            client.get_user("self")
        client.get_user("self")
    assert len(outer) == 3
    assert len(inner) == 1


def test_it_keeps_nothing_outside_a_recorder_or_from_another_thread(client):
    client.get_user("self")  # nobody is recording: nothing to keep
    with record_canvas_calls() as calls:
        worker = threading.Thread(target=client.get_user, args=("self",))
        worker.start()
        worker.join()
    assert calls == []


def test_recorded_calls_go_into_the_audit_event(canvas_sim, client, db):
    with transaction.atomic():
        with record_canvas_calls() as calls:
            me = client.get_user("self")
        event = audit_event_record(
            action="canvas.checked", actor_label="system", subject={"canvas_user": me["id"]}, canvas_calls=calls
        )
    assert event.canvas_calls == [{"method": "GET", "path": "/api/v1/users/self", "status": 200, "outcome": "ok"}]
    assert canvas_sim.admin_token not in json.dumps(event.canvas_calls)
