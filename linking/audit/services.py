"""Recording audit events and checking their hash chain.

Every event carries ``prev_hash``, the ``hash`` of the event before it (``GENESIS`` for the first), and
its own ``hash``: sha256 of the canonical JSON (sorted keys, no whitespace) of ``created_at`` (UTC, ISO
8601 with microseconds), ``actor_id``, ``actor_label``, ``action``, ``subject``, ``canvas_calls``,
``outcome``, ``data``, ``personal_digest`` and ``prev_hash``. ``id`` only orders the chain.

Personal data (names, emails, free text) goes in ``personal`` and enters the hash only through
``personal_digest``, sha256 of its canonical JSON. A non-empty ``personal`` also holds a random
``_salt``, so that once ``personal`` is blanked nobody can confirm a guessed email against the digest.

Anonymisation (:func:`audit_personal_data_anonymise`, run nightly under ``LinkPolicy.retention_days``)
sets ``personal = {}`` on old events, keeping ``personal_digest``; the triggers allow exactly that one
UPDATE (migration 0003), and :func:`audit_chain_verify` accepts an empty ``personal`` whose digest
differs as "anonymised". Any other mismatch between ``personal`` and its digest is a break.

The chain alone cannot show that its newest events were deleted, nor that the whole chain was
recomputed by someone who can write to the database. Anchors can: an :class:`Anchor` is an event's id
and hash copied somewhere the database's users cannot rewrite (``verify_audit`` prints the head; a
nightly task, :func:`audit_anchor_write`, logs it and appends it to ``AUDIT_ANCHOR_FILE``). Verifying
with anchors fails when an anchored event is missing or its hash differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from linking.canvas.redaction import redact
from linking.models import LinkRequest

from .models import AuditEvent

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
SALT_KEY = "_salt"
# Any number works as long as nothing else in the database takes this advisory lock.
POSTGRESQL_CHAIN_LOCK = 0x6175646974  # "audit"

SECRET_KEYS = frozenset(
    {
        "access_token",
        "api_key",
        "client_secret",
        "code",
        "pairing_code",
        "passcode",
        "password",
        "refresh_token",
        "secret",
        "token",
    }
)
SECRET_SUFFIXES = ("_token", "_secret", "_password")
CANVAS_CALL_KEYS = frozenset({"method", "path", "status", "outcome"})
ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
OUTCOME = re.compile(r"[a-z][a-z0-9_]*")

VERIFIED = "audit.verified"
ANONYMISED = "audit.anonymised"
EXPORTED = "audit.exported"
CLOSED_LINK_REQUEST_STATES = (LinkRequest.State.LINKED, LinkRequest.State.FAILED, LinkRequest.State.REJECTED)
# Link request ids per query: well under SQLite's limit on bound parameters.
ANONYMISE_BATCH = 500


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def personal_digest(personal: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(personal))


def event_hash(event: AuditEvent) -> str:
    """The hash ``event`` must carry, given its stored fields."""
    payload = {
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "subject": event.subject,
        "canvas_calls": event.canvas_calls,
        "outcome": event.outcome,
        "data": event.data,
        "personal_digest": event.personal_digest,
        "prev_hash": event.prev_hash,
    }
    return sha256_hex(canonical_json(payload))


def _is_secret_key(key: str) -> bool:
    name = key.lower()
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def _plain(value: Any, where: str) -> Any:
    """``value`` as the JSON the database will give back, or ValueError if it cannot be audited."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if redact(value) != value:
            raise ValueError(f"{where} looks like it holds a secret; audit events never hold tokens or codes")
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float):
        # Databases print some floats differently from Python (jsonb: 1e+20 -> 100000000000000000000).
        raise ValueError(f"{where} is a float; store it as a string so the hash survives the database")
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key that is not a string: {key!r}")
            if _is_secret_key(key):
                raise ValueError(f"{where}.{key} looks like a secret; audit events never hold tokens or codes")
            plain[key] = _plain(item, f"{where}.{key}")
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{where} is a {type(value).__name__}; audit events hold JSON values only")


