"""The audit log: an append-only, hash-chained record of who changed what, written in the same
transaction as the change (see :mod:`linking.audit.services`)."""
