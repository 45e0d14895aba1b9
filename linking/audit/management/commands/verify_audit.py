"""``manage.py verify_audit``: check the audit log's hash chain; exit 1 naming the first broken event.

The result is recorded as an ``audit.verified`` event, the "last check" on the staff audit page.
"""

from django.core.management.base import BaseCommand, CommandError

from linking.audit.models import AuditEvent
from linking.audit.services import audit_chain_check


class Command(BaseCommand):
    help = "Check the audit log's hash chain, name the first broken event, and record the result."

    def handle(self, *args, **options):
        result = audit_chain_check(actor_label=AuditEvent.ActorLabel.SYSTEM)
        if not result.ok:
            raise CommandError(f"Audit chain BROKEN at event {result.first_broken_id}: {result.reason}")
        self.stdout.write(f"Audit chain OK: {result.checked} events")
