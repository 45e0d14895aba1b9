"""``manage.py verify_audit``: check the audit log's hash chain; exit 1 naming the first broken event."""

from django.core.management.base import BaseCommand, CommandError

from linking.audit.services import audit_chain_verify


class Command(BaseCommand):
    help = "Check the audit log's hash chain and name the first broken event."

    def handle(self, *args, **options):
        result = audit_chain_verify()
        if not result.ok:
            raise CommandError(f"Audit chain BROKEN at event {result.first_broken_id}: {result.reason}")
        self.stdout.write(f"Audit chain OK: {result.checked} events")
