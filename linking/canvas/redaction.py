"""Keeping tokens, pairing codes and passwords out of logs and error messages."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, unquote_plus

REDACTED = "[redacted]"
SECRET_NAMES = frozenset(
    {"access_token", "refresh_token", "client_secret", "code", "pairing_code", "password", "token"}
)
_PARAM = re.compile(r"(?P<lead>^|[?&;\s])(?P<key>[^=&;?#\s]+)=(?P<value>[^&;#\s]*)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s,;\"']+")


def _is_secret_name(key: str) -> bool:
    # "pairing_code[code]", "observee%5Bpassword%5D" and "access_token" are all secret.
    return any(part in SECRET_NAMES for part in re.findall(r"[^\[\]]+", unquote_plus(key)))


def redact(text: str) -> str:
    """``text`` (a URL, path, query string or message) with secrets replaced by ``[redacted]``.

    Replaces the values of ``access_token``, ``refresh_token``, ``client_secret``, ``code``,
    ``pairing_code``, ``password`` and ``token`` (also nested, as in ``pairing_code[code]`` or
    ``observee[password]``, plain or percent-encoded) and bearer tokens.
    """

    def hide(match: re.Match[str]) -> str:
        if not _is_secret_name(match["key"]):
            return match[0]
        return f"{match['lead']}{match['key']}={REDACTED}"

    return _BEARER.sub(rf"\g<1>{REDACTED}", _PARAM.sub(hide, text))


# A secret parameter anywhere, also inside another parameter's value once that is decoded.
# Longest names first, so that "pairing_code" is not read as "code".
_SECRET_ALTERNATIVES = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
_NESTED_SECRET = re.compile(
    rf"(?P<lead>^|[?&;\s\[])(?P<key>(?:[a-z_]+\[)?(?:{_SECRET_ALTERNATIVES})\]?)=(?P<value>[^&;#\s\"']*)"
)


def redact_log_message(text: str) -> str:
    """``text`` redacted, also where a secret hides percent-encoded in another parameter.

    "Add a child" links carry the pairing code, and signing in carries the link on in ``next``
    (``/accounts/login/?next=/family/add/%3Fcode%3DAbC123``): such a line is decoded (up to three
    times, for a link inside a link) and written decoded, its secrets replaced. A line with no secret
    is returned as it was, still encoded.
    """
    cleaned = redact(text)
    decoded = cleaned
    for _ in range(3):
        decoded = unquote(decoded)
        hidden = _NESTED_SECRET.sub(lambda m: f"{m['lead']}{m['key']}={REDACTED}", decoded)
        if hidden != decoded:
            return redact(hidden)
    return cleaned


class RedactSecretsFilter(logging.Filter):
    """A log handler's filter that rewrites a record's message with :func:`redact_log_message`.

    On the portal's handlers (settings.LOGGING, and the worker's through portal/celery.py), so that a
    request line with a pairing code, or any message with a token, is written without it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_log_message(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
