"""The linking benchmark (bench/linking.py) at a small size, so that its harness and figures stay true.

It runs the documented command in a stack of its own (database, Redis db, port, folders) and checks
what the figures say happened: every family linked, none lost, the calls a family costs, the throttle
never met. No speed is asserted here; speed is what the benchmark itself reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_linking_benchmark_links_every_family_and_counts_what_it_cost(run_bench):
    result = run_bench(
        "linking",
        *("--families", "60", "--parents", "20", "--arrivals", "5", "--rate", "5", "--baseline", "3"),
        *("--mistyped", "10", "--mistyped-share", "0.2", "--latency-ms", "50", "--probe-seconds", "2"),
    )
    bulk, self_service, steady, baseline, mistyped = (
        result[name] for name in ("bulk", "self_service", "steady", "baseline", "mistyped")
    )

    assert (bulk["links"], bulk["links_in_canvas"], bulk["rows_lost"]) == (60, 60, 0)
    # Two calls a new family at run time, and the check read the account's user list (a request or two).
    assert bulk["canvas"]["by_route"]["POST /api/v1/accounts/:account_id/users 200"] == 60
    assert bulk["canvas"]["by_route"]["PUT /api/v1/users/:user_id/observees/:observee_id 200"] == 60
    assert 2 < bulk["calls_per_link"] <= 2.1
    assert self_service["requests"]["linked"] == 20 and self_service["rows_lost"] == 0
    assert self_service["calls_per_link"] == 3.0
    assert steady["time_to_link"]["count"] == 5 and steady["time_to_link"]["p50"] > 0
    assert (baseline["links"], baseline["calls_per_link"]) == (3, 5.0)
    for phase in (bulk, self_service, steady, baseline):
        assert phase["canvas"]["throttled_403"] == 0
        assert phase["canvas"]["peak_in_flight"] <= 11
        assert phase["workers"]["errors_logged"] == 0
    # Two parents type a wrong code first (Canvas charges each 200 units of the bucket), then the right one.
    assert (mistyped["mistyped"], mistyped["first_try"]["failed"]) == (2, 2)
    assert (mistyped["links"], mistyped["requests"]["linked"], mistyped["rows_lost"]) == (10, 10, 0)
    assert mistyped["canvas"]["by_route"]["POST /api/v1/users/:user_id/observees 422"] == 2
    assert bulk["ceiling"]["strict_calls_per_second"] == pytest.approx(11 / 0.05)
    assert bulk["ratio_to_baseline"] > 1
    # The probe: the client and limiter alone, as many calls as the token lets through, never throttled.
    probe = result["probe"]
    assert probe["canvas"]["by_route"] == {"GET /api/v1/users/:user_id 200": probe["canvas"]["calls"]}
    assert probe["canvas"]["calls"] > 0 and probe["canvas"]["throttled_403"] == 0
    assert probe["canvas"]["peak_in_flight"] <= 11
