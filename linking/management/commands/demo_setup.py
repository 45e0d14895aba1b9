"""``manage.py demo_setup``: the portal accounts `make demo` signs in with; safe to run on every start.

It makes accounts with passwords printed in README, so it refuses to run unless DEBUG is on.
"""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from linking.models import Parent
from linking.services.people import parent_register
from linking.services.staff import ADMIN_GROUP, staff_group

# David Chen is also a parent in the simulator's demo school, so linking adopts his Canvas account.
PARENT_EMAIL = "david.chen@example.com"
PARENT_NAME = "David Chen"
PARENT_PASSWORD = "parent-demo"  # noqa: S105 - the demo's published password
STAFF_EMAIL = "staff@example.com"
STAFF_PASSWORD = "staff-demo"  # noqa: S105 - the demo's published password


def _account(email: str, password: str, **flags) -> bool:
    """A user signed in by this email with a verified primary address; True when it was created."""
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if created:
        user = User.objects.create_user(username=email, email=email, password=password, **flags)
    # Verified already: the demo has no inbox to receive the code in.
    EmailAddress.objects.get_or_create(
        user=user, email__iexact=email, defaults={"email": email, "verified": True, "primary": True}
    )
    return created


class Command(BaseCommand):
    help = "Create the demo's parent and staff accounts (DEBUG only); leaves them alone when they exist."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "demo_setup creates accounts with published passwords, so it runs only with DEBUG=1. "
                "Never run it against a portal real people use."
            )
        with transaction.atomic():
            made = []
            if _account(PARENT_EMAIL, PARENT_PASSWORD):
                made.append("parent")
            parent_user = get_user_model().objects.get(email__iexact=PARENT_EMAIL)
            if not Parent.objects.filter(user=parent_user).exists():
                parent_register(user=parent_user, name=PARENT_NAME)
            if _account(STAFF_EMAIL, STAFF_PASSWORD, is_staff=True, is_superuser=True):
                made.append("staff")
            get_user_model().objects.get(email__iexact=STAFF_EMAIL).groups.add(staff_group(ADMIN_GROUP))
        state = f"created {' and '.join(made)}" if made else "already there"
        self.stdout.write(f"Demo portal accounts ({state}):")
        self.stdout.write(f"  parent  {PARENT_EMAIL} / {PARENT_PASSWORD}  (also a parent in the simulated Canvas)")
        self.stdout.write(
            f"  staff   {STAFF_EMAIL} / {STAFF_PASSWORD}  (staff admin for /staff/: set up an authenticator app"
            " on the first visit; superuser for /admin/)"
        )
