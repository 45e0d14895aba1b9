"""/staff/policy/: a staff admin sets how parents' requests are handled."""

from django.urls import reverse

from linking.audit.models import AuditEvent
from linking.models import LinkPolicy
from linking.services.staff import link_policy_update

URL = "/staff/policy/"


def test_it_shows_the_current_policy(staff_admin):
    response = staff_admin.client.get(URL)
    assert response.status_code == 200
    assert response.context["form"].initial["mode"] == LinkPolicy.Mode.AT_ONCE


def test_it_saves_the_policy_and_records_what_changed(staff_admin):
    response = staff_admin.client.post(
        URL,
        {
            "mode": "rules",
            "max_observers": "2",
            "watched_domains": "@Example.ORG\n\nmail.example.net\nexample.org",
            "hold_flagged_students": "on",
            "retention_days": "365",
        },
    )
    assert response["Location"] == reverse("staff_policy")
    policy = LinkPolicy.current()
    assert policy.mode == LinkPolicy.Mode.RULES
    assert policy.max_observers == 2
    assert policy.watched_domains == "example.org\nmail.example.net"
    assert policy.retention_days == 365
    assert policy.updated_by == staff_admin.user
    event = AuditEvent.objects.get(action="link_policy.updated")
    assert event.actor_id == staff_admin.user.pk and event.actor_label == "staff"
    assert event.data["changes"]["mode"] == {"from": "at_once", "to": "rules"}
    assert "hold_flagged_students" not in event.data["changes"]  # it was on already


def test_it_refuses_rules_mode_without_a_rule(staff_admin):
    response = staff_admin.client.post(URL, {"mode": "rules", "max_observers": "", "watched_domains": ""})
    assert response.status_code == 400
    assert "at least one rule" in response.content.decode()
    assert LinkPolicy.current().mode == LinkPolicy.Mode.AT_ONCE


def test_it_refuses_a_domain_that_is_not_one(staff_admin):
    response = staff_admin.client.post(URL, {"mode": "rules", "watched_domains": "not a domain"})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="link_policy.updated").exists()


def test_it_records_nothing_when_nothing_changed(staff_admin):
    link_policy_update(by=staff_admin.user, mode=LinkPolicy.Mode.AT_ONCE)
    assert not AuditEvent.objects.filter(action="link_policy.updated").exists()


def test_school_staff_may_not_change_the_policy(staff):
    assert staff.client.get(URL).status_code == 403
    assert staff.client.post(URL, {"mode": "hold_all"}).status_code == 403
    assert LinkPolicy.current().mode == LinkPolicy.Mode.AT_ONCE


def test_the_nav_shows_policy_and_staff_to_staff_admins_only(staff, staff_admin):
    assert URL in staff_admin.client.get(reverse("staff_home")).content.decode()
    assert URL not in staff.client.get(reverse("staff_home")).content.decode()
