"""Linking throughput against Canvas's throttle ceiling and the classic script, and time to link.

    .venv/bin/python -m bench.linking [--families 2000] [--parents 500] [--arrivals 120] [--baseline 100]

One run, one simulator (150 ms latency on every API call, Canvas's throttle defaults), one stack as
production runs it (bench/stack.py: PostgreSQL, Redis, gunicorn, a Celery worker):

1. **Bulk**: a SIS export of ``--families`` new families (a parent Canvas does not have, per student) is
   uploaded, checked and run, as staff do in the console.
2. **Self-service burst**: ``--parents`` parents who signed up press "Link" with their child's code
   within a few seconds of each other, through the web (gunicorn), and the worker links them.
3. **Time to link**: ``--arrivals`` more parents press "Link" one at a time, at ``--rate`` a second
   (Poisson), each timed from the press to the moment the simulator made the link.
4. **Baseline**: the classic observer script (bench/classic_script.py) on ``--baseline`` further new
   families, one at a time, against the same simulator.
5. **Probe**: the portal's client and limiter alone, many threads asking Canvas for one user as fast as
   they are let, for ``--probe-seconds``: the most one token gets through this simulator on this machine.

Canvas calls, 403s and the most requests in flight are the simulator's own counts (``/__sim__/stats``);
the ceiling comes from the simulator's settings. The figures go to var/bench/linking.json, which
``python -m bench.results`` turns into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import seed
from bench.stack import WEB_PORT, Stack, write_result

ORIGIN = f"https://127.0.0.1:{WEB_PORT}"
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "Origin": ORIGIN}


# -- what the simulator says -----------------------------------------------------------------------
def ceiling(config: dict, *, mean_cost: float) -> dict:
    """Canvas calls a second that one token can have served, from the simulator's own settings.

    Every request holds ``up_front`` units while in flight, so ``hwm / up_front`` requests in flight fill
    the bucket; with every request in flight for ``latency`` that allows ``(hwm / up_front) / latency``
    calls a second. The bucket also drains only ``outflow`` units a second, so it allows
    ``outflow / cost`` calls a second of requests costing ``cost``. The ceiling is the lower of the two.
    A request is refused when its reservation *reaches* the high-water mark, so in fact one fewer than
    ``hwm / up_front`` may be in flight: ``strict`` is the ceiling with that one taken off.
    """
    throttle, latency = config["throttle"], config["latency_ms"] / 1000
    filling = throttle["hwm"] / throttle["up_front"]
    by_concurrency = filling / latency
    strict = (math.ceil(filling) - 1) / latency
    by_cost = throttle["outflow"] / mean_cost if mean_cost > 0 else math.inf
    return {
        "latency_s": latency,
        "hwm": throttle["hwm"],
        "up_front": throttle["up_front"],
        "outflow": throttle["outflow"],
        "in_flight_to_fill": filling,
        "mean_cost": mean_cost,
        "by_concurrency": by_concurrency,
        "by_cost": by_cost,
        "calls_per_second": min(by_concurrency, by_cost),
        "strict_calls_per_second": min(strict, by_cost),
    }


def canvas_counts(stats: dict, caller: str = "admin") -> dict:
    """The calls one caller made, by route, with the throttle's 403s apart."""
    served = [r for r in stats["requests"] if r["caller"] == caller]
    throttled = stats["throttled"].get(caller, 0)
    by_route: dict[str, int] = {}
    for r in served:
        by_route[f"{r['method']} {r['route']} {r['status']}"] = r["count"]
    calls = sum(r["count"] for r in served) - throttled
    return {
        "calls": calls,
        "throttled_403": throttled,
        "by_route": by_route,
        "peak_in_flight": stats["peak_in_flight"].get(caller, 0),
        "seconds_in_canvas": round(stats["busy_seconds"].get(caller, 0), 2),
        "mean_cost": stats["cost"].get(caller, 0) / calls if calls else 0.0,
    }


class LogWatch:
    """Lines the workers log during one phase: throttled attempts and work handed back to wait."""

    def __init__(self, stack: Stack) -> None:
        self.paths = sorted(stack.log_dir.glob("worker*.log"))
        self.offsets = {path: path.stat().st_size for path in self.paths}

    def lines(self) -> list[str]:
        found = []
        for path in self.paths:
            with open(path, "rb") as log:
                log.seek(self.offsets[path])
                found += log.read().decode(errors="replace").splitlines()
        return found

    def summary(self) -> dict:
        lines = self.lines()
        return {
            "throttled_attempts_logged": sum("-> 403 throttled" in line for line in lines),
            "handed_back_to_wait": sum("Canvas unavailable" in line for line in lines),
            "errors_logged": sum(" ERROR" in line or "Traceback" in line for line in lines),
        }


