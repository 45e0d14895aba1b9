"""The fuzzing harness: hostile values, how they are sent, and what every answer must be.

Every target (a URL, the persona that uses it, the fields and query parameters its view reads; see
``tests/security/fuzz_targets.py``) is sent two kinds of input:

- a sweep: every field gets every class of hostile value in :data:`SWEEP` once (NUL, control characters,
  right-to-left overrides, emoji, combining marks, very long strings, numbers, dates at the end of time,
  repeated keys...), so the classic cases are always covered, whatever hypothesis draws;
- hypothesis: :func:`submissions` draws any Unicode, control characters, long strings, numbers, lists (a
  key repeated), unknown keys and other body encodings (URL-encoded, multipart, raw bytes that are not
  UTF-8, JSON, a multipart body with a broken boundary).

:func:`fuzz_request` sends one and checks the answer: never a 5xx (an exception in the view, or in a
streamed body, counts); a refusal (a 4xx, allauth's form again at 200, or a button action's redirect
with an error message) shows a message and leaves the row count of every table of every installed app
as it was; our own forms never answer an invalid submission with 200.

Each example runs in a savepoint rolled back afterwards, with the cache (allauth's rate limits) cleared
and the client's cookies restored, so that examples do not see each other although hypothesis runs them
all inside one test's function-scoped fixtures. That is why the ``function_scoped_fixture`` health check
is suppressed in the ``fuzz`` profile: the fixtures are shared on purpose and each example undoes itself.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from django.apps import apps
from django.contrib.messages import constants as message_levels
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# -- the hypothesis profile -------------------------------------------------------------------------
# Deterministic (the same examples on every run and machine), no example database, no deadline (a
# request may take a while on a busy CI box); FUZZ_EXAMPLES raises the examples per target for a deeper
# local run, e.g. FUZZ_EXAMPLES=200.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=FUZZ_EXAMPLES,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # see the module docstring: every example undoes itself
        HealthCheck.too_slow,  # a request takes milliseconds, far more than hypothesis expects a draw to
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
fuzz_settings = settings.get_profile("fuzz")

# How many requests the fuzz tests sent, by kind; printed at the end of the run (fuzz_report).
SENT: dict[str, int] = {}


class _Report:
    def pytest_terminal_summary(self, terminalreporter):
        if SENT:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(SENT.items()))
            terminalreporter.write_line(
                f"fuzz: {sum(SENT.values())} requests ({kinds}); FUZZ_EXAMPLES={FUZZ_EXAMPLES} a target"
            )


@pytest.fixture(autouse=True)
def fuzz_report(request):
    """Import into a fuzz module: the run ends with how many requests were sent, of which kinds."""
    plugins = request.config.pluginmanager
    if not plugins.has_plugin("fuzz-report"):
        plugins.register(_Report(), "fuzz-report")


# -- hostile values ---------------------------------------------------------------------------------
class Long(str):
    """A very long string that prints short in a failure report."""

    def __repr__(self) -> str:
        return f"Long({str.__repr__(self[:12])}... {len(self):,} chars)"


def long_text(piece: str, length: int) -> Long:
    return Long((piece * (length // len(piece) + 1))[:length])


LONG_LENGTHS = (10_000, 100_000, 1_000_000)
LONG_QUERY = 100_000  # the longest value hypothesis puts in a query string (see LONG_10K)

HOSTILE: tuple[str, ...] = (
    # empty and blank
    "",
    " ",
    "\u00a0\u3000",
    # NUL (PostgreSQL refuses it in text) and other control characters
    "\x00",
    "nul\x00inside",
    "\x00" * 8,
    "\r\n\r\n",
    "\t\x0b\x0c\x1c\x1d\x1e\x1f",
    "\x1b[2J\x07",
    "\x7f\x80\x85\x9f",
    # bidirectional text and invisible characters
    "\u202egnp.exe\u202c",
    "\u200f\u061c\u2067\u2069",
    "مرحبا بالعالم",
    "שלום עולם",
    "\ufeffBOM",
    "\u200b\u200c\u200d\u2060",
    "\u2028\u2029",
    # emoji, combining marks, odd code points, case-folding traps
    "👨\u200d👩\u200d👧\u200d👦🏳️\u200d🌈",
    "e\u0301\u0302\u0303\u0304\u0305\u0306",
    "Z\u0336\u0335\u0334\u0337" * 20,
    "\ufffd\ufffe\uffff",
    "\U0010fffd\U000e0001",
    "İıſK\u212a",
    "ß@ä.de",
    # injections that must stay plain text
    "' OR '1'='1",
    '"; DROP TABLE linking_student; --',
    "<script>alert(1)</script>",
    "{{ request }}{% debug %}",
    "%s%s%n%x",
    "../../../../etc/passwd",
    "//evil.example/",
    "javascript:alert(1)",
    "https://evil.example/x",
    # wrong types: numbers, booleans, JSON where text, dates and ids are expected
    "null",
    "true",
    "[]",
    '{"a": 1}',
    "0",
    "-1",
    "1.5",
    "1e309",
    "NaN",
    "0x1F",
    "9" * 40,
    "18446744073709551616",
    "-9223372036854775809",
    "²",
    "٣",
    "１２",
    "9999-12-31",
    "0001-01-01",
    "2024-02-30",
    "99999-01-01",
    "00000000-0000-0000-0000-000000000000",
    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
    "not-a-uuid",
    # almost valid: codes, emails
    "AbC123",
    "AbC123 XyZ789,QwE456",
    "a@b",
    "\x00@example.com",
    "x@example.com\x00",
    "a" * 250 + "@example.com",
    "user@[127.0.0.1]",
)

# One of each class, for the sweep: with the fields rotated, every field gets every one of them.
SWEEP: tuple[str | list[str], ...] = (
    "",
    "nul\x00inside",
    "\t\x0b\x0c\x1b\x7f\x85",
    "\u202egnp.exe\u202c مرحبا",
    "👨\u200d👩\u200d👧\u200d👦 e\u0301\u0302",
    "18446744073709551616",
    "9999-12-31",
    "٣²",
    ["first", "second\x00"],  # the key repeated
)
# Very long values: every field at 10k and (in a body) 100k characters, and one field at a time at more.
# A page echoes what it was sent (in the field, its error, its links), so every field at a megabyte at
# once is a slow test rather than a harder one; and no web server in front of Django passes a URL of a
# megabyte (gunicorn stops at 4 KB, nginx at 8 KB, runserver at 64 KB), so a query gets 100k at most.
LONG_10K, LONG_100K, LONG_1M = long_text("a", 10_000), long_text("é👍", 100_000), long_text("Z\u0336", 1_000_000)

_any_text = st.text(max_size=40)
_control_text = st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co"]), min_size=1, max_size=12)
_marks_text = st.text(alphabet=st.characters(categories=["Mn", "Me", "Mc"]), min_size=1, max_size=12)
_number_text = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**31 - 2, max_value=2**80).map(str),
    st.floats().map(repr),
    st.decimals(allow_nan=True).map(str),
)
_mixed = st.lists(
    st.one_of(st.sampled_from(HOSTILE), _any_text, _control_text, _marks_text), min_size=1, max_size=4
).map("".join)
_long = st.builds(
    long_text,
    st.one_of(st.sampled_from([h for h in HOSTILE if h]), st.text(min_size=1, max_size=8)),
    st.sampled_from(LONG_LENGTHS),
)

hostile_values = st.one_of(st.sampled_from(HOSTILE), _any_text, _mixed, _number_text, _long)
# A list is the key sent more than once (?a=1&a=2), which Django's QueryDict keeps in full.
field_values = st.one_of(hostile_values, st.lists(hostile_values, min_size=2, max_size=3))
junk_keys = st.one_of(
    st.sampled_from(["", "\x00", "csrfmiddlewaretoken", "page", "next", "id[]", "__proto__"]), _any_text
)

# Non-UTF-8 bytes, overlong encodings and lone surrogates (which a str cannot even hold).
RAW_JUNK = (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80\x81", b"\xf8\x88\x80\x80\x80", b"\x00", b"%FF%00%ZZ")
POST_ENCODINGS = ("multipart", "urlencoded", "raw", "raw-multipart", "json", "broken-multipart")
GET_ENCODINGS = ("query", "raw")


@dataclass
class Submission:
    """What one request sends: field values (a list is a repeated key), how the body is encoded, junk bytes."""

    data: dict[str, str | list[str]]
    encoding: str
    junk: bytes = b""
    # encoding "body": ``body`` is sent as it is, with this content type (uploads built byte by byte).
    body: bytes = field(default=b"", repr=False)
    content_type: str = ""


@st.composite
def submissions(draw, fields: tuple[str, ...], method: str) -> Submission:
    data = {}
    for name in fields:
        if draw(st.booleans()) or not draw(st.booleans()):  # most fields present, some left out
            data[name] = draw(field_values)
    if draw(st.integers(0, 4)) == 0:
        data[draw(junk_keys)] = draw(field_values)
    encoding = draw(st.sampled_from(POST_ENCODINGS if method == "POST" else GET_ENCODINGS))
    junk = draw(st.sampled_from(RAW_JUNK)) if encoding.startswith("raw") else b""
    if method == "GET":
        data = {name: _capped(value) for name, value in data.items()}
    return Submission(data, encoding, junk)


def _capped(value):
    if isinstance(value, list):
        return [_capped(item) for item in value]
    return Long(value[:LONG_QUERY]) if len(value) > LONG_QUERY else value


def sweep(fields: tuple[str, ...], method: str) -> list[Submission]:
    """Every field with every value of SWEEP once (rotated, so fields differ within one request), then
    very long values (see LONG_10K) and more fields than Django reads."""
    names = fields or ("q",)  # a view that reads nothing still gets the values, under a key it ignores
    encoding = "multipart" if method == "POST" else "query"
    rotated = [
        Submission({name: SWEEP[(i + j) % len(SWEEP)] for j, name in enumerate(names)}, encoding)
        for i in range(len(SWEEP))
    ]
    if method == "POST":
        long = [dict.fromkeys(names, LONG_10K), dict.fromkeys(names, LONG_100K), {names[0]: LONG_1M}]
    else:
        long = [dict.fromkeys(names, LONG_10K), {names[0]: LONG_100K}]
    long = [Submission(data, encoding) for data in long]
    # More fields than Django reads (DATA_UPLOAD_MAX_NUMBER_FIELDS): refused whole, before any form.
    many = Submission({**{f"f{n}": "x" for n in range(1001)}, **{name: "x" for name in names}}, encoding)
    return [*rotated, *long, many]


# -- sending ----------------------------------------------------------------------------------------
def _pairs(data: dict) -> list[tuple[str, str]]:
    return [(key, item) for key, value in data.items() for item in (value if isinstance(value, list) else [value])]


def _multipart(pairs, junk: bytes, boundary: str = "FuzzBoundary") -> bytes:
    parts = []
    for key, value in pairs:
        name = key.replace('"', "%22").replace("\r", "").replace("\n", "")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8", "surrogatepass")
            + junk
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def send(client: Client, method: str, url: str, submission: Submission):
    """One request, sent as ``submission`` says."""
    data, encoding, junk = submission.data, submission.encoding, submission.junk
    pairs = _pairs(data)
    if method == "GET":
        query = urlencode(pairs)
        if encoding == "raw":
            # Percent-escaped bytes that are not UTF-8, straight into QUERY_STRING.
            query += "&" + quote(junk, safe="") + "=" + quote(junk, safe="")
        return client.get(f"{url}?{query}" if query else url)
    if encoding == "multipart":
        return client.post(url, data)
    if encoding == "urlencoded":
        return client.post(url, urlencode(pairs), content_type="application/x-www-form-urlencoded")
    if encoding == "raw":
        body = urlencode(pairs).encode() + b"&" + junk + b"=" + junk + b"&name" + junk
        return client.post(url, body, content_type="application/x-www-form-urlencoded")
    if encoding == "raw-multipart":
        return client.post(url, _multipart(pairs, junk), content_type="multipart/form-data; boundary=FuzzBoundary")
    if encoding == "json":
        return client.post(url, json.dumps(data), content_type="application/json")
    if encoding == "body":
        return client.post(url, submission.body, content_type=submission.content_type)
    if encoding == "broken-multipart":
        return client.post(url, _multipart(pairs, b""), content_type="multipart/form-data; boundary=\x00\u00e9")
    raise ValueError(encoding)


# -- what is in the database ------------------------------------------------------------------------
def _tables() -> list[str]:
    models = apps.get_models(include_auto_created=True)
    return sorted({m._meta.db_table for m in models if m._meta.managed and not m._meta.proxy})


def table_counts() -> dict[str, int]:
    """The number of rows in every table of every installed app, in one query."""
    tables = _tables()
    quote_name = connection.ops.quote_name
    # Table names from the app registry, quoted: nothing here comes from a request.
    counts = ", ".join(f"(SELECT COUNT(*) FROM {quote_name(table)})" for table in tables)  # noqa: S608
    sql = f"SELECT {counts}"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip(tables, cursor.fetchone(), strict=True))


def _changed(before: dict[str, int], after: dict[str, int]) -> dict[str, str]:
    return {table: f"{before[table]} -> {after[table]}" for table in before if before[table] != after[table]}


# -- judging an answer ------------------------------------------------------------------------------
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
SIGN_IN_PATHS = ("/accounts/login/", "/accounts/2fa/authenticate/", "/accounts/2fa/reauthenticate/", "/admin/login/")


def visible_text(body: bytes) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", body.decode("utf-8", "replace"))).split())


def _forms_with_errors(response) -> list:
    found = []
    for context in response.context or []:
        for value in context.flatten().values() if hasattr(context, "flatten") else []:
            if hasattr(value, "errors") and hasattr(value, "is_bound") and value.is_bound and value.errors:
                if all(value is not seen for seen in found):
                    found.append(value)
    return found


def _error_messages(response) -> list[str]:
    storage = getattr(response.wsgi_request, "_messages", None)
    queued = getattr(storage, "_queued_messages", []) if storage is not None else []
    return [str(m) for m in queued if m.level >= message_levels.ERROR]


@dataclass
class Outcome:
    status: int
    refused: bool
    body: bytes = b""
    changed: dict[str, str] = field(default_factory=dict)


def judge(response, body: bytes, method: str, refusal: str) -> tuple[bool, list[str]]:
    """Whether the answer is a refusal, and what is wrong with it (empty when nothing is)."""
    status, problems = response.status_code, []
    forms = _forms_with_errors(response)
    if status >= 500:
        return True, [f"answered {status}"]
    if 400 <= status < 500:
        if not visible_text(body):
            problems.append(f"answered {status} with no message")
        if forms and b"errorlist" not in body:
            problems.append(f"answered {status} without showing the form's errors next to its fields")
        return True, problems
    if status in (301, 302, 303, 307, 308):
        errors = _error_messages(response)
        if refusal == "redirect" and errors:
            return True, problems
        return False, problems
    # 2xx
    if forms:
        if refusal == "rerender":
            if b"errorlist" not in body:
                problems.append("showed a form with errors but not the errors")
            return True, problems
        problems.append(f"answered {status} to a form with errors ({_summary(forms)}); an invalid form answers 400")
        return True, problems
    return False, problems


def _summary(forms) -> str:
    return "; ".join(f"{type(form).__name__}: {sorted(form.errors)}" for form in forms)


class FuzzFailure(AssertionError):
    pass


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} chars)"


def fuzz_request(
    client: Client,
    method: str,
    url: str,
    submission: Submission,
    *,
    refusal: str = "400",
    kind: str = "form",
    signed_in: bool = True,
    accepted: Callable[[object], None] | None = None,
    ignore_tables: frozenset[str] = frozenset(),
) -> Outcome:
    """Send ``submission`` and check the answer (see the module docstring); the example leaves no trace."""
    cookies = copy.deepcopy(client.cookies)
    cache.clear()
    SENT[kind] = SENT.get(kind, 0) + 1

    def what() -> str:
        return f"{method} {url} with {_short(submission)}"

    try:
        with transaction.atomic():
            before = table_counts()
            try:
                response = send(client, method, url, submission)
                body = b"".join(response.streaming_content) if response.streaming else response.content
            except Exception as exc:
                raise FuzzFailure(f"{what()} raised {type(exc).__name__}: {_short(str(exc), 500)} (a 500)") from exc
            refused, problems = judge(response, body, method, refusal)
            location = response.get("Location", "")
            if signed_in and location.startswith(SIGN_IN_PATHS):
                problems.append(f"was sent to sign in ({location}): the fuzz did not reach the view")
            changed = _changed(before, table_counts()) if refused else {}
            changed = {table: change for table, change in changed.items() if table not in ignore_tables}
            if changed:
                problems.append(f"refused it ({response.status_code}) but left rows behind: {changed}")
            if not refused and not problems and accepted is not None:
                accepted(response)  # what a target checks of a write it accepted: that it is whole
            if problems:
                raise FuzzFailure(f"{what()}: " + "; ".join(problems) + f"\n{visible_text(body)[:800]}")
            transaction.set_rollback(True)
            return Outcome(response.status_code, refused, body, changed)
    finally:
        client.cookies = cookies


# -- the URL conf -----------------------------------------------------------------------------------
def walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def walked_urls() -> list[tuple[str, str]]:
    """Every (route, key) in the URL conf; the key is the URL's name, or its route when it has none."""
    return sorted({(route, pattern.name or route) for route, pattern in walk(get_resolver().url_patterns)})


