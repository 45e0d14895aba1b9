"""axe-core's WCAG 2.1 A and AA rules, run in the page (vendored: tests/browser/vendor/axe-core)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# WCAG 2.0 and 2.1, levels A and AA: what the issue asks, and what schools' accessibility policies cite.
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page) -> list[str]:
    """Every violation on the page as it is now, one line each (rule, impact, where, how to fix)."""
    # Evaluated by the browser's debugger protocol, not as a script of the page: the portal's
    # Content-Security-Policy, which admits only its own files, stays on.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        RULES,
    )
    lines = []
    for violation in result["violations"]:
        for node in violation["nodes"]:
            lines.append(
                f"{violation['id']} ({violation['impact']}) at {', '.join(map(str, node['target']))}: "
                f"{node['failureSummary'].strip()}  [{page.url}]"
            )
    return lines


def assert_accessible(page) -> None:
    violations = axe_violations(page)
    assert not violations, f"{len(violations)} axe violation(s):\n" + "\n".join(violations)
