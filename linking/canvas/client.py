"""The Canvas API client: one request function with the retry policy, and the calls the portal makes.

Retry policy
------------
* **Throttled** (``403`` text/plain ``403 Forbidden (Rate Limit Exceeded)``): Canvas did not process the
  request, so any method is retried, up to ``max_throttle_retries`` times, with exponential backoff and
  full jitter; then :class:`CanvasThrottled`.
* **Nothing sent** (connect timeout, connection refused, name resolution failure): any method is retried
  up to ``max_retries`` times, because Canvas never saw the request.
* **5xx, read timeouts, dropped connections**: Canvas may have processed the request. GET, PUT and
  DELETE are idempotent in Canvas (PUT links, DELETE unlinks) and are retried up to ``max_retries``
  times with backoff and full jitter. POST (user creation, pairing-code link, code creation) is never
  retried: :class:`CanvasTransient` is raised with ``may_have_happened=True`` and the caller must look
  at Canvas (``show_observee``, ``find_user_by_email``) before repeating it.
* Every other error (4xx) is raised at once; redirects are refused.
* Pacing: each response's ``X-Rate-Limit-Remaining`` is remembered per token; while the estimated
  remaining allowance is below ``low_remaining`` the next request with that token first sleeps a little
  (at most ``max_pace_seconds``) so the bucket can drain.
* Concurrency: with a ``limiter`` (:mod:`linking.canvas.limiter`; the factories in :mod:`linking.canvas`
  pass the process-wide one) each attempt holds a slot for its token while it is on the wire, and every
  ``X-Rate-Limit-Remaining`` is reported to it, so all workers together keep few requests in flight per
  token. Backoff and pacing sleeps hold no slot.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .errors import (
    CanvasAmbiguousMatch,
    CanvasError,
    CanvasNoLinkCreated,
    CanvasNotFound,
    CanvasThrottled,
    CanvasTransient,
    error_for,
    is_throttled,
)
from .limiter import CanvasLimiter
from .recording import canvas_call_note
from .redaction import redact
from .transport import (
    TRANSPORT_ERRORS,
    BearerAuth,
    estimated_allowance,
    get_session,
    nothing_was_sent,
    remember_allowance,
)

logger = logging.getLogger("linking.canvas")

PER_PAGE = 100
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_ID_PREFIXES = ("sis_user_id", "sis_login_id", "sis_integration_id", "lti_context_id", "lti_1_3_id")


@dataclass(frozen=True)
class PairingCode:
    """An observer pairing code as Canvas issued it. The code is left out of ``repr`` (logs)."""

    user_id: int
    code: str = field(repr=False)
    expires_at: datetime
    workflow_state: str = "active"


def parse_timestamp(value: str | None) -> datetime | None:
    """Canvas timestamps (``2026-09-01T17:45:25Z``) as aware datetimes."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"Canvas timestamp without a zone: {value!r}")
    return parsed


def user_ref(user_id: int | str) -> str:
    """A user id as it goes into a path: ``42``, ``self`` or ``sis_user_id:<quoted value>``."""
    if isinstance(user_id, bool):
        raise TypeError("a user id is not a bool")
    if isinstance(user_id, int):
        if user_id <= 0:
            raise ValueError(f"not a Canvas user id: {user_id}")
        return str(user_id)
    text = str(user_id).strip()
    if text == "self" or re.fullmatch(r"[0-9]+", text):
        return text
    prefix, colon, value = text.partition(":")
    if colon and prefix in USER_ID_PREFIXES and value:
        # quote everything, "/" included: an SIS id is one path segment.
        return f"{prefix}:{quote(value, safe='')}"
    raise ValueError(f"not a Canvas user id: {user_id!r}")


