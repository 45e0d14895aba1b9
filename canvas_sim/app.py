"""The simulator's WSGI application: routing, authentication, throttling, faults and pagination.

Handlers live in the modules named after the Canvas controllers they stand in for; this module
holds what every request shares, in the order Canvas applies it (throttle, then auth, then scopes).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import unquote, urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .store import Store, digest, now, parse_time
from .throttle import Throttle, ThrottleSettings

log = logging.getLogger("canvas_sim")

DOMAIN_ROOT_ACCOUNT_ID = 1


@dataclass
class Config:
    latency_ms: int = 0
    error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    # Older Canvas answers "not authorized" with 401, newer instances with 403; clients must take both.
    unauthorized_status: int = 401
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)


class ApiError(Exception):
    """Raised by a handler to answer with a Canvas error body."""

    def __init__(self, status: int, body: dict | str, headers: dict | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def unauthenticated() -> ApiError:
    return ApiError(
        401,
        {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]},
        {"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
    )


def bad_token(message: str) -> ApiError:
    return ApiError(401, {"errors": [{"message": message}]}, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})


UNAUTHORIZED_BODY = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}


def unauthorized() -> ApiError:
    return ApiError(401, UNAUTHORIZED_BODY)


def not_found() -> ApiError:
    return ApiError(404, {"errors": [{"message": "The specified resource does not exist."}]})


def missing(param: str) -> ApiError:
    return ApiError(400, {"errors": [{"message": f"{param} is missing"}]})


def flatten_json(value, prefix: str = "") -> list[tuple[str, str]]:
    """Turn a JSON body into the bracketed keys Rails gives a controller (``a[b]``, ``a[]``)."""
    if isinstance(value, dict):
        pairs = []
        for key, inner in value.items():
            pairs += flatten_json(inner, f"{prefix}[{key}]" if prefix else str(key))
        return pairs
    if isinstance(value, list):
        pairs = []
        for inner in value:
            pairs += flatten_json(inner, f"{prefix}[]")
        return pairs
    if value is None:
        return [(prefix, "")]
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    return [(prefix, str(value))]


def truthy(value) -> bool:
    return str(value).strip().lower() in {"1", "true", "t", "yes", "on"}


class Ctx:
    """What a handler sees: the request, its parameters, the caller and the store."""

    def __init__(self, sim: Simulator, request: Request, args: dict):
        self.sim = sim
        self.store = sim.store
        self.request = request
        self.args = args
        self.user_id: int | None = None
        self.token: dict | None = None
        self.extra_cost = 0.0
        params = MultiDict(request.args)
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data(as_text=True) or "{}")
            except ValueError as exc:
                raise ApiError(400, {"errors": [{"message": "Invalid JSON body"}]}) from exc
            for key, value in flatten_json(body):
                params.add(key, value)
        else:
            for key, values in request.form.lists():
                for value in values:
                    params.add(key, value)
        self.params = params

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def params_list(self, name: str) -> list[str]:
        return self.params.getlist(name) or self.params.getlist(name.removesuffix("[]"))

    def includes(self) -> set[str]:
        return set(self.params_list("include[]"))


Handler = Callable[[Ctx], object]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # Canvas's own route pattern, used for url: scopes (``/api/v1/users/:user_id``)
    handler: Handler
    auth: str = "required"  # "required", "optional" (self-registration), "none" (OAuth pages)
    throttled: bool = True


def _werkzeug_path(pattern: str) -> str:
    parts = []
    for part in pattern.split("/"):
        parts.append(f"<{part[1:]}>" if part.startswith(":") else part)
    return "/".join(parts)


class Stats:
    """What the simulator served since the last reset, for benchmarks and fault tests (``/__sim__/stats``).

    API requests are counted by caller (``admin`` for the admin token, ``user`` for any other token,
    ``anonymous``), route pattern and status; ``throttled`` counts the throttle's own 403s apart from
    permission 403s; ``cost`` sums the throttle units the requests cost (``X-Request-Cost``);
    ``busy_seconds`` sums the time requests spent inside the simulator (over a span of time: the mean number
    in flight); ``peak_in_flight`` is the most requests of one caller kind inside the simulator at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.since = time.time()
            self.requests: Counter[tuple[str, str, str, int]] = Counter()
            self.throttled: Counter[str] = Counter()
            self.cost: Counter[str] = Counter()
            self.busy: Counter[str] = Counter()
            self.in_flight: Counter[str] = Counter()
            self.peak_in_flight: Counter[str] = Counter()

    def begin(self, caller: str) -> None:
        with self._lock:
            self.in_flight[caller] += 1
            self.peak_in_flight[caller] = max(self.peak_in_flight[caller], self.in_flight[caller])

    def end(self, caller: str, route: Route, status: int, *, throttled: bool, cost: float, seconds: float) -> None:
        with self._lock:
            self.in_flight[caller] -= 1
            self.cost[caller] += cost
            self.busy[caller] += seconds
            self.requests[(caller, route.method, route.pattern, status)] += 1
            if throttled:
                self.throttled[caller] += 1

    def describe(self) -> dict:
        with self._lock:
            return {
                "since": self.since,
                "requests": [
                    {"caller": caller, "method": method, "route": pattern, "status": status, "count": count}
                    for (caller, method, pattern, status), count in sorted(self.requests.items())
                ],
                "throttled": dict(self.throttled),
                "cost": {caller: round(total, 6) for caller, total in self.cost.items()},
                "busy_seconds": {caller: round(total, 3) for caller, total in self.busy.items()},
                "peak_in_flight": dict(self.peak_in_flight),
            }


