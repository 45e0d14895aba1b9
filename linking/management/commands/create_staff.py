"""``manage.py create_staff EMAIL [--admin] [--name NAME]``: make someone school staff or a staff admin.

The first staff admin of a new portal is made this way; later ones can be made in the console. Safe
to run again: the account is found by email, and its role becomes the one given.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from linking.services.staff import StaffError, staff_member_create

ROLE_NAMES = {"staff": "school staff", "admin": "a staff admin"}


class Command(BaseCommand):
    help = "Make EMAIL school staff (or, with --admin, a staff admin), creating the account if needed."

    def add_arguments(self, parser):
        parser.add_argument("email", help="The staff member's email address; it is also how they sign in.")
        parser.add_argument("--admin", action="store_true", help="A staff admin: may set policy and manage staff.")
        parser.add_argument("--name", default="", help="Their full name, as shown in the console.")

    def handle(self, *args, email, admin, name, **options):
        try:
            member = staff_member_create(email=email, name=name, admin=admin, by=None)
        except StaffError as exc:
            raise CommandError(str(exc)) from None
        user, role = member.user, ROLE_NAMES[member.role]
        if member.created:
            self.stdout.write(self.style.SUCCESS(f"Created {user.email}, {role}."))
        elif member.previous_role == member.role:
            self.stdout.write(f"{user.email} is already {role}; nothing changed.")
        elif member.previous_role:
            self.stdout.write(
                self.style.SUCCESS(f"{user.email} is now {role} (was {ROLE_NAMES[member.previous_role]}).")
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"{user.email} (an existing account) is now {role}."))
        base = settings.PORTAL_BASE_URL
        how = (
            "with their password"
            if user.has_usable_password()
            else f"with a code emailed to them ({base}{reverse('account_request_login_code')}), "
            f'or set a password with "Forgot your password?" ({base}{reverse("account_reset_password")})'
        )
        self.stdout.write(
            f"They sign in at {base}{reverse('account_login')} {how}.\n"
            f"The first time they open the staff console ({base}{reverse('staff_home')}) they set up an "
            "authenticator app and save their recovery codes; every staff sign-in then asks for its code."
        )
