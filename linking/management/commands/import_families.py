"""``manage.py import_families FILE [--dry-run] [--wait]``: import parents and their children from a CSV.

The run is saved and checked by the worker exactly as an upload in the staff console is. Without
``--wait`` the command returns once the run is saved (see it in the console). With ``--wait`` it
prints the preview's counts and the rows that are not valid; then, unless ``--dry-run``, it starts the
run and waits for it to finish, printing progress. A file that cannot be imported exits with status 1
and says why.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

from linking.imports.parsing import ImportFileError
from linking.models import ImportRow, ImportRun
from linking.services.imports import import_run_create, import_run_problem_rows

COUNT_LABELS = (
    ("rows", "Rows"),
    ("new_parent_accounts", "New parent accounts"),
    ("new_links", "New links"),
    ("already_linked", "Already linked"),
    ("skipped", "Skipped (held apart by the school)"),
    ("errors", "Errors"),
    ("check_calls", "Canvas calls to check"),
)
FINISHED = (ImportRun.State.DONE, ImportRun.State.FAILED, ImportRun.State.CANCELLED)


class Command(BaseCommand):
    help = "Import parents and the students they observe from a CSV file (UTF-8)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file: student_sis_id, parent_email, parent_first_name, ...")
        parser.add_argument("--dry-run", action="store_true", help="Check and count only; change nothing in Canvas.")
        parser.add_argument("--wait", action="store_true", help="Wait for the check (and the run) and print results.")
        parser.add_argument(
            "--method", choices=ImportRun.Method.values, default=ImportRun.Method.API, help="How the run links."
        )
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds to wait, at most (default 3600).")
        parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)

    def handle(self, *args, file, dry_run, wait, method, timeout, poll, **options):
        path = Path(file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        try:
            run = import_run_create(
                content=content,
                filename=path.name,
                source=ImportRun.Source.COMMAND,
                by=None,
                dry_run=dry_run,
                method=method,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Import run {run.pk} saved: {run.rows.count()} rows{' (dry run)' if dry_run else ''}. "
            "The worker is checking them."
        )
        if not wait:
            what = "checked" if dry_run else "checked and then run"
            self.stdout.write(f"It will be {what} by the worker: {_console_url('staff_import_preview', run)}")
            return
        deadline = time.monotonic() + timeout
        run = self._wait(run, deadline, poll, lambda r: r.state != ImportRun.State.CHECKING)
        if run.state == ImportRun.State.FAILED:
            raise CommandError(f"The check failed: {run.failure}")
        self._print_preview(run)
        if dry_run:
            self.stdout.write("Dry run: nothing was changed in Canvas.")
            return
        # The check task starts a command's run by itself, as it does the drop folder's.
        run = self._wait(run, deadline, poll, lambda r: r.state in FINISHED, progress=True)
        self.stdout.write(f"Finished: {run.get_state_display()}.")
        for key, value in sorted(run.summary.items()):
            self.stdout.write(f"  {key.replace('_', ' ')}: {value}")
        if run.state != ImportRun.State.DONE:
            raise CommandError(run.failure or f"The run ended {run.get_state_display().lower()}.")

    def _wait(self, run: ImportRun, deadline: float, poll: float, done, *, progress: bool = False) -> ImportRun:
        last = None
        while True:
            run.refresh_from_db()
            if done(run):
                return run
            if progress:
                line = _progress(run)
                if line != last:
                    self.stdout.write(line)
                    last = line
            if time.monotonic() > deadline:
                raise CommandError(f"Still {run.get_state_display().lower()} after the timeout; see the console.")
            time.sleep(poll)

    def _print_preview(self, run: ImportRun) -> None:
        preview = run.preview
        self.stdout.write("Preview:")
        for key, label in COUNT_LABELS:
            self.stdout.write(f"  {label}: {preview.get(key, 0)}")
        if preview.get("seen_before"):
            self.stdout.write(f"  This file was imported before, on {preview['seen_before'][:10]}.")
        problems = list(import_run_problem_rows(run).values_list("number", "error"))
        if problems:
            self.stdout.write("Rows not imported:")
            for number, error in problems:
                self.stdout.write(f"  line {number}: {error}")


def _progress(run: ImportRun) -> str:
    rows = run.rows.exclude(state=ImportRow.State.INVALID)
    finished = rows.exclude(state__in=ImportRow.OPEN_STATES).count()
    return f"  {run.get_state_display()}: {finished} of {rows.count()} rows finished"


def _console_url(name: str, run: ImportRun) -> str:
    try:
        return settings.PORTAL_BASE_URL + reverse(name, args=[run.pk])
    except NoReverseMatch:
        return f"import run {run.pk}"
