"""The web under load: parents, students and staff at once, through gunicorn, PostgreSQL and Redis.

    .venv/bin/python -m bench.web [--users 200] [--duration 3m] [--spawn-rate 10] [--gunicorn sync:5 ...]

For each gunicorn configuration (``--gunicorn``, repeatable; by default the one a school on this machine
would run and one alternative), one fresh stack as production runs it (bench/stack.py: PostgreSQL, Redis,
a Celery worker, the Canvas simulator with 150 ms latency, gunicorn with DEBUG off and HTTPS only):

1. **Seed** a school a few weeks into term (bench/web_seed.py): ``--parents`` parents (linked, held for
   review, refused, declined, new), ``--students`` Canvas students signed in with Canvas, staff with an
   authenticator app, the audit events all that left, and real pairing codes for parents to type.
2. **Load**: locust (bench/locustfile.py), headless on loopback, ``--users`` people at once for
   ``--duration``: parents signing in (a share through the sign-in form), adding codes and watching them
   link, students making codes, staff paging through the review queue. Statistics are reset once every
   user has started, so the figures are those of the full load.
3. **Profile**: with the load gone, each page once more through Django's test client in this process,
   with its queries counted and timed, and the password hasher timed alone.

Figures per page (requests, failures, requests a second, p50, p95, p99), memory and CPU per process, and
whether every page's p95 is under 150 ms go to var/bench/web.json. The sign-in POST is judged with the
others; the time its password hasher (Argon2id, portal/hashers.py) takes alone is reported beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import web_seed
from bench.stack import DATABASE, POSTGRES_URL, ROOT, Stack, children_of, rss_mib, write_result

TARGET_P95_MS = 150
SIGN_IN = "POST /accounts/login/"
CORES = os.cpu_count() or 1
# gunicorn's advice for sync workers is 2 x cores + 1; the threaded worker holds more requests at once
# in fewer processes (the hasher and the database release the GIL).
CONFIGURATIONS = [f"sync:{2 * CORES + 1}", f"gthread:{CORES + 1}x4"]
ACCESS_LINE = re.compile(r'" (\d{3}) ')


# -- gunicorn -----------------------------------------------------------------------------------------
def gunicorn_config(spec: str) -> dict:
    """``sync:5`` or ``gthread:3x4`` (workers x threads) as Stack.start's keywords."""
    worker_class, _, size = spec.partition(":")
    workers, _, threads = size.partition("x")
    if worker_class not in ("sync", "gthread") or not workers.isdigit() or not (threads or "1").isdigit():
        raise argparse.ArgumentTypeError(
            f"a gunicorn configuration is sync:WORKERS or gthread:WORKERSxTHREADS, not {spec!r}"
        )
    return {"web_worker_class": worker_class, "web_workers": int(workers), "web_threads": int(threads or 1)}


def seconds_of(duration: str) -> int:
    """Locust's duration (``3m``, ``90s``, ``1h30m``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", duration.strip())
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"a duration is like 3m, 90s or 1h30m, not {duration!r}")
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


# -- what the machine did -------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children that have exited (PostgreSQL's backends: the portal opens
    a connection, so a backend, per request)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Usage:
    """Memory (sampled, with its peak) and CPU time of the stack's processes and the load generator."""

    def __init__(self, stack: Stack, locust: subprocess.Popen) -> None:
        self.stack, self.locust = stack, locust
        self.peak: dict[str, float] = {}
        self.started_cpu = self.cpu()
        self.started_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.started_busy = machine_busy()
        self.started_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def processes(self) -> dict[str, list[int]]:
        groups = {}
        for name, process in self.stack.processes.items():
            groups[name] = [process.pid, *children_of(process.pid)]
        if self.stack.sim.process is not None:
            groups["canvas_sim"] = [self.stack.sim.process.pid]
        # Shared with anything else on the machine; alone on it in the final run.
        groups["postgresql (all)"] = pids_named("postgres")
        groups["redis (all)"] = pids_named("redis-server")
        return groups

    def cpu(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.processes().items()}

    def memory(self) -> dict[str, float | None]:
        found = self.stack.memory()
        if self.locust.poll() is None:
            found["locust"] = rss_mib(self.locust.pid)
        return found

    def _sample(self) -> None:
        while not self._stop.wait(2):
            for name, value in self.memory().items():
                if value is not None:
                    self.peak[name] = max(self.peak.get(name, 0), value)

    def finish(self) -> dict:
        """Call once locust has exited and been waited for (its CPU is then in this process's children's)."""
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self.started_at
        ended = self.cpu()
        used = {name: (ended[name] - self.started_cpu.get(name, 0)) for name in ended}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used["locust"] = sum(getattr(children, f) - getattr(self.started_children, f) for f in ("ru_utime", "ru_stime"))
        busy, total = machine_busy()
        return {
            "memory_mib": self.memory(),
            "memory_peak_mib": dict(sorted(self.peak.items())),
            "cpu_cores_used": {name: round(value / seconds, 2) for name, value in used.items()},
            "machine_cpu_busy": round((busy - self.started_busy[0]) / max(1, total - self.started_busy[1]), 3),
        }


