"""The portal's records, one module per concept; imported here so ``linking.models.X`` keeps working."""

from .families import LinkRequest, ObservationLink, ObservationLinkQuerySet, PairingCode, Parent, Student
from .guessing import CodeEntryLockout
from .imports import ImportRow, ImportRun
from .languages import LanguagePreference
from .reconciliation import Drift, ReconciliationRun
from .staff import Course, LinkPolicy, PairHold

__all__ = [
    "CodeEntryLockout",
    "Course",
    "Drift",
    "ImportRow",
    "ImportRun",
    "LanguagePreference",
    "LinkPolicy",
    "LinkRequest",
    "ObservationLink",
    "ObservationLinkQuerySet",
    "PairHold",
    "PairingCode",
    "Parent",
    "ReconciliationRun",
    "Student",
]
