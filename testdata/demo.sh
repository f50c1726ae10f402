#!/usr/bin/env bash
# Runs the main job: a server on its SQLite default in a temporary
# CLIQ_HOME and a project made from the demo team. A job is started through
# the API, its events are printed live, then the final status, then the
# server stops.
# Usage: testdata/demo.sh [PATH_TO_CLIQ_BINARY]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cliq=$(realpath "${1:-$root/bin/cliq}")
[ -x "$cliq" ] || { echo "demo: $cliq is not an executable; run 'make build' first" >&2; exit 1; }

export CLIQ_HOME=$(mktemp -d)
project=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		"$cliq" server stop >/dev/null 2>&1 || kill "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$CLIQ_HOME" "$project"
}
trap cleanup EXIT

echo "== project: init, assemble the demo team, set the requirement"
cd "$project"
"$cliq" init
"$cliq" assemble "$root/testdata/teams/demo"
"$cliq" req -m "Greet the world, build left and right side by side, and pass the check." --input greeting="hello from cliq"
instance=$(cat .cliq/cliq.id)

echo
echo "== server: start on a free port with SQLite in $CLIQ_HOME"
"$cliq" server start --port 0 >"$CLIQ_HOME/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
	[ -f "$CLIQ_HOME/server.json" ] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$CLIQ_HOME/server.out" >&2; exit 1; }
	sleep 0.1
done
[ -f "$CLIQ_HOME/server.json" ] || { echo "demo: the server did not start within 10 s" >&2; cat "$CLIQ_HOME/server.out" >&2; exit 1; }
"$cliq" server status

echo
echo "== job: start $instance through the API and follow its events"
status=0
"$cliq" job start "$instance" --follow || status=$?

echo
echo "== final status"
"$cliq" job status "$instance"
"$cliq" job phases "$instance"

echo
echo "== server: stop"
"$cliq" server stop
server_pid=
exit "$status"
