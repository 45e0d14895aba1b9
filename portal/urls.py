from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from linking.staff import second_factor
from portal import health, school
from portal.admin_queries import guard_admin_queries

# The admin signs in through allauth (its rate limits, its second factor) rather than a form of its own.
admin.site.login = secure_admin_login(admin.site.login)
# Filter values the admin would hand the database as they are (NUL, impossible dates) are a 400 instead.
guard_admin_queries(admin.site)

urlpatterns = [
    path("", TemplateView.as_view(template_name="portal/home.html"), name="home"),
    # For load balancers and Docker: the database, the broker and Canvas, as JSON (portal/health.py).
    path("healthz", health.healthz, name="healthz"),
    # The school's colour as a stylesheet and its logo (portal/school.py), for every page's header.
    path("school/theme.css", school.theme, name="school_theme"),
    path("school/logo", school.logo, name="school_logo"),
    # Before allauth's own: the same page, which keeps its code field when a POST has no code.
    path("accounts/2fa/authenticate/", second_factor.authenticate, name="mfa_authenticate"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("staff/", include("linking.staff.urls")),
    path("", include("linking.urls")),
]

# Requests Django refuses before any view (too large, too many fields, unreadable): a page that says why.
handler400 = "portal.errors.bad_request"
