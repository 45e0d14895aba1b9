#!/usr/bin/env bash
# `make demo`: the portal on http://127.0.0.1:8000 talking to the Canvas simulator on 127.0.0.1:8001.
# The simulator runs in the background and is stopped however the portal stops (Ctrl-C, an error).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SIM_PORT=8001
WEB_PORT=8000
DEMO_ADMIN_TOKEN="${DEMO_ADMIN_TOKEN:-demo-admin-token}"

export DEBUG=1
export CANVAS_BASE_URL="http://127.0.0.1:${SIM_PORT}"
export CANVAS_ADMIN_TOKEN="${DEMO_ADMIN_TOKEN}"

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for port in "$SIM_PORT" "$WEB_PORT"; do
    if port_in_use "$port"; then
        echo "demo: port $port on 127.0.0.1 is already in use; stop whatever listens there first." >&2
        exit 1
    fi
done

mkdir -p var
"$PY" manage.py migrate --no-input

"$PY" -m canvas_sim --port "$SIM_PORT" --admin-token "$DEMO_ADMIN_TOKEN" \
    --seed demo --data var/canvas_sim.sqlite3 &
SIM_PID=$!

stop_simulator() {
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
}
trap stop_simulator EXIT

# Wait for the simulator, so the portal's first Canvas call does not race its startup.
for _ in $(seq 50); do
    if port_in_use "$SIM_PORT"; then
        break
    fi
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
        echo "demo: the Canvas simulator exited before listening on port $SIM_PORT; see its output above." >&2
        exit 1
    fi
    sleep 0.2
done
if ! port_in_use "$SIM_PORT"; then
    echo "demo: the Canvas simulator is not listening on port $SIM_PORT after 10 seconds." >&2
    exit 1
fi

echo "demo: Canvas simulator on ${CANVAS_BASE_URL} (admin token: ${DEMO_ADMIN_TOKEN})"
echo "demo: portal on http://127.0.0.1:${WEB_PORT}/ (Ctrl-C stops both)"
"$PY" manage.py runserver "127.0.0.1:${WEB_PORT}"
