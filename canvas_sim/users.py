"""Users: lookup by every id form Canvas accepts, search, create, show, delete (``users_controller.rb``)."""

from __future__ import annotations

import re

from .app import (
    DOMAIN_ROOT_ACCOUNT_ID,
    ApiError,
    Ctx,
    Route,
    missing,
    not_found,
    paginate,
    truthy,
    unauthorized,
)
from .store import Tx, hash_password, iso, now

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- shared lookups -----------------------------------------------------------------------------
def resolve_account(tx: Tx, raw: str) -> dict:
    account_id = DOMAIN_ROOT_ACCOUNT_ID if raw == "self" else (int(raw) if raw.isdigit() else None)
    row = tx.one("SELECT * FROM accounts WHERE id = ?", account_id) if account_id else None
    if row is None:
        raise not_found()
    return dict(row)


def root_of(account: dict) -> int:
    return account["root_account_id"] or account["id"]


def resolve_user(tx: Tx, raw: str, ctx: Ctx) -> dict:
    """``:user_id`` as Canvas reads it: an id, ``self``, ``sis_user_id:X`` or ``sis_login_id:X``."""
    row = None
    if raw == "self":
        if ctx.user_id is None:
            raise not_found()
        row = tx.one("SELECT * FROM users WHERE id = ?", ctx.user_id)
    elif raw.isdigit():
        row = tx.one("SELECT * FROM users WHERE id = ?", int(raw))
    elif raw.startswith("sis_user_id:"):
        row = tx.one(
            "SELECT u.* FROM users u JOIN pseudonyms p ON p.user_id = u.id "
            "WHERE p.sis_user_id = ? AND p.account_id = ? AND p.workflow_state = 'active'",
            raw.removeprefix("sis_user_id:"),
            DOMAIN_ROOT_ACCOUNT_ID,
        )
    elif raw.startswith("sis_login_id:"):
        row = tx.one(
            "SELECT u.* FROM users u JOIN pseudonyms p ON p.user_id = u.id "
            "WHERE lower(p.unique_id) = lower(?) AND p.account_id = ? AND p.workflow_state = 'active'",
            raw.removeprefix("sis_login_id:"),
            DOMAIN_ROOT_ACCOUNT_ID,
        )
    if row is None or row["workflow_state"] == "deleted":
        raise not_found()
    return dict(row)


def root_accounts_of(tx: Tx, user_id: int) -> set[int]:
    rows = tx.all("SELECT DISTINCT account_id FROM pseudonyms WHERE user_id = ? AND workflow_state = 'active'", user_id)
    return {row["account_id"] for row in rows}


def admin_accounts(tx: Tx, user_id: int | None) -> set[int]:
    if user_id is None:
        return set()
    return {row["account_id"] for row in tx.all("SELECT account_id FROM account_admins WHERE user_id = ?", user_id)}


def is_admin_for(tx: Tx, caller_id: int | None, target_id: int) -> bool:
    """An account admin may act on users who have a login on one of their root accounts."""
    admin_of = admin_accounts(tx, caller_id)
    if not admin_of:
        return False
    return bool(admin_of & (root_accounts_of(tx, target_id) or {DOMAIN_ROOT_ACCOUNT_ID}))


def primary_pseudonym(tx: Tx, user_id: int) -> dict | None:
    row = tx.one(
        "SELECT * FROM pseudonyms WHERE user_id = ? AND workflow_state = 'active' "
        "ORDER BY account_id = ? DESC, id LIMIT 1",
        user_id,
        DOMAIN_ROOT_ACCOUNT_ID,
    )
    return dict(row) if row else None


def split_name(name: str) -> tuple[str, str]:
    parts = name.strip().split()
    if len(parts) < 2:
        return name.strip(), ""
    return " ".join(parts[:-1]), parts[-1]


def sortable(name: str) -> str:
    first, last = split_name(name)
    return f"{last}, {first}" if last else first


