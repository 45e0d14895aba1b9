"""Read-side queries for the staff console: what a page lists, fetched in a fixed number of queries.

Writes live in ``linking.services``; these functions only read, and return querysets or lists the
views can hand straight to a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from linking.audit.models import AuditEvent
from linking.models import Course, LinkRequest, PairHold, Parent, Student

# What a list may be sorted by (the key is what the URL carries), newest first unless asked otherwise.
REVIEW_SORTS = {
    "created": "created_at",
    "state": "state",
    "parent": "parent__name",
    "student": "student__name",
}
DEFAULT_REVIEW_SORT = "-created"


@dataclass(frozen=True)
class ReviewFilters:
    """What staff narrowed the review list to; empty values do not narrow."""

    state: str = ""
    created_from: date | None = None
    created_to: date | None = None
    course: Course | None = None
    school: int | None = None
    held_rule: str = ""
    q: str = ""
    sort: str = DEFAULT_REVIEW_SORT


def link_requests_for_review(filters: ReviewFilters) -> QuerySet[LinkRequest]:
    """Link requests matching ``filters``, with everything a list row shows joined in (one query a page)."""
    requests = LinkRequest.objects.select_related("parent__user", "student", "reviewed_by")
    if filters.state:
        requests = requests.filter(state=filters.state)
    # Bounds on the column itself rather than on its date, so that the index on created_at serves them.
    # The first and last days a date can hold bound nothing (and the day after the last has no date).
    if filters.created_from and filters.created_from > date.min:
        requests = requests.filter(created_at__gte=_day_start(filters.created_from))
    if filters.created_to and filters.created_to < date.max:
        requests = requests.filter(created_at__lt=_day_start(filters.created_to + timedelta(days=1)))
    # A subquery, not a join through the M2M: a student in two of a school's courses is still one row.
    if filters.course is not None:
        requests = requests.filter(student__in=Student.objects.filter(courses=filters.course))
    if filters.school is not None:
        requests = requests.filter(student__in=Student.objects.filter(courses__account_id=filters.school))
    if filters.held_rule:
        requests = requests.filter(held_rule=filters.held_rule)
    if filters.q:
        requests = requests.filter(_matching(filters.q.strip()))
    return requests.order_by(*_ordering(filters.sort))


def _day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the school's time zone, the day staff mean."""
    return timezone.make_aware(datetime.combine(day, time.min))


# A search that matches more people than this (a letter or two) leaves them to a subquery; below it, the
# ids go to PostgreSQL as a list, which the foreign keys' indexes serve.
MATCHES_LISTED = 10_000


def _matching(text: str) -> Q:
    """Requests whose student (name, SIS id) or parent (name, email) contains ``text``.

    The students and the parents who match are found first, each table on its own (where PostgreSQL's
    trigram indexes, migration 0010, serve it), and their requests then through the foreign keys' indexes:
    a condition on two joined tables at once would read every request. The student stays unknown until
    the code is redeemed; those requests match on the parent only.
    """
    students = Student.objects.filter(Q(name__icontains=text) | Q(sis_user_id__icontains=text))
    emails = get_user_model().objects.filter(email__icontains=text)
    parents = Parent.objects.filter(Q(name__icontains=text) | Q(user__in=emails))
    return _among("student", students) | _among("parent", parents)


def _among(field: str, people: QuerySet) -> Q:
    ids = list(people.values_list("pk", flat=True)[: MATCHES_LISTED + 1])
    return Q(**{f"{field}__in": people}) if len(ids) > MATCHES_LISTED else Q(**{f"{field}_id__in": ids})


def _ordering(sort: str) -> list[str]:
    descending = sort.startswith("-")
    field = REVIEW_SORTS.get(sort.lstrip("-"))
    if field is None:
        return ["-created_at", "-id"]
    # Ties broken by age then id, so a page boundary never shows a row twice or skips one.
    return [f"-{field}" if descending else field, "-created_at", "-id"]


def review_schools() -> list[int]:
    """The Canvas account ids (schools) of the courses the portal knows, for the school filter."""
    return list(
        Course.objects.exclude(account_id__isnull=True)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()
    )


def link_request_timeline(link_request: LinkRequest) -> list[AuditEvent]:
    """Every audit event about ``link_request`` and the links it made, oldest first.

    Events name their subjects by id in JSON; these lookups work on SQLite and PostgreSQL alike.
    """
    about_request = Q(subject__link_request=str(link_request.pk))
    link_ids = [str(pk) for pk in link_request.observation_links.values_list("pk", flat=True)]
    if link_ids:
        about_request |= Q(subject__observation_link__in=link_ids)
    # The chain's order (id) is the order events were recorded in.
    return list(AuditEvent.objects.filter(about_request).order_by("id"))


# Lifted holds are history: the newest of them are shown, the rest are in the audit log.
LIFTED_HOLDS_SHOWN = 50


def pair_holds_for_review() -> tuple[list[PairHold], list[PairHold]]:
    """Every active hold, then the newest lifted ones, each newest first, with the people a row names."""
    holds = PairHold.objects.select_related("student", "created_by", "lifted_by").order_by("-created_at")
    active = list(holds.filter(lifted_at__isnull=True))
    return active, list(holds.filter(lifted_at__isnull=False)[:LIFTED_HOLDS_SHOWN])