def _subject(subject: Mapping[str, Any]) -> dict:
    plain = _plain(subject, "subject")
    for key, value in plain.items():
        if isinstance(value, bool) or not isinstance(value, int | str) or len(str(value)) > 100:
            raise ValueError(f"subject.{key} must be an id (a number, UUID or short string), not {value!r}")
    return plain


def _canvas_calls(calls: Iterable[Mapping[str, Any]]) -> list[dict]:
    plain = _plain(list(calls), "canvas_calls")
    for index, call in enumerate(plain):
        if not isinstance(call, dict) or not {"method", "path"} <= call.keys() <= CANVAS_CALL_KEYS:
            raise ValueError(f"canvas_calls[{index}] must be {{method, path, status, outcome}}, not {call!r}")
    return plain


def _personal(personal: Mapping[str, Any] | None) -> dict:
    plain = _plain(personal or {}, "personal")
    if SALT_KEY in plain:
        raise ValueError(f"personal.{SALT_KEY} is reserved")
    return {**plain, SALT_KEY: secrets.token_hex(16)} if plain else {}


def _lock_chain_head() -> None:
    """Serialise appends until this transaction ends, so two events never chain to the same one.

    PostgreSQL: an advisory lock. SQLite allows one writer at a time and its transactions are
    serializable, so a stale read cannot commit there (set ``transaction_mode`` to IMMEDIATE so
    concurrent writers wait instead of failing with "database is locked"). On both, the unique
    ``prev_hash`` turns any fork into an IntegrityError.
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [POSTGRESQL_CHAIN_LOCK])


def audit_event_record(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str,
    subject: Mapping[str, Any],
    outcome: str = "ok",
    canvas_calls: Iterable[Mapping[str, Any]] = (),
    data: Mapping[str, Any] | None = None,
    personal: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the audit chain, inside the caller's transaction.

    Call it within the ``transaction.atomic()`` that makes the change, as late as possible: on
    PostgreSQL it holds the chain lock until that transaction ends. ``subject`` holds ids only,
    ``data`` non-personal detail, ``personal`` names, emails and free text; ``canvas_calls`` is what
    :func:`linking.canvas.record_canvas_calls` collected. Raises RuntimeError outside a transaction
    and ValueError for a value that looks like a secret (a key such as ``token`` or ``code``, a bearer
    token or ``password=`` in a string), a float, or a malformed action, outcome or actor label.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_event_record must run inside the transaction.atomic() of the change it records")
    if not ACTION.fullmatch(action) or len(action) > 64:
        raise ValueError(f"action must be dotted lowercase words such as 'link.created', not {action!r}")
    if not OUTCOME.fullmatch(outcome) or len(outcome) > 32:
        raise ValueError(f"outcome must be a lowercase word such as 'ok' or 'invalid_code', not {outcome!r}")
    if actor_label not in AuditEvent.ActorLabel.values:
        raise ValueError(f"actor_label must be one of {AuditEvent.ActorLabel.values}, not {actor_label!r}")
    personal = _personal(personal)
    event = AuditEvent(
        actor_id=actor.pk if actor is not None else None,
        actor_label=actor_label,
        action=action,
        subject=_subject(subject),
        canvas_calls=_canvas_calls(canvas_calls),
        outcome=outcome,
        data=_plain(data or {}, "data"),
        personal=personal,
        personal_digest=personal_digest(personal),
    )
    _lock_chain_head()
    event.prev_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
    event.created_at = timezone.now()
    event.hash = event_hash(event)
    event.save()
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str = ""
    anonymised: int = 0
    anchors: int = 0  # how many anchors were compared


@dataclass(frozen=True)
class Anchor:
    """One event's id and hash as copied outside the database, written ``SEQ:HASH``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        seq, _, digest = text.strip().partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"an anchor is SEQ:HASH (an event id, a colon, 64 hex digits), not {text.strip()!r}")
        return cls(int(seq), digest)


