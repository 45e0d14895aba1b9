"""The school's own look: its name and logo in every page's header, its colour for links and buttons.

Three settings (README, "Settings"), each checked at start-up in portal/settings.py:

- ``SCHOOL_NAME``: shown before "Family Portal" in the header and on printed letters and cards;
- ``SCHOOL_LOGO``: an image file on the server, served here at ``/school/logo``; without one, a plain
  mark in the school's colour;
- ``SCHOOL_COLOR``: the accent of links, buttons and highlights, which must reach WCAG AA's 4.5:1 on
  white and on its own tint (portal/palette.py works out the tint and the hover shade).

The colour reaches pages as a tiny stylesheet, ``/school/theme.css``, after the portal's own: the
Content-Security-Policy admits no inline style, and a file of ours needs no exception to it. Both
addresses carry a digest of what they serve (``?v=``), so a browser keeps them for a year and fetches
again only when the school changes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition, require_safe

# The stylesheet's own accent (static/css/portal.css): with it, pages need no theme.css.
PORTAL_COLOR = "#0b5cad"
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip
LOGO_MAX_BYTES = 1024 * 1024
# A year, as for the hashed static files; an address without the current digest is kept five minutes.
FOREVER = 365 * 24 * 3600
A_WHILE = 300


@dataclass(frozen=True)
class School:
    name: str
    logo_url: str
    # None when the school keeps the portal's own colour: no stylesheet to fetch.
    theme_url: str | None


def school(request: HttpRequest) -> dict[str, School]:
    """Template context for every page (settings.TEMPLATES): ``school.name``, ``school.logo_url``..."""
    return {"school": school_now()}


def school_now() -> School:
    theme = None
    if settings.SCHOOL_PALETTE["accent"] != PORTAL_COLOR:
        theme = f"{reverse('school_theme')}?v={_digest(theme_css().encode())}"
    return School(name=settings.SCHOOL_NAME, logo_url=f"{reverse('school_logo')}?v={_logo()[2]}", theme_url=theme)


def theme_css() -> str:
    variables = "".join(f" --{name}: {value};" for name, value in settings.SCHOOL_PALETTE.items())
    return f"/* The school's colour (SCHOOL_COLOR): portal/school.py. */\n:root {{{variables} }}\n"


def default_mark() -> bytes:
    """A plain mark in the school's colour, for a school that set no logo: a schoolhouse on a rounded square."""
    palette = settings.SCHOOL_PALETTE
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40" width="40" height="40">'
        f'<rect width="40" height="40" rx="8" fill="{palette["accent"]}"/>'
        '<path d="M20 8 31 15v2H9v-2zM11 19h4v10h-4zM18 19h4v10h-4zM25 19h4v10h-4zM8 31h24v3H8z" fill="#fff"/>'
        "</svg>"
    ).encode()


@lru_cache(maxsize=4)
def _logo_file(path: str, modified_ns: int, size: int) -> tuple[bytes, str, str]:
    content = Path(path).read_bytes()
    return content, LOGO_TYPES[Path(path).suffix.lower()], _digest(content)


def _logo() -> tuple[bytes, str, str]:
    """(content, content type, digest): the school's file, read again only when it changes, or the mark."""
    if settings.SCHOOL_LOGO:
        stat = Path(settings.SCHOOL_LOGO).stat()
        return _logo_file(str(settings.SCHOOL_LOGO), stat.st_mtime_ns, stat.st_size)
    mark = default_mark()
    return mark, "image/svg+xml", _digest(mark)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


def _cached(request: HttpRequest, response: HttpResponse, digest: str) -> HttpResponse:
    if request.GET.get("v") == digest:
        patch_cache_control(response, public=True, max_age=FOREVER, immutable=True)
    else:
        patch_cache_control(response, public=True, max_age=A_WHILE)
    return response


@require_safe
@condition(etag_func=lambda request: _digest(theme_css().encode()))
def theme(request: HttpRequest) -> HttpResponse:
    css = theme_css()
    return _cached(request, HttpResponse(css, content_type="text/css; charset=utf-8"), _digest(css.encode()))


@require_safe
@condition(etag_func=lambda request: _logo()[2])
def logo(request: HttpRequest) -> HttpResponse:
    content, content_type, digest = _logo()
    response = HttpResponse(content, content_type=content_type)
    # An SVG opened on its own is a document: it may run nothing and load nothing.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return _cached(request, response, digest)
