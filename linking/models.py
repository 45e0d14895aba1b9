"""Models for linking a parent's portal account to a student's Canvas account."""
