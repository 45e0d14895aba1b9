"""Bulk family imports from the SIS: reading files, checking rows, working them in Canvas."""