def random_uuid(seed: int) -> uuid.UUID:
    return uuid.UUID(int=(seed * 0x9E3779B97F4A7C15) % (1 << 128), version=4)


# -- what a page asks for ---------------------------------------------------------------------------
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_ACTION = re.compile(r'\baction="([^"]*)"', re.I)
_NAME = re.compile(r'<(?:input|select|textarea|button)\b[^>]*?\bname="([^"]+)"', re.I)


def page_fields(client: Client, url: str) -> tuple[str, ...]:
    """The names of the fields (and named buttons) in the forms of ``url``'s page that post to ``url``."""
    cookies = copy.deepcopy(client.cookies)
    try:
        with transaction.atomic():
            response = client.get(url)
            transaction.set_rollback(True)
    finally:
        client.cookies = cookies
    if response.status_code != 200 or response.streaming:
        return ()
    names: list[str] = []
    for attributes, inner in _FORM.findall(response.content.decode("utf-8", "replace")):
        action = _ACTION.search(attributes)
        if action and html.unescape(action.group(1)).split("?")[0] not in ("", url):
            continue
        names += [html.unescape(name) for name in _NAME.findall(inner) if name != "csrfmiddlewaretoken"]
    return tuple(dict.fromkeys(names))


_QUERY_LINK = re.compile(r'href="\?([^"#]*)"')


def page_query_keys(client: Client, url: str) -> tuple[str, ...]:
    """The query parameters the page's own links add (an admin list's filters, ordering, page)."""
    cookies = copy.deepcopy(client.cookies)
    try:
        with transaction.atomic():
            response = client.get(url)
            transaction.set_rollback(True)
    finally:
        client.cookies = cookies
    keys = [
        key
        for link in _QUERY_LINK.findall(response.content.decode("utf-8", "replace"))
        for key, _value in parse_qsl(html.unescape(link), keep_blank_values=True)
    ]
    return tuple(dict.fromkeys(keys))


def each(cases: dict[str, Callable[[], None]]) -> None:
    """Run every case, then fail once, naming every case that failed and why (one case does not hide another).

    The fuzz tests run many URLs per test, so that a persona is signed in once rather than once a URL.
    """
    failures = []
    for name, case in cases.items():
        try:
            case()
        except Exception as exc:  # noqa: BLE001 - reported below, with the case's name
            notes = "\n".join(getattr(exc, "__notes__", []))
            failures.append(f"--- {name}\n{type(exc).__name__}: {exc}\n{notes}".strip())
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)
