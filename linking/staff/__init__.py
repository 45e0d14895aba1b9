"""The staff console: review, holds and revocations, reconciliation, the audit trail."""
