"""The web and growth benchmarks (bench/web.py, bench/growth.py) at small sizes, and the page they feed.

Each runs its documented command in a stack of its own and the test checks what its figures say happened:
every page answered without an error, the people did what the locustfile says they do, imports finished
every row, and queries per row and per page did not grow with the size (the benchmark's own judgement,
asserted here too so that an N+1 fails CI). No speed is asserted; speed is what the benchmarks report.
"""

from __future__ import annotations

import pytest

from bench import results


def test_the_web_benchmark_serves_every_persona_without_an_error(run_bench, tmp_path, monkeypatch):
    figures = run_bench(
        "web",
        *("--users", "12", "--spawn-rate", "12", "--duration", "45s", "--gunicorn", "sync:3"),
        *("--parents", "120", "--students", "40", "--staff", "3", "--latency-ms", "50"),
    )

    pages = {row["page"]: row for row in figures["pages"]}
    for page in ("GET /family/", "GET /student/", "POST /student/codes/new/", "GET /staff/"):
        assert pages[page]["requests"] > 0, page
    # Staff open the queue by one of several filters (the locustfile draws which), each its own row.
    assert sum(row["requests"] for name, row in pages.items() if name.startswith("GET /staff/requests/")) > 0
    assert sum(row["failures"] for row in figures["pages"]) == 0 and figures["failures"] == []
    run = figures["configurations"][0]
    assert run["web_log"]["tracebacks"] == 0 and run["exit_code"] == 0
    assert run["people"]["codes_entered"] > 0
    assert set(run["memory_mib"]) >= {"web", "web.0", "worker0", "canvas_sim"}
    # The profile opens each page once more, in process, with its queries counted.
    assert all(page["status"] == 200 and page["queries"] > 0 for page in figures["profile"]["pages"].values())
    assert figures["profile"]["password_hash_ms"] > 0

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    page = results.main(out=tmp_path / "RESULTS.md").read_text()
    assert "## 2. The web" in page and "`GET /family/`" in page


def test_the_growth_benchmark_finds_queries_per_row_and_per_page_constant(run_bench, tmp_path, monkeypatch):
    figures = run_bench(
        "growth", *("--imports", "60,120", "--requests", "300,900", "--repeats", "2", "--latency-ms", "50")
    )

    # From 50 rows (100 people to find) the check reads the account's user list instead of a search a
    # person, so a new family costs its two writes and a share of that read; smaller files cost four.
    for rows, run in figures["imports"]["by_size"].items():
        assert (run["state"], run["rows_done"]) == ("done", int(rows))
        assert run["canvas"]["throttled_403"] == 0 and run["canvas"]["calls_per_row"] <= 2.1
    worker = figures["imports"]["growth"]["queries_per_row"]["worker"]
    assert worker["120"] == pytest.approx(worker["60"], rel=0.1), worker
    assert all(
        s["per_row"]["120"] <= 1.1
        for side in ("check", "run")
        for s in figures["imports"]["growth"]["per_row_shapes"][side]
    )
    for name, page in figures["pages"]["pages"].items():
        assert page["queries_constant"], name
        assert {size["status"] for size in page["by_size"].values()} == {200}, name

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    page = results.main(out=tmp_path / "RESULTS.md").read_text()
    assert "## 4. How cost grows" in page and "| overview |" in page
