"""Admin for the linking app."""
