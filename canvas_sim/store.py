"""The simulator's own data: one SQLite file, one connection, one lock.

Every request does a few tiny queries, so serialising them behind a lock costs nothing measurable
and removes SQLITE_BUSY from the picture; slow behaviour (latency, hangs) is simulated outside it.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    parent_account_id INTEGER,
    root_account_id INTEGER,
    uuid TEXT NOT NULL,
    self_registration TEXT NOT NULL DEFAULT 'observer'
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sortable_name TEXT NOT NULL,
    short_name TEXT NOT NULL,
    locale TEXT,
    email TEXT,
    created_at TEXT NOT NULL,
    workflow_state TEXT NOT NULL DEFAULT 'registered'
);
CREATE TABLE IF NOT EXISTS pseudonyms (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    unique_id TEXT NOT NULL,
    password_hash TEXT,
    sis_user_id TEXT,
    integration_id TEXT,
    workflow_state TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS pseudonyms_login ON pseudonyms (account_id, lower(unique_id));
CREATE INDEX IF NOT EXISTS pseudonyms_sis ON pseudonyms (account_id, sis_user_id);
CREATE INDEX IF NOT EXISTS pseudonyms_user ON pseudonyms (user_id);
CREATE TABLE IF NOT EXISTS account_admins (
    user_id INTEGER NOT NULL REFERENCES users(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (user_id, account_id)
);
CREATE TABLE IF NOT EXISTS courses (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    root_account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    course_code TEXT NOT NULL,
    sis_course_id TEXT,
    workflow_state TEXT NOT NULL DEFAULT 'available',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    course_id INTEGER NOT NULL REFERENCES courses(id),
    root_account_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    workflow_state TEXT NOT NULL,
    associated_user_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS enrollments_user ON enrollments (user_id);
CREATE INDEX IF NOT EXISTS enrollments_course ON enrollments (course_id);
CREATE TABLE IF NOT EXISTS developer_keys (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    require_scopes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS access_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    developer_key_id INTEGER,
    token_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT UNIQUE,
    scopes TEXT NOT NULL DEFAULT '',
    purpose TEXT,
    expires_at TEXT,
    workflow_state TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY,
    developer_key_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    code_challenge TEXT,
    expires_at TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS oauth_sessions (
    session_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pairing_codes (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    code TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    workflow_state TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pairing_codes_code ON pairing_codes (code);
CREATE TABLE IF NOT EXISTS observation_links (
    id INTEGER PRIMARY KEY,
    observer_id INTEGER NOT NULL REFERENCES users(id),
    student_id INTEGER NOT NULL REFERENCES users(id),
    root_account_id INTEGER NOT NULL,
    workflow_state TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- The simulator's own: when the link last became active, in Unix seconds to the microsecond, so a
    -- benchmark can time a link from the parent's click to Canvas (Canvas's timestamps are to the second).
    linked_at REAL,
    UNIQUE (observer_id, student_id, root_account_id)
);
CREATE TABLE IF NOT EXISTS sis_batches (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    workflow_state TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    processing_errors TEXT NOT NULL DEFAULT '[]',
    processing_warnings TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    user_id INTEGER,
    "to" TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(value: datetime | str | None) -> str | None:
    """Canvas's JSON timestamps: ISO-8601 UTC, second precision, ``Z``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_time(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def digest(secret: str) -> str:
    """Tokens, codes and refresh tokens are stored hashed, as Canvas stores ``crypted_token``."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    # A simulator needs no slow hash; pbkdf2 with few rounds keeps a 1,000-user seed fast.
    hashed = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return f"{salt}${hashed}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or "$" not in stored:
        return False
    salt, hashed = stored.split("$", 1)
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return secrets.compare_digest(candidate, hashed)


class Store:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        # Stores are kept between runs (the demo's): add what newer versions of the schema have.
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(observation_links)")}
        if "linked_at" not in columns:
            self._conn.execute("ALTER TABLE observation_links ADD COLUMN linked_at REAL")

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One transaction: commits on success, rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def is_empty(self) -> bool:
        with self.tx() as tx:
            return tx.one("SELECT COUNT(*) AS n FROM accounts")["n"] == 0


class Tx:
    """Thin helpers over the connection, used only inside ``Store.tx()``."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def one(self, sql: str, *params) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def insert(self, table: str, **values) -> int:
        columns = ", ".join(f'"{name}"' for name in values)
        marks = ", ".join("?" for _ in values)
        cursor = self.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values()))
        return cursor.lastrowid

    def run(self, sql: str, *params) -> int:
        return self.conn.execute(sql, params).rowcount