# -- locust ---------------------------------------------------------------------------------------------
def locust_run(stack: Stack, *, personas: Path, args, folder: Path) -> dict:
    users, spawn_rate, duration = args.users, args.spawn_rate, args.duration
    prefix = folder / "locust"
    tally = folder / "locust-tally.json"
    env = {
        **os.environ,
        "BENCH_WEB_PERSONAS": str(personas),
        "BENCH_WEB_TALLY": str(tally),
        "BENCH_WEB_SIGN_IN_SHARE": str(args.sign_in_share),
        "BENCH_WEB_WRONG_CODE_SHARE": str(args.wrong_code_share),
    }
    command = [
        *(sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless"),
        *("--host", stack.web_url, "-u", str(users), "-r", str(spawn_rate), "-t", duration),
        *("--csv", str(prefix), "--only-summary", "--reset-stats", "--loglevel", "WARNING"),
    ]
    with open(folder / "locust.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        usage = Usage(stack, process)
        # locust exits 1 when any request failed; the figures say which, so that is no crash.
        process.wait(timeout=seconds_of(duration) + 120)
        used = usage.finish()
    if not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust wrote no statistics: {(folder / 'locust.log').read_text()[-3000:]}")
    return {
        "command": " ".join(["locust", *command[3:]]).replace(str(ROOT) + "/", ""),
        "exit_code": process.returncode,
        "pages": page_rows(Path(f"{prefix}_stats.csv")),
        "failures": failure_rows(Path(f"{prefix}_failures.csv")),
        "people": json.loads(tally.read_text()) if tally.exists() else {},
        **used,
    }


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None  # "N/A": no request of that page


def page_rows(path: Path) -> list[dict]:
    """locust's statistics, one row a page (and ``Aggregated``), times in ms (locust rounds those over
    100 ms to 10 ms and those over 1 s to 100 ms)."""
    rows = []
    with open(path, newline="") as stats:
        for row in csv.DictReader(stats):
            rows.append(
                {
                    "page": row["Name"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "rps": round(float(row["Requests/s"]), 2),
                    "mean": round(float(row["Average Response Time"]), 1),
                    "p50": _number(row["50%"]),
                    "p95": _number(row["95%"]),
                    "p99": _number(row["99%"]),
                    "max": round(float(row["Max Response Time"]), 1),
                }
            )
    return rows


def failure_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as failures:
        return [
            {"page": row["Name"], "error": row["Error"], "count": int(row["Occurrences"])}
            for row in csv.DictReader(failures)
        ]


def verdict(pages: list[dict]) -> dict:
    """The target, p95 under 150 ms on every page the load reached, the sign-in POST included."""
    judged = [row for row in pages if row["page"] != "Aggregated" and row["requests"]]
    missing = [row["page"] for row in judged if row["p95"] is None or row["p95"] >= TARGET_P95_MS]
    sign_in = next((row for row in pages if row["page"] == SIGN_IN), None)
    return {
        "p95_ms": TARGET_P95_MS,
        "met": not missing,
        "pages_judged": len(judged),
        "pages_missing": missing,
        "sign_in_p95_ms": sign_in["p95"] if sign_in else None,
    }


# -- what else happened -----------------------------------------------------------------------------------
def web_log_statuses(log: Path) -> dict:
    """Responses gunicorn logged, by status class, and tracebacks."""
    text = log.read_text(errors="replace") if log.exists() else ""
    classes: dict[str, int] = {}
    for status in ACCESS_LINE.findall(text):
        key = f"{status[0]}xx"
        classes[key] = classes.get(key, 0) + 1
    return {"responses": dict(sorted(classes.items())), "tracebacks": text.count("Traceback")}


def outcomes_since(started) -> dict:
    """What the worker made of the run's codes: link requests and pairing codes by state."""
    from django.db.models import Count

    from linking.models import LinkRequest, PairingCode

    def by_state(model) -> dict:
        rows = model.objects.filter(created_at__gte=started).order_by().values("state").annotate(count=Count("pk"))
        return {row["state"]: row["count"] for row in rows}

    requests = by_state(LinkRequest)
    failures = (
        LinkRequest.objects.filter(created_at__gte=started, state=LinkRequest.State.FAILED)
        .order_by()
        .values("failure")
        .annotate(count=Count("pk"))
    )
    return {
        "link_requests": requests,
        "link_request_failures": {row["failure"]: row["count"] for row in failures},
        "pairing_codes": by_state(PairingCode),
    }


# -- warm ------------------------------------------------------------------------------------------------------
def warm_up(stack: Stack, personas: dict, *, rounds: int) -> int:
    """Every kind of page a few times per gunicorn process before the load, as a portal that has been
    running for a while is (templates compiled, modules imported); returns the requests made."""
    import requests

    parent = next(p for p in personas["parents"] if p["state"] == "linked")
    visits = [
        (None, "/accounts/login/?next=/family/"),
        (parent, "/family/"),
        (parent, "/family/requests/"),
        (parent, "/family/add/"),
        (personas["students"][0], "/student/"),
        (personas["staff"][0], "/staff/"),
        (personas["staff"][0], "/staff/requests/?state=held"),
        (personas["staff"][0], "/staff/requests/?page=2"),
    ]
    made = 0
    for persona, path in visits * rounds:
        with requests.Session() as session:
            if persona:
                session.cookies.set("sessionid", persona["session"], domain="127.0.0.1")
            headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": (persona or {}).get("address", "10.255.0.1")}
            session.get(stack.web_url + path, headers=headers, allow_redirects=False, timeout=30)
            made += 1
    return made


# -- one page at a time, its queries counted -------------------------------------------------------------------
def page_profile(stack: Stack, personas: dict, repeat: int = 15) -> dict:
    """Each page alone (no load) through Django's test client in this process: time and queries."""
    from django.contrib.auth.hashers import check_password, make_password

    from linking.models import LinkRequest, PairingCode

    host = stack.web_url.split("//", 1)[1]
    parent = next(p for p in personas["parents"] if p["state"] == "linked")
    held = LinkRequest.objects.filter(state=LinkRequest.State.HELD).order_by("-created_at").first()
    code = PairingCode.objects.filter(state=PairingCode.State.ACTIVE).order_by("-created_at").first()
    student = next(s for s in personas["students"])
    pages = {
        "GET /family/": (parent, "/family/"),
        "GET /family/requests/": (parent, "/family/requests/"),
        "GET /family/add/": (parent, "/family/add/"),
        "GET /accounts/login/": (None, "/accounts/login/?next=/family/"),
        "GET /student/": (student, "/student/"),
        "GET /staff/": (personas["staff"][0], "/staff/"),
        "GET /staff/requests/": (personas["staff"][0], "/staff/requests/"),
        "GET /staff/requests/?state=held": (personas["staff"][0], "/staff/requests/?state=held"),
        "GET /staff/requests/?page=N": (personas["staff"][0], "/staff/requests/?page=40"),
        "GET /staff/requests/?q=…": (personas["staff"][0], f"/staff/requests/?q={personas['search'][0]}"),
        "GET /staff/requests/<id>/": (personas["staff"][0], f"/staff/requests/{held.pk}/" if held else ""),
    }
    profiled = {}
    for name, (persona, path) in pages.items():
        if path:
            profiled[name] = _profile_one(host, persona, path, repeat)
    if code is not None:
        # Any student's own code page: sign in as that student's session instead.
        profiled["GET /student/codes/<id>/"] = _profile_code_page(host, code, repeat)
    hashed = make_password(web_seed.PASSWORD)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        check_password(web_seed.PASSWORD, hashed)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "pages": profiled,
        "password_hash_ms": round(statistics.median(times), 1),
        "database_connect_ms": database_connect_ms(),
    }


def _client(host: str, persona: dict | None):
    from django.test import Client

    client = Client(
        HTTP_HOST=host,
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_FOR=(persona or {}).get("address", "10.255.255.1"),
    )
    if persona:
        client.cookies["sessionid"] = persona["session"]
    return client


def _profile_code_page(host: str, code, repeat: int) -> dict:
    from bench.web_seed import sessions_bulk

    session = sessions_bulk([code.student.user])[0]
    return _profile_one(host, {"session": session, "address": "10.255.255.2"}, f"/student/codes/{code.pk}/", repeat)


def _profile_one(host: str, persona: dict | None, path: str, repeat: int) -> dict:
    """The median of ``repeat`` requests of one page, with its queries timed one by one."""
    from django.db import connection

    client = _client(host, persona)
    client.get(path)  # warm: templates compiled, connection open
    runs = []
    for _ in range(repeat):
        queries: list[tuple[float, str, object]] = []

        def timed(execute, sql, params, many, context, queries=queries):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append(((time.perf_counter() - started) * 1000, sql, params))

        with connection.execute_wrapper(timed):
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
        runs.append((elapsed, queries, response.status_code))
    elapsed, queries, status = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    slowest = max(queries, default=None)
    return {
        "status": status,
        "ms": round(elapsed, 2),
        "queries": len(queries),
        "query_ms": round(sum(query[0] for query in queries), 2),
        "slowest_query_ms": round(slowest[0], 2) if slowest else None,
        "slowest_query": slowest[1][:400] if slowest else None,
        "slowest_query_plan": _plan(slowest) if slowest and slowest[0] > 2 else None,
    }


def _plan(query: tuple) -> list[str]:
    from django.db import connection

    _, sql, params = query
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return [row[0] for row in cursor.fetchall()]


def database_connect_ms(repeat: int = 20) -> float:
    """How long opening a database connection takes: what a request costs more when its process has no
    connection kept (CONN_MAX_AGE, 60 s by default; the profile above reuses one)."""
    from django.db import connection

    times = []
    for _ in range(repeat):
        connection.close()
        started = time.perf_counter()
        connection.ensure_connection()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


# -- one configuration, one stack ----------------------------------------------------------------------------
def configuration_run(args, spec: str, folder: Path) -> dict:
    config = gunicorn_config(spec)
    folder.mkdir(parents=True, exist_ok=True)
    # Connection options a deployment may put in DATABASE_URL (conn_max_age=60, say); none by default.
    database = {"DATABASE_URL": f"{POSTGRES_URL}/{DATABASE}?{args.database_options}"} if args.database_options else {}
    with Stack.start(latency_ms=args.latency_ms, workers=1, web=True, extra_env=database, **config) as stack:
        stack.django()
        from django.utils import timezone

        print(f"-- {spec}: seeding", flush=True)
        started = time.monotonic()
        seeded = web_seed.school_seed(
            stack,
            parents=args.parents,
            students=args.students,
            staff=args.staff,
            codes=args.codes,
            days=args.history_days,
            seed_number=args.seed,
        )
        seed_seconds = time.monotonic() - started
        personas_path = folder / "personas.json"
        personas_path.write_text(json.dumps(seeded["personas"]))
        print(f"-- {spec}: {seeded['counts']} in {seed_seconds:.0f} s; locust, {args.users} users", flush=True)
        warmed = warm_up(stack, seeded["personas"], rounds=3 * config["web_workers"])
        load_started = timezone.now()
        load = locust_run(stack, personas=personas_path, args=args, folder=folder)
        outcomes = outcomes_since(load_started)
        profile = page_profile(stack, seeded["personas"])
        run = {
            "gunicorn": {**config, "spec": spec, "command": _gunicorn_command(config)},
            "database_url_options": args.database_options or "none (CONN_MAX_AGE 60 s, the portal's default)",
            "seed": {**seeded["counts"], "seconds": round(seed_seconds, 1)},
            "warm_up_requests": warmed,
            **load,
            "target": verdict(load["pages"]),
            "web_log": web_log_statuses(stack.log_dir / "web.log"),
            "worker_outcomes": outcomes,
            "profile": profile,
        }
    return run


def _gunicorn_command(config: dict) -> str:
    threads = f" --threads {config['web_threads']}" if config["web_threads"] != 1 else ""
    worker_class = f" --worker-class {config['web_worker_class']}" if config["web_worker_class"] != "sync" else ""
    return f"gunicorn portal.wsgi:application --workers {config['web_workers']}{worker_class}{threads}"


def worst_p95(run: dict) -> float:
    judged = [row["p95"] or math.inf for row in run["pages"] if row["page"] != "Aggregated" and row["requests"]]
    return max(judged, default=math.inf)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="people at the portal at once")
    parser.add_argument("--spawn-rate", type=float, default=10, help="people who sit down a second at the start")
    parser.add_argument("--duration", default="3m", help="how long the load lasts (locust's -t: 3m, 90s)")
    parser.add_argument(
        "--gunicorn",
        action="append",
        type=str,
        help=f"a gunicorn configuration, sync:WORKERS or gthread:WORKERSxTHREADS (repeatable; "
        f"default {' and '.join(CONFIGURATIONS)}, the first being the one chosen)",
    )
    parser.add_argument("--parents", type=int, help="parents seeded (default 20 per user)")
    parser.add_argument("--students", type=int, help="students seeded (default 6 per user)")
    parser.add_argument("--staff", type=int, default=10, help="staff seeded")
    parser.add_argument("--codes", type=int, help="pairing codes made for parents to type (default: enough)")
    parser.add_argument("--history-days", type=int, default=60, help="how far back the seeded term goes")
    parser.add_argument("--latency-ms", type=int, default=150, help="the simulator's latency per API call")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the school")
    parser.add_argument(
        "--sign-in-share", type=float, default=0.25, help="parents' visits that begin at the sign-in form"
    )
    parser.add_argument("--wrong-code-share", type=float, default=0.03, help="codes parents mistype")
    parser.add_argument("--database-options", default="", help="query string for DATABASE_URL (conn_max_age=60)")
    args = parser.parse_args(argv)
    for spec in args.gunicorn or ():
        gunicorn_config(spec)  # refuse a malformed one before anything starts
    specs = args.gunicorn or CONFIGURATIONS
    seconds = seconds_of(args.duration)
    args.parents = args.parents or 20 * args.users
    args.students = args.students or 6 * args.users
    # A parent's visit that enters a code takes about half a minute; seven in ten visitors are parents.
    args.codes = args.codes or max(50, math.ceil(args.users * 0.7 * (seconds + 60) / 30))

    result: dict = {
        "command": "python -m bench.web " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args),
    }
    result["settings"] = {
        "cores": CORES,
        "worker": "1 x celery worker --pool=threads --concurrency=16",
        "simulator_latency_ms": args.latency_ms,
        "load": f"locust {args.users} users, -r {args.spawn_rate}, -t {args.duration}, stats reset once all started",
        "proxy_headers": "X-Forwarded-Proto: https; X-Forwarded-For: one address per person (TRUSTED_PROXY_COUNT=1)",
    }
    runs = []
    base = Path(os.environ.get("BENCH_RESULTS_DIR", ROOT / "var" / "bench")) / "web"
    for spec in specs:
        run = configuration_run(args, spec, base / spec.replace(":", "-"))
        runs.append(run)
        _print_run(run)
    chosen, best = runs[0], min(runs, key=worst_p95)
    result["configurations"] = runs
    result["chosen"] = chosen["gunicorn"]["spec"]
    result["best_measured"] = best["gunicorn"]["spec"]
    result["tried"] = [
        {"spec": run["gunicorn"]["spec"], "worst_p95_ms": worst_p95(run), "target_met": run["target"]["met"]}
        for run in runs
    ]
    # The chosen configuration's figures at the top, for bench.results.
    for key in ("pages", "target", "memory_mib", "memory_peak_mib", "cpu_cores_used", "failures", "profile"):
        result[key] = chosen[key]
    write_result("web", result)
    return result


def _print_run(run: dict) -> None:
    print(f"-- {run['gunicorn']['spec']}: {run['target']}", flush=True)
    for row in run["pages"]:
        print(
            f"{row['page']:<45} {row['requests']:>7} {row['failures']:>5} {row['rps']:>7} "
            f"{row['p50']!s:>6} {row['p95']!s:>6} {row['p99']!s:>6}",
            flush=True,
        )
    print("memory", run["memory_mib"], "cpu", run["cpu_cores_used"], flush=True)


if __name__ == "__main__":
    main()
