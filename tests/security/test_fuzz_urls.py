"""Every URL in the URL conf is fuzzed: a new page fails here, by name, until it has an entry.

The entries are ``TARGETS`` in tests/security/fuzz_targets.py (forms, query parameters, ids in the
path: test_fuzz_forms.py and test_fuzz_paths.py) and ``ADMIN`` in test_fuzz_admin.py.
"""

from __future__ import annotations

from tests.security.fuzz_targets import SIGNED_OUT, TARGETS, World
from tests.security.fuzzing import walked_urls
from tests.security.test_fuzz_admin import ADMIN_PREFIX, admin_targets
from tests.staff.conftest import PERSONAS

WALKED = walked_urls()


def test_the_walk_finds_every_part_of_the_portal():
    keys = {key for _, key in WALKED}
    assert {"home", "account_login", "mfa_authenticate", "staff_home", "staff_import_new", "add_child"} <= keys
    assert any(route.startswith(ADMIN_PREFIX) for route, _ in WALKED)


def test_every_url_has_a_fuzz_entry():
    admin = admin_targets()
    missing = [
        f"{route} ({key})"
        for route, key in WALKED
        if key not in TARGETS and not (route.startswith(ADMIN_PREFIX) and route in admin)
    ]
    assert not missing, (
        "these URLs are not fuzzed; add an entry for each to TARGETS in tests/security/fuzz_targets.py "
        "(who uses it, its method, the fields and query parameters its view reads): " + ", ".join(missing)
    )


def test_every_entry_names_a_persona_the_fuzz_can_sign_in():
    stages = {name.lstrip("_") for name in vars(World) if name.startswith("_") and not name.startswith("__")}
    known = set(PERSONAS) | stages
    unknown = {target.persona for targets in TARGETS.values() for target in targets} - known
    assert not unknown, f"no persona or sign-in stage called {unknown}"
    assert SIGNED_OUT <= known
