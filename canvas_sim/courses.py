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