class CanvasClient:
    """A Canvas API client acting with one token (the admin's, or a student's OAuth token).

    Cheap to create: the HTTP session and the per-token rate-limit state are shared by the process.
    See the module docstring for the retry policy.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        account_id: str | int = "self",
        timeout: tuple[float, float] = (5.0, 30.0),
        max_retries: int = 2,
        max_throttle_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        low_remaining: float = 100.0,
        max_pace_seconds: float = 2.0,
        outflow_per_second: float = 10.0,
        max_pages: int = 1000,
        limiter: CanvasLimiter | None = None,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be http(s)://host, got {base_url!r}")
        if parts.path.strip("/") or parts.query:
            raise ValueError(f"base_url is the Canvas root (no /api/v1 or other path), got {base_url!r}")
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
            raise ValueError("token must be a non-empty string without spaces")
        if timeout is None or len(timeout) != 2 or not all(t and t > 0 for t in timeout):
            raise ValueError("timeout must be (connect_seconds, read_seconds), both > 0")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.account_id = str(account_id)
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.max_retries = max_retries
        self.max_throttle_retries = max_throttle_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.low_remaining = low_remaining
        self.max_pace_seconds = max_pace_seconds
        self.outflow_per_second = outflow_per_second
        self.max_pages = max_pages
        self.limiter = limiter
        self._auth = BearerAuth(token.strip())
        self._bucket_key = hashlib.sha256(f"{self.base_url}\0{token.strip()}".encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<CanvasClient {self.base_url} account={self.account_id}>"

    # -- the one request function -------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        paginate: bool = False,
    ) -> Any:
        """Make one API call and return its JSON body (None when empty).

        ``path`` starts with ``/api/v1/``. ``data`` is sent form-encoded, as Canvas documents its
        parameters (``pseudonym[unique_id]``). With ``paginate=True`` (GET only) the first request asks
        for ``per_page=100`` and ``rel="next"`` links are followed to the end; the items of every page
        come back as one list. Raises a :class:`CanvasError` subclass on failure.
        """
        method = method.upper()
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        url = self.base_url + path
        if not paginate:
            return self._json(self._send(method, url, params=params, data=data), method)
        if method != "GET" or data:
            raise ValueError("only GET requests are paginated")
        return list(self._items(url, params))

    def _items(self, url: str, params: Mapping[str, Any] | None) -> Iterator[Any]:
        for page in self._pages(url, params):
            yield from page

    def _pages(self, url: str, params: Mapping[str, Any] | None) -> Iterator[list]:
        """Each page of a list call, following ``rel="next"`` (one request per page, on demand)."""
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        next_url: str | None = url
        while next_url:
            response = self._send("GET", next_url, params=query)
            page = self._json(response, "GET")
            if not isinstance(page, list):
                raise CanvasError(
                    status=response.status_code,
                    messages=["expected a list"],
                    method="GET",
                    path=redact(response.request.path_url),
                )
            yield page
            query = None  # the next link carries the whole query
            next_url = response.links.get("next", {}).get("url")
            if next_url:
                self._check_next_link(next_url, seen, response)
                seen.add(next_url)

    def _check_next_link(self, next_url: str, seen: set[str], response: requests.Response) -> None:
        parts = urlsplit(next_url)
        problem = None
        if f"{parts.scheme}://{parts.netloc}".lower() != self.base_url.lower():
            # The token goes with every page; never send it to a host other than our Canvas.
            problem = "next link points to another host"
        elif next_url in seen:
            problem = "next link repeats a page"
        elif len(seen) >= self.max_pages:
            problem = f"more than {self.max_pages} pages"
        if problem:
            raise CanvasError(
                status=response.status_code,
                messages=[problem],
                method="GET",
                path=redact(response.request.path_url),
            )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Send with the retry policy; return a 2xx response or raise."""
        session = get_session()
        failures = throttles = 0
        while True:
            self._pace()
            prepared = session.prepare_request(requests.Request(method, url, params=params, data=data, auth=self._auth))
            path = redact(prepared.path_url)
            environment = session.merge_environment_settings(prepared.url, {}, None, None, None)
            attempt = failures + throttles + 1
            started = time.monotonic()
            try:
                with self._slot():
                    started = time.monotonic()  # the log shows time on the wire, not time waiting for a slot
                    response = session.send(prepared, timeout=self.timeout, allow_redirects=False, **environment)
            except TRANSPORT_ERRORS as exc:
                nothing_sent = nothing_was_sent(exc)
                may_retry = (nothing_sent or method in IDEMPOTENT_METHODS) and failures < self.max_retries
                self._log(
                    logging.WARNING,
                    method,
                    path,
                    None,
                    started,
                    attempt,
                    outcome=f"{type(exc).__name__}{', retrying' if may_retry else ''}",
                )
                if may_retry:
                    failures += 1
                    self._backoff(failures)
                    continue
                raise CanvasTransient(
                    may_have_happened=not nothing_sent,
                    messages=[f"{type(exc).__name__}: {exc}"],
                    method=method,
                    path=path,
                ) from None
            remember_allowance(self._bucket_key, response)
            self._observe(response)
            if 200 <= response.status_code < 300:
                self._log(logging.DEBUG, method, path, response, started, attempt, outcome="ok")
                return response
            if 300 <= response.status_code < 400:
                # Following a redirect could turn a POST into a GET or leave our host: refuse.
                self._log(logging.WARNING, method, path, response, started, attempt, outcome="redirect")
                raise CanvasError(
                    status=response.status_code,
                    messages=[f"unexpected redirect to {redact(response.headers.get('Location', '?'))}"],
                    method=method,
                    path=path,
                )
            error = error_for(response, method, path)
            if isinstance(error, CanvasThrottled) and throttles < self.max_throttle_retries:
                self._log(logging.WARNING, method, path, response, started, attempt, outcome="throttled")
                throttles += 1
                self._backoff(throttles)
                continue
            if isinstance(error, CanvasTransient) and method in IDEMPOTENT_METHODS and failures < self.max_retries:
                self._log(logging.WARNING, method, path, response, started, attempt, outcome="retrying")
                failures += 1
                self._backoff(failures)
                continue
            level = logging.WARNING if isinstance(error, (CanvasThrottled, CanvasTransient)) else logging.INFO
            outcome = "throttled" if isinstance(error, CanvasThrottled) else type(error).__name__
            self._log(level, method, path, response, started, attempt, outcome=outcome)
            raise error

    @staticmethod
    def _json(response: requests.Response, method: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise CanvasError(
                status=response.status_code,
                messages=["response is not JSON"],
                method=method,
                path=redact(response.request.path_url),
            ) from None

    def _slot(self) -> AbstractContextManager[None]:
        # Taken after pacing and released as soon as the response is in, whatever happened.
        return self.limiter.slot(self._bucket_key) if self.limiter is not None else nullcontext()

    def _observe(self, response: requests.Response) -> None:
        if self.limiter is None:
            return
        try:
            remaining = float(response.headers["X-Rate-Limit-Remaining"])
        except (KeyError, ValueError):
            return
        self.limiter.observe(self._bucket_key, remaining, refused=is_throttled(response))

    def _backoff(self, attempt: int) -> None:
        # Full jitter: concurrent workers that failed together must not come back together.
        time.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))))

    def _pace(self) -> None:
        if self.limiter is not None:
            return  # the limiter holds requests back while the bucket has no room (effective_cap 0)
        estimate = estimated_allowance(self._bucket_key, outflow_per_second=self.outflow_per_second)
        if estimate is None or estimate >= self.low_remaining:
            return
        pause = min(self.max_pace_seconds, (self.low_remaining - estimate) / self.outflow_per_second)
        logger.debug("canvas pacing %.2f s (about %.0f of the rate limit left)", pause, estimate)
        time.sleep(pause)

    def _log(
        self,
        level: int,
        method: str,
        path: str,
        response: requests.Response | None,
        started: float,
        attempt: int,
        *,
        outcome: str,
    ) -> None:
        duration_ms = round((time.monotonic() - started) * 1000)
        status = response.status_code if response is not None else None
        cost = response.headers.get("X-Request-Cost") if response is not None else None
        remaining = response.headers.get("X-Rate-Limit-Remaining") if response is not None else None
        logger.log(
            level,
            "canvas %s %s -> %s %s in %d ms (attempt %d, cost %s, remaining %s)",
            method,
            path,
            status,
            outcome,
            duration_ms,
            attempt,
            cost,
            remaining,
            extra={
                "canvas_method": method,
                "canvas_path": path,
                "canvas_status": status,
                "canvas_outcome": outcome,
                "canvas_duration_ms": duration_ms,
                "canvas_attempt": attempt,
                "canvas_cost": cost,
            },
        )
        canvas_call_note(method=method, path=path, status=status, outcome=outcome)

    def _get_or_none(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.request("GET", path, params=params)
        except CanvasNotFound:
            return None

    # -- users --------------------------------------------------------------------------------

    def get_user(self, user_id: int | str) -> dict:
        """``GET /users/:id``: the User object (``user_id`` may be ``self`` or ``sis_user_id:X``)."""
        return self.request("GET", f"/api/v1/users/{user_ref(user_id)}")

    def find_user_by_sis_id(self, sis_user_id: str) -> dict | None:
        """The user with exactly this SIS id (one call, no search), or None."""
        return self._get_or_none(f"/api/v1/users/{user_ref(f'sis_user_id:{sis_user_id}')}")

    def find_user_by_login(self, login: str) -> dict | None:
        """The user with exactly this login id (``sis_login_id:``), or None."""
        return self._get_or_none(f"/api/v1/users/{user_ref(f'sis_login_id:{login.strip()}')}")

    def search_users(self, term: str) -> list[dict]:
        """Every page of the account's fuzzy user search (with ``email``). Use ``find_user_*`` for exact.

        Canvas matches names by substring, and for admins logins, SIS ids and emails too; a numeric term
        also matches the user with that id. Terms shorter than 2 characters raise ValueError.
        """
        term = term.strip()
        if len(term) < 2:
            raise ValueError("Canvas needs a search term of 2 or more characters")
        return self.request(
            "GET",
            f"/api/v1/accounts/{quote(self.account_id, safe='')}/users",
            params={"search_term": term, "include[]": ["email"]},
            paginate=True,
        )

    def list_account_users(self, *, max_pages: int | None = None) -> tuple[list[dict], bool]:
        """The account's users as an admin sees them (``login_id``, ``sis_user_id``, ``email``), 100 a
        request, and whether that is all of them: with ``max_pages`` it stops after that many requests.

        Each user comes once, with their primary login; finding a login or SIS id that is not a user's
        primary one takes :meth:`find_user_by_login` or :meth:`find_user_by_sis_id`.
        """
        users: list[dict] = []
        url = f"{self.base_url}/api/v1/accounts/{quote(self.account_id, safe='')}/users"
        pages = self._pages(url, {"include[]": ["email"]})
        for number, page in enumerate(pages, start=1):
            users += page
            if max_pages is not None and number >= max_pages:
                # A short page is the last one; after a full one only another request could tell.
                return users, len(page) < PER_PAGE
        return users, True

    def find_user_by_email(self, email: str) -> dict | None:
        """The user whose login or email is exactly ``email`` (case-insensitive), or None.

        A login match wins over an email match (logins are unique; emails are not). Several users
        with that email and none with that login raise :class:`CanvasAmbiguousMatch`.
        """
        return self._find_exact(email, ("login_id",), ("email",))

    def find_user_by_identifier(self, term: str) -> dict | None:
        """The user whose login, SIS id or email is exactly ``term``, or None. Never matches Canvas ids
        (use :meth:`get_user`); Canvas's fuzzy and numeric-id matches are discarded."""
        return self._find_exact(term, ("login_id", "sis_user_id"), ("email",))

    def _find_exact(self, term: str, unique_fields: tuple[str, ...], other_fields: tuple[str, ...]) -> dict | None:
        wanted = term.strip().casefold()
        users = self.search_users(term)
        for fields in (unique_fields, other_fields):
            matches = {
                user["id"]: user
                for user in users
                if any(str(user.get(name) or "").casefold() == wanted for name in fields)
            }
            if len(matches) == 1:
                return next(iter(matches.values()))
            if matches:
                raise CanvasAmbiguousMatch(
                    messages=[f"{len(matches)} users match exactly (ids {sorted(matches)})"],
                    method="GET",
                    path=f"/api/v1/accounts/{self.account_id}/users",
                )
        return None

    def create_observer(
        self,
        *,
        name: str,
        email: str,
        pairing_code: str | None = None,
        force_self_registration: bool = True,
        send_confirmation: bool = False,
        skip_confirmation: bool = False,
        locale: str | None = None,
        sis_user_id: str | None = None,
    ) -> dict:
        """Create a parent's Canvas user with ``email`` as login and email channel; returns the User.

        With ``force_self_registration`` (default) Canvas emails the parent to set their own password.
        With ``pairing_code`` the new user is linked as observer of the code's student in the same call
        (and the code is consumed). Never retried: on :class:`CanvasTransient` look the parent up with
        :meth:`find_user_by_email` before trying again. Raises :class:`CanvasLoginTaken` when the login
        exists and :class:`CanvasInvalidPairingCode` for a bad code.
        """
        email = email.strip()
        data: dict[str, str] = {
            "user[name]": name,
            "pseudonym[unique_id]": email,
            "communication_channel[type]": "email",
            "communication_channel[address]": email,
        }
        if force_self_registration:
            data["pseudonym[force_self_registration]"] = "true"
        if send_confirmation:
            data["pseudonym[send_confirmation]"] = "true"
        if skip_confirmation:
            data["communication_channel[skip_confirmation]"] = "true"
        if locale:
            data["user[locale]"] = locale
        if sis_user_id:
            data["pseudonym[sis_user_id]"] = sis_user_id
        if pairing_code:
            data["pairing_code[code]"] = pairing_code.strip()
            data["user[initial_enrollment_type]"] = "observer"
        return self.request("POST", f"/api/v1/accounts/{quote(self.account_id, safe='')}/users", data=data)

    # -- pairing codes and links ----------------------------------------------------------------

    def create_pairing_code(self, student_id: int | str) -> PairingCode:
        """A new pairing code for the student (with the student's own token or the admin's).

        Raises :class:`CanvasNotAuthorized` when the student has no live enrolment. Never retried.
        """
        body = self.request("POST", f"/api/v1/users/{user_ref(student_id)}/observer_pairing_codes")
        return PairingCode(
            user_id=int(body["user_id"]),
            code=body["code"],
            expires_at=parse_timestamp(body["expires_at"]),
            workflow_state=body.get("workflow_state", "active"),
        )

    def list_observees(self, observer_id: int | str) -> list[dict]:
        """Every student the observer is linked to (all pages)."""
        return self.request("GET", f"/api/v1/users/{user_ref(observer_id)}/observees", paginate=True)

    def list_observers(self, student_id: int | str) -> list[dict]:
        """Every observer linked to the student (all pages)."""
        return self.request("GET", f"/api/v1/users/{user_ref(student_id)}/observers", paginate=True)

    def list_enrollments(self, user_id: int | str, *, states: tuple[str, ...] = ()) -> list[dict]:
        """The user's enrollments (all pages); Canvas's default is the current ones (active, invited)."""
        params = {"state[]": list(states)} if states else None
        return self.request("GET", f"/api/v1/users/{user_ref(user_id)}/enrollments", params=params, paginate=True)

    def has_student_enrollment(self, user_id: int | str) -> bool:
        """Whether Canvas counts the user as enrolled as a student, as pairing codes require."""
        enrollments = self.list_enrollments(user_id, states=("active", "invited", "completed", "creation_pending"))
        return any(e.get("type") == "StudentEnrollment" for e in enrollments)

    def show_observee(self, observer_id: int | str, student_id: int | str) -> dict | None:
        """The student if the observer is linked to them, else None."""
        return self._get_or_none(f"/api/v1/users/{user_ref(observer_id)}/observees/{user_ref(student_id)}")

    def show_observer(self, student_id: int | str, observer_id: int | str) -> dict | None:
        """The observer if they are linked to the student, else None."""
        return self._get_or_none(f"/api/v1/users/{user_ref(student_id)}/observers/{user_ref(observer_id)}")

    def link_with_pairing_code(
        self, observer_id: int | str, code: str, *, root_account_id: int | str | None = None
    ) -> dict:
        """Link the observer to the code's student; returns the student.

        Canvas consumes the code at once, even when the request then fails. Never retried: on
        :class:`CanvasTransient` call :meth:`show_observee` (if the student is known) before asking the
        parent for a new code. Raises :class:`CanvasInvalidPairingCode` (wrong, expired or used code) and
        :class:`CanvasNoLinkCreated` when Canvas answered 200 without linking.
        """
        data: dict[str, str] = {"pairing_code": code.strip()}
        if root_account_id is not None:
            data["root_account_id"] = str(root_account_id)
        path = f"/api/v1/users/{user_ref(observer_id)}/observees"
        student = self.request("POST", path, data=data)
        _require_link(student, "POST", path)
        return student

    def link(self, observer_id: int | str, student_id: int | str, *, root_account_id: int | str | None = None) -> dict:
        """Admin link without a code (``PUT``); idempotent, so safe to repeat. Returns the student."""
        data = {"root_account_id": str(root_account_id)} if root_account_id is not None else None
        path = f"/api/v1/users/{user_ref(observer_id)}/observees/{user_ref(student_id)}"
        student = self.request("PUT", path, data=data)
        _require_link(student, "PUT", path)
        return student

    def unlink(self, observer_id: int | str, student_id: int | str) -> bool:
        """Remove the link (and the observer's enrolments through it).

        Returns True when Canvas removed a link and False when there was none (404), so callers can
        treat it as idempotent. After a retried timeout False can also mean the first attempt removed it.
        """
        path = f"/api/v1/users/{user_ref(observer_id)}/observees/{user_ref(student_id)}"
        try:
            self.request("DELETE", path)
        except CanvasNotFound:
            return False
        return True

    # -- courses --------------------------------------------------------------------------------

    def list_courses(self, account_id: int | str | None = None) -> list[dict]:
        """Every course of the account (the client's account by default) and its sub-accounts, with
        ``total_students`` (all pages). Needs the admin token."""
        account = quote(str(account_id if account_id is not None else self.account_id), safe="")
        return self.request(
            "GET", f"/api/v1/accounts/{account}/courses", params={"include[]": ["total_students"]}, paginate=True
        )

    def list_course_students(self, course_id: int | str) -> list[dict]:
        """The course's students, each once, as User objects (all pages); with the admin token they
        carry ``sis_user_id``. Canvas lists current (active and invited) enrollments only."""
        return self.request(
            "GET",
            f"/api/v1/courses/{quote(str(course_id), safe=':')}/users",
            params={"enrollment_type[]": ["student"]},
            paginate=True,
        )

    # -- SIS imports ----------------------------------------------------------------------------

    def upload_sis_import(self, archive: bytes) -> dict:
        """Submit a zip of SIS CSV files (``users.csv``, ``user_observers.csv``) to the root account;
        returns the SIS import to poll with :meth:`get_sis_import`. A POST, so never retried; sending
        the same files again does no harm (a SIS import updates users and restores links in place)."""
        return self.request(
            "POST",
            f"/api/v1/accounts/{quote(self.account_id, safe='')}/sis_imports",
            params={"import_type": "instructure_csv", "extension": "zip"},
            data=archive,  # the raw zip as the body, named by ``extension``
        )

    def get_sis_import(self, import_id: int) -> dict:
        """The SIS import's state: ``workflow_state`` and ``processing_errors`` (``[file, message]``)."""
        return self.request("GET", f"/api/v1/accounts/{quote(self.account_id, safe='')}/sis_imports/{int(import_id)}")


def _require_link(student: Any, method: str, path: str) -> None:
    if isinstance(student, dict) and student.get("observation_link_root_account_ids") == []:
        raise CanvasNoLinkCreated(
            status=200,
            messages=["Canvas created no link (observing yourself, or no shared root account)"],
            method=method,
            path=path,
            errors=None,
        )
