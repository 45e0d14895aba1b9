"""Names and free text holding HTML or script render as text on every page that shows them.

One hostile world: every field a person, Canvas or an import file can fill holds markup that would run
if a template printed it raw, each field with its own marker (``alert("parent-name")``). A page passes
when a browser would see each marker only as text: no ``<script>`` running it, no element or attribute
the markup tried to add, and the whole value visible as the words it is (which also proves the page
shows the field at all). The same holds for the emails that carry these fields. CSV exports are in
test_csv_exports.py.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from linking.canvas import admin_client
from linking.models import (
    CodeEntryLockout,
    Course,
    Drift,
    LinkRequest,
    ObservationLink,
    PairingCode,
    ReconciliationRun,
)
from linking.services.codes import pairing_code_email_deliver
from linking.services.imports import import_run_check, import_run_create
from linking.services.notices import link_request_rejected_send, observation_link_revoked_send
from linking.services.people import student_upsert_from_canvas
from linking.services.review import link_request_reject, observation_link_revoke, pair_hold_create
from linking.services.staff import staff_invite_send, staff_member_create
from tests.staff.conftest import student_make

pytestmark = pytest.mark.usefixtures("fast_passwords")


def hostile(marker: str) -> str:
    """Markup that runs ``alert("marker")`` in four ways if printed raw: element, attribute break-outs, handler."""
    return f'<script>alert("{marker}")</script>"><img src=x onerror=alert("{marker}")>\'><svg onload=alert("{marker}")>'


def hostile_filename(marker: str) -> str:
    # An upload's name loses everything up to its last slash, so this one closes no tag.
    return f'"><img src=x onerror=alert("{marker}")>.csv'


def hostile_email(marker: str) -> str:
    # Spaces are taken out of an imported email address, so this one needs none.
    return f'<script>alert("{marker}")</script>"><svg/onload=alert("{marker}")>@example.com'


VARIANTS = (hostile, hostile_filename, hostile_email)


@dataclass
class Seen:
    """A page as a browser reads it: its text, and the markup our markers managed to become."""

    text: str = ""
    live: list[str] = field(default_factory=list)
    # Attribute values (a form field's value, say): shown, as long as the markup stayed inside them.
    values: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen = Seen()
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            self.seen.values.append(value or "")
            if name.startswith("on") and "alert(" in (value or ""):
                self.seen.live.append(f"<{tag} {name}={value}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.seen.live.append("<img src=x>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert(" in data:
            self.seen.live.append(f"<script>{data}</script>")
        else:
            self.seen.text += data


def read(html: str) -> Seen:
    reader = _Reader()
    reader.feed(html)
    return reader.seen


def markers_shown(seen: Seen) -> set[str]:
    return set(re.findall(r'alert\("([a-z-]+)"\)', seen.text))


def fully_shown(seen: Seen, marker: str) -> bool:
    return any(variant(marker) in where for where in (seen.text, *seen.values) for variant in VARIANTS)


def csv_file(*rows: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


# -- the hostile world ----------------------------------------------------------------------------
@dataclass
class World:
    parent: object
    student: object
    staff: object
    ids: dict


@pytest.fixture
def world(canvas_settings, staff, staff_admin, student, parent_a):  # noqa: F811 - the fixture
    """parent_a and the student renamed, and every other field filled, through the services that fill them."""
    staff_user = staff.user
    parent, kid = parent_a.parent, student.student
    parent.name = hostile("parent-name")
    parent.save(update_fields=["name"])
    # As Canvas names them when they sign in (Canvas lets a student edit their own display name).
    kid = student_upsert_from_canvas(canvas_user_id=kid.canvas_user_id, name=hostile("student-name"), user=kid.user)
    staff_member_create(email="new.staff@school.example", name=hostile("staff-name"), by=staff_admin.user)

    held = parent_a.own["request"]
    LinkRequest.objects.filter(pk=held.pk).update(student=kid)
    rejected = LinkRequest.objects.create(
        parent=parent, student=kid, code="ReJ123", state=LinkRequest.State.HELD, held_rule=LinkRequest.Rule.HOLD_ALL
    )
    link_request_reject(link_request=rejected, by=staff_user, reason=hostile("rejection-note"))
    revoked = ObservationLink.objects.create(
        parent=parent, student=kid, root_account_id=2, method=ObservationLink.Method.PAIRING_CODE
    )
    observation_link_revoke(link=revoked, by=staff_user, reason=hostile("revoke-reason"))
    ObservationLink.objects.filter(pk=revoked.pk).update(state=ObservationLink.State.REMOVED)
    other_student = student_make(hostile("held-student"), with_account=False)
    pair_hold_create(
        student=other_student, parent_email="held@example.com", reason=hostile("hold-reason"), by=staff_user
    )

    course = Course.objects.create(canvas_course_id=4242, name=hostile("course-name"))
    course.students.add(kid)

    run = ReconciliationRun.objects.create(state=ReconciliationRun.State.DONE, finished_at=timezone.now())
    Drift.objects.create(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        canvas_observer_id=880001,
        canvas_student_id=kid.canvas_user_id,
        observer_name=hostile("drift-observer"),
        student_name=hostile("drift-student"),
    )
    CodeEntryLockout.objects.create(
        scope=CodeEntryLockout.Scope.ACCOUNT,
        parent=parent,
        failures=10,
        until=timezone.now() + timedelta(hours=1),
    )

    content = csv_file(
        ["student_sis_id", "parent_email", "parent_first_name", "parent_last_name"],
        [hostile("import-student-key"), "first@example.com", hostile("import-first-name"), hostile("import-last-name")],
        ["S1002", hostile_email("import-email"), "Ann", "Lee"],
    )
    import_run = import_run_create(
        content=content, filename=hostile_filename("import-file"), source="upload", by=staff_user
    )
    import_run_check(run=import_run, canvas=admin_client())
    import_run.refresh_from_db()
    return World(
        parent=parent,
        student=kid,
        staff=staff_user,
        ids={
            "held": held.pk,
            "rejected": rejected.pk,
            "revoked": revoked.pk,
            "course": course.pk,
            "import_run": import_run.pk,
            "code": student.own["pairing_code"].pk,
        },
    )


def test_the_reader_sees_markup_printed_raw():
    """The check itself: had a template printed a field raw (``|safe``), the reader would have caught it."""
    for marker in ("a", "b"):
        raw = read(f"<p>{hostile(marker)}</p><p>{hostile_email(marker)}</p>")
        assert len(raw.live) >= 3 and not fully_shown(raw, marker)
    escaped = read(f'<p>{escape(hostile("a"))}</p><input value="{escape(hostile("b"))}">')
    assert escaped.live == [] and fully_shown(escaped, "a") and fully_shown(escaped, "b")


# -- pages ----------------------------------------------------------------------------------------
# (who looks, the page, the fields it must show). Each field's marker must be there as text.
PAGES = [
    ("parent_a", lambda w: reverse("parent_home"), {"student-name"}),
    ("parent_a", lambda w: reverse("parent_requests"), {"student-name"}),
    (
        "parent_a",
        lambda w: reverse(
            "link_remove", args=[ObservationLink.objects.filter(parent=w.parent, state="active").first().pk]
        ),
        {"student-name"},
    ),
    ("student", lambda w: reverse("student_home"), {"parent-name"}),
    ("student", lambda w: reverse("pairing_code_detail", args=[w.ids["code"]]), set()),
    ("student", lambda w: reverse("pairing_code_card", args=[w.ids["code"]]), {"student-name"}),
    ("staff", lambda w: reverse("staff_requests"), {"parent-name", "student-name", "course-name"}),
    (
        "staff",
        lambda w: reverse("staff_requests") + "?" + urlencode({"state": "rejected", "q": hostile("review-search")}),
        {"review-search", "course-name"},
    ),
    ("staff", lambda w: reverse("staff_request_detail", args=[w.ids["held"]]), {"parent-name", "student-name"}),
    (
        "staff",
        lambda w: reverse("staff_request_detail", args=[w.ids["rejected"]]),
        {"parent-name", "student-name", "rejection-note"},
    ),
    (
        "staff",
        lambda w: reverse(
            "staff_link_revoke", args=[ObservationLink.objects.filter(parent=w.parent, state="active").first().pk]
        ),
        {"parent-name", "student-name"},
    ),
    ("staff", lambda w: reverse("staff_holds"), {"held-student", "hold-reason"}),
    ("staff", lambda w: reverse("staff_hold_new"), set()),
    ("staff", lambda w: reverse("staff_lockouts"), {"parent-name"}),
    ("staff", lambda w: reverse("staff_letters"), {"course-name"}),
    ("staff", lambda w: reverse("staff_letters") + "?q=alert", {"student-name", "held-student", "course-name"}),
    ("staff", lambda w: reverse("staff_letters_student", args=[w.student.pk]), {"student-name"}),
    ("staff", lambda w: reverse("staff_letters_course", args=[w.ids["course"]]), {"student-name", "course-name"}),
    # The log's list shows ids, never personal data; what a visitor types into its filters comes back.
    (
        "staff",
        lambda w: (
            reverse("staff_audit")
            + "?"
            + urlencode({"action": hostile("audit-action"), "subject": hostile("audit-subject")})
        ),
        {"audit-action", "audit-subject"},
    ),
    ("staff", lambda w: reverse("staff_drift"), {"drift-observer", "drift-student"}),
    ("staff", lambda w: reverse("staff_imports"), {"import-file"}),
    (
        "staff",
        lambda w: reverse("staff_import_preview", args=[w.ids["import_run"]]),
        {"import-file", "import-student-key", "import-email"},
    ),
    ("staff", lambda w: reverse("staff_import_run", args=[w.ids["import_run"]]), {"import-file"}),
    ("staff_admin", lambda w: reverse("staff_accounts"), {"staff-name"}),
    ("site_admin", lambda w: reverse("admin:auth_user_changelist") + "?q=school.example", {"staff-name"}),
]


@pytest.mark.parametrize(("persona", "page", "fields"), PAGES, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(PAGES)])
def test_the_page_shows_hostile_fields_as_text(request, world, persona, page, fields):
    url = page(world)
    response = request.getfixturevalue(persona).client.get(url)
    # 400: a filter the page cannot use, explained on the page with the value as typed.
    assert response.status_code in {200, 400}, f"{url}: {response.status_code}"
    seen = read(response.content.decode())

    assert seen.live == [], f"{url} let markup through: {seen.live}"
    missing = [marker for marker in sorted(fields) if not fully_shown(seen, marker)]
    assert not missing, f"{url} does not show {missing} as text (it shows {sorted(markers_shown(seen))})"


# -- emails ---------------------------------------------------------------------------------------
def the_email_to(address: str):
    [message] = [message for message in mail.outbox if message.to == [address]]
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    return message, html


EMAILS = [
    (
        "the decline",
        lambda w: link_request_rejected_send(link_request=LinkRequest.objects.get(pk=w.ids["rejected"])),
        "maria.garcia@example.com",
        {"rejection-note"},
    ),
    (
        "the revoke",
        lambda w: observation_link_revoked_send(link=ObservationLink.objects.get(pk=w.ids["revoked"])),
        "maria.garcia@example.com",
        {"student-name", "revoke-reason"},
    ),
    (
        "the code",
        lambda w: pairing_code_email_deliver(
            pairing_code=PairingCode.objects.get(pk=w.ids["code"]), to="mum@example.com"
        ),
        "mum@example.com",
        {"student-name"},
    ),
    (
        "the staff invite",
        lambda w: staff_invite_send(user=get_user_model().objects.get(email="new.staff@school.example")),
        "new.staff@school.example",
        {"staff-name"},
    ),
]


@pytest.mark.parametrize(("what", "send", "to", "fields"), EMAILS, ids=[what for what, *_ in EMAILS])
def test_the_email_shows_hostile_fields_as_text(world, what, send, to, fields):
    mail.outbox.clear()
    send(world)
    message, html = the_email_to(to)
    seen = read(html)

    assert seen.live == [], f"{what} email let markup through: {seen.live}"
    missing = [marker for marker in sorted(fields) if not fully_shown(seen, marker)]
    assert not missing, f"{what} email does not show {missing} as text"
    assert "\n" not in message.subject