def user_json(tx: Tx, user: dict, *, as_admin: bool, include: set[str] = frozenset(), full: bool = False) -> dict:
    """The User object: admins also see SIS and login ids; email and avatar on request."""
    body = {
        "id": user["id"],
        "name": user["name"],
        "created_at": iso(user["created_at"]),
        "sortable_name": user["sortable_name"],
        "short_name": user["short_name"],
    }
    pseudonym = primary_pseudonym(tx, user["id"]) if as_admin else None
    if as_admin:
        body["sis_user_id"] = pseudonym["sis_user_id"] if pseudonym else None
        body["integration_id"] = pseudonym["integration_id"] if pseudonym else None
        body["login_id"] = pseudonym["unique_id"] if pseudonym else None
    if full:
        first, last = split_name(user["name"])
        body.update(
            first_name=first,
            last_name=last,
            locale=user["locale"],
            effective_locale=user["locale"] or "en",
            avatar_url=f"/images/messages/avatar-50.png?user={user['id']}",
            permissions={"can_update_name": True, "can_update_avatar": False, "limit_parent_app_web_access": False},
            email=user["email"],
        )
    else:
        if "email" in include:
            body["email"] = user["email"]
        if "avatar_url" in include:
            body["avatar_url"] = f"/images/messages/avatar-50.png?user={user['id']}"
    return body


def create_user_row(
    tx: Tx,
    *,
    name: str,
    account_id: int,
    login: str,
    password: str | None = None,
    sis_user_id: str | None = None,
    integration_id: str | None = None,
    email: str | None = None,
    locale: str | None = None,
    short_name: str | None = None,
    sortable_name: str | None = None,
    workflow_state: str = "registered",
) -> int:
    user_id = tx.insert(
        "users",
        name=name,
        sortable_name=sortable_name or sortable(name),
        short_name=short_name or name,
        locale=locale,
        email=email,
        created_at=iso(now()),
        workflow_state=workflow_state,
    )
    tx.insert(
        "pseudonyms",
        user_id=user_id,
        account_id=account_id,
        unique_id=login,
        password_hash=hash_password(password) if password else None,
        sis_user_id=sis_user_id,
        integration_id=integration_id,
    )
    return user_id


def login_taken(tx: Tx, account_id: int, login: str) -> bool:
    return (
        tx.one(
            "SELECT 1 FROM pseudonyms WHERE account_id = ? AND lower(unique_id) = lower(?) "
            "AND workflow_state = 'active'",
            account_id,
            login,
        )
        is not None
    )


def sis_id_taken(tx: Tx, account_id: int, sis_user_id: str) -> bool:
    return (
        tx.one(
            "SELECT 1 FROM pseudonyms WHERE account_id = ? AND sis_user_id = ? AND workflow_state = 'active'",
            account_id,
            sis_user_id,
        )
        is not None
    )


def validation_error(errors: dict) -> ApiError:
    return ApiError(400, {"errors": errors})


TAKEN = {
    "user": {"pseudonyms": [{"attribute": "pseudonyms", "type": "invalid", "message": "invalid"}]},
    "pseudonym": {
        "unique_id": [
            {
                "attribute": "unique_id",
                "type": "taken",
                "message": "ID already in use for this account and authentication provider",
            }
        ]
    },
}


