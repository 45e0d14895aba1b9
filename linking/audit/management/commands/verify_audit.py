"""``manage.py verify_audit``: check the audit log's hash chain; exit 1 naming the first broken event.

The result is recorded as an ``audit.verified`` event, the "last check" on the staff audit page. The
second line of the output is the chain's head (``SEQ:HASH``, the check's own event): keep a copy
somewhere the database's users cannot rewrite, and a later ``verify_audit --anchor SEQ:HASH`` fails if
that event, or any before it, was deleted or rewritten (the chain alone cannot show that its newest
events were removed). Anchors in ``AUDIT_ANCHOR_FILE`` (written nightly) are checked as well.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from linking.audit.models import AuditEvent
from linking.audit.services import Anchor, audit_anchors_read, audit_chain_check, audit_chain_head


def anchor(text: str) -> Anchor:
    try:
        return Anchor.parse(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Check the audit log's hash chain, name the first broken event, and record the result."

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            type=anchor,
            metavar="SEQ:HASH",
            help="An event id and hash copied earlier (repeatable); fails when that event is missing or differs.",
        )
        parser.add_argument(
            "--anchor-file",
            default=settings.AUDIT_ANCHOR_FILE,
            metavar="PATH",
            help="A file of anchors, one SEQ:HASH a line (default AUDIT_ANCHOR_FILE; empty for none).",
        )

    def handle(self, *args, anchor: list[Anchor], anchor_file: str, **options):
        try:
            anchors = [*anchor, *(audit_anchors_read(anchor_file) if anchor_file else [])]
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read the anchors in {anchor_file}: {exc}") from None
        result = audit_chain_check(actor_label=AuditEvent.ActorLabel.SYSTEM, anchors=anchors)
        if not result.ok:
            raise CommandError(f"Audit chain BROKEN at event {result.first_broken_id}: {result.reason}")
        matched = f"; {result.anchors} anchor{'s' if result.anchors != 1 else ''} match" if result.anchors else ""
        self.stdout.write(f"Audit chain OK: {result.checked} events{matched}")
        self.stdout.write(f"Head: {audit_chain_head()}")
