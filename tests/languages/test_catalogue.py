"""The Spanish catalogue: every message translated, none left fuzzy, and the compiled .mo (what Django
loads, committed with the .po) saying exactly what the .po says."""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

from django.conf import settings

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES"


def po_entries() -> list[dict]:
    """The .po's entries: msgctxt, msgid, msgid_plural, msgstr (or msgstr[n]), and their flags."""
    entries, entry, key = [], None, None
    for line in (CATALOGUE / "django.po").read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if entry:
                entries.append(entry)
            entry, key = None, None
            continue
        entry = entry if entry is not None else {"flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] += ast.literal_eval(line)
        else:
            key, _, value = line.partition(" ")
            entry[key] = ast.literal_eval(value)
    return entries


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = [entry for entry in po_entries() if entry.get("msgid")]
    assert len(entries) > 500

    untranslated = [e["msgid"] for e in entries if not all(v for k, v in e.items() if k.startswith("msgstr"))]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalogue_matches_the_po():
    with open(CATALOGUE / "django.mo", "rb") as compiled:
        mo = gettext.GNUTranslations(compiled)._catalog
    po = {}
    for entry in po_entries():
        if "msgid" not in entry:
            continue  # an obsolete entry (#~), which msgfmt leaves out
        msgid = entry["msgid"] if "msgctxt" not in entry else f"{entry['msgctxt']}\x04{entry['msgid']}"
        if "msgid_plural" in entry:
            for key, value in entry.items():
                if key.startswith("msgstr["):
                    po[(msgid, int(key[7:-1]))] = value
        else:
            po[msgid] = entry["msgstr"]

    assert {key: value for key, value in mo.items() if key != ""} == {k: v for k, v in po.items() if k != ""}
