"""The second factor: no staff page opens until the staff member's session has used their authenticator app."""

from urllib.parse import urlencode

from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.test import Client
from django.urls import reverse

from tests.staff.conftest import PASSWORD, mfa_client, password_client, staff_member_make, totp_code_for


def _to(url_name: str, next_path: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_path})}"


def test_it_sends_staff_without_an_app_to_set_one_up_before_any_staff_page(db):
    user = staff_member_make("new.staff@school.example", mfa=False)
    client = password_client(user)
    for path in (reverse("staff_home"), reverse("staff_requests") + "?state=held"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == _to("mfa_activate_totp", path)


def test_it_lets_staff_set_up_the_app_and_then_opens_the_console(transactional_db):
    user = staff_member_make("new.staff@school.example", mfa=False)
    client = password_client(user)
    activate = client.get(reverse("staff_home"))["Location"]
    # allauth asks for the password again before an authenticator is added (REAUTHENTICATION_TIMEOUT).
    response = client.get(activate)
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    response = client.post(response["Location"], {"password": PASSWORD})
    assert response["Location"] == activate
    page = client.get(activate)
    assert page.status_code == 200
    secret = page.context["form"].secret
    # Transactional: allauth announces the new authenticator when its transaction commits, mid-request.
    response = client.post(activate, {"code": totp_code_for(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    # Recovery codes are made with the app, for a lost phone.
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).exists()

    # Setting the app up checked a code from it: that was this session's second factor.
    assert client.get(reverse("staff_home")).status_code == 200


def test_it_asks_staff_who_signed_in_with_a_password_only_for_the_code(db):
    user = staff_member_make("sam.staff@school.example")
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    # allauth's own login stage asks for the code before the sign-in completes.
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("staff_home"))["Location"].startswith(reverse("account_login"))


def test_it_asks_for_the_code_when_the_session_never_used_the_app(db):
    """A session signed in some other way (an admin's force_login, a stale session) still needs the code."""
    user = staff_member_make("sam.staff@school.example")
    client = Client()
    client.force_login(user)
    response = client.get(reverse("staff_policy"))
    assert response["Location"] == _to("mfa_reauthenticate", reverse("staff_policy"))
    response = client.post(_to("mfa_reauthenticate", reverse("staff_policy")), {"code": "000000"})
    assert response.status_code == 200  # the form again, with an error
    assert client.get(reverse("staff_home")).status_code == 302


def test_it_opens_staff_pages_after_the_code(staff):
    assert staff.client.get(reverse("staff_home")).status_code == 200


def test_it_accepts_a_recovery_code_instead_of_the_app(db):
    user = staff_member_make("sam.staff@school.example")
    client = Client()
    client.force_login(user)
    codes = RecoveryCodes(Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES))
    recovery_code = codes.get_unused_codes()[0]
    response = client.post(_to("mfa_reauthenticate", reverse("staff_home")), {"code": recovery_code})
    assert response["Location"] == reverse("staff_home")
    assert client.get(reverse("staff_home")).status_code == 200


def test_it_never_shows_a_staff_page_to_a_parent(parent_a):
    response = parent_a.client.get(reverse("staff_home"))
    assert response.status_code == 403


def test_it_sends_a_signed_out_visitor_to_sign_in(anonymous):
    response = anonymous.client.get(reverse("staff_home"))
    assert response["Location"] == f"{reverse('account_login')}?next=/staff/"


def test_it_leaves_family_pages_alone_for_staff_without_an_app(db, parent_a):
    user = staff_member_make("new.staff@school.example", mfa=False)
    client = password_client(user)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("parent_home")).status_code == 403


def test_mfa_client_signs_staff_in_with_both_factors(db):
    user = staff_member_make("sam.staff@school.example", admin=True)
    client = mfa_client(user)
    methods = [record["method"] for record in client.session["account_authentication_methods"]]
    assert methods == ["password", "mfa"]
