"""SIS imports for large batches: ``users.csv`` and ``user_observers.csv``, submitted then polled.

Files are told apart by their headers, as Canvas does; a zip may hold several. The batch is
processed on a background thread so that clients must poll, as they must with Canvas.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
import zipfile

from .app import ApiError, Ctx, Route, not_found, unauthorized
from .observers import create_link, remove_links
from .store import Store, Tx, iso, now
from .users import admin_accounts, create_user_row, resolve_account, root_of, sortable

log = logging.getLogger("canvas_sim.sis")
DONE_STATES = {"imported", "imported_with_messages", "failed", "failed_with_messages"}


def batch_json(row) -> dict:
    data = json.loads(row["data"])
    return {
        "id": row["id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "ended_at": iso(row["ended_at"]),
        "workflow_state": row["workflow_state"],
        "progress": row["progress"],
        "data": {"import_type": "instructure_csv", "supplied_batches": data["supplied"], "counts": data["counts"]},
        "statistics": data["counts"],
        "processing_errors": json.loads(row["processing_errors"]),
        "processing_warnings": json.loads(row["processing_warnings"]),
        "errors_attachment": None,
    }


def _files_from(ctx: Ctx) -> list[tuple[str, bytes]]:
    request = ctx.request
    if request.files:
        upload = request.files.get("attachment") or next(iter(request.files.values()))
        name, body = upload.filename or "upload.csv", upload.read()
    else:
        body = request.get_data()
        name = "upload.zip" if request.mimetype in {"application/zip", "application/x-zip-compressed"} else "upload.csv"
    if not body:
        raise ApiError(400, {"errors": [{"message": "No file was supplied"}]})
    if name.endswith(".zip") or body[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                return [(item, archive.read(item)) for item in archive.namelist() if item.endswith(".csv")]
        except zipfile.BadZipFile as exc:
            raise ApiError(400, {"errors": [{"message": "The zip file could not be read"}]}) from exc
    return [(name, body)]


def create_import(ctx: Ctx):
    import_type = ctx.param("import_type", "instructure_csv")
    if import_type != "instructure_csv":
        raise ApiError(400, {"errors": [{"message": "Invalid import_type"}]})
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        root = root_of(account)
        if root not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
    files = _files_from(ctx)
    stamp = iso(now())
    with ctx.store.tx() as tx:
        batch_id = tx.insert(
            "sis_batches",
            account_id=root,
            workflow_state="created",
            data=json.dumps({"supplied": [], "counts": {}}),
            created_at=stamp,
            updated_at=stamp,
        )
        row = tx.one("SELECT * FROM sis_batches WHERE id = ?", batch_id)
    threading.Thread(target=process, args=(ctx.store, batch_id, root, files), daemon=True).start()
    return batch_json(row)


def show_import(ctx: Ctx):
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        if root_of(account) not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
        raw = ctx.args["import_id"]
        row = tx.one(
            "SELECT * FROM sis_batches WHERE id = ? AND account_id = ?",
            int(raw) if raw.isdigit() else 0,
            root_of(account),
        )
        if row is None:
            raise not_found()
        return batch_json(row)


# -- processing ---------------------------------------------------------------------------------
def process(store: Store, batch_id: int, root: int, files: list[tuple[str, bytes]]) -> None:
    """Run a batch; whatever goes wrong, the batch ends in a final state, as Canvas's job does."""
    try:
        _process(store, batch_id, root, files)
    except Exception as exc:  # noqa: BLE001 - a poller must never wait on a dead batch
        log.exception("SIS batch %s failed", batch_id)
        with store.tx() as tx:
            tx.run(
                "UPDATE sis_batches SET workflow_state = 'failed', processing_errors = ?, updated_at = ?, "
                "ended_at = ? WHERE id = ?",
                json.dumps([["", f"Import failed: {type(exc).__name__}"]]),
                iso(now()),
                iso(now()),
                batch_id,
            )


