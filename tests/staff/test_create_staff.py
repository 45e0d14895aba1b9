"""``manage.py create_staff EMAIL [--admin] [--name NAME]``."""

from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command

from linking.audit.models import AuditEvent
from linking.services.staff import staff_role
from linking.staff.access import MANAGE, REVIEW
from tests.staff.conftest import parent_make


def create_staff(*args) -> str:
    out = StringIO()
    call_command("create_staff", *args, stdout=out)
    return out.getvalue()


def test_it_creates_school_staff_who_sign_in_by_emailed_code(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = create_staff("Sam.Staff@School.example", "--name", "Sam Staff")
    user = get_user_model().objects.get(email="sam.staff@school.example")
    assert user.username == "sam.staff@school.example"
    assert user.get_full_name() == "Sam Staff"
    assert not user.has_usable_password()
    assert user.has_perm(REVIEW) and not user.has_perm(MANAGE)
    assert EmailAddress.objects.filter(user=user, email=user.email, verified=True, primary=True).exists()
    assert "Created sam.staff@school.example, school staff." in output
    assert "/accounts/login/code/" in output and "Forgot your password?" in output
    assert "authenticator app" in output
    [invite] = mail.outbox
    assert invite.to == ["sam.staff@school.example"]
    assert "/accounts/login/code/" in invite.body and "authenticator app" in invite.body
    assert invite.alternatives[0][1] == "text/html"


def test_it_makes_a_staff_admin(db):
    create_staff("alex.admin@school.example", "--admin")
    user = get_user_model().objects.get(email="alex.admin@school.example")
    assert user.has_perm(REVIEW) and user.has_perm(MANAGE)
    assert staff_role(user) == "admin"


def test_it_changes_nothing_when_run_twice(db):
    create_staff("sam.staff@school.example")
    events = AuditEvent.objects.count()
    output = create_staff("sam.staff@school.example")
    assert "already school staff; nothing changed" in output
    assert get_user_model().objects.filter(email="sam.staff@school.example").count() == 1
    assert EmailAddress.objects.filter(email="sam.staff@school.example").count() == 1
    assert AuditEvent.objects.count() == events


def test_it_sets_the_role_given(db):
    create_staff("alex@school.example", "--admin")
    output = create_staff("alex@school.example")
    assert "now school staff (was a staff admin)" in output
    assert staff_role(get_user_model().objects.get(email="alex@school.example")) == "staff"


def test_it_makes_an_existing_account_staff_and_keeps_its_password(db):
    parent = parent_make("teacher@school.example", "Terry Teacher")
    output = create_staff("teacher@school.example")
    parent.user.refresh_from_db()
    assert parent.user.has_usable_password()
    assert staff_role(parent.user) == "staff"
    assert "existing account" in output and "with their password" in output


def test_it_records_an_audit_event_without_the_email_in_its_subject(db):
    create_staff("sam.staff@school.example", "--name", "Sam Staff")
    event = AuditEvent.objects.get(action="staff_member.created")
    user = get_user_model().objects.get(email="sam.staff@school.example")
    assert event.subject == {"user": user.pk}
    assert event.actor_label == "system" and event.actor_id is None
    assert event.data["role"] == "staff"
    assert event.personal["email"] == "sam.staff@school.example"


@pytest.mark.parametrize("email", ["not-an-email", "", "two@@example.com"])
def test_it_refuses_a_bad_email(db, email):
    with pytest.raises(CommandError, match="is not an email address"):
        create_staff(email)
    assert not get_user_model().objects.exists()