# -- handlers -----------------------------------------------------------------------------------
def list_users(ctx: Ctx):
    search = ctx.param("search_term")
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        root = root_of(account)
        if root not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
        if search is not None and len(search.strip()) < 2:
            raise ApiError(
                400,
                {
                    "errors": [
                        {"field": "search_term", "code": "invalid", "message": "2 or more characters is required"}
                    ]
                },
            )
        term = search.strip().lower() if search else None
        narrowing, params = "", []
        if term is not None and term.isascii():
            # A first cut in SQL, so a search does not read the whole account in Python (SQLite lowers ASCII
            # only, which is all an ASCII term can match); _matches below has the last word.
            fields = ("u.name", "p.unique_id", "p.sis_user_id", "p.integration_id", "u.email")
            narrowing = " AND (u.id = ? OR " + " OR ".join(f"instr(lower({f}), ?) > 0" for f in fields) + ")"
            params = [int(term) if term.isdigit() else -1, *([term] * len(fields))]
        rows = tx.all(
            "SELECT u.*, p.unique_id, p.sis_user_id, p.integration_id FROM users u "
            "JOIN pseudonyms p ON p.user_id = u.id AND p.account_id = ? AND p.workflow_state = 'active' "
            f"WHERE u.workflow_state != 'deleted'{narrowing} ORDER BY lower(u.sortable_name), u.id",
            root,
            *params,
        )
        seen: set[int] = set()
        matched = []
        for row in rows:
            if row["id"] in seen:
                continue
            if term is not None and not _matches(row, term):
                continue
            seen.add(row["id"])
            matched.append(dict(row))
        includes = ctx.includes()
        # The account users list does not count its total, so it has no "last" link.
        return paginate(
            ctx, matched, count_total=False, serialize=lambda user: user_json(tx, user, as_admin=True, include=includes)
        )


def _matches(row, term: str) -> bool:
    # A numeric term also finds the user with exactly that id, beside every substring match.
    if term.isdigit() and row["id"] == int(term):
        return True
    fields = (row["name"], row["unique_id"], row["sis_user_id"], row["integration_id"], row["email"])
    return any(value and term in value.lower() for value in fields)


def create_user(ctx: Ctx):
    """``POST /accounts/:id/users`` and ``.../self_registration``: admin creation or self-registration."""
    from .observers import consume_pairing_code, create_link, notify

    self_registration = ctx.request.path.endswith("/self_registration")
    login = (ctx.param("pseudonym[unique_id]") or "").strip()
    name = (ctx.param("user[name]") or "").strip()
    enrollment_type = ctx.param("user[initial_enrollment_type]")
    code = ctx.param("pairing_code[code]")
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        root = root_of(account)
        as_admin = not self_registration and root in admin_accounts(tx, ctx.user_id)
        if not as_admin:
            allowed = {"observer": {"observer", "all"}}.get(enrollment_type or "", {"all"})
            if account["self_registration"] not in allowed:
                raise unauthorized()
        if not any(key.startswith("pseudonym[") for key in ctx.params):
            raise missing("pseudonym")
        errors: dict = {}
        if not login:
            errors["pseudonym"] = {
                "unique_id": [{"attribute": "unique_id", "type": "too_short", "message": "is too short"}]
            }
        elif login_taken(tx, root, login):
            errors.update(TAKEN)
        if not as_admin:
            if login and not EMAIL.match(login):
                errors.setdefault("pseudonym", {})["unique_id"] = [
                    {"attribute": "unique_id", "type": "invalid", "message": "is invalid"}
                ]
            if not name:
                errors.setdefault("user", {})["name"] = [{"attribute": "name", "type": "blank", "message": "blank"}]
            if not truthy(ctx.param("user[terms_of_use]", "")):
                errors.setdefault("user", {})["terms_of_use"] = [
                    {"attribute": "terms_of_use", "type": "accepted", "message": "must be accepted"}
                ]
            if enrollment_type == "observer" and not code:
                errors["pairing_code"] = {"code": [{"attribute": "code", "type": "blank", "message": "blank"}]}
        sis_user_id = ctx.param("pseudonym[sis_user_id]") or None
        if sis_user_id and not as_admin:
            raise unauthorized()
        if sis_user_id and sis_id_taken(tx, root, sis_user_id):
            errors.setdefault("pseudonym", {})["sis_user_id"] = [
                {"attribute": "sis_user_id", "type": "taken", "message": f'SIS ID "{sis_user_id}" is already in use'}
            ]
        pairing = None
        if code and enrollment_type == "observer" and not errors:
            pairing = consume_pairing_code(tx, code)
            if pairing is None:
                errors["pairing_code"] = {"code": [{"attribute": "code", "type": "invalid", "message": "invalid"}]}
        if errors:
            raise validation_error(errors)
        email = (ctx.param("communication_channel[address]") or "").strip() or (login if EMAIL.match(login) else None)
        force = truthy(ctx.param("pseudonym[force_self_registration]", ""))
        password = ctx.param("pseudonym[password]") or None
        user_id = create_user_row(
            tx,
            name=name or login,
            account_id=root,
            login=login,
            password=password,
            sis_user_id=sis_user_id,
            integration_id=ctx.param("pseudonym[integration_id]") or None,
            email=email,
            locale=ctx.param("user[locale]") or None,
            short_name=ctx.param("user[short_name]") or None,
            sortable_name=ctx.param("user[sortable_name]") or None,
            workflow_state="pre_registered" if force or not password else "registered",
        )
        if pairing is not None:
            create_link(tx, observer_id=user_id, student_id=pairing["user_id"], root_account_ids={root})
        if email and (force or truthy(ctx.param("pseudonym[send_confirmation]", ""))):
            kind = "complete_registration" if force else "confirm_registration"
            notify(tx, user_id=user_id, to=email, kind=kind, subject="Finish registering for Canvas")
        elif email and not as_admin and not truthy(ctx.param("communication_channel[skip_confirmation]", "")):
            notify(tx, user_id=user_id, to=email, kind="confirm_email", subject="Confirm your email for Canvas")
        user = dict(tx.one("SELECT * FROM users WHERE id = ?", user_id))
        return user_json(tx, user, as_admin=as_admin)


