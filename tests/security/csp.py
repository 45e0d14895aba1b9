"""Reading a Content-Security-Policy header and checking a page against it, as a browser would.

Only what the portal's policy uses: source lists of ``'self'``, ``'none'``, scheme sources (``data:``)
and origins. A page breaks the policy when it carries inline script or style (a ``<script>`` with a
body, a ``<style>`` element, a ``style=`` or ``on…=`` attribute, a ``javascript:`` URL) or loads,
embeds or posts to something the policy does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# A <script> of these types is data a script reads, never run, so the policy does not apply to it.
SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module"}


def parse_policy(header: str) -> dict[str, list[str]]:
    policy = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


def allowed(policy: dict[str, list[str]], directive: str, url: str, page_url: str) -> bool:
    """Whether ``directive`` (falling back to default-src) lets ``page_url`` use ``url``."""
    sources = policy.get(directive, policy.get("default-src", []))
    target, page = urlsplit(urljoin(page_url, url)), urlsplit(page_url)
    for source in sources:
        if source == "'self'" and (target.scheme, target.netloc) == (page.scheme, page.netloc):
            return True
        if source.endswith(":") and target.scheme == source[:-1]:
            return True
        origin = urlsplit(source)
        if origin.netloc and (target.scheme, target.netloc) == (origin.scheme, origin.netloc):
            return True
    return False


@dataclass
class Page:
    """What a page loads, embeds and posts to, and anything inline the policy would block."""

    scripts: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._page_url = page_url
        self._inline_script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        for name, value in attributes.items():
            if name.startswith("on"):
                self.page.inline.append(f"<{tag} {name}=…> (an inline event handler)")
            if name == "style":
                self.page.inline.append(f"<{tag} style=…> (an inline style)")
            if name in {"href", "src", "action", "formaction"} and value.strip().lower().startswith("javascript:"):
                self.page.inline.append(f"<{tag} {name}=javascript:…>")
        if tag == "script" and attributes.get("type", "").lower() in SCRIPT_TYPES:
            if "src" in attributes:
                self.page.scripts.append(attributes["src"])
            else:
                self._inline_script = ""
        elif tag == "style":
            self.page.inline.append("<style> (an inline stylesheet)")
        elif tag == "link" and "stylesheet" in attributes.get("rel", "").split():
            self.page.stylesheets.append(attributes.get("href", ""))
        elif tag == "img":
            self.page.images.append(attributes.get("src", ""))
        elif tag == "form":
            # A form without an action posts to the page itself.
            self.page.forms.append(attributes.get("action") or self._page_url)
        elif tag in {"iframe", "object", "embed", "base"}:
            self.page.inline.append(f"<{tag}> (the policy allows none)")

    def handle_data(self, data: str) -> None:
        if self._inline_script is not None:
            self._inline_script += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inline_script is not None:
            if self._inline_script.strip():
                self.page.inline.append(f"<script>{self._inline_script.strip()[:60]}…</script>")
            self._inline_script = None


def read_page(html: str, page_url: str) -> Page:
    parser = _Parser(page_url)
    parser.feed(html)
    return parser.page


def violations(html: str, header: str, page_url: str) -> list[str]:
    """Everything on the page that the policy in ``header`` would stop the browser from using."""
    policy, page = parse_policy(header), read_page(html, page_url)
    found = list(page.inline)
    for directive, urls in (
        ("script-src", page.scripts),
        ("style-src", page.stylesheets),
        ("img-src", page.images),
        ("form-action", page.forms),
    ):
        found += [f"{directive} blocks {url}" for url in urls if not allowed(policy, directive, url, page_url)]
    return found
