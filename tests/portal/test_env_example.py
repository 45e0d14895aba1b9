"""Every variable the portal reads is in .env.example with a line of meaning, and in README.md's settings table.

The variables are found by reading the code (portal/settings.py's typed reads, gunicorn's settings, and
what docker-compose.yml fills in), not listed here, so a new setting fails until it is documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# settings.py's typed reads: env.str("X"), env.db("X"), env_bool("X"), env_number("X"), os.environ.get("X").
ENVIRON_READERS = {"str", "bool", "int", "float", "list", "path", "db", "cache_url", "email_url"}
READERS = ENVIRON_READERS | {"env_bool", "env_number", "get"}


def variables_read(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        if name in READERS and isinstance(node.args[0].value, str) and node.args[0].value.isupper():
            found.add(node.args[0].value)
    return found


def every_variable() -> set[str]:
    read = variables_read(ROOT / "portal" / "settings.py") | variables_read(ROOT / "portal" / "gunicorn_config.py")
    interpolated = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    return read | interpolated


def example_lines() -> list[str]:
    return (ROOT / ".env.example").read_text().splitlines()


# NAME=value, or "# NAME=value" for one that must stay unset until chosen (gunicorn refuses WEB_CONCURRENCY="").
ASSIGNMENT = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=")


def test_the_code_is_read_for_its_variables():
    assert {"SECRET_KEY", "DEBUG", "DATABASE_URL", "CANVAS_ADMIN_TOKEN", "LOG_FORMAT", "WEB_CONCURRENCY"} <= (
        every_variable()
    )
    assert "POSTGRES_PASSWORD" in every_variable()


def test_every_variable_is_in_the_env_example_after_a_comment_saying_what_it_means():
    lines = example_lines()
    listed = {}
    for number, line in enumerate(lines):
        if match := ASSIGNMENT.match(line):
            listed[match.group(1)] = number
    missing = sorted(every_variable() - set(listed))
    assert not missing, f"add these to .env.example, each after a comment line: {missing}"
    for name, number in listed.items():
        above = next(line for line in reversed(lines[:number]) if not ASSIGNMENT.match(line))
        assert above.startswith("# "), f"{name} in .env.example has no comment above it"


def test_the_env_example_lists_nothing_the_portal_does_not_read():
    listed = {match.group(1) for line in example_lines() if (match := ASSIGNMENT.match(line))}
    assert not sorted(listed - every_variable())


def test_every_variable_is_in_the_readme_settings_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    missing = sorted(every_variable() - documented)
    assert not missing, f"add these to the settings table in README.md: {missing}"
