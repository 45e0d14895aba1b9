"""Just enough of courses and enrollments that "has a live student enrollment" is real."""

from __future__ import annotations

from .app import ApiError, Ctx, Route, missing, not_found, paginate, truthy, unauthorized
from .store import Tx, iso, now
from .users import admin_accounts, is_admin_for, resolve_account, resolve_user, root_of

ENROLLMENT_TYPES = {
    "StudentEnrollment",
    "TeacherEnrollment",
    "TaEnrollment",
    "ObserverEnrollment",
    "DesignerEnrollment",
}
ENROLLMENT_STATES = {"active", "invited", "inactive", "creation_pending"}


def course_json(row) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "course_code": row["course_code"],
        "sis_course_id": row["sis_course_id"],
        "account_id": row["account_id"],
        "root_account_id": row["root_account_id"],
        "workflow_state": row["workflow_state"],
        "created_at": iso(row["created_at"]),
    }


def enrollment_json(row) -> dict:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "course_id": row["course_id"],
        "root_account_id": row["root_account_id"],
        "type": row["type"],
        "role": row["type"],
        "enrollment_state": row["workflow_state"],
        "associated_user_id": row["associated_user_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def insert_course(tx: Tx, *, account: dict, name: str, course_code: str | None = None, sis_course_id=None) -> int:
    return tx.insert(
        "courses",
        account_id=account["id"],
        root_account_id=root_of(account),
        name=name,
        course_code=course_code or name,
        sis_course_id=sis_course_id,
        workflow_state="available",
        created_at=iso(now()),
    )


def insert_enrollment(tx: Tx, *, course, user_id: int, type: str, state: str = "active", associated=None) -> int:
    stamp = iso(now())
    return tx.insert(
        "enrollments",
        user_id=user_id,
        course_id=course["id"],
        root_account_id=course["root_account_id"],
        type=type,
        workflow_state=state,
        associated_user_id=associated,
        created_at=stamp,
        updated_at=stamp,
    )


def _course(tx: Tx, ctx: Ctx) -> dict:
    raw = ctx.args["course_id"]
    if raw.startswith("sis_course_id:"):
        row = tx.one("SELECT * FROM courses WHERE sis_course_id = ?", raw.removeprefix("sis_course_id:"))
    else:
        row = tx.one("SELECT * FROM courses WHERE id = ?", int(raw)) if raw.isdigit() else None
    if row is None or row["workflow_state"] == "deleted":
        raise not_found()
    if row["root_account_id"] not in admin_accounts(tx, ctx.user_id):
        raise unauthorized()
    return dict(row)


def create_course(ctx: Ctx):
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        if root_of(account) not in admin_accounts(tx, ctx.user_id):
            raise unauthorized()
        name = ctx.param("course[name]") or "Unnamed Course"
        course_id = insert_course(
            tx,
            account=account,
            name=name,
            course_code=ctx.param("course[course_code]"),
            sis_course_id=ctx.param("course[sis_course_id]") or None,
        )
        if not truthy(ctx.param("offer", "true")):
            tx.run("UPDATE courses SET workflow_state = 'unpublished' WHERE id = ?", course_id)
        return course_json(tx.one("SELECT * FROM courses WHERE id = ?", course_id))


def show_course(ctx: Ctx):
    with ctx.store.tx() as tx:
        return course_json(_course(tx, ctx))


def create_enrollment(ctx: Ctx):
    with ctx.store.tx() as tx:
        course = _course(tx, ctx)
        raw_user = ctx.param("enrollment[user_id]")
        if not raw_user:
            raise missing("enrollment[user_id]")
        user = resolve_user(tx, raw_user, ctx)
        kind = ctx.param("enrollment[type]") or "StudentEnrollment"
        state = ctx.param("enrollment[enrollment_state]") or "invited"
        if kind not in ENROLLMENT_TYPES or state not in ENROLLMENT_STATES:
            raise ApiError(400, {"errors": [{"message": "Invalid enrollment type or state"}]})
        associated = ctx.param("enrollment[associated_user_id]")
        enrollment_id = insert_enrollment(
            tx,
            course=course,
            user_id=user["id"],
            type=kind,
            state=state,
            associated=int(associated) if associated else None,
        )
        return enrollment_json(tx.one("SELECT * FROM enrollments WHERE id = ?", enrollment_id))


def list_enrollments(ctx: Ctx):
    with ctx.store.tx() as tx:
        course = _course(tx, ctx)
        types = set(ctx.params_list("type[]"))
        rows = tx.all(
            "SELECT * FROM enrollments WHERE course_id = ? AND workflow_state != 'deleted' ORDER BY id", course["id"]
        )
        items = [enrollment_json(row) for row in rows if not types or row["type"] in types]
    return paginate(ctx, items)


def list_user_enrollments(ctx: Ctx):
    """``GET /users/:user_id/enrollments``: the user themselves or an admin; by default, as in Canvas,
    only current ones (active and invited); ``state[]`` and ``type[]`` narrow or widen that."""
    with ctx.store.tx() as tx:
        user = resolve_user(tx, ctx.args["user_id"], ctx)
        if not (ctx.user_id == user["id"] or is_admin_for(tx, ctx.user_id, user["id"])):
            raise unauthorized()
        states = set(ctx.params_list("state[]")) or {"active", "invited"}
        types = set(ctx.params_list("type[]"))
        rows = tx.all(
            "SELECT e.* FROM enrollments e JOIN courses c ON c.id = e.course_id "
            "WHERE e.user_id = ? AND c.workflow_state != 'deleted' ORDER BY e.id",
            user["id"],
        )
        items = [
            enrollment_json(row)
            for row in rows
            if row["workflow_state"] in states and (not types or row["type"] in types)
        ]
    return paginate(ctx, items)


def end_enrollment(ctx: Ctx):
    """``DELETE /courses/:id/enrollments/:id?task=conclude|delete|inactivate``."""
    states = {"conclude": "completed", "delete": "deleted", "deactivate": "inactive", "inactivate": "inactive"}
    task = ctx.param("task", "conclude")
    if task not in states:
        raise ApiError(400, {"errors": [{"message": "task must be conclude, delete or inactivate"}]})
    with ctx.store.tx() as tx:
        course = _course(tx, ctx)
        row = tx.one(
            "SELECT * FROM enrollments WHERE id = ? AND course_id = ?",
            int(ctx.args["enrollment_id"]) if ctx.args["enrollment_id"].isdigit() else 0,
            course["id"],
        )
        if row is None:
            raise not_found()
        tx.run(
            "UPDATE enrollments SET workflow_state = ?, updated_at = ? WHERE id = ?",
            states[task],
            iso(now()),
            row["id"],
        )
        return enrollment_json(tx.one("SELECT * FROM enrollments WHERE id = ?", row["id"]))


ROUTES = [
    Route("POST", "/api/v1/accounts/:account_id/courses", create_course),
    Route("GET", "/api/v1/courses/:course_id", show_course),
    Route("GET", "/api/v1/courses/:course_id/enrollments", list_enrollments),
    Route("POST", "/api/v1/courses/:course_id/enrollments", create_enrollment),
    Route("DELETE", "/api/v1/courses/:course_id/enrollments/:enrollment_id", end_enrollment),
    Route("GET", "/api/v1/users/:user_id/enrollments", list_user_enrollments),
]


# -- course lists for the staff console (accounts_controller#courses_api, courses_controller#users) -------
ENROLLMENT_TYPE_PARAMS = {
    "student": "StudentEnrollment",
    "teacher": "TeacherEnrollment",
    "ta": "TaEnrollment",
    "observer": "ObserverEnrollment",
    "designer": "DesignerEnrollment",
}
# Canvas's default for course users: current enrollments only.
CURRENT_STATES = {"active", "invited"}


def list_account_courses(ctx: Ctx):
    """``GET /accounts/:id/courses``: admins only; the account's and its sub-accounts' courses, not
    deleted ones, by name; ``search_term`` (2+ characters) matches name, course code or SIS id, and a
    numeric term the exact id too; ``include[]=total_students`` counts current student enrollments."""
    search = ctx.param("search_term")
    with ctx.store.tx() as tx:
        account = resolve_account(tx, ctx.args["account_id"])
        if root_of(account) not in admin_accounts(tx, ctx.user_id):
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
        accounts = _account_tree(tx, account["id"])
        rows = tx.all(
            f"SELECT * FROM courses WHERE workflow_state != 'deleted' "
            f"AND account_id IN ({','.join('?' * len(accounts))}) ORDER BY lower(name), id",
            *accounts,
        )
        term = search.strip().lower() if search else None
        totals = _student_totals(tx) if "total_students" in ctx.includes() else None
        items = []
        for row in rows:
            if term is not None and not _course_matches(row, term):
                continue
            body = course_json(row)
            if totals is not None:
                body["total_students"] = totals.get(row["id"], 0)
            items.append(body)
    return paginate(ctx, items, count_total=term is None)


def _account_tree(tx: Tx, account_id: int) -> list[int]:
    found, frontier = [account_id], [account_id]
    while frontier:
        children = [
            row["id"]
            for parent in frontier
            for row in tx.all("SELECT id FROM accounts WHERE parent_account_id = ?", parent)
        ]
        found += children
        frontier = children
    return found


def _course_matches(row, term: str) -> bool:
    if term.isdigit() and row["id"] == int(term):
        return True
    return any(value and term in value.lower() for value in (row["name"], row["course_code"], row["sis_course_id"]))


def _student_totals(tx: Tx) -> dict[int, int]:
    rows = tx.all(
        "SELECT course_id, COUNT(DISTINCT user_id) AS n FROM enrollments "
        "WHERE type = 'StudentEnrollment' AND workflow_state IN ('active', 'invited') GROUP BY course_id"
    )
    return {row["course_id"]: row["n"] for row in rows}


def list_course_users(ctx: Ctx):
    """``GET /courses/:id/users``: the course's users (each once), by sortable name. Admins and the
    course's teachers and TAs may read it. ``enrollment_type[]`` (``student``, ``teacher``...) and
    ``enrollment_state[]`` (default: active and invited) narrow it."""
    from .users import user_json

    with ctx.store.tx() as tx:
        course = _roster_course(tx, ctx)
        as_admin = course["root_account_id"] in admin_accounts(tx, ctx.user_id)
        raw_types = ctx.params_list("enrollment_type[]")
        if any(kind not in ENROLLMENT_TYPE_PARAMS for kind in raw_types):
            raise ApiError(400, {"errors": [{"message": "Invalid enrollment_type"}]})
        types = {ENROLLMENT_TYPE_PARAMS[kind] for kind in raw_types}
        states = set(ctx.params_list("enrollment_state[]")) or CURRENT_STATES
        rows = tx.all(
            "SELECT DISTINCT u.* FROM users u JOIN enrollments e ON e.user_id = u.id "
            "WHERE e.course_id = ? AND u.workflow_state != 'deleted' "
            f"AND e.workflow_state IN ({','.join('?' * len(states))}) "
            + (f"AND e.type IN ({','.join('?' * len(types))}) " if types else "")
            + "ORDER BY lower(u.sortable_name), u.id",
            course["id"],
            *sorted(states),
            *sorted(types),
        )
        items = [user_json(tx, dict(row), as_admin=as_admin, include=ctx.includes()) for row in rows]
    return paginate(ctx, items)


def _roster_course(tx: Tx, ctx: Ctx) -> dict:
    raw = ctx.args["course_id"]
    if raw.startswith("sis_course_id:"):
        row = tx.one("SELECT * FROM courses WHERE sis_course_id = ?", raw.removeprefix("sis_course_id:"))
    else:
        row = tx.one("SELECT * FROM courses WHERE id = ?", int(raw)) if raw.isdigit() else None
    if row is None or row["workflow_state"] == "deleted":
        raise not_found()
    if row["root_account_id"] in admin_accounts(tx, ctx.user_id):
        return dict(row)
    teaching = tx.one(
        "SELECT 1 FROM enrollments WHERE course_id = ? AND user_id = ? AND type IN ('TeacherEnrollment', "
        "'TaEnrollment') AND workflow_state IN ('active', 'invited')",
        row["id"],
        ctx.user_id,
    )
    if teaching is None:
        raise unauthorized()
    return dict(row)


ROUTES += [
    Route("GET", "/api/v1/accounts/:account_id/courses", list_account_courses),
    Route("GET", "/api/v1/courses/:course_id/users", list_course_users),
]