def phase_result(*, stack: Stack, seconds: float, links: int, watch: LogWatch, extra: dict) -> dict:
    stats = stack.sim.stats()
    counts = canvas_counts(stats)
    limit = ceiling(stack.sim.configure(), mean_cost=counts["mean_cost"])
    calls_per_second = counts["calls"] / seconds
    return {
        "seconds": round(seconds, 2),
        "links": links,
        "links_per_second": round(links / seconds, 2),
        "canvas": counts,
        "calls_per_link": round(counts["calls"] / links, 3) if links else None,
        "calls_per_second": round(calls_per_second, 2),
        # Inside the simulator: how many of the token's requests were in flight on average, and how long each was.
        "mean_in_flight": round(counts["seconds_in_canvas"] / seconds, 2),
        "mean_call_seconds": round(counts["seconds_in_canvas"] / counts["calls"], 4) if counts["calls"] else None,
        "ceiling": limit,
        "fraction_of_ceiling": round(calls_per_second / limit["calls_per_second"], 3),
        "fraction_of_strict_ceiling": round(calls_per_second / limit["strict_calls_per_second"], 3),
        "links_per_second_ceiling": round(limit["calls_per_second"] / (counts["calls"] / links), 2) if links else None,
        "workers": watch.summary(),
        **extra,
    }


def phase_start(stack: Stack) -> LogWatch:
    stack.sim.reset()  # every throttle bucket empty, as after a quiet night
    stack.sim.stats_reset()
    return LogWatch(stack)


# -- 1. bulk ---------------------------------------------------------------------------------------
def bulk(stack: Stack, families: int) -> dict:
    from linking.models import ImportRow, ImportRun
    from linking.services.import_runs import import_run_start, import_run_summary
    from linking.services.imports import import_run_create

    students = seed.sim_students(stack.sim, count=families, prefix="BULK")
    content = seed.families_csv(students, email_prefix="bulk")
    staff = seed.staff_user()
    watch = phase_start(stack)

    uploaded = time.monotonic()
    run = import_run_create(content=content, filename="bench-families.csv", source=ImportRun.Source.UPLOAD, by=staff)
    seed.wait_for(
        lambda: ImportRun.objects.get(pk=run.pk).state != ImportRun.State.CHECKING,
        timeout=3600,
        what="the import's check",
    )
    checked = time.monotonic()
    check_stats = canvas_counts(stack.sim.stats())
    run.refresh_from_db()
    preview = run.preview
    import_run_start(run=run, by=staff)
    seed.wait_for(
        lambda: ImportRun.objects.get(pk=run.pk).state in (ImportRun.State.DONE, ImportRun.State.FAILED),
        timeout=3600,
        what="the import run",
    )
    done = time.monotonic()
    run.refresh_from_db()
    rows = run.rows.all()
    outcomes = {state: rows.filter(state=state).count() for state in (ImportRow.State.DONE, ImportRow.State.FAILED)}
    linked = rows.filter(outcome__in=(ImportRow.Outcome.NEW_PARENT_LINKED, ImportRow.Outcome.LINKED)).count()
    in_canvas = sum(len(user["observees"]) for user in stack.sim.users() if "bulk.parent" in (user["email"] or ""))
    result = phase_result(
        stack=stack,
        seconds=done - uploaded,
        links=linked,
        watch=watch,
        extra={
            "families": families,
            "check_seconds": round(checked - uploaded, 2),
            "run_seconds": round(done - checked, 2),
            "run_links_per_second": round(linked / (done - checked), 2),
            "check_calls": check_stats["calls"],
            "preview": preview,
            "rows": outcomes,
            "links_in_canvas": in_canvas,
            "rows_lost": families - outcomes[ImportRow.State.DONE],
            "summary": import_run_summary(run),
        },
    )
    return result


