"""``manage.py import_families`` and the drop folder: imports nobody uploads in the console."""

from __future__ import annotations

import os
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from linking.models import ImportRow, ImportRun
from linking.tasks import import_drop_folder_pickup
from tests.workers import wait_for

HEADER = "student_sis_id,parent_email,parent_first_name,parent_last_name\n"


def test_a_dry_run_with_wait_prints_the_counts_and_the_rows_not_imported(family, tmp_path):
    email = f"{family.sim.unique('cmd')}@example.test"
    path = tmp_path / "families.csv"
    path.write_text(HEADER + f"S1011,{email},Cam,Dee\nS9998,{email},Cam,Dee\n", encoding="utf-8")
    out = StringIO()

    call_command("import_families", str(path), "--dry-run", "--wait", "--poll", "0.1", stdout=out)

    text = out.getvalue()
    assert "Rows: 2\n" in text
    assert "New parent accounts: 1\n" in text
    assert "New links: 1\n" in text
    assert "Already linked: 0\n" in text
    assert "Errors: 1\n" in text
    assert "line 3: No student with SIS id S9998 in Canvas" in text
    assert "Dry run: nothing was changed in Canvas." in text
    run = ImportRun.objects.get()
    assert (run.source, run.dry_run, run.state) == ("command", True, "preview")
    assert family.admin().find_user_by_login(email) is None


def test_the_command_imports_the_file_and_reports_when_done(family, tmp_path):
    email = f"{family.sim.unique('cmd')}@example.test"
    path = tmp_path / "families.csv"
    path.write_text(HEADER + f"S1012,{email},Cam,Dee\n", encoding="utf-8")
    out = StringIO()

    call_command("import_families", str(path), "--wait", "--poll", "0.1", "--timeout", "60", stdout=out)

    assert "Finished: Done." in out.getvalue()
    parent = family.admin().find_user_by_login(email)
    student = family.admin().find_user_by_sis_id("S1012")
    assert family.admin().show_observee(parent["id"], student["id"]) is not None
    assert ImportRun.objects.get().rows.get().outcome == ImportRow.Outcome.NEW_PARENT_LINKED


def test_a_file_it_cannot_import_stops_with_the_reason(db, tmp_path):
    path = tmp_path / "families.csv"
    path.write_text("student_sis_id,parent_email\nS1001,a@example.org\n", encoding="utf-8")
    with pytest.raises(CommandError, match="The file has no parent_first_name column"):
        call_command("import_families", str(path), stdout=StringIO())
    assert not ImportRun.objects.exists()


def test_a_missing_file_stops_with_the_reason(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_families", str(tmp_path / "nope.csv"), stdout=StringIO())


# -- the drop folder ------------------------------------------------------------------------------
def settled(path):
    """As if written two minutes ago: the scan leaves files that may still be being written."""
    past = time.time() - 120
    os.utime(path, (past, past))
    return path


def test_the_drop_folder_moves_a_file_to_processed_and_creates_a_run(db, settings, tmp_path):
    settings.IMPORT_DROP_FOLDER = str(tmp_path)
    (tmp_path / "nightly.csv").write_text(HEADER + "S1012,a@example.org,A,B\n", encoding="utf-8")
    settled(tmp_path / "nightly.csv")

    assert import_drop_folder_pickup() == {"checks_requeued": 0, "files_imported": 1}

    assert not (tmp_path / "nightly.csv").exists()
    [moved] = (tmp_path / "processed").iterdir()
    assert moved.name.endswith("-nightly.csv")
    run = ImportRun.objects.get()
    assert (run.source, run.filename, run.created_by, run.dry_run) == ("drop_folder", "nightly.csv", None, False)


def test_the_drop_folder_leaves_a_file_that_is_still_being_written(db, settings, tmp_path):
    settings.IMPORT_DROP_FOLDER = str(tmp_path)
    (tmp_path / "nightly.csv").write_text(HEADER + "S1012,a@example.org,A,B\n", encoding="utf-8")
    assert import_drop_folder_pickup()["files_imported"] == 0
    assert (tmp_path / "nightly.csv").exists() and not ImportRun.objects.exists()


def test_the_drop_folder_moves_a_refused_file_to_failed_with_the_reason(db, settings, tmp_path):
    settings.IMPORT_DROP_FOLDER = str(tmp_path)
    (tmp_path / "broken.csv").write_text("name\nx\n", encoding="utf-8")
    settled(tmp_path / "broken.csv")

    import_drop_folder_pickup()

    [failed, reason] = sorted((tmp_path / "failed").iterdir(), key=lambda p: p.name)
    assert failed.name.endswith("-broken.csv") and reason.name == failed.name + ".error.txt"
    assert "no student column" in reason.read_text()
    assert not ImportRun.objects.exists()


def test_the_drop_folder_is_off_by_default(db, settings):
    settings.IMPORT_DROP_FOLDER = ""
    assert import_drop_folder_pickup() == {"checks_requeued": 0, "files_imported": 0}


def test_a_drop_folder_run_is_checked_by_the_worker(family, settings, tmp_path):
    settings.IMPORT_DROP_FOLDER = str(tmp_path)
    email = f"{family.sim.unique('drop')}@example.test"
    (tmp_path / "nightly.csv").write_text(HEADER + f"S1013,{email},A,B\n", encoding="utf-8")
    settled(tmp_path / "nightly.csv")

    import_drop_folder_pickup()

    # Unattended: once checked, the run starts by itself and finishes with nobody watching.
    run = wait_for(
        lambda: ImportRun.objects.filter(state=ImportRun.State.DONE).first(), message="the drop-folder run to finish"
    )
    assert run.preview["new_links"] == 1
    assert run.started_at is not None and run.created_by is None
    assert run.rows.get().state == ImportRow.State.DONE