class Simulator:
    """One simulator: its store, its runtime configuration, its throttle and its routes."""

    def __init__(self, store: Store, *, admin_token: str, config: Config):
        self.store = store
        self.admin_token = admin_token
        self.initial_config = config
        self.config = replace(config, throttle=replace(config.throttle))
        self.throttle = Throttle(self.config.throttle)
        self.stats = Stats()
        self.config_lock = threading.Lock()
        self.routes: dict[str, Route] = {}
        self.url_map = Map(strict_slashes=False, merge_slashes=False)
        self.random = random.Random()  # noqa: S311 - fault injection, not security

        from . import control, courses, oauth, observers, sis, users

        for module in (users, observers, courses, oauth, sis, control):
            for route in module.ROUTES:
                self.add(route)

    def add(self, route: Route) -> None:
        endpoint = f"{route.method} {route.pattern}"
        self.routes[endpoint] = route
        self.url_map.add(Rule(_werkzeug_path(route.pattern), endpoint=endpoint, methods=[route.method]))

    # -- configuration ---------------------------------------------------------------------------
    def configure(self, **settings) -> dict:
        with self.config_lock:
            for key, value in settings.items():
                if key.startswith("throttle_"):
                    name = key.removeprefix("throttle_")
                    if not hasattr(self.config.throttle, name):
                        raise ValueError(f"unknown setting {key}")
                    kind = type(getattr(self.config.throttle, name))
                    setattr(self.config.throttle, name, truthy(value) if kind is bool else kind(value))
                elif key == "self_registration":
                    set_self_registration(self.store, DOMAIN_ROOT_ACCOUNT_ID, value)
                elif hasattr(self.config, key) and key != "throttle":
                    setattr(self.config, key, type(getattr(self.config, key))(value))
                else:
                    raise ValueError(f"unknown setting {key}")
            return self.describe()

    def reset(self) -> dict:
        with self.config_lock:
            fresh = replace(self.initial_config, throttle=replace(self.initial_config.throttle))
            for name, value in asdict(fresh).items():
                if name != "throttle":
                    setattr(self.config, name, value)
            for name, value in asdict(fresh.throttle).items():
                setattr(self.config.throttle, name, value)
            self.throttle.clear()
        set_self_registration(self.store, DOMAIN_ROOT_ACCOUNT_ID, self.initial_self_registration)
        return self.describe()

    initial_self_registration = "observer"

    def describe(self) -> dict:
        with self.store.tx() as tx:
            row = tx.one("SELECT self_registration FROM accounts WHERE id = ?", DOMAIN_ROOT_ACCOUNT_ID)
        return {**asdict(self.config), "self_registration": row["self_registration"] if row else None}

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        # Route on the path as sent, so that an escaped slash in an SIS id (``sis_user_id:A%2F1``) stays
        # inside its segment, as in Canvas; each segment is then decoded exactly once.
        raw_path = request.environ.get("RAW_URI", "").split("?", 1)[0]
        try:
            endpoint, args = adapter.match(path_info=raw_path if raw_path.startswith("/") else None)
            args = {name: unquote(value) for name, value in args.items()}
        except NotFound:
            return json_response(404, {"errors": [{"message": "The specified resource does not exist."}]})
        except MethodNotAllowed:
            return json_response(404, {"errors": [{"message": "The specified resource does not exist."}]})
        except HTTPException as exc:  # e.g. a redirect for a trailing slash
            return exc.get_response(request.environ)
        route = self.routes[endpoint]
        if not route.throttled:
            return self.run(route, request, args)

        token = bearer_token(request)
        # Canvas keys the bucket by token, and by address for callers without one.
        key = f"token:{digest(token)}" if token else f"ip:{request.remote_addr}"
        caller = "anonymous" if not token else "admin" if secrets.compare_digest(token, self.admin_token) else "user"
        started_cpu, started = time.thread_time(), time.monotonic()
        self.stats.begin(caller)
        allowed = self.throttle.reserve(key)
        extra_cost = 0.0
        response = None
        try:
            if not allowed:
                response = Response("403 Forbidden (Rate Limit Exceeded)\n", status=403, mimetype="text/plain")
            else:
                if self.config.latency_ms:
                    time.sleep(self.config.latency_ms / 1000)
                if self.config.error_rate and self.random.random() < self.config.error_rate:
                    response = json_response(500, {"errors": [{"message": "An error occurred."}], "error_report_id": 1})
                else:
                    response, extra_cost = self.run_with_cost(route, request, args)
                    if self.config.hang_rate and self.random.random() < self.config.hang_rate:
                        # The work is done; only the answer is late, as when Canvas or a proxy stalls.
                        time.sleep(self.config.hang_seconds)
        finally:
            cost = round(time.thread_time() - started_cpu, 6) + extra_cost
            remaining = self.throttle.settle(key, cost)
            self.stats.end(
                caller,
                route,
                response.status_code if response else 500,
                throttled=not allowed,
                cost=cost,
                seconds=time.monotonic() - started,
            )
        response.headers["X-Request-Cost"] = f"{cost:.6f}"
        response.headers["X-Rate-Limit-Remaining"] = f"{remaining:.1f}"
        return response

    def run_with_cost(self, route: Route, request: Request, args: dict) -> tuple[Response, float]:
        ctx_holder: list[Ctx] = []
        response = self.run(route, request, args, ctx_holder)
        return response, (ctx_holder[0].extra_cost if ctx_holder else 0.0)

    def run(self, route: Route, request: Request, args: dict, ctx_holder: list | None = None) -> Response:
        try:
            ctx = Ctx(self, request, args)
            if ctx_holder is not None:
                ctx_holder.append(ctx)
            if route.auth != "none":
                authenticate(ctx, required=route.auth == "required")
                check_scopes(ctx, route)
            result = route.handler(ctx)
        except ApiError as exc:
            if exc.body is UNAUTHORIZED_BODY:
                exc.status = self.config.unauthorized_status
            if isinstance(exc.body, str):
                response = Response(exc.body, status=exc.status, mimetype="text/plain")
            else:
                response = json_response(exc.status, exc.body)
            response.headers.update(exc.headers)
            return response
        if isinstance(result, Response):
            return result
        return json_response(200, result)


