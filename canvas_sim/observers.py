"""Pairing codes and observation links (``observer_pairing_codes_api_controller.rb``,
``user_observees_controller.rb``, ``user_observation_link.rb``)."""

from __future__ import annotations

import secrets
import string
import time
from datetime import timedelta

from .app import (
    DOMAIN_ROOT_ACCOUNT_ID,
    ApiError,
    Ctx,
    Route,
    not_found,
    paginate,
    unauthorized,
)
from .store import Tx, check_password, digest, iso, now
from .users import admin_accounts, is_admin_for, resolve_user, root_accounts_of

CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LIFETIME = timedelta(days=7)
INVALID_CODE_COST = 200.0
LIVE_STUDENT_STATES = ("invited", "active", "completed", "creation_pending")


# -- shared with user creation and the SIS importer ----------------------------------------------
def consume_pairing_code(tx: Tx, code: str) -> dict | None:
    """Find an active, unexpired code (exact, case-sensitive) and consume it at once."""
    row = tx.one(
        "SELECT * FROM pairing_codes WHERE code = ? AND workflow_state = 'active' AND expires_at > ? "
        "ORDER BY id DESC LIMIT 1",
        code,
        iso(now()),
    )
    if row is None:
        return None
    tx.run("UPDATE pairing_codes SET workflow_state = 'deleted' WHERE id = ?", row["id"])
    return dict(row)


def create_link(tx: Tx, *, observer_id: int, student_id: int, root_account_ids: set[int]) -> list[int]:
    """Create or restore links on the given root accounts; never duplicates. Returns the accounts linked."""
    if observer_id == student_id:
        return []
    stamp, linked_at = iso(now()), time.time()
    linked = []
    for root in sorted(root_account_ids):
        existing = tx.one(
            "SELECT id, workflow_state FROM observation_links "
            "WHERE observer_id = ? AND student_id = ? AND root_account_id = ?",
            observer_id,
            student_id,
            root,
        )
        if existing is None:
            tx.insert(
                "observation_links",
                observer_id=observer_id,
                student_id=student_id,
                root_account_id=root,
                created_at=stamp,
                updated_at=stamp,
                linked_at=linked_at,
            )
        elif existing["workflow_state"] != "active":
            tx.run(
                "UPDATE observation_links SET workflow_state = 'active', updated_at = ?, linked_at = ? WHERE id = ?",
                stamp,
                linked_at,
                existing["id"],
            )
        _enrol_observer(tx, observer_id=observer_id, student_id=student_id, root=root)
        linked.append(root)
    return linked


def _enrol_observer(tx: Tx, *, observer_id: int, student_id: int, root: int) -> None:
    """A link also enrols the observer in each of the student's active courses on that root account."""
    stamp = iso(now())
    courses = tx.all(
        "SELECT DISTINCT e.course_id FROM enrollments e JOIN courses c ON c.id = e.course_id "
        "WHERE e.user_id = ? AND e.type = 'StudentEnrollment' AND e.workflow_state IN ('active', 'invited') "
        "AND c.root_account_id = ? AND c.workflow_state != 'deleted'",
        student_id,
        root,
    )
    for course in courses:
        existing = tx.one(
            "SELECT id FROM enrollments WHERE user_id = ? AND course_id = ? AND type = 'ObserverEnrollment' "
            "AND associated_user_id = ?",
            observer_id,
            course["course_id"],
            student_id,
        )
        if existing:
            tx.run(
                "UPDATE enrollments SET workflow_state = 'active', updated_at = ? WHERE id = ?", stamp, existing["id"]
            )
        else:
            tx.insert(
                "enrollments",
                user_id=observer_id,
                course_id=course["course_id"],
                root_account_id=root,
                type="ObserverEnrollment",
                workflow_state="active",
                associated_user_id=student_id,
                created_at=stamp,
                updated_at=stamp,
            )


def remove_links(tx: Tx, *, observer_id: int, student_id: int, root_account_ids: set[int] | None) -> int:
    """Soft-delete links (all, or on some root accounts) and the observer's enrollments for that student."""
    stamp = iso(now())
    rows = tx.all(
        "SELECT id, root_account_id FROM observation_links "
        "WHERE observer_id = ? AND student_id = ? AND workflow_state = 'active'",
        observer_id,
        student_id,
    )
    rows = [row for row in rows if root_account_ids is None or row["root_account_id"] in root_account_ids]
    for row in rows:
        tx.run("UPDATE observation_links SET workflow_state = 'deleted', updated_at = ? WHERE id = ?", stamp, row["id"])
        tx.run(
            "UPDATE enrollments SET workflow_state = 'deleted', updated_at = ? WHERE user_id = ? "
            "AND associated_user_id = ? AND type = 'ObserverEnrollment' "
            "AND course_id IN (SELECT id FROM courses WHERE root_account_id = ?)",
            stamp,
            observer_id,
            student_id,
            row["root_account_id"],
        )
    return len(rows)


