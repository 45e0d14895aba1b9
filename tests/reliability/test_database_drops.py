"""PostgreSQL drops the portal's connections (``pg_terminate_backend``, as a restart, a failover or an
operator would): pages answer a clean 503 and the next request works, an interrupted form leaves
nothing half-written, and the worker retries what was cut short until every request is linked."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.models import LinkRequest
from portal.database import close_broken_connections, database_unavailable
from tests.reliability.conftest import WORKER_APPLICATION, submit, terminate_backends, wait_until_finished
from tests.reliability.counting import assert_nothing_lost_or_duplicated, tally


def own_backend() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def assert_clean_503(response) -> None:
    page = response.content.decode()
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "try again in a minute" in page
    assert '<a class="brand"' in page  # the site's own layout
    for leak in ("Traceback", "OperationalError", "InterfaceError", "psycopg", "terminating connection"):
        assert leak not in page


def test_only_errors_that_mean_the_server_is_gone_count_as_the_database_unavailable(services):
    with pytest.raises(OperationalError) as cancelled, connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    assert not database_unavailable(cancelled.value)  # not an outage: a 500 page, and a task retried 8 times
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")

    terminate_backends("pid = %s", own_backend())
    with pytest.raises(OperationalError) as dropped, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert database_unavailable(dropped.value)
    close_broken_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


# -- pages ----------------------------------------------------------------------------------------
def test_a_page_hit_after_the_connection_dropped_answers_503_and_the_next_one_works(families):
    # The test client's requests share this process's connection, as a web process's do with CONN_MAX_AGE
    # (or as a request in flight does): the request that meets the dropped connection is the one that fails.
    # It meets it in a middleware (the saved language reads the session), which Django signals as well as
    # answering: the test client would raise what production answers with the 503.
    client = Client(raise_request_exception=False)
    client.force_login(families.parent().user)
    assert client.get(reverse("parent_home")).status_code == 200

    assert terminate_backends("pid = %s", own_backend()) == 1
    assert_clean_503(client.get(reverse("parent_home")))
    assert client.get(reverse("parent_home")).status_code == 200


def test_a_middleware_meeting_the_dropped_connection_answers_503_too(families):
    # The staff area's second-factor check reads the user before any view runs.
    client = Client(raise_request_exception=False)
    client.force_login(families.parent().user)

    terminate_backends("pid = %s", own_backend())
    assert_clean_503(client.get(reverse("staff_home")))
    assert client.get(reverse("parent_home")).status_code == 200


def test_a_form_cut_off_mid_transaction_leaves_nothing_half_written(families, workers, sim):
    parent, student = families.parent(), families.student()
    code = families.code_for(student)
    client = Client()
    client.force_login(parent.user)
    client.get(reverse("parent_home"))

    def drop_after_the_request_row(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "linking_linkrequest"'):
            # The request's row is written; its audit event, in the same transaction, is next.
            terminate_backends("pid = %s", context["connection"].connection.info.backend_pid)
        return result

    with connection.execute_wrapper(drop_after_the_request_row):
        assert_clean_503(client.post(reverse("add_child"), {"codes": code}))
    assert not LinkRequest.objects.filter(parent=parent).exists()
    assert not AuditEvent.objects.filter(action="link_request.submitted").exists()

    workers.start()
    assert client.post(reverse("add_child"), {"codes": code}).status_code == 302
    [request] = LinkRequest.objects.filter(parent=parent)
    assert AuditEvent.objects.filter(action="link_request.submitted").count() == 1
    wait_until_finished([request])
    assert_nothing_lost_or_duplicated(tally("PostgreSQL drops a form's connection mid-transaction", sim, [request]))


# -- the worker -----------------------------------------------------------------------------------
def test_the_worker_retries_what_dropped_connections_cut_short_until_every_request_is_linked(families, workers, sim):
    pairs = [(families.parent(), families.student()) for _ in range(8)]
    pairs += [(families.parent(in_canvas=True), families.student()) for _ in range(8)]
    codes = [families.code_for(student) for _, student in pairs]
    # Canvas calls take a while, so that connections drop in the middle of tasks, not between them.
    sim.configure(latency_ms=150)
    worker = workers.start(CANVAS_TIMEOUT_READ="5")
    requests = [request for (parent, _), code in zip(pairs, codes, strict=True) for request in submit(parent, code)]

    dropped = 0
    while (
        dropped < 12
        and LinkRequest.objects.filter(pk__in=[r.pk for r in requests], state__in=LinkRequest.OPEN_STATES).exists()
    ):
        dropped += terminate_backends("application_name = %s", WORKER_APPLICATION)
        time.sleep(0.3)
    sim.reset()
    wait_until_finished(requests, timeout=60)

    result = tally("PostgreSQL drops the worker's connections", sim, requests)
    assert_nothing_lost_or_duplicated(result)
    cut_short = worker.lines(r"the database is unavailable")
    assert cut_short, "no task met a dropped connection: drop them more often"
    assert not worker.lines(r"failed unexpectedly")
    print(f"{dropped} worker connections dropped; {len(cut_short)} tasks cut short and retried")