def audit_chain_verify(*, anchors: Iterable[Anchor] = ()) -> VerifyResult:
    """Walk the chain in id order and report the first event that does not fit.

    Detects an edited field or hash (the event's hash no longer matches its contents), edited
    personal data (no longer matches ``personal_digest``), and a deleted, inserted or reordered event
    (``prev_hash`` is not the hash of the event before). An empty ``personal`` under the digest of a
    non-empty one is an anonymised event, not a break; any other ``personal`` must match its digest.
    The chain alone cannot show that its newest events were removed or that it was recomputed from
    some event on; ``anchors`` (copies kept outside the database) can: an anchored event that is
    missing, or whose hash differs from the copy, is a break.
    """
    anchored: dict[int, set[str]] = {}
    for anchor in anchors:
        anchored.setdefault(anchor.seq, set()).add(anchor.hash)
    anchor_count = len(anchored)
    expected_prev, previous_id, checked, anonymised = GENESIS, None, 0, 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        checked += 1
        reason = ""
        digest_differs = personal_digest(event.personal) != event.personal_digest
        # Anonymisation blanks personal to {} and keeps the digest of what it held.
        blanked = digest_differs and event.personal == {}
        if digest_differs and not blanked:
            reason = "its personal data does not match personal_digest"
        elif event_hash(event) != event.hash:
            reason = "its contents do not match its hash (edited)"
        elif event.prev_hash != expected_prev:
            after = f"event {previous_id}" if previous_id is not None else "the start of the chain"
            reason = f"it does not follow {after} (an event was deleted, inserted or reordered)"
        elif anchored.pop(event.pk, {event.hash}) != {event.hash}:
            reason = "its hash differs from the anchor kept outside the database (the chain was rewritten)"
        if reason:
            return VerifyResult(
                ok=False,
                checked=checked,
                first_broken_id=event.pk,
                reason=reason,
                anonymised=anonymised,
                anchors=anchor_count,
            )
        expected_prev, previous_id, anonymised = event.hash, event.pk, anonymised + blanked
    if anchored:
        seq = min(anchored)
        if previous_id is None or seq > previous_id:
            ends = f"event {previous_id}" if previous_id is not None else "no event at all"
            reason = f"the log ends at {ends} but event {seq} was anchored (the newest events were deleted)"
        else:
            reason = f"anchored event {seq} is missing (it was deleted and the chain rebuilt around it)"
        return VerifyResult(
            ok=False, checked=checked, first_broken_id=seq, reason=reason, anonymised=anonymised, anchors=anchor_count
        )
    return VerifyResult(ok=True, checked=checked, anonymised=anonymised, anchors=anchor_count)


def audit_chain_head() -> Anchor | None:
    """The newest event as an anchor, or None for an empty log."""
    head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    return Anchor(*head) if head else None