def show_user(ctx: Ctx):
    with ctx.store.tx() as tx:
        user = resolve_user(tx, ctx.args["user_id"], ctx)
        as_admin = is_admin_for(tx, ctx.user_id, user["id"])
        observing = tx.one(
            "SELECT 1 FROM observation_links WHERE observer_id = ? AND student_id = ? AND workflow_state = 'active'",
            ctx.user_id,
            user["id"],
        )
        if not (as_admin or user["id"] == ctx.user_id or observing):
            raise unauthorized()
        return user_json(tx, user, as_admin=as_admin, include=ctx.includes(), full=True)


def delete_user(ctx: Ctx):
    """Deleting a user removes their logins, links and enrollments; ids then answer 404."""
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        user = resolve_user(tx, ctx.args["user_id"], ctx)
        if root_of(account) not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
        stamp = iso(now())
        tx.run("UPDATE users SET workflow_state = 'deleted' WHERE id = ?", user["id"])
        tx.run("UPDATE pseudonyms SET workflow_state = 'deleted' WHERE user_id = ?", user["id"])
        tx.run(
            "UPDATE observation_links SET workflow_state = 'deleted', updated_at = ? "
            "WHERE observer_id = ? OR student_id = ?",
            stamp,
            user["id"],
            user["id"],
        )
        tx.run("UPDATE enrollments SET workflow_state = 'deleted', updated_at = ? WHERE user_id = ?", stamp, user["id"])
        return user_json(tx, user, as_admin=True)


def show_account(ctx: Ctx):
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        if root_of(account) not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
    return {
        "id": account["id"],
        "name": account["name"],
        "uuid": account["uuid"],
        "parent_account_id": account["parent_account_id"],
        "root_account_id": account["root_account_id"],
        "workflow_state": "active",
        "default_time_zone": "Etc/UTC",
    }


ROUTES = [
    Route("GET", "/api/v1/accounts/:account_id", show_account),
    Route("GET", "/api/v1/accounts/:account_id/users", list_users),
    Route("POST", "/api/v1/accounts/:account_id/users", create_user, auth="optional"),
    Route("POST", "/api/v1/accounts/:account_id/self_registration", create_user, auth="optional"),
    Route("DELETE", "/api/v1/accounts/:account_id/users/:user_id", delete_user),
    Route("GET", "/api/v1/users/:user_id", show_user),
]
