"""/staff/people/: a staff admin lists, adds and removes staff."""

from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.services.staff import staff_role


def test_it_lists_staff_with_their_role_and_app(staff, staff_admin, parent_a, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = staff_admin.client.get(reverse("staff_accounts"))
    page = response.content.decode()
    assert staff.user.email in page and staff_admin.user.email in page
    assert parent_a.user.email not in page
    assert "Set up" in page


def test_it_adds_a_staff_member_and_emails_them(staff_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_admin.client.post(
            reverse("staff_account_new"), {"email": "new.teacher@school.example", "name": "Nia New", "role": "staff"}
        )
    assert response["Location"] == reverse("staff_accounts")
    user = get_user_model().objects.get(email="new.teacher@school.example")
    assert staff_role(user) == "staff"
    assert [m.to for m in mail.outbox] == [["new.teacher@school.example"]]
    event = AuditEvent.objects.get(action="staff_member.created", subject={"user": user.pk})
    assert event.actor_id == staff_admin.user.pk


def test_it_adds_a_staff_admin(staff_admin):
    staff_admin.client.post(
        reverse("staff_account_new"), {"email": "second.admin@school.example", "name": "Sy Second", "role": "admin"}
    )
    assert staff_role(get_user_model().objects.get(email="second.admin@school.example")) == "admin"


def test_it_shows_the_form_again_for_a_bad_email(staff_admin):
    response = staff_admin.client.post(reverse("staff_account_new"), {"email": "nope", "name": "X", "role": "staff"})
    assert response.status_code == 400
    assert not get_user_model().objects.filter(email="nope").exists()


def test_it_removes_a_staff_member(staff, staff_admin):
    response = staff_admin.client.post(reverse("staff_account_remove", args=[staff.user.pk]))
    assert response["Location"] == reverse("staff_accounts")
    assert staff_role(staff.user) == ""
    assert AuditEvent.objects.filter(action="staff_member.removed", subject={"user": staff.user.pk}).exists()
    # Their open session no longer opens staff pages.
    assert staff.client.get(reverse("staff_home")).status_code == 403


def test_it_does_not_let_a_staff_admin_remove_themselves(staff_admin):
    response = staff_admin.client.post(reverse("staff_account_remove", args=[staff_admin.user.pk]), follow=True)
    assert "cannot remove yourself" in response.content.decode()
    assert staff_role(staff_admin.user) == "admin"


def test_it_finds_no_staff_member_who_is_not_staff(staff_admin, parent_a):
    response = staff_admin.client.post(reverse("staff_account_remove", args=[parent_a.user.pk]))
    assert response.status_code == 404


def test_school_staff_cannot_manage_staff(staff, staff_admin):
    assert staff.client.get(reverse("staff_accounts")).status_code == 403
    assert staff.client.post(reverse("staff_account_remove", args=[staff_admin.user.pk])).status_code == 403
    assert staff_role(staff_admin.user) == "admin"