def _process(store: Store, batch_id: int, root: int, files: list[tuple[str, bytes]]) -> None:
    time.sleep(0.2)  # let the client see "created" / "importing" at least once, as with Canvas's job queue
    errors: list[list[str]] = []
    counts = {"users": 0, "user_observers": 0}
    supplied: list[str] = []
    with store.tx() as tx:
        tx.run("UPDATE sis_batches SET workflow_state = 'importing', updated_at = ? WHERE id = ?", iso(now()), batch_id)
    parsed = []
    for name, body in files:
        try:
            rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
            headers = set(rows[0].keys()) if rows else set(csv.reader(io.StringIO(body.decode("utf-8-sig"))).__next__())
        except (UnicodeDecodeError, StopIteration, csv.Error):
            errors.append([name, "The file could not be read as UTF-8 CSV"])
            continue
        if {"observer_id", "student_id"} <= headers:
            parsed.append(("user_observer", name, rows))
        elif {"user_id", "login_id"} <= headers:
            parsed.append(("user", name, rows))
        else:
            errors.append([name, "Couldn't find Canvas CSV import headers"])
    # Users first, so that observer rows in the same batch can name them.
    parsed.sort(key=lambda item: item[0] != "user")
    for kind, name, rows in parsed:
        supplied.append(kind)
        for number, row in enumerate(rows, start=2):
            with store.tx() as tx:
                message = (_import_user if kind == "user" else _import_observer)(tx, root, row)
            if message:
                errors.append([name, f"Row {number}: {message}"])
            else:
                counts["users" if kind == "user" else "user_observers"] += 1
    if not files:
        errors.append(["", "No CSV files were found in the upload"])
    if not parsed:
        state = "failed_with_messages"
    elif errors:
        state = "imported_with_messages"
    else:
        state = "imported"
    with store.tx() as tx:
        tx.run(
            "UPDATE sis_batches SET workflow_state = ?, progress = 100, data = ?, processing_errors = ?, "
            "updated_at = ?, ended_at = ? WHERE id = ?",
            state,
            json.dumps({"supplied": supplied, "counts": counts}),
            json.dumps(errors),
            iso(now()),
            iso(now()),
            batch_id,
        )


def _import_user(tx: Tx, root: int, row: dict) -> str | None:
    sis_id = (row.get("user_id") or "").strip()
    login = (row.get("login_id") or "").strip()
    status = (row.get("status") or "").strip()
    if not sis_id or not login:
        return "No user_id or login_id given for user"
    if status not in {"active", "suspended", "deleted"}:
        return f'Improper status "{status}" for user {sis_id}'
    given_name = (row.get("full_name") or "").strip() or " ".join(
        part for part in ((row.get("first_name") or "").strip(), (row.get("last_name") or "").strip()) if part
    )
    pseudonym = tx.one("SELECT * FROM pseudonyms WHERE account_id = ? AND sis_user_id = ?", root, sis_id)
    if status == "deleted":
        if pseudonym:
            tx.run("UPDATE pseudonyms SET workflow_state = 'deleted' WHERE id = ?", pseudonym["id"])
        return None
    if pseudonym is None:
        clash = tx.one(
            "SELECT sis_user_id FROM pseudonyms WHERE account_id = ? AND lower(unique_id) = lower(?) "
            "AND workflow_state = 'active'",
            root,
            login,
        )
        if clash:
            return f"An existing Canvas user with the login {login} already exists"
        create_user_row(
            tx,
            name=given_name or login,
            account_id=root,
            login=login,
            sis_user_id=sis_id,
            email=row.get("email") or None,
        )
        return None
    tx.run(
        "UPDATE pseudonyms SET unique_id = ?, workflow_state = ? WHERE id = ?",
        login,
        "suspended" if status == "suspended" else "active",
        pseudonym["id"],
    )
    user = tx.one("SELECT * FROM users WHERE id = ?", pseudonym["user_id"])
    # A row without name columns keeps the name; a new name also renews the names derived from it.
    name = given_name or user["name"]
    renamed = name != user["name"]
    tx.run(
        "UPDATE users SET name = ?, sortable_name = ?, short_name = ?, email = COALESCE(?, email) WHERE id = ?",
        name,
        sortable(name) if renamed else user["sortable_name"],
        name if renamed and user["short_name"] == user["name"] else user["short_name"],
        row.get("email") or None,
        pseudonym["user_id"],
    )
    return None


def _active_user_by_sis(tx: Tx, root: int, sis_id: str):
    return tx.one(
        "SELECT user_id FROM pseudonyms WHERE account_id = ? AND sis_user_id = ? AND workflow_state = 'active'",
        root,
        sis_id,
    )


def _import_observer(tx: Tx, root: int, row: dict) -> str | None:
    observer_sis = (row.get("observer_id") or "").strip()
    student_sis = (row.get("student_id") or "").strip()
    status = (row.get("status") or "").strip()
    if status not in {"active", "deleted"}:
        return f'Improper status "{status}" for user_observer'
    observer = _active_user_by_sis(tx, root, observer_sis)
    if observer is None:
        return f"An observer referenced a non-existent user {observer_sis}"
    student = _active_user_by_sis(tx, root, student_sis)
    if student is None:
        return f"A student referenced a non-existent user {student_sis}"
    if observer["user_id"] == student["user_id"]:
        return "Can't observe yourself"
    if status == "active":
        create_link(tx, observer_id=observer["user_id"], student_id=student["user_id"], root_account_ids={root})
    else:
        remove_links(tx, observer_id=observer["user_id"], student_id=student["user_id"], root_account_ids={root})
    return None


ROUTES = [
    Route("POST", "/api/v1/accounts/:account_id/sis_imports", create_import),
    Route("GET", "/api/v1/accounts/:account_id/sis_imports/:import_id", show_import),
]
