import threading

import pytest
from django.db import connections, transaction

from linking.audit.models import AuditEvent
from linking.audit.services import GENESIS, audit_chain_verify, audit_event_record
from tests.conftest import database_is_postgresql

pytestmark = pytest.mark.services

THREADS, EVENTS_EACH = 8, 10


@pytest.mark.skipif(not database_is_postgresql(), reason="SQLite allows one writer at a time anyway")
def test_concurrent_writers_build_one_unbroken_chain(transactional_db):
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for number in range(EVENTS_EACH):
                with transaction.atomic():
                    audit_event_record(
                        action="link.created", actor_label="worker", subject={"worker": worker, "number": number}
                    )
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    hashes = list(AuditEvent.objects.order_by("id").values_list("prev_hash", "hash"))
    assert len(hashes) == THREADS * EVENTS_EACH
    assert [prev for prev, _ in hashes] == [GENESIS] + [own for _, own in hashes[:-1]]
    assert audit_chain_verify().ok