def link_root_ids(tx: Tx, *, observer_id: int, student_id: int) -> list[int]:
    rows = tx.all(
        "SELECT root_account_id FROM observation_links WHERE observer_id = ? AND student_id = ? "
        "AND workflow_state = 'active' ORDER BY root_account_id",
        observer_id,
        student_id,
    )
    return [row["root_account_id"] for row in rows]


def notify(tx: Tx, *, user_id: int | None, to: str, kind: str, subject: str) -> None:
    tx.insert("messages", user_id=user_id, to=to, kind=kind, subject=subject, created_at=iso(now()))


def linked_user_json(tx: Tx, user: dict, root_ids: list[int]) -> dict:
    return {
        "id": user["id"],
        "name": user["name"],
        "created_at": iso(user["created_at"]),
        "sortable_name": user["sortable_name"],
        "short_name": user["short_name"],
        "observation_link_root_account_ids": root_ids,
    }


def has_live_student_enrollment(tx: Tx, user_id: int) -> bool:
    marks = ", ".join("?" for _ in LIVE_STUDENT_STATES)
    return (
        tx.one(
            f"SELECT 1 FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.user_id = ? "
            f"AND e.type = 'StudentEnrollment' AND e.workflow_state IN ({marks}) AND c.workflow_state != 'deleted'",
            user_id,
            *LIVE_STUDENT_STATES,
        )
        is not None
    )


# -- pairing codes -----------------------------------------------------------------------------
def create_pairing_code(ctx: Ctx):
    with ctx.store.tx() as tx:
        student = resolve_user(tx, ctx.args["user_id"], ctx)
        allowed = ctx.user_id == student["id"] or is_admin_for(tx, ctx.user_id, student["id"])
        account = tx.one("SELECT self_registration FROM accounts WHERE id = ?", DOMAIN_ROOT_ACCOUNT_ID)
        # Canvas refuses with the permission 401 both for "not your student" and "not enrolled yet".
        if not allowed or not has_live_student_enrollment(tx, student["id"]):
            raise unauthorized()
        if account["self_registration"] not in {"observer", "all"}:
            raise unauthorized()
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
            if not tx.one("SELECT 1 FROM pairing_codes WHERE code = ? AND workflow_state = 'active'", code):
                break
        expires_at = iso(now() + CODE_LIFETIME)
        tx.insert("pairing_codes", user_id=student["id"], code=code, expires_at=expires_at, created_at=iso(now()))
    return {"user_id": student["id"], "code": code, "expires_at": expires_at, "workflow_state": "active"}


# -- observees and observers -------------------------------------------------------------------
def _may_act_for(tx: Tx, ctx: Ctx, user: dict) -> bool:
    return ctx.user_id == user["id"] or is_admin_for(tx, ctx.user_id, user["id"])


def _linked_list(tx: Tx, *, user_id: int, column: str, other: str) -> list[dict]:
    rows = tx.all(
        f"SELECT u.*, group_concat(l.root_account_id) AS roots FROM observation_links l "
        f"JOIN users u ON u.id = l.{other} WHERE l.{column} = ? AND l.workflow_state = 'active' "
        f"AND u.workflow_state != 'deleted' GROUP BY u.id ORDER BY lower(u.sortable_name), u.id",
        user_id,
    )
    return [linked_user_json(tx, dict(row), sorted(int(root) for root in row["roots"].split(","))) for row in rows]


def list_observees(ctx: Ctx):
    with ctx.store.tx() as tx:
        observer = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, observer):
            raise unauthorized()
        items = _linked_list(tx, user_id=observer["id"], column="observer_id", other="student_id")
    return paginate(ctx, items)


def list_observers(ctx: Ctx):
    with ctx.store.tx() as tx:
        student = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, student):
            raise unauthorized()
        items = _linked_list(tx, user_id=student["id"], column="student_id", other="observer_id")
    return paginate(ctx, items)


def show_observee(ctx: Ctx):
    with ctx.store.tx() as tx:
        observer = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, observer):
            raise unauthorized()
        student = resolve_user(tx, ctx.args["observee_id"], ctx)
        roots = link_root_ids(tx, observer_id=observer["id"], student_id=student["id"])
        if not roots:
            raise not_found()
        return linked_user_json(tx, student, roots)


def show_observer(ctx: Ctx):
    with ctx.store.tx() as tx:
        student = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, student):
            raise unauthorized()
        observer = resolve_user(tx, ctx.args["observer_id"], ctx)
        roots = link_root_ids(tx, observer_id=observer["id"], student_id=student["id"])
        if not roots:
            raise not_found()
        return linked_user_json(tx, observer, roots)


