"""OAuth2 as Canvas serves it (``oauth2_provider_controller.rb``): a sign-in page, a consent page,
the token endpoint (authorization code with PKCE S256, refresh) and revocation."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from werkzeug.wrappers import Response

from .app import DOMAIN_ROOT_ACCOUNT_ID, Ctx, Route, json_response
from .store import Tx, check_password, digest, iso, now, parse_time

CODE_LIFETIME = timedelta(minutes=10)
TOKEN_LIFETIME = timedelta(hours=1)
SESSION_COOKIE = "canvas_sim_session"
OOB = "urn:ietf:wg:oauth:2.0:oob"


def issue_token(
    tx: Tx, *, user_id: int, developer_key_id: int | None, scopes: str = "", lifetime=None, refresh=False
) -> tuple[str, str | None]:
    token = secrets.token_urlsafe(48)
    refresh_token = secrets.token_urlsafe(48) if refresh else None
    tx.insert(
        "access_tokens",
        user_id=user_id,
        developer_key_id=developer_key_id,
        token_hash=digest(token),
        refresh_hash=digest(refresh_token) if refresh_token else None,
        scopes=scopes,
        expires_at=iso(now() + lifetime) if lifetime else None,
        created_at=iso(now()),
    )
    return token, refresh_token


# -- the browser side --------------------------------------------------------------------------
def _redirect_uri_allowed(key, redirect_uri: str) -> bool:
    if redirect_uri == OOB:
        return True
    wanted = urlsplit(redirect_uri)
    for allowed in key["redirect_uris"].split():
        known = urlsplit(allowed)
        # Canvas matches the redirect's domain, not its port: a portal on any loopback port may sign in.
        same_site = (wanted.scheme, wanted.hostname) == (known.scheme, known.hostname)
        if same_site and wanted.path.startswith(known.path):
            return True
    return False


def _redirect(uri: str, **params) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    response = Response(status=302)
    response.headers["Location"] = uri + separator + urlencode({k: v for k, v in params.items() if v is not None})
    return response


def _validate_request(tx: Tx, query: dict) -> tuple[dict | None, Response | None]:
    """Check an authorization request; bad client or redirect answer here, the rest on the redirect."""
    key = tx.one("SELECT * FROM developer_keys WHERE client_id = ?", query.get("client_id", ""))
    if key is None:
        return None, json_response(401, {"error": "invalid_client", "error_description": "unknown client"})
    redirect_uri = query.get("redirect_uri", "")
    if not _redirect_uri_allowed(key, redirect_uri):
        return None, json_response(
            400, {"error": "invalid_request", "error_description": "redirect_uri does not match client settings"}
        )
    state = query.get("state")
    if query.get("response_type") != "code":
        return None, _redirect(
            redirect_uri,
            error="unsupported_response_type",
            error_description="Only response_type=code is supported",
            state=state,
        )
    requested = set(query.get("scope", "").split())
    granted = set(key["scopes"].split())
    if (key["require_scopes"] and not requested) or not requested <= granted:
        return None, _redirect(
            redirect_uri, error="invalid_scope", error_description="A requested scope is invalid", state=state
        )
    if query.get("code_challenge") and query.get("code_challenge_method", "plain") != "S256":
        return None, _redirect(
            redirect_uri,
            error="invalid_request",
            error_description="code_challenge_method must be S256",
            state=state,
        )
    return dict(key), None


def _session_user(tx: Tx, ctx: Ctx) -> dict | None:
    cookie = ctx.request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    row = tx.one(
        "SELECT u.* FROM oauth_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.session_hash = ? AND u.workflow_state != 'deleted'",
        digest(cookie),
    )
    return dict(row) if row else None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} | Canvas (simulator)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.4rem 0;font-size:1rem}}input{{padding:.5rem}}
button{{padding:.6rem}}.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(PAGE.format(title=html.escape(title), body=body), status=status, mimetype="text/html")


def _hidden(query: str) -> str:
    return f'<input type="hidden" name="oauth_query" value="{html.escape(query)}">'


def _login_page(query: str, error: str | None = None, status: int = 200) -> Response:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _page(
        "Log in to Canvas",
        f"""{message}<form method="post" action="/login/canvas">{_hidden(query)}
