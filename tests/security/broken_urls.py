"""The portal's URL conf and one page with a bug in it, for the 500 page (test_secrets_never_leak.py).

The bug strikes after the view has held everything secret a real view could: the admin token and
the OAuth client secret from the settings, a student's token, the password and pairing code posted.
"""

from django.conf import settings
from django.urls import path

from portal.urls import *  # noqa: F403 - the portal's handlers too
from portal.urls import urlpatterns as portal_urlpatterns


def page_with_a_bug(request):
    admin_token = settings.CANVAS_ADMIN_TOKEN  # noqa: F841 - in the frame when the bug strikes
    client_secret = settings.SOCIALACCOUNT_PROVIDERS["canvas"]["APPS"][0]["secret"]  # noqa: F841
    password, code = request.POST.get("password"), request.GET.get("code")  # noqa: F841
    raise RuntimeError("a bug in the page")


urlpatterns = [path("page-with-a-bug/", page_with_a_bug), *portal_urlpatterns]