def audit_anchors_read(path: str | Path) -> list[Anchor]:
    """The anchors in ``path``: one a line, ``SEQ:HASH`` last on the line (a timestamp may come first).

    A file that does not exist yet holds none (the first night has not come); a line that is not an
    anchor raises ValueError rather than being skipped, since a garbled file must not pass quietly.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [Anchor.parse(line.split()[-1]) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def audit_anchor_write() -> Anchor | None:
    """Copy the chain's head out of the database: a log line, and a line appended to ``AUDIT_ANCHOR_FILE``.

    The nightly beat task. The log line reaches whatever keeps the logs (another machine, usually);
    the file should live where the database's users cannot rewrite it (another host, or storage that
    only appends). ``verify_audit`` and the staff check then compare every anchor in the file.
    """
    head = audit_chain_head()
    if head is None:
        return None
    logger.info("audit anchor %s", head)
    if settings.AUDIT_ANCHOR_FILE:
        with open(settings.AUDIT_ANCHOR_FILE, "a", encoding="utf-8") as anchors:
            anchors.write(f"{timezone.now().isoformat(timespec='seconds')} {head}\n")
    return head


def audit_chain_check(
    *, actor: AbstractBaseUser | None = None, actor_label: str, anchors: Iterable[Anchor] | None = None
) -> VerifyResult:
    """Verify the chain and record the result as an ``audit.verified`` event (outcome ``ok`` or ``broken``).

    The newest ``audit.verified`` event is the "last check" the staff audit page shows; staff (the
    verify button) and ``manage.py verify_audit`` both come through here. ``anchors`` defaults to those
    in ``AUDIT_ANCHOR_FILE`` (none when it is not set).
    """
    if anchors is None:
        anchors = audit_anchors_read(settings.AUDIT_ANCHOR_FILE) if settings.AUDIT_ANCHOR_FILE else []
    result = audit_chain_verify(anchors=anchors)
    with transaction.atomic():
        audit_event_record(
            action=VERIFIED,
            actor=actor,
            actor_label=actor_label,
            subject={},
            outcome="ok" if result.ok else "broken",
            data={
                "checked": result.checked,
                "first_broken_id": result.first_broken_id,
                "reason": result.reason,
                "anonymised": result.anonymised,
                **({"anchors": result.anchors} if result.anchors else {}),
            },
        )
    return result


def audit_export_record(*, actor: AbstractBaseUser, filters: Mapping[str, Any]) -> int:
    """Record that ``actor`` exported the events matching ``filters``; returns the newest id the export covers.

    The export streams after this returns, so it is bounded by that id: the ``audit.exported`` event
    says exactly which rows left the portal, and new events (this one included) stay out of it.
    """
    with transaction.atomic():
        up_to_id = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        audit_event_record(
            action=EXPORTED,
            actor=actor,
            actor_label=AuditEvent.ActorLabel.STAFF,
            subject={},
            data={"filters": dict(filters), "up_to_id": up_to_id},
        )
    return up_to_id


# -- retention ------------------------------------------------------------------------------------
def _uuid_strings(values: Iterable[Any]) -> list[str]:
    ids = []
    for value in values:
        try:
            ids.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue  # not a link request id this portal made; nothing to match
    return ids


def _closed_link_request_ids(candidate_ids: list[str], *, before) -> set[str]:
    closed = (
        LinkRequest.objects.filter(pk__in=candidate_ids, state__in=CLOSED_LINK_REQUEST_STATES)
        # A rejection may not stamp finished_at; the closing save did touch updated_at.
        .filter(Q(finished_at__lt=before) | Q(finished_at__isnull=True, updated_at__lt=before))
        .values_list("pk", flat=True)
    )
    return {str(pk) for pk in closed}


def audit_personal_data_anonymise(*, older_than_days: int) -> int:
    """Blank the personal data of events about link requests closed more than ``older_than_days`` ago.

    An event is anonymised when it is itself older than that and its ``subject.link_request`` is a
    request that ended (linked, failed or rejected) before the cut-off; events of open or recently
    closed requests keep their personal data. ``personal_digest`` stays, so :func:`audit_chain_verify`
    still passes. Records an ``audit.anonymised`` event with the count, and returns the count.
    """
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be 0 or more, not {older_than_days!r}")
    before = timezone.now() - timedelta(days=older_than_days)
    candidates = AuditEvent.objects.filter(created_at__lt=before, subject__has_key="link_request").exclude(personal={})
    request_ids = _uuid_strings(candidates.order_by().values_list("subject__link_request", flat=True).distinct())
    count = 0
    with transaction.atomic():
        for start in range(0, len(request_ids), ANONYMISE_BATCH):
            closed = _closed_link_request_ids(request_ids[start : start + ANONYMISE_BATCH], before=before)
            if closed:
                count += candidates.filter(subject__link_request__in=sorted(closed)).anonymise()
        audit_event_record(
            action=ANONYMISED,
            actor_label=AuditEvent.ActorLabel.SYSTEM,
            subject={},
            data={"count": count, "older_than_days": older_than_days},
        )
    return count
