"""Write bench/RESULTS.md from the figures the benchmarks saved in var/bench/*.json.

    .venv/bin/python -m bench.results        # after the benchmarks (``make bench`` runs them all, then this)

Every number in RESULTS.md comes from those files; nothing here is measured or typed in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.stack import ROOT, VAR

OUT = ROOT / "bench" / "RESULTS.md"


def load(name: str) -> dict | None:
    path = VAR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def num(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


# -- 1 and 3 ---------------------------------------------------------------------------------------
def linking_section(data: dict) -> list[str]:
    bulk, self_service, steady, baseline = (data.get(k) for k in ("bulk", "self_service", "steady", "baseline"))
    limit = (bulk or self_service)["ceiling"]
    out = [
        "## 1. Linking throughput",
        "",
        f"Command: `{data['command'].strip()}`. One stack (PostgreSQL, Redis, gunicorn, "
        f"{data['settings']['worker']}), `CANVAS_MAX_IN_FLIGHT={data['settings']['CANVAS_MAX_IN_FLIGHT']}`, "
        f"one simulator with {limit['latency_s'] * 1000:.0f} ms latency on every API call and Canvas's throttle "
        f"defaults (high-water mark {limit['hwm']:.0f}, {limit['up_front']:.0f} units reserved per request in "
        f"flight, outflow {limit['outflow']:.0f} units/s). Canvas calls, 403s and requests in flight are the "
        "simulator's own counts.",
        "",
        "**The ceiling** the simulator's parameters allow one token:",
        "",
        f"- by concurrency: {limit['hwm']:.0f} / {limit['up_front']:.0f} = {limit['in_flight_to_fill']:.0f} "
        f"requests in flight fill the bucket; / {limit['latency_s']:.3f} s latency = "
        f"**{limit['by_concurrency']:.1f} calls/s**;",
        f"- by cost: {limit['outflow']:.0f} units/s outflow / {limit['mean_cost']:.4f} units a request (the "
        f"simulator's mean `X-Request-Cost` in the bulk run) = {limit['by_cost']:,.0f} calls/s;",
        f"- so {limit['calls_per_second']:.1f} calls/s. Canvas refuses the request whose reservation *reaches* the "
        f"mark, so at most {limit['in_flight_to_fill'] - 1:.0f} are ever served at once: the **strict ceiling** is "
        f"{limit['strict_calls_per_second']:.1f} calls/s, before any time a call spends outside the 150 ms.",
        "",
    ]
    rows = []
    for name, label, phase in (
        ("bulk", "Bulk import (check + run)", bulk),
        ("bulk_run", "— the run alone", bulk),
        ("self_service", "Self-service burst", self_service),
        ("baseline", "Classic script", baseline),
    ):
        if not phase:
            continue
        if name == "bulk_run":
            seconds, links = phase["run_seconds"], phase["links"]
            calls = phase["canvas"]["calls"] - phase["check_calls"]
            cps = calls / seconds
            rows.append(
                [
                    label,
                    num(links),
                    num(seconds),
                    num(links / seconds),
                    num(calls / links, 2),
                    num(cps),
                    pct(cps / limit["calls_per_second"]),
                    pct(cps / limit["strict_calls_per_second"]),
                    "",
                    "",
                    "",
                ]
            )
            continue
        size = phase.get("families") or phase.get("parents") or phase["links"]
        rows.append(
            [
                label,
                num(size),
                num(phase["seconds"]),
                num(phase["links_per_second"]),
                num(phase["calls_per_link"], 2),
                num(phase["calls_per_second"]),
                pct(phase["fraction_of_ceiling"]),
                pct(phase["fraction_of_strict_ceiling"]),
                num(phase["canvas"]["peak_in_flight"]),
                num(phase["canvas"]["throttled_403"]),
                f"{phase['ratio_to_baseline']}×"
                if phase.get("ratio_to_baseline")
                else "1×"
                if name == "baseline"
                else "–",
            ]
        )
    out += table(
        [
            "path",
            "families",
            "seconds",
            "links/s",
            "Canvas calls/link",
            "calls/s",
            "of ceiling",
            "of strict ceiling",
            "most in flight",
            "403s",
            "vs classic",
        ],
        rows,
    )
    out.append("")
    if bulk:
        by_route = ", ".join(f"`{route}` {count:,}" for route, count in bulk["canvas"]["by_route"].items())
        out += [
            f"- **Bulk**: {bulk['families']:,} new families (a parent Canvas does not have, per student) in one SIS "
            f"export, uploaded, checked ({bulk['check_seconds']:.1f} s, {bulk['check_calls']} Canvas calls: the "
            f"account's user list, 100 a request) and run ({bulk['run_seconds']:.1f} s). Calls: {by_route}. Rows "
            f"done {bulk['rows'].get('done', 0):,}, failed {bulk['rows'].get('failed', 0):,}, lost "
            f"{bulk['rows_lost']}; links in Canvas afterwards: {bulk['links_in_canvas']:,}.",
        ]
    if self_service:
        by_route = ", ".join(f"`{route}` {count:,}" for route, count in self_service["canvas"]["by_route"].items())
        out += [
            f'- **Self-service**: {self_service["parents"]:,} signed-up parents press "Link" with their child\'s '
            f"code through gunicorn within {self_service['press_seconds']:.1f} s; every one is a new Canvas "
            f"account (the most calls a family costs: find by email, create with the code, read the link). "
            f"Calls: {by_route}. Requests: {self_service['requests']}; lost {self_service['rows_lost']}.",
        ]
    if baseline:
        out += [
            f"- **Classic script** (`bench/classic_script.py`): {baseline['families']} further new families one at a "
            "time: search the student, search the parent, make a code, create the account, pair (listing "
            "observees is skipped when Canvas has no such parent), as district scripts do.",
        ]
    for label, phase in (("bulk", bulk), ("self-service", self_service), ("baseline", baseline)):
        if phase:
            workers = phase["workers"]
            out.append(
                f"- Throttle 403s in the {label} run: {phase['canvas']['throttled_403']} served by the simulator; "
                f"{workers['throttled_attempts_logged']} throttled attempts logged by the workers, each retried by "
                f"the client after backoff; {workers['handed_back_to_wait']} tasks or rows handed back to wait; "
                f"{workers['errors_logged']} errors logged."
            )
    mistyped = data.get("mistyped")
    if mistyped:
        by_route = ", ".join(f"`{route}` {count:,}" for route, count in mistyped["canvas"]["by_route"].items())
        workers = mistyped["workers"]
        out += [
            "",
            f"**Mistyped codes.** {mistyped['parents']} parents whom Canvas knows already press “Link” at once; "
            f"{mistyped['mistyped']} of them ({mistyped['mistyped'] / mistyped['parents']:.0%}) type a wrong code "
            "first, are told it did not work, and enter the right one. Canvas charges a wrong code 200 units of the "
            "token's bucket (its outflow is 10 a second), so a handful of them fill it, and every request of the "
            f"portal waits while it drains: {mistyped['seconds']:.1f} s for {mistyped['links']} links "
            f"({mistyped['links_per_second']:.1f} a second, {mistyped['calls_per_link']:.2f} calls each). The "
            f"simulator refused {mistyped['canvas']['throttled_403']} requests with its 403; the workers logged "
            f"{workers['throttled_attempts_logged']} throttled attempts, each retried by the client after backoff, "
            f"handed {workers['handed_back_to_wait']} back to wait, and lost {mistyped['rows_lost']}: every parent "
            f"was linked. Calls: {by_route}. By cost, the ceiling here is {mistyped['ceiling']['by_cost']:.1f} "
            f"calls/s ({mistyped['ceiling']['outflow']:.0f} units/s over a mean cost of "
            f"{mistyped['ceiling']['mean_cost']:.2f}), which the portal's {mistyped['calls_per_second']:.1f} "
            "exceeds only because the cost comes in a few lumps.",
        ]
    out.append("")
    out += targets(data)
    out.append("")
    out += time_to_link_section(self_service, steady)
    return out


def targets(data: dict) -> list[str]:
    bulk, self_service = data.get("bulk"), data.get("self_service")
    rows = []
    for label, phase in (("bulk", bulk), ("self-service", self_service)):
        if not phase:
            continue
        rows.append(
            [
                f"{label}: ≥ 90% of the ceiling",
                f"{pct(phase['fraction_of_ceiling'])} of {phase['ceiling']['calls_per_second']:.0f} calls/s; "
                f"{pct(phase['fraction_of_strict_ceiling'])} of the strict "
                f"{phase['ceiling']['strict_calls_per_second']:.1f}",
                verdict(phase["fraction_of_ceiling"] >= 0.9)
                + ("; met against the strict ceiling" if phase["fraction_of_strict_ceiling"] >= 0.9 else ""),
            ]
        )
        ratio = phase.get("ratio_to_baseline")
        if ratio is not None:
            rows.append([f"{label}: ≥ 10× the classic script", f"{ratio}×", verdict(ratio >= 10)])
    if bulk:
        per_new = bulk["calls_per_link"]
        rows.append(["bulk: ≤ 3 Canvas calls per new family", f"{per_new:.2f}", verdict(per_new <= 3)])
    if self_service:
        per_new = self_service["calls_per_link"]
        rows.append(["self-service: ≤ 3 Canvas calls per new family", f"{per_new:.2f}", verdict(per_new <= 3)])
    for label, phase in (("bulk", bulk), ("self-service", self_service)):
        if phase:
            rows.append(
                [f"{label}: no row lost to throttling", f"{phase['rows_lost']} lost", verdict(phase["rows_lost"] == 0)]
            )
    return ["**Targets**", "", *table(["target", "measured", ""], rows)]


def time_to_link_section(self_service: dict | None, steady: dict | None) -> list[str]:
    out = ["## 3. Time to link", ""]
    out.append(
        'From the parent pressing "Link" (the POST leaving the browser) to the simulator making the link (its '
        "own clock, on the same host), for parents who are new to Canvas (the longest path)."
    )
    out.append("")
    rows = []
    if steady:
        rows.append(
            [
                f"one at a time, {steady['rate_per_second']:g} a second (Poisson)",
                steady["arrivals"],
                *(num(steady["time_to_link"].get(k), 2) for k in ("p50", "p95", "p99", "max")),
            ]
        )
    if self_service:
        rows.append(
            [
                f"{self_service['parents']} within {self_service['press_seconds']:.0f} s (the burst above)",
                self_service["parents"],
                *(num(self_service["time_to_link"].get(k), 2) for k in ("p50", "p95", "p99", "max")),
            ]
        )
    out += table(["arrivals", "parents", "p50 s", "p95 s", "p99 s", "max s"], rows)
    out.append("")
    if steady:
        out.append(
            "At a steady rate a link exists in Canvas after two Canvas calls of 150 ms each (find the parent by "
            "email, create the account with the code) plus the queue and the database; in the burst, parents "
            "wait their turn behind the throttle ceiling, so the figure grows with the burst's size."
        )
    return out


def main() -> Path:
    linking = load("linking")
    parts = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench.results` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the "
        "figures in `var/bench/*.json`; `make bench` runs every benchmark and then writes this page again. The "
        'benchmarks are in `bench/` (README, "Benchmarks"); none of them is a test.',
        "",
    ]
    machine = next((d["machine"] for d in (linking, load("web"), load("growth")) if d), None)
    if machine:
        parts += [
            f"**Machine**: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
            f"{machine['system']}; Python {machine['python']}; {machine.get('postgresql', '')}; "
            f"{machine.get('redis', '').split(' sha=')[0]}. Everything (portal, workers, PostgreSQL, Redis, the "
            "simulator and the load generators) ran on it at once.",
            "",
        ]
    if linking:
        parts += linking_section(linking)
    OUT.write_text("\n".join(parts).rstrip() + "\n")
    return OUT


if __name__ == "__main__":
    print(main())
