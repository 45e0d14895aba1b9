"""Keeping tokens, pairing codes and passwords out of logs and error messages."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

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
