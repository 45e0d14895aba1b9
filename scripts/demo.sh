#!/usr/bin/env bash
# `make demo`: the portal on http://127.0.0.1:8000 with a Celery worker and beat, talking to the Canvas
# simulator (its demo school) on 127.0.0.1:8001. PostgreSQL and Redis are used when DATABASE_URL and
# CELERY_BROKER_URL say so; without them, SQLite and kombu's filesystem broker (no server) stand in.
# Everything started here runs in its own process group and is stopped however the script ends
# (Ctrl-C, an error, a process that died).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
CELERY=.venv/bin/celery
SIM_PORT=8001
WEB_PORT=8000
WEB_URL="http://127.0.0.1:${WEB_PORT}"
DEMO_ADMIN_TOKEN="${DEMO_ADMIN_TOKEN:-demo-admin-token}"
LOG_DIR=var/log

export DEBUG=1
export PYTHONUNBUFFERED=1
export PORTAL_BASE_URL="$WEB_URL"
export CANVAS_BASE_URL="http://127.0.0.1:${SIM_PORT}"
export CANVAS_ADMIN_TOKEN="$DEMO_ADMIN_TOKEN"
# The simulator's developer key (canvas_sim's defaults), so "Sign in with Canvas" works.
export CANVAS_OAUTH_CLIENT_ID=10000000000001
export CANVAS_OAUTH_CLIENT_SECRET=demo-portal-secret
# No broker configured: one that needs no server (portal/settings.py puts its folders in var/broker).
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-filesystem://}"

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Only the scheme and host of a URL: DATABASE_URL and CELERY_BROKER_URL may carry a password.
where() {
    local url="${1#*://}"
    url="${url##*@}"
    echo "${1%%://*}://${url%%/*}"
}

for port in "$SIM_PORT" "$WEB_PORT"; do
    if port_in_use "$port"; then
        echo "demo: port $port on 127.0.0.1 is already in use; stop whatever listens there first." >&2
        exit 1
    fi
done

mkdir -p "$LOG_DIR"
if [ -n "${DATABASE_URL:-}" ]; then
    echo "demo: database $(where "$DATABASE_URL") (DATABASE_URL)"
else
    echo "demo: database var/portal.sqlite3 (SQLite; set DATABASE_URL=postgres://... for PostgreSQL)"
fi
if [ "$CELERY_BROKER_URL" = "filesystem://" ]; then
    echo "demo: task queue in var/broker (kombu's filesystem broker; set CELERY_BROKER_URL=redis://... for Redis)"
else
    echo "demo: task queue $(where "$CELERY_BROKER_URL") (CELERY_BROKER_URL)"
fi

"$PY" manage.py migrate --no-input
"$PY" manage.py demo_setup

# Process-group leaders, one per background process; set -m gives each its own group, so one kill
# also reaches its children (runserver's autoreloader runs the server in a child process).
STARTED=""

start() {
    local log="$1"
    shift
    set -m
    if [ "$log" = "-" ]; then
        "$@" </dev/null &
    else
        "$@" </dev/null >"$log" 2>&1 &
    fi
    set +m
    STARTED="$STARTED $!"
    LAST_PID=$!
}

stop_all() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$STARTED" ]; then
        echo
        echo "demo: stopping the portal, the worker, beat and the simulator..."
        local pid
        for pid in $STARTED; do
            kill -TERM -- "-$pid" 2>/dev/null || true
        done
        # The worker finishes the task in hand first (a Canvas call times out within 25 s).
        for _ in $(seq 150); do
            local alive=""
            for pid in $STARTED; do
                if kill -0 -- "-$pid" 2>/dev/null; then
                    alive=1
                fi
            done
            [ -z "$alive" ] && break
            sleep 0.2
        done
        for pid in $STARTED; do
            kill -KILL -- "-$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
        echo "demo: stopped."
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for_port() {
    local port="$1" pid="$2" what="$3" log="$4"
    for _ in $(seq 100); do
        if port_in_use "$port"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: $what exited before listening on port $port; see $log." >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "demo: $what is not listening on port $port after 20 seconds; see $log." >&2
    exit 1
}

start "$LOG_DIR/canvas_sim.log" "$PY" -m canvas_sim --port "$SIM_PORT" --admin-token "$DEMO_ADMIN_TOKEN" \
    --seed demo --data var/canvas_sim.sqlite3 \
    --oauth-redirect-uri "http://127.0.0.1:${WEB_PORT}/" --oauth-redirect-uri "http://localhost:${WEB_PORT}/"
SIM_PID=$LAST_PID
# Wait for the simulator, so the portal's first Canvas call does not race its startup.
wait_for_port "$SIM_PORT" "$SIM_PID" "the Canvas simulator" "$LOG_DIR/canvas_sim.log"

start "$LOG_DIR/worker.log" "$CELERY" -A portal worker --pool=threads --concurrency=4 --loglevel=INFO
WORKER_PID=$LAST_PID
start "$LOG_DIR/beat.log" "$CELERY" -A portal beat --schedule var/celerybeat-schedule --loglevel=INFO
BEAT_PID=$LAST_PID
# The web process prints to this terminal, including the emails it sends (sign-up and sign-in codes).
start - "$PY" manage.py runserver "127.0.0.1:${WEB_PORT}"
WEB_PID=$LAST_PID
wait_for_port "$WEB_PORT" "$WEB_PID" "the portal (runserver)" "its output above"

for _ in $(seq 100); do
    if grep -q "ready\." "$LOG_DIR/worker.log" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

cat <<EOF

================================================================================
  Portal:  ${WEB_URL}/        admin: ${WEB_URL}/admin/
  Canvas simulator: ${CANVAS_BASE_URL} (admin token: ${DEMO_ADMIN_TOKEN})

  Student  "Sign in with Canvas" as s1002 / student-demo (enrolled; any of s1001-s1029)
           s1030 / student-demo has no enrollment yet, so Canvas refuses her a pairing code
  Parent   david.chen@example.com / parent-demo (also a parent in the simulated Canvas)
           or sign up with any email: the code to confirm it is printed in this terminal
  Staff    staff@example.com / staff-demo: the staff console ${WEB_URL}/staff/ (it asks you to set up an
           authenticator app first) and ${WEB_URL}/admin/

  Logs: ${LOG_DIR}/worker.log (and the emails the worker sends), ${LOG_DIR}/beat.log,
        ${LOG_DIR}/canvas_sim.log (every simulator login). Ctrl-C stops everything.
================================================================================

EOF

# Watch every process: if one dies, say which and stop the rest rather than half a demo.
while true; do
    for name in simulator:$SIM_PID worker:$WORKER_PID beat:$BEAT_PID web:$WEB_PID; do
        if ! kill -0 "${name#*:}" 2>/dev/null; then
            echo "demo: the ${name%%:*} process stopped; see $LOG_DIR/ or the output above." >&2
            exit 1
        fi
    done
    sleep 1
done