# -- 2 and 3. self-service -------------------------------------------------------------------------
class Family:
    """One parent at home with their child's code, pressing "Link" on the portal's page."""

    def __init__(self, web_url: str, parent, code: str, number: int) -> None:
        self.web_url, self.parent, self.code = web_url, parent, code
        self.session = requests.Session()
        token = seed.csrf_secret()
        self.session.cookies.set("sessionid", seed.session_for(parent.user), domain="127.0.0.1")
        self.session.cookies.set("csrftoken", token, domain="127.0.0.1")
        self.token = token
        self.headers = {**PROXY_HEADERS, "X-Forwarded-For": seed.address(number)}
        self.pressed_at: float | None = None

    def press_link(self, code: str | None = None) -> None:
        self.pressed_at = time.time()
        response = self.session.post(
            self.web_url + "/family/add/",
            data={"codes": code or self.code, "csrfmiddlewaretoken": self.token},
            headers={**self.headers, "Referer": f"{ORIGIN}/family/add/"},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302:
            raise RuntimeError(f"Link answered {response.status_code}: {response.text[:300]}")


def families_with_codes(stack: Stack, *, count: int, prefix: str, in_canvas: bool = False) -> list[Family]:
    """``count`` students with a fresh code each and a signed-up parent each (``in_canvas``: one Canvas has)."""
    from linking.canvas import CanvasClient

    students = seed.sim_students(stack.sim, count=count, prefix=prefix, tokens=True)

    def code_for(student: dict) -> str:
        # The student's own token, as "Invite a parent" uses: each student's bucket is their own.
        return CanvasClient(base_url=stack.sim.base_url, token=student["token"]).create_pairing_code(student["id"]).code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(code_for, students))
    emails = [seed.parent_email(prefix.lower(), number) for number in range(1, count + 1)]
    if in_canvas:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda email: stack.sim.control("POST", "users", login=email, token=False), emails))
    parents = {parent.user.email: parent for parent in seed.portal_parents(emails)}
    return [
        Family(stack.web_url, parents[email], code, number)
        for number, (email, code) in enumerate(zip(emails, codes, strict=True), start=1)
    ]


def wait_until_settled(families: list[Family], timeout: float, *, requests: int | None = None) -> dict:
    """Wait until the families' link requests (``requests`` of them, one each by default) are all closed."""
    from linking.models import LinkRequest

    parents = [family.parent.pk for family in families]
    requests_ = LinkRequest.objects.filter(parent_id__in=parents)
    expected = len(families) if requests is None else requests
    seed.wait_for(
        lambda: requests_.count() == expected and not requests_.filter(state__in=LinkRequest.OPEN_STATES).exists(),
        timeout=timeout,
        what="the link requests",
    )
    return {state: requests_.filter(state=state).count() for state in LinkRequest.State.values}


def links_made(stack: Stack, families: list[Family]) -> list[tuple[float, float]]:
    """(pressed "Link", link made in Canvas) for each family whose link Canvas has, on the simulator's
    own clock for the second (the same host's)."""
    linked_at = {}
    for user in stack.sim.users():
        for observee in user["observees"]:
            linked_at[(user["email"] or "").lower()] = observee["linked_at"]
    return [
        (family.pressed_at, linked_at[family.parent.user.email.lower()])
        for family in families
        if family.parent.user.email.lower() in linked_at
    ]


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "count": len(ordered),
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "max": round(ordered[-1], 3),
    }


def self_service_burst(stack: Stack, parents: int) -> dict:
    families = families_with_codes(stack, count=parents, prefix="SELF")
    watch = phase_start(stack)
    started = time.time()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(Family.press_link, families))
    pressed = time.time()
    states = wait_until_settled(families, timeout=3600)
    made = links_made(stack, families)
    times = [linked - pressed for pressed, linked in made]
    return phase_result(
        stack=stack,
        seconds=max((linked for _, linked in made), default=time.time()) - started,
        links=len(made),
        watch=watch,
        extra={
            "parents": parents,
            "press_seconds": round(pressed - started, 2),
            "requests": states,
            "rows_lost": parents - states.get("linked", 0),
            "time_to_link": percentiles(times),
        },
    )


def steady_arrivals(stack: Stack, arrivals: int, rate: float) -> dict:
    families = families_with_codes(stack, count=arrivals, prefix="STEADY")
    watch = phase_start(stack)
    rng = random.Random(7)
    started = time.time()
    threads, at = [], 0.0
    for family in families:
        at += rng.expovariate(rate)
        delay = started + at - time.time()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=family.press_link)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    states = wait_until_settled(families, timeout=600)
    times = [linked - pressed for pressed, linked in links_made(stack, families)]
    result = phase_result(
        stack=stack, seconds=time.time() - started, links=len(times), watch=watch, extra={"rate_per_second": rate}
    )
    return {**result, "arrivals": arrivals, "requests": states, "time_to_link": percentiles(times)}


def mistyped_codes(stack: Stack, parents: int, share: float) -> dict:
    """Parents Canvas has already, a share of whom first type a wrong code, then the right one.

    Canvas charges a wrong code 200 units of the token's bucket (four requests' worth, 20 s of its outflow),
    so a few of them meet the throttle: this is where 403s come from in the first week of school.
    """
    families = families_with_codes(stack, count=parents, prefix="TYPO", in_canvas=True)
    rng = random.Random(11)
    mistyped = rng.sample(families, max(1, round(parents * share)))
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
    watch = phase_start(stack)
    started = time.time()
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda f: f.press_link("".join(rng.choice(alphabet) for _ in range(6)) if f in mistyped else None),
                families,
            )
        )
    first = wait_until_settled(families, timeout=3600)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(Family.press_link, mistyped))  # "check each letter with your child", and again
    states = wait_until_settled(families, timeout=3600, requests=parents + len(mistyped))
    made = links_made(stack, families)
    result = phase_result(
        stack=stack,
        seconds=max((linked for _, linked in made), default=time.time()) - started,
        links=len(made),
        watch=watch,
        extra={"parents": parents, "mistyped": len(mistyped), "first_try": first, "requests": states},
    )
    return {**result, "rows_lost": parents - len(made)}


