"""Write bench/RESULTS.md from the figures the benchmarks saved in var/bench/*.json.

    .venv/bin/python -m bench.results        # after the benchmarks (``make bench`` runs them all, then this)

Every number in RESULTS.md comes from those files; nothing here is measured or typed in.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.stack import ROOT, VAR

OUT = ROOT / "bench" / "RESULTS.md"


def load(name: str) -> dict | None:
    path = Path(os.environ.get("BENCH_RESULTS_DIR", VAR)) / f"{name}.json"
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
        ("probe", "Probe: the client alone", data.get("probe")),
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
                "–" if name == "probe" else num(size),
                num(phase["seconds"]),
                "–" if name == "probe" else num(phase["links_per_second"]),
                "–" if name == "probe" else num(phase["calls_per_link"], 2),
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
    probe = data.get("probe")
    if probe:
        out.append(
            f"- **Probe**: with nothing else to do, the portal's own client and limiter, {probe['threads']} threads "
            f"asking Canvas for one user as fast as they are let, get {probe['calls_per_second']:.1f} calls/s "
            f"through ({pct(probe['fraction_of_strict_ceiling'])} of the strict ceiling): "
            f"{probe['mean_in_flight']:.2f} requests in flight on average, each "
            f"{probe['mean_call_seconds'] * 1000:.1f} ms inside the simulator "
            f"(its {limit['latency_s'] * 1000:.0f} ms of latency and its own handling on this shared machine). That "
            "is the most one token gets through here; what the portal does for each link costs the rest."
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
    return out


def targets(data: dict) -> list[str]:
    bulk, self_service, probe = data.get("bulk"), data.get("self_service"), data.get("probe")
    rows = []
    for label, phase in (("bulk", bulk), ("self-service", self_service)):
        if not phase:
            continue
        of_probe = (
            f"; {pct(phase['calls_per_second'] / probe['calls_per_second'])} of the probe's "
            f"{probe['calls_per_second']:.1f}"
            if probe
            else ""
        )
        rows.append(
            [
                f"{label}: ≥ 90% of the ceiling",
                f"{pct(phase['fraction_of_ceiling'])} of {phase['ceiling']['calls_per_second']:.0f} calls/s; "
                f"{pct(phase['fraction_of_strict_ceiling'])} of the strict "
                f"{phase['ceiling']['strict_calls_per_second']:.1f}{of_probe}",
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


# -- 2 ---------------------------------------------------------------------------------------------------
def web_section(data: dict) -> list[str]:
    settings, chosen = data["settings"], data["chosen"]
    run = next(r for r in data["configurations"] if r["gunicorn"]["spec"] == chosen)
    seed = run["seed"]
    out = [
        "## 2. The web",
        "",
        f"Command: `{data['command'].strip()}`. For each gunicorn configuration a fresh stack as production runs "
        f"it (DEBUG off, HTTPS only behind a proxy: {settings['proxy_headers']}), PostgreSQL, Redis, "
        f"{settings['worker']} and the simulator at {settings['simulator_latency_ms']} ms. The school is seeded "
        f"a few weeks into term: {seed['parents']:,} parents ({_states(seed['parents_by_state'])}), "
        f"{seed['students']:,} students in {seed['courses']} courses, {seed['staff']} staff with a second "
        f"factor, {seed['link_requests']:,} link requests, {seed['links']:,} links and {seed['audit_events']:,} "
        f"audit events. Load: {settings['load']} (`bench/locustfile.py`): parents sign in (a quarter through the "
        "form), look at their children, type a code and watch it link; students make a code, show it, print its "
        "card or email it; staff page through the review queue and open requests. Every page polls as the "
        "portal's script does, and people pause as long as reading and typing take.",
        "",
        f"**{chosen}** (`{run['gunicorn']['command']}`), the configuration this machine would run:",
        "",
    ]
    rows = [
        [
            f"`{row['page']}`" if row["page"] != "Aggregated" else "**all**",
            num(row["requests"]),
            num(row["failures"]),
            num(row["rps"]),
            num(row["p50"], 0),
            num(row["p95"], 0),
            num(row["p99"], 0),
        ]
        for row in run["pages"]
    ]
    out += table(["page", "requests", "failures", "requests/s", "p50 ms", "p95 ms", "p99 ms"], rows)
    target = run["target"]
    people = run["people"]
    out += [
        "",
        f"- **Target, p95 under {target['p95_ms']} ms on every page**: {verdict(target['met'])} "
        f"({target['pages_judged']} pages judged"
        + (f"; not reached by the load: {', '.join(target['pages_missing'])}" if target["pages_missing"] else "")
        + f"). The sign-in POST is among them: p95 {num(target['sign_in_p95_ms'], 0)} ms, of which "
        f"{num(data['profile']['password_hash_ms'], 0)} ms is the password hash alone (Argon2id at OWASP's "
        "parameters, `portal/hashers.py`).",
        f"- Errors: {num(sum(r['failures'] for r in run['pages'] if r['page'] != 'Aggregated'))} failed requests"
        + (
            ": " + "; ".join(f"{f['name']} {f['error']} ×{f['occurrences']}" for f in run["failures"])
            if run["failures"]
            else ""
        )
        + f"; gunicorn answered {_states(run['web_log']['responses'])} and logged {run['web_log']['tracebacks']} "
        "tracebacks.",
        f"- What the people did: {people['signed_in']:,} sign-ins through the form, {people['codes_entered']:,} "
        f"codes typed ({people['wrong_codes_entered']:,} of them mistyped), {people['polls_given_up']} pages that "
        f"stopped polling before their work was done; the worker's link requests ended "
        f"{_states(run['worker_outcomes']['link_requests']) or 'none'}.",
        f"- Memory (resident, MiB, at the end): {_processes(run['memory_mib'])}. CPU (cores used over the load): "
        f"{_processes(run['cpu_cores_used'], digits=2)}; the machine was {pct(run['machine_cpu_busy'])} busy.",
    ]
    if len(data["configurations"]) > 1:
        out += ["", "Configurations tried (the worst page's p95):", ""]
        out += table(
            ["gunicorn", "worst p95 ms", "target"],
            [[f"`{t['spec']}`", num(t["worst_p95_ms"], 0), verdict(t["target_met"])] for t in data["tried"]],
        )
    profile = data["profile"]["pages"]
    out += [
        "",
        "Each page once more after the load, in one process with its queries counted (a quiet machine; a "
        f"process that kept no database connection pays {num(data['profile']['database_connect_ms'])} ms more "
        "to open one, which `CONN_MAX_AGE`, 60 s by default, saves):",
        "",
    ]
    out += table(
        ["page", "ms", "queries", "query ms"],
        [[f"`{page}`", num(f["ms"]), num(f["queries"]), num(f["query_ms"])] for page, f in profile.items()],
    )
    return out


def _shapes_line(shapes: list[dict]) -> str:
    """``SELECT linking_importrow ×1.0, ...``: each statement's verb and first table, and its count per row at the
    largest size."""
    if not shapes:
        return "none"
    parts = []
    for shape in shapes:
        words = shape["sql"].split()
        table_name = next(
            (w.strip('"(),').split('"."')[0] for w in words[1:] if w.startswith('"')), words[1].split("(")[0]
        )
        per_row = list(shape["per_row"].values())[-1]
        parts.append(f"`{words[0]} {table_name}`".replace(" `", "`") + f" ×{per_row:.2f}")
    return ", ".join(parts)


def _states(counts: dict) -> str:
    return ", ".join(f"{count:,} {state}" for state, count in counts.items())


def _processes(figures: dict, digits: int = 0) -> str:
    return ", ".join(f"{name} {num(float(value), digits)}" for name, value in figures.items())


# -- 4 ---------------------------------------------------------------------------------------------------
def growth_section(data: dict) -> list[str]:
    out = ["## 4. How cost grows", "", f"Command: `{data['command'].strip()}`.", ""]
    pages, imports = data.get("pages"), data.get("imports")
    if imports:
        sizes = [str(size) for size in imports["sizes"]]
        out += [
            f"**Imports.** For each size, that many new families (a student Canvas has, a parent it has not) in "
            f"one SIS export, uploaded through the staff console, checked and run as staff do, with "
            f"{data['settings']['worker']} and `CANVAS_MAX_IN_FLIGHT={data['settings']['CANVAS_MAX_IN_FLIGHT']}`. "
            "Queries are counted on both sides: the web's (upload and start) and the worker's (check and run).",
            "",
        ]
        rows = []
        for size in sizes:
            f = imports["by_size"][size]
            q = f["queries_per_row"]
            rows.append(
                [
                    num(int(size)),
                    f["state"],
                    num(f["seconds"]["upload"], 2),
                    num(f["seconds"]["check"]),
                    num(f["seconds"]["run"]),
                    num(f["rows_per_second"]["run"]),
                    num(f["canvas"]["calls_per_row"], 2),
                    num(f["canvas"]["throttled_403"]),
                    num(q["web"], 3),
                    num(q["worker_check"], 2),
                    num(q["worker_run"], 2),
                ]
            )
        out += table(
            [
                "rows",
                "ended",
                "upload s",
                "check s",
                "run s",
                "rows/s (run)",
                "Canvas calls/row",
                "403s",
                "web queries/row",
                "worker check queries/row",
                "worker run queries/row",
            ],
            rows,
        )
        growth = imports["growth"]
        worker = list(growth["queries_per_row"]["worker"].values())
        marginal = "; ".join(
            f"{step}: web {num(m['web'], 2)}, worker {num(m['worker'], 2)}"
            for step, m in growth["marginal_queries_per_row"].items()
        )
        shapes = growth["per_row_shapes"]
        out += [
            "",
            f"- Worker queries per row: {' → '.join(num(v, 2) for v in worker)} across the sizes (spread "
            f"{pct(max(worker) / min(worker) - 1)}); what one more row costs between sizes: {marginal}. The web's "
            "queries are a fixed number per import, not per row. The statements the worker runs for each row "
            f"(by shape, from `bench/querycount.py`): in the check {_shapes_line(shapes.get('check', []))}; in "
            f"the run {_shapes_line(shapes.get('run', []))}.",
            f"- The time per row is Canvas's: {num(imports['by_size'][sizes[-1]]['canvas']['calls_per_row'], 2)} "
            f"calls of {data['args']['latency_ms']} ms a row within the throttle's ceiling (section 1).",
        ]
        out.append("")
    if pages:
        sizes = [str(size) for size in pages["sizes"]]
        out += [
            f"**Staff pages.** The records grown to {' and '.join(num(int(s)) for s in sizes)} link requests (with "
            "their students, parents, links, holds, code-entry pauses and audit events, appended through the audit "
            "service), then every staff page that lists things opened by staff signed in with their second factor: "
            f"queries per page, and the median and p95 of {pages['repeats']} openings after a warm-up, in one "
            "process against PostgreSQL.",
            "",
        ]
        rows = []
        for name, page in pages["pages"].items():
            by = page["by_size"]
            rows.append(
                [
                    name,
                    " / ".join(num(by[s]["queries"]) for s in sizes),
                    " / ".join(num(by[s]["p50_ms"]) for s in sizes),
                    " / ".join(num(by[s]["p95_ms"]) for s in sizes),
                    "yes" if page["queries_constant"] else "**no**",
                ]
            )
        label = " / ".join(num(int(s)) for s in sizes)
        out += table(["page", f"queries at {label}", "p50 ms", "p95 ms", "queries constant"], rows)
        constant = all(page["queries_constant"] for page in pages["pages"].values())
        worst = max(page["by_size"][sizes[-1]]["p95_ms"] for page in pages["pages"].values())
        out += [
            "",
            f"- Queries per page constant on every page: {verdict(constant)}. The slowest page's p95 at "
            f"{num(int(sizes[-1]))} requests: {num(worst)} ms.",
        ]
    return out


def main(out: Path = OUT) -> Path:
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
    web, growth = load("web"), load("growth")
    if web:
        parts += ["", *web_section(web)]
    if linking:
        parts += ["", *time_to_link_section(linking.get("self_service"), linking.get("steady"))]
    if growth:
        parts += ["", *growth_section(growth)]
    out.write_text("\n".join(parts).rstrip() + "\n")
    return out


if __name__ == "__main__":
    print(main())