<label for="login">Email or login</label><input id="login" name="pseudonym_session[unique_id]" autocomplete="username">
<label for="password">Password</label>
<input id="password" type="password" name="pseudonym_session[password]" autocomplete="current-password">
<button type="submit">Log in</button></form>""",
        status,
    )


def _consent_page(query: str, key: dict, user: dict) -> Response:
    return _page(
        "Authorize access",
        f"""<p>{html.escape(key["name"])} is requesting access to your account, {html.escape(user["name"])}.</p>
<form method="post" action="/login/oauth2/accept">{_hidden(query)}<button type="submit">Authorize</button></form>
<form method="post" action="/login/oauth2/deny">{_hidden(query)}<button type="submit">Cancel</button></form>""",
    )


def authorize(ctx: Ctx):
    query = ctx.request.query_string.decode()
    with ctx.store.tx() as tx:
        key, refusal = _validate_request(tx, dict(parse_qsl(query)))
        if refusal:
            return refusal
        user = _session_user(tx, ctx)
    return _consent_page(query, key, user) if user else _login_page(query)


def login(ctx: Ctx):
    query = ctx.param("oauth_query", "")
    login_id = ctx.param("pseudonym_session[unique_id]", "").strip()
    password = ctx.param("pseudonym_session[password]", "")
    with ctx.store.tx() as tx:
        key, refusal = _validate_request(tx, dict(parse_qsl(query)))
        if refusal:
            return refusal
        pseudonym = tx.one(
            "SELECT p.* FROM pseudonyms p JOIN users u ON u.id = p.user_id WHERE lower(p.unique_id) = lower(?) "
            "AND p.account_id = ? AND p.workflow_state = 'active' AND u.workflow_state != 'deleted'",
            login_id,
            DOMAIN_ROOT_ACCOUNT_ID,
        )
        if pseudonym is None or not check_password(password, pseudonym["password_hash"]):
            return _login_page(query, "Invalid username or password", 400)
        session = secrets.token_urlsafe(32)
        tx.insert("oauth_sessions", session_hash=digest(session), user_id=pseudonym["user_id"], created_at=iso(now()))
        user = dict(tx.one("SELECT * FROM users WHERE id = ?", pseudonym["user_id"]))
    response = _consent_page(query, key, user)
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Lax")
    return response


def accept(ctx: Ctx):
    raw = ctx.param("oauth_query", "")
    query = dict(parse_qsl(raw))
    with ctx.store.tx() as tx:
        key, refusal = _validate_request(tx, query)
        if refusal:
            return refusal
        user = _session_user(tx, ctx)
        if user is None:
            return _login_page(raw)
        code = secrets.token_urlsafe(32)
        tx.insert(
            "oauth_codes",
            code_hash=digest(code),
            developer_key_id=key["id"],
            user_id=user["id"],
            redirect_uri=query["redirect_uri"],
            scopes=query.get("scope", ""),
            code_challenge=query.get("code_challenge"),
            expires_at=iso(now() + CODE_LIFETIME),
        )
    if query["redirect_uri"] == OOB:
        return _page("Authorized", f"<p>Your code is <code>{html.escape(code)}</code></p>")
    return _redirect(query["redirect_uri"], code=code, state=query.get("state"))


def deny(ctx: Ctx):
    query = dict(parse_qsl(ctx.param("oauth_query", "")))
    with ctx.store.tx() as tx:
        _key, refusal = _validate_request(tx, query)
    if refusal:
        return refusal
    return _redirect(
        query["redirect_uri"],
        error="access_denied",
        error_description="The user denied access",
        state=query.get("state"),
    )


# -- the server side ---------------------------------------------------------------------------
def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _client_credentials(ctx: Ctx) -> tuple[str | None, str | None]:
    auth = ctx.request.authorization
    if auth is not None and auth.type == "basic":
        return auth.username, auth.password
    return ctx.param("client_id"), ctx.param("client_secret")


def token(ctx: Ctx):
    client_id, client_secret = _client_credentials(ctx)
    grant_type = ctx.param("grant_type")
    with ctx.store.tx() as tx:
        key = tx.one("SELECT * FROM developer_keys WHERE client_id = ?", client_id or "")
        if key is None:
            return _oauth_error(401, "invalid_client", "unknown client")
        if not secrets.compare_digest(key["client_secret"], client_secret or ""):
            return _oauth_error(401, "invalid_client", "invalid client")
        if grant_type == "authorization_code":
            return _exchange_code(ctx, tx, key)
        if grant_type == "refresh_token":
            return _refresh(ctx, tx, key)
        if not grant_type:
            return _oauth_error(400, "invalid_request", "grant_type is missing")
        return _oauth_error(400, "unsupported_grant_type", "The grant_type is not supported")


def _pkce_ok(challenge: str | None, verifier: str | None) -> bool:
    if not challenge:
        return True
    if not verifier:
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return secrets.compare_digest(computed, challenge)


def _user_summary(tx: Tx, user_id: int) -> dict:
    user = tx.one("SELECT * FROM users WHERE id = ?", user_id)
    return {
        "id": user["id"],
        "name": user["name"],
        "global_id": str(10000000000000 + user["id"]),
        "effective_locale": user["locale"] or "en",
    }


def _exchange_code(ctx: Ctx, tx: Tx, key) -> Response:
    code = ctx.param("code")
    if not code:
        return _oauth_error(400, "invalid_request", "code is missing")
    row = tx.one("SELECT * FROM oauth_codes WHERE code_hash = ?", digest(code))
    if row is None or row["used"] or parse_time(row["expires_at"]) <= now() or row["developer_key_id"] != key["id"]:
        return _oauth_error(400, "invalid_grant", "authorization_code not found")
    # Spent on the first attempt, right or wrong, as a one-use code must be.
    tx.run("UPDATE oauth_codes SET used = 1 WHERE code_hash = ?", row["code_hash"])
    redirect_uri = ctx.param("redirect_uri")
    if redirect_uri and redirect_uri != row["redirect_uri"]:
        return _oauth_error(400, "invalid_grant", "redirect_uri does not match")
    if not _pkce_ok(row["code_challenge"], ctx.param("code_verifier")):
        return _oauth_error(400, "invalid_grant", "code_verifier does not match code_challenge")
    access, refresh = issue_token(
        tx,
        user_id=row["user_id"],
        developer_key_id=key["id"],
        scopes=row["scopes"],
        lifetime=TOKEN_LIFETIME,
        refresh=True,
    )
    return json_response(
        200,
        {
            "access_token": access,
            "token_type": "Bearer",
            "user": _user_summary(tx, row["user_id"]),
            "refresh_token": refresh,
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        },
    )


def _refresh(ctx: Ctx, tx: Tx, key) -> Response:
    refresh_token = ctx.param("refresh_token")
    if not refresh_token:
        return _oauth_error(400, "invalid_request", "refresh_token is missing")
    row = tx.one(
        "SELECT * FROM access_tokens WHERE refresh_hash = ? AND workflow_state = 'active'", digest(refresh_token)
    )
    if row is None or row["developer_key_id"] != key["id"]:
        return _oauth_error(400, "invalid_grant", "refresh_token not found")
    # Canvas regenerates the token on the same record: the old access token stops working.
    access = secrets.token_urlsafe(48)
    tx.run(
        "UPDATE access_tokens SET token_hash = ?, expires_at = ? WHERE id = ?",
        digest(access),
        iso(now() + TOKEN_LIFETIME),
        row["id"],
    )
    return json_response(
        200,
        {
            "access_token": access,
            "token_type": "Bearer",
            "user": _user_summary(tx, row["user_id"]),
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        },
    )


def revoke(ctx: Ctx):
    with ctx.store.tx() as tx:
        tx.run("UPDATE access_tokens SET workflow_state = 'deleted' WHERE id = ?", ctx.token["id"])
    return {}


ROUTES = [
    Route("GET", "/login/oauth2/auth", authorize, auth="none", throttled=False),
    Route("POST", "/login/canvas", login, auth="none", throttled=False),
    Route("POST", "/login/oauth2/accept", accept, auth="none", throttled=False),
    Route("POST", "/login/oauth2/deny", deny, auth="none", throttled=False),
    Route("POST", "/login/oauth2/token", token, auth="none"),
    Route("DELETE", "/login/oauth2/token", revoke),
]