def json_response(status: int, body) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.args.get("access_token") or request.form.get("access_token") or None


def authenticate(ctx: Ctx, *, required: bool) -> None:
    """Resolve the caller from the bearer token, with Canvas's exact refusals."""
    token = bearer_token(ctx.request)
    if token is None:
        if required:
            raise unauthenticated()
        return
    with ctx.store.tx() as tx:
        row = tx.one("SELECT * FROM access_tokens WHERE token_hash = ?", digest(token))
        user = tx.one("SELECT workflow_state FROM users WHERE id = ?", row["user_id"]) if row else None
    if row is None or user is None or user["workflow_state"] == "deleted":
        raise bad_token("Invalid access token.")
    if row["workflow_state"] == "deleted":
        raise bad_token("Revoked access token.")
    if row["expires_at"] and parse_time(row["expires_at"]) <= now():
        raise bad_token("Expired access token.")
    ctx.user_id = row["user_id"]
    ctx.token = dict(row)


# Canvas's AccessToken.always_allowed_scopes: a scoped token may always revoke itself.
ALWAYS_ALLOWED_PATTERNS = {"/login/oauth2/token"}


def check_scopes(ctx: Ctx, route: Route) -> None:
    """A token from a key with scopes may call only the routes its ``url:`` scopes name."""
    if not ctx.token or not ctx.token["scopes"] or route.pattern in ALWAYS_ALLOWED_PATTERNS:
        return
    allowed = set(ctx.token["scopes"].split())
    wanted = {f"url:{route.method}|{route.pattern}"}
    if route.method == "HEAD":
        wanted.add(f"url:GET|{route.pattern}")
    if not allowed & wanted:
        raise ApiError(401, {"errors": [{"message": "Insufficient scopes on access token."}]})