def _target_roots(tx: Tx, ctx: Ctx, observer_id: int, student_id: int) -> set[int]:
    shared = root_accounts_of(tx, observer_id) & root_accounts_of(tx, student_id)
    wanted = ctx.param("root_account_id")
    if wanted == "all":
        return shared
    root = int(wanted) if wanted and wanted.isdigit() else DOMAIN_ROOT_ACCOUNT_ID
    return shared & {root}


def add_observee(ctx: Ctx):
    """``POST /users/:observer/observees`` by access token, pairing code or credentials, in that order."""
    with ctx.store.tx() as tx:
        observer = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, observer):
            raise unauthorized()
        student_id = None
        if ctx.param("access_token") and ctx.request.headers.get("Authorization"):
            token = tx.one(
                "SELECT user_id FROM access_tokens WHERE token_hash = ? AND workflow_state = 'active'",
                digest(ctx.param("access_token")),
            )
            if token is None:
                raise ApiError(422, {"errors": [{"message": "Unknown observee."}]})
            student_id = token["user_id"]
        elif ctx.param("pairing_code") is not None:
            code = consume_pairing_code(tx, ctx.param("pairing_code"))
            if code is None:
                ctx.extra_cost += INVALID_CODE_COST
                raise ApiError(422, {"errors": [{"message": "Invalid pairing code."}]})
            student_id = code["user_id"]
        else:
            login = ctx.param("observee[unique_id]")
            if login is None:
                raise ApiError(422, {"errors": [{"message": "Unknown observee."}]})
            pseudonym = tx.one(
                "SELECT * FROM pseudonyms WHERE lower(unique_id) = lower(?) AND account_id = ? "
                "AND workflow_state = 'active'",
                login,
                DOMAIN_ROOT_ACCOUNT_ID,
            )
            if pseudonym is None:
                raise ApiError(422, {"errors": [{"message": "Unknown observee."}]})
            if not check_password(ctx.param("observee[password]") or "", pseudonym["password_hash"]):
                raise ApiError(401, {"errors": [{"message": "Invalid credentials provided."}]})
            student_id = pseudonym["user_id"]
    # The code's consumption is committed above, on its own: whatever fails next, the code is burnt.
    with ctx.store.tx() as tx:
        student = resolve_user(tx, str(student_id), ctx)
        create_link(
            tx,
            observer_id=observer["id"],
            student_id=student["id"],
            root_account_ids=_target_roots(tx, ctx, observer["id"], student["id"]),
        )
        return linked_user_json(tx, student, link_root_ids(tx, observer_id=observer["id"], student_id=student["id"]))


def put_observee(ctx: Ctx):
    """The admin link with no code: idempotent."""
    with ctx.store.tx() as tx:
        observer = resolve_user(tx, ctx.args["user_id"], ctx)
        student = resolve_user(tx, ctx.args["observee_id"], ctx)
        if not (is_admin_for(tx, ctx.user_id, observer["id"]) and is_admin_for(tx, ctx.user_id, student["id"])):
            raise unauthorized()
        create_link(
            tx,
            observer_id=observer["id"],
            student_id=student["id"],
            root_account_ids=_target_roots(tx, ctx, observer["id"], student["id"]),
        )
        return linked_user_json(tx, student, link_root_ids(tx, observer_id=observer["id"], student_id=student["id"]))


def delete_observee(ctx: Ctx):
    with ctx.store.tx() as tx:
        observer = resolve_user(tx, ctx.args["user_id"], ctx)
        if not _may_act_for(tx, ctx, observer):
            raise unauthorized()
        student = resolve_user(tx, ctx.args["observee_id"], ctx)
        # The observer removes every link; an admin only those on the root accounts they administer.
        scope = None if ctx.user_id == observer["id"] else admin_accounts(tx, ctx.user_id)
        if not remove_links(tx, observer_id=observer["id"], student_id=student["id"], root_account_ids=scope):
            raise not_found()
        return linked_user_json(tx, student, [])


ROUTES = [
    Route("POST", "/api/v1/users/:user_id/observer_pairing_codes", create_pairing_code),
    Route("GET", "/api/v1/users/:user_id/observees", list_observees),
    Route("POST", "/api/v1/users/:user_id/observees", add_observee),
    Route("GET", "/api/v1/users/:user_id/observees/:observee_id", show_observee),
    Route("PUT", "/api/v1/users/:user_id/observees/:observee_id", put_observee),
    Route("DELETE", "/api/v1/users/:user_id/observees/:observee_id", delete_observee),
    Route("GET", "/api/v1/users/:user_id/observers", list_observers),
    Route("GET", "/api/v1/users/:user_id/observers/:observer_id", show_observer),
]
