"""What the simulator holds at first start: always a root account, the integration admin and the
portal's developer key; with ``--seed demo`` a small, deterministic school to click through."""

from __future__ import annotations

import uuid

from .courses import insert_course, insert_enrollment
from .observers import create_link
from .store import Store, Tx, digest, iso, now
from .users import create_user_row

ROOT_ACCOUNT_ID = 1
OTHER_ROOT_ACCOUNT_ID = 2
ADMIN_LOGIN = "portal-integration"
STUDENT_PASSWORD = "student-demo"
PARENT_PASSWORD = "parent-demo"
TEACHER_PASSWORD = "teacher-demo"

STUDENTS = [
    "Ava Thompson",
    "Liam Okafor",
    "Sofia Garcia",
    "Noah Kim",
    "Isabella Rossi",
    "Mason Patel",
    "Mia Nguyen",
    "Ethan Brown",
    "Amelia Haddad",
    "Lucas Silva",
    "Harper Johansson",
    "Elijah Moore",
    "Evelyn Chen",
    "James Wilson",
    "Abigail Lopez",
    "Benjamin Clarke",
    "Emily Novak",
    "Henry Adeyemi",
    "Ella Martin",
    "Alexander Ivanova",
    "Scarlett O'Brien",
    "Daniel Schmidt",
    "Grace Yamamoto",
    "Matthew Dubois",
    "Chloe Andersson",
    "Samuel Mensah",
    "Zoe Fernandes",
    "David Kowalski",
    "Lily Mahmoud",
    "Ivy Newcomer",
]
PARENTS = [
    # (name, email, linked to the student with this SIS id, or None)
    ("Maria Garcia", "maria.garcia@example.com", "S1003"),
    ("David Chen", "david.chen@example.com", None),
    ("Aisha Johnson", "aisha.johnson@example.com", None),
]


def ensure_base(store: Store, *, admin_token: str, client_id: str, client_secret: str, redirect_uris: list[str]):
    """Idempotent: safe on every start, so a kept data file picks up a new admin token or key."""
    with store.tx() as tx:
        if tx.one("SELECT 1 FROM accounts WHERE id = ?", ROOT_ACCOUNT_ID) is None:
            tx.insert("accounts", id=ROOT_ACCOUNT_ID, name="Maple Grove School District", uuid=uuid.uuid4().hex)
            tx.insert("accounts", id=OTHER_ROOT_ACCOUNT_ID, name="Cedar Valley School District", uuid=uuid.uuid4().hex)
        admin = tx.one("SELECT user_id FROM pseudonyms WHERE unique_id = ?", ADMIN_LOGIN)
        if admin is None:
            admin_id = create_user_row(tx, name="Portal Integration", account_id=ROOT_ACCOUNT_ID, login=ADMIN_LOGIN)
            tx.insert("account_admins", user_id=admin_id, account_id=ROOT_ACCOUNT_ID)
        else:
            admin_id = admin["user_id"]
        if tx.one("SELECT 1 FROM access_tokens WHERE token_hash = ?", digest(admin_token)) is None:
            tx.insert(
                "access_tokens",
                user_id=admin_id,
                token_hash=digest(admin_token),
                purpose="admin",
                created_at=iso(now()),
            )
        key = tx.one("SELECT id FROM developer_keys WHERE client_id = ?", client_id)
        if key is None:
            tx.insert(
                "developer_keys",
                client_id=client_id,
                client_secret=client_secret,
                name="Family Portal",
                redirect_uris=" ".join(redirect_uris),
            )
        else:
            tx.run(
                "UPDATE developer_keys SET client_secret = ?, redirect_uris = ? WHERE id = ?",
                client_secret,
                " ".join(redirect_uris),
                key["id"],
            )


def seed_demo(store: Store) -> bool:
    """Load the demo school once; False when it is already there."""
    with store.tx() as tx:
        if tx.one("SELECT 1 FROM pseudonyms WHERE sis_user_id = 'S1001'"):
            return False
        _seed_demo(tx)
    return True


def _seed_demo(tx: Tx) -> None:
    account = dict(tx.one("SELECT * FROM accounts WHERE id = ?", ROOT_ACCOUNT_ID))
    grade5 = insert_course(tx, account=account, name="Grade 5, Room 12", course_code="G5-12", sis_course_id="C5-12")
    science = insert_course(tx, account=account, name="Grade 8 Science", course_code="G8-SCI", sis_course_id="C8-SCI")
    courses = {c: dict(tx.one("SELECT * FROM courses WHERE id = ?", c)) for c in (grade5, science)}
    teacher = create_user_row(
        tx,
        name="Tomás Rivera",
        account_id=ROOT_ACCOUNT_ID,
        login="t.rivera@maplegrove.test",
        password=TEACHER_PASSWORD,
        sis_user_id="T2001",
        email="t.rivera@maplegrove.test",
    )
    for course in courses.values():
        insert_enrollment(tx, course=course, user_id=teacher, type="TeacherEnrollment")
    by_sis = {}
    for number, name in enumerate(STUDENTS, start=1):
        sis_id = f"S{1000 + number}"
        login = f"s{1000 + number}"
        user_id = create_user_row(
            tx,
            name=name,
            account_id=ROOT_ACCOUNT_ID,
            login=login,
            password=STUDENT_PASSWORD,
            sis_user_id=sis_id,
            email=f"{login}@students.maplegrove.test",
        )
        by_sis[sis_id] = user_id
        if name == "Ivy Newcomer":
            continue  # the student who is not enrolled yet, so Canvas refuses her a pairing code
        course = courses[grade5] if number <= 15 else courses[science]
        insert_enrollment(tx, course=course, user_id=user_id, type="StudentEnrollment")
        if number % 7 == 0:
            insert_enrollment(
                tx,
                course=courses[science if course["id"] == grade5 else grade5],
                user_id=user_id,
                type="StudentEnrollment",
            )
    for name, email, linked_to in PARENTS:
        parent = create_user_row(
            tx, name=name, account_id=ROOT_ACCOUNT_ID, login=email, password=PARENT_PASSWORD, email=email
        )
        if linked_to:
            create_link(tx, observer_id=parent, student_id=by_sis[linked_to], root_account_ids={ROOT_ACCOUNT_ID})


def demo_summary(*, base_url: str, client_id: str, client_secret: str) -> str:
    lines = [
        f"Canvas simulator at {base_url}",
        f"  OAuth developer key: client_id={client_id} client_secret={client_secret}",
        f"  Students (password {STUDENT_PASSWORD}):",
    ]
    for number, name in enumerate(STUDENTS, start=1):
        note = "  (no enrollment yet)" if name == "Ivy Newcomer" else ""
        lines.append(f"    s{1000 + number:<6} SIS S{1000 + number}  {name}{note}")
    lines.append(f"  Parents (password {PARENT_PASSWORD}):")
    for name, email, linked_to in PARENTS:
        lines.append(f"    {email:<28} {name}" + (f"  (already observes S{linked_to[1:]})" if linked_to else ""))
    lines.append(f"  Teacher: t.rivera@maplegrove.test (password {TEACHER_PASSWORD})")
    return "\n".join(lines)