def set_self_registration(store: Store, account_id: int, value: str) -> None:
    if value not in {"observer", "all", "none"}:
        raise ValueError("self_registration must be observer, all or none")
    with store.tx() as tx:
        tx.run("UPDATE accounts SET self_registration = ? WHERE id = ?", value, account_id)


# -- pagination (lib/api.rb) -------------------------------------------------------------------
def page_params(ctx: Ctx) -> tuple[int, int]:
    def as_int(raw: str | None, default: int) -> int:
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            return 0

    per_page = min(100, max(1, as_int(ctx.param("per_page"), 10)))
    page = max(1, as_int(ctx.param("page"), 1))
    return page, per_page


def link_header(ctx: Ctx, *, page: int, per_page: int, has_next: bool, last_page: int | None) -> str:
    base = ctx.request.host_url.rstrip("/") + ctx.request.path
    kept = [(k, v) for k, v in ctx.request.args.items(multi=True) if k not in {"page", "per_page", "access_token"}]

    def url(number: int) -> str:
        query = urlencode([*kept, ("page", number), ("per_page", per_page)])
        return f"{base}?{query}"

    links = [f'<{url(page)}>; rel="current"']
    if has_next:
        links.append(f'<{url(page + 1)}>; rel="next"')
    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    links.append(f'<{url(1)}>; rel="first"')
    if last_page is not None:
        links.append(f'<{url(last_page)}>; rel="last"')
    return ",".join(links)


def paginate(ctx: Ctx, items: list, *, count_total: bool = True, serialize: Callable | None = None) -> Response:
    """Answer one page of an already ordered list, with Canvas's Link header; ``serialize`` turns each item
    of the page (only the page's: a long list costs its JSON once, not once per page) into its JSON."""
    page, per_page = page_params(ctx)
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    if serialize is not None:
        chunk = [serialize(item) for item in chunk]
    has_next = len(items) > start + per_page
    last_page = max(1, -(-len(items) // per_page)) if count_total else None
    response = json_response(200, chunk)
    response.headers["Link"] = link_header(ctx, page=page, per_page=per_page, has_next=has_next, last_page=last_page)
    return response
