"""A school's colour, checked against WCAG's contrast rule and turned into the stylesheet's accent colours.

Pure functions with no Django in them: the settings module calls :func:`accent_palette` at start-up, so a
colour that would make links or buttons hard to read stops the portal with a message, not on a page.

The stylesheet uses the accent three ways (static/css/portal.css): as text and links on white, as white
text on a button, and as text on the accent's own pale tint (badges, table heads, filters). WCAG 2.1 AA
asks 4.5:1 of normal text, so the colour must reach it on white and on the tint; white on a button then
follows (contrast is symmetric).
"""

from __future__ import annotations

import re

MINIMUM_CONTRAST = 4.5
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
HEX_COLOUR = re.compile(r"#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
# The tint is this much white: pale enough to sit behind text, visibly not white.
TINT_WHITE = 0.93
# The hover shade is this much of the colour, the rest black.
SHADE_COLOUR = 0.8


def parse_hex(value: str) -> tuple[int, int, int]:
    """``#0b5cad``, ``0b5cad`` or ``#05a`` as (r, g, b); ValueError for anything else."""
    text = value.strip()
    if not HEX_COLOUR.fullmatch(text):
        raise ValueError(f"{value!r} is not a colour written as #rrggbb")
    digits = text.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2.1's relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(channel) for channel in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2.1's contrast ratio, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def mix(colour: tuple[int, int, int], other: tuple[int, int, int], share: float) -> tuple[int, int, int]:
    """``share`` of ``colour`` and the rest of ``other``."""
    return tuple(round(c * share + o * (1 - share)) for c, o in zip(colour, other, strict=True))


def accent_palette(value: str) -> dict[str, str]:
    """The stylesheet's accent variables for a school's colour; ValueError, saying why, if it fails WCAG AA.

    Returns ``{"accent": ..., "accent-dark": ..., "accent-soft": ...}`` as #rrggbb.
    """
    accent = parse_hex(value)
    soft = mix(WHITE, accent, TINT_WHITE)
    dark = mix(accent, BLACK, SHADE_COLOUR)
    worst = min(contrast(accent, WHITE), contrast(accent, soft))
    if worst < MINIMUM_CONTRAST:
        raise ValueError(
            f"{to_hex(accent)} is too light to read: text in it reaches {worst:.1f}:1 against the page, and "
            f"WCAG AA asks {MINIMUM_CONTRAST}:1. Choose a darker shade of the school's colour "
            f"(for example {to_hex(darkest_readable(accent))})."
        )
    return {"accent": to_hex(accent), "accent-dark": to_hex(dark), "accent-soft": to_hex(soft)}


def darkest_readable(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The lightest shade of ``colour`` (toward black) that passes, to suggest in the error message."""
    for step in range(100, -1, -1):
        shade = mix(colour, BLACK, step / 100)
        soft = mix(WHITE, shade, TINT_WHITE)
        if min(contrast(shade, WHITE), contrast(shade, soft)) >= MINIMUM_CONTRAST:
            return shade
    return BLACK