# -- 5. the most one token gets through --------------------------------------------------------------
def probe(stack: Stack, seconds: float, threads: int = 32) -> dict:
    """What the portal's own client and limiter get through this simulator on this machine with nothing
    else to do: ``threads`` threads asking for the admin's own user as fast as they are let, for
    ``seconds``. Between the strict ceiling and this lies the simulator's own time per call and the
    hand-over of a slot from one request to the next; between this and the portal, the portal's work."""
    from linking.canvas import admin_client

    client = admin_client()
    watch = phase_start(stack)
    until = time.monotonic() + seconds

    def ask() -> None:
        while time.monotonic() < until:
            client.request("GET", "/api/v1/users/self")

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: ask(), range(threads)))
    calls = canvas_counts(stack.sim.stats())["calls"]
    return {
        **phase_result(stack=stack, seconds=time.monotonic() - started, links=calls, watch=watch, extra={}),
        "threads": threads,
    }


# -- 4. the classic script ---------------------------------------------------------------------------
def baseline(stack: Stack, families: int) -> dict:
    from bench.classic_script import ClassicScript

    students = seed.sim_students(stack.sim, count=families, prefix="CLASSIC")
    rows = [
        (student["sis_user_id"], seed.parent_email("classic", number), f"Pat Classic{number:05d}")
        for number, student in enumerate(students, start=1)
    ]
    watch = phase_start(stack)
    tally = ClassicScript(stack.sim.base_url, stack.sim.admin_token).run(rows)
    result = phase_result(stack=stack, seconds=tally.seconds, links=tally.linked, watch=watch, extra={})
    return {**result, "families": families, "failed": tally.failed[:10], "script_throttled": tally.throttled}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000, help="new families in the bulk import")
    parser.add_argument("--parents", type=int, default=500, help="parents in the self-service burst")
    parser.add_argument("--arrivals", type=int, default=120, help="parents arriving one by one, timed")
    parser.add_argument("--rate", type=float, default=2.0, help="their arrivals a second")
    parser.add_argument("--baseline", type=int, default=100, help="families the classic script links")
    parser.add_argument("--mistyped", type=int, default=300, help="parents with Canvas accounts, some mistyping")
    parser.add_argument("--mistyped-share", type=float, default=0.02, help="the share who type a wrong code first")
    parser.add_argument("--probe-seconds", type=float, default=20, help="how long the probe asks (0: no probe)")
    parser.add_argument("--latency-ms", type=int, default=150, help="the simulator's latency per API call")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--worker-threads", type=int, default=16, help="threads of each Celery worker")
    args = parser.parse_args(argv)

    result: dict = {
        "command": "python -m bench.linking " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args),
    }
    with Stack.start(
        latency_ms=args.latency_ms, workers=args.workers, worker_threads=args.worker_threads, web=True
    ) as stack:
        stack.django()
        from django.conf import settings

        result["settings"] = {
            "CANVAS_MAX_IN_FLIGHT": settings.CANVAS_MAX_IN_FLIGHT,
            "worker": f"{args.workers} x celery worker --pool=threads --concurrency={args.worker_threads}",
            "web": "gunicorn, 4 sync workers",
        }
        for name, run in (
            ("bulk", lambda: bulk(stack, args.families)),
            ("self_service", lambda: self_service_burst(stack, args.parents)),
            ("steady", lambda: steady_arrivals(stack, args.arrivals, args.rate)),
            ("mistyped", lambda: mistyped_codes(stack, args.mistyped, args.mistyped_share)),
            ("baseline", lambda: baseline(stack, args.baseline)),
            ("probe", lambda: probe(stack, args.probe_seconds)),
        ):
            size = {"bulk": "families", "self_service": "parents", "steady": "arrivals"}.get(name, name)
            size = "probe_seconds" if name == "probe" else size
            if getattr(args, size):
                print(f"-- {name}", flush=True)
                result[name] = run()
                print({key: value for key, value in result[name].items() if key != "summary"}, flush=True)
        result["memory_mib"] = stack.memory()
    for name in ("bulk", "self_service"):
        if name in result and "baseline" in result and result["baseline"]["links_per_second"]:
            result[name]["ratio_to_baseline"] = round(
                result[name]["links_per_second"] / result["baseline"]["links_per_second"], 1
            )
    write_result("linking", result)
    return result


if __name__ == "__main__":
    main()
