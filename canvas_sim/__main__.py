"""``python -m canvas_sim``: run the simulator. Every flag is documented in README."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import Config, Simulator, set_self_registration
from .seed import ROOT_ACCOUNT_ID, demo_summary, ensure_base, seed_demo
from .store import Store
from .throttle import ThrottleSettings

DEFAULT_REDIRECTS = ["http://127.0.0.1:8000/", "http://localhost:8000/"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m canvas_sim", description="A Canvas LMS simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("CANVAS_SIM_ADMIN_TOKEN"),
        help="the account admin's API token (or env CANVAS_SIM_ADMIN_TOKEN); required",
    )
    parser.add_argument("--data", default="var/canvas_sim.sqlite3", help="SQLite file of the simulator's data")
    parser.add_argument("--fresh", action="store_true", help="delete the data file first")
    parser.add_argument("--seed", choices=["demo", "none"], default="none", help="load the demo school")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every API request")
    parser.add_argument(
        "--self-registration",
        choices=["observer", "all", "none"],
        default="observer",
        help="the root account's self-registration setting (default observer)",
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of API requests that answer 500")
    parser.add_argument(
        "--hang-rate", type=float, default=0.0, help="fraction of API requests whose answer is held back"
    )
    parser.add_argument("--hang-seconds", type=float, default=30.0, help="how long a held answer waits")
    parser.add_argument("--throttle-hwm", type=float, default=600.0, help="throttle high-water mark")
    parser.add_argument("--throttle-outflow", type=float, default=10.0, help="units leaking out per second")
    parser.add_argument("--throttle-maximum", type=float, default=800.0, help="bucket ceiling")
    parser.add_argument("--throttle-up-front", type=float, default=50.0, help="units reserved per request in flight")
    parser.add_argument("--no-throttle", action="store_true", help="never throttle")
    parser.add_argument("--oauth-client-id", default="10000000000001", help="the portal's developer key id")
    parser.add_argument("--oauth-client-secret", default="demo-portal-secret", help="the developer key's secret")
    parser.add_argument(
        "--oauth-redirect-uri",
        action="append",
        default=None,
        help="allowed redirect URI prefix (repeatable; the port is not compared, as in Canvas)",
    )
    parser.add_argument("--quiet", action="store_true", help="log no request lines")
    args = parser.parse_args(argv)
    if not args.admin_token:
        parser.error("--admin-token (or CANVAS_SIM_ADMIN_TOKEN) is required")
    for name in ("error_rate", "hang_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    return args


def build(args: argparse.Namespace) -> Simulator:
    path = Path(args.data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(str(path))
    ensure_base(
        store,
        admin_token=args.admin_token,
        client_id=args.oauth_client_id,
        client_secret=args.oauth_client_secret,
        redirect_uris=args.oauth_redirect_uri or DEFAULT_REDIRECTS,
    )
    if args.seed == "demo":
        seed_demo(store)
    set_self_registration(store, ROOT_ACCOUNT_ID, args.self_registration)
    config = Config(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        throttle=ThrottleSettings(
            hwm=args.throttle_hwm,
            outflow=args.throttle_outflow,
            maximum=args.throttle_maximum,
            up_front=args.throttle_up_front,
            enabled=not args.no_throttle,
        ),
    )
    sim = Simulator(store, admin_token=args.admin_token, config=config)
    sim.initial_self_registration = args.self_registration
    return sim


class KeepAliveHandler(WSGIRequestHandler):
    # Canvas keeps connections open between requests (HTTP/1.1), so clients reuse them; werkzeug's default
    # (HTTP/1.0) would make every request pay a new connection, which Canvas does not charge.
    protocol_version = "HTTP/1.1"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING if args.quiet else logging.INFO)
    sim = build(args)
    server = make_server(args.host, args.port, sim, threaded=True, request_handler=KeepAliveHandler)
    base_url = f"http://{args.host}:{server.port}"
    if args.seed == "demo":
        print(demo_summary(base_url=base_url, client_id=args.oauth_client_id, client_secret=args.oauth_client_secret))
    print(f"Canvas simulator listening on {base_url} (data {args.data})", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
