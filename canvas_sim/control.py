"""The simulator's own control API, outside ``/api/v1``: never part of Canvas.

Tests and the demo use it to add users quickly, mint tokens, read the mail Canvas would have sent,
and switch faults on and off at run time. Every call but ``health`` needs the admin token.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from .app import DOMAIN_ROOT_ACCOUNT_ID, ApiError, Ctx, Route, bearer_token, truthy
from .courses import insert_course, insert_enrollment
from .oauth import issue_token
from .store import Tx, iso
from .users import create_user_row, login_taken

DEFAULT_COURSE_SIS_ID = "SIM-DEFAULT"


def _require_admin(ctx: Ctx) -> None:
    if not secrets.compare_digest(bearer_token(ctx.request) or "", ctx.sim.admin_token):
        raise ApiError(401, {"errors": [{"message": "simulator admin token required"}]})


def health(ctx: Ctx):
    return {"status": "ok"}


def configure(ctx: Ctx):
    _require_admin(ctx)
    settings = {key.split("[")[0]: ctx.param(key) for key in ctx.params}
    try:
        return ctx.sim.configure(**settings)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, {"errors": [{"message": str(exc)}]}) from exc


def reset(ctx: Ctx):
    _require_admin(ctx)
    return ctx.sim.reset()


def stats(ctx: Ctx):
    _require_admin(ctx)
    return ctx.sim.stats.describe()


def stats_reset(ctx: Ctx):
    _require_admin(ctx)
    ctx.sim.stats.reset()
    return ctx.sim.stats.describe()


def default_course(tx: Tx) -> dict:
    row = tx.one("SELECT * FROM courses WHERE sis_course_id = ?", DEFAULT_COURSE_SIS_ID)
    if row is None:
        account = dict(tx.one("SELECT * FROM accounts WHERE id = ?", DOMAIN_ROOT_ACCOUNT_ID))
        course_id = insert_course(tx, account=account, name="Simulator Course", sis_course_id=DEFAULT_COURSE_SIS_ID)
        row = tx.one("SELECT * FROM courses WHERE id = ?", course_id)
    return dict(row)


def make_user(ctx: Ctx):
    _require_admin(ctx)
    login = ctx.param("login")
    if not login:
        raise ApiError(400, {"errors": [{"message": "login is missing"}]})
    password = ctx.param("password") or None
    with ctx.store.tx() as tx:
        if login_taken(tx, DOMAIN_ROOT_ACCOUNT_ID, login):
            raise ApiError(400, {"errors": [{"message": f"login {login} is taken"}]})
        user_id = create_user_row(
            tx,
            name=ctx.param("name") or login,
            account_id=DOMAIN_ROOT_ACCOUNT_ID,
            login=login,
            password=password,
            sis_user_id=ctx.param("sis_user_id") or None,
            email=ctx.param("email") or (login if "@" in login else None),
        )
        # Logins on further root accounts, for users who belong to two districts.
        for raw in ctx.params_list("accounts[]"):
            account_id = int(raw)
            if account_id != DOMAIN_ROOT_ACCOUNT_ID:
                tx.insert("pseudonyms", user_id=user_id, account_id=account_id, unique_id=login)
        if truthy(ctx.param("student", "")):
            insert_enrollment(tx, course=default_course(tx), user_id=user_id, type="StudentEnrollment")
        if truthy(ctx.param("admin", "")):
            tx.insert("account_admins", user_id=user_id, account_id=DOMAIN_ROOT_ACCOUNT_ID)
        token = None
        if truthy(ctx.param("token", "true")):
            token, _ = issue_token(tx, user_id=user_id, developer_key_id=None)
        user = tx.one("SELECT * FROM users WHERE id = ?", user_id)
    return {
        "id": user_id,
        "name": user["name"],
        "login": login,
        "password": password,
        "sis_user_id": ctx.param("sis_user_id") or None,
        "email": user["email"],
        "token": token,
    }


def make_token(ctx: Ctx):
    _require_admin(ctx)
    raw = ctx.param("user_id", "")
    if not raw.isdigit():
        raise ApiError(400, {"errors": [{"message": "user_id is missing"}]})
    expires_in = ctx.param("expires_in")
    with ctx.store.tx() as tx:
        if tx.one("SELECT 1 FROM users WHERE id = ?", int(raw)) is None:
            raise ApiError(404, {"errors": [{"message": "no such user"}]})
        token, _ = issue_token(
            tx,
            user_id=int(raw),
            developer_key_id=None,
            scopes=" ".join(ctx.params_list("scopes[]")),
            lifetime=timedelta(seconds=float(expires_in)) if expires_in else None,
        )
    return {"access_token": token}


def messages(ctx: Ctx):
    _require_admin(ctx)
    to = ctx.param("to")
    with ctx.store.tx() as tx:
        rows = tx.all('SELECT * FROM messages WHERE (? IS NULL OR lower("to") = lower(?)) ORDER BY id', to, to)
    return {
        "messages": [
            {
                "id": r["id"],
                "user_id": r["user_id"],
                "to": r["to"],
                "kind": r["kind"],
                "subject": r["subject"],
                "created_at": iso(r["created_at"]),
            }
            for r in rows
        ]
    }


def list_users(ctx: Ctx):
    """Every user with their logins and the students they observe (active links), for tests that count
    accounts and links; ``?email=`` keeps the users with that login or email (case-insensitive)."""
    _require_admin(ctx)
    email = ctx.param("email")
    with ctx.store.tx() as tx:
        users = tx.all(
            "SELECT * FROM users WHERE ? IS NULL OR lower(email) = lower(?) OR id IN "
            "(SELECT user_id FROM pseudonyms WHERE lower(unique_id) = lower(?)) ORDER BY id",
            email,
            email,
            email,
        )
        ids = [row["id"] for row in users]
        marks = ",".join("?" * len(ids))
        logins = tx.all(f"SELECT * FROM pseudonyms WHERE user_id IN ({marks}) ORDER BY id", *ids) if ids else []
        links = (
            tx.all(
                f"SELECT * FROM observation_links WHERE workflow_state = 'active' AND observer_id IN ({marks}) "
                "ORDER BY id",
                *ids,
            )
            if ids
            else []
        )
    return {
        "users": [
            {
                "id": row["id"],
                "name": row["name"],
                "email": row["email"],
                "workflow_state": row["workflow_state"],
                "logins": [
                    {"account_id": p["account_id"], "unique_id": p["unique_id"], "sis_user_id": p["sis_user_id"]}
                    for p in logins
                    if p["user_id"] == row["id"]
                ],
                "observees": [
                    {
                        "student_id": link["student_id"],
                        "root_account_id": link["root_account_id"],
                        "linked_at": link["linked_at"],
                    }
                    for link in links
                    if link["observer_id"] == row["id"]
                ],
            }
            for row in users
        ]
    }


ROUTES = [
    Route("GET", "/__sim__/health", health, auth="none", throttled=False),
    Route("POST", "/__sim__/config", configure, auth="none", throttled=False),
    Route("POST", "/__sim__/config/reset", reset, auth="none", throttled=False),
    Route("POST", "/__sim__/users", make_user, auth="none", throttled=False),
    Route("GET", "/__sim__/users", list_users, auth="none", throttled=False),
    Route("POST", "/__sim__/tokens", make_token, auth="none", throttled=False),
    Route("GET", "/__sim__/messages", messages, auth="none", throttled=False),
    Route("GET", "/__sim__/stats", stats, auth="none", throttled=False),
    Route("POST", "/__sim__/stats/reset", stats_reset, auth="none", throttled=False),
]
